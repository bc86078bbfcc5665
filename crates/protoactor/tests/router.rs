//! Routers: round-robin, random, broadcast and consistent-hash distribution; routee
//! management; broadcast messages; poisoning a pool router stops its routees.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{probe, Probe, WAIT};
use protoactor::prelude::*;
use protoactor::router::{AddRoutee, BroadcastMessage, GetRoutees, RemoveRoutee, Routees, Router};

/// A routee that reports `(its id, the u32 it got)`.
fn worker(p: Probe<(String, u32)>) -> Props {
    Props::from_func(move |ctx| {
        if let Some(n) = ctx.message_as::<u32>() {
            p.push((ctx.self_pid().id().to_string(), *n));
        }
    })
}

fn counts(events: &[(String, u32)]) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for (id, _) in events {
        *m.entry(id.clone()).or_insert(0) += 1;
    }
    m
}

fn routees(system: &ActorSystem, router: &Pid) -> Vec<Pid> {
    system
        .root()
        .request_future(router, GetRoutees, WAIT)
        .result_as::<Routees>()
        .expect("routees")
        .pids
}

#[test]
fn round_robin_pool_spreads_evenly_in_turn() {
    let system = ActorSystem::new();
    let (p, rx) = probe();
    let router = system
        .root()
        .spawn(&Router::round_robin().pool(3, worker(p)));
    for i in 0..30u32 {
        system.root().send(&router, i);
    }
    let got = rx.take(30);
    let c = counts(&got);
    assert_eq!(c.len(), 3, "{c:?}");
    assert!(c.values().all(|&n| n == 10), "{c:?}");
    // in turn: message i and i+3 go to the same routee
    let by_msg: HashMap<u32, String> = got.into_iter().map(|(id, n)| (n, id)).collect();
    for i in 0..27 {
        assert_eq!(by_msg[&i], by_msg[&(i + 3)]);
        assert_ne!(by_msg[&i], by_msg[&(i + 1)]);
    }
}

#[test]
fn random_group_reaches_every_routee() {
    let system = ActorSystem::new();
    let (p, rx) = probe();
    let pids: Vec<Pid> = (0..3)
        .map(|_| system.root().spawn(&worker(p.clone())))
        .collect();
    let router = system.root().spawn(&Router::random().group(pids.clone()));
    for i in 0..300u32 {
        system.root().send(&router, i);
    }
    let c = counts(&rx.take(300));
    // with 300 uniform picks, each of 3 routees getting at least one is all but certain
    assert_eq!(c.len(), 3, "{c:?}");
    for pid in &pids {
        assert!(c.contains_key(pid.id()));
    }
}

#[test]
fn broadcast_router_delivers_to_all() {
    let system = ActorSystem::new();
    let (p, rx) = probe();
    let router = system
        .root()
        .spawn(&Router::broadcast().broadcasting::<u32>().pool(4, worker(p)));
    system.root().send(&router, 7u32);
    let got = rx.take(4);
    assert_eq!(counts(&got).len(), 4);
    assert!(got.iter().all(|(_, n)| *n == 7));
    rx.assert_quiet(Duration::from_millis(100));
}

#[test]
fn broadcast_message_reaches_every_routee_of_a_round_robin_router() {
    let system = ActorSystem::new();
    let (p, rx) = probe();
    let router = system
        .root()
        .spawn(&Router::round_robin().pool(3, worker(p)));
    system.root().send(&router, BroadcastMessage::new(5u32));
    let got = rx.take(3);
    assert_eq!(counts(&got).len(), 3);
    assert!(got.iter().all(|(_, n)| *n == 5));
}

#[test]
fn consistent_hash_sends_a_key_to_the_same_routee() {
    let system = ActorSystem::new();
    let (p, rx) = probe();
    let router = system.root().spawn(
        &Router::consistent_hash(|m| m.downcast_ref::<u32>().map(|n| (n % 10).to_string()))
            .pool(4, worker(p)),
    );
    for i in 0..200u32 {
        system.root().send(&router, i);
    }
    let got = rx.take(200);
    let mut owner: HashMap<u32, String> = HashMap::new();
    for (id, n) in &got {
        let prev = owner.insert(n % 10, id.clone());
        if let Some(prev) = prev {
            assert_eq!(&prev, id, "key {} moved between routees", n % 10);
        }
    }
    // 10 keys over 4 routees on a 100-virtual-node ring use more than one routee
    assert!(counts(&got).len() > 1);
}

#[test]
fn add_remove_and_get_routees() {
    let system = ActorSystem::new();
    let (p, rx) = probe();
    let a = system.root().spawn(&worker(p.clone()));
    let b = system.root().spawn(&worker(p.clone()));
    let router = system
        .root()
        .spawn(&Router::round_robin().group(vec![a.clone()]));
    assert_eq!(routees(&system, &router), vec![a.clone()]);

    system.root().send(&router, AddRoutee { pid: b.clone() });
    assert_eq!(routees(&system, &router), [a.clone(), b.clone()]);
    for i in 0..4u32 {
        system.root().send(&router, i);
    }
    assert_eq!(counts(&rx.take(4)).len(), 2);

    system.root().send(&router, RemoveRoutee { pid: a.clone() });
    assert_eq!(routees(&system, &router), vec![b.clone()]);
    for i in 0..4u32 {
        system.root().send(&router, i);
    }
    assert!(rx.take(4).iter().all(|(id, _)| id == b.id()));
}

#[test]
fn poisoning_a_pool_router_stops_its_routees() {
    let system = ActorSystem::new();
    let (p, _rx) = probe();
    let router = system
        .root()
        .spawn(&Router::round_robin().pool(3, worker(p)));
    let pool = routees(&system, &router);
    assert_eq!(pool.len(), 3);
    let (tp, trx) = probe();
    let watcher = system.root().spawn(&Props::from_func({
        let pool = pool.clone();
        move |ctx| {
            if ctx.message().is::<Started>() {
                for pid in &pool {
                    ctx.watch(pid);
                }
            } else if let Some(t) = ctx.message_as::<Terminated>() {
                tp.push(t.who.clone());
            }
        }
    }));
    // make sure the watches are in place before poisoning
    system
        .root()
        .request_future(&watcher, Touch, WAIT)
        .wait()
        .unwrap();
    system.root().poison_future(&router).wait().unwrap();
    let mut stopped = trx.take(3);
    stopped.sort_by(|x, y| x.id().cmp(y.id()));
    let mut expected = pool;
    expected.sort_by(|x, y| x.id().cmp(y.id()));
    assert_eq!(stopped, expected);
}

#[test]
fn a_broadcast_of_an_unregistered_type_and_a_hash_without_key_go_to_dead_letters() {
    let system = ActorSystem::new();
    let (p, rx) = probe::<(String, u32)>();
    let (dl, dl_rx) = probe::<u64>();
    let _sub = system
        .event_stream()
        .subscribe_to::<protoactor::DeadLetterEvent, _>(move |ev| {
            if let Some(n) = ev.message.downcast_ref::<u64>() {
                dl.push(*n);
            }
        });
    // Routees report any u32 (through `worker`) and any u64 (which must never reach them).
    let p2 = p.clone();
    let routee = Props::from_func(move |ctx| {
        if let Some(n) = ctx.message_as::<u32>() {
            p2.push((ctx.self_pid().id().to_string(), *n));
        } else if let Some(n) = ctx.message_as::<u64>() {
            p2.push(("u64 reached a routee".into(), *n as u32));
        }
    });
    let broadcaster = system.root().spawn(
        &Router::broadcast()
            .broadcasting::<u32>()
            .pool(3, routee.clone()),
    );
    // u64 cannot be cloned by this router: one dead letter, nothing to the routees.
    system.root().send(&broadcaster, 9u64);
    assert_eq!(dl_rx.next(), 9);
    // The router still works for its registered type.
    system.root().send(&broadcaster, 1u32);
    let got = rx.take(3);
    assert!(got.iter().all(|(_, n)| *n == 1), "{got:?}");

    let hasher = system.root().spawn(
        &Router::consistent_hash(|m| m.downcast_ref::<u32>().map(|n| n.to_string()))
            .pool(2, routee),
    );
    system.root().send(&hasher, 10u64);
    assert_eq!(dl_rx.next(), 10);
    rx.assert_quiet(Duration::from_millis(100));
    dl_rx.assert_quiet(Duration::from_millis(50));
}

#[test]
fn consistent_hash_routing_survives_concurrent_routee_changes() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    const SENDERS: u32 = 4;
    const PER_SENDER: u32 = 25_000;
    const TOTAL: usize = (SENDERS * PER_SENDER) as usize;

    let system = ActorSystem::new();
    let received = Arc::new(AtomicUsize::new(0));
    let dead = Arc::new(AtomicUsize::new(0));
    let d = dead.clone();
    let _sub = system
        .event_stream()
        .subscribe_to::<protoactor::DeadLetterEvent, _>(move |ev| {
            if ev.message.is::<u32>() {
                d.fetch_add(1, Ordering::Relaxed);
            }
        });
    let counting = {
        let received = received.clone();
        Props::from_func(move |ctx| {
            if ctx.message().is::<u32>() {
                received.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let pids: Vec<Pid> = (0..6).map(|_| system.root().spawn(&counting)).collect();
    // starts empty: the churn below also empties it again and again
    let router = system.root().spawn(
        &Router::consistent_hash(|m| m.downcast_ref::<u32>().map(|n| n.to_string()))
            .group(Vec::new()),
    );

    let done = Arc::new(AtomicBool::new(false));
    let churn = {
        let (system, router, pids, done) =
            (system.clone(), router.clone(), pids.clone(), done.clone());
        std::thread::spawn(move || {
            let mut rounds = 0u32;
            while !done.load(Ordering::Relaxed) {
                // grow one at a time (the ring outgrows older routee lists), then shrink to empty
                for p in &pids {
                    system.root().send(&router, AddRoutee { pid: p.clone() });
                }
                for p in &pids {
                    system.root().send(&router, RemoveRoutee { pid: p.clone() });
                }
                rounds += 1;
            }
            rounds
        })
    };
    let senders: Vec<_> = (0..SENDERS)
        .map(|s| {
            let (system, router) = (system.clone(), router.clone());
            std::thread::spawn(move || {
                for i in 0..PER_SENDER {
                    system.root().send(&router, s * PER_SENDER + i);
                }
            })
        })
        .collect();
    for s in senders {
        s.join().expect("a sender panicked");
    }
    done.store(true, Ordering::Relaxed);
    let rounds = churn.join().expect("the churn thread panicked");
    assert!(rounds > 0);

    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let (r, d) = (
            received.load(Ordering::Relaxed),
            dead.load(Ordering::Relaxed),
        );
        if r + d == TOTAL {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "lost messages: {r} received + {d} dead letters of {TOTAL}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_routee_added_to_a_pool_is_watched_and_leaves_when_it_stops() {
    let system = ActorSystem::new();
    let (p, rx) = probe();
    let router = system
        .root()
        .spawn(&Router::round_robin().pool(2, worker(p.clone())));
    let extra = system.root().spawn(&worker(p));
    system
        .root()
        .send(&router, AddRoutee { pid: extra.clone() });
    assert_eq!(routees(&system, &router).len(), 3);
    system.root().stop_future(&extra).wait().unwrap();
    // the router learns of the stop by its watch
    let deadline = std::time::Instant::now() + WAIT;
    while routees(&system, &router).contains(&extra) {
        assert!(
            std::time::Instant::now() < deadline,
            "a stopped routee added to a pool stays in the routing set"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // and no message goes its way any more
    let (dl, dl_rx) = probe::<u32>();
    let _sub = system
        .event_stream()
        .subscribe_to::<protoactor::DeadLetterEvent, _>(move |ev| {
            if let Some(n) = ev.message.downcast_ref::<u32>() {
                dl.push(*n);
            }
        });
    for i in 0..6u32 {
        system.root().send(&router, i);
    }
    assert_eq!(counts(&rx.take(6)).len(), 2);
    dl_rx.assert_quiet(Duration::from_millis(50));
}

#[test]
fn removing_a_pool_routee_unwatches_and_poisons_it() {
    let system = ActorSystem::new();
    let (p, _rx) = probe();
    let router = system
        .root()
        .spawn(&Router::round_robin().pool(1, worker(p.clone())));
    let extra = system.root().spawn(&worker(p));
    system
        .root()
        .send(&router, AddRoutee { pid: extra.clone() });
    assert_eq!(routees(&system, &router).len(), 2);
    let (tp, trx) = probe();
    let watcher = system.root().spawn(&Props::from_func({
        let extra = extra.clone();
        move |ctx| {
            if ctx.message().is::<Started>() {
                ctx.watch(&extra);
            } else if let Some(t) = ctx.message_as::<Terminated>() {
                tp.push(t.who.clone());
            }
        }
    }));
    system
        .root()
        .request_future(&watcher, Touch, WAIT)
        .wait()
        .unwrap();
    system
        .root()
        .send(&router, RemoveRoutee { pid: extra.clone() });
    assert_eq!(trx.next(), extra, "a removed pool routee is poisoned");
    assert_eq!(routees(&system, &router).len(), 1);
}
