//! Completes the blocks the core cuts, as Fabric's multichannel BlockWriter does:
//! the SIGNATURES slot carries `OrdererBlockMetadata{last_config, consenter_metadata}`
//! signed by the orderer over `value || signature_header || header DER`, the
//! LAST_CONFIG slot `Metadata{LastConfig}`, and the other three slots stay empty.

use crate::component::CoreBlock;
use crate::identity::Signer;
use bytes::{BufMut, Bytes, BytesMut};
use fabric_protos::common::{
    BlockMetadata, LastConfig, Metadata, MetadataSignature, OrdererBlockMetadata,
};
use prost::Message;
use std::sync::Arc;

/// `common.Block.metadata` is field 3, length-delimited.
const BLOCK_METADATA_TAG: u8 = 3 << 3 | 2;

pub struct BlockWriter {
    signer: Arc<Signer>,
    last_config: u64,
    consenter_metadata: ConsenterMetadata,
}

/// What the consenter records in each block (`OrdererBlockMetadata.consenter_metadata`).
pub enum ConsenterMetadata {
    /// Solo writes nothing.
    Solo,
    /// A single-node etcdraft channel, ordered by the solo chain: we keep Fabric's
    /// `etcdraft.BlockMetadata` shape so the ledger stays readable by Raft tooling.
    EtcdRaft { consenter_ids: Vec<u64> },
}

impl BlockWriter {
    pub fn new(
        signer: Arc<Signer>,
        last_config: u64,
        consenter_metadata: ConsenterMetadata,
    ) -> Self {
        BlockWriter {
            signer,
            last_config,
            consenter_metadata,
        }
    }

    /// Appends signed metadata to a block the core built; returns the complete block.
    pub fn finish(&self, block: &CoreBlock) -> Bytes {
        let value = OrdererBlockMetadata {
            last_config: Some(LastConfig {
                index: self.last_config,
            }),
            consenter_metadata: Metadata {
                value: self.consenter_value(block.number),
                signatures: vec![],
            }
            .encode_to_vec()
            .into(),
        }
        .encode_to_vec();
        let signature_header = self.signer.new_signature_header().encode_to_vec();
        let mut signed =
            Vec::with_capacity(value.len() + signature_header.len() + block.header_der.len());
        signed.extend_from_slice(&value);
        signed.extend_from_slice(&signature_header);
        signed.extend_from_slice(&block.header_der);
        let signature = self.signer.sign(&signed);

        let signatures = Metadata {
            value: value.into(),
            signatures: vec![MetadataSignature {
                signature_header: signature_header.into(),
                signature: signature.into(),
                identifier_header: Bytes::new(),
            }],
        };
        let last_config = Metadata {
            value: LastConfig {
                index: self.last_config,
            }
            .encode_to_vec()
            .into(),
            signatures: vec![],
        };
        let metadata = BlockMetadata {
            metadata: vec![
                signatures.encode_to_vec().into(),
                last_config.encode_to_vec().into(),
                Bytes::new(),
                Bytes::new(),
                Bytes::new(),
            ],
        };
        // The core's encoding ends before field 3, so appending the metadata field
        // gives exactly the canonical encoding of the whole block.
        let len = metadata.encoded_len();
        let mut out = BytesMut::with_capacity(block.encoded.len() + len + 11);
        out.put_slice(&block.encoded);
        out.put_u8(BLOCK_METADATA_TAG);
        prost::encoding::encode_varint(len as u64, &mut out);
        metadata.encode(&mut out).expect("capacity reserved");
        out.freeze()
    }

    fn consenter_value(&self, number: u64) -> Bytes {
        match &self.consenter_metadata {
            ConsenterMetadata::Solo => Bytes::new(),
            ConsenterMetadata::EtcdRaft { consenter_ids } => {
                fabric_protos::orderer::etcdraft::BlockMetadata {
                    consenter_ids: consenter_ids.clone(),
                    next_consenter_id: consenter_ids.iter().max().map_or(1, |m| m + 1),
                    raft_index: number,
                }
                .encode_to_vec()
                .into()
            }
        }
    }
}
