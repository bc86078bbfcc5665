//! The gRPC codec of the `remote.Remoting` service: prost, with a memory budget checked on
//! each received frame before it is decoded.
//!
//! A small frame can decode into far more memory than its size: an empty
//! `MessageEnvelope` is 2 bytes on the wire and over 100 in memory, and every envelope that
//! names a type carries (and, when it fails, reports) that name. So each frame's decoded
//! cost is counted first from its bytes: every table entry and envelope at its in-memory
//! size, header entries, and the type name each envelope refers to. A frame whose cost
//! beyond its own size exceeds [`FRAME_MEMORY_LIMIT`] is refused (the stream ends with
//! `RESOURCE_EXHAUSTED`, as for a frame over the size limit), so the memory a frame takes
//! stays under twice its size plus that limit.

use std::marker::PhantomData;

use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic::Status;
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

use crate::codec::varint;
use crate::remote_proto;

/// The most memory a received frame may take beyond its own size once decoded and read.
pub const FRAME_MEMORY_LIMIT: usize = 32 * 1024 * 1024;

pub use crate::codec::MAX_TYPE_NAME_LEN;

// In-memory costs of what a frame decodes into (generous: the decoded value plus what the
// reader builds from it).
const ENVELOPE_COST: usize = 320;
const STRING_COST: usize = 48;
const PID_COST: usize = 128;
const HEADER_ENTRY_COST: usize = 128;

/// Checks a frame before it is decoded as `Self`.
pub trait FrameBudget {
    /// `Err` if the frame would take too much memory.
    fn check(_frame: &[u8]) -> Result<(), Status> {
        Ok(())
    }
}

impl FrameBudget for remote_proto::RemoteMessage {
    fn check(frame: &[u8]) -> Result<(), Status> {
        match decoded_cost(frame) {
            Some(cost) if cost > FRAME_MEMORY_LIMIT => Err(Status::resource_exhausted(format!(
                "a {}-byte frame would take {cost} more bytes of memory once decoded (limit {FRAME_MEMORY_LIMIT})",
                frame.len()
            ))),
            _ => Ok(()),
        }
    }
}
impl FrameBudget for remote_proto::ListProcessesRequest {}
impl FrameBudget for remote_proto::ListProcessesResponse {}
impl FrameBudget for remote_proto::GetProcessDiagnosticsRequest {}
impl FrameBudget for remote_proto::GetProcessDiagnosticsResponse {}

/// [`ProstCodec`] with a [`FrameBudget`] check of every received frame.
#[derive(Debug, Clone)]
pub struct BudgetCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for BudgetCodec<T, U> {
    fn default() -> Self {
        BudgetCodec(PhantomData)
    }
}

impl<T, U> Codec for BudgetCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + FrameBudget + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = BudgetDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::raw_encoder(BufferSettings::default())
    }

    fn decoder(&mut self) -> Self::Decoder {
        BudgetDecoder(ProstCodec::<T, U>::raw_decoder(BufferSettings::default()))
    }
}

/// The decoder of [`BudgetCodec`].
#[derive(Debug)]
pub struct BudgetDecoder<U>(ProstDecoder<U>);

impl<U: prost::Message + Default + FrameBudget> Decoder for BudgetDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        // The frame is contiguous: tonic buffers it whole before decoding.
        U::check(bytes::Buf::chunk(buf))?;
        self.0.decode(buf)
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}

/// Reads protobuf fields: `(field number, wire type, payload)`; for varints the payload is
/// empty and the value is returned separately.
struct Fields<'a> {
    raw: &'a [u8],
}

enum Field<'a> {
    Varint(u32, u64),
    Bytes(u32, &'a [u8]),
    Other,
}

impl<'a> Iterator for Fields<'a> {
    /// `None` inside: malformed (prost will refuse the frame itself).
    type Item = Option<Field<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.raw.is_empty() {
            return None;
        }
        let step = || -> Option<(Field<'a>, usize)> {
            let (key, n) = varint(self.raw)?;
            let field = u32::try_from(key >> 3).ok()?;
            let rest = &self.raw[n..];
            Some(match key & 7 {
                0 => {
                    let (v, m) = varint(rest)?;
                    (Field::Varint(field, v), n + m)
                }
                1 => (Field::Other, n + 8),
                2 => {
                    let (len, m) = varint(rest)?;
                    let len = usize::try_from(len).ok()?;
                    let body = rest.get(m..m.checked_add(len)?)?;
                    (Field::Bytes(field, body), n + m + len)
                }
                5 => (Field::Other, n + 4),
                _ => return None,
            })
        };
        match step() {
            Some((f, used)) if used <= self.raw.len() => {
                self.raw = &self.raw[used..];
                Some(Some(f))
            }
            _ => {
                self.raw = &[];
                Some(None)
            }
        }
    }
}

fn fields(raw: &[u8]) -> Fields<'_> {
    Fields { raw }
}

/// The memory a `RemoteMessage` frame takes beyond its size once decoded and read; `None`
/// if it is malformed (prost refuses it then).
pub fn decoded_cost(frame: &[u8]) -> Option<usize> {
    let mut cost = 0usize;
    for f in fields(frame) {
        // Field 1: message_batch (repeated occurrences merge into one batch).
        if let Field::Bytes(1, batch) = f? {
            cost = cost.saturating_add(batch_cost(batch)?);
        }
    }
    Some(cost)
}

/// The lengths of a batch's type names: the first few inline, since a batch names a few
/// types (two `Vec`s per frame were allocations on every received batch).
#[derive(Default)]
struct NameLens {
    inline: [usize; 8],
    count: usize,
    more: Vec<usize>,
}

impl NameLens {
    fn push(&mut self, len: usize) {
        match self.inline.get_mut(self.count) {
            Some(slot) => *slot = len,
            None => self.more.push(len),
        }
        self.count += 1;
    }
    fn get(&self, i: u64) -> Option<usize> {
        let i = usize::try_from(i).ok().filter(|&i| i < self.count)?;
        Some(match self.inline.get(i) {
            Some(&len) => len,
            None => self.more[i - self.inline.len()],
        })
    }
}

fn batch_cost(batch: &[u8]) -> Option<usize> {
    let mut cost = 0usize;
    let mut names = NameLens::default();
    // Envelopes whose type name was not seen yet (prost writes the names first, so only an
    // unusual encoder makes this non-empty).
    let mut type_ids: Vec<u64> = Vec::new();
    // A name may be copied into what each envelope referring to it decodes to (a
    // `JsonMessage` of an unknown JSON type); names over the cap are never copied.
    let name_cost = |len: usize| if len <= MAX_TYPE_NAME_LEN { len } else { 0 };
    for f in fields(batch) {
        match f? {
            Field::Bytes(1, name) => {
                names.push(name.len());
                cost = cost.saturating_add(STRING_COST + name.len());
            }
            Field::Bytes(2, target) => cost = cost.saturating_add(PID_COST + target.len()),
            Field::Bytes(4, sender) => cost = cost.saturating_add(PID_COST + sender.len()),
            Field::Bytes(3, envelope) => {
                let mut type_id = 0;
                for ef in fields(envelope) {
                    match ef? {
                        Field::Varint(1, v) => type_id = v,
                        // message_header: each map entry becomes two strings and a slot.
                        Field::Bytes(6, header) => {
                            for hf in fields(header) {
                                if let Field::Bytes(1, entry) = hf? {
                                    cost = cost.saturating_add(HEADER_ENTRY_COST + entry.len());
                                }
                            }
                        }
                        _ => {}
                    }
                }
                match names.get(type_id) {
                    Some(len) => cost = cost.saturating_add(name_cost(len)),
                    None => type_ids.push(type_id),
                }
                cost = cost.saturating_add(ENVELOPE_COST);
            }
            _ => {}
        }
    }
    for id in type_ids {
        if let Some(len) = names.get(id) {
            cost = cost.saturating_add(name_cost(len));
        }
    }
    Some(cost)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote_proto::remote_message::MessageType;
    use crate::remote_proto::{MessageBatch, MessageEnvelope, RemoteMessage};
    use prost::Message as _;

    fn frame(names: Vec<String>, envelopes: usize) -> Vec<u8> {
        RemoteMessage {
            message_type: Some(MessageType::MessageBatch(MessageBatch {
                type_names: names,
                targets: vec![bytes::Bytes::from_static(b"$1")],
                envelopes: vec![MessageEnvelope::default(); envelopes],
                senders: vec![],
            })),
        }
        .encode_to_vec()
    }

    #[test]
    fn ordinary_batches_fit_and_amplifying_ones_do_not() {
        // 1000 envelopes of one short type: far under the limit.
        let ok = frame(vec!["messages.Echo".into()], 1000);
        let c = decoded_cost(&ok).unwrap();
        assert!(c < 1024 * 1024, "{c}");
        assert!(RemoteMessage::check(&ok).is_ok());
        // A name at the cap referenced by 40,000 envelopes: 82 KB that would take over 50 MB.
        let bad = frame(vec!["x".repeat(MAX_TYPE_NAME_LEN)], 40_000);
        assert!(bad.len() < 100_000);
        let err = RemoteMessage::check(&bad).unwrap_err();
        assert_eq!(err.code(), tonic::Code::ResourceExhausted);
        // A million empty envelopes: 2 MB on the wire, over 100 MB decoded.
        let bad = frame(vec![], 1_000_000);
        assert!(RemoteMessage::check(&bad).is_err());
        // Malformed: left to prost.
        assert_eq!(decoded_cost(&[0x0a, 0x05, 0x1a]), None);
        assert!(RemoteMessage::check(&[0x0a, 0x05, 0x1a]).is_ok());
    }

    /// A batch whose envelopes refer to more names than are kept inline, with the names
    /// written before the envelopes (as prost does) or after them: the same cost.
    #[test]
    fn name_costs_count_in_any_field_order() {
        let names: Vec<String> = (0..12).map(|i| "n".repeat(10 + i)).collect();
        let only_names = MessageBatch {
            type_names: names.clone(),
            ..Default::default()
        }
        .encode_to_vec();
        let only_envelopes = MessageBatch {
            envelopes: (0..12)
                .map(|i| MessageEnvelope {
                    type_id: i,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
        .encode_to_vec();
        let wrap = |batch: Vec<u8>| {
            let mut f = vec![0x0a];
            prost::encoding::encode_varint(batch.len() as u64, &mut f);
            f.extend(batch);
            f
        };
        let names_first = wrap([only_names.clone(), only_envelopes.clone()].concat());
        let names_last = wrap([only_envelopes, only_names].concat());
        let lens: usize = names.iter().map(String::len).sum();
        // Each name as a string, once more per envelope referring to it, and the envelopes.
        let want = 12 * STRING_COST + lens + lens + 12 * ENVELOPE_COST;
        assert_eq!(decoded_cost(&names_first), Some(want));
        assert_eq!(decoded_cost(&names_last), Some(want));
    }
}
