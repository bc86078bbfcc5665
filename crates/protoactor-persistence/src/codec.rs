//! How events and snapshots become stored records: protobuf bytes plus the protobuf full
//! type name (`package.Message`), the same pair a Go or C# Proto.Actor system would read.

use std::any::TypeId;
use std::cell::RefCell;

use hashbrown::HashMap;
use parking_lot::Mutex;

use crate::error::DecodeError;

/// A stored event or snapshot: a protobuf full type name and the message's protobuf bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The protobuf full name, e.g. `counter.Added` (no `type.googleapis.com/` prefix).
    pub type_name: String,
    /// The protobuf encoding of the message.
    pub payload: Vec<u8>,
}

/// A record with its index in the actor's journal (events) or the event index it was taken
/// at (snapshots: the number of events it covers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The index.
    pub index: u64,
    /// The stored record.
    pub record: Record,
}

/// A message that can be stored as an event or snapshot.
///
/// Every prost message with a [`prost::Name`] implements it (stored under its full name).
/// An actor with several event types uses an enum made with [`persistent_enum!`](crate::persistent_enum).
pub trait PersistentMessage: Sized + Send + 'static {
    /// The protobuf full name of this value's type.
    fn type_name(&self) -> String;
    /// The protobuf encoding.
    fn encode_payload(&self) -> Vec<u8>;
    /// Decodes a stored record; [`DecodeError::UnknownType`] if `type_name` is not accepted.
    fn decode_payload(type_name: &str, payload: &[u8]) -> Result<Self, DecodeError>;

    /// The protobuf full name as a `&'static str` when it is fixed for the value's type
    /// (prost messages: built once per type, then kept), so that storing an event needs no
    /// name allocation; `None` (the default): the journal calls [`type_name`](Self::type_name).
    fn static_type_name(&self) -> Option<&'static str> {
        None
    }

    /// Appends the protobuf encoding to `buf`: a reused buffer spares an allocation per
    /// stored event. The default appends [`encode_payload`](Self::encode_payload)'s bytes.
    fn encode_payload_into(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&self.encode_payload());
    }

    /// The record for this value.
    fn to_record(&self) -> Record {
        Record {
            type_name: self.type_name(),
            payload: self.encode_payload(),
        }
    }
}

impl<T> PersistentMessage for T
where
    T: prost::Message + prost::Name + Default + 'static,
{
    fn type_name(&self) -> String {
        T::full_name()
    }
    fn encode_payload(&self) -> Vec<u8> {
        self.encode_to_vec()
    }
    fn static_type_name(&self) -> Option<&'static str> {
        Some(full_name_of::<T>())
    }
    fn encode_payload_into(&self, buf: &mut Vec<u8>) {
        // What `encode_to_vec` does, into the caller's buffer.
        buf.reserve(self.encoded_len());
        self.encode_raw(buf);
    }
    #[inline]
    fn decode_payload(type_name: &str, payload: &[u8]) -> Result<Self, DecodeError> {
        // Replay decodes every event: compare with `PACKAGE.NAME` in place (what prost's
        // `full_name` and prost-build's generated one return) before the full name; the
        // errors are built out of line, so that this path stays small enough to inline.
        if !is_package_dot_name::<T>(type_name) && !is_full_name::<T>(type_name) {
            return Err(unknown_type::<T>(type_name));
        }
        match T::decode(payload) {
            Ok(m) => Ok(m),
            Err(e) => Err(malformed(type_name, e)),
        }
    }
}

/// True if `type_name` is `T::full_name()` (a nested message's, which is not `PACKAGE.NAME`).
#[inline(never)]
fn is_full_name<T: prost::Name + 'static>(type_name: &str) -> bool {
    type_name == full_name_of::<T>()
}

#[cold]
#[inline(never)]
fn unknown_type<T: prost::Name>(type_name: &str) -> DecodeError {
    DecodeError::UnknownType {
        found: type_name.to_string(),
        expected: vec![T::full_name()],
    }
}

#[cold]
#[inline(never)]
fn malformed(type_name: &str, e: prost::DecodeError) -> DecodeError {
    DecodeError::Malformed {
        type_name: type_name.to_string(),
        reason: e.to_string(),
    }
}

/// `T::full_name()`, built once per type and kept for the process's life (one short string
/// per stored message type): building it allocates, and every stored event needs it. A
/// thread's own map answers without a lock; the shared one makes sure each name is built
/// (and kept) once, however many threads ask.
fn full_name_of<T: prost::Name + 'static>() -> &'static str {
    type Names = HashMap<TypeId, &'static str>;
    thread_local! {
        static LOCAL: RefCell<Names> = RefCell::new(Names::default());
    }
    static SHARED: Mutex<Option<Names>> = parking_lot::const_mutex(None);
    let id = TypeId::of::<T>();
    if let Some(name) = LOCAL.with(|l| l.borrow().get(&id).copied()) {
        return name;
    }
    let name = *SHARED
        .lock()
        .get_or_insert_with(Names::default)
        .entry(id)
        .or_insert_with(|| &*Box::leak(T::full_name().into_boxed_str()));
    LOCAL.with(|l| l.borrow_mut().insert(id, name));
    name
}

/// True if `type_name` is `T::PACKAGE` + `.` + `T::NAME` (or `T::NAME` alone without a
/// package), compared without allocating.
fn is_package_dot_name<T: prost::Name>(type_name: &str) -> bool {
    if T::PACKAGE.is_empty() {
        return type_name == T::NAME;
    }
    type_name
        .strip_prefix(T::PACKAGE)
        .and_then(|rest| rest.strip_prefix('.'))
        == Some(T::NAME)
}

/// Declares an enum of protobuf messages that is a [`PersistentMessage`]: each variant is
/// stored under its own message's full name, and decoding picks the variant by that name.
///
/// ```
/// use protoactor_persistence::persistent_enum;
///
/// #[derive(Clone, PartialEq, prost::Message)]
/// pub struct Deposited { #[prost(int64, tag = "1")] pub amount: i64 }
/// impl prost::Name for Deposited {
///     const NAME: &'static str = "Deposited";
///     const PACKAGE: &'static str = "bank";
/// }
/// #[derive(Clone, PartialEq, prost::Message)]
/// pub struct Withdrawn { #[prost(int64, tag = "1")] pub amount: i64 }
/// impl prost::Name for Withdrawn {
///     const NAME: &'static str = "Withdrawn";
///     const PACKAGE: &'static str = "bank";
/// }
///
/// persistent_enum! {
///     /// What happened to an account.
///     #[derive(Debug, Clone)]
///     pub enum AccountEvent { Deposited(Deposited), Withdrawn(Withdrawn) }
/// }
///
/// use protoactor_persistence::PersistentMessage;
/// let r = AccountEvent::Withdrawn(Withdrawn { amount: 5 }).to_record();
/// assert_eq!(r.type_name, "bank.Withdrawn");
/// assert!(matches!(AccountEvent::decode_payload(&r.type_name, &r.payload), Ok(AccountEvent::Withdrawn(w)) if w.amount == 5));
/// ```
#[macro_export]
macro_rules! persistent_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident { $($variant:ident($ty:ty)),+ $(,)? }
    ) => {
        $(#[$meta])*
        $vis enum $name { $(#[allow(missing_docs)] $variant($ty)),+ }

        impl $crate::PersistentMessage for $name {
            fn type_name(&self) -> ::std::string::String {
                match self { $(Self::$variant(m) => $crate::PersistentMessage::type_name(m)),+ }
            }
            fn encode_payload(&self) -> ::std::vec::Vec<u8> {
                match self { $(Self::$variant(m) => $crate::PersistentMessage::encode_payload(m)),+ }
            }
            fn static_type_name(&self) -> ::std::option::Option<&'static str> {
                match self { $(Self::$variant(m) => $crate::PersistentMessage::static_type_name(m)),+ }
            }
            fn encode_payload_into(&self, buf: &mut ::std::vec::Vec<u8>) {
                match self { $(Self::$variant(m) => $crate::PersistentMessage::encode_payload_into(m, buf)),+ }
            }
            fn decode_payload(
                type_name: &str,
                payload: &[u8],
            ) -> ::std::result::Result<Self, $crate::DecodeError> {
                let mut expected = ::std::vec::Vec::new();
                $(
                    match <$ty as $crate::PersistentMessage>::decode_payload(type_name, payload) {
                        Ok(m) => return Ok(Self::$variant(m)),
                        Err($crate::DecodeError::UnknownType { expected: e, .. }) => expected.extend(e),
                        Err(other) => return Err(other),
                    }
                )+
                Err($crate::DecodeError::UnknownType { found: type_name.to_string(), expected })
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, PartialEq, prost::Message)]
    struct Added {
        #[prost(int64, tag = "1")]
        amount: i64,
        #[prost(string, tag = "2")]
        note: String,
    }
    impl prost::Name for Added {
        const NAME: &'static str = "Added";
        const PACKAGE: &'static str = "counter.v1";
    }

    #[derive(Clone, PartialEq, prost::Message)]
    struct Cleared {}
    impl prost::Name for Cleared {
        const NAME: &'static str = "Cleared";
        const PACKAGE: &'static str = "counter.v1";
    }

    crate::persistent_enum! {
        #[derive(Debug)]
        enum Event { Added(Added), Cleared(Cleared) }
    }

    #[test]
    fn records_are_protobuf_bytes_under_the_full_name() {
        let r = Added {
            amount: 150,
            note: "hi".into(),
        }
        .to_record();
        assert_eq!(r.type_name, "counter.v1.Added");
        // Field 1 varint 150 (0x96 0x01), field 2 length-delimited "hi": what protoc emits.
        assert_eq!(r.payload, vec![0x08, 0x96, 0x01, 0x12, 0x02, b'h', b'i']);
    }

    #[test]
    fn enum_variants_decode_by_type_name() {
        let r = Event::Cleared(Cleared {}).to_record();
        assert_eq!(r.type_name, "counter.v1.Cleared");
        assert!(matches!(
            Event::decode_payload(&r.type_name, &r.payload),
            Ok(Event::Cleared(_))
        ));
        match Event::decode_payload("counter.v1.Other", &[]) {
            Err(DecodeError::UnknownType { found, expected }) => {
                assert_eq!(found, "counter.v1.Other");
                assert_eq!(expected, vec!["counter.v1.Added", "counter.v1.Cleared"]);
            }
            other => panic!("expected UnknownType, got {other:?}"),
        }
    }

    #[derive(Clone, PartialEq, prost::Message)]
    struct Bare {}
    impl prost::Name for Bare {
        const NAME: &'static str = "Bare";
        const PACKAGE: &'static str = "";
    }

    #[test]
    fn the_type_name_is_checked_without_building_it_and_exactly() {
        assert!(is_package_dot_name::<Added>("counter.v1.Added"));
        for wrong in [
            "counter.v1Added",
            "counter.v1.Adde",
            "counter.v1.Added2",
            "x.counter.v1.Added",
            "Added",
            "",
        ] {
            assert!(!is_package_dot_name::<Added>(wrong), "{wrong}");
            assert!(Added::decode_payload(wrong, &[]).is_err(), "{wrong}");
        }
        assert!(is_package_dot_name::<Bare>("Bare"));
        assert!(!is_package_dot_name::<Bare>(".Bare"));
        assert!(Bare::decode_payload("Bare", &[]).is_ok());
        assert!(Bare::decode_payload(".Bare", &[]).is_err());
    }

    /// A nested message: prost-build names it `package.Outer.Inner`, not `PACKAGE.NAME`.
    #[derive(Clone, PartialEq, prost::Message)]
    struct Inner {
        #[prost(int64, tag = "1")]
        amount: i64,
    }
    impl prost::Name for Inner {
        const NAME: &'static str = "Inner";
        const PACKAGE: &'static str = "counter.v1";
        fn full_name() -> String {
            "counter.v1.Outer.Inner".into()
        }
    }

    #[test]
    fn the_reused_buffers_hold_what_to_record_returns() {
        fn check<M: PersistentMessage + Sync>(m: M, name: &str) {
            let r = m.to_record();
            assert_eq!(r.type_name, name);
            assert_eq!(m.static_type_name(), Some(name));
            // From another thread too (each thread keeps its own map of names).
            assert_eq!(
                std::thread::scope(|s| s.spawn(|| m.static_type_name()).join().unwrap()),
                Some(name)
            );
            let mut buf = vec![0xff];
            m.encode_payload_into(&mut buf);
            assert_eq!(buf[0], 0xff, "appended, not overwritten");
            assert_eq!(buf[1..], r.payload[..]);
        }
        let added = || Added {
            amount: 150,
            note: "hi".into(),
        };
        check(added(), "counter.v1.Added");
        check(Inner { amount: -3 }, "counter.v1.Outer.Inner");
        check(Bare {}, "Bare");
        check(Event::Added(added()), "counter.v1.Added");
        check(Event::Cleared(Cleared {}), "counter.v1.Cleared");
    }

    #[test]
    fn malformed_bytes_are_an_error_not_a_panic() {
        // Field 1 announced as varint, then the bytes end mid-varint.
        let e = Event::decode_payload("counter.v1.Added", &[0x08, 0x96]).unwrap_err();
        assert!(
            matches!(e, DecodeError::Malformed { ref type_name, .. } if type_name == "counter.v1.Added")
        );
    }
}
