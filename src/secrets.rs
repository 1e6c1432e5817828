//! Secret files and tokens: generation, strict permission checks, masking and constant-time comparison.
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Why a secret file or directory could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The read token equals the admin token.
    #[error("the read token equals the admin token, which would make every reader an admin: give the read token (`[auth] read_token_file` or ZDSYNC_READ_TOKEN) a value of its own")]
    SameTokens,
    /// The file or directory could not be read, created or written.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The data directory is a file (or something else that is not a directory).
    #[error("data_dir {path} exists and is not a directory: point data_dir at a directory (it is created if absent)")]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// The data directory belongs to another user.
    #[error("data_dir {path} is owned by uid {owner}, not by zdsync's uid {me}: use a directory of zdsync's own (systemd's StateDirectory=, or a new path, which is created 0700)")]
    ForeignDirectory {
        /// The directory.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// The uid zdsync runs as.
        me: u32,
    },
    /// The data directory can be written by group or others.
    #[error("data_dir {path} has mode {mode:04o}: others could replace the database or the tokens in it; use a directory of its own (a new path is created 0700) or `chmod go-w` this one")]
    SharedDirectory {
        /// The directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A secret file can be read by group or others.
    #[error("{path} has mode {mode:04o}: a secret file must not be readable by group or others (chmod 600 it)")]
    TooOpen {
        /// The file that is too open.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file's content is not a usable token.
    #[error("{path}: {reason}")]
    BadToken {
        /// The file that holds the bad token.
        path: PathBuf,
        /// What is wrong with it (never the token itself).
        reason: String,
    },
}

/// Shortest token zdsync accepts, so a guessable one is refused.
pub const MIN_TOKEN_LEN: usize = 16;

/// Checks that a token is long enough and printable; the reason never contains the token.
pub fn validate_token(token: &str) -> Result<(), String> {
    if token.len() < MIN_TOKEN_LEN {
        return Err(format!(
            "a token must have at least {MIN_TOKEN_LEN} characters"
        ));
    }
    if token.len() > 4096 {
        return Err("a token must have at most 4096 characters".into());
    }
    if !token.chars().all(|c| c.is_ascii_graphic()) {
        return Err("a token must be printable ASCII without spaces".into());
    }
    Ok(())
}

/// A fresh random token: 32 random bytes, base64url without padding.
pub fn generate_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The shortest secret whose ends a mask shows.
pub const MASK_MIN_CHARS: usize = 24;

/// Shows at most the first and last four characters of a secret (`abcd…wxyz`), or `…` when it is
/// shorter than [`MASK_MIN_CHARS`]: eight characters of a short secret would give most of it away.
pub fn mask(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() < MASK_MIN_CHARS {
        return "…".into();
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

/// A token held for comparison only: its SHA-256 digest, compared in constant time.
#[derive(Clone)]
pub struct TokenDigest([u8; 32]);

impl TokenDigest {
    /// The digest of `token`.
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    /// Whether `candidate` is the token, in time independent of where they differ.
    pub fn matches(&self, candidate: &str) -> bool {
        self.is(&Self::of(candidate))
    }

    /// Whether `other` is the digest of the same token, in time independent of where they differ (one digest
    /// of a presented token then serves every comparison: it is on every authenticated call's path).
    pub fn is(&self, other: &TokenDigest) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl std::fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenDigest(<hidden>)")
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> SecretError + '_ {
    move |source| SecretError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Makes sure the data directory is private: created 0700 when absent; an existing one is used as
/// it is, unless others could change it (group- or other-writable, or owned by another user), which
/// is refused with the fix named. An existing directory is never chmod-ed: it may be shared.
pub fn ensure_private_dir(dir: &Path) -> Result<(), SecretError> {
    use std::os::unix::fs::MetadataExt;
    let meta = match std::fs::metadata(dir) {
        Ok(meta) => meta,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io_error(dir));
        }
        Err(err) => return Err(io_error(dir)(err)),
    };
    if !meta.is_dir() {
        return Err(SecretError::NotADirectory {
            path: dir.to_owned(),
        });
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(SecretError::ForeignDirectory {
            path: dir.to_owned(),
            owner: meta.uid(),
            me,
        });
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o022 != 0 {
        return Err(SecretError::SharedDirectory {
            path: dir.to_owned(),
            mode,
        });
    }
    Ok(())
}

/// Reads a token file, refusing one that group or others may read, and validates its content.
pub fn read_token_file(path: &Path) -> Result<String, SecretError> {
    let bytes = read_private_file(path)?;
    let text = String::from_utf8(bytes).map_err(|_| SecretError::BadToken {
        path: path.to_owned(),
        reason: "a token file must be UTF-8 text".into(),
    })?;
    let token = text.trim_end_matches(['\n', '\r']).to_owned();
    validate_token(&token).map_err(|reason| SecretError::BadToken {
        path: path.to_owned(),
        reason,
    })?;
    Ok(token)
}

/// Reads a secret file, refusing one that group or others may read.
pub fn read_private_file(path: &Path) -> Result<Vec<u8>, SecretError> {
    let metadata = std::fs::metadata(path).map_err(io_error(path))?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(SecretError::TooOpen {
            path: path.to_owned(),
            mode,
        });
    }
    std::fs::read(path).map_err(io_error(path))
}

/// Writes `content` to `path` with mode 0600, atomically (temp file, fsync, rename).
pub fn write_private_file(path: &Path, content: &[u8]) -> Result<(), SecretError> {
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io_error(&tmp))?;
    // An older temp file may have been created with other bits; force 0600 either way.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(io_error(&tmp))?;
    file.write_all(content).map_err(io_error(&tmp))?;
    file.sync_all().map_err(io_error(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_error(path))?;
    Ok(())
}

/// Where the generated admin token lives in the data directory.
pub fn generated_admin_token_path(data_dir: &Path) -> PathBuf {
    data_dir.join("admin.token")
}

/// The generated admin token: read it if a previous start wrote one, else write a new one.
pub fn load_or_create_admin_token(data_dir: &Path) -> Result<(String, PathBuf, bool), SecretError> {
    let path = generated_admin_token_path(data_dir);
    if path.exists() {
        return Ok((read_token_file(&path)?, path, false));
    }
    let token = generate_token();
    write_private_file(&path, format!("{token}\n").as_bytes())?;
    Ok((token, path, true))
}

/// A secret string whose `Debug` and `Display` print a masked form (`abcd…wxyz` at most).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that must send it (a header or a token request).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A masked form safe to show: the first and last four characters of long secrets, else `…`.
    pub fn masked(&self) -> String {
        mask(&self.0)
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({})", self.masked())
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.masked())
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_show_at_most_eight_characters() {
        assert_eq!(mask("abcdefghijklmnopqrstuvwxyz"), "abcd…wxyz");
        assert_eq!(mask("short"), "…");
        assert_eq!(mask("twelve-chars"), "…");
        assert_eq!(mask(&"x".repeat(MASK_MIN_CHARS - 1)), "…");
        assert_eq!(mask(&"y".repeat(MASK_MIN_CHARS)), "yyyy…yyyy");
    }

    #[test]
    fn digest_matches_only_the_same_token() {
        let digest = TokenDigest::of("the-right-token-123");
        assert!(digest.matches("the-right-token-123"));
        assert!(!digest.matches("the-right-token-124"));
        assert!(!digest.matches(""));
        assert!(!format!("{digest:?}").contains("right"));
    }

    #[test]
    fn generated_tokens_are_valid_and_distinct() {
        let a = generate_token();
        assert!(validate_token(&a).is_ok());
        assert_ne!(a, generate_token());
    }

    #[test]
    fn token_files_open_to_others_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t");
        std::fs::write(&path, "0123456789abcdefgh\n").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        assert!(matches!(
            read_token_file(&path),
            Err(SecretError::TooOpen { mode: 0o640, .. })
        ));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert_eq!(read_token_file(&path).expect("ok"), "0123456789abcdefgh");
        std::fs::write(&path, "tiny").expect("write");
        let err = read_token_file(&path).expect_err("too short").to_string();
        assert!(!err.contains("tiny"), "{err}");
    }

    #[test]
    fn admin_token_is_created_once_with_0600() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (first, path, created) = load_or_create_admin_token(dir.path()).expect("create");
        assert!(created);
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (second, _, created) = load_or_create_admin_token(dir.path()).expect("reuse");
        assert!(!created);
        assert_eq!(first, second);
    }

    #[test]
    fn private_dir_is_0700() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("a/b");
        ensure_private_dir(&data).expect("create");
        let mode = std::fs::metadata(&data).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }

    #[test]
    fn existing_data_dirs_are_checked_never_chmod_ed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mode_of =
            |path: &Path| std::fs::metadata(path).expect("meta").permissions().mode() & 0o777;
        // A readable shared directory of ours is used as it is.
        let shared = dir.path().join("shared");
        std::fs::create_dir(&shared).expect("mkdir");
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        ensure_private_dir(&shared).expect("a 0755 directory of ours is fine");
        assert_eq!(
            mode_of(&shared),
            0o755,
            "an existing directory is not chmod-ed"
        );
        // One others may write to is refused, and left as it was.
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
        let err = ensure_private_dir(&shared).expect_err("world-writable");
        assert!(matches!(err, SecretError::SharedDirectory { .. }), "{err}");
        assert!(err.to_string().contains("chmod go-w"), "{err}");
        assert_eq!(mode_of(&shared), 0o777);
        // A file is named as such, not "File exists".
        let file = dir.path().join("file");
        std::fs::write(&file, "x").expect("write");
        let err = ensure_private_dir(&file).expect_err("a file");
        assert!(err.to_string().contains("is not a directory"), "{err}");
        // Another user's directory (only root can make one to test with).
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            let foreign = dir.path().join("foreign");
            std::fs::create_dir(&foreign).expect("mkdir");
            std::os::unix::fs::chown(&foreign, Some(65_534), Some(65_534)).expect("chown");
            let err = ensure_private_dir(&foreign).expect_err("foreign");
            assert!(
                matches!(err, SecretError::ForeignDirectory { owner: 65_534, .. }),
                "{err}"
            );
        }
    }

    #[test]
    fn secret_debug_and_display_are_masked() {
        let secret = Secret::new("abcdefghijklmnopqrstuvwxyz");
        assert_eq!(format!("{secret:?}"), "Secret(abcd…wxyz)");
        assert_eq!(secret.to_string(), "abcd…wxyz");
        assert_eq!(Secret::new("short").masked(), "…");
        assert_eq!(secret.expose(), "abcdefghijklmnopqrstuvwxyz");
    }
}
