//! The standard channel's processor on the fixture channel, with the natively
//! linked core: what Broadcast hands to consensus, and what it refuses.

use super::*;
use crate::client::configupdate::BatchEdits;
use crate::component::{CoreComponent, CoreFault, FaultSink};
use crate::protoutil::{channel_header, now_unix_nanos};
use crate::testkit::*;
use fabric_protos::common::{Payload, SignatureHeader};
use ordering_core::NativeCrypto;
use ordering_core::config::ChannelConfig;

struct NoFaults;

impl FaultSink for NoFaults {
    fn record_fault(&self, _: &CoreComponent, fault: &CoreFault) {
        panic!("unexpected fault: {fault}");
    }
}

fn processor() -> StandardChannel {
    let genesis = solo_genesis();
    let config = ChannelConfig::from_config_block(&genesis, &NativeCrypto).unwrap();
    let validators = ValidatorPool::new(
        &config,
        genesis.into(),
        Bytes::new(),
        Arc::new(CoreComponent::native()),
        Arc::new(NoFaults),
    );
    StandardChannel::new(CHANNEL, Arc::new(validators), orderer0())
}

fn process(processor: &StandardChannel, envelope: &Envelope) -> Result<Message, Rejection> {
    let chdr = channel_header(envelope).unwrap();
    processor.process(&chdr, envelope, now_unix_nanos())
}

#[test]
fn a_normal_message_goes_to_consensus_as_sent() {
    let processor = processor();
    let envelope = tx(&user1(), 1, 100);
    match process(&processor, &envelope).unwrap() {
        Message::Normal {
            envelope: raw,
            config_seq,
        } => {
            assert_eq!(raw, envelope.encode_to_vec());
            assert_eq!(config_seq, 0);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn config_and_orderer_transactions_from_clients_are_refused_before_the_core() {
    let processor = processor();
    for header_type in [HeaderType::Config, HeaderType::OrdererTransaction] {
        let envelope = user1().signed_envelope(
            header_type,
            CHANNEL,
            Bytes::from_static(b"x"),
            std::time::SystemTime::now(),
        );
        let rejection = process(&processor, &envelope).unwrap_err();
        assert_eq!(rejection.status, Status::BadRequest);
        assert_eq!(
            rejection.info,
            "message is of type that cannot be processed directly"
        );
    }
}

#[test]
fn a_message_over_absolute_max_bytes_never_enters_the_core() {
    let processor = processor();
    let envelope = tx(&user1(), 1, 10 * 1024 * 1024);
    let size = envelope.payload.len() + envelope.signature.len();
    let rejection = process(&processor, &envelope).unwrap_err();
    assert_eq!(rejection.status, Status::BadRequest);
    assert_eq!(
        rejection.info,
        format!("message payload is {size} bytes and exceeds maximum allowed 10485760 bytes")
    );
}

#[test]
fn a_config_update_becomes_a_config_envelope_signed_by_the_orderer() {
    let processor = processor();
    let (config_block, _) = processor.validators().config();
    let edits = BatchEdits {
        max_message_count: Some(10),
        ..Default::default()
    };
    let update = batch_update(&config_block, &edits, &orderer_admin());
    let Message::Config {
        envelope,
        update: carried,
        config_seq,
    } = process(&processor, &update).unwrap()
    else {
        panic!("not a config message");
    };
    assert_eq!(
        carried,
        update.encode_to_vec(),
        "the client's update rides along"
    );
    assert_eq!(config_seq, 0);
    let config = Envelope::decode(envelope).unwrap();
    let chdr = channel_header(&config).unwrap();
    assert_eq!(chdr.r#type, HeaderType::Config as i32);
    let payload = Payload::decode(config.payload).unwrap();
    let shdr = SignatureHeader::decode(payload.header.unwrap().signature_header).unwrap();
    assert_eq!(shdr.creator, orderer0().serialized_identity());
}

#[test]
fn a_config_update_the_policy_refuses_is_bad_request() {
    let processor = processor();
    let (config_block, _) = processor.validators().config();
    let edits = BatchEdits {
        max_message_count: Some(10),
        ..Default::default()
    };
    let update = batch_update(&config_block, &edits, &org1_admin());
    let rejection = process(&processor, &update).unwrap_err();
    assert_eq!(rejection.status, Status::BadRequest);
    assert!(
        rejection
            .info
            .contains("policy for [Value]  /Channel/Orderer/BatchSize not satisfied"),
        "{}",
        rejection.info
    );
}
