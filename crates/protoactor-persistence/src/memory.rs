//! The in-memory provider (tests, caches): lost with the process.

use std::collections::BTreeMap;

use hashbrown::HashMap;

use async_trait::async_trait;
use parking_lot::Mutex;

use crate::codec::{Entry, Record};
use crate::error::PersistenceError;
use crate::provider::Provider;

/// The logs by actor name (hashbrown: foldhash, as SipHash of the name cost about 300
/// instructions per write, and one lookup per write, the name copied only for a new log).
type Logs = HashMap<String, Log>;

#[derive(Default)]
struct Log {
    events: Events,
    snapshots: BTreeMap<u64, Record>,
}

/// One stored event: where its payload lies in [`Events::bytes`] and which type name it has.
#[derive(Clone, Copy)]
struct Slot {
    index: u64,
    start: usize,
    len: usize,
    type_index: usize,
}

/// An actor's events, stored without an allocation per event: the payloads back to back in
/// one buffer, the type names once each, and a slot per event in index order (writes append;
/// an index below the last is inserted in place).
#[derive(Default)]
struct Events {
    slots: Vec<Slot>,
    bytes: Vec<u8>,
    /// Bytes of `bytes` that belong to deleted events (reclaimed once they are half).
    dead: usize,
    /// The distinct type names; an actor's events have few.
    type_names: Vec<Box<str>>,
}

impl Events {
    fn end(&self) -> Option<u64> {
        self.slots.last().map(|s| s.index + 1)
    }

    /// The position of the first slot with index `>= index`.
    fn position(&self, index: u64) -> usize {
        match self.slots.last() {
            Some(last) if last.index < index => self.slots.len(),
            _ => self.slots.partition_point(|s| s.index < index),
        }
    }

    fn is_taken(&self, index: u64) -> bool {
        self.slots
            .get(self.position(index))
            .is_some_and(|s| s.index == index)
    }

    fn type_index(&mut self, type_name: &str) -> usize {
        match self.type_names.iter().rposition(|t| **t == *type_name) {
            Some(i) => i,
            None => {
                self.type_names.push(type_name.into());
                self.type_names.len() - 1
            }
        }
    }

    /// Stores an event whose index is free (the caller checked).
    fn insert(&mut self, index: u64, type_name: &str, payload: &[u8]) {
        let slot = Slot {
            index,
            start: self.bytes.len(),
            len: payload.len(),
            type_index: self.type_index(type_name),
        };
        self.bytes.extend_from_slice(payload);
        let at = self.position(index);
        self.slots.insert(at, slot);
    }

    /// Stores an event, or [`PersistenceError::Conflict`] if its index is taken.
    fn try_insert(
        &mut self,
        actor_name: &str,
        index: u64,
        type_name: &str,
        payload: &[u8],
    ) -> Result<(), PersistenceError> {
        if self.is_taken(index) {
            return Err(PersistenceError::Conflict {
                actor: actor_name.to_string(),
                index,
            });
        }
        self.insert(index, type_name, payload);
        Ok(())
    }

    fn type_name(&self, slot: &Slot) -> &str {
        &self.type_names[slot.type_index]
    }

    fn payload(&self, slot: &Slot) -> &[u8] {
        &self.bytes[slot.start..slot.start + slot.len]
    }

    /// The slots with index `>= from`, at most `max`.
    fn starting_at(&self, from: u64, max: usize) -> impl Iterator<Item = &Slot> {
        self.slots[self.position(from)..].iter().take(max)
    }

    fn delete_to(&mut self, inclusive_to: u64) {
        let n = self.slots.partition_point(|s| s.index <= inclusive_to);
        if n == self.slots.len() {
            *self = Events::default();
            return;
        }
        self.dead += self.slots.drain(..n).map(|s| s.len).sum::<usize>();
        if self.dead > self.bytes.len() / 2 {
            // Keep only the live payloads (memory stays proportional to the journal).
            let mut bytes = Vec::with_capacity(self.bytes.len() - self.dead);
            for s in &mut self.slots {
                let start = bytes.len();
                bytes.extend_from_slice(&self.bytes[s.start..s.start + s.len]);
                s.start = start;
            }
            self.bytes = bytes;
            self.dead = 0;
        }
    }
}

/// The log of `actor_name`, created empty if there is none.
fn log_mut<'a>(logs: &'a mut Logs, actor_name: &str) -> &'a mut Log {
    logs.entry_ref(actor_name).or_default()
}

/// Keeps journals and snapshots in memory. Share one (`Arc`) between actor systems to
/// simulate a restart in tests. Unlike protoactor-go's, deletes do delete.
#[derive(Default)]
pub struct InMemoryProvider {
    logs: Mutex<Logs>,
}

impl InMemoryProvider {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl Provider for InMemoryProvider {
    fn describe(&self) -> String {
        "in-memory".into()
    }

    async fn get_snapshot(&self, actor_name: &str) -> Result<Option<Entry>, PersistenceError> {
        let logs = self.logs.lock();
        Ok(logs.get(actor_name).and_then(|l| {
            l.snapshots.last_key_value().map(|(i, r)| Entry {
                index: *i,
                record: r.clone(),
            })
        }))
    }

    async fn persist_snapshot(
        &self,
        actor_name: &str,
        index: u64,
        snapshot: Record,
    ) -> Result<(), PersistenceError> {
        let mut logs = self.logs.lock();
        let log = log_mut(&mut logs, actor_name);
        let journal_end = log
            .events
            .end()
            .unwrap_or(0)
            .max(log.snapshots.last_key_value().map_or(0, |(i, _)| *i));
        if index > journal_end {
            return Err(PersistenceError::SnapshotBeyondJournal {
                actor: actor_name.to_string(),
                index,
                journal_end,
            });
        }
        log.snapshots.insert(index, snapshot);
        Ok(())
    }

    async fn delete_snapshots(
        &self,
        actor_name: &str,
        inclusive_to: u64,
    ) -> Result<(), PersistenceError> {
        if let Some(l) = self.logs.lock().get_mut(actor_name) {
            l.snapshots.retain(|i, _| *i > inclusive_to);
        }
        Ok(())
    }

    async fn get_events(
        &self,
        actor_name: &str,
        from_index: u64,
        max_count: usize,
    ) -> Result<Vec<Entry>, PersistenceError> {
        let logs = self.logs.lock();
        Ok(logs
            .get(actor_name)
            .map(|l| {
                let events = &l.events;
                events
                    .starting_at(from_index, max_count)
                    .map(|s| Entry {
                        index: s.index,
                        record: Record {
                            type_name: events.type_name(s).to_string(),
                            payload: events.payload(s).to_vec(),
                        },
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn persist_event(
        &self,
        actor_name: &str,
        index: u64,
        event: Record,
    ) -> Result<(), PersistenceError> {
        let mut logs = self.logs.lock();
        log_mut(&mut logs, actor_name).events.try_insert(
            actor_name,
            index,
            &event.type_name,
            &event.payload,
        )
    }

    async fn persist_events(
        &self,
        actor_name: &str,
        first_index: u64,
        events: Vec<Record>,
    ) -> Result<(), PersistenceError> {
        let mut logs = self.logs.lock();
        let log = log_mut(&mut logs, actor_name);
        let n = events.len() as u64;
        let last = first_index
            .checked_add(n)
            .ok_or(PersistenceError::IndexOutOfRange(first_index))?;
        // All or none: check every index before inserting any.
        if let Some(taken) = log
            .events
            .starting_at(first_index, 1)
            .find(|s| s.index < last)
        {
            return Err(PersistenceError::Conflict {
                actor: actor_name.to_string(),
                index: taken.index,
            });
        }
        for (i, e) in (first_index..).zip(&events) {
            log.events.insert(i, &e.type_name, &e.payload);
        }
        Ok(())
    }

    async fn delete_events(
        &self,
        actor_name: &str,
        inclusive_to: u64,
    ) -> Result<(), PersistenceError> {
        if let Some(l) = self.logs.lock().get_mut(actor_name) {
            l.events.delete_to(inclusive_to);
        }
        Ok(())
    }

    fn persist_event_now(
        &self,
        actor_name: &str,
        index: u64,
        type_name: &str,
        payload: &[u8],
    ) -> Option<Result<(), PersistenceError>> {
        let mut logs = self.logs.lock();
        Some(
            log_mut(&mut logs, actor_name)
                .events
                .try_insert(actor_name, index, type_name, payload),
        )
    }

    fn visit_events_now(
        &self,
        actor_name: &str,
        from_index: u64,
        max_count: usize,
        visit: &mut dyn FnMut(u64, &str, &[u8]) -> bool,
    ) -> Option<Result<usize, PersistenceError>> {
        let logs = self.logs.lock();
        let mut n = 0;
        if let Some(l) = logs.get(actor_name) {
            let events = &l.events;
            for s in events.starting_at(from_index, max_count) {
                n += 1;
                if !visit(s.index, events.type_name(s), events.payload(s)) {
                    break;
                }
            }
        }
        Some(Ok(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(type_name: &str, payload: &[u8]) -> Record {
        Record {
            type_name: type_name.into(),
            payload: payload.to_vec(),
        }
    }

    fn read(p: &InMemoryProvider, from: u64, max: usize) -> Vec<(u64, String, Vec<u8>)> {
        let mut lent = Vec::new();
        let n = p
            .visit_events_now("a", from, max, &mut |i, t, b| {
                lent.push((i, t.to_string(), b.to_vec()));
                true
            })
            .expect("the in-memory provider reads at once")
            .unwrap();
        assert_eq!(n, lent.len());
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let got: Vec<_> = rt
            .block_on(p.get_events("a", from, max))
            .unwrap()
            .into_iter()
            .map(|e| (e.index, e.record.type_name, e.record.payload))
            .collect();
        assert_eq!(got, lent, "get_events and visit_events_now agree");
        lent
    }

    #[test]
    fn events_out_of_order_deleted_and_compacted_keep_their_bytes() {
        let p = InMemoryProvider::new();
        let now = |i: u64, t: &str, b: &[u8]| p.persist_event_now("a", i, t, b).unwrap();
        now(5, "x.A", b"five").unwrap();
        now(1, "x.B", b"one").unwrap();
        now(3, "x.A", b"three").unwrap();
        assert!(matches!(
            now(3, "x.A", b"again"),
            Err(PersistenceError::Conflict { index: 3, .. })
        ));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(p.persist_events("a", 6, vec![record("x.C", b"six"), record("x.A", b"")]))
            .unwrap();
        assert!(matches!(
            rt.block_on(p.persist_events("a", 0, vec![record("x.A", b"0"), record("x.A", b"1")])),
            Err(PersistenceError::Conflict { index: 1, .. })
        ));
        let all = |v: &[(u64, &str, &[u8])]| {
            v.iter()
                .map(|(i, t, b)| (*i, t.to_string(), b.to_vec()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            read(&p, 0, 100),
            all(&[
                (1, "x.B", b"one"),
                (3, "x.A", b"three"),
                (5, "x.A", b"five"),
                (6, "x.C", b"six"),
                (7, "x.A", b""),
            ])
        );
        assert_eq!(
            read(&p, 2, 2),
            all(&[(3, "x.A", b"three"), (5, "x.A", b"five")])
        );
        // Deleting most of the bytes compacts the buffer; what is left reads the same.
        rt.block_on(p.delete_events("a", 5)).unwrap();
        assert_eq!(
            read(&p, 0, 100),
            all(&[(6, "x.C", b"six"), (7, "x.A", b"")])
        );
        now(8, "x.D", b"eight").unwrap();
        assert_eq!(
            read(&p, 7, 100),
            all(&[(7, "x.A", b""), (8, "x.D", b"eight")])
        );
        rt.block_on(p.delete_events("a", 100)).unwrap();
        assert!(read(&p, 0, 100).is_empty());
        assert!(read(&p, 0, 0).is_empty());
        now(2, "x.A", b"two").unwrap();
        assert_eq!(read(&p, 0, 100), all(&[(2, "x.A", b"two")]));
    }

    #[test]
    fn a_visit_stops_when_asked() {
        let p = InMemoryProvider::new();
        for i in 0..10 {
            p.persist_event_now("a", i, "x.A", &[i as u8])
                .unwrap()
                .unwrap();
        }
        let mut seen = Vec::new();
        let n = p
            .visit_events_now("a", 2, 100, &mut |i, _, _| {
                seen.push(i);
                i < 4
            })
            .unwrap()
            .unwrap();
        assert_eq!((n, seen), (3, vec![2, 3, 4]));
        assert_eq!(
            p.visit_events_now("nobody", 0, 10, &mut |_, _, _| true)
                .unwrap()
                .unwrap(),
            0
        );
    }
}
