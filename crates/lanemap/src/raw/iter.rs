//! Walking every entry without locks, while writers and migrations go on.

use super::RawMap;
use super::node::Node;
use super::table::{SlotState, Table};
use crate::reclaim::Guard;
use crate::sync::Ordering;
use std::hash::{BuildHasher, Hash};
use std::ptr;

/// A position in a walk over every entry; each step borrows the guard that protects the tables
/// it points into.
///
/// The walk goes shard by shard; within a shard, along the chain of tables that starts at the
/// shard's `current` table when the walk reaches it. A key may sit in several tables of a chain
/// while a migration runs (moved, or inserted into the new table directly). The walk reports each
/// key from the *first* table of the chain that holds it: a slot in a later table whose key an
/// earlier table also holds is skipped, and a MOVED slot reports the key's current entry from the
/// later tables. An earlier table's set of keys stops changing once it has a `next` (writes go to
/// the newest table), so a key present and unchanged for the whole walk is reported exactly once.
/// A key present throughout is reported once even if its value changes meanwhile (at its
/// origin: see "What iteration needs" in `table.rs`). A key removed and then inserted again while
/// the walk runs may be reported twice.
///
/// Invariant: `first` and `table` were loaded through the guard passed to [`Cursor::next`], and
/// that same guard lives as long as the cursor is used.
pub(crate) struct Cursor<K, V> {
    next_shard: usize,
    /// The first table of the current shard's chain.
    first: *mut Table<K, V>,
    /// The table being walked, `first` or a successor; null between shards.
    table: *mut Table<K, V>,
    index: usize,
    /// The control word of `index`'s group, read when the walk entered the group.
    group: u64,
}

// Safety: the cursor only holds positions; they are dereferenced under a guard of the map, and
// the map is shared between threads only when `K` and `V` are `Send + Sync`.
unsafe impl<K: Send + Sync, V: Send + Sync> Send for Cursor<K, V> {}
// Safety: as above; `&Cursor` allows no access at all.
unsafe impl<K: Send + Sync, V: Send + Sync> Sync for Cursor<K, V> {}

impl<K, V> Cursor<K, V> {
    pub(crate) fn new() -> Self {
        Self {
            next_shard: 0,
            first: ptr::null_mut(),
            table: ptr::null_mut(),
            index: 0,
            group: 0,
        }
    }

    /// The next entry, valid while `guard` lives.
    ///
    /// # Safety
    /// Every call on this cursor passes the same map and the same guard (one of the map's).
    pub(crate) unsafe fn next<'g, S, G: Guard>(
        &mut self,
        map: &'g RawMap<K, V, S>,
        guard: &'g G,
    ) -> Option<&'g Node<K, V>>
    where
        K: Hash + Eq,
        S: BuildHasher,
    {
        loop {
            if self.table.is_null() {
                let shard = map.shards.get(self.next_shard)?;
                self.next_shard += 1;
                // Acquire: pairs with the Release store that installed the table.
                self.first = guard.protect(&*shard.current, Ordering::Acquire);
                self.table = self.first;
                self.index = 0;
            }
            // Safety: loaded through `guard` from `current` or a `next` link while linked
            // (the caller passes the same guard every time); tables are retired only once
            // unlinked, so it is still allocated.
            let table = unsafe { &*self.table };
            if self.index == table.end() {
                // Acquire: pairs with the Release store that linked the next table.
                self.table = guard.protect(&table.next, Ordering::Acquire);
                self.index = 0;
                continue;
            }
            if !Table::<K, V>::is_slot(self.index) {
                self.index += 1;
                continue;
            }
            let index = self.index;
            self.index += 1;
            if Table::<K, V>::starts_group(index) {
                self.group = table.group_for_reader(index);
            }
            let moved = match Table::<K, V>::state_in(self.group, index) {
                SlotState::Unused => continue,
                // Reported at its origin. (The loom models' teeth report it here too.)
                SlotState::Full { .. }
                    if table.moved_on_for_reader(index) && !cfg!(lanemap_broken_origins) =>
                {
                    continue;
                }
                SlotState::Full { moved } => moved,
                SlotState::Forwarded => true,
            };
            // A FORWARDED slot's key is the moved-on entry's: in the newest table it is dropped
            // only after a removal marks the slot DELETED and every guard active then has ended;
            // in an old table, only after the table stops being `current` (`Writer::deferred`)
            // and every guard active then has ended. Its value may be dropped already: only the
            // key is read (compared and hashed).
            // Safety: seen FULL or FORWARDED with Acquire, so written; the table, loaded through
            // `guard` while linked, stays allocated while the guard lives (and see above).
            let node = unsafe { table.node_for_guard(index, guard) };
            let later = self.table != self.first;
            if !moved && !later {
                return Some(node);
            }
            // Entries do not store their hash. (`Hash` is user code: a panic in it leaves the
            // cursor past this slot.)
            let hash = map.hash(&node.key);
            if later && self.earlier_table_holds(hash, node, guard) {
                continue;
            }
            if !moved {
                return Some(node);
            }
            // The key's current entry, wherever a change of value or the migration put it (or
            // nothing, if it was removed).
            if let Some(current) = RawMap::<K, V, S>::get_from(self.table, hash, &node.key, guard) {
                return Some(current);
            }
        }
    }

    /// Whether a table of the chain before `self.table` holds `node`'s key, whose hash is `hash`.
    fn earlier_table_holds(&self, hash: u64, node: &Node<K, V>, guard: &impl Guard) -> bool
    where
        K: Eq,
    {
        let mut table = self.first;
        while table != self.table {
            // Safety: every table of the chain was loaded through `guard` while linked.
            let t = unsafe { &*table };
            if t.holds(hash, &node.key, guard) {
                return true;
            }
            // Acquire: pairs with the Release store that linked the next table.
            table = guard.protect(&t.next, Ordering::Acquire);
        }
        false
    }
}
