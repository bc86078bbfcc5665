//! Shared helpers: nodes on loopback ports, probes, and the test actors.
#![allow(dead_code)]

#[path = "../../shared/messages.rs"]
pub mod messages;

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::time::Duration;

use crate::common::messages::{Count, Echo, Response, Seq};
use protoactor::prelude::*;
use protoactor::Config;
use protoactor_remote::remote_proto::remote_message::MessageType;
use protoactor_remote::remote_proto::remoting_client::RemotingClient;
use protoactor_remote::remote_proto::{
    connect_request, ConnectRequest, RemoteMessage, ServerConnection,
};
use protoactor_remote::{PidExt, Remote, RemoteConfig, Serialization};

/// Generous upper bound for things that must happen (never a timing assertion).
pub const WAIT: Duration = Duration::from_secs(30);

/// A registry with the test messages.
pub fn serialization() -> Serialization {
    let s = Serialization::new();
    s.register::<Echo>();
    s.register::<Response>();
    s.register::<Seq>();
    s.register::<Count>();
    s
}

/// A node on a free loopback port.
pub fn node(config: RemoteConfig) -> (ActorSystem, Arc<Remote>) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
    let system = ActorSystem::with_config(Config::default().with_worker_threads(2));
    let remote = Remote::start(&system, config).expect("remote starts");
    (system, remote)
}

/// A default node on a free loopback port with the test messages.
pub fn default_node() -> (ActorSystem, Arc<Remote>) {
    node(RemoteConfig::local().with_serialization(serialization()))
}

/// Stops remote and the system.
pub fn stop(system: &ActorSystem, remote: &Remote) {
    remote.shutdown();
    system.shutdown();
}

/// Records events for the test thread.
pub struct Probe<T>(pub Sender<T>);
impl<T> Clone for Probe<T> {
    fn clone(&self) -> Self {
        Probe(self.0.clone())
    }
}
impl<T> Probe<T> {
    pub fn push(&self, v: T) {
        let _ = self.0.send(v);
    }
}
pub fn probe<T>() -> (Probe<T>, Receiver<T>) {
    let (tx, rx) = channel();
    (Probe(tx), rx)
}
pub fn next<T>(rx: &Receiver<T>) -> T {
    rx.recv_timeout(WAIT).expect("expected an event in time")
}

/// Answers `Echo` with a `Response` carrying its own PID and the request's headers.
pub fn echo_props() -> Props {
    Props::from_func(|ctx| {
        if let Some(e) = ctx.message_as::<Echo>() {
            let headers = ctx.header().map(|h| h.to_map()).unwrap_or_default();
            let r = Response {
                some_value: format!("echo:{}", e.message),
                from: Some(ctx.self_pid().to_proto()),
                headers,
                via_json: false,
            };
            ctx.respond(r);
        }
    })
}

/// Counts `Seq` messages, checks they come in order, reports `(count, in_order)` once `n`
/// arrived.
pub fn collector_props(n: i64, done: Probe<(i64, bool)>) -> Props {
    Props::from_producer(move || Collector {
        n,
        next: 0,
        in_order: true,
        done: done.clone(),
    })
}

struct Collector {
    n: i64,
    next: i64,
    in_order: bool,
    done: Probe<(i64, bool)>,
}

impl Actor for Collector {
    fn receive(&mut self, ctx: &mut Context) {
        if let Some(s) = ctx.message_as::<Seq>() {
            if s.n != self.next {
                self.in_order = false;
            }
            self.next = s.n + 1;
            if self.next == self.n {
                self.done.push((self.next, self.in_order));
            }
        }
    }
}

/// The `ConnectRequest` a protoactor node sends first on its outbound stream.
pub fn connect_request(member_id: &str) -> RemoteMessage {
    RemoteMessage {
        message_type: Some(MessageType::ConnectRequest(ConnectRequest {
            connection_type: Some(connect_request::ConnectionType::ServerConnection(
                ServerConnection {
                    member_id: member_id.into(),
                    address: "127.0.0.1:1".into(),
                    block_list: vec![],
                },
            )),
        })),
    }
}

/// A hand-written client: dials `address`, sends `ConnectRequest` and returns the request
/// side and the response stream once `ConnectResponse` came back.
pub async fn handshake(
    address: &str,
) -> (
    tokio::sync::mpsc::Sender<RemoteMessage>,
    tonic::Streaming<RemoteMessage>,
) {
    let mut client = RemotingClient::connect(format!("http://{address}"))
        .await
        .unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    tx.send(connect_request("hand-written")).await.unwrap();
    let mut inbound = client
        .receive(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let first = inbound.message().await.unwrap().unwrap();
    assert!(matches!(
        first.message_type,
        Some(MessageType::ConnectResponse(_))
    ));
    (tx, inbound)
}

/// Spawns an actor that watches `target` when it starts and reports its `Terminated`, and
/// returns once the watch has gone out: a `Touch` round trip is handled after `Started`, so
/// the `Watch` is queued on the endpoint before anything the caller sends next.
pub fn spawn_watcher(system: &ActorSystem, target: Pid) -> Receiver<(Pid, TerminatedReason)> {
    let (p, rx) = probe();
    let w = system.root().spawn(&Props::from_func(move |ctx| {
        if ctx.message_as::<Started>().is_some() {
            ctx.watch(&target);
        } else if let Some(t) = ctx.message_as::<Terminated>() {
            p.push((t.who.clone(), t.why));
        }
    }));
    touch(system, &w);
    rx
}

/// A `Touch` round trip: returns once `pid` has handled everything queued before it,
/// `Started` included.
pub fn touch(system: &ActorSystem, pid: &Pid) {
    system
        .root()
        .request_future(pid, Touch, WAIT)
        .result_as::<Touched>()
        .expect("the actor answers Touch");
}
