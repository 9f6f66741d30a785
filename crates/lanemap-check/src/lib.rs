//! Checks lanemap's maps for linearizability, and gives the other test drivers their shared
//! parts.
//!
//! - [`history`]: threads record each operation's arguments, result and call/return instants.
//! - [`model`]: the sequential specification of one key.
//! - [`checker`]: Wing & Gong's search with Lowe's memoization, split per key; on a violation it
//!   prints a shrunk per-key witness.
//! - [`maps`]: the [`CheckedMap`] trait a map implements (one [`forward_checked_map!`] line for
//!   a lanemap map), and [`apply`](maps::apply), which runs a recorded [`Call`] on a map.
//! - [`workload`]: operation mixes and the real-thread stress driver.
//! - [`broken`]: maps with deliberate bugs, which every driver must catch.
//!
//! ```
//! use lanemap::ShardedMap;
//! use lanemap_check::workload::{Mix, Stress, stress};
//!
//! let cfg = Stress { threads: 2, keys: 4, mix: Mix::MIXED, ops_per_round: 1000, capacity: 0 };
//! let checked = stress::<ShardedMap<u64, u64>>(&cfg, 5_000, 1).expect("linearizable");
//! assert!(checked.ops >= 5_000);
//! ```

pub mod broken;
pub mod checker;
pub mod history;
pub mod maps;
pub mod model;
mod sync;
pub mod workload;

pub use checker::{Checked, Violation, check};
pub use history::{Call, Clock, Event, History, Ret};
pub use maps::CheckedMap;

/// Paths the exported macro needs; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use lanemap::{Computed, Op};
}
