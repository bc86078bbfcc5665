// gobench is protoactor-go's remote benchmark (node 1 and node 2 of its examples) as one
// program, for side-by-side runs with the Rust remote_benchmark example:
//
//	go run ./cmd/gobench            # starts node 2 as a child process, then runs node 1
//
// Node 2 hosts kind "echo"; node 1 remote-spawns it, sends N Pings from its root and counts
// the Pongs; rate = 2N / elapsed.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"

	"protoactor-rs/interop/messages"
)

type echoActor struct{ sender *actor.PID }

func (e *echoActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *messages.StartRemote:
		e.sender = m.Sender
		ctx.Respond(&messages.Start{})
	case *messages.Ping:
		ctx.Send(e.sender, &messages.Pong{})
	}
}

func node2() {
	system := actor.NewActorSystem()
	props := actor.PropsFromProducer(func() actor.Actor { return &echoActor{} },
		actor.WithMailbox(actor.Bounded(1000000)))
	r := remote.NewRemote(system, remote.Configure("127.0.0.1", 0, remote.WithKinds(remote.NewKind("echo", props))))
	r.Start()
	fmt.Printf("READY %s\n", system.Address())
	_, _ = io.Copy(io.Discard, os.Stdin)
}

func node1(address string, n int) {
	system := actor.NewActorSystem()
	r := remote.NewRemote(system, remote.Configure("127.0.0.1", 0))
	r.Start()
	var wg sync.WaitGroup
	wg.Add(1)
	count := 0
	props := actor.PropsFromFunc(func(ctx actor.Context) {
		if _, ok := ctx.Message().(*messages.Pong); ok {
			count++
			if count%50000 == 0 {
				fmt.Println(count)
			}
			if count == n {
				wg.Done()
			}
		}
	}, actor.WithMailbox(actor.Bounded(1000000)))
	pid := system.Root.Spawn(props)
	resp, err := r.SpawnNamed(address, "remote", "echo", 5*time.Second)
	if err != nil {
		panic(err)
	}
	remotePid := resp.Pid
	if _, err := system.Root.RequestFuture(remotePid, &messages.StartRemote{Sender: pid}, 5*time.Second).Result(); err != nil {
		panic(err)
	}
	fmt.Println("Starting to send")
	start := time.Now()
	message := &messages.Ping{}
	for i := 0; i < n; i++ {
		system.Root.Send(remotePid, message)
	}
	wg.Wait()
	elapsed := time.Since(start)
	fmt.Printf("Elapsed %s\n", elapsed)
	fmt.Printf("Msg per sec %v\n", int(float64(n*2)/elapsed.Seconds()))
}

func main() {
	isNode2 := flag.Bool("node2", false, "run as node 2")
	n := flag.Int("messages", 1000000, "messages to send")
	flag.Parse()
	if *isNode2 {
		node2()
		return
	}
	self, _ := os.Executable()
	child := exec.Command(self, "-node2")
	stdin, _ := child.StdinPipe()
	stdout, _ := child.StdoutPipe()
	if err := child.Start(); err != nil {
		panic(err)
	}
	scanner := bufio.NewScanner(stdout)
	address := ""
	for scanner.Scan() {
		if a, ok := strings.CutPrefix(scanner.Text(), "READY "); ok {
			address = strings.TrimSpace(a)
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	node1(address, *n)
	stdin.Close()
	_ = child.Wait()
}
