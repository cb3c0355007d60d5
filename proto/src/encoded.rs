//! `orderer.DeliverResponse` as a server sends it when the block is already encoded:
//! the ledger's bytes go on the wire as they are, so one serialization of a block
//! serves every Deliver stream. A client decodes it as an ordinary `DeliverResponse`
//! (a message field and a bytes field holding its encoding are the same on the wire).

use bytes::{Buf, BufMut, Bytes};
use prost::encoding::{DecodeContext, WireType, bytes as bytes_field, int32, skip_field};

/// `DeliverResponse { oneof Type { common.Status status = 1; common.Block block = 2; } }`
/// with the block kept encoded.
#[derive(Clone, Debug, PartialEq)]
pub enum EncodedDeliverResponse {
    Status(i32),
    /// An encoded `common.Block`.
    Block(Bytes),
}

const STATUS: u32 = 1;
const BLOCK: u32 = 2;

impl Default for EncodedDeliverResponse {
    fn default() -> Self {
        EncodedDeliverResponse::Status(0)
    }
}

impl EncodedDeliverResponse {
    /// The encoding in two pieces: the field's key and length (or the whole status),
    /// then the block's bytes as they are (empty for a status), so that a server can
    /// write a block without copying it.
    pub fn into_parts(self) -> (Bytes, Bytes) {
        let mut head = Vec::with_capacity(16);
        match self {
            EncodedDeliverResponse::Status(status) => {
                int32::encode(STATUS, &status, &mut head);
                (head.into(), Bytes::new())
            }
            EncodedDeliverResponse::Block(block) => {
                prost::encoding::encode_key(BLOCK, WireType::LengthDelimited, &mut head);
                prost::encoding::encode_varint(block.len() as u64, &mut head);
                (head.into(), block)
            }
        }
    }
}

impl prost::Message for EncodedDeliverResponse {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        // A oneof member is written even when it holds the default value.
        match self {
            EncodedDeliverResponse::Status(status) => int32::encode(STATUS, status, buf),
            EncodedDeliverResponse::Block(block) => bytes_field::encode(BLOCK, block, buf),
        }
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        match tag {
            STATUS => {
                let mut status = 0;
                int32::merge(wire_type, &mut status, buf, ctx)?;
                *self = EncodedDeliverResponse::Status(status);
            }
            BLOCK => {
                let mut block = Bytes::new();
                bytes_field::merge(wire_type, &mut block, buf, ctx)?;
                *self = EncodedDeliverResponse::Block(block);
            }
            _ => skip_field(wire_type, tag, buf, ctx)?,
        }
        Ok(())
    }

    fn encoded_len(&self) -> usize {
        match self {
            EncodedDeliverResponse::Status(status) => int32::encoded_len(STATUS, status),
            EncodedDeliverResponse::Block(block) => bytes_field::encoded_len(BLOCK, block),
        }
    }

    fn clear(&mut self) {
        *self = EncodedDeliverResponse::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::{Block, BlockData, BlockHeader, Status};
    use crate::orderer::{DeliverResponse, deliver_response};
    use prost::Message;

    fn block() -> Block {
        Block {
            header: Some(BlockHeader {
                number: 7,
                previous_hash: vec![1; 32].into(),
                data_hash: vec![2; 32].into(),
            }),
            data: Some(BlockData {
                data: vec![Bytes::from_static(b"envelope one"), Bytes::new()],
            }),
            metadata: None,
        }
    }

    #[test]
    fn same_bytes_as_the_decoded_message() {
        let block = block();
        let decoded = DeliverResponse {
            r#type: Some(deliver_response::Type::Block(block.clone())),
        };
        let encoded = EncodedDeliverResponse::Block(block.encode_to_vec().into());
        assert_eq!(encoded.encode_to_vec(), decoded.encode_to_vec());
        assert_eq!(
            DeliverResponse::decode(encoded.encode_to_vec().as_slice()).unwrap(),
            decoded
        );

        for status in [Status::Unknown, Status::Success, Status::NotFound] {
            let decoded = DeliverResponse {
                r#type: Some(deliver_response::Type::Status(status as i32)),
            };
            let encoded = EncodedDeliverResponse::Status(status as i32);
            assert_eq!(
                encoded.encode_to_vec(),
                decoded.encode_to_vec(),
                "{status:?}"
            );
        }
    }

    #[test]
    fn parts_make_the_encoding() {
        for response in [
            EncodedDeliverResponse::Block(block().encode_to_vec().into()),
            EncodedDeliverResponse::Block(Bytes::new()),
            EncodedDeliverResponse::Status(Status::NotFound as i32),
        ] {
            let whole = response.encode_to_vec();
            let (head, body) = response.into_parts();
            assert_eq!([head, body].concat(), whole);
        }
    }

    #[test]
    fn decodes_what_a_server_sends() {
        let block = block().encode_to_vec();
        let wire = EncodedDeliverResponse::Block(block.clone().into()).encode_to_vec();
        assert_eq!(
            EncodedDeliverResponse::decode(wire.as_slice()).unwrap(),
            EncodedDeliverResponse::Block(block.into())
        );
    }
}
