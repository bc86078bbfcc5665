//! The gRPC server: `remote.Remoting/Receive` reads inbound streams (handshake, then
//! batches) and delivers their messages locally.

use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use protoactor::MessageEnvelope;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::codec::{BatchReader, Incoming};
use crate::endpoint::Endpoints;
use crate::events::{Direction, RemoteDeliveryError};
use crate::node::Node;
use crate::pid::PidExt;
use crate::remote_proto::remote_message::MessageType;
use crate::remote_proto::remoting_server::Remoting;
use crate::remote_proto::{
    connect_request, ConnectResponse, GetProcessDiagnosticsRequest, GetProcessDiagnosticsResponse,
    ListProcessesMatchType, ListProcessesRequest, ListProcessesResponse, MessageBatch,
    RemoteMessage,
};
use crate::serializer::UndecodableMessage;
use crate::system_messages::{self, Inbound};

pub(crate) struct RemotingService {
    pub(crate) node: Arc<Node>,
    pub(crate) endpoints: Arc<Endpoints>,
}

type Out = Result<RemoteMessage, Status>;

#[tonic::async_trait]
impl Remoting for RemotingService {
    type ReceiveStream = Pin<Box<dyn tokio_stream::Stream<Item = Out> + Send>>;

    async fn receive(
        &self,
        request: Request<Streaming<RemoteMessage>>,
    ) -> Result<Response<Self::ReceiveStream>, Status> {
        if self.node.shutting_down.load(Ordering::Acquire) {
            return Err(Status::unavailable("the node is shutting down"));
        }
        let peer = request
            .remote_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        // The client certificate of a mutual-TLS connection, kept for peer address binding
        // (which may be turned on after the connection was made).
        #[cfg(feature = "tls")]
        let binding = request
            .peer_certs()
            .and_then(|certs| certs.first().cloned())
            .map(crate::certs::AddressBinding::new);
        #[cfg(not(feature = "tls"))]
        let binding = None;
        let inbound = request.into_inner();
        let (tx, rx) = mpsc::channel::<Out>(4);
        self.node.inbound.lock().push(tx.clone());
        tokio::spawn(read_stream(
            self.endpoints.clone(),
            inbound,
            tx,
            peer,
            binding,
        ));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn list_processes(
        &self,
        request: Request<ListProcessesRequest>,
    ) -> Result<Response<ListProcessesResponse>, Status> {
        let req = request.into_inner();
        let registry = self.node.system.registry();
        let matches: Box<dyn Fn(&str) -> bool> = match ListProcessesMatchType::try_from(req.r#type)
        {
            Ok(ListProcessesMatchType::MatchPartOfString) => {
                Box::new(|id: &str| id.contains(req.pattern.as_str()))
            }
            Ok(ListProcessesMatchType::MatchExactString) => Box::new(|id: &str| id == req.pattern),
            Ok(ListProcessesMatchType::MatchRegex) => {
                // The regex crate runs in linear time; the size limit bounds its memory.
                let re = regex::RegexBuilder::new(&req.pattern)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| Status::invalid_argument(format!("bad pattern: {e}")))?;
                Box::new(move |id: &str| re.is_match(id))
            }
            Err(_) => {
                return Err(Status::invalid_argument(format!(
                    "unknown match type {}",
                    req.r#type
                )))
            }
        };
        let mut pids: Vec<_> = registry
            .ids()
            .into_iter()
            .filter(|id| matches(id))
            .map(|id| self.node.system.new_local_pid(&id).to_proto())
            .collect();
        pids.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(Response::new(ListProcessesResponse { pids }))
    }

    async fn get_process_diagnostics(
        &self,
        request: Request<GetProcessDiagnosticsRequest>,
    ) -> Result<Response<GetProcessDiagnosticsResponse>, Status> {
        let Some(pid) = request.into_inner().pid else {
            return Err(Status::invalid_argument("no pid in the request"));
        };
        let process = self
            .node
            .system
            .registry()
            .get_local(&pid.id)
            .ok_or_else(|| {
                Status::not_found(format!("no process {:?} on {}", pid.id, self.node.address))
            })?;
        Ok(Response::new(GetProcessDiagnosticsResponse {
            diagnostics_string: process.diagnostics(),
        }))
    }
}

async fn read_stream(
    endpoints: Arc<Endpoints>,
    mut inbound: Streaming<RemoteMessage>,
    tx: mpsc::Sender<Out>,
    transport_peer: String,
    mut binding: Option<Binding>,
) {
    let node = &*endpoints.node;
    let mut reader = BatchReader::new(node.address.clone());
    let mut peer = transport_peer;
    let mut advertised = false;
    loop {
        let msg = match inbound.message().await {
            Ok(Some(m)) => m,
            Ok(None) => break,
            Err(status) => {
                tracing::info!(%peer, error = %status, "inbound stream failed");
                // A frame gRPC refused (over the decode limit, not protobuf) cannot be skipped:
                // tonic fails the whole stream, so the frame and whatever followed it are
                // lost. Report it. Tonic builds those statuses itself, without a source error;
                // transport failures (a peer that vanished) carry their h2/io error as source
                // and are reported by the sending side's endpoint instead.
                if std::error::Error::source(&status).is_none() {
                    node.publish_error(RemoteDeliveryError {
                        direction: Direction::Inbound,
                        peer: peer.clone(),
                        target: None,
                        type_name: String::new(),
                        error: format!(
                            "inbound stream ended: {} (the frame and anything after it on this stream are lost; the peer reconnects)",
                            status.message()
                        ),
                    });
                }
                break;
            }
        };
        match msg.message_type {
            Some(MessageType::ConnectRequest(c)) => match c.connection_type {
                Some(connect_request::ConnectionType::ServerConnection(sc)) => {
                    if let Some(why) = unbound(node, &mut binding, &sc.address) {
                        refuse(node, binding.as_mut(), &peer, &sc.address, "connection");
                        let _ = tx.send(Err(Status::permission_denied(why))).await;
                        break;
                    }
                    if !sc.address.is_empty() {
                        peer = sc.address;
                        advertised = true;
                    }
                    let resp = RemoteMessage {
                        message_type: Some(MessageType::ConnectResponse(ConnectResponse {
                            member_id: node.system.id().to_string(),
                            blocked: false,
                        })),
                    };
                    if tx.send(Ok(resp)).await.is_err() {
                        break;
                    }
                }
                Some(connect_request::ConnectionType::ClientConnection(_)) | None => {
                    tracing::warn!(%peer, "client connections are not supported; ignoring");
                }
            },
            Some(MessageType::MessageBatch(mut batch)) => {
                refuse_unbound_senders(node, &mut binding, &mut batch, &peer);
                // Answer in the variant the peer writes (its advertised address is how our
                // endpoint to it is keyed).
                // A probe's target is written in the 2024 form whatever the prober reads.
                if advertised && !crate::codec::is_variant_probe(&batch) {
                    if let Some(v) = crate::codec::batch_variant(&batch) {
                        node.learn_variant(&peer, v);
                    }
                }
                on_batch(&endpoints, &mut reader, batch, &peer)
            }
            other => {
                tracing::debug!(%peer, message = ?other.is_some(), "unexpected message on an inbound stream");
            }
        }
    }
    node.inbound.lock().retain(|t| !t.same_channel(&tx));
}

#[cfg(feature = "tls")]
type Binding = crate::certs::AddressBinding;
/// No binding without TLS (never constructed).
#[cfg(not(feature = "tls"))]
type Binding = std::convert::Infallible;

/// Why `address` may not be claimed on this connection, if peer address binding is on and
/// the connection's certificate does not name its host.
fn unbound(node: &Node, binding: &mut Option<Binding>, address: &str) -> Option<String> {
    if !node.bind_peer_addresses.load(Ordering::Acquire) {
        return None;
    }
    #[cfg(feature = "tls")]
    {
        match binding.as_mut().map(|b| b.allows(address)) {
            Some(true) => None,
            Some(false) => Some(format!(
                "sender address {address} is not named by the connection's certificate"
            )),
            None => Some("no client certificate to bind sender addresses to".into()),
        }
    }
    #[cfg(not(feature = "tls"))]
    {
        let _ = (binding, address);
        None
    }
}

/// Counts a refusal and logs the first one of the connection.
fn refuse(node: &Node, binding: Option<&mut Binding>, peer: &str, address: &str, what: &str) {
    node.refused_senders.fetch_add(1, Ordering::Relaxed);
    #[cfg(feature = "tls")]
    let first = binding.is_none_or(|b| !std::mem::replace(&mut b.warned, true));
    #[cfg(not(feature = "tls"))]
    let first = binding.is_none();
    if first {
        tracing::warn!(%peer, claimed = %address, "peer address binding: a {what} claimed a sender address its certificate does not name; refused (logged once per connection)");
    }
}

/// Peer address binding: takes out of `batch` the envelopes whose sender is at an address
/// the connection's certificate does not name, and refuses them (dead letters and delivery
/// errors). One check per distinct address of the batch's sender table, not per envelope.
fn refuse_unbound_senders(
    node: &Node,
    binding: &mut Option<Binding>,
    batch: &mut MessageBatch,
    peer: &str,
) {
    if !node.bind_peer_addresses.load(Ordering::Acquire) {
        return;
    }
    // The common case (every sender allowed) allocates nothing.
    if batch
        .senders
        .iter()
        .all(|s| unbound(node, binding, &s.address).is_none())
    {
        return;
    }
    let bad: Vec<bool> = batch
        .senders
        .iter()
        .map(|s| unbound(node, binding, &s.address).is_some())
        .collect();
    let is_bad = |e: &crate::remote_proto::MessageEnvelope| {
        usize::try_from(e.sender)
            .ok()
            .and_then(|i| i.checked_sub(1))
            .and_then(|i| bad.get(i))
            .copied()
            .unwrap_or(false)
    };
    let (refused, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut batch.envelopes)
        .into_iter()
        .partition(is_bad);
    batch.envelopes = kept;
    let error: Arc<str> = Arc::from(
        "sender address not named by the connection's certificate (peer address binding)",
    );
    let target = protoactor::Pid::new(node.address.clone(), "");
    for e in refused {
        let claimed = e
            .sender
            .checked_sub(1)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| batch.senders.get(i))
            .map(|s| s.address.clone())
            .unwrap_or_default();
        refuse(node, binding.as_mut(), peer, &claimed, "message");
        let type_name: Arc<str> = usize::try_from(e.type_id)
            .ok()
            .and_then(|i| batch.type_names.get(i))
            .filter(|n| n.len() <= crate::codec::MAX_TYPE_NAME_LEN)
            .map_or_else(|| Arc::from(""), |n| Arc::from(n.as_str()));
        refuse_envelope(node, peer, &target, type_name, &e, &error);
    }
}

/// Refuses an inbound envelope undelivered: a delivery error and a dead letter holding its
/// raw payload.
fn refuse_envelope(
    node: &Node,
    peer: &str,
    target: &protoactor::Pid,
    type_name: Arc<str>,
    e: &crate::remote_proto::MessageEnvelope,
    error: &Arc<str>,
) {
    node.publish_error(RemoteDeliveryError {
        direction: Direction::Inbound,
        peer: peer.to_string(),
        target: None,
        type_name: type_name.to_string(),
        error: error.to_string(),
    });
    let raw = UndecodableMessage {
        type_name,
        serializer_id: e.serializer_id,
        data: e.message_data.clone(),
        error: error.clone(),
    };
    node.dead_letter(target, MessageEnvelope::new(raw));
}

fn on_batch(endpoints: &Endpoints, reader: &mut BatchReader, batch: MessageBatch, peer: &str) {
    let node = &*endpoints.node;
    let size: usize = batch.envelopes.iter().map(|e| e.message_data.len()).sum();
    if size > node.config.max_message_size {
        // An oversized batch is refused as a whole, but the stream goes on.
        let error: Arc<str> = Arc::from(format!(
            "batch of {size} payload bytes exceeds the limit of {}",
            node.config.max_message_size
        ));
        // Names shared by the envelopes, never copied per envelope (nor kept past the cap).
        let names: Vec<Arc<str>> = batch
            .type_names
            .iter()
            .map(|n| {
                if n.len() > crate::codec::MAX_TYPE_NAME_LEN {
                    Arc::from("")
                } else {
                    Arc::from(n.as_str())
                }
            })
            .collect();
        let no_name: Arc<str> = Arc::from("");
        let target = protoactor::Pid::new(node.address.clone(), "");
        for e in &batch.envelopes {
            let type_name = usize::try_from(e.type_id)
                .ok()
                .and_then(|i| names.get(i))
                .unwrap_or(&no_name);
            refuse_envelope(node, peer, &target, type_name.clone(), e, &error);
        }
        return;
    }
    for inc in reader.read(batch, &node.ser) {
        deliver(endpoints, inc, peer);
    }
}

fn deliver(endpoints: &Endpoints, inc: Incoming, peer: &str) {
    let node = &*endpoints.node;
    let system = &node.system;
    let Incoming {
        target,
        sender,
        header,
        type_name,
        message,
    } = inc;
    let message = match message {
        Ok(m) => m,
        Err((e, raw)) => {
            node.publish_error(RemoteDeliveryError {
                direction: Direction::Inbound,
                peer: peer.to_string(),
                target: Some(target.clone()),
                type_name: type_name.to_string(),
                error: e.to_string(),
            });
            // A reply the caller cannot decode goes to the waiting future itself, so the
            // caller gets a named error at once instead of waiting for its timeout.
            if target.id().starts_with("future$") && target.address() == &*node.address {
                tracing::warn!(%target, type_name = %type_name, error = %e, "a reply could not be decoded; handed to the waiting request");
                target.send_user_message(system, MessageEnvelope::new(raw));
            } else {
                node.dead_letter(&target, MessageEnvelope::new(raw).with_sender(sender));
            }
            return;
        }
    };
    match system_messages::from_wire(message) {
        Inbound::System(m) => target.send_system_message(system, m),
        Inbound::Terminated(t) => endpoints.remote_terminated(&target, t),
        Inbound::User(message) if !inbound_allowed(node, &target, &type_name) => {
            node.publish_error(RemoteDeliveryError {
                direction: Direction::Inbound,
                peer: peer.to_string(),
                target: Some(target.clone()),
                type_name: type_name.to_string(),
                error: "this type is not accepted from the network here".into(),
            });
            node.dead_letter(
                &target,
                MessageEnvelope::from_boxed(message).with_sender(sender),
            );
        }
        Inbound::User(message) => target.send_user_message(
            system,
            MessageEnvelope::from_boxed(message)
                .with_sender(sender)
                .with_header(header),
        ),
        Inbound::Invalid(why) => bad_system_message(node, peer, &target, why),
    }
}

/// False for a type refused from the network ([`crate::Remote::refuse_remote_types`]) and
/// for a message to this node's `eventstream` whose type peers may not publish
/// ([`crate::Remote::allow_remote_events`]).
fn inbound_allowed(node: &Node, target: &protoactor::Pid, type_name: &str) -> bool {
    if node.local_only_types.read().contains(type_name) {
        return false;
    }
    if target.id() != "eventstream" || target.address() != &*node.address {
        return true;
    }
    node.event_stream_types
        .read()
        .as_ref()
        .is_none_or(|allowed| allowed.contains(type_name))
}

fn bad_system_message(node: &Node, peer: &str, target: &protoactor::Pid, error: &str) {
    node.publish_error(RemoteDeliveryError {
        direction: Direction::Inbound,
        peer: peer.to_string(),
        target: Some(target.clone()),
        type_name: String::new(),
        error: error.to_string(),
    });
}
