//! The queues of a mailbox: a system queue that is always drained first and a user queue
//! (unbounded, bounded, bounded-dropping or priority).

use std::collections::VecDeque;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use crossbeam_queue::{ArrayQueue, SegQueue};
use parking_lot::Mutex;

use super::{MailboxConfig, MailboxMiddleware, PriorityFn, QueueKind};
use crate::message::MessageEnvelope;
use crate::process::SystemMessage;

impl MailboxConfig {
    pub(crate) fn create(&self) -> Mailbox {
        let queue = match &self.kind {
            QueueKind::Unbounded => None,
            QueueKind::Bounded(n) => Some(OtherQueue::Bounded(Box::new(ArrayQueue::new(*n)))),
            QueueKind::BoundedDropping(n) => {
                Some(OtherQueue::Dropping(Box::new(ArrayQueue::new(*n))))
            }
            QueueKind::Priority(f) => Some(OtherQueue::Priority(
                Box::new(std::array::from_fn(|_| SegQueue::new())),
                f.clone(),
            )),
        };
        Mailbox {
            queues: LockedQueues::new(),
            rare: (queue.is_some() || !self.middleware.is_empty()).then(|| {
                Box::new(RareParts {
                    queue,
                    middleware: self.middleware.clone(),
                })
            }),
        }
    }
}

/// The user queues other than the default unbounded one, in the mailbox's `RareParts`.
/// Each boxed: `ArrayQueue` is cache-padded (128-byte aligned, 384 bytes) and the priority
/// levels are 2 KiB; inline, the enum's tag would pad `RareParts` to 640 bytes.
enum OtherQueue {
    Bounded(Box<ArrayQueue<MessageEnvelope>>),
    Dropping(Box<ArrayQueue<MessageEnvelope>>),
    Priority(Box<[SegQueue<MessageEnvelope>; 8]>, PriorityFn),
}

/// A mailbox's user queue, as its runner and its senders see it (a view: the mailbox keeps
/// the unbounded queue inline and the others out of line).
#[derive(Clone, Copy)]
pub(crate) enum UserQueue<'a> {
    Unbounded(UnboundedQueue<'a>),
    Bounded(&'a ArrayQueue<MessageEnvelope>),
    Dropping(&'a ArrayQueue<MessageEnvelope>),
    Priority(&'a [SegQueue<MessageEnvelope>; 8], &'a PriorityFn),
}

impl UserQueue<'_> {
    #[inline]
    pub(crate) fn pop(self) -> Option<MessageEnvelope> {
        match self {
            UserQueue::Unbounded(q) => q.pop(USER_QUEUE_KEEP),
            UserQueue::Bounded(q) | UserQueue::Dropping(q) => q.pop(),
            UserQueue::Priority(qs, _) => qs.iter().rev().find_map(|q| q.pop()),
        }
    }
    pub(crate) fn is_empty(self) -> bool {
        match self {
            UserQueue::Unbounded(q) => q.is_empty(),
            UserQueue::Bounded(q) | UserQueue::Dropping(q) => q.is_empty(),
            UserQueue::Priority(qs, _) => qs.iter().all(|q| q.is_empty()),
        }
    }
    pub(crate) fn len(self) -> usize {
        match self {
            UserQueue::Unbounded(q) => q.len(),
            UserQueue::Bounded(q) | UserQueue::Dropping(q) => q.len(),
            UserQueue::Priority(qs, _) => qs.iter().map(|q| q.len()).sum(),
        }
    }
}

/// The user messages a runner takes in one turn. From an unbounded queue they are taken
/// all at once, the buffer changing hands under one lock; whatever is left when the turn
/// ends (its throughput is used up, a system message comes first, a panic unwinds) goes
/// back to the front of the queue, in order, so nothing is lost or reordered. Other queues
/// pop one by one.
pub(crate) struct Taken<'a> {
    queue: UserQueue<'a>,
    /// Dropped by hand in `Drop` only if it ever allocated: most turns (one message, or a
    /// bounded queue) never fill it, and a `VecDeque`'s drop glue walks its two (empty)
    /// slices, about 35 instructions per turn for nothing.
    batch: ManuallyDrop<VecDeque<MessageEnvelope>>,
    /// `batch` may hold a [`MessageBatch`](crate::MessageBatch)'s messages queued whole
    /// (see `Taken::pop_unrolling`): each message is then tested for them. Most turns never
    /// take such a part, and pay a test of this flag instead of a test of every message.
    batches: bool,
}

impl<'a> UserQueue<'a> {
    /// Starts a turn's taking (see [`Taken`]).
    #[inline]
    pub(crate) fn taker(self) -> Taken<'a> {
        Taken {
            queue: self,
            batch: ManuallyDrop::new(VecDeque::new()),
            batches: false,
        }
    }
}

impl Taken<'_> {
    /// The next user message; when the batch is used up, takes all that is queued at
    /// once (the caller's throughput bounds how many it handles; the rest goes back).
    #[inline]
    pub(crate) fn pop(&mut self) -> Option<MessageEnvelope> {
        if self.batches {
            return self.pop_unrolling();
        }
        if let Some(env) = self.batch.pop_front() {
            return Some(env);
        }
        match self.queue {
            // The emptiness check before the call: a turn of one message asks twice, and
            // the empty second ask paid `pop_many`'s call (about 30 instructions).
            UserQueue::Unbounded(q) if !q.has_any() => None,
            UserQueue::Unbounded(q) => {
                match q.pop_many(&mut self.batch, USER_QUEUE_KEEP, &mut self.batches) {
                    Some(env) => Some(env),
                    // A batch among what was taken: everything is in `batch`.
                    None if self.batches => self.pop_unrolling(),
                    None => None,
                }
            }
            other => other.pop(),
        }
    }

    /// [`Taken::pop`] while `batch` may hold a batch's part queued whole
    /// (`MessageBatch::take_part`): a part at the front hands out its next message, in
    /// place, and is dropped once used up, so a turn that ends early puts the rest back in
    /// order with the part. No queue buffer of the batch's size, and each message is handed
    /// out (a shared one's reference taken) on the thread that delivers it, as it does. A
    /// batch that is not a part (the batch itself, behind its part) is delivered as it is.
    /// (This does not call `pop`, which could then not be inlined into the runner.)
    #[inline(never)]
    fn pop_unrolling(&mut self) -> Option<MessageEnvelope> {
        loop {
            if let Some(front) = self.batch.front_mut() {
                if let Some(part) = front.message.batch_mut().filter(|b| b.is_part()) {
                    if let Some(env) = part.envelopes().next() {
                        return Some(env);
                    }
                    self.batch.pop_front();
                    continue;
                }
                return self.batch.pop_front();
            }
            // Used up: nothing here is a part any more; take what is queued.
            self.batches = false;
            let UserQueue::Unbounded(q) = self.queue else {
                return self.queue.pop();
            };
            if !q.has_any() {
                return None;
            }
            match q.pop_many(&mut self.batch, USER_QUEUE_KEEP, &mut self.batches) {
                Some(env) => return Some(env),
                None if self.batches => continue,
                None => return None,
            }
        }
    }

    /// Gives the messages taken but not handled back to the queue (before a system message
    /// is handled, so a stop sends them to dead letters in order).
    #[inline]
    pub(crate) fn put_back(&mut self) {
        if !self.batch.is_empty() {
            if let UserQueue::Unbounded(q) = self.queue {
                q.push_front_all(&mut self.batch, self.batches);
                self.batches = false;
            }
        }
    }
}

impl Drop for Taken<'_> {
    #[inline]
    fn drop(&mut self) {
        self.put_back();
        if self.batch.capacity() != 0 {
            // Moved out (an empty deque, which owns nothing, stays in the `ManuallyDrop`)
            // and dropped here: the buffer is freed.
            drop(std::mem::take(&mut *self.batch));
        }
    }
}

/// Two locked deques under one lock, each with an atomic length: an actor's system queue
/// and its unbounded user queue (one lock and two 32-bit lengths: 16 bytes less in every
/// mailbox than a lock and a `usize` length each; system messages are rare, so the runner
/// and the senders seldom want the lock for different lanes at once). It keeps idle actors
/// small: a `SegQueue` holds 256 bytes inline plus a 31-slot block (1.2 KiB of envelopes,
/// 2.5 KiB of system messages) for the rest of the actor's life once one message was
/// pushed, while a lane holds one message inline and a buffer (boxed: one word inline)
/// that is allocated only when two or more wait, and freed when drained past `keep`. The
/// inline slot makes the common case (one message for an idle actor: `Started`, a request,
/// a `Terminated`) allocation-free. The length keeps the runner's per-message "anything
/// there?" check a single atomic load.
pub(crate) struct LockedQueues<A, B> {
    lanes: Mutex<(Slots<A>, Slots<B>)>,
    /// Lengths of the first and the second lane. 32 bits: 2^32 queued envelopes would be
    /// 128 GiB of them before their messages.
    lens: [AtomicU32; 2],
}

/// FIFO: `head` is older than everything in `rest`, since a push fills `head` only when
/// both are empty.
pub(crate) struct Slots<T> {
    head: Option<T>,
    // One word instead of a `VecDeque`'s four, in every idle mailbox.
    rest: Option<Box<Rest<T>>>,
}

/// What a lane holds behind its `head`, and whether that may include a batch queued whole
/// (kept here, in the buffer a queue of two or more allocates anyway, so an idle mailbox is
/// no bigger for it).
pub(crate) struct Rest<T> {
    queue: VecDeque<T>,
    batches: bool,
}

impl<T> Default for Rest<T> {
    fn default() -> Self {
        Rest {
            queue: VecDeque::new(),
            batches: false,
        }
    }
}

impl<T> std::ops::Deref for Rest<T> {
    type Target = VecDeque<T>;
    #[inline(always)]
    fn deref(&self) -> &VecDeque<T> {
        &self.queue
    }
}

impl<T> std::ops::DerefMut for Rest<T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut VecDeque<T> {
        &mut self.queue
    }
}

impl<T> Slots<T> {
    const EMPTY: Self = Slots {
        head: None,
        rest: None,
    };
}

impl<A, B> LockedQueues<A, B> {
    fn new() -> Self {
        Self {
            lanes: Mutex::new((Slots::EMPTY, Slots::EMPTY)),
            lens: [AtomicU32::new(0), AtomicU32::new(0)],
        }
    }

    /// The first lane.
    #[inline]
    pub(crate) fn first(&self) -> LockedQueue<'_, A, B, First> {
        LockedQueue(self, PhantomData)
    }

    /// The second lane.
    #[inline]
    pub(crate) fn second(&self) -> LockedQueue<'_, A, B, Second> {
        LockedQueue(self, PhantomData)
    }
}

/// Which lane of a [`LockedQueues`] a [`LockedQueue`] is (resolved at compile time).
pub(crate) trait Lane<A, B> {
    /// What the lane holds.
    type Item;
    /// Index of its length in `LockedQueues::lens`.
    const INDEX: usize;
    /// Its slots among both lanes'.
    fn slots(lanes: &mut (Slots<A>, Slots<B>)) -> &mut Slots<Self::Item>;
}

/// The first lane of a [`LockedQueues`].
pub(crate) enum First {}
/// The second lane of a [`LockedQueues`].
pub(crate) enum Second {}

impl<A, B> Lane<A, B> for First {
    type Item = A;
    const INDEX: usize = 0;
    #[inline(always)]
    fn slots(lanes: &mut (Slots<A>, Slots<B>)) -> &mut Slots<A> {
        &mut lanes.0
    }
}

impl<A, B> Lane<A, B> for Second {
    type Item = B;
    const INDEX: usize = 1;
    #[inline(always)]
    fn slots(lanes: &mut (Slots<A>, Slots<B>)) -> &mut Slots<B> {
        &mut lanes.1
    }
}

/// One lane of a [`LockedQueues`]: a FIFO queue (a view, one word).
pub(crate) struct LockedQueue<'a, A, B, L>(&'a LockedQueues<A, B>, PhantomData<L>);

impl<A, B, L> Clone for LockedQueue<'_, A, B, L> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<A, B, L> Copy for LockedQueue<'_, A, B, L> {}

impl<A, B, L: Lane<A, B>> LockedQueue<'_, A, B, L> {
    #[inline(always)]
    fn len_cell(&self) -> &AtomicU32 {
        &self.0.lens[L::INDEX]
    }

    // Forced: left `#[inline]`, it stayed a call of its own in the sender's `post_user`
    // (its register saves and restores about 14 instructions per send, callgrind).
    #[inline(always)]
    pub(crate) fn push(self, msg: L::Item) {
        let mut guard = self.0.lanes.lock();
        let q = L::slots(&mut guard);
        if q.head.is_none() && q.rest.as_ref().is_none_or(|r| r.is_empty()) {
            q.head = Some(msg);
        } else {
            q.rest.get_or_insert_with(Default::default).push_back(msg);
        }
        // Counted before the sender's schedule request, whose SeqCst fence pairs with
        // the runner's `set_idle` fence (see `sched`). Every change of a length is made
        // under the lock, so a plain store does (no second locked instruction per message).
        let len = self.len_cell();
        len.store(len.load(Ordering::Relaxed) + 1, Ordering::Release);
    }

    /// Pushes a batch's part to be unrolled by the runner (see `Taken::pop_unrolling`),
    /// marking the lane as holding one, under the lock of the push: a runner that takes it
    /// takes the mark too.
    pub(crate) fn push_batch(self, msg: L::Item) {
        let mut guard = self.0.lanes.lock();
        let q = L::slots(&mut guard);
        let rest = q.rest.get_or_insert_with(Default::default);
        rest.push_back(msg);
        rest.batches = true;
        let len = self.len_cell();
        len.store(len.load(Ordering::Relaxed) + 1, Ordering::Release);
    }

    /// Pops the oldest message; once drained, frees a buffer larger than `keep` slots.
    #[inline]
    pub(crate) fn pop(self, keep: usize) -> Option<L::Item> {
        let len = self.len_cell();
        if len.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut guard = self.0.lanes.lock();
        let q = L::slots(&mut guard);
        let msg = q
            .head
            .take()
            .or_else(|| q.rest.as_mut().and_then(|r| r.pop_front()));
        if msg.is_some() {
            len.store(len.load(Ordering::Relaxed) - 1, Ordering::Release);
        }
        if q.rest
            .as_ref()
            .is_some_and(|r| r.is_empty() && r.capacity() > keep)
        {
            q.rest = None;
        }
        msg
    }

    /// Pops the oldest message and moves everything else queued to `out` (empty: the
    /// runner's batch), under one lock: one lock per batch instead of one per message, so
    /// the senders' pushes rarely wait for the runner. The buffer itself changes hands
    /// (the runner leaves its own empty one), so no message is moved one by one; what the
    /// turn does not handle goes back with [`LockedQueue::push_front_all`]. A lone message
    /// is returned without touching `out`, so a turn for one message allocates nothing.
    /// Once drained, frees a buffer above `keep` slots. If what is taken may hold a batch
    /// queued whole, `batches` is set and everything, the first message too, is in `out`
    /// (`None` returned): the runner tests each message then.
    // Forced: called from `Taken::pop` and its unrolling twin, LLVM kept it a call of its
    // own (about 30 instructions per turn, callgrind).
    #[inline(always)]
    fn pop_many(
        self,
        out: &mut VecDeque<L::Item>,
        keep: usize,
        batches: &mut bool,
    ) -> Option<L::Item> {
        let len = self.len_cell();
        if len.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut guard = self.0.lanes.lock();
        let q = L::slots(&mut guard);
        let first = match q.head.take() {
            Some(m) => m,
            None => q.rest.as_mut()?.pop_front()?,
        };
        let mut n = 0;
        let mut free = false;
        let mut marked = false;
        let before = out.len();
        if let Some(rest) = q.rest.as_mut() {
            n = rest.len() as u32;
            if out.is_empty() {
                std::mem::swap(out, &mut rest.queue);
            } else {
                out.append(rest);
            }
            free = rest.capacity() > keep;
            marked = std::mem::take(&mut rest.batches);
        }
        if free {
            q.rest = None;
        }
        len.store(len.load(Ordering::Relaxed) - (n + 1), Ordering::Release);
        if marked {
            *batches = true;
            // Behind what `out` held before, ahead of what came from the lane.
            out.insert(before, first);
            return None;
        }
        Some(first)
    }

    /// Puts `msgs` back in front of everything queued, in their order (the runner's batch
    /// left over when its turn ends early). What was pushed meanwhile is appended to
    /// `msgs` in bulk (a copy of slices, not a walk) and the buffers change hands again:
    /// the cost is what arrived during the turn, not what the runner gives back.
    /// `batches`: whether `msgs` may hold a batch queued whole (the lane is marked then).
    fn push_front_all(self, msgs: &mut VecDeque<L::Item>, batches: bool) {
        let n = msgs.len() as u32;
        if n == 0 {
            return;
        }
        let mut guard = self.0.lanes.lock();
        let q = L::slots(&mut guard);
        if let Some(m) = q.head.take() {
            msgs.push_back(m);
        }
        match q.rest.as_mut() {
            Some(rest) => {
                msgs.append(rest);
                std::mem::swap(msgs, &mut rest.queue);
                rest.batches |= batches;
            }
            None => {
                q.rest = Some(Box::new(Rest {
                    queue: std::mem::take(msgs),
                    batches,
                }))
            }
        }
        let len = self.len_cell();
        len.store(len.load(Ordering::Relaxed) + n, Ordering::Release);
    }

    #[inline]
    pub(crate) fn is_empty(self) -> bool {
        self.len_cell().load(Ordering::SeqCst) == 0
    }

    /// Whether anything is queued, as the first check of [`LockedQueue::pop`] and
    /// [`LockedQueue::pop_many`] reads it (an acquire load), for a caller to inline before
    /// the call: the runner asks the system queue before every user message and the user
    /// queue once more at the end of every turn, and neither call is inlined there.
    #[inline(always)]
    pub(crate) fn has_any(self) -> bool {
        self.len_cell().load(Ordering::Acquire) != 0
    }

    fn len(self) -> usize {
        self.len_cell().load(Ordering::Acquire) as usize
    }
}

/// The system lane of a mailbox.
pub(crate) type SystemQueue<'a> = LockedQueue<'a, SystemMessage, MessageEnvelope, First>;
/// The unbounded user lane of a mailbox.
type UnboundedQueue<'a> = LockedQueue<'a, SystemMessage, MessageEnvelope, Second>;

/// Buffer slots an idle unbounded mailbox may keep (bigger ones are freed when drained).
const USER_QUEUE_KEEP: usize = 16;

/// An actor's queues and mailbox middleware.
pub(crate) struct Mailbox {
    /// The system queue and the user queue (unless `rare` holds another kind), under one
    /// lock.
    queues: LockedQueues<SystemMessage, MessageEnvelope>,
    /// Another kind of user queue and the middleware, if any: one word in every mailbox
    /// (an enum of the queue kinds beside a middleware box took two).
    rare: Option<Box<RareParts>>,
}

/// What few mailboxes have (see `Mailbox::rare`).
struct RareParts {
    queue: Option<OtherQueue>,
    middleware: Vec<Arc<dyn MailboxMiddleware>>,
}

impl Mailbox {
    /// The system queue.
    #[inline]
    pub(crate) fn system(&self) -> SystemQueue<'_> {
        self.queues.first()
    }

    /// The user queue.
    #[inline]
    pub(crate) fn user(&self) -> UserQueue<'_> {
        match self.rare.as_deref().and_then(|r| r.queue.as_ref()) {
            None => UserQueue::Unbounded(self.queues.second()),
            Some(OtherQueue::Bounded(q)) => UserQueue::Bounded(q),
            Some(OtherQueue::Dropping(q)) => UserQueue::Dropping(q),
            Some(OtherQueue::Priority(qs, f)) => UserQueue::Priority(qs, f),
        }
    }

    /// The mailbox middleware (most mailboxes have none).
    #[inline]
    pub(crate) fn middleware(&self) -> &[Arc<dyn MailboxMiddleware>] {
        self.rare.as_deref().map_or(&[], |r| &r.middleware)
    }
}

#[cfg(test)]
mod locked_queue_tests {
    use super::LockedQueues;

    /// Order holds across the inline slot and the buffer, in every interleaving of pushes
    /// and pops, and a drained buffer above `keep` is freed.
    #[test]
    fn fifo_across_the_inline_slot_and_the_buffer() {
        let qs = LockedQueues::<(), u32>::new();
        let q = qs.second();
        let (mut next_in, mut next_out) = (0u32, 0u32);
        for round in 0..50u32 {
            for _ in 0..(round % 7) {
                q.push(next_in);
                next_in += 1;
            }
            for _ in 0..(round % 5) {
                if let Some(v) = q.pop(2) {
                    assert_eq!(v, next_out);
                    next_out += 1;
                }
            }
            assert_eq!(q.len(), (next_in - next_out) as usize);
        }
        while let Some(v) = q.pop(2) {
            assert_eq!(v, next_out);
            next_out += 1;
        }
        assert_eq!(next_out, next_in);
        assert!(q.is_empty());
        assert!(qs.lanes.lock().1.rest.is_none(), "drained buffer freed");
    }

    /// A batch takes the whole buffer (swapped, not copied); what the turn leaves goes back
    /// in front of what was pushed meanwhile (into the inline slot and into a buffer), or
    /// alone when nothing was; the order holds throughout.
    #[test]
    fn batches_keep_the_order_whether_they_take_all_or_part() {
        let qs = LockedQueues::<(), u32>::new();
        let q = qs.second();
        let mut out = std::collections::VecDeque::new();
        let drain_some = |out: &mut std::collections::VecDeque<u32>, k: usize| {
            (0..k).map(|_| out.pop_front().unwrap()).collect::<Vec<_>>()
        };
        for i in 0..10u32 {
            q.push(i);
        }
        // All of it: 0, then 1..=9 in the batch; the queue is empty meanwhile.
        assert_eq!(q.pop_many(&mut out, 2, &mut false), Some(0));
        assert_eq!(out.len(), 9);
        assert_eq!(q.len(), 0);
        assert_eq!(drain_some(&mut out, 3), [1, 2, 3]);
        // Pushed during the turn: 10 into the inline slot, 11 and 12 into a buffer.
        for i in 10..13 {
            q.push(i);
        }
        q.push_front_all(&mut out, false);
        assert!(out.is_empty());
        assert_eq!(q.len(), 9);
        // Again, and this time nothing is pushed before the rest goes back.
        assert_eq!(q.pop_many(&mut out, 2, &mut false), Some(4));
        assert_eq!(drain_some(&mut out, 2), [5, 6]);
        q.push_front_all(&mut out, false);
        assert_eq!(q.len(), 6);
        // A lone message taken from the inline slot leaves the batch untouched.
        let mut got = Vec::new();
        while let Some(v) = q.pop(2) {
            got.push(v);
        }
        assert_eq!(got, (7..13).collect::<Vec<_>>());
        q.push(13);
        assert_eq!(q.pop_many(&mut out, 2, &mut false), Some(13));
        assert!(out.is_empty());
        // Putting back nothing is a no-op.
        q.push_front_all(&mut out, false);
        assert_eq!(q.pop(2), None);
        assert!(q.is_empty());
    }

    /// A batch's part marks the lane: the runner that takes it gets the mark (and every
    /// message, the first too, in its buffer, to test each), a put-back keeps it, and a lane
    /// taken without a part gives no mark.
    #[test]
    fn a_part_marks_the_lane_for_the_runner_that_takes_it() {
        let qs = LockedQueues::<(), u32>::new();
        let q = qs.second();
        q.push(1);
        q.push_batch(2);
        q.push(3);
        let (mut out, mut marked) = (std::collections::VecDeque::new(), false);
        assert_eq!(q.pop_many(&mut out, 2, &mut marked), None);
        assert!(marked);
        assert_eq!(out, [1, 2, 3], "all taken, the first too");
        assert!(q.is_empty());
        // Given back (the turn ended early): marked again, after what came meanwhile.
        out.pop_front();
        q.push(4);
        q.push_front_all(&mut out, true);
        let mut again = false;
        assert_eq!(q.pop_many(&mut out, 2, &mut again), None);
        assert!(again);
        assert_eq!(out, [2, 3, 4]);
        // No part: no mark, the first returned as usual.
        out.clear();
        q.push(5);
        q.push(6);
        let mut none = false;
        assert_eq!(q.pop_many(&mut out, 2, &mut none), Some(5));
        assert!(!none);
        assert_eq!(out, [6]);
    }

    /// The two lanes share a lock but nothing else: each keeps its own order and length,
    /// a batch taken from one leaves the other alone, and draining one frees only its
    /// buffer.
    #[test]
    fn the_two_lanes_are_independent_queues() {
        let qs = LockedQueues::<u32, u32>::new();
        let (sys, user) = (qs.first(), qs.second());
        for i in 0..5 {
            user.push(100 + i);
            if i % 2 == 0 {
                sys.push(i);
            }
        }
        assert_eq!((sys.len(), user.len()), (3, 5));
        assert!(sys.has_any() && user.has_any());
        let mut out = std::collections::VecDeque::new();
        assert_eq!(user.pop_many(&mut out, 0, &mut false), Some(100));
        assert_eq!(out, [101, 102, 103, 104]);
        assert!(user.is_empty());
        assert_eq!(sys.len(), 3);
        assert!(qs.lanes.lock().0.rest.is_some(), "the system buffer stays");
        user.push(105);
        user.push_front_all(&mut out, false);
        assert_eq!(
            (sys.pop(0), sys.pop(0), sys.pop(0), sys.pop(0)),
            (Some(0), Some(2), Some(4), None)
        );
        assert!(sys.is_empty() && qs.lanes.lock().0.rest.is_none());
        let rest: Vec<_> = std::iter::from_fn(|| user.pop(0)).collect();
        assert_eq!(rest, [101, 102, 103, 104, 105]);
        assert!(user.is_empty());
    }
}

#[cfg(test)]
mod contended_lock_tests {
    use std::collections::VecDeque;
    use std::sync::{Arc, Barrier};

    use super::LockedQueues;

    /// The lanes' lock under contention (more threads than cores, so holders are
    /// preempted and waiters reach the yielding path): many threads push to the user lane
    /// (some also to the system lane) while the runner takes batches, handles part of each
    /// and gives the rest back, as a turn cut short does. Nothing is lost, each sender's
    /// order holds in both lanes, and the buffer one sender's burst grew far past `keep`
    /// is freed once drained.
    #[test]
    fn concurrent_pushes_lose_nothing_and_keep_each_senders_order() {
        const SENDERS: usize = 8;
        const N: u32 = 20_000;
        const BURST: u32 = 200_000;
        const KEEP: usize = 16;
        let count = |s: usize| if s == 0 { BURST } else { N };
        let qs = Arc::new(LockedQueues::<(usize, u32), (usize, u32)>::new());
        let start = Arc::new(Barrier::new(SENDERS + 1));
        let threads: Vec<_> = (0..SENDERS)
            .map(|s| {
                let (qs, start) = (qs.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    for i in 0..count(s) {
                        qs.second().push((s, i));
                        if s % 2 == 1 && i % 64 == 0 {
                            qs.first().push((s, i / 64));
                        }
                    }
                })
            })
            .collect();
        start.wait();
        let expected: u32 = (0..SENDERS).map(count).sum();
        let expected_sys: u32 = (0..SENDERS)
            .filter(|s| s % 2 == 1)
            .map(|s| count(s).div_ceil(64))
            .sum();
        let (mut next, mut next_sys) = ([0u32; SENDERS], [0u32; SENDERS]);
        let (mut got, mut got_sys, mut turn) = (0u32, 0u32, 0usize);
        let mut check = |(s, i): (usize, u32), got: &mut u32| {
            assert_eq!(i, next[s], "sender {s} out of order");
            next[s] += 1;
            *got += 1;
        };
        let mut batch = VecDeque::new();
        loop {
            // Read before this round's pops: once every sender is done, a round that finds
            // both lanes empty means everything pushed was taken (a loss fails, not hangs).
            let done = threads.iter().all(|t| t.is_finished());
            if done && !qs.first().has_any() && !qs.second().has_any() {
                break;
            }
            while let Some((s, i)) = qs.first().pop(0) {
                assert_eq!(i, next_sys[s], "system lane: sender {s} out of order");
                next_sys[s] += 1;
                got_sys += 1;
            }
            turn += 1;
            let q = qs.second();
            match q.pop_many(&mut batch, KEEP, &mut false) {
                Some(first) => {
                    check(first, &mut got);
                    // Handles a varying part of the batch, then gives the rest back.
                    for _ in 0..turn % 300 {
                        match batch.pop_front() {
                            Some(m) => check(m, &mut got),
                            None => break,
                        }
                    }
                    q.push_front_all(&mut batch, false);
                }
                None => std::thread::yield_now(),
            }
        }
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!((got, got_sys), (expected, expected_sys));
        assert_eq!(next[0], BURST);
        assert!(qs.second().is_empty() && qs.first().is_empty());
        assert!(
            qs.lanes
                .lock()
                .1
                .rest
                .as_ref()
                .is_none_or(|r| r.capacity() <= KEEP),
            "the burst's buffer is freed once drained"
        );
    }
}

#[cfg(test)]
mod size_tests {
    /// A bounded, dropping or priority mailbox, or one with middleware, pays for `RareParts`:
    /// its queue stays boxed, so this is a 64-byte chunk and not the 640 bytes the
    /// cache-padded queue would pad it to inline.
    #[test]
    fn the_rare_parts_of_a_mailbox_stay_small() {
        let size = std::mem::size_of::<super::RareParts>();
        assert!(size <= 56, "RareParts grew to {size} bytes");
    }

    /// Every actor holds one mailbox: its two queues share one lock and pack their lengths
    /// into one word (96 bytes with a lock and a `usize` length each).
    #[test]
    fn a_mailbox_stays_small() {
        let size = std::mem::size_of::<super::Mailbox>();
        assert!(size <= 88, "Mailbox grew to {size} bytes");
    }
}
