//! How a stored entry is matched against the key a lookup asks for.
//!
//! [`ShardedMap`](crate::ShardedMap) keeps each key's full hash beside it, so that growing a
//! table never calls the user's `Hash`. Comparing that hash before the key saves an `Eq` call on
//! the rare slots whose 7-bit tag matches another key's, which pays off when `Eq` is costly (it
//! chases a pointer, or compares many bytes) and is wasted work otherwise: a hit must compare
//! the key anyway. Which check runs first never changes the result, since equal keys have equal
//! hashes. ([`HashMap`](crate::HashMap) stores no hash, to keep its inline entries small: after
//! a tag match it compares keys.)

use equivalent::Equivalent;
use std::mem::{needs_drop, size_of};

/// Whether lookups for `K` compare the stored hash before the key: yes for keys that own heap
/// data or are large (`String`, `Vec`, `Arc`, big arrays), no for small plain keys (integers,
/// `char`, small tuples). For the latter the stored hash is not even read, so an entry laid out
/// with its hash last is read from its first 16 bytes alone. (Borrowed keys such as `&str` also
/// count as small and plain: their `Eq` does chase a pointer, but only on the 1 in 128 slots
/// whose tag matches another key's.)
const fn hash_first<K>() -> bool {
    needs_drop::<K>() || size_of::<K>() > 2 * size_of::<u64>()
}

/// Whether the entry holding `stored_key` (whose hash is `stored_hash`) is `key` (whose hash is
/// `hash`).
#[inline(always)]
pub(crate) fn matches<K, Q>(stored_hash: &u64, stored_key: &K, hash: u64, key: &Q) -> bool
where
    Q: Equivalent<K> + ?Sized,
{
    if hash_first::<K>() {
        *stored_hash == hash && key.equivalent(stored_key)
    } else {
        key.equivalent(stored_key)
    }
}
