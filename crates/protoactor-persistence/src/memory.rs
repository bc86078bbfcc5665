//! The in-memory provider (tests, caches): lost with the process.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use parking_lot::Mutex;

use crate::codec::{Entry, Record};
use crate::error::PersistenceError;
use crate::provider::Provider;

/// The logs by actor name. foldhash: SipHash of the name cost about 300 instructions
/// per write, a sixth of the provider's share of a one-event write.
type Logs = HashMap<String, Log, foldhash::fast::RandomState>;

#[derive(Default)]
struct Log {
    events: BTreeMap<u64, Record>,
    snapshots: BTreeMap<u64, Record>,
}

/// The log of `actor_name`, created empty if there is none (the name is copied only then,
/// not on every write).
fn log_mut<'a>(logs: &'a mut Logs, actor_name: &str) -> &'a mut Log {
    if !logs.contains_key(actor_name) {
        logs.insert(actor_name.to_string(), Log::default());
    }
    logs.get_mut(actor_name).expect("inserted above")
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
            .last_key_value()
            .map_or(0, |(i, _)| i + 1)
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
                l.events
                    .range(from_index..)
                    .take(max_count)
                    .map(|(i, r)| Entry {
                        index: *i,
                        record: r.clone(),
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
        // One event, without the `Vec` and the second boxed future of `persist_events`.
        let mut logs = self.logs.lock();
        let log = log_mut(&mut logs, actor_name);
        match log.events.entry(index) {
            std::collections::btree_map::Entry::Occupied(_) => Err(PersistenceError::Conflict {
                actor: actor_name.to_string(),
                index,
            }),
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(event);
                Ok(())
            }
        }
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
        if let Some((taken, _)) = log.events.range(first_index..last).next() {
            return Err(PersistenceError::Conflict {
                actor: actor_name.to_string(),
                index: *taken,
            });
        }
        for (i, e) in (first_index..).zip(events) {
            log.events.insert(i, e);
        }
        Ok(())
    }

    async fn delete_events(
        &self,
        actor_name: &str,
        inclusive_to: u64,
    ) -> Result<(), PersistenceError> {
        if let Some(l) = self.logs.lock().get_mut(actor_name) {
            l.events.retain(|i, _| *i > inclusive_to);
        }
        Ok(())
    }
}
