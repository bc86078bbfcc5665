//! Lifecycle: message order at start, stop and restart; watch; poison vs stop; naming.

mod common;

use std::time::Duration;

use common::{probe, Probe, WAIT};
use protoactor::prelude::*;
use protoactor::{SharedMessage, SpawnError};

/// Records the lifecycle messages and strings it receives as short names.
fn recorder(name: &'static str, p: Probe<String>) -> Props {
    Props::from_func(move |ctx| {
        let m = ctx.message();
        let ev = if m.is::<Started>() {
            "Started".to_string()
        } else if m.is::<Stopping>() {
            "Stopping".to_string()
        } else if m.is::<Stopped>() {
            "Stopped".to_string()
        } else if m.is::<Restarting>() {
            "Restarting".to_string()
        } else if let Some(t) = m.downcast_ref::<Terminated>() {
            format!("Terminated({},{:?})", t.who.id(), t.why)
        } else if let Some(s) = m.downcast_ref::<&str>() {
            s.to_string()
        } else {
            return;
        };
        p.push(format!("{name}:{ev}"));
    })
}

#[test]
fn start_user_stop_order() {
    let system = ActorSystem::new();
    let (p, rx) = probe();
    let pid = system.root().spawn(&recorder("a", p));
    system.root().send(&pid, "one");
    system.root().send(&pid, "two");
    // Stop is a system message and overtakes queued user messages: let them run first
    system
        .root()
        .request_future(&pid, Touch, WAIT)
        .wait()
        .unwrap();
    system.root().stop_future(&pid).wait().unwrap();
    assert_eq!(
        rx.take(5),
        ["a:Started", "a:one", "a:two", "a:Stopping", "a:Stopped"]
    );
}

#[test]
fn stopping_a_parent_stops_children_in_reverse_order_first() {
    let system = ActorSystem::new();
    let (p, rx) = probe();
    let p2 = p.clone();
    let parent = Props::from_func(move |ctx| {
        if ctx.message().is::<Started>() {
            // children on the synchronized dispatcher handle a Stop as it is sent, so the
            // order they see is the order the parent sends in
            let sync = Dispatcher::synchronized(300);
            for c in ["c1", "c2", "c3"] {
                let props = recorder(c, p2.clone()).with_dispatcher(sync.clone());
                ctx.spawn_named(&props, c).unwrap();
            }
            p2.push("parent:spawned".into());
        } else if ctx.message().is::<Stopping>() {
            p2.push("parent:Stopping".into());
        } else if ctx.message().is::<Stopped>() {
            p2.push("parent:Stopped".into());
        } else if let Some(t) = ctx.message_as::<Terminated>() {
            p2.push(format!(
                "parent:Terminated({})",
                t.who.id().rsplit('/').next().unwrap()
            ));
        }
    });
    let pid = system.root().spawn_named(&parent, "parent").unwrap();
    let mut started = 0;
    rx.collect_until(|e| {
        if e.ends_with(":Started") || e == "parent:spawned" {
            started += 1;
        }
        started == 4
    });
    system.root().stop(&pid);
    let events = rx.collect_until(|e| e == "parent:Stopped");
    let pos = |s: &str| {
        events
            .iter()
            .position(|e| e == s)
            .unwrap_or_else(|| panic!("{s} missing in {events:?}"))
    };
    // the parent learns it is stopping first
    assert!(pos("parent:Stopping") < pos("c3:Stopping"));
    // children are asked to stop in reverse spawn order
    assert!(pos("c3:Stopping") < pos("c2:Stopping"), "{events:?}");
    assert!(pos("c2:Stopping") < pos("c1:Stopping"), "{events:?}");
    // the parent stops only after every child has stopped, and hears of each
    for c in ["c1", "c2", "c3"] {
        assert!(pos(&format!("{c}:Stopped")) < pos("parent:Stopped"));
        assert!(pos(&format!("parent:Terminated({c})")) < pos("parent:Stopped"));
    }
}

#[test]
fn poison_pill_lets_queued_messages_run_but_stop_does_not() {
    let system = ActorSystem::new();
    let (p, rx) = probe();
    // a bounded gate: the actor blocks on its first message until the test has queued the rest
    let (gate_tx, gate_rx) = std::sync::mpsc::channel::<()>();
    let gate_rx = std::sync::Mutex::new(gate_rx);
    let props = Props::from_func(move |ctx| {
        if ctx.message_as::<&str>() == Some(&"block") {
            gate_rx.lock().unwrap().recv_timeout(WAIT).unwrap();
        }
        if let Some(s) = ctx.message_as::<&str>() {
            p.push(s.to_string());
        }
    });
    let a = system.root().spawn(&props);
    system.root().send(&a, "block");
    system.root().send(&a, "queued");
    let fut = system.root().poison_future(&a);
    gate_tx.send(()).unwrap();
    fut.wait().unwrap();
    assert_eq!(rx.take(2), ["block", "queued"]);
}

/// `Touch` and `PoisonPill` act as themselves whatever form they arrive in: shared (one
/// message for many receivers, read through its reference) as well as owned.
#[test]
fn a_shared_touch_is_answered_and_a_shared_poison_pill_stops_the_actor() {
    let system = ActorSystem::new();
    let (p, rx) = probe();
    let pid = system.root().spawn(&recorder("a", p));
    let touched = system
        .root()
        .request_future(&pid, SharedMessage::new(Touch), WAIT)
        .result_as::<Touched>()
        .unwrap();
    assert_eq!(touched.who, pid);
    system.root().send(&pid, SharedMessage::new(PoisonPill));
    assert_eq!(rx.take(3), ["a:Started", "a:Stopping", "a:Stopped"]);
}

#[test]
fn stop_skips_queued_user_messages() {
    let system = ActorSystem::new();
    let (p, rx) = probe();
    let (gate_tx, gate_rx) = std::sync::mpsc::channel::<()>();
    let gate_rx = std::sync::Mutex::new(gate_rx);
    let props = Props::from_func(move |ctx| {
        if let Some(s) = ctx.message_as::<&str>() {
            p.push(s.to_string());
            if *s == "block" {
                gate_rx.lock().unwrap().recv_timeout(WAIT).unwrap();
            }
        }
    });
    let a = system.root().spawn(&props);
    system.root().send(&a, "block");
    system.root().send(&a, "never");
    // the actor is inside "block" with "never" queued behind it
    assert_eq!(rx.next(), "block");
    let fut = system.root().stop_future(&a);
    gate_tx.send(()).unwrap();
    let t = fut.result_as::<Terminated>().unwrap();
    assert_eq!(&t.who, &a);
    rx.assert_quiet(Duration::from_millis(200));
}

#[test]
fn watchers_get_terminated_and_watching_a_dead_pid_gives_not_found() {
    let system = ActorSystem::new();
    let (p, rx) = probe();
    let target = system.root().spawn(&Props::from_func(|_| {}));
    let t2 = target.clone();
    let watcher = system.root().spawn(&Props::from_func(move |ctx| {
        if ctx.message().is::<Started>() {
            ctx.watch(&t2);
            p.push("watching".to_string());
        } else if let Some(t) = ctx.message_as::<Terminated>() {
            p.push(format!("{}:{:?}", t.who.id(), t.why));
        } else if let Some(pid) = ctx.message_as::<Pid>() {
            let pid = pid.clone();
            ctx.watch(&pid);
        }
    }));
    assert_eq!(rx.next(), "watching");
    system.root().stop(&target);
    assert_eq!(rx.next(), format!("{}:Stopped", target.id()));
    // watching it again now: it is gone, so NotFound
    system.root().send(&watcher, target.clone());
    assert_eq!(rx.next(), format!("{}:NotFound", target.id()));
}

#[test]
fn unwatch_stops_notifications() {
    let system = ActorSystem::new();
    let (p, rx) = probe();
    let target = system.root().spawn(&Props::from_func(|_| {}));
    let t2 = target.clone();
    system.root().spawn(&Props::from_func(move |ctx| {
        if ctx.message().is::<Started>() {
            ctx.watch(&t2);
            ctx.unwatch(&t2);
            p.push("ready".to_string());
        } else if ctx.message().is::<Terminated>() {
            p.push("terminated".to_string());
        }
    }));
    assert_eq!(rx.next(), "ready");
    system.root().stop_future(&target).wait().unwrap();
    rx.assert_quiet(Duration::from_millis(200));
}

#[test]
fn touch_is_answered_automatically() {
    let system = ActorSystem::new();
    let pid = system.root().spawn(&Props::from_func(|_| {}));
    let touched = system
        .root()
        .request_future(&pid, Touch, WAIT)
        .result_as::<Touched>()
        .unwrap();
    assert_eq!(touched.who, pid);
}

#[test]
fn names_ids_and_name_conflicts() {
    let system = ActorSystem::new();
    let props = Props::from_func(|ctx| {
        if ctx.message().is::<Started>() && ctx.parent().is_none() {
            let child = ctx.spawn_named(&Props::from_func(|_| {}), "kid").unwrap();
            ctx.respond(child);
        }
        if ctx.message_as::<&str>() == Some(&"kids") {
            let kids: Vec<String> = ctx.children().iter().map(|p| p.id().to_string()).collect();
            ctx.respond(kids);
        }
    });
    let a = system.root().spawn_named(&props, "named").unwrap();
    assert_eq!(a.id(), "named");
    assert_eq!(a.address(), "nonhost");
    match system.root().spawn_named(&props, "named") {
        Err(SpawnError::NameExists(existing)) => assert_eq!(existing, a),
        other => panic!("expected NameExists, got {other:?}"),
    }
    let kids = system
        .root()
        .request_future(&a, "kids", WAIT)
        .result_as::<Vec<String>>()
        .unwrap();
    assert_eq!(kids, ["named/kid"]);
    let b = system.root().spawn(&props);
    assert!(b.id().starts_with('$'), "{}", b.id());
    let c = system.root().spawn_prefix(&props, "worker");
    assert!(c.id().starts_with("worker$"), "{}", c.id());
    let with_guardian = Props::from_func(|_| {}).with_guardian(protoactor::RestartingStrategy);
    let r = system.root().request_future(
        &system.root().spawn(&Props::from_func(move |ctx| {
            if ctx.message().is::<&str>() {
                let res = ctx.spawn_named(&with_guardian, "g").map(|_| ());
                ctx.respond(res);
            }
        })),
        "go",
        WAIT,
    );
    assert_eq!(
        r.result_as::<Result<(), SpawnError>>().unwrap(),
        Err(SpawnError::GuardianOnChild)
    );
}

#[test]
fn restart_delivers_restarting_then_started_and_replays_stash_in_order() {
    let system = ActorSystem::new();
    let (p, rx) = probe();
    struct Stasher(Probe<String>);
    impl Actor for Stasher {
        fn receive(&mut self, ctx: &mut Context) {
            let m = ctx.message();
            if m.is::<Started>() {
                self.0.push("Started".into());
            } else if m.is::<Restarting>() {
                self.0.push("Restarting".into());
            } else if let Some(s) = m.downcast_ref::<String>() {
                if let Some(rest) = s.strip_prefix("stash:") {
                    self.0.push(format!("stashing {rest}"));
                    ctx.stash();
                } else if s == "boom" {
                    panic!("boom");
                } else {
                    self.0.push(format!("got {s}"));
                }
            }
        }
    }
    let pid = system
        .root()
        .spawn(&Props::from_producer(move || Stasher(p.clone())));
    assert_eq!(rx.next(), "Started");
    // after a restart the stashed messages arrive again, so they are handled as plain ones
    system.root().send(&pid, "stash:a".to_string());
    system.root().send(&pid, "stash:b".to_string());
    system.root().send(&pid, "boom".to_string());
    assert_eq!(
        rx.take(4),
        ["stashing a", "stashing b", "Restarting", "Started"]
    );
    // replayed in stash order: they are stashed again by the new incarnation (same handler)
    assert_eq!(rx.take(2), ["stashing a", "stashing b"]);
}

#[test]
fn stop_future_of_stopped_actor_completes_with_terminated() {
    let system = ActorSystem::new();
    let pid = system.root().spawn(&Props::from_func(|_| {}));
    system.root().stop_future(&pid).wait().unwrap();
    // the PID is gone now: a second stop future completes at once (NotFound via dead letters)
    let t = system
        .root()
        .stop_future(&pid)
        .result_as::<Terminated>()
        .unwrap();
    assert_eq!(t.why, TerminatedReason::NotFound);
}

#[test]
fn one_pid_value_is_resolved_by_each_system_that_uses_it() {
    // The same id exists in two systems; a PID value used with both must reach each
    // system's own actor, not the one the first send happened to cache.
    let (a, b) = (ActorSystem::new(), ActorSystem::new());
    let answer = |tag: &'static str| {
        Props::from_func(move |ctx| {
            if ctx.message().is::<u32>() {
                ctx.respond(tag);
            }
        })
    };
    let pid_a = a.root().spawn_named(&answer("a"), "same").unwrap();
    b.root().spawn_named(&answer("b"), "same").unwrap();
    let ask = |s: &ActorSystem| {
        s.root()
            .request_future(&pid_a, 1u32, WAIT)
            .result_as::<&str>()
    };
    assert_eq!(ask(&a), Ok("a"));
    assert_eq!(ask(&b), Ok("b"));
    assert_eq!(ask(&a), Ok("a"));
}

#[test]
fn a_send_after_stop_future_completes_is_dead_lettered_before_send_returns() {
    use protoactor::runtime::{spawn, Process, SystemMessage};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{mpsc, Arc, Mutex};

    /// A parent that holds the stopping actor's thread in its `Terminated` notification,
    /// which comes after the watchers' (so after `stop_future` completes): the window in
    /// which a send used to be queued on a process not yet marked dead.
    struct Gate(Mutex<mpsc::Receiver<()>>);
    impl Process for Gate {
        fn send_user_message(&self, _: &Pid, _: protoactor::MessageEnvelope) {}
        fn send_system_message(&self, _: &Pid, m: SystemMessage) {
            if matches!(m, SystemMessage::Terminated(_)) {
                let _ = self.0.lock().unwrap().recv_timeout(WAIT);
            }
        }
    }

    let system = ActorSystem::new();
    let dead = Arc::new(AtomicUsize::new(0));
    let d = dead.clone();
    let _sub = system
        .event_stream()
        .subscribe_to::<protoactor::DeadLetterEvent, _>(move |ev| {
            if ev.message.is::<u32>() {
                d.fetch_add(1, Ordering::SeqCst);
            }
        });
    let (release, gate) = mpsc::channel();
    let parent = system
        .registry()
        .add(Arc::new(Gate(Mutex::new(gate))), "gate")
        .unwrap();
    let victim = spawn(
        &system,
        "gate/victim",
        &Props::from_func(|_| {}),
        Some(&parent),
    )
    .unwrap();
    system.root().stop_future(&victim).wait().unwrap();
    system.root().send(&victim, 7u32);
    let seen = dead.load(Ordering::SeqCst);
    release.send(()).unwrap();
    assert_eq!(
        seen, 1,
        "the send must publish its DeadLetterEvent before it returns"
    );
}

#[test]
fn empty_names_and_names_with_the_id_separator_are_rejected() {
    let system = ActorSystem::new();
    let props = Props::from_func(|ctx| {
        if let Some(name) = ctx.message_as::<&str>() {
            let r = ctx.spawn_named(&Props::from_func(|_| {}), name);
            ctx.respond(r);
        }
    });
    for bad in ["", "p/b", "/", "a/"] {
        assert_eq!(
            system.root().spawn_named(&props, bad),
            Err(SpawnError::InvalidName(bad.to_string())),
            "root spawn_named({bad:?})"
        );
    }
    let p = system.root().spawn_named(&props, "p").unwrap();
    for bad in ["", "b/c"] {
        let r = system
            .root()
            .request_future(&p, bad, WAIT)
            .result_as::<Result<Pid, SpawnError>>()
            .unwrap();
        assert_eq!(
            r,
            Err(SpawnError::InvalidName(bad.to_string())),
            "child {bad:?}"
        );
    }
    // `p/b` was refused at the root, so `p`'s child `b` gets its id
    let b = system
        .root()
        .request_future(&p, "b", WAIT)
        .result_as::<Result<Pid, SpawnError>>()
        .unwrap()
        .unwrap();
    assert_eq!(b.id(), "p/b");
    assert!(SpawnError::InvalidName(String::new())
        .to_string()
        .contains("must not contain '/'"));
}

#[test]
fn an_unvalidated_child_name_may_hold_the_separator_but_not_be_empty() {
    let system = ActorSystem::new();
    let props = Props::from_func(|ctx| {
        if let Some(name) = ctx.message_as::<&str>() {
            let r = ctx.spawn_named_unvalidated(&Props::from_func(|_| {}), name);
            ctx.respond(r);
        }
    });
    let p = system.root().spawn_named(&props, "activator").unwrap();
    let ask = |name: &'static str| {
        system
            .root()
            .request_future(&p, name, WAIT)
            .result_as::<Result<Pid, SpawnError>>()
            .unwrap()
    };
    // A grain id in protoactor-go's shape, its identity holding the separator.
    assert_eq!(ask("user/42$1").unwrap().id(), "activator/user/42$1");
    assert_eq!(ask(""), Err(SpawnError::InvalidName(String::new())));
}

#[test]
fn a_panic_in_stopping_or_stopped_does_not_undo_the_stop() {
    for when in ["Stopping", "Stopped"] {
        let system = ActorSystem::new();
        let (p, rx) = probe::<String>();
        let events = p.clone();
        let _sub = system
            .event_stream()
            .subscribe_to::<protoactor::SupervisorEvent, _>(move |e| {
                events.push(format!("event {:?} {}", e.directive, e.reason));
            });
        let kid = {
            let p = p.clone();
            Props::from_func(move |ctx| {
                let name = if ctx.message().is::<Started>() {
                    "Started"
                } else if ctx.message().is::<Stopping>() {
                    "Stopping"
                } else if ctx.message().is::<Stopped>() {
                    "Stopped"
                } else {
                    return;
                };
                p.push(format!("kid:{name}"));
                if name == when {
                    panic!("boom in {name}");
                }
            })
        };
        let parent = system.root().spawn(&Props::from_func(move |ctx| {
            if ctx.message().is::<Started>() {
                ctx.spawn_named(&kid, "kid").unwrap();
            }
        }));
        rx.until(|e| e == "kid:Started");
        // the parent finishes stopping: its child's stop completed despite the panic
        let t = system
            .root()
            .stop_future(&parent)
            .result_as::<Terminated>()
            .unwrap_or_else(|e| panic!("{when}: the parent did not stop: {e:?}"));
        assert_eq!(t.who, parent);
        let mut seen = Vec::new();
        while let Some(e) = rx.try_next(Duration::from_millis(100)) {
            seen.push(e);
        }
        assert_eq!(
            seen,
            [
                "kid:Stopping".to_string(),
                if when == "Stopping" {
                    "event Stop boom in Stopping".into()
                } else {
                    "kid:Stopped".into()
                },
                if when == "Stopping" {
                    "kid:Stopped".into()
                } else {
                    "event Stop boom in Stopped".into()
                },
            ],
            "{when}: no restart, the stop completes and the failure is published"
        );
        system.shutdown();
    }
}

/// A PID kept from a stopped named actor (its cache points at the dead process) reaches the
/// actor spawned later under the same name: a send on a cached PID checks that the cached
/// process lives and otherwise resolves the name again.
#[test]
fn a_pid_kept_from_a_stopped_named_actor_reaches_the_next_actor_of_that_name() {
    let system = ActorSystem::new();
    let (p, rx) = probe();
    let first = system
        .root()
        .spawn_named(&recorder("first", p.clone()), "reused")
        .unwrap();
    system.root().send(&first, "one");
    // Stop overtakes queued user messages: let "one" run first.
    system
        .root()
        .request_future(&first, Touch, WAIT)
        .wait()
        .unwrap();
    system.root().stop_future(&first).wait().unwrap();
    assert_eq!(
        rx.take(4),
        [
            "first:Started",
            "first:one",
            "first:Stopping",
            "first:Stopped"
        ]
    );
    system
        .root()
        .spawn_named(&recorder("second", p), "reused")
        .unwrap();
    assert_eq!(rx.next(), "second:Started");
    // The old PID value, cached to the first (now dead) process.
    system.root().send(&first, "two");
    assert_eq!(rx.next(), "second:two");
}
