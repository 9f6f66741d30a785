//! Recording concurrent histories: what each thread called, with which arguments, what came
//! back, and when (call and return instants on one clock shared by all threads).

use lanemap::Computed;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// One operation on one key, with its arguments (the key is kept in [`Event`]).
///
/// The closures the maps take are fixed functions of these arguments, so the sequential
/// [model](crate::model) can replay them exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// `get(k)`.
    Get,
    /// `insert(k, v)`.
    Insert(u64),
    /// `remove(k)`.
    Remove,
    /// `get_or_insert_with(k, || v)`; the result also says whether the closure ran.
    GetOrInsertWith(u64),
    /// `update(k, |x| { let old = *x; *x = (old + d) % VALUES; old })`.
    Update(u64),
    /// `compute(k, rule(a))`, see [`compute_rule`](crate::model::compute_rule).
    Compute(u64),
    /// `remove_if(k, |x| *x == v)`.
    RemoveIf(u64),
    /// `compare_exchange(k, &current, new)`.
    CompareExchange {
        /// The value expected.
        current: u64,
        /// The value to store.
        new: u64,
    },
    /// `swap(k, v)`: replace only if present.
    Swap(u64),
}

/// What an operation returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ret {
    /// `get`, `insert`, `remove`, `remove_if`: the value returned; `update`: the old value.
    Value(Option<u64>),
    /// `get_or_insert_with`: the value returned and whether the closure ran.
    Made {
        /// The value returned.
        value: u64,
        /// Whether the closure ran (the key was absent).
        made: bool,
    },
    /// `compute`.
    Computed(Computed<u64>),
    /// `compare_exchange`: `Ok(previous)` or `Err(current)`.
    Cas(Result<u64, Option<u64>>),
    /// `swap`: `Ok(previous)`, or `Err(value)` handed back when the key was absent.
    Swap(Result<u64, u64>),
    /// Unknown: the operation had not returned where the history was cut. It may or may not
    /// have taken effect.
    Pending,
}

/// One completed (or, after truncation, pending) operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// The thread (or shuttle task) that ran it.
    pub thread: u32,
    /// The key it acted on.
    pub key: u64,
    /// The operation and its arguments.
    pub call: Call,
    /// What it returned.
    pub ret: Ret,
    /// Clock reading just before the call.
    pub start: u64,
    /// Clock reading just after the return (`u64::MAX` while pending).
    pub end: u64,
}

/// The clock all threads of one history read: strictly increasing readings are not needed,
/// only that a reading taken after another (in real time) is not smaller.
#[derive(Debug)]
pub enum Clock {
    /// Nanoseconds since a shared base, from the OS monotonic clock (for real threads).
    Real(Instant),
    /// A shared counter: for shuttle, whose tasks all run on one OS thread, and for Miri, where
    /// an order between operations must be a happens-before order to bind the memory model
    /// (each reading is a SeqCst read-modify-write, so it synchronizes with the earlier ones).
    Logical(AtomicU64),
}

impl Clock {
    /// A real-time clock starting now.
    pub fn real() -> Self {
        Clock::Real(Instant::now())
    }

    /// A logical clock: each reading is one more than the last.
    pub fn logical() -> Self {
        Clock::Logical(AtomicU64::new(0))
    }

    /// The current reading.
    #[inline]
    pub fn now(&self) -> u64 {
        match self {
            Clock::Real(base) => base.elapsed().as_nanos() as u64,
            // SeqCst: readings from different threads must agree with real-time order, which a
            // single read-modify-write location gives.
            Clock::Logical(counter) => counter.fetch_add(1, Ordering::SeqCst),
        }
    }
}

/// A whole concurrent history, in no particular order.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// Every recorded operation.
    pub events: Vec<Event>,
}

impl History {
    /// Appends the events one thread recorded.
    pub fn extend(&mut self, events: impl IntoIterator<Item = Event>) {
        self.events.extend(events);
    }

    /// The number of operations.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether no operation was recorded.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Call::Get => write!(f, "get"),
            Call::Insert(v) => write!(f, "insert({v})"),
            Call::Remove => write!(f, "remove"),
            Call::GetOrInsertWith(v) => write!(f, "get_or_insert_with(|| {v})"),
            Call::Update(d) => write!(f, "update(+{d})"),
            Call::Compute(a) => write!(f, "compute(rule {a})"),
            Call::RemoveIf(v) => write!(f, "remove_if(== {v})"),
            Call::CompareExchange { current, new } => {
                write!(f, "compare_exchange({current} -> {new})")
            }
            Call::Swap(v) => write!(f, "swap({v})"),
        }
    }
}

impl fmt::Display for Ret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Ret::Value(v) => write!(f, "{v:?}"),
            Ret::Made { value, made: true } => write!(f, "{value} (inserted: closure ran)"),
            Ret::Made { value, made: false } => write!(f, "{value} (found)"),
            Ret::Computed(c) => write!(f, "{c:?}"),
            Ret::Cas(r) => write!(f, "{r:?}"),
            Ret::Swap(r) => write!(f, "{r:?}"),
            Ret::Pending => write!(f, "(pending)"),
        }
    }
}
