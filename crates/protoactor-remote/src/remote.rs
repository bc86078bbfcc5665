//! `Remote`: starts the server on an actor system, installs the resolver for PIDs of other
//! nodes, hosts the activator, and shuts everything down gracefully.

use std::net::{IpAddr, SocketAddr, TcpListener as StdListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use parking_lot::Mutex;
use protoactor::runtime::Process;
use protoactor::{ActorSystem, ContextOps, FutureError, Pid, Props};
use tokio::sync::oneshot;
use tokio_stream::StreamExt;

use crate::activator::{Activator, Kinds, ResponseStatusCode};
use crate::config::RemoteConfig;
use crate::endpoint::Endpoints;
use crate::node::Node;
use crate::remote_proto::remote_message::MessageType;
use crate::remote_proto::remoting_server::RemotingServer;
use crate::remote_proto::{ActorPidRequest, ActorPidResponse, DisconnectRequest, RemoteMessage};
use crate::serializer::Serialization;
use crate::server::RemotingService;

const GRACEFUL_STOP_LIMIT: Duration = Duration::from_secs(10);

/// Why remote could not start.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The address could not be bound.
    #[error("cannot bind {address}: {source}")]
    Bind {
        /// What was bound.
        address: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Remote is already started on this system.
    #[error("remote is already started on this actor system")]
    AlreadyStarted,
    /// The TLS settings were refused.
    #[error("invalid TLS settings: {0}")]
    Tls(String),
    /// The activator could not be spawned.
    #[error("cannot spawn the activator: {0}")]
    Activator(String),
}

#[cfg(feature = "tls")]
impl From<crate::config::TlsError> for RemoteError {
    fn from(e: crate::config::TlsError) -> Self {
        RemoteError::Tls(e.0)
    }
}

/// Why a remote spawn failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemoteSpawnError {
    /// The remote activator answered with a non-OK status (with the PID it gave, if any:
    /// for `ProcessNameAlreadyExist` the existing actor).
    #[error("remote spawn failed with status {code:?}")]
    Status {
        /// The status.
        code: ResponseStatusCode,
        /// The PID in the response.
        pid: Option<Pid>,
    },
    /// The status code is not one protoactor defines.
    #[error("remote spawn answered with unknown status code {0}")]
    UnknownStatus(i32),
    /// No answer within the timeout.
    #[error("remote spawn timed out")]
    Timeout,
    /// The request could not be delivered.
    #[error("remote spawn request went to dead letters")]
    DeadLetter,
    /// The answer was not an `ActorPidResponse`.
    #[error("remote spawn got an unexpected answer: {0}")]
    UnexpectedResponse(String),
}

impl RemoteSpawnError {
    /// The status code this error corresponds to.
    pub fn status_code(&self) -> Option<ResponseStatusCode> {
        match self {
            RemoteSpawnError::Status { code, .. } => Some(*code),
            RemoteSpawnError::Timeout => Some(ResponseStatusCode::Timeout),
            RemoteSpawnError::DeadLetter => Some(ResponseStatusCode::DeadLetter),
            _ => None,
        }
    }
}

/// Remoting on one actor system. Kept as an extension of the system.
pub struct Remote {
    node: Arc<Node>,
    endpoints: Arc<Endpoints>,
    bound: SocketAddr,
    server_stop: Mutex<Option<oneshot::Sender<()>>>,
    server_done: Mutex<Option<std::sync::mpsc::Receiver<()>>>,
    server_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    kinds: Kinds,
    stopped: AtomicBool,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("address", &self.node.address)
            .field("bound", &self.bound)
            .field("stopped", &self.stopped.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Remote {
    /// Starts remoting: binds the server, sets the system's address, installs the resolver
    /// for other nodes' PIDs and spawns the `activator`. Start it before spawning actors, so
    /// their PIDs carry the node's address.
    pub fn start(system: &ActorSystem, config: RemoteConfig) -> Result<Arc<Remote>, RemoteError> {
        if system.extension::<Remote>().is_some() {
            return Err(RemoteError::AlreadyStarted);
        }
        // TLS settings are checked before anything is bound or registered, so a bad one
        // leaves the system as it was.
        #[cfg_attr(not(feature = "tls"), allow(unused_mut))] // only TLS changes it
        let mut builder = tonic::transport::Server::builder();
        #[cfg(feature = "tls")]
        if let Some(tls) = &config.tls {
            builder = builder.tls_config(tls_server(tls)?).map_err(|e| {
                RemoteError::Tls(format!("server settings refused: {}", error_chain(&e)))
            })?;
            // Building the dialing side once makes a bad client identity an error here, not
            // a failed connection to every peer later.
            tonic::transport::Endpoint::from_static("https://localhost")
                .tls_config(crate::endpoint::client_tls(tls, "localhost:0"))
                .map_err(|e| {
                    RemoteError::Tls(format!("client settings refused: {}", error_chain(&e)))
                })?;
        }
        let bind = format!("{}:{}", config.host, config.port);
        let std_listener = StdListener::bind((config.host.as_str(), config.port))
            .and_then(|l| l.set_nonblocking(true).map(|_| l))
            .map_err(|source| RemoteError::Bind {
                address: bind.clone(),
                source,
            })?;
        let bound = std_listener
            .local_addr()
            .map_err(|source| RemoteError::Bind {
                address: bind.clone(),
                source,
            })?;
        let address = match &config.advertised_address {
            Some(a) => a.clone(),
            None => {
                // A wildcard bind is not an address others can dial (protoactor-go #833).
                let ip = if bound.ip().is_unspecified() {
                    tracing::warn!(
                        "remote bound to a wildcard address without an advertised address; advertising loopback"
                    );
                    IpAddr::from([127, 0, 0, 1])
                } else {
                    bound.ip()
                };
                SocketAddr::new(ip, bound.port()).to_string()
            }
        };
        system.registry().set_address(&address);
        let ser: Serialization = config.serialization.clone();
        let kinds: Kinds = Arc::new(parking_lot::RwLock::new(config.kinds.clone()));
        let max = config.max_message_size.saturating_mul(4);
        #[cfg(feature = "tls")]
        let bind_peers = config
            .tls
            .as_ref()
            .is_some_and(|t| t.mutual && t.bind_peer_addresses);
        #[cfg(not(feature = "tls"))]
        let bind_peers = false;
        let node = Arc::new(Node {
            system: system.clone(),
            config,
            ser,
            address: Arc::from(address.as_str()),
            inbound: Mutex::new(Vec::new()),
            shutting_down: AtomicBool::new(false),
            error_log_throttle: protoactor::throttle::Throttle::new(
                system.config().dead_letter_throttle_count,
                system.config().dead_letter_throttle_interval,
            ),
            peer_variants: DashMap::new(),
            event_stream_types: parking_lot::RwLock::new(None),
            local_only_types: parking_lot::RwLock::new(Default::default()),
            bind_peer_addresses: AtomicBool::new(bind_peers),
            refused_senders: Default::default(),
        });
        let endpoints = Endpoints::new(node.clone());

        let weak = Arc::downgrade(&endpoints);
        system
            .registry()
            .register_address_resolver(Arc::new(move |pid: &Pid| {
                let endpoints = weak.upgrade()?;
                Some(endpoints.get_or_connect(pid.address())? as Arc<dyn Process>)
            }));

        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let service = RemotingServer::new(RemotingService {
            node: node.clone(),
            endpoints: endpoints.clone(),
        })
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
        let rt = system.runtime().clone();
        let server_task = {
            let _enter = rt.enter();
            let listener = tokio::net::TcpListener::from_std(std_listener).map_err(|source| {
                RemoteError::Bind {
                    address: bind.clone(),
                    source,
                }
            })?;
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener).map(|s| {
                if let Ok(s) = &s {
                    let _ = s.set_nodelay(true);
                }
                s
            });
            Some(rt.spawn(async move {
                let r = builder
                    .add_service(service)
                    .serve_with_incoming_shutdown(incoming, async {
                        let _ = stop_rx.await;
                    })
                    .await;
                if let Err(e) = r {
                    tracing::error!(error = %e, "remote server failed");
                }
                let _ = done_tx.send(());
            }))
        };

        let activator_kinds = kinds.clone();
        let activator_props = Props::from_producer(move || Activator {
            kinds: activator_kinds.clone(),
        });
        system
            .root()
            .spawn_named(&activator_props, "activator")
            .map_err(|e| RemoteError::Activator(e.to_string()))?;

        let remote = Arc::new(Remote {
            node,
            endpoints,
            bound,
            server_stop: Mutex::new(Some(stop_tx)),
            server_done: Mutex::new(Some(done_rx)),
            server_task: Mutex::new(server_task),
            kinds,
            stopped: AtomicBool::new(false),
        });
        system.set_extension(remote.clone());
        tracing::info!(%address, bound = %remote.bound, "remote started");
        Ok(remote)
    }

    /// The remote started on `system`, if any.
    pub fn get(system: &ActorSystem) -> Option<Arc<Remote>> {
        system.extension::<Remote>()
    }

    /// True if this node serves and dials with mutual TLS (`RemoteConfig::with_mutual_tls`):
    /// every peer whose messages arrive, and every peer it reaches, holds a certificate of
    /// its CA. Always false without the `tls` feature.
    pub fn uses_mutual_tls(&self) -> bool {
        #[cfg(feature = "tls")]
        return self.node.config.tls.as_ref().is_some_and(|t| t.mutual);
        #[cfg(not(feature = "tls"))]
        false
    }

    /// This node's TLS settings, if it uses TLS.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls(&self) -> Option<&crate::config::TlsConfig> {
        self.node.config.tls.as_ref()
    }

    /// Turns peer address binding on ([`TlsConfig::bind_peer_addresses`](crate::TlsConfig::bind_peer_addresses)),
    /// from the next batch of every connection on. False (and nothing changes) without mutual
    /// TLS.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn bind_peer_addresses(&self) -> bool {
        let on = self.uses_mutual_tls();
        if on {
            self.node.bind_peer_addresses.store(true, Ordering::Release);
        }
        on
    }

    /// True if peer address binding is on.
    pub fn binds_peer_addresses(&self) -> bool {
        self.node.bind_peer_addresses.load(Ordering::Acquire)
    }

    /// Messages (and connections) refused so far because their sender address named a host
    /// the peer's certificate does not (peer address binding; always 0 without it).
    pub fn refused_senders(&self) -> u64 {
        self.node.refused_senders.load(Ordering::Relaxed)
    }

    /// The advertised address (`host:port`) other nodes use.
    pub fn address(&self) -> &str {
        &self.node.address
    }

    /// The socket address actually bound (useful with port 0).
    pub fn bound_address(&self) -> SocketAddr {
        self.bound
    }

    /// The actor system.
    pub fn system(&self) -> &ActorSystem {
        &self.node.system
    }

    /// Restricts what peers may publish on this node's event stream (messages to the
    /// `eventstream` process) to the types named `type_names`, added to those allowed
    /// already. Until called, any type is published, as protoactor-go does; once called,
    /// any other type from the network goes to dead letters with a `RemoteDeliveryError`
    /// (local senders are not affected). A cluster calls it so a peer cannot inject its
    /// local events (a `ClusterTopology`).
    pub fn allow_remote_events<I, S>(&self, type_names: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut allowed = self.node.event_stream_types.write();
        allowed
            .get_or_insert_with(Default::default)
            .extend(type_names.into_iter().map(Into::into));
    }

    /// Refuses the types named `type_names` from the network, whatever the target: they go
    /// to dead letters with a `RemoteDeliveryError`. For types that are registered (to
    /// travel inside other messages) but that no peer ever sends on their own, such as a
    /// cluster's local `ClusterTopology` events.
    pub fn refuse_remote_types<I, S>(&self, type_names: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.node
            .local_only_types
            .write()
            .extend(type_names.into_iter().map(Into::into));
    }

    /// The message registry (types can be added after start).
    pub fn serialization(&self) -> &Serialization {
        &self.node.ser
    }

    /// Registers (or replaces) a kind other nodes may spawn here.
    pub fn register_kind(&self, kind: impl Into<String>, props: Props) {
        self.kinds.write().insert(kind.into(), props);
    }

    /// The kinds other nodes may spawn here.
    pub fn known_kinds(&self) -> Vec<String> {
        let mut k: Vec<String> = self.kinds.read().keys().cloned().collect();
        k.sort();
        k
    }

    /// The PID of the activator at `address`.
    pub fn activator_for(address: &str) -> Pid {
        Pid::new(address, "activator")
    }

    /// Spawns an actor of `kind` with a generated name on the node at `address`.
    pub async fn spawn(
        &self,
        address: &str,
        kind: &str,
        timeout: Duration,
    ) -> Result<Pid, RemoteSpawnError> {
        self.spawn_named(address, "", kind, timeout).await
    }

    /// Spawns an actor of `kind` named `name` on the node at `address`; its id there is
    /// `activator/Remote$<name>`.
    pub async fn spawn_named(
        &self,
        address: &str,
        name: &str,
        kind: &str,
        timeout: Duration,
    ) -> Result<Pid, RemoteSpawnError> {
        spawn_result(self.spawn_request(address, name, kind, timeout).await)
    }

    /// Blocking form of [`spawn`](Self::spawn).
    pub fn spawn_blocking(
        &self,
        address: &str,
        kind: &str,
        timeout: Duration,
    ) -> Result<Pid, RemoteSpawnError> {
        self.spawn_named_blocking(address, "", kind, timeout)
    }

    /// Blocking form of [`spawn_named`](Self::spawn_named). Safe from any thread, inside an
    /// actor too (as Go code does in `Started`): it waits like
    /// [`ActorFuture::result`](protoactor::ActorFuture::result), which lets the runtime move
    /// other work off the blocked worker, and it returns `Timeout` after `timeout`.
    pub fn spawn_named_blocking(
        &self,
        address: &str,
        name: &str,
        kind: &str,
        timeout: Duration,
    ) -> Result<Pid, RemoteSpawnError> {
        spawn_result(self.spawn_request(address, name, kind, timeout).result())
    }

    fn spawn_request(
        &self,
        address: &str,
        name: &str,
        kind: &str,
        timeout: Duration,
    ) -> protoactor::ActorFuture {
        self.node.system.root().request_future(
            &Self::activator_for(address),
            ActorPidRequest {
                name: name.to_string(),
                kind: kind.to_string(),
            },
            timeout,
        )
    }

    /// Shuts remoting down gracefully: each endpoint first sends what is queued to its peer
    /// (up to [`RemoteConfig::drain_timeout`]; the rest goes to dead letters), then
    /// `DisconnectRequest` goes out on every inbound stream and the server stops. Outside
    /// async code (and on a multi-threaded runtime) it waits for the drain and then (up to
    /// 10 s) for the server to stop. Call it before [`ActorSystem::shutdown`].
    pub fn shutdown(&self) {
        if self.stopped.swap(true, Ordering::AcqRel) {
            return;
        }
        // No new endpoints from here on; existing ones still take messages while draining.
        self.node.shutting_down.store(true, Ordering::Release);
        let node = self.node.clone();
        let endpoints = self.endpoints.clone();
        let server_stop = self.server_stop.lock().take();
        let server_task = self.server_task.lock().take();
        let limit = node.config.drain_timeout;
        let (drained_tx, drained_rx) = std::sync::mpsc::channel::<()>();
        self.node.system.runtime().spawn(async move {
            endpoints.drain_all(limit).await;
            let inbound = std::mem::take(&mut *node.inbound.lock());
            for tx in inbound {
                let _ = tx.try_send(Ok(RemoteMessage {
                    message_type: Some(MessageType::DisconnectRequest(DisconnectRequest {})),
                }));
            }
            if let Some(stop) = server_stop {
                let _ = stop.send(());
            }
            let _ = drained_tx.send(());
            // A graceful stop waits for the peers to close their streams; after 10 s the
            // server is stopped regardless (as protoactor-go does).
            if let Some(task) = server_task {
                tokio::time::sleep(GRACEFUL_STOP_LIMIT).await;
                task.abort();
            }
        });
        let wait_drained = || {
            let _ = drained_rx.recv_timeout(limit + Duration::from_secs(1));
        };
        match tokio::runtime::Handle::try_current() {
            Err(_) => {
                wait_drained();
                if let Some(done) = self.server_done.lock().take() {
                    let _ = done.recv_timeout(GRACEFUL_STOP_LIMIT);
                }
            }
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                protoactor::dispatcher::before_blocking();
                tokio::task::block_in_place(wait_drained)
            }
            // A single-threaded runtime runs the drain itself once we return.
            Ok(_) => {}
        }
    }
}

/// The outcome of a remote spawn from the activator's answer.
/// The server side of `tls`: this node's certificate, and with mutual TLS the CA that must
/// have signed every client's certificate. A handshake that does not finish in time is
/// dropped, so idle half-open connections do not pile up.
#[cfg(feature = "tls")]
fn tls_server(
    tls: &crate::config::TlsConfig,
) -> Result<tonic::transport::ServerTlsConfig, RemoteError> {
    tls.check()?;
    let server = tonic::transport::ServerTlsConfig::new()
        .identity(tonic::transport::Identity::from_pem(
            &tls.cert_pem,
            &tls.key_pem,
        ))
        .timeout(std::time::Duration::from_secs(10));
    Ok(if tls.mutual {
        server.client_ca_root(tonic::transport::Certificate::from_pem(&tls.ca_pem))
    } else {
        server
    })
}

/// `e` and its sources, joined (tonic's transport errors keep the cause in the source).
#[cfg(feature = "tls")]
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        next = cause.source();
    }
    s
}

fn spawn_result(
    answer: Result<protoactor::BoxedMessage, FutureError>,
) -> Result<Pid, RemoteSpawnError> {
    let msg = match answer {
        Ok(m) => m,
        Err(FutureError::Timeout { .. }) => return Err(RemoteSpawnError::Timeout),
        Err(FutureError::DeadLetter { .. }) => return Err(RemoteSpawnError::DeadLetter),
        Err(e) => return Err(RemoteSpawnError::UnexpectedResponse(e.to_string())),
    };
    let Some(resp) = msg.downcast_ref::<ActorPidResponse>() else {
        return Err(RemoteSpawnError::UnexpectedResponse(
            msg.type_name().to_string(),
        ));
    };
    let pid = resp.pid.as_ref().map(|p| p.to_pid());
    match ResponseStatusCode::from_i32(resp.status_code) {
        Some(ResponseStatusCode::Ok) => pid.ok_or_else(|| {
            RemoteSpawnError::UnexpectedResponse("an OK response without a PID".into())
        }),
        Some(code) => Err(RemoteSpawnError::Status { code, pid }),
        None => Err(RemoteSpawnError::UnknownStatus(resp.status_code)),
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        if let Some(stop) = self.server_stop.lock().take() {
            let _ = stop.send(());
        }
    }
}
