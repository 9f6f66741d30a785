//! Error types, each giving back whatever the caller handed in.

use std::fmt;

/// The error [`try_reserve`](crate::ShardedMap::try_reserve) returns instead of aborting.
///
/// # Examples
/// ```
/// use lanemap::{ShardedMap, TryReserveError};
///
/// let map: ShardedMap<u64, u64> = ShardedMap::new();
/// assert_eq!(map.try_reserve(usize::MAX), Err(TryReserveError::CapacityOverflow));
/// assert!(map.try_reserve(100).is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TryReserveError {
    /// The requested capacity does not fit in memory addresses (`isize::MAX` bytes).
    CapacityOverflow,
    /// The allocator refused an allocation of this layout.
    AllocError {
        /// The layout of the allocation that failed.
        layout: std::alloc::Layout,
    },
}

impl TryReserveError {
    /// `CapacityOverflow` unless `len + additional` entries fit in addressable memory: the rule
    /// every map applies before spreading a reservation over its shards.
    pub(crate) fn check_total(len: usize, additional: usize) -> Result<(), Self> {
        match len.checked_add(additional) {
            Some(total) if total <= isize::MAX as usize => Ok(()),
            _ => Err(Self::CapacityOverflow),
        }
    }
}

impl From<hashbrown::TryReserveError> for TryReserveError {
    fn from(error: hashbrown::TryReserveError) -> Self {
        match error {
            hashbrown::TryReserveError::CapacityOverflow => Self::CapacityOverflow,
            hashbrown::TryReserveError::AllocError { layout } => Self::AllocError { layout },
        }
    }
}

impl fmt::Display for TryReserveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CapacityOverflow => {
                f.write_str("memory allocation failed because the computed capacity exceeded the collection's maximum")
            }
            Self::AllocError { layout } => write!(
                f,
                "memory allocation of {} bytes (alignment {}) failed",
                layout.size(),
                layout.align()
            ),
        }
    }
}

impl std::error::Error for TryReserveError {}

/// The error [`compare_exchange`](crate::ShardedMap::compare_exchange) returns when the value
/// in the map was not the expected one. Nothing was changed.
///
/// # Examples
/// ```
/// use lanemap::ShardedMap;
///
/// let map = ShardedMap::new();
/// map.insert("k", 1);
/// let err = map.compare_exchange("k", &5, 6).unwrap_err();
/// assert_eq!(err.current, Some(1)); // what the map held instead
/// assert_eq!(err.new, 6); // the value that was not stored, handed back
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompareExchangeError<V> {
    /// The value the key held at the time of the call (a clone), or `None` if it was absent.
    pub current: Option<V>,
    /// The value that was to be stored, returned to the caller.
    pub new: V,
}

impl<V: fmt::Debug> fmt::Display for CompareExchangeError<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.current {
            Some(current) => write!(f, "compare_exchange failed: the key holds {current:?}"),
            None => f.write_str("compare_exchange failed: the key is absent"),
        }
    }
}

impl<V: fmt::Debug> std::error::Error for CompareExchangeError<V> {}
