//! Go's batch encoding (`cluster/pubsub_batch.go`): each message serialized with its proto
//! full name, the names deduplicated in first-seen order, one `PubSubEnvelope` per message.

use bytes::BytesMut;
use protoactor::{BoxedMessage, Message};
use protoactor_remote::{Serialization, WireContext};

use super::PubSubError;
use crate::proto::{PubSubBatchTransport, PubSubEnvelope};

/// One message encoded for a batch: its type name, serializer and bytes.
#[derive(Debug, Clone)]
pub struct EncodedMessage {
    pub(crate) type_name: String,
    pub(crate) serializer_id: i32,
    pub(crate) data: Vec<u8>,
}

impl EncodedMessage {
    /// Encodes `msg` with `serialization` (it must be a registered type); a message larger
    /// than `max_bytes` is refused (it would be refused by the transport later, less clearly).
    pub fn encode(
        serialization: &Serialization,
        local_address: &str,
        msg: &dyn Message,
        max_bytes: usize,
    ) -> Result<Self, PubSubError> {
        let mut buf = BytesMut::new();
        let ctx = WireContext { local_address };
        let enc = serialization
            .encode(msg, &ctx, &mut buf)
            .map_err(|e| PubSubError::Encode(e.to_string()))?;
        if buf.len() > max_bytes {
            return Err(PubSubError::MessageTooLarge {
                bytes: buf.len(),
                max: max_bytes,
            });
        }
        Ok(EncodedMessage {
            type_name: enc.type_name.to_string(),
            serializer_id: enc.serializer_id,
            data: buf.to_vec(),
        })
    }
}

/// Builds the wire batch of `messages`, type names deduplicated in first-seen order.
pub fn to_transport(messages: impl IntoIterator<Item = EncodedMessage>) -> PubSubBatchTransport {
    let mut batch = PubSubBatchTransport::default();
    for m in messages {
        let type_id = match batch.type_names.iter().position(|n| *n == m.type_name) {
            Some(i) => i,
            None => {
                batch.type_names.push(m.type_name);
                batch.type_names.len() - 1
            }
        };
        batch.envelopes.push(PubSubEnvelope {
            type_id: type_id as i32,
            message_data: m.data,
            serializer_id: m.serializer_id,
        });
    }
    batch
}

/// Decodes every message of a batch; the first one that cannot be decoded (unknown type
/// name, bad type index, bad bytes) fails the whole batch with a clear error.
pub fn decode(
    serialization: &Serialization,
    type_names: &[String],
    envelopes: &[PubSubEnvelope],
) -> Result<Vec<BoxedMessage>, PubSubError> {
    envelopes
        .iter()
        .map(|e| {
            let name = usize::try_from(e.type_id)
                .ok()
                .and_then(|i| type_names.get(i))
                .ok_or(PubSubError::BadTypeIndex(e.type_id))?;
            serialization
                .decode(name, e.serializer_id, &e.message_data)
                .map_err(|err| PubSubError::Decode(err.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{Acknowledge, SubscribeResponse};

    #[test]
    fn type_names_are_deduplicated_in_first_seen_order_and_decode_back() {
        let s = Serialization::new();
        s.register::<Acknowledge>();
        s.register::<SubscribeResponse>();
        let msgs: Vec<Box<dyn Message>> = vec![
            Box::new(SubscribeResponse {}),
            Box::new(Acknowledge {}),
            Box::new(SubscribeResponse {}),
        ];
        let enc = msgs
            .iter()
            .map(|m| EncodedMessage::encode(&s, "a:1", m.as_ref(), 1024).unwrap());
        let batch = to_transport(enc);
        assert_eq!(
            batch.type_names,
            vec!["cluster.SubscribeResponse", "cluster.Acknowledge"]
        );
        let ids: Vec<i32> = batch.envelopes.iter().map(|e| e.type_id).collect();
        assert_eq!(ids, vec![0, 1, 0]);
        let back = decode(&s, &batch.type_names, &batch.envelopes).unwrap();
        assert!(back[1].downcast_ref::<Acknowledge>().is_some());
        assert!(back[2].downcast_ref::<SubscribeResponse>().is_some());
    }

    #[test]
    fn unknown_type_and_bad_index_are_errors() {
        let s = Serialization::new();
        let env = PubSubEnvelope {
            type_id: 0,
            message_data: vec![],
            serializer_id: 0,
        };
        let err = decode(&s, &["nope.Nope".to_string()], std::slice::from_ref(&env));
        assert!(matches!(err, Err(PubSubError::Decode(m)) if m.contains("nope.Nope")));
        let bad = PubSubEnvelope { type_id: 3, ..env };
        assert_eq!(
            decode(&s, &[], &[bad]).unwrap_err(),
            PubSubError::BadTypeIndex(3)
        );
    }

    #[test]
    fn unregistered_and_oversized_messages_are_refused() {
        let s = Serialization::new();
        assert!(matches!(
            EncodedMessage::encode(&s, "a:1", &Acknowledge {}, 10),
            Err(PubSubError::Encode(_))
        ));
        s.register::<crate::proto::Member>();
        let big = crate::proto::Member {
            host: "x".repeat(100),
            ..Default::default()
        };
        assert!(matches!(
            EncodedMessage::encode(&s, "a:1", &big, 10),
            Err(PubSubError::MessageTooLarge { max: 10, .. })
        ));
    }
}
