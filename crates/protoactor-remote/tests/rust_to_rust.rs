//! Two Rust nodes in one process, talking over loopback gRPC.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::messages::{Count, Echo, Response, Seq};
use common::*;
use protoactor::prelude::*;
use protoactor::{DeadLetterEvent, MessageHeader};
use protoactor_remote::events::{Direction, EndpointConnected, EndpointTerminated};
use protoactor_remote::{
    PidExt, RemoteConfig, RemoteDeliveryError, RemoteSpawnError, ResponseStatusCode, WireVariant,
};

#[test]
fn port_zero_reports_the_real_address() {
    let (system, remote) = default_node();
    let port = remote.bound_address().port();
    assert_ne!(port, 0);
    assert_eq!(remote.address(), format!("127.0.0.1:{port}"));
    assert_eq!(system.address(), remote.address());
    stop(&system, &remote);
}

#[test]
fn advertised_address_is_used_for_pids() {
    let (system, remote) =
        node(RemoteConfig::new("0.0.0.0", 0).with_advertised_address("localhost:9999"));
    assert_eq!(remote.address(), "localhost:9999");
    let pid = system.root().spawn(&echo_props());
    assert_eq!(pid.address(), "localhost:9999");
    stop(&system, &remote);
}

#[test]
fn request_future_and_headers_cross_nodes() {
    for variant in [WireVariant::Current, WireVariant::Legacy2024] {
        let (s1, r1) = node(
            RemoteConfig::local()
                .with_serialization(serialization())
                .with_wire_variant(variant),
        );
        let (s2, r2) = default_node();
        let echo = s2.root().spawn_named(&echo_props(), "echo").unwrap();
        let remote_echo = Pid::new(r2.address(), "echo");
        assert_eq!(echo, remote_echo);

        let mut header = MessageHeader::new();
        header.set("trace", "abc");
        let reply = s1
            .root()
            .with_header(header)
            .request_future(
                &remote_echo,
                Echo {
                    message: "hi".into(),
                    sender: None,
                },
                WAIT,
            )
            .result_as::<Response>()
            .expect("a response");
        assert_eq!(reply.some_value, "echo:hi");
        assert_eq!(reply.from.unwrap().to_pid(), remote_echo);
        assert_eq!(reply.headers.get("trace").map(String::as_str), Some("abc"));
        stop(&s1, &r1);
        stop(&s2, &r2);
    }
}

#[test]
fn actors_reply_to_sender_pids_across_nodes() {
    let (s1, r1) = default_node();
    let (s2, r2) = default_node();
    s2.root().spawn_named(&echo_props(), "echo").unwrap();
    let target = Pid::new(r2.address(), "echo");
    let (p, rx) = probe::<(String, Pid)>();
    let props = Props::from_func(move |ctx| {
        if ctx.message_as::<Started>().is_some() {
            ctx.request(
                &target,
                Echo {
                    message: "from-actor".into(),
                    sender: Some(ctx.self_pid().to_proto()),
                },
            );
        } else if let Some(r) = ctx.message_as::<Response>() {
            p.push((r.some_value.clone(), r.from.as_ref().unwrap().to_pid()));
        }
    });
    s1.root().spawn(&props);
    let (v, sender) = next(&rx);
    assert_eq!(v, "echo:from-actor");
    assert_eq!(sender.address(), r2.address());
    assert_eq!(sender.id(), "echo");
    stop(&s1, &r1);
    stop(&s2, &r2);
}

#[test]
fn messages_keep_their_order_per_sender_receiver_pair() {
    const N: i64 = 100_000;
    let (s1, r1) = default_node();
    let (s2, r2) = node(
        RemoteConfig::local()
            .with_serialization(serialization())
            .with_wire_variant(WireVariant::Legacy2024),
    );
    let (p, rx) = probe();
    s2.root()
        .spawn_named(&collector_props(N, p), "collector")
        .unwrap();
    let target = Pid::new(r2.address(), "collector");
    let root = s1.root();
    for n in 0..N {
        root.send(
            &target,
            Seq {
                n,
                tag: String::new(),
            },
        );
    }
    let (count, in_order) = next(&rx);
    assert_eq!(count, N);
    assert!(in_order, "messages arrived out of order");
    stop(&s1, &r1);
    stop(&s2, &r2);
}

/// A message of at most a word (`Count`, one `i32`) travels in its envelope with no box of
/// its own: sent to another node with a header, taken there, answered with another, the
/// answer read by the requester's future.
#[test]
fn a_small_message_stored_in_its_envelope_crosses_nodes_and_back() {
    let (s1, r1) = default_node();
    let (s2, r2) = default_node();
    s2.root()
        .spawn_named(
            &Props::from_func(|ctx| {
                let tag = ctx.header().and_then(|h| h.get("tag")).map(str::to_owned);
                if let Some(Count { value }) = ctx.take_message::<Count>() {
                    let bump = if tag.as_deref() == Some("bump") { 1 } else { 0 };
                    ctx.respond(Count {
                        value: value + bump,
                    });
                }
            }),
            "counter",
        )
        .unwrap();
    let target = Pid::new(r2.address(), "counter");
    let mut header = MessageHeader::new();
    header.set("tag", "bump");
    let root = s1.root().with_header(header);
    for value in [41, -7, i32::MAX - 1] {
        let reply = root
            .request_future(&target, Count { value }, WAIT)
            .result_as::<Count>()
            .unwrap();
        assert_eq!(reply.value, value + 1);
    }
    stop(&s1, &r1);
    stop(&s2, &r2);
}

#[test]
fn remote_spawn_reports_ok_name_taken_and_unknown_kind() {
    let (s1, r1) = default_node();
    let (s2, r2) = node(
        RemoteConfig::local()
            .with_serialization(serialization())
            .with_kind("echo", echo_props()),
    );
    let rt = s1.runtime().clone();
    let addr = r2.address().to_string();
    let pid = rt
        .block_on(r1.spawn_named(&addr, "one", "echo", WAIT))
        .expect("spawned");
    assert_eq!(pid.address(), addr);
    assert_eq!(pid.id(), "activator/Remote$one");
    let reply = s1
        .root()
        .request_future(
            &pid,
            Echo {
                message: "x".into(),
                sender: None,
            },
            WAIT,
        )
        .result_as::<Response>()
        .unwrap();
    assert_eq!(reply.some_value, "echo:x");

    let again = rt.block_on(r1.spawn_named(&addr, "one", "echo", WAIT));
    assert_eq!(
        again,
        Err(RemoteSpawnError::Status {
            code: ResponseStatusCode::ProcessNameAlreadyExist,
            pid: Some(pid.clone()),
        })
    );
    let unknown = rt.block_on(r1.spawn_named(&addr, "two", "nope", WAIT));
    assert!(matches!(
        unknown,
        Err(RemoteSpawnError::Status {
            code: ResponseStatusCode::Error,
            ..
        })
    ));
    // Kinds can be added after start.
    r2.register_kind("late", echo_props());
    assert_eq!(r2.known_kinds(), vec!["echo", "late"]);
    assert!(rt
        .block_on(r1.spawn_named(&addr, "three", "late", WAIT))
        .is_ok());
    let unnamed = rt.block_on(r1.spawn(&addr, "echo", WAIT)).unwrap();
    assert!(unnamed.id().starts_with("activator/Remote$"));
    assert_ne!(unnamed, pid);
    stop(&s1, &r1);
    stop(&s2, &r2);
}

#[test]
fn remote_watch_gives_terminated_when_the_actor_stops() {
    let (s1, r1) = default_node();
    let (s2, r2) = default_node();
    let watched = s2.root().spawn_named(&echo_props(), "watched").unwrap();
    let remote_watched = Pid::new(r2.address(), "watched");
    let rx = spawn_watcher(&s1, remote_watched.clone());
    // The watch travels before the stop only if it was sent first: wait for the round trip.
    s1.root()
        .request_future(
            &remote_watched,
            Echo {
                message: "sync".into(),
                sender: None,
            },
            WAIT,
        )
        .result_as::<Response>()
        .unwrap();
    // Stop it from node 1 through the wire (actor.Stop).
    s1.root().stop(&remote_watched);
    let (who, why) = next(&rx);
    assert_eq!(who, watched);
    assert_eq!(why, TerminatedReason::Stopped);
    stop(&s1, &r1);
    stop(&s2, &r2);
}

#[test]
fn watching_a_missing_remote_actor_gives_not_found() {
    let (s1, r1) = default_node();
    let (s2, r2) = default_node();
    let missing = Pid::new(r2.address(), "nobody");
    let rx = spawn_watcher(&s1, missing.clone());
    let (who, why) = next(&rx);
    assert_eq!(who, missing);
    assert_eq!(why, TerminatedReason::NotFound);
    stop(&s1, &r1);
    stop(&s2, &r2);
}

#[test]
fn peer_shutdown_gives_address_terminated_and_endpoint_events() {
    let (s1, r1) = default_node();
    let (s2, r2) = default_node();
    s2.root().spawn_named(&echo_props(), "watched").unwrap();
    let remote_watched = Pid::new(r2.address(), "watched");
    let (ev, evs) = probe::<String>();
    let ev2 = ev.clone();
    let _ = s1
        .event_stream()
        .subscribe_to::<EndpointConnected, _>(move |e| ev.push(format!("connected {}", e.address)));
    let _ = s1
        .event_stream()
        .subscribe_to::<EndpointTerminated, _>(move |e| {
            ev2.push(format!("terminated {}", e.address))
        });
    let rx = spawn_watcher(&s1, remote_watched.clone());
    s1.root()
        .request_future(
            &remote_watched,
            Echo {
                message: "sync".into(),
                sender: None,
            },
            WAIT,
        )
        .result_as::<Response>()
        .unwrap();
    assert_eq!(next(&evs), format!("connected {}", r2.address()));
    // Node 2 goes away gracefully: it sends DisconnectRequest on node 1's stream.
    stop(&s2, &r2);
    let (who, why) = next(&rx);
    assert_eq!(who, remote_watched);
    assert_eq!(why, TerminatedReason::AddressTerminated);
    assert_eq!(next(&evs), format!("terminated {}", r2.address()));
    stop(&s1, &r1);
}

#[test]
fn requests_to_missing_actors_and_dead_nodes_give_dead_letters() {
    let (s1, r1) = node(
        RemoteConfig::local()
            .with_serialization(serialization())
            .with_retries(2, Duration::from_millis(50)),
    );
    let (s2, r2) = default_node();
    // A missing actor on a live node: the peer answers DeadLetterResponse.
    let r = s1
        .root()
        .request_future(&Pid::new(r2.address(), "nobody"), Echo::default(), WAIT)
        .result();
    assert!(r.err().is_some_and(|e| e.is_dead_letter()));

    // A node nobody listens on: after the retries, the request is dead-lettered locally.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = free.local_addr().unwrap().to_string();
    drop(free);
    let (p, rx) = probe::<String>();
    let _ = s1
        .event_stream()
        .subscribe_to::<DeadLetterEvent, _>(move |e| p.push(e.pid.to_string()));
    let r = s1
        .root()
        .request_future(&Pid::new(dead_addr.as_str(), "x"), Echo::default(), WAIT)
        .result();
    assert!(r.err().is_some_and(|e| e.is_dead_letter()));
    s1.root()
        .send(&Pid::new(dead_addr.as_str(), "y"), Echo::default());
    loop {
        if next(&rx) == format!("{dead_addr}/y") {
            break;
        }
    }
    stop(&s1, &r1);
    stop(&s2, &r2);
}

/// A PID whose address is not a dialable `host:port` (here empty, as a PID built by hand
/// from a missing field would be) is refused at once: a requester gets `DeadLetterResponse`
/// (its future fails with `DeadLetter` long before the connection retries would end), a
/// plain send gives a `DeadLetterEvent`, and no endpoint is created.
#[test]
fn a_pid_with_an_invalid_address_is_dead_lettered_at_once() {
    // Five attempts two seconds apart: a node that dialled would need 8 s to give up.
    let (s1, r1) = node(
        RemoteConfig::local()
            .with_serialization(serialization())
            .with_retries(5, Duration::from_secs(2)),
    );
    let (p, rx) = probe::<String>();
    let _ = s1
        .event_stream()
        .subscribe_to::<DeadLetterEvent, _>(move |e| p.push(e.pid.to_string()));
    for address in ["", "no-port", "http://127.0.0.1:1"] {
        let r = s1
            .root()
            .request_future(
                &Pid::new(address, "x"),
                Echo::default(),
                Duration::from_secs(1),
            )
            .result();
        assert!(r.err().is_some_and(|e| e.is_dead_letter()), "{address:?}");
        s1.root().send(&Pid::new(address, "y"), Echo::default());
        let expected = Pid::new(address, "y").to_string();
        while next(&rx) != expected {}
    }
    stop(&s1, &r1);
}

/// The blocking remote spawns work from inside an actor (as Go code does in `Started`), even
/// on a runtime with a single worker thread: the answer needs that runtime's other tasks,
/// which must not be stuck behind the blocked actor. From a plain thread too.
#[test]
fn blocking_remote_spawn_works_inside_an_actor_on_one_worker_thread() {
    let one_worker = || {
        let system = ActorSystem::with_config(protoactor::Config::default().with_worker_threads(1));
        let remote = protoactor_remote::Remote::start(
            &system,
            RemoteConfig::local()
                .with_serialization(serialization())
                .with_kind("echo", echo_props()),
        )
        .unwrap();
        (system, remote)
    };
    let (s1, r1) = one_worker();
    let (s2, r2) = one_worker();
    let peer = r2.address().to_string();
    let (p, rx) = probe();
    s1.root().spawn(&Props::from_func(move |ctx| {
        if ctx.message_as::<Started>().is_some() {
            let remote = protoactor_remote::Remote::get(ctx.system()).unwrap();
            let named = remote.spawn_named_blocking(&peer, "in-actor", "echo", WAIT);
            let unnamed = remote.spawn_blocking(&peer, "echo", WAIT);
            p.push((named, unnamed));
        }
    }));
    let (named, unnamed) = next(&rx);
    let named = named.expect("named spawn from inside an actor");
    assert_eq!(named.id(), "activator/Remote$in-actor");
    let unnamed = unnamed.expect("unnamed spawn from inside an actor");
    assert!(unnamed.id().starts_with("activator/Remote$"), "{unnamed}");
    assert_ne!(unnamed, named);
    // The spawned actors answer.
    for pid in [&named, &unnamed] {
        let reply = s1
            .root()
            .request_future(
                pid,
                Echo {
                    message: "x".into(),
                    sender: None,
                },
                WAIT,
            )
            .result_as::<Response>()
            .unwrap();
        assert_eq!(reply.some_value, "echo:x");
    }
    // From a plain thread.
    let pid = r1.spawn_blocking(r2.address(), "echo", WAIT).unwrap();
    assert!(pid.id().starts_with("activator/Remote$"));
    stop(&s1, &r1);
    stop(&s2, &r2);
}

/// `stop(remote_pid)` right before `Remote::shutdown()` delivers the `Stop`: shutdown drains
/// the endpoint (here still dialling: the first message to that node) before closing it.
#[test]
fn shutdown_right_after_stop_of_a_remote_actor_delivers_the_stop() {
    let (s1, r1) = default_node();
    let (s2, r2) = default_node();
    let victim = s2.root().spawn_named(&echo_props(), "victim").unwrap();
    let terminated = spawn_watcher(&s2, victim.clone());
    s1.root().stop(&Pid::new(r2.address(), "victim"));
    r1.shutdown();
    assert_eq!(next(&terminated), (victim, TerminatedReason::Stopped));
    s1.shutdown();
    stop(&s2, &r2);
}

/// Draining is bounded: a peer that never answers the handshake does not hold shutdown
/// longer than `drain_timeout`, and what it held goes to dead letters.
#[test]
fn shutdown_drain_is_bounded_by_the_drain_timeout() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = silent.local_addr().unwrap().to_string();
    let (s1, r1) = node(
        RemoteConfig::local()
            .with_serialization(serialization())
            .with_drain_timeout(Duration::from_millis(300)),
    );
    let (p, rx) = probe::<String>();
    let _ = s1
        .event_stream()
        .subscribe_to::<DeadLetterEvent, _>(move |e| p.push(e.pid.to_string()));
    s1.root()
        .send(&Pid::new(address.as_str(), "x"), Echo::default());
    let start = std::time::Instant::now();
    r1.shutdown();
    // The handshake alone would wait 10 s (and the retries far longer).
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(next(&rx), format!("{address}/x"));
    s1.shutdown();
    drop(silent);
}

#[test]
fn shutdown_drain_gives_an_unreachable_peer_one_more_attempt_not_its_whole_time() {
    // Nothing listens here: every dial is refused at once.
    let refused = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let drain = Duration::from_secs(30);
    let (s1, r1) = node(
        RemoteConfig::local()
            .with_serialization(serialization())
            .with_drain_timeout(drain),
    );
    let (p, rx) = probe::<String>();
    let _ = s1
        .event_stream()
        .subscribe_to::<DeadLetterEvent, _>(move |e| p.push(e.pid.to_string()));
    s1.root()
        .send(&Pid::new(refused.as_str(), "x"), Echo::default());
    let start = std::time::Instant::now();
    r1.shutdown();
    // Without the last-attempt rule the drain waits out the retries (4 pauses of 2 s).
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(next(&rx), format!("{refused}/x"));
    s1.shutdown();
}

#[test]
fn unregistered_types_are_reported_and_dead_lettered() {
    let (s1, r1) = default_node();
    let (s2, r2) = default_node();
    s2.root().spawn_named(&echo_props(), "echo").unwrap();
    let (p, rx) = probe::<String>();
    let _ = s1
        .event_stream()
        .subscribe_to::<RemoteDeliveryError, _>(move |e| {
            assert_eq!(e.direction, Direction::Outbound);
            p.push(e.type_name.clone())
        });
    struct NotProto;
    let r = s1
        .root()
        .request_future(&Pid::new(r2.address(), "echo"), NotProto, WAIT)
        .result();
    assert!(r.err().is_some_and(|e| e.is_dead_letter()));
    assert!(next(&rx).contains("NotProto"));
    stop(&s1, &r1);
    stop(&s2, &r2);
}

/// A reply whose type the caller has not registered completes the caller's request at once
/// with an `UndecodableMessage` naming the type (not a timeout, not a silent dead letter).
#[test]
fn a_reply_of_an_unregistered_type_is_an_immediate_named_error() {
    use protoactor_remote::{Serialization, UndecodableMessage};
    let only_echo = Serialization::new();
    only_echo.register::<Echo>();
    let (s1, r1) = node(RemoteConfig::local().with_serialization(only_echo));
    let (s2, r2) = default_node();
    s2.root().spawn_named(&echo_props(), "echo").unwrap();
    let started = std::time::Instant::now();
    let reply = s1
        .root()
        .request_future(
            &Pid::new(r2.address(), "echo"),
            Echo {
                message: "hi".into(),
                sender: None,
            },
            WAIT,
        )
        .result()
        .expect("the undecodable reply itself, not a timeout");
    // Well before the request's 30 s timeout, even on a loaded machine.
    assert!(started.elapsed() < WAIT / 2, "{:?}", started.elapsed());
    let u = reply
        .downcast_ref::<UndecodableMessage>()
        .expect("an UndecodableMessage");
    assert_eq!(&*u.type_name, "messages.Response");
    assert_eq!(
        &*u.error,
        "no message type is registered under this type name for serializer 0"
    );
    stop(&s1, &r1);
    stop(&s2, &r2);
}

#[test]
fn json_serializer_roundtrip() {
    let ser = || {
        let s = serialization();
        s.register_json::<Echo>();
        s
    };
    let (s1, r1) = node(RemoteConfig::local().with_serialization(ser()));
    let (s2, r2) = node(RemoteConfig::local().with_serialization(ser()));
    let (p, rx) = probe::<String>();
    let props = Props::from_func(move |ctx| {
        if let Some(e) = ctx.message_as::<Echo>() {
            p.push(e.message.clone());
        }
    });
    s2.root().spawn_named(&props, "sink").unwrap();
    s1.root().send(
        &Pid::new(r2.address(), "sink"),
        Echo {
            message: "as json".into(),
            sender: None,
        },
    );
    assert_eq!(next(&rx), "as json");
    stop(&s1, &r1);
    stop(&s2, &r2);
}

#[test]
fn endpoint_reconnects_after_the_peer_restarts() {
    let (s1, r1) = default_node();
    let (s2, r2) = default_node();
    let port = r2.bound_address().port();
    s2.root().spawn_named(&echo_props(), "echo").unwrap();
    let target = Pid::new(r2.address(), "echo");
    let ok = |s: &ActorSystem| {
        s.root()
            .request_future(&target, Echo::default(), WAIT)
            .result_as::<Response>()
    };
    assert!(ok(&s1).is_ok());
    let (p, rx) = probe::<()>();
    let sub = s1
        .event_stream()
        .subscribe_to::<EndpointTerminated, _>(move |_| p.push(()));
    stop(&s2, &r2);
    next(&rx);
    s1.event_stream().unsubscribe(&sub);
    // A new node on the same port: the next send reconnects.
    let (s3, r3) = node(RemoteConfig::new("127.0.0.1", port).with_serialization(serialization()));
    s3.root().spawn_named(&echo_props(), "echo").unwrap();
    assert!(ok(&s1).is_ok());
    stop(&s1, &r1);
    stop(&s3, &r3);
    let _ = Arc::new(());
}

/// A hand-written client sends bad envelopes among good ones on one stream: the bad ones are
/// reported and dead-lettered, the good ones (before and after) are delivered.
#[test]
fn bad_frames_do_not_kill_the_stream() {
    use bytes::Bytes;
    use prost::Message as _;
    use protoactor_remote::remote_proto::remote_message::MessageType;
    use protoactor_remote::remote_proto::*;

    let (s2, r2) = node(
        RemoteConfig::local()
            .with_serialization(serialization())
            .with_max_message_size(64 * 1024),
    );
    let (p, rx) = probe::<i64>();
    let props = Props::from_func(move |ctx| {
        if let Some(s) = ctx.message_as::<Seq>() {
            p.push(s.n);
        }
    });
    s2.root().spawn_named(&props, "sink").unwrap();
    let (e, errs) = probe::<(String, String)>();
    let _ = s2
        .event_stream()
        .subscribe_to::<RemoteDeliveryError, _>(move |ev| {
            e.push((ev.type_name.clone(), ev.error.clone()))
        });
    let (d, dead) = probe::<String>();
    let _ = s2
        .event_stream()
        .subscribe_to::<DeadLetterEvent, _>(move |ev| d.push(ev.message.type_name().to_string()));

    let seq = |n: i64| {
        Seq {
            n,
            tag: String::new(),
        }
        .encode_to_vec()
    };
    let env = |type_id: i32, target: i32, data: Vec<u8>| MessageEnvelope {
        type_id,
        target,
        message_data: Bytes::from(data),
        ..Default::default()
    };
    let batch = |envelopes| RemoteMessage {
        message_type: Some(MessageType::MessageBatch(MessageBatch {
            type_names: vec!["messages.Seq".into(), "no.SuchType".into()],
            targets: vec![Bytes::from_static(b"sink")],
            envelopes,
            senders: vec![],
        })),
    };
    let addr = r2.address().to_string();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let (tx, _inbound) = handshake(&addr).await;
        tx.send(batch(vec![
            env(0, 0, seq(1)),
            env(1, 0, seq(2)),           // unknown type name
            env(7, 0, seq(3)),           // bad type index
            env(0, 5, seq(4)),           // bad target index
            env(0, 0, vec![0xff, 0xff]), // undecodable payload
            env(0, 0, seq(5)),
        ]))
        .await
        .unwrap();
        // An oversized batch is refused as a whole…
        tx.send(batch(vec![env(0, 0, vec![0u8; 70 * 1024])]))
            .await
            .unwrap();
        // …and the stream still works.
        tx.send(batch(vec![env(0, 0, seq(6))])).await.unwrap();
        assert_eq!(next(&rx), 1);
        assert_eq!(next(&rx), 5);
        assert_eq!(next(&rx), 6);
        drop(tx);
    });
    let errors: Vec<(String, String)> = (0..5).map(|_| next(&errs)).collect();
    let has = |i: usize, name: &str, text: &str| errors[i].0 == name && errors[i].1.contains(text);
    assert!(
        has(0, "no.SuchType", "no message type is registered"),
        "{errors:?}"
    );
    assert!(has(1, "", "type index 7"), "{errors:?}");
    assert!(has(2, "messages.Seq", "target index 5"), "{errors:?}");
    assert!(has(3, "messages.Seq", "does not decode"), "{errors:?}");
    assert!(has(4, "messages.Seq", "exceeds the limit"), "{errors:?}");
    for _ in 0..5 {
        assert!(next(&dead).contains("UndecodableMessage"));
    }
    stop(&s2, &r2);
}

#[test]
fn oversized_messages_are_refused_by_the_sender() {
    let (s1, r1) = node(
        RemoteConfig::local()
            .with_serialization(serialization())
            .with_max_message_size(16 * 1024),
    );
    let (s2, r2) = default_node();
    s2.root().spawn_named(&echo_props(), "echo").unwrap();
    let target = Pid::new(r2.address(), "echo");
    let (p, rx) = probe::<String>();
    let _ = s1
        .event_stream()
        .subscribe_to::<RemoteDeliveryError, _>(move |e| p.push(e.error.clone()));
    let big = Echo {
        message: "x".repeat(20 * 1024),
        sender: None,
    };
    let r = s1.root().request_future(&target, big, WAIT).result();
    assert!(r.err().is_some_and(|e| e.is_dead_letter()));
    assert!(next(&rx).contains("exceed the message size limit"));
    // The endpoint still works.
    let ok = s1
        .root()
        .request_future(&target, Echo::default(), WAIT)
        .result_as::<Response>();
    assert!(ok.is_ok());
    stop(&s1, &r1);
    stop(&s2, &r2);
}

#[cfg(feature = "tls")]
#[test]
fn tls_nodes_talk_and_plaintext_nodes_cannot_reach_them() {
    use protoactor_remote::TlsConfig;
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let tls = TlsConfig::new(
        cert.cert.pem(),
        cert.signing_key.serialize_pem(),
        cert.cert.pem(),
    )
    .with_domain_name("localhost");
    let secure = || {
        node(
            RemoteConfig::local()
                .with_serialization(serialization())
                .with_tls(tls.clone())
                .with_retries(1, Duration::from_millis(10)),
        )
    };
    let (s1, r1) = secure();
    let (s2, r2) = secure();
    s2.root().spawn_named(&echo_props(), "echo").unwrap();
    let target = Pid::new(r2.address(), "echo");
    let reply = s1
        .root()
        .request_future(
            &target,
            Echo {
                message: "tls".into(),
                sender: None,
            },
            WAIT,
        )
        .result_as::<Response>()
        .unwrap();
    assert_eq!(reply.some_value, "echo:tls");

    let (s3, r3) = node(
        RemoteConfig::local()
            .with_serialization(serialization())
            .with_retries(1, Duration::from_millis(10)),
    );
    // A fresh PID: a PID caches the process it resolved to in the system that used it.
    let target = Pid::new(r2.address(), "echo");
    let r = s3
        .root()
        .request_future(&target, Echo::default(), WAIT)
        .result();
    assert!(r.err().is_some_and(|e| e.is_dead_letter()));
    stop(&s1, &r1);
    stop(&s2, &r2);
    stop(&s3, &r3);
}

/// Dials `address` as a bare gRPC client over TLS trusting `ca_pem`, presenting `identity`
/// (certificate and key PEM) if given, and opens the remoting stream: `Ok` once the node
/// answered the `ConnectRequest`, else the error (a refused handshake shows here: with TLS
/// 1.3 the server checks the client's certificate after the client thinks it is done).
#[cfg(feature = "tls")]
fn raw_tls_connect(
    address: &str,
    ca_pem: &str,
    identity: Option<(&str, &str)>,
) -> Result<(), String> {
    use protoactor_remote::remote_proto::remote_message::MessageType;
    use protoactor_remote::remote_proto::remoting_client::RemotingClient;
    use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(ca_pem))
            .domain_name("localhost");
        if let Some((cert, key)) = identity {
            tls = tls.identity(Identity::from_pem(cert, key));
        }
        let attempt = async {
            let channel = Endpoint::from_shared(format!("https://{address}"))
                .map_err(|e| e.to_string())?
                .tls_config(tls)
                .map_err(|e| e.to_string())?
                .connect()
                .await
                .map_err(|e| format!("connect: {e:?}"))?;
            let (tx, rx) = tokio::sync::mpsc::channel(8);
            tx.send(connect_request("raw")).await.unwrap();
            let mut inbound = RemotingClient::new(channel)
                .receive(tokio_stream::wrappers::ReceiverStream::new(rx))
                .await
                .map_err(|e| format!("receive: {e:?}"))?
                .into_inner();
            match inbound.message().await {
                Ok(Some(m)) if matches!(m.message_type, Some(MessageType::ConnectResponse(_))) => {
                    Ok(())
                }
                other => Err(format!("no ConnectResponse: {other:?}")),
            }
        };
        tokio::time::timeout(WAIT, attempt)
            .await
            .map_err(|_| "timed out".to_string())?
    })
}

#[cfg(feature = "tls")]
#[test]
fn mutual_tls_nodes_talk_and_refuse_peers_without_a_certificate_of_their_ca() {
    use protoactor_remote::{Remote, TlsConfig};
    use protoactor_testkit::certs::TestCa;
    let ca = TestCa::new("cluster CA");
    let other_ca = TestCa::new("another CA");
    let mtls_node = |ca: &TestCa, name: &str| {
        let cert = ca.issue(name);
        node(
            RemoteConfig::local()
                .with_serialization(serialization())
                .with_mutual_tls(cert.cert_pem, cert.key_pem, ca.pem())
                .with_retries(1, Duration::from_millis(10)),
        )
    };
    let echo = |from: &ActorSystem, to: &Remote, message: &str| {
        from.root()
            .request_future(
                &Pid::new(to.address(), "echo"),
                Echo {
                    message: message.into(),
                    sender: None,
                },
                WAIT,
            )
            .result_as::<Response>()
    };
    let (s1, r1) = mtls_node(&ca, "one");
    let (s2, r2) = mtls_node(&ca, "two");
    s1.root().spawn_named(&echo_props(), "echo").unwrap();
    s2.root().spawn_named(&echo_props(), "echo").unwrap();
    // Both directions: each node's client side presents its certificate to the other's server.
    assert_eq!(echo(&s1, &r2, "a").unwrap().some_value, "echo:a");
    assert_eq!(echo(&s2, &r1, "b").unwrap().some_value, "echo:b");

    // Bare gRPC clients: one with a certificate of the cluster's CA gets through (so the
    // refusals below are the certificate's doing), one without a certificate and one with
    // a certificate of another CA are refused.
    let good = ca.issue("raw");
    raw_tls_connect(
        r2.address(),
        &ca.pem(),
        Some((&good.cert_pem, &good.key_pem)),
    )
    .expect("a client with a certificate of the cluster's CA connects");
    let refused = raw_tls_connect(r2.address(), &ca.pem(), None);
    assert!(
        refused.is_err(),
        "a client without a certificate was accepted"
    );
    let stranger = other_ca.issue("stranger");
    let refused = raw_tls_connect(
        r2.address(),
        &ca.pem(),
        Some((&stranger.cert_pem, &stranger.key_pem)),
    );
    assert!(refused.is_err(), "a client of another CA was accepted");

    // Nodes: one of another CA, one with server-only TLS trusting the right CA (so it has no
    // client certificate): their messages to node two are dead letters.
    let (s3, r3) = mtls_node(&other_ca, "three");
    assert!(echo(&s3, &r2, "c")
        .err()
        .is_some_and(|e| e.is_dead_letter()));
    let server_only = ca.issue("four");
    let (s4, r4) = node(
        RemoteConfig::local()
            .with_serialization(serialization())
            .with_tls(TlsConfig::new(
                server_only.cert_pem,
                server_only.key_pem,
                ca.pem(),
            ))
            .with_retries(1, Duration::from_millis(10)),
    );
    assert!(echo(&s4, &r2, "d")
        .err()
        .is_some_and(|e| e.is_dead_letter()));

    // Node two kept serving its peer.
    assert_eq!(echo(&s1, &r2, "e").unwrap().some_value, "echo:e");
    for (s, r) in [(&s1, &r1), (&s2, &r2), (&s3, &r3), (&s4, &r4)] {
        stop(s, r);
    }
}

#[cfg(feature = "tls")]
#[test]
fn bad_tls_settings_are_errors_at_start_and_leave_the_system_usable() {
    use protoactor_remote::{Remote, RemoteError, TlsConfig};
    use protoactor_testkit::certs::TestCa;
    let ca = TestCa::new("cluster CA");
    let cert = ca.issue("one");
    let other = ca.issue("other");
    let system = ActorSystem::new();
    let start = |tls: TlsConfig| match Remote::start(&system, RemoteConfig::local().with_tls(tls)) {
        Err(RemoteError::Tls(message)) => message,
        other => panic!("expected a TLS error, got {other:?}"),
    };
    let garbage = "not a PEM file";
    let m = start(TlsConfig::mutual(garbage, cert.key_pem.clone(), ca.pem()));
    assert!(m.contains("cert_pem"), "{m}");
    let m = start(TlsConfig::mutual(cert.cert_pem.clone(), garbage, ca.pem()));
    assert!(m.contains("key_pem"), "{m}");
    let m = start(TlsConfig::mutual(
        cert.cert_pem.clone(),
        cert.key_pem.clone(),
        "",
    ));
    assert!(m.contains("ca_pem"), "{m}");
    // A key that is not the certificate's.
    let m = start(TlsConfig::mutual(
        cert.cert_pem.clone(),
        other.key_pem.clone(),
        ca.pem(),
    ));
    assert!(!m.is_empty());

    // Files: a missing one is named; written ones load.
    let dir = std::env::temp_dir().join(format!("protoactor-mtls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert_path, key_path) = cert.write(&dir, "one");
    let ca_path = dir.join("ca.crt");
    std::fs::write(&ca_path, ca.pem()).unwrap();
    let missing = dir.join("missing.crt");
    let err = TlsConfig::from_pem_files(&missing, &key_path, &ca_path).unwrap_err();
    assert!(err.0.contains("missing.crt"), "{err}");
    let tls = TlsConfig::from_pem_files(&cert_path, &key_path, &ca_path)
        .unwrap()
        .with_mutual(true);
    std::fs::remove_dir_all(&dir).unwrap();

    // The failed starts left nothing behind: the same system starts its remote now.
    let remote = Remote::start(&system, RemoteConfig::local().with_tls(tls)).expect("starts");
    stop(&system, &remote);
}

/// An unwatched remote actor's stop gives no `Terminated` to the former watcher, while a
/// watcher that kept watching gets one (the former watch was registered first, so its
/// `Terminated` would have come first on the same stream).
#[test]
fn remote_unwatch_stops_terminated() {
    let (s1, r1) = default_node();
    let (s2, r2) = default_node();
    let watched = s2.root().spawn_named(&echo_props(), "watched").unwrap();
    let remote_watched = Pid::new(r2.address(), "watched");
    struct Seen;
    let (p, rx) = probe::<&'static str>();
    let target = remote_watched.clone();
    let former = s1.root().spawn(&Props::from_func(move |ctx| {
        if ctx.message_as::<Started>().is_some() {
            ctx.watch(&target);
            ctx.unwatch(&target);
        } else if ctx.message_as::<Terminated>().is_some() {
            p.push("former watcher got Terminated");
        } else if ctx.message_as::<Seen>().is_some() {
            ctx.respond(Seen);
        }
    }));
    // Started (Watch, Unwatch) ran before the Touch; the round trip below then comes
    // after both on the same stream.
    touch(&s1, &former);
    s1.root()
        .request_future(&remote_watched, Echo::default(), WAIT)
        .result_as::<Response>()
        .unwrap();
    let srx = spawn_watcher(&s1, remote_watched.clone());
    s1.root()
        .request_future(&remote_watched, Echo::default(), WAIT)
        .result_as::<Response>()
        .unwrap();
    s2.root().stop(&watched);
    assert_eq!(next(&srx).1, TerminatedReason::Stopped);
    s1.root()
        .request_future(&former, Seen, WAIT)
        .result_as::<Seen>()
        .unwrap();
    assert!(rx.try_recv().is_err(), "the former watcher got Terminated");
    stop(&s1, &r1);
    stop(&s2, &r2);
}

#[test]
fn a_full_endpoint_queue_refuses_messages() {
    let (s1, r1) = node(
        RemoteConfig::local()
            .with_serialization(serialization())
            .with_queue_size(10)
            // Long retries against a dead port keep the writer from draining the queue.
            .with_retries(2, Duration::from_secs(5)),
    );
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = Pid::new(free.local_addr().unwrap().to_string(), "x");
    drop(free);
    let (p, rx) = probe::<String>();
    let _ = s1
        .event_stream()
        .subscribe_to::<RemoteDeliveryError, _>(move |e| p.push(e.error.clone()));
    for n in 0..15 {
        s1.root().send(
            &dead,
            Seq {
                n,
                tag: String::new(),
            },
        );
    }
    for _ in 0..5 {
        assert!(next(&rx).contains("queue is full"));
    }
    stop(&s1, &r1);
}

#[test]
fn list_processes_answers_by_pattern() {
    use protoactor_remote::remote_proto::remoting_client::RemotingClient;
    use protoactor_remote::remote_proto::{ListProcessesMatchType, ListProcessesRequest};
    let (s, r) = default_node();
    s.root().spawn_named(&echo_props(), "listed-a").unwrap();
    s.root().spawn_named(&echo_props(), "listed-b").unwrap();
    let addr = format!("http://{}", r.address());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (part, exact, regex, bad) = rt.block_on(async move {
        let c = RemotingClient::connect(addr).await.unwrap();
        let ask = |pattern: &str, t: ListProcessesMatchType| {
            let req = ListProcessesRequest {
                pattern: pattern.into(),
                r#type: t as i32,
            };
            let mut c = c.clone();
            async move { c.list_processes(req).await }
        };
        let part = ask("listed-", ListProcessesMatchType::MatchPartOfString).await;
        let exact = ask("listed-b", ListProcessesMatchType::MatchExactString).await;
        let regex = ask("^listed-[b-z]$", ListProcessesMatchType::MatchRegex).await;
        let bad = ask("(", ListProcessesMatchType::MatchRegex).await;
        (part, exact, regex, bad)
    });
    type Answer = Result<
        tonic::Response<protoactor_remote::remote_proto::ListProcessesResponse>,
        tonic::Status,
    >;
    let ids = |r: Answer| {
        r.unwrap()
            .into_inner()
            .pids
            .into_iter()
            .map(|p| p.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(part), vec!["listed-a", "listed-b"]);
    assert_eq!(ids(exact), vec!["listed-b"]);
    assert_eq!(ids(regex), vec!["listed-b"]);
    let bad = bad.unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    assert!(
        bad.message().starts_with("bad pattern: "),
        "{}",
        bad.message()
    );
    stop(&s, &r);
}

/// `GetProcessDiagnostics` (protoactor-dotnet's semantics; the Go module panics on it, so
/// this is Rust to Rust): a line about a live process, NOT_FOUND for a missing one.
#[test]
fn process_diagnostics_describe_a_process_or_say_it_is_missing() {
    use protoactor_remote::remote_proto::remoting_client::RemotingClient;
    use protoactor_remote::remote_proto::GetProcessDiagnosticsRequest;
    let (s, r) = default_node();
    s.root().spawn_named(&echo_props(), "diag").unwrap();
    let addr = format!("http://{}", r.address());
    let (found, missing) = tokio::runtime::Runtime::new().unwrap().block_on({
        let address = r.address().to_string();
        async move {
            let mut c = RemotingClient::connect(addr).await.unwrap();
            let ask = |id: &str| GetProcessDiagnosticsRequest {
                pid: Some(Pid::new(address.clone(), id).to_proto()),
            };
            let found = c.get_process_diagnostics(ask("diag")).await;
            let missing = c.get_process_diagnostics(ask("nobody")).await;
            (found, missing)
        }
    });
    assert_eq!(
        found.unwrap().into_inner().diagnostics_string,
        "actor: 0 user messages queued"
    );
    let missing = missing.unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    assert_eq!(
        missing.message(),
        format!("no process \"nobody\" on {}", r.address())
    );
    stop(&s, &r);
}

#[test]
fn remote_spawn_on_an_unreachable_node_is_a_dead_letter() {
    let (s1, r1) = node(
        RemoteConfig::local()
            .with_serialization(serialization())
            .with_retries(1, Duration::from_millis(10)),
    );
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = free.local_addr().unwrap().to_string();
    drop(free);
    let r = s1
        .runtime()
        .block_on(r1.spawn_named(&dead, "x", "echo", WAIT));
    assert_eq!(r, Err(RemoteSpawnError::DeadLetter));
    assert_eq!(
        r.unwrap_err().status_code(),
        Some(ResponseStatusCode::DeadLetter)
    );
    stop(&s1, &r1);
}

/// Two fresh nodes probe each other's wire variant (each answer travels on an endpoint that
/// is itself waiting for its probe): the answers are not held, so the first request is
/// answered long before a probe could time out (the timeout here is ten minutes).
#[test]
fn nodes_probing_each_other_answer_each_other_s_probes() {
    let config = || {
        RemoteConfig::local()
            .with_serialization(serialization())
            .with_variant_probe_timeout(Some(Duration::from_secs(600)))
    };
    let (s1, r1) = node(config());
    let (s2, r2) = node(config());
    s2.root().spawn_named(&echo_props(), "echo").unwrap();
    let reply = s1
        .root()
        .request_future(
            &Pid::new(r2.address(), "echo"),
            Echo {
                message: "probed".into(),
                sender: None,
            },
            WAIT,
        )
        .result_as::<Response>()
        .expect("answered without waiting for a probe timeout");
    assert_eq!(reply.some_value, "echo:probed");
    stop(&s1, &r1);
    stop(&s2, &r2);
}
