//! Event stream and dead letters: subscribe with a predicate, unsubscribe, publish;
//! dead-letter events, DeadLetterResponse to requesters, Terminated(NotFound) for a watch
//! of a dead PID.

mod common;

use std::time::Duration;

use common::{probe, WAIT};
use protoactor::prelude::*;
use protoactor::{DeadLetterEvent, FutureError};

#[derive(Debug, Clone, PartialEq)]
struct Note(u32);

#[test]
fn subscribe_predicate_and_unsubscribe() {
    let system = ActorSystem::new();
    let es = system.event_stream();
    let (all, all_rx) = probe();
    let (even, even_rx) = probe();
    let (typed, typed_rx) = probe();
    let before = es.len();
    let s_all = es.subscribe(move |m| {
        if let Some(n) = m.downcast_ref::<Note>() {
            all.push(n.0);
        }
    });
    let s_even = es.subscribe_with_predicate(
        move |m| even.push(m.downcast_ref::<Note>().unwrap().0),
        |m| m.downcast_ref::<Note>().is_some_and(|n| n.0 % 2 == 0),
    );
    let s_typed = es.subscribe_to::<Note, _>(move |n| typed.push(n.0));
    assert_eq!(es.len(), before + 3);

    for i in 1..=4 {
        es.publish(&Note(i));
    }
    es.publish(&"not a note");
    assert_eq!(all_rx.take(4), [1, 2, 3, 4]);
    assert_eq!(even_rx.take(2), [2, 4]);
    assert_eq!(typed_rx.take(4), [1, 2, 3, 4]);

    es.unsubscribe(&s_even);
    assert!(!s_even.is_active());
    assert!(s_all.is_active());
    es.publish(&Note(6));
    assert_eq!(all_rx.next(), 6);
    assert_eq!(typed_rx.next(), 6);
    even_rx.assert_quiet(Duration::from_millis(50));
    es.unsubscribe(&s_all);
    es.unsubscribe(&s_typed);
    assert_eq!(es.len(), before);
}

#[test]
fn a_message_to_a_stopped_actor_is_a_dead_letter_event() {
    let system = ActorSystem::new();
    let (p, rx) = probe();
    let _ = system
        .event_stream()
        .subscribe_to::<DeadLetterEvent, _>(move |ev| {
            if let Some(n) = ev.message.downcast_ref::<Note>() {
                p.push((ev.pid.id().to_string(), n.clone()));
            }
        });
    let pid = system.root().spawn(&Props::from_func(|_| {}));
    system.root().stop_future(&pid).wait().unwrap();
    system.root().send(&pid, Note(1));
    assert_eq!(rx.next(), (pid.id().to_string(), Note(1)));
}

#[test]
fn a_request_to_a_dead_pid_fails_with_dead_letter() {
    let system = ActorSystem::new();
    let pid = system.root().spawn(&Props::from_func(|_| {}));
    system.root().stop_future(&pid).wait().unwrap();
    let r = system.root().request_future(&pid, Note(1), WAIT).result();
    assert!(matches!(r, Err(FutureError::DeadLetter { .. })), "{r:?}");
}

#[test]
fn an_actor_requesting_a_dead_pid_gets_dead_letter_response() {
    let system = ActorSystem::new();
    let dead = system.root().spawn(&Props::from_func(|_| {}));
    system.root().stop_future(&dead).wait().unwrap();
    let (p, rx) = probe();
    let d2 = dead.clone();
    system.root().spawn(&Props::from_func(move |ctx| {
        if ctx.message().is::<Started>() {
            ctx.request(&d2, Note(2));
        } else if let Some(r) = ctx.message_as::<DeadLetterResponse>() {
            p.push(r.target.clone());
        }
    }));
    assert_eq!(rx.next(), Some(dead));
}

#[test]
fn watching_a_dead_pid_gives_terminated_not_found() {
    let system = ActorSystem::new();
    let dead = system.root().spawn(&Props::from_func(|_| {}));
    system.root().stop_future(&dead).wait().unwrap();
    let (p, rx) = probe();
    let d2 = dead.clone();
    system.root().spawn(&Props::from_func(move |ctx| {
        if ctx.message().is::<Started>() {
            ctx.watch(&d2);
        } else if let Some(t) = ctx.message_as::<Terminated>() {
            p.push((t.who.clone(), t.why));
        }
    }));
    assert_eq!(rx.next(), (dead, TerminatedReason::NotFound));
}
