package main

// The persistence workload on protoactor-go: an event-sourced counter through the
// persistence.Using mixin and Go's in-memory provider (the only provider in the module, and
// it has no batch API), so Go reports persistence:memory and persistence-recovery:memory.

import (
	"math"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/persistence"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

type pAdd struct{}
type pGet struct{}

// memoryProvider hands out one shared in-memory store, so a new actor system recovers what
// an earlier one stored (as a restarted program would from durable storage).
type memoryProvider struct{ state *persistence.InMemoryProvider }

func (p *memoryProvider) GetState() persistence.ProviderState { return p.state }

// pCounter's events are Int64Value: the same protobuf shape as protoactor-rs's bench.Added.
type pCounter struct {
	persistence.Mixin
	value int64
}

func (c *pCounter) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *wrapperspb.Int64Value: // replayed on recovery
		c.value += m.Value
	case *pAdd:
		ev := &wrapperspb.Int64Value{Value: 1}
		c.PersistReceive(ev) // stored, then applied
		c.value += ev.Value
	case *pGet:
		ctx.Respond(c.value)
	}
}

func expectCount(sys *actor.ActorSystem, pid *actor.PID, want int, what string) {
	res, err := sys.Root.RequestFuture(pid, &pGet{}, timeout).Result()
	if err != nil {
		fail("%s: no count from the counter: %v", what, err)
	}
	if v, ok := res.(int64); !ok || v != int64(want) {
		fail("%s: the counter holds %v, expected %d", what, res, want)
	}
}

// persistenceBench stores `events` events one by one, then a new actor system replays them.
// (pgEvents, the PostgreSQL size, has no Go counterpart.)
func persistenceBench(events int) {
	if events <= 0 || events%100 != 0 {
		fail("persistence: EVENTS must be a positive multiple of 100, got %d", events)
	}
	// No snapshots: the interval only fires at index 0, and the counter ignores that request.
	provider := &memoryProvider{state: persistence.NewInMemoryProvider(math.MaxInt32)}
	props := actor.PropsFromProducer(func() actor.Actor { return &pCounter{} },
		actor.WithReceiverMiddleware(persistence.Using(provider)))
	const name = "bench-memory-one"

	sys := newSystem()
	pid, err := sys.Root.SpawnNamed(props, name)
	if err != nil {
		fail("persistence: spawn: %v", err)
	}
	expectCount(sys, pid, 0, "memory")
	start := time.Now()
	for i := 0; i < events; i++ {
		sys.Root.Send(pid, &pAdd{})
	}
	expectCount(sys, pid, events, "memory")
	result("persistence:memory", rate(events, time.Since(start)), "events/s")
	sys.Shutdown()

	// A new program: the actor recovers the journal.
	sys = newSystem()
	start = time.Now()
	pid, err = sys.Root.SpawnNamed(props, name)
	if err != nil {
		fail("persistence: spawn again: %v", err)
	}
	expectCount(sys, pid, events, "memory recovery")
	result("persistence-recovery:memory", rate(events, time.Since(start)), "events/s")
	sys.Shutdown()
}
