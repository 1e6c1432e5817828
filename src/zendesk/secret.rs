//! A string that must never be shown: tokens, passwords, client secrets.
use std::fmt;

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
        const SHOWN: usize = 4;
        let chars: Vec<char> = self.0.chars().collect();
        // Short secrets would be mostly revealed by showing both ends, so show nothing.
        if chars.len() < SHOWN * 4 {
            return "…".to_owned();
        }
        let head: String = chars[..SHOWN].iter().collect();
        let tail: String = chars[chars.len() - SHOWN..].iter().collect();
        format!("{head}…{tail}")
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({})", self.masked())
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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
    fn debug_and_display_are_masked() {
        let secret = Secret::new("abcdefghijklmnopqrstuvwxyz");
        assert_eq!(format!("{secret:?}"), "Secret(abcd…wxyz)");
        assert_eq!(secret.to_string(), "abcd…wxyz");
        assert_eq!(Secret::new("short-secret").masked(), "…");
        assert_eq!(secret.expose(), "abcdefghijklmnopqrstuvwxyz");
    }
}
