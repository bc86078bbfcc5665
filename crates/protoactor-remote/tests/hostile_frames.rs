//! Hostile frames: a small `MessageBatch` whose envelopes all refer to one long type name, or
//! a frame of a great many empty envelopes, must not grow the node's memory far beyond the
//! frame (before the fix a 69.5 KB frame took 433 MiB, most of it copies of the name in
//! errors and log lines), and the node keeps serving.
//!
//! The node runs on a current-thread runtime driven by the test thread, so that
//! `allocation_counter` (which counts the allocations of one thread) sees all its work: the
//! gRPC server, the batch reader, dead letters, error events and their (captured) log lines.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::messages::Echo;
use common::*;
use prost::Message as _;
use protoactor::prelude::*;
use protoactor::Config;
use protoactor_remote::frame::{FRAME_MEMORY_LIMIT, MAX_TYPE_NAME_LEN};
use protoactor_remote::remote_proto::remote_message::MessageType;
use protoactor_remote::remote_proto::{MessageBatch, MessageEnvelope, RemoteMessage};
use protoactor_remote::{Remote, RemoteConfig, RemoteDeliveryError};

fn frame(name: String, envelopes: usize) -> RemoteMessage {
    RemoteMessage {
        message_type: Some(MessageType::MessageBatch(MessageBatch {
            type_names: vec![name],
            targets: vec![Bytes::from_static(b"sink")],
            // All fields at their defaults: 2 bytes each on the wire, type 0, target 0.
            envelopes: vec![MessageEnvelope::default(); envelopes],
            senders: vec![],
        })),
    }
}

/// Waits (yielding to the node's tasks on this thread) until `n` errors were reported.
async fn errors_reach(errors: &AtomicUsize, n: usize) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while errors.load(Ordering::Relaxed) < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {n} errors reported",
            errors.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[test]
fn hostile_frames_leave_memory_bounded_and_the_node_serving() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("warn")
        .with_test_writer()
        .try_init();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let system = ActorSystem::with_config(Config::default().with_runtime(rt.handle().clone()));
    let remote = Remote::start(
        &system,
        RemoteConfig::local().with_serialization(serialization()),
    )
    .unwrap();
    let errors = Arc::new(AtomicUsize::new(0));
    let e = errors.clone();
    let _ = system
        .event_stream()
        .subscribe_to::<RemoteDeliveryError, _>(move |_| {
            e.fetch_add(1, Ordering::Relaxed);
        });
    let (sink_tx, mut sink_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    system
        .root()
        .spawn_named(
            &Props::from_func(move |ctx| {
                if let Some(e) = ctx.message_as::<Echo>() {
                    let _ = sink_tx.send(e.message.clone());
                }
            }),
            "sink",
        )
        .unwrap();
    let address = remote.address().to_string();

    // (name length, envelopes, refused as a whole by the frame budget)
    let cases = [
        // The frame: 69.5 KB, a 2,000-byte name (over the cap) in every envelope.
        (2_000, 34_000, false),
        // A name under the cap, unknown, in 20,000 envelopes: accepted, the name shared.
        (MAX_TYPE_NAME_LEN - 24, 20_000, false),
        // The same name in 40,000 envelopes would decode to more than the budget.
        (MAX_TYPE_NAME_LEN - 24, 40_000, true),
        // 1 MB of empty envelopes: over 100 MB once decoded.
        (10, 500_000, true),
    ];
    for (name_len, envelopes, refused) in cases {
        let msg = frame(format!("hostile.{}", "x".repeat(name_len - 8)), envelopes);
        let frame_len = msg.encoded_len();
        let before = errors.load(Ordering::Relaxed);
        let info = allocation_counter::measure(|| {
            rt.block_on(async {
                let (tx, _inbound) = handshake(&address).await;
                tx.send(msg).await.unwrap();
                // Every envelope reported, or (refused) the stream's end.
                let n = if refused { 1 } else { envelopes };
                errors_reach(&errors, before + n).await;
            })
        });
        let bound = 2 * frame_len + FRAME_MEMORY_LIMIT;
        assert!(
            (info.bytes_max as usize) < bound,
            "a {frame_len}-byte frame ({envelopes} envelopes, {name_len}-byte name) took {} bytes at peak (bound {bound})",
            info.bytes_max
        );
    }

    // The node still serves: a good batch on a new stream is delivered.
    let good = RemoteMessage {
        message_type: Some(MessageType::MessageBatch(MessageBatch {
            type_names: vec!["messages.Echo".into()],
            targets: vec![Bytes::from_static(b"sink")],
            envelopes: vec![MessageEnvelope {
                message_data: Bytes::from(
                    Echo {
                        message: "still serving".into(),
                        sender: None,
                    }
                    .encode_to_vec(),
                ),
                ..Default::default()
            }],
            senders: vec![],
        })),
    };
    let got = rt.block_on(async {
        let (tx, _inbound) = handshake(&address).await;
        tx.send(good).await.unwrap();
        tokio::time::timeout(WAIT, sink_rx.recv()).await
    });
    assert_eq!(got.ok().flatten().as_deref(), Some("still serving"));
    rt.block_on(async { remote.shutdown() });
    system.shutdown();
}
