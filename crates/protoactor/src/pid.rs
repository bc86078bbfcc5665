//! Process identifiers: plain data (address, id, request id) plus the cache of the process
//! a PID resolved to. Resolving and sending live with the actor system (`system.rs`).

use std::any::Any;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, OnceLock};

/// The address of a process before remoting starts.
pub const LOCAL_ADDRESS: &str = "nonhost";

/// Identifies a process (an actor, a future, a router, a remote actor): `address/id`.
///
/// Cloning is cheap (one reference count). A PID caches the process it resolved to, so
/// sending to a local PID takes no lock and does no lookup after the first send. The cache
/// remembers which actor system resolved it, so one PID value used with several systems in
/// one program (tests, multi-node examples) is resolved by each system itself.
#[derive(Clone)]
pub struct Pid(Arc<PidInner>);

struct PidInner {
    address: Arc<str>,
    id: Arc<str>,
    request_id: u32,
    /// The serial of the registry that resolved this PID and what it resolved to.
    resolved: OnceLock<(u64, Resolved)>,
}

/// What a PID keeps once it resolved: the process it points at, opaque here.
///
/// The process layer (`process.rs`) stores the process in it and reads it back
/// (`process::ProcessType`). It is opaque because a process receives messages, and messages
/// carry PIDs: naming `Process` here would make ids, messages and processes one import
/// cycle. An actor's process is kept as itself (its own `Arc`, shared with the registry's
/// PID: no allocation per spawn or per resolve), any other process as an
/// `Arc<Arc<dyn Process>>`. The price, by callgrind (BENCHMARKS.md, "Import cycles out of
/// the core"): one `Any` type check per send on a cached PID (+12 instructions on a
/// ~700-instruction send and receive). Typing the cache here instead would put ids,
/// messages, failures and processes in one module; the registry lookup the cache saves
/// costs far more than either.
pub(crate) type Resolved = Arc<dyn Any + Send + Sync>;

impl Pid {
    /// A PID for `id` at `address`.
    pub fn new(address: impl Into<Arc<str>>, id: impl Into<Arc<str>>) -> Self {
        Self::with_parts(address.into(), id.into(), 0)
    }

    pub(crate) fn with_parts(address: Arc<str>, id: Arc<str>, request_id: u32) -> Self {
        Pid(Arc::new(PidInner {
            address,
            id,
            request_id,
            resolved: OnceLock::new(),
        }))
    }

    // One accessor per part. Code that keeps a PID's id or address as a key keeps the PID
    // itself (cloning it is one reference count), as the remote codec's batch tables do.

    /// The node address (`"nonhost"` for a purely local system).
    pub fn address(&self) -> &str {
        &self.0.address
    }
    /// The process id on its node.
    pub fn id(&self) -> &str {
        &self.0.id
    }
    /// The id as the shared string it is stored as (spawning names the process with it).
    pub(crate) fn id_arc(&self) -> &Arc<str> {
        &self.0.id
    }
    /// The request id (used by remote request/response correlation; 0 when unused).
    pub fn request_id(&self) -> u32 {
        self.0.request_id
    }
    /// True if both are the same PID value (clones of one another): an equality check
    /// without comparing ids.
    #[inline]
    pub(crate) fn same(&self, other: &Pid) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// The same PID with another request id.
    pub fn with_request_id(&self, request_id: u32) -> Pid {
        Self::with_parts(self.0.address.clone(), self.0.id.clone(), request_id)
    }

    /// Keeps what the registry with `registry_serial` resolved this PID to (the first one
    /// set stays).
    pub(crate) fn set_resolved(&self, registry_serial: u64, resolved: Resolved) {
        let _ = self.0.resolved.set((registry_serial, resolved));
    }

    /// What this PID resolved to, whichever registry resolved it (for the registry's own
    /// PIDs, which always carry their process).
    #[inline]
    pub(crate) fn resolved_any(&self) -> Option<&Resolved> {
        self.0.resolved.get().map(|(_, r)| r)
    }

    /// What the registry with `registry_serial` resolved this PID to, if it did.
    #[inline]
    pub(crate) fn resolved(&self, registry_serial: u64) -> Option<&Resolved> {
        match self.0.resolved.get() {
            Some((serial, r)) if *serial == registry_serial => Some(r),
            _ => None,
        }
    }
}

impl PartialEq for Pid {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
            || (self.0.id == other.0.id
                && self.0.address == other.0.address
                && self.0.request_id == other.0.request_id)
    }
}
impl Eq for Pid {}

impl Hash for Pid {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.address.hash(state);
        self.0.id.hash(state);
        self.0.request_id.hash(state);
    }
}

/// A PID as a key by its id alone, looked up by `&str` (through `Borrow<str>`): a table of
/// PIDs that lives on one node (the process registry, the remote codec's targets) keys by
/// id, and inserting this key costs a reference count instead of a copy of the id.
///
/// ```
/// use std::collections::HashSet;
/// use protoactor::pid::{Pid, PidById};
/// let mut set = HashSet::new();
/// set.insert(PidById(Pid::new("node:1", "$1")));
/// assert!(set.contains("$1"));
/// ```
#[derive(Clone, Debug)]
pub struct PidById(pub Pid);

impl Hash for PidById {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // As `str` hashes, so that a lookup by `&str` finds the key.
        self.0.id().hash(state)
    }
}

impl PartialEq for PidById {
    fn eq(&self, other: &Self) -> bool {
        self.0.id() == other.0.id()
    }
}
impl Eq for PidById {}

impl std::borrow::Borrow<str> for PidById {
    fn borrow(&self) -> &str {
        self.0.id()
    }
}

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.0.address, self.0.id)
    }
}

impl fmt::Debug for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.request_id == 0 {
            write!(f, "Pid({}/{})", self.0.address, self.0.id)
        } else {
            write!(
                f,
                "Pid({}/{}#{})",
                self.0.address, self.0.id, self.0.request_id
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equality_is_by_address_id_and_request_id() {
        let a = Pid::new("nonhost", "$1");
        let b = Pid::new("nonhost", "$1");
        assert_eq!(a, b);
        assert_ne!(a, a.with_request_id(3));
        assert_ne!(a, Pid::new("127.0.0.1:1", "$1"));
        assert_eq!(a.to_string(), "nonhost/$1");
    }
}
