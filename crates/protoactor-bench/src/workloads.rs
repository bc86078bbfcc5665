//! The workloads, their sizes (full and `--quick`) and the metrics they report.

/// Whether a bigger or a smaller value is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    /// Throughput.
    Higher,
    /// Time, latency, memory.
    Lower,
}

/// A metric a workload reports: its row name and which way is better.
pub struct MetricSpec {
    /// Row name (`workload` or `workload:detail`).
    pub name: &'static str,
    /// Direction.
    pub better: Better,
}

const fn higher(name: &'static str) -> MetricSpec {
    MetricSpec {
        name,
        better: Better::Higher,
    }
}
const fn lower(name: &'static str) -> MetricSpec {
    MetricSpec {
        name,
        better: Better::Lower,
    }
}

/// How a workload's processes run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// One process per implementation (`__run IMPL ...` or the Go program).
    Local,
    /// Two nodes per pair of implementations (Rust and Go, either way round).
    Remote,
    /// Two cluster members of one implementation, each its own process.
    Cluster,
}

/// A workload.
pub struct Workload {
    /// Name on the command line.
    pub name: &'static str,
    /// What it measures (for `--list` and the table's notes).
    pub about: &'static str,
    /// The metrics it reports.
    pub metrics: &'static [MetricSpec],
    /// How its processes run.
    pub shape: Shape,
    /// The local implementations that have this workload (`None`: all of them). The others
    /// are left out of its rows, as the Rust crates are left out of `remote`.
    pub impls: Option<&'static [&'static str]>,
}

/// All workloads, in the order `all` runs them.
pub const WORKLOADS: &[Workload] = &[
    Workload {
        name: "in-process",
        about: "pairs = 2 x cores of ping/echo actors, bursts of 100, bounded(110) mailboxes; \
                protoactor-go's message pattern: a fresh message carrying its sender, sent back \
                to that sender",
        metrics: &[higher("in-process")],
        shape: Shape::Local,
        impls: None,
    },
    Workload {
        name: "in-process-outside",
        about: "in-process with the start messages sent from the harness's main thread, \
                outside the runtime (actix: a thread of its own), the shape before issue 29; \
                in the other rows the driver is a task on the actors' runtime, as Go's is \
                its main goroutine",
        metrics: &[higher("in-process-outside")],
        shape: Shape::Local,
        impls: Some(&["protoactor-rs", "kameo", "ractor", "actix"]),
    },
    Workload {
        name: "spawn",
        about:
            "fan-out-10 request/respond tree over 1M leaves (1.11M actors); peak bytes per actor",
        metrics: &[lower("spawn"), lower("spawn:peak-bytes-per-actor")],
        shape: Shape::Local,
        impls: None,
    },
    Workload {
        name: "spawn-root",
        about: "protoactor-go's own spawn benchmark shape: the same tree and requests, but every \
                actor spawned from the root (top level) and none stops; peak bytes per actor",
        metrics: &[lower("spawn-root"), lower("spawn-root:peak-bytes-per-actor")],
        shape: Shape::Local,
        impls: None,
    },
    Workload {
        name: "savina-ping-pong",
        about: "two actors, 40k round trips",
        metrics: &[higher("savina-ping-pong")],
        shape: Shape::Local,
        impls: None,
    },
    Workload {
        name: "savina-counting",
        about: "1M messages into one counter, then a request for the count",
        metrics: &[higher("savina-counting")],
        shape: Shape::Local,
        impls: None,
    },
    Workload {
        name: "savina-counting-outside",
        about: "savina-counting with the sending loop and the request on the harness's main \
                thread, outside the runtime (actix: a thread of its own)",
        metrics: &[higher("savina-counting-outside")],
        shape: Shape::Local,
        impls: Some(&["protoactor-rs", "kameo", "ractor", "actix"]),
    },
    Workload {
        name: "savina-fork-join",
        about: "fork-join throughput: 60 workers x 10k messages with a little math each",
        metrics: &[higher("savina-fork-join")],
        shape: Shape::Local,
        impls: None,
    },
    Workload {
        name: "savina-fork-join-outside",
        about: "savina-fork-join with the sending loop on the harness's main thread, outside \
                the runtime (actix: a thread of its own)",
        metrics: &[higher("savina-fork-join-outside")],
        shape: Shape::Local,
        impls: Some(&["protoactor-rs", "kameo", "ractor", "actix"]),
    },
    Workload {
        name: "savina-thread-ring",
        about: "100 actors in a ring, a token passed 100k times",
        metrics: &[higher("savina-thread-ring")],
        shape: Shape::Local,
        impls: None,
    },
    Workload {
        name: "savina-big",
        about: "120 actors, each 20k pings to random peers answered by pongs",
        metrics: &[higher("savina-big")],
        shape: Shape::Local,
        impls: None,
    },
    Workload {
        name: "savina-chameneos",
        about: "100 creatures, 200k meetings through one mall actor (4 messages a meeting)",
        metrics: &[higher("savina-chameneos")],
        shape: Shape::Local,
        impls: None,
    },
    Workload {
        name: "skynet",
        about: "1M-leaf fan-out-10 tree, children send sums to their parent and stop",
        metrics: &[lower("skynet")],
        shape: Shape::Local,
        impls: None,
    },
    Workload {
        name: "request",
        about: "100k sequential request/response round trips to an echo actor, per requester: \
                request, a task on the runtime the actors run on (Go: the main goroutine; \
                actix: its arbiter, the actors' thread; protoactor-rs: request_async, sent \
                by the await); request-future, the same task awaiting request_future, sent \
                at once (protoactor-rs); request-outside, block_on from the \
                main thread, outside the runtime (protoactor-rs, kameo, ractor); \
                request-blocking, a plain thread's blocking result() (protoactor-rs); \
                request-actor, an actor requesting and getting the reply in its handler \
                (ctx.Request with the reply as a message; kameo ask, ractor call, actix \
                send().into_actor)",
        metrics: &[
            lower("request:p50"),
            lower("request:p99"),
            lower("request-actor:p50"),
            lower("request-actor:p99"),
            lower("request-future:p50"),
            lower("request-future:p99"),
            lower("request-outside:p50"),
            lower("request-outside:p99"),
            lower("request-blocking:p50"),
            lower("request-blocking:p99"),
        ],
        shape: Shape::Local,
        impls: None,
    },
    Workload {
        name: "idle-memory",
        about: "100k actors spawned, each answers one request; per actor: resident-set growth \
                after the allocator returned its free pages (Go: debug.FreeOSMemory; Rust: \
                malloc_trim) and live heap growth (Go: HeapAlloc; Rust: a counting allocator)",
        metrics: &[lower("idle-memory"), lower("idle-memory:live-heap")],
        shape: Shape::Local,
        impls: None,
    },
    Workload {
        name: "remote",
        about: "two nodes on loopback, 1M Ping/Pong from root with order checked; Rust-Go pairs \
                use WireVariant::Legacy2024 (Go @latest is the 2024 protocol), Rust-Rust the default",
        metrics: &[higher("remote")],
        shape: Shape::Remote,
        impls: None,
    },
    Workload {
        name: "cluster",
        about: "grain request round trips in a cluster of 2 member processes on loopback \
                (automanaged provider, disthash lookup), 1,000 identities of kind echo hosted \
                on both, the caller on member 1, grains activated before timing: requests/s of \
                100 concurrent callers over all grains; p50/p99 of sequential round trips to \
                the grains on member 2, and (cluster-local) to those on member 1 itself; \
                protoactor-rs-management: the same with member 1 serving the management API \
                to a client fetching what the dashboard fetches once a second; \
                cluster-activate: activations/s of the untimed-before warm-up (Rust callers); \
                protoactor-rs-etcd-lookup: the same on the strongly consistent etcd lookup \
                (feature etcd, PROTOACTOR_ETCD_ENDPOINTS); kameo, ractor and actix have no \
                cluster",
        metrics: &[
            higher("cluster-activate"),
            higher("cluster"),
            lower("cluster:p50"),
            lower("cluster:p99"),
            lower("cluster-local:p50"),
            lower("cluster-local:p99"),
        ],
        shape: Shape::Cluster,
        impls: Some(&["protoactor-rs", "protoactor-rs-etcd-lookup", "protoactor-rs-management", "protoactor-go"]),
    },
    Workload {
        name: "pubsub",
        about: "cluster pub/sub, 2 member processes on loopback (as cluster): 1 publisher on \
                member 1 -> 1 topic -> 100 PID subscribers on member 2; messages/s delivered \
                (deliveries over all subscribers, each subscriber counting its own, no \
                shared lock or clock read per delivery) of messages sent through a batching \
                producer, from the first produce to the last delivery; p50/p99 from publish \
                to each subscriber's receipt of messages published one at a time, each once \
                the one before reached every subscriber (one message on an idle path); \
                kameo, ractor and actix have no cluster",
        metrics: &[higher("pubsub"), lower("pubsub:p50"), lower("pubsub:p99")],
        shape: Shape::Cluster,
        impls: Some(&["protoactor-rs", "protoactor-go"]),
    },
    Workload {
        name: "persistence",
        about: "an event-sourced counter, events persisted per second per provider: one \
                persist_event per command, batches of 100 (persistence-batched), 100 actors \
                persisting at once (persistence-100-actors) and replay on \
                restart (persistence-recovery); postgres rows when PROTOACTOR_POSTGRES_URL is \
                set. protoactor-go: its in-memory provider (no batch API, no SQL providers); \
                kameo, ractor and actix have no persistence",
        metrics: &[
            higher("persistence:memory"),
            higher("persistence:sqlite"),
            higher("persistence:postgres"),
            higher("persistence-batched:memory"),
            higher("persistence-batched:sqlite"),
            higher("persistence-batched:postgres"),
            higher("persistence-100-actors:memory"),
            higher("persistence-100-actors:sqlite"),
            higher("persistence-100-actors:postgres"),
            higher("persistence-recovery:memory"),
            higher("persistence-recovery:sqlite"),
            higher("persistence-recovery:postgres"),
        ],
        shape: Shape::Local,
        impls: Some(&["protoactor-rs", "protoactor-go"]),
    },
    Workload {
        name: "persistent-grains",
        about: "a persistent typed grain (protoactor-cluster-build's persistent option) that \
                persists one event per request and answers once it is durable: requests/s of \
                one grain called one request after another, and of GRAINS (1,000) grains called at \
                once (persistent-grains-many); per provider, postgres rows when \
                PROTOACTOR_POSTGRES_URL is set. protoactor-go's generated grains have no \
                persistence, nor do kameo, ractor and actix",
        metrics: &[
            higher("persistent-grains:memory"),
            higher("persistent-grains:sqlite"),
            higher("persistent-grains:postgres"),
            higher("persistent-grains-many:memory"),
            higher("persistent-grains-many:sqlite"),
            higher("persistent-grains-many:postgres"),
        ],
        shape: Shape::Local,
        impls: Some(&["protoactor-rs"]),
    },
];

/// Looks a workload up by name.
pub fn find(name: &str) -> Option<&'static Workload> {
    WORKLOADS.iter().find(|w| w.name == name)
}

/// The size parameters passed to every implementation of `workload`.
pub fn sizes(workload: &str, quick: bool, cores: u64) -> Vec<u64> {
    let q = |full: &[u64], small: &[u64]| if quick { small.to_vec() } else { full.to_vec() };
    match workload {
        "in-process" | "in-process-outside" => {
            q(&[2 * cores, 1_000_000, 100], &[2 * cores, 10_000, 100])
        }
        "spawn" | "spawn-root" | "skynet" => q(&[1_000_000, 10], &[10_000, 10]),
        "savina-ping-pong" => q(&[40_000], &[2_000]),
        "savina-counting" | "savina-counting-outside" => q(&[1_000_000], &[20_000]),
        "savina-fork-join" | "savina-fork-join-outside" => q(&[60, 10_000], &[60, 200]),
        "savina-thread-ring" => q(&[100, 100_000], &[100, 2_000]),
        "savina-big" => q(&[120, 20_000], &[20, 200]),
        "savina-chameneos" => q(&[100, 200_000], &[10, 2_000]),
        "request" => q(&[100_000], &[1_000]),
        "idle-memory" => q(&[100_000], &[2_000]),
        "remote" => q(&[1_000_000], &[10_000]),
        // [identities, sequential round trips, concurrent requests, concurrent callers]
        "cluster" => q(&[1_000, 20_000, 200_000, 100], &[1_000, 1_000, 5_000, 100]),
        // [subscribers, produced messages, one-at-a-time messages]
        "pubsub" => q(&[100, 20_000, 500], &[100, 200, 20]),
        // [events, PostgreSQL one-by-one events]: PostgreSQL commits durably once per event
        // (~300/s here), so its one-by-one row stores fewer.
        "persistence" => q(&[20_000, 2_000], &[200, 20]),
        // [requests to one grain, grains, requests per grain]
        "persistent-grains" => q(&[2_000, 1_000, 10], &[50, 100, 2]),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_workload_has_sizes_and_metrics() {
        for w in WORKLOADS {
            assert!(!sizes(w.name, true, 2).is_empty(), "{}", w.name);
            assert!(!sizes(w.name, false, 2).is_empty(), "{}", w.name);
            assert!(!w.metrics.is_empty());
            assert!(w.metrics[0].name == w.name || w.metrics[0].name.starts_with(w.name));
        }
        assert!(find("skynet").is_some());
        let p = find("persistence").unwrap();
        assert_eq!(p.impls, Some(&["protoactor-rs", "protoactor-go"][..]));
        assert!(find("nope").is_none());
    }
}
