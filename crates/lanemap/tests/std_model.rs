//! Differential test: random sequences of every operation, run on a map and on std's
//! `HashMap`, must give the same results step by step and leave the same contents.
//!
//! Keys come from a space of 12 so that the same keys are inserted, removed and re-inserted
//! many times; maps start with 1, 2 or 64 shards and room for at most 3 entries so that shards
//! grow (and, after removals, rehash in place) within a sequence.

mod common;

use common::{ConcurrentMap, Family, map_tests, sorted_entries};
use lanemap::{CompareExchangeError, Computed, Op};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::cell::Cell;
use std::collections::HashMap as StdMap;

/// Cases per map type (the issue asks for at least 1024).
const CASES: u32 = 1024;
const KEYS: u8 = 12;
/// Values stay small so that `compare_exchange` and `remove_if` often succeed.
const VALUES: u32 = 6;

#[derive(Debug, Clone)]
enum ComputeOp {
    Keep,
    Set(u32),
    Remove,
    /// `Set(current + n)` if present, else `Keep`.
    AddIfPresent(u32),
}

#[derive(Debug, Clone)]
enum Step {
    Get(u8),
    GetWith(u8),
    GetKeyValue(u8),
    ContainsKey(u8),
    Insert(u8, u32),
    Remove(u8),
    RemoveEntry(u8),
    GetOrInsertWith(u8, u32),
    /// Add to the value in place.
    Update(u8, u32),
    /// Insert the first value if absent, else add the second.
    Upsert(u8, u32, u32),
    Compute(u8, ComputeOp),
    /// Remove if the value is a multiple of the number.
    RemoveIf(u8, u32),
    CompareExchange(u8, u32, u32),
    Swap(u8, u32),
    /// Add the second number to every value, then keep those whose key is not a multiple of
    /// the first.
    Retain(u8, u32),
    Clear,
    Len,
    Iter,
    ForEach,
}

fn key() -> impl Strategy<Value = u8> {
    0..KEYS
}

fn value() -> impl Strategy<Value = u32> {
    0..VALUES
}

fn step() -> impl Strategy<Value = Step> {
    let compute_op = prop_oneof![
        Just(ComputeOp::Keep),
        value().prop_map(ComputeOp::Set),
        Just(ComputeOp::Remove),
        (1..3u32).prop_map(ComputeOp::AddIfPresent),
    ];
    prop_oneof![
        3 => key().prop_map(Step::Get),
        1 => key().prop_map(Step::GetWith),
        1 => key().prop_map(Step::GetKeyValue),
        1 => key().prop_map(Step::ContainsKey),
        6 => (key(), value()).prop_map(|(k, v)| Step::Insert(k, v)),
        3 => key().prop_map(Step::Remove),
        1 => key().prop_map(Step::RemoveEntry),
        2 => (key(), value()).prop_map(|(k, v)| Step::GetOrInsertWith(k, v)),
        2 => (key(), 1..3u32).prop_map(|(k, n)| Step::Update(k, n)),
        2 => (key(), value(), 1..3u32).prop_map(|(k, v, n)| Step::Upsert(k, v, n)),
        3 => (key(), compute_op).prop_map(|(k, op)| Step::Compute(k, op)),
        2 => (key(), 1..4u32).prop_map(|(k, m)| Step::RemoveIf(k, m)),
        2 => (key(), value(), value()).prop_map(|(k, c, n)| Step::CompareExchange(k, c, n)),
        2 => (key(), value()).prop_map(|(k, v)| Step::Swap(k, v)),
        1 => (2..5u8, 0..2u32).prop_map(|(m, n)| Step::Retain(m, n)),
        1 => Just(Step::Clear),
        1 => Just(Step::Len),
        1 => Just(Step::Iter),
        1 => Just(Step::ForEach),
    ]
}

/// A map layout and the steps to run on it.
fn scenario() -> impl Strategy<Value = (usize, usize, Vec<Step>)> {
    (
        prop::sample::select(vec![1usize, 2, 64]),
        0..4usize,
        prop::collection::vec(step(), 1..64),
    )
}

fn check<T: PartialEq + std::fmt::Debug>(
    index: usize,
    step: &Step,
    map: T,
    model: T,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        map,
        model,
        "step {} ({:?}): the map and std disagree",
        index,
        step
    );
    Ok(())
}

fn run_steps<F: Family>(
    shards: usize,
    capacity: usize,
    steps: &[Step],
) -> Result<(), TestCaseError> {
    let map = <F::Map<u8, u32> as ConcurrentMap<u8, u32>>::with_layout(shards, capacity);
    let mut model: StdMap<u8, u32> = StdMap::new();
    for (i, step) in steps.iter().enumerate() {
        match *step {
            Step::Get(k) => check(i, step, map.get(&k), model.get(&k).copied())?,
            Step::GetWith(k) => {
                check(
                    i,
                    step,
                    map.get_with(&k, |v| v * 10 + 1),
                    model.get(&k).map(|v| v * 10 + 1),
                )?;
            }
            Step::GetKeyValue(k) => check(
                i,
                step,
                map.get_key_value(&k),
                model.get_key_value(&k).map(|(k, v)| (*k, *v)),
            )?,
            Step::ContainsKey(k) => check(i, step, map.contains_key(&k), model.contains_key(&k))?,
            Step::Insert(k, v) => check(i, step, map.insert(k, v), model.insert(k, v))?,
            Step::Remove(k) => check(i, step, map.remove(&k), model.remove(&k))?,
            Step::RemoveEntry(k) => check(i, step, map.remove_entry(&k), model.remove_entry(&k))?,
            Step::GetOrInsertWith(k, v) => {
                let ran = Cell::new(0);
                let got = map.get_or_insert_with(k, || {
                    ran.set(ran.get() + 1);
                    v
                });
                let absent = !model.contains_key(&k);
                let expected = *model.entry(k).or_insert(v);
                check(i, step, (got, ran.get()), (expected, usize::from(absent)))?;
            }
            Step::Update(k, n) => {
                let got = map.update(&k, |v| {
                    *v += n;
                    *v
                });
                let expected = model.get_mut(&k).map(|v| {
                    *v += n;
                    *v
                });
                check(i, step, got, expected)?;
            }
            Step::Upsert(k, v, n) => {
                let (inserted, updated) = (Cell::new(0), Cell::new(0));
                map.upsert(
                    k,
                    || {
                        inserted.set(inserted.get() + 1);
                        v
                    },
                    |old| {
                        updated.set(updated.get() + 1);
                        *old += n;
                    },
                );
                let present = model.contains_key(&k);
                model.entry(k).and_modify(|old| *old += n).or_insert(v);
                check(
                    i,
                    step,
                    (inserted.get(), updated.get()),
                    (usize::from(!present), usize::from(present)),
                )?;
            }
            Step::Compute(k, ref op) => {
                let seen = Cell::new(None);
                let decide = |current: Option<u32>| match *op {
                    ComputeOp::Keep => Op::Keep,
                    ComputeOp::Set(v) => Op::Set(v),
                    ComputeOp::Remove => Op::Remove,
                    ComputeOp::AddIfPresent(n) => current.map_or(Op::Keep, |v| Op::Set(v + n)),
                };
                let got = map.compute(k, |current| {
                    seen.set(Some(current.copied()));
                    decide(current.copied())
                });
                let current = model.get(&k).copied();
                let expected = match (decide(current), current) {
                    (Op::Keep, _) | (Op::Remove, None) => Computed::Unchanged,
                    (Op::Set(v), None) => {
                        model.insert(k, v);
                        Computed::Inserted
                    }
                    (Op::Set(v), Some(old)) => {
                        model.insert(k, v);
                        Computed::Replaced(old)
                    }
                    (Op::Remove, Some(old)) => {
                        model.remove(&k);
                        Computed::Removed(old)
                    }
                };
                check(i, step, (got, seen.get()), (expected, Some(current)))?;
            }
            Step::RemoveIf(k, m) => {
                let ran = Cell::new(false);
                let got = map.remove_if(&k, |v| {
                    ran.set(true);
                    v % m == 0
                });
                let present = model.contains_key(&k);
                let expected = match model.get(&k) {
                    Some(v) if v % m == 0 => model.remove(&k),
                    _ => None,
                };
                check(i, step, (got, ran.get()), (expected, present))?;
            }
            Step::CompareExchange(k, current, new) => {
                let got = map.compare_exchange(&k, &current, new);
                let expected = match model.get_mut(&k) {
                    Some(v) if *v == current => Ok(std::mem::replace(v, new)),
                    Some(v) => Err(CompareExchangeError {
                        current: Some(*v),
                        new,
                    }),
                    None => Err(CompareExchangeError { current: None, new }),
                };
                check(i, step, got, expected)?;
            }
            Step::Swap(k, v) => {
                let expected = match model.get_mut(&k) {
                    Some(old) => Ok(std::mem::replace(old, v)),
                    None => Err(v),
                };
                check(i, step, map.swap(&k, v), expected)?;
            }
            Step::Retain(m, n) => {
                let mut visited = Vec::new();
                // Maps whose retain can change values do; the others only filter.
                let mutated = map.retain_mut(|k, v| {
                    visited.push(*k);
                    *v += n;
                    k % m != 0
                });
                if !mutated {
                    map.retain(|k, _| {
                        visited.push(*k);
                        k % m != 0
                    });
                }
                visited.sort_unstable();
                let mut expected: Vec<u8> = model.keys().copied().collect();
                expected.sort_unstable();
                check(i, step, visited, expected)?;
                model.retain(|k, v| {
                    if mutated {
                        *v += n;
                    }
                    k % m != 0
                });
            }
            Step::Clear => {
                map.clear();
                model.clear();
            }
            Step::Len => check(
                i,
                step,
                (map.len(), map.is_empty()),
                (model.len(), model.is_empty()),
            )?,
            Step::Iter => check(i, step, sorted_entries(&map), sorted(&model))?,
            Step::ForEach => {
                let mut seen = Vec::new();
                map.for_each(|k, v| seen.push((*k, *v)));
                seen.sort_unstable();
                check(i, step, seen, sorted(&model))?;
            }
        }
        // After every step: the cheap counters agree.
        check(
            i,
            step,
            (map.len(), map.is_empty()),
            (model.len(), model.is_empty()),
        )?;
    }
    // At the end: the same contents, found by lookup as well as by iteration.
    prop_assert_eq!(sorted_entries(&map), sorted(&model));
    for k in 0..KEYS {
        prop_assert_eq!(map.get(&k), model.get(&k).copied(), "final get({})", k);
    }
    let owned: Vec<(u8, u32)> = {
        let copy = map.clone();
        drop(map);
        sorted_entries(&copy)
    };
    prop_assert_eq!(owned, sorted(&model));
    Ok(())
}

fn sorted(model: &StdMap<u8, u32>) -> Vec<(u8, u32)> {
    let mut entries: Vec<_> = model.iter().map(|(k, v)| (*k, *v)).collect();
    entries.sort_unstable();
    entries
}

fn matches_std_hash_map<F: Family>() {
    let config = Config {
        cases: if cfg!(miri) { 8 } else { CASES },
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&scenario(), |(shards, capacity, steps)| {
        run_steps::<F>(shards, capacity, &steps)
    });
    if let Err(error) = result {
        panic!("{error}");
    }
}

map_tests!(matches_std_hash_map);
