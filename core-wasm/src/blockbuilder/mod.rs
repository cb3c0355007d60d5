//! Builds the next block from a cut batch: Fabric's `protoutil.BlockHeaderBytes`,
//! `BlockDataHash` and `blockcreator.createNextBlock`.
//!
//! - `data.data[i]` is envelope `i` as Fabric's Go protobuf runtime marshals it after
//!   unmarshalling it from the wire (see [`marshal_envelope`]);
//! - `header.data_hash` = SHA-256 of the concatenation of all `data.data[i]`;
//! - `header.previous_hash` = header hash of the previous block;
//! - the block is encoded without its metadata field: the host fills and signs the
//!   metadata and appends field 3 (a protobuf message may be extended by appending).

use bytes::Bytes;
use fabric_protos::common::{Block, BlockData, BlockHeader};
use prost::Message;

use crate::blockcutter::BatchItem;
use crate::blockheader::{header_der, header_hash};
use crate::crypto::Crypto;

/// An envelope ready to be put in a block: its block bytes and its Fabric size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderedEnvelope {
    data: Bytes,
    payload_len: usize,
    signature_len: usize,
}

impl OrderedEnvelope {
    /// The bytes that go into `block.data.data`.
    pub fn data(&self) -> &Bytes {
        &self.data
    }
}

impl BatchItem for OrderedEnvelope {
    fn size_bytes(&self) -> u64 {
        self.payload_len as u64 + self.signature_len as u64
    }
}

/// Why bytes are not a protobuf message (the Go runtime's `protowire` texts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("unexpected EOF")]
    Eof,
    #[error("variable length integer overflow")]
    VarintOverflow,
    #[error("invalid field number {0}")]
    FieldNumber(u64),
    #[error("invalid wire type {0}")]
    WireType(u64),
    #[error("unexpected end group")]
    UnexpectedEndGroup,
    #[error("mismatching end group marker")]
    MismatchedEndGroup,
    #[error("exceeded maximum recursion depth")]
    RecursionDepth,
}

const PAYLOAD_FIELD: u64 = 1;
const SIGNATURE_FIELD: u64 = 2;
const WIRE_VARINT: u64 = 0;
const WIRE_FIXED64: u64 = 1;
const WIRE_LEN: u64 = 2;
const WIRE_START_GROUP: u64 = 3;
const WIRE_END_GROUP: u64 = 4;
const WIRE_FIXED32: u64 = 5;
/// protowire.MaxValidNumber.
const MAX_FIELD_NUMBER: u64 = (1 << 29) - 1;
/// Group nesting we follow in unknown fields; prost (which the filters decode with)
/// stops at the same depth, so deeper envelopes never get this far.
const MAX_GROUP_DEPTH: u32 = 100;

/// Re-marshals a `common.Envelope` received from a client exactly as Fabric's orderer
/// does (`proto.Unmarshal` on receipt, `proto.Marshal` in `createNextBlock`, with the
/// Go protobuf runtime): fields `payload` (1) and `signature` (2) in field order, the
/// last occurrence winning, omitted when empty; then every unknown field in arrival
/// order, with its tag re-encoded minimally and its value kept raw (the Go runtime
/// keeps unknown fields; a known field with another wire type counts as unknown).
///
/// The common case, an envelope already in that form, costs no copy: the returned
/// data shares `raw`.
pub fn marshal_envelope(raw: Bytes) -> Result<OrderedEnvelope, WireError> {
    let buf = raw.as_ref();
    let mut pos = 0;
    let mut payload: Option<(usize, usize)> = None;
    let mut signature: Option<(usize, usize)> = None;
    let mut unknown: Vec<u8> = Vec::new();
    // Whether `raw` is exactly what marshalling produces (checked at the end by length).
    let mut in_order = true;
    let mut last_field = 0;
    while pos < buf.len() {
        let tag = read_varint(buf, &mut pos)?;
        let (num, wire) = (tag >> 3, tag & 7);
        if num == 0 || num > MAX_FIELD_NUMBER {
            return Err(WireError::FieldNumber(num));
        }
        if wire == WIRE_END_GROUP {
            return Err(WireError::UnexpectedEndGroup);
        }
        if (num == PAYLOAD_FIELD || num == SIGNATURE_FIELD) && wire == WIRE_LEN {
            let len = read_varint(buf, &mut pos)?;
            let end = checked_end(buf, pos, len)?;
            let slot = if num == PAYLOAD_FIELD {
                &mut payload
            } else {
                &mut signature
            };
            if slot.is_some() || num <= last_field {
                in_order = false;
            }
            last_field = num;
            *slot = Some((pos, end));
            pos = end;
        } else {
            let start = pos;
            skip_value(buf, &mut pos, num, wire, MAX_GROUP_DEPTH)?;
            push_varint(&mut unknown, tag);
            unknown.extend_from_slice(&buf[start..pos]);
        }
    }
    let payload = payload.unwrap_or((0, 0));
    let signature = signature.unwrap_or((0, 0));
    let payload_len = payload.1 - payload.0;
    let signature_len = signature.1 - signature.0;
    let field_len = |len: usize| {
        if len == 0 {
            0
        } else {
            1 + prost::encoding::encoded_len_varint(len as u64) + len
        }
    };
    let canonical_len = field_len(payload_len) + field_len(signature_len) + unknown.len();
    // Without unknown fields, with each known field at most once and in order, the
    // only differences left (non-minimal tags or lengths, empty fields) all make the
    // input longer than its marshalled form.
    let data = if unknown.is_empty() && in_order && canonical_len == buf.len() {
        raw
    } else {
        let mut out = Vec::with_capacity(canonical_len);
        for (field, (s, e)) in [(PAYLOAD_FIELD, payload), (SIGNATURE_FIELD, signature)] {
            if e > s {
                push_varint(&mut out, field << 3 | WIRE_LEN);
                push_varint(&mut out, (e - s) as u64);
                out.extend_from_slice(&buf[s..e]);
            }
        }
        out.extend_from_slice(&unknown);
        Bytes::from(out)
    };
    Ok(OrderedEnvelope {
        data,
        payload_len,
        signature_len,
    })
}

fn read_varint(buf: &[u8], pos: &mut usize) -> Result<u64, WireError> {
    let mut value = 0u64;
    for i in 0..10 {
        let Some(&b) = buf.get(*pos) else {
            return Err(WireError::Eof);
        };
        *pos += 1;
        if i == 9 && b > 1 {
            return Err(WireError::VarintOverflow);
        }
        value |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Ok(value);
        }
    }
    unreachable!("the tenth byte is at most 1")
}

fn checked_end(buf: &[u8], pos: usize, len: u64) -> Result<usize, WireError> {
    if len > (buf.len() - pos) as u64 {
        return Err(WireError::Eof);
    }
    Ok(pos + len as usize)
}

/// Skips one field value (protowire.ConsumeFieldValue).
fn skip_value(
    buf: &[u8],
    pos: &mut usize,
    num: u64,
    wire: u64,
    depth: u32,
) -> Result<(), WireError> {
    match wire {
        WIRE_VARINT => {
            read_varint(buf, pos)?;
        }
        WIRE_FIXED64 => *pos = checked_end(buf, *pos, 8)?,
        WIRE_FIXED32 => *pos = checked_end(buf, *pos, 4)?,
        WIRE_LEN => {
            let len = read_varint(buf, pos)?;
            *pos = checked_end(buf, *pos, len)?;
        }
        WIRE_START_GROUP => {
            if depth == 0 {
                return Err(WireError::RecursionDepth);
            }
            loop {
                let tag = read_varint(buf, pos)?;
                let (inner, inner_wire) = (tag >> 3, tag & 7);
                if inner == 0 || inner > i32::MAX as u64 {
                    return Err(WireError::FieldNumber(inner));
                }
                if inner_wire == WIRE_END_GROUP {
                    if inner != num {
                        return Err(WireError::MismatchedEndGroup);
                    }
                    return Ok(());
                }
                skip_value(buf, pos, inner, inner_wire, depth - 1)?;
            }
        }
        _ => return Err(WireError::WireType(wire)),
    }
    Ok(())
}

fn push_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// A block as the core built it (see the WIT `built-block`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuiltBlock {
    pub number: u64,
    /// The DER header the orderer signature covers; its SHA-256 is the header hash.
    pub header_der: Vec<u8>,
    /// `common.Block` with header and data, without the metadata field.
    pub encoded: Vec<u8>,
    /// A config block (its one envelope is a CONFIG): its LAST_CONFIG is its own
    /// number, and its config is in force for everything after it.
    pub is_config: bool,
}

/// The chain position the next block is built at: its number and previous hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockBuilder {
    next_number: u64,
    previous_hash: Bytes,
}

impl BlockBuilder {
    /// Builds block `next_number` next, linking it to `previous_hash`.
    pub fn new(next_number: u64, previous_hash: impl Into<Bytes>) -> Self {
        BlockBuilder {
            next_number,
            previous_hash: previous_hash.into(),
        }
    }

    /// Builds the block after `tip`.
    pub fn after(tip: &BlockHeader, crypto: &dyn Crypto) -> Self {
        Self::new(
            tip.number.wrapping_add(1),
            header_hash(tip, crypto).to_vec(),
        )
    }

    /// The number of the next block.
    pub fn next_number(&self) -> u64 {
        self.next_number
    }

    /// The header hash of the last block (the next block's `previous_hash`).
    pub fn previous_hash(&self) -> &[u8] {
        &self.previous_hash
    }

    /// Builds the next block from `batch` and advances past it.
    pub fn build(&mut self, batch: &[OrderedEnvelope], crypto: &dyn Crypto) -> BuiltBlock {
        let total = batch.iter().map(|e| e.data.len()).sum();
        let mut concatenated = Vec::with_capacity(total);
        for envelope in batch {
            concatenated.extend_from_slice(&envelope.data);
        }
        let data_hash = crypto.sha256(&concatenated);
        let concatenated = Bytes::from(concatenated);
        let mut entries = Vec::with_capacity(batch.len());
        let mut offset = 0;
        for envelope in batch {
            let end = offset + envelope.data.len();
            entries.push(concatenated.slice(offset..end));
            offset = end;
        }
        let header = BlockHeader {
            number: self.next_number,
            previous_hash: self.previous_hash.clone(),
            data_hash: data_hash.to_vec().into(),
        };
        let der = header_der(&header);
        let hash = crypto.sha256(&der);
        let number = header.number;
        let encoded = Block {
            header: Some(header),
            data: Some(BlockData { data: entries }),
            metadata: None,
        }
        .encode_to_vec();
        self.next_number = number.wrapping_add(1);
        self.previous_hash = Bytes::copy_from_slice(&hash);
        BuiltBlock {
            number,
            header_der: der,
            encoded,
            is_config: false,
        }
    }
}

#[cfg(test)]
mod tests;
