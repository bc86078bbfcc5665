//! The queues of a mailbox: a system queue that is always drained first and a user queue
//! (unbounded, bounded, bounded-dropping or priority).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crossbeam_queue::{ArrayQueue, SegQueue};
use parking_lot::Mutex;

use super::{MailboxConfig, MailboxMiddleware, PriorityFn, QueueKind};
use crate::message::MessageEnvelope;
use crate::process::SystemMessage;

impl MailboxConfig {
    pub(crate) fn create(&self) -> Mailbox {
        let user = match &self.kind {
            QueueKind::Unbounded => UserQueue::Unbounded(LockedQueue::new()),
            QueueKind::Bounded(n) => UserQueue::Bounded(Box::new(ArrayQueue::new(*n))),
            QueueKind::BoundedDropping(n) => UserQueue::Dropping(Box::new(ArrayQueue::new(*n))),
            QueueKind::Priority(f) => UserQueue::Priority(
                Box::new(std::array::from_fn(|_| SegQueue::new())),
                f.clone(),
            ),
        };
        Mailbox {
            system: LockedQueue::new(),
            user,
            middleware: MiddlewareList(
                (!self.middleware.is_empty()).then(|| Box::new(self.middleware.clone())),
            ),
        }
    }
}

/// The bounded queues are boxed: `ArrayQueue` is cache-padded (128-byte aligned, 384
/// bytes), and inline it would make every actor's process that big, bounded or not.
pub(crate) enum UserQueue {
    Unbounded(LockedQueue<MessageEnvelope>),
    Bounded(Box<ArrayQueue<MessageEnvelope>>),
    Dropping(Box<ArrayQueue<MessageEnvelope>>),
    Priority(Box<[SegQueue<MessageEnvelope>; 8]>, PriorityFn),
}

impl UserQueue {
    #[inline]
    pub(crate) fn pop(&self) -> Option<MessageEnvelope> {
        match self {
            UserQueue::Unbounded(q) => q.pop(USER_QUEUE_KEEP),
            UserQueue::Bounded(q) | UserQueue::Dropping(q) => q.pop(),
            UserQueue::Priority(qs, _) => qs.iter().rev().find_map(|q| q.pop()),
        }
    }
    pub(crate) fn is_empty(&self) -> bool {
        match self {
            UserQueue::Unbounded(q) => q.is_empty(),
            UserQueue::Bounded(q) | UserQueue::Dropping(q) => q.is_empty(),
            UserQueue::Priority(qs, _) => qs.iter().all(|q| q.is_empty()),
        }
    }
    pub(crate) fn len(&self) -> usize {
        match self {
            UserQueue::Unbounded(q) => q.len(),
            UserQueue::Bounded(q) | UserQueue::Dropping(q) => q.len(),
            UserQueue::Priority(qs, _) => qs.iter().map(|q| q.len()).sum(),
        }
    }
}

/// The user messages a runner takes in one turn. From an unbounded queue they are taken
/// in batches under one lock each; whatever is left when the turn ends (its throughput
/// is used up, a system message comes first, a panic unwinds) goes back to the front of
/// the queue, in order, so nothing is lost or reordered. Other queues pop one by one.
pub(crate) struct Taken<'a> {
    queue: &'a UserQueue,
    batch: std::collections::VecDeque<MessageEnvelope>,
}

impl UserQueue {
    /// Starts a turn's taking (see [`Taken`]).
    #[inline]
    pub(crate) fn taker(&self) -> Taken<'_> {
        Taken {
            queue: self,
            batch: std::collections::VecDeque::new(),
        }
    }
}

impl Taken<'_> {
    /// The next user message; when the batch is used up, takes up to `max` more at once.
    #[inline]
    pub(crate) fn pop(&mut self, max: usize) -> Option<MessageEnvelope> {
        if let Some(env) = self.batch.pop_front() {
            return Some(env);
        }
        match self.queue {
            UserQueue::Unbounded(q) => q.pop_many(&mut self.batch, max, USER_QUEUE_KEEP),
            other => other.pop(),
        }
    }

    /// Gives the messages taken but not handled back to the queue (before a system message
    /// is handled, so a stop sends them to dead letters in order).
    #[inline]
    pub(crate) fn put_back(&mut self) {
        if !self.batch.is_empty() {
            if let UserQueue::Unbounded(q) = self.queue {
                q.push_front_all(&mut self.batch);
            }
        }
    }
}

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        self.put_back();
    }
}

/// A locked deque with an atomic length, used for the system queue and for unbounded user
/// queues. It keeps idle actors small: a `SegQueue` holds 256 bytes inline plus a 31-slot
/// block (1.2 KiB of envelopes, 2.5 KiB of system messages) for the rest of the actor's
/// life once one message was pushed, while this holds one message inline and a buffer
/// (boxed: one word inline) that is allocated only when two or more wait, and freed when
/// drained past `keep`. The inline slot makes
/// the common case (one message for an idle actor: `Started`, a request, a `Terminated`)
/// allocation-free. The length keeps the runner's per-message "anything there?" check a
/// single atomic load.
pub(crate) struct LockedQueue<T> {
    queue: Mutex<Slots<T>>,
    len: std::sync::atomic::AtomicUsize,
}

/// FIFO: `head` is older than everything in `rest`, since a push fills `head` only when
/// both are empty.
struct Slots<T> {
    head: Option<T>,
    // One word instead of a `VecDeque`'s four, in every idle mailbox.
    #[allow(clippy::box_collection)]
    rest: Option<Box<std::collections::VecDeque<T>>>,
}

impl<T> LockedQueue<T> {
    fn new() -> Self {
        Self {
            queue: Mutex::new(Slots {
                head: None,
                rest: None,
            }),
            len: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    #[inline]
    pub(crate) fn push(&self, msg: T) {
        let mut q = self.queue.lock();
        if q.head.is_none() && q.rest.as_ref().is_none_or(|r| r.is_empty()) {
            q.head = Some(msg);
        } else {
            q.rest.get_or_insert_with(Default::default).push_back(msg);
        }
        // Counted before the sender's schedule request, whose SeqCst fence pairs with
        // the runner's `set_idle` fence (see `sched`). Every change of `len` is made under
        // the lock, so a plain store does (no second locked instruction per message).
        self.len
            .store(self.len.load(Ordering::Relaxed) + 1, Ordering::Release);
    }

    /// Pushes `msgs` in order under one lock, the buffer grown once for all of them (a
    /// batch the mailbox unrolls: one lock and at most one allocation, instead of a lock per
    /// message and a buffer doubling its way up for every batch).
    pub(crate) fn push_all(&self, msgs: impl ExactSizeIterator<Item = T>) {
        let n = msgs.len();
        if n == 0 {
            return;
        }
        let mut msgs = msgs;
        let mut guard = self.queue.lock();
        let q = &mut *guard;
        if q.head.is_none() && q.rest.as_ref().is_none_or(|r| r.is_empty()) {
            q.head = msgs.next();
        }
        if msgs.len() > 0 {
            let rest = q.rest.get_or_insert_with(Default::default);
            rest.reserve(msgs.len());
            rest.extend(msgs);
        }
        // As in `push`: counted under the lock, before the sender's schedule request.
        self.len
            .store(self.len.load(Ordering::Relaxed) + n, Ordering::Release);
    }

    /// Pops the oldest message; once drained, frees a buffer larger than `keep` slots.
    #[inline]
    pub(crate) fn pop(&self, keep: usize) -> Option<T> {
        if self.len.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut q = self.queue.lock();
        let msg = q
            .head
            .take()
            .or_else(|| q.rest.as_mut().and_then(|r| r.pop_front()));
        if msg.is_some() {
            self.len
                .store(self.len.load(Ordering::Relaxed) - 1, Ordering::Release);
        }
        if q.rest
            .as_ref()
            .is_some_and(|r| r.is_empty() && r.capacity() > keep)
        {
            q.rest = None;
        }
        msg
    }

    /// Pops the oldest message and moves up to `max - 1` more to the back of `out`, under
    /// one lock (the runner's batch: one lock per turn instead of one per message, so the
    /// senders' pushes rarely wait for the runner). A lone message is returned without
    /// touching `out`, so a turn for one message allocates nothing. Once drained, frees a
    /// buffer above `keep` slots.
    fn pop_many(
        &self,
        out: &mut std::collections::VecDeque<T>,
        max: usize,
        keep: usize,
    ) -> Option<T> {
        if max == 0 || self.len.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut guard = self.queue.lock();
        let q = &mut *guard;
        let first = match q.head.take() {
            Some(m) => m,
            None => q.rest.as_mut()?.pop_front()?,
        };
        let mut n = 0;
        let mut free = false;
        if let Some(rest) = q.rest.as_mut() {
            n = rest.len().min(max - 1);
            if n == rest.len() && out.is_empty() {
                // All of it (the common case when one sender outpaces the runner): the
                // runner takes the whole buffer and leaves its own empty one, instead of
                // moving the messages one by one into a buffer it grows for them.
                std::mem::swap(out, &mut **rest);
            } else {
                out.extend(rest.drain(..n));
            }
            free = rest.is_empty() && rest.capacity() > keep;
        }
        if free {
            q.rest = None;
        }
        self.len.store(
            self.len.load(Ordering::Relaxed) - (n + 1),
            Ordering::Release,
        );
        Some(first)
    }

    /// Puts `msgs` back in front of everything queued, in their order (the runner's batch
    /// left over when its turn ends early).
    fn push_front_all(&self, msgs: &mut std::collections::VecDeque<T>) {
        let n = msgs.len();
        let mut guard = self.queue.lock();
        let q = &mut *guard;
        let rest = q.rest.get_or_insert_with(Default::default);
        if let Some(m) = q.head.take() {
            rest.push_front(m);
        }
        while let Some(m) = msgs.pop_back() {
            rest.push_front(m);
        }
        self.len
            .store(self.len.load(Ordering::Relaxed) + n, Ordering::Release);
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.len.load(Ordering::SeqCst) == 0
    }

    fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }
}

/// Buffer slots an idle unbounded mailbox may keep (bigger ones are freed when drained).
const USER_QUEUE_KEEP: usize = 16;

/// An actor's queues and mailbox middleware.
pub(crate) struct Mailbox {
    pub(crate) system: LockedQueue<SystemMessage>,
    pub(crate) user: UserQueue,
    pub(crate) middleware: MiddlewareList,
}

/// A mailbox's middleware: one word (a boxed slice would be two; most mailboxes have none).
#[allow(clippy::box_collection)]
pub(crate) struct MiddlewareList(Option<Box<Vec<Arc<dyn MailboxMiddleware>>>>);

impl MiddlewareList {
    #[inline]
    pub(crate) fn iter(&self) -> std::slice::Iter<'_, Arc<dyn MailboxMiddleware>> {
        self.0.as_deref().map_or(&[][..], Vec::as_slice).iter()
    }
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_none()
    }
}

#[cfg(test)]
mod locked_queue_tests {
    use super::LockedQueue;

    /// Order holds across the inline slot and the buffer, in every interleaving of pushes
    /// and pops, and a drained buffer above `keep` is freed.
    #[test]
    fn fifo_across_the_inline_slot_and_the_buffer() {
        let q = LockedQueue::new();
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
        assert!(q.queue.lock().rest.is_none(), "drained buffer freed");
    }

    /// A batch takes the whole buffer (swapped, not copied) or a part of it, in order; what
    /// is put back goes in front of what was pushed meanwhile, and pushes after a whole
    /// buffer was taken start a fresh one.
    #[test]
    fn batches_keep_the_order_whether_they_take_all_or_part() {
        let q = LockedQueue::new();
        let mut out = std::collections::VecDeque::new();
        for i in 0..10u32 {
            q.push(i);
        }
        // Part: 0, then 1..=3 in the batch.
        assert_eq!(q.pop_many(&mut out, 4, 2), Some(0));
        assert_eq!(out.iter().copied().collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(q.len(), 6);
        // Put back in front of 10, pushed meanwhile.
        q.push(10);
        q.push_front_all(&mut out);
        assert!(out.is_empty());
        assert_eq!(q.len(), 10);
        // All of it: the batch gets 2..=10 behind the returned 1.
        assert_eq!(q.pop_many(&mut out, 100, 2), Some(1));
        assert_eq!(
            out.iter().copied().collect::<Vec<_>>(),
            (2..=10).collect::<Vec<_>>()
        );
        assert_eq!(q.len(), 0);
        q.push(11);
        q.push(12);
        assert_eq!(q.pop(2), Some(11));
        assert_eq!(q.pop(2), Some(12));
        assert_eq!(q.pop(2), None);
    }

    /// A pushed batch lands behind what is queued and in its own order, whether the queue
    /// was empty (its first message in the inline slot), held one message or a buffer; its
    /// buffer is allocated once, at the batch's size.
    #[test]
    fn a_batch_is_pushed_in_order_behind_what_is_queued() {
        let q = LockedQueue::new();
        q.push_all(std::iter::empty::<u32>());
        assert!(q.is_empty());
        assert!(
            q.queue.lock().rest.is_none(),
            "an empty batch allocates nothing"
        );
        q.push_all([0u32].into_iter());
        assert!(
            q.queue.lock().rest.is_none(),
            "one message goes to the inline slot"
        );
        q.push_all(1..1000);
        assert!(q.queue.lock().rest.as_ref().unwrap().capacity() < 1100);
        q.push(1000);
        assert_eq!(q.pop(2), Some(0));
        q.push_all(1001..1003);
        assert_eq!(q.len(), 1002);
        let mut got = Vec::new();
        while let Some(v) = q.pop(2) {
            got.push(v);
        }
        assert_eq!(got, (1..1003).collect::<Vec<_>>());
        q.push_all(5..7);
        assert_eq!((q.pop(2), q.pop(2), q.pop(2)), (Some(5), Some(6), None));
    }
}
