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
        hex::decode("03239b99e8fea5672dd018b27ef441de377930a0dacd6b3fbabe2465d4bbc1cf").unwrap();
    let h = header_hash(&header(0, b"", &data_hash), &NativeCrypto);
    assert_eq!(
        hex::encode(h),
        "935c1299d79afa37b66811cec8d654c6ae6eb547c42ccf66a38e1b489dfdaf22"
    );
}
