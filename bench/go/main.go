// protoactor-go side of the protoactor-bench harness: one subcommand per workload, sizes on
// the command line, results as machine-readable lines on stdout:
//
//	RESULT <metric> <value> <unit>
//	RSS <peak resident set in KiB>
//
// The harness (crates/protoactor-bench) builds this with `go build` and runs it once per
// round, so the peak RSS is this implementation's alone.
package main

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"

	"protoactor-bench-go/messages"
)

const timeout = 120 * time.Second

func main() {
	if len(os.Args) < 2 {
		fail("usage: protoactor-bench-go <workload> [sizes...]")
	}
	args := make([]int, 0, len(os.Args)-2)
	for _, a := range os.Args[2:] {
		if strings.Contains(a, ":") { // an address, for the remote workloads
			continue
		}
		n, err := strconv.Atoi(a)
		if err != nil {
			fail("bad size %q: %v", a, err)
		}
		args = append(args, n)
	}
	arg := func(i int) int {
		if i >= len(args) {
			fail("%s: missing size argument %d", os.Args[1], i+1)
		}
		return args[i]
	}
	switch os.Args[1] {
	case "in-process":
		inProcess(arg(0), arg(1), arg(2))
	case "spawn":
		spawnTree("spawn", spawnProps, arg(0), arg(1))
	case "spawn-root":
		spawnTree("spawn-root", spawnRootProps, arg(0), arg(1))
	case "savina-ping-pong":
		pingPong(arg(0))
	case "savina-counting":
		counting(arg(0))
	case "savina-fork-join":
		forkJoin(arg(0), arg(1))
	case "savina-thread-ring":
		threadRing(arg(0), arg(1))
	case "savina-big":
		big(arg(0), arg(1))
	case "savina-chameneos":
		chameneos(arg(0), arg(1))
	case "skynet":
		skynet(arg(0), arg(1))
	case "request":
		requestLatency(arg(0))
	case "idle-memory":
		idleMemory(arg(0))
	case "persistence":
		persistenceBench(arg(0))
	case "remote-server":
		remoteServer(arg(0))
	case "remote-client":
		if len(os.Args) < 5 {
			fail("usage: remote-client <port> <peer host:port> <messages>")
		}
		remoteClient(arg(0), os.Args[3], arg(1))
	case "cluster-member":
		if len(os.Args) < 4 {
			fail("usage: cluster-member <health port> <host:port,...>")
		}
		clusterMember(arg(0), os.Args[3])
		os.Exit(0)
	case "cluster-caller":
		if len(os.Args) < 8 {
			fail("usage: cluster-caller <health port> <host:port,...> <ids> <seq> <requests> <conc>")
		}
		clusterCaller(arg(0), os.Args[3], arg(1), arg(2), arg(3), arg(4))
	case "pubsub-member":
		if len(os.Args) < 5 {
			fail("usage: pubsub-member <health port> <host:port,...> <subs>")
		}
		pubsubMember(arg(0), os.Args[3], arg(1))
		os.Exit(0)
	case "pubsub-publisher":
		if len(os.Args) < 7 {
			fail("usage: pubsub-publisher <health port> <host:port,...> <subs> <messages> <seq>")
		}
		pubsubPublisher(arg(0), os.Args[3], arg(1), arg(2), arg(3))
	default:
		fail("unknown workload %q", os.Args[1])
	}
	fmt.Printf("RSS %d\n", procStatusKB("VmHWM"))
}

func fail(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "protoactor-bench-go: "+format+"\n", a...)
	os.Exit(2)
}

func result(metric string, value float64, unit string) {
	fmt.Printf("RESULT %s %f %s\n", metric, value, unit)
}

func rate(messages int, d time.Duration) float64 { return float64(messages) / d.Seconds() }

// procStatusKB reads a "Vm…" line of /proc/self/status (kB).
func procStatusKB(key string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, key+":") {
			f := strings.Fields(line)
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	return 0
}

func newSystem() *actor.ActorSystem {
	quiet := func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	}
	return actor.NewActorSystem(actor.WithLoggerFactory(quiet))
}

func waitOrFail(wg *sync.WaitGroup, what string) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
		fail("%s: timed out", what)
	}
}

// ---------------------------------------------------------------- in-process

// protoactor-go's own in-process benchmark (_examples/actor-inprocess-benchmark): pairs of
// ping/echo actors, bursts of `batch` messages, Bounded(batch+10) mailboxes, default
// dispatcher; each message is a fresh one carrying its sender, answered with Send.
type ipMsg struct{ Sender *actor.PID }
type ipStart struct{ Sender *actor.PID }

type ipPing struct {
	wg        *sync.WaitGroup
	remaining int
	batch     int
	batchSize int
}

func (p *ipPing) sendBatch(ctx actor.Context, echo *actor.PID) bool {
	if p.remaining == 0 {
		return false
	}
	m := &ipMsg{Sender: ctx.Self()}
	for i := 0; i < p.batchSize; i++ {
		ctx.Send(echo, m)
	}
	p.remaining -= p.batchSize
	p.batch = p.batchSize
	return true
}

func (p *ipPing) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *ipStart:
		p.sendBatch(ctx, m.Sender)
	case *ipMsg:
		p.batch--
		if p.batch > 0 {
			return
		}
		if !p.sendBatch(ctx, m.Sender) {
			p.wg.Done()
		}
	}
}

func inProcess(pairs, perPair, batch int) {
	if perPair%batch != 0 {
		fail("in-process: messages per pair must be a multiple of the batch")
	}
	sys := newSystem()
	var wg sync.WaitGroup
	mb := actor.WithMailbox(actor.Bounded(batch + 10))
	echoProps := actor.PropsFromFunc(func(ctx actor.Context) {
		if m, ok := ctx.Message().(*ipMsg); ok {
			ctx.Send(m.Sender, &ipMsg{Sender: ctx.Self()})
		}
	}, mb)
	pings, echos := make([]*actor.PID, pairs), make([]*actor.PID, pairs)
	for i := 0; i < pairs; i++ {
		pings[i] = sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor {
			return &ipPing{wg: &wg, remaining: perPair, batchSize: batch}
		}, mb))
		echos[i] = sys.Root.Spawn(echoProps)
		wg.Add(1)
	}
	start := time.Now()
	for i := 0; i < pairs; i++ {
		sys.Root.Send(pings[i], &ipStart{Sender: echos[i]})
	}
	waitOrFail(&wg, "in-process")
	result("in-process", rate(2*perPair*pairs, time.Since(start)), "msg/s")
}

// ---------------------------------------------------------------- spawn

// The seed's spawn benchmark: a fan-out tree down to `leaves` leaves summing numbers with
// Request/Respond; leaves stop after answering.
type spawnReq struct{ num, size, div int }

type spawnActor struct {
	replies int
	sum     int64
	replyTo *actor.PID
}

var spawnProps = actor.PropsFromProducer(func() actor.Actor { return &spawnActor{} })

func (s *spawnActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *spawnReq:
		if m.size == 1 {
			ctx.Respond(int64(m.num))
			ctx.Stop(ctx.Self())
			return
		}
		s.replies = m.div
		s.replyTo = ctx.Sender()
		for i := 0; i < m.div; i++ {
			child := ctx.Spawn(spawnProps)
			ctx.Request(child, &spawnReq{num: m.num + i*(m.size/m.div), size: m.size / m.div, div: m.div})
		}
	case int64:
		s.sum += m
		s.replies--
		if s.replies == 0 {
			ctx.Send(s.replyTo, s.sum)
		}
	}
}

// protoactor-go's own spawn benchmark (_examples/actor-spawn-benchmark): the same tree and
// requests, but every actor is spawned from the root and none stops.
type spawnRootActor struct {
	replies int
	sum     int64
	replyTo *actor.PID
}

var spawnRootProps = actor.PropsFromProducer(func() actor.Actor { return &spawnRootActor{} })

func (s *spawnRootActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *spawnReq:
		if m.size == 1 {
			ctx.Respond(int64(m.num))
			return
		}
		s.replies = m.div
		s.replyTo = ctx.Sender()
		for i := 0; i < m.div; i++ {
			child := ctx.ActorSystem().Root.Spawn(spawnRootProps)
			ctx.Request(child, &spawnReq{num: m.num + i*(m.size/m.div), size: m.size / m.div, div: m.div})
		}
	case int64:
		s.sum += m
		s.replies--
		if s.replies == 0 {
			ctx.Send(s.replyTo, s.sum)
		}
	}
}

func treeActors(leaves, div int) int {
	total := 0
	for n := leaves; n >= 1; n /= div {
		total += n
		if n == 1 {
			break
		}
	}
	return total
}

func expectedSum(leaves int) int64 { return int64(leaves) * int64(leaves-1) / 2 }

func spawnTree(workload string, props *actor.Props, leaves, div int) {
	sys := newSystem()
	runtime.GC()
	base := procStatusKB("VmRSS")
	start := time.Now()
	pid := sys.Root.Spawn(props)
	res, err := sys.Root.RequestFuture(pid, &spawnReq{num: 0, size: leaves, div: div}, timeout).Result()
	took := time.Since(start)
	if err != nil {
		fail("%s: %v", workload, err)
	}
	if res.(int64) != expectedSum(leaves) {
		fail("%s: wrong sum %v", workload, res)
	}
	peak := procStatusKB("VmHWM")
	result(workload, float64(took.Microseconds())/1000, "ms")
	result(workload+":peak-bytes-per-actor", float64(peak-base)*1024/float64(treeActors(leaves, div)), "B")
}

// ---------------------------------------------------------------- savina ping-pong

type ppPing struct{}
type ppPong struct{}
type ppStart struct{ pong *actor.PID }

func pingPong(n int) {
	sys := newSystem()
	var wg sync.WaitGroup
	wg.Add(1)
	ping, pong := &ppPing{}, &ppPong{}
	pongPid := sys.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		if _, ok := ctx.Message().(*ppPing); ok {
			ctx.Respond(pong)
		}
	}))
	left := n
	var target *actor.PID
	pingPid := sys.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		switch m := ctx.Message().(type) {
		case *ppStart:
			target = m.pong
			ctx.Request(target, ping)
		case *ppPong:
			left--
			if left == 0 {
				wg.Done()
				return
			}
			ctx.Request(target, ping)
		}
	}))
	start := time.Now()
	sys.Root.Send(pingPid, &ppStart{pong: pongPid})
	waitOrFail(&wg, "ping-pong")
	result("savina-ping-pong", rate(2*n, time.Since(start)), "msg/s")
}

// ---------------------------------------------------------------- savina counting

type cntInc struct{}
type cntGet struct{}

func counting(n int) {
	sys := newSystem()
	count := 0
	counter := sys.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		switch ctx.Message().(type) {
		case *cntInc:
			count++
		case *cntGet:
			ctx.Respond(count)
		}
	}))
	inc := &cntInc{}
	start := time.Now()
	for i := 0; i < n; i++ {
		sys.Root.Send(counter, inc)
	}
	res, err := sys.Root.RequestFuture(counter, &cntGet{}, timeout).Result()
	took := time.Since(start)
	if err != nil || res.(int) != n {
		fail("counting: got %v, %v", res, err)
	}
	result("savina-counting", rate(n, took), "msg/s")
}

// ---------------------------------------------------------------- savina fork-join

type fjMsg struct{}

// work is Savina's per-message computation in fork-join throughput.
func work(seed float64) float64 {
	return math.Sin(seed) * math.Cos(seed)
}

func forkJoin(workers, perWorker int) {
	sys := newSystem()
	var wg sync.WaitGroup
	wg.Add(workers)
	var sink float64
	var sinkMu sync.Mutex
	pids := make([]*actor.PID, workers)
	for i := range pids {
		pids[i] = sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor {
			count, acc := 0, 0.0
			return actor.ReceiveFunc(func(ctx actor.Context) {
				if _, ok := ctx.Message().(*fjMsg); ok {
					acc += work(float64(count))
					count++
					if count == perWorker {
						sinkMu.Lock()
						sink += acc
						sinkMu.Unlock()
						wg.Done()
					}
				}
			})
		}))
	}
	m := &fjMsg{}
	start := time.Now()
	for j := 0; j < perWorker; j++ {
		for _, p := range pids {
			sys.Root.Send(p, m)
		}
	}
	waitOrFail(&wg, "fork-join")
	result("savina-fork-join", rate(workers*perWorker, time.Since(start)), "msg/s")
	_ = sink
}

// ---------------------------------------------------------------- savina thread ring

type trNext struct{ next *actor.PID }
type trToken struct{ left int }

func threadRing(actors, passes int) {
	sys := newSystem()
	var wg sync.WaitGroup
	wg.Add(1)
	pids := make([]*actor.PID, actors)
	for i := range pids {
		pids[i] = sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor {
			var next *actor.PID
			return actor.ReceiveFunc(func(ctx actor.Context) {
				switch m := ctx.Message().(type) {
				case *trNext:
					next = m.next
				case *trToken:
					if m.left == 0 {
						wg.Done()
						return
					}
					ctx.Send(next, &trToken{left: m.left - 1})
				}
			})
		}))
	}
	for i, p := range pids {
		sys.Root.Send(p, &trNext{next: pids[(i+1)%actors]})
	}
	start := time.Now()
	sys.Root.Send(pids[0], &trToken{left: passes})
	waitOrFail(&wg, "thread-ring")
	result("savina-thread-ring", rate(passes, time.Since(start)), "msg/s")
}

// ---------------------------------------------------------------- savina big

type bigStart struct{ peers []*actor.PID }
type bigPing struct{}
type bigPong struct{}

// xorshift is the same small PRNG in every implementation, so all pick peers alike.
type xorshift uint64

func (x *xorshift) next(n int) int {
	v := uint64(*x)
	v ^= v << 13
	v ^= v >> 7
	v ^= v << 17
	*x = xorshift(v)
	return int(v % uint64(n))
}

func big(actors, pings int) {
	sys := newSystem()
	var wg sync.WaitGroup
	wg.Add(actors)
	ping, pong := &bigPing{}, &bigPong{}
	pids := make([]*actor.PID, actors)
	for i := range pids {
		seed := xorshift(uint64(i)*2654435761 + 1)
		pids[i] = sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor {
			var peers []*actor.PID
			sent := 0
			rng := seed
			return actor.ReceiveFunc(func(ctx actor.Context) {
				switch m := ctx.Message().(type) {
				case *bigStart:
					peers = m.peers
					sent = 1
					ctx.Request(peers[rng.next(len(peers))], ping)
				case *bigPing:
					ctx.Respond(pong)
				case *bigPong:
					if sent == pings {
						wg.Done()
						return
					}
					sent++
					ctx.Request(peers[rng.next(len(peers))], ping)
				}
			})
		}))
	}
	start := time.Now()
	for _, p := range pids {
		sys.Root.Send(p, &bigStart{peers: pids})
	}
	waitOrFail(&wg, "big")
	result("savina-big", rate(2*actors*pings, time.Since(start)), "msg/s")
}

// ---------------------------------------------------------------- savina chameneos

type chMeet struct {
	color int
	who   *actor.PID
}
type chMate struct{ color int }
type chStop struct{}

func complement(a, b int) int {
	if a == b {
		return a
	}
	return 3 - a - b
}

func chameneos(creatures, meetings int) {
	sys := newSystem()
	var wg sync.WaitGroup
	wg.Add(1)
	var waiting *chMeet
	done := 0
	stop := &chStop{}
	var creaturePids []*actor.PID
	mall := sys.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		m, ok := ctx.Message().(*chMeet)
		if !ok {
			return
		}
		if done == meetings {
			ctx.Send(m.who, stop)
			return
		}
		if waiting == nil {
			waiting = m
			return
		}
		done++
		ctx.Send(waiting.who, &chMate{color: m.color})
		ctx.Send(m.who, &chMate{color: waiting.color})
		waiting = nil
		if done == meetings {
			wg.Done()
		}
	}))
	for i := 0; i < creatures; i++ {
		color := i % 3
		creaturePids = append(creaturePids, sys.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
			switch m := ctx.Message().(type) {
			case *chStop:
			case *chMate:
				color = complement(color, m.color)
				ctx.Send(mall, &chMeet{color: color, who: ctx.Self()})
			case *chMeet: // the start signal
				ctx.Send(mall, &chMeet{color: color, who: ctx.Self()})
			}
		})))
	}
	start := time.Now()
	for _, p := range creaturePids {
		sys.Root.Send(p, &chMeet{})
	}
	waitOrFail(&wg, "chameneos")
	result("savina-chameneos", rate(4*meetings, time.Since(start)), "msg/s")
}

// ---------------------------------------------------------------- skynet

type skyStart struct{ num, size, div int }

type skyActor struct {
	replies int
	sum     int64
}

var skyProps = actor.PropsFromProducer(func() actor.Actor { return &skyActor{} })

func (s *skyActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *skyStart:
		if m.size == 1 {
			ctx.Send(ctx.Parent(), int64(m.num))
			ctx.Stop(ctx.Self())
			return
		}
		s.replies = m.div
		for i := 0; i < m.div; i++ {
			child := ctx.Spawn(skyProps)
			ctx.Send(child, &skyStart{num: m.num + i*(m.size/m.div), size: m.size / m.div, div: m.div})
		}
	case int64:
		s.sum += m
		s.replies--
		if s.replies == 0 {
			ctx.Send(ctx.Parent(), s.sum)
			ctx.Stop(ctx.Self())
		}
	}
}

func skynet(leaves, div int) {
	sys := newSystem()
	res := make(chan int64, 1)
	start := time.Now()
	sys.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		switch m := ctx.Message().(type) {
		case *actor.Started:
			child := ctx.Spawn(skyProps)
			ctx.Send(child, &skyStart{num: 0, size: leaves, div: div})
		case int64:
			res <- m
		}
	}))
	select {
	case sum := <-res:
		took := time.Since(start)
		if sum != expectedSum(leaves) {
			fail("skynet: wrong sum %d", sum)
		}
		result("skynet", float64(took.Microseconds())/1000, "ms")
	case <-time.After(timeout):
		fail("skynet: timed out")
	}
}

// ---------------------------------------------------------------- request latency

type reqPing struct{ n int }

func requestLatency(n int) {
	sys := newSystem()
	echo := sys.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		if m, ok := ctx.Message().(*reqPing); ok {
			ctx.Respond(m.n)
		}
	}))
	lat := make([]time.Duration, n)
	for i := 0; i < n; i++ {
		t := time.Now()
		res, err := sys.Root.RequestFuture(echo, &reqPing{n: i}, 5*time.Second).Result()
		lat[i] = time.Since(t)
		if err != nil || res.(int) != i {
			fail("request: got %v, %v", res, err)
		}
	}
	latencyResults("request", lat)

	// request-actor: the requester is an actor using ctx.Request, the reply arriving as a
	// message in its Receive, as protoactor-go actors request from each other.
	actorLat := make([]time.Duration, 0, n)
	done := make(chan struct{})
	next := 0
	var sent time.Time
	sys.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		switch m := ctx.Message().(type) {
		case *actor.Started:
			sent = time.Now()
			ctx.Request(echo, &reqPing{n: next})
		case int:
			actorLat = append(actorLat, time.Since(sent))
			if m != next {
				fail("request-actor: got %d for %d", m, next)
			}
			next++
			if next == n {
				close(done)
				return
			}
			sent = time.Now()
			ctx.Request(echo, &reqPing{n: next})
		}
	}))
	select {
	case <-done:
	case <-time.After(timeout):
		fail("request-actor: timed out")
	}
	latencyResults("request-actor", actorLat)
}

// ---------------------------------------------------------------- idle memory

// idleMemory spawns n actors, has each answer one request (so each is started and has
// handled a message), then reports per actor the growth of the resident set after
// debug.FreeOSMemory (a GC that also returns the freed pages to the OS, as the Rust rows
// read theirs after malloc_trim) and the growth of the live heap (HeapAlloc after a GC).
func idleMemory(n int) {
	sys := newSystem()
	var ms runtime.MemStats
	debug.FreeOSMemory()
	base := procStatusKB("VmRSS")
	runtime.ReadMemStats(&ms)
	baseHeap := ms.HeapAlloc
	props := actor.PropsFromFunc(func(ctx actor.Context) {
		if m, ok := ctx.Message().(*reqPing); ok {
			ctx.Respond(m.n)
		}
	})
	pids := make([]*actor.PID, n)
	for i := range pids {
		pids[i] = sys.Root.Spawn(props)
	}
	for i, p := range pids {
		res, err := sys.Root.RequestFuture(p, &reqPing{n: i}, timeout).Result()
		if err != nil || res.(int) != i {
			fail("idle-memory: got %v, %v", res, err)
		}
	}
	debug.FreeOSMemory()
	rss := procStatusKB("VmRSS")
	runtime.ReadMemStats(&ms)
	heap := ms.HeapAlloc
	result("idle-memory", float64(rss-base)*1024/float64(n), "B")
	result("idle-memory:live-heap", (float64(heap)-float64(baseHeap))/float64(n), "B")
	runtime.KeepAlive(pids)
}

// ---------------------------------------------------------------- remote

// remoteServer is node 2: kind "echo" answers each Ping with a Pong of the same seq. It
// prints READY and serves until its stdin closes.
func remoteServer(port int) {
	sys := newSystem()
	echo := actor.PropsFromFunc(func(ctx actor.Context) {
		if m, ok := ctx.Message().(*messages.Ping); ok {
			ctx.Respond(&messages.Pong{Seq: m.Seq})
		}
	}, actor.WithMailbox(actor.Bounded(1000000)))
	cfg := remote.Configure("127.0.0.1", port, remote.WithKinds(remote.NewKind("echo", echo)))
	r := remote.NewRemote(sys, cfg)
	r.Start()
	fmt.Println("READY")
	_, _ = io.Copy(io.Discard, bufio.NewReader(os.Stdin))
	r.Shutdown(false)
}

// remoteClient is node 1: it remote-spawns "echo" on the peer, sends `n` Pings from the
// root with a local actor as sender, which checks that the Pongs come back in order.
func remoteClient(port int, peer string, n int) {
	sys := newSystem()
	r := remote.NewRemote(sys, remote.Configure("127.0.0.1", port))
	r.Start()
	var wg sync.WaitGroup
	wg.Add(1)
	expect := int64(0)
	var orderErr error
	local := sys.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		if m, ok := ctx.Message().(*messages.Pong); ok {
			if m.Seq != expect && orderErr == nil {
				orderErr = fmt.Errorf("pong %d arrived when %d was expected", m.Seq, expect)
			}
			expect++
			if expect == int64(n) {
				wg.Done()
			}
		}
	}, actor.WithMailbox(actor.Bounded(1000000))))
	var echo *actor.PID
	for try := 0; ; try++ {
		res, err := r.SpawnNamed(peer, "echo", "echo", 5*time.Second)
		if err == nil && res.Pid != nil {
			echo = res.Pid
			break
		}
		if try == 20 {
			fail("remote: cannot spawn echo on %s: %v", peer, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	start := time.Now()
	for i := 0; i < n; i++ {
		sys.Root.RequestWithCustomSender(echo, &messages.Ping{Seq: int64(i)}, local)
	}
	waitOrFail(&wg, "remote")
	took := time.Since(start)
	if orderErr != nil {
		fail("remote: %v", orderErr)
	}
	result("remote", rate(2*n, took), "msg/s")
	r.Shutdown(false)
}
