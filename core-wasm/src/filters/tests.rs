use super::*;
use crate::config::testkit::creator;
use crate::config::testkit::*;
use crate::crypto::NativeCrypto;
use fabric_protos::common::{Header, SignatureHeader};
use fabric_protos::msp::SerializedIdentity;

const C: &NativeCrypto = &NativeCrypto;
const ENDORSER: i32 = HeaderType::EndorserTransaction as i32;

fn writers_denied() -> Rejection {
    Rejection::forbidden(
        "implicit policy evaluation failed - 0 sub-policies were satisfied, but this policy requires 1 of the 'Writers' sub-policies to be satisfied: permission denied",
    )
}

fn readers_denied() -> Rejection {
    Rejection::forbidden(
        "implicit policy evaluation failed - 0 sub-policies were satisfied, but this policy requires 1 of the 'Readers' sub-policies to be satisfied: permission denied",
    )
}

fn real_envelopes() -> Vec<Vec<u8>> {
    (1..=3)
        .flat_map(|n| block_envelopes(&format!("blocks/mychannel-etcdraft-block-{n}.block")))
        .collect()
}

fn first() -> (Vec<u8>, u64) {
    let env = real_envelopes().remove(0);
    let now = envelope_time_nanos(&env);
    (env, now)
}

fn decode(env: &[u8]) -> Envelope {
    Envelope::decode(env).unwrap()
}

#[test]
fn real_transactions_validate() {
    let config = etcdraft_config();
    let envs = real_envelopes();
    assert_eq!(envs.len(), 6);
    for env in envs {
        let verdict = validate(&config, &env, envelope_time_nanos(&env), C).unwrap();
        assert_eq!(
            verdict,
            Verdict {
                config_seq: 0,
                is_config_update: false
            }
        );
    }
    // Under the later config (sequence 1) as well.
    let later =
        crate::config::ChannelConfig::from_config_block(&read("updates/config-block-1.block"), C)
            .unwrap();
    let (env, now) = first();
    assert_eq!(validate(&later, &env, now, C).unwrap().config_seq, 1);
}

#[test]
fn flipped_payload_byte_is_forbidden() {
    let config = etcdraft_config();
    let (env, now) = first();
    let mut e = decode(&env);
    let mut payload = e.payload.to_vec();
    *payload.last_mut().unwrap() ^= 0x01;
    e.payload = payload.into();
    assert_eq!(
        validate(&config, &e.encode_to_vec(), now, C),
        Err(writers_denied())
    );
}

#[test]
fn high_s_signature_is_forbidden() {
    let config = etcdraft_config();
    let (env, now) = first();
    let mut e = decode(&env);
    e.signature = high_s_twin(&e.signature).into();
    assert_eq!(
        validate(&config, &e.encode_to_vec(), now, C),
        Err(writers_denied())
    );
}

#[test]
fn garbage_signature_is_forbidden() {
    let config = etcdraft_config();
    let (env, now) = first();
    for sig in [&b""[..], b"\x30\x00", b"junk"] {
        let mut e = decode(&env);
        e.signature = sig.to_vec().into();
        assert_eq!(
            validate(&config, &e.encode_to_vec(), now, C),
            Err(writers_denied())
        );
    }
}

/// Rewrites the creator of `env` (the signature no longer matches).
fn with_creator(env: &[u8], edit: impl FnOnce(&mut SerializedIdentity)) -> (Vec<u8>, Vec<u8>) {
    let mut e = decode(env);
    let mut payload = Payload::decode(e.payload.as_ref()).unwrap();
    let header = payload.header.as_mut().unwrap();
    let mut shdr = SignatureHeader::decode(header.signature_header.as_ref()).unwrap();
    let mut sid = SerializedIdentity::decode(shdr.creator.as_ref()).unwrap();
    edit(&mut sid);
    shdr.creator = sid.encode_to_vec().into();
    header.signature_header = shdr.encode_to_vec().into();
    e.payload = payload.encode_to_vec().into();
    (e.encode_to_vec(), shdr.creator.to_vec())
}

#[test]
fn unknown_msp_is_forbidden() {
    let config = etcdraft_config();
    let (env, now) = first();
    let (forged, creator) = with_creator(&env, |sid| sid.mspid = "Org9MSP".into());
    assert_eq!(validate(&config, &forged, now, C), Err(writers_denied()));
    let err = config
        .msps
        .validate_identity(&creator, now, C)
        .unwrap_err()
        .to_string();
    assert_eq!(err, "MSP Org9MSP is not defined on channel");
    // A creator that is not even a certificate: the expiration filter lets it by,
    // the signature filter refuses it.
    let (forged, _) = with_creator(&env, |sid| sid.id_bytes = b"nope".to_vec().into());
    assert_eq!(validate(&config, &forged, now, C), Err(writers_denied()));
}

#[test]
fn expired_creator_is_bad_request() {
    let mut config = etcdraft_config();
    let (env, _) = first();
    let parsed = crate::msp::ParsedIdentity::from_serialized(&creator(&env)).unwrap();
    let not_after = parsed.cert.not_after_unix_nanos;
    let expired = Err(Rejection::bad_request("broadcast client identity expired"));
    assert_eq!(
        validate(&config, &env, not_after, C),
        expired,
        "expired at NotAfter"
    );
    assert_eq!(validate(&config, &env, not_after + 1, C), expired);
    assert!(validate(&config, &env, not_after - 1, C).is_ok());
    // Expired and badly signed: expiration comes first.
    let mut e = decode(&env);
    e.signature = high_s_twin(&e.signature).into();
    assert_eq!(
        validate(&config, &e.encode_to_vec(), not_after + 1, C),
        expired
    );
    // Without the V1_1+ orderer capability Fabric does not check expiry, and its
    // MSP does not look at the clock: the message passes.
    config.orderer_capabilities.clear();
    assert!(validate(&config, &env, not_after + 1, C).is_ok());
}

#[test]
fn creator_validation_is_cached_signatures_are_not() {
    let config = etcdraft_config();
    let (_, now) = first();
    let user = user1();
    let c = &CountingCrypto::default();
    let env = |data: &[u8]| user.envelope("mychannel", ENDORSER, now, data);
    assert!(validate(&config, &env(b"one"), now, c).is_ok());
    assert_eq!(c.verifies(), 2, "the certificate chain, then the signature");
    for (n, data) in [&b"two"[..], b"three"].into_iter().enumerate() {
        assert!(validate(&config, &env(data), now, c).is_ok());
        assert_eq!(c.verifies(), 3 + n, "the signature only");
    }
    // A known creator's bad signature is still refused.
    let mut e = decode(&env(b"four"));
    e.signature = sign(&admin1().key, &e.payload).into();
    assert_eq!(
        validate(&config, &e.encode_to_vec(), now, c),
        Err(writers_denied())
    );
    assert_eq!(c.verifies(), 5);
    // Expiry is still checked per message, against `now`.
    let not_after = config
        .msps
        .validate_identity(&user.creator(), now, c)
        .unwrap()
        .not_after_unix_nanos;
    assert_eq!(
        validate(&config, &env(b"five"), not_after, c),
        Err(Rejection::bad_request(ERR_IDENTITY_EXPIRED))
    );
    // Deliver shares the cache.
    let seek = user.envelope("mychannel", HeaderType::DeliverSeekInfo as i32, now, b"");
    let before = c.verifies();
    assert_eq!(authorize_deliver(&config, &seek, now, c), Ok(not_after));
    assert_eq!(c.verifies(), before + 1);
    // Another config (or a clone) starts with an empty cache.
    let other = config.clone();
    assert!(validate(&other, &env(b"six"), now, c).is_ok());
    assert_eq!(c.verifies(), before + 3);
    assert_eq!(config.msps.cached_identities(), 1);
}

#[test]
fn invalid_creators_are_not_cached() {
    let config = etcdraft_config();
    let (env, now) = first();
    let c = &CountingCrypto::default();
    // A certificate whose signature is not the CA's: the chain is checked again
    // on every message, and fails every time.
    let (forged, _) = with_creator(&env, |sid| {
        let mut der = crate::msp::pem_decode(&sid.id_bytes).unwrap();
        let last = der.len() - 3;
        der[last] ^= 0x01;
        sid.id_bytes = pem("CERTIFICATE", &der).into();
    });
    for round in 1..=3 {
        assert_eq!(validate(&config, &forged, now, c), Err(writers_denied()));
        assert_eq!(c.verifies(), round, "one chain check per message");
    }
    assert_eq!(config.msps.cached_identities(), 0);
}

#[test]
fn absolute_max_bytes() {
    let mut config = etcdraft_config();
    let (env, now) = first();
    let e = decode(&env);
    let size = (e.payload.len() + e.signature.len()) as u32;
    config.batch_size.absolute_max_bytes = size;
    assert!(
        validate(&config, &env, now, C).is_ok(),
        "exactly AbsoluteMaxBytes is accepted"
    );
    config.batch_size.absolute_max_bytes = size - 1;
    assert_eq!(
        validate(&config, &env, now, C),
        Err(Rejection::bad_request(format!(
            "message payload is {size} bytes and exceeds maximum allowed {} bytes",
            size - 1
        )))
    );
    // The size check comes before the signature check.
    let mut bad = e.clone();
    bad.signature = high_s_twin(&bad.signature).into();
    assert_eq!(
        validate(&config, &bad.encode_to_vec(), now, C)
            .unwrap_err()
            .status,
        Status::BadRequest
    );
}

#[test]
fn malformed_envelopes_are_bad_request() {
    let config = etcdraft_config();
    let (_, now) = first();
    let header_not_set = Err(Rejection::bad_request(
        "could not determine channel ID: header not set",
    ));
    assert_eq!(validate(&config, &[], now, C), header_not_set);
    let no_header = Envelope {
        payload: Payload {
            header: None,
            data: b"x".to_vec().into(),
        }
        .encode_to_vec()
        .into(),
        signature: b"sig".to_vec().into(),
    };
    assert_eq!(
        validate(&config, &no_header.encode_to_vec(), now, C),
        header_not_set
    );
    let no_chdr = Envelope {
        payload: Payload {
            header: Some(Header::default()),
            data: Default::default(),
        }
        .encode_to_vec()
        .into(),
        signature: Default::default(),
    };
    assert_eq!(
        validate(&config, &no_chdr.encode_to_vec(), now, C),
        Err(Rejection::bad_request(
            "could not determine channel ID: channel header not set"
        ))
    );
    let bad_chdr = Envelope {
        payload: Payload {
            header: Some(Header {
                channel_header: b"\xff\xff".to_vec().into(),
                signature_header: Default::default(),
            }),
            data: Default::default(),
        }
        .encode_to_vec()
        .into(),
        signature: Default::default(),
    };
    let r = validate(&config, &bad_chdr.encode_to_vec(), now, C).unwrap_err();
    assert_eq!(r.status, Status::BadRequest);
    assert!(
        r.info
            .starts_with("could not determine channel ID: error unmarshalling channel header"),
        "{r}"
    );
    for junk in [&b"\xff\xff\xff"[..], b"\x0a\x05ab"] {
        let r = validate(&config, junk, now, C).unwrap_err();
        assert_eq!(r.status, Status::BadRequest, "{r}");
    }
    // A signature header that does not decode.
    let user = user1();
    let mut payload =
        Payload::decode(payload(user.creator(), "mychannel", ENDORSER, now, b"d").as_slice())
            .unwrap();
    payload.header.as_mut().unwrap().signature_header = b"\xff\xff".to_vec().into();
    let env = Envelope {
        payload: payload.encode_to_vec().into(),
        signature: Default::default(),
    };
    let r = validate(&config, &env.encode_to_vec(), now, C).unwrap_err();
    assert_eq!(r.status, Status::BadRequest);
    assert!(
        r.info.starts_with(
            "could not convert message to signedData: GetSignatureHeaderFromBytes failed, err"
        ),
        "{r}"
    );
}

#[test]
fn config_and_orderer_transaction_types_are_bad_request() {
    let config = etcdraft_config();
    let (_, now) = first();
    let genesis_env = &block_envelopes("blocks/mychannel-etcdraft-genesis.block")[0];
    let expected = Err(Rejection::bad_request(
        "message is of type that cannot be processed directly",
    ));
    assert_eq!(validate(&config, genesis_env, now, C), expected);
    let env = orderer_admin().envelope(
        "mychannel",
        HeaderType::OrdererTransaction as i32,
        now,
        b"x",
    );
    assert_eq!(validate(&config, &env, now, C), expected);
}

#[test]
fn config_updates_pass_the_filters_first() {
    let config = etcdraft_config();
    let env = read("updates/update-batchsize-signed-by-orderer-admin.env");
    let now = envelope_time_nanos(&env);
    assert_eq!(
        validate(&config, &env, now, C),
        Ok(Verdict {
            config_seq: 0,
            is_config_update: true
        })
    );
    // The filters run first, as in Fabric.
    let mut e = decode(&env);
    e.signature = high_s_twin(&e.signature).into();
    let r = validate(&config, &e.encode_to_vec(), now, C).unwrap_err();
    assert_eq!(r.status, Status::Forbidden);
    assert!(r.info.starts_with("config update for existing channel did not pass initial checks: implicit policy evaluation failed"), "{r}");
}

#[test]
fn other_channel_is_bad_request() {
    let config = etcdraft_config();
    let (_, now) = first();
    let env = user1().envelope("otherchannel", ENDORSER, now, b"x");
    assert_eq!(
        validate(&config, &env, now, C),
        Err(Rejection::bad_request(
            "channel creation request not allowed because the orderer system channel is not defined"
        ))
    );
}

#[test]
fn freshly_signed_messages() {
    let config = etcdraft_config();
    let (_, now) = first();
    // Every identity of the channel may write, whatever its role; any normal type
    // (including unknown numbers) is ordered.
    for signer in [user1(), admin1(), peer0(), orderer_admin(), orderer0()] {
        for header_type in [
            ENDORSER,
            HeaderType::Message as i32,
            42,
            HeaderType::DeliverSeekInfo as i32,
        ] {
            let env = signer.envelope("mychannel", header_type, now, b"hello");
            assert_eq!(
                validate(&config, &env, now, C),
                Ok(Verdict {
                    config_seq: 0,
                    is_config_update: false
                }),
                "{} type {header_type}",
                signer.msp_id
            );
        }
    }
    // User1's certificate with Admin's key.
    let mut forger = user1();
    forger.key = admin1().key;
    let env = forger.envelope("mychannel", ENDORSER, now, b"hello");
    assert_eq!(validate(&config, &env, now, C), Err(writers_denied()));
}

#[test]
fn maintenance_mode() {
    let mut config = etcdraft_config();
    config.consensus.maintenance = true;
    let (env, now) = first();
    assert_eq!(
        validate(&config, &env, now, C),
        Err(Rejection::new(
            Status::ServiceUnavailable,
            "normal transactions are rejected: maintenance mode"
        ))
    );
    // Deliver in maintenance: /Channel/Orderer/Readers, orderer orgs only.
    let user = user1().envelope("mychannel", HeaderType::DeliverSeekInfo as i32, now, b"");
    assert_eq!(
        authorize_deliver(&config, &user, now, C),
        Err(readers_denied())
    );
    let admin = orderer_admin().envelope("mychannel", HeaderType::DeliverSeekInfo as i32, now, b"");
    assert!(authorize_deliver(&config, &admin, now, C).unwrap() > now);
}

#[test]
fn deliver_access() {
    let config = etcdraft_config();
    let (_, now) = first();
    let seek = HeaderType::DeliverSeekInfo as i32;
    for signer in [user1(), admin1(), orderer0()] {
        let env = signer.envelope("mychannel", seek, now, b"");
        assert!(
            authorize_deliver(&config, &env, now, C).unwrap() > now,
            "session bounded by NotAfter"
        );
    }
    let env = user1().envelope("mychannel", seek, now, b"");
    // Bad signatures.
    let mut e = decode(&env);
    e.signature = high_s_twin(&e.signature).into();
    assert_eq!(
        authorize_deliver(&config, &e.encode_to_vec(), now, C),
        Err(readers_denied())
    );
    let mut e = decode(&env);
    let mut p = e.payload.to_vec();
    *p.last_mut().unwrap() ^= 1;
    e.payload = p.into();
    assert_eq!(
        authorize_deliver(&config, &e.encode_to_vec(), now, C),
        Err(readers_denied())
    );
    // Unknown MSP.
    let (forged, _) = with_creator(&env, |sid| sid.mspid = "Org9MSP".into());
    assert_eq!(
        authorize_deliver(&config, &forged, now, C),
        Err(readers_denied())
    );
    // Expired: FORBIDDEN, with Fabric's session text.
    let not_after = crate::msp::ParsedIdentity::from_serialized(&user1().creator())
        .unwrap()
        .cert
        .not_after_unix_nanos;
    assert!(authorize_deliver(&config, &env, not_after, C).is_ok());
    assert_eq!(
        authorize_deliver(&config, &env, not_after + 90_500_000_000, C),
        Err(Rejection::forbidden(
            "deliver client identity expired 1m30.5s before"
        ))
    );
    // Malformed.
    assert_eq!(
        authorize_deliver(&config, &[], now, C).unwrap_err().status,
        Status::BadRequest
    );
}

/// The fixture config with `/Channel/<name>` replaced (or removed with `None`).
fn with_channel_policy(
    name: &str,
    policy: Option<fabric_protos::common::ConfigPolicy>,
) -> ChannelConfig {
    let mut config = etcdraft_config().config;
    let policies = &mut config.channel_group.as_mut().unwrap().policies;
    match policy {
        Some(p) => policies.insert(name.into(), p),
        None => policies.remove(name),
    };
    ChannelConfig::from_config("mychannel", &config, C).unwrap()
}

#[test]
fn the_channel_policies_are_evaluated() {
    let (_, now) = first();
    let seek = HeaderType::DeliverSeekInfo as i32;
    // /Channel/Writers and /Channel/Readers as the orderer org's Admins (a
    // signature policy: OR('OrdererMSP.admin')).
    let admins =
        etcdraft_config().config.channel_group.unwrap().groups["Orderer"].groups["OrdererOrg"]
            .policies["Admins"]
            .clone();
    let config = with_channel_policy("Writers", Some(admins.clone()));
    let not_admin = "signature set did not satisfy policy: permission denied";
    let env = user1().envelope("mychannel", ENDORSER, now, b"x");
    assert_eq!(
        validate(&config, &env, now, C),
        Err(Rejection::forbidden(not_admin))
    );
    let env = orderer_admin().envelope("mychannel", ENDORSER, now, b"x");
    assert!(validate(&config, &env, now, C).is_ok());
    let config = with_channel_policy("Readers", Some(admins));
    let env = user1().envelope("mychannel", seek, now, b"");
    assert_eq!(
        authorize_deliver(&config, &env, now, C),
        Err(Rejection::forbidden(not_admin))
    );
    let env = orderer_admin().envelope("mychannel", seek, now, b"");
    assert!(authorize_deliver(&config, &env, now, C).is_ok());
    // A policy missing from the config: Fabric's "could not find policy".
    let config = with_channel_policy("Writers", None);
    let env = user1().envelope("mychannel", ENDORSER, now, b"x");
    assert_eq!(
        validate(&config, &env, now, C),
        Err(Rejection::bad_request(
            "could not find policy /Channel/Writers"
        ))
    );
    let config = with_channel_policy("Readers", None);
    let env = user1().envelope("mychannel", seek, now, b"");
    assert_eq!(
        authorize_deliver(&config, &env, now, C),
        Err(Rejection::bad_request(
            "could not find policy /Channel/Readers"
        ))
    );
}

#[test]
fn go_duration_strings() {
    for (nanos, text) in [
        (0, "0s"),
        (5, "5ns"),
        (1_500, "1.5µs"),
        (2_000_000, "2ms"),
        (1_000_000_000, "1s"),
        (90_500_000_000, "1m30.5s"),
        (3_600_000_000_000, "1h0m0s"),
        (3_723_000_000_001, "1h2m3.000000001s"),
    ] {
        assert_eq!(go_duration_string(nanos), text);
    }
}
