//! Members: constructors and the address rules of the Go cluster.

use crate::proto::Member;

impl Member {
    /// A member reachable at `host:port`, with id `id` (for the test and automanaged
    /// providers: the actor system id), hosting `kinds`.
    pub fn new(
        host: impl Into<String>,
        port: u16,
        id: impl Into<String>,
        kinds: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Member {
            host: host.into(),
            port: port as i32,
            id: id.into(),
            kinds: kinds.into_iter().map(Into::into).collect(),
        }
    }

    /// The member's remote address, `host + ":" + port` as Go builds it: the address every
    /// PID of the member carries, and the input of the owner hash.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// True if the member hosts `kind` (exact, case-sensitive).
    pub fn has_kind(&self, kind: &str) -> bool {
        self.kinds.iter().any(|k| k == kind)
    }
}

/// Splits a remote address `host:port` (the port after the last `:`), as a member's host and
/// port. `None` if there is no valid port.
pub fn split_address(address: &str) -> Option<(String, u16)> {
    let (host, port) = address.rsplit_once(':')?;
    Some((host.to_string(), port.parse().ok()?))
}

/// A member with its address computed once, for the owner hash.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AddressedMember {
    pub(crate) member: Member,
    /// Shared with the PIDs resolved to this member (one copy per member, not per PID).
    pub(crate) address: std::sync::Arc<str>,
}

impl AddressedMember {
    pub(crate) fn new(member: Member) -> Self {
        let address = member.address().into();
        Self { member, address }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_is_host_colon_port() {
        let m = Member::new("127.0.0.1", 8090, "a", ["Hello"]);
        assert_eq!(m.address(), "127.0.0.1:8090");
        assert!(m.has_kind("Hello"));
        assert!(!m.has_kind("hello"));
        assert_eq!(
            split_address("127.0.0.1:8090"),
            Some(("127.0.0.1".into(), 8090))
        );
        assert_eq!(split_address("[::1]:80"), Some(("[::1]".into(), 80)));
        assert_eq!(split_address("nonhost"), None);
    }
}
