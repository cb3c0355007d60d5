//! The block header hash, as Fabric computes it (protoutil.BlockHeaderBytes):
//! SHA-256 of DER `SEQUENCE { INTEGER number, OCTET STRING previous_hash,
//! OCTET STRING data_hash }`, the number encoded as a non-negative big integer.

use crate::Crypto;
use fabric_protos::common::BlockHeader;

/// The DER bytes of `header` that Fabric hashes and the orderer signs.
pub fn header_der(header: &BlockHeader) -> Vec<u8> {
    let mut body = Vec::with_capacity(16 + header.previous_hash.len() + header.data_hash.len());
    let be = header.number.to_be_bytes();
    let first = be.iter().position(|&b| b != 0).unwrap_or(be.len() - 1);
    let mut int = be[first..].to_vec();
    if int[0] & 0x80 != 0 {
        int.insert(0, 0); // keep it non-negative in two's complement
    }
    push_tlv(&mut body, 0x02, &int);
    push_tlv(&mut body, 0x04, &header.previous_hash);
    push_tlv(&mut body, 0x04, &header.data_hash);
    let mut out = Vec::with_capacity(body.len() + 4);
    push_tlv(&mut out, 0x30, &body);
    out
}

/// The hash that the next block's `previous_hash` holds.
pub fn header_hash(header: &BlockHeader, crypto: &dyn Crypto) -> [u8; 32] {
    crypto.sha256(&header_der(header))
}

fn push_tlv(out: &mut Vec<u8>, tag: u8, value: &[u8]) {
    out.push(tag);
    let len = value.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let be = (len as u64).to_be_bytes();
        let first = be.iter().position(|&b| b != 0).unwrap_or(7);
        out.push(0x80 | (8 - first) as u8);
        out.extend_from_slice(&be[first..]);
    }
    out.extend_from_slice(value);
}

#[cfg(test)]
mod tests;
