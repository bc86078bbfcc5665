//! Remote settings.

use std::collections::HashMap;
use std::time::Duration;

use protoactor::Props;

use crate::serializer::Serialization;

pub use crate::codec::WireVariant;

/// TLS for the server and for the connections this node dials (gRPC over HTTP/2 with
/// rustls). Without it, everything is plaintext HTTP/2, as protoactor-go's default.
///
/// Two modes: server-only TLS ([`TlsConfig::new`]: the connection is encrypted and the
/// dialer checks the server's certificate against `ca_pem`, but anyone may connect) and
/// mutual TLS ([`TlsConfig::mutual`], [`RemoteConfig::with_mutual_tls`]: the server also
/// requires a client certificate signed by `ca_pem`, and this node presents `cert_pem` when
/// it dials, so only holders of a certificate from the cluster's CA can send anything).
///
/// The PEM data is checked when the remote starts ([`Remote::start`](crate::Remote::start)
/// returns [`RemoteError::Tls`](crate::RemoteError::Tls) for data without a certificate or
/// key, or a key that does not belong to the certificate).
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
#[derive(Clone)]
pub struct TlsConfig {
    /// PEM certificate (chain) this node's server presents, and with
    /// [`mutual`](Self::mutual) also its client side.
    pub cert_pem: Vec<u8>,
    /// PEM private key of that certificate.
    pub key_pem: Vec<u8>,
    /// PEM CA certificate(s) trusted when dialing other nodes, and with
    /// [`mutual`](Self::mutual) the only issuers of client certificates the server accepts.
    pub ca_pem: Vec<u8>,
    /// The name expected in the peers' certificates (default: the host part of the address).
    pub domain_name: Option<String>,
    /// Mutual TLS: the server refuses connections without a client certificate signed by
    /// `ca_pem` (the TLS handshake fails), and this node presents `cert_pem` when it dials
    /// (default false).
    pub mutual: bool,
    /// Peer address binding (with [`mutual`](Self::mutual); Rust-only clusters): a
    /// connection may claim only sender addresses (its `ConnectRequest`'s, its messages'
    /// sender PIDs') whose host its client certificate names; other messages are refused
    /// (dead letters, [`RemoteDeliveryError`](crate::RemoteDeliveryError)s, counted by
    /// [`Remote::refused_senders`](crate::Remote::refused_senders)), so a holder of a
    /// certificate cannot send as another node. protoactor-go members do not present
    /// certificates naming their advertised host in general, so leave it off with them
    /// (default false).
    pub bind_peer_addresses: bool,
}

/// Why TLS settings are unusable: a file that cannot be read, or PEM data that does not
/// hold what it must. [`Remote::start`](crate::Remote::start) reports it as
/// [`RemoteError::Tls`](crate::RemoteError::Tls).
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(pub String);

#[cfg(feature = "tls")]
impl TlsConfig {
    /// Server-only TLS with this node's certificate and key and the CA(s) it trusts when
    /// dialing (all PEM).
    pub fn new(
        cert_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
        ca_pem: impl Into<Vec<u8>>,
    ) -> Self {
        TlsConfig {
            cert_pem: cert_pem.into(),
            key_pem: key_pem.into(),
            ca_pem: ca_pem.into(),
            domain_name: None,
            mutual: false,
            bind_peer_addresses: false,
        }
    }
    /// Mutual TLS: as [`new`](Self::new), and the server accepts only clients presenting a
    /// certificate signed by `ca_pem`, while this node presents `cert_pem` when it dials.
    pub fn mutual(
        cert_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
        ca_pem: impl Into<Vec<u8>>,
    ) -> Self {
        TlsConfig {
            mutual: true,
            ..Self::new(cert_pem, key_pem, ca_pem)
        }
    }
    /// Server-only TLS read from PEM files; an unreadable file is a [`TlsError`] naming it. Chain
    /// [`with_mutual`](Self::with_mutual) for mutual TLS.
    pub fn from_pem_files(
        cert: impl AsRef<std::path::Path>,
        key: impl AsRef<std::path::Path>,
        ca: impl AsRef<std::path::Path>,
    ) -> Result<Self, TlsError> {
        let read = |what: &str, path: &std::path::Path| {
            std::fs::read(path)
                .map_err(|e| TlsError(format!("cannot read the {what} {}: {e}", path.display())))
        };
        Ok(Self::new(
            read("certificate", cert.as_ref())?,
            read("private key", key.as_ref())?,
            read("CA certificate", ca.as_ref())?,
        ))
    }
    /// Turns mutual TLS on or off (see [`mutual`](Self::mutual)).
    pub fn with_mutual(mut self, mutual: bool) -> Self {
        self.mutual = mutual;
        self
    }
    /// Turns peer address binding on (see [`bind_peer_addresses`](Self::bind_peer_addresses);
    /// takes effect with mutual TLS only).
    pub fn with_peer_address_binding(mut self) -> Self {
        self.bind_peer_addresses = true;
        self
    }
    /// The name expected in the peers' certificates instead of the host of their address.
    pub fn with_domain_name(mut self, name: impl Into<String>) -> Self {
        self.domain_name = Some(name.into());
        self
    }
    /// Checks that each PEM field holds what it must, so that a bad file is an error at
    /// start rather than a failed handshake with every peer later.
    pub(crate) fn check(&self) -> Result<(), TlsError> {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        let certs = |what: &str, pem: &[u8]| {
            let n = CertificateDer::pem_slice_iter(pem)
                .try_fold(0usize, |n, c| c.map(|_| n + 1))
                .map_err(|e| TlsError(format!("{what}: bad PEM: {e}")))?;
            if n == 0 {
                return Err(TlsError(format!("{what}: no PEM certificate found")));
            }
            Ok(())
        };
        certs("cert_pem", &self.cert_pem)?;
        certs("ca_pem", &self.ca_pem)?;
        PrivateKeyDer::from_pem_slice(&self.key_pem)
            .map_err(|e| TlsError(format!("key_pem: no PEM private key: {e}")))?;
        Ok(())
    }
}

// By hand: the private key is never printed.
#[cfg(feature = "tls")]
impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("cert_pem", &format_args!("{} bytes", self.cert_pem.len()))
            .field("key_pem", &format_args!("<redacted>"))
            .field("ca_pem", &format_args!("{} bytes", self.ca_pem.len()))
            .field("domain_name", &self.domain_name)
            .field("mutual", &self.mutual)
            .field("bind_peer_addresses", &self.bind_peer_addresses)
            .finish()
    }
}

/// Remote settings; `RemoteConfig::new(host, port)` has protoactor-go's defaults.
#[derive(Clone)]
pub struct RemoteConfig {
    /// Host to bind (`0.0.0.0` binds every interface; advertise another address then).
    pub host: String,
    /// Port to bind; 0 picks a free port ([`Remote::address`](crate::Remote::address) tells which).
    pub port: u16,
    /// `host:port` other nodes use to reach this one (default: host and the bound port).
    pub advertised_address: Option<String>,
    /// Most messages per `MessageBatch` (default 1000).
    pub batch_size: usize,
    /// Most messages waiting in one endpoint's send queue (default 1,000,000); beyond it,
    /// sends to that node go to dead letters with a [`RemoteDeliveryError`](crate::RemoteDeliveryError).
    pub queue_size: usize,
    /// Connection attempts before an endpoint gives up (default 5).
    pub max_retry_count: u32,
    /// Pause between connection attempts (default 2 s).
    pub retry_interval: Duration,
    /// Largest gRPC message accepted or sent, in bytes (default 4 MiB, as grpc-go).
    pub max_message_size: usize,
    /// How targets are written to a peer whose variant is not known: when probing is off,
    /// or when the peer does not answer the probe in time (see
    /// [`variant_probe_timeout`](Self::variant_probe_timeout)); a peer that cannot decode
    /// those first batches then gets them again in the other variant.
    pub wire_variant: WireVariant,
    /// How long a new endpoint waits for the answer to its wire-variant probe before it
    /// falls back to [`wire_variant`](Self::wire_variant) (default 5 s); messages sent to
    /// that peer meanwhile are held, not sent. `None` turns probing off.
    pub variant_probe_timeout: Option<Duration>,
    /// How long [`Remote::shutdown`](crate::Remote::shutdown) lets each endpoint send what is
    /// queued before closing it (default 5 s); what is left then goes to dead letters.
    pub drain_timeout: Duration,
    /// Kinds other nodes may spawn here.
    pub kinds: HashMap<String, Props>,
    /// The message types this node can send and receive.
    pub serialization: Serialization,
    /// TLS (default: none).
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub tls: Option<TlsConfig>,
}

impl std::fmt::Debug for RemoteConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut kinds: Vec<&String> = self.kinds.keys().collect();
        kinds.sort();
        let mut f = f.debug_struct("RemoteConfig");
        f.field("host", &self.host)
            .field("port", &self.port)
            .field("advertised_address", &self.advertised_address)
            .field("batch_size", &self.batch_size)
            .field("queue_size", &self.queue_size)
            .field("max_retry_count", &self.max_retry_count)
            .field("retry_interval", &self.retry_interval)
            .field("max_message_size", &self.max_message_size)
            .field("wire_variant", &self.wire_variant)
            .field("variant_probe_timeout", &self.variant_probe_timeout)
            .field("drain_timeout", &self.drain_timeout)
            .field("kinds", &kinds)
            .field("serialization", &self.serialization);
        #[cfg(feature = "tls")]
        f.field("tls", &self.tls);
        f.finish()
    }
}

impl RemoteConfig {
    /// A config binding `host:port` with the default settings.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        RemoteConfig {
            host: host.into(),
            port,
            advertised_address: None,
            batch_size: 1000,
            queue_size: 1_000_000,
            max_retry_count: 5,
            retry_interval: Duration::from_secs(2),
            max_message_size: 4 * 1024 * 1024,
            wire_variant: WireVariant::Current,
            variant_probe_timeout: Some(Duration::from_secs(5)),
            drain_timeout: Duration::from_secs(5),
            kinds: HashMap::new(),
            serialization: Serialization::new(),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
    /// Whether this node serves and dials with TLS (always false without the `tls` feature).
    pub(crate) fn uses_tls(&self) -> bool {
        #[cfg(feature = "tls")]
        return self.tls.is_some();
        #[cfg(not(feature = "tls"))]
        false
    }
    /// Loopback on a free port (handy for tests).
    pub fn local() -> Self {
        Self::new("127.0.0.1", 0)
    }
    /// Advertises `host:port` instead of the bound address.
    pub fn with_advertised_address(mut self, address: impl Into<String>) -> Self {
        self.advertised_address = Some(address.into());
        self
    }
    /// Sets the batch size (at least 1).
    pub fn with_batch_size(mut self, n: usize) -> Self {
        self.batch_size = n.max(1);
        self
    }
    /// Sets the most messages waiting per endpoint (at least 1).
    pub fn with_queue_size(mut self, n: usize) -> Self {
        self.queue_size = n.max(1);
        self
    }
    /// Sets the connection retries and the pause between them.
    pub fn with_retries(mut self, count: u32, interval: Duration) -> Self {
        self.max_retry_count = count.max(1);
        self.retry_interval = interval;
        self
    }
    /// Sets the largest gRPC message, in bytes.
    pub fn with_max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes.max(1024);
        self
    }
    /// Sets how long shutdown drains the endpoints.
    pub fn with_drain_timeout(mut self, limit: Duration) -> Self {
        self.drain_timeout = limit;
        self
    }
    /// Sets the wire variant this node writes to peers whose variant it does not know.
    pub fn with_wire_variant(mut self, v: WireVariant) -> Self {
        self.wire_variant = v;
        self
    }
    /// Sets how long a new endpoint waits for its wire-variant probe (`None`: no probe).
    pub fn with_variant_probe_timeout(mut self, limit: Option<Duration>) -> Self {
        self.variant_probe_timeout = limit;
        self
    }
    /// Registers a kind for remote spawn.
    pub fn with_kind(mut self, kind: impl Into<String>, props: Props) -> Self {
        self.kinds.insert(kind.into(), props);
        self
    }
    /// Serves and dials with TLS.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn with_tls(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }
    /// Serves and dials with mutual TLS ([`TlsConfig::mutual`]): only peers presenting a
    /// certificate signed by `ca_pem` can connect, and this node presents `cert_pem` (with
    /// `key_pem`) when it dials. All three are PEM; they are checked at start.
    ///
    /// ```no_run
    /// use protoactor_remote::{RemoteConfig, TlsConfig};
    ///
    /// let config = RemoteConfig::new("10.0.0.5", 8090).with_mutual_tls(
    ///     std::fs::read("member.crt")?,
    ///     std::fs::read("member.key")?,
    ///     std::fs::read("cluster-ca.crt")?,
    /// );
    /// // The same from files, a missing one named in the error:
    /// let tls = TlsConfig::from_pem_files("member.crt", "member.key", "cluster-ca.crt")?;
    /// let config = RemoteConfig::new("10.0.0.5", 8090).with_tls(tls.with_mutual(true));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn with_mutual_tls(
        self,
        cert_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
        ca_pem: impl Into<Vec<u8>>,
    ) -> Self {
        self.with_tls(TlsConfig::mutual(cert_pem, key_pem, ca_pem))
    }
    /// Uses this message registry.
    pub fn with_serialization(mut self, s: Serialization) -> Self {
        self.serialization = s;
        self
    }
}
