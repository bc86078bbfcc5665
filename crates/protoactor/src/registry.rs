//! The process registry: a sharded map from id to process, id generation, and the hook
//! through which remote resolves PIDs of other nodes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use parking_lot::RwLock;

use std::sync::OnceLock;

use crate::pid::{Pid, PidById, Resolved, LOCAL_ADDRESS};
use crate::process::{Process, ProcessType};

/// Resolves PIDs whose address is another node (installed by remote).
pub type AddressResolver = Arc<dyn Fn(&Pid) -> Option<Arc<dyn Process>> + Send + Sync>;

const DIGITS: &[u8; 64] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ~+";

/// A generated id on the stack: `"$"` and up to 11 base-64 digits (a `u64` needs 11).
pub(crate) struct IdBuf {
    buf: [u8; 12],
    start: usize,
}

impl IdBuf {
    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[self.start..]).expect("ascii digits")
    }
}

/// Encodes a counter like protoactor-go: `"$"` followed by base-64 digits, most significant first.
pub(crate) fn encode_id(mut u: u64) -> IdBuf {
    let mut buf = [0u8; 12];
    let mut i = buf.len();
    while u >= 64 {
        i -= 1;
        buf[i] = DIGITS[(u & 0x3f) as usize];
        u >>= 6;
    }
    i -= 1;
    buf[i] = DIGITS[u as usize];
    i -= 1;
    buf[i] = b'$';
    IdBuf { buf, start: i }
}

/// Calls `f` with the concatenation of `parts`, built on the stack when short: ids are
/// joined on every spawn and request, and a `String` there is an allocation each time
/// (the registry makes the one shared copy it keeps).
pub(crate) fn with_joined<R>(parts: &[&str], f: impl FnOnce(&str) -> R) -> R {
    const STACK: usize = 128;
    let len: usize = parts.iter().map(|p| p.len()).sum();
    if len > STACK {
        return f(&parts.concat());
    }
    let mut buf = [0u8; STACK];
    let mut at = 0;
    for p in parts {
        buf[at..at + p.len()].copy_from_slice(p.as_bytes());
        at += p.len();
    }
    f(std::str::from_utf8(&buf[..len]).expect("joined from whole strs"))
}

/// The registry of the processes of one actor system.
pub struct ProcessRegistry {
    /// Unique per registry in this program: tells PIDs which system cached their process.
    serial: u64,
    address: RwLock<Arc<str>>,
    /// foldhash: SipHash was 6 % of a spawn-heavy profile; foldhash is seeded per process.
    /// Keyed by the registered PID itself, which holds the id and caches the process: one
    /// word per entry instead of an id and a process (four words), times the table's slack.
    local: DashMap<PidById, (), foldhash::fast::RandomState>,
    sequence: AtomicU64,
    resolvers: RwLock<Vec<AddressResolver>>,
    dead_letter: RwLock<Option<Arc<dyn Process>>>,
    /// The process type PIDs cache as itself: the first one `add_typed` registers (the
    /// actors'; see `pid::Resolved`).
    typed: OnceLock<ProcessType>,
}

impl std::fmt::Debug for ProcessRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessRegistry")
            .field("address", &self.address())
            .field("processes", &self.len())
            .finish()
    }
}

/// The id is already taken (the existing PID is returned).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("spawn: name already exists: {0}")]
pub struct NameExists(pub Pid);

impl ProcessRegistry {
    pub(crate) fn new() -> Self {
        static SERIAL: AtomicU64 = AtomicU64::new(1);
        ProcessRegistry {
            serial: SERIAL.fetch_add(1, Ordering::Relaxed),
            address: RwLock::new(Arc::from(LOCAL_ADDRESS)),
            local: DashMap::with_hasher_and_shard_amount(Default::default(), 64),
            sequence: AtomicU64::new(0),
            resolvers: RwLock::new(Vec::new()),
            dead_letter: RwLock::new(None),
            typed: OnceLock::new(),
        }
    }

    pub(crate) fn set_dead_letter(&self, p: Arc<dyn Process>) {
        *self.dead_letter.write() = Some(p);
    }

    #[inline]
    pub(crate) fn serial(&self) -> u64 {
        self.serial
    }

    /// This node's address (`"nonhost"` until remote starts).
    pub fn address(&self) -> Arc<str> {
        self.address.read().clone()
    }

    /// Sets this node's address (called by remote when it starts listening).
    pub fn set_address(&self, address: &str) {
        *self.address.write() = Arc::from(address);
    }

    /// Installs a resolver for PIDs of other nodes.
    pub fn register_address_resolver(&self, resolver: AddressResolver) {
        self.resolvers.write().push(resolver);
    }

    /// A fresh process id: `$` plus a base-64 counter, as protoactor-go makes them.
    pub fn next_id(&self) -> String {
        self.next_id_buf().as_str().to_owned()
    }

    /// [`next_id`](Self::next_id) without an allocation.
    pub(crate) fn next_id_buf(&self) -> IdBuf {
        encode_id(self.sequence.fetch_add(1, Ordering::Relaxed) + 1)
    }

    /// Registers `process` under `id`; fails with the existing PID if the id is taken.
    pub fn add(&self, process: Arc<dyn Process>, id: &str) -> Result<Pid, NameExists> {
        self.insert(Arc::new(process), id)
    }

    /// [`add`](Self::add) for a process of a known type: the registry's PID keeps it as
    /// itself, without a box, if `P` is the type this registry caches so (the first type
    /// registered this way: the actors').
    pub(crate) fn add_typed<P: Process>(
        &self,
        process: Arc<P>,
        id: &str,
    ) -> Result<Pid, NameExists> {
        if self.typed.get_or_init(ProcessType::of::<P>).is::<P>() {
            self.insert(process, id)
        } else {
            self.add(process, id)
        }
    }

    /// What a PID of this registry caches, read as a process.
    #[inline]
    pub(crate) fn view<'a>(&self, resolved: &'a Resolved) -> Option<&'a dyn Process> {
        ProcessType::view(self.typed.get(), resolved)
    }

    /// What a PID of this registry caches, as an `Arc` of the process.
    pub(crate) fn shared(&self, resolved: &Resolved) -> Option<Arc<dyn Process>> {
        ProcessType::shared(self.typed.get(), resolved)
    }

    /// A registry entry is the PID a process was registered under, keyed by its id. The
    /// PID always caches its process (`insert` sets it before the entry is visible).
    fn registered(&self, entry: &PidById) -> Option<Arc<dyn Process>> {
        self.shared(entry.0.resolved_any()?)
    }

    fn insert(&self, resolved: Resolved, id: &str) -> Result<Pid, NameExists> {
        let address = self.address();
        let pid = Pid::with_parts(address.clone(), Arc::from(id), 0);
        pid.set_resolved(self.serial, resolved);
        match self.local.entry(PidById(pid.clone())) {
            Entry::Occupied(e) => Err(NameExists(Pid::with_parts(
                address,
                e.key().0.id_arc().clone(),
                0,
            ))),
            Entry::Vacant(v) => {
                v.insert(());
                Ok(pid)
            }
        }
    }

    /// Removes a process; returns it if it was registered.
    pub fn remove(&self, pid: &Pid) -> Option<Arc<dyn Process>> {
        let (entry, ()) = self.local.remove(pid.id())?;
        self.registered(&entry)
    }

    /// The local process registered under `id`.
    pub fn get_local(&self, id: &str) -> Option<Arc<dyn Process>> {
        self.local.get(id).and_then(|e| self.registered(e.key()))
    }

    /// What the local process registered under `id` is cached as in its PID (to cache in
    /// another PID of it: shared, no allocation).
    pub(crate) fn get_local_resolved(&self, id: &str) -> Option<Resolved> {
        self.local
            .get(id)
            .and_then(|e| e.key().0.resolved_any().cloned())
    }

    /// How many processes are registered.
    pub fn len(&self) -> usize {
        self.local.len()
    }

    /// True if no process is registered.
    pub fn is_empty(&self) -> bool {
        self.local.is_empty()
    }

    /// The ids of all registered processes.
    pub fn ids(&self) -> Vec<String> {
        self.local
            .iter()
            .map(|e| e.key().0.id().to_owned())
            .collect()
    }

    /// True if `pid` lives on this node.
    pub fn is_local(&self, pid: &Pid) -> bool {
        let a = pid.address();
        a == LOCAL_ADDRESS || a == &**self.address.read()
    }

    /// The process for `pid` and whether a PID may cache it. Unknown PIDs resolve to the
    /// dead-letter process.
    pub(crate) fn resolve(&self, pid: &Pid) -> (Arc<dyn Process>, bool) {
        if !self.is_local(pid) {
            for r in self.resolvers.read().iter() {
                if let Some(p) = r(pid) {
                    return (p, true);
                }
            }
        } else if let Some(p) = self.get_local(pid.id()) {
            return (p, true);
        }
        (self.dead_letter_process(), false)
    }

    pub(crate) fn dead_letter_process(&self) -> Arc<dyn Process> {
        self.dead_letter
            .read()
            .clone()
            .expect("the dead-letter process is registered at system start")
    }

    pub(crate) fn clear(&self) {
        self.local.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_protoactor_go_encoding() {
        assert_eq!(encode_id(1).as_str(), "$1");
        assert_eq!(encode_id(10).as_str(), "$a");
        assert_eq!(encode_id(63).as_str(), "$+");
        assert_eq!(encode_id(64).as_str(), "$10");
        assert_eq!(encode_id(65).as_str(), "$11");
        assert_eq!(encode_id(u64::MAX).as_str(), "$f++++++++++");
    }

    /// The actor's final stop marks its process dead through what `remove` returns.
    #[test]
    fn remove_returns_the_registered_process_once() {
        struct Nothing;
        impl Process for Nothing {
            fn send_user_message(&self, _: &Pid, _: crate::message::MessageEnvelope) {}
            fn send_system_message(&self, _: &Pid, _: crate::process::SystemMessage) {}
        }
        let registry = ProcessRegistry::new();
        let process: Arc<dyn Process> = Arc::new(Nothing);
        let pid = registry.add(process.clone(), "a").unwrap();
        let removed = registry.remove(&pid).expect("registered");
        assert!(Arc::ptr_eq(&removed, &process));
        assert!(registry.remove(&pid).is_none());
    }

    /// The first type registered with `add_typed` is cached as itself; any other process,
    /// typed or not, in an `Arc`: both read back as the process they are, and a name taken
    /// either way is taken for both.
    #[test]
    fn typed_and_boxed_processes_read_back_alike() {
        struct Typed;
        impl Process for Typed {
            fn send_user_message(&self, _: &Pid, _: crate::message::MessageEnvelope) {}
            fn send_system_message(&self, _: &Pid, _: crate::process::SystemMessage) {}
        }
        struct Other;
        impl Process for Other {
            fn send_user_message(&self, _: &Pid, _: crate::message::MessageEnvelope) {}
            fn send_system_message(&self, _: &Pid, _: crate::process::SystemMessage) {}
            fn diagnostics(&self) -> String {
                "other".into()
            }
        }
        let registry = ProcessRegistry::new();
        let typed = Arc::new(Typed);
        let a = registry.add_typed(typed.clone(), "a").unwrap();
        let b = registry.add_typed(Arc::new(Other), "b").unwrap();
        let c = registry.add(Arc::new(Other), "c").unwrap();
        assert!(a.resolved_any().unwrap().is::<Typed>(), "kept as itself");
        assert!(b.resolved_any().unwrap().is::<Arc<dyn Process>>(), "boxed");
        assert!(c.resolved_any().unwrap().is::<Arc<dyn Process>>(), "boxed");
        let got = registry.get_local("a").unwrap();
        assert!(std::ptr::addr_eq(Arc::as_ptr(&got), Arc::as_ptr(&typed)));
        for (pid, name) in [(&a, "process"), (&b, "other"), (&c, "other")] {
            let r = pid.resolved_any().unwrap();
            assert_eq!(registry.view(r).unwrap().diagnostics(), name);
            assert_eq!(registry.shared(r).unwrap().diagnostics(), name);
        }
        assert!(registry.add(Arc::new(Other), "a").is_err());
        assert!(registry.add_typed(Arc::new(Typed), "c").is_err());
        assert!(registry.remove(&a).is_some());
        assert!(registry.get_local("a").is_none());
    }

    #[test]
    fn joined_ids_on_the_stack_and_beyond() {
        assert_eq!(with_joined(&["a/", "$1"], str::to_owned), "a/$1");
        let long = "x".repeat(200);
        assert_eq!(with_joined(&[&long, "/", "y"], str::len), 202);
        assert_eq!(with_joined(&[], str::len), 0);
    }
}
