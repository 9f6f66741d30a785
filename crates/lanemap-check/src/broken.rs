//! Maps with deliberate bugs, so that every driver can show it catches them ("teeth").
//!
//! [`LockedMap`] is a correct reference (one lock around std's `HashMap`). Each broken map is
//! that map with one operation split into a read and a later write, with the lock released in
//! between: the two classic bugs of hand-written concurrent maps. The gap is widened with a
//! yield (a scheduling point under shuttle), as it would be by an unlucky preemption.

use crate::maps::CheckedMap;
use crate::sync::{RwLock, window};
use lanemap::{Computed, Op};
use std::collections::HashMap;

/// A correct map: every operation runs under one lock.
#[derive(Debug, Default)]
pub struct LockedMap(RwLock<HashMap<u64, u64>>);

impl LockedMap {
    fn read<R>(&self, f: impl FnOnce(&HashMap<u64, u64>) -> R) -> R {
        f(&self.0.read().unwrap())
    }

    fn write<R>(&self, f: impl FnOnce(&mut HashMap<u64, u64>) -> R) -> R {
        f(&mut self.0.write().unwrap())
    }
}

impl CheckedMap for LockedMap {
    fn with_capacity(capacity: usize) -> Self {
        LockedMap(RwLock::new(HashMap::with_capacity(capacity)))
    }
    fn get(&self, k: u64) -> Option<u64> {
        self.read(|m| m.get(&k).copied())
    }
    fn insert(&self, k: u64, v: u64) -> Option<u64> {
        self.write(|m| m.insert(k, v))
    }
    fn remove(&self, k: u64) -> Option<u64> {
        self.write(|m| m.remove(&k))
    }
    fn get_or_insert_with(&self, k: u64, make: impl FnOnce() -> u64) -> u64 {
        self.write(|m| *m.entry(k).or_insert_with(make))
    }
    fn update<R>(&self, k: u64, f: impl FnOnce(&mut u64) -> R) -> Option<R> {
        self.write(|m| m.get_mut(&k).map(f))
    }
    fn compute(&self, k: u64, f: impl FnOnce(Option<&u64>) -> Op<u64>) -> Computed<u64> {
        self.write(|m| match (m.get(&k).copied(), f(m.get(&k))) {
            (None, Op::Set(v)) => {
                m.insert(k, v);
                Computed::Inserted
            }
            (Some(old), Op::Set(v)) => {
                m.insert(k, v);
                Computed::Replaced(old)
            }
            (Some(old), Op::Remove) => {
                m.remove(&k);
                Computed::Removed(old)
            }
            (_, Op::Keep | Op::Remove) => Computed::Unchanged,
        })
    }
    fn remove_if(&self, k: u64, f: impl FnOnce(&u64) -> bool) -> Option<u64> {
        self.write(|m| {
            if m.get(&k).is_some_and(f) {
                m.remove(&k)
            } else {
                None
            }
        })
    }
    fn compare_exchange(&self, k: u64, current: u64, new: u64) -> Result<u64, Option<u64>> {
        self.write(|m| match m.get_mut(&k) {
            Some(v) if *v == current => Ok(std::mem::replace(v, new)),
            other => Err(other.copied()),
        })
    }
    fn swap(&self, k: u64, v: u64) -> Result<u64, u64> {
        self.write(|m| m.get_mut(&k).map(|old| std::mem::replace(old, v)).ok_or(v))
    }
    fn len(&self) -> usize {
        self.read(HashMap::len)
    }
    fn for_each(&self, mut f: impl FnMut(u64, u64)) {
        self.read(|m| m.iter().for_each(|(&k, &v)| f(k, v)))
    }
}

/// Declares a broken map: [`LockedMap`] with one method replaced.
macro_rules! broken_map {
    ($(#[$doc:meta])* $name:ident { $($method:item)* }) => {
        $(#[$doc])*
        #[derive(Debug, Default)]
        pub struct $name(LockedMap);

        impl CheckedMap for $name {
            fn with_capacity(capacity: usize) -> Self {
                $name(LockedMap::with_capacity(capacity))
            }
            $($method)*
            fn get(&self, k: u64) -> Option<u64> {
                self.0.get(k)
            }
            fn insert(&self, k: u64, v: u64) -> Option<u64> {
                self.0.insert(k, v)
            }
            fn remove(&self, k: u64) -> Option<u64> {
                self.0.remove(k)
            }
            fn compute(&self, k: u64, f: impl FnOnce(Option<&u64>) -> Op<u64>) -> Computed<u64> {
                self.0.compute(k, f)
            }
            fn remove_if(&self, k: u64, f: impl FnOnce(&u64) -> bool) -> Option<u64> {
                self.0.remove_if(k, f)
            }
            fn compare_exchange(&self, k: u64, current: u64, new: u64) -> Result<u64, Option<u64>> {
                self.0.compare_exchange(k, current, new)
            }
            fn swap(&self, k: u64, v: u64) -> Result<u64, u64> {
                self.0.swap(k, v)
            }
            fn len(&self) -> usize {
                self.0.len()
            }
            fn for_each(&self, f: impl FnMut(u64, u64)) {
                self.0.for_each(f)
            }
        }
    };
}

broken_map!(
    /// Bug: `get_or_insert_with` checks for the key under the read lock, releases it, then
    /// inserts under the write lock without checking again (check-then-act). Two threads can
    /// both find the key absent and both "insert first".
    CheckThenActMap {
        fn get_or_insert_with(&self, k: u64, make: impl FnOnce() -> u64) -> u64 {
            if let Some(v) = self.0.get(k) {
                return v;
            }
            window();
            let v = make();
            self.0.insert(k, v);
            v
        }
        fn update<R>(&self, k: u64, f: impl FnOnce(&mut u64) -> R) -> Option<R> {
            self.0.update(k, f)
        }
    }
);

broken_map!(
    /// Bug: `update` reads the value under the read lock, releases it, applies the closure to
    /// a copy and writes the copy back (read-then-write). A concurrent update in the gap is
    /// lost, and a concurrent remove is undone.
    LostUpdateMap {
        fn get_or_insert_with(&self, k: u64, make: impl FnOnce() -> u64) -> u64 {
            self.0.get_or_insert_with(k, make)
        }
        fn update<R>(&self, k: u64, f: impl FnOnce(&mut u64) -> R) -> Option<R> {
            let mut v = self.0.get(k)?;
            window();
            let r = f(&mut v);
            self.0.insert(k, v);
            Some(r)
        }
    }
);

/// Bug: iteration is two passes with the lock released in between, and the second pass
/// reports again every entry that changed meanwhile, as an iterator that follows entries into
/// a resized table might. Entries present throughout are then seen twice.
#[derive(Debug, Default)]
pub struct DoubleVisitMap(LockedMap);

impl CheckedMap for DoubleVisitMap {
    fn with_capacity(capacity: usize) -> Self {
        DoubleVisitMap(LockedMap::with_capacity(capacity))
    }
    fn get(&self, k: u64) -> Option<u64> {
        self.0.get(k)
    }
    fn insert(&self, k: u64, v: u64) -> Option<u64> {
        self.0.insert(k, v)
    }
    fn remove(&self, k: u64) -> Option<u64> {
        self.0.remove(k)
    }
    fn get_or_insert_with(&self, k: u64, make: impl FnOnce() -> u64) -> u64 {
        self.0.get_or_insert_with(k, make)
    }
    fn update<R>(&self, k: u64, f: impl FnOnce(&mut u64) -> R) -> Option<R> {
        self.0.update(k, f)
    }
    fn compute(&self, k: u64, f: impl FnOnce(Option<&u64>) -> Op<u64>) -> Computed<u64> {
        self.0.compute(k, f)
    }
    fn remove_if(&self, k: u64, f: impl FnOnce(&u64) -> bool) -> Option<u64> {
        self.0.remove_if(k, f)
    }
    fn compare_exchange(&self, k: u64, current: u64, new: u64) -> Result<u64, Option<u64>> {
        self.0.compare_exchange(k, current, new)
    }
    fn swap(&self, k: u64, v: u64) -> Result<u64, u64> {
        self.0.swap(k, v)
    }
    fn len(&self) -> usize {
        self.0.len()
    }
    fn for_each(&self, mut f: impl FnMut(u64, u64)) {
        let first = self.0.read(HashMap::clone);
        first.iter().for_each(|(&k, &v)| f(k, v));
        window();
        self.0.read(|now| {
            for (&k, &v) in now {
                if first.get(&k) != Some(&v) {
                    f(k, v);
                }
            }
        });
    }
}

/// Bug: `get` reads a copy of the map that each write refreshes before it changes the map, not
/// after, as a map that leaves a write's publication to the next write would. So a get called
/// after a write returned can miss it: the stale read that the driver's fences must not excuse.
#[derive(Debug, Default)]
pub struct StaleReadMap {
    map: LockedMap,
    published: LockedMap,
}

impl StaleReadMap {
    /// Runs the write `f` on the map, having first published what the earlier writes did.
    fn write<R>(&self, f: impl FnOnce(&LockedMap) -> R) -> R {
        let mut published = self.published.0.write().unwrap();
        *published = self.map.read(HashMap::clone);
        drop(published);
        f(&self.map)
    }
}

impl CheckedMap for StaleReadMap {
    fn with_capacity(capacity: usize) -> Self {
        StaleReadMap {
            map: LockedMap::with_capacity(capacity),
            published: LockedMap::with_capacity(capacity),
        }
    }
    fn get(&self, k: u64) -> Option<u64> {
        self.published.get(k)
    }
    fn insert(&self, k: u64, v: u64) -> Option<u64> {
        self.write(|m| m.insert(k, v))
    }
    fn remove(&self, k: u64) -> Option<u64> {
        self.write(|m| m.remove(k))
    }
    fn get_or_insert_with(&self, k: u64, make: impl FnOnce() -> u64) -> u64 {
        self.write(|m| m.get_or_insert_with(k, make))
    }
    fn update<R>(&self, k: u64, f: impl FnOnce(&mut u64) -> R) -> Option<R> {
        self.write(|m| m.update(k, f))
    }
    fn compute(&self, k: u64, f: impl FnOnce(Option<&u64>) -> Op<u64>) -> Computed<u64> {
        self.write(|m| m.compute(k, f))
    }
    fn remove_if(&self, k: u64, f: impl FnOnce(&u64) -> bool) -> Option<u64> {
        self.write(|m| m.remove_if(k, f))
    }
    fn compare_exchange(&self, k: u64, current: u64, new: u64) -> Result<u64, Option<u64>> {
        self.write(|m| m.compare_exchange(k, current, new))
    }
    fn swap(&self, k: u64, v: u64) -> Result<u64, u64> {
        self.write(|m| m.swap(k, v))
    }
    fn len(&self) -> usize {
        self.map.len()
    }
    fn for_each(&self, f: impl FnMut(u64, u64)) {
        self.map.for_each(f)
    }
}
