//! Supervision: panics become failures handled by the parent's strategy.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{probe, Probe, WAIT};
use protoactor::prelude::*;
use protoactor::supervision::SupervisorEvent;
use protoactor::{AllForOneStrategy, ExponentialBackoffStrategy, FailureReason, OneForOneStrategy};

/// Panics on "fail", counts on "count" (replying with its count), reports Started.
struct Worker {
    name: &'static str,
    count: u32,
    probe: Probe<String>,
}

impl Actor for Worker {
    fn receive(&mut self, ctx: &mut Context) {
        let m = ctx.message();
        if m.is::<Started>() {
            self.probe.push(format!("{}:Started", self.name));
        } else if m.is::<Stopped>() {
            self.probe.push(format!("{}:Stopped", self.name));
        } else if let Some(s) = m.downcast_ref::<&str>() {
            match *s {
                "fail" => panic!("{} failed", self.name),
                "count" => {
                    self.count += 1;
                    ctx.respond(self.count);
                }
                _ => {}
            }
        }
    }
}

fn worker(name: &'static str, p: &Probe<String>) -> Props {
    let p = p.clone();
    Props::from_producer(move || Worker {
        name,
        count: 0,
        probe: p.clone(),
    })
}

#[test]
fn root_default_restarts_ten_times_and_the_eleventh_failure_stops() {
    let system = ActorSystem::new();
    let (p, rx) = probe();
    let pid = system.root().spawn(&worker("w", &p));
    assert_eq!(rx.next(), "w:Started");
    for i in 1..=10 {
        system.root().send(&pid, "fail");
        assert_eq!(rx.next(), "w:Started", "restart #{i}");
    }
    system.root().send(&pid, "fail");
    assert_eq!(rx.next(), "w:Stopped");
}

#[test]
fn restart_gives_a_fresh_instance_and_resume_keeps_state() {
    let system = ActorSystem::new();
    let (p, rx) = probe();
    let count = |pid: &Pid| {
        system
            .root()
            .request_future(pid, "count", WAIT)
            .result_as::<u32>()
            .unwrap()
    };
    let restart = system.root().spawn(&worker("r", &p));
    rx.next();
    assert_eq!(count(&restart), 1);
    system.root().send(&restart, "fail");
    assert_eq!(rx.next(), "r:Started");
    assert_eq!(count(&restart), 1, "state reset by restart");

    let resume = system.root().spawn(&worker("x", &p).with_guardian(
        OneForOneStrategy::new(10, Duration::from_secs(10)).with_decider(|_| Directive::Resume),
    ));
    rx.next();
    assert_eq!(count(&resume), 1);
    system.root().send(&resume, "fail");
    assert_eq!(count(&resume), 2, "state kept by resume");
}

/// A parent that spawns children "a", "b", "c" with its props' strategy and reports them.
fn parent_with(
    strategy: impl protoactor::SupervisorStrategy,
    p: &Probe<String>,
) -> (ActorSystem, Vec<Pid>) {
    let system = ActorSystem::new();
    let p2 = p.clone();
    let props = Props::from_func(move |ctx| {
        if ctx.message().is::<Started>() {
            let kids: Vec<Pid> = ["a", "b", "c"]
                .iter()
                .map(|n| ctx.spawn_named(&worker(n, &p2), n).unwrap())
                .collect();
            ctx.respond(kids);
        } else if ctx.message().is::<&str>() {
            ctx.respond(ctx.children());
        }
    })
    .with_supervisor(strategy);
    let parent = system.root().spawn(&props);
    let kids = system
        .root()
        .request_future(&parent, "kids", WAIT)
        .result_as::<Vec<Pid>>()
        .unwrap();
    (system, kids)
}

#[test]
fn one_for_one_restarts_only_the_failed_child() {
    let (p, rx) = probe();
    let (system, kids) = parent_with(OneForOneStrategy::new(10, Duration::from_secs(10)), &p);
    let mut started = rx.take(3);
    started.sort();
    assert_eq!(started, ["a:Started", "b:Started", "c:Started"]);
    system.root().send(&kids[1], "fail");
    assert_eq!(rx.next(), "b:Started");
    rx.assert_quiet(Duration::from_millis(200));
}

#[test]
fn all_for_one_restarts_all_siblings() {
    let (p, rx) = probe();
    let (system, kids) = parent_with(AllForOneStrategy::new(10, Duration::from_secs(10)), &p);
    rx.take(3);
    system.root().send(&kids[0], "fail");
    let mut restarted = rx.take(3);
    restarted.sort();
    assert_eq!(restarted, ["a:Started", "b:Started", "c:Started"]);
}

#[test]
fn stop_directive_and_max_zero_stop_the_child() {
    let (p, rx) = probe();
    let (system, kids) = parent_with(OneForOneStrategy::new(0, Duration::ZERO), &p);
    rx.take(3);
    system.root().send(&kids[2], "fail");
    assert_eq!(rx.next(), "c:Stopped");

    let (p, rx) = probe();
    let strategy =
        OneForOneStrategy::new(10, Duration::from_secs(1)).with_decider(|_| Directive::Stop);
    let (system, kids) = parent_with(strategy, &p);
    rx.take(3);
    system.root().send(&kids[0], "fail");
    assert_eq!(rx.next(), "a:Stopped");
}

#[test]
fn escalate_fails_the_parent_and_the_grandparent_decides() {
    let system = ActorSystem::new();
    let (p, rx) = probe::<String>();
    let p2 = p.clone();
    // parent escalates its children's failures; the root default then restarts the parent,
    // which restarts (stops and re-creates) its child
    let parent = Props::from_func(move |ctx| {
        if ctx.message().is::<Started>() {
            p2.push("parent:Started".into());
            ctx.spawn_named(&worker("kid", &p2), "kid").unwrap();
        } else if ctx.message().is::<&str>() {
            ctx.respond(ctx.children());
        }
    })
    .with_supervisor(
        OneForOneStrategy::new(10, Duration::from_secs(10)).with_decider(|_| Directive::Escalate),
    );
    let pid = system.root().spawn(&parent);
    let mut first = rx.take(2);
    first.sort();
    assert_eq!(first, ["kid:Started", "parent:Started"]);
    let kids = system
        .root()
        .request_future(&pid, "kids", WAIT)
        .result_as::<Vec<Pid>>()
        .unwrap();
    system.root().send(&kids[0], "fail");
    let events = rx.take(3);
    assert_eq!(events[0], "kid:Stopped", "{events:?}");
    assert_eq!(
        &events[1..],
        ["parent:Started", "kid:Started"],
        "{events:?}"
    );
}

#[test]
fn an_actor_can_supervise_its_own_children() {
    struct Boss(Probe<String>);
    impl Actor for Boss {
        fn receive(&mut self, ctx: &mut Context) {
            if ctx.message().is::<Started>() {
                let kid = ctx.spawn_named(&worker("k", &self.0), "k").unwrap();
                ctx.send(&kid, "fail");
            }
        }
        fn supervisor_strategy(&self) -> Option<Arc<dyn protoactor::SupervisorStrategy>> {
            Some(Arc::new(
                OneForOneStrategy::new(1, Duration::from_secs(1)).with_decider(|_| Directive::Stop),
            ))
        }
    }
    let system = ActorSystem::new();
    let (p, rx) = probe();
    system
        .root()
        .spawn(&Props::from_producer(move || Boss(p.clone())));
    assert_eq!(rx.take(2), ["k:Started", "k:Stopped"]);
}

/// `fail` in an actor's first user message (its context has none of its rarely used state
/// yet, which `fail` makes) reaches the supervisor as a panic would, and the actor goes on.
#[test]
fn fail_in_an_actors_first_user_message_reaches_its_supervisor() {
    let system = ActorSystem::new();
    let (p, rx) = probe::<String>();
    let events = p.clone();
    let _ = system
        .event_stream()
        .subscribe_to::<SupervisorEvent, _>(move |e| {
            events.push(format!("{:?} {}", e.directive, e.reason));
        });
    let kid = Props::from_func(move |ctx| match ctx.message_as::<&str>() {
        Some(&"fail()") => ctx.fail(FailureReason::new("explicit failure")),
        Some(&"after") => p.push("after".into()),
        _ => {}
    });
    let strategy =
        OneForOneStrategy::new(10, Duration::from_secs(10)).with_decider(|_| Directive::Resume);
    let _parent = system.root().spawn(
        &Props::from_func(move |ctx| {
            if ctx.message().is::<Started>() {
                let k = ctx.spawn(&kid);
                ctx.send(&k, "fail()");
                ctx.send(&k, "after");
            }
        })
        .with_supervisor(strategy),
    );
    assert_eq!(rx.take(2), ["Resume explicit failure", "after"]);
}

#[test]
fn decisions_are_published_and_deciders_see_the_panic_payload() {
    #[derive(Debug)]
    struct Fatal;
    let system = ActorSystem::new();
    let (p, rx) = probe::<String>();
    let _ = system
        .event_stream()
        .subscribe_to::<SupervisorEvent, _>(move |e| {
            p.push(format!("{:?} {}", e.directive, e.reason));
        });
    let strategy =
        OneForOneStrategy::new(10, Duration::from_secs(10)).with_decider(|r: &FailureReason| {
            if r.is::<Fatal>() {
                Directive::Stop
            } else {
                Directive::Restart
            }
        });
    let kid = Props::from_func(|ctx| {
        if ctx.message_as::<&str>() == Some(&"fatal") {
            std::panic::panic_any(Fatal);
        }
        if ctx.message_as::<&str>() == Some(&"soft") {
            panic!("soft failure");
        }
        if ctx.message_as::<&str>() == Some(&"fail()") {
            ctx.fail(FailureReason::new("explicit failure"));
        }
    });
    let parent = system.root().spawn(
        &Props::from_func(move |ctx| {
            if ctx.message().is::<Started>() {
                let k = ctx.spawn(&kid);
                ctx.send(&k, "soft");
                ctx.send(&k, "fail()");
                ctx.send(&k, "fatal");
            }
        })
        .with_supervisor(strategy),
    );
    let _ = parent;
    assert_eq!(rx.next(), "Restart soft failure");
    assert_eq!(rx.next(), "Restart explicit failure");
    assert!(rx.next().starts_with("Stop "));
}

#[test]
fn messages_sent_while_failing_are_kept_for_the_restarted_actor() {
    let system = ActorSystem::new();
    let (p, rx) = probe();
    let pid = system.root().spawn(&worker("m", &p));
    rx.next();
    system.root().send(&pid, "fail");
    for _ in 0..100 {
        system.root().send(&pid, "count");
    }
    let n = system
        .root()
        .request_future(&pid, "count", WAIT)
        .result_as::<u32>()
        .unwrap();
    assert_eq!(
        n, 101,
        "every message after the failure reached the new instance"
    );
}

#[test]
fn exponential_backoff_delays_each_restart_longer() {
    let system = ActorSystem::new();
    let (p, rx) = probe::<Instant>();
    let starts = Arc::new(AtomicUsize::new(0));
    let s2 = starts.clone();
    let props = Props::from_func(move |ctx| {
        if ctx.message().is::<Started>() {
            p.push(Instant::now());
            // fail again right away, twice
            if s2.fetch_add(1, Ordering::SeqCst) < 2 {
                let me = ctx.self_pid().clone();
                ctx.send(&me, "fail");
            }
        }
        if ctx.message_as::<&str>() == Some(&"fail") {
            panic!("again");
        }
    })
    .with_guardian(ExponentialBackoffStrategy::new(
        Duration::from_secs(60),
        Duration::from_millis(100),
    ));
    system.root().spawn(&props);
    let t0 = rx.next();
    let t1 = rx.next();
    let t2 = rx.next();
    // lower bounds only: the first restart waits ≥ 1×, the second ≥ 2× the initial backoff
    assert!(t1 - t0 >= Duration::from_millis(100), "{:?}", t1 - t0);
    assert!(t2 - t1 >= Duration::from_millis(200), "{:?}", t2 - t1);
}

/// Asks each child for its count (a `Worker` counts and replies).
fn counts(system: &ActorSystem, kids: &[Pid]) -> Vec<u32> {
    kids.iter()
        .map(|k| {
            system
                .root()
                .request_future(k, "count", WAIT)
                .result_as::<u32>()
                .unwrap()
        })
        .collect()
}

#[test]
fn all_for_one_with_a_stop_decider_stops_all_siblings() {
    let (p, rx) = probe();
    let strategy =
        AllForOneStrategy::new(10, Duration::from_secs(10)).with_decider(|_| Directive::Stop);
    let (system, kids) = parent_with(strategy, &p);
    rx.take(3);
    system.root().send(&kids[1], "fail");
    let mut stopped = rx.take(3);
    stopped.sort();
    assert_eq!(stopped, ["a:Stopped", "b:Stopped", "c:Stopped"]);
    for k in &kids {
        let r = system.root().request_future(k, "count", WAIT).wait();
        assert!(r.is_err_and(|e| e.is_dead_letter()), "{k} is gone");
    }
}

#[test]
fn all_for_one_with_resume_resumes_only_the_failing_child() {
    let (p, rx) = probe();
    let strategy =
        AllForOneStrategy::new(10, Duration::from_secs(10)).with_decider(|_| Directive::Resume);
    let (system, kids) = parent_with(strategy, &p);
    rx.take(3);
    assert_eq!(counts(&system, &kids), [1, 1, 1]);
    system.root().send(&kids[0], "fail");
    // Nobody restarted: every child kept its state (a restart would answer 1 again).
    assert_eq!(counts(&system, &kids), [2, 2, 2]);
    rx.assert_quiet(Duration::from_millis(100));
}

#[test]
fn restarting_strategy_always_restarts_beyond_ten_failures() {
    let (p, rx) = probe();
    let (system, kids) = parent_with(protoactor::RestartingStrategy, &p);
    rx.take(3);
    for i in 1..=15 {
        system.root().send(&kids[2], "fail");
        assert_eq!(rx.next(), "c:Started", "restart #{i}");
    }
    assert_eq!(counts(&system, &kids[2..]), [1], "alive, with fresh state");
}

#[test]
fn an_escalation_publishes_only_the_deciding_supervisors_event() {
    let system = ActorSystem::new();
    let (p, rx) = probe::<String>();
    let (ev, ev_rx) = probe::<(Pid, Directive)>();
    let _sub = system
        .event_stream()
        .subscribe_to::<SupervisorEvent, _>(move |e| ev.push((e.child.clone(), e.directive)));
    let p2 = p.clone();
    let parent = Props::from_func(move |ctx| {
        if ctx.message().is::<Started>() {
            p2.push("parent:Started".into());
            ctx.spawn_named(&worker("kid", &p2), "kid").unwrap();
        }
    })
    .with_supervisor(
        OneForOneStrategy::new(10, Duration::from_secs(10)).with_decider(|_| Directive::Escalate),
    );
    let pid = system.root().spawn(&parent);
    rx.until(|e| e == "kid:Started");
    let kid = Pid::new(pid.address(), format!("{}/kid", pid.id()));
    system.root().send(&kid, "fail");
    // the grandparent (the root guardian's default strategy) restarts the parent
    rx.until(|e| e == "parent:Started");
    rx.until(|e| e == "kid:Started");
    assert_eq!(ev_rx.next(), (pid, Directive::Restart));
    ev_rx.assert_quiet(Duration::from_millis(100));
}
