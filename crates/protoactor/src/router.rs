//! Routers: a PID that spreads messages over routees, without passing them through an actor.
//!
//! Pool routers spawn their routees as children; group routers route to given PIDs.
//! Management messages ([`AddRoutee`], [`RemoveRoutee`], [`GetRoutees`]) and
//! [`PoisonPill`] go to the router's actor (`<id>/router`); poisoning or stopping the
//! router stops a pool's routees with it.
//!
//! ```
//! use protoactor::prelude::*;
//! use protoactor::router::Router;
//! let system = ActorSystem::new();
//! let worker = Props::from_func(|_ctx| {});
//! let pool = system.root().spawn(&Router::round_robin().pool(4, worker));
//! system.root().send(&pool, 1u32);
//! ```

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use rand::Rng;

use crate::context::Context;
use crate::context_ops::ContextOps;
use crate::message::{
    BoxedMessage, Message, MessageEnvelope, PoisonPill, Started, Stopped, Terminated,
    TerminatedReason,
};
use crate::pid::Pid;
use crate::process::{Process, SystemMessage};
use crate::props::{Props, SpawnError};
use crate::system::ActorSystem;

/// Adds a routee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddRoutee {
    /// The routee.
    pub pid: Pid,
}
/// Removes a routee (a pool router also poisons it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoveRoutee {
    /// The routee.
    pub pid: Pid,
}
/// Asks for the routees; the answer is [`Routees`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GetRoutees;
/// The routees.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Routees {
    /// The routees' PIDs.
    pub pids: Vec<Pid>,
}

type CloneFn = Arc<dyn Fn(&dyn Message) -> BoxedMessage + Send + Sync>;

/// A message delivered to every routee of any router.
pub struct BroadcastMessage {
    message: BoxedMessage,
    clone: CloneFn,
}

impl std::fmt::Debug for BroadcastMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BroadcastMessage")
            .field("message", &self.message.type_name())
            .finish()
    }
}

impl BroadcastMessage {
    /// Wraps a cloneable message.
    pub fn new<M: Message + Clone>(message: M) -> Self {
        Self {
            message: Box::new(message),
            clone: cloner::<M>(),
        }
    }
}

fn cloner<M: Message + Clone>() -> CloneFn {
    Arc::new(|m: &dyn Message| {
        Box::new(
            m.downcast_ref::<M>()
                .expect("cloner used for its own type")
                .clone(),
        )
    })
}

/// Picks a routee's key for a message in a consistent-hash router (`None`: not routable).
pub type HashFn = Arc<dyn Fn(&dyn Message) -> Option<String> + Send + Sync>;

#[derive(Clone)]
enum Kind {
    RoundRobin,
    Random,
    Broadcast,
    ConsistentHash(HashFn),
}

/// A router configuration; finish it with [`Router::pool`] or [`Router::group`].
#[derive(Clone)]
pub struct Router {
    kind: Kind,
    cloners: HashMap<TypeId, CloneFn>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router").finish_non_exhaustive()
    }
}

impl Router {
    /// Each message to the next routee in turn.
    pub fn round_robin() -> Self {
        Self::of(Kind::RoundRobin)
    }
    /// Each message to a random routee.
    pub fn random() -> Self {
        Self::of(Kind::Random)
    }
    /// Each message to every routee. Messages are cloned per routee, so the message types
    /// must be registered with [`Router::broadcasting`] (or sent as [`BroadcastMessage`]).
    pub fn broadcast() -> Self {
        Self::of(Kind::Broadcast)
    }
    /// Each message to the routee owning its key on a hash ring over `address@id`.
    pub fn consistent_hash<F>(key: F) -> Self
    where
        F: Fn(&dyn Message) -> Option<String> + Send + Sync + 'static,
    {
        Self::of(Kind::ConsistentHash(Arc::new(key)))
    }
    fn of(kind: Kind) -> Self {
        Self {
            kind,
            cloners: HashMap::new(),
        }
    }
    /// Lets a broadcast router clone messages of type `M`.
    pub fn broadcasting<M: Message + Clone>(mut self) -> Self {
        self.cloners.insert(TypeId::of::<M>(), cloner::<M>());
        self
    }

    /// A pool of `size` routees made from `props`, children of the router.
    pub fn pool(self, size: usize, props: Props) -> Props {
        self.props(Routees_::Pool(size, props))
    }
    /// A group routing to existing PIDs.
    pub fn group(self, pids: Vec<Pid>) -> Props {
        self.props(Routees_::Group(pids))
    }

    fn props(self, routees: Routees_) -> Props {
        let cfg = Arc::new((self, routees));
        Props::from_func(|_| {}).with_spawn_func(Arc::new(
            move |system: &ActorSystem, id: &str, _props: &Props, parent: Option<&Pid>| {
                spawn_router(system, id, cfg.clone(), parent)
            },
        ))
    }
}

#[allow(non_camel_case_types)]
enum Routees_ {
    Pool(usize, Props),
    Group(Vec<Pid>),
}

struct RouterState {
    kind: Kind,
    cloners: HashMap<TypeId, CloneFn>,
    /// The routees and their hash ring, swapped together: a sender routes on one snapshot,
    /// so a ring index always points into the routee list it was built from.
    routing: ArcSwap<Routing>,
    next: AtomicUsize,
}

/// One consistent view of the routees.
#[derive(Default)]
struct Routing {
    pids: Vec<Pid>,
    /// Consistent-hash routers only: `(hash, index into pids)`, sorted by hash.
    ring: Vec<(u64, usize)>,
}

impl Routing {
    /// The routee owning `key` on the ring (`None` for an empty ring).
    fn owner(&self, key: &str) -> Option<&Pid> {
        let h = hash64(key);
        let at = match self.ring.binary_search_by(|(x, _)| x.cmp(&h)) {
            Ok(i) => i,
            // past the last point the ring wraps around to the first
            Err(i) if i == self.ring.len() => 0,
            Err(i) => i,
        };
        self.ring.get(at).and_then(|(_, i)| self.pids.get(*i))
    }
}

fn hash64(s: &str) -> u64 {
    // FNV-1a: stable across runs and platforms.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.as_bytes() {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    // FNV alone leaves keys that differ in their last byte close together on the ring
    // (all of "0".."9" would land on one routee); murmur3's finalizer spreads them.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51afd7ed558ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ceb9fe1a85ec53);
    h ^ (h >> 33)
}

const VIRTUAL_NODES: usize = 100;

impl RouterState {
    fn routees(&self) -> Vec<Pid> {
        self.routing.load().pids.clone()
    }

    fn set_routees(&self, pids: Vec<Pid>) {
        let mut ring = Vec::new();
        if matches!(self.kind, Kind::ConsistentHash(_)) {
            ring.reserve(pids.len() * VIRTUAL_NODES);
            for (i, p) in pids.iter().enumerate() {
                for v in 0..VIRTUAL_NODES {
                    ring.push((hash64(&format!("{}@{}#{v}", p.address(), p.id())), i));
                }
            }
            ring.sort_unstable();
        }
        self.routing.store(Arc::new(Routing { pids, ring }));
    }

    fn route(&self, system: &ActorSystem, mut env: MessageEnvelope) {
        let routing = self.routing.load();
        let routees = &routing.pids;
        if routees.is_empty() {
            return system.dead_letter().send_user_message(system, env);
        }
        // Tested by reading (free for a shared message); a `BroadcastMessage` is never
        // shared (it is not `Clone`), so `message_mut` makes no copy.
        if let Some(b) = env
            .message
            .is::<BroadcastMessage>()
            .then(|| env.message_mut().downcast_mut::<BroadcastMessage>())
            .flatten()
        {
            let (clone, msg) = (
                b.clone.clone(),
                std::mem::replace(&mut b.message, Box::new(())),
            );
            return broadcast(system, routees, &*msg, &clone, &env);
        }
        match &self.kind {
            Kind::RoundRobin => {
                let i = self.next.fetch_add(1, Ordering::Relaxed) % routees.len();
                routees[i].send_user_message(system, env)
            }
            Kind::Random => {
                let i = rand::rng().random_range(0..routees.len());
                routees[i].send_user_message(system, env)
            }
            Kind::Broadcast => match self.cloners.get(&env.message.message_type_id()) {
                Some(clone) => broadcast(system, routees, &*env.message, clone, &env),
                None => {
                    tracing::error!(
                        message = env.message.type_name(),
                        "broadcast router: message type not registered with Router::broadcasting; sent to dead letters"
                    );
                    system.dead_letter().send_user_message(system, env)
                }
            },
            Kind::ConsistentHash(key) => match key(&*env.message).map(|k| routing.owner(&k)) {
                Some(Some(routee)) => routee.send_user_message(system, env),
                // a ring always covers a non-empty routee list; never panic in a sender
                Some(None) => system.dead_letter().send_user_message(system, env),
                None => {
                    tracing::error!(
                        message = env.message.type_name(),
                        "consistent-hash router: message has no hash key; sent to dead letters"
                    );
                    system.dead_letter().send_user_message(system, env)
                }
            },
        }
    }
}

fn broadcast(
    system: &ActorSystem,
    routees: &[Pid],
    msg: &dyn Message,
    clone: &CloneFn,
    env: &MessageEnvelope,
) {
    for r in routees {
        r.send_user_message(
            system,
            MessageEnvelope::from_boxed(clone(msg))
                .with_sender(env.sender.clone())
                .with_header(env.header_arc()),
        );
    }
}

/// The router's PID: routes user messages directly, hands the rest to the router actor.
struct RouterProcess {
    system: ActorSystem,
    state: Arc<RouterState>,
    actor: Mutex<Option<Pid>>,
    watchers: Mutex<Vec<Pid>>,
    parent: Option<Pid>,
    dead: AtomicBool,
}

impl RouterProcess {
    fn actor(&self) -> Option<Pid> {
        self.actor.lock().clone()
    }
}

impl Process for RouterProcess {
    fn send_user_message(&self, _pid: &Pid, envelope: MessageEnvelope) {
        let m = &*envelope.message;
        if m.is::<AddRoutee>()
            || m.is::<RemoveRoutee>()
            || m.is::<GetRoutees>()
            || m.is::<PoisonPill>()
        {
            match self.actor() {
                Some(a) => a.send_user_message(&self.system, envelope),
                None => self
                    .system
                    .dead_letter()
                    .send_user_message(&self.system, envelope),
            }
        } else {
            self.state.route(&self.system, envelope)
        }
    }
    fn send_system_message(&self, pid: &Pid, message: SystemMessage) {
        match message {
            SystemMessage::Watch { watcher } => {
                if self.dead.load(Ordering::Acquire) {
                    watcher.send_system_message(
                        &self.system,
                        SystemMessage::Terminated(Terminated {
                            who: pid.clone(),
                            why: TerminatedReason::Stopped,
                        }),
                    );
                } else {
                    self.watchers.lock().push(watcher)
                }
            }
            SystemMessage::Unwatch { watcher } => self.watchers.lock().retain(|w| *w != watcher),
            SystemMessage::Stop => {
                if let Some(a) = self.actor() {
                    a.send_system_message(&self.system, SystemMessage::Stop)
                }
            }
            other => {
                if let Some(a) = self.actor() {
                    a.send_system_message(&self.system, other)
                }
            }
        }
    }
    fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Acquire)
    }
}

struct RouterActor {
    proxy: Pid,
    process: Arc<RouterProcess>,
    state: Arc<RouterState>,
    pool: Option<Props>,
    initial: Option<Routees_>,
}

impl crate::actor::Actor for RouterActor {
    fn receive(&mut self, ctx: &mut Context) {
        if ctx.message().is::<Started>() {
            match self.initial.take() {
                Some(Routees_::Pool(n, props)) => {
                    let pids = (0..n).map(|_| ctx.spawn(&props)).collect();
                    self.state.set_routees(pids);
                }
                Some(Routees_::Group(pids)) => {
                    for p in &pids {
                        ctx.watch(p);
                    }
                    self.state.set_routees(pids);
                }
                None => {}
            }
        } else if let Some(a) = ctx.message_as::<AddRoutee>() {
            let mut v = self.state.routees();
            if !v.contains(&a.pid) {
                // pool and group alike (as in protoactor-go): a routee that stops leaves the
                // routing set instead of turning its share of messages into dead letters
                ctx.watch(&a.pid);
                v.push(a.pid.clone());
                self.state.set_routees(v);
            }
        } else if let Some(r) = ctx.message_as::<RemoveRoutee>() {
            let pid = r.pid.clone();
            let mut v = self.state.routees();
            if v.contains(&pid) {
                v.retain(|p| *p != pid);
                self.state.set_routees(v);
                ctx.unwatch(&pid);
                if self.pool.is_some() {
                    ctx.poison(&pid);
                }
            }
        } else if ctx.message().is::<GetRoutees>() {
            let pids = self.state.routees();
            ctx.respond(Routees { pids });
        } else if let Some(t) = ctx.message_as::<Terminated>() {
            let who = t.who.clone();
            let mut v = self.state.routees();
            v.retain(|p| *p != who);
            self.state.set_routees(v);
        } else if ctx.message().is::<Stopped>() {
            let sys = ctx.system().clone();
            sys.registry().remove(&self.proxy);
            self.process.dead.store(true, Ordering::Release);
            let t = Terminated {
                who: self.proxy.clone(),
                why: TerminatedReason::Stopped,
            };
            for w in std::mem::take(&mut *self.process.watchers.lock()) {
                w.send_system_message(&sys, SystemMessage::Terminated(t.clone()));
            }
            if let Some(p) = &self.process.parent {
                p.send_system_message(&sys, SystemMessage::Terminated(t));
            }
        }
    }
}

fn spawn_router(
    system: &ActorSystem,
    id: &str,
    cfg: Arc<(Router, Routees_)>,
    parent: Option<&Pid>,
) -> Result<Pid, SpawnError> {
    let (router, routees) = &*cfg;
    let state = Arc::new(RouterState {
        kind: router.kind.clone(),
        cloners: router.cloners.clone(),
        routing: ArcSwap::from_pointee(Routing::default()),
        next: AtomicUsize::new(0),
    });
    let process = Arc::new(RouterProcess {
        system: system.clone(),
        state: state.clone(),
        actor: Mutex::new(None),
        watchers: Mutex::new(Vec::new()),
        parent: parent.cloned(),
        dead: AtomicBool::new(false),
    });
    let proxy = system.registry().add(process.clone(), id)?;
    let (pool, initial) = match routees {
        Routees_::Pool(n, p) => (Some(p.clone()), Routees_::Pool(*n, p.clone())),
        Routees_::Group(v) => (None, Routees_::Group(v.clone())),
    };
    let init = Mutex::new(Some(initial));
    let (proxy2, process2, state2) = (proxy.clone(), process.clone(), state.clone());
    let actor_props = Props::from_producer(move || RouterActor {
        proxy: proxy2.clone(),
        process: process2.clone(),
        state: state2.clone(),
        pool: pool.clone(),
        initial: init.lock().take(),
    })
    // the router actor must start on this thread so routees exist when spawn returns
    .with_dispatcher(crate::dispatcher::Dispatcher::synchronized(300));
    match crate::spawn::spawn(system, &format!("{id}/router"), &actor_props, None) {
        Ok(a) => {
            *process.actor.lock() = Some(a);
            Ok(proxy)
        }
        Err(e) => {
            system.registry().remove(&proxy);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_stable_and_spreads_neighbouring_keys() {
        // a fixed function of the bytes: the ring must not move between runs or builds
        assert_eq!(hash64(""), {
            let mut h: u64 = 0xcbf29ce484222325;
            h ^= h >> 33;
            h = h.wrapping_mul(0xff51afd7ed558ccd);
            h ^= h >> 33;
            h = h.wrapping_mul(0xc4ceb9fe1a85ec53);
            h ^ (h >> 33)
        });
        // keys differing in the last byte land far apart (top bits differ)
        let tops: std::collections::HashSet<u64> =
            (0..10).map(|i| hash64(&i.to_string()) >> 60).collect();
        assert!(tops.len() > 3, "{tops:?}");
    }
}
