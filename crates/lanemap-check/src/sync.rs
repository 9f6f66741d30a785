//! The broken maps' lock, which must be shuttle's own under `--cfg shuttle` so that shuttle
//! schedules around it.

#[cfg(not(shuttle))]
pub(crate) use std::sync::RwLock;

#[cfg(shuttle)]
pub(crate) use shuttle::sync::RwLock;

/// Widens a race window: gives another thread the chance to run right here.
pub(crate) fn window() {
    #[cfg(not(shuttle))]
    std::thread::yield_now();
    #[cfg(shuttle)]
    shuttle::thread::yield_now();
}
