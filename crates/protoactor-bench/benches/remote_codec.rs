//! Micro-benchmark of the remote batch codec (divan):
//! `cargo bench -p protoactor-bench --bench remote_codec`.
//!
//! - `encode`: 1000 `protoactor_bench.Ping`s to one remote actor, with a sender, pushed into a
//!   `BatchBuilder` and the `MessageBatch` encoded to bytes (what one gRPC frame carries);
//! - `decode`: those bytes decoded and resolved by a `BatchReader` (tables, PIDs, payloads).
//!
//! Both wire variants: `current` (targets as id strings) and `legacy2024` (targets as PIDs).

use divan::counter::ItemsCount;
use divan::Bencher;
use prost::Message as _;
use protoactor::Pid;
use protoactor_remote::codec::{BatchBuilder, BatchReader, Outbound};
use protoactor_remote::remote_proto::MessageBatch;
use protoactor_remote::serializer::WireContext;
use protoactor_remote::{Serialization, WireVariant};

/// The remote workload's messages (`bench/proto/bench.proto`), compiled by build.rs.
mod proto {
    // Pong is unused here.
    #![allow(missing_docs, dead_code, clippy::all)]
    include!(concat!(env!("OUT_DIR"), "/protoactor_bench.rs"));
}
use proto::Ping;

const BATCH: usize = 1000;
const VARIANTS: &[&str] = &["current", "legacy2024"];

fn main() {
    divan::main();
}

fn variant(name: &str) -> WireVariant {
    if name == "legacy2024" {
        WireVariant::Legacy2024
    } else {
        WireVariant::Current
    }
}

fn serialization() -> Serialization {
    let s = Serialization::new();
    s.register::<Ping>();
    s
}

fn outbound() -> Vec<Outbound> {
    let target = Pid::new("127.0.0.1:8091", "echo");
    let sender = Pid::new("127.0.0.1:8090", "$1");
    (0..BATCH as i64)
        .map(|seq| Outbound {
            target: target.clone(),
            message: Box::new(Ping { seq }),
            sender: Some(sender.clone()),
            header: None,
        })
        .collect()
}

fn encode(ser: &Serialization, wire: WireVariant, messages: &[Outbound]) -> Vec<u8> {
    let ctx = WireContext {
        local_address: "127.0.0.1:8090",
    };
    let mut b = BatchBuilder::new(wire);
    for m in messages {
        b.push(ser, &ctx, m).expect("Ping is registered");
    }
    b.finish().encode_to_vec()
}

/// Builds and encodes one batch of 1000 messages.
#[divan::bench(args = VARIANTS, sample_count = 100)]
fn batch_encode(bencher: Bencher, wire: &str) {
    let (ser, wire) = (serialization(), variant(wire));
    bencher
        .counter(ItemsCount::new(BATCH))
        .with_inputs(outbound)
        .bench_local_refs(|m| encode(&ser, wire, m));
}

/// Decodes and resolves one batch of 1000 messages.
#[divan::bench(args = VARIANTS, sample_count = 100)]
fn batch_decode(bencher: Bencher, wire: &str) {
    let ser = serialization();
    let bytes = encode(&ser, variant(wire), &outbound());
    let mut reader = BatchReader::new("127.0.0.1:8091".into());
    // Check once, outside the timing, that the batch really round-trips.
    let incoming = reader.read(MessageBatch::decode(&bytes[..]).unwrap(), &ser);
    assert_eq!(incoming.len(), BATCH);
    assert!(incoming.iter().all(|m| m.message.is_ok()));
    bencher.counter(ItemsCount::new(BATCH)).bench_local(|| {
        let batch = MessageBatch::decode(divan::black_box(&bytes[..])).expect("valid batch");
        reader.read(batch, &ser)
    });
}
