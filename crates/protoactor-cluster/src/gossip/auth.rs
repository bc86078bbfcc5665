//! Signed gossip (protoactor-rs only): with a cluster secret, each member signs its own
//! values — HMAC-SHA256 over its member id, the key, the sequence number and the value — and
//! every member drops values whose signature does not verify. A peer without the secret
//! cannot inject or forge gossip, and a member with it cannot speak for another (the
//! signature covers the member id the value is filed under, so a value cannot be moved to
//! another member; a member could still sign values in another's name with the shared
//! secret: the secret authenticates the cluster, not each member).
//!
//! The signature travels in `GossipKeyValue.signature` (field 100, a protoactor-rs
//! extension of Go's message). protoactor-go members neither sign nor check it: a cluster
//! with a secret cannot have Go members (their values are refused as unsigned).

use std::fmt;
use std::sync::Arc;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::proto::GossipKeyValue;

type HmacSha256 = Hmac<Sha256>;

/// The shortest secret taken, in bytes.
pub const MIN_SECRET_LEN: usize = 16;

/// The shared secret of a cluster whose members sign their gossip
/// ([`ClusterConfig::with_gossip_secret`](crate::ClusterConfig::with_gossip_secret)).
#[derive(Clone)]
pub struct GossipSecret(Arc<[u8]>);

impl GossipSecret {
    /// A secret from its bytes (at least 16; use 32 random bytes).
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, crate::error::ClusterError> {
        let bytes = bytes.into();
        if bytes.len() < MIN_SECRET_LEN {
            return Err(crate::error::ClusterError::WeakSecret {
                len: bytes.len(),
                min: MIN_SECRET_LEN,
            });
        }
        Ok(GossipSecret(bytes.into()))
    }

    fn mac(&self, member_id: &str, key: &str, value: &GossipKeyValue) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(&signed_message(member_id, key, value));
        mac
    }

    /// Signs `value`, member `member_id`'s value of `key` (the local timestamp is not
    /// covered: each receiver sets its own).
    pub(crate) fn sign(&self, member_id: &str, key: &str, value: &mut GossipKeyValue) {
        value.signature = self
            .mac(member_id, key, value)
            .finalize()
            .into_bytes()
            .to_vec();
    }

    /// True if `value` carries a valid signature of `member_id`'s value of `key`
    /// (compared in constant time).
    pub(crate) fn verify(&self, member_id: &str, key: &str, value: &GossipKeyValue) -> bool {
        self.mac(member_id, key, value)
            .verify_slice(&value.signature)
            .is_ok()
    }
}

/// What a signature of member `member_id`'s value of `key` covers: the member id, the key,
/// the sequence number and the value, each length-prefixed so no two different values share
/// an input (the local timestamp is not covered: each receiver sets its own). The HMAC of a
/// [`GossipSecret`] and the certificate signatures of member signatures sign it.
pub(crate) fn signed_message(member_id: &str, key: &str, value: &GossipKeyValue) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + member_id.len() + key.len());
    let mut field = |bytes: &[u8]| {
        out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        out.extend_from_slice(bytes);
    };
    field(member_id.as_bytes());
    field(key.as_bytes());
    field(&value.sequence_number.to_le_bytes());
    match &value.value {
        Some(any) => {
            field(any.type_url.as_bytes());
            field(&any.value);
        }
        None => field(b"\xffnone"),
    }
    out
}

/// How a cluster's gossip values are signed: a shared secret, or each member's certificate.
#[derive(Clone, Debug)]
pub(crate) enum Signing {
    /// HMAC with the cluster's secret.
    Secret(GossipSecret),
    /// Each member's TLS key, checked against the certificate it published.
    #[cfg(feature = "tls")]
    Certs(Arc<super::certs::MemberSignatures>),
}

impl Signing {
    /// Signs `value`, member `member_id`'s value of `key`.
    pub(crate) fn sign(&self, member_id: &str, key: &str, value: &mut GossipKeyValue) {
        match self {
            Signing::Secret(s) => s.sign(member_id, key, value),
            #[cfg(feature = "tls")]
            Signing::Certs(c) => c.sign(member_id, key, value),
        }
    }
}

impl fmt::Debug for GossipSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GossipSecret(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gossip::state::tests::kv;

    #[test]
    fn a_signature_covers_member_key_sequence_and_value() {
        let s = GossipSecret::new(*b"0123456789abcdef").unwrap();
        let mut v = kv(7, "x");
        s.sign("a", "heartbeat", &mut v);
        assert!(s.verify("a", "heartbeat", &v));
        assert!(
            !s.verify("b", "heartbeat", &v),
            "filed under another member"
        );
        assert!(!s.verify("a", "left", &v), "under another key");
        let mut higher = v.clone();
        higher.sequence_number = 8;
        assert!(!s.verify("a", "heartbeat", &higher), "renumbered");
        let mut changed = v.clone();
        changed.value.as_mut().unwrap().value.push(0);
        assert!(!s.verify("a", "heartbeat", &changed), "altered value");
        let other = GossipSecret::new(*b"fedcba9876543210").unwrap();
        assert!(!other.verify("a", "heartbeat", &v), "another secret");
        let mut unsigned = v.clone();
        unsigned.signature.clear();
        assert!(!s.verify("a", "heartbeat", &unsigned));
        assert!(GossipSecret::new(*b"short").is_err());
    }
}
