//! The actor system handle: config, registry, event stream, dead-letter PID, runtime,
//! extensions, and how a [`Pid`] resolves and sends through them.
//!
//! Starting a system (which wires in the dead-letter and event-stream processes of higher
//! layers) is in `bootstrap.rs`; the root context is in `root_context.rs`.

use std::any::TypeId;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use dashmap::DashMap;
use parking_lot::Mutex;

pub use crate::config::Config;
use crate::event_stream::EventStream;
use crate::message::MessageEnvelope;
pub use crate::message_traits::MessageTraits;
use crate::metrics::Metrics;
use crate::pid::Pid;
use crate::process::{Process, SystemMessage};
use crate::registry::ProcessRegistry;

pub(crate) struct SystemInner {
    id: String,
    config: Config,
    registry: ProcessRegistry,
    event_stream: EventStream,
    dead_letter: Mutex<Option<Pid>>,
    runtime: tokio::runtime::Handle,
    owned_runtime: Mutex<Option<tokio::runtime::Runtime>>,
    traits: MessageTraits,
    extensions: DashMap<TypeId, Arc<dyn std::any::Any + Send + Sync>>,
    metrics: Metrics,
    shut_down: AtomicBool,
    /// Run by `shutdown` once the actors were told to stop (pinned dispatchers' threads).
    shutdown_hooks: Mutex<Vec<ShutdownHook>>,
}

type ShutdownHook = Box<dyn FnOnce() + Send>;

/// An actor system: the home of actors, with its registry, root context, event stream,
/// dead letters and tokio runtime. Cheap to clone.
///
/// ```
/// use protoactor::prelude::*;
/// let system = ActorSystem::new();
/// assert_eq!(system.address(), "nonhost");
/// system.shutdown();
/// ```
#[derive(Clone)]
pub struct ActorSystem(Arc<SystemInner>);

impl ActorSystem {
    /// Builds the handle around a fresh registry whose dead-letter process is made by
    /// `dead_letter` (it gets a weak handle, as the system owns it). Used by `bootstrap`.
    pub(crate) fn assemble(
        config: Config,
        runtime: tokio::runtime::Handle,
        owned_runtime: Option<tokio::runtime::Runtime>,
        dead_letter: impl FnOnce(WeakSystem) -> Arc<dyn Process>,
    ) -> Self {
        let metrics = Metrics::new(&config);
        let inner = Arc::new_cyclic(|weak: &Weak<SystemInner>| {
            let registry = ProcessRegistry::new();
            registry.set_dead_letter(dead_letter(WeakSystem(weak.clone())));
            SystemInner {
                id: uuid::Uuid::new_v4().simple().to_string(),
                config,
                registry,
                event_stream: EventStream::new(),
                dead_letter: Mutex::new(None),
                runtime,
                owned_runtime: Mutex::new(owned_runtime),
                traits: MessageTraits::default(),
                extensions: DashMap::new(),
                metrics,
                shut_down: AtomicBool::new(false),
                shutdown_hooks: Mutex::new(Vec::new()),
            }
        });
        ActorSystem(inner)
    }

    pub(crate) fn set_dead_letter_pid(&self, pid: Pid) {
        *self.0.dead_letter.lock() = Some(pid);
    }

    /// A handle that does not keep the system alive (for processes the system owns).
    pub(crate) fn downgrade(&self) -> WeakSystem {
        WeakSystem(Arc::downgrade(&self.0))
    }

    /// The system's id (also its remote/cluster member id).
    pub fn id(&self) -> &str {
        &self.0.id
    }
    /// The config.
    pub fn config(&self) -> &Config {
        &self.0.config
    }
    /// The process registry.
    pub fn registry(&self) -> &ProcessRegistry {
        &self.0.registry
    }
    /// This node's address (`"nonhost"` until remote starts).
    pub fn address(&self) -> String {
        self.0.registry.address().to_string()
    }
    /// The event stream.
    pub fn event_stream(&self) -> &EventStream {
        &self.0.event_stream
    }
    /// Per-type message markers.
    pub fn message_traits(&self) -> &MessageTraits {
        &self.0.traits
    }
    /// The dead-letter PID.
    pub fn dead_letter(&self) -> Pid {
        self.0
            .dead_letter
            .lock()
            .clone()
            .expect("set at system start")
    }
    /// The tokio runtime the system's actors run on.
    pub fn runtime(&self) -> &tokio::runtime::Handle {
        &self.0.runtime
    }
    /// A new PID on this node for `id` (not registered).
    pub fn new_local_pid(&self, id: &str) -> Pid {
        Pid::with_parts(self.registry().address(), Arc::from(id), 0)
    }
    pub(crate) fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    /// Stores an extension (remote, cluster…) by its type.
    pub fn set_extension<T: std::any::Any + Send + Sync>(&self, ext: Arc<T>) {
        self.0.extensions.insert(TypeId::of::<T>(), ext);
    }
    /// The extension of type `T`.
    pub fn extension<T: std::any::Any + Send + Sync>(&self) -> Option<Arc<T>> {
        self.0
            .extensions
            .get(&TypeId::of::<T>())
            .and_then(|e| e.value().clone().downcast::<T>().ok())
    }

    /// The extension of type `T`, made by `make` if there is none yet (atomically).
    pub(crate) fn extension_or_insert_with<T: std::any::Any + Send + Sync>(
        &self,
        make: impl FnOnce() -> T,
    ) -> Arc<T> {
        let e = self
            .0
            .extensions
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Arc::new(make()));
        e.value()
            .clone()
            .downcast::<T>()
            .expect("extensions are keyed by their type")
    }

    /// Runs `hook` when the system shuts down (at once if it already has).
    pub(crate) fn on_shutdown(&self, hook: ShutdownHook) {
        let mut hooks = self.0.shutdown_hooks.lock();
        if self.is_shut_down() {
            drop(hooks);
            return hook();
        }
        hooks.push(hook);
    }

    /// Identifies this system among the live ones (the address of its shared state).
    #[inline]
    pub(crate) fn identity(&self) -> usize {
        Arc::as_ptr(&self.0) as usize
    }

    /// True once [`ActorSystem::shutdown`] was called.
    pub fn is_shut_down(&self) -> bool {
        self.0.shut_down.load(Ordering::Acquire)
    }

    /// Stops every actor at once and shuts the system's own runtime down. Messages still
    /// queued are dropped. Safe to call from inside or outside async code.
    pub fn shutdown(&self) {
        if self.0.shut_down.swap(true, Ordering::AcqRel) {
            return;
        }
        for id in self.registry().ids() {
            if let Some(p) = self.registry().get_local(&id) {
                let pid = self.new_local_pid(&id);
                p.send_system_message(&pid, SystemMessage::Stop);
            }
        }
        // Taken out first: a hook may wait for a thread that calls back into the system.
        let hooks = std::mem::take(&mut *self.0.shutdown_hooks.lock());
        for hook in hooks {
            hook();
        }
        self.0.extensions.clear();
        if let Some(rt) = self.0.owned_runtime.lock().take() {
            rt.shutdown_background();
        }
        self.registry().clear();
    }
}

impl std::fmt::Debug for ActorSystem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ActorSystem({}, {})", self.0.id, self.address())
    }
}

/// A weak handle on an actor system, for processes the system itself owns (dead letters,
/// guardians): they must not keep it alive.
#[derive(Clone, Debug)]
pub(crate) struct WeakSystem(Weak<SystemInner>);

impl WeakSystem {
    /// The system, while it lives.
    pub(crate) fn upgrade(&self) -> Option<ActorSystem> {
        self.0.upgrade().map(ActorSystem)
    }
}

// Resolution and sending are defined here, not in `pid.rs`: a PID is plain data, and
// resolving needs the system's registry.
impl Pid {
    /// The cached process, if this system's registry cached one that lives.
    #[inline]
    fn cached(&self, system: &ActorSystem) -> Option<&dyn Process> {
        let registry = system.registry();
        registry.live(self.resolved(registry.serial())?)
    }

    /// Resolves the process this PID points at (a dead-letter process if there is none).
    pub fn resolve(&self, system: &ActorSystem) -> Arc<dyn Process> {
        let registry = system.registry();
        if let Some(r) = self.resolved(registry.serial()) {
            if let Some(p) = registry.shared(r).filter(|p| !p.is_dead()) {
                return p;
            }
        }
        if self.resolved_any().is_none() && registry.is_local(self) {
            // Cache what the registry's own PID caches (shared: no allocation).
            if let Some(r) = registry.get_local_resolved(self.id()) {
                if let Some(p) = registry.shared(&r) {
                    self.set_resolved(registry.serial(), r);
                    return p;
                }
            }
        }
        let (p, cacheable) = registry.resolve(self);
        if cacheable {
            self.cache_process(registry.serial(), p.clone());
        }
        p
    }

    /// Low-level: delivers a user message envelope, bypassing sender middleware.
    // Forced, with the resolving path out of line: left `#[inline]`, LLVM kept it a call of
    // its own per send (its register saves and restores about 17 instructions, callgrind).
    #[inline(always)]
    pub fn send_user_message(&self, system: &ActorSystem, envelope: MessageEnvelope) {
        if let Some(p) = self.cached(system) {
            return p.send_user_message(self, envelope);
        }
        self.send_user_message_resolving(system, envelope)
    }

    /// [`send_user_message`](Self::send_user_message) to a PID without a live cached process.
    #[inline(never)]
    fn send_user_message_resolving(&self, system: &ActorSystem, envelope: MessageEnvelope) {
        self.resolve(system).send_user_message(self, envelope)
    }

    /// Low-level: delivers a system message.
    #[inline]
    pub fn send_system_message(&self, system: &ActorSystem, message: SystemMessage) {
        if let Some(p) = self.cached(system) {
            return p.send_system_message(self, message);
        }
        self.resolve(system).send_system_message(self, message)
    }
}
