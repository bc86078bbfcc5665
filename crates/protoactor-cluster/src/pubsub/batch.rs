//! Go's batch encoding (`cluster/pubsub_batch.go`): each message serialized with its proto
//! full name, the names deduplicated in first-seen order, one `PubSubEnvelope` per message.

use bytes::BytesMut;
use std::sync::Arc;

use protoactor::{BoxedMessage, Message, SharedMessage};
use protoactor_remote::serializer::Decoder;
use protoactor_remote::{Serialization, SerializationError, WireContext};

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
    Prepared::new(serialization, type_names, envelopes)?.decode_all()
}

/// A batch for many local subscribers, each of which owns its messages: each type name is
/// looked up once per batch and serializer, not once per message; the messages are decoded
/// once and copied for each subscriber (decoded again only for a type without a copy).
pub(crate) struct Prepared<'a> {
    type_names: &'a [String],
    envelopes: &'a [PubSubEnvelope],
    /// Slot `3 * type index + class` (class: the serializer id 0 or 1, else 2).
    decoders: Vec<Option<Decoder>>,
}

fn slot(type_id: i32, serializer_id: i32) -> usize {
    type_id as usize * 3 + serializer_id.clamp(0, 2) as usize
}

impl<'a> Prepared<'a> {
    /// Looks the batch's types up; a type index outside the type names is an error.
    pub(crate) fn new(
        serialization: &Serialization,
        type_names: &'a [String],
        envelopes: &'a [PubSubEnvelope],
    ) -> Result<Self, PubSubError> {
        let mut decoders: Vec<Option<Decoder>> = vec![None; type_names.len() * 3];
        for e in envelopes {
            let name = usize::try_from(e.type_id)
                .ok()
                .and_then(|i| type_names.get(i))
                .ok_or(PubSubError::BadTypeIndex(e.type_id))?;
            decoders[slot(e.type_id, e.serializer_id)]
                .get_or_insert_with(|| serialization.decoder(name, e.serializer_id));
        }
        Ok(Prepared {
            type_names,
            envelopes,
            decoders,
        })
    }

    /// Every message, decoded in order; the first that cannot be decoded fails them all.
    pub(crate) fn decode_all(&self) -> Result<Vec<BoxedMessage>, PubSubError> {
        // `new` checked every index and filled every slot used.
        self.envelopes.iter().map(|e| self.decode_one(e)).collect()
    }

    /// A copy of `decoded` (what [`Prepared::decode_all`] gave): each message copied, or
    /// decoded again if its type has no copy (a JSON type).
    pub(crate) fn copy_all(
        &self,
        decoded: &[BoxedMessage],
    ) -> Result<Vec<BoxedMessage>, PubSubError> {
        let mut all = Vec::with_capacity(decoded.len());
        for (e, m) in self.envelopes.iter().zip(decoded) {
            let decoder = self.decoders[slot(e.type_id, e.serializer_id)].as_ref();
            match decoder.and_then(|d| d.copy(m.as_ref())) {
                Some(copy) => all.push(copy),
                None => all.push(self.decode_one(e)?),
            }
        }
        Ok(all)
    }

    /// `decoded` (what [`Prepared::decode_all`] gave) as messages shared by many receivers;
    /// the messages back, unchanged, if one of their types cannot be shared (a JSON type).
    pub(crate) fn share_all(
        &self,
        decoded: Vec<BoxedMessage>,
    ) -> Result<Arc<[SharedMessage]>, Vec<BoxedMessage>> {
        let mut shared = Vec::with_capacity(decoded.len());
        let mut rest = decoded.into_iter();
        for e in self.envelopes {
            let Some(m) = rest.next() else { break };
            // `new` filled every slot used.
            let shares = match &self.decoders[slot(e.type_id, e.serializer_id)] {
                Some(d) => d.share(m),
                None => Err(m),
            };
            match shares {
                Ok(s) => shared.push(s),
                Err(m) => {
                    // Give every message back as it was (each shared one has one reference).
                    let mut back: Vec<BoxedMessage> =
                        shared.into_iter().map(SharedMessage::into_boxed).collect();
                    back.push(m);
                    back.extend(rest);
                    return Err(back);
                }
            }
        }
        Ok(shared.into())
    }

    fn decode_one(&self, e: &PubSubEnvelope) -> Result<BoxedMessage, PubSubError> {
        let name = &self.type_names[e.type_id as usize];
        match &self.decoders[slot(e.type_id, e.serializer_id)] {
            Some(d) => d.decode(name, e.serializer_id, &e.message_data),
            None => Err(SerializationError::UnknownTypeName {
                type_name: name.clone(),
                serializer_id: e.serializer_id,
            }),
        }
        .map_err(|err| PubSubError::Decode(err.to_string()))
    }
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
    fn one_type_name_with_two_serializers_decodes_each_message_with_its_own() {
        let s = Serialization::new();
        s.register::<Acknowledge>();
        let proto = EncodedMessage::encode(&s, "a:1", &Acknowledge {}, 1024).unwrap();
        // The same name as JSON (serializer 1): with no JSON decoder registered it comes
        // through as a `JsonMessage`, not through the proto decoder.
        let json = EncodedMessage {
            type_name: proto.type_name.clone(),
            serializer_id: 1,
            data: b"{}".to_vec(),
        };
        let batch = to_transport([proto.clone(), json, proto]);
        assert_eq!(batch.type_names.len(), 1);
        let back = decode(&s, &batch.type_names, &batch.envelopes).unwrap();
        assert!(back[0].downcast_ref::<Acknowledge>().is_some());
        let j = back[1]
            .downcast_ref::<protoactor_remote::JsonMessage>()
            .expect("the JSON one decoded as JSON");
        assert_eq!(j.json, "{}");
        assert!(back[2].downcast_ref::<Acknowledge>().is_some());
    }

    fn member(id: &str) -> crate::proto::Member {
        crate::proto::Member {
            id: id.into(),
            ..Default::default()
        }
    }

    /// A serialization with `Member` registered, and members "a" and "b" encoded with it.
    fn members_a_and_b() -> (Serialization, Vec<EncodedMessage>) {
        let s = Serialization::new();
        s.register::<crate::proto::Member>();
        let enc = ["a", "b"]
            .iter()
            .map(|id| EncodedMessage::encode(&s, "a:1", &member(id), 1024).unwrap())
            .collect();
        (s, enc)
    }

    /// A JSON message of a type this node does not know (decoded as a `JsonMessage`).
    fn unknown_json() -> EncodedMessage {
        EncodedMessage {
            type_name: "x.Unknown".into(),
            serializer_id: 1,
            data: b"{}".to_vec(),
        }
    }

    /// Every subscriber's copy holds the batch's messages in order, whether copied (a
    /// protobuf type) or decoded again (a JSON one).
    #[test]
    fn copies_of_a_decoded_batch_equal_the_batch() {
        let (s, mut enc) = members_a_and_b();
        enc.insert(1, unknown_json());
        let batch = to_transport(enc);
        let prepared = Prepared::new(&s, &batch.type_names, &batch.envelopes).unwrap();
        let decoded = prepared.decode_all().unwrap();
        let copy = prepared.copy_all(&decoded).unwrap();
        assert_eq!(copy.len(), 3);
        assert_eq!(copy[0].downcast_ref(), Some(&member("a")));
        let json = copy[1].downcast_ref::<protoactor_remote::JsonMessage>();
        assert_eq!(json.map(|j| j.json.as_str()), Some("{}"));
        assert_eq!(copy[2].downcast_ref(), Some(&member("b")));
    }

    /// Subscribers share a batch of protobuf types (the same messages, no copies); a batch
    /// with a JSON type comes back whole and in order, to be copied instead.
    #[test]
    fn a_decoded_batch_is_shared_unless_a_type_cannot_be() {
        let (s, mut enc) = members_a_and_b();
        let batch = to_transport(enc.clone());
        let prepared = Prepared::new(&s, &batch.type_names, &batch.envelopes).unwrap();
        let shared = prepared
            .share_all(prepared.decode_all().unwrap())
            .expect("protobuf types are shared");
        let got: Vec<_> = shared.iter().map(|m| m.message().downcast_ref()).collect();
        assert_eq!(got, vec![Some(&member("a")), Some(&member("b"))]);

        enc.insert(1, unknown_json());
        let batch = to_transport(enc);
        let prepared = Prepared::new(&s, &batch.type_names, &batch.envelopes).unwrap();
        let back = prepared
            .share_all(prepared.decode_all().unwrap())
            .expect_err("a JSON type is not shared");
        assert_eq!(back.len(), 3);
        assert_eq!(back[0].downcast_ref(), Some(&member("a")));
        let json = back[1].downcast_ref::<protoactor_remote::JsonMessage>();
        assert_eq!(json.map(|j| j.json.as_str()), Some("{}"));
        assert_eq!(back[2].downcast_ref(), Some(&member("b")));
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
