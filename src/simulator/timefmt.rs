//! Fast `YYYY-MM-DDTHH:MM:SSZ` formatting: a ticket carries several timestamps and a page
//! a thousand tickets, so this avoids chrono's general formatter on the hot path.

/// Days since 1970-01-01 to (year, month, day), Howard Hinnant's civil-from-days.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Unix seconds as ISO-8601 UTC, e.g. `2023-09-18T15:57:42Z`; years outside 0..=9999 are clamped.
pub(crate) fn iso8601(unix: i64) -> IsoTime {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let year = year.clamp(0, 9999) as u32;
    let (h, m, s) = (
        (secs / 3600) as u32,
        ((secs / 60) % 60) as u32,
        (secs % 60) as u32,
    );
    let mut out = *b"0000-00-00T00:00:00Z";
    let put = |out: &mut [u8; 20], at: usize, value: u32, width: usize| {
        let mut v = value;
        for i in (0..width).rev() {
            out[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(&mut out, 0, year, 4);
    put(&mut out, 5, month, 2);
    put(&mut out, 8, day, 2);
    put(&mut out, 11, h, 2);
    put(&mut out, 14, m, 2);
    put(&mut out, 17, s, 2);
    IsoTime(out)
}

/// A formatted timestamp (always ASCII).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct IsoTime([u8; 20]);

impl IsoTime {
    /// The text.
    pub(crate) fn as_str(&self) -> &str {
        // Built from ASCII digits and separators only.
        std::str::from_utf8(&self.0).unwrap_or("1970-01-01T00:00:00Z")
    }
}

impl std::fmt::Debug for IsoTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for IsoTime {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    #[test]
    fn matches_chrono() {
        for unix in [
            0_i64,
            951_782_400,
            1_695_052_663,
            1_709_251_199,
            4_102_444_800,
            -86_401,
        ] {
            let expected = Utc
                .timestamp_opt(unix, 0)
                .unwrap()
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string();
            assert_eq!(iso8601(unix).as_str(), expected, "unix {unix}");
        }
        let mut unix = -3_000_000_000_i64;
        while unix < 5_000_000_000 {
            let expected = Utc
                .timestamp_opt(unix, 0)
                .unwrap()
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string();
            assert_eq!(iso8601(unix).as_str(), expected);
            unix += 7_777_777;
        }
    }
}
