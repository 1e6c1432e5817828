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
        if c.is_control() || is_format_char(c) {
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

/// Unicode format characters (general category Cf): bidirectional overrides and isolates,
/// zero-width characters, soft hyphens and tags. They render as nothing or reorder the text around
/// them, so an id holding one can look like another id.
pub fn is_format_char(c: char) -> bool {
    matches!(
        u32::from(c),
        0x00AD
            | 0x0600..=0x0605
            | 0x061C
            | 0x06DD
            | 0x070F
            | 0x0890..=0x0891
            | 0x08E2
            | 0x180E
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x2064
            | 0x2066..=0x206F
            | 0xFEFF
            | 0xFFF9..=0xFFFB
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x1343F
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0001
            | 0xE0020..=0xE007F
    )
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
