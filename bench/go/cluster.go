package main

// The cluster workload on protoactor-go, the same shape as protoactor-rs's
// (crates/protoactor-bench/src/cluster_rs.rs): two members of cluster "bench" on 127.0.0.1,
// each its own process, the automanaged provider (each member serves /_health on its port
// and polls every peer) and the disthash identity lookup, both hosting kind "echo" (a grain
// answering protoactor_bench.Ping{seq} with Pong{seq}).
//
//	cluster-member <health port> <host:port,...>                             member 2
//	cluster-caller <health port> <host:port,...> <ids> <seq> <requests> <conc>  member 1
//
// The caller waits for both members, activates grains id-0 .. id-<ids-1> (warm-up, not
// timed), then measures <seq> sequential round trips (grain i % ids; cluster:p50/p99 over
// those whose grain is on member 2, cluster-local:p50/p99 over those on member 1 itself)
// and <requests> requests by <conc> goroutines, each one request at a time (requests/s).

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/automanaged"
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
	"github.com/asynkron/protoactor-go/remote"

	"protoactor-bench-go/messages"
)

const (
	clusterName    = "bench"
	clusterKind    = "echo"
	clusterRefresh = 500 * time.Millisecond
)

func clusterIdentity(i int) string { return fmt.Sprintf("id-%d", i) }

func startClusterMember(healthPort int, peers string) *cluster.Cluster {
	var hosts []string
	for _, p := range strings.Split(peers, ",") {
		if p = strings.TrimSpace(p); p != "" {
			hosts = append(hosts, p)
		}
	}
	if len(hosts) == 0 {
		fail("cluster: peers must be host:port,..., not %q", peers)
	}
	sys := newSystem()
	echo := actor.PropsFromFunc(func(ctx actor.Context) {
		if m, ok := ctx.Message().(*messages.Ping); ok {
			ctx.Respond(&messages.Pong{Seq: m.Seq})
		}
	})
	provider := automanaged.NewWithConfig(clusterRefresh, healthPort, hosts...)
	cfg := cluster.Configure(clusterName, provider, disthash.New(),
		remote.Configure("127.0.0.1", 0),
		cluster.WithKinds(cluster.NewKind(clusterKind, echo)))
	c := cluster.New(sys, cfg)
	c.StartMember()
	return c
}

// clusterMember is member 2: it hosts "echo", prints READY and serves until stdin closes.
func clusterMember(healthPort int, peers string) {
	startClusterMember(healthPort, peers)
	fmt.Println("READY")
	_, _ = io.Copy(io.Discard, bufio.NewReader(os.Stdin))
	// The process exits right after: the cluster ends with the benchmark.
}

func clusterCall(c *cluster.Cluster, id string, seq int64) {
	res, err := c.Request(id, clusterKind, &messages.Ping{Seq: seq}, cluster.WithTimeout(30*time.Second))
	if err != nil {
		fail("cluster: grain %s: %v", id, err)
	}
	pong, ok := res.(*messages.Pong)
	if !ok || pong.Seq != seq {
		fail("cluster: grain %s answered %v to %d", id, res, seq)
	}
}

// clusterConcurrent runs `conc` goroutines, goroutine k calling grains k, k+conc, ...
// (modulo the identities) one at a time, `total` calls in all.
func clusterConcurrent(c *cluster.Cluster, ids []string, total, conc int) {
	var wg sync.WaitGroup
	for k := 0; k < conc; k++ {
		calls := total / conc
		if k < total%conc {
			calls++
		}
		wg.Add(1)
		go func(k, calls int) {
			defer wg.Done()
			for j := 0; j < calls; j++ {
				clusterCall(c, ids[(k+j*conc)%len(ids)], int64(j))
			}
		}(k, calls)
	}
	waitOrFail(&wg, "cluster")
}

func latencyResults(name string, lat []time.Duration) {
	sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
	n := len(lat)
	result(name+":p50", float64(lat[n/2].Nanoseconds())/1000, "us")
	result(name+":p99", float64(lat[n*99/100].Nanoseconds())/1000, "us")
}

// clusterCaller is member 1: it joins, waits for both members, runs the phases.
func clusterCaller(healthPort int, peers string, nIDs, seq, requests, conc int) {
	if nIDs <= 0 || seq <= 0 || requests <= 0 || conc <= 0 || conc > requests {
		fail("cluster: sizes must be at least 1, and conc at most requests")
	}
	want := len(strings.Split(peers, ","))
	c := startClusterMember(healthPort, peers)
	deadline := time.Now().Add(60 * time.Second)
	for c.MemberList.Members().Len() < want {
		if time.Now().After(deadline) {
			fail("cluster: only %d of %d members joined within 60 s", c.MemberList.Members().Len(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
	ids := make([]string, nIDs)
	for i := range ids {
		ids[i] = clusterIdentity(i)
	}
	// Warm-up: every grain activated (and its PID cached) before any clock starts.
	warm := conc
	if warm > nIDs {
		warm = nIDs
	}
	clusterConcurrent(c, ids, nIDs, warm)
	self := c.ActorSystem.Address()
	remoteGrain := make([]bool, nIDs)
	for i, id := range ids {
		pid := c.Get(id, clusterKind)
		if pid == nil {
			fail("cluster: no PID for grain %s", id)
		}
		remoteGrain[i] = pid.Address != self
	}
	var near, far []time.Duration
	for i := 0; i < seq; i++ {
		k := i % nIDs
		t := time.Now()
		clusterCall(c, ids[k], int64(i))
		took := time.Since(t)
		if remoteGrain[k] {
			far = append(far, took)
		} else {
			near = append(near, took)
		}
	}
	start := time.Now()
	clusterConcurrent(c, ids, requests, conc)
	took := time.Since(start)
	if len(far) == 0 || len(near) == 0 {
		fail("cluster: the sequential calls found %d grains on member 1 and %d on member 2: both must host some (more identities?)", len(near), len(far))
	}
	result("cluster", rate(requests, took), "req/s")
	latencyResults("cluster", far)
	latencyResults("cluster-local", near)
}
