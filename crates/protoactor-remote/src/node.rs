//! The node-wide state of remoting: the actor system, settings and serializer registry, the
//! node's address, the inbound streams, the shutdown flag, the throttled delivery-error log
//! and what was learned about each peer's wire variant. The server, the endpoints and the
//! remote processes share it; it knows nothing of them.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use dashmap::DashMap;
use parking_lot::Mutex;
use protoactor::throttle::{Throttle, Valve};
use protoactor::{ActorSystem, MessageEnvelope, Pid};
use tokio::sync::mpsc;

use crate::codec::WireVariant;
use crate::config::RemoteConfig;
use crate::events::RemoteDeliveryError;
use crate::pid::WireContext;
use crate::remote_proto::RemoteMessage;
use crate::serializer::Serialization;

/// State shared by the server, the endpoints and the remote processes of one node.
pub(crate) struct Node {
    pub(crate) system: ActorSystem,
    pub(crate) config: RemoteConfig,
    pub(crate) ser: Serialization,
    pub(crate) address: Arc<str>,
    /// The response streams of inbound connections (ended on shutdown).
    pub(crate) inbound: Mutex<Vec<mpsc::Sender<Result<RemoteMessage, tonic::Status>>>>,
    pub(crate) shutting_down: AtomicBool,
    /// Throttles the log lines of delivery errors.
    pub(crate) error_log_throttle: Throttle,
    /// The wire variant each peer (by advertised address) was seen writing.
    pub(crate) peer_variants: DashMap<String, WireVariant>,
    /// When set, the only type names a peer may publish on this node's `eventstream`.
    pub(crate) event_stream_types: parking_lot::RwLock<Option<std::collections::HashSet<String>>>,
    /// Type names refused from the network whatever the target (local-only events).
    pub(crate) local_only_types: parking_lot::RwLock<std::collections::HashSet<String>>,
    /// Peer address binding is on (mutual TLS only; `TlsConfig::bind_peer_addresses`).
    pub(crate) bind_peer_addresses: AtomicBool,
    /// Messages and connections refused because they claimed an address their peer's
    /// certificate does not name.
    pub(crate) refused_senders: std::sync::atomic::AtomicU64,
}

impl Node {
    /// The context encoders write this node's PIDs with.
    pub(crate) fn wire_ctx(&self) -> WireContext<'_> {
        WireContext {
            local_address: &self.address,
        }
    }

    /// Publishes a delivery error; the log line is throttled as dead letters are (a hostile
    /// batch can hold thousands of failing envelopes).
    pub(crate) fn publish_error(&self, ev: RemoteDeliveryError) {
        let (valve, held_back) = self.error_log_throttle.should_throttle();
        if held_back > 0 {
            tracing::warn!(held_back, "remote delivery errors were throttled");
        }
        if valve != Valve::Closed {
            tracing::warn!(
                peer = %ev.peer,
                target = ?ev.target,
                type_name = %ev.type_name,
                error = %ev.error,
                direction = ?ev.direction,
                "remote delivery error"
            );
        }
        self.system.event_stream().publish(&ev);
    }

    /// Sends to dead letters as if `target` did not exist: a `DeadLetterEvent`, and a
    /// `DeadLetterResponse` to the sender if there is one.
    pub(crate) fn dead_letter(&self, target: &Pid, envelope: MessageEnvelope) {
        let dl = self.system.dead_letter().resolve(&self.system);
        dl.send_user_message(target, envelope);
    }

    /// The variant to write to the peer at `address`: the one it was seen writing, if any.
    pub(crate) fn learned_variant(&self, address: &str) -> Option<WireVariant> {
        self.peer_variants.get(address).map(|v| *v)
    }

    /// Records the variant the peer at `address` uses (from a batch it sent, or from the
    /// answer to a probe).
    pub(crate) fn learn_variant(&self, address: &str, v: WireVariant) {
        if self.learned_variant(address) != Some(v) {
            tracing::debug!(%address, variant = ?v, "learned the peer's wire variant");
            self.peer_variants.insert(address.to_string(), v);
        }
    }

    /// Forgets the variant of the peer at `address` (its endpoint ended: whatever answers
    /// there next may be another node, so it is probed again).
    pub(crate) fn forget_variant(&self, address: &str) {
        self.peer_variants.remove(address);
    }
}
