//! The shard's writer lock: a mutex whose release is a plain store.
//!
//! On x86 every locked instruction waits for the store buffer to drain. A mutex released by a
//! compare-and-swap (parking_lot's, std's) therefore makes each write wait, at its unlock, for
//! the cache misses of the entry it has just stored; and a write to a table larger than the
//! cache stores to a line it has not read. Measured on this project's machine, rapid-grow on
//! 2^21 keys at one thread spent three fifths of its inserts' time on that instruction (as
//! dashmap, whose lock is released the same way, did on its own), and the map grew 1.13x
//! faster with this lock (median of 18 same-process ratios to dashmap: 1.01x, against 0.89x
//! with parking_lot's). Released by a store, the write's misses drain while the next
//! operation hashes its key and starts loading its group.
//!
//! What the compare-and-swap bought was knowing whether a waiter sleeps. Here a waiter about
//! to sleep counts itself in `sleepers`, and a releaser reads that count after its store:
//! Dekker's pattern, which needs each side's store ordered before its load. The waiter pays
//! for both sides with a process-wide barrier (Linux's `membarrier`, a system call that
//! interrupts the process's other running threads, and only on the way to sleep): every
//! thread running the process's code then passes a full
//! fence, so a releaser's earlier store is visible to the waiter, or its later load sees the
//! waiter counted. The releaser needs only a compiler fence. Where `membarrier` is missing
//! (other systems, old kernels, Miri, loom), both sides take a `SeqCst` fence instead.
//!
//! The barrier interrupts the lock's holder too, so a wait's first sleep skips it and lasts at
//! most 100 µs: a wake-up lost to the race the barrier closes costs that much at worst, and
//! only waits longer than that pay for the barrier (see [`WriterLock::sleep`]).
//!
//! A waiter spins a little, then yields, then sleeps on a condition variable until a release
//! wakes it. The lock is unfair (a running thread can take it ahead of a woken one), as
//! parking_lot's is between its fairness hand-offs; it does not poison, and there is no
//! `try_lock`: a writer always waits its turn.

use crate::sync::{AtomicBool, AtomicU32, Condvar, Mutex, Ordering, UnsafeCell, yield_now};

/// How many times a waiter tries again before it sleeps: spinning a few, then yielding.
const SPINS: u32 = if cfg!(loom) { 1 } else { 10 };

/// Spins of these tries that busy-wait rather than yield (each twice as long as the last).
const BUSY_SPINS: u32 = 3;

/// The longest a waiter's first sleep may outlast the unlock that should have ended it (see
/// [`WriterLock::sleep`]).
const FIRST_SLEEP: std::time::Duration = std::time::Duration::from_micros(100);

/// In C layout: what every lock and unlock touches in the first 8 bytes, then the value, then
/// the condition variable that only sleepers use. The shard keeps the first two on the line of
/// the writer's hottest fields (see `Shard`).
#[repr(C)]
pub(crate) struct WriterLock<T> {
    locked: AtomicBool,
    /// Whether the process-wide barrier is on hand: then a release needs only a compiler fence.
    asymmetric: bool,
    /// Whether a wait's first sleep is a short one without the barrier (see `sleep`): always,
    /// but in the tests of the exact protocol.
    short_first_sleep: bool,
    /// Held by a waiter from counting itself until it sleeps, and by a releaser to wake one:
    /// so that a wake-up cannot fall between a waiter's last check and its sleep.
    parking: Mutex<()>,
    /// Waiters that counted themselves before checking `locked` one last time and sleeping.
    sleepers: AtomicU32,
    value: UnsafeCell<T>,
    wakeup: Condvar,
}

// Safety: the lock hands `&mut T` to one thread at a time, as a mutex does.
unsafe impl<T: Send> Send for WriterLock<T> {}
// Safety: as above.
unsafe impl<T: Send> Sync for WriterLock<T> {}

/// The lock, held: releases it when dropped.
pub(crate) struct WriterGuard<'a, T> {
    lock: &'a WriterLock<T>,
}

impl<T> WriterLock<T> {
    pub(crate) fn new(value: T) -> Self {
        Self {
            locked: AtomicBool::new(false),
            asymmetric: barrier::asymmetric(),
            short_first_sleep: true,
            parking: Mutex::new(()),
            sleepers: AtomicU32::new(0),
            value: UnsafeCell::new(value),
            wakeup: Condvar::new(),
        }
    }

    /// A lock whose every sleep takes the barrier, for the (real-thread) tests of that protocol.
    #[cfg(all(test, not(loom)))]
    fn exact(value: T) -> Self {
        Self {
            short_first_sleep: false,
            ..Self::new(value)
        }
    }

    #[inline]
    pub(crate) fn lock(&self) -> WriterGuard<'_, T> {
        // Acquire: pairs with the Release store of the last unlock, so its writes are visible.
        if self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_contended();
        }
        WriterGuard { lock: self }
    }

    pub(crate) fn get_mut(&mut self) -> &mut T {
        // Safety: `&mut self`: no guard is alive, and no other reference to the value.
        self.value.with_mut(|value| unsafe { &mut *value })
    }

    #[cold]
    fn lock_contended(&self) {
        let mut tries = 0;
        let mut slept = false;
        loop {
            // Relaxed first: no write to the lock's line while someone else holds it.
            if !self.locked.load(Ordering::Relaxed)
                && self
                    .locked
                    .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                return;
            }
            if tries < SPINS {
                tries += 1;
                if tries <= BUSY_SPINS {
                    for _ in 0..1 << tries {
                        std::hint::spin_loop();
                    }
                } else {
                    yield_now();
                }
                continue;
            }
            self.sleep(slept);
            slept = true;
            tries = 0;
        }
    }

    /// Sleeps until an unlock wakes this thread, unless the lock is free by the time it is
    /// counted among the sleepers (then it returns at once, to try again).
    ///
    /// The first sleep of a wait, with `membarrier` on hand, skips the barrier and sleeps for
    /// at most [`FIRST_SLEEP`]. Its wake-up can then be lost, if the releaser's load of
    /// `sleepers` and this thread's load of `locked` both run ahead of the other's store (a
    /// window of the time a store takes to leave the core), and the thread oversleeps by at
    /// most that long. The barrier interrupts every running thread of the process, the lock's
    /// holder included: measured, issuing it on every sleep made rapid-grow at 2 threads 0.73x
    /// dashmap, against 0.81x with a full fence in every unlock; most sleeps last less than
    /// `FIRST_SLEEP`, and only longer waits pay for it.
    fn sleep(&self, slept: bool) {
        let exact = slept || !self.asymmetric || !self.short_first_sleep;
        let mut parking = self.parking.lock();
        // Relaxed: ordered before the load below by the barrier (the store half of Dekker's
        // pattern; `unlock` is the other half).
        self.sleepers.fetch_add(1, Ordering::Relaxed);
        if exact {
            barrier::heavy(self.asymmetric);
        }
        // Relaxed: after the barrier, either this sees the releaser's store of `false`, or the
        // releaser's load of `sleepers` (after its own store) sees this thread counted, and it
        // wakes one sleeper under `parking`, which this thread holds until it sleeps.
        if self.locked.load(Ordering::Relaxed) {
            parking = if exact {
                self.wakeup.wait(parking)
            } else {
                self.wakeup.wait_for(parking, FIRST_SLEEP)
            };
        }
        // Relaxed: only a hint to releasers (a stale count costs a needless wake-up).
        self.sleepers.fetch_sub(1, Ordering::Relaxed);
        drop(parking);
    }

    #[inline]
    fn unlock(&self) {
        // Release: the holder's writes happen before the next holder's Acquire of the lock.
        self.locked.store(false, Ordering::Release);
        barrier::light(self.asymmetric);
        // Relaxed: see `sleep`; the barriers order it after the store above.
        if self.sleepers.load(Ordering::Relaxed) != 0 {
            self.wake_one();
        }
    }

    #[cold]
    #[inline(never)]
    fn wake_one(&self) {
        let _parking = self.parking.lock();
        self.wakeup.notify_one();
    }
}

impl<T> std::ops::Deref for WriterGuard<'_, T> {
    type Target = T;

    #[inline(always)]
    fn deref(&self) -> &T {
        // Safety: the guard holds the lock, so no other thread has a reference to the value.
        self.lock.value.with(|value| unsafe { &*value })
    }
}

impl<T> std::ops::DerefMut for WriterGuard<'_, T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut T {
        // Safety: as in `deref`, and `&mut self` makes this the guard's only reference.
        self.lock.value.with_mut(|value| unsafe { &mut *value })
    }
}

impl<T> Drop for WriterGuard<'_, T> {
    #[inline(always)]
    fn drop(&mut self) {
        self.lock.unlock();
    }
}

/// The two halves of an asymmetric fence: `light` on the hot path, `heavy` on the rare one,
/// such that two threads each storing, fencing, then loading cannot both miss the other's
/// store.
mod barrier {
    #[cfg(not(all(target_os = "linux", not(miri), not(loom))))]
    pub(super) fn asymmetric() -> bool {
        false
    }

    /// Whether `membarrier` is on hand (registered, once per process, on the first call).
    #[cfg(all(target_os = "linux", not(miri), not(loom)))]
    pub(super) fn asymmetric() -> bool {
        static REGISTERED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *REGISTERED.get_or_init(|| {
            // Safety: the `membarrier` system call with its query command: reads no memory.
            let commands = unsafe { libc::syscall(libc::SYS_membarrier, QUERY, 0) };
            if commands < 0 || commands & PRIVATE_EXPEDITED == 0 {
                return false;
            }
            // Safety: as above; registration changes nothing but the process's kernel state.
            unsafe { libc::syscall(libc::SYS_membarrier, REGISTER_PRIVATE_EXPEDITED, 0) == 0 }
        })
    }

    /// Commands of `membarrier(2)`, from the kernel's `linux/membarrier.h`.
    #[cfg(all(target_os = "linux", not(miri), not(loom)))]
    const QUERY: libc::c_long = 0;
    #[cfg(all(target_os = "linux", not(miri), not(loom)))]
    const GLOBAL: libc::c_long = 1 << 0;
    #[cfg(all(target_os = "linux", not(miri), not(loom)))]
    const PRIVATE_EXPEDITED: libc::c_long = 1 << 3;
    #[cfg(all(target_os = "linux", not(miri), not(loom)))]
    const REGISTER_PRIVATE_EXPEDITED: libc::c_long = 1 << 4;

    /// The hot half: a compiler fence if `heavy` issues `membarrier`, else a full fence.
    #[inline(always)]
    pub(super) fn light(asymmetric: bool) {
        if cfg!(lanemap_broken_lock_barrier) {
            // The teeth of the lock's tests: a release that may miss a sleeper.
        } else if asymmetric {
            std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
        } else {
            crate::sync::fence(crate::sync::Ordering::SeqCst);
        }
    }

    /// The rare half: `membarrier`, which puts a full fence in every running thread of the
    /// process (the caller included), or a full fence where `light` takes one too.
    pub(super) fn heavy(asymmetric: bool) {
        if cfg!(lanemap_broken_lock_barrier) {
            // As in `light`.
            return;
        }
        #[cfg(all(target_os = "linux", not(miri), not(loom)))]
        if asymmetric {
            // Releasers rely on this barrier: if the expedited one fails (a forked child that
            // the kernel did not register, say), register again, then fall back to the global
            // one, slow but needing no registration.
            // Safety: `membarrier` system calls: they read and write no memory of ours.
            let call =
                |command: libc::c_long| unsafe { libc::syscall(libc::SYS_membarrier, command, 0) };
            if call(PRIVATE_EXPEDITED) == 0
                || (call(REGISTER_PRIVATE_EXPEDITED) == 0 && call(PRIVATE_EXPEDITED) == 0)
            {
                return;
            }
            assert_eq!(
                call(GLOBAL),
                0,
                "lanemap: no membarrier command works any more"
            );
            return;
        }
        let _ = asymmetric;
        crate::sync::fence(crate::sync::Ordering::SeqCst);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::WriterLock;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    /// Increments of a plain counter under the lock: none may be lost.
    #[test]
    fn excludes() {
        let threads = 4;
        let rounds = if cfg!(miri) { 50 } else { 100_000 };
        let lock = Arc::new(WriterLock::new(0_u64));
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    for _ in 0..rounds {
                        *lock.lock() += 1;
                    }
                });
            }
        });
        assert_eq!(*lock.lock(), threads * rounds);
    }

    /// A waiter that went to sleep behind a holder is woken by its unlock, round after round,
    /// with each unlock racing the waiter's decision to sleep. A wake-up lost in that race
    /// leaves the waiter asleep on a free lock: the watchdog reports it rather than hanging.
    /// The lock takes the barrier on every sleep, so that this tests the protocol itself.
    #[test]
    fn wakes_every_sleeper() {
        wakes_every_sleeper_of(WriterLock::exact(0), 100_000);
    }

    /// As above, with the short first sleeps the map's locks take: the waiter never hangs.
    #[test]
    fn wakes_every_sleeper_after_short_sleeps() {
        wakes_every_sleeper_of(WriterLock::new(0), 20_000);
    }

    fn wakes_every_sleeper_of(lock: WriterLock<usize>, rounds: usize) {
        let rounds = if cfg!(miri) { 20 } else { rounds };
        let lock = Arc::new(lock);
        let done = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let waiter = {
            let (lock, done, stop) = (lock.clone(), done.clone(), stop.clone());
            std::thread::spawn(move || {
                for round in 0..rounds {
                    // Wait for the holder to take round `round`'s lock, then queue behind it.
                    while *lock.lock() != round + 1 {
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        std::thread::yield_now();
                    }
                    done.store(round + 1, Ordering::Release);
                }
            })
        };
        for round in 0..rounds {
            {
                let mut held = lock.lock();
                *held = round + 1;
                // Hold it for a varying while, so the waiter is spinning, yielding or asleep
                // when it is released.
                for _ in 0..(round % 64) * 16 {
                    std::hint::spin_loop();
                }
            }
            let started = Instant::now();
            while done.load(Ordering::Acquire) != round + 1 {
                if started.elapsed() > Duration::from_secs(10) {
                    stop.store(true, Ordering::Relaxed);
                    // Wake it for the join: a new unlock notifies the lost sleeper.
                    drop(lock.lock());
                    waiter.join().unwrap();
                    panic!("round {round}: the waiter slept through the unlock of a free lock");
                }
                std::thread::yield_now();
            }
        }
        waiter.join().unwrap();
    }

    /// A panic while holding the lock releases it (no poisoning).
    #[test]
    fn a_panicking_holder_releases() {
        let lock = WriterLock::new(1);
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut held = lock.lock();
            *held = 2;
            panic!("inside");
        }));
        assert!(panicked.is_err());
        assert_eq!(*lock.lock(), 2);
    }
}

/// loom models: every interleaving of two and three writers, with waiters that sleep after one
/// try (`SPINS` is 1 under loom). A lost wake-up leaves a thread asleep on a free lock, which
/// loom reports as a deadlock. Their tooth: `--cfg lanemap_broken_lock_barrier` drops both
/// halves of the barrier, and `two_writers_both_finish` then fails.
///
/// ```sh
/// RUSTFLAGS="--cfg loom" cargo test -p lanemap --release --lib writer_lock
/// ```
#[cfg(all(test, loom))]
mod loom_models {
    use super::WriterLock;
    use loom::sync::Arc;
    use loom::thread;

    #[test]
    fn two_writers_both_finish() {
        loom::model(|| {
            let lock = Arc::new(WriterLock::new(0));
            let other = {
                let lock = lock.clone();
                thread::spawn(move || *lock.lock() += 1)
            };
            *lock.lock() += 1;
            other.join().unwrap();
            assert_eq!(*lock.lock(), 2);
        });
    }

    #[test]
    fn three_writers_all_finish() {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(2);
        builder.check(|| {
            let lock = Arc::new(WriterLock::new(0));
            let others: Vec<_> = (0..2)
                .map(|_| {
                    let lock = lock.clone();
                    thread::spawn(move || *lock.lock() += 1)
                })
                .collect();
            *lock.lock() += 1;
            for other in others {
                other.join().unwrap();
            }
            assert_eq!(*lock.lock(), 3);
        });
    }
}
