//! Spawning: from props to a running actor. Runtime-level (re-exported under
//! [`runtime`](crate::runtime)): programs spawn through a context's
//! [`ContextOps::spawn`](crate::ContextOps::spawn).

use std::sync::Arc;

use crate::actor_process::ActorProcess;
use crate::context::{Context, Props, SpawnError};
use crate::pid::Pid;
use crate::process::SystemMessage;
use crate::registry::with_joined;
use crate::system::ActorSystem;

/// Spawns `props` as `id` (the full id) under `parent`, with the props' own spawn
/// function if they have one (routers do), else [`default_spawn`]. No spawn middleware
/// runs here: contexts run theirs before calling this.
pub fn spawn(
    system: &ActorSystem,
    id: &str,
    props: &Props,
    parent: Option<&Pid>,
) -> Result<Pid, SpawnError> {
    match &props.0.spawner {
        Some(f) => f(system, id, props, parent),
        None => default_spawn(system, id, props, parent),
    }
}

/// Spawns an actor: registers its process, builds its context, queues `Started` and starts
/// the mailbox.
pub fn default_spawn(
    system: &ActorSystem,
    id: &str,
    props: &Props,
    parent: Option<&Pid>,
) -> Result<Pid, SpawnError> {
    if system.is_shut_down() {
        return Err(SpawnError::SystemShutDown);
    }
    let dispatcher = props.0.dispatcher.clone().unwrap_or_default();
    if !dispatcher.prepare(system) {
        return Err(SpawnError::DispatcherStopped);
    }
    let process = Arc::new(ActorProcess::new(system, &props.0.mailbox, &dispatcher));
    let pid = system.registry().add_typed(process.clone(), id)?;
    let mut ctx = Box::new(Context::new(
        system,
        props.clone(),
        pid.clone(),
        parent.cloned(),
    ));
    for f in props.0.on_init.iter() {
        f(&mut ctx);
    }
    system.metrics().spawn();
    process.post_system(&pid, SystemMessage::Started);
    process.start(ctx, &dispatcher);
    Ok(pid)
}

impl Context {
    /// Spawns a child named `name` even if the name contains `/`, for ids whose shape
    /// another system dictates: a cluster grain is named after its protoactor-go identity,
    /// which may contain `/` (`partition-activator/user/42$1`, as Go names it).
    ///
    /// Such a name can take the id a descendant of a sibling would get (`a/b` is also child
    /// `b` of child `a`, whose own spawn of `b` then fails with `NameExists`), which is why
    /// [`ContextOps::spawn_named`](crate::ContextOps::spawn_named) refuses it; use this only
    /// where the caller owns the whole namespace under this actor (the cluster's activator
    /// spawns only grains, each named `<identity>$<n>`). An empty name is still refused.
    pub fn spawn_named_unvalidated(&self, props: &Props, name: &str) -> Result<Pid, SpawnError> {
        if name.is_empty() {
            return Err(SpawnError::InvalidName(String::new()));
        }
        if props.0.guardian.is_some() {
            return Err(SpawnError::GuardianOnChild);
        }
        let (system, me) = (self.system(), self.self_pid());
        let pid = with_joined(&[me.id(), "/", name], |id| {
            match self.props().0.spawn_chain.get() {
                Some(chain) => chain(system, id, props, Some(me)),
                None => spawn(system, id, props, Some(me)),
            }
        })?;
        self.add_child(pid.clone());
        Ok(pid)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::message::MessageEnvelope;
    use crate::pid::Pid;
    use crate::{ActorSystem, ContextOps, Props};

    /// An actor's PID caches its process as itself (no box per spawn), and another PID of
    /// the same actor (received in a message, built from its id) caches that same `Arc`
    /// when it resolves (no allocation per resolve), and still delivers.
    #[test]
    fn pids_of_an_actor_share_its_process_without_a_box() {
        let system = ActorSystem::new();
        let (tx, rx) = std::sync::mpsc::channel();
        let props = Props::from_func(move |ctx| {
            if let Some(n) = ctx.message_as::<u32>() {
                tx.send(*n).unwrap();
            }
        });
        let pid = system.root().spawn(&props);
        let registered = pid.resolved_any().expect("cached at registration").clone();
        assert!(registered
            .clone()
            .downcast::<crate::actor_process::ActorProcess>()
            .is_ok());
        let other = Pid::new(pid.address(), pid.id());
        other.send_user_message(&system, MessageEnvelope::new(7u32));
        assert_eq!(rx.recv_timeout(std::time::Duration::from_secs(5)), Ok(7));
        assert!(Arc::ptr_eq(
            other.resolved_any().expect("cached on its first send"),
            &registered
        ));
        assert!(Arc::ptr_eq(&pid.resolve(&system), &other.resolve(&system)));
        system.shutdown();
    }
}
