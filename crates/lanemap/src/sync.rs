//! The one door through which every atomic, lock, cell and thread-local passes.
//!
//! Under `--cfg loom` each item is loom's model-checked counterpart, so the loom models in
//! `tests/loom*.rs` explore every interleaving of the real code. No other module imports
//! `std::sync`, `std::cell` or `parking_lot` directly.

#[cfg(not(loom))]
// The lock-free map's atomics are re-exported here before every build uses each of them.
#[allow(unused_imports)]
mod imp {
    pub(crate) use std::cell::Cell;
    pub(crate) use std::sync::atomic::{
        AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence,
    };
    pub(crate) use std::thread::yield_now;

    /// A reader-writer lock that neither poisons nor hands out guards beyond this crate.
    ///
    /// parking_lot's lock: one word, an uncontended read or write is a single CAS, and a panic
    /// while it is held simply releases it (no poisoning to clear).
    pub(crate) struct RwLock<T>(parking_lot::RwLock<T>);

    pub(crate) type ReadGuard<'a, T> = parking_lot::RwLockReadGuard<'a, T>;
    pub(crate) type WriteGuard<'a, T> = parking_lot::RwLockWriteGuard<'a, T>;

    /// A mutual-exclusion lock that does not poison: parking_lot's one-byte mutex.
    pub(crate) type Mutex<T> = parking_lot::Mutex<T>;
    pub(crate) type MutexGuard<'a, T> = parking_lot::MutexGuard<'a, T>;

    /// A condition variable for [`Mutex`]: parking_lot's (one word, no spurious wake-ups
    /// promised away: callers loop).
    pub(crate) struct Condvar(parking_lot::Condvar);

    impl Condvar {
        pub(crate) const fn new() -> Self {
            Self(parking_lot::Condvar::new())
        }

        /// Releases `guard`'s lock, sleeps until notified, and takes the lock again.
        pub(crate) fn wait<'a, T>(&self, mut guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
            self.0.wait(&mut guard);
            guard
        }

        /// As `wait`, but wakes by itself after `timeout` at the latest.
        pub(crate) fn wait_for<'a, T>(
            &self,
            mut guard: MutexGuard<'a, T>,
            timeout: std::time::Duration,
        ) -> MutexGuard<'a, T> {
            self.0.wait_for(&mut guard, timeout);
            guard
        }

        pub(crate) fn notify_one(&self) {
            self.0.notify_one();
        }
    }

    impl<T> RwLock<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(parking_lot::RwLock::new(value))
        }

        #[inline]
        pub(crate) fn read(&self) -> ReadGuard<'_, T> {
            self.0.read()
        }

        #[inline]
        pub(crate) fn write(&self) -> WriteGuard<'_, T> {
            self.0.write()
        }

        pub(crate) fn get_mut(&mut self) -> &mut T {
            self.0.get_mut()
        }

        pub(crate) fn into_inner(self) -> T {
            self.0.into_inner()
        }
    }

    /// `UnsafeCell` with loom's closure-based access API, so that loom can track every access.
    #[derive(Debug)]
    #[repr(transparent)]
    pub(crate) struct UnsafeCell<T: ?Sized>(std::cell::UnsafeCell<T>);

    // Part of the shim's API for the lock-free map; not every build uses every item.
    #[allow(dead_code)]
    impl<T> UnsafeCell<T> {
        pub(crate) const fn new(value: T) -> Self {
            Self(std::cell::UnsafeCell::new(value))
        }

        #[inline(always)]
        pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
            f(self.0.get())
        }

        #[inline(always)]
        pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }

        pub(crate) fn into_inner(self) -> T {
            self.0.into_inner()
        }
    }

    /// Declares thread-locals; loom needs its own macro to reset them between executions.
    macro_rules! lanemap_thread_local {
        ($($tt:tt)*) => { std::thread_local! { $($tt)* } };
    }
    pub(crate) use lanemap_thread_local as thread_local;
}

#[cfg(loom)]
#[allow(unused_imports)]
mod imp {
    pub(crate) use loom::cell::UnsafeCell;
    pub(crate) use loom::sync::atomic::{
        AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence,
    };
    pub(crate) use loom::thread::yield_now;
    pub(crate) use std::cell::Cell;

    /// loom's lock behind the same non-poisoning interface as the real one.
    pub(crate) struct RwLock<T>(loom::sync::RwLock<T>);

    pub(crate) type ReadGuard<'a, T> = loom::sync::RwLockReadGuard<'a, T>;
    pub(crate) type WriteGuard<'a, T> = loom::sync::RwLockWriteGuard<'a, T>;
    pub(crate) type MutexGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

    /// loom's mutex behind parking_lot's non-poisoning `lock()`.
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(loom::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            self.0
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        }

        // The same methods as the other builds' Mutex, whether or not a loom build calls them.
        #[allow(dead_code)]
        pub(crate) fn get_mut(&mut self) -> &mut T {
            self.0
                .get_mut()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        }
    }

    /// loom's condition variable behind the same interface as the real one.
    pub(crate) struct Condvar(loom::sync::Condvar);

    impl Condvar {
        pub(crate) fn new() -> Self {
            Self(loom::sync::Condvar::new())
        }

        pub(crate) fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
            self.0
                .wait(guard)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        }

        /// loom never times out: models must not rely on a timeout to make progress.
        pub(crate) fn wait_for<'a, T>(
            &self,
            guard: MutexGuard<'a, T>,
            timeout: std::time::Duration,
        ) -> MutexGuard<'a, T> {
            self.0
                .wait_timeout(guard, timeout)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|poisoned| poisoned.into_inner().0)
        }

        pub(crate) fn notify_one(&self) {
            self.0.notify_one();
        }
    }

    impl<T> RwLock<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(loom::sync::RwLock::new(value))
        }

        pub(crate) fn read(&self) -> ReadGuard<'_, T> {
            self.0
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        }

        pub(crate) fn write(&self) -> WriteGuard<'_, T> {
            self.0
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        }

        pub(crate) fn get_mut(&mut self) -> &mut T {
            self.0
                .get_mut()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        }

        pub(crate) fn into_inner(self) -> T {
            self.0
                .into_inner()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        }
    }

    /// loom's macro has no `const { }` form: the initialiser is evaluated lazily instead.
    macro_rules! lanemap_thread_local {
        ($(#[$attr:meta])* static $name:ident: $ty:ty = const { $init:expr };) => {
            loom::thread_local! { $(#[$attr])* static $name: $ty = $init; }
        };
    }
    pub(crate) use lanemap_thread_local as thread_local;
}

#[allow(unused_imports)]
pub(crate) use imp::*;

/// Under `--cfg shuttle` (lanemap-check's shuttle driver), the locks and thread-locals are
/// shuttle's, so that shuttle schedules the threads around every lock the maps take. These
/// explicit re-exports shadow the std arm's glob; atomics and `Mutex` stay std/parking_lot
/// (shuttle cannot preempt at them). Outside semver, like loom.
#[cfg(all(shuttle, not(loom)))]
mod shuttle_imp {
    /// shuttle's lock behind the same non-poisoning interface as the real one.
    pub(crate) struct RwLock<T>(shuttle::sync::RwLock<T>);

    pub(crate) type ReadGuard<'a, T> = shuttle::sync::RwLockReadGuard<'a, T>;
    pub(crate) type WriteGuard<'a, T> = shuttle::sync::RwLockWriteGuard<'a, T>;

    // Mirrors the std arm's API; not every build uses every item.
    #[allow(dead_code)]
    impl<T> RwLock<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(shuttle::sync::RwLock::new(value))
        }

        pub(crate) fn read(&self) -> ReadGuard<'_, T> {
            self.0
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        }

        pub(crate) fn write(&self) -> WriteGuard<'_, T> {
            self.0
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        }

        pub(crate) fn get_mut(&mut self) -> &mut T {
            self.0
                .get_mut()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        }

        pub(crate) fn into_inner(self) -> T {
            self.0
                .into_inner()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        }
    }

    /// shuttle's tasks share one OS thread: thread-locals must be shuttle's to be per task.
    macro_rules! lanemap_shuttle_thread_local {
        ($($tt:tt)*) => { shuttle::thread_local! { $($tt)* } };
    }
    pub(crate) use lanemap_shuttle_thread_local as thread_local;
    pub(crate) use shuttle::thread::yield_now;
}

#[cfg(all(shuttle, not(loom)))]
#[allow(unused_imports)]
pub(crate) use shuttle_imp::{ReadGuard, RwLock, WriteGuard, thread_local, yield_now};
