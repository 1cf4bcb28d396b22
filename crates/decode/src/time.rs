//! `CreationTime` parsing: ISO 8601 in UTC, with or without `Z` (the raw API omits it),
//! optional fraction, optional numeric offset. Pure and allocation-free.

/// A point in time as whole milliseconds since the Unix epoch, UTC.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct UnixMillis(pub i64);

impl UnixMillis {
    pub const MIN: UnixMillis = UnixMillis(i64::MIN);

    pub fn from_secs(secs: i64) -> Self {
        UnixMillis(secs * 1000)
    }

    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }

    /// Midnight UTC of this instant's day, as days since the epoch.
    pub fn utc_day(self) -> i64 {
        self.0.div_euclid(86_400_000)
    }

    pub fn saturating_sub_millis(self, ms: i64) -> Self {
        UnixMillis(self.0.saturating_sub(ms))
    }

    pub fn now() -> Self {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        UnixMillis(d.as_millis() as i64)
    }

    /// `YYYY-MM-DDTHH:MM:SS` in UTC without a zone designator, as the raw API writes it.
    pub fn to_api_string(self) -> String {
        let mut s = self.to_iso_millis();
        s.truncate(19);
        s
    }

    /// `YYYY-MM-DDTHH:MM:SS.mmmZ`, as queries to the API are written.
    pub fn to_iso_millis(self) -> String {
        let secs = self.0.div_euclid(1000);
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let (y, m, d) = civil_from_days(days);
        let ms = self.0.rem_euclid(1000);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
            rem / 3600,
            (rem % 3600) / 60,
            rem % 60
        )
    }
}

/// Parses `CreationTime`. Returns `None` for anything that is not a valid calendar time.
pub fn parse_creation_time(s: &str) -> Option<UnixMillis> {
    let b = s.as_bytes();
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b'T' || b[10] == b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let year = digits(&b[0..4])? as i64;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let hour = digits(&b[11..13])? as i64;
    let minute = digits(&b[14..16])? as i64;
    let second = digits(&b[17..19])? as i64;
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &b[19..];
    let mut millis = 0i64;
    if let Some((&b'.', frac)) = rest.split_first() {
        let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        for (i, c) in frac[..n].iter().take(3).enumerate() {
            millis += i64::from(c - b'0') * [100, 10, 1][i];
        }
        rest = &frac[n..];
    }
    let offset_secs = match rest {
        [] | [b'Z'] | [b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] | [sign @ (b'+' | b'-'), h1, h2, m1, m2] => {
            let h = digits(&[*h1, *h2])? as i64;
            let m = digits(&[*m1, *m2])? as i64;
            if h > 23 || m > 59 {
                return None;
            }
            let off = h * 3600 + m * 60;
            if *sign == b'+' {
                off
            } else {
                -off
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second.min(59) - offset_secs;
    Some(UnixMillis(secs * 1000 + millis))
}

fn digits(b: &[u8]) -> Option<u32> {
    let mut v = 0u32;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Some(v)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`].
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_api_spellings() {
        let t = UnixMillis(1_763_629_371_000); // 2025-11-20T09:02:51Z
        assert_eq!(parse_creation_time("2025-11-20T09:02:51"), Some(t));
        assert_eq!(parse_creation_time("2025-11-20T09:02:51Z"), Some(t));
        assert_eq!(
            parse_creation_time("2025-11-20T09:02:51.250Z"),
            Some(UnixMillis(t.0 + 250))
        );
        assert_eq!(parse_creation_time("2025-11-20T10:02:51+01:00"), Some(t));
        assert_eq!(
            parse_creation_time("2025-11-20T09:02:51.1234567"),
            Some(UnixMillis(t.0 + 123))
        );
    }

    #[test]
    fn rejects_what_is_not_a_time() {
        for bad in [
            "",
            "yesterday",
            "2025-13-01T00:00:00",
            "2025-02-29T00:00:00",
            "2025-11-20T24:00:00",
            "2025-11-20T09:02:51Q",
            "2025-11-20T09:02:51.",
            "2025-11-2OT09:02:51",
        ] {
            assert_eq!(parse_creation_time(bad), None, "{bad}");
        }
        assert!(parse_creation_time("2024-02-29T00:00:00").is_some());
    }

    #[test]
    fn civil_round_trip_and_api_format() {
        for days in [-800_000, -1, 0, 1, 19_000, 20_412, 2_000_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(
            UnixMillis(1_763_629_371_999).to_api_string(),
            "2025-11-20T09:02:51"
        );
    }
}
