//! The `/metrics` body: the format a scraper asked for ([`Format`], from `Accept`), and each
//! family's rendered bytes kept between scrapes ([`RenderCache`]), so a scrape only renders
//! the families that changed since the one before and only concatenates the others (the
//! kube-state-metrics approach, here with no work at all for an unchanged family).
//!
//! Invariants:
//! - a family's chunk is reused only for the same samples: the same shared samples (same
//!   address, still alive) or samples with the same 128-bit digest of names, labels and value
//!   bits; so a body is always byte-identical to rendering the snapshot afresh;
//! - with gzip, each chunk is raw DEFLATE of its own ending in a sync flush (byte-aligned, not
//!   final), with its CRC-32 and length; a body is one gzip member (RFC 1952): a header, the
//!   chunks, a final empty block, and the CRC-32 combined from the chunks' — as pigz joins
//!   blocks compressed apart, so every gzip reader reads it, not only multi-member ones;
//! - a family is rendered and encoded 128 KiB of plain text at a time, so its whole
//!   plain text is never in memory (only the identity encoding keeps it, as its chunk);
//! - scrapes take the cache one at a time, so concurrent scrapes of the same snapshot share
//!   one rendering; a family gone from the snapshot leaves the cache at the next scrape.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use bytes::Bytes;
use flate2::{Compress, Compression, FlushCompress};
use xxhash_rust::xxh3::Xxh3;

use super::{openmetrics, text};
use crate::catalogue::{Family, FamilySamples, Sample, Samples, Snapshot};

/// The exposition format of a scrape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Prometheus text format 0.0.4, the default.
    Text,
    /// OpenMetrics 1.0.0, when the scraper asks for it.
    OpenMetrics,
}

impl Format {
    /// OpenMetrics when `Accept` names `application/openmetrics-text` (version 1.0.0 or no
    /// version) with a weight above 0 and at least that of the text format (`text/plain`,
    /// `text/*` or `*/*`); text 0.0.4 otherwise. Prometheus sends
    /// `application/openmetrics-text;version=1.0.0,…,text/plain;version=0.0.4;q=0.5,*/*;q=0.1`.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Text;
        };
        let (mut openmetrics, mut text) = (0.0f32, 0.0f32);
        for range in accept.split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or("").to_ascii_lowercase();
            let (mut weight, mut version) = (1.0f32, None);
            for param in parts {
                let (key, value) = param.split_once('=').unwrap_or((param, ""));
                let value = value.trim().trim_matches('"');
                match key.trim().to_ascii_lowercase().as_str() {
                    "q" => weight = value.parse().unwrap_or(0.0),
                    "version" => version = Some(value.to_string()),
                    _ => {}
                }
            }
            let slot = match media.as_str() {
                "application/openmetrics-text"
                    if version.as_deref().is_none_or(|v| v == "1.0.0") =>
                {
                    &mut openmetrics
                }
                "text/plain" if version.as_deref().is_none_or(|v| v == "0.0.4") => &mut text,
                "text/*" | "*/*" => &mut text,
                _ => continue,
            };
            *slot = slot.max(weight);
        }
        if openmetrics > 0.0 && openmetrics >= text {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }

    /// The response's `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => text::CONTENT_TYPE,
            Format::OpenMetrics => openmetrics::CONTENT_TYPE,
        }
    }

    #[cfg(test)]
    fn write_family(self, family: &FamilySamples, out: &mut Vec<u8>) {
        match self {
            Format::Text => text::write_family(family, out),
            Format::OpenMetrics => openmetrics::write_family(family, out),
        }
    }

    fn write_header(self, family: &Family, out: &mut Vec<u8>) {
        match self {
            Format::Text => text::write_header(family, out),
            Format::OpenMetrics => openmetrics::write_header(family, out),
        }
    }

    fn write_sample_line(self, family: &Family, sample: Sample<'_>, out: &mut Vec<u8>) {
        match self {
            Format::Text => text::write_sample_line(family, sample, out),
            Format::OpenMetrics => openmetrics::write_sample_line(family, sample, out),
        }
    }

    /// What follows the families: nothing in text 0.0.4, `# EOF` in OpenMetrics.
    fn end(self) -> &'static [u8] {
        match self {
            Format::Text => b"",
            Format::OpenMetrics => openmetrics::EOF.as_bytes(),
        }
    }
}

/// Whether the body is sent as is or gzip-compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    Identity,
    Gzip,
}

/// Bytes of a body in an encoding: as they are, or DEFLATE to be joined into one gzip member.
#[derive(Clone)]
struct Encoded {
    bytes: Bytes,
    /// CRC-32 and length of the plain bytes, for the gzip trailer.
    crc: crc32fast::Hasher,
    plain_len: u64,
}

impl Encoding {
    /// `plain` in this encoding: the same bytes, or DEFLATE ending in a sync flush.
    fn encode(self, plain: Vec<u8>) -> Encoded {
        let mut encoder = Encoder::new(self);
        encoder.feed(&plain);
        encoder.finish()
    }

    /// The body: `encoded` as they are, or wrapped into one gzip member.
    fn join(self, encoded: Vec<Encoded>) -> Parts {
        match self {
            Encoding::Identity => encoded.into_iter().map(|e| e.bytes).collect(),
            Encoding::Gzip => gzip_member_of(encoded),
        }
    }
}

/// The gzip header of RFC 1952 §2.3: deflate, no flags, no time, fastest level, unknown OS.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 0xff];
/// A final empty block with fixed codes (BFINAL=1, BTYPE=01, end of block), ending the stream.
const DEFLATE_END: [u8; 2] = [0x03, 0x00];

fn gzip_member_of(encoded: Vec<Encoded>) -> Parts {
    let mut crc = crc32fast::Hasher::new();
    let mut plain_len = 0u64;
    let mut parts = Parts::with_capacity(encoded.len() + 2);
    parts.push(Bytes::from_static(&GZIP_HEADER));
    for e in encoded {
        crc.combine(&e.crc);
        plain_len += e.plain_len;
        parts.push(e.bytes);
    }
    let mut trailer = DEFLATE_END.to_vec();
    trailer.extend_from_slice(&crc.finalize().to_le_bytes());
    // ISIZE: the plain length modulo 2^32.
    trailer.extend_from_slice(&(plain_len as u32).to_le_bytes());
    parts.push(Bytes::from(trailer));
    parts
}

/// Plain bytes rendered before they are handed to the encoder: a family's plain text is never
/// whole in memory before it is compressed (the largest families run to tens of MB).
const PIECE_BYTES: usize = 128 * 1024;

/// Takes plain bytes piece by piece and keeps them in an encoding: as they are, or as raw
/// DEFLATE at the fastest level ending in a sync flush (byte-aligned, not final, so chunks
/// compressed apart can follow each other in one stream).
struct Encoder {
    deflate: Option<Compress>,
    out: Vec<u8>,
    crc: crc32fast::Hasher,
    plain_len: u64,
}

impl Encoder {
    fn new(encoding: Encoding) -> Encoder {
        Encoder {
            deflate: (encoding == Encoding::Gzip)
                .then(|| Compress::new(Compression::fast(), false)),
            out: Vec::new(),
            crc: crc32fast::Hasher::new(),
            plain_len: 0,
        }
    }

    fn feed(&mut self, plain: &[u8]) {
        self.plain_len += plain.len() as u64;
        match &mut self.deflate {
            None => self.out.extend_from_slice(plain),
            Some(deflate) => {
                self.crc.update(plain);
                deflate_into(deflate, plain, FlushCompress::None, &mut self.out);
            }
        }
    }

    /// The bytes, kept without spare room: a `Bytes` made from a `Vec` holds its whole capacity.
    fn finish(mut self) -> Encoded {
        if let Some(deflate) = &mut self.deflate {
            deflate_into(deflate, &[], FlushCompress::Sync, &mut self.out);
        }
        self.out.shrink_to_fit();
        Encoded {
            bytes: Bytes::from(self.out),
            crc: self.crc,
            plain_len: self.plain_len,
        }
    }
}

/// Compresses all of `plain` into `out`, then flushes as `flush` asks.
fn deflate_into(deflate: &mut Compress, plain: &[u8], flush: FlushCompress, out: &mut Vec<u8>) {
    let started = deflate.total_in();
    loop {
        let consumed = (deflate.total_in() - started) as usize;
        if out.capacity() - out.len() < 64 {
            out.reserve(out.capacity().max(4096));
        }
        // Compressing into a Vec's spare room cannot fail on valid input.
        let _ = deflate.compress_vec(&plain[consumed..], out, flush);
        let consumed = (deflate.total_in() - started) as usize;
        if consumed == plain.len() && out.len() < out.capacity() {
            return;
        }
    }
}

/// `family` rendered in `format` and kept in `encoding`, piece by piece.
fn render(format: Format, encoding: Encoding, family: &FamilySamples) -> Encoded {
    let mut encoder = Encoder::new(encoding);
    let mut plain = Vec::with_capacity(PIECE_BYTES + 4096);
    format.write_header(family.family, &mut plain);
    for sample in family.samples.iter() {
        format.write_sample_line(family.family, sample, &mut plain);
        if plain.len() >= PIECE_BYTES {
            encoder.feed(&plain);
            plain.clear();
        }
    }
    encoder.feed(&plain);
    encoder.finish()
}

/// A body in parts, to be sent one after the other without being copied into one buffer.
pub type Parts = Vec<Bytes>;

/// One family rendered in one format and encoding, and what it was rendered from.
struct Chunk {
    /// The samples rendered, while anything else holds them: the same address means the same
    /// samples (they never change, and a `Weak` keeps the address from being reused).
    samples: Weak<Samples>,
    digest: u128,
    encoded: Encoded,
}

/// The rendered families of the last scrapes, by family, format and encoding.
#[derive(Default)]
pub struct RenderCache {
    chunks: Mutex<HashMap<(&'static str, Format, Encoding), Chunk>>,
}

impl RenderCache {
    /// The body of `snapshot` in `format` and `encoding`, then `tail` (bytes in `format`,
    /// rendered by the caller: the `process_*` families), then the format's end.
    pub fn body(
        &self,
        snapshot: &Snapshot,
        format: Format,
        encoding: Encoding,
        tail: Vec<u8>,
    ) -> Parts {
        let mut chunks = self.chunks.lock().unwrap_or_else(PoisonError::into_inner);
        let mut encoded = Vec::with_capacity(snapshot.families.len() + 1);
        let mut seen = Vec::with_capacity(snapshot.families.len());
        for family in snapshot.families.iter().filter(|f| !f.samples.is_empty()) {
            let key = (family.family.name, format, encoding);
            seen.push(key);
            encoded.push(chunk(&mut chunks, key, family).encoded.clone());
        }
        chunks.retain(|key, _| key.1 != format || key.2 != encoding || seen.contains(key));
        drop(chunks);
        let mut tail = tail;
        tail.extend_from_slice(format.end());
        if !tail.is_empty() {
            encoded.push(encoding.encode(tail));
        }
        encoding.join(encoded)
    }
}

impl RenderCache {
    /// Heap bytes of the chunks kept (their encoded bytes; the map's own table aside).
    pub fn heap_bytes(&self) -> usize {
        let chunks = self.chunks.lock().unwrap_or_else(PoisonError::into_inner);
        chunks.values().map(|c| c.encoded.bytes.len()).sum()
    }
}

/// The cached chunk of `family`, rendered anew when its samples are not those it was
/// rendered from.
fn chunk<'c>(
    chunks: &'c mut HashMap<(&'static str, Format, Encoding), Chunk>,
    key: (&'static str, Format, Encoding),
    family: &FamilySamples,
) -> &'c Chunk {
    let same_address = |c: &Chunk| {
        c.samples
            .upgrade()
            .is_some_and(|s| Arc::ptr_eq(&s, &family.samples.0))
    };
    if chunks.get(&key).is_some_and(same_address) {
        return &chunks[&key];
    }
    let digest = digest(family);
    let entry = chunks.entry(key).or_insert_with(|| Chunk {
        samples: Weak::new(),
        digest: !digest,
        encoded: key.2.encode(Vec::new()),
    });
    if entry.digest != digest {
        entry.encoded = render(key.1, key.2, family);
        entry.digest = digest;
    }
    entry.samples = Arc::downgrade(&family.samples.0);
    entry
}

/// A 128-bit digest of a family's samples: every label value (with its length, so values
/// cannot run into each other) and the value's bits.
fn digest(family: &FamilySamples) -> u128 {
    let mut hasher = Xxh3::new();
    hasher.update(family.family.name.as_bytes());
    for sample in family.samples.iter() {
        for label in sample.labels() {
            hasher.update(&(label.len() as u64).to_le_bytes());
            hasher.update(label.as_bytes());
        }
        hasher.update(&sample.value.to_bits().to_le_bytes());
    }
    hasher.digest128()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue;
    use flate2::read::GzDecoder;
    use std::io::Read;

    fn snapshot(views: f64) -> Snapshot {
        let mut s = Snapshot::default();
        s.push(&catalogue::EVENTS_PROCESSED, [(vec![], 3.0)]);
        s.push(
            &catalogue::ACTIVITY_EVENTS,
            [
                (vec!["w1".to_string(), "ViewReport".to_string()], views),
                (vec!["w\"2".to_string(), "ExportReport".to_string()], 1.0),
            ],
        );
        s.sort_families();
        s
    }

    fn joined(parts: &Parts) -> Vec<u8> {
        parts.iter().flat_map(|p| p.iter().copied()).collect()
    }

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        // A single-member reader: the body is one gzip member, not several.
        GzDecoder::new(bytes).read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn prometheus_and_openmetrics_accept_headers_are_negotiated_with_their_weights() {
        use Format::*;
        let cases = [
            (None, Text),
            (Some("*/*"), Text),
            (Some("text/plain"), Text),
            // Prometheus 2.x's scrape header.
            (Some("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"), OpenMetrics),
            // Prometheus 3.x with scrape_protocols [OpenMetricsText1.0.0, PrometheusText0.0.4].
            (Some("application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.3"), OpenMetrics),
            (Some("application/openmetrics-text; version=1.0.0"), OpenMetrics),
            (Some("application/openmetrics-text"), OpenMetrics),
            (Some("application/openmetrics-text;version=0.0.1"), Text),
            (Some("application/openmetrics-text;q=0"), Text),
            (Some("text/plain;version=0.0.4;q=0.9,application/openmetrics-text;version=1.0.0;q=0.5"), Text),
            (Some("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3"), Text),
        ];
        for (accept, want) in cases {
            assert_eq!(Format::negotiate(accept), want, "{accept:?}");
        }
    }

    #[test]
    fn a_cached_body_is_that_of_a_fresh_rendering_and_changes_with_its_samples() {
        let cache = RenderCache::default();
        for format in [Format::Text, Format::OpenMetrics] {
            for views in [5.0, 5.0, 6.0] {
                let s = snapshot(views);
                let mut fresh = Vec::new();
                for family in &s.families {
                    format.write_family(family, &mut fresh);
                }
                fresh.extend_from_slice(format.end());
                let plain = cache.body(&s, format, Encoding::Identity, Vec::new());
                assert_eq!(joined(&plain), fresh);
                let gzip = cache.body(&s, format, Encoding::Gzip, Vec::new());
                assert_eq!(gunzip(&joined(&gzip)), fresh);
            }
        }
        let shown = String::from_utf8(joined(&cache.body(
            &snapshot(6.0),
            Format::OpenMetrics,
            Encoding::Identity,
            b"process_threads 4\n".to_vec(),
        )))
        .unwrap();
        assert!(
            shown.contains(
                "powerbi_activity_events_total{workspace_id=\"w1\",activity=\"ViewReport\"} 6\n"
            ),
            "{shown}"
        );
        assert!(shown.ends_with("process_threads 4\n# EOF\n"), "{shown}");
    }

    #[test]
    fn a_family_longer_than_a_piece_is_rendered_whole_in_both_encodings() {
        let n = 20_000;
        let rows = (0..n).map(|i| (vec![format!("w{i}"), "ViewReport".to_string()], i as f64));
        let mut s = Snapshot::default();
        s.push(&catalogue::ACTIVITY_EVENTS, rows);
        // The sample lines, spelled here and sorted as the label values sort.
        let mut want: Vec<String> = (0..n)
            .map(|i| {
                format!("powerbi_activity_events_total{{workspace_id=\"w{i}\",activity=\"ViewReport\"}} {i}")
            })
            .collect();
        want.sort();
        assert!(want.iter().map(|l| l.len() + 1).sum::<usize>() > 4 * PIECE_BYTES);
        let cache = RenderCache::default();
        for encoding in [Encoding::Identity, Encoding::Gzip] {
            let parts = cache.body(&s, Format::OpenMetrics, encoding, Vec::new());
            let body = match encoding {
                Encoding::Identity => joined(&parts),
                Encoding::Gzip => gunzip(&joined(&parts)),
            };
            let body = String::from_utf8(body).unwrap();
            let lines: Vec<&str> = body.lines().filter(|l| !l.starts_with('#')).collect();
            assert_eq!(lines, want, "{encoding:?}");
            assert!(body.ends_with("# EOF\n"));
        }
    }

    #[test]
    fn an_unchanged_family_is_not_rendered_again() {
        let cache = RenderCache::default();
        let s = snapshot(1.0);
        let first = cache.body(&s, Format::Text, Encoding::Gzip, Vec::new());
        // The same samples (a published snapshot served again), then equal samples pushed anew.
        let again = cache.body(&s.clone(), Format::Text, Encoding::Gzip, Vec::new());
        let equal = cache.body(&snapshot(1.0), Format::Text, Encoding::Gzip, Vec::new());
        // Part 0 is the gzip header and the last the trailer; the families lie between.
        let families = |parts: &Parts| parts[1..parts.len() - 1].to_vec();
        for parts in [&again, &equal] {
            assert_eq!(parts.len(), first.len());
            for (a, b) in families(&first).iter().zip(families(parts).iter()) {
                assert_eq!(
                    a.as_ptr(),
                    b.as_ptr(),
                    "the same bytes, not a new rendering"
                );
            }
        }
        let changed = cache.body(&snapshot(2.0), Format::Text, Encoding::Gzip, Vec::new());
        let at = |name: &str| {
            s.families
                .iter()
                .position(|f| f.family.name == name)
                .unwrap()
        };
        let (processed, activity) = (
            at("powerbi_events_processed_total"),
            at("powerbi_activity_events_total"),
        );
        // Part 0 is the gzip header.
        let (processed, activity) = (processed + 1, activity + 1);
        assert_eq!(
            changed[processed].as_ptr(),
            first[processed].as_ptr(),
            "kept"
        );
        assert_ne!(
            changed[activity].as_ptr(),
            first[activity].as_ptr(),
            "rendered"
        );
    }
}
