//! Control bytes, one word per group, matched all at once with plain integer arithmetic.
//!
//! A group's control word holds 8 bytes, byte `i` at bits `8 * i .. 8 * i + 8`; bytes `0..7`
//! describe the group's 7 slots, and byte 7 holds the slots' MOVED bits (bit `i` for slot
//! `i`) and the moved-on hint (bit 7; see [`may_have_moved_on`]), which every slot match masks
//! out. The word is loaded and stored as a whole, so readers
//! see each group's bytes, and a slot's byte together with its MOVED bit, atomically.
//!
//! | slot byte | meaning |
//! |---|---|
//! | `0x80..=0xFF` | FULL: the top bit set, then the top 7 bits of the entry's hash (its *tag*) |
//! | `0x01` | DELETED: a tombstone; probing goes on past it; reusable after a grace period |
//! | `0x03` | FORWARDED: a tombstone whose key moved on to a later slot (see `table.rs`) |
//! | `0x05` | FREE: a tombstone no reader can still be looking at; a writer may use it again |
//! | `0x00` | EMPTY: unused (in a group that never lacked one); probing stops at its group |
//!
//! A slot goes EMPTY → FULL → DELETED (through FORWARDED, for some) → FREE or EMPTY → FULL →
//! ...: its entry is written only while the slot is EMPTY or FREE, and a DELETED slot becomes
//! writable only after a grace period, once no reader can hold its entry (see `table.rs`). It
//! becomes EMPTY again only in a group that still has an EMPTY slot (`Table::recycle`), so a
//! group that has none never gets one back. The tombstones have the bottom bit set and the top
//! bit clear: not EMPTY, not FULL.
//!
//! EMPTY is zero, and so are clear MOVED bits, so a new table is all zero bytes: zeroed memory
//! (fresh pages mapped from the kernel, for a large table; see `table::Zeroed`), instead of
//! being written out in full by the insert that starts the migration.

/// Slots per group: 7 control bytes, and a byte for their MOVED bits.
pub(crate) const GROUP_SLOTS: usize = 7;
pub(crate) const EMPTY: u8 = 0x00;
pub(crate) const DELETED: u8 = 0x01;
pub(crate) const FORWARDED: u8 = 0x03;
pub(crate) const FREE: u8 = 0x05;

/// A group whose 7 slots are EMPTY (and none MOVED).
pub(crate) const ALL_EMPTY: u64 = 0;

/// The top bit of the MOVED byte: set while a slot of the group may have its moved-on bit set.
const MOVED_ON_HINT: u64 = 1 << 63;

/// The MOVED bits, in byte 7.
const MOVED_BITS: u64 = 0x7F << (8 * GROUP_SLOTS);

/// The top bit of each slot's byte (not the MOVED byte's).
const SLOT_HIGH_BITS: u64 = repeat(0x80) >> 8;

const fn repeat(byte: u8) -> u64 {
    u64::from_ne_bytes([byte; 8])
}

/// The tag stored for `hash`: the FULL bit, then the hash's top 7 bits.
#[inline]
pub(crate) fn tag(hash: u64) -> u8 {
    (hash >> 57) as u8 | 0x80
}

/// The slots of one group that satisfy some test, lowest first.
#[derive(Clone, Copy)]
pub(crate) struct BitMask(u64);

impl BitMask {
    #[inline]
    pub(crate) fn any(self) -> bool {
        self.0 != 0
    }

    /// No slot.
    pub(crate) const NONE: Self = Self(0);

    /// Only this slot (`offset < GROUP_SLOTS`).
    #[inline]
    pub(crate) fn single(offset: usize) -> Self {
        debug_assert!(offset < GROUP_SLOTS);
        Self(0x80 << (8 * offset))
    }

    /// Whether every slot of `self` is in `other`.
    #[inline]
    pub(crate) fn is_within(self, other: Self) -> bool {
        self.0 & !other.0 == 0
    }

    /// Only the slots at offsets `first..last` (`first <= last <= GROUP_SLOTS`).
    #[inline]
    pub(crate) fn within(self, first: usize, last: usize) -> Self {
        debug_assert!(first <= last && last <= GROUP_SLOTS);
        let below_last = (1u64 << (8 * last)) - 1;
        let below_first = (1u64 << (8 * first)) - 1;
        Self(self.0 & below_last & !below_first)
    }
}

impl Iterator for BitMask {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        if self.0 == 0 {
            return None;
        }
        let index = self.0.trailing_zeros() as usize / 8;
        self.0 &= self.0 - 1;
        Some(index)
    }
}

/// Slots whose byte equals `tag`. May report a FULL byte right above a real match as matching
/// too (a borrow artefact of the trick); callers compare the key anyway.
#[inline]
pub(crate) fn match_tag(group: u64, tag: u8) -> BitMask {
    let cmp = group ^ repeat(tag);
    BitMask(cmp.wrapping_sub(repeat(0x01)) & !cmp & SLOT_HIGH_BITS)
}

/// Slots that are EMPTY: top bit clear (not FULL) and bottom bit clear (not DELETED). Shifting
/// by 7 moves each byte's bottom bit to its own top bit.
#[inline]
pub(crate) fn match_empty(group: u64) -> BitMask {
    BitMask(!group & !(group << 7) & SLOT_HIGH_BITS)
}

/// Slots that are FREE. Of the bytes a table holds, only FREE has bit 2 set and the top bit
/// clear (EMPTY is 0x00, DELETED 0x01, FORWARDED 0x03, and FULL bytes have the top bit set):
/// shifting by 5 moves each byte's bit 2 to its own top bit. (Three operations, where matching
/// the byte exactly takes six.)
#[inline]
fn match_free(group: u64) -> BitMask {
    BitMask((group << 5) & !group & SLOT_HIGH_BITS)
}

/// Slots a writer may put a new entry in: EMPTY or FREE.
#[inline]
pub(crate) fn match_reusable(group: u64) -> BitMask {
    BitMask(match_empty(group).0 | match_free(group).0)
}

/// Slots that are FULL and not MOVED: the entries a migration still has to move.
///
/// The MOVED bits (byte 7, bit `i` for slot `i`) are spread to the top bit of each slot's
/// byte by one multiplication: the product holds copies of the 7 bits shifted by `7 * j` for
/// `j = 1..=7`, which do not overlap (so nothing carries), and copy `j = i + 1` puts bit `i`
/// at bit `8 * i + 7`.
#[inline]
pub(crate) fn match_full_unmoved(group: u64) -> BitMask {
    const SPREAD: u64 =
        (1 << 7) | (1 << 14) | (1 << 21) | (1 << 28) | (1 << 35) | (1 << 42) | (1 << 49);
    // Without the moved-on hint, whose copies would carry into the MOVED bits' own.
    let moved = (group & MOVED_BITS) >> (8 * GROUP_SLOTS);
    BitMask(group & !(moved * SPREAD) & SLOT_HIGH_BITS)
}

/// Whether a slot's control byte says FULL.
#[inline]
pub(crate) fn is_full(byte: u8) -> bool {
    byte & 0x80 != 0
}

/// Whether slot `index`'s entry has been moved to the next table.
#[inline]
pub(crate) fn is_moved(group: u64, index: usize) -> bool {
    group & moved_bit(index) != 0
}

/// `group` with slot `index` marked MOVED.
#[inline]
pub(crate) const fn with_moved(group: u64, index: usize) -> u64 {
    group | moved_bit(index)
}

/// Whether some slot of `group` may have its moved-on bit set (`table.rs`): the writer, who
/// has the control word at hand, then loads the bitmap, most often a cache miss. Set in the
/// store that publishes a moved-on slot, cleared when the group's last moved-on bit is.
#[inline]
pub(crate) fn may_have_moved_on(group: u64) -> bool {
    group & MOVED_ON_HINT != 0
}

/// `group` with the moved-on hint set (`on`) or clear.
#[inline]
pub(crate) fn with_moved_on_hint(group: u64, on: bool) -> u64 {
    (group & !MOVED_ON_HINT) | u64::from(on) << 63
}

#[inline]
const fn moved_bit(index: usize) -> u64 {
    1 << (8 * GROUP_SLOTS + index)
}

/// The control byte of slot `index` in `group`.
#[inline]
pub(crate) fn byte(group: u64, index: usize) -> u8 {
    (group >> (8 * index)) as u8
}

/// `group` with slot `index` set to `value`.
#[inline]
pub(crate) const fn with_byte(group: u64, index: usize, value: u8) -> u64 {
    let shift = 8 * index;
    (group & !(0xFF << shift)) | ((value as u64) << shift)
}

/// [`with_byte`] for a slot known to be EMPTY (all zero bits), setting it to the tag `tag`.
#[inline]
pub(crate) fn with_tag_in_empty(group: u64, index: usize, tag: u8) -> u64 {
    debug_assert_eq!(byte(group, index), EMPTY);
    group | (tag as u64) << (8 * index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_find_exactly_the_right_slots() {
        let mut group = ALL_EMPTY;
        group = with_byte(group, 0, 0x92);
        group = with_byte(group, 3, DELETED);
        group = with_byte(group, 5, 0x92);
        group = with_byte(group, 6, 0xFF);
        assert!(match_tag(group, 0x92).collect::<Vec<_>>().starts_with(&[0]));
        assert!(match_tag(group, 0x92).any_contains(5));
        // Byte 7 holds the MOVED bits: never a slot, never empty.
        assert_eq!(match_empty(group).collect::<Vec<_>>(), [1, 2, 4]);
        let moved = with_moved(group, 5);
        assert!(is_moved(moved, 5) && !is_moved(moved, 0) && !is_moved(group, 5));
        assert_eq!(match_empty(moved).collect::<Vec<_>>(), [1, 2, 4]);
        assert!(match_tag(moved, 0x92).any_contains(5));
        assert_eq!(byte(group, 6), 0xFF);
        assert_eq!(byte(group, 3), DELETED);
        assert!(!match_tag(group, 0x93).any_contains(0));
        let freed = with_byte(with_byte(group, 1, FREE), 4, FREE);
        assert_eq!(match_reusable(freed).collect::<Vec<_>>(), [1, 2, 4]);
        let freed = with_byte(freed, 6, FREE);
        assert_eq!(match_reusable(freed).collect::<Vec<_>>(), [1, 2, 4, 6]);
        assert_eq!(match_empty(freed).collect::<Vec<_>>(), [2]);
        // A zeroed group is all EMPTY.
        assert_eq!(match_empty(0).collect::<Vec<_>>(), [0, 1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn a_tag_in_an_empty_slot_changes_that_byte_alone() {
        // Every other byte FULL, DELETED or FREE, and the MOVED byte and hint set.
        let others = [0x92, DELETED, FREE, FORWARDED, 0xFF, 0x80, 0xC3];
        for index in 0..GROUP_SLOTS {
            for tag in 0x80..=0xFF {
                let group = (0..GROUP_SLOTS)
                    .filter(|&i| i != index)
                    .fold(with_byte(0, GROUP_SLOTS, 0xFF), |g, i| {
                        with_byte(g, i, others[i])
                    });
                let group = with_byte(group, index, EMPTY);
                assert_eq!(
                    with_tag_in_empty(group, index, tag),
                    with_byte(group, index, tag)
                );
            }
        }
    }

    #[test]
    fn the_moved_byte_never_matches() {
        for tag in 0x80..=0xFF {
            for pad in [0x00, 0x01, 0x7F, 0x80, tag, 0xFF] {
                let full = (0..GROUP_SLOTS)
                    .fold(with_byte(0, GROUP_SLOTS, pad), |g, i| with_byte(g, i, tag));
                assert!(match_tag(full, tag).all(|i| i < GROUP_SLOTS));
                assert_eq!(match_tag(full, tag).count(), GROUP_SLOTS);
                assert!(!match_empty(full).any());
                let empty = with_byte(ALL_EMPTY, GROUP_SLOTS, pad);
                assert_eq!(
                    match_empty(empty).collect::<Vec<_>>(),
                    [0, 1, 2, 3, 4, 5, 6]
                );
            }
        }
    }

    /// Exhaustive over which slots are FULL and which are MOVED, and over every `within` span.
    #[test]
    fn full_unmoved_slots_are_found_exactly() {
        // Miri runs a sample: each iteration costs it thousands of times more.
        let step = if cfg!(miri) { 23 } else { 1 };
        for full in (0..1u32 << GROUP_SLOTS).step_by(step) {
            for moved in (0..1u32 << GROUP_SLOTS).step_by(step) {
                let group = (0..GROUP_SLOTS).fold(ALL_EMPTY, |group, i| {
                    let byte = if full & 1 << i != 0 {
                        0x80 | i as u8
                    } else {
                        DELETED
                    };
                    let group = with_byte(group, i, byte);
                    if moved & 1 << i != 0 {
                        with_moved(group, i)
                    } else {
                        group
                    }
                });
                let expected: Vec<usize> = (0..GROUP_SLOTS)
                    .filter(|&i| is_full(byte(group, i)) && !is_moved(group, i))
                    .collect();
                assert_eq!(match_full_unmoved(group).collect::<Vec<_>>(), expected);
                // The moved-on hint changes nothing.
                let hinted = with_moved_on_hint(group, true);
                assert!(may_have_moved_on(hinted) && !may_have_moved_on(group));
                assert_eq!(match_full_unmoved(hinted).collect::<Vec<_>>(), expected);
                for first in 0..=GROUP_SLOTS {
                    for last in first..=GROUP_SLOTS {
                        let span: Vec<usize> = expected
                            .iter()
                            .copied()
                            .filter(|i| (first..last).contains(i))
                            .collect();
                        let found = match_full_unmoved(group).within(first, last);
                        assert_eq!(found.collect::<Vec<_>>(), span);
                    }
                }
            }
        }
    }

    /// Exhaustive over each pair of neighbouring bytes a table can hold, among FULL bytes with
    /// and without bit 2 and a MOVED byte with every bit set: FREE and EMPTY bytes, and no
    /// others, are found reusable, and FREE ones, and no others, free.
    #[test]
    fn only_free_and_empty_bytes_are_reusable() {
        // Miri runs a sample: each iteration costs it thousands of times more.
        let step = if cfg!(miri) { 37 } else { 1 };
        let valid = [EMPTY, DELETED, FORWARDED, FREE]
            .into_iter()
            .chain((0x80..=0xFF).step_by(step));
        for pad in [0x80, 0x84, 0xFF] {
            let around = with_byte(repeat(pad), GROUP_SLOTS, 0xFF);
            for low in valid.clone() {
                for high in valid.clone() {
                    let group = with_byte(with_byte(around, 2, low), 3, high);
                    let pair = [(2, low), (3, high)];
                    let with = |wanted: &[u8]| -> Vec<usize> {
                        pair.iter()
                            .filter(|(_, b)| wanted.contains(b))
                            .map(|&(i, _)| i)
                            .collect()
                    };
                    let bytes = format!("bytes {low:#x}, {high:#x} among {pad:#x}");
                    assert_eq!(
                        match_free(group).collect::<Vec<_>>(),
                        with(&[FREE]),
                        "{bytes}"
                    );
                    let reusable: Vec<usize> = match_reusable(group).collect();
                    assert_eq!(reusable, with(&[EMPTY, FREE]), "{bytes}");
                }
            }
        }
    }

    #[test]
    fn tags_never_look_empty() {
        for hash in [0, u64::MAX, 1 << 63, 0x0123_4567_89AB_CDEF] {
            let group = with_byte(ALL_EMPTY, 2, tag(hash));
            assert!(!match_empty(group).any_contains(2));
            assert!(!match_empty(with_byte(ALL_EMPTY, 2, DELETED)).any_contains(2));
            assert!(!match_empty(with_byte(ALL_EMPTY, 2, FORWARDED)).any_contains(2));
            assert!(!is_full(DELETED) && !is_full(FORWARDED) && is_full(tag(hash)));
            assert!(match_tag(group, tag(hash)).any_contains(2));
        }
    }

    impl BitMask {
        fn any_contains(mut self, index: usize) -> bool {
            Iterator::any(&mut self, |i| i == index)
        }
    }
}
