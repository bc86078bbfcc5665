//! Guardians: supervisors for top-level actors spawned with a guardian strategy.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::message::MessageEnvelope;
use crate::pid::Pid;
use crate::process::{Process, SystemMessage};
use crate::supervision::{FailureReason, Supervisor, SupervisorStrategy};
use crate::system::{ActorSystem, WeakSystem};

/// The guardians of one system, by strategy instance.
#[derive(Default)]
struct Guardians {
    by_strategy: Mutex<HashMap<usize, Pid>>,
}

/// The guardian for `strategy` in `system` (one per strategy instance), created on first use.
pub(crate) fn guardian_pid(system: &ActorSystem, strategy: Arc<dyn SupervisorStrategy>) -> Pid {
    // kept as a system extension, so the system handle does not name guardians
    system
        .extension_or_insert_with(Guardians::default)
        .guardian_pid(system, strategy)
}

impl Guardians {
    fn guardian_pid(&self, system: &ActorSystem, strategy: Arc<dyn SupervisorStrategy>) -> Pid {
        let key = Arc::as_ptr(&strategy) as *const () as usize;
        let mut map = self.by_strategy.lock();
        if let Some(p) = map.get(&key) {
            return p.clone();
        }
        let id = format!("guardian{}", system.registry().next_id());
        let process = Arc::new(GuardianProcess {
            system: system.downgrade(),
            strategy,
        });
        let pid = system
            .registry()
            .add(process, &id)
            .expect("guardian ids are unique");
        map.insert(key, pid.clone());
        pid
    }
}

struct GuardianProcess {
    system: WeakSystem,
    strategy: Arc<dyn SupervisorStrategy>,
}

struct GuardianSupervisor<'a> {
    system: &'a ActorSystem,
}

impl Supervisor for GuardianSupervisor<'_> {
    fn children(&self) -> Vec<Pid> {
        // A guardian does not track its children (as in protoactor-go).
        Vec::new()
    }
    fn escalate_failure(&self, reason: FailureReason, _message_type: Option<&'static str>) {
        tracing::error!(reason = %reason, "a guardian cannot escalate a failure; the failure is dropped");
    }
    fn restart_children(&self, pids: &[Pid]) {
        for p in pids {
            p.send_system_message(self.system, SystemMessage::Restart);
        }
    }
    fn stop_children(&self, pids: &[Pid]) {
        for p in pids {
            p.send_system_message(self.system, SystemMessage::Stop);
        }
    }
    fn resume_children(&self, pids: &[Pid]) {
        for p in pids {
            p.send_system_message(self.system, SystemMessage::ResumeMailbox);
        }
    }
}

impl Process for GuardianProcess {
    fn send_user_message(&self, pid: &Pid, _envelope: MessageEnvelope) {
        tracing::error!(guardian = %pid, "a guardian does not take user messages");
    }
    fn send_system_message(&self, _pid: &Pid, message: SystemMessage) {
        let Some(system) = self.system.upgrade() else {
            return;
        };
        if let SystemMessage::Failure(f) = message {
            self.strategy.handle_failure(
                &system,
                &GuardianSupervisor { system: &system },
                &f.who,
                &f.restart_stats,
                &f.reason,
                f.message_type,
            );
        }
    }
}
