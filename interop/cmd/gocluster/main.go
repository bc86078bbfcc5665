// gocluster is a protoactor-go cluster member for the mixed Go/Rust cluster tests
// (crates/protoactor-cluster/tests/interop.rs, tests/etcd.rs, tests/membership_overlap.rs). It joins cluster -name with
// the automanaged provider (each member serves GET /_health on -auto-port and polls every
// -peers endpoint), or with -provider etcd through protoactor-go's etcd provider (base key
// /protoactor, endpoints -etcd), or with -provider consul through protoactor-go's consul
// provider (agent at CONSUL_HTTP_ADDR), or with -provider k8s through protoactor-go's
// Kubernetes provider (its in-cluster config: KUBERNETES_SERVICE_HOST/PORT, the service
// account files, the host name as the pod name), and the disthash identity lookup, and hosts the kinds in -kinds. Every hosted kind answers
// clustertest.HelloRequest, sent directly or inside cluster.GrainRequest (method 0), with a
// clustertest.HelloResponse naming the kind, the identity and the hosting member's address,
// and messages.HelloRequest (the examples' message) with messages.HelloResponse{"Hello from
// grain <identity> on member <address>"}, as the Rust example cluster_automanaged's grain.
//
// Control protocol: one command per stdin line, answered by exactly one stdout line whose
// first word is the answer tag. Other stdout lines (e.g. the HTTP server's start line) may
// appear and are to be ignored; logs go to stderr.
//
//	(on start)                       READY <address> <system id>
//	call <kind> <identity> <name>    REPLY <kind> <identity> <address> <message...>
//	                                 | ERROR <text>      (cluster.Request with HelloRequest)
//	gcall <kind> <identity> <name> [<method index>]
//	                                 as call, but the HelloRequest travels inside
//	                                 cluster.GrainRequest (default method 0), as
//	                                 protoc-gen-go-grain clients send it; a
//	                                 cluster.GrainErrorResponse answer is
//	                                 ERROR grain error <reason>: <message>
//	owner <kind> <identity>...       OWNER <identity>=<address>|<pid id> ...   (cluster.Get,
//	                                 which activates the grain; "-" when no PID came back)
//	members                          MEMBERS <id>@<address>[<kind>,...] ...
//	                                 (current topology, ascending by id)
//	await-members <timeout-ms> <id>...
//	                                 MEMBERS ... once every id is in the topology | ERROR
//	await-absent <timeout-ms> <id>...
//	                                 MEMBERS ... once no id is in the topology | ERROR
//	blocked                          BLOCKED <id> ...
//	gossip <key>                     GOSSIP <member id>=<sequence number> ...   (this
//	                                 member's gossip state of <key>, ascending by id)
//	await-gossip <timeout-ms> <key> <id>=<min seq>...
//	                                 GOSSIP ... once every id has a <key> value with at
//	                                 least that sequence number | ERROR timeout; GOSSIP ...
//	(anything else)                  ERROR unknown command <line>
//
// With -tls-cert, -tls-key and -tls-ca (PEM files) the member's remote uses mutual TLS
// through protoactor-go's gRPC options (remote.WithServerOptions: grpc.Creds requiring a
// client certificate signed by the CA; remote.WithDialOptions: transport credentials
// trusting the CA and presenting the certificate), as a Rust member's
// RemoteConfig::with_mutual_tls.
//
// With -activation-log <path> every grain appends its life to that file in the line format
// of the testkit's duplicate-activation detector (crates/protoactor-testkit
// src/cluster/activations.rs; times in µs since the Unix epoch, as the Rust members stamp
// them): "start <identity> <address> <pid id> <t>" once it knows its identity (ClusterInit,
// right after Started), "stop <identity> <address> <pid id> <last message t or 0> <t>" on
// Stopped; and it answers clustertest.HelloRequest with its PID id as the message, as the
// Rust members' logged hello grain does, so a caller can tell activations apart.
//
// When stdin closes the member shuts down gracefully and exits 0.
package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/automanaged"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/consul"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/etcd"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/k8s"
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
	"github.com/asynkron/protoactor-go/remote"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"

	"protoactor-rs/interop/clustertest"
	"protoactor-rs/interop/messages"
)

// activationLog is the -activation-log file, shared by every grain of the member.
type activationLog struct {
	mu sync.Mutex
	f  *os.File
}

// append writes one whole line in one write on an O_APPEND file, so lines stay whole even
// if the process is killed.
func (l *activationLog) append(format string, args ...interface{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = l.f.WriteString(fmt.Sprintf(format, args...))
}

// nowMicros is the detector's clock: µs since the Unix epoch, comparable across the
// processes of one machine.
func nowMicros() int64 {
	return time.Now().UnixMicro()
}

// grain answers HelloRequest for whatever kind it was registered as.
type grain struct {
	identity *cluster.ClusterIdentity
	// log, when set, receives the grain's start and stop lines; last is when it last
	// handled a message (µs, 0: none).
	log     *activationLog
	started bool
	last    int64
}

func (g *grain) Receive(ctx actor.Context) {
	if g.log != nil {
		switch ctx.Message().(type) {
		case *actor.Started, *actor.Stopping, *actor.Stopped, *actor.Restarting, *cluster.ClusterInit:
		default:
			g.last = nowMicros()
		}
	}
	switch m := ctx.Message().(type) {
	case *cluster.ClusterInit:
		g.identity = m.Identity
		if g.log != nil && m.Identity != nil {
			g.started = true
			g.log.append("start %s %s %s %d\n", m.Identity.Identity, ctx.Self().Address, ctx.Self().Id, nowMicros())
		}
	case *actor.Stopped:
		if g.log != nil && g.started {
			g.started = false
			g.log.append("stop %s %s %s %d %d\n", g.identity.Identity, ctx.Self().Address, ctx.Self().Id, g.last, nowMicros())
		}
	case *clustertest.HelloRequest:
		ctx.Respond(g.hello(ctx, m))
	case *messages.HelloRequest:
		identity := ""
		if g.identity != nil {
			identity = g.identity.Identity
		}
		ctx.Respond(&messages.HelloResponse{
			Message: fmt.Sprintf("Hello from grain %s on member %s", identity, ctx.Self().Address),
		})
	case *cluster.GrainRequest:
		// The shape protoc-gen-go-grain's clients send: method 0 = SayHello.
		if m.MethodIndex != 0 {
			ctx.Respond(cluster.NewGrainErrorResponse(cluster.ErrorReason_UNIMPLEMENTED,
				fmt.Sprintf("unknown method index %d", m.MethodIndex)))
			return
		}
		req := &clustertest.HelloRequest{}
		if err := proto.Unmarshal(m.MessageData, req); err != nil {
			ctx.Respond(cluster.NewGrainErrorResponse(cluster.ErrorReason_INVALID_ARGUMENT, err.Error()))
			return
		}
		ctx.Respond(g.hello(ctx, req))
	}
}

func (g *grain) hello(ctx actor.Context, req *clustertest.HelloRequest) *clustertest.HelloResponse {
	kind, identity := "", ""
	if g.identity != nil {
		kind, identity = g.identity.Kind, g.identity.Identity
	}
	message := fmt.Sprintf("hello %s from %s/%s", req.Name, kind, identity)
	if g.log != nil {
		message = ctx.Self().Id
	}
	return &clustertest.HelloResponse{
		Message:  message,
		Kind:     kind,
		Identity: identity,
		Address:  ctx.Self().Address,
	}
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

type member struct {
	c   *cluster.Cluster
	out *bufio.Writer
	mu  sync.Mutex
}

func (m *member) println(format string, args ...interface{}) {
	m.mu.Lock()
	defer m.mu.Unlock()
	fmt.Fprintf(m.out, format+"\n", args...)
	m.out.Flush()
}

func (m *member) membersLine() string {
	ms := append(cluster.Members(nil), m.c.MemberList.Members().Members()...)
	sort.Slice(ms, func(i, j int) bool { return ms[i].Id < ms[j].Id })
	var b strings.Builder
	b.WriteString("MEMBERS")
	for _, x := range ms {
		kinds := append([]string(nil), x.Kinds...)
		sort.Strings(kinds)
		fmt.Fprintf(&b, " %s@%s[%s]", x.Id, x.Address(), strings.Join(kinds, ","))
	}
	return b.String()
}

// await polls the member list until want(ids present) holds, or the timeout passes.
func (m *member) await(args []string, present bool) {
	if len(args) < 1 {
		m.println("ERROR usage: await-members|await-absent <timeout-ms> <id>...")
		return
	}
	ms, err := strconv.Atoi(args[0])
	if err != nil {
		m.println("ERROR bad timeout %q", args[0])
		return
	}
	deadline := time.Now().Add(time.Duration(ms) * time.Millisecond)
	for {
		set := m.c.MemberList.Members()
		ok := true
		for _, id := range args[1:] {
			if set.ContainsID(id) != present {
				ok = false
				break
			}
		}
		if ok {
			m.println("%s", m.membersLine())
			return
		}
		if time.Now().After(deadline) {
			m.println("ERROR timeout; %s", m.membersLine())
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (m *member) gossipState(key string) (map[string]int64, error) {
	state, err := m.c.Gossip.GetState(key)
	if err != nil {
		return nil, err
	}
	seqs := make(map[string]int64, len(state))
	for id, v := range state {
		seqs[id] = v.SequenceNumber
	}
	return seqs, nil
}

func (m *member) gossipLine(key string) (string, error) {
	seqs, err := m.gossipState(key)
	if err != nil {
		return "", err
	}
	ids := make([]string, 0, len(seqs))
	for id := range seqs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var b strings.Builder
	b.WriteString("GOSSIP")
	for _, id := range ids {
		fmt.Fprintf(&b, " %s=%d", id, seqs[id])
	}
	return b.String(), nil
}

// awaitGossip polls the gossip state of key until every want entry (id=min seq) holds.
func (m *member) awaitGossip(timeout, key string, want []string) {
	ms, err := strconv.Atoi(timeout)
	if err != nil {
		m.println("ERROR bad timeout %q", timeout)
		return
	}
	mins := map[string]int64{}
	for _, w := range want {
		id, seq, ok := strings.Cut(w, "=")
		n, err := strconv.ParseInt(seq, 10, 64)
		if !ok || err != nil {
			m.println("ERROR bad entry %q (want id=seq)", w)
			return
		}
		mins[id] = n
	}
	deadline := time.Now().Add(time.Duration(ms) * time.Millisecond)
	for {
		seqs, err := m.gossipState(key)
		if err != nil {
			m.println("ERROR %s", oneLine(err.Error()))
			return
		}
		ok := true
		for id, min := range mins {
			if seq, found := seqs[id]; !found || seq < min {
				ok = false
				break
			}
		}
		line, _ := m.gossipLine(key)
		if ok {
			m.println("%s", line)
			return
		}
		if time.Now().After(deadline) {
			m.println("ERROR timeout; %s", line)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (m *member) owners(kind string, ids []string) {
	res := make([]string, len(ids))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int, id string) {
			defer wg.Done()
			defer func() { <-sem }()
			at := "-"
			if pid := m.c.Get(id, kind); pid != nil {
				at = pid.Address + "|" + pid.Id
			}
			res[i] = id + "=" + at
		}(i, id)
	}
	wg.Wait()
	m.println("OWNER %s", strings.Join(res, " "))
}

func (m *member) call(kind, identity, name string) {
	m.reply(m.c.Request(identity, kind, &clustertest.HelloRequest{Name: name}))
}

func (m *member) gcall(kind, identity, name string, method int32) {
	data, err := proto.Marshal(&clustertest.HelloRequest{Name: name})
	if err != nil {
		m.println("ERROR %s", oneLine(err.Error()))
		return
	}
	m.reply(m.c.Request(identity, kind, &cluster.GrainRequest{MethodIndex: method, MessageData: data}))
}

func (m *member) reply(resp interface{}, err error) {
	if err != nil {
		m.println("ERROR %s", oneLine(err.Error()))
		return
	}
	switch r := resp.(type) {
	case *clustertest.HelloResponse:
		m.println("REPLY %s %s %s %s", r.Kind, r.Identity, r.Address, oneLine(r.Message))
	case *cluster.GrainErrorResponse:
		m.println("ERROR grain error %s: %s", r.Reason, oneLine(r.Message))
	default:
		m.println("ERROR unexpected reply %T", resp)
	}
}

func oneLine(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r", " "), "\n", " ")
}

func (m *member) handle(line string) {
	f := strings.Fields(line)
	if len(f) == 0 {
		return
	}
	switch {
	case f[0] == "call" && len(f) == 4:
		m.call(f[1], f[2], f[3])
	case f[0] == "gcall" && (len(f) == 4 || len(f) == 5):
		method := 0
		if len(f) == 5 {
			n, err := strconv.Atoi(f[4])
			if err != nil {
				m.println("ERROR bad method index %q", f[4])
				return
			}
			method = n
		}
		m.gcall(f[1], f[2], f[3], int32(method))
	case f[0] == "owner" && len(f) >= 2:
		m.owners(f[1], f[2:])
	case f[0] == "members":
		m.println("%s", m.membersLine())
	case f[0] == "await-members":
		m.await(f[1:], true)
	case f[0] == "await-absent":
		m.await(f[1:], false)
	case f[0] == "blocked":
		ids := m.c.GetBlockedMembers().ToSlice()
		sort.Strings(ids)
		m.println("BLOCKED %s", strings.Join(ids, " "))
	case f[0] == "gossip" && len(f) == 2:
		if line, err := m.gossipLine(f[1]); err != nil {
			m.println("ERROR %s", oneLine(err.Error()))
		} else {
			m.println("%s", line)
		}
	case f[0] == "await-gossip" && len(f) >= 3:
		m.awaitGossip(f[1], f[2], f[3:])
	default:
		m.println("ERROR unknown command %s", oneLine(line))
	}
}

func main() {
	name := flag.String("name", "interop", "cluster name")
	host := flag.String("host", "127.0.0.1", "remote host (also the advertised member host)")
	port := flag.Int("port", 0, "remote port (0: any free port)")
	autoPort := flag.Int("auto-port", 6330, "port of this member's automanaged /_health endpoint")
	peers := flag.String("peers", "", "comma-separated host:port of EVERY member's /_health endpoint, this one included")
	kinds := flag.String("kinds", "", "comma-separated kinds this member hosts")
	refresh := flag.Duration("refresh", 2*time.Second, "automanaged poll interval")
	providerName := flag.String("provider", "automanaged", "cluster provider: automanaged, etcd, consul (agent at CONSUL_HTTP_ADDR) or k8s (in-cluster config)")
	etcdEndpoints := flag.String("etcd", "127.0.0.1:2379", "comma-separated etcd endpoints (-provider etcd)")
	tlsCert := flag.String("tls-cert", "", "PEM certificate of this member (mutual TLS, with -tls-key and -tls-ca)")
	tlsKey := flag.String("tls-key", "", "PEM private key of -tls-cert")
	tlsCA := flag.String("tls-ca", "", "PEM CA that signs every member's certificate")
	activations := flag.String("activation-log", "", "file every grain appends its start and stop lines to (the testkit's duplicate-activation detector)")
	flag.Parse()

	var actLog *activationLog
	if *activations != "" {
		f, err := os.OpenFile(*activations, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			fmt.Fprintf(os.Stderr, "activation log: %v\n", err)
			os.Exit(2)
		}
		actLog = &activationLog{f: f}
	}

	var remoteOptions []remote.ConfigOption
	if *tlsCert != "" {
		opts, err := mutualTLS(*tlsCert, *tlsKey, *tlsCA)
		if err != nil {
			fmt.Fprintf(os.Stderr, "tls: %v\n", err)
			os.Exit(2)
		}
		remoteOptions = opts
	}

	hosts := splitList(*peers)
	if len(hosts) == 0 {
		hosts = []string{fmt.Sprintf("%s:%d", *host, *autoPort)}
	}

	system := actor.NewActorSystem()
	var clusterKinds []*cluster.Kind
	for _, k := range splitList(*kinds) {
		clusterKinds = append(clusterKinds, cluster.NewKind(k,
			actor.PropsFromProducer(func() actor.Actor { return &grain{log: actLog} })))
	}
	var provider cluster.ClusterProvider
	switch *providerName {
	case "automanaged":
		provider = automanaged.NewWithConfig(*refresh, *autoPort, hosts...)
	case "etcd":
		p, err := etcd.NewWithConfig("/protoactor", clientv3.Config{
			Endpoints:   splitList(*etcdEndpoints),
			DialTimeout: 5 * time.Second,
		})
		if err != nil {
			fmt.Fprintf(os.Stderr, "etcd provider: %v\n", err)
			os.Exit(2)
		}
		provider = p
	case "k8s":
		p, err := k8s.New()
		if err != nil {
			fmt.Fprintf(os.Stderr, "k8s provider: %v\n", err)
			os.Exit(2)
		}
		provider = p
	case "consul":
		p, err := consul.New()
		if err != nil {
			fmt.Fprintf(os.Stderr, "consul provider: %v\n", err)
			os.Exit(2)
		}
		provider = p
	default:
		fmt.Fprintf(os.Stderr, "unknown -provider %q\n", *providerName)
		os.Exit(2)
	}
	cfg := cluster.Configure(*name, provider, disthash.New(),
		remote.Configure(*host, *port, remoteOptions...), cluster.WithKinds(clusterKinds...))
	c := cluster.New(system, cfg)
	c.StartMember()

	m := &member{c: c, out: bufio.NewWriter(os.Stdout)}
	m.println("READY %s %s", system.Address(), system.ID)

	in := bufio.NewScanner(os.Stdin)
	// An owner command for 1,000 identities is one long line.
	in.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for in.Scan() {
		m.handle(in.Text())
	}
	c.Shutdown(true)
}

// mutualTLS is the remote configuration for mutual TLS: the server requires a client
// certificate signed by the CA, and dialing presents this member's certificate and trusts
// only the CA.
func mutualTLS(certFile, keyFile, caFile string) ([]remote.ConfigOption, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("no certificate in %s", caFile)
	}
	server := &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
	}
	client := &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool}
	return []remote.ConfigOption{
		remote.WithServerOptions(grpc.Creds(credentials.NewTLS(server))),
		remote.WithDialOptions(grpc.WithTransportCredentials(credentials.NewTLS(client))),
	}, nil
}
