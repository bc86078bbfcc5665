//! The edges of what remote guarantees: graceful shutdown, a peer vanishing mid-flood,
//! frames over the transport limit, spawn timeouts, advertised addresses, batch sizes and
//! the config defaults. Peers here are either real Rust nodes or a hand-written gRPC peer
//! (`FakePeer`) that records exactly what arrived on the wire.

mod common;

use std::collections::BTreeSet;
use std::pin::Pin;
use std::sync::mpsc::Receiver;
use std::time::Duration;

use common::messages::{Echo, Response, Seq};
use common::*;
use prost::Message as _;
use protoactor::prelude::*;
use protoactor::DeadLetterEvent;
use protoactor_remote::events::{Direction, EndpointTerminated};
use protoactor_remote::remote_proto::remote_message::MessageType;
use protoactor_remote::remote_proto::remoting_server::{Remoting, RemotingServer};
use protoactor_remote::remote_proto::*;
use protoactor_remote::{
    RemoteConfig, RemoteDeliveryError, RemoteSpawnError, ResponseStatusCode, WireVariant,
};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response as GrpcResponse, Status, Streaming};

/// What the fake peer saw: the `Seq` numbers of each batch, in arrival order.
type Batches = std::sync::mpsc::Sender<Vec<i64>>;

/// The service of [`FakePeer`]: answers the handshake once `gate` opens, then records every
/// batch; after `stop_after` envelopes it stops reading (the stream stays open).
#[derive(Clone)]
struct FakeService {
    gate: watch::Receiver<bool>,
    batches: Batches,
    stop_after: usize,
}

type Out = Result<RemoteMessage, Status>;

#[tonic::async_trait]
impl Remoting for FakeService {
    type ReceiveStream = Pin<Box<dyn tokio_stream::Stream<Item = Out> + Send>>;

    async fn receive(
        &self,
        request: Request<Streaming<RemoteMessage>>,
    ) -> Result<GrpcResponse<Self::ReceiveStream>, Status> {
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::channel::<Out>(4);
        let svc = self.clone();
        tokio::spawn(async move {
            let mut gate = svc.gate.clone();
            let _ = gate.wait_for(|open| *open).await;
            let first = inbound.message().await;
            assert!(
                matches!(
                    first,
                    Ok(Some(RemoteMessage {
                        message_type: Some(MessageType::ConnectRequest(_))
                    }))
                ),
                "the writer starts with a ConnectRequest"
            );
            let hello = RemoteMessage {
                message_type: Some(MessageType::ConnectResponse(ConnectResponse {
                    member_id: "fake".into(),
                    blocked: false,
                })),
            };
            if tx.send(Ok(hello)).await.is_err() {
                return;
            }
            let mut seen = 0usize;
            while seen < svc.stop_after {
                let Ok(Some(m)) = inbound.message().await else {
                    return;
                };
                let Some(MessageType::MessageBatch(b)) = m.message_type else {
                    continue;
                };
                // Not a protoactor node: it cannot answer the wire-variant probe.
                if protoactor_remote::codec::is_variant_probe(&b) {
                    continue;
                }
                let ns: Vec<i64> = b
                    .envelopes
                    .iter()
                    .map(|e| {
                        let seq = usize::try_from(e.type_id)
                            .ok()
                            .and_then(|i| b.type_names.get(i))
                            .is_some_and(|t| t == "messages.Seq");
                        if seq {
                            Seq::decode(e.message_data.clone()).map_or(-1, |s| s.n)
                        } else {
                            -1
                        }
                    })
                    .collect();
                seen += ns.len();
                let _ = svc.batches.send(ns);
            }
            // Stalled: keeps the stream (and `tx`) open without reading any more.
            std::future::pending::<()>().await;
            drop(tx);
        });
        Ok(GrpcResponse::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn list_processes(
        &self,
        _request: Request<ListProcessesRequest>,
    ) -> Result<GrpcResponse<ListProcessesResponse>, Status> {
        Err(Status::unimplemented("fake peer"))
    }

    async fn get_process_diagnostics(
        &self,
        _request: Request<GetProcessDiagnosticsRequest>,
    ) -> Result<GrpcResponse<GetProcessDiagnosticsResponse>, Status> {
        Err(Status::unimplemented("fake peer"))
    }
}

/// A hand-written remote peer on its own runtime; `kill` drops its sockets at once, as a
/// process that dies would.
struct FakePeer {
    rt: tokio::runtime::Runtime,
    address: String,
    gate: watch::Sender<bool>,
    batches: Receiver<Vec<i64>>,
}

impl FakePeer {
    fn start(gate_open: bool, stop_after: usize) -> FakePeer {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let (gate, gate_rx) = watch::channel(gate_open);
        let (btx, batches) = std::sync::mpsc::channel();
        let svc = FakeService {
            gate: gate_rx,
            batches: btx,
            stop_after,
        };
        rt.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let _ = tonic::transport::Server::builder()
                .add_service(RemotingServer::new(svc))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
                .await;
        });
        FakePeer {
            rt,
            address,
            gate,
            batches,
        }
    }

    fn open_gate(&self) {
        self.gate.send_replace(true);
    }

    /// Batches (as `Seq` numbers) until `total` envelopes arrived.
    fn batches_until(&self, total: usize) -> Vec<Vec<i64>> {
        let mut out = Vec::new();
        let mut n = 0;
        while n < total {
            let b = next(&self.batches);
            n += b.len();
            out.push(b);
        }
        out
    }

    fn kill(self) {
        self.rt.shutdown_background();
    }
}

fn seq(n: i64, tag: &str) -> Seq {
    Seq {
        n,
        tag: tag.to_string(),
    }
}

/// Gap 1: a graceful shutdown writes `DisconnectRequest` on every inbound stream (a plain
/// end of stream would not be enough for protoactor-go, which ignores EOF).
#[test]
fn graceful_shutdown_sends_disconnect_request_on_inbound_streams() {
    let (s2, r2) = default_node();
    let addr = r2.address().to_string();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (tx, mut inbound) = rt.block_on(handshake(&addr));
    // `shutdown` waits for the peers to close their streams: run it beside the client.
    let r2c = r2.clone();
    let stopper = std::thread::spawn(move || r2c.shutdown());
    let got = rt.block_on(async {
        tokio::time::timeout(WAIT, inbound.message())
            .await
            .expect("something arrives on the stream")
    });
    match got {
        Ok(Some(RemoteMessage {
            message_type: Some(MessageType::DisconnectRequest(_)),
        })) => {}
        other => panic!("expected a DisconnectRequest, got {other:?}"),
    }
    drop(tx);
    stopper.join().unwrap();
    s2.shutdown();
}

#[derive(Debug, PartialEq)]
enum Ev {
    Dead(i64),
    Error(String),
    Terminated,
}

/// A peer that stalls after `received` messages and then vanishes while a flood of `n`
/// messages with `tag_len`-byte tags is queued. Every message is accounted for: the peer got
/// a prefix, a bounded window after it was in transit (handed to gRPC/HTTP/2, lost without
/// notice: the protocol has no acknowledgements), and everything after that window went to
/// dead letters.
fn flood_a_vanishing_peer(config: RemoteConfig, n: i64, tag_len: usize, received: usize) {
    let batch = config.batch_size as i64;
    let tag = "t".repeat(tag_len);
    let peer = FakePeer::start(true, received);
    let (s1, r1) = node(
        config
            .with_serialization(serialization())
            .with_retries(1, Duration::from_millis(10))
            // The fake peer does not answer probes: no need to wait for one.
            .with_variant_probe_timeout(None),
    );
    let (p, events) = probe::<Ev>();
    let (p2, p3) = (p.clone(), p.clone());
    let fake = peer.address.clone();
    let _ = s1
        .event_stream()
        .subscribe_to::<DeadLetterEvent, _>(move |e| {
            if let Some(s) = e.message.downcast_ref::<Seq>() {
                p.push(Ev::Dead(s.n));
            }
        });
    let _ = s1
        .event_stream()
        .subscribe_to::<RemoteDeliveryError, _>(move |e| p2.push(Ev::Error(e.error.clone())));
    let _ = s1
        .event_stream()
        .subscribe_to::<EndpointTerminated, _>(move |e| {
            if e.address == fake {
                p3.push(Ev::Terminated)
            }
        });
    let target = Pid::new(peer.address.as_str(), "sink");
    for i in 0..n {
        s1.root().send(&target, seq(i, &tag));
    }
    let got: Vec<i64> = peer.batches_until(received).concat();
    peer.kill();

    let mut dead = Vec::new();
    loop {
        match next(&events) {
            Ev::Dead(i) => dead.push(i),
            Ev::Error(e) => panic!("unexpected delivery error: {e}"),
            Ev::Terminated => break,
        }
    }
    let r = got.len() as i64;
    assert_eq!(got, (0..r).collect::<Vec<_>>(), "a prefix, in order");
    let dead_set: BTreeSet<i64> = dead.iter().copied().collect();
    assert_eq!(dead_set.len(), dead.len(), "no message dead-lettered twice");
    assert!(!dead.is_empty(), "the queued backlog is reported");
    let first_dead = *dead_set.first().unwrap();
    assert_eq!(
        dead_set,
        (first_dead..n).collect::<BTreeSet<_>>(),
        "everything after the in-transit window is reported"
    );
    let in_transit = first_dead - r;
    // In transit at most: the batch being written and the 2 queued ahead of the socket, plus
    // what HTTP/2 flow control let through (hyper's 1 MiB stream window, tonic's buffers;
    // each message takes more than its tag's bytes).
    let bound = 3 * batch + ((1024 + 64) * 1024 / tag.len()) as i64;
    eprintln!(
        "received {r}, in transit {in_transit} (bound {bound}), dead-lettered {}",
        dead.len()
    );
    assert!(
        (0..=bound).contains(&in_transit),
        "in transit {in_transit} exceeds {bound}"
    );
    stop(&s1, &r1);
}

/// Gap 2, small messages: batches are cut by count (100).
#[test]
fn a_peer_vanishing_mid_flood_loses_only_what_was_in_transit() {
    flood_a_vanishing_peer(
        RemoteConfig::local().with_batch_size(100),
        50_000,
        100,
        2_000,
    );
}

/// Gap 2, large messages: batches are cut by size (half of 64 KiB, so 3 messages) in the
/// middle of what the writer took from its queue; those taken but not sent are reported too.
#[test]
fn a_peer_vanishing_mid_flood_of_large_messages_loses_only_what_was_in_transit() {
    flood_a_vanishing_peer(
        RemoteConfig::local()
            .with_batch_size(100)
            .with_max_message_size(64 * 1024),
        2_000,
        10 * 1024,
        200,
    );
}

/// Gap 3: a frame over the receiver's gRPC decode limit (`max_message_size * 4`) cannot be
/// skipped (tonic fails the stream), so the stream ends: the receiver reports it with a
/// `RemoteDeliveryError`, the sender sees `EndpointTerminated`, and the next send reconnects.
#[test]
fn a_frame_over_the_transport_limit_ends_the_stream_and_the_next_send_reconnects() {
    let (s1, r1) = default_node();
    // Decode limit 4 × 16 KiB = 64 KiB.
    let (s2, r2) = node(
        RemoteConfig::local()
            .with_serialization(serialization())
            .with_max_message_size(16 * 1024),
    );
    s2.root().spawn_named(&echo_props(), "echo").unwrap();
    let target = Pid::new(r2.address(), "echo");
    let (p, errors) = probe::<(Direction, String)>();
    let _ = s2
        .event_stream()
        .subscribe_to::<RemoteDeliveryError, _>(move |e| p.push((e.direction, e.error.clone())));
    let (t, terminated) = probe::<String>();
    let _ = s1
        .event_stream()
        .subscribe_to::<EndpointTerminated, _>(move |e| t.push(e.address.clone()));
    let ask = |m: &str| {
        s1.root()
            .request_future(
                &target,
                Echo {
                    message: m.into(),
                    sender: None,
                },
                WAIT,
            )
            .result_as::<Response>()
            .map(|r| r.some_value)
    };
    assert_eq!(ask("before").unwrap(), "echo:before");
    // Node 1's own limit is 4 MiB, so it writes the 100 KiB message.
    s1.root().send(
        &target,
        Echo {
            message: "x".repeat(100 * 1024),
            sender: None,
        },
    );
    let (direction, error) = next(&errors);
    assert_eq!(direction, Direction::Inbound);
    assert!(error.contains("too large"), "{error}");
    assert_eq!(next(&terminated), r2.address());
    assert_eq!(ask("after").unwrap(), "echo:after");
    stop(&s1, &r1);
    stop(&s2, &r2);
}

/// A gRPC codec for raw frames, to send bytes that are not a `RemoteMessage` at all.
#[derive(Clone, Copy)]
struct RawCodec;

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;
    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), Status> {
        bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;
    fn decode(&mut self, src: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let mut v = vec![0; bytes::Buf::remaining(src)];
        bytes::Buf::copy_to_slice(src, &mut v);
        Ok(Some(v))
    }
}

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> RawCodec {
        *self
    }
    fn decoder(&mut self) -> RawCodec {
        *self
    }
}

/// A gRPC frame that is not protobuf cannot be skipped either: the stream ends with a
/// `RemoteDeliveryError`, and the node keeps serving other streams.
#[test]
fn a_frame_that_is_not_protobuf_ends_the_stream_with_an_error_event() {
    let (s2, r2) = default_node();
    s2.root().spawn_named(&echo_props(), "echo").unwrap();
    let (p, errors) = probe::<(Direction, String)>();
    let _ = s2
        .event_stream()
        .subscribe_to::<RemoteDeliveryError, _>(move |e| p.push((e.direction, e.error.clone())));
    let addr = r2.address().to_string();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ended = rt.block_on(async move {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut grpc = tonic::client::Grpc::new(channel);
        grpc.ready().await.unwrap();
        let (tx, rx) = mpsc::channel::<Vec<u8>>(4);
        let hello = connect_request("raw");
        tx.send(hello.encode_to_vec()).await.unwrap();
        let mut inbound = grpc
            .streaming(
                Request::new(ReceiverStream::new(rx)),
                tonic::codegen::http::uri::PathAndQuery::from_static("/remote.Remoting/Receive"),
                RawCodec,
            )
            .await
            .unwrap()
            .into_inner();
        let first = inbound.message().await.unwrap().unwrap();
        assert!(matches!(
            RemoteMessage::decode(first.as_slice())
                .unwrap()
                .message_type,
            Some(MessageType::ConnectResponse(_))
        ));
        // An unfinished varint tag: not a protobuf message.
        tx.send(vec![0xff, 0xff, 0xff]).await.unwrap();
        let end = tokio::time::timeout(WAIT, inbound.message())
            .await
            .expect("the stream ends");
        drop(tx);
        end
    });
    assert!(!matches!(ended, Ok(Some(_))), "{ended:?}");
    let (direction, error) = next(&errors);
    assert_eq!(direction, Direction::Inbound);
    assert!(error.contains("inbound stream ended"), "{error}");
    assert!(error.contains("decode"), "{error}");
    // Other streams are unaffected.
    let (s1, r1) = default_node();
    let reply = s1
        .root()
        .request_future(&Pid::new(r2.address(), "echo"), Echo::default(), WAIT)
        .result_as::<Response>()
        .unwrap();
    assert_eq!(reply.some_value, "echo:");
    stop(&s1, &r1);
    stop(&s2, &r2);
}

/// Gap 4: an activator that does not answer within the timeout gives status `Timeout`.
#[test]
fn remote_spawn_without_an_answer_in_time_is_a_timeout() {
    // A peer that accepts the connection and reads everything but never answers.
    let peer = FakePeer::start(true, usize::MAX);
    let (s1, r1) = default_node();
    let r = s1.runtime().block_on(r1.spawn_named(
        &peer.address,
        "late",
        "echo",
        Duration::from_millis(500),
    ));
    assert_eq!(r, Err(RemoteSpawnError::Timeout));
    assert_eq!(
        r.unwrap_err().status_code(),
        Some(ResponseStatusCode::Timeout)
    );
    // The request did reach the peer: the timeout is the activator's silence.
    let b = next(&peer.batches);
    assert_eq!(b, vec![-1], "one ActorPidRequest");
    stop(&s1, &r1);
    peer.kill();
}

/// Gap 5: a node bound to `0.0.0.0` advertising `127.0.0.1:P` is reachable at the advertised
/// address, both for requests to it and for replies to its requests.
#[test]
fn a_wildcard_bind_with_an_advertised_address_round_trips_both_ways() {
    let port = {
        let l = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let advertised = format!("127.0.0.1:{port}");
    let (s1, r1) = node(
        RemoteConfig::new("0.0.0.0", port)
            .with_advertised_address(advertised.as_str())
            .with_serialization(serialization()),
    );
    assert!(r1.bound_address().ip().is_unspecified());
    assert_eq!(r1.address(), advertised);
    let (s2, r2) = default_node();
    s1.root().spawn_named(&echo_props(), "echo1").unwrap();
    s2.root().spawn_named(&echo_props(), "echo2").unwrap();
    let ask = |system: &ActorSystem, to: Pid| {
        system
            .root()
            .request_future(
                &to,
                Echo {
                    message: "hi".into(),
                    sender: None,
                },
                WAIT,
            )
            .result_as::<Response>()
            .expect("a reply")
    };
    // Node 1 asks: node 2 replies to the advertised address.
    let r = ask(&s1, Pid::new(r2.address(), "echo2"));
    assert_eq!(r.from.unwrap().to_pid(), Pid::new(r2.address(), "echo2"));
    // Node 2 asks node 1 at its advertised address.
    let r = ask(&s2, Pid::new(advertised.as_str(), "echo1"));
    assert_eq!(
        r.from.unwrap().to_pid(),
        Pid::new(advertised.as_str(), "echo1")
    );
    stop(&s1, &r1);
    stop(&s2, &r2);
}

/// Sends `n` numbered messages to a fake peer that answers the handshake only after all of
/// them are queued (so the writer has a full backlog), and returns the batches it received.
fn batches_for(config: RemoteConfig, n: i64) -> Vec<Vec<i64>> {
    let peer = FakePeer::start(false, usize::MAX);
    let (s1, r1) = node(
        config
            .with_serialization(serialization())
            .with_variant_probe_timeout(None),
    );
    let target = Pid::new(peer.address.as_str(), "sink");
    for i in 0..n {
        s1.root().send(&target, seq(i, ""));
    }
    peer.open_gate();
    let batches = peer.batches_until(n as usize);
    stop(&s1, &r1);
    peer.kill();
    assert_eq!(batches.concat(), (0..n).collect::<Vec<_>>());
    batches
}

/// Gap 6: no batch holds more than the configured batch size.
#[test]
fn batches_hold_at_most_the_batch_size() {
    let small = batches_for(RemoteConfig::local().with_batch_size(10), 1_000);
    assert!(small.iter().all(|b| b.len() <= 10), "{small:?}");
    assert_eq!(small.iter().map(Vec::len).max(), Some(10));
    let default = batches_for(RemoteConfig::local(), 2_500);
    let sizes: Vec<usize> = default.iter().map(Vec::len).collect();
    assert!(sizes.iter().all(|&s| s <= 1000), "{sizes:?}");
    assert_eq!(sizes.iter().max(), Some(&1000), "{sizes:?}");
    for variant in [WireVariant::Current, WireVariant::Legacy2024] {
        let b = batches_for(
            RemoteConfig::local()
                .with_batch_size(7)
                .with_wire_variant(variant),
            50,
        );
        assert_eq!(b.iter().map(Vec::len).max(), Some(7));
    }
}

/// Gap 7: the defaults are protoactor-go's.
#[test]
fn config_defaults_are_protoactor_go_s() {
    let c = RemoteConfig::new("10.0.0.1", 8090);
    assert_eq!(c.host, "10.0.0.1");
    assert_eq!(c.port, 8090);
    assert_eq!(c.advertised_address, None);
    assert_eq!(c.batch_size, 1000);
    assert_eq!(c.queue_size, 1_000_000);
    assert_eq!(c.max_retry_count, 5);
    assert_eq!(c.retry_interval, Duration::from_secs(2));
    assert_eq!(c.max_message_size, 4 * 1024 * 1024);
    assert_eq!(c.wire_variant, WireVariant::Current);
    // Ours: how long a new endpoint waits for the answer to its wire-variant probe.
    assert_eq!(c.variant_probe_timeout, Some(Duration::from_secs(5)));
    // Ours (protoactor-go does not drain): how long shutdown sends what is queued.
    assert_eq!(c.drain_timeout, Duration::from_secs(5));
    assert!(c.kinds.is_empty());
    #[cfg(feature = "tls")]
    assert!(c.tls.is_none());
    let l = RemoteConfig::local();
    assert_eq!((l.host.as_str(), l.port), ("127.0.0.1", 0));
    assert_eq!(l.batch_size, 1000);
    // The builders refuse values that would stall the writer.
    let z = RemoteConfig::local()
        .with_batch_size(0)
        .with_queue_size(0)
        .with_retries(0, Duration::ZERO)
        .with_max_message_size(1);
    assert_eq!(z.batch_size, 1);
    assert_eq!(z.queue_size, 1);
    assert_eq!(z.max_retry_count, 1);
    assert_eq!(z.max_message_size, 1024);
}

/// A peer that never answers the wire-variant probe (it is no protoactor node and cannot
/// dial back) gets every message sent while the probe was out, in order, once
/// `variant_probe_timeout` has passed: they are held, not lost.
#[test]
fn messages_held_for_an_unanswered_probe_are_sent_after_its_timeout() {
    let peer = FakePeer::start(true, usize::MAX);
    let (s1, r1) = node(
        RemoteConfig::local()
            .with_serialization(serialization())
            .with_variant_probe_timeout(Some(Duration::from_millis(300))),
    );
    let target = Pid::new(peer.address.as_str(), "sink");
    for i in 0..100 {
        s1.root().send(&target, seq(i, ""));
    }
    let batches = peer.batches_until(100);
    assert_eq!(batches.concat(), (0..100).collect::<Vec<_>>());
    stop(&s1, &r1);
    peer.kill();
}
