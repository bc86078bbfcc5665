//! What the etcd provider ([`crate::etcd`]) and the etcd identity lookup
//! ([`crate::etcd_lookup`]) share (feature `etcd`): the endpoints, the key prefix, the
//! timeouts, how a session connects and how a request is bounded. One piece of code, so the
//! two clients cannot drift apart.

use std::future::Future;
use std::time::Duration;

use etcd_client::{Client, ConnectOptions};

use crate::error::ClusterError;

/// The connection settings of an etcd client of this crate: the `client` field of
/// [`EtcdConfig`](crate::etcd::EtcdConfig) and
/// [`EtcdLookupConfig`](crate::etcd_lookup::EtcdLookupConfig), set with their `with_*`
/// builders.
#[derive(Debug, Clone)]
pub struct EtcdClientConfig {
    /// etcd client endpoints (`http://127.0.0.1:2379` or `127.0.0.1:2379`).
    pub endpoints: Vec<String>,
    /// Prefix of every key (no trailing `/`).
    pub base_key: String,
    /// Longest wait for a connection (default 5 s, Go's dial timeout).
    pub connect_timeout: Duration,
    /// Longest wait for one etcd request.
    pub request_timeout: Duration,
    /// Pause before reconnecting after a failure.
    pub retry_interval: Duration,
}

impl EtcdClientConfig {
    pub(crate) fn new(
        endpoints: impl IntoIterator<Item = impl Into<String>>,
        base_key: &str,
        request_timeout: Duration,
        retry_interval: Duration,
    ) -> Self {
        EtcdClientConfig {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            base_key: base_key.to_string(),
            connect_timeout: Duration::from_secs(5),
            request_timeout,
            retry_interval,
        }
    }

    /// The base key without a trailing `/`.
    pub(crate) fn set_base_key(&mut self, base_key: impl Into<String>) {
        self.base_key = base_key.into().trim_end_matches('/').to_string();
    }

    /// `Err` naming `who` when no endpoint is configured.
    pub(crate) fn check_endpoints(&self, who: &str) -> Result<(), ClusterError> {
        if self.endpoints.is_empty() {
            return Err(ClusterError::Provider(format!(
                "{who}: no endpoints configured"
            )));
        }
        Ok(())
    }

    /// Connects within the connect timeout, with HTTP/2 keep-alives every `keep_alive`
    /// (each answered within the request timeout), so a silent network death ends the
    /// session's streams too.
    pub(crate) async fn connect(&self, keep_alive: Duration) -> Result<Client, String> {
        let options = ConnectOptions::new()
            .with_connect_timeout(self.connect_timeout)
            .with_keep_alive(keep_alive, self.request_timeout);
        match tokio::time::timeout(
            self.connect_timeout,
            Client::connect(&self.endpoints, Some(options)),
        )
        .await
        {
            Ok(r) => r.map_err(|e| format!("connect: {e}")),
            Err(_) => Err("connect: timed out".into()),
        }
    }

    /// One etcd request bounded by the request timeout; the error names `what`.
    pub(crate) async fn timed<T>(
        &self,
        what: &str,
        f: impl Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T, String> {
        timed(self.request_timeout, what, f).await
    }
}

/// `f` bounded by `limit`; the error names `what`.
pub(crate) async fn timed<T>(
    limit: Duration,
    what: &str,
    f: impl Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, String> {
    match tokio::time::timeout(limit, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Err(_) => Err(format!("{what}: timed out")),
    }
}

/// A TTL in whole seconds for an etcd lease: rounded up, at least `min`.
pub(crate) fn whole_secs(ttl: Duration, min: u64) -> i64 {
    let s = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
    s.max(min) as i64
}

/// The `with_*` builders of the shared settings, for a config type with a `client:
/// EtcdClientConfig` field (written once, documented once).
macro_rules! etcd_client_builders {
    () => {
        /// Sets the base key (no trailing `/`).
        pub fn with_base_key(mut self, base_key: impl Into<String>) -> Self {
            self.client.set_base_key(base_key);
            self
        }

        /// Sets the pause before reconnecting after a failure.
        pub fn with_retry_interval(mut self, retry: std::time::Duration) -> Self {
            self.client.retry_interval = retry;
            self
        }

        /// Sets the longest wait for a connection; the start fails with the connection
        /// error when the first session cannot connect in this time.
        pub fn with_connect_timeout(mut self, timeout: std::time::Duration) -> Self {
            self.client.connect_timeout = timeout;
            self
        }

        /// Sets the longest wait for one etcd request.
        pub fn with_request_timeout(mut self, timeout: std::time::Duration) -> Self {
            self.client.request_timeout = timeout;
            self
        }
    };
}
pub(crate) use etcd_client_builders;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_round_up_to_whole_seconds_with_a_floor() {
        assert_eq!(whole_secs(Duration::from_millis(2500), 1), 3);
        assert_eq!(whole_secs(Duration::from_secs(3), 1), 3);
        assert_eq!(whole_secs(Duration::ZERO, 1), 1);
        assert_eq!(whole_secs(Duration::ZERO, 2), 2);
    }

    #[test]
    fn base_keys_lose_trailing_slashes_and_endpoints_are_required() {
        let mut c = EtcdClientConfig::new(["x"], "/p", Duration::ZERO, Duration::ZERO);
        c.set_base_key("/q//");
        assert_eq!(c.base_key, "/q");
        assert!(c.check_endpoints("etcd").is_ok());
        let none =
            EtcdClientConfig::new(Vec::<String>::new(), "/p", Duration::ZERO, Duration::ZERO);
        let err = none.check_endpoints("etcd").unwrap_err().to_string();
        assert!(err.contains("etcd: no endpoints configured"), "{err}");
    }
}
