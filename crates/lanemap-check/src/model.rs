//! The sequential specification of one key: its value, or its absence.
//!
//! Operations on different keys commute, so a map history is linearizable exactly when each
//! key's sub-history is (P-compositionality); the checker therefore only needs this one-key
//! model.

use crate::history::{Call, Ret};
use lanemap::{Computed, Op};

/// Values live in `0..VALUES`: a small range makes `compare_exchange` and `remove_if` succeed
/// often enough to matter.
pub const VALUES: u64 = 8;

/// The state of one key.
pub type State = Option<u64>;

/// The decision `compute` takes for argument `a`, a fixed function of the current value so that
/// the model can replay it: insert `a` when absent, remove multiples of 3, keep values `≡ 1
/// (mod 3)`, otherwise add `a`.
pub fn compute_rule(a: u64, current: Option<&u64>) -> Op<u64> {
    match current {
        None => Op::Set(a),
        Some(&x) if x % 3 == 0 => Op::Remove,
        Some(&x) if x % 3 == 1 => Op::Keep,
        Some(&x) => Op::Set((x + a) % VALUES),
    }
}

/// The new value `update` stores for argument `d`.
pub fn update_rule(d: u64, current: u64) -> u64 {
    (current + d) % VALUES
}

/// Applies `call` to `state` sequentially: the state after it and what it must return.
pub fn apply(state: State, call: Call) -> (State, Ret) {
    match call {
        Call::Get => (state, Ret::Value(state)),
        Call::Insert(v) => (Some(v), Ret::Value(state)),
        Call::Remove => (None, Ret::Value(state)),
        Call::GetOrInsertWith(v) => match state {
            Some(x) => (
                state,
                Ret::Made {
                    value: x,
                    made: false,
                },
            ),
            None => (
                Some(v),
                Ret::Made {
                    value: v,
                    made: true,
                },
            ),
        },
        Call::Update(d) => (state.map(|x| update_rule(d, x)), Ret::Value(state)),
        Call::Compute(a) => match (state, compute_rule(a, state.as_ref())) {
            (None, Op::Set(v)) => (Some(v), Ret::Computed(Computed::Inserted)),
            (None, Op::Keep | Op::Remove) => (None, Ret::Computed(Computed::Unchanged)),
            (Some(x), Op::Set(v)) => (Some(v), Ret::Computed(Computed::Replaced(x))),
            (Some(_), Op::Keep) => (state, Ret::Computed(Computed::Unchanged)),
            (Some(x), Op::Remove) => (None, Ret::Computed(Computed::Removed(x))),
        },
        Call::RemoveIf(v) => match state {
            Some(x) if x == v => (None, Ret::Value(Some(x))),
            _ => (state, Ret::Value(None)),
        },
        Call::CompareExchange { current, new } => match state {
            Some(x) if x == current => (Some(new), Ret::Cas(Ok(x))),
            _ => (state, Ret::Cas(Err(state))),
        },
        Call::Swap(v) => match state {
            Some(x) => (Some(v), Ret::Swap(Ok(x))),
            None => (None, Ret::Swap(Err(v))),
        },
    }
}

/// One step of the specification: the state after `call` if it may have returned `ret` from
/// `state`, `None` if it may not. A pending call may have returned anything.
#[inline]
pub fn step(state: State, call: Call, ret: Ret) -> Option<State> {
    let (next, expected) = apply(state, call);
    (ret == Ret::Pending || ret == expected).then_some(next)
}

/// Whether an operation that returned `ret` left the key as it found it, whatever the state
/// was. Removing such operations from a history cannot make a linearizable history
/// non-linearizable, which is what lets the checker shrink failing histories soundly.
pub fn is_read_only(call: Call, ret: Ret) -> bool {
    matches!(
        (call, ret),
        (Call::Get, _)
            | (
                Call::Remove | Call::Update(_) | Call::RemoveIf(_),
                Ret::Value(None)
            )
            | (Call::GetOrInsertWith(_), Ret::Made { made: false, .. })
            | (Call::Compute(_), Ret::Computed(Computed::Unchanged))
            | (Call::CompareExchange { .. }, Ret::Cas(Err(_)))
            | (Call::Swap(_), Ret::Swap(Err(_)))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_follows_sharded_map() {
        // The model must agree with the real map sequentially, or every check is meaningless.
        let map: lanemap::ShardedMap<u64, u64> = lanemap::ShardedMap::new();
        let mut state: State = None;
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..20_000 {
            let call = crate::workload::Mix::ALL_OPS.call(&mut rng);
            let ret = crate::maps::apply(&map, 0, call);
            let (next, expected) = apply(state, call);
            assert_eq!(ret, expected, "{call} from {state:?}");
            state = next;
        }
    }
}
