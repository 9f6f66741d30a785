//! Entries of the lock-free-read map, stored inline in the table's entry array.

/// One key-value pair with its full hash (so that moving it to a new table never calls `Hash`).
///
/// Immutable once published: a writer that changes a value writes a new entry into an unused
/// slot and marks the old slot DELETED (or FORWARDED), so a reader holding the old entry keeps
/// a consistent key and value until its guard goes away (see `table.rs`).
///
/// `repr(C)` with the hash last: a lookup of a small plain key reads only the key and the value
/// (see [`key_match`](crate::key_match)), which for `u64 -> u64` are the first 16 bytes.
#[repr(C)]
pub(crate) struct Node<K, V> {
    pub(crate) key: K,
    pub(crate) value: V,
    pub(crate) hash: u64,
}
