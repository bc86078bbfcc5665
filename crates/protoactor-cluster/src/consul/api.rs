//! The Consul agent's HTTP API as the provider uses it: where the agent is and the timings
//! ([`ConsulConfig`]), the documents it takes and gives (registrations, health entries), and
//! how Go reads them (check status aggregation, members from health entries).

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::proto::Member;

/// Settings of the Consul provider (Go's defaults).
#[derive(Debug, Clone)]
pub struct ConsulConfig {
    /// The agent's HTTP address, `host:port` (Go: `CONSUL_HTTP_ADDR`, else `127.0.0.1:8500`).
    pub address: String,
    /// The TTL of the service check (Go: 3 s).
    pub ttl: Duration,
    /// Time between two TTL updates (Go: 1 s).
    pub refresh_ttl: Duration,
    /// How long a critical service stays registered before the agent removes it (Go: 60 s).
    pub deregister_critical: Duration,
    /// The longest hold of one blocking query (Go: 20 s).
    pub blocking_wait: Duration,
    /// Longest wait for a non-blocking request.
    pub request_timeout: Duration,
}

impl ConsulConfig {
    /// Go's defaults with the agent at `CONSUL_HTTP_ADDR` (else `127.0.0.1:8500`).
    pub fn from_env() -> Self {
        let address = std::env::var("CONSUL_HTTP_ADDR")
            .ok()
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| "127.0.0.1:8500".into());
        Self::new(address)
    }

    /// Go's defaults with the agent at `address` (`host:port`, an `http://` prefix allowed).
    pub fn new(address: impl Into<String>) -> Self {
        let address = address.into();
        ConsulConfig {
            address: address
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .to_string(),
            ttl: Duration::from_secs(3),
            refresh_ttl: Duration::from_secs(1),
            deregister_critical: Duration::from_secs(60),
            blocking_wait: Duration::from_secs(20),
            request_timeout: Duration::from_secs(5),
        }
    }

    /// Sets the check TTL.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Sets the time between TTL updates.
    pub fn with_refresh_ttl(mut self, refresh: Duration) -> Self {
        self.refresh_ttl = refresh;
        self
    }

    /// Sets how long a critical service stays registered.
    pub fn with_deregister_critical(mut self, after: Duration) -> Self {
        self.deregister_critical = after;
        self
    }

    /// Sets the longest hold of one blocking query.
    pub fn with_blocking_wait(mut self, wait: Duration) -> Self {
        self.blocking_wait = wait;
        self
    }
}

/// Go's `time.Duration.String()` (`3s`, `1m0s`, `1.5s`, `500ms`), as Go's provider writes the
/// check durations.
pub fn go_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".into();
    }
    if nanos < 1_000_000_000 {
        // Below a second Go picks ms/µs/ns with a fraction; whole milliseconds suffice here.
        if nanos.is_multiple_of(1_000_000) {
            return format!("{}ms", nanos / 1_000_000);
        }
        return format!("{nanos}ns");
    }
    let total_secs = d.as_secs();
    let frac = d.subsec_nanos();
    let (h, m, s) = (total_secs / 3600, (total_secs / 60) % 60, total_secs % 60);
    let mut secs = s.to_string();
    if frac > 0 {
        let f = format!("{frac:09}");
        secs.push('.');
        secs.push_str(f.trim_end_matches('0'));
    }
    match (h, m) {
        (0, 0) => format!("{secs}s"),
        (0, m) => format!("{m}m{secs}s"),
        (h, m) => format!("{h}h{m}m{secs}s"),
    }
}

/// The check of a registration (Go's `AgentServiceCheck`, only the fields Go sets).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ServiceCheck {
    /// The TTL, a Go duration string.
    #[serde(rename = "TTL", default, skip_serializing_if = "String::is_empty")]
    pub ttl: String,
    /// How long critical before deregistration, a Go duration string.
    #[serde(
        rename = "DeregisterCriticalServiceAfter",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub deregister_critical_service_after: String,
}

/// The body of `PUT /v1/agent/service/register` as Go's provider sends it (Go's
/// `AgentServiceRegistration`: empty fields omitted, `"Checks":null` always present).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ServiceRegistration {
    /// Service id (the actor system id).
    #[serde(rename = "ID", default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// Service name (the cluster).
    #[serde(rename = "Name", default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The kinds.
    #[serde(rename = "Tags", default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// Remote port.
    #[serde(rename = "Port", default, skip_serializing_if = "is_zero")]
    pub port: i64,
    /// Remote host.
    #[serde(rename = "Address", default, skip_serializing_if = "String::is_empty")]
    pub address: String,
    /// `{"id": <member id>}`.
    #[serde(rename = "Meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<HashMap<String, String>>,
    /// The TTL check.
    #[serde(rename = "Check", default, skip_serializing_if = "Option::is_none")]
    pub check: Option<ServiceCheck>,
    /// Always `null` from Go.
    #[serde(rename = "Checks", default)]
    pub checks: Option<Vec<ServiceCheck>>,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

impl ServiceRegistration {
    /// The registration of `member` in `cluster` with `config`'s check, as Go builds it.
    pub fn of_member(cluster: &str, member: &Member, config: &ConsulConfig) -> Self {
        ServiceRegistration {
            id: member.id.clone(),
            name: cluster.to_string(),
            tags: (!member.kinds.is_empty()).then(|| member.kinds.clone()),
            port: i64::from(member.port),
            address: member.host.clone(),
            meta: Some(HashMap::from([("id".to_string(), member.id.clone())])),
            check: Some(ServiceCheck {
                ttl: go_duration(config.ttl),
                deregister_critical_service_after: go_duration(config.deregister_critical),
            }),
            checks: None,
        }
    }
}

/// One entry of `GET /v1/health/service/<name>` (the fields read here).
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(default)]
pub struct ServiceEntry {
    /// The service instance.
    #[serde(rename = "Service")]
    pub service: Option<AgentService>,
    /// Its checks (the node's and the service's).
    #[serde(rename = "Checks")]
    pub checks: Vec<HealthCheck>,
}

/// A service instance in a health entry.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(default)]
pub struct AgentService {
    /// Service id.
    #[serde(rename = "ID")]
    pub id: String,
    /// Service name.
    #[serde(rename = "Service")]
    pub service: String,
    /// Tags (the kinds).
    #[serde(rename = "Tags")]
    pub tags: Option<Vec<String>>,
    /// Address.
    #[serde(rename = "Address")]
    pub address: String,
    /// Port.
    #[serde(rename = "Port")]
    pub port: i64,
    /// Meta (`id`).
    #[serde(rename = "Meta")]
    pub meta: Option<HashMap<String, String>>,
}

/// A check in a health entry.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(default)]
pub struct HealthCheck {
    /// Check id (`service:<id>`, `serfHealth`, ...).
    #[serde(rename = "CheckID")]
    pub check_id: String,
    /// `passing`, `warning`, `critical` or `maintenance`.
    #[serde(rename = "Status")]
    pub status: String,
}

/// Go's `HealthChecks.AggregatedStatus()`: maintenance beats critical beats warning beats
/// passing; no checks is passing.
pub fn aggregated_status(checks: &[HealthCheck]) -> &'static str {
    let (mut warning, mut critical, mut maintenance) = (false, false, false);
    for c in checks {
        if c.check_id == "_node_maintenance" || c.check_id.starts_with("_service_maintenance:") {
            maintenance = true;
            continue;
        }
        match c.status.as_str() {
            "passing" => {}
            "warning" => warning = true,
            "critical" => critical = true,
            _ => return "",
        }
    }
    if maintenance {
        "maintenance"
    } else if critical {
        "critical"
    } else if warning {
        "warning"
    } else {
        // Only passing checks, or none.
        "passing"
    }
}

/// The members in a health answer, as Go reads them: entries with at least one check, all
/// passing; id = `Meta.id`, or `<cluster>@<address>:<port>` without one.
pub fn members_of(cluster: &str, entries: &[ServiceEntry]) -> Vec<Member> {
    let mut out = Vec::new();
    for e in entries {
        let Some(s) = &e.service else { continue };
        if e.checks.is_empty() || aggregated_status(&e.checks) != "passing" {
            continue;
        }
        let Ok(port) = i32::try_from(s.port) else {
            tracing::warn!(service = %s.id, port = s.port, "consul: skipping a service with a bad port");
            continue;
        };
        let id = s
            .meta
            .as_ref()
            .and_then(|m| m.get("id"))
            .filter(|id| !id.is_empty())
            .cloned()
            .unwrap_or_else(|| format!("{cluster}@{}:{}", s.address, s.port));
        out.push(Member {
            host: s.address.clone(),
            port,
            id,
            kinds: s.tags.clone().unwrap_or_default(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(Duration::from_secs(3)), "3s");
        assert_eq!(go_duration(Duration::from_secs(60)), "1m0s");
        assert_eq!(go_duration(Duration::from_secs(3725)), "1h2m5s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_millis(500)), "500ms");
    }

    #[test]
    fn registration_body_is_gos() {
        let m = Member::new("127.0.0.1", 8090, "sysid", ["Hello", "prototopic"]);
        let r = ServiceRegistration::of_member("my-cluster", &m, &ConsulConfig::new("x:1"));
        let v: serde_json::Value = serde_json::to_value(&r).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "ID": "sysid", "Name": "my-cluster", "Tags": ["Hello", "prototopic"],
                "Port": 8090, "Address": "127.0.0.1", "Meta": {"id": "sysid"},
                "Check": {"TTL": "3s", "DeregisterCriticalServiceAfter": "1m0s"},
                "Checks": null
            })
        );
    }

    fn check(id: &str, status: &str) -> HealthCheck {
        HealthCheck {
            check_id: id.into(),
            status: status.into(),
        }
    }

    #[test]
    fn aggregated_status_as_go() {
        assert_eq!(
            aggregated_status(&[
                check("serfHealth", "passing"),
                check("service:a", "passing")
            ]),
            "passing"
        );
        assert_eq!(
            aggregated_status(&[
                check("serfHealth", "passing"),
                check("service:a", "critical")
            ]),
            "critical"
        );
        assert_eq!(
            aggregated_status(&[check("service:a", "warning")]),
            "warning"
        );
        assert_eq!(
            aggregated_status(&[
                check("_node_maintenance", "critical"),
                check("service:a", "passing")
            ]),
            "maintenance"
        );
        assert_eq!(aggregated_status(&[check("service:a", "bogus")]), "");
    }

    #[test]
    fn members_from_health_entries() {
        let entries: Vec<ServiceEntry> = serde_json::from_str(
            r#"[
            {"Node":{"Node":"n"},"Service":{"ID":"a","Service":"c","Tags":["k"],"Address":"10.0.0.1","Port":1,"Meta":{"id":"a"}},
             "Checks":[{"CheckID":"serfHealth","Status":"passing"},{"CheckID":"service:a","Status":"passing"}]},
            {"Service":{"ID":"b","Service":"c","Tags":null,"Address":"10.0.0.2","Port":2,"Meta":null},
             "Checks":[{"CheckID":"service:b","Status":"passing"}]},
            {"Service":{"ID":"d","Service":"c","Address":"10.0.0.3","Port":3,"Meta":{"id":"d"}},
             "Checks":[{"CheckID":"service:d","Status":"critical"}]},
            {"Service":{"ID":"e","Service":"c","Address":"10.0.0.4","Port":4},"Checks":[]}
        ]"#,
        )
        .unwrap();
        let ms = members_of("c", &entries);
        let ids: Vec<&str> = ms.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["a", "c@10.0.0.2:2"]);
        assert_eq!(ms[0].kinds, ["k"]);
        assert_eq!((ms[1].host.as_str(), ms[1].port), ("10.0.0.2", 2));
    }
}
