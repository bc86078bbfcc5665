//! The children of an actor: O(1) insert and removal, kept in spawn order.
//!
//! A parent stops its children in reverse spawn order (docs/semantics.md), so the set keeps
//! that order; an `IndexSet` keeps it too but removes by shifting every later child (O(n)
//! per stopped child: a parent of 100,000 grains spent most of a topology change there).
//! Here a removed child leaves a hole in the spawn-order vector, the index forgets it, and
//! the holes are compacted once they are the majority (amortised O(1), the order intact).
//! A set of a few entries keeps no index at all and scans (see [`SMALL`]).

use std::hash::BuildHasher;

use hashbrown::HashTable;

use crate::pid::Pid;

/// Holes tolerated before a compaction is considered (small sets never compact).
const MIN_HOLES: usize = 32;

/// Up to this many entries in spawn order (holes included) the set keeps no index and a
/// lookup scans them: most actors have a few children, and hashing a PID (its address and
/// id) on every spawn and every `Terminated`, plus the index's growth, cost more than the
/// scan (about 250 instructions and 0.3 allocations per spawned child in the spawn tree,
/// by callgrind; BENCHMARKS.md, "Issue 29 item 7").
const SMALL: usize = 16;

/// A set of PIDs in insertion order with O(1) insert, lookup and removal.
#[derive(Default)]
pub(crate) struct ChildSet {
    /// Spawn order; `None` is a removed child. Never ends in `None` (removal pops them),
    /// so it is empty exactly when the set is.
    order: Vec<Option<Pid>>,
    /// Positions in `order` of the live children, hashed by their PID (4 bytes each: the
    /// PID itself is stored once, in `order`). Kept exactly while `order` is longer than
    /// [`SMALL`]; empty otherwise.
    index: HashTable<u32>,
    hasher: foldhash::fast::RandomState,
}

/// `a == b`, comparing the ids from their last byte: siblings' ids share their parent's
/// prefix and usually their length, so a front-to-back comparison (`memcmp`) walks the whole
/// prefix before it finds the generated suffixes differ.
fn equal(a: &Pid, b: &Pid) -> bool {
    a.same(b)
        || (a.request_id() == b.request_id()
            && a.id().len() == b.id().len()
            && a.id().bytes().rev().eq(b.id().bytes().rev())
            && a.address() == b.address())
}

impl ChildSet {
    fn hash(&self, pid: &Pid) -> u64 {
        self.hasher.hash_one(pid)
    }

    fn indexed(&self) -> bool {
        self.order.len() > SMALL
    }

    /// Where `pid` is in `order`, when the set is small: the PID a parent holds for a
    /// child is the one its `Terminated` carries, so identity finds it first (the latest
    /// spawned are the likeliest, hence from the end); an equal PID built elsewhere, next.
    fn scan(&self, pid: &Pid) -> Option<usize> {
        let order = &self.order;
        order
            .iter()
            .rposition(|p| p.as_ref().is_some_and(|p| p.same(pid)))
            .or_else(|| {
                order
                    .iter()
                    .rposition(|p| p.as_ref().is_some_and(|p| equal(p, pid)))
            })
    }

    /// Adds `pid` (last in spawn order); false if it is already there.
    pub(crate) fn insert(&mut self, pid: Pid) -> bool {
        if !self.indexed() {
            if self.order.iter().flatten().any(|p| equal(p, &pid)) {
                return false;
            }
            if self.order.len() == 4 && self.order.capacity() == 4 {
                // The fifth child: straight to the small limit's room (one reallocation
                // where doubling makes two on the way to it).
                self.order.reserve_exact(SMALL - 4);
            }
            self.order.push(Some(pid));
            if self.indexed() {
                self.reindex();
            }
            return true;
        }
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
        let was_indexed = self.indexed();
        let pos = if was_indexed {
            let hash = self.hash(pid);
            let Self { order, index, .. } = self;
            let Ok(entry) = index.find_entry(hash, |&i| order[i as usize].as_ref() == Some(pid))
            else {
                return false;
            };
            entry.remove().0 as usize
        } else {
            match self.scan(pid) {
                Some(pos) => pos,
                None => return false,
            }
        };
        let order = &mut self.order;
        order[pos] = None;
        // Children stopped in reverse spawn order leave holes at the end: drop them at once.
        while matches!(order.last(), Some(None)) {
            order.pop();
        }
        if !was_indexed {
            return true;
        }
        if !self.indexed() {
            // Small again: scans from now on.
            self.index = HashTable::new();
            return true;
        }
        let holes = self.order.len() - self.index.len();
        if holes > MIN_HOLES && holes > self.index.len() {
            self.compact();
        }
        true
    }

    /// Drops the holes and re-indexes: O(n), done when the holes outnumber the children, so
    /// each removal pays O(1) for it on average.
    fn compact(&mut self) {
        self.order.retain(Option::is_some);
        let len = self.order.len();
        self.order.shrink_to(len * 2);
        if self.indexed() {
            self.reindex();
        } else {
            self.index = HashTable::new();
        }
    }

    /// Builds the index over `order` from scratch (the set just grew past [`SMALL`], or
    /// was compacted).
    fn reindex(&mut self) {
        let Self {
            order,
            index,
            hasher,
        } = self;
        index.clear();
        for (pos, pid) in order.iter().enumerate() {
            let Some(pid) = pid else { continue };
            index.insert_unique(hasher.hash_one(pid), pos as u32, |&i| {
                hasher.hash_one(
                    order[i as usize]
                        .as_ref()
                        .expect("indexed children are live"),
                )
            });
        }
    }

    /// The number of children.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.order.iter().flatten().count()
    }

    /// True when there is no child.
    pub(crate) fn is_empty(&self) -> bool {
        self.order.is_empty()
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

    /// Across the size where the index is built and dropped, in both directions, the set
    /// finds its children by identity and by an equal PID built elsewhere, refuses a
    /// duplicate, and keeps spawn order.
    #[test]
    fn small_and_indexed_sets_agree() {
        let mut s = ChildSet::default();
        let held: Vec<Pid> = (0..SMALL + 4).map(pid).collect();
        for (i, p) in held.iter().enumerate() {
            assert!(s.insert(p.clone()));
            assert!(!s.insert(pid(i)), "an equal PID is a duplicate ({i})");
            assert!(
                !s.remove(&Pid::new("other:1", format!("p/{i}"))),
                "same id on another node"
            );
            assert!(!s.remove(&p.with_request_id(1)), "another request id");
            assert_eq!(s.len(), i + 1);
            assert_eq!(s.index.len(), if i + 1 > SMALL { i + 1 } else { 0 });
        }
        // Remove from the end (by identity) until small again, then one from the middle by
        // an equal PID, and the first by identity.
        for p in held[SMALL - 1..].iter().rev() {
            assert!(s.remove(p));
        }
        assert_eq!(s.order.len(), SMALL - 1);
        assert!(s.index.is_empty(), "small again: no index");
        assert!(s.remove(&pid(7)));
        assert!(!s.remove(&pid(7)), "already removed");
        assert!(s.remove(&held[0]));
        let ids: Vec<&str> = s.iter().map(|p| p.id()).collect();
        let want: Vec<String> = (1..SMALL - 1)
            .filter(|&i| i != 7)
            .map(|i| format!("p/{i}"))
            .collect();
        assert_eq!(ids, want);
        // Growing again past the limit with holes inside indexes the live ones only.
        for i in 100..100 + SMALL {
            assert!(s.insert(pid(i)));
        }
        assert_eq!(s.index.len(), s.len());
        assert!(s.remove(&pid(3)) && s.remove(&pid(100 + SMALL - 1)));
        assert_eq!(s.index.len(), s.len());
        assert!(!s.is_empty());
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
