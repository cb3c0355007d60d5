use std::sync::Arc;

use fabric_protos::msp::{FabricMspConfig, MspConfig};
use prost::Message;

use super::cache::{IdentityCache, key_order};
use super::pem::base64_decode;
use super::signature::P256_HALF_ORDER;
use super::*;
use crate::config::testkit::*;
use crate::crypto::{Crypto, NativeCrypto};

const C: &NativeCrypto = &NativeCrypto;

fn manager() -> MspManager {
    etcdraft_config().msps
}

/// A time within every fixture certificate's validity: block 1's transaction time.
fn now() -> u64 {
    envelope_time_nanos(&block_envelopes("blocks/mychannel-etcdraft-block-1.block")[0])
}

#[test]
fn creators_of_real_transactions_are_valid() {
    let m = manager();
    for n in 1..=3 {
        for env in block_envelopes(&format!("blocks/mychannel-etcdraft-block-{n}.block")) {
            let id = m
                .validate_identity(&creator(&env), envelope_time_nanos(&env), C)
                .unwrap();
            assert_eq!(id.msp_id, "Org1MSP");
            assert_eq!(id.organizational_units, vec!["client"]);
            assert_eq!(id.public_key.len(), 65);
            assert_eq!(id.public_key[0], 4);
        }
    }
}

#[test]
fn fixture_identities_of_each_role_are_valid() {
    let m = manager();
    for (signer, ou) in [
        (user1(), "client"),
        (admin1(), "admin"),
        (peer0(), "peer"),
        (orderer_admin(), "admin"),
        (orderer0(), "orderer"),
    ] {
        let id = m.validate_identity(&signer.creator(), now(), C).unwrap();
        assert_eq!(id.msp_id, signer.msp_id);
        assert_eq!(id.organizational_units, vec![ou]);
        // The key in the certificate is the key of the keystore.
        let expected = signer.key.verifying_key().to_encoded_point(false);
        assert_eq!(id.public_key, expected.as_bytes());
    }
}

#[test]
fn unknown_msp() {
    let err = manager()
        .validate_identity(&serialized("Org9MSP", &user1().cert_pem), now(), C)
        .unwrap_err()
        .to_string();
    assert_eq!(err, "MSP Org9MSP is not defined on channel");
}

#[test]
fn certificate_of_another_msp() {
    let err = manager()
        .validate_identity(&serialized("OrdererMSP", &user1().cert_pem), now(), C)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("could not obtain certification chain: the supplied identity is not valid: x509: certificate signed by unknown authority"),
        "{err}"
    );
}

#[test]
fn malformed_identities() {
    let m = manager();
    let err = m
        .validate_identity(b"\xff\xff\xff", now(), C)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("could not deserialize a SerializedIdentity"),
        "{err}"
    );
    let err = m
        .validate_identity(&serialized("Org1MSP", b"not a pem"), now(), C)
        .unwrap_err()
        .to_string();
    assert_eq!(err, "could not decode the PEM structure");
    let err = m
        .validate_identity(
            &serialized("Org1MSP", &pem("CERTIFICATE", b"\x30\x03\x02\x01\x01")),
            now(),
            C,
        )
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("parseCertificate failed"), "{err}");
}

#[test]
fn ca_certificate_cannot_be_an_identity() {
    let err = manager()
        .validate_identity(&serialized("Org1MSP", &org1_ca_pem()), now(), C)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("Certificate Authority equals true cannot be used as an identity"),
        "{err}"
    );
}

#[test]
fn expiry_is_checked_at_now_only_by_validate_identity() {
    let m = manager();
    let user = user1();
    let parsed = ParsedIdentity::from_serialized(&user.creator()).unwrap();
    let after = parsed.cert.not_after_unix_nanos + 1;
    let err = m
        .validate_identity(&user.creator(), after, C)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("certificate has expired or is not yet valid: current time"),
        "{err}"
    );
    let before = parsed.cert.not_before_unix_nanos - 1;
    assert!(m.validate_identity(&user.creator(), before, C).is_err());
    // Fabric's MSP itself does not look at the clock.
    assert!(m.validate_parsed(&parsed, C).is_ok());
    assert_eq!(
        m.validate_parsed(&parsed, C).unwrap().not_after_unix_nanos,
        parsed.cert.not_after_unix_nanos
    );
}

#[test]
fn identity_cache_is_bounded_and_keeps_answers() {
    let mut m = manager();
    m.cache.capacity = Some(2);
    let c = &CountingCrypto::default();
    let signers = [user1(), admin1(), peer0()];
    for signer in &signers {
        m.validate_identity(&signer.creator(), now(), c).unwrap();
    }
    assert_eq!(c.verifies(), 3);
    assert_eq!(
        m.cached_identities(),
        1,
        "cleared when full, then Peer0 added"
    );
    // Cached or not, the answers are the same.
    for signer in &signers {
        let id = m.validate_identity(&signer.creator(), now(), c).unwrap();
        assert_eq!(
            id,
            manager()
                .validate_identity(&signer.creator(), now(), C)
                .unwrap()
        );
    }
    // User1 fills the cache, Admin1 clears it again, so Peer0 is gone too.
    assert_eq!(c.verifies(), 6);
    assert_eq!(m.cached_identities(), 2);
    // Expiry at `now` is checked on cached identities too.
    let expired = m.validate_identity(&peer0().creator(), u64::MAX, c);
    assert!(expired.unwrap_err().to_string().contains("is after"));
    assert!(m.validate_identity(&peer0().creator(), 0, c).is_err());
}

#[test]
fn identity_cache_finds_each_key() {
    // Keys that differ in length, in a whole word, in the last word, in the bytes
    // after the last word, or only in the order of their words.
    let mut keys: Vec<Vec<u8>> = Vec::new();
    for len in [0usize, 1, 7, 8, 9, 16, 17, 900, 901] {
        let base: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        keys.push(base.clone());
        for at in [0, len / 2, len.saturating_sub(1), len.saturating_sub(9)] {
            if at < len {
                let mut k = base.clone();
                k[at] ^= 0x80;
                keys.push(k);
            }
        }
    }
    let mut swapped = vec![1u8; 16];
    swapped[8..].fill(2);
    keys.push(swapped.clone());
    swapped.rotate_left(8);
    keys.push(swapped);
    keys.sort();
    keys.dedup();
    // The cache order agrees with equality, and is a total order.
    for a in &keys {
        for b in &keys {
            assert_eq!(key_order(a, b) == std::cmp::Ordering::Equal, a == b);
            assert_eq!(key_order(a, b), key_order(b, a).reverse());
        }
    }
    let identity = |i: usize| {
        Arc::new(Identity {
            msp_id: i.to_string(),
            public_key: Vec::new(),
            not_before_unix_nanos: 0,
            not_after_unix_nanos: 0,
            organizational_units: Vec::new(),
            cert_der: Vec::new(),
            certifiers_identifier: Vec::new(),
        })
    };
    let cache = IdentityCache::default();
    // Inserted in an order that is neither sorted nor reversed.
    let (evens, odds): (Vec<_>, Vec<_>) = (0..keys.len()).partition(|i| i % 2 == 0);
    for &i in evens.iter().rev().chain(&odds) {
        assert!(cache.get(&keys[i]).is_none());
        cache.insert(&keys[i], identity(i));
    }
    assert_eq!(cache.len(), keys.len());
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(cache.get(key).unwrap().msp_id, i.to_string());
    }
    // Inserting a key again replaces its identity.
    cache.insert(&keys[3], identity(1000));
    assert_eq!(cache.len(), keys.len());
    assert_eq!(cache.get(&keys[3]).unwrap().msp_id, "1000");
    assert!(cache.get(&[0xff; 900]).is_none());
}

#[test]
fn tampered_certificate_signature_breaks_the_chain() {
    let mut der = pem_decode(&user1().cert_pem).unwrap();
    let last = der.len() - 3;
    der[last] ^= 0x01;
    let err = manager()
        .validate_identity(&serialized("Org1MSP", &pem("CERTIFICATE", &der)), now(), C)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("x509: certificate signed by unknown authority"),
        "{err}"
    );
}

#[test]
fn minted_certificates_and_node_ous() {
    let m = manager();
    let ca = org1_ca_key();
    let user = user1();
    // Re-signed by the real CA, unchanged: valid, with a low-S or a high-S
    // certificate signature (Fabric sanitises certificates to low-S).
    for high_s in [false, true] {
        let minted = mint_cert(&user.cert_pem, &ca, |_| {}, high_s);
        m.validate_identity(&serialized("Org1MSP", &minted), now(), C)
            .unwrap();
    }
    // An OU that is no NodeOU role.
    let minted = mint_cert(
        &user.cert_pem,
        &ca,
        |tbs| replace_once(tbs, b"client", b"clixnt"),
        false,
    );
    let err = m
        .validate_identity(&serialized("Org1MSP", &minted), now(), C)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("could not validate identity's OUs: the identity does not have an OU that resolves to client, peer, orderer, or admin role. OUs: [clixnt("),
        "{err}"
    );
    assert!(err.ends_with("], MSP: [Org1MSP]"), "{err}");
    // A changed certificate not re-signed.
    let mut der = pem_decode(&user.cert_pem).unwrap();
    replace_once(&mut der, b"client", b"admin_");
    let err = m
        .validate_identity(&serialized("Org1MSP", &pem("CERTIFICATE", &der)), now(), C)
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown authority"), "{err}");
    // Signed by another key than the CA's.
    let minted = mint_cert(&user.cert_pem, &user.key, |_| {}, false);
    let err = m
        .validate_identity(&serialized("Org1MSP", &minted), now(), C)
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown authority"), "{err}");
}

/// A CRL by `issuer_pem`'s subject, signed by `key`, revoking `serials`.
pub(crate) fn crl(
    issuer_pem: &[u8],
    key: &p256::ecdsa::SigningKey,
    serials: &[Vec<u8>],
) -> Vec<u8> {
    let issuer = ParsedCert::from_pem(issuer_pem).unwrap();
    let alg = tlv(
        0x30,
        &tlv(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]),
    );
    let time = tlv(0x17, b"261125000000Z");
    let mut revoked = Vec::new();
    for serial in serials {
        let mut entry = tlv(0x02, serial);
        entry.extend(&time);
        revoked.extend(tlv(0x30, &entry));
    }
    let aki = tlv(0x30, &tlv(0x80, issuer.subject_key_id.as_ref().unwrap()));
    let mut ext = tlv(0x06, &[0x55, 0x1d, 0x23]);
    ext.extend(tlv(0x04, &aki));
    let exts = tlv(0xa0, &tlv(0x30, &tlv(0x30, &ext)));
    let mut tbs = tlv(0x02, &[1]);
    tbs.extend(&alg);
    tbs.extend(&issuer.subject);
    tbs.extend(&time);
    tbs.extend(tlv(0x30, &revoked));
    tbs.extend(exts);
    let tbs = tlv(0x30, &tbs);
    let mut bits = vec![0];
    bits.extend(sign(key, &tbs));
    let mut all = tbs;
    all.extend(alg);
    all.extend(tlv(0x03, &bits));
    pem("X509 CRL", &tlv(0x30, &all))
}

#[test]
fn revocation_lists() {
    let user = user1();
    let serial = ParsedIdentity::from_serialized(&user.creator())
        .unwrap()
        .cert
        .serial;
    let with_crl = |crl_pem: Vec<u8>| {
        let mut config = genesis_application_msp("Org1MSP");
        let mut fabric = FabricMspConfig::decode(config.config.as_ref()).unwrap();
        fabric.revocation_list.push(crl_pem.into());
        config.config = fabric.encode_to_vec().into();
        MspManager::new(&[config], C).unwrap()
    };
    let m = with_crl(crl(
        &org1_ca_pem(),
        &org1_ca_key(),
        std::slice::from_ref(&serial),
    ));
    let err = m
        .validate_identity(&user.creator(), now(), C)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "could not validate identity against certification chain: The certificate has been revoked"
    );
    m.validate_identity(&admin1().creator(), now(), C).unwrap();
    // A revoked identity is never cached: it is refused again, chain and all.
    let c = &CountingCrypto::default();
    for round in 1..=2 {
        assert!(m.validate_identity(&user.creator(), now(), c).is_err());
        assert_eq!(c.verifies(), 2 * round, "chain + CRL signature each time");
    }
    assert_eq!(m.cached_identities(), 1, "Admin only");
    // A CRL not signed by the CA is ignored.
    let m = with_crl(crl(&org1_ca_pem(), &user.key, &[serial]));
    m.validate_identity(&user.creator(), now(), C).unwrap();
}

#[test]
fn low_s_rule() {
    let mut half = P256_HALF_ORDER.to_vec();
    assert!(is_low_s(&half));
    *half.last_mut().unwrap() += 1;
    assert!(!is_low_s(&half));
    assert!(is_low_s(&[1]));
    assert!(!is_low_s(&[1u8; 33]));
    // Real signatures: the fixture's are low-S; their twins are not and fail.
    let env = &block_envelopes("blocks/mychannel-etcdraft-block-1.block")[0];
    let e = fabric_protos::common::Envelope::decode(env.as_slice()).unwrap();
    let id = manager()
        .validate_identity(&creator(env), now(), C)
        .unwrap();
    assert!(id.verify(&e.payload, &e.signature, C));
    let twin = high_s_twin(&e.signature);
    assert!(!is_low_s(ecdsa_signature_s(&twin).unwrap()));
    assert!(
        C.verify_p256(&id.public_key, &e.payload, &twin),
        "the twin is mathematically valid"
    );
    assert!(!id.verify(&e.payload, &twin, C));
    assert!(!id.verify(&e.payload, b"\x30\x00", C));
    assert!(!id.verify(&e.payload, &[], C));
}

#[test]
fn ecdsa_signature_parsing() {
    assert_eq!(
        ecdsa_signature_s(&[0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x05]),
        Some(&[5u8][..])
    );
    // Zero or negative R/S, trailing bytes, wrong tags.
    assert_eq!(
        ecdsa_signature_s(&[0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x05]),
        None
    );
    assert_eq!(
        ecdsa_signature_s(&[0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x85]),
        None
    );
    assert_eq!(
        ecdsa_signature_s(&[0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x05, 0x00]),
        None
    );
    assert_eq!(
        ecdsa_signature_s(&[0x31, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x05]),
        None
    );
}

#[test]
fn pem_and_base64() {
    let der = b"\x01\x02\x03\xfe\xff";
    let mut text = b"garbage before\n".to_vec();
    text.extend(pem("ANYTHING", der));
    assert_eq!(pem_decode(&text).unwrap(), der);
    for n in 0..8 {
        let data: Vec<u8> = (0..n).map(|i| i * 37).collect();
        assert_eq!(
            base64_decode(base64_encode(&data).as_bytes()).unwrap(),
            data
        );
    }
    assert!(base64_decode(b"A===").is_none());
    assert!(base64_decode(b"AA=A").is_none());
    assert!(pem_decode(b"-----BEGIN X-----\nAAAA\n").is_none());
}

/// What Go's `pem.Decode` accepts and pem-rfc7468 would not (why the framing is by
/// hand): text after the block, a second block, headers, other line widths, CRLF.
#[test]
fn pem_is_as_lenient_as_go() {
    let cert = user1().cert_pem;
    let der = pem_decode(&cert).unwrap();
    let mut two = cert.clone();
    two.extend(b"trailing text\n");
    two.extend(org1_ca_pem());
    assert_eq!(pem_decode(&two).unwrap(), der);
    let b64 = base64_encode(&der);
    let wrapped = |width: usize, eol: &str| {
        let mut out = format!("-----BEGIN CERTIFICATE-----{eol}");
        for line in b64.as_bytes().chunks(width) {
            out.push_str(std::str::from_utf8(line).unwrap());
            out.push_str(eol);
        }
        out.push_str(&format!("-----END CERTIFICATE-----{eol}"));
        out
    };
    for text in [
        wrapped(76, "\n"),
        wrapped(64, "\r\n"),
        wrapped(b64.len(), "\n"),
    ] {
        assert_eq!(pem_decode(text.as_bytes()).unwrap(), der, "{text}");
    }
    let with_headers =
        wrapped(64, "\n").replacen("-----\n", "-----\nProc-Type: 4,CRL\nComment: test\n\n", 1);
    assert_eq!(pem_decode(with_headers.as_bytes()).unwrap(), der);
    // Unpadded base64 is refused, as by Go's StdEncoding.
    assert!(base64_decode(b"AAA").is_none());
}

#[test]
fn time_formatting() {
    assert_eq!(format_unix_nanos(u64::MAX), "2554-07-21T23:34:33Z");
    assert_eq!(format_unix_nanos(0), "1970-01-01T00:00:00Z");
    assert_eq!(
        format_unix_nanos(1_700_000_000_000_000_000),
        "2023-11-14T22:13:20Z"
    );
    assert_eq!(
        format_unix_nanos(951_782_400_000_000_000),
        "2000-02-29T00:00:00Z"
    );
}

#[test]
fn msp_config_errors() {
    let config = MspConfig {
        r#type: 0,
        config: FabricMspConfig {
            name: "X".into(),
            ..Default::default()
        }
        .encode_to_vec()
        .into(),
    };
    let err = MspManager::new(&[config], C).unwrap_err().to_string();
    assert_eq!(err, "MSP X: expected at least one CA certificate");
    // Idemix MSPs are kept, their identities refused. (IdemixMSPConfig: name = 1,
    // epoch = 4 as a varint, which FabricMSPConfig could not decode.)
    let mut idemix_bytes = vec![0x0a, 9];
    idemix_bytes.extend_from_slice(b"IdemixMSP");
    idemix_bytes.extend_from_slice(&[0x20, 0x05]);
    let idemix = MspConfig {
        r#type: 1,
        config: idemix_bytes.into(),
    };
    let m = MspManager::new(&[idemix], C).unwrap();
    assert!(m.contains("IdemixMSP"));
    let err = m
        .validate_identity(&serialized("IdemixMSP", &user1().cert_pem), now(), C)
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not support"), "{err}");
    // The same MSP id twice: fine when identical, an error otherwise.
    let orderer_msp = |name: &str| MspConfig {
        r#type: 0,
        config: FabricMspConfig {
            name: name.into(),
            root_certs: vec![org1_ca_pem().into()],
            admins: vec![admin1().cert_pem.into()],
            ..Default::default()
        }
        .encode_to_vec()
        .into(),
    };
    let a = orderer_msp("A");
    let mut b = orderer_msp("A");
    assert!(MspManager::new(&[a.clone(), b.clone()], C).is_ok());
    b.config = FabricMspConfig {
        name: "A".into(),
        root_certs: vec![org1_ca_pem().into(), org1_ca_pem().into()],
        admins: vec![admin1().cert_pem.into()],
        ..Default::default()
    }
    .encode_to_vec()
    .into();
    assert_eq!(
        MspManager::new(&[a, b], C).unwrap_err().to_string(),
        "Attempted to define two different versions of MSP: A"
    );
}
