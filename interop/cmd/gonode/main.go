// gonode is a protoactor-go node for the Rust interop suite
// (crates/protoactor-remote/tests/interop.rs). It starts remote on 127.0.0.1:<port>, prints
// "READY <address>", hosts the actors below, and shuts down gracefully when stdin closes.
//
//   - "echo": answers messages.Echo with messages.Response (its own PID, the request's
//     headers); sends a second Response to the PID carried inside the Echo; answers
//     messages.JsonEcho that arrives through the JSON serializer (as *remote.JsonMessage).
//     "aardvarks" is a second echo.
//   - "sink": counts messages.Seq after a Command{op:"expect"}, checks their order and
//     reports to the command's report_to.
//   - "control": runs Commands from the test (request, request-dead, request-actor, header,
//     spawn, watch, stop, poison, flood) and reports each outcome as messages.Report to report_to.
//   - kind "goecho": the echo actor, for remote spawn from Rust.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/protobuf/encoding/protojson"

	"protoactor-rs/interop/messages"
)

func echoReceive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *messages.Echo:
		headers := map[string]string{}
		if h := ctx.MessageHeader(); h != nil {
			headers = h.ToMap()
		}
		ctx.Respond(&messages.Response{SomeValue: "go:" + m.Message, From: ctx.Self(), Headers: headers})
		if m.Sender != nil {
			ctx.Send(m.Sender, &messages.Response{SomeValue: "pid-in-message:" + m.Message, From: ctx.Self()})
		}
	case *remote.JsonMessage:
		var e messages.JsonEcho
		if err := protojson.Unmarshal([]byte(m.Json), &e); err != nil || m.TypeName != "messages.JsonEcho" {
			ctx.Respond(&messages.Response{SomeValue: "bad json " + m.TypeName + " " + m.Json})
			return
		}
		ctx.Respond(&messages.Response{SomeValue: fmt.Sprintf("go-json:%s:%d", e.Message, e.Number), From: ctx.Self(), ViaJson: true})
	}
}

type sink struct {
	expect   int64
	next     int64
	inOrder  bool
	reportTo *actor.PID
}

func (s *sink) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *messages.Command:
		s.expect, s.next, s.inOrder, s.reportTo = m.Count, 0, true, m.ReportTo
	case *messages.Seq:
		if m.N != s.next {
			s.inOrder = false
		}
		s.next = m.N + 1
		if s.next == s.expect && s.reportTo != nil {
			ctx.Send(s.reportTo, &messages.Report{Op: "flood-received", Ok: s.inOrder, Count: s.next})
		}
	}
}

type control struct {
	remote   *remote.Remote
	reportTo *actor.PID
}

func report(ctx actor.Context, to *actor.PID, r *messages.Report) {
	ctx.Send(to, r)
}

func (c *control) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *messages.Command:
		c.reportTo = m.ReportTo
		c.run(ctx, m)
	case *messages.Response:
		// The answer to "request-actor": it came to this actor as the request's sender.
		from := ""
		if ctx.Sender() != nil {
			from = ctx.Sender().String()
		}
		report(ctx, c.reportTo, &messages.Report{Op: "request-actor", Ok: true, Detail: m.SomeValue + "|sender=" + from, Pid: m.From})
	}
}

func (c *control) run(ctx actor.Context, m *messages.Command) {
	system := ctx.ActorSystem()
	to := m.ReportTo
	switch m.Op {
	case "request":
		res, err := system.Root.RequestFuture(m.Target, &messages.Echo{Message: "from-go-future"}, 10*time.Second).Result()
		if err != nil {
			report(ctx, to, &messages.Report{Op: m.Op, Ok: false, Detail: err.Error()})
			return
		}
		r, ok := res.(*messages.Response)
		if !ok {
			report(ctx, to, &messages.Report{Op: m.Op, Ok: false, Detail: fmt.Sprintf("unexpected %T", res)})
			return
		}
		report(ctx, to, &messages.Report{Op: m.Op, Ok: true, Detail: r.SomeValue, Pid: r.From})
	case "request-dead":
		_, err := system.Root.RequestFuture(m.Target, &messages.Echo{Message: "nobody"}, 10*time.Second).Result()
		report(ctx, to, &messages.Report{Op: m.Op, Ok: err == actor.ErrDeadLetter, Detail: fmt.Sprint(err)})
	case "request-actor":
		ctx.Request(m.Target, &messages.Echo{Message: "from-go-actor"})
	case "header":
		// RootContext.RequestFuture drops the context's headers, so the envelope is built here.
		f := actor.NewFuture(system, 10*time.Second)
		system.Root.Send(m.Target, &actor.MessageEnvelope{
			Header:  map[string]string{"go-key": "go-value"},
			Message: &messages.Echo{Message: "with-header"},
			Sender:  f.PID(),
		})
		res, err := f.Result()
		if r, ok := res.(*messages.Response); ok && err == nil {
			report(ctx, to, &messages.Report{Op: m.Op, Ok: r.Headers["go-key"] == "go-value", Detail: fmt.Sprint(r.Headers)})
		} else {
			report(ctx, to, &messages.Report{Op: m.Op, Ok: false, Detail: fmt.Sprint(err)})
		}
	case "spawn":
		resp, err := c.remote.SpawnNamed(m.Address, m.Name, m.Kind, 10*time.Second)
		if err != nil {
			report(ctx, to, &messages.Report{Op: m.Op, Ok: false, Detail: err.Error()})
			return
		}
		detail := ""
		if resp.Pid != nil {
			res, err := system.Root.RequestFuture(resp.Pid, &messages.Echo{Message: "spawned"}, 10*time.Second).Result()
			if r, ok := res.(*messages.Response); ok && err == nil {
				detail = r.SomeValue
			} else {
				detail = fmt.Sprint(err)
			}
		}
		report(ctx, to, &messages.Report{Op: m.Op, Ok: true, Status: resp.StatusCode, Pid: resp.Pid, Detail: detail})
	case "watch":
		target := m.Target
		props := actor.PropsFromFunc(func(wctx actor.Context) {
			switch t := wctx.Message().(type) {
			case *actor.Started:
				wctx.Watch(target)
				report(wctx, to, &messages.Report{Op: "watching", Ok: true, Pid: target})
			case *actor.Terminated:
				report(wctx, to, &messages.Report{Op: "terminated", Ok: true, Pid: t.Who, Detail: t.Why.String()})
			}
		})
		ctx.Spawn(props)
	case "stop":
		// Go's remote process sends actor.Stop (a system message) over the wire.
		system.Root.Stop(m.Target)
		report(ctx, to, &messages.Report{Op: m.Op, Ok: true})
	case "poison":
		// actor.PoisonPill is a user message: queued messages run first.
		system.Root.Poison(m.Target)
		report(ctx, to, &messages.Report{Op: m.Op, Ok: true})
	case "flood":
		for i := int64(0); i < m.Count; i++ {
			system.Root.Send(m.Target, &messages.Seq{N: i})
		}
		report(ctx, to, &messages.Report{Op: m.Op, Ok: true, Count: m.Count})
	default:
		report(ctx, to, &messages.Report{Op: m.Op, Ok: false, Detail: "unknown op"})
	}
}

func main() {
	port := flag.Int("port", 0, "port to listen on (0: any free port)")
	flag.Parse()

	system := actor.NewActorSystem()
	echo := actor.PropsFromFunc(echoReceive)
	config := remote.Configure("127.0.0.1", *port, remote.WithKinds(remote.NewKind("goecho", echo)))
	r := remote.NewRemote(system, config)
	r.Start()

	if _, err := system.Root.SpawnNamed(echo, "echo"); err != nil {
		panic(err)
	}
	// The echo again under an id whose bytes also decode as an actor.PID (0x61 reads as
	// field 12, fixed64, and eight bytes follow), for first-message tests.
	if _, err := system.Root.SpawnNamed(echo, "aardvarks"); err != nil {
		panic(err)
	}
	if _, err := system.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return &sink{} }), "sink"); err != nil {
		panic(err)
	}
	if _, err := system.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return &control{remote: r} }), "control"); err != nil {
		panic(err)
	}

	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(out, "READY %s\n", system.Address())
	out.Flush()

	// Runs until the test closes stdin (or kills the process).
	_, _ = io.Copy(io.Discard, os.Stdin)
	r.Shutdown(true)
}
