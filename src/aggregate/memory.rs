//! Where the aggregator's heap goes: bytes held per family, per interner and by the dedup
//! set, for the tenant-scale benchmark (issue 15, target 5) and for anyone sizing caps.
//!
//! Invariants:
//! - figures are computed from the containers' capacities (hash tables exactly, through
//!   their allocation size) and from the allocator's chunk sizes of what each entry owns
//!   (strings, vectors, sketches), never by walking the allocator: they are estimates that
//!   the benchmark sets beside the process's measured total;
//! - every container of the state is counted once, under the family it stores or the
//!   interner or dedup set it is; a structure that serves several families (the interned ids)
//!   is a part of its own.

use crate::catalogue::Family;

/// Bytes glibc's malloc reserves for a request of `n` bytes: 8 bytes of header, a multiple of
/// 16, at least 32. Nothing for an empty request (no allocation is made).
pub fn chunk(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        (n + 8).next_multiple_of(16).max(32)
    }
}

/// Heap bytes owned by a value beyond its own size.
pub trait HeapSize {
    fn heap_bytes(&self) -> usize;
}

impl HeapSize for String {
    fn heap_bytes(&self) -> usize {
        chunk(self.capacity())
    }
}

impl HeapSize for Box<str> {
    fn heap_bytes(&self) -> usize {
        chunk(self.len())
    }
}

/// The interners, by what they hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Interned {
    Workspaces,
    Reports,
    Activities,
    ItemIds,
    ItemTypes,
    UserLabels,
}

impl Interned {
    pub fn as_str(self) -> &'static str {
        match self {
            Interned::Workspaces => "workspace ids",
            Interned::Reports => "report ids",
            Interned::Activities => "activities",
            Interned::ItemIds => "item ids",
            Interned::ItemTypes => "item types",
            Interned::UserLabels => "user labels",
        }
    }
}

/// What holds some of the heap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    /// The state behind one family's series.
    Family(&'static Family),
    /// An interner of label values, shared by the families keyed by them.
    Interner(Interned),
    /// The event ids of the dedup window.
    Dedup,
    /// The views per report of the last day (the status page).
    RecentViews,
}

/// One holder's heap: bytes, and the entries they hold (series, distinct users, ids, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeapPart {
    pub holder: Holder,
    pub entries: usize,
    pub bytes: usize,
}

/// The aggregator's heap, part by part.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeapUsage {
    pub parts: Vec<HeapPart>,
}

impl HeapUsage {
    /// Adds `bytes` and `entries` to `holder` (a family stored in several containers adds up).
    pub fn add(&mut self, holder: Holder, entries: usize, bytes: usize) {
        match self.parts.iter_mut().find(|p| p.holder == holder) {
            Some(part) => {
                part.entries += entries;
                part.bytes += bytes;
            }
            None => self.parts.push(HeapPart {
                holder,
                entries,
                bytes,
            }),
        }
    }

    /// Adds the heap of a family's state.
    pub fn family(&mut self, family: &'static Family, entries: usize, bytes: usize) {
        self.add(Holder::Family(family), entries, bytes);
    }

    pub fn total(&self) -> usize {
        self.parts.iter().map(|p| p.bytes).sum()
    }

    pub fn get(&self, holder: Holder) -> Option<&HeapPart> {
        self.parts.iter().find(|p| p.holder == holder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_what_glibc_reserves() {
        // glibc: request + 8 bytes of header, rounded up to 16, at least 32 (MINSIZE).
        assert_eq!(
            [0, 1, 24, 25, 36, 40, 41].map(chunk),
            [0, 32, 32, 48, 48, 48, 64]
        );
    }
}
