//! Capped series storage: interned label values, capped counters and capped info maps.
//!
//! Invariants:
//! - a family never holds more than its cap of label sets; samples past the cap go to one
//!   overflow series and are counted as dropped, so the family's sum stays exact;
//! - a label set, once admitted, stays until it has been idle (no event) for longer than the
//!   series retention: then `expire` removes it, and it frees its slot under the cap. A counter
//!   that comes back later starts again from 0, a reset Prometheus' `rate`/`increase` handle;
//! - label values are interned once (`u32` keys), so per-event work hashes small integers;
//!   an id no series refers to any more is released and its key reused.

use std::hash::Hash;

use hashbrown::HashMap;

use super::memory::HeapSize;

/// Longest label value exposed, in bytes. Longer values (never sent by the real API) are cut
/// at a character boundary, so one hostile event cannot make every scrape megabytes long.
pub const MAX_LABEL_BYTES: usize = 1024;

/// `s` cut to [`MAX_LABEL_BYTES`] at a character boundary, and whether it was cut.
pub fn clip(s: &str) -> (&str, bool) {
    if s.len() <= MAX_LABEL_BYTES {
        return (s, false);
    }
    let mut end = MAX_LABEL_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    (&s[..end], true)
}

/// Whether a series last touched at `t` outlives `cutoff`; the times kept are folded into
/// `oldest`.
fn kept(t: i64, cutoff: i64, oldest: &mut i64) -> bool {
    let kept = t >= cutoff;
    if kept {
        *oldest = (*oldest).min(t);
    }
    kept
}

/// Index of an interned label value.
pub type Sym = u32;

/// Interns strings up to a cap of live ones; past it, `intern` answers `None` (the overflow).
/// Released ids are reused.
#[derive(Debug)]
pub struct Interner {
    ids: HashMap<Box<str>, Sym>,
    /// By id; `None` for a released id (listed in `free`).
    names: Vec<Option<Box<str>>>,
    free: Vec<Sym>,
    cap: usize,
}

impl Interner {
    pub fn new(cap: usize) -> Self {
        Interner {
            ids: HashMap::new(),
            names: Vec::new(),
            free: Vec::new(),
            cap,
        }
    }

    pub fn intern(&mut self, s: &str) -> Option<Sym> {
        if let Some(&id) = self.ids.get(s) {
            return Some(id);
        }
        if self.len() >= self.cap {
            return None;
        }
        let id = match self.free.pop() {
            Some(id) => {
                self.names[id as usize] = Some(s.into());
                id
            }
            None => {
                self.names.push(Some(s.into()));
                (self.names.len() - 1) as Sym
            }
        };
        self.ids.insert(s.into(), id);
        Some(id)
    }

    pub fn name(&self, id: Sym) -> &str {
        self.names
            .get(id as usize)
            .and_then(|n| n.as_deref())
            .unwrap_or("")
    }

    /// Interned strings still held.
    pub fn len(&self) -> usize {
        self.names.len() - self.free.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Heap bytes held: the index, the table by id and each string (kept twice: as the
    /// index's key and in the table).
    pub fn heap_bytes(&self) -> usize {
        let strings: usize = self
            .names
            .iter()
            .flatten()
            .map(|n| 2 * n.heap_bytes())
            .sum();
        self.ids.allocation_size()
            + self.names.capacity() * std::mem::size_of::<Option<Box<str>>>()
            + self.free.capacity() * std::mem::size_of::<Sym>()
            + strings
    }

    /// Releases every id not in `used`; answers how many were released.
    pub fn release_unused(&mut self, used: &hashbrown::HashSet<Sym>) -> usize {
        let mut released = 0;
        for (id, slot) in self.names.iter_mut().enumerate() {
            let id = id as Sym;
            if slot.is_some() && !used.contains(&id) {
                if let Some(name) = slot.take() {
                    self.ids.remove(&name);
                }
                self.free.push(id);
                released += 1;
            }
        }
        released
    }

    /// The interned strings in id order (released ids as empty strings), for the state.
    pub fn export(&self) -> Vec<String> {
        self.names
            .iter()
            .map(|n| n.as_deref().unwrap_or("").to_string())
            .collect()
    }

    /// The released ids, for the state.
    pub fn released(&self) -> Vec<Sym> {
        self.free.clone()
    }

    /// Rebuilds an interner from [`Interner::export`] and [`Interner::released`]; ids keep
    /// their values. Ids out of range in `released` are ignored.
    pub fn import(names: Vec<String>, released: &[Sym], cap: usize) -> Self {
        let free: hashbrown::HashSet<Sym> = released
            .iter()
            .copied()
            .filter(|id| (*id as usize) < names.len())
            .collect();
        let mut interner = Interner::new(cap);
        for (id, name) in names.into_iter().enumerate() {
            let id = id as Sym;
            if free.contains(&id) || interner.ids.contains_key(name.as_str()) {
                // A duplicate name cannot come from `export`; keeping its slot free is safe.
                interner.names.push(None);
                interner.free.push(id);
            } else {
                interner.ids.insert(name.as_str().into(), id);
                interner.names.push(Some(name.into()));
            }
        }
        interner
    }
}

/// The durable form of a [`CappedCounters`].
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct CountersState<K> {
    pub values: Vec<(K, u64)>,
    pub overflow: u64,
    pub dropped: u64,
    /// Newest event time (Unix ms) of each entry of `values`, in the same order; absent in
    /// states written before series expired.
    #[serde(default)]
    pub touched: Vec<i64>,
}

/// The durable form of a [`CappedInfo`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InfoState<K, V> {
    pub values: Vec<(K, V, i64)>,
    pub dropped: u64,
}

/// A counter family with a series cap.
#[derive(Debug)]
pub struct CappedCounters<K> {
    /// Value and newest event time (Unix ms) of each series.
    values: HashMap<K, (u64, i64)>,
    /// At or before every series' time: a sweep whose cutoff is at or before it has nothing
    /// to remove and skips the walk (most hourly sweeps, with a retention of weeks).
    oldest: i64,
    cap: usize,
    overflow: u64,
    dropped: u64,
}

impl<K: Hash + Eq + Copy> CappedCounters<K> {
    pub fn new(cap: usize) -> Self {
        CappedCounters {
            values: HashMap::new(),
            oldest: i64::MAX,
            cap,
            overflow: 0,
            dropped: 0,
        }
    }

    /// Adds one to `key`'s series for an event at `time` (Unix ms); `None` (a label value
    /// past its interner's cap) and new keys past the cap go to the overflow series.
    pub fn inc(&mut self, key: Option<K>, time: i64) {
        if let Some(key) = key {
            let full = self.values.len() >= self.cap;
            if let Some((v, t)) = self.values.get_mut(&key) {
                *v += 1;
                *t = (*t).max(time);
                return;
            }
            if !full {
                self.values.insert(key, (1, time));
                self.oldest = self.oldest.min(time);
                return;
            }
        }
        self.overflow += 1;
        self.dropped += 1;
    }

    pub fn iter(&self) -> impl Iterator<Item = (&K, u64)> {
        self.values.iter().map(|(k, (v, _))| (k, *v))
    }

    /// Series held (the overflow series aside).
    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.values.allocation_size()
    }

    /// Removes the series whose newest event is older than `cutoff`; answers how many.
    pub fn expire(&mut self, cutoff: i64) -> u64 {
        if cutoff <= self.oldest {
            return 0;
        }
        let before = self.values.len();
        let mut oldest = i64::MAX;
        self.values
            .retain(|_, (_, t)| kept(*t, cutoff, &mut oldest));
        self.oldest = oldest;
        (before - self.values.len()) as u64
    }

    /// Value of the overflow series, `None` while nothing overflowed.
    pub fn overflow(&self) -> Option<u64> {
        (self.overflow > 0).then_some(self.overflow)
    }

    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    pub fn export(&self) -> CountersState<K> {
        let (values, touched) = self.values.iter().map(|(k, (v, t))| ((*k, *v), *t)).unzip();
        CountersState {
            values,
            overflow: self.overflow,
            dropped: self.dropped,
            touched,
        }
    }

    /// Restores counters; label sets already admitted stay, even past a smaller cap. Series
    /// of a state without event times count as touched at `touched_default`.
    pub fn import(state: CountersState<K>, cap: usize, touched_default: i64) -> Self {
        let times = state.touched.len() == state.values.len();
        CappedCounters {
            values: state
                .values
                .into_iter()
                .enumerate()
                .map(|(i, (k, v))| {
                    let t = if times {
                        state.touched[i]
                    } else {
                        touched_default
                    };
                    (k, (v, t))
                })
                .collect(),
            // Unknown until the first sweep walks them.
            oldest: i64::MIN,
            cap,
            overflow: state.overflow,
            dropped: state.dropped,
        }
    }
}

/// An info family: one value per key, the one carried by the newest event; capped.
#[derive(Debug)]
pub struct CappedInfo<K, V> {
    values: HashMap<K, (V, i64)>,
    /// At or before every series' time: a sweep whose cutoff is at or before it has nothing
    /// to remove and skips the walk (most hourly sweeps, with a retention of weeks).
    oldest: i64,
    cap: usize,
    dropped: u64,
}

impl<K: Hash + Eq + Copy, V: PartialEq> CappedInfo<K, V> {
    pub fn new(cap: usize) -> Self {
        CappedInfo {
            values: HashMap::new(),
            oldest: i64::MAX,
            cap,
            dropped: 0,
        }
    }

    /// Records `value` for `key` as of `time`, unless a newer event already named it.
    /// `make` builds the owned value only when it is stored.
    pub fn update<Q: ?Sized>(
        &mut self,
        key: Option<K>,
        value: &Q,
        time: i64,
        make: impl FnOnce(&Q) -> V,
    ) where
        V: PartialEq<Q>,
    {
        let Some(key) = key else {
            self.dropped += 1;
            return;
        };
        if let Some((old, t)) = self.values.get_mut(&key) {
            if time >= *t {
                *t = time;
                if *old != *value {
                    *old = make(value);
                }
            }
            return;
        }
        if self.values.len() >= self.cap {
            self.dropped += 1;
            return;
        }
        self.values.insert(key, (make(value), time));
        self.oldest = self.oldest.min(time);
    }

    pub fn get(&self, key: &K) -> Option<&V> {
        self.values.get(key).map(|(v, _)| v)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.values.iter().map(|(k, (v, _))| (k, v))
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Heap bytes held, the values' own included.
    pub fn heap_bytes(&self) -> usize
    where
        V: HeapSize,
    {
        let owned: usize = self.values.values().map(|(v, _)| v.heap_bytes()).sum();
        self.values.allocation_size() + owned
    }

    /// Removes the entries last named before `cutoff`; answers how many.
    pub fn expire(&mut self, cutoff: i64) -> u64 {
        if cutoff <= self.oldest {
            return 0;
        }
        let before = self.values.len();
        let mut oldest = i64::MAX;
        self.values
            .retain(|_, (_, t)| kept(*t, cutoff, &mut oldest));
        self.oldest = oldest;
        (before - self.values.len()) as u64
    }

    pub fn overflowed(&self) -> bool {
        self.dropped > 0
    }

    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    pub fn export(&self) -> InfoState<K, V>
    where
        V: Clone,
    {
        InfoState {
            values: self
                .values
                .iter()
                .map(|(k, (v, t))| (*k, v.clone(), *t))
                .collect(),
            dropped: self.dropped,
        }
    }

    pub fn import(state: InfoState<K, V>, cap: usize) -> Self {
        CappedInfo {
            values: state
                .values
                .into_iter()
                .map(|(k, v, t)| (k, (v, t)))
                .collect(),
            oldest: i64::MIN,
            cap,
            dropped: state.dropped,
        }
    }
}

/// Which timestamp of a key a [`CappedTimes`] keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    Latest,
    Earliest,
}

impl Keep {
    fn pick(self, old: i64, new: i64) -> i64 {
        match self {
            Keep::Latest => old.max(new),
            Keep::Earliest => old.min(new),
        }
    }
}

/// The durable form of a [`CappedTimes`].
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct TimesState<K> {
    pub values: Vec<(K, i64)>,
    pub overflow: Option<i64>,
    pub dropped: u64,
}

/// One timestamp per key — the latest or the earliest recorded — with a series cap; keys past
/// the cap (or not interned) share one overflow timestamp, so "the newest anywhere" stays true.
#[derive(Debug)]
pub struct CappedTimes<K> {
    values: HashMap<K, i64>,
    /// At or before every series' time: a sweep whose cutoff is at or before it has nothing
    /// to remove and skips the walk (most hourly sweeps, with a retention of weeks).
    oldest: i64,
    overflow: Option<i64>,
    cap: usize,
    dropped: u64,
    keep: Keep,
}

impl<K: Hash + Eq + Copy> CappedTimes<K> {
    pub fn new(cap: usize, keep: Keep) -> Self {
        CappedTimes {
            values: HashMap::new(),
            oldest: i64::MAX,
            overflow: None,
            cap,
            dropped: 0,
            keep,
        }
    }

    fn pick(&self, old: i64, new: i64) -> i64 {
        self.keep.pick(old, new)
    }

    /// Records `time` (Unix ms) for `key`; `None` (a key past an interner's cap) goes to the
    /// overflow. A key already held costs one lookup.
    pub fn record(&mut self, key: Option<K>, time: i64) {
        if let Some(key) = key {
            if let Some(old) = self.values.get_mut(&key) {
                *old = self.keep.pick(*old, time);
                // An earliest time may move back.
                self.oldest = self.oldest.min(*old);
                return;
            }
            if self.values.len() < self.cap {
                self.values.insert(key, time);
                self.oldest = self.oldest.min(time);
                return;
            }
        }
        self.dropped += 1;
        self.overflow = Some(self.overflow.map_or(time, |old| self.pick(old, time)));
    }

    pub fn iter(&self) -> impl Iterator<Item = (&K, i64)> {
        self.values.iter().map(|(k, t)| (k, *t))
    }

    /// Keys with their own series.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.values.allocation_size()
    }

    /// Removes the keys whose kept time is before `cutoff` (meant for [`Keep::Latest`], where
    /// the kept time is the newest event); answers how many.
    pub fn expire(&mut self, cutoff: i64) -> u64 {
        if cutoff <= self.oldest {
            return 0;
        }
        let before = self.values.len();
        let mut oldest = i64::MAX;
        self.values.retain(|_, t| kept(*t, cutoff, &mut oldest));
        self.oldest = oldest;
        (before - self.values.len()) as u64
    }

    /// The timestamp kept for `key`, if it has its own series.
    pub fn get(&self, key: &K) -> Option<i64> {
        self.values.get(key).copied()
    }

    /// The overflow series' timestamp, when any key went past the cap.
    pub fn overflow(&self) -> Option<i64> {
        self.overflow
    }

    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    pub fn export(&self) -> TimesState<K> {
        TimesState {
            values: self.values.iter().map(|(k, t)| (*k, *t)).collect(),
            overflow: self.overflow,
            dropped: self.dropped,
        }
    }

    pub fn import(state: TimesState<K>, cap: usize, keep: Keep) -> Self {
        CappedTimes {
            values: state.values.into_iter().collect(),
            oldest: i64::MIN,
            overflow: state.overflow,
            cap,
            dropped: state.dropped,
            keep,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_times_keep_the_extreme_and_overflow_past_the_cap() {
        let mut latest = CappedTimes::new(2, Keep::Latest);
        for (k, t) in [(1, 50), (1, 40), (2, 10), (3, 70), (1, 60), (4, 20)] {
            latest.record(Some(k), t);
        }
        latest.record(None, 5);
        let mut got: Vec<_> = latest.iter().map(|(k, t)| (*k, t)).collect();
        got.sort();
        assert_eq!(got, [(1, 60), (2, 10)]);
        assert_eq!((latest.overflow(), latest.dropped()), (Some(70), 3));
        let mut earliest = CappedTimes::new(5, Keep::Earliest);
        for t in [30, 10, 20] {
            earliest.record(Some('a'), t);
        }
        assert_eq!(earliest.iter().collect::<Vec<_>>(), [(&'a', 10)]);
        let again = CappedTimes::import(latest.export(), 2, Keep::Latest);
        assert_eq!(again.overflow(), Some(70));
        assert_eq!(again.iter().count(), 2);
    }

    #[test]
    fn clip_cuts_long_values_at_a_character_boundary() {
        assert_eq!(clip("short"), ("short", false));
        let exact = "x".repeat(MAX_LABEL_BYTES);
        assert_eq!(clip(&exact), (exact.as_str(), false));
        // 'é' is two bytes: 1023 'x' + 'é' straddles the limit, so the cut falls before it.
        let straddling = format!("{}é", "x".repeat(MAX_LABEL_BYTES - 1));
        assert_eq!(
            clip(&straddling),
            (&straddling[..MAX_LABEL_BYTES - 1], true)
        );
    }

    #[test]
    fn counters_overflow_past_the_cap_and_keep_the_sum() {
        let mut c = CappedCounters::new(2);
        for k in [1, 2, 1, 3, 4, 2, 3] {
            c.inc(Some(k), 0);
        }
        c.inc(None, 0);
        let mut admitted: Vec<_> = c.iter().map(|(k, v)| (*k, v)).collect();
        admitted.sort();
        assert_eq!(admitted, vec![(1, 2), (2, 2)]);
        assert_eq!((c.overflow(), c.dropped()), (Some(4), 4));
    }

    #[test]
    fn info_keeps_the_newest_name() {
        let mut i: CappedInfo<u32, String> = CappedInfo::new(1);
        i.update(Some(1), "new", 20, str::to_owned);
        i.update(Some(1), "old", 10, str::to_owned);
        i.update(Some(2), "other", 30, str::to_owned);
        assert_eq!(i.iter().collect::<Vec<_>>(), vec![(&1, &"new".to_string())]);
        assert!(i.overflowed());
        let mut names = Interner::new(1);
        assert_eq!(
            (names.intern("a"), names.intern("b"), names.intern("a")),
            (Some(0), None, Some(0))
        );
    }

    #[test]
    fn released_ids_are_reused_and_survive_the_state() {
        let mut names = Interner::new(2);
        assert_eq!((names.intern("a"), names.intern("b")), (Some(0), Some(1)));
        assert_eq!(names.intern("c"), None, "full");
        let used: hashbrown::HashSet<Sym> = [1].into_iter().collect();
        assert_eq!(names.release_unused(&used), 1);
        assert_eq!(names.len(), 1);
        assert_eq!(names.intern("c"), Some(0), "the released id is reused");
        assert_eq!((names.name(0), names.name(1)), ("c", "b"));
        let _ = names.release_unused(&[0].into_iter().collect());
        let back = Interner::import(names.export(), &names.released(), 2);
        assert_eq!(
            (back.len(), back.name(0), back.released()),
            (1, "c", vec![1])
        );
        let mut back = back;
        assert_eq!((back.intern("b"), back.intern("c")), (Some(1), Some(0)));
    }

    #[test]
    fn idle_counters_expire_and_free_their_place_under_the_cap() {
        let mut c = CappedCounters::new(2);
        c.inc(Some(1), 100);
        c.inc(Some(2), 50);
        c.inc(Some(2), 300);
        assert_eq!(c.expire(200), 1, "key 1 last counted at 100");
        c.inc(Some(3), 400);
        let mut kept: Vec<_> = c.iter().map(|(k, v)| (*k, v)).collect();
        kept.sort();
        assert_eq!(kept, [(2, 2), (3, 1)]);
        assert_eq!(c.overflow(), None, "key 3 took the freed place");
        // A state written before event times were kept: every series counts as touched then.
        let mut old = c.export();
        old.touched.clear();
        let mut back = CappedCounters::import(old, 2, 1_000);
        assert_eq!(back.expire(1_000), 0);
        assert_eq!(back.expire(1_001), 2);
    }
}
