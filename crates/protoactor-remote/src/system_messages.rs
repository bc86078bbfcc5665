//! The wire mapping of core messages in both directions: the system messages a remote
//! process forwards (`Watch`, `Unwatch`, `Stop`, `Terminated`) and the core messages that
//! travel as their `actor.*` wire forms (`PoisonPill`, `Touch`, `Touched`,
//! `DeadLetterResponse`), as protoactor-go writes them.
//!
//! Outbound, [`to_wire`] turns a system message for a remote actor into the message that
//! crosses the wire; the serializer writes core messages through their [`WireForm`]s.
//! Inbound, the serializer reads them back through the same [`WireForm`]s and [`from_wire`]
//! tells which decoded messages are system messages for the target.

use protoactor::message::downcast_message;
use protoactor::runtime::SystemMessage;
use protoactor::{
    BoxedMessage, DeadLetterResponse, Message, Pid, PoisonPill, Stop, Terminated, TerminatedReason,
    Touch, Touched,
};

use crate::actor_proto;
use crate::pid::WireContext;

/// A core message with an `actor.*` wire form.
pub(crate) trait WireForm: Message + Sized {
    /// The wire message.
    type Wire: prost::Message + prost::Name + Default + 'static;
    /// The wire form of `self`; PIDs with a `"nonhost"` address get this node's address.
    fn to_wire(&self, ctx: &WireContext<'_>) -> Self::Wire;
    /// The core message for a received wire form.
    fn from_wire(wire: Self::Wire) -> Self;
}

/// Where [`register_all`] puts the mappings (the serializer's tables).
pub(crate) trait Registrar {
    /// `W` travels as itself.
    fn wire_type<W: prost::Message + prost::Name + Default + Clone + Message>(&self);
    /// `R` travels as its [`WireForm::Wire`], and that wire type is read back as `R`.
    fn wire_form<R: WireForm>(&self);
}

/// Registers every core message that crosses the wire.
pub(crate) fn register_all(r: &impl Registrar) {
    // The wire forms themselves, so a user can send them directly; `Watch` and `Unwatch`
    // are read as these and turned into system messages by `from_wire`.
    r.wire_type::<actor_proto::PoisonPill>();
    r.wire_type::<actor_proto::Touch>();
    r.wire_type::<actor_proto::Stop>();
    r.wire_type::<actor_proto::Watch>();
    r.wire_type::<actor_proto::Unwatch>();
    // Core messages: each replaces its wire type's decoder.
    r.wire_form::<PoisonPill>();
    r.wire_form::<Touch>();
    r.wire_form::<Stop>();
    r.wire_form::<Touched>();
    r.wire_form::<DeadLetterResponse>();
    r.wire_form::<Terminated>();
}

/// A wire PID, or the empty PID when the field is missing (as protoactor-go reads it).
fn pid_or_empty(p: Option<actor_proto::Pid>) -> Pid {
    p.map(|p| p.to_pid()).unwrap_or_else(|| Pid::new("", ""))
}

impl WireForm for PoisonPill {
    type Wire = actor_proto::PoisonPill;
    fn to_wire(&self, _: &WireContext<'_>) -> Self::Wire {
        actor_proto::PoisonPill {}
    }
    fn from_wire(_: Self::Wire) -> Self {
        PoisonPill
    }
}

impl WireForm for Touch {
    type Wire = actor_proto::Touch;
    fn to_wire(&self, _: &WireContext<'_>) -> Self::Wire {
        actor_proto::Touch {}
    }
    fn from_wire(_: Self::Wire) -> Self {
        Touch
    }
}

impl WireForm for Stop {
    type Wire = actor_proto::Stop;
    fn to_wire(&self, _: &WireContext<'_>) -> Self::Wire {
        actor_proto::Stop {}
    }
    fn from_wire(_: Self::Wire) -> Self {
        Stop
    }
}

impl WireForm for Touched {
    type Wire = actor_proto::Touched;
    fn to_wire(&self, ctx: &WireContext<'_>) -> Self::Wire {
        actor_proto::Touched {
            who: Some(ctx.pid(&self.who)),
        }
    }
    fn from_wire(w: Self::Wire) -> Self {
        Touched {
            who: pid_or_empty(w.who),
        }
    }
}

impl WireForm for DeadLetterResponse {
    type Wire = actor_proto::DeadLetterResponse;
    fn to_wire(&self, ctx: &WireContext<'_>) -> Self::Wire {
        actor_proto::DeadLetterResponse {
            target: self.target.as_ref().map(|p| ctx.pid(p)),
        }
    }
    fn from_wire(w: Self::Wire) -> Self {
        DeadLetterResponse {
            target: w.target.map(|p| p.to_pid()),
        }
    }
}

impl WireForm for Terminated {
    type Wire = actor_proto::Terminated;
    fn to_wire(&self, ctx: &WireContext<'_>) -> Self::Wire {
        actor_proto::Terminated {
            who: Some(ctx.pid(&self.who)),
            why: self.why as i32,
        }
    }
    fn from_wire(w: Self::Wire) -> Self {
        Terminated {
            who: pid_or_empty(w.who),
            why: TerminatedReason::try_from(w.why).unwrap_or_default(),
        }
    }
}

/// The message a system message for a remote actor travels as, or the system message back
/// when it does not cross the wire (mailbox and supervision messages stay local).
pub(crate) fn to_wire(
    message: SystemMessage,
    ctx: &WireContext<'_>,
) -> Result<BoxedMessage, SystemMessage> {
    Ok(match message {
        SystemMessage::Watch { watcher } => Box::new(actor_proto::Watch {
            watcher: Some(ctx.pid(&watcher)),
        }),
        SystemMessage::Unwatch { watcher } => Box::new(actor_proto::Unwatch {
            watcher: Some(ctx.pid(&watcher)),
        }),
        // The serializer writes these through their wire forms.
        SystemMessage::Stop => Box::new(Stop),
        SystemMessage::Terminated(t) => Box::new(t),
        other => return Err(other),
    })
}

/// A decoded inbound message, sorted by how it is delivered.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// A system message for the target.
    System(SystemMessage),
    /// A watched actor on the peer is gone: for the target, a local watcher.
    Terminated(Terminated),
    /// A user message.
    User(BoxedMessage),
    /// A system message that cannot be delivered (why).
    Invalid(&'static str),
}

/// Sorts a decoded inbound message.
pub(crate) fn from_wire(message: BoxedMessage) -> Inbound {
    if let Some(w) = message.downcast_ref::<actor_proto::Watch>() {
        match &w.watcher {
            Some(watcher) => Inbound::System(SystemMessage::Watch {
                watcher: watcher.to_pid(),
            }),
            None => Inbound::Invalid("actor.Watch without a watcher"),
        }
    } else if let Some(w) = message.downcast_ref::<actor_proto::Unwatch>() {
        match &w.watcher {
            Some(watcher) => Inbound::System(SystemMessage::Unwatch {
                watcher: watcher.to_pid(),
            }),
            None => Inbound::Invalid("actor.Unwatch without a watcher"),
        }
    } else if message.is::<Stop>() {
        Inbound::System(SystemMessage::Stop)
    } else {
        match downcast_message::<Terminated>(message) {
            Ok(t) => Inbound::Terminated(*t),
            Err(message) => Inbound::User(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> WireContext<'static> {
        WireContext {
            local_address: "127.0.0.1:1",
        }
    }

    /// What a remote process forwards is read back as the same system message.
    #[test]
    fn forwarded_system_messages_read_back_as_themselves() {
        let watcher = Pid::new("127.0.0.1:1", "$w");
        let nonhost = Pid::new(protoactor::pid::LOCAL_ADDRESS, "$w");
        for m in [
            SystemMessage::Watch {
                watcher: nonhost.clone(),
            },
            SystemMessage::Unwatch { watcher: nonhost },
        ] {
            let name = m.name();
            let back = match from_wire(to_wire(m, &ctx()).unwrap()) {
                Inbound::System(s) => s,
                other => panic!("{other:?}"),
            };
            assert_eq!(name, back.name());
            match back {
                SystemMessage::Watch { watcher: w } | SystemMessage::Unwatch { watcher: w } => {
                    assert_eq!(w, watcher, "{name}")
                }
                other => panic!("{name}: {}", other.name()),
            }
        }
        let stop = from_wire(to_wire(SystemMessage::Stop, &ctx()).unwrap());
        assert!(matches!(stop, Inbound::System(SystemMessage::Stop)));
        let t = Terminated {
            who: Pid::new("127.0.0.1:1", "$1"),
            why: TerminatedReason::Stopped,
        };
        match from_wire(to_wire(SystemMessage::Terminated(t.clone()), &ctx()).unwrap()) {
            Inbound::Terminated(back) => assert_eq!(back, t),
            other => panic!("{other:?}"),
        }
        assert!(to_wire(SystemMessage::Restart, &ctx()).is_err());
        assert!(matches!(
            from_wire(Box::new(actor_proto::Watch { watcher: None })),
            Inbound::Invalid(_)
        ));
        assert!(matches!(from_wire(Box::new(PoisonPill)), Inbound::User(_)));
    }
}
