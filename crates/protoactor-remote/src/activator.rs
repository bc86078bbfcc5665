//! The `activator` actor: spawns registered kinds for other nodes (remote spawn).

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;
use protoactor::{Actor, Context, ContextOps, Props, SpawnError};

use crate::pid::PidExt;
use crate::remote_proto::{ActorPidRequest, ActorPidResponse};

/// Status codes of `ActorPidResponse`, as in protoactor-go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum ResponseStatusCode {
    /// Spawned.
    Ok = 0,
    /// The activator is unavailable.
    Unavailable = 1,
    /// No answer in time.
    Timeout = 2,
    /// The name is taken; the existing PID is returned.
    ProcessNameAlreadyExist = 3,
    /// Unknown kind or spawn failure.
    Error = 4,
    /// The request went to dead letters.
    DeadLetter = 5,
}

impl ResponseStatusCode {
    /// The code for a wire value (`None` when out of range).
    pub fn from_i32(v: i32) -> Option<Self> {
        Some(match v {
            0 => Self::Ok,
            1 => Self::Unavailable,
            2 => Self::Timeout,
            3 => Self::ProcessNameAlreadyExist,
            4 => Self::Error,
            5 => Self::DeadLetter,
            _ => return None,
        })
    }
}

pub(crate) type Kinds = Arc<RwLock<HashMap<String, Props>>>;

pub(crate) struct Activator {
    pub(crate) kinds: Kinds,
}

impl Actor for Activator {
    fn receive(&mut self, ctx: &mut Context) {
        let Some(req) = ctx.message_as::<ActorPidRequest>().cloned() else {
            return;
        };
        let Some(props) = self.kinds.read().get(&req.kind).cloned() else {
            tracing::warn!(kind = %req.kind, "remote spawn of an unknown kind");
            ctx.respond(ActorPidResponse {
                pid: None,
                status_code: ResponseStatusCode::Error as i32,
            });
            return;
        };
        let name = if req.name.is_empty() {
            ctx.system().registry().next_id()
        } else {
            req.name
        };
        let resp = match ctx.spawn_named(&props, &format!("Remote${name}")) {
            Ok(pid) => ActorPidResponse {
                pid: Some(pid.to_proto()),
                status_code: ResponseStatusCode::Ok as i32,
            },
            Err(SpawnError::NameExists(existing)) => ActorPidResponse {
                pid: Some(existing.to_proto()),
                status_code: ResponseStatusCode::ProcessNameAlreadyExist as i32,
            },
            Err(e) => {
                tracing::warn!(error = %e, "remote spawn failed");
                ActorPidResponse {
                    pid: None,
                    status_code: ResponseStatusCode::Error as i32,
                }
            }
        };
        ctx.respond(resp);
    }
}

#[cfg(test)]
mod tests {
    use super::ResponseStatusCode as S;

    /// The wire values are protoactor-go's `ResponseStatusCode` constants (0..=5).
    #[test]
    fn status_codes_have_go_s_wire_values() {
        let all = [
            (0, S::Ok),
            (1, S::Unavailable),
            (2, S::Timeout),
            (3, S::ProcessNameAlreadyExist),
            (4, S::Error),
            (5, S::DeadLetter),
        ];
        for (v, code) in all {
            assert_eq!(code as i32, v);
            assert_eq!(S::from_i32(v), Some(code));
        }
        assert_eq!(S::from_i32(-1), None);
        assert_eq!(S::from_i32(6), None);
    }
}
