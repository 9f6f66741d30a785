//! Key and value types that watch what the map does with them.
//!
//! - [`Tracked`] counts its live instances in a per-test [`Lab`] and panics on demand in `Hash`,
//!   `Eq`, `Clone` or `Drop`: panic-safety tests.
//! - [`Probe`] runs a hook armed on the current thread from its `Clone`, `Eq`, `Debug` or `Drop`:
//!   re-entrancy tests (the hook calls the map back).

use std::cell::RefCell;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};

/// Where a [`Tracked`] value can be told to panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trap {
    Hash,
    Eq,
    Clone,
    Drop,
}

const TRAPS: usize = 4;

/// The shared bookkeeping of one test's [`Tracked`] values.
#[derive(Debug, Default)]
pub struct Lab {
    /// Instances alive now (made by [`Lab::tracked`] or `clone`, minus drops).
    live: AtomicIsize,
    /// Every key hashes alike, so lookups must call `Eq`.
    collide: bool,
    /// Per trap: 0 = disarmed; n = the n-th call from now panics.
    countdown: [AtomicUsize; TRAPS],
    /// Per trap: how many planned panics went off.
    fired: [AtomicUsize; TRAPS],
}

/// The message of every planned panic starts with this.
pub const PLANNED: &str = "planned panic in";

impl Lab {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// A lab whose keys all have the same hash.
    pub fn colliding() -> Arc<Self> {
        Arc::new(Self {
            collide: true,
            ..Self::default()
        })
    }

    pub fn tracked(self: &Arc<Self>, id: u32) -> Tracked {
        self.live.fetch_add(1, Ordering::SeqCst);
        Tracked {
            id,
            lab: Arc::clone(self),
        }
    }

    /// Makes the `nth` (1-based) call of `trap` from now on panic.
    pub fn arm(&self, trap: Trap, nth: usize) {
        assert!(nth > 0);
        self.countdown[trap as usize].store(nth, Ordering::SeqCst);
    }

    pub fn disarm(&self) {
        for countdown in &self.countdown {
            countdown.store(0, Ordering::SeqCst);
        }
    }

    /// How many planned panics of `trap` went off.
    pub fn fired(&self, trap: Trap) -> usize {
        self.fired[trap as usize].load(Ordering::SeqCst)
    }

    pub fn live(&self) -> isize {
        self.live.load(Ordering::SeqCst)
    }

    /// Counts a call of `trap`; `true` if this is the one that must panic.
    fn tick(&self, trap: Trap) -> bool {
        let countdown = &self.countdown[trap as usize];
        let mut n = countdown.load(Ordering::SeqCst);
        loop {
            if n == 0 {
                return false;
            }
            match countdown.compare_exchange(n, n - 1, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) if n == 1 => {
                    self.fired[trap as usize].fetch_add(1, Ordering::SeqCst);
                    return true;
                }
                Ok(_) => return false,
                Err(actual) => n = actual,
            }
        }
    }
}

/// A key or value that counts its live instances and panics when its [`Lab`] says so.
pub struct Tracked {
    pub id: u32,
    lab: Arc<Lab>,
}

impl Hash for Tracked {
    fn hash<H: Hasher>(&self, state: &mut H) {
        if self.lab.tick(Trap::Hash) {
            panic!("{PLANNED} Hash of {}", self.id);
        }
        if self.lab.collide { 0u32 } else { self.id }.hash(state);
    }
}

impl PartialEq for Tracked {
    fn eq(&self, other: &Self) -> bool {
        if self.lab.tick(Trap::Eq) {
            panic!("{PLANNED} Eq of {}", self.id);
        }
        self.id == other.id
    }
}

impl Eq for Tracked {}

impl Clone for Tracked {
    fn clone(&self) -> Self {
        if self.lab.tick(Trap::Clone) {
            panic!("{PLANNED} Clone of {}", self.id);
        }
        self.lab.tracked(self.id)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.lab.live.fetch_sub(1, Ordering::SeqCst);
        // A second panic while unwinding would abort the test run.
        if !std::thread::panicking() && self.lab.tick(Trap::Drop) {
            panic!("{PLANNED} Drop of {}", self.id);
        }
    }
}

impl fmt::Debug for Tracked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "T{}", self.id)
    }
}

/// Where a [`Probe`] can run the armed hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Site {
    Clone,
    Eq,
    Debug,
    Drop,
}

type Hook = Box<dyn FnOnce()>;

thread_local! {
    static HOOK: RefCell<Option<(Site, Hook)>> = const { RefCell::new(None) };
}

/// Runs `hook` (once) the next time a [`Probe`] on this thread reaches `site`.
pub fn arm_probe(site: Site, hook: impl FnOnce() + 'static) {
    HOOK.with(|slot| *slot.borrow_mut() = Some((site, Box::new(hook))));
}

/// Disarms the hook; `true` if it had fired (was no longer armed).
pub fn probe_fired() -> bool {
    HOOK.with(|slot| slot.borrow_mut().take().is_none())
}

fn reach(site: Site) {
    let hook = HOOK
        .try_with(|slot| {
            let mut slot = slot.borrow_mut();
            match &*slot {
                Some((armed, _)) if *armed == site => slot.take().map(|(_, hook)| hook),
                _ => None,
            }
        })
        .ok()
        .flatten();
    // The slot is no longer borrowed: the hook may arm another one.
    if let Some(hook) = hook {
        hook();
    }
}

/// A key or value whose `Clone`, `Eq`, `Debug` and `Drop` run the hook armed by [`arm_probe`].
pub struct Probe(pub u32);

impl Hash for Probe {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl Clone for Probe {
    fn clone(&self) -> Self {
        reach(Site::Clone);
        Probe(self.0)
    }
}

impl PartialEq for Probe {
    fn eq(&self, other: &Self) -> bool {
        reach(Site::Eq);
        self.0 == other.0
    }
}

impl Eq for Probe {}

impl fmt::Debug for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        reach(Site::Debug);
        write!(f, "P{}", self.0)
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            reach(Site::Drop);
        }
    }
}
