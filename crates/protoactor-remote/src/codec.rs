//! Building and reading `MessageBatch`es: the per-batch type-name, target and sender tables,
//! the two wire forms of `targets`, request ids and headers.
//!
//! # Reading `targets`
//!
//! The current protocol writes each target as a plain actor id string, the 2024 protocol as
//! an encoded `actor.PID`. Both are length-delimited field-2 entries, so each entry is
//! classified on its own by [`parse_target`]: it is taken as a PID only when its bytes are,
//! from first to last, a well-formed `actor.PID` made of nothing but fields 1 and 2
//! (length-delimited, valid UTF-8) and 3 (varint), with a non-empty id. Anything else is an
//! id string. An id would have to start with the control byte `0x0A` or `0x12` and continue
//! as a valid PID encoding to be misread, which no generated or user-chosen id does.
//!
//! Over 700 lines: about 600 of code (the writer and the reader share the batch tables and
//! both wire variants), the rest its unit tests beside it.

use rustc_hash::FxHashMap as HashMap;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use prost::Message as _;
use protoactor::pid::PidById;
use protoactor::{BoxedMessage, MessageHeader, Pid};

use crate::actor_proto;
use crate::pid::{wire_pid, WireContext};
use crate::remote_proto::{MessageBatch, MessageEnvelope};
use crate::serializer::{Serialization, SerializationError, SerializerId, UndecodableMessage};

/// How this node writes `MessageBatch.targets` (the reader accepts both forms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WireVariant {
    /// The current protocol (protoactor-go after August 2025, protoactor-dotnet): targets are
    /// actor id strings, the receiver adds its own address.
    #[default]
    Current,
    /// protoactor-go's 2024 protocol (what `go get protoactor-go@latest` resolves to):
    /// targets are `actor.PID` messages.
    Legacy2024,
}

/// The longest type name accepted in a batch's `type_names`; envelopes that refer to a longer
/// one fail (dead letter and [`RemoteDeliveryError`](crate::RemoteDeliveryError)) without
/// it being copied.
pub const MAX_TYPE_NAME_LEN: usize = 1024;

/// A message on its way to another node.
#[derive(Debug)]
pub struct Outbound {
    /// Where it goes.
    pub target: Pid,
    /// The message.
    pub message: BoxedMessage,
    /// Who sent it, if a reply is expected.
    pub sender: Option<Pid>,
    /// Optional headers.
    pub header: Option<Arc<MessageHeader>>,
}

/// A sender table key: the sender's address and id (its request id travels per envelope).
struct SenderKey(Pid);

impl std::hash::Hash for SenderKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.address().hash(state);
        self.0.id().hash(state);
    }
}
impl PartialEq for SenderKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.id() == other.0.id() && self.0.address() == other.0.address()
    }
}
impl Eq for SenderKey {}

/// Accumulates messages into one `MessageBatch`, de-duplicating the tables.
pub struct BatchBuilder {
    variant: WireVariant,
    type_names: Vec<String>,
    type_index: HashMap<Arc<str>, i32>,
    targets: Vec<Bytes>,
    /// By the target's id alone: its request id travels per envelope.
    target_index: HashMap<PidById, i32>,
    senders: Vec<actor_proto::Pid>,
    sender_index: HashMap<SenderKey, i32>,
    envelopes: Vec<MessageEnvelope>,
    /// The last batch's envelope, target and sender counts: the next batch's tables start
    /// at those capacities instead of growing to them one doubling (and one reallocation)
    /// at a time.
    last_lens: [usize; 3],
    buf: BytesMut,
    size: usize,
    max_payload: usize,
}

impl std::fmt::Debug for BatchBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchBuilder")
            .field("variant", &self.variant)
            .field("envelopes", &self.envelopes.len())
            .field("approx_size", &self.size)
            .field("max_payload", &self.max_payload)
            .finish_non_exhaustive()
    }
}

impl BatchBuilder {
    /// An empty builder writing targets in `variant` form.
    pub fn new(variant: WireVariant) -> Self {
        BatchBuilder {
            variant,
            type_names: Vec::new(),
            type_index: HashMap::default(),
            targets: Vec::new(),
            target_index: HashMap::default(),
            senders: Vec::new(),
            sender_index: HashMap::default(),
            envelopes: Vec::new(),
            last_lens: [0; 3],
            buf: BytesMut::with_capacity(64 * 1024),
            size: 0,
            max_payload: usize::MAX,
        }
    }

    /// Refuses messages whose payload exceeds `bytes` (the peer would refuse the batch).
    pub fn with_max_payload(mut self, bytes: usize) -> Self {
        self.max_payload = bytes;
        self
    }

    /// How many envelopes are in the batch.
    pub fn len(&self) -> usize {
        self.envelopes.len()
    }

    /// True when there is nothing to send.
    pub fn is_empty(&self) -> bool {
        self.envelopes.is_empty()
    }

    /// An estimate of the encoded size so far (payloads plus tables), in bytes.
    pub fn approx_size(&self) -> usize {
        self.size
    }

    /// Serializes `m` into the batch; on error nothing is added.
    pub fn push(
        &mut self,
        ser: &Serialization,
        ctx: &WireContext<'_>,
        m: &Outbound,
    ) -> Result<(), SerializationError> {
        let enc = ser.encode(&*m.message, ctx, &mut self.buf)?;
        let data = self.buf.split().freeze();
        if data.len() > self.max_payload {
            return Err(SerializationError::Encode {
                type_name: enc.type_name.to_string(),
                reason: format!(
                    "{} bytes exceed the message size limit of {}",
                    data.len(),
                    self.max_payload
                ),
            });
        }
        self.size += data.len() + 16;
        if self.envelopes.capacity() == 0 {
            let [envelopes, targets, senders] = self.last_lens;
            self.envelopes.reserve(envelopes);
            self.targets.reserve(targets);
            self.senders.reserve(senders);
        }
        let type_id = match self.type_index.get(&enc.type_name) {
            Some(&i) => i,
            None => {
                let i = self.type_names.len() as i32;
                self.size += enc.type_name.len() + 2;
                self.type_names.push(enc.type_name.to_string());
                self.type_index.insert(enc.type_name, i);
                i
            }
        };
        // A reply's target is a future, seen once: no table entry to look up or index.
        let one_shot = is_one_shot(m.target.id());
        let indexed = if one_shot {
            None
        } else {
            self.target_index.get(m.target.id()).copied()
        };
        let target = match indexed {
            Some(i) => i,
            None => {
                let i = self.targets.len() as i32;
                // Written into the builder's buffer, as the payloads are: a slice of a shared
                // block, so neither this entry nor the encoder's copy of it allocates (a
                // `Bytes` of its own was an allocation here and another when the encoder
                // cloned it, once per request and once per reply).
                match self.variant {
                    WireVariant::Current => self.buf.extend_from_slice(m.target.id().as_bytes()),
                    WireVariant::Legacy2024 => {
                        write_target_pid(m.target.address(), m.target.id(), &mut self.buf)
                    }
                }
                let raw = self.buf.split().freeze();
                self.size += raw.len() + 2;
                self.targets.push(raw);
                if !one_shot {
                    self.target_index.insert(PidById(m.target.clone()), i);
                }
                i
            }
        };
        let (sender, sender_request_id) = match &m.sender {
            None => (0, 0),
            Some(s) => {
                // A request's sender is its future, seen once: no key to build nor index.
                let one_shot = is_one_shot(s.id());
                let indexed = if one_shot {
                    None
                } else {
                    self.sender_index.get(&SenderKey(s.clone())).copied()
                };
                let i = match indexed {
                    Some(i) => i,
                    None => {
                        // The request id travels per envelope.
                        let p = wire_pid(ctx.address(s), s.id(), 0);
                        self.size += p.address.len() + p.id.len() + 6;
                        self.senders.push(p);
                        // Senders are 1-based: 0 means none.
                        let i = self.senders.len() as i32;
                        if !one_shot {
                            self.sender_index.insert(SenderKey(s.clone()), i);
                        }
                        i
                    }
                };
                (i, s.request_id())
            }
        };
        let message_header = m.header.as_ref().filter(|h| !h.is_empty()).map(|h| {
            self.size += h.iter().map(|(k, v)| k.len() + v.len() + 6).sum::<usize>();
            crate::remote_proto::MessageHeader {
                header_data: h.to_map(),
            }
        });
        self.envelopes.push(MessageEnvelope {
            type_id,
            message_data: data,
            target,
            sender,
            serializer_id: enc.serializer_id,
            message_header,
            target_request_id: m.target.request_id(),
            sender_request_id,
        });
        Ok(())
    }

    /// Takes the batch out, leaving the builder empty for the next one.
    pub fn finish(&mut self) -> MessageBatch {
        self.type_index.clear();
        self.target_index.clear();
        self.sender_index.clear();
        self.size = 0;
        self.last_lens = [self.envelopes.len(), self.targets.len(), self.senders.len()];
        MessageBatch {
            type_names: std::mem::take(&mut self.type_names),
            targets: std::mem::take(&mut self.targets),
            envelopes: std::mem::take(&mut self.envelopes),
            senders: std::mem::take(&mut self.senders),
        }
    }
}

/// Rewrites the `targets` table of `batch` in `variant`'s form (ids for `Current`, PIDs at
/// `peer_address` for `Legacy2024`), to resend a batch a peer of the other variant refused.
/// Entries that are neither are left as they are.
pub fn convert_targets(batch: &mut MessageBatch, variant: WireVariant, peer_address: &str) {
    for raw in &mut batch.targets {
        let Some(entry) = parse_target(raw) else {
            continue;
        };
        *raw = match variant {
            WireVariant::Current => Bytes::copy_from_slice(entry.id().as_bytes()),
            WireVariant::Legacy2024 => encode_target_pid(peer_address, entry.id()),
        };
    }
}

/// The type the wire-variant probe carries: `actor.Touch` is known to every protoactor node
/// (protoactor-go 2024 and current, protoactor-dotnet, this crate) and is a user message.
pub const PROBE_TYPE_NAME: &str = "actor.Touch";

/// The batch a node sends first on a new connection to learn which wire variant the peer
/// reads. Its one target entry is the encoded `actor.PID{local_address, probe_id}`, which
/// decodes in both variants, to different targets:
/// - a 2024 reader (`repeated actor.PID targets`) takes it as that PID, whose address is this
///   node's, so it forwards the `Touch` back here, to the probe;
/// - a current reader (`repeated string targets`) takes the bytes as an actor id on its own
///   node, finds no such actor and answers the sender (the probe) with `DeadLetterResponse`.
///
/// `None` when those bytes would not be valid UTF-8 (an address or id of 128 bytes or more
/// makes a length prefix a multi-byte varint), as a current reader would then refuse it.
pub fn variant_probe(local_address: &str, probe_id: &str) -> Option<MessageBatch> {
    let pid = wire_pid(local_address, probe_id, 0);
    let raw = pid.encode_to_vec();
    std::str::from_utf8(&raw).ok()?;
    Some(MessageBatch {
        type_names: vec![PROBE_TYPE_NAME.to_string()],
        targets: vec![Bytes::from(raw)],
        envelopes: vec![MessageEnvelope {
            type_id: 0,
            target: 0,
            sender: 1,
            ..Default::default()
        }],
        senders: vec![pid],
    })
}

/// True if `batch` has the shape of a [`variant_probe`] (or of the `Touch` a 2024 peer
/// forwards back from one): one `actor.Touch` whose target entry is the encoded sender.
/// Such a batch says nothing about the variant its writer reads.
pub fn is_variant_probe(batch: &MessageBatch) -> bool {
    match (&batch.envelopes[..], &batch.targets[..], &batch.senders[..]) {
        ([e], [raw], [sender]) => {
            e.target == 0
                && e.sender == 1
                && batch.type_names.first().map(String::as_str) == Some(PROBE_TYPE_NAME)
                && parse_target(raw) == Some(TargetEntry::Pid(sender.clone()))
        }
        _ => false,
    }
}

/// The wire variant a received batch was written in, from its first target entry (`None`
/// without targets).
pub fn batch_variant(batch: &MessageBatch) -> Option<WireVariant> {
    batch.targets.first().and_then(|raw| target_variant(raw))
}

/// The form of one `targets` entry as [`parse_target`] classifies it, without decoding it
/// into strings (asked of every received batch: that decode was two allocations each).
fn target_variant(raw: &[u8]) -> Option<WireVariant> {
    /// A PID's fields, all skipped: decoding it checks what decoding an `actor.PID` checks
    /// beyond [`pid_id`] (varint overflow), keeping nothing.
    #[derive(Clone, PartialEq, prost::Message)]
    struct PidShape {}
    if pid_id(raw).is_some_and(|id| !id.is_empty()) && PidShape::decode(raw).is_ok() {
        return Some(WireVariant::Legacy2024);
    }
    std::str::from_utf8(raw).ok().map(|_| WireVariant::Current)
}

/// One `targets` entry, classified (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetEntry {
    /// A plain actor id (current protocol).
    Id(String),
    /// An `actor.PID` (2024 protocol).
    Pid(actor_proto::Pid),
}

impl TargetEntry {
    /// The actor id on the receiving node.
    pub fn id(&self) -> &str {
        match self {
            TargetEntry::Id(s) => s,
            TargetEntry::Pid(p) => &p.id,
        }
    }
}

/// Classifies one `targets` entry; `None` if it is neither a PID nor valid UTF-8.
pub fn parse_target(raw: &[u8]) -> Option<TargetEntry> {
    if pid_id(raw).is_some_and(|id| !id.is_empty()) {
        if let Ok(p) = actor_proto::Pid::decode(raw) {
            return Some(TargetEntry::Pid(p));
        }
    }
    std::str::from_utf8(raw)
        .ok()
        .map(|s| TargetEntry::Id(s.to_string()))
}

/// The actor id of one `targets` entry, classified as [`parse_target`] does, borrowed from
/// the entry (the reader's form: nothing decoded into strings of its own).
fn target_id(raw: &[u8]) -> Option<&str> {
    match pid_id(raw) {
        Some(id) if !id.is_empty() => Some(id),
        _ => std::str::from_utf8(raw).ok(),
    }
}

/// The encoded `actor.PID{address, id}` (request id 0) of a `targets` entry in the 2024
/// form: what `wire_pid(address, id, 0).encode_to_vec()` gives, without the two strings.
fn encode_target_pid(address: &str, id: &str) -> Bytes {
    let mut b = BytesMut::with_capacity(address.len() + id.len() + 6);
    write_target_pid(address, id, &mut b);
    b.freeze()
}

/// Appends [`encode_target_pid`]'s bytes to `b`.
fn write_target_pid(address: &str, id: &str, b: &mut BytesMut) {
    // proto3 leaves empty strings out.
    for (key, field) in [(0x0a, address), (0x12, id)] {
        if !field.is_empty() {
            b.extend_from_slice(&[key]);
            prost::encoding::encode_varint(field.len() as u64, b);
            b.extend_from_slice(field.as_bytes());
        }
    }
}

/// If `raw` is entirely fields 1 and 2 (length-delimited UTF-8) and 3 (varint), its id (the
/// last field 2, as a protobuf decoder takes it; `""` if none).
fn pid_id(raw: &[u8]) -> Option<&str> {
    let mut i = 0;
    if raw.is_empty() {
        return None;
    }
    let mut id = "";
    while i < raw.len() {
        let (tag, n) = varint(&raw[i..])?;
        i += n;
        match tag {
            // Field 1 or 2, wire type 2.
            0x0a | 0x12 => {
                let (len, n) = varint(&raw[i..])?;
                i += n;
                let end = i.checked_add(len as usize).filter(|&e| e <= raw.len())?;
                let s = std::str::from_utf8(&raw[i..end]).ok()?;
                if tag == 0x12 {
                    id = s;
                }
                i = end;
            }
            // Field 3, wire type 0.
            0x18 => {
                let (_, n) = varint(&raw[i..])?;
                i += n;
            }
            _ => return None,
        }
    }
    Some(id)
}

/// A protobuf varint at the start of `b`: its value and length (`None` if cut short or
/// longer than 10 bytes). Shared with the frame budget's field walk.
pub(crate) fn varint(b: &[u8]) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    for (i, byte) in b.iter().enumerate().take(10) {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// Why one envelope of a batch could not be delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// `type_id` is outside the batch's type-name table.
    #[error("type index {0} is outside the type-name table")]
    BadTypeIndex(i32),
    /// `target` is outside the batch's target table.
    #[error("target index {0} is outside the target table")]
    BadTargetIndex(i32),
    /// The target entry is neither an id nor a PID.
    #[error("target entry {0} is neither an id string nor an actor.PID")]
    BadTargetEntry(i32),
    /// `sender` is outside the batch's sender table.
    #[error("sender index {0} is outside the sender table")]
    BadSenderIndex(i32),
    /// The type name is longer than [`MAX_TYPE_NAME_LEN`].
    #[error("the type name is {0} bytes long, over the limit of {max}", max = MAX_TYPE_NAME_LEN)]
    TypeNameTooLong(usize),
    /// No decoder is registered for the type name (given apart) and this serializer.
    #[error("no message type is registered under this type name for serializer {serializer_id}")]
    UnknownType {
        /// The serializer id that came in.
        serializer_id: SerializerId,
    },
    /// The payload does not decode as the named type.
    #[error("the payload does not decode: {0}")]
    Payload(String),
    /// The payload could not be decoded.
    #[error(transparent)]
    Serialization(#[from] SerializationError),
}

/// One envelope of an incoming batch, resolved against the tables.
#[derive(Debug)]
pub struct Incoming {
    /// The local target (this node's address).
    pub target: Pid,
    /// The sender, if any.
    pub sender: Option<Pid>,
    /// Headers, if any.
    pub header: Option<Arc<MessageHeader>>,
    /// The proto full name (shared by the batch's envelopes of that type; a name over
    /// [`MAX_TYPE_NAME_LEN`] is cut short).
    pub type_name: Arc<str>,
    /// The decoded message, or why it could not be decoded (with the raw message).
    pub message: Result<BoxedMessage, (EnvelopeError, UndecodableMessage)>,
}

/// Reads batches of one inbound stream, caching PIDs across batches so that local targets
/// and remote senders resolve their processes once.
pub struct BatchReader {
    local_address: Arc<str>,
    targets: HashMap<String, Pid>,
    /// By address (its shared string, and the PIDs there by id): a hit is looked up by
    /// `&str`, with no key allocated, and an uncached sender at a known address (a request's
    /// future) shares the address instead of copying it.
    senders: HashMap<String, (Arc<str>, HashMap<String, Pid>)>,
    cached_senders: usize,
    /// The last batch's type names: a stream sends the same few types batch after batch, so
    /// a name equal to the one at its index last time shares its string instead of
    /// allocating one (bounded: one batch's names).
    names: Vec<(Arc<str>, Option<usize>)>,
    /// Per-batch tables, kept empty between batches so that their memory is reused.
    scratch: Scratch,
}

/// The per-batch tables of [`BatchReader::read`], allocated once per stream.
#[derive(Default)]
struct Scratch {
    targets: Vec<Option<Pid>>,
    senders: Vec<Pid>,
    decoders: Vec<[Option<crate::serializer::Decoder>; 2]>,
}

const PID_CACHE_LIMIT: usize = 10_000;

/// The most entries of each per-batch table a reader keeps between batches.
const SCRATCH_KEEP: usize = 1024;

/// True for the id of a future (`future$<n>`, in protoactor-go too): a request's reply-to
/// PID, seen once as a sender and once as a reply's target, so not worth a cache entry
/// (every request then cost a key, an insert, and a share of the clearing at the limit).
fn is_one_shot(id: &str) -> bool {
    id.starts_with("future$")
}

impl std::fmt::Debug for BatchReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchReader")
            .field("local_address", &self.local_address)
            .field("cached_targets", &self.targets.len())
            .field("cached_senders", &self.cached_senders)
            .finish()
    }
}

impl BatchReader {
    /// A reader for a node at `local_address`.
    pub fn new(local_address: Arc<str>) -> Self {
        BatchReader {
            local_address,
            targets: HashMap::default(),
            senders: HashMap::default(),
            cached_senders: 0,
            names: Vec::new(),
            scratch: Scratch::default(),
        }
    }

    /// Resolves every envelope of `batch`; one bad envelope does not affect the others.
    /// A bad target index gives an error with a target PID of id `""`.
    pub fn read(&mut self, batch: MessageBatch, ser: &Serialization) -> Vec<Incoming> {
        if self.targets.len() > PID_CACHE_LIMIT {
            self.targets.clear();
        }
        if self.cached_senders > PID_CACHE_LIMIT {
            self.senders.clear();
            self.cached_senders = 0;
        }
        let Scratch {
            mut targets,
            mut senders,
            mut decoders,
        } = std::mem::take(&mut self.scratch);
        targets.extend(batch.targets.iter().map(|raw| {
            target_id(raw).map(|id| {
                if is_one_shot(id) {
                    return Pid::new(self.local_address.clone(), id);
                }
                match self.targets.get(id) {
                    Some(p) => p.clone(),
                    None => {
                        let p = Pid::new(self.local_address.clone(), id);
                        self.targets.insert(id.to_string(), p.clone());
                        p
                    }
                }
            })
        }));
        senders.extend(batch.senders.iter().map(|s| {
            let at = match self.senders.get_mut(s.address.as_str()) {
                Some(at) => at,
                None => {
                    // An address counts as an entry too, so that the cache stays bounded.
                    self.cached_senders += 1;
                    self.senders
                        .entry(s.address.clone())
                        .or_insert_with(|| (Arc::from(s.address.as_str()), HashMap::default()))
                }
            };
            let (address, ids) = at;
            if let Some(p) = ids.get(s.id.as_str()) {
                return p.clone();
            }
            let p = Pid::new(address.clone(), s.id.as_str());
            if !is_one_shot(&s.id) {
                ids.insert(s.id.clone(), p.clone());
                self.cached_senders += 1;
            }
            p
        }));
        // Each name once per batch, shared by its envelopes (never copied per envelope); a
        // name over the cap is kept only as a short prefix.
        let names = &mut self.names;
        names.truncate(batch.type_names.len());
        for (i, n) in batch.type_names.iter().enumerate() {
            let same = names
                .get(i)
                .is_some_and(|(kept, over)| over.is_none() && **kept == **n);
            if same {
                continue;
            }
            let name = if n.len() > MAX_TYPE_NAME_LEN {
                let mut cut = 64;
                while !n.is_char_boundary(cut) {
                    cut -= 1;
                }
                (Arc::from(format!("{}…", &n[..cut])), Some(n.len()))
            } else {
                (Arc::from(n.as_str()), None)
            };
            match names.get_mut(i) {
                Some(slot) => *slot = name,
                None => names.push(name),
            }
        }
        let names = &*names;
        // One registry lookup per type and serializer in the batch, not per envelope.
        decoders.resize(batch.type_names.len(), [None, None]);
        let mut out = Vec::with_capacity(batch.envelopes.len());
        for env in batch.envelopes {
            let type_index = usize::try_from(env.type_id)
                .ok()
                .filter(|&i| i < names.len());
            // Only a bad index needs a string of its own.
            let type_name = type_index.map_or_else(|| Arc::from(""), |i| names[i].0.clone());
            let type_name = &type_name;
            let undecodable = |e: EnvelopeError| {
                let u = UndecodableMessage {
                    type_name: type_name.clone(),
                    serializer_id: env.serializer_id,
                    data: env.message_data.clone(),
                    error: Arc::from(e.to_string()),
                };
                (e, u)
            };
            let target = match usize::try_from(env.target)
                .ok()
                .and_then(|i| targets.get(i))
            {
                Some(Some(t)) => Ok(t.clone()),
                Some(None) => Err(EnvelopeError::BadTargetEntry(env.target)),
                None => Err(EnvelopeError::BadTargetIndex(env.target)),
            };
            let sender = match env.sender {
                0 => Ok(None),
                i => i
                    .checked_sub(1)
                    .and_then(|i| usize::try_from(i).ok())
                    .and_then(|i| senders.get(i))
                    .map(|s| {
                        Some(if env.sender_request_id != 0 {
                            s.with_request_id(env.sender_request_id)
                        } else {
                            s.clone()
                        })
                    })
                    .ok_or(EnvelopeError::BadSenderIndex(i)),
            };
            let header = env
                .message_header
                .as_ref()
                .filter(|h| !h.header_data.is_empty())
                .map(|h| Arc::new(MessageHeader::from(h.header_data.clone())));
            let (target, message) = match target {
                Err(e) => (
                    Pid::new(self.local_address.clone(), ""),
                    Err(undecodable(e)),
                ),
                Ok(t) => {
                    let t = if env.target_request_id != 0 {
                        t.with_request_id(env.target_request_id)
                    } else {
                        t
                    };
                    let m = match (&sender, type_index) {
                        (Err(e), _) => Err(undecodable(e.clone())),
                        (_, None) => Err(undecodable(EnvelopeError::BadTypeIndex(env.type_id))),
                        (Ok(_), Some(t)) => match names[t].1 {
                            Some(len) => Err(undecodable(EnvelopeError::TypeNameTooLong(len))),
                            None => {
                                let name = batch.type_names[t].as_str();
                                let sid = env.serializer_id as SerializerId;
                                let uncached;
                                let d = match usize::try_from(sid) {
                                    Ok(s @ 0..=1) => &*decoders[t][s]
                                        .get_or_insert_with(|| ser.decoder(name, sid)),
                                    _ => {
                                        uncached = ser.decoder(name, sid);
                                        &uncached
                                    }
                                };
                                // Errors without the name: it is in `type_name`, shared.
                                d.decode(name, sid, &env.message_data).map_err(|e| {
                                    undecodable(match e {
                                        SerializationError::UnknownTypeName {
                                            serializer_id,
                                            ..
                                        } => EnvelopeError::UnknownType { serializer_id },
                                        SerializationError::Decode { reason, .. } => {
                                            EnvelopeError::Payload(reason)
                                        }
                                        other => EnvelopeError::Serialization(other),
                                    })
                                })
                            }
                        },
                    };
                    (t, m)
                }
            };
            out.push(Incoming {
                target,
                sender: sender.unwrap_or(None),
                header,
                type_name: type_name.clone(),
                message,
            });
        }
        targets.clear();
        senders.clear();
        decoders.clear();
        // What a huge batch grew is not kept for the ordinary ones after it.
        targets.shrink_to(SCRATCH_KEEP);
        senders.shrink_to(SCRATCH_KEEP);
        decoders.shrink_to(SCRATCH_KEEP);
        if self.names.len() > SCRATCH_KEEP {
            self.names = Vec::new();
        }
        self.scratch = Scratch {
            targets,
            senders,
            decoders,
        };
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::Echo;

    #[test]
    fn target_heuristic_tells_ids_from_pids() {
        let pid = actor_proto::Pid {
            address: "127.0.0.1:8090".into(),
            id: "activator/Remote$x".into(),
            request_id: 7,
        };
        assert_eq!(
            parse_target(&pid.encode_to_vec()),
            Some(TargetEntry::Pid(pid.clone()))
        );
        for id in [
            "$1",
            "activator",
            "activator/Remote$abc",
            "a",
            "partition-activator/x$1",
            "abcdefghijkl",
            "ü",
        ] {
            assert_eq!(
                parse_target(id.as_bytes()),
                Some(TargetEntry::Id(id.into())),
                "{id}"
            );
        }
        // A long address makes the PID's length prefix a multi-byte varint (not UTF-8).
        let long = actor_proto::Pid {
            address: "x".repeat(300),
            id: "$2".into(),
            request_id: 0,
        };
        assert_eq!(
            parse_target(&long.encode_to_vec()),
            Some(TargetEntry::Pid(long))
        );
        // Neither a PID nor UTF-8.
        assert_eq!(parse_target(&[0xff, 0xfe]), None);
        // Empty: an empty id string.
        assert_eq!(parse_target(b""), Some(TargetEntry::Id(String::new())));
    }

    /// A request's reply-to PID (`future$<n>`) resolves like any other but is not cached:
    /// the reader's caches hold the PIDs that come back, not one entry per request.
    #[test]
    fn futures_resolve_without_a_cache_entry() {
        let ser = Serialization::new();
        ser.register::<Echo>();
        let ctx = WireContext {
            local_address: "127.0.0.1:1",
        };
        let mut r = BatchReader::new(Arc::from("127.0.0.1:2"));
        for round in 0..2 {
            let mut b = BatchBuilder::new(WireVariant::Legacy2024);
            for (target, sender) in [("future$7", "$9"), ("$5", "future$8")] {
                let m = Outbound {
                    target: Pid::new("127.0.0.1:2", target),
                    message: Box::new(Echo {
                        message: format!("{round}"),
                        sender: None,
                    }),
                    sender: Some(Pid::new("127.0.0.1:1", sender)),
                    header: None,
                };
                b.push(&ser, &ctx, &m).unwrap();
            }
            let bytes = b.finish().encode_to_vec();
            let got = r.read(MessageBatch::decode(&*bytes).unwrap(), &ser);
            let ids: Vec<(&str, &str)> = got
                .iter()
                .map(|m| (m.target.id(), m.sender.as_ref().unwrap().id()))
                .collect();
            assert_eq!(ids, [("future$7", "$9"), ("$5", "future$8")]);
            assert_eq!(got[1].sender.as_ref().unwrap().address(), "127.0.0.1:1");
        }
        let cached = format!("{r:?}");
        assert!(
            // The senders' address and `$9`.
            cached.contains("cached_targets: 1") && cached.contains("cached_senders: 2"),
            "{cached}"
        );
    }

    /// The writer's direct encoding of a 2024 target is the protobuf encoding of the PID,
    /// and the reader's borrowed id is the one `parse_target` decodes, for every shape.
    #[test]
    fn target_entries_encode_and_read_as_protobuf_does() {
        for (address, id) in [
            ("127.0.0.1:8090", "future$12"),
            ("", "$1"),
            ("x", ""),
            (&*"a".repeat(300), "partition-activator/x$1"),
        ] {
            let raw = encode_target_pid(address, id);
            assert_eq!(&raw[..], &wire_pid(address, id, 0).encode_to_vec()[..]);
            let parsed = parse_target(&raw);
            assert_eq!(target_id(&raw), parsed.as_ref().map(TargetEntry::id));
        }
        // A PID with a request id and its id given twice (the last one counts).
        let mut twice = wire_pid("h:1", "first", 9).encode_to_vec();
        twice.extend_from_slice(&wire_pid("", "second", 0).encode_to_vec());
        assert_eq!(target_id(&twice), Some("second"));
        assert_eq!(parse_target(&twice).unwrap().id(), "second");
        for raw in [&b"$5"[..], b"", b"\x0a\x01", &[0xff, 0xfe]] {
            assert_eq!(
                target_id(raw),
                parse_target(raw).as_ref().map(TargetEntry::id),
                "{raw:?}"
            );
        }
    }

    fn roundtrip(variant: WireVariant) {
        let ser = Serialization::new();
        ser.register::<Echo>();
        let ctx = WireContext {
            local_address: "127.0.0.1:1",
        };
        let mut b = BatchBuilder::new(variant);
        let target = Pid::new("127.0.0.1:2", "$5");
        let sender = Pid::new("nonhost", "$9").with_request_id(3);
        let header: MessageHeader = [("k", "v")].into_iter().collect();
        for i in 0..3 {
            b.push(
                &ser,
                &ctx,
                &Outbound {
                    target: if i == 2 {
                        target.with_request_id(4)
                    } else {
                        target.clone()
                    },
                    message: Box::new(Echo {
                        message: format!("m{i}"),
                        sender: None,
                    }),
                    sender: if i == 0 { None } else { Some(sender.clone()) },
                    header: if i == 1 {
                        Some(Arc::new(header.clone()))
                    } else {
                        None
                    },
                },
            )
            .unwrap();
        }
        assert!(b
            .push(
                &ser,
                &ctx,
                &Outbound {
                    target: target.clone(),
                    message: Box::new(1u8),
                    sender: None,
                    header: None
                }
            )
            .is_err());
        let batch = b.finish();
        assert_eq!(batch.type_names, vec!["messages.Echo"]);
        assert_eq!(batch.targets.len(), 1);
        assert_eq!(batch.senders.len(), 1);
        assert_eq!(batch.envelopes[0].sender, 0);
        assert_eq!(batch.envelopes[1].sender, 1);
        let bytes = batch.encode_to_vec();
        let mut r = BatchReader::new(Arc::from("127.0.0.1:2"));
        let got = r.read(MessageBatch::decode(&*bytes).unwrap(), &ser);
        assert_eq!(got.len(), 3);
        for (i, m) in got.iter().enumerate() {
            let e = m
                .message
                .as_ref()
                .ok()
                .unwrap()
                .downcast_ref::<Echo>()
                .unwrap();
            assert_eq!(e.message, format!("m{i}"));
            assert_eq!(m.target.id(), "$5");
        }
        assert_eq!(got[0].sender, None);
        assert_eq!(
            got[1].sender,
            Some(Pid::new("127.0.0.1:1", "$9").with_request_id(3))
        );
        assert_eq!(got[1].header.as_ref().unwrap().get("k"), Some("v"));
        assert!(got[2].header.is_none());
        assert_eq!(got[2].target.request_id(), 4);
    }

    /// A reader keeps the last batch's type names to share them; a name that changed at
    /// its index, a shorter table and a longer one must still resolve by the batch's own.
    #[test]
    fn a_reader_resolves_each_batch_by_its_own_type_names() {
        let ser = Serialization::new();
        ser.register::<Echo>();
        let ctx = WireContext {
            local_address: "127.0.0.1:1",
        };
        let mut b = BatchBuilder::new(WireVariant::Current);
        let echo = |m: &str| Outbound {
            target: Pid::new("127.0.0.1:2", "$5"),
            message: Box::new(Echo {
                message: m.into(),
                sender: None,
            }),
            sender: None,
            header: None,
        };
        b.push(&ser, &ctx, &echo("a")).unwrap();
        let first = b.finish();
        let data = first.envelopes[0].message_data.clone();
        let mut r = BatchReader::new(Arc::from("127.0.0.1:2"));
        let names = |got: &[Incoming]| -> Vec<String> {
            got.iter().map(|m| m.type_name.to_string()).collect()
        };
        let got = r.read(first.clone(), &ser);
        assert_eq!(names(&got), ["messages.Echo"]);
        assert!(got[0].message.is_ok());
        // The same index now names another (unknown) type; Echo moved to index 1.
        let mut second = first.clone();
        second.type_names = vec!["other.Unknown".into(), "messages.Echo".into()];
        second.envelopes = vec![
            MessageEnvelope {
                type_id: 1,
                ..first.envelopes[0].clone()
            },
            MessageEnvelope {
                type_id: 0,
                message_data: data,
                ..first.envelopes[0].clone()
            },
        ];
        let got = r.read(second, &ser);
        assert_eq!(names(&got), ["messages.Echo", "other.Unknown"]);
        assert!(got[0].message.is_ok());
        assert!(matches!(
            got[1].message,
            Err((EnvelopeError::UnknownType { .. }, _))
        ));
        // Back to one name: index 1 is out of range again.
        let mut third = first.clone();
        third.envelopes[0].type_id = 1;
        let got = r.read(third, &ser);
        assert!(matches!(
            got[0].message,
            Err((EnvelopeError::BadTypeIndex(1), _))
        ));
        assert_eq!(names(&got), [""]);
        let got = r.read(first, &ser);
        assert_eq!(names(&got), ["messages.Echo"]);
        assert!(got[0].message.is_ok());
    }

    /// `remote.MessageEnvelope` as published (field numbers from protoactor-go's
    /// remote.proto), declared here independently of the crate's own .proto files.
    #[derive(Clone, PartialEq, prost::Message)]
    struct PublishedEnvelope {
        #[prost(int32, tag = "1")]
        type_id: i32,
        #[prost(bytes = "vec", tag = "2")]
        message_data: Vec<u8>,
        #[prost(int32, tag = "3")]
        target: i32,
        #[prost(int32, tag = "4")]
        sender: i32,
        #[prost(int32, tag = "5")]
        serializer_id: i32,
        #[prost(bytes = "vec", optional, tag = "6")]
        message_header: Option<Vec<u8>>,
        #[prost(uint32, tag = "7")]
        target_request_id: u32,
        #[prost(uint32, tag = "8")]
        sender_request_id: u32,
    }

    /// `remote.MessageBatch` of the current protocol: `repeated string targets = 2`.
    #[derive(Clone, PartialEq, prost::Message)]
    struct CurrentBatch {
        #[prost(string, repeated, tag = "1")]
        type_names: Vec<String>,
        #[prost(string, repeated, tag = "2")]
        targets: Vec<String>,
        #[prost(message, repeated, tag = "3")]
        envelopes: Vec<PublishedEnvelope>,
        #[prost(message, repeated, tag = "4")]
        senders: Vec<actor_proto::Pid>,
    }

    /// `remote.MessageBatch` of the 2024 protocol: `repeated actor.PID targets = 2`.
    #[derive(Clone, PartialEq, prost::Message)]
    struct LegacyBatch {
        #[prost(string, repeated, tag = "1")]
        type_names: Vec<String>,
        #[prost(message, repeated, tag = "2")]
        targets: Vec<actor_proto::Pid>,
        #[prost(message, repeated, tag = "3")]
        envelopes: Vec<PublishedEnvelope>,
        #[prost(message, repeated, tag = "4")]
        senders: Vec<actor_proto::Pid>,
    }

    fn three_echoes(variant: WireVariant) -> Vec<u8> {
        let ser = Serialization::new();
        ser.register::<Echo>();
        let ctx = WireContext {
            local_address: "127.0.0.1:1",
        };
        let mut b = BatchBuilder::new(variant);
        let target = Pid::new("127.0.0.1:2", "$5");
        let sender = Pid::new("nonhost", "$9").with_request_id(3);
        for i in 0..3u32 {
            let out = Outbound {
                target: if i == 2 {
                    target.with_request_id(4)
                } else {
                    target.clone()
                },
                message: Box::new(Echo {
                    message: format!("m{i}"),
                    sender: None,
                }),
                sender: (i > 0).then(|| sender.clone()),
                header: None,
            };
            b.push(&ser, &ctx, &out).unwrap();
        }
        b.finish().encode_to_vec()
    }

    fn check_envelopes(envelopes: &[PublishedEnvelope]) {
        assert_eq!(envelopes.len(), 3);
        for (i, e) in envelopes.iter().enumerate() {
            assert_eq!(e.type_id, 0);
            assert_eq!(e.target, 0, "targets are 0-based");
            assert_eq!(e.sender, i32::from(i > 0), "senders are 1-based, 0 = none");
            assert_eq!(e.serializer_id, 0);
            assert_eq!(e.message_header, None, "no header field when empty");
            assert_eq!(e.target_request_id, if i == 2 { 4 } else { 0 });
            assert_eq!(e.sender_request_id, if i > 0 { 3 } else { 0 });
            let echo = Echo::decode(e.message_data.as_slice()).unwrap();
            assert_eq!(echo.message, format!("m{i}"));
        }
    }

    /// The bytes each variant writes decode with the published schema of that variant, and
    /// re-encode to the same bytes (so nothing else is on the wire).
    #[test]
    fn each_variant_writes_its_published_schema() {
        let sender = actor_proto::Pid {
            address: "127.0.0.1:1".into(),
            id: "$9".into(),
            request_id: 0,
        };
        let bytes = three_echoes(WireVariant::Current);
        let b = CurrentBatch::decode(bytes.as_slice()).unwrap();
        assert_eq!(b.encode_to_vec(), bytes);
        assert_eq!(b.type_names, vec!["messages.Echo"]);
        assert_eq!(b.targets, vec!["$5"]);
        assert_eq!(b.senders, vec![sender.clone()]);
        check_envelopes(&b.envelopes);

        let bytes = three_echoes(WireVariant::Legacy2024);
        let b = LegacyBatch::decode(bytes.as_slice()).unwrap();
        assert_eq!(b.encode_to_vec(), bytes);
        assert_eq!(b.type_names, vec!["messages.Echo"]);
        assert_eq!(
            b.targets,
            vec![actor_proto::Pid {
                address: "127.0.0.1:2".into(),
                id: "$5".into(),
                request_id: 0,
            }]
        );
        assert_eq!(b.senders, vec![sender]);
        check_envelopes(&b.envelopes);
    }

    /// A batch converted to the other variant is what that variant would have written, and
    /// the variant of a batch is read from its targets.
    #[test]
    fn converting_targets_gives_the_other_variant_s_batch() {
        let current = MessageBatch::decode(three_echoes(WireVariant::Current).as_slice()).unwrap();
        let legacy =
            MessageBatch::decode(three_echoes(WireVariant::Legacy2024).as_slice()).unwrap();
        assert_eq!(batch_variant(&current), Some(WireVariant::Current));
        assert_eq!(batch_variant(&legacy), Some(WireVariant::Legacy2024));
        assert_eq!(batch_variant(&MessageBatch::default()), None);
        let mut c = current.clone();
        convert_targets(&mut c, WireVariant::Legacy2024, "127.0.0.1:2");
        assert_eq!(c, legacy);
        let mut l = legacy.clone();
        convert_targets(&mut l, WireVariant::Current, "127.0.0.1:2");
        assert_eq!(l, current);
    }

    /// Reads `raw`, one current-variant target entry (an id), as a 2024 peer does: the
    /// batch's `targets` decoded as `actor.PID` with the published schema (prost follows the
    /// rules protobuf-go applies here: unknown fields are skipped, bad wire types, field 0,
    /// truncated values and invalid UTF-8 in strings are refused).
    fn as_legacy_target(id: &str) -> Option<actor_proto::Pid> {
        let bytes = CurrentBatch {
            targets: vec![id.to_string()],
            ..Default::default()
        }
        .encode_to_vec();
        LegacyBatch::decode(bytes.as_slice())
            .ok()
            .map(|b| b.targets.into_iter().next().unwrap_or_default())
    }

    /// The variant a received batch is learned as comes from a check that decodes nothing:
    /// it must classify every entry as `parse_target` does (bytes that are not UTF-8 too).
    #[test]
    fn batch_variant_classifies_as_parse_target_does() {
        let mut entries: Vec<Vec<u8>> = Vec::new();
        for a in 0u8..=255 {
            entries.push(vec![a]);
            for b in 0u8..=255 {
                entries.push(vec![a, b]);
            }
        }
        let pid = encode_target_pid("127.0.0.1:1", "$5").to_vec();
        entries.push(pid.clone());
        entries.push(encode_target_pid("", "future$7").to_vec());
        entries.push(encode_target_pid("127.0.0.1:1", "").to_vec());
        // Field 3 (request id) as a 10-byte varint: in range, and overflowing (which a
        // protobuf decoder refuses, so the entry is read as an id string).
        let mut in_range = pid.clone();
        in_range.extend([
            0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ]);
        let mut overflow = pid;
        overflow.extend([
            0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
        ]);
        entries.extend([in_range, overflow]);
        let mut pids = 0;
        for raw in &entries {
            let want = parse_target(raw).map(|t| match t {
                TargetEntry::Pid(_) => WireVariant::Legacy2024,
                TargetEntry::Id(_) => WireVariant::Current,
            });
            pids += usize::from(want == Some(WireVariant::Legacy2024));
            assert_eq!(target_variant(raw), want, "{raw:?}");
        }
        // Both forms (and entries of neither) are among the cases.
        assert!(pids >= 3, "{pids}");
    }

    /// Every id up to two bytes, every three-character id over the characters protoactor ids
    /// are made of, and the ids the protocol itself uses: which ones, written in the current
    /// variant as a peer's first batch, also decode in the 2024 variant. Each such id reaches
    /// a 2024 peer as another PID (it is mis-delivered, not refused), which is why a node
    /// learns the peer's variant with a probe before it sends its first batch. This crate's
    /// reader is never fooled by them: it reads each as the id it is.
    #[test]
    fn ambiguous_first_targets_exhaustively() {
        let alphabet: Vec<char> =
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789$/_-.#@"
                .chars()
                .collect();
        let mut ids: Vec<String> = Vec::new();
        for a in 0u8..=255 {
            ids.extend(std::str::from_utf8(&[a]).ok().map(String::from));
            for b in 0u8..=255 {
                ids.extend(std::str::from_utf8(&[a, b]).ok().map(String::from));
            }
        }
        for a in &alphabet {
            for b in &alphabet {
                for c in &alphabet {
                    ids.push([*a, *b, *c].iter().collect());
                }
            }
        }
        let protocol_ids = [
            "activator",
            "aardvarks",
            "echo",
            "gossip",
            "partition-activator",
            "partition-identity",
            "remote",
            "eventstream",
            "$1",
            "$abc",
            "activator/Remote$x",
            "deadletter",
        ];
        ids.extend(protocol_ids.iter().map(|s| s.to_string()));
        let mut ambiguous = Vec::new();
        for id in &ids {
            if let Some(pid) = as_legacy_target(id) {
                // A 2024 peer gets another target than the one meant.
                assert_ne!((pid.address.as_str(), pid.id.as_str()), ("", id.as_str()));
                ambiguous.push(id.clone());
            }
            // This crate reads the current variant's id as that id, ambiguous or not.
            assert_eq!(
                parse_target(id.as_bytes()),
                Some(TargetEntry::Id(id.clone())),
                "{id:?}"
            );
        }
        for id in ["activator", "aardvarks", "h1", "hh", "x$"] {
            assert!(ambiguous.iter().any(|a| a == id), "{id} is ambiguous");
        }
        for id in [
            "echo",
            "gossip",
            "partition-activator",
            "remote",
            "eventstream",
        ] {
            assert!(!ambiguous.iter().any(|a| a == id), "{id} fails to parse");
        }
        // The ambiguous shapes, by first byte's wire type: varint (0x68 'h' + one byte),
        // fixed64 (0x61 'a' + 8 bytes), length-delimited, fixed32 (0x65 'e' + 4 bytes); an
        // empty `targets` entry decodes as an empty PID too.
        assert_eq!(as_legacy_target("h1"), Some(actor_proto::Pid::default()));
        assert_eq!(as_legacy_target("echo!"), Some(actor_proto::Pid::default()));
        assert_eq!(as_legacy_target("echo"), None);
        assert!(as_legacy_target("\u{12}\u{1}x").is_some_and(|p| p.id == "x"));
        eprintln!(
            "{} of {} candidate first targets decode in both variants",
            ambiguous.len(),
            ids.len()
        );
    }

    /// The probe decodes in both published schemas, to different targets: a 2024 reader
    /// gets this node's probe PID (and forwards the `Touch` back), a current reader gets an id
    /// no actor has. Over every address length it can carry, and refused beyond.
    #[test]
    fn the_variant_probe_decodes_in_both_variants() {
        for len in 1..=200usize {
            let address = format!("{}:{}", "h".repeat(len.saturating_sub(6).max(1)), 41200);
            let id = format!("dialect-probe/{}/$1", "m".repeat(len % 40));
            let Some(probe) = variant_probe(&address, &id) else {
                // A length prefix of 128 or more is a multi-byte varint: not UTF-8.
                assert!(address.len() + id.len() + 4 > 127, "{address} {id}");
                continue;
            };
            let bytes = probe.encode_to_vec();
            let legacy = LegacyBatch::decode(bytes.as_slice()).expect("a 2024 reader decodes it");
            let me = actor_proto::Pid {
                address: address.clone(),
                id: id.clone(),
                request_id: 0,
            };
            assert_eq!(legacy.targets, vec![me.clone()]);
            assert_eq!(legacy.senders, vec![me.clone()]);
            assert_eq!(legacy.type_names, vec![PROBE_TYPE_NAME]);
            let current =
                CurrentBatch::decode(bytes.as_slice()).expect("a current reader decodes it");
            assert_eq!(current.targets.len(), 1);
            assert_ne!(current.targets[0], id, "not the probe's own id");
            assert!(current.targets[0].starts_with('\n'), "an id no actor has");
            assert_eq!(current.senders, vec![me]);
            assert_eq!(current.envelopes[0].sender, 1);
            assert!(is_variant_probe(&probe));
            // A batch that only looks similar is not a probe.
            let mut other = probe.clone();
            other.type_names = vec!["messages.Echo".into()];
            assert!(!is_variant_probe(&other));
            let mut other = probe.clone();
            other.targets = vec![Bytes::from(id.clone())];
            assert!(!is_variant_probe(&other));
        }
        assert!(variant_probe(&"h".repeat(130), "p").is_none());
    }

    #[test]
    fn batches_roundtrip_in_both_variants() {
        roundtrip(WireVariant::Current);
        roundtrip(WireVariant::Legacy2024);
    }

    #[test]
    fn bad_indexes_fail_only_their_envelope() {
        let ser = Serialization::new();
        ser.register::<Echo>();
        let good = Echo {
            message: "ok".into(),
            sender: None,
        }
        .encode_to_vec();
        let env = |type_id, target, sender| MessageEnvelope {
            type_id,
            message_data: Bytes::from(good.clone()),
            target,
            sender,
            ..Default::default()
        };
        let batch = MessageBatch {
            type_names: vec!["messages.Echo".into(), "no.Such".into()],
            targets: vec![Bytes::from_static(b"$1"), Bytes::from_static(&[0xff])],
            envelopes: vec![
                env(0, 0, 0),
                env(5, 0, 0),
                env(0, 9, 0),
                env(0, 1, 0),
                env(0, 0, 3),
                env(1, 0, 0),
                env(-1, -1, -1),
                env(0, 0, 0),
                env(i32::MIN, i32::MIN, i32::MIN),
                env(i32::MAX, i32::MAX, i32::MAX),
            ],
            senders: vec![],
        };
        let got = BatchReader::new(Arc::from("me")).read(batch, &ser);
        let errs: Vec<Option<EnvelopeError>> = got
            .iter()
            .map(|g| g.message.as_ref().err().map(|e| e.0.clone()))
            .collect();
        assert_eq!(errs[0], None);
        assert_eq!(errs[1], Some(EnvelopeError::BadTypeIndex(5)));
        assert_eq!(errs[2], Some(EnvelopeError::BadTargetIndex(9)));
        assert_eq!(errs[3], Some(EnvelopeError::BadTargetEntry(1)));
        assert_eq!(errs[4], Some(EnvelopeError::BadSenderIndex(3)));
        assert_eq!(
            errs[5],
            Some(EnvelopeError::UnknownType { serializer_id: 0 })
        );
        assert_eq!(&*got[5].type_name, "no.Such");
        assert!(errs[6].is_some());
        assert_eq!(errs[7], None);
        assert!(errs[8].is_some());
        assert!(errs[9].is_some());
    }
}
