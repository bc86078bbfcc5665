//! Messages: any `Send + 'static` value, boxed once (or, if at most a word, stored in its
//! envelope), plus the built-in lifecycle and wire-level messages of Proto.Actor.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
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
///
/// A [`MessageBatch`] is not `Clone`, so it is never shared (the mailbox relies on it):
///
/// ```compile_fail
/// protoactor::SharedMessage::new(protoactor::MessageBatch::new(Vec::new()));
/// ```
//
// Representation: the message's own fat pointer (its address inside a `SharedCell<T>`, with
// `T`'s `dyn Message` vtable), holding one reference of the cell's count. So an envelope can
// carry it in the very field where it carries an owned box, and every read of a message is
// the same load and vtable call for both; what needs the cell finds it from the message's
// address (`cell_of`): the count first (taking and giving up a reference need not know `T`),
// then `T`'s operations (`SharedHooks`).
pub struct SharedMessage(NonNull<dyn Message>);

// SAFETY: a `SharedMessage` is one reference of a `SharedCell<T>` with `T: Send + Sync` (the
// bound of `SharedMessage::new`, the only constructor of a cell): the message may be read from
// any thread and is freed (or moved out) by whichever thread gives up the last reference; it
// gives out only `&dyn Message` (never `&mut`), and the count is atomic.
#[allow(unsafe_code)]
unsafe impl Send for SharedMessage {}
// SAFETY: as for `Send` above: shared reads of a `Sync` message.
#[allow(unsafe_code)]
unsafe impl Sync for SharedMessage {}

/// A shared message's allocation (a `Box`): the count of references, `T`'s operations, then
/// the message. `repr(C)`, so the message's offset in the cell follows from its alignment
/// alone (see `cell_of`) and the count is at the cell's start.
#[repr(C)]
struct SharedCell<T> {
    count: AtomicUsize,
    hooks: &'static SharedHooks,
    message: T,
}

/// What only the concrete type of a shared message can do, reached through its cell. Each
/// takes the cell's address, which must be a live `SharedCell<T>`'s (from `Box::into_raw`) for
/// the `T` the table was made for (the table is only ever stored in such a cell).
struct SharedHooks {
    /// Frees the cell and the message (the count reached zero).
    free: unsafe fn(NonNull<u8>),
    /// Moves the message out into a box and frees the cell (its one reference).
    take: unsafe fn(NonNull<u8>) -> BoxedMessage,
    /// A copy of the message, in a box (the cell is only read).
    copy: unsafe fn(NonNull<u8>) -> BoxedMessage,
}

struct Hooks<T>(PhantomData<T>);

#[allow(unsafe_code)]
impl<T: Message + Sync + Clone> Hooks<T> {
    const TABLE: &'static SharedHooks = &SharedHooks {
        free: Self::free,
        take: Self::take,
        copy: Self::copy,
    };

    /// Safety: `cell` is a `SharedCell<T>`'s whose count reached zero (no reference is left).
    unsafe fn free(cell: NonNull<u8>) {
        // SAFETY: by this function's contract: the cell's box, from `Box::into_raw`, freed
        // once (no reference is left to reach it).
        drop(unsafe { Box::from_raw(cell.as_ptr().cast::<SharedCell<T>>()) })
    }

    /// Safety: `cell` is a `SharedCell<T>`'s and the caller holds its only reference, given
    /// up here.
    unsafe fn take(cell: NonNull<u8>) -> BoxedMessage {
        // SAFETY: by this function's contract: the only reference, so nothing else reaches
        // the cell; its box taken back once.
        let cell = unsafe { Box::from_raw(cell.as_ptr().cast::<SharedCell<T>>()) };
        Box::new(cell.message)
    }

    /// Safety: `cell` is a `SharedCell<T>`'s and the caller holds a reference during the call.
    unsafe fn copy(cell: NonNull<u8>) -> BoxedMessage {
        // SAFETY: by this function's contract the cell is alive; it is only read.
        let cell = unsafe { &*cell.as_ptr().cast::<SharedCell<T>>() };
        Box::new(cell.message.clone())
    }
}

/// The cell of a shared message (the start of the `SharedCell<T>` that holds it).
///
/// Safety: `message` is a [`SharedMessage`]'s pointer whose reference is alive.
#[allow(unsafe_code)]
#[inline(always)]
unsafe fn cell_of(message: NonNull<dyn Message>) -> NonNull<u8> {
    // SAFETY: the message is alive (the caller's reference), so it may be borrowed to read
    // its alignment from the vtable.
    let align = std::mem::align_of_val(unsafe { message.as_ref() });
    // `repr(C)`: the message follows the count and the hooks' reference (two words, 16 bytes)
    // at the next multiple of its alignment, which, both being powers of two, is the larger
    // of the two (`SharedMessage::new` asserts that this finds the cell; `next_multiple_of`
    // would divide).
    let offset = (2 * std::mem::size_of::<usize>()).max(align);
    // SAFETY: the message lies `offset` bytes into its cell, so this stays inside the same
    // allocation, with the cell's provenance (the pointer was derived from the cell's).
    unsafe { message.cast::<u8>().sub(offset) }
}

/// The reference count of the shared message at `message`.
///
/// Safety: as for [`cell_of`]; the count is not used beyond the caller's reference.
#[allow(unsafe_code)]
#[inline(always)]
unsafe fn count_of<'a>(message: NonNull<dyn Message>) -> &'a AtomicUsize {
    // SAFETY: a live `SharedCell<T>` starts with its `AtomicUsize` (`repr(C)`), aligned for it
    // (the cell's alignment is at least a word's), and is alive while the caller's reference is.
    unsafe { cell_of(message).cast::<AtomicUsize>().as_ref() }
}

/// The operations of the shared message at `message`.
///
/// Safety: as for [`cell_of`].
#[allow(unsafe_code)]
#[inline]
unsafe fn hooks_of(message: NonNull<dyn Message>) -> (NonNull<u8>, &'static SharedHooks) {
    // SAFETY: the caller's contract is `cell_of`'s.
    let cell = unsafe { cell_of(message) };
    // SAFETY: the `&'static SharedHooks` follows the count (`repr(C)`: one word in, aligned
    // for it), in a live cell.
    let hooks = unsafe { *cell.cast::<&'static SharedHooks>().add(1).as_ptr() };
    (cell, hooks)
}

#[allow(unsafe_code)]
impl SharedMessage {
    /// Shares `message` (any `Clone + Sync` message; a `SharedMessage` is returned as it is).
    pub fn new<T: Message + Sync + Clone>(message: T) -> Self {
        let mut slot = Some(message);
        if let Some(s) = (&mut slot as &mut dyn Any).downcast_mut::<Option<SharedMessage>>() {
            return s.take().expect("slot is filled");
        }
        let message = slot.take().expect("slot is filled");
        let cell = Box::into_raw(Box::new(SharedCell {
            count: AtomicUsize::new(1),
            hooks: Hooks::<T>::TABLE,
            message,
        }));
        // SAFETY: `cell` points to the live cell just made; `addr_of!` makes no reference.
        let at: *mut T = unsafe { std::ptr::addr_of_mut!((*cell).message) };
        let at: *mut dyn Message = at;
        // SAFETY: a field's address inside a live allocation is not null.
        let ptr = unsafe { NonNull::new_unchecked(at) };
        // Once per shared message, not per delivery: the layout `cell_of` relies on.
        // SAFETY: `ptr` is this new reference's message.
        assert_eq!(
            unsafe { cell_of(ptr) }.as_ptr().cast_const(),
            cell.cast::<u8>().cast_const(),
            "SharedCell layout"
        );
        SharedMessage(ptr)
    }

    /// Shares a boxed message if it is a `T` (moved out of its box), giving it back
    /// unchanged otherwise.
    pub fn from_boxed<T: Message + Sync + Clone>(
        message: BoxedMessage,
    ) -> Result<Self, BoxedMessage> {
        downcast_message::<T>(message).map(|b| SharedMessage::new(*b))
    }

    /// The message.
    #[inline]
    pub fn message(&self) -> &dyn Message {
        // SAFETY: this reference keeps the message alive while `self` is borrowed, and a
        // shared message is only ever read.
        unsafe { self.0.as_ref() }
    }

    /// The message as an owned box: the message itself when this was its last reference,
    /// a copy otherwise.
    pub fn into_boxed(self) -> BoxedMessage {
        // SAFETY: `self`'s reference is alive. Acquire: the other holders' reads (their
        // releases) happen before the message is moved out.
        if unsafe { count_of(self.0) }.load(Ordering::Acquire) == 1 {
            let ptr = self.into_raw();
            // SAFETY: the only reference (no other holder is left to make another), given up
            // by `take`.
            return unsafe {
                let (cell, hooks) = hooks_of(ptr);
                (hooks.take)(cell)
            };
        }
        // SAFETY: `self` holds a reference during the copy; it is given up after it (also if
        // the copy panics, by `self`'s drop).
        unsafe {
            let (cell, hooks) = hooks_of(self.0);
            (hooks.copy)(cell)
        }
    }

    /// A `SharedMessage` of a reference already taken for it (by `MessageBatch::shared_for`).
    ///
    /// Safety: `ptr` is a live shared message's pointer with a reference the caller owns and
    /// passes on to the result (it does not give it up otherwise).
    #[inline]
    unsafe fn counted(ptr: NonNull<dyn Message>) -> Self {
        SharedMessage(ptr)
    }

    /// The message's pointer, keeping its reference (for an envelope to hold).
    #[inline]
    fn into_raw(self) -> NonNull<dyn Message> {
        std::mem::ManuallyDrop::new(self).0
    }
}

#[allow(unsafe_code)]
impl Clone for SharedMessage {
    #[inline]
    fn clone(&self) -> Self {
        // SAFETY: `self`'s reference keeps the cell alive. Relaxed, as `Arc`'s increment: a
        // new reference is made from an existing one, which orders nothing.
        let old = unsafe { count_of(self.0) }.fetch_add(1, Ordering::Relaxed);
        if old > isize::MAX as usize {
            // As `Arc`: so many clones leaked that the count could wrap; abort rather than
            // free a message still referenced.
            std::process::abort();
        }
        SharedMessage(self.0)
    }
}

#[allow(unsafe_code)]
impl Drop for SharedMessage {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: `self`'s reference, given up once (this is its drop).
        unsafe { release_shared(self.0) }
    }
}

/// Gives up the reference of a shared message's pointer, freeing the message with the last.
///
/// Safety: `message` is a [`SharedMessage`]'s pointer with a reference the caller owns and
/// does not use again.
#[allow(unsafe_code)]
#[inline]
unsafe fn release_shared(message: NonNull<dyn Message>) {
    // SAFETY: the caller's reference keeps the cell alive until this decrement. Release, as
    // `Arc`'s: this holder's reads of the message happen before the last holder frees it.
    if unsafe { count_of(message) }.fetch_sub(1, Ordering::Release) != 1 {
        return;
    }
    // Acquire, as `Arc`'s: every other holder's release happens before the free.
    std::sync::atomic::fence(Ordering::Acquire);
    // SAFETY: the count reached zero: no reference is left but the one just given up, whose
    // pointer is still valid to find the cell (nothing freed it).
    unsafe {
        let (cell, hooks) = hooks_of(message);
        (hooks.free)(cell)
    }
}

impl fmt::Debug for SharedMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SharedMessage({})", self.message().type_name())
    }
}

/// An envelope's message and header. The message is one of three kinds, told by the header
/// slot's mark (see [`HeaderSlot`]): a pointer to a message the payload owns as a `Box`, a
/// [`SharedMessage`]'s reference (the same kind of pointer, to the shared cell's message), or
/// a small message stored in the payload itself ([`Inline`], no allocation). Reading it
/// (`Deref`) tests one bit of the mark: the pointer kinds are one load, the inline kind a
/// call of its type's view function.
///
/// The `Drop` is here, not on [`MessageEnvelope`]: a `Drop` on the envelope made every
/// function that passes one on by value copy it to its stack first.
pub(crate) struct Payload {
    words: Words,
    pub(crate) header: HeaderSlot,
}

/// The message's two words: `ptr` unless the header slot is marked inline, then `inline`.
#[derive(Clone, Copy)]
union Words {
    ptr: NonNull<dyn Message>,
    inline: Inline,
}

/// A small message stored in the envelope itself: its bytes, and the function (made for its
/// type) that turns their address into a `dyn Message` pointer.
///
/// The bytes are kept as a (maybe uninitialised) pointer, not an integer: both fields then
/// being pointers, as both of `ptr`'s are, `Words` is passed and kept in two registers like a
/// plain `NonNull<dyn Message>` (with an integer it was an aggregate, kept in memory: about 8
/// instructions more per message on the zero-sized messages' path, callgrind).
#[derive(Clone, Copy)]
#[repr(C)]
struct Inline {
    view: unsafe fn(*mut u8, InlineOp) -> *mut dyn Message,
    bytes: MaybeUninit<*const ()>,
}

/// What an inline message's view function does with the bytes at its address.
#[derive(Clone, Copy, PartialEq, Eq)]
enum InlineOp {
    /// Gives their address as a `dyn Message` pointer (the message stays where it is).
    View,
    /// Moves the message into a new box, giving the box's pointer (the bytes are left moved
    /// out).
    MoveToBox,
}

/// True if messages of type `M` are stored inline in the envelope: not zero-sized (boxing
/// one allocates nothing), at most a word in size and alignment (the room beside the view
/// function in the two words of a pointer to `dyn Message`). An envelope, a shared message, a
/// boxed message and a batch are all larger (asserted below), so they never are.
const fn fits_inline<M>() -> bool {
    let size = std::mem::size_of::<M>();
    size != 0 && size <= INLINE_SIZE && std::mem::align_of::<M>() <= INLINE_ALIGN
}

const INLINE_SIZE: usize = std::mem::size_of::<*const ()>();
const INLINE_ALIGN: usize = std::mem::align_of::<*const ()>();

// The inline kind keeps the payload (and so the envelope) as large as the pointer kinds.
const _: () = assert!(std::mem::size_of::<Inline>() <= std::mem::size_of::<NonNull<dyn Message>>());
// The types `MessageEnvelope::new` and the mailbox treat on their own are never inline.
const _: () = assert!(
    !fits_inline::<MessageEnvelope>()
        && !fits_inline::<SharedMessage>()
        && !fits_inline::<BoxedMessage>()
        && !fits_inline::<MessageBatch>()
);

/// The view function of inline messages of type `T`.
///
/// Safety: `p` is the address of a live `T` (stored by [`Payload::inline`]); with
/// [`InlineOp::MoveToBox`] the `T` is moved out (the caller does not use or drop it again).
#[allow(unsafe_code)]
unsafe fn view_inline<T: Message>(p: *mut u8, op: InlineOp) -> *mut dyn Message {
    let p = p.cast::<T>();
    if op == InlineOp::MoveToBox {
        // SAFETY: a live `T` (the caller's contract), moved out once.
        return Box::into_raw(Box::new(unsafe { p.read() }));
    }
    p
}

impl Inline {
    /// The message as a `dyn Message` pointer, from the view function called on the bytes'
    /// address (the one way every use of an inline message reaches it).
    ///
    /// Safety: `this` points at an `Inline` whose bytes hold a live message of the view
    /// function's type (`Payload::inline`); with [`InlineOp::MoveToBox`] it is moved out (the
    /// caller does not use or drop it again). The pointer is good for as long as the borrow
    /// `this` came from, and for writes only if that borrow was unique.
    #[allow(unsafe_code)]
    #[inline(always)]
    unsafe fn message(this: *mut Inline, op: InlineOp) -> *mut dyn Message {
        // SAFETY: the caller's contract, passed on to `view_inline`.
        unsafe { ((*this).view)(std::ptr::addr_of_mut!((*this).bytes).cast::<u8>(), op) }
    }
}

// SAFETY: a payload owns a `Box<dyn Message>` (`Send`: `Message: Send`), one reference of a
// `SharedMessage` (`Send`) or an inline message (`Send`: `Message: Send`), and an optional
// `Arc<MessageHeader>` reference (`Send`). It is not `Sync` (the raw pointers keep it so), as
// a `Box<dyn Message>` is not.
#[allow(unsafe_code)]
unsafe impl Send for Payload {}

impl std::ops::Deref for Payload {
    type Target = dyn Message;
    #[inline(always)]
    fn deref(&self) -> &dyn Message {
        if self.header.is_inline() {
            return self.inline_ref();
        }
        // SAFETY: a pointer kind: the payload owns the message (a box) or a reference to it (a
        // shared one), so it is alive while the payload is borrowed; `&self` gives no `&mut`
        // (only `Payload::make_mut` does, after making a shared message the payload's own).
        #[allow(unsafe_code)]
        unsafe {
            self.words.ptr.as_ref()
        }
    }
}

#[allow(unsafe_code)]
impl Payload {
    /// A boxed message; `batch` says whether it is a [`MessageBatch`] (see `BATCH`).
    #[inline]
    fn owned(message: BoxedMessage, batch: bool) -> Self {
        debug_assert!(!batch || message.is::<MessageBatch>());
        // SAFETY: `Box::into_raw` is never null.
        let ptr = unsafe { NonNull::new_unchecked(Box::into_raw(message)) };
        Payload {
            words: Words { ptr },
            header: if batch {
                HeaderSlot::kind(BOXED | BATCH)
            } else {
                HeaderSlot::EMPTY
            },
        }
    }
    #[inline]
    fn shared(message: SharedMessage) -> Self {
        Payload {
            words: Words {
                ptr: message.into_raw(),
            },
            header: HeaderSlot::kind(SHARED),
        }
    }
    /// A message stored in the payload itself (`fits_inline::<T>()`, checked by the caller).
    #[inline(always)]
    fn inline<T: Message>(message: T) -> Self {
        debug_assert!(fits_inline::<T>());
        let mut bytes = MaybeUninit::<*const ()>::uninit();
        // SAFETY: `T` fits in a pointer and is aligned no more than one (`fits_inline`), so
        // the write stays inside `bytes`, aligned for `T`.
        unsafe { bytes.as_mut_ptr().cast::<T>().write(message) };
        Payload {
            words: Words {
                inline: Inline {
                    view: view_inline::<T>,
                    bytes,
                },
            },
            header: HeaderSlot::kind(INLINE),
        }
    }
    /// The inline message (the payload is marked inline; out of line, so that every read of
    /// a message adds only the test of the mark where it is inlined).
    #[inline(never)]
    fn inline_ref(&self) -> &dyn Message {
        debug_assert!(self.header.is_inline());
        // SAFETY: marked inline, so `inline` holds a live message and the view function made
        // for its type (`Payload::inline`); its address is only read through the pointer,
        // which lives no longer than `&self` (a payload may be moved, so the message's
        // address is only good while the payload is borrowed: moving it moves the bytes, which
        // is sound for every Rust type, as nothing can have pinned a message reached only
        // through borrows of its envelope).
        unsafe {
            &*Inline::message(
                std::ptr::addr_of!(self.words.inline).cast_mut(),
                InlineOp::View,
            )
        }
    }
    /// The message, mutably: a shared one is made this payload's own first (copied, unless
    /// this was its last reference).
    #[inline]
    fn make_mut(&mut self) -> &mut dyn Message {
        if self.header.is_inline() {
            // SAFETY: as in `inline_ref`, with `&mut self` making the borrow unique.
            return unsafe {
                &mut *Inline::message(std::ptr::addr_of_mut!(self.words.inline), InlineOp::View)
            };
        }
        if self.header.is_shared() {
            self.unshare();
        }
        // SAFETY: not shared (any more) nor inline, so the pointer is the `Box` this payload
        // owns, and `&mut self` makes the borrow unique.
        unsafe { self.words.ptr.as_mut() }
    }
    /// The message as a `&mut MessageBatch` if it is one: a test of the header slot's
    /// `BATCH` mark, no call through the message's vtable (the mailbox asks for every message).
    #[inline(always)]
    pub(crate) fn batch_mut(&mut self) -> Option<&mut MessageBatch> {
        if !self.header.is_batch() {
            return None;
        }
        debug_assert!(self.header.is_owned_box());
        // SAFETY: marked as a batch: only `Payload::owned` marks one, for its own box of a
        // `MessageBatch` (a batch is never shared, as it is not `Clone`, nor inline, see
        // `fits_inline`), and whatever replaces the message clears the mark (`set_kind`); so
        // the pointer's data is that box's `MessageBatch`, and the cast needs no `TypeId`
        // call through the vtable (a runner unrolling a batch asks once per message).
        // `&mut self` makes the borrow unique.
        // SAFETY (the check in debug builds): an owned box (asserted), so readable.
        debug_assert!(unsafe { self.words.ptr.as_ref() }.is::<MessageBatch>());
        // SAFETY: as above.
        Some(unsafe { self.words.ptr.cast::<MessageBatch>().as_mut() })
    }
    /// Moves the message out if it is a `T`, leaving `()` (a shared message is copied unless
    /// this payload holds its last reference).
    #[inline]
    pub(crate) fn take<T: Any>(&mut self) -> Option<T> {
        if !self.is::<T>() {
            return None;
        }
        // `()` is zero-sized: boxing it allocates nothing.
        let unit = Box::into_raw(Box::new(()) as BoxedMessage);
        // SAFETY: `Box::into_raw` is never null.
        let unit = Words {
            ptr: unsafe { NonNull::new_unchecked(unit) },
        };
        if self.header.is_inline() {
            // SAFETY: marked inline and a `T` (checked above): the bytes hold a live `T`,
            // aligned for it (`Payload::inline`), read out once: the payload holds the unit box
            // instead from here on (its kind set to match), so it never drops them.
            let msg = unsafe {
                std::ptr::addr_of!(self.words.inline.bytes)
                    .cast::<T>()
                    .read()
            };
            self.words = unit;
            self.header.set_kind(BOXED);
            return Some(msg);
        }
        if self.header.is_shared() {
            self.unshare();
        }
        let old = std::mem::replace(&mut self.words, unit);
        // The unit box is no batch (a taken batch leaves its mark otherwise).
        self.header.set_kind(BOXED);
        // SAFETY: not shared (any more) nor inline, so the payload's own box, taken back once
        // (the payload owns the unit box instead).
        let msg: Box<dyn Any> = unsafe { Box::from_raw(old.ptr.as_ptr()) };
        // Checked above: one more `type_id` call (in `downcast`), not two.
        msg.downcast::<T>().ok().map(|b| *b)
    }
    /// The message as an owned box (a shared one as in [`SharedMessage::into_boxed`], an
    /// inline one moved into a new box) and the header.
    #[inline]
    fn into_parts(self) -> (BoxedMessage, Option<Arc<MessageHeader>>) {
        let mut me = std::mem::ManuallyDrop::new(self);
        let header = me.header.take();
        let message = if me.header.is_shared() {
            // Sound: marked shared, so the pointer is a `SharedMessage`'s, with the reference
            // the payload held, which passes to this `SharedMessage` (`me` is not dropped).
            // SAFETY: a pointer kind, so `ptr` is the field in use.
            SharedMessage(unsafe { me.words.ptr }).into_boxed()
        } else if me.header.is_inline() {
            // SAFETY: marked inline: a live message and its type's view function, moved out
            // once into the box (`me` is not dropped, so the bytes are not dropped again).
            unsafe {
                Box::from_raw(Inline::message(
                    std::ptr::addr_of_mut!(me.words.inline),
                    InlineOp::MoveToBox,
                ))
            }
        } else {
            // SAFETY: an owned box, from `Box::into_raw`, taken back once (`me` is not
            // dropped).
            unsafe { Box::from_raw(me.words.ptr.as_ptr()) }
        };
        (message, header)
    }
    /// Turns a shared message into this payload's own (out of line: shared messages only).
    #[cold]
    #[inline(never)]
    fn unshare(&mut self) {
        // Sound: marked shared, so the pointer is a `SharedMessage`'s, with the reference the
        // payload holds, which passes to this `SharedMessage`: the payload holds `()` until
        // the copy is made, so if the message's `clone` panics (the reference is given up
        // then too), the payload does not give it up a second time.
        // SAFETY: a pointer kind, so `ptr` is the field in use.
        let shared = SharedMessage(unsafe { self.words.ptr });
        self.header.set_kind(BOXED);
        let unit = Box::into_raw(Box::new(()) as BoxedMessage);
        // SAFETY: `Box::into_raw` is never null (and a zero-sized box owns no memory, so
        // overwriting it below leaks nothing).
        self.words.ptr = unsafe { NonNull::new_unchecked(unit) };
        let owned = shared.into_boxed();
        // SAFETY: `Box::into_raw` is never null.
        self.words.ptr = unsafe { NonNull::new_unchecked(Box::into_raw(owned)) };
    }
    /// Drops the payload inline (for the hot path that drops one per message).
    #[inline(always)]
    pub(crate) fn dispose(self) {
        std::mem::ManuallyDrop::new(self).release();
    }
    /// Frees the message and the header (the `Drop`).
    #[inline(always)]
    fn release(&mut self) {
        // Read by value: the out-of-line path gets the words, not a pointer into the envelope
        // (which made callers copy every envelope they pass on).
        let (words, header) = (self.words, self.header.raw());
        if header.addr() == BOXED {
            // SAFETY: an owned box and no header, so the payload's own box, from
            // `Box::into_raw`, freed once (from its drop, or `dispose`, which skips the drop).
            drop(unsafe { Box::from_raw(words.ptr.as_ptr()) })
        } else {
            // SAFETY: the payload's message and header slot, given up once (as above).
            unsafe { release_marked(words, header) }
        }
    }
}

/// `Payload::release` with a header, a shared or an inline message (out of line: the boxed
/// message's drop, inlined at every drop of an envelope, stays small).
///
/// Safety: `words` and `header` are a payload's, given up (the payload is not used again).
#[allow(unsafe_code)]
#[inline(never)]
unsafe fn release_marked(mut words: Words, header: *const MessageHeader) {
    let mut slot = HeaderSlot::from_raw(header);
    drop(slot.take());
    if slot.is_shared() {
        // SAFETY: marked shared: the payload's reference (the caller's contract).
        unsafe { release_shared(words.ptr) }
    } else if slot.is_inline() {
        // SAFETY: marked inline: the payload's message (moved here with `words`, which is
        // sound for any type, see `Payload::inline_ref`) and its view function, dropped once.
        unsafe {
            std::ptr::drop_in_place(Inline::message(
                std::ptr::addr_of_mut!(words.inline),
                InlineOp::View,
            ))
        }
    } else {
        // SAFETY: an owned box, from `Box::into_raw` (the caller's contract).
        drop(unsafe { Box::from_raw(words.ptr.as_ptr()) })
    }
}

impl Drop for Payload {
    #[inline]
    fn drop(&mut self) {
        self.release();
    }
}

/// The kinds of an envelope's message, in the header slot's two lowest bits (a header's
/// address is aligned to at least 4): never 0, so the slot is never null (the niche of
/// `Option<MessageEnvelope>`), and the low bit tells the pointer kinds (set) from the inline
/// one (clear) with one test, the one `Deref` makes.
const BOXED: usize = 1;
/// A small message stored in the envelope (see `fits_inline`).
const INLINE: usize = 2;
/// A [`SharedMessage`]'s reference.
const SHARED: usize = 3;
const KIND: usize = 3;
/// Marks a boxed message that is a [`MessageBatch`] (with `BOXED`), so the mailbox finds
/// batches without a type test of every message. A header's address is aligned to at least 8
/// (`MessageHeader`'s alignment), so this third bit is free too.
const BATCH: usize = 4;
/// All the marks: the kind and `BATCH`.
const MARKS: usize = KIND | BATCH;

/// An envelope's header (`Option<Arc<MessageHeader>>` as a raw pointer, null for none) and
/// the kind of its message (`BOXED`, `INLINE`, `SHARED`, and `BATCH`) in the low bits. An
/// envelope with an owned boxed message and no header, every ordinary message, has the slot
/// `BOXED`: the one comparison its drop makes, where `Option<Arc<_>>` made a test.
pub(crate) struct HeaderSlot(NonNull<MessageHeader>);

#[allow(unsafe_code)]
impl HeaderSlot {
    const EMPTY: HeaderSlot = HeaderSlot::kind(BOXED);

    /// No header, the message of kind `kind`.
    #[inline(always)]
    const fn kind(kind: usize) -> HeaderSlot {
        assert!(kind & KIND != 0 && kind <= MARKS);
        // SAFETY: `kind` is not 0 (asserted).
        HeaderSlot(unsafe { NonNull::new_unchecked(std::ptr::without_provenance_mut(kind)) })
    }
    /// A slot from its raw value (a slot's, so with a kind: not null).
    #[inline(always)]
    fn from_raw(raw: *const MessageHeader) -> HeaderSlot {
        debug_assert!(raw.addr() & KIND != 0);
        // SAFETY: every slot value carries a kind, which is not 0.
        HeaderSlot(unsafe { NonNull::new_unchecked(raw.cast_mut()) })
    }
    #[inline(always)]
    fn raw(&self) -> *const MessageHeader {
        self.0.as_ptr().cast_const()
    }
    #[inline(always)]
    fn is_shared(&self) -> bool {
        self.raw().addr() & KIND == SHARED
    }
    #[inline(always)]
    fn is_inline(&self) -> bool {
        // The kinds are never 0: a clear low bit is `INLINE`.
        self.raw().addr() & 1 == 0
    }
    #[inline(always)]
    fn is_owned_box(&self) -> bool {
        self.raw().addr() & KIND == BOXED
    }
    #[inline(always)]
    fn is_batch(&self) -> bool {
        self.raw().addr() & BATCH != 0
    }
    /// Sets the kind of the message, clearing the `BATCH` mark (the header stays): for a
    /// message replaced by another (taken out or copied), never a batch.
    #[inline(always)]
    fn set_kind(&mut self, kind: usize) {
        *self = HeaderSlot::from_raw(self.raw().map_addr(|a| (a & !MARKS) | kind));
    }
    /// True if there is no header.
    #[inline(always)]
    pub(crate) fn is_none(&self) -> bool {
        self.raw().addr() <= MARKS
    }
    #[inline(always)]
    fn header_ptr(&self) -> *const MessageHeader {
        self.raw().map_addr(|a| a & !MARKS)
    }
    /// The header, if any.
    #[inline]
    pub(crate) fn get(&self) -> Option<&MessageHeader> {
        if self.is_none() {
            return None;
        }
        // SAFETY: not none, so the slot holds a strong reference of an `Arc<MessageHeader>`
        // (from `Arc::into_raw`, see `put`), alive while the slot is borrowed.
        Some(unsafe { &*self.header_ptr() })
    }
    /// A new reference to the header, if any.
    #[inline]
    pub(crate) fn cloned(&self) -> Option<Arc<MessageHeader>> {
        if self.is_none() {
            return None;
        }
        let p = self.header_ptr();
        // SAFETY: as in `get`: the slot's reference keeps the `Arc` alive, so one more can
        // be made and taken.
        unsafe {
            Arc::increment_strong_count(p);
            Some(Arc::from_raw(p))
        }
    }
    /// Takes the header out (the marks stay).
    #[inline]
    fn take(&mut self) -> Option<Arc<MessageHeader>> {
        if self.is_none() {
            return None;
        }
        let p = self.header_ptr();
        *self = HeaderSlot::from_raw(self.raw().map_addr(|a| a & MARKS));
        // SAFETY: the slot's reference, from `Arc::into_raw`, handed over once (the slot no
        // longer holds it).
        Some(unsafe { Arc::from_raw(p) })
    }
    /// Sets the header of a slot that has none (the marks stay).
    #[inline(always)]
    pub(crate) fn fill(&mut self, header: &Option<Arc<MessageHeader>>) {
        debug_assert!(self.is_none());
        if let Some(h) = header {
            let kind = self.raw().addr();
            *self = HeaderSlot::from_raw(Arc::into_raw(h.clone()).map_addr(|a| a | kind));
        }
    }
    /// Replaces the header (the old one is dropped; the marks stay).
    #[inline]
    pub(crate) fn put(&mut self, header: Option<Arc<MessageHeader>>) {
        drop(self.take());
        if let Some(h) = header {
            let kind = self.raw().addr();
            // A header's address is aligned to more than the marks (asserted at the
            // envelope), so their bits are free.
            *self = HeaderSlot::from_raw(Arc::into_raw(h).map_addr(|a| a | kind));
        }
    }
}

/// Read-only message headers (string key/value pairs), carried across the wire by remote.
// Aligned to 8 on every target: an envelope keeps its marks in the low bits of the address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[repr(align(8))]
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
    /// The message itself (owned or shared) and the optional headers (shared, immutable
    /// once sent).
    pub(crate) message: Payload,
    /// Who to respond to, if anyone.
    pub(crate) sender: Option<Pid>,
}

// The header's address has its three low bits free for the marks.
const _: () = assert!(std::mem::align_of::<MessageHeader>() > MARKS);

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
        if fits_inline::<M>() {
            // Resolved when `M` is known: a small message is stored in the envelope, with no
            // allocation (the allocation and its free on the receiver's thread were most of
            // what a small message cost beyond a zero-sized one).
            return Self {
                message: Payload::inline(slot.take().expect("slot is filled")),
                sender: None,
            };
        }
        if any.is::<Option<BoxedMessage>>() {
            // Only known once unboxed: a batch or not.
            return Self::from_boxed(into_boxed(slot.take().expect("slot is filled")));
        }
        // Resolved when `M` is known, as the tests above.
        let batch = any.is::<Option<MessageBatch>>();
        Self {
            message: Payload::owned(Box::new(slot.take().expect("slot is filled")), batch),
            sender: None,
        }
    }
    /// An envelope around a shared message (no sender, no header).
    #[inline]
    pub fn shared(message: SharedMessage) -> Self {
        Self {
            message: Payload::shared(message),
            sender: None,
        }
    }
    /// An envelope around an already boxed message.
    #[inline]
    pub fn from_boxed(message: BoxedMessage) -> Self {
        let batch = message.is::<MessageBatch>();
        Self {
            message: Payload::owned(message, batch),
            sender: None,
        }
    }
    /// Sets the sender.
    pub fn with_sender(mut self, sender: Option<Pid>) -> Self {
        self.sender = sender;
        self
    }
    /// Sets the header.
    pub fn with_header(mut self, header: Option<Arc<MessageHeader>>) -> Self {
        self.message.header.put(header);
        self
    }
    /// Sets one header entry (for example in sender middleware), creating the header if
    /// there is none; a header shared with other envelopes is copied first.
    pub fn set_header(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let mut h = self.message.header.take().unwrap_or_default();
        Arc::make_mut(&mut h).set(key, value);
        self.message.header.put(Some(h));
    }
    /// The value of a header entry.
    pub fn header_value(&self, key: &str) -> Option<&str> {
        self.message.header.get().and_then(|h| h.get(key))
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
    /// The header, if any (see [`MessageEnvelope::set_header`]).
    #[inline]
    pub fn header(&self) -> Option<&MessageHeader> {
        self.message.header.get()
    }
    /// A new reference to the header, if any (headers are shared between envelopes).
    #[inline]
    pub fn header_arc(&self) -> Option<Arc<MessageHeader>> {
        self.message.header.cloned()
    }
    /// The message, without sender and header (a shared one as its own copy, see
    /// [`SharedMessage::into_boxed`]).
    #[inline]
    pub fn into_message(self) -> BoxedMessage {
        self.message.into_parts().0
    }
    /// Message, sender and header (a shared message as in [`MessageEnvelope::into_message`]).
    #[inline]
    pub fn into_parts(self) -> (BoxedMessage, Option<Pid>, Option<Arc<MessageHeader>>) {
        let (message, header) = self.message.into_parts();
        (message, self.sender, header)
    }
    /// Moves the message out if it is a `T`, leaving `()` (see [`Payload::take`]).
    #[inline]
    pub(crate) fn take_message<T: Any>(&mut self) -> Option<T> {
        self.message.take::<T>()
    }
    /// Drops the envelope inline, for the hot paths that drop one per message (a `drop`
    /// there is a call of the drop glue: 26 instructions per message, callgrind).
    #[inline(always)]
    pub(crate) fn dispose(self) {
        let MessageEnvelope { message, sender } = self;
        message.dispose();
        drop(sender);
    }
}

impl fmt::Debug for MessageEnvelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageEnvelope")
            .field("message", &self.message.type_name())
            .field("sender", &self.sender)
            .field("header", &self.message.header.get())
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
///
/// An unbounded mailbox queues the messages as one entry and its runner hands them out one
/// by one as the turn reaches them, so a batch of thousands of messages costs no queue
/// buffer of thousands of slots (the other mailboxes queue each message when the batch is
/// posted).
pub struct MessageBatch {
    messages: BatchEnvelopes,
    len: usize,
    /// The messages of a posted batch, queued ahead of it as one entry by an unbounded
    /// mailbox (`MessageBatch::take_part`): never delivered itself, dropped once its
    /// messages are handed out.
    part: bool,
}

/// The messages of a batch not yet handed out, in order.
pub(crate) enum BatchEnvelopes {
    Owned(std::vec::IntoIter<BoxedMessage>),
    /// One list for many receivers: each gets the messages themselves, not copies (a
    /// reference taken as each is handed out).
    Shared(Arc<[SharedMessage]>, std::ops::Range<usize>),
    /// As `Shared`, holding a reference of each message in `range` already (taken for many
    /// receivers at once: [`MessageBatch::shared_for`]), which each hand-out passes on and
    /// the drop gives up for those never handed out.
    Counted(Arc<[SharedMessage]>, std::ops::Range<usize>),
}

#[allow(unsafe_code)]
impl Drop for BatchEnvelopes {
    fn drop(&mut self) {
        if let BatchEnvelopes::Counted(all, range) = self {
            for i in range.clone() {
                // SAFETY: the reference of message `i` this batch holds (taken for it by
                // `shared_for`, never passed on: `i` is still in the range), given up once.
                unsafe { release_shared(all[i].0) }
            }
        }
    }
}

#[allow(unsafe_code)]
impl Iterator for BatchEnvelopes {
    type Item = MessageEnvelope;
    #[inline]
    fn next(&mut self) -> Option<MessageEnvelope> {
        match self {
            // Not marked as batches: a batch in a batch is queued as it is, not unrolled (the
            // mailbox unrolls only what is posted to it), so no type test per message.
            BatchEnvelopes::Owned(it) => it.next().map(|m| MessageEnvelope {
                message: Payload::owned(m, false),
                sender: None,
            }),
            BatchEnvelopes::Shared(all, range) => range
                .next()
                .map(|i| MessageEnvelope::shared(all[i].clone())),
            // SAFETY: the batch holds a reference of each message in the range (see
            // `Counted`); message `i` leaves the range here, so its reference is passed on
            // to the envelope once.
            BatchEnvelopes::Counted(all, range) => range
                .next()
                .map(|i| MessageEnvelope::shared(unsafe { SharedMessage::counted(all[i].0) })),
        }
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = match self {
            BatchEnvelopes::Owned(it) => it.len(),
            BatchEnvelopes::Shared(_, range) | BatchEnvelopes::Counted(_, range) => range.len(),
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
            messages: BatchEnvelopes::Owned(messages.into_iter()),
            len,
            part: false,
        }
    }
    /// A batch of shared messages: sending it to many receivers (a clone of the `Arc` each)
    /// queues the same messages for all of them, a reference count increment per message and
    /// receiver (see [`SharedMessage`]).
    pub fn shared(messages: Arc<[SharedMessage]>) -> Self {
        let len = messages.len();
        Self {
            messages: BatchEnvelopes::Shared(messages, 0..len),
            len,
            part: false,
        }
    }
    /// One batch of `messages` for each of `receivers` receivers, with the references they
    /// need taken for them at once: each message's count goes up by `receivers` in one
    /// atomic add, where [`MessageBatch::shared`] takes one per message and receiver as each
    /// receiver's mailbox hands it out (on a fan-out to 100 receivers on two threads those
    /// increments fought over each message's count: about a tenth of pub/sub's subscribers'
    /// node, perf). References not used (batches never taken, or dropped undelivered) are
    /// given back.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use protoactor::{MessageBatch, SharedMessage};
    ///
    /// let news: Arc<[SharedMessage]> = vec![SharedMessage::new(String::from("news"))].into();
    /// let batches: Vec<MessageBatch> = MessageBatch::shared_for(news, 3).collect();
    /// assert_eq!(batches.len(), 3);
    /// assert!(batches.iter().all(|b| b.len() == 1));
    /// ```
    #[allow(unsafe_code)]
    pub fn shared_for(messages: Arc<[SharedMessage]>, receivers: usize) -> SharedBatches {
        for m in messages.iter() {
            // SAFETY: `messages` holds a reference of `m`, so the count is alive. Relaxed,
            // as `Clone`'s: new references made from an existing one.
            let old = unsafe { count_of(m.0) }.fetch_add(receivers, Ordering::Relaxed);
            if old > isize::MAX as usize - receivers {
                // As `Clone`: rather abort than let the count wrap.
                std::process::abort();
            }
        }
        SharedBatches {
            messages,
            left: receivers,
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
    /// The messages not handed out yet, each taken out as the iterator reaches it.
    #[inline]
    pub(crate) fn envelopes(&mut self) -> &mut BatchEnvelopes {
        &mut self.messages
    }
    /// The batch's messages moved out into a part of it, in an envelope to queue ahead of
    /// the batch (which keeps its `len`); `None` if it has none.
    pub(crate) fn take_part(&mut self) -> Option<MessageEnvelope> {
        if self.messages.len() == 0 {
            return None;
        }
        let messages = std::mem::replace(
            &mut self.messages,
            BatchEnvelopes::Owned(Vec::new().into_iter()),
        );
        Some(MessageEnvelope::new(MessageBatch {
            len: messages.len(),
            messages,
            part: true,
        }))
    }
    /// True for a part made by [`MessageBatch::take_part`].
    #[inline]
    pub(crate) fn is_part(&self) -> bool {
        self.part
    }
}

/// The batches of [`MessageBatch::shared_for`], each holding a reference of every message.
#[derive(Debug)]
pub struct SharedBatches {
    messages: Arc<[SharedMessage]>,
    /// Batches not taken yet: the references still held for them, per message.
    left: usize,
}

impl Iterator for SharedBatches {
    type Item = MessageBatch;
    fn next(&mut self) -> Option<MessageBatch> {
        self.left = self.left.checked_sub(1)?;
        let len = self.messages.len();
        Some(MessageBatch {
            messages: BatchEnvelopes::Counted(self.messages.clone(), 0..len),
            len,
            part: false,
        })
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for SharedBatches {}

#[allow(unsafe_code)]
impl Drop for SharedBatches {
    fn drop(&mut self) {
        if self.left == 0 {
            return;
        }
        for m in self.messages.iter() {
            // SAFETY: `self.messages` holds a reference of `m` besides the `left` ones taken
            // for the batches not made, which are given up here at once: the count stays at
            // one or more (no free here; `messages`' own reference frees it). Release, as a
            // drop's: nothing was read through these references, but it orders as `Arc`'s.
            let old = unsafe { count_of(m.0) }.fetch_sub(self.left, Ordering::Release);
            debug_assert!(old > self.left);
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
        let shared = a.header_arc();
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

    /// A shared `Counted` carrying `n`, and a probe of its counter (one more holder).
    fn shared_counted(n: u32) -> (SharedMessage, Arc<std::sync::atomic::AtomicUsize>) {
        let c = Counted(Arc::new(Default::default()), n);
        let probe = c.0.clone();
        (SharedMessage::new(c), probe)
    }

    #[test]
    fn a_shared_message_reads_as_itself_in_every_envelope_without_a_copy() {
        let (shared, probe) = shared_counted(7);
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
    fn take_copies_a_shared_message_while_others_hold_it_and_moves_it_from_the_last() {
        let (shared, probe) = shared_counted(1);
        let mut a = MessageEnvelope::new(shared.clone());
        let mut b = MessageEnvelope::new(shared);
        assert!(
            a.take_message::<u8>().is_none(),
            "another type is not taken"
        );
        // `b` still holds the message: `a` gets a copy, `b` keeps the original.
        let mine = a.take_message::<Counted>().expect("a Counted");
        assert_eq!(mine.1, 1);
        assert_eq!(Arc::strong_count(&probe), 3, "probe, original, copy");
        assert!(a.message().is::<()>(), "the taken envelope holds ()");
        *a.message_mut().downcast_mut::<()>().unwrap() = ();
        drop(mine);
        // `b` holds the last reference: it gets the message itself, no copy.
        let last = b.take_message::<Counted>().expect("a Counted");
        assert_eq!(Arc::strong_count(&probe), 2, "probe and the original only");
        assert!(b.message().is::<()>());
        drop((a, b));
        assert_eq!(Arc::strong_count(&probe), 2, "the taken message lives on");
        drop(last);
        assert_eq!(Arc::strong_count(&probe), 1);
    }

    #[test]
    fn owned_envelopes_free_their_messages_on_drop_and_dispose() {
        let c = Counted(Arc::new(Default::default()), 0);
        let probe = c.0.clone();
        let a = MessageEnvelope::new(c.clone());
        let mut h = MessageHeader::new();
        h.set("k", "v");
        let b = MessageEnvelope::new(c).with_header(Some(Arc::new(h)));
        assert_eq!(Arc::strong_count(&probe), 3);
        a.dispose();
        assert_eq!(Arc::strong_count(&probe), 2);
        let header = b.header_arc().expect("a header");
        b.dispose();
        assert_eq!(Arc::strong_count(&probe), 1);
        assert_eq!(
            Arc::strong_count(&header),
            1,
            "the envelope's header reference freed"
        );
    }

    #[test]
    fn a_shared_envelope_carries_a_header_of_its_own() {
        let (shared, probe) = shared_counted(3);
        let mut a = MessageEnvelope::new(shared.clone());
        let b = MessageEnvelope::new(shared.clone());
        assert!(a.header().is_none());
        a.set_header("k", "v");
        let a = a.with_sender(Some(Pid::new("nonhost", "s")));
        assert_eq!(a.header_value("k"), Some("v"));
        assert!(b.header().is_none(), "the other envelope has no header");
        assert!(
            std::ptr::eq(a.message(), b.message()),
            "still the shared message"
        );
        let h = a.header_arc().unwrap();
        // Replacing the header keeps the message shared.
        let a = a.with_header(None).with_header(Some(h.clone()));
        assert!(std::ptr::eq(a.message(), shared.message()));
        let c = MessageEnvelope::new(shared.clone()).with_header(Some(h.clone()));
        drop(c);
        assert_eq!(Arc::strong_count(&h), 2, "h and a's header");
        let (m, sender, header) = a.into_parts();
        assert_eq!(m.downcast_ref::<Counted>().unwrap().1, 3);
        assert_eq!(sender, Some(Pid::new("nonhost", "s")));
        assert_eq!(header.unwrap().get("k"), Some("v"));
        assert_eq!(Arc::strong_count(&probe), 3, "probe, original, a's copy");
        drop((m, b, shared));
        assert_eq!(Arc::strong_count(&probe), 1);
    }

    #[test]
    fn references_given_up_on_many_threads_free_the_message_once() {
        let c = Counted(Arc::new(Default::default()), 4);
        let probe = c.0.clone();
        let shared = SharedMessage::new(c);
        let threads: Vec<_> = (0..4)
            .map(|i| {
                let s = shared.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        let e = MessageEnvelope::new(s.clone());
                        assert_eq!(e.message().downcast_ref::<Counted>().unwrap().1, 4);
                    }
                    // One thread takes its message: a copy (the others may still hold it)
                    // or the message itself (if it is the last).
                    if i == 0 {
                        let mut e = MessageEnvelope::new(s);
                        assert_eq!(e.take_message::<Counted>().unwrap().1, 4);
                    }
                })
            })
            .collect();
        drop(shared);
        for t in threads {
            t.join().expect("no thread panicked");
        }
        assert_eq!(Arc::strong_count(&probe), 1, "freed, once");
    }

    /// The reference count of a shared message (for the tests of `shared_for`).
    #[allow(unsafe_code)]
    fn refs(m: &SharedMessage) -> usize {
        // SAFETY: `m` holds a reference: the count is alive.
        unsafe { count_of(m.0) }.load(Ordering::SeqCst)
    }

    /// `shared_for` takes every receiver's references at once; each handed-out message
    /// passes one on, a batch dropped with messages not handed out (or never taken) gives
    /// theirs back, and the last holder can take the message out.
    #[test]
    fn batches_shared_for_many_receivers_hold_their_references_and_give_back_the_unused() {
        let c = Counted(Arc::new(Default::default()), 7);
        let probe = c.0.clone();
        let all: Arc<[SharedMessage]> =
            vec![SharedMessage::new(c.clone()), SharedMessage::new(c)].into();
        let mut batches = MessageBatch::shared_for(all.clone(), 4);
        assert_eq!(refs(&all[0]), 5, "the list's and four receivers'");
        let (mut a, mut b) = (batches.next().unwrap(), batches.next().unwrap());
        drop(batches);
        assert_eq!(
            refs(&all[1]),
            3,
            "the two batches never taken gave theirs back"
        );
        let got: Vec<MessageEnvelope> = a.envelopes().collect();
        assert_eq!(got.len(), 2);
        assert_eq!(refs(&all[0]), 3, "handed out: passed on, not taken again");
        assert_eq!(got[1].message().downcast_ref::<Counted>().unwrap().1, 7);
        // `b` hands out its first message only, then is dropped with the second.
        let first = b.envelopes().next().unwrap();
        drop(b);
        assert_eq!((refs(&all[0]), refs(&all[1])), (3, 2));
        drop((got, all, a));
        // The last reference: taken out, then the message is freed, once.
        let mut first = first;
        let taken = first.take_message::<Counted>().unwrap();
        assert_eq!(
            (taken.1, Arc::strong_count(&probe)),
            (7, 2),
            "the probe, the taken"
        );
        drop(taken);
        assert_eq!(Arc::strong_count(&probe), 1, "no message left");
    }

    /// Batches of `shared_for` unrolled on many threads free each message once.
    #[test]
    fn batches_shared_for_many_threads_free_each_message_once() {
        let c = Counted(Arc::new(Default::default()), 1);
        let probe = c.0.clone();
        let all: Arc<[SharedMessage]> = (0..50).map(|_| SharedMessage::new(c.clone())).collect();
        drop(c);
        let threads: Vec<_> = MessageBatch::shared_for(all, 8)
            .map(|mut b| {
                std::thread::spawn(move || {
                    let n = b
                        .envelopes()
                        .filter(|e| e.message().is::<Counted>())
                        .count();
                    assert_eq!(n, 50);
                })
            })
            .collect();
        for t in threads {
            t.join().expect("no thread panicked");
        }
        assert_eq!(Arc::strong_count(&probe), 1, "every message freed, once");
    }

    /// A message whose copy panics (`_probe` counts the live messages).
    struct PanicsOnClone {
        _probe: Arc<()>,
    }

    impl Clone for PanicsOnClone {
        fn clone(&self) -> Self {
            panic!("clone fails (expected by the test)")
        }
    }

    #[test]
    fn a_copy_that_panics_gives_the_shared_reference_up_once() {
        let probe = Arc::new(());
        let shared = SharedMessage::new(PanicsOnClone {
            _probe: probe.clone(),
        });
        let mut env = MessageEnvelope::new(shared.clone());
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            env.message_mut();
        }));
        assert!(r.is_err(), "the copy panicked");
        assert!(
            env.message().is::<()>(),
            "the envelope holds () after the failed copy"
        );
        drop(env);
        assert_eq!(Arc::strong_count(&probe), 2, "the shared message is alive");
        assert!(shared.message().is::<PanicsOnClone>());
        // The last reference moves the message out: no copy, no panic.
        assert!(shared.into_boxed().is::<PanicsOnClone>());
        assert_eq!(Arc::strong_count(&probe), 1);
    }

    /// A message aligned beyond the cell's hooks, so the message does not follow them directly.
    #[derive(Clone, Debug, PartialEq)]
    #[repr(align(64))]
    struct Aligned(u64);

    #[test]
    fn shared_messages_of_any_alignment_find_their_cell() {
        let big = SharedMessage::new(Aligned(9));
        let env = MessageEnvelope::new(big.clone());
        let addr = (env.message() as *const dyn Message).cast::<u8>().addr();
        assert_eq!(addr % 64, 0);
        assert_eq!(env.into_message().downcast_ref(), Some(&Aligned(9)));
        let zst = SharedMessage::new(Started);
        let mut e = MessageEnvelope::new(zst.clone());
        assert!(e.message_mut().is::<Started>());
        assert!(e.message_mut().downcast_mut::<Started>().is_some());
        assert_eq!(big.into_boxed().downcast_ref(), Some(&Aligned(9)));
        assert!(zst.into_boxed().is::<Started>());
        let twice = SharedMessage::new(SharedMessage::new(1u8));
        assert!(
            twice.message().is::<u8>(),
            "a shared message is not shared twice"
        );
    }

    #[test]
    fn a_shared_batch_queues_the_same_messages_for_every_receiver() {
        let all: Arc<[SharedMessage]> = (0..3u32).map(SharedMessage::new).collect();
        let mut one = MessageBatch::shared(all.clone());
        let mut two = MessageBatch::shared(all);
        assert_eq!(one.len(), 3);
        let a: Vec<MessageEnvelope> = one.envelopes().collect();
        let b: Vec<MessageEnvelope> = two.envelopes().collect();
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert_eq!(x.message().downcast_ref::<u32>(), Some(&(i as u32)));
            assert!(std::ptr::eq(x.message(), y.message()));
        }
        assert_eq!(one.envelopes().len(), 0, "taken once");
    }

    #[test]
    fn an_envelope_stays_four_words_with_a_niche() {
        // Every queued message, every mailbox's inline slot and every context holds one; an
        // inline message takes no more room than the pointer to a boxed one.
        let word = std::mem::size_of::<usize>();
        assert_eq!(std::mem::size_of::<MessageEnvelope>(), 4 * word);
        assert_eq!(std::mem::size_of::<Option<MessageEnvelope>>(), 4 * word);
        assert_eq!(std::mem::size_of::<Payload>(), 3 * word);
        assert_eq!(std::mem::align_of::<MessageEnvelope>(), word);
    }
    /// An inline-sized message (one `Arc`, as a `Pid`) whose drops are counted: the
    /// counter's strong count is 1 + the live messages.
    #[derive(Debug)]
    struct Dropped(Arc<()>);

    fn is_inline(env: &MessageEnvelope) -> bool {
        env.message.header.is_inline()
    }

    #[test]
    fn an_inline_message_is_dropped_exactly_once_however_the_envelope_ends() {
        let probe = Arc::new(());
        let live = || Arc::strong_count(&probe) - 1;
        let new = || MessageEnvelope::new(Dropped(probe.clone()));
        assert!(is_inline(&new()), "one word: stored in the envelope");
        assert_eq!(live(), 0, "dropped with the envelope");
        new().dispose();
        assert_eq!(live(), 0, "dropped by dispose");
        let mut h = MessageHeader::new();
        h.set("k", "v");
        let h = Arc::new(h);
        drop(new().with_header(Some(h.clone())));
        new().with_header(Some(h.clone())).dispose();
        assert_eq!(live(), 0, "dropped with a header too");
        assert_eq!(Arc::strong_count(&h), 1, "and the header's reference");
        let mut e = new();
        let taken = e.take_message::<Dropped>().expect("a Dropped");
        assert!(e.message().is::<()>(), "the taken envelope holds ()");
        assert!(!is_inline(&e));
        drop(e);
        assert_eq!(
            live(),
            1,
            "the taken message lives on, not dropped by the envelope"
        );
        drop(taken);
        assert_eq!(live(), 0);
        let (m, _, _) = new().with_header(Some(h.clone())).into_parts();
        assert!(m.is::<Dropped>());
        assert_eq!(live(), 1, "moved into the box, not copied nor dropped");
        drop(m);
        let m = new().into_message();
        assert_eq!(live(), 1);
        assert!(downcast_message::<Dropped>(m).is_ok());
        assert_eq!(live(), 0);
        // Moved envelopes move the message with them.
        let envs: Vec<MessageEnvelope> = (0..100).map(|_| new()).collect();
        let moved: Vec<MessageEnvelope> = envs.into_iter().rev().collect();
        assert_eq!(live(), 100);
        for e in &moved {
            assert!(Arc::ptr_eq(
                &e.message().downcast_ref::<Dropped>().unwrap().0,
                &probe
            ));
        }
        drop(moved);
        assert_eq!(live(), 0);
    }

    #[test]
    fn take_of_another_type_leaves_an_inline_message_in_place() {
        let mut e = MessageEnvelope::new(7u32);
        assert!(e.take_message::<u64>().is_none());
        assert!(e.take_message::<i32>().is_none());
        assert_eq!(e.message().downcast_ref::<u32>(), Some(&7));
        assert_eq!(e.take_message::<u32>(), Some(7));
        assert!(e.take_message::<u32>().is_none(), "taken once");
    }

    #[test]
    fn changes_through_message_mut_are_read_back_from_an_inline_message() {
        let mut e = MessageEnvelope::new(1u64);
        *e.message_mut().downcast_mut::<u64>().unwrap() += 41;
        assert_eq!(e.message().downcast_ref::<u64>(), Some(&42));
        let e = MessageEnvelope::new(e); // an envelope is passed on as it is
        assert_eq!(e.message().downcast_ref::<u64>(), Some(&42));
        assert_eq!(
            downcast_message::<u64>(e.into_message()).ok().map(|b| *b),
            Some(42)
        );
    }

    #[test]
    fn an_inline_message_carries_a_header_and_a_sender() {
        let sender = Pid::new("nonhost", "s");
        let mut h = MessageHeader::new();
        h.set("a", "1");
        let mut e = MessageEnvelope::new(3u16)
            .with_header(Some(Arc::new(h)))
            .with_sender(Some(sender.clone()));
        e.set_header("b", "2");
        assert!(is_inline(&e), "the header keeps the message inline");
        assert_eq!(e.message().downcast_ref::<u16>(), Some(&3));
        assert_eq!(e.header_value("a"), Some("1"));
        assert_eq!(e.header_value("b"), Some("2"));
        *e.message_mut().downcast_mut::<u16>().unwrap() = 4;
        let h = e.header_arc();
        let e = e.with_header(None);
        assert!(e.header().is_none());
        assert_eq!(e.message().downcast_ref::<u16>(), Some(&4));
        let mut e = e.with_header(h);
        assert_eq!(e.take_message::<u16>(), Some(4));
        assert_eq!(e.header_value("b"), Some("2"), "taking keeps the header");
        let mut f = MessageEnvelope::new(5u8);
        f.set_header("c", "3");
        let (m, s, header) = f.with_sender(Some(sender.clone())).into_parts();
        assert_eq!(m.downcast_ref::<u8>(), Some(&5));
        assert_eq!(s, Some(sender));
        assert_eq!(header.unwrap().get("c"), Some("3"));
    }

    #[test]
    fn batches_are_marked_however_they_are_boxed_and_unmarked_once_taken() {
        let batch = || MessageBatch::new(vec![Box::new(1u8) as BoxedMessage]);
        let mut a = MessageEnvelope::new(batch());
        let mut b = MessageEnvelope::from_boxed(Box::new(batch()));
        let mut c = MessageEnvelope::new(Box::new(batch()) as BoxedMessage);
        let mut h = MessageHeader::new();
        h.set("k", "v");
        let mut d = MessageEnvelope::new(batch()).with_header(Some(Arc::new(h)));
        for e in [&mut a, &mut b, &mut c, &mut d] {
            assert_eq!(e.message.batch_mut().map(|b| b.len()), Some(1));
        }
        assert_eq!(d.header_value("k"), Some("v"), "the header beside the mark");
        assert!(MessageEnvelope::new(7u64).message.batch_mut().is_none());
        assert!(MessageEnvelope::new(Started).message.batch_mut().is_none());
        assert!(MessageEnvelope::from_boxed(Box::new(String::new()))
            .message
            .batch_mut()
            .is_none());
        let taken = a.take_message::<MessageBatch>().expect("a batch");
        assert_eq!(taken.len(), 1);
        assert!(a.message.batch_mut().is_none(), "() is left, no batch");
        assert!(a.message().is::<()>());
        let (m, _, header) = d.into_parts();
        assert!(m.is::<MessageBatch>());
        assert_eq!(header.unwrap().get("k"), Some("v"));
    }

    /// A message that carries a PID (the in-process benchmark's).
    #[derive(Clone, Debug, PartialEq)]
    struct WithPid {
        sender: Pid,
    }

    #[derive(Clone, Copy, Debug, PartialEq)]
    #[repr(align(16))]
    struct Align16(u8);

    /// Sends `v` through every way an envelope is read and taken apart, and tells whether it
    /// was stored inline.
    fn round_trip<T: Message + Clone + PartialEq + fmt::Debug>(v: T) -> bool {
        let mut e = MessageEnvelope::new(v.clone());
        let inline = is_inline(&e);
        assert_eq!(e.message().downcast_ref::<T>(), Some(&v));
        assert!(e
            .message()
            .type_name()
            .ends_with(std::any::type_name::<T>()));
        assert_eq!(e.message_mut().downcast_mut::<T>(), Some(&mut v.clone()));
        let addr = (e.message() as *const dyn Message).cast::<u8>().addr();
        assert_eq!(addr % std::mem::align_of::<T>(), 0, "aligned for T");
        assert_eq!(e.take_message::<T>().as_ref(), Some(&v));
        let m = MessageEnvelope::new(v.clone()).into_message();
        assert_eq!(m.downcast_ref::<T>(), Some(&v));
        inline
    }

    #[test]
    fn messages_of_at_most_a_word_are_inline_and_larger_or_more_aligned_ones_boxed() {
        assert!(round_trip(5u8));
        assert!(round_trip(5u32));
        assert!(round_trip(u64::MAX - 1));
        assert!(round_trip((7u16, 9u8)));
        assert!(round_trip(*b"12345678"));
        assert!(round_trip(WithPid {
            sender: Pid::new("nonhost", "p")
        }));
        assert!(round_trip(Some(Pid::new("nonhost", "p"))));
        assert!(!round_trip(*b"123456789"), "9 bytes: boxed");
        assert!(!round_trip([1u64, 2]), "16 bytes: boxed");
        assert!(!round_trip(Align16(3)), "aligned to 16: boxed");
        assert!(!round_trip(String::from("heap")), "three words: boxed");
        assert!(!round_trip(Started), "zero-sized: boxed (no allocation)");
        // The types `new` treats on their own stay what they are.
        assert!(!is_inline(&MessageEnvelope::new(SharedMessage::new(1u8))));
        assert!(!is_inline(&MessageEnvelope::new(
            Box::new(1u8) as BoxedMessage
        )));
        assert!(is_inline(&MessageEnvelope::new(MessageEnvelope::new(1u8))));
    }

    #[test]
    fn type_name_names_the_concrete_type() {
        let b: BoxedMessage = Box::new(Started);
        assert!(b.type_name().ends_with("Started"));
    }
}
