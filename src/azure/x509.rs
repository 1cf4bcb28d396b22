//! The one field of an X.509 certificate the exporter reads: `notAfter`, for the client
//! certificate's expiry metric. A few lines of DER walking, not a certificate parser: the
//! certificate itself is only ever checked by Entra ID.
//!
//! Invariant: malformed DER gives `None`, never a panic or an out-of-bounds read.

/// One DER element: tag, and the contents' range.
fn der_element(der: &[u8], at: usize) -> Option<(u8, usize, usize)> {
    let tag = *der.get(at)?;
    let first = *der.get(at + 1)? as usize;
    let (len, header) = if first < 0x80 {
        (first, 2)
    } else {
        let n = first & 0x7f;
        if n == 0 || n > 4 {
            return None;
        }
        let len = der
            .get(at + 2..at + 2 + n)?
            .iter()
            .fold(0usize, |l, &b| l << 8 | b as usize);
        (len, 2 + n)
    };
    let start = at + header;
    (start + len <= der.len()).then_some((tag, start, start + len))
}

/// `notAfter` of an X.509 certificate, as Unix seconds.
pub fn certificate_not_after(cert: &[u8]) -> Option<i64> {
    let (_, cert_start, _) = der_element(cert, 0)?;
    let (_, tbs_start, tbs_end) = der_element(cert, cert_start)?;
    let mut at = tbs_start;
    let (tag, _, end) = der_element(cert, at)?;
    if tag == 0xA0 {
        at = end; // explicit version
    }
    for _ in 0..3 {
        at = der_element(cert, at)?.2; // serialNumber, signature, issuer
    }
    let (tag, validity, validity_end) = der_element(cert, at)?;
    if tag != 0x30 || validity_end > tbs_end {
        return None;
    }
    let not_before_end = der_element(cert, validity)?.2;
    let (tag, s, e) = der_element(cert, not_before_end)?;
    let text = std::str::from_utf8(&cert[s..e]).ok()?.trim_end_matches('Z');
    // Digits only, so the byte slices below fall on character boundaries (a crafted
    // certificate must not panic the reader).
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let full = match (tag, text.len()) {
        (0x17, 12) => {
            let yy: i64 = text[..2].parse().ok()?;
            format!(
                "{}{}",
                if yy >= 50 { 1900 + yy } else { 2000 + yy },
                &text[2..]
            )
        }
        (0x18, 14) => text.to_string(),
        _ => return None,
    };
    let iso = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &full[0..4],
        &full[4..6],
        &full[6..8],
        &full[8..10],
        &full[10..12],
        &full[12..14]
    );
    crate::decode::time::parse_creation_time(&iso).map(|t| t.0 / 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// rcgen writes `notAfter` (midnight UTC of the day given) as UTCTime before 2050 and GeneralizedTime from 2050 on
    /// (RFC 5280 §4.1.2.5): both forms are read.
    #[test]
    fn not_after_is_read_in_both_time_forms() {
        for (year, unix) in [(2031, 1_956_441_600), (2051, 2_587_593_600)] {
            let mut params = rcgen::CertificateParams::new(vec!["t".into()]).unwrap();
            params.not_after = rcgen::date_time_ymd(year, 12, 31);
            let key = rcgen::KeyPair::generate().unwrap();
            let cert = params.self_signed(&key).unwrap();
            assert_eq!(certificate_not_after(cert.der()), Some(unix), "{year}");
        }
    }

    #[test]
    fn malformed_der_gives_none() {
        for der in [
            &b""[..],
            b"\x30",
            b"\x30\x85\x01\x02\x03\x04\x05",
            b"\x30\x03\x02\x01",
        ] {
            assert_eq!(certificate_not_after(der), None, "{der:?}");
        }
    }
}
