//! The value types stored in the maps: `u64`, and a 64-byte value.

use std::fmt::Debug;

/// A value the benchmark stores. `Copy`, so no map pays for a clone the others do not.
pub trait Value: Copy + Send + Sync + Debug + PartialEq + 'static {
    /// Its size in bytes (8 or 64).
    const BYTES: usize;
    /// A value derived from a key.
    fn from_key(key: u64) -> Self;
    /// The first word, returned by reads so they cannot be optimised away.
    fn first(&self) -> u64;
    /// Changes the value in place (what `update` does).
    fn bump(&mut self);
    /// A changed copy, for maps whose update replaces the value.
    fn bumped(&self) -> Self {
        let mut next = *self;
        next.bump();
        next
    }
}

impl Value for u64 {
    const BYTES: usize = 8;
    fn from_key(key: u64) -> Self {
        key
    }
    fn first(&self) -> u64 {
        *self
    }
    fn bump(&mut self) {
        *self = self.wrapping_add(1);
    }
}

/// A 64-byte value: eight words, as a small record would be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Bytes64(pub [u64; 8]);

impl Value for Bytes64 {
    const BYTES: usize = 64;
    fn from_key(key: u64) -> Self {
        Self([key; 8])
    }
    fn first(&self) -> u64 {
        self.0[0]
    }
    fn bump(&mut self) {
        self.0[0] = self.0[0].wrapping_add(1);
    }
}
