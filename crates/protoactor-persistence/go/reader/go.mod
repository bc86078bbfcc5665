module protoactor-rs/persistence-go-reader

go 1.23

require (
	github.com/lib/pq v1.12.3
	google.golang.org/protobuf v1.36.12
)
