//! Spawning: from props to a running actor. Runtime-level (re-exported under
//! [`runtime`](crate::runtime)): programs spawn through a context's
//! [`ContextOps::spawn`](crate::ContextOps::spawn).

use std::sync::Arc;

use crate::actor_process::ActorProcess;
use crate::context::Context;
use crate::pid::Pid;
use crate::process::SystemMessage;
use crate::props::{Props, SpawnError};
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
    let pid = system.registry().add(process.clone(), id)?;
    let mut ctx = Box::new(Context::new(
        system,
        props.clone(),
        pid.clone(),
        parent.cloned(),
        Arc::downgrade(&process),
    ));
    for f in props.0.on_init.iter() {
        f(&mut ctx);
    }
    system.metrics().spawn();
    process.post_system(&pid, SystemMessage::Started);
    process.start(ctx, &dispatcher);
    Ok(pid)
}
