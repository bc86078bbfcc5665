//! Per-member gossip signatures (feature `tls`; Rust-only clusters with mutual TLS,
//! [`ClusterConfig::with_member_signatures`](crate::ClusterConfig::with_member_signatures)):
//! each member signs its own values with its TLS private key and publishes its certificate
//! (DER) as its own value under [`CERT_KEY`]. A value filed under member X is taken only if
//! it carries a signature of the key of the certificate X published, and that certificate
//! chains to the CA the remote trusts and names the host of X's address as the provider
//! lists it. A member holding a certificate for host H can no longer forge values for a
//! member on another host (with the shared secret of [`auth`](super::auth) it could).
//!
//! Work is bounded: a certificate is checked once per (member, certificate) and the outcome
//! cached (one entry per listed member); a certificate over
//! [`MAX_CERT_LEN`](protoactor_remote::certs::MAX_CERT_LEN) is refused unparsed; only values
//! newer than the ones held are verified (older ones are never merged).
//!
//! protoactor-go members neither sign nor publish a certificate: a cluster in this mode
//! cannot have Go members (their values are refused).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use parking_lot::Mutex;
use prost_types::Any;
use protoactor_remote::certs::{verify_signature, CertSigner, CertVerifier};
use protoactor_remote::TlsConfig;

use super::auth::signed_message;
use crate::proto::{GossipKeyValue, GossipMemberState};

/// Key of a member's own certificate (DER), with member signatures.
pub const CERT_KEY: &str = "cert";
/// The type URL of the [`CERT_KEY`] value (raw DER, not a protobuf message).
pub const CERT_TYPE_URL: &str = "protoactor-rs/x509-der";

/// The host of a listed member, by id (`None`: not listed).
pub type HostOf = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// This member's signer and the checks of the others' certificates.
pub struct MemberSignatures {
    signer: CertSigner,
    verifier: CertVerifier,
    host_of: HostOf,
    /// member id -> (its certificate, whether it passed), one entry per member.
    checked: Mutex<HashMap<String, (Vec<u8>, bool)>>,
}

impl fmt::Debug for MemberSignatures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemberSignatures")
            .field("signer", &self.signer)
            .field("verifier", &self.verifier)
            .field("checked", &self.checked.lock().len())
            .finish()
    }
}

/// What [`MemberSignatures::filter`] dropped.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dropped {
    /// Values without a valid signature of the member's certificate (or with no usable
    /// certificate to check them with).
    pub(crate) values: u64,
    /// Certificates refused (another CA, another host, unparsable, oversized).
    pub(crate) certificates: u64,
}

impl MemberSignatures {
    /// Signs with `tls`'s certificate and key, trusts `tls`'s CA, and finds a member's host
    /// with `host_of`.
    pub fn new(tls: &TlsConfig, host_of: HostOf) -> Result<Self, protoactor_remote::TlsError> {
        Ok(MemberSignatures {
            signer: CertSigner::new(tls)?,
            verifier: CertVerifier::new(tls)?,
            host_of,
            checked: Mutex::new(HashMap::new()),
        })
    }

    /// This member's certificate as its [`CERT_KEY`] value.
    pub(crate) fn certificate_value(&self) -> Any {
        Any {
            type_url: CERT_TYPE_URL.into(),
            value: self.signer.certificate().to_vec(),
        }
    }

    /// Signs `value`, member `member_id`'s value of `key`, with this member's key.
    pub fn sign(&self, member_id: &str, key: &str, value: &mut GossipKeyValue) {
        value.signature = self.signer.sign(&signed_message(member_id, key, value));
    }

    /// True if `cert` (DER) passes for member `member_id`: of the CA, naming its host.
    /// Checked once per (member, certificate).
    fn certificate_ok(&self, member_id: &str, cert: &[u8]) -> bool {
        if let Some((c, ok)) = self.checked.lock().get(member_id) {
            if c == cert {
                return *ok;
            }
        }
        let ok = match (self.host_of)(member_id) {
            Some(host) => match self.verifier.check(cert, &host) {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(member = %member_id, error = %e, "gossip: a certificate published for a member refused");
                    false
                }
            },
            None => false,
        };
        // Oversized certificates are not cached (their bytes would be kept).
        if cert.len() <= protoactor_remote::certs::MAX_CERT_LEN {
            self.checked
                .lock()
                .insert(member_id.to_string(), (cert.to_vec(), ok));
        }
        ok
    }

    /// Forgets the certificates of members `listed` no longer knows.
    pub(crate) fn prune(&self, listed: &dyn Fn(&str) -> bool) {
        self.checked.lock().retain(|id, _| listed(id));
    }

    /// Drops from `incoming` (member `member_id`'s values) those not signed by the member's
    /// certificate: the newer one it carries, else the one held (`local`). Values not newer
    /// than those held are left alone: the merge never takes them.
    pub(crate) fn filter(
        &self,
        member_id: &str,
        incoming: &mut GossipMemberState,
        local: Option<&GossipMemberState>,
    ) -> Dropped {
        let held = |key: &str| local.and_then(|m| m.values.get(key));
        let newer = |key: &str, v: &GossipKeyValue| {
            held(key).is_none_or(|o| o.sequence_number < v.sequence_number)
        };
        let cert = incoming
            .values
            .get(CERT_KEY)
            .filter(|v| newer(CERT_KEY, v))
            .or_else(|| held(CERT_KEY))
            .and_then(|v| v.value.as_ref())
            .filter(|a| a.type_url == CERT_TYPE_URL)
            .map(|a| a.value.clone());
        let mut dropped = Dropped::default();
        let cert = match cert {
            Some(c) if self.certificate_ok(member_id, &c) => Some(c),
            Some(_) => {
                dropped.certificates = 1;
                None
            }
            None => None,
        };
        let before = incoming.values.len();
        incoming.values.retain(|key, v| {
            !newer(key, v)
                || cert.as_deref().is_some_and(|c| {
                    verify_signature(c, &signed_message(member_id, key, v), &v.signature)
                })
        });
        dropped.values = (before - incoming.values.len()) as u64;
        if dropped.values > 0 {
            tracing::debug!(member = %member_id, dropped = dropped.values, "gossip: values not signed by the member's certificate; dropped");
        }
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gossip::state::tests::kv;
    use protoactor_testkit::certs::TestCa;

    /// Members "a" on 127.0.0.2 and "b" on 127.0.0.3, as the provider lists them.
    fn hosts() -> HostOf {
        Arc::new(|id: &str| match id {
            "a" => Some("127.0.0.2".to_string()),
            "b" => Some("127.0.0.3".to_string()),
            _ => None,
        })
    }

    fn signatures(ca: &TestCa, host: &str) -> MemberSignatures {
        let cert = ca.issue_for("member", &[host]);
        let tls = TlsConfig::mutual(cert.cert_pem, cert.key_pem, ca.pem());
        MemberSignatures::new(&tls, hosts()).unwrap()
    }

    /// `member`'s state as `signer` writes it: its certificate (seq 1) and a heartbeat.
    fn published(signer: &MemberSignatures, member: &str, seq: i64) -> GossipMemberState {
        let mut st = GossipMemberState::default();
        let mut cert = GossipKeyValue {
            sequence_number: 1,
            value: Some(signer.certificate_value()),
            ..Default::default()
        };
        signer.sign(member, CERT_KEY, &mut cert);
        let mut beat = kv(seq, "x");
        signer.sign(member, "heartbeat", &mut beat);
        st.values.insert(CERT_KEY.into(), cert);
        st.values.insert("heartbeat".into(), beat);
        st
    }

    #[test]
    fn values_pass_only_under_their_members_certificate_of_the_ca_naming_its_host() {
        let ca = TestCa::new("cluster");
        let a = signatures(&ca, "127.0.0.2");
        let receiver = signatures(&ca, "127.0.0.9");

        // a's own values, its certificate with them: taken.
        let mut st = published(&a, "a", 7);
        assert_eq!(receiver.filter("a", &mut st, None), Dropped::default());
        assert_eq!(st.values.len(), 2);
        // Later values checked with the certificate held.
        let held = st.clone();
        let mut later = GossipMemberState::default();
        let mut beat = kv(8, "y");
        a.sign("a", "heartbeat", &mut beat);
        later.values.insert("heartbeat".into(), beat.clone());
        assert_eq!(
            receiver.filter("a", &mut later, Some(&held)),
            Dropped::default()
        );
        // Altered after signing: dropped.
        let mut altered = GossipMemberState::default();
        beat.sequence_number = 9;
        altered.values.insert("heartbeat".into(), beat);
        assert_eq!(receiver.filter("a", &mut altered, Some(&held)).values, 1);
        assert!(altered.values.is_empty());

        // a's values moved to b (a's certificate names 127.0.0.2, b is on 127.0.0.3):
        // the certificate is refused and every value dropped.
        let mut moved = published(&a, "a", 7);
        let d = receiver.filter("b", &mut moved, None);
        assert_eq!((d.certificates, d.values), (1, 2));
        // Re-signed by a for b's id: still a's certificate, still the wrong host.
        let mut forged = published(&a, "b", 7);
        let d = receiver.filter("b", &mut forged, None);
        assert_eq!((d.certificates, d.values), (1, 2));
        // b's real certificate held, a value a signed for b: dropped (not b's key).
        let b = signatures(&ca, "127.0.0.3");
        let b_state = published(&b, "b", 3);
        let mut st = b_state.clone();
        assert_eq!(receiver.filter("b", &mut st, None), Dropped::default());
        let mut beat = kv(4, "forged");
        a.sign("b", "heartbeat", &mut beat);
        let mut forged = GossipMemberState::default();
        forged.values.insert("heartbeat".into(), beat);
        let d = receiver.filter("b", &mut forged, Some(&b_state));
        assert_eq!((d.certificates, d.values), (0, 1));
        // Unsigned, and no certificate at all: dropped.
        let mut bare = GossipMemberState::default();
        bare.values.insert("heartbeat".into(), kv(1, "x"));
        assert_eq!(receiver.filter("a", &mut bare, None).values, 1);

        // A certificate of another CA for the right host: refused.
        let other = signatures(&TestCa::new("other"), "127.0.0.2");
        let mut st = published(&other, "a", 7);
        let d = receiver.filter("a", &mut st, None);
        assert_eq!((d.certificates, d.values), (1, 2));
        // A member the provider does not list has no host: refused.
        let mut st = published(&a, "nobody", 7);
        assert_eq!(receiver.filter("nobody", &mut st, None).certificates, 1);
    }

    #[test]
    fn a_certificate_is_checked_once_and_an_oversized_one_is_refused_uncached() {
        let ca = TestCa::new("cluster");
        let a = signatures(&ca, "127.0.0.2");
        let receiver = signatures(&ca, "127.0.0.9");
        let mut st = published(&a, "a", 7);
        receiver.filter("a", &mut st, None);
        assert_eq!(receiver.checked.lock().len(), 1);
        let cached = receiver.checked.lock()["a"].clone();
        assert!(cached.1);
        let mut st = published(&a, "a", 8);
        receiver.filter("a", &mut st, None);
        assert_eq!(receiver.checked.lock()["a"], cached);

        let mut huge = GossipMemberState::default();
        huge.values.insert(
            CERT_KEY.into(),
            GossipKeyValue {
                sequence_number: 1,
                value: Some(Any {
                    type_url: CERT_TYPE_URL.into(),
                    value: vec![0x30; protoactor_remote::certs::MAX_CERT_LEN + 1],
                }),
                ..Default::default()
            },
        );
        let d = receiver.filter("b", &mut huge, None);
        assert_eq!((d.certificates, d.values), (1, 1));
        assert!(!receiver.checked.lock().contains_key("b"));
        receiver.prune(&|id| id != "a");
        assert!(receiver.checked.lock().is_empty());
    }
}
