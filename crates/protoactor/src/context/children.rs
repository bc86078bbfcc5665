//! The children of an actor: O(1) insert and removal, kept in spawn order.
//!
//! A parent stops its children in reverse spawn order (docs/semantics.md), so the set keeps
//! that order; an `IndexSet` keeps it too but removes by shifting every later child (O(n)
//! per stopped child: a parent of 100,000 grains spent most of a topology change there).
//! Here a removed child leaves a hole in the spawn-order vector, the index forgets it, and
//! the holes are compacted once they are the majority (amortised O(1), the order intact).

use std::hash::BuildHasher;

use hashbrown::HashTable;

use crate::pid::Pid;

/// Holes tolerated before a compaction is considered (small sets never compact).
const MIN_HOLES: usize = 32;

/// A set of PIDs in insertion order with O(1) insert, lookup and removal.
#[derive(Default)]
pub(crate) struct ChildSet {
    /// Spawn order; `None` is a removed child.
    order: Vec<Option<Pid>>,
    /// Positions in `order` of the live children, hashed by their PID (4 bytes each: the
    /// PID itself is stored once, in `order`).
    index: HashTable<u32>,
    hasher: foldhash::fast::RandomState,
}

impl ChildSet {
    fn hash(&self, pid: &Pid) -> u64 {
        self.hasher.hash_one(pid)
    }

    /// Adds `pid` (last in spawn order); false if it is already there.
    pub(crate) fn insert(&mut self, pid: Pid) -> bool {
        let hash = self.hash(&pid);
        let Self {
            order,
            index,
            hasher,
        } = self;
        if index
            .find(hash, |&i| order[i as usize].as_ref() == Some(&pid))
            .is_some()
        {
            return false;
        }
        let Ok(pos) = u32::try_from(order.len()) else {
            // More than 4 billion spawns without a compaction cannot happen (each child
            // costs hundreds of bytes); refuse rather than corrupt the index.
            return false;
        };
        order.push(Some(pid));
        index.insert_unique(hash, pos, |&i| {
            hasher.hash_one(
                order[i as usize]
                    .as_ref()
                    .expect("indexed children are live"),
            )
        });
        true
    }

    /// Removes `pid`; false if it was not there.
    pub(crate) fn remove(&mut self, pid: &Pid) -> bool {
        let hash = self.hash(pid);
        let Self { order, index, .. } = self;
        let Ok(entry) = index.find_entry(hash, |&i| order[i as usize].as_ref() == Some(pid)) else {
            return false;
        };
        let (pos, _) = entry.remove();
        order[pos as usize] = None;
        // Children stopped in reverse spawn order leave holes at the end: drop them at once.
        while matches!(order.last(), Some(None)) {
            order.pop();
        }
        let holes = order.len() - index.len();
        if holes > MIN_HOLES && holes > index.len() {
            self.compact();
        }
        true
    }

    /// Drops the holes and re-indexes: O(n), done when the holes outnumber the children, so
    /// each removal pays O(1) for it on average.
    fn compact(&mut self) {
        let Self {
            order,
            index,
            hasher,
        } = self;
        order.retain(Option::is_some);
        order.shrink_to(order.len() * 2);
        index.clear();
        for (pos, pid) in order.iter().enumerate() {
            let pid = pid.as_ref().expect("compacted");
            index.insert_unique(hasher.hash_one(pid), pos as u32, |&i| {
                hasher.hash_one(order[i as usize].as_ref().expect("compacted"))
            });
        }
    }

    /// The number of children.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    /// True when there is no child.
    pub(crate) fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The children in spawn order.
    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = &Pid> {
        self.order.iter().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pid(i: usize) -> Pid {
        Pid::new("nonhost", format!("p/{i}"))
    }

    #[test]
    fn keeps_spawn_order_through_removals_and_compactions() {
        let mut s = ChildSet::default();
        for i in 0..1_000 {
            assert!(s.insert(pid(i)));
        }
        assert!(!s.insert(pid(5)), "already there");
        // Remove all but every tenth, from the front (forces compactions).
        for i in (0..1_000).filter(|i| i % 10 != 0) {
            assert!(s.remove(&pid(i)), "{i}");
        }
        assert!(!s.remove(&pid(1)), "already removed");
        assert_eq!(s.len(), 100);
        let ids: Vec<String> = s.iter().map(|p| p.id().to_string()).collect();
        let want: Vec<String> = (0..1_000)
            .filter(|i| i % 10 == 0)
            .map(|i| format!("p/{i}"))
            .collect();
        assert_eq!(ids, want);
        assert!(
            s.order.len() <= 2 * s.len() + MIN_HOLES + 1,
            "holes compacted"
        );
        // Later children go last; reverse order is reverse spawn order.
        s.insert(pid(5_000));
        assert_eq!(s.iter().next_back().unwrap().id(), "p/5000");
        for i in (0..1_000).filter(|i| i % 10 == 0) {
            assert!(s.remove(&pid(i)));
        }
        assert!(s.remove(&pid(5_000)));
        assert!(s.is_empty() && s.order.is_empty());
    }

    #[test]
    fn reverse_removal_leaves_no_holes() {
        let mut s = ChildSet::default();
        for i in 0..100 {
            s.insert(pid(i));
        }
        for i in (50..100).rev() {
            s.remove(&pid(i));
            assert_eq!(s.order.len(), i, "trailing holes are popped");
        }
    }
}
