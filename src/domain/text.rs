//! Text that came from outside (a Zendesk error body, a bad request value) made safe to keep, log
//! and echo: control characters escaped, runs of white space folded, and the length capped.

/// Most characters of remote text kept anywhere (status, logs, replies).
pub const REMOTE_TEXT_CHARS: usize = 200;

/// Most characters of a client's value quoted back in an error message.
pub const QUOTED_VALUE_CHARS: usize = 100;

/// `text` on one line with control characters escaped (`\n`, `\u{1b}`), at most `max` characters
/// long (escapes included) and `…` marking a cut.
pub fn excerpt(text: &str, max: usize) -> String {
    let mut out = String::new();
    let mut kept = 0;
    let mut last_space = false;
    for c in text.chars() {
        if kept >= max {
            out.push('…');
            return out;
        }
        if c == ' ' || c == '\t' {
            // Folded so padding cannot push the message out of the cap.
            if !last_space {
                out.push(' ');
                kept += 1;
            }
            last_space = true;
            continue;
        }
        last_space = false;
        if c.is_control() || super::account::is_format_char(c) {
            let escaped: String = c.escape_default().collect();
            if kept + escaped.len() > max {
                out.push('…');
                return out;
            }
            kept += escaped.len();
            out.push_str(&escaped);
        } else {
            out.push(c);
            kept += 1;
        }
    }
    out
}

/// [`excerpt`] of remote text at [`REMOTE_TEXT_CHARS`].
pub fn remote(text: &str) -> String {
    excerpt(text, REMOTE_TEXT_CHARS)
}

/// A client's value quoted for an error message: [`excerpt`] at [`QUOTED_VALUE_CHARS`], in quotes.
pub fn quote(value: &str) -> String {
    format!("\"{}\"", excerpt(value, QUOTED_VALUE_CHARS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_length_capped() {
        assert_eq!(excerpt("a\nb\u{1b}[31mc", 50), "a\\nb\\u{1b}[31mc");
        assert_eq!(excerpt("a  \t  b", 50), "a b");
        assert_eq!(excerpt(&"x".repeat(10), 4), "xxxx…");
        assert_eq!(excerpt("right\u{202E}left", 50), "right\\u{202e}left");
        let forged = format!("ok\n2026-12-06 ERROR forged line{}", "!".repeat(3_000_000));
        let kept = remote(&forged);
        assert!(!kept.contains('\n'));
        assert!(kept.chars().count() <= REMOTE_TEXT_CHARS + 1);
        assert_eq!(
            quote(&"v".repeat(1_000_000)).chars().count(),
            QUOTED_VALUE_CHARS + 3
        );
    }
}
