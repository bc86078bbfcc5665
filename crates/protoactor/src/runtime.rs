//! Runtime internals, for crates that extend the actor system (remote, cluster, custom
//! processes and routers) rather than for actors: the process abstraction and system
//! messages, the process registry, and spawning below the contexts' middleware.
//!
//! ```
//! use protoactor::prelude::*;
//! use protoactor::runtime::{Process, SystemMessage};
//!
//! /// A process that drops everything (for example a placeholder target).
//! struct Sink;
//! impl Process for Sink {
//!     fn send_user_message(&self, _pid: &Pid, _envelope: MessageEnvelope) {}
//!     fn send_system_message(&self, _pid: &Pid, _message: SystemMessage) {}
//! }
//! let system = ActorSystem::new();
//! let pid = system.registry().add(std::sync::Arc::new(Sink), "sink").unwrap();
//! system.root().send(&pid, "dropped");
//! ```

pub use crate::failure::{Failure, RestartStatistics};
pub use crate::process::{CompletionHook, Continuation, Process, SystemMessage};
pub use crate::registry::{AddressResolver, NameExists, ProcessRegistry};
pub use crate::spawn::{default_spawn, spawn};
