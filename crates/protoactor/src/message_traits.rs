//! Per-type message markers: which messages do not reset a receive timeout, and which
//! dead letters are not logged.

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use parking_lot::Mutex;

use crate::message::Message;

const NOT_INFLUENCE_RECEIVE_TIMEOUT: u8 = 1;
const IGNORE_DEAD_LETTER_LOGGING: u8 = 2;

/// Per-type message markers (protoactor-go expresses them as marker interfaces).
#[derive(Default)]
pub struct MessageTraits {
    flags: ArcSwap<HashMap<TypeId, u8>>,
    write: Mutex<()>,
}

impl std::fmt::Debug for MessageTraits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageTraits")
            .field("types", &self.flags.load().len())
            .finish()
    }
}

impl MessageTraits {
    fn set<T: Message>(&self, flag: u8) {
        let _g = self.write.lock();
        let mut m = HashMap::clone(&self.flags.load());
        *m.entry(TypeId::of::<T>()).or_default() |= flag;
        self.flags.store(Arc::new(m));
    }
    fn has(&self, msg: &dyn Message, flag: u8) -> bool {
        let flags = self.flags.load();
        !flags.is_empty()
            && flags
                .get(&msg.message_type_id())
                .is_some_and(|f| f & flag != 0)
    }
    /// Messages of type `T` do not reset the receive timeout.
    pub fn not_influence_receive_timeout<T: Message>(&self) {
        self.set::<T>(NOT_INFLUENCE_RECEIVE_TIMEOUT)
    }
    /// Dead letters of type `T` are not logged.
    pub fn ignore_dead_letter_logging<T: Message>(&self) {
        self.set::<T>(IGNORE_DEAD_LETTER_LOGGING)
    }
    /// True if `msg` resets the receive timeout.
    pub fn influences_receive_timeout(&self, msg: &dyn Message) -> bool {
        !self.has(msg, NOT_INFLUENCE_RECEIVE_TIMEOUT)
    }
    /// True if dead letters of `msg`'s type are not logged.
    pub fn ignores_dead_letter_logging(&self, msg: &dyn Message) -> bool {
        self.has(msg, IGNORE_DEAD_LETTER_LOGGING)
    }
}
