use super::*;
use crate::crypto::NativeCrypto;
use fabric_protos::common::Envelope;

fn env(payload: &[u8], signature: &[u8]) -> Vec<u8> {
    Envelope {
        payload: payload.to_vec().into(),
        signature: signature.to_vec().into(),
    }
    .encode_to_vec()
}

fn marshal(raw: &[u8]) -> Result<Vec<u8>, WireError> {
    marshal_envelope(Bytes::copy_from_slice(raw)).map(|e| e.data.to_vec())
}

#[test]
fn canonical_envelope_is_shared_not_copied() {
    let raw = Bytes::from(env(b"payload", b"sig"));
    let ordered = marshal_envelope(raw.clone()).unwrap();
    assert_eq!(ordered.data, raw);
    assert_eq!(ordered.data.as_ptr(), raw.as_ptr());
    assert_eq!(ordered.size_bytes(), 10);
}

#[test]
fn fields_are_put_in_order() {
    // signature first, then payload.
    let raw = [0x12, 0x01, b's', 0x0a, 0x02, b'p', b'p'];
    assert_eq!(marshal(&raw).unwrap(), env(b"pp", b"s"));
}

#[test]
fn last_occurrence_wins() {
    let raw = [0x0a, 0x01, b'a', 0x12, 0x01, b's', 0x0a, 0x01, b'b'];
    let ordered = marshal_envelope(Bytes::copy_from_slice(&raw)).unwrap();
    assert_eq!(ordered.data.as_ref(), env(b"b", b"s").as_slice());
    assert_eq!(ordered.size_bytes(), 2);
}

#[test]
fn empty_fields_are_dropped() {
    assert_eq!(
        marshal(&[0x0a, 0x00, 0x12, 0x01, b's']).unwrap(),
        env(b"", b"s")
    );
    assert_eq!(marshal(&[]).unwrap(), Vec::<u8>::new());
}

#[test]
fn non_minimal_tags_and_lengths_are_normalised() {
    // tag 0x0a as two bytes, length 1 as two bytes.
    let raw = [0x8a, 0x00, 0x81, 0x00, b'p'];
    assert_eq!(marshal(&raw).unwrap(), env(b"p", b""));
}

#[test]
fn unknown_fields_are_kept_after_known_fields() {
    // field 5 varint 7, payload, field 3 bytes "xy", signature
    let raw = [
        0x28, 0x07, 0x0a, 0x01, b'p', 0x1a, 0x02, b'x', b'y', 0x12, 0x01, b's',
    ];
    let mut expected = env(b"p", b"s");
    expected.extend_from_slice(&[0x28, 0x07, 0x1a, 0x02, b'x', b'y']);
    assert_eq!(marshal(&raw).unwrap(), expected);
}

#[test]
fn unknown_field_tags_are_re_encoded_minimally_values_raw() {
    // field 5 varint with a non-minimal tag and a non-minimal value.
    let raw = [0xa8, 0x00, 0x87, 0x00];
    assert_eq!(marshal(&raw).unwrap(), vec![0x28, 0x87, 0x00]);
}

#[test]
fn known_field_with_other_wire_type_is_unknown() {
    // field 1 as varint 5: not the payload.
    let raw = [0x08, 0x05, 0x12, 0x01, b's'];
    let ordered = marshal_envelope(Bytes::copy_from_slice(&raw)).unwrap();
    assert_eq!(ordered.data.as_ref(), &[0x12, 0x01, b's', 0x08, 0x05]);
    assert_eq!(ordered.size_bytes(), 1);
}

#[test]
fn unknown_groups_fixed_and_nested_are_skipped_whole() {
    // field 4 group { field 1 fixed32, field 2 group { field 3 fixed64 } }
    let mut raw = vec![0x23, 0x0d, 1, 2, 3, 4, 0x13, 0x19];
    raw.extend_from_slice(&[9; 8]);
    raw.extend_from_slice(&[0x14, 0x24]);
    let mut input = env(b"p", b"");
    input.extend_from_slice(&raw);
    assert_eq!(marshal(&input).unwrap(), input);
}

#[test]
fn malformed_input_is_an_error() {
    for raw in [
        &[0x0a, 0x05, b'p'][..], // truncated bytes
        &[0x0a][..],             // truncated length
        &[0x02, 0x00][..],       // field number 0
        &[0x0c][..],             // end group at top level
        &[0x0b, 0x0a, 0x00][..], // unterminated group
        &[0x0b, 0x14][..],       // mismatching end group
        &[0x0e, 0x00][..],       // wire type 6
        &[0x2d, 0x00][..],       // truncated fixed32
        &[
            0x28, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02,
        ][..], // overflow
    ] {
        assert!(marshal(raw).is_err(), "{raw:02x?}");
    }
}

#[test]
fn deep_groups_are_refused() {
    let mut raw = vec![0x0b; 200];
    raw.extend(vec![0x0c; 200]);
    assert!(marshal(&raw).is_err());
    let mut raw = vec![0x1b; 50];
    raw.extend(vec![0x1c; 50]);
    assert_eq!(marshal(&raw).unwrap(), raw);
}

/// Without unknown fields, our re-marshal equals prost's decode + encode.
#[test]
fn agrees_with_prost_on_known_fields() {
    let cases: Vec<Vec<u8>> = vec![
        env(b"abc", b"de"),
        env(b"", b"de"),
        env(&[1u8; 300], &[2u8; 70]),
        [env(b"x", b""), env(b"", b"y"), env(b"z", b"")].concat(),
        vec![0x12, 0x80, 0x01]
            .into_iter()
            .chain([5u8; 128])
            .chain([0x0a, 0x00])
            .collect(),
    ];
    for raw in cases {
        let prost = Envelope::decode(raw.as_slice()).unwrap().encode_to_vec();
        assert_eq!(marshal(&raw).unwrap(), prost);
    }
}

fn ordered(raw: Vec<u8>) -> OrderedEnvelope {
    marshal_envelope(Bytes::from(raw)).unwrap()
}

#[test]
fn builds_header_data_and_chain() {
    let crypto = NativeCrypto;
    let mut builder = BlockBuilder::new(5, vec![0xaa; 32]);
    let batch = vec![ordered(env(b"one", b"s1")), ordered(env(b"two", b"s2"))];
    let built = builder.build(&batch, &crypto);
    assert_eq!(built.number, 5);

    let block = Block::decode(built.encoded.as_slice()).unwrap();
    assert!(block.metadata.is_none());
    let header = block.header.unwrap();
    assert_eq!(header.number, 5);
    assert_eq!(header.previous_hash.as_ref(), &[0xaa; 32]);
    let data = block.data.unwrap().data;
    assert_eq!(data, vec![batch[0].data.clone(), batch[1].data.clone()]);
    let concat = [batch[0].data.to_vec(), batch[1].data.to_vec()].concat();
    assert_eq!(header.data_hash.as_ref(), &crypto.sha256(&concat));
    assert_eq!(built.header_der, header_der(&header));

    assert_eq!(builder.next_number(), 6);
    assert_eq!(builder.previous_hash(), &header_hash(&header, &crypto));
    let next = builder.build(&batch[..1], &crypto);
    let next_header = Block::decode(next.encoded.as_slice())
        .unwrap()
        .header
        .unwrap();
    assert_eq!(next.number, 6);
    assert_eq!(
        next_header.previous_hash.as_ref(),
        &header_hash(&header, &crypto)
    );
}

#[test]
fn after_tip_links_to_its_hash() {
    let tip = BlockHeader {
        number: 9,
        previous_hash: vec![1u8; 32].into(),
        data_hash: vec![2u8; 32].into(),
    };
    let builder = BlockBuilder::after(&tip, &NativeCrypto);
    assert_eq!(builder.next_number(), 10);
    assert_eq!(builder.previous_hash(), &header_hash(&tip, &NativeCrypto));
}

/// Appending an encoded metadata field to `encoded` gives the full block, as the
/// host does after signing.
#[test]
fn metadata_can_be_appended() {
    let mut builder = BlockBuilder::new(1, vec![0u8; 32]);
    let built = builder.build(&[ordered(env(b"p", b"s"))], &NativeCrypto);
    let metadata = fabric_protos::common::BlockMetadata {
        metadata: vec![Bytes::from_static(b"m"); 5],
    };
    let mut full = built.encoded.clone();
    full.push(0x1a);
    full.extend(metadata.encode_length_delimited_to_vec());
    let block = Block::decode(full.as_slice()).unwrap();
    assert_eq!(block.metadata.as_ref(), Some(&metadata));
    assert_eq!(block.encode_to_vec(), full);
}
