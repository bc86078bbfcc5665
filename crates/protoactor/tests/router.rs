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
