// gopubsub: a protoactor-go cluster member (automanaged provider) for the mixed Go/Rust
// pub/sub tests. It hosts Go's `prototopic` kind (every Go member does) and a `listener`
// grain kind, and takes one command per stdin line:
//
//	subpid <topic> <name>        spawn an actor that prints "GOT <name> <n>" for each
//	                             messages.Seq it gets, SubscribeByPid it; answers OK / ERROR
//	unsubpid <topic> <name>      UnsubscribeByPid that actor; OK / ERROR
//	subid <topic> <identity>     SubscribeByClusterIdentity(<identity>, "listener") (the grain
//	                             prints "GOT grain:<identity> <n>"); OK / ERROR
//	unsubid <topic> <identity>   UnsubscribeByIdentityAndKind; OK / ERROR
//	pub <topic> <from> <to>      Publisher().Publish messages.Seq{N: from..to-1}, one by one;
//	                             OK / ERROR
//	await <n>                    wait (up to 60 s) until the member list has n members; OK / ERROR
//	stoppid <name>               stop that subscriber actor (it stays subscribed); OK
//
// It prints "READY <address> <id>" once started.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/automanaged"
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
	"github.com/asynkron/protoactor-go/remote"

	"protoactor-rs/interop/messages"
)

var (
	outMu sync.Mutex
	out   = bufio.NewWriter(os.Stdout)
)

func println(format string, args ...interface{}) {
	outMu.Lock()
	defer outMu.Unlock()
	fmt.Fprintf(out, format+"\n", args...)
	out.Flush()
}

type listener struct{ identity string }

func (l *listener) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *cluster.ClusterInit:
		l.identity = m.Identity.Identity
	case *messages.Seq:
		println("GOT grain:%s %d", l.identity, m.N)
	}
}

func main() {
	name := flag.String("name", "interop", "cluster name")
	host := flag.String("host", "127.0.0.1", "remote host")
	port := flag.Int("port", 0, "remote port (0: any free port)")
	autoPort := flag.Int("auto-port", 6330, "port of this member's automanaged /_health endpoint")
	peers := flag.String("peers", "", "comma-separated host:port of every member's /_health endpoint")
	flag.Parse()

	var hosts []string
	for _, p := range strings.Split(*peers, ",") {
		if p = strings.TrimSpace(p); p != "" {
			hosts = append(hosts, p)
		}
	}
	system := actor.NewActorSystem()
	kind := cluster.NewKind("listener", actor.PropsFromProducer(func() actor.Actor { return &listener{} }))
	cfg := cluster.Configure(*name, automanaged.NewWithConfig(time.Second, *autoPort, hosts...),
		disthash.New(), remote.Configure(*host, *port), cluster.WithKinds(kind))
	c := cluster.New(system, cfg)
	c.StartMember()
	println("READY %s %s", system.Address(), system.ID)

	pids := map[string]*actor.PID{}
	result := func(err error) {
		if err != nil {
			println("ERROR %s", strings.ReplaceAll(err.Error(), "\n", " "))
		} else {
			println("OK")
		}
	}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) == 0 {
			continue
		}
		switch {
		case f[0] == "subpid" && len(f) == 3:
			label := f[2]
			pid := system.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
				if s, ok := ctx.Message().(*messages.Seq); ok {
					println("GOT %s %d", label, s.N)
				}
			}))
			pids[label] = pid
			_, err := c.SubscribeByPid(f[1], pid)
			result(err)
		case f[0] == "unsubpid" && len(f) == 3:
			_, err := c.UnsubscribeByPid(f[1], pids[f[2]])
			result(err)
		case f[0] == "await" && len(f) == 2:
			n, _ := strconv.Atoi(f[1])
			deadline := time.Now().Add(60 * time.Second)
			for c.MemberList.Members().Len() < n && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if c.MemberList.Members().Len() >= n {
				result(nil)
			} else {
				result(fmt.Errorf("only %d members", c.MemberList.Members().Len()))
			}
		case f[0] == "stoppid" && len(f) == 2:
			system.Root.StopFuture(pids[f[1]]).Wait()
			result(nil)
		case f[0] == "subid" && len(f) == 3:
			_, err := c.SubscribeByClusterIdentity(f[1], cluster.NewClusterIdentity(f[2], "listener"))
			result(err)
		case f[0] == "unsubid" && len(f) == 3:
			_, err := c.UnsubscribeByIdentityAndKind(f[1], f[2], "listener")
			result(err)
		case f[0] == "pub" && len(f) == 4:
			from, _ := strconv.Atoi(f[2])
			to, _ := strconv.Atoi(f[3])
			var err error
			for n := from; n < to && err == nil; n++ {
				_, err = c.Publisher().Publish(context.Background(), f[1], &messages.Seq{N: int64(n)})
			}
			result(err)
		default:
			println("ERROR unknown command %q", in.Text())
		}
	}
	c.Shutdown(true)
}
