// goexamples is node2 of protoactor-go's own remote examples, in their shape, for the Rust
// interop suite (crates/protoactor-remote/tests/interop.rs), where a Rust node is node1.
// The examples themselves are a separate module that the module proxy does not serve, so
// their node2 programs are restated here (one per -example), with the port chosen by the
// OS and "READY <address>" printed once remote has started:
//
//   - activate (_examples/remote-activate/node2): kind "hello", whose actor answers
//     messages.HelloRequest with messages.HelloResponse{"Hello from remote node"}.
//   - watch (_examples/remote-watch/node2): kind "remote", an actor that stays alive until it
//     is stopped (node1 spawns it, watches it and stops it or kills node2).
//   - benchmark (_examples/remote-benchmark/node2): an actor named "remote" that answers
//     messages.StartRemote with messages.Start and every messages.Ping with a messages.Pong
//     to the StartRemote's sender.
//
// It runs until stdin closes.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"

	"protoactor-rs/interop/messages"
)

type helloActor struct{}

func (*helloActor) Receive(ctx actor.Context) {
	switch ctx.Message().(type) {
	case *messages.HelloRequest:
		ctx.Respond(&messages.HelloResponse{Message: "Hello from remote node"})
	}
}

type remoteActor struct{}

func (*remoteActor) Receive(ctx actor.Context) {
	switch ctx.Message().(type) {
	case *actor.Started:
		fmt.Fprintln(os.Stderr, "remote actor started", ctx.Self())
	case *actor.Stopped:
		fmt.Fprintln(os.Stderr, "remote actor stopped", ctx.Self())
	}
}

type echoActor struct{ sender *actor.PID }

func (state *echoActor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *messages.StartRemote:
		state.sender = msg.Sender
		ctx.Respond(&messages.Start{})
	case *messages.Ping:
		ctx.Send(state.sender, &messages.Pong{})
	}
}

func main() {
	example := flag.String("example", "", "activate, watch or benchmark")
	flag.Parse()

	system := actor.NewActorSystem()
	var opts []remote.ConfigOption
	switch *example {
	case "activate":
		opts = append(opts, remote.WithKinds(remote.NewKind("hello", actor.PropsFromProducer(func() actor.Actor { return &helloActor{} }))))
	case "watch":
		opts = append(opts, remote.WithKinds(remote.NewKind("remote", actor.PropsFromProducer(func() actor.Actor { return &remoteActor{} }))))
	case "benchmark":
	default:
		fmt.Fprintln(os.Stderr, "unknown -example", *example)
		os.Exit(2)
	}
	r := remote.NewRemote(system, remote.Configure("127.0.0.1", 0, opts...))
	r.Start()
	if *example == "benchmark" {
		props := actor.PropsFromProducer(func() actor.Actor { return &echoActor{} },
			actor.WithMailbox(actor.Bounded(1000000)))
		if _, err := system.Root.SpawnNamed(props, "remote"); err != nil {
			panic(err)
		}
	}

	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(out, "READY %s\n", system.Address())
	out.Flush()
	_, _ = io.Copy(io.Discard, os.Stdin)
	r.Shutdown(true)
}
