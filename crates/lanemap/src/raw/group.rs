//! Control bytes, eight to a group, matched eight at a time with plain integer arithmetic.
//!
//! Each slot has one control byte:
//!
//! | byte | meaning |
//! |---|---|
//! | `0x00..=0x7F` | FULL: the top 7 bits of the entry's hash (its *tag*) |
//! | `0x80` | DELETED: a tombstone; probing goes on past it |
//! | `0xFF` | EMPTY: never used; probing stops at a group holding one |
//!
//! A group is one `u64` word, byte `i` at bits `8 * i .. 8 * i + 8`, loaded and stored as a
//! whole so that readers see each word atomically.

/// Slots per group.
pub(crate) const GROUP: usize = 8;
pub(crate) const EMPTY: u8 = 0xFF;
pub(crate) const DELETED: u8 = 0x80;

/// A group whose eight slots are all EMPTY.
pub(crate) const ALL_EMPTY: u64 = repeat(EMPTY);

const fn repeat(byte: u8) -> u64 {
    u64::from_ne_bytes([byte; GROUP])
}

/// The tag stored for `hash`: its top 7 bits.
#[inline]
pub(crate) fn tag(hash: u64) -> u8 {
    (hash >> 57) as u8
}

/// The slots of one group that satisfy some test, lowest first.
#[derive(Clone, Copy)]
pub(crate) struct BitMask(u64);

impl BitMask {
    #[inline]
    pub(crate) fn any(self) -> bool {
        self.0 != 0
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
    BitMask(cmp.wrapping_sub(repeat(0x01)) & !cmp & repeat(0x80))
}

/// Slots that are EMPTY (the only byte with both top bits set).
#[inline]
pub(crate) fn match_empty(group: u64) -> BitMask {
    BitMask(group & (group << 1) & repeat(0x80))
}

/// Slots that are EMPTY or DELETED (top bit set).
#[inline]
pub(crate) fn match_free(group: u64) -> BitMask {
    BitMask(group & repeat(0x80))
}

/// The control byte of slot `index` in `group`.
#[inline]
pub(crate) fn byte(group: u64, index: usize) -> u8 {
    (group >> (8 * index)) as u8
}

/// `group` with slot `index` set to `value`.
#[inline]
pub(crate) fn with_byte(group: u64, index: usize, value: u8) -> u64 {
    let shift = 8 * index;
    (group & !(0xFF << shift)) | (u64::from(value) << shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_find_exactly_the_right_slots() {
        let mut group = ALL_EMPTY;
        group = with_byte(group, 0, 0x12);
        group = with_byte(group, 3, DELETED);
        group = with_byte(group, 5, 0x12);
        group = with_byte(group, 6, 0x7F);
        assert!(match_tag(group, 0x12).collect::<Vec<_>>().starts_with(&[0]));
        assert!(match_tag(group, 0x12).any_contains(5));
        assert_eq!(match_empty(group).collect::<Vec<_>>(), [1, 2, 4, 7]);
        assert_eq!(match_free(group).collect::<Vec<_>>(), [1, 2, 3, 4, 7]);
        assert_eq!(byte(group, 6), 0x7F);
        assert_eq!(byte(group, 3), DELETED);
        assert!(!match_tag(group, 0x13).any_contains(0));
    }

    #[test]
    fn tags_never_look_free() {
        for hash in [0, u64::MAX, 1 << 63, 0x0123_4567_89AB_CDEF] {
            let group = with_byte(ALL_EMPTY, 2, tag(hash));
            assert!(!match_free(group).any_contains(2));
            assert!(match_tag(group, tag(hash)).any_contains(2));
        }
    }

    impl BitMask {
        fn any_contains(mut self, index: usize) -> bool {
            Iterator::any(&mut self, |i| i == index)
        }
    }
}
