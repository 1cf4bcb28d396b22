//! Durations spelled the Prometheus way: `30s`, `5m`, `24h`, `29d`, `1w`, `1h30m`.

use std::time::Duration;

/// Parses a Prometheus-style duration; units ms, s, m, h, d, w, y, largest first.
pub fn parse(s: &str) -> Result<Duration, String> {
    let expected = || format!("expected a duration like 30s, 5m, 24h or 29d, got {s:?}");
    if s.is_empty() {
        return Err(expected());
    }
    let units: [(&str, u64); 7] = [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("ms", 1),
        ("m", 60_000),
        ("s", 1000),
    ];
    let mut rest = s;
    let mut total: u64 = 0;
    let mut last_rank = usize::MAX;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let n: u64 = rest[..digits].parse().map_err(|_| expected())?;
        rest = &rest[digits..];
        let (rank, (unit, ms)) = units
            .iter()
            .enumerate()
            .find(|(_, (u, _))| rest.starts_with(u))
            .ok_or_else(expected)?;
        // "ms" is listed before "m" so it matches first; order of magnitude is checked below.
        let magnitude = [0, 1, 2, 3, 6, 4, 5][rank];
        if last_rank != usize::MAX && magnitude <= last_rank {
            return Err(expected());
        }
        last_rank = magnitude;
        total = n
            .checked_mul(*ms)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(expected)?;
        rest = &rest[unit.len()..];
    }
    Ok(Duration::from_millis(total))
}

/// Formats a duration in the largest whole units (`29d`, `1h30m`), for messages and docs.
pub fn format(d: Duration) -> String {
    let mut ms = d.as_millis() as u64;
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ] {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prometheus_durations() {
        assert_eq!(parse("29d"), Ok(Duration::from_secs(29 * 86_400)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("1s500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("5m"), Ok(Duration::from_secs(300)));
        for bad in ["", "5", "m", "5x", "30m1h", "-1s", "1.5h"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(format(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format(Duration::from_secs(29 * 86_400)), "29d");
    }
}
