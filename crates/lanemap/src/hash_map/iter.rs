//! Iterators over a [`HashMap`] that yield clones, each holding its own guard.

use super::HashMap;
use crate::raw::Cursor;
use crate::raw::node::Node;
use crate::reclaim::LocalGuard;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::iter::FusedIterator;

/// A walk that owns its guard, so that it can be returned from `&HashMap` methods.
struct OwnedWalk<'m, K, V, S> {
    map: &'m HashMap<K, V, S>,
    guard: LocalGuard<'m>,
    cursor: Cursor<K, V>,
}

impl<'m, K: Hash + Eq, V, S: BuildHasher> OwnedWalk<'m, K, V, S> {
    fn new(map: &'m HashMap<K, V, S>) -> Self {
        Self {
            map,
            guard: map.guard(),
            cursor: Cursor::new(),
        }
    }

    fn next_with<T>(&mut self, project: impl FnOnce(&Node<K, V>) -> T) -> Option<T> {
        // Safety: every call passes the same map and this walk's own guard, which lives as
        // long as the walk and is never refreshed.
        let node = unsafe { self.cursor.next(&self.map.raw, &self.guard) }?;
        Some(project(node))
    }
}

macro_rules! cloning_iterator {
    ($(#[$doc:meta])* $name:ident, $item:ty, { $($bounds:tt)* }, |$node:ident| $project:expr) => {
        $(#[$doc])*
        pub struct $name<'m, K, V, S> {
            walk: OwnedWalk<'m, K, V, S>,
        }

        impl<'m, K: Hash + Eq, V, S: BuildHasher> $name<'m, K, V, S> {
            pub(super) fn new(map: &'m HashMap<K, V, S>) -> Self {
                Self { walk: OwnedWalk::new(map) }
            }
        }

        impl<K, V, S> Iterator for $name<'_, K, V, S>
        where
            $($bounds)*
        {
            type Item = $item;

            fn next(&mut self) -> Option<$item> {
                self.walk.next_with(|$node| $project)
            }
        }

        impl<K, V, S> FusedIterator for $name<'_, K, V, S> where $($bounds)* {}

        impl<K, V, S> fmt::Debug for $name<'_, K, V, S> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name)).finish_non_exhaustive()
            }
        }
    };
}

cloning_iterator!(
    /// Clones of a [`HashMap`]'s entries; made by [`HashMap::iter`]. Holds a guard while it
    /// lives, so entries removed meanwhile are freed only after it is dropped.
    Iter, (K, V), { K: Hash + Eq + Clone, V: Clone, S: BuildHasher }, |node| (node.key.clone(), node.value.clone())
);
cloning_iterator!(
    /// Clones of a [`HashMap`]'s keys; made by [`HashMap::keys`].
    Keys, K, { K: Hash + Eq + Clone, S: BuildHasher }, |node| node.key.clone()
);
cloning_iterator!(
    /// Clones of a [`HashMap`]'s values; made by [`HashMap::values`].
    Values, V, { K: Hash + Eq, V: Clone, S: BuildHasher }, |node| node.value.clone()
);
