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
        let inbound = request.into_inner();
        let (tx, rx) = mpsc::channel::<Out>(4);
        self.node.inbound.lock().push(tx.clone());
        tokio::spawn(read_stream(self.endpoints.clone(), inbound, tx, peer));
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
            _ => {
                return Err(Status::unimplemented(
                    "only MatchPartOfString and MatchExactString are supported",
                ))
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
        _request: Request<GetProcessDiagnosticsRequest>,
    ) -> Result<Response<GetProcessDiagnosticsResponse>, Status> {
        Err(Status::unimplemented(
            "process diagnostics are not available",
        ))
    }
}

async fn read_stream(
    endpoints: Arc<Endpoints>,
    mut inbound: Streaming<RemoteMessage>,
    tx: mpsc::Sender<Out>,
    transport_peer: String,
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
            Some(MessageType::MessageBatch(batch)) => {
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
            node.publish_error(RemoteDeliveryError {
                direction: Direction::Inbound,
                peer: peer.to_string(),
                target: None,
                type_name: type_name.to_string(),
                error: error.to_string(),
            });
            let raw = UndecodableMessage {
                type_name: type_name.clone(),
                serializer_id: e.serializer_id,
                data: e.message_data.clone(),
                error: error.clone(),
            };
            node.dead_letter(&target, MessageEnvelope::new(raw));
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
            node.dead_letter(&target, MessageEnvelope::new(raw).with_sender(sender));
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
