//! The one conversion between core [`Pid`]s and wire `actor.PID`s, in both directions, and
//! the node context the outbound direction needs ([`WireContext`]).

use protoactor::Pid;

use crate::actor_proto;

/// Converts between core [`Pid`](protoactor::Pid)s and wire `actor.PID`s.
pub trait PidExt {
    /// The wire form of this PID, as it is (a pre-remote `"nonhost"` address stays; the
    /// codec replaces it through [`WireContext::pid`]).
    fn to_proto(&self) -> actor_proto::Pid;
}

impl PidExt for Pid {
    fn to_proto(&self) -> actor_proto::Pid {
        wire_pid(self.address(), self.id(), self.request_id())
    }
}

impl From<&Pid> for actor_proto::Pid {
    fn from(p: &Pid) -> Self {
        p.to_proto()
    }
}

impl actor_proto::Pid {
    /// The core PID for this wire PID.
    pub fn to_pid(&self) -> Pid {
        let p = Pid::new(self.address.as_str(), self.id.as_str());
        if self.request_id != 0 {
            p.with_request_id(self.request_id)
        } else {
            p
        }
    }
}

/// An `actor.PID` from its parts: every core-to-wire conversion goes through here.
pub(crate) fn wire_pid(address: &str, id: &str, request_id: u32) -> actor_proto::Pid {
    actor_proto::Pid {
        address: address.to_string(),
        id: id.to_string(),
        request_id,
    }
}

/// What an encoder needs to know about the local node.
#[derive(Debug, Clone, Copy)]
pub struct WireContext<'a> {
    /// This node's address, written instead of `"nonhost"` in PIDs.
    pub local_address: &'a str,
}

impl WireContext<'_> {
    /// The wire form of `pid`, with a pre-remote `"nonhost"` address replaced.
    pub fn pid(&self, pid: &Pid) -> actor_proto::Pid {
        wire_pid(self.address(pid), pid.id(), pid.request_id())
    }

    /// The address `pid` is written with: its own, or this node's for `"nonhost"`.
    pub fn address<'p>(&'p self, pid: &'p Pid) -> &'p str {
        if pid.address() == protoactor::pid::LOCAL_ADDRESS {
            self.local_address
        } else {
            pid.address()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_roundtrip_and_nonhost_becomes_the_local_address() {
        let p = Pid::new("127.0.0.1:2", "$5").with_request_id(7);
        assert_eq!(p.to_proto().to_pid(), p);
        assert_eq!(actor_proto::Pid::from(&p), p.to_proto());
        let ctx = WireContext {
            local_address: "127.0.0.1:1",
        };
        assert_eq!(ctx.pid(&p), p.to_proto());
        let local = Pid::new(protoactor::pid::LOCAL_ADDRESS, "$1");
        assert_eq!(local.to_proto().address, protoactor::pid::LOCAL_ADDRESS);
        assert_eq!(ctx.pid(&local).to_pid(), Pid::new("127.0.0.1:1", "$1"));
    }
}
