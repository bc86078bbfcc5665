//! Context operations: forward, request with a custom sender, headers, parent, the
//! Context variants of stop/poison futures, and system ids.

mod common;

use std::collections::HashSet;

use common::{probe, WAIT};
use protoactor::message::MessageEnvelope;
use protoactor::prelude::*;
use protoactor::props::SenderFunc;

/// Answers a `u32` with `(n, header "trace" or "-")`.
fn echo_with_header() -> Props {
    Props::from_func(|ctx| {
        if let Some(n) = ctx.message_as::<u32>() {
            let trace = ctx
                .header()
                .and_then(|h| h.get("trace"))
                .unwrap_or("-")
                .to_string();
            ctx.respond((*n, trace));
        }
    })
}

#[test]
fn forward_keeps_sender_and_header_and_goes_through_sender_middleware() {
    let system = ActorSystem::new();
    let (p, rx) = probe::<String>();
    let b = system.root().spawn(&echo_with_header());

    let (p2, b2) = (p.clone(), b.clone());
    let a_props = Props::from_func(move |ctx| {
        if ctx.message().is::<u32>() {
            let sender_before = ctx.sender().cloned();
            ctx.forward(&b2);
            // The message moved (documented deviation); sender and header stay readable.
            p2.push(format!(
                "after forward: message is unit = {}",
                ctx.message().is::<()>()
            ));
            p2.push(format!(
                "sender kept = {}",
                ctx.sender().cloned() == sender_before && sender_before.is_some()
            ));
            p2.push(format!(
                "header kept = {:?}",
                ctx.header().and_then(|h| h.get("trace"))
            ));
        }
    })
    .with_sender_middleware({
        let p = p.clone();
        move |next: SenderFunc| -> SenderFunc {
            let p = p.clone();
            std::sync::Arc::new(move |sc, target: &Pid, env: MessageEnvelope| {
                p.push(format!(
                    "sender middleware saw {}",
                    env.message().type_name()
                ));
                next(sc, target, env)
            })
        }
    });
    let a = system.root().spawn(&a_props);

    let mut header = MessageHeader::new();
    header.set("trace", "abc");
    let reply = system
        .root()
        .with_header(header)
        .request_future(&a, 41u32, WAIT)
        .result_as::<(u32, String)>()
        .expect("the original requester gets B's reply");
    assert_eq!(
        reply,
        (41, "abc".to_string()),
        "message and header travelled to B"
    );
    assert_eq!(rx.next(), "sender middleware saw u32");
    assert_eq!(rx.next(), "after forward: message is unit = true");
    assert_eq!(rx.next(), "sender kept = true");
    assert_eq!(rx.next(), "header kept = Some(\"abc\")");
}

/// Pushes every `u32` it receives.
fn collector(p: &common::Probe<String>, name: &'static str) -> Props {
    let p = p.clone();
    Props::from_func(move |ctx| {
        if let Some(n) = ctx.message_as::<(u32, String)>() {
            p.push(format!("{name} got {}", n.0));
        }
    })
}

#[test]
fn request_with_custom_sender_replies_to_the_custom_pid_from_context_and_root() {
    let system = ActorSystem::new();
    let (p, rx) = probe::<String>();
    let echo = system.root().spawn(&echo_with_header());
    let custom = system.root().spawn(&collector(&p, "custom"));

    // From an actor: the reply must reach `custom`, not the requesting actor.
    let (p2, echo2, custom2) = (p.clone(), echo.clone(), custom.clone());
    let requester = system.root().spawn(&Props::from_func(move |ctx| {
        if ctx.message().is::<&str>() {
            ctx.request_with_custom_sender(&echo2, 1u32, &custom2);
        } else if ctx.message().is::<(u32, String)>() {
            p2.push("requester got the reply".into());
        }
    }));
    system.root().send(&requester, "go");
    assert_eq!(rx.next(), "custom got 1");

    // From the root context.
    system
        .root()
        .request_with_custom_sender(&echo, 2u32, &custom);
    assert_eq!(rx.next(), "custom got 2");
    rx.assert_quiet(std::time::Duration::from_millis(100));
}

#[test]
fn a_header_sent_with_a_local_request_arrives() {
    let system = ActorSystem::new();
    let echo = system.root().spawn(&echo_with_header());
    let mut header = MessageHeader::new();
    header.set("trace", "t-1");
    let with = system
        .root()
        .with_header(header)
        .request_future(&echo, 1u32, WAIT)
        .result_as::<(u32, String)>()
        .unwrap();
    assert_eq!(with.1, "t-1");
    let without = system
        .root()
        .request_future(&echo, 2u32, WAIT)
        .result_as::<(u32, String)>()
        .unwrap();
    assert_eq!(without.1, "-", "no header without with_header");
}

#[test]
fn a_childs_parent_is_the_parents_pid() {
    let system = ActorSystem::new();
    let (p, rx) = probe::<(Option<Pid>, Pid)>();
    let props = Props::from_func(move |ctx| {
        if ctx.message().is::<Started>() {
            let p = p.clone();
            let me = ctx.self_pid().clone();
            ctx.spawn(&Props::from_func(move |c| {
                if c.message().is::<Started>() {
                    p.push((c.parent().cloned(), me.clone()));
                }
            }));
        }
    });
    let parent = system.root().spawn(&props);
    let (childs_parent, parent_seen_by_itself) = rx.next();
    assert_eq!(childs_parent.as_ref(), Some(&parent));
    assert_eq!(parent_seen_by_itself, parent);
}

/// A target that records its handled messages and its `Stopped`.
fn target(p: &common::Probe<String>) -> Props {
    let p = p.clone();
    Props::from_func(move |ctx| {
        if let Some(n) = ctx.message_as::<u32>() {
            p.push(format!("target handled {n}"));
        } else if ctx.message().is::<Stopped>() {
            p.push("target stopped".into());
        }
    })
}

/// Asks an actor to stop (or poison) `target` with the Context variant of the future and
/// records when the future completes.
fn killer(p: &common::Probe<String>) -> Props {
    let p = p.clone();
    Props::from_func(move |ctx| {
        let Some((how, pid)) = ctx.message_as::<(&'static str, Pid)>().cloned() else {
            return;
        };
        let fut = if how == "stop" {
            ctx.stop_future(&pid)
        } else {
            ctx.poison_future(&pid)
        };
        let p = p.clone();
        ctx.reenter_after_with_context(fut, move |_ctx, res| {
            let terminated = res
                .ok()
                .and_then(|m| m.downcast_ref::<Terminated>().map(|t| t.who.clone()));
            p.push(format!(
                "{how} future completed with Terminated of target = {}",
                terminated.as_ref() == Some(&pid)
            ));
        });
    })
}

#[test]
fn context_stop_future_and_poison_future_complete_after_the_target_stopped() {
    let system = ActorSystem::new();
    let (p, rx) = probe::<String>();
    let k = system.root().spawn(&killer(&p));

    let t = system.root().spawn(&target(&p));
    system.root().send(&k, ("stop", t.clone()));
    assert_eq!(rx.next(), "target stopped");
    assert_eq!(
        rx.next(),
        "stop future completed with Terminated of target = true"
    );
    let gone = system.root().request_future(&t, 0u32, WAIT).wait();
    assert!(gone.is_err_and(|e| e.is_dead_letter()));

    // Poison: queued messages run first, then the target stops, then the future completes.
    let (gate_tx, gate_rx) = std::sync::mpsc::channel::<()>();
    let gate_rx = std::sync::Mutex::new(gate_rx);
    let p2 = p.clone();
    let t = system.root().spawn(&Props::from_func(move |ctx| {
        if ctx.message().is::<&str>() {
            // Hold the target busy so that 1 and 2 are queued before the poison pill.
            let _ = gate_rx.lock().unwrap().recv_timeout(WAIT);
        } else if let Some(n) = ctx.message_as::<u32>() {
            p2.push(format!("target handled {n}"));
        } else if ctx.message().is::<Stopped>() {
            p2.push("target stopped".into());
        }
    }));
    system.root().send(&t, "hold");
    system.root().send(&t, 1u32);
    system.root().send(&t, 2u32);
    system.root().send(&k, ("poison", t.clone()));
    gate_tx.send(()).unwrap();
    assert_eq!(
        rx.take(4),
        [
            "target handled 1",
            "target handled 2",
            "target stopped",
            "poison future completed with Terminated of target = true"
        ]
    );
}

#[test]
fn system_ids_are_unique() {
    let ids: HashSet<String> = (0..20)
        .map(|_| {
            let s = ActorSystem::new();
            let id = s.id().to_string();
            s.shutdown();
            id
        })
        .collect();
    assert_eq!(ids.len(), 20);
    assert!(ids.iter().all(|id| !id.is_empty()));
}

#[test]
fn sending_an_envelope_sends_its_message_sender_and_header() {
    let system = ActorSystem::new();
    let echo = system.root().spawn(&echo_with_header());
    let fut = ActorFuture::new(&system, WAIT);
    let mut env = MessageEnvelope::new(7u32).with_sender(Some(fut.pid().clone()));
    env.set_header("trace", "t-env");
    // the envelope is sent as an envelope, not boxed as a message of its own
    system.root().send(&echo, env);
    assert_eq!(
        fut.result_as::<(u32, String)>().unwrap(),
        (7, "t-env".to_string())
    );
}

#[test]
fn sender_middleware_sets_a_header_entry_in_one_call() {
    let system = ActorSystem::new();
    let echo = system.root().spawn(&echo_with_header());
    let root = system
        .root()
        .with_sender_middleware(|next: SenderFunc| -> SenderFunc {
            std::sync::Arc::new(move |sc, target, mut env: MessageEnvelope| {
                env.set_header("trace", "from-middleware");
                next(sc, target, env)
            })
        });
    let (n, trace) = root
        .request_future(&echo, 3u32, WAIT)
        .result_as::<(u32, String)>()
        .unwrap();
    assert_eq!((n, trace.as_str()), (3, "from-middleware"));
}

#[test]
fn the_prelude_has_what_ordinary_programs_use() {
    // compiles only if the prelude names these (a program's usual imports)
    #[allow(clippy::type_complexity)]
    let _: Option<(
        SupervisorEvent,
        DeadLetterEvent,
        FailureReason,
        SpawnError,
        OneForOneStrategy,
        AllForOneStrategy,
        ExponentialBackoffStrategy,
        RestartingStrategy,
        std::sync::Arc<dyn SupervisorStrategy>,
        SenderFunc,
        ReceiverFunc,
        SpawnFunc,
        ContextDecorator,
        MessageEnvelope,
    )> = None;
    let system = ActorSystem::new();
    let a = system
        .root()
        .spawn_named(&Props::from_func(|_| {}), "a")
        .unwrap();
    assert_eq!(
        system.root().spawn_named(&Props::from_func(|_| {}), "a"),
        Err(SpawnError::NameExists(a)),
        "the existing PID, without a nested wrapper"
    );
}
