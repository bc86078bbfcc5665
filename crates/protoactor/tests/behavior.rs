//! Behaviors, receive timeout and middleware order.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{probe, Probe, WAIT};
use protoactor::prelude::*;
use protoactor::props::{ReceiverFunc, SenderFunc, SpawnFunc};

struct Switch {
    behavior: Behavior<Switch>,
    log: Probe<String>,
}

impl Switch {
    fn off(&mut self, ctx: &mut Context) {
        match ctx.message_as::<&str>().copied() {
            Some("toggle") => self.behavior.become_(Switch::on),
            Some("push") => self.behavior.become_stacked(Switch::on),
            Some(other) => self.log.push(format!("off:{other}")),
            None => {}
        }
    }
    fn on(&mut self, ctx: &mut Context) {
        match ctx.message_as::<&str>().copied() {
            Some("toggle") => self.behavior.become_(Switch::off),
            Some("pop") => self.behavior.unbecome_stacked(),
            Some(other) => self.log.push(format!("on:{other}")),
            None => {}
        }
    }
}

impl Actor for Switch {
    fn receive(&mut self, ctx: &mut Context) {
        self.behavior.current()(self, ctx)
    }
}

#[test]
fn become_become_stacked_and_unbecome() {
    let system = ActorSystem::new();
    let (p, rx) = probe();
    let pid = system.root().spawn(&Props::from_producer(move || Switch {
        behavior: Behavior::new(Switch::off),
        log: p.clone(),
    }));
    for m in ["a", "toggle", "b", "toggle", "c", "push", "d", "pop", "e"] {
        system.root().send(&pid, m);
    }
    assert_eq!(rx.take(5), ["off:a", "on:b", "off:c", "on:d", "off:e"]);
}

#[test]
fn receive_timeout_fires_once_after_silence() {
    let system = ActorSystem::new();
    let (p, rx) = probe::<Instant>();
    let start = Instant::now();
    system.root().spawn(&Props::from_func(move |ctx| {
        if ctx.message().is::<Started>() {
            ctx.set_receive_timeout(Duration::from_millis(150));
        } else if ctx.message().is::<ReceiveTimeout>() {
            assert_eq!(ctx.receive_timeout(), None, "fired timeouts are cancelled");
            p.push(Instant::now());
        }
    }));
    let at = rx.next();
    assert!(at - start >= Duration::from_millis(150));
    rx.assert_quiet(Duration::from_millis(400));
}

#[test]
fn influencing_messages_reset_the_timeout_and_markers_do_not() {
    struct Marker;
    let system = ActorSystem::new();
    system
        .message_traits()
        .not_influence_receive_timeout::<Marker>();
    let (p, rx) = probe::<Instant>();
    let pid = system.root().spawn(&Props::from_func(move |ctx| {
        if ctx.message().is::<Started>() {
            ctx.set_receive_timeout(Duration::from_millis(300));
        } else if ctx.message().is::<ReceiveTimeout>() {
            p.push(Instant::now());
        }
    }));
    // keep it busy for ~600 ms with influencing messages: no timeout meanwhile
    let begin = Instant::now();
    let mut last = begin;
    while begin.elapsed() < Duration::from_millis(600) {
        last = Instant::now();
        system.root().send(&pid, "busy");
        std::thread::sleep(Duration::from_millis(30));
    }
    let fired = rx.next();
    assert!(fired >= last, "fired during the busy period");
    assert!(
        fired - last >= Duration::from_millis(300),
        "{:?}",
        fired - last
    );

    // markers do not postpone it
    let (p, rx) = probe::<Instant>();
    let pid = system.root().spawn(&Props::from_func(move |ctx| {
        if ctx.message().is::<Started>() {
            ctx.set_receive_timeout(Duration::from_millis(300));
        } else if ctx.message().is::<ReceiveTimeout>() {
            p.push(Instant::now());
        }
    }));
    let begin = Instant::now();
    let mut fired = None;
    while begin.elapsed() < Duration::from_secs(3) && fired.is_none() {
        system.root().send(&pid, Marker);
        fired = rx.try_next(Duration::from_millis(30));
    }
    let fired = fired.expect("markers must not keep postponing the timeout");
    assert!(fired - begin < Duration::from_secs(2));
}

#[test]
fn the_timeout_fires_after_a_message_handled_for_longer_than_the_timeout() {
    let system = ActorSystem::new();
    let (p, rx) = probe::<(&'static str, Instant)>();
    let pid = system.root().spawn(
        &Props::from_func(move |ctx| {
            if ctx.message().is::<Started>() {
                ctx.set_receive_timeout(Duration::from_millis(100));
            } else if ctx.message_as::<&str>() == Some(&"slow") {
                // the deadline passes while this message is handled
                std::thread::sleep(Duration::from_millis(300));
                p.push(("handled", Instant::now()));
            } else if ctx.message().is::<ReceiveTimeout>() {
                p.push(("timeout", Instant::now()));
            }
        })
        // runs on this thread, so the runtime's workers are free to run the timer task while
        // the message is handled (a worker-spawned task may otherwise wait for that worker)
        .with_dispatcher(Dispatcher::synchronized(300)),
    );
    system.root().send(&pid, "slow");
    let (what, handled) = rx.next();
    assert_eq!(what, "handled");
    let (what, fired) = rx.next();
    assert_eq!(
        what, "timeout",
        "ReceiveTimeout must arrive after the slow message"
    );
    assert!(
        fired - handled >= Duration::from_millis(100),
        "fired {:?} after the message, before the timeout",
        fired - handled
    );
}

#[test]
fn the_timeout_still_fires_after_a_failed_message_is_resumed() {
    let system = ActorSystem::new();
    let (p, rx) = probe::<&'static str>();
    let kid = Props::from_func(move |ctx| {
        if ctx.message().is::<Started>() {
            ctx.set_receive_timeout(Duration::from_millis(100));
            p.push("started");
        } else if ctx.message_as::<&str>() == Some(&"fail") {
            panic!("failing while the timer is paused");
        } else if ctx.message().is::<ReceiveTimeout>() {
            p.push("timeout");
        }
    });
    let parent = system.root().spawn(
        &Props::from_func(move |ctx| {
            if ctx.message().is::<Started>() {
                let k = ctx.spawn(&kid);
                ctx.send(&k, "fail");
            }
        })
        .with_supervisor(
            OneForOneStrategy::new(10, Duration::from_secs(10)).with_decider(|_| Directive::Resume),
        ),
    );
    let _ = parent;
    assert_eq!(rx.next(), "started");
    assert_eq!(
        rx.next(),
        "timeout",
        "a resumed actor keeps its receive timeout"
    );
}

#[test]
fn cancel_and_sub_millisecond_disable_the_timeout() {
    let system = ActorSystem::new();
    let (p, rx) = probe::<String>();
    system.root().spawn(&Props::from_func(move |ctx| {
        if ctx.message().is::<Started>() {
            ctx.set_receive_timeout(Duration::from_millis(50));
            ctx.cancel_receive_timeout();
            assert_eq!(ctx.receive_timeout(), None);
            ctx.set_receive_timeout(Duration::from_micros(500));
            assert_eq!(ctx.receive_timeout(), None);
            p.push("armed and disarmed".into());
        } else if ctx.message().is::<ReceiveTimeout>() {
            p.push("timeout".into());
        }
    }));
    assert_eq!(rx.next(), "armed and disarmed");
    rx.assert_quiet(Duration::from_millis(300));
}

#[test]
fn receiver_and_sender_middleware_run_in_registration_order() {
    let system = ActorSystem::new();
    let (p, rx) = probe::<String>();
    let inbound = |name: &'static str, p: Probe<String>| {
        move |next: ReceiverFunc| -> ReceiverFunc {
            let p = p.clone();
            Arc::new(move |ctx: &mut Context, env: MessageEnvelope| {
                if env.message().is::<&str>() {
                    p.push(format!("in:{name}"));
                }
                next(ctx, env)
            })
        }
    };
    let outbound = |name: &'static str, p: Probe<String>| {
        move |next: SenderFunc| -> SenderFunc {
            let p = p.clone();
            Arc::new(move |sc, target: &Pid, env: MessageEnvelope| {
                p.push(format!("out:{name}"));
                next(sc, target, env)
            })
        }
    };
    let sink = system.root().spawn(&Props::from_func(|_| {}));
    let p2 = p.clone();
    let props = Props::from_func(move |ctx| {
        if ctx.message().is::<&str>() {
            p2.push("actor".into());
            ctx.send(&sink, 1u8);
        }
    })
    .with_receiver_middleware(inbound("first", p.clone()))
    .with_receiver_middleware(inbound("second", p.clone()))
    .with_sender_middleware(outbound("first", p.clone()))
    .with_sender_middleware(outbound("second", p.clone()));
    let pid = system.root().spawn(&props);
    system.root().send(&pid, "hi");
    assert_eq!(
        rx.take(5),
        ["in:first", "in:second", "actor", "out:first", "out:second"]
    );
}

use protoactor::MessageEnvelope;

#[test]
fn spawn_middleware_context_decorator_and_on_init() {
    let system = ActorSystem::new();
    let (p, rx) = probe::<String>();
    let p_spawn = p.clone();
    let p_dec = p.clone();
    let p_init = p.clone();
    let child = Props::from_func(|_| {});
    let parent = Props::from_func(move |ctx| {
        if ctx.message().is::<Started>() {
            ctx.spawn_named(&child, "kid").unwrap();
        }
    })
    .with_spawn_middleware(move |next: SpawnFunc| -> SpawnFunc {
        let p = p_spawn.clone();
        Arc::new(
            move |system: &ActorSystem, id: &str, props: &Props, parent: Option<&Pid>| {
                p.push(format!("spawn {id}"));
                next(system, id, props, parent)
            },
        )
    })
    .with_context_decorator(
        move |ctx: &mut Context, next: &mut dyn FnMut(&mut Context)| {
            if ctx.message().is::<Started>() {
                p_dec.push("decorated Started".into());
            }
            next(ctx)
        },
    )
    .with_on_init(move |ctx: &mut Context| p_init.push(format!("init {}", ctx.self_pid().id())));
    system.root().spawn_named(&parent, "p").unwrap();
    assert_eq!(rx.take(3), ["init p", "decorated Started", "spawn p/kid"]);
    let _ = WAIT;
}
