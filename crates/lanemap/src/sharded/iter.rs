//! Iterators over a [`ShardedMap`]: clones taken one shard at a time, and the owning iterator.

use super::ShardedMap;
use super::shard::{Entry, Table};
use std::fmt;
use std::iter::FusedIterator;

/// Copies the map out one shard at a time with `project`, holding no lock between items.
struct ShardCursor<'a, K, V, S, T> {
    map: &'a ShardedMap<K, V, S>,
    next_shard: usize,
    buffer: std::vec::IntoIter<T>,
    project: fn(&Entry<K, V>) -> T,
}

impl<'a, K, V, S, T> ShardCursor<'a, K, V, S, T> {
    fn new(map: &'a ShardedMap<K, V, S>, project: fn(&Entry<K, V>) -> T) -> Self {
        Self {
            map,
            next_shard: 0,
            buffer: Vec::new().into_iter(),
            project,
        }
    }

    fn next(&mut self) -> Option<T> {
        loop {
            if let Some(item) = self.buffer.next() {
                return Some(item);
            }
            let shard = self.map.shards.get(self.next_shard)?;
            self.next_shard += 1;
            let _enter = self.map.enter("ShardedMap::iter");
            let table = shard.read();
            self.buffer = table
                .iter()
                .map(self.project)
                .collect::<Vec<T>>()
                .into_iter();
        }
    }
}

macro_rules! cloning_iterator {
    ($(#[$doc:meta])* $name:ident, $item:ty, [$($bound:ident: Clone),+], |$entry:ident| $project:expr) => {
        $(#[$doc])*
        pub struct $name<'a, K, V, S> {
            cursor: ShardCursor<'a, K, V, S, $item>,
        }

        impl<'a, K, V, S> $name<'a, K, V, S>
        where
            $($bound: Clone),+
        {
            pub(super) fn new(map: &'a ShardedMap<K, V, S>) -> Self {
                Self { cursor: ShardCursor::new(map, |$entry| $project) }
            }
        }

        impl<K, V, S> Iterator for $name<'_, K, V, S> {
            type Item = $item;

            fn next(&mut self) -> Option<$item> {
                self.cursor.next()
            }
        }

        impl<K, V, S> FusedIterator for $name<'_, K, V, S> {}

        impl<K, V, S> fmt::Debug for $name<'_, K, V, S> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("next_shard", &self.cursor.next_shard)
                    .field("buffered", &self.cursor.buffer.len())
                    .finish()
            }
        }
    };
}

cloning_iterator!(
    /// Clones of a [`ShardedMap`]'s entries; made by [`ShardedMap::iter`].
    Iter, (K, V), [K: Clone, V: Clone], |e| (e.key.clone(), e.value.clone())
);
cloning_iterator!(
    /// Clones of a [`ShardedMap`]'s keys; made by [`ShardedMap::keys`].
    Keys, K, [K: Clone], |e| e.key.clone()
);
cloning_iterator!(
    /// Clones of a [`ShardedMap`]'s values; made by [`ShardedMap::values`].
    Values, V, [V: Clone], |e| e.value.clone()
);

/// The entries of a [`ShardedMap`], moved out; made by its `IntoIterator` impl.
pub struct IntoIter<K, V> {
    tables: std::vec::IntoIter<Table<K, V>>,
    current: hashbrown::hash_table::IntoIter<Entry<K, V>>,
}

impl<K, V> IntoIter<K, V> {
    pub(super) fn new(tables: Vec<Table<K, V>>) -> Self {
        Self {
            tables: tables.into_iter(),
            current: Table::default().into_iter(),
        }
    }
}

impl<K, V> Iterator for IntoIter<K, V> {
    type Item = (K, V);

    fn next(&mut self) -> Option<(K, V)> {
        loop {
            if let Some(entry) = self.current.next() {
                return Some((entry.key, entry.value));
            }
            self.current = self.tables.next()?.into_iter();
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let len = self.current.len() + self.tables.as_slice().iter().map(Table::len).sum::<usize>();
        (len, Some(len))
    }
}

impl<K, V> ExactSizeIterator for IntoIter<K, V> {}
impl<K, V> FusedIterator for IntoIter<K, V> {}

impl<K, V> fmt::Debug for IntoIter<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntoIter")
            .field("remaining", &self.size_hint().0)
            .finish()
    }
}
