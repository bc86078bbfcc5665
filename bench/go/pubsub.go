package main

// The pubsub workload on protoactor-go, the same shape as protoactor-rs's
// (crates/protoactor-bench/src/pubsub_rs.rs): two members of cluster "bench" on 127.0.0.1
// (automanaged provider, disthash lookup, pub/sub with Go's defaults), one topic,
// <subs> PID subscribers (cluster.SubscribeByPid) on member 2, one publisher on member 1.
//
//	pubsub-member <health port> <host:port,...> <subs>                          member 2
//	pubsub-publisher <health port> <host:port,...> <subs> <messages> <seq>       member 1
//
// Every message is a protoactor_bench.Ping. In the latency phase (and the warm-up) its
// seq is the publish time (Unix ns): a subscriber records the delivery latency under a
// lock shared by all subscribers. In the throughput phase its seq is minus the phase's
// number of messages: a subscriber only counts it, in a counter of its own on its own
// cache line (tally), and reads the clock once, when its count reaches that number (no
// shared lock, no clock read per delivery; as protoactor-rs's side). Member 2's actor
// "pubsub-stats" answers the publisher's commands (Ping with a negative seq, answered
// with a Pong): -10 subscribe the subscribers (once member 2 sees both members),
// -1 deliveries so far (the counters summed), -2 the time of the last delivery (the
// latest of the subscribers'), -3 reset, -4 / -5 latency p50 / p99 (ns); and a Pong with
// seq N is answered (with the latency phase's count) once the subscribers counted N
// deliveries since the last reset.
//
// Phase 1 (pubsub, messages/s delivered): <messages> messages through a
// cluster.BatchingProducer, from the first produce to the last delivery of the last one.
// Phase 2 (pubsub:p50/p99): <seq> messages published one at a time with
// Publisher().Publish, each once the one before reached every subscriber (the Pong
// request above): one message on an idle path. Publish returns once the topic has fanned
// the message out, before any delivery, so publishing the next one on its return measured
// the backlog of member 2's delivery actor instead (as protoactor-rs's side).

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"

	"protoactor-bench-go/messages"
)

const (
	pubsubTopic = "bench-topic"
	statsName   = "pubsub-stats"
)

// tally is one subscriber's count of the throughput phase, padded to a cache line (pair)
// of its own: only its subscriber writes it (so the subscribers share no line and take no
// lock), the stats actor reads it when asked. It mirrors protoactor-rs's Tally.
type tally struct {
	count int64
	last  int64 // when this subscriber got the phase's last message (Unix ns), 0 before
	_     [128 - 16]byte
}

// add counts one throughput-phase message of a phase of `of` messages; the clock is read
// once, by the delivery that completes the count. Only the tally's subscriber calls it.
func (t *tally) add(of int64) {
	c := atomic.LoadInt64(&t.count) + 1
	if c == of {
		atomic.StoreInt64(&t.last, time.Now().UnixNano())
	}
	// After last, so whoever reads the full count reads the time.
	atomic.StoreInt64(&t.count, c)
}

// totals is the deliveries counted by the tallies and the latest of their last deliveries.
func totals(tallies []*tally) (n, last int64) {
	for _, t := range tallies {
		n += atomic.LoadInt64(&t.count)
		if l := atomic.LoadInt64(&t.last); l > last {
			last = l
		}
	}
	return n, last
}

// pubsubStats is what the subscribers saw in the latency phase (and the warm-up).
type pubsubStats struct {
	mu        sync.Mutex
	count     int64
	last      int64
	latencies []int64
	// who waits for the count to reach waitFor (a Pong request), nil if nobody
	waiter  *actor.PID
	waitFor int64
}

// reached takes the waiter if the count has reached its number (s.mu held).
func (s *pubsubStats) reached() *actor.PID {
	if s.waiter == nil || s.count < s.waitFor {
		return nil
	}
	w := s.waiter
	s.waiter = nil
	return w
}

func (s *pubsubStats) record(ctx actor.Context, sent int64) {
	now := time.Now().UnixNano()
	s.mu.Lock()
	s.count++
	s.last = now
	s.latencies = append(s.latencies, now-sent)
	w, count := s.reached(), s.count
	s.mu.Unlock()
	if w != nil {
		ctx.Send(w, &messages.Pong{Seq: count})
	}
}

func (s *pubsubStats) percentile(p int) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.latencies) == 0 {
		return 0
	}
	l := append([]int64(nil), s.latencies...)
	sort.Slice(l, func(a, b int) bool { return l[a] < l[b] })
	return l[len(l)*p/100]
}

func waitMembers(c *cluster.Cluster, n int) {
	deadline := time.Now().Add(60 * time.Second)
	for c.MemberList.Members().Len() < n {
		if time.Now().After(deadline) {
			fail("pubsub: only %d of %d members joined within 60 s", c.MemberList.Members().Len(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// pubsubMember is member 2: the subscribers and the stats actor.
func pubsubMember(healthPort int, peers string, subs int) {
	c := startClusterMember(healthPort, peers)
	stats := &pubsubStats{}
	tallies := make([]*tally, subs)
	for i := range tallies {
		tallies[i] = new(tally)
	}
	// Subscriber i: a throughput-phase message (a negative seq, minus the phase's number of
	// messages) is only counted, in tally i; a latency-phase message (its publish time) is
	// recorded under the stats lock.
	subscriber := func(i int) *actor.Props {
		return actor.PropsFromFunc(func(ctx actor.Context) {
			if m, ok := ctx.Message().(*messages.Ping); ok {
				if m.Seq < 0 {
					tallies[i].add(-m.Seq)
					return
				}
				stats.record(ctx, m.Seq)
			}
		})
	}
	control := actor.PropsFromFunc(func(ctx actor.Context) {
		if w, ok := ctx.Message().(*messages.Pong); ok && ctx.Sender() != nil {
			// Answered now or by the subscriber whose delivery reaches w.Seq (under the
			// lock, so no delivery slips between the check and the wait).
			stats.mu.Lock()
			stats.waiter, stats.waitFor = ctx.Sender(), w.Seq
			to, count := stats.reached(), stats.count
			stats.mu.Unlock()
			if to != nil {
				ctx.Send(to, &messages.Pong{Seq: count})
			}
			return
		}
		m, ok := ctx.Message().(*messages.Ping)
		if !ok {
			return
		}
		var answer int64
		switch m.Seq {
		case -10:
			waitMembers(c, 2)
			for i := 0; i < subs; i++ {
				pid := c.ActorSystem.Root.Spawn(subscriber(i))
				if _, err := c.SubscribeByPid(pubsubTopic, pid); err != nil {
					fail("pubsub: subscribe: %v", err)
				}
			}
		case -1:
			stats.mu.Lock()
			answer = stats.count
			stats.mu.Unlock()
			n, _ := totals(tallies)
			answer += n
		case -2:
			stats.mu.Lock()
			answer = stats.last
			stats.mu.Unlock()
			if _, last := totals(tallies); last > answer {
				answer = last
			}
		case -3:
			stats.mu.Lock()
			stats.count, stats.last, stats.latencies, stats.waiter = 0, 0, nil, nil
			stats.mu.Unlock()
			for _, t := range tallies {
				atomic.StoreInt64(&t.count, 0)
				atomic.StoreInt64(&t.last, 0)
			}
		case -4:
			answer = stats.percentile(50)
		case -5:
			answer = stats.percentile(99)
		}
		ctx.Respond(&messages.Pong{Seq: answer})
	})
	if _, err := c.ActorSystem.Root.SpawnNamed(control, statsName); err != nil {
		fail("pubsub: %v", err)
	}
	fmt.Println("READY")
	_, _ = io.Copy(io.Discard, bufio.NewReader(os.Stdin))
}

// pubsubPublisher is member 1: it drives member 2 and publishes.
func pubsubPublisher(healthPort int, peers string, subs, n, seq int) {
	if subs <= 0 || n <= 0 || seq <= 0 {
		fail("pubsub: sizes must be at least 1")
	}
	c := startClusterMember(healthPort, peers)
	waitMembers(c, 2)
	var stats *actor.PID
	for _, m := range c.MemberList.Members().Members() {
		if m.Address() != c.ActorSystem.Address() {
			stats = actor.NewPID(m.Address(), statsName)
		}
	}
	ask := func(cmd int64) int64 {
		res, err := c.ActorSystem.Root.RequestFuture(stats, &messages.Ping{Seq: cmd}, timeout).Result()
		if err != nil {
			fail("pubsub: member 2 command %d: %v", cmd, err)
		}
		return res.(*messages.Pong).Seq
	}
	awaitDeliveries := func(want int64) {
		deadline := time.Now().Add(timeout)
		for ask(-1) < want {
			if time.Now().After(deadline) {
				fail("pubsub: only %d of %d deliveries", ask(-1), want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	ask(-10)
	// Warm-up: the topic activated, every subscriber reached once.
	publisher := c.Publisher()
	if _, err := publisher.Publish(context.Background(), pubsubTopic, &messages.Ping{Seq: time.Now().UnixNano()}); err != nil {
		fail("pubsub: publish: %v", err)
	}
	awaitDeliveries(int64(subs))
	ask(-3)

	producer := cluster.NewBatchingProducer(publisher, pubsubTopic)
	infos := make([]*cluster.ProduceProcessInfo, 0, n)
	start := time.Now()
	for i := 0; i < n; i++ {
		// A throughput-phase message: minus the phase's number of messages (member 2's
		// subscribers count it and read the clock at their last one).
		info, err := producer.Produce(context.Background(), &messages.Ping{Seq: -int64(n)})
		if err != nil {
			fail("pubsub: produce: %v", err)
		}
		infos = append(infos, info)
	}
	for _, info := range infos {
		<-info.Finished
		if info.Err != nil {
			fail("pubsub: produce: %v", info.Err)
		}
	}
	awaitDeliveries(int64(n * subs))
	took := time.Duration(ask(-2) - start.UnixNano())
	producer.Dispose()
	result("pubsub", rate(n*subs, took), "msg/s")

	// Which member hosts the topic (hashed over the random ports): one network hop to the
	// subscribers from the publisher's member, two (a request and its answer) otherwise.
	host := "subscribers'"
	if tp := c.Get(pubsubTopic, cluster.TopicActorKind); tp != nil && tp.Address == c.ActorSystem.Address() {
		host = "publisher's"
	}
	fmt.Printf("NOTE topic on the %s member\n", host)
	ask(-3)
	// One message in flight: the next is published once every subscriber has this one.
	for i := 1; i <= seq; i++ {
		if _, err := publisher.Publish(context.Background(), pubsubTopic, &messages.Ping{Seq: time.Now().UnixNano()}); err != nil {
			fail("pubsub: publish: %v", err)
		}
		if _, err := c.ActorSystem.Root.RequestFuture(stats, &messages.Pong{Seq: int64(i * subs)}, timeout).Result(); err != nil {
			fail("pubsub: member 2: message %d of %d not delivered: %v", i, seq, err)
		}
	}
	result("pubsub:p50", float64(ask(-4))/1000, "us")
	result("pubsub:p99", float64(ask(-5))/1000, "us")
}
