//! The serializer registry: which message types cross the wire, under which proto full
//! name, with which serializer (protobuf = id 0, JSON = id 1, as in protoactor-go).

use std::any::TypeId;
use std::sync::Arc;

use arc_swap::ArcSwap;
use bytes::{BufMut, BytesMut};
use parking_lot::Mutex;
use prost::{Message as _, Name as _};
use protoactor::{BoxedMessage, Message, SharedMessage};
use rustc_hash::FxHashMap;

pub use crate::pid::WireContext;
use crate::remote_proto;
use crate::system_messages::{self, Registrar, WireForm};

/// A serializer id as carried in `MessageEnvelope.serializer_id`.
pub type SerializerId = i32;

/// Protobuf binary encoding (id 0).
pub const PROTOBUF: SerializerId = 0;
/// Protobuf JSON mapping (id 1).
pub const JSON: SerializerId = 1;

/// Why a message could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SerializationError {
    /// The Rust type is not registered.
    #[error("message type {0} is not registered for remoting")]
    UnregisteredType(&'static str),
    /// No decoder for this type name and serializer.
    #[error("unknown type name {type_name:?} for serializer {serializer_id}")]
    UnknownTypeName {
        /// The proto full name that came in.
        type_name: String,
        /// The serializer id that came in.
        serializer_id: SerializerId,
    },
    /// The bytes do not decode as the named type.
    #[error("cannot decode {type_name}: {reason}")]
    Decode {
        /// The proto full name.
        type_name: String,
        /// The decoder's message.
        reason: String,
    },
    /// The message does not encode.
    #[error("cannot encode {type_name}: {reason}")]
    Encode {
        /// The proto full name.
        type_name: String,
        /// The encoder's message.
        reason: String,
    },
}

/// A JSON message of a type this node does not know (serializer 1), delivered as is, like
/// protoactor-go's `JsonMessage`. Sending one writes its JSON under its type name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonMessage {
    /// The proto full name.
    pub type_name: String,
    /// The JSON text.
    pub json: String,
}

/// A message that arrived but could not be decoded: what dead-letter events carry for it.
#[derive(Debug, Clone)]
pub struct UndecodableMessage {
    /// The type name from the batch (empty if the type index was bad), shared with the
    /// batch's other envelopes of that type.
    pub type_name: Arc<str>,
    /// The serializer id from the envelope.
    pub serializer_id: SerializerId,
    /// The raw payload.
    pub data: bytes::Bytes,
    /// Why it could not be decoded.
    pub error: Arc<str>,
}

type EncodeFn =
    Arc<dyn Fn(&dyn Message, &WireContext<'_>, &mut BytesMut) -> Result<(), String> + Send + Sync>;
type DecodeFn = Arc<dyn Fn(&[u8]) -> Result<BoxedMessage, String> + Send + Sync>;
/// Copies a decoded message of the registered type (`None` for another type).
type CloneFn = fn(&dyn Message) -> Option<BoxedMessage>;
/// Shares a decoded message of the registered type (gives back another type).
type ShareFn = fn(BoxedMessage) -> Result<SharedMessage, BoxedMessage>;

fn clone_as<T: Message + Clone>(m: &dyn Message) -> Option<BoxedMessage> {
    m.downcast_ref::<T>()
        .map(|m| Box::new(m.clone()) as BoxedMessage)
}

/// How a decoded message of a registered protobuf type reaches many local receivers.
#[derive(Clone, Copy)]
struct Copier {
    clone: CloneFn,
    share: ShareFn,
}

impl Copier {
    fn of<T: Message + Sync + Clone>() -> Self {
        Copier {
            clone: clone_as::<T>,
            share: SharedMessage::from_boxed::<T>,
        }
    }
}

/// How a type name is read: decoded, and copied or shared once decoded (protobuf types;
/// one decoded message for many local receivers costs a copy or a reference each instead of
/// a decode each).
#[derive(Clone)]
struct Incoming {
    decode: DecodeFn,
    copier: Option<Copier>,
}

#[derive(Clone)]
struct Outgoing {
    type_name: Arc<str>,
    serializer_id: SerializerId,
    encode: EncodeFn,
}

#[derive(Default, Clone)]
struct Tables {
    outgoing: FxHashMap<TypeId, Outgoing>,
    incoming: FxHashMap<String, [Option<Incoming>; 2]>,
}

struct Inner {
    tables: ArcSwap<Tables>,
    write: Mutex<()>,
}

/// The registry of message types that cross the wire. Cheap to clone (shared).
///
/// ```
/// use protoactor_remote::Serialization;
///
/// // Usually generated from a `.proto` file (see [`build`](crate::build)).
/// #[derive(Clone, PartialEq, prost::Message)]
/// struct Greet {
///     #[prost(string, tag = "1")]
///     who: String,
/// }
/// impl prost::Name for Greet {
///     const NAME: &'static str = "Greet";
///     const PACKAGE: &'static str = "demo";
/// }
///
/// let s = Serialization::new();
/// s.register::<Greet>();
/// assert!(s.is_registered::<Greet>());
/// ```
#[derive(Clone)]
pub struct Serialization(Arc<Inner>);

impl std::fmt::Debug for Serialization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = self.0.tables.load();
        f.debug_struct("Serialization")
            .field("outgoing_types", &t.outgoing.len())
            .field("incoming_names", &t.incoming.len())
            .finish()
    }
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Decoder")
            .field(&if self.0.is_some() {
                "registered"
            } else {
                "none"
            })
            .finish()
    }
}

impl Default for Serialization {
    fn default() -> Self {
        Self::new()
    }
}

/// A looked-up decoder (see [`Serialization::decoder`]).
#[derive(Clone)]
pub struct Decoder(Option<Incoming>);

impl Decoder {
    /// Decodes `data`; an unknown JSON type becomes a [`JsonMessage`], as in Go.
    pub fn decode(
        &self,
        type_name: &str,
        serializer_id: SerializerId,
        data: &[u8],
    ) -> Result<BoxedMessage, SerializationError> {
        match &self.0 {
            Some(d) => (d.decode)(data).map_err(|reason| SerializationError::Decode {
                type_name: type_name.to_string(),
                reason,
            }),
            None if serializer_id == JSON => match std::str::from_utf8(data) {
                Ok(json) => Ok(Box::new(JsonMessage {
                    type_name: type_name.to_string(),
                    json: json.to_string(),
                })),
                Err(e) => Err(SerializationError::Decode {
                    type_name: type_name.to_string(),
                    reason: e.to_string(),
                }),
            },
            None => Err(SerializationError::UnknownTypeName {
                type_name: type_name.to_string(),
                serializer_id,
            }),
        }
    }
}

impl Decoder {
    /// A copy of `msg`, a message this decoder decoded, when its type can be copied
    /// (protobuf types registered with [`Serialization::register`]); `None` otherwise (decode
    /// the bytes again instead).
    pub fn copy(&self, msg: &dyn Message) -> Option<BoxedMessage> {
        (self.0.as_ref()?.copier?.clone)(msg)
    }

    /// `msg`, a message this decoder decoded, as one [`SharedMessage`] for many local
    /// receivers, when its type can be shared (protobuf types registered with
    /// [`Serialization::register`]); `msg` back otherwise.
    pub fn share(&self, msg: BoxedMessage) -> Result<SharedMessage, BoxedMessage> {
        match self.0.as_ref().and_then(|d| d.copier) {
            Some(c) => (c.share)(msg),
            None => Err(msg),
        }
    }
}

/// The encoded form of one message.
#[derive(Debug)]
pub struct Encoded {
    /// The proto full name.
    pub type_name: Arc<str>,
    /// The serializer used.
    pub serializer_id: SerializerId,
}

impl Serialization {
    /// A registry with the built-in `actor.*` and `remote.*` messages.
    pub fn new() -> Self {
        let s = Serialization(Arc::new(Inner {
            tables: ArcSwap::from_pointee(Tables::default()),
            write: Mutex::new(()),
        }));
        s.register_builtins();
        s
    }

    fn update(&self, f: impl FnOnce(&mut Tables)) {
        let _g = self.0.write.lock();
        let mut t = Tables::clone(&self.0.tables.load());
        f(&mut t);
        self.0.tables.store(Arc::new(t));
    }

    fn add_decoder(
        t: &mut Tables,
        name: &str,
        id: SerializerId,
        decode: DecodeFn,
        copier: Option<Copier>,
    ) {
        t.incoming.entry(name.to_string()).or_default()[id as usize] =
            Some(Incoming { decode, copier });
    }

    /// Registers a protobuf message type under its proto full name: it is sent with the
    /// protobuf serializer and decoded from protobuf (and from JSON if also registered so).
    /// `Clone` (every prost-generated type is) lets a decoded message be copied to many
    /// local receivers (pub/sub) instead of decoded for each.
    pub fn register<T>(&self)
    where
        T: prost::Message + prost::Name + Default + Clone + Message,
    {
        let name = T::full_name();
        let encode: EncodeFn = Arc::new(|m, _, buf| {
            let m = m.downcast_ref::<T>().ok_or("type mismatch")?;
            m.encode(buf).map_err(|e| e.to_string())
        });
        let decode: DecodeFn = Arc::new(|b| {
            T::decode(b)
                .map(|m| Box::new(m) as BoxedMessage)
                .map_err(|e| e.to_string())
        });
        self.update(|t| {
            t.outgoing.insert(
                TypeId::of::<T>(),
                Outgoing {
                    type_name: Arc::from(name.as_str()),
                    serializer_id: PROTOBUF,
                    encode,
                },
            );
            Self::add_decoder(t, &name, PROTOBUF, decode, Some(Copier::of::<T>()));
        });
    }

    /// Registers a message type for the JSON serializer (id 1): it is then *sent* as JSON
    /// under its proto full name, and decoded from JSON. Field names follow the protobuf JSON
    /// mapping when the type derives serde with `rename_all = "camelCase"`.
    pub fn register_json<T>(&self)
    where
        T: prost::Name + serde::Serialize + serde::de::DeserializeOwned + Message,
    {
        self.register_json_named::<T>(&T::full_name());
    }

    /// Registers a serde type for the JSON serializer under an explicit type name.
    pub fn register_json_named<T>(&self, type_name: &str)
    where
        T: serde::Serialize + serde::de::DeserializeOwned + Message,
    {
        let encode: EncodeFn = Arc::new(|m, _, buf| {
            let m = m.downcast_ref::<T>().ok_or("type mismatch")?;
            serde_json::to_writer(buf.writer(), m).map_err(|e| e.to_string())
        });
        let decode: DecodeFn = Arc::new(|b| {
            serde_json::from_slice::<T>(b)
                .map(|m| Box::new(m) as BoxedMessage)
                .map_err(|e| e.to_string())
        });
        self.update(|t| {
            t.outgoing.insert(
                TypeId::of::<T>(),
                Outgoing {
                    type_name: Arc::from(type_name),
                    serializer_id: JSON,
                    encode,
                },
            );
            Self::add_decoder(t, type_name, JSON, decode, None);
        });
    }

    /// True if `T` can be sent.
    pub fn is_registered<T: Message>(&self) -> bool {
        self.0
            .tables
            .load()
            .outgoing
            .contains_key(&TypeId::of::<T>())
    }

    /// Encodes `msg` into `buf` (appending), giving its type name and serializer.
    pub fn encode(
        &self,
        msg: &dyn Message,
        ctx: &WireContext<'_>,
        buf: &mut BytesMut,
    ) -> Result<Encoded, SerializationError> {
        if let Some(j) = msg.downcast_ref::<JsonMessage>() {
            buf.extend_from_slice(j.json.as_bytes());
            return Ok(Encoded {
                type_name: Arc::from(j.type_name.as_str()),
                serializer_id: JSON,
            });
        }
        let tables = self.0.tables.load();
        let out = tables
            .outgoing
            .get(&msg.message_type_id())
            .ok_or(SerializationError::UnregisteredType(msg.type_name()))?;
        (out.encode)(msg, ctx, buf).map_err(|reason| SerializationError::Encode {
            type_name: out.type_name.to_string(),
            reason,
        })?;
        Ok(Encoded {
            type_name: out.type_name.clone(),
            serializer_id: out.serializer_id,
        })
    }

    /// Decodes a message. An unknown JSON type becomes a [`JsonMessage`], as in Go.
    pub fn decode(
        &self,
        type_name: &str,
        serializer_id: SerializerId,
        data: &[u8],
    ) -> Result<BoxedMessage, SerializationError> {
        self.decoder(type_name, serializer_id)
            .decode(type_name, serializer_id, data)
    }

    /// The decoder for a type name and serializer, to decode many messages of one type
    /// with a single lookup.
    pub fn decoder(&self, type_name: &str, serializer_id: SerializerId) -> Decoder {
        let found = if (0..2).contains(&serializer_id) {
            self.0
                .tables
                .load()
                .incoming
                .get(type_name)
                .and_then(|d| d[serializer_id as usize].clone())
        } else {
            None
        };
        Decoder(found)
    }

    /// Core messages travel as their `actor.*` wire messages; remote's own messages by name.
    fn register_builtins(&self) {
        self.register::<remote_proto::ActorPidRequest>();
        self.register::<remote_proto::ActorPidResponse>();
        system_messages::register_all(self);
    }
}

impl Registrar for Serialization {
    fn wire_type<W: prost::Message + prost::Name + Default + Clone + Message>(&self) {
        self.register::<W>();
    }

    /// Maps a core type `R` to its wire type both ways.
    fn wire_form<R: WireForm>(&self) {
        let name = R::Wire::full_name();
        let encode: EncodeFn = Arc::new(move |m, c, buf| {
            let m = m.downcast_ref::<R>().ok_or("type mismatch")?;
            m.to_wire(c).encode(buf).map_err(|e| e.to_string())
        });
        let decode: DecodeFn = Arc::new(move |b| {
            R::Wire::decode(b)
                .map(|w| Box::new(R::from_wire(w)) as BoxedMessage)
                .map_err(|e| e.to_string())
        });
        self.update(|t| {
            t.outgoing.insert(
                TypeId::of::<R>(),
                Outgoing {
                    type_name: Arc::from(name.as_str()),
                    serializer_id: PROTOBUF,
                    encode,
                },
            );
            Self::add_decoder(t, &name, PROTOBUF, decode, None);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actor_proto;
    use crate::messages::{Echo, Response};
    use protoactor::{Pid, Terminated, TerminatedReason};

    fn ctx() -> WireContext<'static> {
        WireContext {
            local_address: "127.0.0.1:1",
        }
    }

    #[test]
    fn protobuf_roundtrip_by_full_name() {
        let s = Serialization::new();
        s.register::<Echo>();
        let mut buf = BytesMut::new();
        let e = s
            .encode(
                &Echo {
                    message: "hi".into(),
                    sender: None,
                },
                &ctx(),
                &mut buf,
            )
            .unwrap();
        assert_eq!(&*e.type_name, "messages.Echo");
        assert_eq!(e.serializer_id, PROTOBUF);
        let back = s.decode("messages.Echo", PROTOBUF, &buf).unwrap();
        assert_eq!(back.downcast_ref::<Echo>().unwrap().message, "hi");
    }

    #[test]
    fn json_uses_protobuf_json_names() {
        let s = Serialization::new();
        s.register_json::<Response>();
        let mut buf = BytesMut::new();
        let r = Response {
            some_value: "v".into(),
            from: Some(actor_proto::Pid {
                address: "a".into(),
                id: "b".into(),
                request_id: 0,
            }),
            ..Default::default()
        };
        let e = s.encode(&r, &ctx(), &mut buf).unwrap();
        assert_eq!(e.serializer_id, JSON);
        let text = std::str::from_utf8(&buf).unwrap();
        assert!(text.contains("\"someValue\":\"v\""), "{text}");
        assert!(text.contains("\"Address\":\"a\""), "{text}");
        let back = s
            .decode("messages.Response", JSON, br#"{"someValue":"x"}"#)
            .unwrap();
        assert_eq!(back.downcast_ref::<Response>().unwrap().some_value, "x");
    }

    /// A decoded protobuf message is copied as itself (what pub/sub hands each local
    /// subscriber); a JSON-only type, or a message of another type, has no copy.
    #[test]
    fn a_decoded_protobuf_message_is_copied_and_a_json_one_is_not() {
        let s = Serialization::new();
        s.register::<Echo>();
        s.register_json::<Response>();
        let echo = s.decoder("messages.Echo", PROTOBUF);
        let mut buf = BytesMut::new();
        let sent = Echo {
            message: "hi".into(),
            sender: None,
        };
        s.encode(&sent, &ctx(), &mut buf).unwrap();
        let decoded = echo.decode("messages.Echo", PROTOBUF, &buf).unwrap();
        let copy = echo
            .copy(decoded.as_ref())
            .expect("a protobuf type is copied");
        assert_eq!(copy.downcast_ref::<Echo>(), Some(&sent));
        assert!(echo.copy(&Response::default()).is_none(), "another type");
        let json = s.decoder("messages.Response", JSON);
        let r = json
            .decode("messages.Response", JSON, br#"{"someValue":"x"}"#)
            .unwrap();
        assert!(json.copy(r.as_ref()).is_none());
        assert!(s.decoder("x.Y", PROTOBUF).copy(&sent).is_none());
    }

    #[test]
    fn unknown_json_type_becomes_json_message_and_unknown_proto_is_an_error() {
        let s = Serialization::new();
        let m = s.decode("x.Y", JSON, b"{}").unwrap();
        assert_eq!(m.downcast_ref::<JsonMessage>().unwrap().type_name, "x.Y");
        assert!(matches!(
            s.decode("x.Y", PROTOBUF, b""),
            Err(SerializationError::UnknownTypeName { .. })
        ));
        assert!(matches!(
            s.decode("messages.Echo", 7, b""),
            Err(SerializationError::UnknownTypeName { .. })
        ));
    }

    #[test]
    fn core_messages_travel_as_actor_messages() {
        let s = Serialization::new();
        let mut buf = BytesMut::new();
        let t = Terminated {
            who: Pid::new("nonhost", "$1"),
            why: TerminatedReason::NotFound,
        };
        let e = s.encode(&t, &ctx(), &mut buf).unwrap();
        assert_eq!(&*e.type_name, "actor.Terminated");
        let back = s.decode("actor.Terminated", PROTOBUF, &buf).unwrap();
        let back = back.downcast_ref::<Terminated>().unwrap();
        assert_eq!(back.who, Pid::new("127.0.0.1:1", "$1"));
        assert_eq!(back.why, TerminatedReason::NotFound);
        assert!(matches!(
            s.encode(&42u8, &ctx(), &mut buf),
            Err(SerializationError::UnregisteredType(_))
        ));
    }
}
