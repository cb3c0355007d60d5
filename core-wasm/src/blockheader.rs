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
mod tests {
    use super::*;
    use crate::NativeCrypto;

    fn header(number: u64, prev: &[u8], data: &[u8]) -> BlockHeader {
        BlockHeader {
            number,
            previous_hash: prev.to_vec().into(),
            data_hash: data.to_vec().into(),
        }
    }

    #[test]
    fn matches_fabric_example() {
        let der = header_der(&header(1, b"foo", b"bar"));
        assert_eq!(
            hex::encode(der),
            "300d020101040366 6f6f0403626172".replace(' ', "")
        );
    }

    #[test]
    fn empty_hash_and_zero_number() {
        assert_eq!(
            hex::encode(header_der(&header(0, b"", b""))),
            "3007020100040004 00".replace(' ', "")
        );
    }

    #[test]
    fn large_numbers_stay_positive() {
        let der = header_der(&header(u64::MAX, b"", b""));
        assert_eq!(&der[2..5], &[0x02, 0x09, 0x00]);
        let der = header_der(&header(128, b"", b""));
        assert_eq!(&der[2..6], &[0x02, 0x02, 0x00, 0x80]);
    }

    #[test]
    fn long_form_length_for_big_fields() {
        let der = header_der(&header(1, &[7u8; 200], b""));
        assert_eq!(&der[..3], &[0x30, 0x81, 0xd0]);
    }

    #[test]
    fn fixture_genesis_header_hash() {
        let data_hash =
            hex::decode("03239b99e8fea5672dd018b27ef441de377930a0dacd6b3fbabe2465d4bbc1cf")
                .unwrap();
        let h = header_hash(&header(0, b"", &data_hash), &NativeCrypto);
        assert_eq!(
            hex::encode(h),
            "935c1299d79afa37b66811cec8d654c6ae6eb547c42ccf66a38e1b489dfdaf22"
        );
    }
}
