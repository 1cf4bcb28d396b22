//! Small encodings shared by the client and the simulator: base64 (standard and URL-safe),
//! PEM blocks, and the few DER fields of an X.509 certificate the exporter reads.
//!
//! Invariant: pure functions of their input, a leaf of the stage order; malformed input gives
//! `None`, never a panic.

const STANDARD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn encode(data: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(alphabet[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else if pad {
                out.push('=');
            }
        }
    }
    out
}

/// Standard base64 with padding.
pub fn base64(data: &[u8]) -> String {
    encode(data, STANDARD, true)
}

/// URL-safe base64 without padding (JWT).
pub fn base64url(data: &[u8]) -> String {
    encode(data, URL_SAFE, false)
}

/// Decodes standard or URL-safe base64, padded or not; whitespace is skipped.
pub fn unbase64(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|c| !c.is_ascii_whitespace()) {
        if c == b'=' {
            break;
        }
        let v = STANDARD
            .iter()
            .position(|&b| b == c)
            .or_else(|| URL_SAFE.iter().position(|&b| b == c))? as u32;
        acc = acc << 6 | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// The DER bytes of every PEM block labelled `label` (e.g. `CERTIFICATE`, `PRIVATE KEY`).
pub fn pem_blocks(pem: &str, label: &str) -> Vec<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let mut blocks = Vec::new();
    let mut rest = pem;
    while let Some(start) = rest.find(&begin) {
        let body = &rest[start + begin.len()..];
        let Some(stop) = body.find(&end) else { break };
        if let Some(der) = unbase64(&body[..stop]) {
            blocks.push(der);
        }
        rest = &body[stop + end.len()..];
    }
    blocks
}

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

/// `notAfter` of an X.509 certificate, as RFC 3339 text in UTC (`2030-01-31T23:59:59Z`).
/// Text rather than a number so that this leaf module needs no calendar: the caller parses
/// it with the event decoder's time parser, one layer up.
pub fn certificate_not_after(cert: &[u8]) -> Option<String> {
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
    // Digits only, so the byte slices below fall on character boundaries.
    if !full.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(format!(
        "{}-{}-{}T{}:{}:{}Z",
        &full[0..4],
        &full[4..6],
        &full[6..8],
        &full[8..10],
        &full[10..12],
        &full[12..14]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_in_both_alphabets() {
        for data in [
            &b""[..],
            b"f",
            b"fo",
            b"foo",
            b"\xfb\xff\xfe",
            b",2020-08-13T07:55:00Z,2020-08-13T09:00:00Z,1,,",
        ] {
            assert_eq!(unbase64(&base64(data)).unwrap(), data);
            assert_eq!(unbase64(&base64url(data)).unwrap(), data);
        }
        assert_eq!(
            base64(b",2020-08-13T07:55:00Z,2020-08-13T09:00:00Z,1,,"),
            "LDIwMjAtMDgtMTNUMDc6NTU6MDBaLDIwMjAtMDgtMTNUMDk6MDA6MDBaLDEsLA=="
        );
        assert_eq!(base64url(b"\xfb\xff"), "-_8");
        assert_eq!(unbase64("not*base64"), None);
    }

    #[test]
    fn pem_blocks_are_found_by_label() {
        let pem = "junk\n-----BEGIN CERTIFICATE-----\nAQID\n-----END CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----\nBAU=\n-----END PRIVATE KEY-----\n";
        assert_eq!(pem_blocks(pem, "CERTIFICATE"), vec![vec![1, 2, 3]]);
        assert_eq!(pem_blocks(pem, "PRIVATE KEY"), vec![vec![4, 5]]);
        assert!(pem_blocks(pem, "RSA PRIVATE KEY").is_empty());
    }
}
