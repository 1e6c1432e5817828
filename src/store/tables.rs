//! Every redb table of zdsync, defined in one place.
use redb::TableDefinition;

/// Store-wide facts: the schema version and small settings. Key: a name from `meta_keys`.
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// The account directory. Key: account id; value: an encoded `AccountRecord`.
pub const ACCOUNTS: TableDefinition<&str, &[u8]> = TableDefinition::new("accounts");

/// The kind every attribute name has across accounts, and how many accounts use it.
/// Key: attribute name; value: (`AttributeKind` code, number of accounts).
pub const ATTRIBUTE_KINDS: TableDefinition<&str, (u8, u64)> =
    TableDefinition::new("attribute_kinds");

/// Names of the rows of `META`.
pub mod meta_keys {
    /// The schema version the file was written with (u32, little-endian).
    pub const SCHEMA_VERSION: &str = "schema_version";
}
