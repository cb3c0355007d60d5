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
    /// A single-node etcdraft channel, ordered by the solo chain: we write Fabric's
    /// `etcdraft.BlockMetadata` as a fresh single-node Fabric Raft chain does, so the
    /// ledger stays readable by Raft tooling.
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

    /// From this block on, LAST_CONFIG points at config block `number`.
    pub fn set_last_config(&mut self, number: u64) {
        self.last_config = number;
    }

    /// Appends signed metadata to a block the core built; returns the complete block.
    /// The consenter's metadata is `consenter_metadata`, or by default the channel's.
    pub fn finish(&self, block: &CoreBlock, consenter_metadata: Option<Bytes>) -> Bytes {
        let value = OrdererBlockMetadata {
            last_config: Some(LastConfig {
                index: self.last_config,
            }),
            consenter_metadata: Metadata {
                value: consenter_metadata.unwrap_or_else(|| self.consenter_value(block.number)),
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
                    // Fabric's single node has two Raft entries (bootstrap and
                    // leader election) before block 1, then one per block.
                    raft_index: number + 2,
                }
                .encode_to_vec()
                .into()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fabric_protos::common::{Block, SignatureHeader};
    use ordering_core::blockheader::header_der;
    use ordering_core::{Crypto, NativeCrypto};
    use std::path::PathBuf;

    fn fabric(path: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../testdata/fabric")
            .join(path)
    }

    fn slot(block: &Block, i: usize) -> Bytes {
        block.metadata.as_ref().unwrap().metadata[i].clone()
    }

    /// Our metadata for Fabric's block 1 equals the real orderer's, except the
    /// signature itself (fresh nonce); the signature verifies with orderer0's key.
    #[test]
    fn metadata_matches_a_block_cut_by_fabric() {
        let raw = std::fs::read(fabric("blocks/mychannel-etcdraft-block-1.block")).unwrap();
        let fabric_block = Block::decode(Bytes::from(raw)).unwrap();
        let header = fabric_block.header.clone().unwrap();
        let core_block = CoreBlock {
            number: header.number,
            is_config: false,
            header_der: header_der(&header),
            encoded: Block {
                metadata: None,
                ..fabric_block.clone()
            }
            .encode_to_vec(),
        };
        let msp =
            fabric("crypto/ordererOrganizations/example.com/orderers/orderer0.example.com/msp");
        let signer = Arc::new(Signer::from_msp_dir(&msp, "OrdererMSP").unwrap());
        let writer = BlockWriter::new(
            signer.clone(),
            0,
            ConsenterMetadata::EtcdRaft {
                consenter_ids: vec![1],
            },
        );
        let ours = Block::decode(writer.finish(&core_block, None)).unwrap();

        assert_eq!(ours.header, fabric_block.header);
        assert_eq!(ours.data, fabric_block.data);
        let (mine, theirs) = (
            Metadata::decode(slot(&ours, 0)).unwrap(),
            Metadata::decode(slot(&fabric_block, 0)).unwrap(),
        );
        assert_eq!(
            mine.value, theirs.value,
            "OrdererBlockMetadata byte for byte"
        );
        for i in 1..5 {
            assert_eq!(slot(&ours, i), slot(&fabric_block, i), "metadata slot {i}");
        }
        let sig = &mine.signatures[0];
        let shdr = SignatureHeader::decode(sig.signature_header.clone()).unwrap();
        assert_eq!(shdr.creator, signer.serialized_identity());
        let theirs_shdr =
            SignatureHeader::decode(theirs.signatures[0].signature_header.clone()).unwrap();
        assert_eq!(
            shdr.creator, theirs_shdr.creator,
            "same orderer identity as Fabric's"
        );
        let mut signed = mine.value.to_vec();
        signed.extend_from_slice(&sig.signature_header);
        signed.extend_from_slice(&core_block.header_der);
        let key = signer.verifying_key().to_encoded_point(false);
        assert!(NativeCrypto.verify_p256(key.as_bytes(), &signed, &sig.signature));
    }
}
