// Reads a protoactor-rs persistence journal from PostgreSQL the way a Go service would: it
// resolves each row's stored type name to a protobuf message type and unmarshals the bytes
// with Go's official protobuf library. Used by tests/go_reads.rs, and by protoactor-cluster's
// tests/persistent_go_reads.rs (a persistent grain's journal).
//
// usage: reader POSTGRES_URL ACTOR_NAME
// prints: "event INDEX TYPE field=value ..." and "snapshot INDEX TYPE field=value ...".
package main

import (
	"database/sql"
	"fmt"
	"os"
	"strings"

	_ "github.com/lib/pq"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// The test messages, as `protoc` would describe test.proto:
//
//	message Added { int64 amount = 1; uint64 seq = 2; }
//	message Reset { uint64 seq = 1; }
//	message CounterState { int64 value = 1; }
func testTypes() (*protoregistry.Types, error) {
	field := func(name string, n int32, t descriptorpb.FieldDescriptorProto_Type) *descriptorpb.FieldDescriptorProto {
		return &descriptorpb.FieldDescriptorProto{
			Name:     proto.String(name),
			JsonName: proto.String(name),
			Number:   proto.Int32(n),
			Label:    descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(),
			Type:     t.Enum(),
		}
	}
	fdp := &descriptorpb.FileDescriptorProto{
		Name:    proto.String("test.proto"),
		Package: proto.String("test"),
		Syntax:  proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{
			{Name: proto.String("Added"), Field: []*descriptorpb.FieldDescriptorProto{
				field("amount", 1, descriptorpb.FieldDescriptorProto_TYPE_INT64),
				field("seq", 2, descriptorpb.FieldDescriptorProto_TYPE_UINT64),
			}},
			{Name: proto.String("Reset"), Field: []*descriptorpb.FieldDescriptorProto{
				field("seq", 1, descriptorpb.FieldDescriptorProto_TYPE_UINT64),
			}},
			{Name: proto.String("CounterState"), Field: []*descriptorpb.FieldDescriptorProto{
				field("value", 1, descriptorpb.FieldDescriptorProto_TYPE_INT64),
			}},
		},
	}
	// The persistent counter grain of protoactor-cluster's tests (tests/protos/grainstest.proto):
	//
	//	message AddRequest { int64 amount = 1; }     (its event)
	//	message CountResponse { int64 value = 1; }   (its snapshot)
	grains := &descriptorpb.FileDescriptorProto{
		Name:    proto.String("grainstest.proto"),
		Package: proto.String("grainstest"),
		Syntax:  proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{
			{Name: proto.String("AddRequest"), Field: []*descriptorpb.FieldDescriptorProto{
				field("amount", 1, descriptorpb.FieldDescriptorProto_TYPE_INT64),
			}},
			{Name: proto.String("CountResponse"), Field: []*descriptorpb.FieldDescriptorProto{
				field("value", 1, descriptorpb.FieldDescriptorProto_TYPE_INT64),
			}},
		},
	}
	types := new(protoregistry.Types)
	for _, f := range []*descriptorpb.FileDescriptorProto{fdp, grains} {
		fd, err := protodesc.NewFile(f, nil)
		if err != nil {
			return nil, err
		}
		for i := 0; i < fd.Messages().Len(); i++ {
			if err := types.RegisterMessage(dynamicpb.NewMessageType(fd.Messages().Get(i))); err != nil {
				return nil, err
			}
		}
	}
	return types, nil
}

func describe(types *protoregistry.Types, typeName string, payload []byte) (string, error) {
	mt, err := types.FindMessageByName(protoreflect.FullName(typeName))
	if err != nil {
		return "", fmt.Errorf("type %q: %w", typeName, err)
	}
	m := mt.New().Interface()
	if err := proto.Unmarshal(payload, m); err != nil {
		return "", fmt.Errorf("payload of %q: %w", typeName, err)
	}
	r := m.ProtoReflect()
	fields := r.Descriptor().Fields()
	parts := []string{typeName}
	for i := 0; i < fields.Len(); i++ {
		f := fields.Get(i)
		parts = append(parts, fmt.Sprintf("%s=%v", f.Name(), r.Get(f).Interface()))
	}
	return strings.Join(parts, " "), nil
}

func run() error {
	if len(os.Args) != 3 {
		return fmt.Errorf("usage: reader POSTGRES_URL ACTOR_NAME")
	}
	url, actor := os.Args[1], os.Args[2]
	if !strings.Contains(url, "sslmode=") {
		sep := "?"
		if strings.Contains(url, "?") {
			sep = "&"
		}
		url += sep + "sslmode=disable"
	}
	types, err := testTypes()
	if err != nil {
		return err
	}
	db, err := sql.Open("postgres", url)
	if err != nil {
		return err
	}
	defer db.Close()
	for _, q := range []struct{ kind, sql string }{
		{"event", "SELECT event_index, type_name, payload FROM protoactor_events WHERE actor_name = $1 ORDER BY event_index"},
		{"snapshot", "SELECT snapshot_index, type_name, payload FROM protoactor_snapshots WHERE actor_name = $1 ORDER BY snapshot_index"},
	} {
		rows, err := db.Query(q.sql, actor)
		if err != nil {
			return err
		}
		for rows.Next() {
			var index int64
			var typeName string
			var payload []byte
			if err := rows.Scan(&index, &typeName, &payload); err != nil {
				return err
			}
			d, err := describe(types, typeName, payload)
			if err != nil {
				return err
			}
			fmt.Printf("%s %d %s\n", q.kind, index, d)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows.Close()
	}
	return nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "reader:", err)
		os.Exit(1)
	}
}
