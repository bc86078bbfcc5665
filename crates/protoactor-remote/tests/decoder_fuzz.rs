//! Property tests: random and mutated frames never panic the decoder, and every envelope
//! of a decodable batch comes out (delivered or as an error), never silently dropped.

#[path = "../shared/messages.rs"]
mod messages;

use std::sync::Arc;

use bytes::Bytes;
use messages::{Echo, Seq};
use proptest::prelude::*;
use prost::Message as _;
use protoactor::{MessageHeader, Pid};
use protoactor_remote::codec::{BatchBuilder, BatchReader, Outbound};
use protoactor_remote::remote_proto::{MessageBatch, RemoteMessage};
use protoactor_remote::serializer::WireContext;
use protoactor_remote::{Serialization, WireVariant};

fn ser() -> Serialization {
    let s = Serialization::new();
    s.register::<Echo>();
    s.register::<Seq>();
    s
}

fn valid_batch(n: usize, variant: WireVariant) -> Vec<u8> {
    let s = ser();
    let ctx = WireContext {
        local_address: "127.0.0.1:1",
    };
    let mut b = BatchBuilder::new(variant);
    for i in 0..n {
        let header: MessageHeader = [("k", "v")].into_iter().collect();
        b.push(
            &s,
            &ctx,
            &Outbound {
                target: Pid::new("127.0.0.1:2", format!("$t{}", i % 3)),
                message: if i % 2 == 0 {
                    Box::new(Echo {
                        message: format!("m{i}"),
                        sender: None,
                    })
                } else {
                    Box::new(Seq {
                        n: i as i64,
                        tag: "x".into(),
                    })
                },
                sender: (i % 4 == 0).then(|| Pid::new("127.0.0.1:1", format!("$s{i}"))),
                header: (i % 5 == 0).then(|| Arc::new(header)),
            },
        )
        .unwrap();
    }
    RemoteMessage {
        message_type: Some(
            protoactor_remote::remote_proto::remote_message::MessageType::MessageBatch(b.finish()),
        ),
    }
    .encode_to_vec()
}

fn feed(bytes: &[u8]) {
    let s = ser();
    let mut r = BatchReader::new(Arc::from("127.0.0.1:2"));
    if let Ok(RemoteMessage {
        message_type:
            Some(protoactor_remote::remote_proto::remote_message::MessageType::MessageBatch(b)),
    }) = RemoteMessage::decode(bytes)
    {
        let n = b.envelopes.len();
        let out = r.read(b, &s);
        assert_eq!(out.len(), n, "every envelope is accounted for");
    }
    if let Ok(b) = MessageBatch::decode(bytes) {
        let n = b.envelopes.len();
        assert_eq!(r.read(b, &s).len(), n);
    }
}

/// Table indexes: mostly near the tables, sometimes anything, including the extremes.
fn index() -> impl Strategy<Value = i32> {
    prop_oneof![
        4 => -2..6i32,
        1 => any::<i32>(),
        1 => Just(i32::MIN),
        1 => Just(i32::MAX),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        feed(&bytes);
    }

    #[test]
    fn mutated_frames_never_panic(
        n in 1usize..20,
        legacy in any::<bool>(),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        cut in any::<usize>(),
    ) {
        let variant = if legacy { WireVariant::Legacy2024 } else { WireVariant::Current };
        let mut bytes = valid_batch(n, variant);
        for (at, v) in flips {
            let i = at % bytes.len();
            bytes[i] ^= v;
        }
        feed(&bytes);
        let cut = cut % (bytes.len() + 1);
        feed(&bytes[..cut]);
    }

    #[test]
    fn random_tables_and_indexes_never_panic(
        type_names in proptest::collection::vec("[a-z.]{0,12}", 0..4),
        targets in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..24), 0..4),
        envs in proptest::collection::vec((index(), index(), index(), index(), proptest::collection::vec(any::<u8>(), 0..32)), 0..16),
    ) {
        let batch = MessageBatch {
            type_names,
            targets: targets.into_iter().map(Bytes::from).collect(),
            envelopes: envs
                .into_iter()
                .map(|(type_id, target, sender, serializer_id, data)| {
                    protoactor_remote::remote_proto::MessageEnvelope {
                        type_id,
                        target,
                        sender,
                        serializer_id,
                        message_data: Bytes::from(data),
                        ..Default::default()
                    }
                })
                .collect(),
            senders: vec![],
        };
        let n = batch.envelopes.len();
        let out = BatchReader::new(Arc::from("me")).read(batch, &ser());
        prop_assert_eq!(out.len(), n);
    }
}

#[test]
fn valid_batches_decode_completely_in_both_variants() {
    for v in [WireVariant::Current, WireVariant::Legacy2024] {
        let bytes = valid_batch(50, v);
        let RemoteMessage {
            message_type:
                Some(protoactor_remote::remote_proto::remote_message::MessageType::MessageBatch(b)),
        } = RemoteMessage::decode(&*bytes).unwrap()
        else {
            panic!("not a batch")
        };
        let out = BatchReader::new(Arc::from("127.0.0.1:2")).read(b, &ser());
        assert_eq!(out.len(), 50);
        assert!(out.iter().all(|m| m.message.is_ok()));
        assert_eq!(out[3].target.id(), "$t0");
        assert_eq!(out[4].sender.as_ref().unwrap().id(), "$s4");
    }
}
