//! Messages: any `Send + 'static` value, boxed once, plus the built-in lifecycle and
//! wire-level messages of Proto.Actor.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::pid::Pid;

/// Anything that can be sent to an actor: every `Send + 'static` type is a message.
///
/// Messages are dynamically typed, as in Proto.Actor for Go; the receiving actor matches
/// on the concrete type with [`match_message!`](crate::match_message) or
/// [`Context::message_as`](crate::Context::message_as). Remote-capable messages are
/// prost messages registered with the remote serializer registry by their proto full
/// name; the sending code is the same for local and remote PIDs.
pub trait Message: Any + Send {
    /// Use [`type_name`](#method.type_name) on `dyn Message` instead: called on a
    /// `Box<dyn Message>`, this trait method would name the box.
    #[doc(hidden)]
    fn __type_name(&self) -> &'static str;
}

impl<T: Any + Send> Message for T {
    fn __type_name(&self) -> &'static str {
        std::any::type_name::<T>()
    }
}

/// A boxed, dynamically typed message.
pub type BoxedMessage = Box<dyn Message>;

impl dyn Message {
    /// The Rust type name of the concrete message (for logs and error messages).
    pub fn type_name(&self) -> &'static str {
        self.__type_name()
    }

    /// True if the message is a `T`.
    pub fn is<T: Any>(&self) -> bool {
        (self as &dyn Any).is::<T>()
    }

    /// The message as a `&T`, if it is one.
    pub fn downcast_ref<T: Any>(&self) -> Option<&T> {
        (self as &dyn Any).downcast_ref::<T>()
    }

    /// The message as a `&mut T`, if it is one.
    pub fn downcast_mut<T: Any>(&mut self) -> Option<&mut T> {
        (self as &mut dyn Any).downcast_mut::<T>()
    }

    /// The [`TypeId`] of the concrete message.
    pub fn message_type_id(&self) -> TypeId {
        (self as &dyn Any).type_id()
    }
}

impl fmt::Debug for dyn Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Message({})", self.type_name())
    }
}

/// Downcasts a boxed message, giving it back unchanged when it is another type.
pub fn downcast_message<T: Any>(msg: BoxedMessage) -> Result<Box<T>, BoxedMessage> {
    if msg.is::<T>() {
        let any: Box<dyn Any> = msg;
        Ok(any.downcast::<T>().expect("type checked above"))
    } else {
        Err(msg)
    }
}

/// Boxes a message; an already boxed message is passed through instead of being boxed twice.
#[inline]
pub fn into_boxed<M: Message>(msg: M) -> BoxedMessage {
    let mut slot = Some(msg);
    if let Some(boxed) = (&mut slot as &mut dyn Any).downcast_mut::<Option<BoxedMessage>>() {
        return boxed.take().expect("slot is filled");
    }
    Box::new(slot.take().expect("slot is filled"))
}

/// Read-only message headers (string key/value pairs), carried across the wire by remote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MessageHeader {
    map: HashMap<String, String>,
}

impl MessageHeader {
    /// An empty header.
    pub fn new() -> Self {
        Self::default()
    }
    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.map.get(key).map(String::as_str)
    }
    /// Sets `key` to `value`.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.map.insert(key.into(), value.into());
    }
    /// All keys.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.map.keys().map(String::as_str)
    }
    /// The number of entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }
    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
    /// The entries as a map.
    pub fn to_map(&self) -> HashMap<String, String> {
        self.map.clone()
    }
    /// Iterates over the entries.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.map.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl From<HashMap<String, String>> for MessageHeader {
    fn from(map: HashMap<String, String>) -> Self {
        Self { map }
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for MessageHeader {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self {
            map: iter
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }
}

/// A user message with its optional sender and header: what travels through mailboxes.
///
/// Build one with [`MessageEnvelope::new`] and the `with_*` methods, read it with the
/// accessors, take it apart with [`MessageEnvelope::into_parts`].
pub struct MessageEnvelope {
    /// The message itself.
    pub(crate) message: BoxedMessage,
    /// Who to respond to, if anyone.
    pub(crate) sender: Option<Pid>,
    /// Optional headers (shared, immutable once sent).
    pub(crate) header: Option<Arc<MessageHeader>>,
}

impl MessageEnvelope {
    /// An envelope with no sender and no header. An envelope given as the message is
    /// returned as it is, so `send(pid, envelope)` sends the envelope with its sender and
    /// header (as protoactor-go does) instead of boxing it as a message.
    #[inline]
    pub fn new<M: Message>(message: M) -> Self {
        // A `TypeId` comparison, resolved when `M` is known: free for other messages.
        let mut slot = Some(message);
        if let Some(env) = (&mut slot as &mut dyn Any).downcast_mut::<Option<MessageEnvelope>>() {
            return env.take().expect("slot is filled");
        }
        Self {
            message: into_boxed(slot.take().expect("slot is filled")),
            sender: None,
            header: None,
        }
    }
    /// An envelope around an already boxed message.
    #[inline]
    pub fn from_boxed(message: BoxedMessage) -> Self {
        Self {
            message,
            sender: None,
            header: None,
        }
    }
    /// Sets the sender.
    pub fn with_sender(mut self, sender: Option<Pid>) -> Self {
        self.sender = sender;
        self
    }
    /// Sets the header.
    pub fn with_header(mut self, header: Option<Arc<MessageHeader>>) -> Self {
        self.header = header;
        self
    }
    /// Sets one header entry (for example in sender middleware), creating the header if
    /// there is none; a header shared with other envelopes is copied first.
    pub fn set_header(&mut self, key: impl Into<String>, value: impl Into<String>) {
        Arc::make_mut(self.header.get_or_insert_with(Default::default)).set(key, value);
    }
    /// The value of a header entry.
    pub fn header_value(&self, key: &str) -> Option<&str> {
        self.header.as_deref().and_then(|h| h.get(key))
    }
    /// The message.
    #[inline]
    pub fn message(&self) -> &dyn Message {
        &*self.message
    }
    /// The message, mutably (for example to `downcast_mut` it).
    #[inline]
    pub fn message_mut(&mut self) -> &mut dyn Message {
        &mut *self.message
    }
    /// Who to respond to, if anyone.
    #[inline]
    pub fn sender(&self) -> Option<&Pid> {
        self.sender.as_ref()
    }
    /// The header, if any (shared between envelopes; see [`MessageEnvelope::set_header`]).
    #[inline]
    pub fn header(&self) -> Option<&Arc<MessageHeader>> {
        self.header.as_ref()
    }
    /// The message, without sender and header.
    #[inline]
    pub fn into_message(self) -> BoxedMessage {
        self.message
    }
    /// Message, sender and header.
    #[inline]
    pub fn into_parts(self) -> (BoxedMessage, Option<Pid>, Option<Arc<MessageHeader>>) {
        (self.message, self.sender, self.header)
    }
}

impl fmt::Debug for MessageEnvelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageEnvelope")
            .field("message", &self.message.type_name())
            .field("sender", &self.sender)
            .field("header", &self.header)
            .finish()
    }
}

// ---- lifecycle messages (delivered to `receive`) ----

/// Delivered first to every new (or restarted) actor incarnation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Started;
/// Delivered when the actor begins stopping, before its children are stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stopping;
/// Delivered last, after the children have stopped and the actor is unregistered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stopped;
/// Delivered to the old incarnation before a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Restarting;
/// A user message that stops the actor once the messages queued before it are processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoisonPill;
/// Delivered when no message arrived within the receive timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReceiveTimeout;
/// Asks an actor who it is: every actor answers `Touched { who }` automatically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Touch;
/// The automatic reply to [`Touch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Touched {
    /// The actor that was touched.
    pub who: Pid,
}
/// A system message that stops the actor at once (user messages still queued are not processed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stop;

/// The reply a requester gets when its message could not be delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterResponse {
    /// The PID the message was sent to.
    pub target: Option<Pid>,
}

/// Why a watched actor is gone (wire values match protoactor-go's `TerminatedReason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(i32)]
pub enum TerminatedReason {
    /// The actor stopped.
    #[default]
    Stopped = 0,
    /// The node hosting the actor became unreachable.
    AddressTerminated = 1,
    /// There was no such actor.
    NotFound = 2,
}

/// A wire value that is no [`TerminatedReason`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown TerminatedReason wire value {0}")]
pub struct UnknownTerminatedReason(pub i32);

impl TryFrom<i32> for TerminatedReason {
    type Error = UnknownTerminatedReason;

    /// The reason for a wire value (callers that must accept anything can fall back to
    /// the default, `Stopped`, as protoactor-go does).
    fn try_from(v: i32) -> Result<Self, Self::Error> {
        match v {
            0 => Ok(Self::Stopped),
            1 => Ok(Self::AddressTerminated),
            2 => Ok(Self::NotFound),
            other => Err(UnknownTerminatedReason(other)),
        }
    }
}

/// Sent to watchers (and the parent) when an actor is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terminated {
    /// The actor that is gone.
    pub who: Pid,
    /// Why.
    pub why: TerminatedReason,
}

/// A batch of messages that a mailbox unrolls: each message is delivered on its own, then the
/// batch itself (with its messages taken out, [`MessageBatch::len`] still telling how many there were).
pub struct MessageBatch {
    messages: Vec<BoxedMessage>,
    len: usize,
}

impl MessageBatch {
    /// A batch of messages.
    pub fn new(messages: Vec<BoxedMessage>) -> Self {
        let len = messages.len();
        Self { messages, len }
    }
    /// How many messages the batch was built with.
    pub fn len(&self) -> usize {
        self.len
    }
    /// True if the batch was built empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub(crate) fn take_messages(&mut self) -> Vec<BoxedMessage> {
        std::mem::take(&mut self.messages)
    }
}

impl fmt::Debug for MessageBatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageBatch")
            .field("len", &self.len)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_accessors_and_parts() {
        let sender = Pid::new("nonhost", "$1");
        let mut env = MessageEnvelope::new(5u32).with_sender(Some(sender.clone()));
        env.set_header("k", "v");
        assert_eq!(env.message().downcast_ref::<u32>(), Some(&5));
        *env.message_mut().downcast_mut::<u32>().unwrap() = 6;
        assert_eq!(env.sender(), Some(&sender));
        assert_eq!(env.header().and_then(|h| h.get("k")), Some("v"));
        let (message, s, header) = env.into_parts();
        assert_eq!(message.downcast_ref::<u32>(), Some(&6));
        assert_eq!(s, Some(sender));
        assert_eq!(header.unwrap().get("k"), Some("v"));
        assert!(MessageEnvelope::new("x").into_message().is::<&str>());
    }

    #[test]
    fn terminated_reason_from_wire_values() {
        for r in [
            TerminatedReason::Stopped,
            TerminatedReason::AddressTerminated,
            TerminatedReason::NotFound,
        ] {
            assert_eq!(TerminatedReason::try_from(r as i32), Ok(r));
        }
        assert_eq!(
            TerminatedReason::try_from(3),
            Err(UnknownTerminatedReason(3))
        );
        assert_eq!(
            TerminatedReason::try_from(-1).unwrap_or_default(),
            TerminatedReason::Stopped
        );
    }

    #[test]
    fn boxed_messages_are_not_boxed_twice() {
        let b: BoxedMessage = Box::new(42u32);
        let again = into_boxed(b);
        assert_eq!(again.downcast_ref::<u32>(), Some(&42));
        assert!(into_boxed("x").is::<&str>());
    }

    #[test]
    fn an_envelope_given_as_a_message_is_the_envelope() {
        let mut h = MessageHeader::new();
        h.set("k", "v");
        let sender = Pid::new("nonhost", "s");
        let env = MessageEnvelope::new(
            MessageEnvelope::new(5u8)
                .with_sender(Some(sender.clone()))
                .with_header(Some(Arc::new(h))),
        );
        assert_eq!(env.message.downcast_ref::<u8>(), Some(&5));
        assert_eq!(env.sender, Some(sender));
        assert_eq!(env.header_value("k"), Some("v"));
    }

    #[test]
    fn set_header_creates_or_copies_the_header() {
        let mut a = MessageEnvelope::new(1u8);
        a.set_header("k", "v");
        let shared = a.header.clone();
        a.set_header("k", "w");
        assert_eq!(a.header_value("k"), Some("w"));
        assert_eq!(
            shared.unwrap().get("k"),
            Some("v"),
            "a shared header is not changed"
        );
    }

    #[test]
    fn downcast_gives_back_other_types() {
        let b: BoxedMessage = Box::new(String::from("hi"));
        let b = downcast_message::<u32>(b).unwrap_err();
        assert_eq!(*downcast_message::<String>(b).unwrap(), "hi");
    }

    #[test]
    fn type_name_names_the_concrete_type() {
        let b: BoxedMessage = Box::new(Started);
        assert!(b.type_name().ends_with("Started"));
    }
}
