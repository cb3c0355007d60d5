use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use der::{Decode, Encode};
use fabric_protos::common::{
    Block, ChannelHeader, Config, ConfigEnvelope, ConfigGroup, Envelope, HeaderType,
    ImplicitMetaPolicy, Payload, SignatureHeader, SignaturePolicyEnvelope,
};
use fabric_protos::msp::{FabricMspConfig, MspConfig, MspRole};
use p256::ecdsa::signature::Verifier;
use p256::pkcs8::DecodePrivateKey;
use prost::Message;
use sha2::{Digest, Sha256};
use x509_cert::der::oid::AssociatedOid;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage};

use super::genesis::{ChannelProfile, OrgProfile, genesis_block_from_profile};
use super::mspconfig::{self, verifying_msp_config};
use super::*;
use crate::identity::{Signer, certificate_public_key, first_pem_block};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/fabric")
}

struct Decoded {
    channel_header: ChannelHeader,
    signature_header: SignatureHeader,
    config: Config,
    envelope_signature: Bytes,
}

fn decode_genesis(block: &Block) -> Decoded {
    let data = &block.data.as_ref().unwrap().data;
    assert_eq!(data.len(), 1);
    let envelope = Envelope::decode(data[0].clone()).unwrap();
    let payload = Payload::decode(envelope.payload.clone()).unwrap();
    let header = payload.header.unwrap();
    let config = ConfigEnvelope::decode(payload.data).unwrap();
    assert!(config.last_update.is_none());
    Decoded {
        channel_header: ChannelHeader::decode(header.channel_header).unwrap(),
        signature_header: SignatureHeader::decode(header.signature_header).unwrap(),
        config: config.config.unwrap(),
        envelope_signature: envelope.signature,
    }
}

/// One line per element of a config tree: its path, version, mod_policy and content
/// (policies and MSP configs decoded), so a mismatch names the element.
fn describe(group: &ConfigGroup, path: &str, out: &mut Vec<String>) {
    out.push(format!(
        "{path} group v{} mod={}",
        group.version, group.mod_policy
    ));
    for (name, value) in &group.values {
        let content = if name == "MSP" {
            let msp = MspConfig::decode(value.value.clone()).unwrap();
            let fabric = FabricMspConfig::decode(msp.config).unwrap();
            format!("type={} {fabric:?}", msp.r#type)
        } else {
            hex::encode(&value.value)
        };
        out.push(format!(
            "{path}/values/{name} v{} mod={} {content}",
            value.version, value.mod_policy
        ));
    }
    for (name, policy) in &group.policies {
        let p = policy.policy.as_ref().unwrap();
        let content = match p.r#type {
            1 => format!(
                "{:?}",
                SignaturePolicyEnvelope::decode(p.value.clone()).unwrap()
            ),
            3 => format!("{:?}", ImplicitMetaPolicy::decode(p.value.clone()).unwrap()),
            t => format!("type {t}"),
        };
        out.push(format!(
            "{path}/policies/{name} v{} mod={} type={} {content}",
            policy.version, policy.mod_policy, p.r#type
        ));
    }
    for (name, child) in &group.groups {
        describe(child, &format!("{path}/{name}"), out);
    }
}

fn describe_config(config: &Config) -> Vec<String> {
    let mut out = vec![format!("sequence {}", config.sequence)];
    describe(config.channel_group.as_ref().unwrap(), "Channel", &mut out);
    out
}

fn fixture_profile(timestamp: std::time::SystemTime, nonce: Bytes) -> ChannelProfile {
    let crypto = fixtures().join("crypto");
    ChannelProfile {
        channel_id: "mychannel".into(),
        consensus: Consensus::Solo,
        orderer_orgs: vec![OrgProfile {
            name: "OrdererOrg".into(),
            msp_id: "OrdererMSP".into(),
            msp_dir: crypto.join("ordererOrganizations/example.com/msp"),
            orderer_endpoints: vec!["127.0.0.1:7050".into()],
        }],
        application_orgs: vec![OrgProfile {
            name: "Org1MSP".into(),
            msp_id: "Org1MSP".into(),
            msp_dir: crypto.join("peerOrganizations/org1.example.com/msp"),
            orderer_endpoints: Vec::new(),
        }],
        timestamp,
        nonce: Some(nonce),
    }
}

/// The fixture's solo genesis block, made by configtxgen from configtx.yaml, against
/// ours from the same crypto folders, timestamp and nonce: the same config at every
/// level, the same headers, the same metadata.
#[test]
fn bootstrap_genesis_matches_configtxgen_fixture() {
    let raw = std::fs::read(fixtures().join("blocks/mychannel-solo-genesis.block")).unwrap();
    let fixture = Block::decode(raw.as_slice()).unwrap();
    let theirs = decode_genesis(&fixture);
    let ts = theirs.channel_header.timestamp.unwrap();
    let when = UNIX_EPOCH + Duration::new(ts.seconds as u64, ts.nanos as u32);

    let block = genesis_block_from_profile(&fixture_profile(
        when,
        theirs.signature_header.nonce.clone(),
    ))
    .unwrap();
    let ours = decode_genesis(&block);

    let (ours_lines, theirs_lines) = (
        describe_config(&ours.config),
        describe_config(&theirs.config),
    );
    let only_ours: Vec<_> = ours_lines
        .iter()
        .filter(|l| !theirs_lines.contains(l))
        .collect();
    let only_theirs: Vec<_> = theirs_lines
        .iter()
        .filter(|l| !ours_lines.contains(l))
        .collect();
    assert!(
        only_ours.is_empty() && only_theirs.is_empty(),
        "ours only: {only_ours:#?}\nfixture only: {only_theirs:#?}"
    );
    assert_eq!(ours.config, theirs.config);
    assert_eq!(ours.channel_header, theirs.channel_header);
    assert_eq!(ours.signature_header, theirs.signature_header);
    assert!(ours.envelope_signature.is_empty() && theirs.envelope_signature.is_empty());
    assert_eq!(block.metadata, fixture.metadata);
    let header = block.header.as_ref().unwrap();
    let their_header = fixture.header.as_ref().unwrap();
    assert_eq!(header.number, 0);
    assert!(header.previous_hash.is_empty() && their_header.previous_hash.is_empty());
    assert_eq!(
        header.data_hash.as_ref(),
        &Sha256::digest(&block.data.as_ref().unwrap().data[0])[..]
    );

    // Go marshals map entries in random order (this fixture has the channel's Orderer
    // group before Application), prost in key order; the contents are equal (above),
    // and so is every byte count.
    let ours_data = &block.data.as_ref().unwrap().data[0];
    let theirs_data = &fixture.data.as_ref().unwrap().data[0];
    assert_eq!(ours_data.len(), theirs_data.len());
}

#[test]
fn bootstrap_genesis_block_layout() {
    let tmp = tempfile::tempdir().unwrap();
    generate_crypto(tmp.path()).unwrap();
    let crypto = tmp.path();
    let orderer_msp = crypto.join("ordererOrganizations/example.com/msp");
    let org1_msp = crypto.join("peerOrganizations/org1.example.com/msp");
    let before = std::time::SystemTime::now();
    let block = genesis_block(
        "devchannel",
        &orderer_msp,
        &[("Org1MSP", &org1_msp)],
        "OrdererMSP",
        "127.0.0.1:7050",
        Consensus::Solo,
    )
    .unwrap();
    let decoded = decode_genesis(&block);
    let ch = &decoded.channel_header;
    assert_eq!(ch.r#type, HeaderType::Config as i32);
    assert_eq!(ch.version, 1);
    assert_eq!(ch.channel_id, "devchannel");
    assert_eq!(ch.epoch, 0);
    let ts = ch.timestamp.unwrap();
    assert_eq!(ts.nanos, 0);
    let now = before.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!((ts.seconds - now).abs() <= 2);
    let sh = &decoded.signature_header;
    assert!(sh.creator.is_empty());
    assert_eq!(sh.nonce.len(), 24);
    assert_eq!(ch.tx_id, hex::encode(Sha256::digest(&sh.nonce)));

    let header = block.header.as_ref().unwrap();
    assert_eq!((header.number, header.previous_hash.len()), (0, 0));
    assert_eq!(
        header.data_hash.as_ref(),
        &Sha256::digest(&block.data.as_ref().unwrap().data[0])[..]
    );
    let metadata = &block.metadata.as_ref().unwrap().metadata;
    assert_eq!(metadata.len(), 5);
    assert_eq!(metadata[0].as_ref(), [0x0a, 0x02, 0x0a, 0x00]);
    assert!(metadata[1..].iter().all(|m| m.is_empty()));

    // Our orgs are named by MSP id; the orderer org carries its endpoint.
    let channel = decoded.config.channel_group.as_ref().unwrap();
    let orderer = &channel.groups["Orderer"];
    let org = &orderer.groups["OrdererMSP"];
    let endpoints =
        fabric_protos::common::OrdererAddresses::decode(org.values["Endpoints"].value.clone())
            .unwrap();
    assert_eq!(endpoints.addresses, ["127.0.0.1:7050"]);
    let app_org = &channel.groups["Application"].groups["Org1MSP"];
    let msp = FabricMspConfig::decode(
        MspConfig::decode(app_org.values["MSP"].value.clone())
            .unwrap()
            .config,
    )
    .unwrap();
    assert_eq!(msp.name, "Org1MSP");
    assert_eq!(msp.root_certs.len(), 1);
    assert_eq!(msp.tls_root_certs.len(), 1);
    let node_ous = msp.fabric_node_ous.unwrap();
    assert!(node_ous.enable);
    assert_eq!(
        node_ous.client_ou_identifier.unwrap().certificate,
        msp.root_certs[0]
    );
    let admins = SignaturePolicyEnvelope::decode(
        app_org.policies["Admins"]
            .policy
            .as_ref()
            .unwrap()
            .value
            .clone(),
    )
    .unwrap();
    let role = MspRole::decode(admins.identities[0].principal.clone()).unwrap();
    assert_eq!((role.msp_identifier.as_str(), role.role), ("Org1MSP", 1));

    // The same structure as configtxgen's, up to the orderer org's group name and
    // the certificates.
    let raw = std::fs::read(fixtures().join("blocks/mychannel-solo-genesis.block")).unwrap();
    let fixture = decode_genesis(&Block::decode(raw.as_slice()).unwrap());
    let shape = |config: &Config| -> Vec<String> {
        describe_config(config)
            .into_iter()
            .map(|line| {
                let line = line.replace("/OrdererOrg", "/OrdererMSP");
                line.split(" v0").next().unwrap().to_string()
            })
            .collect()
    };
    assert_eq!(shape(&decoded.config), shape(&fixture.config));
}

fn relative_files(root: &Path) -> BTreeSet<String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.insert(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(root, root, &mut out);
    out
}

fn cert_der(path: &Path) -> Vec<u8> {
    let raw = std::fs::read(path).unwrap();
    let (label, der) = first_pem_block(&raw).unwrap();
    assert_eq!(label, "CERTIFICATE", "{}", path.display());
    der
}

/// Checks `cert` was signed by `issuer`'s key (ECDSA P-256 SHA-256).
fn verify_signed_by(cert: &[u8], issuer: &[u8]) {
    let parsed = x509_cert::Certificate::from_der(cert).unwrap();
    assert_eq!(
        parsed.signature_algorithm.oid.to_string(),
        "1.2.840.10045.4.3.2",
        "ecdsa-with-SHA256"
    );
    let tbs = parsed.tbs_certificate.to_der().unwrap();
    let signature = p256::ecdsa::Signature::from_der(parsed.signature.raw_bytes()).unwrap();
    let issuer_key = certificate_public_key(issuer).unwrap();
    issuer_key
        .verify(&tbs, &signature)
        .expect("certificate signature verifies with the CA key");
    let issuer_cert = x509_cert::Certificate::from_der(issuer).unwrap();
    assert_eq!(
        parsed.tbs_certificate.issuer,
        issuer_cert.tbs_certificate.subject
    );
}

fn extension<T: AssociatedOid + for<'a> Decode<'a>>(cert: &[u8]) -> Option<T> {
    let parsed = x509_cert::Certificate::from_der(cert).unwrap();
    let extensions = parsed.tbs_certificate.extensions.unwrap_or_default();
    extensions
        .iter()
        .find(|e| e.extn_id == T::OID)
        .map(|e| T::from_der(e.extn_value.as_bytes()).unwrap())
}

#[test]
fn bootstrap_generated_crypto_has_cryptogen_layout_and_chains() {
    let tmp = tempfile::tempdir().unwrap();
    generate_crypto(tmp.path()).unwrap();

    // The same files as cryptogen's (its peer0 aside, which an orderer does not need).
    let ours = relative_files(tmp.path());
    let theirs: BTreeSet<String> = relative_files(&fixtures().join("crypto"))
        .into_iter()
        .filter(|p| !p.contains("/peers/"))
        .collect();
    assert_eq!(ours, theirs);
    // config.yaml: the same content (the CA file names are the same too).
    for path in ours.iter().filter(|p| p.ends_with("config.yaml")) {
        assert_eq!(
            std::fs::read_to_string(tmp.path().join(path)).unwrap(),
            std::fs::read_to_string(fixtures().join("crypto").join(path)).unwrap(),
            "{path}"
        );
    }

    for (org, domain, msp_id, users) in [
        (
            "ordererOrganizations",
            "example.com",
            "OrdererMSP",
            vec![("orderers", "orderer0.example.com", "orderer")],
        ),
        (
            "peerOrganizations",
            "org1.example.com",
            "Org1MSP",
            vec![
                ("users", "User1@org1.example.com", "client"),
                ("users", "Admin@org1.example.com", "admin"),
            ],
        ),
    ] {
        let org_dir = tmp.path().join(org).join(domain);
        let ca = cert_der(&org_dir.join(format!("ca/ca.{domain}-cert.pem")));
        let tlsca = cert_der(&org_dir.join(format!("tlsca/tlsca.{domain}-cert.pem")));
        verify_signed_by(&ca, &ca);
        verify_signed_by(&tlsca, &tlsca);
        for cert in [&ca, &tlsca] {
            let bc: BasicConstraints = extension(cert).unwrap();
            assert!(bc.ca);
            let ku: KeyUsage = extension(cert).unwrap();
            assert!(ku.key_cert_sign());
        }
        // The CA key in ca/priv_sk belongs to the CA certificate.
        let ca_key = p256::SecretKey::from_pkcs8_pem(
            &std::fs::read_to_string(org_dir.join("ca/priv_sk")).unwrap(),
        )
        .unwrap();
        assert_eq!(
            p256::ecdsa::VerifyingKey::from(ca_key.public_key()),
            certificate_public_key(&ca).unwrap()
        );

        let mut identities = users.clone();
        if org == "ordererOrganizations" {
            identities.push(("users", "Admin@example.com", "admin"));
        }
        for (kind, name, ou) in identities {
            let base = org_dir.join(kind).join(name);
            let signer = Signer::from_msp_dir(&base.join("msp"), msp_id).unwrap();
            let cert = cert_der(&base.join(format!("msp/signcerts/{name}-cert.pem")));
            verify_signed_by(&cert, &ca);
            let bc: BasicConstraints = extension(&cert).unwrap();
            assert!(!bc.ca);
            let parsed = x509_cert::Certificate::from_der(&cert).unwrap();
            let subject = parsed.tbs_certificate.subject.to_string();
            assert!(
                subject.contains(&format!("OU={ou}")) && subject.contains(&format!("CN={name}")),
                "{subject}"
            );
            assert!(
                subject.contains("C=US") && subject.contains("L=San Francisco"),
                "{subject}"
            );
            let validity = &parsed.tbs_certificate.validity;
            let years = (validity.not_after.to_unix_duration()
                - validity.not_before.to_unix_duration())
            .as_secs()
                / (365 * 86400);
            assert_eq!(years, 10);
            let sig = signer.sign(b"hello");
            let key = certificate_public_key(&cert).unwrap();
            key.verify(b"hello", &p256::ecdsa::Signature::from_der(&sig).unwrap())
                .unwrap();

            let tls_name = if kind == "orderers" {
                "server"
            } else {
                "client"
            };
            let tls = cert_der(&base.join(format!("tls/{tls_name}.crt")));
            verify_signed_by(&tls, &tlsca);
            assert_eq!(
                std::fs::read(base.join("tls/ca.crt")).unwrap(),
                std::fs::read(org_dir.join(format!("tlsca/tlsca.{domain}-cert.pem"))).unwrap()
            );
        }

        // The org's verifying MSP loads as configtxgen would load it.
        let msp = verifying_msp_config(&org_dir.join("msp"), msp_id).unwrap();
        let fabric = FabricMspConfig::decode(msp.config).unwrap();
        assert_eq!(fabric.root_certs.len(), 1);
        assert!(
            fabric
                .fabric_node_ous
                .unwrap()
                .orderer_ou_identifier
                .is_some()
        );
    }
}

#[test]
fn bootstrap_ensure_dev_network_creates_then_reuses() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let first = ensure_dev_network(&data, "0.0.0.0:7050").unwrap();
    assert_eq!(first.channel_id, "devchannel");
    assert_eq!(
        first.genesis_block_path,
        data.join("devchannel-genesis.block")
    );
    assert!(first.orderer_msp_dir.starts_with(data.join("crypto")));
    let genesis = std::fs::read(&first.genesis_block_path).unwrap();
    let key = std::fs::read(first.orderer_msp_dir.join("keystore/priv_sk")).unwrap();

    let signer = Signer::from_msp_dir(&first.orderer_msp_dir, &first.orderer_msp_id).unwrap();
    assert_eq!(signer.msp_id(), "OrdererMSP");
    let client = Signer::from_msp_dir(&first.client_msp_dir, &first.client_msp_id).unwrap();
    assert_eq!(client.msp_id(), "Org1MSP");
    Signer::from_msp_dir(&first.admin_msp_dir, &first.orderer_msp_id).unwrap();
    Signer::from_msp_dir(&first.client_admin_msp_dir, &first.client_msp_id).unwrap();

    // The genesis block names this network's orderer, at a dialable address.
    let decoded = decode_genesis(&Block::decode(genesis.as_slice()).unwrap());
    assert_eq!(decoded.channel_header.channel_id, "devchannel");
    let channel = decoded.config.channel_group.unwrap();
    let org = &channel.groups["Orderer"].groups["OrdererMSP"];
    let endpoints =
        fabric_protos::common::OrdererAddresses::decode(org.values["Endpoints"].value.clone())
            .unwrap();
    assert_eq!(endpoints.addresses, ["127.0.0.1:7050"]);
    let consensus = fabric_protos::orderer::ConsensusType::decode(
        channel.groups["Orderer"].values["ConsensusType"]
            .value
            .clone(),
    )
    .unwrap();
    assert_eq!(consensus.r#type, "solo");
    let msp = MspConfig::decode(org.values["MSP"].value.clone()).unwrap();
    let fabric = FabricMspConfig::decode(msp.config).unwrap();
    let ca = std::fs::read(
        data.join("crypto/ordererOrganizations/example.com/msp/cacerts/ca.example.com-cert.pem"),
    )
    .unwrap();
    assert_eq!(fabric.root_certs, [Bytes::from(ca)]);

    let second = ensure_dev_network(&data, "127.0.0.1:9999").unwrap();
    assert_eq!(first, second);
    assert_eq!(
        std::fs::read(&second.genesis_block_path).unwrap(),
        genesis,
        "genesis reused"
    );
    assert_eq!(
        std::fs::read(second.orderer_msp_dir.join("keystore/priv_sk")).unwrap(),
        key,
        "keys reused"
    );
    assert!(!data.join(".crypto.partial").exists());
}

#[test]
fn bootstrap_ensure_dev_network_rejects_damaged_files() {
    let tmp = tempfile::tempdir().unwrap();
    let network = ensure_dev_network(tmp.path(), "127.0.0.1:7050").unwrap();
    std::fs::write(&network.genesis_block_path, b"\xff\xff garbage").unwrap();
    let err = format!(
        "{:#}",
        ensure_dev_network(tmp.path(), "127.0.0.1:7050").unwrap_err()
    );
    assert!(err.contains("devchannel-genesis.block"), "{err}");

    std::fs::remove_file(network.orderer_msp_dir.join("keystore/priv_sk")).unwrap();
    let err = format!(
        "{:#}",
        ensure_dev_network(tmp.path(), "127.0.0.1:7050").unwrap_err()
    );
    assert!(err.contains("keystore/ has no private key"), "{err}");
}

#[test]
fn bootstrap_endpoint_address() {
    assert_eq!(endpoint_address("0.0.0.0:7050"), "127.0.0.1:7050");
    assert_eq!(endpoint_address("[::]:7050"), "127.0.0.1:7050");
    assert_eq!(endpoint_address(":7050"), "127.0.0.1:7050");
    assert_eq!(
        endpoint_address("orderer.example.com:7050"),
        "orderer.example.com:7050"
    );
}

#[test]
fn bootstrap_msp_config_yaml_reader() {
    let fixture = std::fs::read_to_string(
        fixtures().join("crypto/peerOrganizations/org1.example.com/msp/config.yaml"),
    )
    .unwrap();
    let parsed = mspconfig::parse_msp_config_yaml(&fixture).unwrap();
    let ca = "cacerts/ca.org1.example.com-cert.pem".to_string();
    assert!(parsed.node_ous_enable);
    assert_eq!(parsed.client, Some((ca.clone(), "client".into())));
    assert_eq!(parsed.peer, Some((ca.clone(), "peer".into())));
    assert_eq!(parsed.admin, Some((ca.clone(), "admin".into())));
    assert_eq!(parsed.orderer, Some((ca, "orderer".into())));
    assert!(parsed.ou_identifiers.is_empty());

    let other = "# comment\nOrganizationalUnitIdentifiers:\n  - Certificate: \"cacerts/a.pem\"\n    OrganizationalUnitIdentifier: 'COP'\n  - Certificate: cacerts/b.pem # trailing\n    OrganizationalUnitIdentifier: X\nNodeOUs:\n  Enable: false\n";
    let parsed = mspconfig::parse_msp_config_yaml(other).unwrap();
    assert_eq!(
        parsed.ou_identifiers,
        [
            ("cacerts/a.pem".to_string(), "COP".to_string()),
            ("cacerts/b.pem".to_string(), "X".to_string())
        ]
    );
    assert!(!parsed.node_ous_enable);
    assert!(mspconfig::parse_msp_config_yaml("NodeOUs\n").is_err());
}
