//! Endpoints: one writer task per remote address that dials, handshakes and streams
//! batches; the remote process that PIDs of other nodes resolve to; remote watch state.
//! The node-wide state they share is in [`node`](crate::node).
//!
//! Over 700 lines: the writer task, the remote process and the remote watches share one
//! endpoint state; what the node shares is already in `node`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use dashmap::DashMap;
use parking_lot::Mutex;
use protoactor::runtime::{Process, SystemMessage};
use protoactor::{DeadLetterResponse, MessageEnvelope, Pid, Terminated, TerminatedReason, Touch};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_stream::wrappers::ReceiverStream;

use crate::codec::WireVariant;
use crate::codec::{BatchBuilder, Outbound};
use crate::events::{Direction, EndpointConnected, EndpointTerminated, RemoteDeliveryError};
use crate::node::Node;
use crate::remote_proto::remote_message::MessageType;
use crate::remote_proto::remoting_client::RemotingClient;
use crate::remote_proto::{
    connect_request, ConnectRequest, MessageBatch, RemoteMessage, ServerConnection,
};
use crate::system_messages;

const CONNECTING: u8 = 0;
const CONNECTED: u8 = 1;
const TERMINATED: u8 = 2;

/// True if `address` can be dialled: `host:port` with a non-empty host and a non-zero port.
/// Anything else (an empty address, a URL, a missing port) is refused at once instead of
/// being retried: messages to it go to dead letters.
pub(crate) fn is_dialable(address: &str) -> bool {
    let Some((host, port)) = address.rsplit_once(':') else {
        return false;
    };
    let host_ok = !host.is_empty()
        && !host
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "/?#@\\".contains(c));
    host_ok && port.parse::<u16>().is_ok_and(|p| p != 0)
}

/// The connection state and send queue for one remote address.
pub(crate) struct Endpoint {
    address: String,
    tx: mpsc::UnboundedSender<Outbound>,
    state: AtomicU8,
    /// Messages queued and not yet taken by the writer (bounded by `queue_size`).
    queued: AtomicUsize,
    /// Run, drain (send what is queued, then close) or close now; set by shutdown.
    control: watch::Sender<Control>,
    /// True once the writer has finished (the endpoint is terminated).
    done: watch::Sender<bool>,
    /// watcher (local) → watchees (at this address).
    watches: Mutex<HashMap<Pid, HashSet<Pid>>>,
}

/// What shutdown asks of an endpoint's writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Control {
    Run,
    Drain,
    Close,
}

impl Endpoint {
    fn is_terminated(&self) -> bool {
        self.state.load(Ordering::Acquire) == TERMINATED
    }

    /// Resolves once the endpoint must close at once.
    async fn close_requested(&self) {
        let mut rx = self.control.subscribe();
        let _ = rx.wait_for(|c| *c == Control::Close).await;
    }

    /// Resolves once the endpoint must drain (or close).
    async fn drain_requested(&self) {
        let mut rx = self.control.subscribe();
        let _ = rx.wait_for(|c| *c != Control::Run).await;
    }

    fn draining(&self) -> bool {
        *self.control.borrow() != Control::Run
    }
}

/// The endpoints of one node, by remote address, each with the one process its PIDs
/// resolve to (shared: resolving a PID seen for the first time, as each request's reply-to
/// future is, allocates nothing here).
pub(crate) struct Endpoints {
    pub(crate) node: Arc<Node>,
    /// Keyed by peer-supplied addresses: hashed with a per-process seed.
    map: DashMap<String, Arc<RemoteProcess>, foldhash::fast::RandomState>,
    me: Weak<Endpoints>,
}

impl Endpoints {
    /// No endpoints yet; each is created on first use.
    pub(crate) fn new(node: Arc<Node>) -> Arc<Self> {
        Arc::new_cyclic(|me| Endpoints {
            node,
            map: DashMap::default(),
            me: me.clone(),
        })
    }

    /// The process of the live endpoint for `address`, the endpoint created (and dialling)
    /// if there is none.
    pub(crate) fn get_or_connect(&self, address: &str) -> Option<Arc<RemoteProcess>> {
        if self.node.shutting_down.load(Ordering::Acquire) {
            return None;
        }
        // Only dialable addresses are ever in the map: a hit needs no check.
        if let Some(e) = self.map.get(address) {
            if !e.endpoint.is_terminated() {
                return Some(e.clone());
            }
        }
        if !is_dialable(address) {
            tracing::debug!(%address, "not a dialable host:port; dead-lettering");
            return None;
        }
        let mut created = None;
        let new = |created: &mut Option<_>| {
            let (endpoint, rx) = new_endpoint(address);
            *created = Some(rx);
            Arc::new(RemoteProcess {
                node: Arc::downgrade(&self.node),
                endpoint,
            })
        };
        let process = self
            .map
            .entry(address.to_string())
            .and_modify(|e| {
                if e.endpoint.is_terminated() {
                    *e = new(&mut created);
                }
            })
            .or_insert_with(|| new(&mut created))
            .clone();
        if let Some(rx) = created {
            let me = self.me.upgrade()?;
            self.node
                .system
                .runtime()
                .spawn(run_writer(me, process.endpoint.clone(), rx));
        }
        Some(process)
    }

    /// A `Terminated` came from a peer for a local watcher.
    pub(crate) fn remote_terminated(&self, watcher: &Pid, t: Terminated) {
        if let Some(e) = self.map.get(t.who.address()) {
            let mut w = e.endpoint.watches.lock();
            if let Some(set) = w.get_mut(watcher) {
                set.remove(&t.who);
                if set.is_empty() {
                    w.remove(watcher);
                }
            }
        }
        watcher.send_system_message(&self.node.system, SystemMessage::Terminated(t));
    }

    /// Graceful shutdown of the outbound side: every endpoint sends what is queued (waiting
    /// for its connection if it is still dialling) and closes its stream once the peer has
    /// read it all; after `limit` the rest are closed at once (what they still hold goes to
    /// dead letters).
    pub(crate) async fn drain_all(&self, limit: Duration) {
        let endpoints: Vec<Arc<Endpoint>> = self.map.iter().map(|e| e.endpoint.clone()).collect();
        for e in &endpoints {
            e.control.send_replace(Control::Drain);
        }
        let all_done = async {
            for e in &endpoints {
                let mut done = e.done.subscribe();
                let _ = done.wait_for(|d| *d).await;
            }
        };
        if tokio::time::timeout(limit, all_done).await.is_err() {
            tracing::warn!(
                ?limit,
                "remote shutdown: endpoints not drained in time are closed"
            );
        }
        for e in self.map.iter() {
            e.endpoint.control.send_replace(Control::Close);
        }
        for e in &endpoints {
            e.control.send_replace(Control::Close);
        }
    }
}

fn new_endpoint(address: &str) -> (Arc<Endpoint>, mpsc::UnboundedReceiver<Outbound>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (
        Arc::new(Endpoint {
            address: address.to_string(),
            tx,
            state: AtomicU8::new(CONNECTING),
            queued: AtomicUsize::new(0),
            control: watch::Sender::new(Control::Run),
            done: watch::Sender::new(false),
            watches: Mutex::new(HashMap::new()),
        }),
        rx,
    )
}

/// The TLS settings this node dials `address` with: trusts `ca_pem`, expects the domain
/// name (default: the address's host), and with mutual TLS presents this node's certificate.
#[cfg(feature = "tls")]
pub(crate) fn client_tls(
    tls: &crate::config::TlsConfig,
    address: &str,
) -> tonic::transport::ClientTlsConfig {
    let domain = tls.domain_name.clone().unwrap_or_else(|| {
        address
            .rsplit_once(':')
            .map_or(address, |(h, _)| h)
            .trim_matches(|c| c == '[' || c == ']')
            .to_string()
    });
    let client = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(&tls.ca_pem))
        .domain_name(domain);
    if tls.mutual {
        client.identity(tonic::transport::Identity::from_pem(
            &tls.cert_pem,
            &tls.key_pem,
        ))
    } else {
        client
    }
}

type Stream = (mpsc::Sender<RemoteMessage>, tonic::Streaming<RemoteMessage>);

async fn connect_once(node: &Node, address: &str) -> Result<Stream, String> {
    let scheme = if node.config.uses_tls() {
        "https"
    } else {
        "http"
    };
    #[cfg_attr(not(feature = "tls"), allow(unused_mut))] // only TLS changes it
    let mut endpoint = tonic::transport::Endpoint::from_shared(format!("{scheme}://{address}"))
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true);
    #[cfg(feature = "tls")]
    if let Some(tls) = &node.config.tls {
        endpoint = endpoint
            .tls_config(client_tls(tls, address))
            .map_err(|e| e.to_string())?;
    }
    let channel = endpoint.connect().await.map_err(|e| e.to_string())?;
    let max = node.config.max_message_size.saturating_mul(4);
    let mut client = RemotingClient::new(channel)
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
    let (tx, rx) = mpsc::channel(2);
    let hello = RemoteMessage {
        message_type: Some(MessageType::ConnectRequest(ConnectRequest {
            connection_type: Some(connect_request::ConnectionType::ServerConnection(
                ServerConnection {
                    member_id: node.system.id().to_string(),
                    address: node.address.to_string(),
                    block_list: Vec::new(),
                },
            )),
        })),
    };
    tx.send(hello).await.map_err(|e| e.to_string())?;
    let handshake = async {
        let mut inbound = client
            .receive(ReceiverStream::new(rx))
            .await
            .map_err(|e| e.to_string())?
            .into_inner();
        match inbound.message().await {
            Ok(Some(RemoteMessage {
                message_type: Some(MessageType::ConnectResponse(r)),
            })) => {
                if r.blocked {
                    tracing::warn!(%address, "the peer reports this node as blocked");
                }
                Ok(inbound)
            }
            Ok(_) => Err("the peer did not answer with a ConnectResponse".to_string()),
            Err(e) => Err(e.to_string()),
        }
    };
    match tokio::time::timeout(Duration::from_secs(10), handshake).await {
        Ok(Ok(inbound)) => Ok((tx, inbound)),
        Ok(Err(e)) => Err(e),
        Err(_) => Err("handshake timed out".to_string()),
    }
}

/// How the peer ended our stream, as the writer's stream watcher saw it.
#[derive(Debug)]
enum StreamEnd {
    /// A plain end of stream: the peer has read everything we sent before our own end.
    Eof,
    /// The peer sent something (in practice a `DisconnectRequest`).
    Disconnect,
    /// An error status: a transport failure, or a peer that refused a frame.
    Error(tonic::Status),
}

/// Why a write loop ended.
enum WriteEnd {
    /// Shutdown closed the endpoint (or its drain time ran out).
    Closed,
    /// Shutdown drained the endpoint: everything queued was sent and read by the peer.
    Drained,
    /// The peer ended the stream.
    Stream(StreamEnd),
}

/// True for the status a grpc-go peer ends a stream with when a frame does not unmarshal
/// (as protoactor-go 2024 does for a batch in the current wire variant); also tonic's.
fn is_decode_error(status: &tonic::Status) -> bool {
    let msg = status.message().to_ascii_lowercase();
    matches!(status.code(), tonic::Code::Internal | tonic::Code::Unknown)
        && ["unmarshal", "decode", "deserializ", "parse"]
            .iter()
            .any(|w| msg.contains(w))
}

/// Batches sent while the peer's wire variant is unconfirmed, kept to be resent in the
/// other variant if the peer refuses them (bounded; beyond the bounds nothing is kept).
#[derive(Default)]
struct Unconfirmed {
    batches: Vec<MessageBatch>,
    messages: usize,
    bytes: usize,
    /// When the copies are dropped: a refusal comes back within a round trip of the first
    /// batch, so a stream that lived this long accepted it.
    until: Option<tokio::time::Instant>,
}

impl Unconfirmed {
    const MAX_MESSAGES: usize = 10_000;
    const WINDOW: Duration = Duration::from_secs(5);

    /// Keeps `batch` (a copy of one handed to the stream); false once over the bounds (then
    /// stop keeping).
    fn keep(&mut self, batch: MessageBatch, max_bytes: usize) -> bool {
        self.messages += batch.envelopes.len();
        self.bytes += batch
            .envelopes
            .iter()
            .map(|e| e.message_data.len())
            .sum::<usize>();
        if self.messages > Self::MAX_MESSAGES || self.bytes > max_bytes {
            return false;
        }
        self.until
            .get_or_insert_with(|| tokio::time::Instant::now() + Self::WINDOW);
        self.batches.push(batch);
        true
    }
}

async fn connect(node: &Node, ep: &Endpoint) -> Option<Stream> {
    for attempt in 0..node.config.max_retry_count {
        // Bounded as a whole: a peer that accepts TCP but never speaks HTTP/2 must not hang us.
        let attempt_result = tokio::select! {
            biased;
            _ = ep.close_requested() => return None,
            r = tokio::time::timeout(Duration::from_secs(15), connect_once(node, &ep.address)) =>
                r.unwrap_or_else(|_| Err("connection attempt timed out".to_string())),
        };
        match attempt_result {
            Ok(s) => return Some(s),
            Err(e) => {
                tracing::info!(address = %ep.address, attempt, error = %e, "remote connect failed");
                // A shutdown drain gives a peer that cannot be reached one more attempt, not
                // every retry: a dead peer must not hold the drain until its time runs out
                // (what is queued for it goes to dead letters).
                if ep.draining() {
                    return None;
                }
                if attempt + 1 < node.config.max_retry_count {
                    tokio::select! {
                        _ = tokio::time::sleep(node.config.retry_interval) => {}
                        _ = ep.drain_requested() => {}
                        _ = ep.close_requested() => return None,
                    }
                }
            }
        }
    }
    None
}

async fn run_writer(
    endpoints: Arc<Endpoints>,
    ep: Arc<Endpoint>,
    rx: mpsc::UnboundedReceiver<Outbound>,
) {
    let node = &*endpoints.node;
    let mut queue = Queue {
        rx,
        held: Vec::new(),
    };
    let learned = node.learned_variant(&ep.address);
    let mut variant = learned.unwrap_or(node.config.wire_variant);
    // A peer of unknown variant is probed once connected; only if it does not answer is its
    // variant a guess, kept unconfirmed until it is seen writing or accepts a first batch.
    let mut must_probe = learned.is_none();
    let mut unconfirmed = None;
    let mut switched = false;
    let mut replay: Vec<MessageBatch> = Vec::new();
    // Registered while the writer runs, so that a late answer still teaches the variant.
    let mut probe: Option<ProbeGuard> = None;
    while let Some((tx, mut inbound)) = connect(node, &ep).await {
        ep.state.store(CONNECTED, Ordering::Release);
        node.system.event_stream().publish(&EndpointConnected {
            address: ep.address.clone(),
        });
        // The peer never writes data on this stream: anything it sends (a DisconnectRequest),
        // an error or the end of the stream means the endpoint is gone.
        let (end_tx, mut end_rx) = oneshot::channel();
        let watcher = tokio::spawn(async move {
            let end = match inbound.message().await {
                Ok(None) => StreamEnd::Eof,
                Ok(Some(_)) => StreamEnd::Disconnect,
                Err(status) => StreamEnd::Error(status),
            };
            let _ = end_tx.send(end);
        });
        if must_probe {
            must_probe = false;
            let io = ProbeIo {
                tx: &tx,
                end: &mut end_rx,
                queue: &mut queue,
            };
            match probe_variant(&endpoints.node, &ep, io, &mut probe).await {
                Ok(Some(v)) => variant = v,
                Ok(None) => match node.learned_variant(&ep.address) {
                    Some(v) => variant = v,
                    None => unconfirmed = Some(Unconfirmed::default()),
                },
                Err(end) => {
                    watcher.abort();
                    if let WriteEnd::Stream(e) = &end {
                        tracing::debug!(address = %ep.address, end = ?e, "endpoint stream ended while probing");
                    }
                    break;
                }
            }
        }
        let mut replayed = true;
        for batch in replay.drain(..) {
            let msg = RemoteMessage {
                message_type: Some(MessageType::MessageBatch(batch)),
            };
            replayed &= tx.send(msg).await.is_ok();
        }
        let end = if replayed {
            write_loop(
                node,
                &ep,
                &mut queue,
                tx,
                &mut end_rx,
                variant,
                &mut unconfirmed,
            )
            .await
        } else {
            WriteEnd::Stream(end_rx.await.unwrap_or(StreamEnd::Eof))
        };
        watcher.abort();
        tracing::debug!(address = %ep.address, end = ?match &end {
            WriteEnd::Closed => "closed", WriteEnd::Drained => "drained", WriteEnd::Stream(_) => "stream ended",
        }, "endpoint stream ended");
        // A peer that cannot decode our first batches speaks the other wire variant: say so,
        // and resend them in its variant on a new stream (once).
        if let WriteEnd::Stream(StreamEnd::Error(status)) = &end {
            let kept = unconfirmed.take().map(|u| u.batches).unwrap_or_default();
            if !switched && !kept.is_empty() && is_decode_error(status) && !ep.draining() {
                let other = match variant {
                    WireVariant::Current => WireVariant::Legacy2024,
                    WireVariant::Legacy2024 => WireVariant::Current,
                };
                tracing::warn!(
                    address = %ep.address,
                    refused = ?variant,
                    using = ?other,
                    error = %status.message(),
                    "the peer could not decode our batches: it speaks the other wire variant; resending {} batches in it",
                    kept.len()
                );
                node.learn_variant(&ep.address, other);
                variant = other;
                switched = true;
                replay = kept
                    .into_iter()
                    .map(|mut b| {
                        crate::codec::convert_targets(&mut b, other, &ep.address);
                        b
                    })
                    .collect();
                ep.state.store(CONNECTING, Ordering::Release);
                continue;
            }
        }
        break;
    }
    drop(probe);
    for m in queue.held {
        undeliverable(node, m);
    }
    terminate(&endpoints, &ep, queue.rx);
}

/// The process a wire-variant probe answers to: a `Touch` forwarded back means the peer read
/// the probe's target as an `actor.PID` (2024 variant), a `DeadLetterResponse` means it read
/// it as an actor id (current variant). See [`variant_probe`](crate::codec::variant_probe).
struct VariantProbe {
    node: Weak<Node>,
    address: String,
    verdict: Mutex<Option<oneshot::Sender<WireVariant>>>,
}

impl Process for VariantProbe {
    fn send_user_message(&self, _pid: &Pid, envelope: MessageEnvelope) {
        let v = if envelope.message().is::<Touch>() {
            WireVariant::Legacy2024
        } else if envelope.message().is::<DeadLetterResponse>() {
            WireVariant::Current
        } else {
            return;
        };
        if let Some(node) = self.node.upgrade() {
            node.learn_variant(&self.address, v);
        }
        if let Some(tx) = self.verdict.lock().take() {
            let _ = tx.send(v);
        }
    }

    fn send_system_message(&self, _pid: &Pid, _message: SystemMessage) {}
}

/// Unregisters a probe's process when dropped.
struct ProbeGuard {
    node: Arc<Node>,
    pid: Pid,
}

impl Drop for ProbeGuard {
    fn drop(&mut self) {
        self.node.system.registry().remove(&self.pid);
    }
}

/// Sends the wire-variant probe on a new stream and waits (holding every other message) for
/// its answer: `Ok(Some)` with the peer's variant, `Ok(None)` if it cannot be probed or did
/// not answer in time, `Err` if the stream or the endpoint ended meanwhile.
async fn probe_variant(
    node: &Arc<Node>,
    ep: &Endpoint,
    io: ProbeIo<'_>,
    guard: &mut Option<ProbeGuard>,
) -> Result<Option<WireVariant>, WriteEnd> {
    let ProbeIo { tx, end, queue } = io;
    let Queue { rx, held } = queue;
    let Some(limit) = node.config.variant_probe_timeout else {
        return Ok(None);
    };
    // A node shutting down accepts no new inbound streams, so no answer could reach it.
    if ep.draining() {
        return Ok(None);
    }
    let registry = node.system.registry();
    // Unique across nodes: a peer that reads the probe as an id looks it up among its own.
    let id = format!(
        "{PROBE_ID_PREFIX}{}/{}",
        node.system.id(),
        registry.next_id()
    );
    let Some(batch) = crate::codec::variant_probe(&node.address, &id) else {
        tracing::debug!(address = %ep.address, "this node's address is too long to probe with");
        return Ok(None);
    };
    let (verdict_tx, verdict_rx) = oneshot::channel();
    let process = Arc::new(VariantProbe {
        node: Arc::downgrade(node),
        address: ep.address.clone(),
        verdict: Mutex::new(Some(verdict_tx)),
    });
    let Ok(pid) = registry.add(process, &id) else {
        return Ok(None);
    };
    *guard = Some(ProbeGuard {
        node: node.clone(),
        pid,
    });
    let msg = RemoteMessage {
        message_type: Some(MessageType::MessageBatch(batch)),
    };
    if tx.send(msg).await.is_err() {
        return Err(stream_gone(ep, end).await);
    }
    let timeout = tokio::time::sleep(limit);
    tokio::pin!(timeout);
    let mut verdict_rx = verdict_rx;
    loop {
        tokio::select! {
            biased;
            _ = ep.close_requested() => return Err(WriteEnd::Closed),
            e = &mut *end => return Err(WriteEnd::Stream(e.unwrap_or(StreamEnd::Eof))),
            v = &mut verdict_rx => return Ok(v.ok()),
            _ = ep.drain_requested() => return Ok(None),
            _ = &mut timeout => {
                tracing::warn!(address = %ep.address, ?limit, fallback = ?node.config.wire_variant,
                    "the peer did not answer the wire-variant probe in time");
                return Ok(None);
            }
            m = rx.recv() => match m {
                None => return Err(WriteEnd::Closed),
                // The answer to the peer's own probe of this node: sent at once, or two nodes
                // probing each other would each hold the answer the other waits for. Only
                // nodes of this crate probe, and they read both variants.
                Some(m) if m.target.id().starts_with(PROBE_ID_PREFIX) => {
                    ep.queued.fetch_sub(1, Ordering::Relaxed);
                    let mut b = BatchBuilder::new(WireVariant::Current);
                    if b.push(&node.ser, &node.wire_ctx(), &m).is_err() {
                        undeliverable(node, m);
                        continue;
                    }
                    let msg = RemoteMessage {
                        message_type: Some(MessageType::MessageBatch(b.finish())),
                    };
                    if tx.send(msg).await.is_err() {
                        undeliverable(node, m);
                        return Err(stream_gone(ep, end).await);
                    }
                }
                // Counted in the queue until the write loop takes them.
                Some(m) => held.push(m),
            },
        }
    }
}

/// The id prefix of probe processes (`dialect-probe/<system id>/<n>`).
const PROBE_ID_PREFIX: &str = "dialect-probe/";

/// What a probe uses of its endpoint's stream and queue.
struct ProbeIo<'a> {
    tx: &'a mpsc::Sender<RemoteMessage>,
    end: &'a mut oneshot::Receiver<StreamEnd>,
    queue: &'a mut Queue,
}

/// An endpoint's send queue, and what was taken from it while a probe was out.
struct Queue {
    rx: mpsc::UnboundedReceiver<Outbound>,
    /// Taken from `rx` while the probe was out, in order; still counted in `queued`.
    held: Vec<Outbound>,
}

async fn write_loop(
    node: &Node,
    ep: &Endpoint,
    queue: &mut Queue,
    tx: mpsc::Sender<RemoteMessage>,
    end: &mut oneshot::Receiver<StreamEnd>,
    mut variant: WireVariant,
    unconfirmed: &mut Option<Unconfirmed>,
) -> WriteEnd {
    let Queue { rx, held } = queue;
    let batch_size = node.config.batch_size;
    // Keep batches well under the peer's message limit.
    let max_bytes = node.config.max_message_size / 2;
    let mut builder = BatchBuilder::new(variant).with_max_payload(node.config.max_message_size);
    let mut pending: Vec<Outbound> = Vec::with_capacity(batch_size);
    let mut in_batch: Vec<Outbound> = Vec::with_capacity(batch_size);
    let stream_end = |e: Result<StreamEnd, oneshot::error::RecvError>| {
        WriteEnd::Stream(e.unwrap_or(StreamEnd::Eof))
    };
    loop {
        if !held.is_empty() {
            // Held while the probe was out: they go first, in order, a batch at a time.
            let k = held.len().min(batch_size);
            pending.extend(held.drain(..k));
        } else if ep.draining() && rx.is_empty() {
            // Our end of stream; the peer ends its side once it has read everything before it.
            drop(tx);
            return tokio::select! {
                biased;
                _ = ep.close_requested() => WriteEnd::Closed,
                e = &mut *end => match e {
                    Ok(StreamEnd::Eof) => WriteEnd::Drained,
                    e => stream_end(e),
                },
            };
        }
        let confirm_at = unconfirmed.as_ref().and_then(|u| u.until);
        if pending.is_empty() {
            tokio::select! {
                biased;
                _ = ep.close_requested() => return WriteEnd::Closed,
                e = &mut *end => return stream_end(e),
                _ = ep.drain_requested(), if !ep.draining() => continue,
                _ = tokio::time::sleep_until(confirm_at.unwrap_or_else(tokio::time::Instant::now)),
                    if confirm_at.is_some() => {
                    *unconfirmed = None;
                    continue;
                }
                n = rx.recv_many(&mut pending, batch_size) => if n == 0 { return WriteEnd::Closed },
            }
        }
        // What the peer was seen writing wins over a guess.
        if let Some(v) = node.learned_variant(&ep.address) {
            *unconfirmed = None;
            if v != variant {
                variant = v;
                builder = BatchBuilder::new(variant).with_max_payload(node.config.max_message_size);
            }
        }
        ep.queued.fetch_sub(pending.len(), Ordering::Relaxed);
        let ctx = node.wire_ctx();
        let mut drained = pending.drain(..);
        while let Some(m) = drained.next() {
            match builder.push(&node.ser, &ctx, &m) {
                Ok(()) => in_batch.push(m),
                Err(e) => {
                    node.publish_error(RemoteDeliveryError {
                        direction: Direction::Outbound,
                        peer: ep.address.clone(),
                        target: Some(m.target.clone()),
                        type_name: m.message.type_name().to_string(),
                        error: e.to_string(),
                    });
                    node.dead_letter(
                        &m.target,
                        MessageEnvelope::from_boxed(m.message).with_sender(m.sender),
                    );
                    continue;
                }
            }
            if builder.approx_size() >= max_bytes
                && !send_batch(node, &mut builder, &mut in_batch, &tx, unconfirmed).await
            {
                // Taken from the queue but not yet in a batch: report them too.
                for rest in drained {
                    undeliverable(node, rest);
                }
                return stream_gone(ep, end).await;
            }
        }
        if !builder.is_empty()
            && !send_batch(node, &mut builder, &mut in_batch, &tx, unconfirmed).await
        {
            return stream_gone(ep, end).await;
        }
    }
}

/// The stream refused a send: the call is over, so its end (the reason) is on its way.
async fn stream_gone(ep: &Endpoint, end: &mut oneshot::Receiver<StreamEnd>) -> WriteEnd {
    tokio::select! {
        biased;
        _ = ep.close_requested() => WriteEnd::Closed,
        e = &mut *end => WriteEnd::Stream(e.unwrap_or(StreamEnd::Eof)),
    }
}

/// Hands one batch to the gRPC stream; on failure its messages go to dead letters.
async fn send_batch(
    node: &Node,
    builder: &mut BatchBuilder,
    in_batch: &mut Vec<Outbound>,
    tx: &mpsc::Sender<RemoteMessage>,
    unconfirmed: &mut Option<Unconfirmed>,
) -> bool {
    let batch = builder.finish();
    let copy = unconfirmed.is_some().then(|| batch.clone());
    let msg = RemoteMessage {
        message_type: Some(MessageType::MessageBatch(batch)),
    };
    if tx.send(msg).await.is_ok() {
        in_batch.clear();
        // Only what the stream took: what it refused goes to dead letters below instead.
        if let (Some(u), Some(copy)) = (unconfirmed.as_mut(), copy) {
            if !u.keep(copy, node.config.max_message_size) {
                *unconfirmed = None;
            }
        }
        true
    } else {
        for m in in_batch.drain(..) {
            undeliverable(node, m);
        }
        false
    }
}

/// A message that cannot reach its endpoint: requesters get `DeadLetterResponse`, others a
/// dead-letter event.
fn undeliverable(node: &Node, m: Outbound) {
    node.dead_letter(
        &m.target,
        MessageEnvelope::from_boxed(m.message).with_sender(m.sender),
    );
}

// Pid's Hash/Eq use only address, id and request id, never the cached process.
#[allow(clippy::mutable_key_type)]
fn terminate(endpoints: &Endpoints, ep: &Arc<Endpoint>, mut rx: mpsc::UnboundedReceiver<Outbound>) {
    let node = &*endpoints.node;
    node.forget_variant(&ep.address);
    ep.state.store(TERMINATED, Ordering::Release);
    endpoints
        .map
        .remove_if(&ep.address, |_, e| Arc::ptr_eq(&e.endpoint, ep));
    // Closing first makes later sends fail at once (the sender dead-letters them itself).
    rx.close();
    while let Ok(m) = rx.try_recv() {
        undeliverable(node, m);
    }
    let watches = std::mem::take(&mut *ep.watches.lock());
    for (watcher, watchees) in watches {
        for who in watchees {
            watcher.send_system_message(
                &node.system,
                SystemMessage::Terminated(Terminated {
                    who,
                    why: TerminatedReason::AddressTerminated,
                }),
            );
        }
    }
    ep.done.send_replace(true);
    tracing::info!(address = %ep.address, "endpoint terminated");
    node.system.event_stream().publish(&EndpointTerminated {
        address: ep.address.clone(),
    });
}

/// What a PID of another node resolves to: it queues messages on that node's endpoint.
pub(crate) struct RemoteProcess {
    pub(crate) node: Weak<Node>,
    pub(crate) endpoint: Arc<Endpoint>,
}

impl RemoteProcess {
    fn enqueue(&self, node: &Node, m: Outbound) {
        // A full queue (a slow or unreachable peer) refuses instead of growing without bound.
        if self.endpoint.queued.fetch_add(1, Ordering::Relaxed) >= node.config.queue_size {
            self.endpoint.queued.fetch_sub(1, Ordering::Relaxed);
            node.publish_error(RemoteDeliveryError {
                direction: Direction::Outbound,
                peer: self.endpoint.address.clone(),
                target: Some(m.target.clone()),
                type_name: m.message.type_name().to_string(),
                error: format!(
                    "the endpoint queue is full ({} messages)",
                    node.config.queue_size
                ),
            });
            return undeliverable(node, m);
        }
        if let Err(e) = self.endpoint.tx.send(m) {
            undeliverable(node, e.0);
        }
    }
}

impl Process for RemoteProcess {
    fn send_user_message(&self, pid: &Pid, envelope: MessageEnvelope) {
        let Some(node) = self.node.upgrade() else {
            return;
        };
        let (message, sender, header) = envelope.into_parts();
        self.enqueue(
            &node,
            Outbound {
                target: pid.clone(),
                message,
                sender,
                header,
            },
        );
    }

    fn send_system_message(&self, pid: &Pid, message: SystemMessage) {
        let Some(node) = self.node.upgrade() else {
            return;
        };
        match &message {
            SystemMessage::Watch { watcher } => {
                if self.endpoint.is_terminated() {
                    watcher.send_system_message(
                        &node.system,
                        SystemMessage::Terminated(Terminated {
                            who: pid.clone(),
                            why: TerminatedReason::AddressTerminated,
                        }),
                    );
                    return;
                }
                self.endpoint
                    .watches
                    .lock()
                    .entry(watcher.clone())
                    .or_default()
                    .insert(pid.clone());
            }
            SystemMessage::Unwatch { watcher } => {
                let mut map = self.endpoint.watches.lock();
                if let Some(set) = map.get_mut(watcher) {
                    set.remove(pid);
                    if set.is_empty() {
                        map.remove(watcher);
                    }
                }
            }
            _ => {}
        }
        match system_messages::to_wire(message, &node.wire_ctx()) {
            Ok(message) => self.enqueue(
                &node,
                Outbound {
                    target: pid.clone(),
                    message,
                    sender: None,
                    header: None,
                },
            ),
            Err(other) => {
                tracing::debug!(pid = %pid, message = other.name(), "system message not sent to a remote process");
            }
        }
    }

    fn is_dead(&self) -> bool {
        // A terminated endpoint makes cached PIDs resolve again, which reconnects.
        self.endpoint.is_terminated()
    }
}

#[cfg(test)]
mod tests {
    use super::is_dialable;

    #[test]
    fn only_host_port_addresses_are_dialable() {
        for ok in [
            "127.0.0.1:8090",
            "localhost:1",
            "[::1]:65535",
            "node-a.svc:443",
        ] {
            assert!(is_dialable(ok), "{ok}");
        }
        for bad in [
            "",
            ":",
            ":8090",
            "host",
            "host:",
            "host:0",
            "host:70000",
            "host:port",
            "http://host:80",
            "a b:80",
            "user@host:80",
        ] {
            assert!(!is_dialable(bad), "{bad:?}");
        }
    }
}
