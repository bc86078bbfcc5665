//! The pinned dispatcher: a group of actors on one dedicated thread.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::ThreadId;

use common::{probe, Probe, WAIT};
use protoactor::dispatcher::PinnedGroup;
use protoactor::prelude::*;

/// Sets its flag when dropped: put in a thread-local of the group's thread, it tells that
/// the thread has ended (thread-locals are destroyed as the thread exits, before a join
/// returns).
struct OnThreadExit(Arc<AtomicBool>);

impl Drop for OnThreadExit {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

thread_local! {
    static EXIT: std::cell::RefCell<Option<OnThreadExit>> = const { std::cell::RefCell::new(None) };
}

/// An actor that, when started, arms `flag` to be set when its thread ends.
fn thread_exit_watch(flag: &Arc<AtomicBool>, dispatcher: &Dispatcher) -> Props {
    let flag = flag.clone();
    Props::from_func(move |ctx| {
        if ctx.message().is::<Started>() {
            EXIT.with(|e| *e.borrow_mut() = Some(OnThreadExit(flag.clone())));
        } else if ctx.message().is::<&str>() {
            ctx.respond(());
        }
    })
    .with_dispatcher(dispatcher.clone())
}

/// A ring node: records the thread it runs on for every message, passes the count on,
/// and spawns a child (on the same props) when asked, which it then includes.
struct Node {
    next: Option<Pid>,
    threads: Probe<ThreadId>,
}

struct Next(Pid);
struct Hop(u32);

impl Actor for Node {
    fn receive(&mut self, ctx: &mut Context) {
        self.threads.push(std::thread::current().id());
        if let Some(Next(p)) = ctx.message_as::<Next>() {
            self.next = Some(p.clone());
        } else if let Some(Hop(n)) = ctx.message_as::<Hop>() {
            if let (Some(next), true) = (&self.next, *n > 0) {
                ctx.send(next, Hop(n - 1));
            }
        } else if ctx.message().is::<&str>() {
            // A child on the group, spawned by an actor of the group: it runs there too.
            let props = ctx.props().clone();
            let child = ctx.spawn(&props);
            ctx.send(&child, Hop(0));
        }
    }
}

#[test]
fn every_actor_of_a_pinned_group_runs_on_its_one_thread() {
    let system = ActorSystem::new();
    let group = PinnedGroup::new("ring").unwrap();
    assert_ne!(group.thread_id(), std::thread::current().id());
    let (p, rx) = probe();
    let props = Props::from_producer(move || Node {
        next: None,
        threads: p.clone(),
    })
    .with_dispatcher(Dispatcher::pinned(&group, 300));
    let pids: Vec<Pid> = (0..5).map(|_| system.root().spawn(&props)).collect();
    for (i, pid) in pids.iter().enumerate() {
        system
            .root()
            .send(pid, Next(pids[(i + 1) % pids.len()].clone()));
    }
    system.root().send(&pids[0], Hop(50));
    system.root().send(&pids[3], "spawn a child");
    // 5 Started + 5 Next + 51 hops + the request, the child's Started and its Hop.
    let threads = rx.take(5 + 5 + 51 + 1 + 2);
    assert!(
        threads.iter().all(|t| *t == group.thread_id()),
        "{threads:?}"
    );
    system.shutdown();
}

#[test]
fn sends_from_outside_and_from_other_dispatchers_arrive_in_order() {
    let system = ActorSystem::new();
    let group = PinnedGroup::new("ordered").unwrap();
    let (p, rx) = probe::<(u8, u32)>();
    let target = system.root().spawn(
        &Props::from_func(move |ctx| {
            if let Some(m) = ctx.message_as::<(u8, u32)>() {
                p.push(*m);
            }
        })
        .with_dispatcher(Dispatcher::pinned(&group, 300)),
    );
    const N: u32 = 5_000;
    // An actor on the system's runtime sends its own numbered stream to the pinned actor.
    let relay = system.root().spawn(&Props::from_func(|ctx| {
        if let Some(to) = ctx.message_as::<Pid>() {
            let to = to.clone();
            for i in 0..N {
                ctx.send(&to, (1u8, i));
            }
        }
    }));
    system.root().send(&relay, target.clone());
    let outside = std::thread::spawn({
        let (system, target) = (system.clone(), target.clone());
        move || {
            for i in 0..N {
                system.root().send(&target, (2u8, i));
            }
        }
    });
    for i in 0..N {
        system.root().send(&target, (0u8, i));
    }
    outside.join().unwrap();
    let mut next = [0u32; 3];
    for (sender, n) in rx.take(3 * N as usize) {
        assert_eq!(n, next[sender as usize], "sender {sender} out of order");
        next[sender as usize] += 1;
    }
    assert_eq!(next, [N; 3]);
    system.shutdown();
}

#[test]
fn a_failing_pinned_actor_is_supervised_as_usual() {
    let system = ActorSystem::new();
    let group = PinnedGroup::new("failing").unwrap();
    let (p, rx) = probe::<String>();
    let props = Props::from_func(move |ctx| {
        let m = ctx.message();
        if m.is::<Started>() {
            p.push("started".into());
        } else if m.is::<Restarting>() {
            p.push("restarting".into());
        } else if let Some(s) = m.downcast_ref::<&str>() {
            match *s {
                "fail" => panic!("pinned actor failed"),
                _ => ctx.respond(std::thread::current().id()),
            }
        }
    })
    .with_dispatcher(Dispatcher::pinned(&group, 300));
    let pid = system.root().spawn(&props);
    assert_eq!(rx.next(), "started");
    system.root().send(&pid, "fail");
    // The root's default strategy restarts it, and it goes on serving on the same thread.
    assert_eq!(rx.next(), "restarting");
    assert_eq!(rx.next(), "started");
    let thread = system
        .root()
        .request_future(&pid, "where", WAIT)
        .result_as::<ThreadId>()
        .unwrap();
    assert_eq!(thread, group.thread_id());
    system.shutdown();
}

#[test]
fn shutdown_ends_and_joins_the_pinned_thread() {
    let system = ActorSystem::new();
    let group = PinnedGroup::new("shutdown").unwrap();
    let dispatcher = Dispatcher::pinned(&group, 300);
    let ended = Arc::new(AtomicBool::new(false));
    let pid = system.root().spawn(&thread_exit_watch(&ended, &dispatcher));
    system
        .root()
        .request_future(&pid, "armed?", WAIT)
        .wait()
        .unwrap();
    assert!(!group.is_stopped());
    // The test still holds the group: the system's shutdown alone ends its thread.
    system.shutdown();
    assert!(group.is_stopped());
    assert!(
        ended.load(Ordering::SeqCst),
        "shutdown returned before the thread ended"
    );

    // A stopped group takes no new actors, with a clear error.
    let other = ActorSystem::new();
    let err = other
        .root()
        .spawn_named(
            &Props::from_func(|_| {}).with_dispatcher(dispatcher),
            "late",
        )
        .unwrap_err();
    assert_eq!(err, SpawnError::DispatcherStopped);
    other.shutdown();
}

#[test]
fn dropping_the_group_after_its_last_actor_stopped_ends_its_thread() {
    let system = ActorSystem::new();
    let group = PinnedGroup::new("dropped").unwrap();
    let ended = Arc::new(AtomicBool::new(false));
    let props = thread_exit_watch(&ended, &Dispatcher::pinned(&group, 300));
    let pid = system.root().spawn(&props);
    system
        .root()
        .request_future(&pid, "armed?", WAIT)
        .wait()
        .unwrap();
    // An actor still alive keeps the thread, whoever else lets go of the group.
    drop((group, props));
    assert!(!ended.load(Ordering::SeqCst));
    system.root().stop_future(&pid).wait().unwrap();
    // The stopped actor's context (holding the last handle) is dropped on the group's
    // thread just after Terminated is sent; the thread then ends by itself.
    let deadline = std::time::Instant::now() + WAIT;
    while !ended.load(Ordering::SeqCst) {
        assert!(
            std::time::Instant::now() < deadline,
            "the thread did not end"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    system.shutdown();
}

#[test]
fn stop_drops_the_actors_left_and_waits_for_the_thread() {
    let system = ActorSystem::new();
    let group = PinnedGroup::new("stopped").unwrap();
    let ended = Arc::new(AtomicBool::new(false));
    let pid = system
        .root()
        .spawn(&thread_exit_watch(&ended, &Dispatcher::pinned(&group, 300)));
    system
        .root()
        .request_future(&pid, "armed?", WAIT)
        .wait()
        .unwrap();
    group.stop();
    assert!(
        ended.load(Ordering::SeqCst),
        "stop returned before the thread ended"
    );
    system.shutdown();
}
