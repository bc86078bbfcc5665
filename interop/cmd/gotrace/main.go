// gotrace is a protoactor-go node for the cross-language tracing test
// (crates/protoactor-remote/tests/tracing_otel.rs). It traces with the OpenTelemetry Go SDK
// (in-memory exporter) and W3C trace-context propagation through protoactor-go's message
// headers. It starts remote on 127.0.0.1, prints "READY <address>", then for a stdin line
// "call <address> <id>":
//
//   - starts a span "go client", injects it into the header of a messages.Echo sent (as a
//     request) to the actor <id> on <address>, carrying the PID of its actor "back";
//   - "back" opens a span "go receive Echo" for each message, the child of the span in the
//     message's header (protoactor-go's receiver middleware API);
//   - once the response and the call back have arrived, prints each finished span as
//     "SPAN <name> <trace id> <span id> <parent span id>" and then "DONE".
package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"protoactor-rs/interop/messages"
)

var w3c = propagation.TraceContext{}

// tracingReceiver opens a span per message, the child of the span in the message header.
func tracingReceiver(tp *sdktrace.TracerProvider) actor.ReceiverMiddleware {
	return func(next actor.ReceiverFunc) actor.ReceiverFunc {
		return func(c actor.ReceiverContext, envelope *actor.MessageEnvelope) {
			if _, ok := envelope.Message.(*messages.Echo); !ok {
				next(c, envelope)
				return
			}
			carrier := propagation.MapCarrier{}
			for k, v := range envelope.Header {
				carrier[k] = v
			}
			parent := w3c.Extract(context.Background(), carrier)
			_, span := tp.Tracer("gotrace").Start(parent, "go receive Echo")
			next(c, envelope)
			span.End()
		}
	}
}

func hasSpan(exporter *tracetest.InMemoryExporter, name string) bool {
	for _, s := range exporter.GetSpans() {
		if s.Name == name {
			return true
		}
	}
	return false
}

func main() {
	exporter := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exporter))

	system := actor.NewActorSystem()
	r := remote.NewRemote(system, remote.Configure("127.0.0.1", 0))
	r.Start()

	got := make(chan struct{}, 1)
	back, err := system.Root.SpawnNamed(actor.PropsFromFunc(func(ctx actor.Context) {
		if _, ok := ctx.Message().(*messages.Echo); ok {
			got <- struct{}{}
		}
	}, actor.WithReceiverMiddleware(tracingReceiver(tp))), "back")
	if err != nil {
		panic(err)
	}

	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(out, "READY %s\n", system.Address())
	out.Flush()

	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) != 3 || f[0] != "call" {
			continue
		}
		ctx, span := tp.Tracer("gotrace").Start(context.Background(), "go client")
		header := propagation.MapCarrier{}
		w3c.Inject(ctx, header)
		// RootContext.RequestFuture drops headers, so the envelope is built here.
		fut := actor.NewFuture(system, 10*time.Second)
		system.Root.Send(actor.NewPID(f[1], f[2]), &actor.MessageEnvelope{
			Header:  map[string]string(header),
			Message: &messages.Echo{Message: "from-go", Sender: back},
			Sender:  fut.PID(),
		})
		if _, err := fut.Result(); err != nil {
			fmt.Fprintf(out, "ERROR %v\n", err)
			out.Flush()
			continue
		}
		span.End()
		select {
		case <-got:
		case <-time.After(10 * time.Second):
			fmt.Fprintf(out, "ERROR no call back\n")
			out.Flush()
			continue
		}
		// "back" signals from inside its span: wait until the span has ended
		deadline := time.Now().Add(10 * time.Second)
		for !hasSpan(exporter, "go receive Echo") && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		for _, s := range exporter.GetSpans() {
			fmt.Fprintf(out, "SPAN %s %s %s %s\n", strings.ReplaceAll(s.Name, " ", "_"),
				s.SpanContext.TraceID(), s.SpanContext.SpanID(), s.Parent.SpanID())
		}
		fmt.Fprintf(out, "DONE\n")
		out.Flush()
	}
	r.Shutdown(true)
}
