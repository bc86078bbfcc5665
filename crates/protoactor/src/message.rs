//! Messages: any `Send + 'static` value, boxed once, plus the built-in lifecycle and
//! wire-level messages of Proto.Actor.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::ptr::NonNull;
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

/// Boxes a message; an already boxed message is passed through instead of being boxed twice,
/// and a [`SharedMessage`] becomes its message (copied unless this was its last reference).
#[inline]
pub fn into_boxed<M: Message>(msg: M) -> BoxedMessage {
    let mut slot = Some(msg);
    let any = &mut slot as &mut dyn Any;
    if let Some(boxed) = any.downcast_mut::<Option<BoxedMessage>>() {
        return boxed.take().expect("slot is filled");
    }
    if let Some(shared) = any.downcast_mut::<Option<SharedMessage>>() {
        return shared.take().expect("slot is filled").into_boxed();
    }
    Box::new(slot.take().expect("slot is filled"))
}

/// What a [`SharedMessage`] holds: a message that many receivers may read at once, and can
/// copy when one of them needs its own.
trait Shareable: Message + Sync {
    fn as_message(&self) -> &dyn Message;
    fn clone_boxed(&self) -> BoxedMessage;
    fn into_boxed(self: Box<Self>) -> BoxedMessage;
}

impl<T: Message + Sync + Clone> Shareable for T {
    fn as_message(&self) -> &dyn Message {
        self
    }
    fn clone_boxed(&self) -> BoxedMessage {
        Box::new(self.clone())
    }
    fn into_boxed(self: Box<Self>) -> BoxedMessage {
        self
    }
}

/// One message delivered to many receivers without a copy each: cloning it (and sending
/// the clone) costs a reference count increment, as protoactor-go hands one pointer to every
/// receiver.
///
/// A receiver reads it as the message itself (`ctx.message_as::<T>()`, `match_message!`,
/// `downcast_ref`): the sharing is invisible. What needs the message owned gets its own copy,
/// made when needed: [`Context::take_message`](crate::Context::take_message) (which takes the
/// message itself from the last reference), [`MessageEnvelope::message_mut`] and
/// [`MessageEnvelope::into_message`]; `forward` passes the shared message on as it is.
///
/// Send one with `send(pid, shared.clone())` or as a [`MessageBatch::shared`].
///
/// ```
/// use protoactor::{MessageEnvelope, SharedMessage};
///
/// let shared = SharedMessage::new(String::from("news"));
/// let a = MessageEnvelope::new(shared.clone());
/// let b = MessageEnvelope::new(shared);
/// assert_eq!(a.message().downcast_ref::<String>().unwrap(), "news");
/// assert!(std::ptr::eq(a.message(), b.message()), "one message, two envelopes");
/// ```
#[derive(Clone)]
pub struct SharedMessage(Arc<SharedCell>);

impl SharedMessage {
    /// Shares `message` (any `Clone + Sync` message).
    pub fn new<T: Message + Sync + Clone>(message: T) -> Self {
        SharedMessage(Arc::new(Box::new(message)))
    }
    /// Shares a boxed message if it is a `T`, giving it back unchanged otherwise (the box is
    /// kept, not copied).
    pub fn from_boxed<T: Message + Sync + Clone>(
        message: BoxedMessage,
    ) -> Result<Self, BoxedMessage> {
        downcast_message::<T>(message).map(|b| {
            let b: Box<dyn Shareable> = b;
            SharedMessage(Arc::new(b))
        })
    }
    /// The message.
    #[inline]
    pub fn message(&self) -> &dyn Message {
        (**self.0).as_message()
    }
    /// The message as an owned box: the message itself when this was its last reference,
    /// a copy otherwise.
    pub fn into_boxed(self) -> BoxedMessage {
        match Arc::try_unwrap(self.0) {
            Ok(b) => b.into_boxed(),
            Err(shared) => (**shared).clone_boxed(),
        }
    }
}

impl fmt::Debug for SharedMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SharedMessage({})", self.message().type_name())
    }
}

/// The top address bit marks a shared message in a [`Payload`]. No pointer to a live
/// allocation (nor a `Box` of a zero-sized type, whose address is its alignment) has it on a
/// 64-bit target: user-space addresses stay in the lower half (at most 57 bits on x86_64 and
/// 52 on aarch64). `Payload::shared` checks it; `Payload::owned`, on every message's path,
/// only in debug builds, and the payload is compiled for 64-bit targets only.
const SHARED_BIT: usize = 1 << (usize::BITS - 1);

// On a 32-bit target a user-space address may have its top bit set (3 GiB splits), and a box
// there would read as shared: such targets are refused rather than checked per message.
#[cfg(not(target_pointer_width = "64"))]
compile_error!("protoactor's message payload needs a 64-bit target (see `SHARED_BIT`)");

/// An envelope's message: owned (a `Box<dyn Message>`) or shared with other envelopes (an
/// `Arc` of a [`SharedMessage`]'s cell, its address marked with `SHARED_BIT`). Dereferences
/// to the message either way.
///
/// One fat non-null pointer, as a `BoxedMessage` is: an enum of the two would not leave
/// the envelope a niche (its `Option` and the context's current message would grow by a word,
/// and with them every idle actor), and a second vtable call per message to tell them apart
/// would cost every ordinary message.
pub(crate) struct Payload(NonNull<dyn Message>);

type SharedCell = Box<dyn Shareable>;

// SAFETY: a `Payload` owns either a `Box<dyn Message>` (`Send`: `Message: Send`) or one strong
// reference of an `Arc<SharedCell>` (`Send`: `dyn Shareable` is `Send + Sync`). It is not `Sync`,
// as a `Box<dyn Message>` is not.
#[allow(unsafe_code)]
unsafe impl Send for Payload {}

#[allow(unsafe_code)]
impl Payload {
    /// An owned message.
    #[inline]
    pub(crate) fn owned(message: BoxedMessage) -> Self {
        let ptr = Box::into_raw(message);
        // No check in release builds: on the 64-bit targets this compiles for, no allocation's
        // address (nor a zero-sized box's, its alignment) has the top bit (see `SHARED_BIT`),
        // so an owned box never reads as shared.
        debug_assert!(
            (ptr as *const ()).addr() & SHARED_BIT == 0,
            "a message's address has the top bit set: unsupported target"
        );
        // SAFETY: `Box::into_raw` is never null.
        Payload(unsafe { NonNull::new_unchecked(ptr) })
    }

    /// A shared message: one more reference to its cell.
    #[inline]
    pub(crate) fn shared(message: SharedMessage) -> Self {
        let cell = Arc::into_raw(message.0).cast_mut();
        assert!(
            cell.addr() & SHARED_BIT == 0,
            "a message's address has the top bit set: unsupported target"
        );
        // The cell's type stands in for the vtable: only the marked address is ever read
        // back, as a thin pointer (`shared_cell`).
        let marked: *mut dyn Message = cell.map_addr(|a| a | SHARED_BIT);
        // SAFETY: the marked address has its top bit set, so it is not null.
        Payload(unsafe { NonNull::new_unchecked(marked) })
    }

    /// True if the message is shared (one test of the address's sign bit).
    #[inline(always)]
    fn is_shared(&self) -> bool {
        (self.0.as_ptr() as *const ()).addr() & SHARED_BIT != 0
    }

    /// The `Arc`'s cell pointer if the message is shared.
    #[inline(always)]
    fn shared_cell(&self) -> Option<*const SharedCell> {
        if self.is_shared() {
            let p = self.0.as_ptr() as *const SharedCell;
            Some(p.map_addr(|a| a & !SHARED_BIT))
        } else {
            None
        }
    }

    /// Takes the payload apart without running its `Drop`.
    #[inline]
    fn into_raw(self) -> NonNull<dyn Message> {
        std::mem::ManuallyDrop::new(self).0
    }

    /// No message (`()`, allocates nothing): what is left where a message was moved out.
    #[inline]
    pub(crate) fn empty() -> Self {
        Payload::owned(Box::new(()))
    }

    /// The message, mutably, if it is owned (a shared message is never changed in place).
    #[inline]
    pub(crate) fn owned_mut(&mut self) -> Option<&mut dyn Message> {
        if self.is_shared() {
            return None;
        }
        // SAFETY: not shared, so the pointer is the `Box` this payload owns; `&mut self`
        // makes the borrow unique.
        Some(unsafe { self.0.as_mut() })
    }

    /// The message as a `&mut T` if it is an owned `T` (one test, then the type check).
    #[inline(always)]
    pub(crate) fn downcast_owned_mut<T: Any>(&mut self) -> Option<&mut T> {
        if self.is_shared() {
            return None;
        }
        // SAFETY: not shared, so the pointer is the `Box` this payload owns; `&mut self`
        // makes the borrow unique.
        let m: &mut dyn Message = unsafe { self.0.as_mut() };
        m.downcast_mut::<T>()
    }

    /// The message, mutably: a shared one is copied first (the others keep theirs).
    pub(crate) fn make_mut(&mut self) -> &mut dyn Message {
        if let Some(cell) = self.shared_cell() {
            // SAFETY: this payload holds a strong reference, so the cell is alive.
            let cell: &SharedCell = unsafe { &*cell };
            let copy = (**cell).clone_boxed();
            *self = Payload::owned(copy);
        }
        self.owned_mut().expect("made owned above")
    }

    /// The message as an owned box (see [`SharedMessage::into_boxed`]).
    #[inline]
    pub(crate) fn into_boxed(self) -> BoxedMessage {
        if self.is_shared() {
            return self.shared_into_boxed();
        }
        let ptr = self.into_raw();
        // SAFETY: not shared, so the payload's box, from `Box::into_raw`, taken back once
        // (`into_raw` skipped the drop).
        unsafe { Box::from_raw(ptr.as_ptr()) }
    }

    /// [`Payload::into_boxed`] of a shared message (out of line).
    #[cold]
    #[inline(never)]
    fn shared_into_boxed(self) -> BoxedMessage {
        let cell = self.shared_cell().expect("called for a shared message");
        let _ = self.into_raw();
        // SAFETY: the payload's strong reference, from `Arc::into_raw`, taken back once
        // (`into_raw` skipped the drop).
        SharedMessage(unsafe { Arc::from_raw(cell) }).into_boxed()
    }

    /// Moves the message out if it is a `T`, leaving `()`.
    #[inline]
    pub(crate) fn take<T: Any>(&mut self) -> Option<T> {
        if !self.is::<T>() {
            return None;
        }
        let msg = std::mem::replace(self, Payload::empty()).into_boxed();
        // Checked above: one more `type_id` call (in `downcast`), not two.
        let msg: Box<dyn Any> = msg;
        msg.downcast::<T>().ok().map(|b| *b)
    }
}

#[allow(unsafe_code)]
impl std::ops::Deref for Payload {
    type Target = dyn Message;
    #[inline(always)]
    fn deref(&self) -> &dyn Message {
        if self.is_shared() {
            return self.shared_message();
        }
        // SAFETY: the payload's own box, alive until it is dropped.
        unsafe { self.0.as_ref() }
    }
}

#[allow(unsafe_code)]
impl Payload {
    /// The shared message (out of line: ordinary messages carry only the test).
    #[cold]
    #[inline(never)]
    fn shared_message(&self) -> &dyn Message {
        let cell = self.shared_cell().expect("called for a shared message");
        // SAFETY: this payload holds a strong reference, so the cell is alive while `self`
        // is borrowed, and a shared cell is only read.
        let cell: &SharedCell = unsafe { &*cell };
        (**cell).as_message()
    }
}

#[allow(unsafe_code)]
impl Drop for Payload {
    #[inline]
    fn drop(&mut self) {
        if self.is_shared() {
            return self.release_shared();
        }
        // SAFETY: not shared, so the payload's box, from `Box::into_raw`, freed once.
        drop(unsafe { Box::from_raw(self.0.as_ptr()) })
    }
}

#[allow(unsafe_code)]
impl Payload {
    /// Drops a shared message's reference (out of line: ordinary messages carry only the test).
    #[cold]
    #[inline(never)]
    fn release_shared(&mut self) {
        let cell = self.shared_cell().expect("called for a shared message");
        // SAFETY: the payload's strong reference, from `Arc::into_raw`, released once (only
        // from `drop`).
        drop(unsafe { Arc::from_raw(cell) })
    }
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
    /// The message itself (owned or shared).
    pub(crate) message: Payload,
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
        let any = &mut slot as &mut dyn Any;
        if let Some(env) = any.downcast_mut::<Option<MessageEnvelope>>() {
            return env.take().expect("slot is filled");
        }
        if let Some(shared) = any.downcast_mut::<Option<SharedMessage>>() {
            return Self::shared(shared.take().expect("slot is filled"));
        }
        Self::from_boxed(into_boxed(slot.take().expect("slot is filled")))
    }
    /// An envelope around a shared message (no sender, no header).
    #[inline]
    pub fn shared(message: SharedMessage) -> Self {
        Self {
            message: Payload::shared(message),
            sender: None,
            header: None,
        }
    }
    /// An envelope around an already boxed message.
    #[inline]
    pub fn from_boxed(message: BoxedMessage) -> Self {
        Self {
            message: Payload::owned(message),
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
    /// The message, mutably (for example to `downcast_mut` it). A [`SharedMessage`] is
    /// copied first: the other receivers keep theirs unchanged.
    #[inline]
    pub fn message_mut(&mut self) -> &mut dyn Message {
        self.message.make_mut()
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
    /// The message, without sender and header (a shared one as its own copy, see
    /// [`SharedMessage::into_boxed`]).
    #[inline]
    pub fn into_message(self) -> BoxedMessage {
        self.message.into_boxed()
    }
    /// Message, sender and header (a shared message as in [`MessageEnvelope::into_message`]).
    #[inline]
    pub fn into_parts(self) -> (BoxedMessage, Option<Pid>, Option<Arc<MessageHeader>>) {
        (self.message.into_boxed(), self.sender, self.header)
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
    messages: BatchMessages,
    len: usize,
}

enum BatchMessages {
    Owned(Vec<BoxedMessage>),
    /// One list for many receivers: each gets the messages themselves, not copies.
    Shared(Arc<[SharedMessage]>),
}

/// The messages of a batch, as the mailbox queues them.
pub(crate) enum BatchEnvelopes {
    Owned(std::vec::IntoIter<BoxedMessage>),
    Shared(Arc<[SharedMessage]>, std::ops::Range<usize>),
}

impl Iterator for BatchEnvelopes {
    type Item = MessageEnvelope;
    #[inline]
    fn next(&mut self) -> Option<MessageEnvelope> {
        match self {
            BatchEnvelopes::Owned(it) => it.next().map(MessageEnvelope::from_boxed),
            BatchEnvelopes::Shared(all, range) => range
                .next()
                .map(|i| MessageEnvelope::shared(all[i].clone())),
        }
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = match self {
            BatchEnvelopes::Owned(it) => it.len(),
            BatchEnvelopes::Shared(_, range) => range.len(),
        };
        (n, Some(n))
    }
}

impl ExactSizeIterator for BatchEnvelopes {}

impl MessageBatch {
    /// A batch of messages.
    pub fn new(messages: Vec<BoxedMessage>) -> Self {
        let len = messages.len();
        Self {
            messages: BatchMessages::Owned(messages),
            len,
        }
    }
    /// A batch of shared messages: sending it to many receivers (a clone of the `Arc` each)
    /// queues the same messages for all of them, a reference count increment per message and
    /// receiver (see [`SharedMessage`]).
    pub fn shared(messages: Arc<[SharedMessage]>) -> Self {
        let len = messages.len();
        Self {
            messages: BatchMessages::Shared(messages),
            len,
        }
    }
    /// How many messages the batch was built with.
    pub fn len(&self) -> usize {
        self.len
    }
    /// True if the batch was built empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub(crate) fn take_envelopes(&mut self) -> BatchEnvelopes {
        match std::mem::replace(&mut self.messages, BatchMessages::Owned(Vec::new())) {
            BatchMessages::Owned(v) => BatchEnvelopes::Owned(v.into_iter()),
            BatchMessages::Shared(all) => {
                let range = 0..all.len();
                BatchEnvelopes::Shared(all, range)
            }
        }
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

    /// A message whose copies and drops are counted.
    #[derive(Debug)]
    struct Counted(Arc<std::sync::atomic::AtomicUsize>, u32);

    impl Clone for Counted {
        fn clone(&self) -> Self {
            Counted(self.0.clone(), self.1)
        }
    }

    impl Counted {
        /// How many `Counted` share this one's counter (the original and its copies).
        fn instances(&self) -> usize {
            Arc::strong_count(&self.0)
        }
    }

    #[test]
    fn a_shared_message_reads_as_itself_in_every_envelope_without_a_copy() {
        let c = Counted(Arc::new(Default::default()), 7);
        let probe = c.0.clone();
        let shared = SharedMessage::new(c);
        let envs: Vec<MessageEnvelope> = (0..3)
            .map(|_| MessageEnvelope::new(shared.clone()))
            .collect();
        for e in &envs {
            let m = e
                .message()
                .downcast_ref::<Counted>()
                .expect("reads as the message");
            assert_eq!(m.1, 7);
            assert!(std::ptr::eq(
                m,
                envs[0].message().downcast_ref::<Counted>().unwrap()
            ));
            assert!(e.message().type_name().ends_with("Counted"));
        }
        // Only the original: no copy was made (the probe and the message hold the counter).
        assert_eq!(Arc::strong_count(&probe), 2);
        drop(envs);
        drop(shared);
        assert_eq!(
            Arc::strong_count(&probe),
            1,
            "dropping the envelopes frees the message"
        );
    }

    #[test]
    fn owning_a_shared_message_copies_it_unless_it_is_the_last_reference() {
        let shared = SharedMessage::new(Counted(Arc::new(Default::default()), 1));
        let mut a = MessageEnvelope::new(shared.clone());
        let b = MessageEnvelope::new(shared);
        // Changing one receiver's message copies it; the other keeps the original.
        a.message_mut().downcast_mut::<Counted>().unwrap().1 = 2;
        assert_eq!(a.message().downcast_ref::<Counted>().unwrap().1, 2);
        assert_eq!(b.message().downcast_ref::<Counted>().unwrap().1, 1);
        assert_eq!(
            a.message().downcast_ref::<Counted>().unwrap().instances(),
            2
        );
        // `b` holds the last reference: it gets the message itself.
        let own = downcast_message::<Counted>(b.into_message()).unwrap();
        assert_eq!(own.1, 1);
        let (m, _, _) = a.into_parts();
        assert_eq!(m.downcast_ref::<Counted>().unwrap().1, 2);
        assert!(into_boxed(SharedMessage::new(5u8)).is::<u8>());
    }

    #[test]
    fn take_from_a_shared_payload_leaves_unit_and_others_unchanged() {
        let shared = SharedMessage::new(String::from("x"));
        let mut a = Payload::shared(shared.clone());
        assert_eq!(a.take::<u8>(), None);
        assert_eq!(a.take::<String>().as_deref(), Some("x"));
        assert!(a.is::<()>());
        assert!(a.owned_mut().is_some());
        let mut b = Payload::shared(shared);
        assert!(
            b.owned_mut().is_none(),
            "a shared message is not changed in place"
        );
        assert_eq!(b.downcast_ref::<String>().map(String::as_str), Some("x"));
    }

    #[test]
    fn a_shared_batch_queues_the_same_messages_for_every_receiver() {
        let all: Arc<[SharedMessage]> = (0..3u32).map(SharedMessage::new).collect();
        let mut one = MessageBatch::shared(all.clone());
        let mut two = MessageBatch::shared(all);
        assert_eq!(one.len(), 3);
        let a: Vec<MessageEnvelope> = one.take_envelopes().collect();
        let b: Vec<MessageEnvelope> = two.take_envelopes().collect();
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert_eq!(x.message().downcast_ref::<u32>(), Some(&(i as u32)));
            assert!(std::ptr::eq(x.message(), y.message()));
        }
        assert_eq!(one.take_envelopes().len(), 0, "taken once");
    }

    #[test]
    fn an_envelope_stays_four_words_with_a_niche() {
        // Every queued message, every mailbox's inline slot and every context holds one.
        assert_eq!(std::mem::size_of::<MessageEnvelope>(), 32);
        assert_eq!(std::mem::size_of::<Option<MessageEnvelope>>(), 32);
    }

    #[test]
    fn type_name_names_the_concrete_type() {
        let b: BoxedMessage = Box::new(Started);
        assert!(b.type_name().ends_with("Started"));
    }
}
