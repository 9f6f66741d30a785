//! The linearizability checker: Wing & Gong's search with Lowe's memoization, split per key.
//!
//! A history is linearizable if each operation can be given one instant between its call and
//! its return such that, replayed in that order, the sequential [model](crate::model) returns
//! what the operations really returned. Operations on different keys commute, so each key is
//! checked alone (P-compositionality), which keeps every search small.
//!
//! The search walks a list of call and return entries sorted by time. At a call it tries to
//! linearize that operation next (the model must agree with its result) and restarts from the
//! list's head; at a return whose operation is not linearized yet it backtracks, since that
//! operation must come before everything still in the list. A cache of (set of linearized
//! operations, state) pairs already explored (Lowe's memoization) keeps the search polynomial
//! when few operations overlap, as here, where at most one operation per thread is open.
//!
//! On a violation the failing key's history is shrunk, using only cuts that keep a failing
//! history failing (so the output is a real witness, not an artefact of the shrinking):
//! truncating at an instant (operations still open there become "pending": they may or may not
//! have taken effect), starting after a quiescent instant whose value every linearization of
//! the earlier operations agrees on, and deleting operations that change nothing.

use crate::history::{Event, History, Ret};
use crate::model::{State, is_read_only, step};
use std::collections::{HashMap, HashSet};
use std::fmt;

/// What a successful check covered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checked {
    /// Operations checked.
    pub ops: usize,
    /// Distinct keys among them.
    pub keys: usize,
}

/// A history that cannot be linearized, reduced to a small per-key witness.
#[derive(Debug, Clone)]
pub struct Violation {
    /// The key whose history fails.
    pub key: u64,
    /// How many operations the full history had on that key.
    pub ops_on_key: usize,
    /// The key's state at the start of the witness (`None`: absent). Either the map's initial
    /// state, or the value every linearization of the earlier operations ends with.
    pub initial: State,
    /// The witness: a sub-history of the key that cannot be linearized, sorted by call time.
    pub witness: Vec<Event>,
    /// The last operations that returned before the witness starts: they fixed its starting
    /// state (shown for context; not part of the witness).
    pub context: Vec<Event>,
}

impl std::error::Error for Violation {}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "linearizability violation on key {}: its {} operations admit no sequential order.",
            self.key, self.ops_on_key
        )?;
        writeln!(
            f,
            "A smallest failing sub-history ({} operations), starting with the key {}:",
            self.witness.len(),
            match self.initial {
                None => "absent".to_string(),
                Some(v) => format!("holding {v}"),
            }
        )?;
        let base = self.witness.iter().map(|e| e.start).min().unwrap_or(0);
        let header = |f: &mut fmt::Formatter<'_>| {
            writeln!(
                f,
                "  {:<7} {:>12} {:>12}  {:<34} returned",
                "thread", "call", "return", "operation"
            )
        };
        header(f)?;
        for e in &self.witness {
            write_event(f, e, base)?;
        }
        if !self.context.is_empty() {
            writeln!(
                f,
                "Context: the last operations before it, which left that state:"
            )?;
            header(f)?;
            for e in &self.context {
                write_event(f, e, base)?;
            }
        }
        write!(
            f,
            "(times are clock ticks after the witness's first call: ns for real threads)"
        )
    }
}

fn write_event(f: &mut fmt::Formatter<'_>, e: &Event, base: u64) -> fmt::Result {
    let signed = |t: u64| {
        if t >= base {
            (t - base).to_string()
        } else {
            format!("-{}", base - t)
        }
    };
    let end = if e.end == u64::MAX {
        "-".to_string()
    } else {
        signed(e.end)
    };
    writeln!(
        f,
        "  t{:<6} {:>12} {:>12}  {:<34} {}",
        e.thread,
        signed(e.start),
        end,
        e.call.to_string(),
        e.ret
    )
}

/// Checks a whole history, key by key.
///
/// # Errors
/// The first key whose history cannot be linearized, with a shrunk witness.
pub fn check(history: &History) -> Result<Checked, Box<Violation>> {
    let mut by_key: HashMap<u64, Vec<Event>> = HashMap::new();
    for event in &history.events {
        by_key.entry(event.key).or_default().push(*event);
    }
    let keys = by_key.len();
    // Check keys in a fixed order so that a failing run reports the same key when replayed.
    let mut keys_sorted: Vec<u64> = by_key.keys().copied().collect();
    keys_sorted.sort_unstable();
    for key in keys_sorted {
        let events = &by_key[&key];
        if !linearizable(events, None) {
            return Err(Box::new(shrink(key, events.clone())));
        }
    }
    Ok(Checked {
        ops: history.len(),
        keys,
    })
}

/// Whether one key's events, starting from `initial`, can be linearized.
pub fn linearizable(events: &[Event], initial: State) -> bool {
    search(events, initial, events.len(), |_, _| true)
}

/// Every outcome of linearizing the first `required` of `events` (sorted by call) together
/// with any subset of the others: the final state and which of the others were included.
fn outcomes(events: &[Event], initial: State, required: usize) -> Vec<(State, Vec<u64>)> {
    let mut found = Vec::new();
    search(events, initial, required, |state, linearized| {
        let mut optional = linearized.to_vec();
        for i in 0..required {
            optional[i / 64] &= !(1 << (i % 64));
        }
        if !found.iter().any(|(s, o)| *s == state && *o == optional) {
            found.push((state, optional));
        }
        false
    });
    found
}

const NIL: usize = usize::MAX;

/// One entry of the doubly linked list the search walks: the call or the return of an op.
#[derive(Clone, Copy)]
struct Node {
    op: usize,
    is_call: bool,
    prev: usize,
    next: usize,
    /// For a call, its return's node.
    partner: usize,
}

/// The Wing & Gong / Lowe search. A linearization is complete when it includes every
/// completed operation among the first `required` events; the others (and pending ones) may be
/// left out. `done` is told the final state and the set of operations of each complete
/// linearization found, and says whether to stop (`true`) or to look for more.
/// Returns whether `done` asked to stop.
fn search(
    events: &[Event],
    initial: State,
    required: usize,
    mut done: impl FnMut(State, &[u64]) -> bool,
) -> bool {
    let n = events.len();
    // Calls before returns at equal instants: such operations count as overlapping, which can
    // only accept more histories (no false alarm from a coarse clock).
    let mut order: Vec<(u64, bool, usize)> = Vec::with_capacity(2 * n);
    for (i, e) in events.iter().enumerate() {
        order.push((e.start, false, i));
        order.push((e.end, true, i));
    }
    order.sort_unstable();
    // Node 0 is the head sentinel; node k + 1 is order[k].
    let mut nodes = Vec::with_capacity(2 * n + 1);
    nodes.push(Node {
        op: NIL,
        is_call: false,
        prev: NIL,
        next: NIL,
        partner: NIL,
    });
    let mut call_node = vec![NIL; n];
    for (k, &(_, is_return, op)) in order.iter().enumerate() {
        let idx = k + 1;
        nodes[k].next = idx;
        nodes.push(Node {
            op,
            is_call: !is_return,
            prev: k,
            next: NIL,
            partner: NIL,
        });
        if is_return {
            nodes[call_node[op]].partner = idx;
        } else {
            call_node[op] = idx;
        }
    }

    let must = |op: usize| op < required && events[op].ret != Ret::Pending;
    let completed = (0..n).filter(|&op| must(op)).count();
    let mut linearized_completed = 0;
    let mut linearized = vec![0u64; n.div_ceil(64)];
    let mut seen: HashSet<(Vec<u64>, State), lanemap::DefaultHashBuilder> = HashSet::default();
    let mut stack: Vec<(usize, State)> = Vec::new();
    let mut state = initial;
    if completed == 0 && done(state, &linearized) {
        return true;
    }
    let mut entry = nodes[0].next;
    loop {
        if entry != NIL && nodes[entry].is_call {
            let op = nodes[entry].op;
            if let Some(next) = step(state, events[op].call, events[op].ret) {
                linearized[op / 64] |= 1 << (op % 64);
                if seen.insert((linearized.clone(), next)) {
                    stack.push((entry, state));
                    state = next;
                    if must(op) {
                        linearized_completed += 1;
                    }
                    lift(&mut nodes, entry);
                    if linearized_completed == completed && done(state, &linearized) {
                        return true;
                    }
                    entry = nodes[0].next;
                    continue;
                }
                linearized[op / 64] &= !(1 << (op % 64));
            }
            entry = nodes[entry].next;
            continue;
        }
        // A return reached (its op must precede everything left) or the list exhausted: undo
        // the last choice and try the next one.
        let Some((call, previous)) = stack.pop() else {
            return false;
        };
        let op = nodes[call].op;
        linearized[op / 64] &= !(1 << (op % 64));
        if must(op) {
            linearized_completed -= 1;
        }
        state = previous;
        unlift(&mut nodes, call);
        entry = nodes[call].next;
    }
}

/// Takes a call and its return out of the list; their own links stay, for [`unlift`].
fn lift(nodes: &mut [Node], call: usize) {
    for idx in [call, nodes[call].partner] {
        let Node { prev, next, .. } = nodes[idx];
        nodes[prev].next = next;
        if next != NIL {
            nodes[next].prev = prev;
        }
    }
}

/// Puts back what [`lift`] took out, in the reverse order.
fn unlift(nodes: &mut [Node], call: usize) {
    for idx in [nodes[call].partner, call] {
        let Node { prev, next, .. } = nodes[idx];
        nodes[prev].next = idx;
        if next != NIL {
            nodes[next].prev = idx;
        }
    }
}

/// The history as it stood at instant `t`: operations called later are dropped, those still
/// open become pending.
fn truncate(events: &[Event], t: u64) -> Vec<Event> {
    events
        .iter()
        .filter(|e| e.start <= t)
        .map(|e| {
            if e.end > t {
                Event {
                    ret: Ret::Pending,
                    end: u64::MAX,
                    ..*e
                }
            } else {
                *e
            }
        })
        .collect()
}

/// How many operations before the witness are shown for context.
const CONTEXT: usize = 6;

/// Shrinks one key's failing history to a small witness (see the module docs).
fn shrink(key: u64, mut events: Vec<Event>) -> Violation {
    let ops_on_key = events.len();
    events.sort_by_key(|e| (e.start, e.end));
    let mut initial = None;
    let mut context = Vec::new();

    // 1. The earliest cut that already fails: a prefix of a linearizable history is
    //    linearizable, so failing is monotone in the cut and a binary search finds it.
    let mut cuts: Vec<u64> = events.iter().map(|e| e.start).collect();
    cuts.dedup();
    let (mut lo, mut hi) = (0, cuts.len()); // `hi == cuts.len()` stands for "no cut".
    while lo < hi {
        let mid = (lo + hi) / 2;
        if linearizable(&truncate(&events, cuts[mid]), None) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if hi < cuts.len() {
        events = truncate(&events, cuts[hi]);
    }

    // 2. Start at the latest instant `t` at which the earlier operations leave exactly one
    //    possibility: one state, with a known set of the operations open at `t` already
    //    applied. Every linearization of the history passes through it, so the rest (minus
    //    the applied ones) must fail from that state. Operations are sorted by call, so the
    //    ones called before `t` form a prefix; among them, those that returned before `t` must
    //    be linearized before it, those still open may or may not be.
    for cut in (1..events.len()).rev().take(256) {
        let t = events[cut].start;
        let (before, _) = events.split_at(cut);
        // Reorder the prefix: finished operations first (required), open ones after.
        let (mut done, open): (Vec<Event>, Vec<Event>) = before.iter().partition(|e| e.end < t);
        let required = done.len();
        done.extend(open.iter().copied());
        if let [(state, applied)] = &outcomes(&done, initial, required)[..] {
            let mut rest: Vec<Event> = open
                .iter()
                .enumerate()
                .filter(|&(i, _)| applied[(required + i) / 64] & (1 << ((required + i) % 64)) == 0)
                .map(|(_, e)| *e)
                .collect();
            rest.extend_from_slice(&events[cut..]);
            if !linearizable(&rest, *state) {
                rest.sort_by_key(|e| (e.start, e.end));
                let mut finished: Vec<Event> = done[..required].to_vec();
                finished.sort_by_key(|e| e.end);
                context = finished[finished.len().saturating_sub(CONTEXT)..].to_vec();
                events = rest;
                initial = *state;
                break;
            }
        }
    }

    // 3. Drop operations that change nothing, one at a time, while the rest still fails.
    let mut i = events.len();
    while i > 0 {
        i -= 1;
        if is_read_only(events[i].call, events[i].ret) {
            let removed = events.remove(i);
            if linearizable(&events, initial) {
                events.insert(i, removed);
            }
        }
    }
    Violation {
        key,
        ops_on_key,
        initial,
        witness: events,
        context,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Call;

    fn ev(thread: u32, start: u64, end: u64, call: Call, ret: Ret) -> Event {
        Event {
            thread,
            key: 1,
            call,
            ret,
            start,
            end,
        }
    }

    #[test]
    fn accepts_overlapping_operations_in_either_order() {
        // t1's insert overlaps t2's get, which may see either state.
        let h = [
            ev(1, 0, 10, Call::Insert(3), Ret::Value(None)),
            ev(2, 1, 5, Call::Get, Ret::Value(Some(3))),
            ev(2, 6, 9, Call::Get, Ret::Value(Some(3))),
        ];
        assert!(linearizable(&h, None));
        let h2 = [h[0], ev(2, 1, 5, Call::Get, Ret::Value(None)), h[2]];
        assert!(linearizable(&h2, None));
    }

    #[test]
    fn rejects_a_stale_read_after_the_write_returned() {
        let h = [
            ev(1, 0, 10, Call::Insert(3), Ret::Value(None)),
            ev(2, 11, 12, Call::Get, Ret::Value(None)),
        ];
        assert!(!linearizable(&h, None));
    }

    #[test]
    fn rejects_two_winners_of_insert_if_absent_and_shrinks_to_them() {
        let h = History {
            events: vec![
                ev(1, 0, 1, Call::Insert(5), Ret::Value(None)),
                ev(1, 2, 3, Call::Remove, Ret::Value(Some(5))),
                ev(
                    1,
                    4,
                    20,
                    Call::GetOrInsertWith(1),
                    Ret::Made {
                        value: 1,
                        made: true,
                    },
                ),
                ev(
                    2,
                    5,
                    21,
                    Call::GetOrInsertWith(2),
                    Ret::Made {
                        value: 2,
                        made: true,
                    },
                ),
                ev(3, 6, 7, Call::Get, Ret::Value(None)),
                ev(3, 30, 31, Call::Get, Ret::Value(Some(2))),
            ],
        };
        let v = check(&h).unwrap_err();
        assert_eq!(v.witness.len(), 2, "{v}");
        assert!(
            v.witness
                .iter()
                .all(|e| matches!(e.call, Call::GetOrInsertWith(_))),
            "{v}"
        );
        let text = v.to_string();
        assert!(text.contains("get_or_insert_with(|| 2)"), "{text}");
    }

    #[test]
    fn pending_operations_may_or_may_not_take_effect() {
        let pending = ev(1, 0, u64::MAX, Call::Insert(4), Ret::Pending);
        let seen = ev(2, 5, 6, Call::Get, Ret::Value(Some(4)));
        let unseen = ev(2, 5, 6, Call::Get, Ret::Value(None));
        assert!(linearizable(&[pending, seen], None));
        assert!(linearizable(&[pending, unseen], None));
    }

    #[test]
    fn outcomes_lists_every_final_state() {
        let h = [
            ev(1, 0, 10, Call::Insert(1), Ret::Value(None)),
            ev(2, 0, 10, Call::Insert(2), Ret::Value(None)),
        ];
        // Both cannot have found the key absent.
        assert!(!linearizable(&h, None));
        let h = [
            ev(1, 0, 10, Call::Insert(1), Ret::Value(None)),
            ev(2, 0, 10, Call::Insert(2), Ret::Value(Some(1))),
        ];
        assert_eq!(outcomes(&h, None, 2), vec![(Some(2), vec![0])]);
        // With the second optional: it may come last or not at all.
        assert_eq!(outcomes(&h, None, 1).len(), 2);
    }
}
