//! Safe memory reclamation for the lock-free-read map: when may a removed node or an outgrown
//! table be freed, given that readers may still be looking at it?
//!
//! Normally this is [seize](https://docs.rs/seize): a reader *enters* (a guard) before loading
//! pointers, a writer *retires* what it unlinked, and seize frees it once every guard that could
//! have seen it is gone. A stand-in with the same shape counts the guards alive under a lock
//! and, each time the count drops to zero, reclaims everything retired before: every guard that
//! could have seen it has ended then (and guards created after a retirement cannot reach what
//! was retired). It is used:
//!
//! - under `cfg(loom)`, because seize's per-thread state does not know loom's model threads;
//! - under `cfg(lanemap_tsan)` (set by `scripts/verify` for ThreadSanitizer), because seize
//!   orders a free after the last reader with standalone fences and `membarrier`, which TSan
//!   does not model: it would report every free as a race, real or not, and drown the races
//!   it can see in the map's own publication protocol.
//!
//! Loom and TSan then check that protocol, slot reuse after a grace period included (the lock
//! orders each reclamation after the guards it waited for, which both tools see); Miri (which
//! models fences) checks the real reclamation.

use crate::sync::{AtomicPtr, Ordering};

/// What a write needs from a guard while it holds its shard's lock: deferred retirement.
///
/// Under the lock, a write reaches only tables and slots of its shard, and only the lock's
/// holder retires those (once unlinked), so the write needs no protection of its own. A
/// [`Guard`] protects loads too; an [`Unpinned`] guard does not, and so costs no pin (seize's
/// pin ends with an atomic swap, a full barrier on x86: with a pin per write, exchange ran at
/// about 0.63x the pinned handle's throughput, one thread, 2^21 keys).
///
/// Sealed: only this crate's guards implement it.
pub trait Retire: sealed::Sealed {
    /// Loads `ptr` protected, as [`Guard::protect`] does, if this guard protects loads.
    #[doc(hidden)]
    fn try_protect<T>(&self, ptr: &AtomicPtr<T>, order: Ordering) -> Option<*mut T>;

    /// Frees `ptr` with `reclaim` once no guard can still reach it.
    ///
    /// # Safety
    /// `ptr` is no longer reachable by a guard created after this call, and `reclaim(ptr)` is
    /// sound once no guard can reach it.
    #[doc(hidden)]
    unsafe fn defer_retire<T>(&self, ptr: *mut T, reclaim: unsafe fn(*mut T, &Collector));

    /// Identifies the collector, to reject a guard of another map.
    #[doc(hidden)]
    fn collector(&self) -> &Collector;
}

/// What the map needs from a guard: protected loads and deferred retirement.
///
/// Sealed: only this crate's guards implement it.
pub trait Guard: Retire {
    /// Loads `ptr` so that what it points to stays allocated while this guard lives.
    #[doc(hidden)]
    fn protect<T>(&self, ptr: &AtomicPtr<T>, order: Ordering) -> *mut T;

    /// Starts reclaiming this thread's batch of retired objects now, instead of when it fills.
    #[doc(hidden)]
    fn flush(&self);

    /// Like dropping the guard and entering again: what it held back may be freed.
    #[doc(hidden)]
    fn refresh(&mut self);
}

/// A retired object with its reclaimer, their types erased.
type Retired = (*mut (), unsafe fn(*mut (), &Collector));

/// Erases the types of `ptr` and `reclaim`.
fn erased<T>(ptr: *mut T, reclaim: unsafe fn(*mut T, &Collector)) -> Retired {
    // Safety: `*mut T` and `*mut ()` have the same layout and ABI, as do function pointers that
    // differ only in them; the erased function is only ever called with the erased pointer.
    let reclaim = unsafe {
        std::mem::transmute::<unsafe fn(*mut T, &Collector), unsafe fn(*mut (), &Collector)>(
            reclaim,
        )
    };
    (ptr.cast(), reclaim)
}

/// A guard for a write that protects nothing: it keeps what the write retires until it is
/// dropped, then hands it to reclamation (which may free it at once, this thread not being
/// pinned). Made after the map's re-entrancy mark, so dropped after it: a reclaimer's `Drop`
/// of a value may use the map again.
pub struct Unpinned<'c> {
    collector: &'c Collector,
    retired: std::cell::Cell<Vec<Retired>>,
}

impl<'c> Unpinned<'c> {
    pub(crate) fn new(collector: &'c Collector) -> Self {
        Self {
            collector,
            retired: std::cell::Cell::new(Vec::new()),
        }
    }
}

impl sealed::Sealed for Unpinned<'_> {}

impl Retire for Unpinned<'_> {
    #[inline]
    fn try_protect<T>(&self, _ptr: &AtomicPtr<T>, _order: Ordering) -> Option<*mut T> {
        None
    }

    unsafe fn defer_retire<T>(&self, ptr: *mut T, reclaim: unsafe fn(*mut T, &Collector)) {
        let mut retired = self.retired.take();
        retired.push(erased(ptr, reclaim));
        self.retired.set(retired);
    }

    #[inline]
    fn collector(&self) -> &Collector {
        self.collector
    }
}

impl Drop for Unpinned<'_> {
    #[inline]
    fn drop(&mut self) {
        let retired = self.retired.take();
        if !retired.is_empty() {
            // Safety: each was queued by `defer_retire`, whose contract (unreachable for guards
            // created from then on, `reclaim` suits it) its caller upheld; this thread reaches
            // none of them any more.
            unsafe { imp::retire_unpinned(self.collector, retired) };
        }
    }
}

mod sealed {
    pub trait Sealed {}
}

#[cfg(not(any(loom, lanemap_tsan)))]
mod imp {
    use super::{Guard, Retire, Retired, sealed::Sealed};
    use crate::sync::{AtomicPtr, Ordering};
    pub(crate) use seize::Collector;
    pub use seize::{LocalGuard, OwnedGuard};

    /// Retired objects a thread gathers before handing them to reclamation as one batch.
    ///
    /// Each batch costs a process-wide barrier (a `membarrier` system call, which interrupts
    /// every core running the process) and a walk of the collector's threads. The map retires
    /// removed nodes and vacated slots a shard-batch at a time (`raw::RETIRE_BATCH`,
    /// `raw::RECYCLE_BATCH`), and outgrown tables one by one. With 4 objects a batch, an exchange
    /// run (half its operations remove or replace) made a barrier every 540 operations, and at 2
    /// threads each cost about 34 µs of system time; 32 objects make one every 4 000 or so. A
    /// thread's batch not yet handed over holds a bounded number of removed entries and slots
    /// (more only while more than 32 threads are inside the map: seize lets a batch grow to one
    /// entry per active thread).
    const BATCH_SIZE: usize = 32;

    /// A collector with the map's batch size.
    pub(crate) fn collector() -> Collector {
        Collector::new().batch_size(BATCH_SIZE)
    }

    macro_rules! seize_guard {
        ($guard:ident) => {
            impl Sealed for $guard<'_> {}

            impl Retire for $guard<'_> {
                #[inline]
                fn try_protect<T>(&self, ptr: &AtomicPtr<T>, order: Ordering) -> Option<*mut T> {
                    Some(seize::Guard::protect(self, ptr, order))
                }

                #[inline]
                unsafe fn defer_retire<T>(
                    &self,
                    ptr: *mut T,
                    reclaim: unsafe fn(*mut T, &Collector),
                ) {
                    // Safety: the caller upholds `defer_retire`'s contract, which is seize's.
                    unsafe { seize::Guard::defer_retire(self, ptr, reclaim) }
                }

                #[inline]
                fn collector(&self) -> &Collector {
                    seize::Guard::collector(self)
                }
            }

            impl Guard for $guard<'_> {
                #[inline]
                fn protect<T>(&self, ptr: &AtomicPtr<T>, order: Ordering) -> *mut T {
                    seize::Guard::protect(self, ptr, order)
                }

                #[inline]
                fn flush(&self) {
                    seize::Guard::flush(self)
                }

                #[inline]
                fn refresh(&mut self) {
                    seize::Guard::refresh(self)
                }
            }
        };
    }
    seize_guard!(LocalGuard);
    seize_guard!(OwnedGuard);

    /// Hands objects retired by an [`Unpinned`](super::Unpinned) write to seize.
    ///
    /// # Safety
    /// As for `defer_retire`, for each; the calling thread reaches none of them.
    pub(super) unsafe fn retire_unpinned(collector: &Collector, retired: Vec<Retired>) {
        for (ptr, reclaim) in retired {
            // Safety: the caller's contract; this thread holds no pointer to it (so seize may
            // free it at once if no other thread is pinned).
            unsafe { collector.retire(ptr, reclaim) };
        }
    }
}

#[cfg(any(loom, lanemap_tsan))]
mod imp {
    use super::{Guard, Retire, Retired, erased, sealed::Sealed};
    use crate::sync::{AtomicPtr, Mutex, Ordering};
    use std::marker::PhantomData;

    /// Counts the live guards, and keeps what was retired until none is left.
    pub struct Collector {
        state: Mutex<State>,
    }

    struct State {
        /// Guards alive.
        guards: usize,
        /// Retired since the count last dropped to zero.
        retired: Vec<Retired>,
    }

    // Safety: the retired pointers are only handed to their reclaimers, which the retiring
    // code vouched may run on any thread (as seize's may).
    unsafe impl Send for State {}

    /// A stand-in collector (it has no batches).
    pub(crate) fn collector() -> Collector {
        Collector::new()
    }

    impl Collector {
        pub(crate) fn new() -> Self {
            Self {
                state: Mutex::new(State {
                    guards: 0,
                    retired: Vec::new(),
                }),
            }
        }

        pub(crate) fn enter(&self) -> LocalGuard<'_> {
            self.join();
            LocalGuard {
                collector: self,
                _not_send: PhantomData,
            }
        }

        pub(crate) fn enter_owned(&self) -> OwnedGuard<'_> {
            self.join();
            OwnedGuard { collector: self }
        }

        fn join(&self) {
            self.state.lock().guards += 1;
        }

        /// A guard ends: if it was the last, reclaims everything retired so far. (Outside the
        /// lock: a reclaimer may drop a value whose `Drop` uses a map of the same collector.)
        fn leave(&self) {
            let ready = {
                let mut state = self.state.lock();
                state.guards -= 1;
                if state.guards == 0 {
                    std::mem::take(&mut state.retired)
                } else {
                    Vec::new()
                }
            };
            // Safety: every guard alive when these were retired has ended (the count reached
            // zero since), and guards created after a retirement cannot reach what it retired.
            unsafe { self.reclaim(ready) };
        }

        /// # Safety
        /// No guard can reach what `retired` holds.
        unsafe fn reclaim(&self, retired: Vec<Retired>) {
            for (ptr, reclaim) in retired {
                // Safety: no guard can reach `ptr` (the caller's contract), and the retiring
                // code vouched that `reclaim` suits it.
                unsafe { reclaim(ptr, self) };
            }
        }

        /// Reclaims everything retired so far, as seize's method of that name.
        ///
        /// # Safety
        /// No guard of this collector is alive, on any thread.
        pub(crate) unsafe fn reclaim_all(&self) {
            let retired = std::mem::take(&mut self.state.lock().retired);
            // Safety: the caller's contract.
            unsafe { self.reclaim(retired) };
        }
    }

    impl Drop for Collector {
        fn drop(&mut self) {
            // Safety: `&mut self`: no guard borrows the collector any more.
            unsafe { self.reclaim_all() };
        }
    }

    /// The stand-in for seize's thread-bound guard.
    pub struct LocalGuard<'a> {
        collector: &'a Collector,
        _not_send: PhantomData<*const ()>,
    }

    /// The stand-in for seize's sendable guard.
    pub struct OwnedGuard<'a> {
        collector: &'a Collector,
    }

    macro_rules! stand_in_guard {
        ($guard:ident) => {
            impl Sealed for $guard<'_> {}

            impl Retire for $guard<'_> {
                fn try_protect<T>(&self, ptr: &AtomicPtr<T>, order: Ordering) -> Option<*mut T> {
                    Some(ptr.load(order))
                }

                unsafe fn defer_retire<T>(
                    &self,
                    ptr: *mut T,
                    reclaim: unsafe fn(*mut T, &Collector),
                ) {
                    self.collector
                        .state
                        .lock()
                        .retired
                        .push(erased(ptr, reclaim));
                }

                fn collector(&self) -> &Collector {
                    self.collector
                }
            }

            impl Guard for $guard<'_> {
                fn protect<T>(&self, ptr: &AtomicPtr<T>, order: Ordering) -> *mut T {
                    ptr.load(order)
                }

                /// Nothing to do: the stand-in reclaims when the last guard ends.
                fn flush(&self) {}

                fn refresh(&mut self) {
                    self.collector.leave();
                    self.collector.join();
                }
            }
        };
    }
    stand_in_guard!(LocalGuard);
    stand_in_guard!(OwnedGuard);

    /// Objects retired by an [`Unpinned`](super::Unpinned) write: reclaimed at once if no guard
    /// is alive (as seize may), else when the last one ends.
    ///
    /// # Safety
    /// As for `defer_retire`, for each; the calling thread reaches none of them.
    pub(super) unsafe fn retire_unpinned(collector: &Collector, mut retired: Vec<Retired>) {
        let ready = {
            let mut state = collector.state.lock();
            if state.guards == 0 {
                retired
            } else {
                state.retired.append(&mut retired);
                Vec::new()
            }
        };
        // Safety: no guard is alive, and guards created from now on cannot reach these (the
        // caller's contract).
        unsafe { collector.reclaim(ready) };
    }

    impl Drop for LocalGuard<'_> {
        fn drop(&mut self) {
            self.collector.leave();
        }
    }

    impl Drop for OwnedGuard<'_> {
        fn drop(&mut self) {
            self.collector.leave();
        }
    }
}

pub(crate) use imp::{Collector, collector};
pub use imp::{LocalGuard, OwnedGuard};
