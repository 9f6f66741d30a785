//! Entries of the lock-free-read map, stored inline in the table's entry array.

/// One key-value pair.
///
/// Immutable once published: a writer that changes a value writes a new entry into an unused
/// slot and marks the old slot DELETED (or FORWARDED), so a reader holding the old entry keeps
/// a consistent key and value until its guard goes away (see `table.rs`).
///
/// The key's hash is not stored: a migration hashes each entry it moves again, as hashbrown's
/// growth does. Storing it took 8 of a `u64 -> u64` entry's 24 bytes; without it, a growing
/// map touches a third fewer bytes and faults in a third fewer pages: rapid-grow to 2^21 keys
/// ran 1.12x as fast at 1 thread (0.99-1.48, 8 alternations of the two builds) and 1.16x at 2
/// (1.09-1.45, 6), though a migration now runs about 20% more instructions.
pub(crate) struct Node<K, V> {
    pub(crate) key: K,
    pub(crate) value: V,
}
