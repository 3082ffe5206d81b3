//! The cleaner's key → newest-offset map with a fixed memory budget (Kafka's `SkimpyOffsetMap`).
//!
//! Keys are not stored: each is reduced to a 16-byte hash (XXH3-128; Kafka uses MD5, also 16 bytes),
//! so a slot costs 24 bytes (hash + offset) and the number of slots is the budget divided by that.
//! Open addressing with linear probing; the map counts as full at `load_factor` of its slots
//! (`log.cleaner.io.buffer.load.factor`, 0.9), which keeps probe chains short. A hash collision of
//! two different keys (odds about 2^-128 per pair) would make the older key look superseded.
//!
//! Lives in memory only; nothing of it survives a crash (the next clean rebuilds it).

/// Bytes one slot takes: a 16-byte key hash and an 8-byte offset.
pub const BYTES_PER_ENTRY: usize = 24;

/// A fixed-capacity map from key hash to the newest offset seen for that key.
#[derive(Debug)]
pub struct OffsetMap {
    /// Key hashes per slot; meaningful only where `offsets` is not -1.
    hashes: Vec<u128>,
    /// Offset per slot; -1 marks an empty slot.
    offsets: Vec<i64>,
    /// Slots in use.
    entries: usize,
    /// Entries at which the map counts as full (`slots × load factor`).
    max_entries: usize,
    /// Largest offset put (-1 when empty): records above it were not mapped (Kafka's `latestOffset`).
    latest_offset: i64,
}

/// The hash a key is stored under.
pub fn key_hash(key: &[u8]) -> u128 {
    xxhash_rust::xxh3::xxh3_128(key)
}

impl OffsetMap {
    /// A map using at most `memory_bytes` for its slots (at least one slot), full at `load_factor`.
    pub fn new(memory_bytes: usize, load_factor: f64) -> OffsetMap {
        let slots = (memory_bytes / BYTES_PER_ENTRY).max(1);
        let max_entries = ((slots as f64 * load_factor.clamp(0.0, 1.0)) as usize).clamp(1, slots);
        OffsetMap {
            hashes: vec![0; slots],
            offsets: vec![-1; slots],
            entries: 0,
            max_entries,
            latest_offset: -1,
        }
    }

    /// Number of slots.
    pub fn slots(&self) -> usize {
        self.offsets.len()
    }

    /// Number of distinct key hashes held.
    pub fn len(&self) -> usize {
        self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// Whether no new key may be added (the load factor is reached).
    pub fn is_full(&self) -> bool {
        self.entries >= self.max_entries
    }

    /// Largest offset put, -1 when none.
    pub fn latest_offset(&self) -> i64 {
        self.latest_offset
    }

    /// Forgets everything (the memory stays allocated for the next pass).
    pub fn clear(&mut self) {
        self.offsets.fill(-1);
        self.entries = 0;
        self.latest_offset = -1;
    }

    fn slot_of(&self, hash: u128) -> usize {
        let slots = self.offsets.len() as u128;
        (hash % slots) as usize
    }

    /// Records `offset` as the newest for `hash`. Returns false (and changes nothing) for a new key
    /// when the map is full; an existing key is always updated.
    pub fn put(&mut self, hash: u128, offset: i64) -> bool {
        let slots = self.offsets.len();
        let mut i = self.slot_of(hash);
        for _ in 0..slots {
            let (Some(o), Some(h)) = (self.offsets.get(i).copied(), self.hashes.get(i).copied()) else {
                return false;
            };
            if o == -1 {
                if self.is_full() {
                    return false;
                }
                self.hashes[i] = hash;
                self.offsets[i] = offset;
                self.entries += 1;
                self.latest_offset = self.latest_offset.max(offset);
                return true;
            }
            if h == hash {
                self.offsets[i] = offset;
                self.latest_offset = self.latest_offset.max(offset);
                return true;
            }
            i = (i + 1) % slots;
        }
        false
    }

    /// The newest offset recorded for `hash`, -1 when none (Kafka's `get`).
    pub fn get(&self, hash: u128) -> i64 {
        let slots = self.offsets.len();
        let mut i = self.slot_of(hash);
        for _ in 0..slots {
            match (self.offsets.get(i).copied(), self.hashes.get(i).copied()) {
                (Some(-1), _) | (None, _) | (_, None) => return -1,
                (Some(o), Some(h)) if h == hash => return o,
                _ => i = (i + 1) % slots,
            }
        }
        -1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_fixes_the_slots_and_the_load_factor_the_capacity() {
        let mut m = OffsetMap::new(24 * 100, 0.9);
        assert_eq!(m.slots(), 100);
        for k in 0..90u32 {
            assert!(m.put(key_hash(&k.to_be_bytes()), i64::from(k)), "key {k}");
        }
        assert!(m.is_full());
        assert!(!m.put(key_hash(b"one more"), 1000), "a new key beyond the load factor is refused");
        // An existing key is still updated when full.
        assert!(m.put(key_hash(&5u32.to_be_bytes()), 2000));
        assert_eq!(m.get(key_hash(&5u32.to_be_bytes())), 2000);
        assert_eq!(m.get(key_hash(b"one more")), -1);
        assert_eq!(m.latest_offset(), 2000);
        assert_eq!(m.len(), 90);
        m.clear();
        assert!(m.is_empty());
        assert_eq!(m.get(key_hash(&5u32.to_be_bytes())), -1);
    }

    #[test]
    fn newest_offset_wins_per_key() {
        let mut m = OffsetMap::new(1 << 12, 0.9);
        m.put(key_hash(b"a"), 1);
        m.put(key_hash(b"b"), 2);
        m.put(key_hash(b"a"), 3);
        assert_eq!(m.get(key_hash(b"a")), 3);
        assert_eq!(m.get(key_hash(b"b")), 2);
        assert_eq!(m.len(), 2);
    }
}
