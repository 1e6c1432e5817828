//! Fingerprints of the side-loaded users and organizations the store holds, so a page's copy that is
//! byte for byte the stored one is known unchanged without reading it.
//!
//! Every ticket page side-loads its tickets' users and organizations, and nearly all of them come again
//! unchanged. Each was a B-tree read to find that out: at 1,000,000 tickets (100,000 users, 20,000
//! organizations) about 1,900 reads at random per page, most of them missing redb's cache (a `pread` and a
//! page buffer each), and 4 % of an incremental sync's page apply at 50,000. A fingerprint is 16 bytes a
//! record in memory (about 2 MiB for 100,000 users).
//!
//! A fingerprint only ever names bytes that are durable: the page's are recorded after its commit, and a
//! delete of the integration empties both sets under the same lock, so no page can record what a delete
//! just removed.
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};

/// A record's fingerprint: a 64-bit hash of its stored bytes.
pub(crate) type Fingerprint = u64;

/// The fingerprint of `encoded` (a record's stored bytes).
pub(crate) fn fingerprint(encoded: &[u8]) -> Fingerprint {
    // The same keys every time: fingerprints live in this process only and are compared with each other.
    BuildHasherDefault::<DefaultHasher>::default().hash_one(encoded)
}

/// The fingerprints of the stored users and organizations known to this process, by Zendesk id.
#[derive(Debug, Default)]
pub(crate) struct SideLoadFingerprints {
    users: HashMap<u64, Fingerprint>,
    organizations: HashMap<u64, Fingerprint>,
}

/// Which kind of side-loaded record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum SideLoad {
    /// A Zendesk user.
    User,
    /// A Zendesk organization.
    Organization,
}

/// Fingerprints a page found stored (written by it or already there), recorded once its commit is durable.
#[derive(Debug, Default)]
pub(crate) struct SeenSideLoads {
    users: Vec<(u64, Fingerprint)>,
    organizations: Vec<(u64, Fingerprint)>,
}

impl SeenSideLoads {
    /// Notes that the store holds `fingerprint` for record `id` of `kind` once the page commits.
    pub(crate) fn saw(&mut self, kind: SideLoad, id: u64, fingerprint: Fingerprint) {
        match kind {
            SideLoad::User => self.users.push((id, fingerprint)),
            SideLoad::Organization => self.organizations.push((id, fingerprint)),
        }
    }
}

impl SideLoadFingerprints {
    /// Whether the stored copy of record `id` of `kind` is known to have `fingerprint`.
    pub(crate) fn holds(&self, kind: SideLoad, id: u64, fingerprint: Fingerprint) -> bool {
        self.of(kind).get(&id) == Some(&fingerprint)
    }

    /// Records what a committed page found stored.
    pub(crate) fn record(&mut self, seen: SeenSideLoads) {
        self.users.extend(seen.users);
        self.organizations.extend(seen.organizations);
    }

    /// Forgets everything (the records were deleted).
    pub(crate) fn clear(&mut self) {
        *self = Self::default();
    }

    fn of(&self, kind: SideLoad) -> &HashMap<u64, Fingerprint> {
        match kind {
            SideLoad::User => &self.users,
            SideLoad::Organization => &self.organizations,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_recorded_fingerprints_are_held_and_a_clear_forgets_them() {
        let mut known = SideLoadFingerprints::default();
        let (alice, acme) = (fingerprint(b"alice"), fingerprint(b"acme"));
        assert_ne!(alice, fingerprint(b"alice2"));
        let mut seen = SeenSideLoads::default();
        seen.saw(SideLoad::User, 7, alice);
        seen.saw(SideLoad::Organization, 7, acme);
        assert!(
            !known.holds(SideLoad::User, 7, alice),
            "not before the commit"
        );
        known.record(seen);
        assert!(known.holds(SideLoad::User, 7, alice));
        assert!(known.holds(SideLoad::Organization, 7, acme));
        assert!(!known.holds(SideLoad::User, 7, acme), "kinds apart");
        assert!(!known.holds(SideLoad::User, 8, alice), "ids apart");
        let mut newer = SeenSideLoads::default();
        newer.saw(SideLoad::User, 7, fingerprint(b"alice2"));
        known.record(newer);
        assert!(
            !known.holds(SideLoad::User, 7, alice),
            "the newer copy replaces it"
        );
        known.clear();
        assert!(!known.holds(SideLoad::Organization, 7, acme));
    }
}
