//! Starting an actor system: its tokio runtime, the dead-letter process and the
//! event-stream process. This sits above the processes it wires in, so the system handle
//! (`system.rs`) does not depend on them.

use std::sync::Arc;

use crate::dead_letter::DeadLetterProcess;
use crate::message::MessageEnvelope;
use crate::pid::Pid;
use crate::process::{Process, SystemMessage};
use crate::system::{ActorSystem, Config, WeakSystem};
use crate::throttle::Throttle;

impl Default for ActorSystem {
    fn default() -> Self {
        Self::new()
    }
}

impl ActorSystem {
    /// A system with the default config, on its own multi-threaded tokio runtime.
    pub fn new() -> Self {
        Self::with_config(Config::default())
    }

    /// A system with `config`.
    pub fn with_config(config: Config) -> Self {
        let (runtime, owned) = match &config.runtime {
            Some(h) => (h.clone(), None),
            None => {
                let mut b = tokio::runtime::Builder::new_multi_thread();
                if let Some(n) = config.worker_threads {
                    b.worker_threads(n);
                }
                let rt = b
                    .thread_name("protoactor")
                    .enable_all()
                    .build()
                    .expect("failed to build the actor system's tokio runtime");
                (rt.handle().clone(), Some(rt))
            }
        };
        let throttle = Throttle::new(
            config.dead_letter_throttle_count,
            config.dead_letter_throttle_interval,
        );
        let system = ActorSystem::assemble(config, runtime, owned, |weak| {
            Arc::new(DeadLetterProcess::new(weak, throttle))
        });
        let dl = system.registry().dead_letter_process();
        let dl_pid = system
            .registry()
            .add(dl, "deadletter")
            .expect("fresh registry");
        system.set_dead_letter_pid(dl_pid);
        let es: Arc<dyn Process> = Arc::new(EventStreamProcess(system.downgrade()));
        system
            .registry()
            .add(es, "eventstream")
            .expect("fresh registry");
        system
    }
}

/// Messages sent to `<address>/eventstream` are published on the event stream.
struct EventStreamProcess(WeakSystem);

impl Process for EventStreamProcess {
    fn send_user_message(&self, _pid: &Pid, envelope: MessageEnvelope) {
        if let Some(s) = self.0.upgrade() {
            s.event_stream().publish(&*envelope.message);
        }
    }
    fn send_system_message(&self, _pid: &Pid, _message: SystemMessage) {}
}
