//! Certificates as identities (feature `tls`; Rust-only clusters): what binds a node's
//! claims to the certificate its mutual-TLS connections present. [`CertSigner`] signs with
//! this node's TLS key, [`CertVerifier`] checks that another node's certificate chains to
//! the cluster's CA and names a host, and [`verify_signature`] checks a signature with a
//! certificate's key. The server uses [`names_host`] for peer address binding
//! ([`TlsConfig::with_peer_address_binding`]): a connection may claim only sender addresses
//! whose host its client certificate names.
//!
//! No cryptography here: rustls (ring provider) signs, rustls-webpki parses and verifies.

use std::collections::HashMap;

use rustls::crypto::ring::default_provider;
use rustls::sign::Signer;
use rustls::SignatureScheme;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, TrustAnchor, UnixTime};

use crate::config::{TlsConfig, TlsError};

/// The largest certificate (DER) checked, in bytes; a larger one is refused unparsed.
pub const MAX_CERT_LEN: usize = 16 * 1024;

/// Signs with this node's TLS private key; the signature names its scheme (two bytes, big
/// endian), so any key type rustls signs with (ECDSA, Ed25519, RSA-PSS) can be verified.
pub struct CertSigner {
    cert: CertificateDer<'static>,
    signer: Box<dyn Signer>,
}

impl std::fmt::Debug for CertSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertSigner")
            .field("cert", &format_args!("{} bytes", self.cert.len()))
            .field("scheme", &self.signer.scheme())
            .finish()
    }
}

impl CertSigner {
    /// The signer of `tls`'s certificate (its first PEM certificate) and key.
    pub fn new(tls: &TlsConfig) -> Result<Self, TlsError> {
        let cert = CertificateDer::pem_slice_iter(&tls.cert_pem)
            .next()
            .ok_or_else(|| TlsError("cert_pem: no PEM certificate found".into()))?
            .map_err(|e| TlsError(format!("cert_pem: bad PEM: {e}")))?;
        let key = PrivateKeyDer::from_pem_slice(&tls.key_pem)
            .map_err(|e| TlsError(format!("key_pem: no PEM private key: {e}")))?;
        let key = rustls::crypto::ring::sign::any_supported_type(&key)
            .map_err(|e| TlsError(format!("key_pem: unusable key: {e}")))?;
        let schemes = default_provider()
            .signature_verification_algorithms
            .supported_schemes();
        let signer = key
            .choose_scheme(&schemes)
            .ok_or_else(|| TlsError("key_pem: no signature scheme for this key".into()))?;
        Ok(CertSigner { cert, signer })
    }

    /// This node's certificate, DER.
    pub fn certificate(&self) -> &[u8] {
        &self.cert
    }

    /// The signature of `message` (scheme, then signature); empty if the key failed to
    /// sign (a signature that verifies nowhere, never a panic).
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        match self.signer.sign(message) {
            Ok(sig) => {
                let mut out = Vec::with_capacity(2 + sig.len());
                out.extend_from_slice(&u16::from(self.signer.scheme()).to_be_bytes());
                out.extend_from_slice(&sig);
                out
            }
            Err(e) => {
                tracing::warn!(error = %e, "signing with the TLS key failed");
                Vec::new()
            }
        }
    }
}

/// Why a certificate was refused by [`CertVerifier::check`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    /// Over [`MAX_CERT_LEN`].
    #[error("certificate of {0} bytes over the limit of {MAX_CERT_LEN}")]
    TooLarge(usize),
    /// Not a certificate, or not one of the trusted CA's (expired, wrong usage, ...).
    #[error("certificate refused: {0}")]
    Untrusted(String),
    /// A certificate of the CA that does not name the host.
    #[error("certificate does not name host {0}")]
    WrongHost(String),
}

/// Checks other nodes' certificates against the CA(s) of a TLS config.
pub struct CertVerifier {
    roots: Vec<TrustAnchor<'static>>,
}

impl std::fmt::Debug for CertVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertVerifier")
            .field("roots", &self.roots.len())
            .finish()
    }
}

impl CertVerifier {
    /// A verifier trusting `tls.ca_pem` (every certificate in it).
    pub fn new(tls: &TlsConfig) -> Result<Self, TlsError> {
        let mut roots = Vec::new();
        for c in CertificateDer::pem_slice_iter(&tls.ca_pem) {
            let c = c.map_err(|e| TlsError(format!("ca_pem: bad PEM: {e}")))?;
            let anchor = webpki::anchor_from_trusted_cert(&c)
                .map_err(|e| TlsError(format!("ca_pem: not a CA certificate: {e}")))?;
            roots.push(anchor.to_owned());
        }
        if roots.is_empty() {
            return Err(TlsError("ca_pem: no PEM certificate found".into()));
        }
        Ok(CertVerifier { roots })
    }

    /// Ok if `cert` (DER) chains to a trusted CA, is valid now for client authentication
    /// (what the mutual-TLS server accepts) and names `host` (a SAN: DNS name or IP).
    pub fn check(&self, cert: &[u8], host: &str) -> Result<(), CertError> {
        if cert.len() > MAX_CERT_LEN {
            return Err(CertError::TooLarge(cert.len()));
        }
        let der = CertificateDer::from(cert);
        let ee = webpki::EndEntityCert::try_from(&der)
            .map_err(|e| CertError::Untrusted(e.to_string()))?;
        ee.verify_for_usage(
            default_provider().signature_verification_algorithms.all,
            &self.roots,
            &[],
            UnixTime::now(),
            webpki::KeyUsage::client_auth(),
            None,
            None,
        )
        .map_err(|e| CertError::Untrusted(e.to_string()))?;
        if !names(&ee, host) {
            return Err(CertError::WrongHost(host.to_string()));
        }
        Ok(())
    }
}

fn names(ee: &webpki::EndEntityCert<'_>, host: &str) -> bool {
    ServerName::try_from(host).is_ok_and(|n| ee.verify_is_valid_for_subject_name(&n).is_ok())
}

/// True if `cert` (DER) names `host` (a SAN: DNS name or IP); false for anything else,
/// unparsable or oversized included. The chain is not checked here.
pub fn names_host(cert: &[u8], host: &str) -> bool {
    cert.len() <= MAX_CERT_LEN
        && webpki::EndEntityCert::try_from(&CertificateDer::from(cert))
            .is_ok_and(|ee| names(&ee, host))
}

/// True if `signature` (as [`CertSigner::sign`] writes it) is `cert`'s key's signature of
/// `message`. The certificate itself is not checked here ([`CertVerifier::check`]).
pub fn verify_signature(cert: &[u8], message: &[u8], signature: &[u8]) -> bool {
    let (Some(scheme), Some(sig)) = (signature.get(..2), signature.get(2..)) else {
        return false;
    };
    let scheme = SignatureScheme::from(u16::from_be_bytes([scheme[0], scheme[1]]));
    let der = CertificateDer::from(cert);
    let Ok(ee) = webpki::EndEntityCert::try_from(&der) else {
        return false;
    };
    default_provider()
        .signature_verification_algorithms
        .mapping
        .iter()
        .filter(|(s, _)| *s == scheme)
        .flat_map(|(_, algs)| algs.iter())
        .any(|alg| ee.verify_signature(*alg, message, sig).is_ok())
}

/// The host part of `host:port` (`[v6]:port` gives `v6`).
pub fn host_of(address: &str) -> &str {
    let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// Peer address binding of one inbound connection: the addresses its client certificate
/// allows, each checked once (a bounded cache: a peer cycling through addresses costs a
/// parse each, never memory).
pub(crate) struct AddressBinding {
    cert: CertificateDer<'static>,
    checked: HashMap<String, bool>,
    /// True once a refusal was logged (once per connection).
    pub(crate) warned: bool,
}

const BINDING_CACHE: usize = 64;

impl AddressBinding {
    pub(crate) fn new(cert: CertificateDer<'static>) -> Self {
        AddressBinding {
            cert,
            checked: HashMap::new(),
            warned: false,
        }
    }

    /// True if the connection's certificate names the host of `address`. An empty address
    /// claims no node (a PID of the receiving node itself) and is allowed.
    pub(crate) fn allows(&mut self, address: &str) -> bool {
        if address.is_empty() {
            return true;
        }
        if let Some(&ok) = self.checked.get(address) {
            return ok;
        }
        let ok = names_host(&self.cert, host_of(address));
        if self.checked.len() >= BINDING_CACHE {
            self.checked.clear();
        }
        self.checked.insert(address.to_string(), ok);
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use protoactor_testkit::certs::TestCa;

    /// A CA (PEM) and a mutual-TLS config with a certificate it signs for `host` only.
    fn ca_and_cert(host: &str) -> (String, TlsConfig) {
        let ca = TestCa::new("ca");
        let cert = ca.issue_for("member", &[host]);
        (
            ca.pem(),
            TlsConfig::mutual(cert.cert_pem, cert.key_pem, ca.pem()),
        )
    }

    #[test]
    fn a_signature_verifies_only_with_its_certificate_and_message() {
        let (_, tls) = ca_and_cert("127.0.0.2");
        let (_, other) = ca_and_cert("127.0.0.2");
        let signer = CertSigner::new(&tls).unwrap();
        let sig = signer.sign(b"value");
        assert!(verify_signature(signer.certificate(), b"value", &sig));
        assert!(!verify_signature(signer.certificate(), b"valuf", &sig));
        let other = CertSigner::new(&other).unwrap();
        assert!(!verify_signature(other.certificate(), b"value", &sig));
        assert!(!verify_signature(signer.certificate(), b"value", &sig[..1]));
        assert!(!verify_signature(b"not a certificate", b"value", &sig));
    }

    #[test]
    fn a_certificate_is_checked_for_its_ca_and_host() {
        let (ca, tls) = ca_and_cert("127.0.0.2");
        let (other_ca, _) = ca_and_cert("127.0.0.2");
        let cert = CertSigner::new(&tls).unwrap().certificate().to_vec();
        let v = CertVerifier::new(&tls).unwrap();
        assert_eq!(v.check(&cert, "127.0.0.2"), Ok(()));
        assert_eq!(
            v.check(&cert, "127.0.0.3"),
            Err(CertError::WrongHost("127.0.0.3".into()))
        );
        let stranger = CertVerifier::new(&TlsConfig::mutual("", "", other_ca)).unwrap();
        assert!(matches!(
            stranger.check(&cert, "127.0.0.2"),
            Err(CertError::Untrusted(_))
        ));
        assert!(matches!(
            v.check(&vec![0x30; MAX_CERT_LEN + 1], "127.0.0.2"),
            Err(CertError::TooLarge(_))
        ));
        assert!(matches!(
            v.check(b"junk", "h"),
            Err(CertError::Untrusted(_))
        ));
        assert!(CertVerifier::new(&TlsConfig::mutual("", "", ca.into_bytes())).is_ok());
    }

    #[test]
    fn address_binding_allows_only_hosts_the_certificate_names() {
        let (_, tls) = ca_and_cert("127.0.0.2");
        let cert = CertSigner::new(&tls).unwrap().certificate().to_vec();
        let mut b = AddressBinding::new(CertificateDer::from(cert));
        assert!(b.allows("127.0.0.2:4000"));
        assert!(!b.allows("127.0.0.3:4000"));
        assert!(!b.allows("localhost:4000"));
        assert!(b.allows(""), "no address claims no node");
        for port in 0..200 {
            assert!(!b.allows(&format!("127.0.0.9:{port}")));
        }
        assert!(b.checked.len() <= BINDING_CACHE);
        assert_eq!(host_of("[::1]:80"), "::1");
        assert_eq!(host_of("h:1"), "h");
    }
}
