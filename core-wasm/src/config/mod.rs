//! A channel's configuration as the ordering core needs it, read from a config block
//! or a CONFIG envelope (Fabric's `common/channelconfig`, the parts the orderer uses).
//!
//! The config tree: `/Channel` (values `Capabilities`, `HashingAlgorithm`, ...), its
//! `Orderer` group (values `ConsensusType`, `BatchSize`, `BatchTimeout`,
//! `Capabilities`; one group per org with an `MSP` value) and its `Application` group
//! (value `Capabilities`; one group per org with an `MSP` value).

use bytes::Bytes;
use fabric_protos::common::{
    Block, Capabilities, ChannelHeader, Config, ConfigEnvelope, ConfigGroup, Envelope, HeaderType,
    Payload,
};
use fabric_protos::msp::MspConfig;
use fabric_protos::orderer::{self as ab, consensus_type};
use prost::Message;

use crate::crypto::Crypto;
use crate::msp::MspManager;
use crate::policies::PolicyManager;

const ORDERER_GROUP: &str = "Orderer";
const APPLICATION_GROUP: &str = "Application";
const CAPABILITIES_KEY: &str = "Capabilities";
const CONSENSUS_TYPE_KEY: &str = "ConsensusType";
const BATCH_SIZE_KEY: &str = "BatchSize";
const BATCH_TIMEOUT_KEY: &str = "BatchTimeout";
const MSP_KEY: &str = "MSP";

/// Channel capabilities this orderer supports (Fabric v2.5 `capabilities/channel.go`).
const SUPPORTED_CHANNEL_CAPABILITIES: &[&str] = &["V1_1", "V1_3", "V1_4_2", "V1_4_3", "V2_0"];
/// Orderer capabilities this orderer supports (Fabric v2.5 `capabilities/orderer.go`).
const SUPPORTED_ORDERER_CAPABILITIES: &[&str] = &["V1_1", "V1_4_2", "V2_0"];

/// `Orderer/BatchSize`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchSize {
    pub max_message_count: u32,
    pub absolute_max_bytes: u32,
    pub preferred_max_bytes: u32,
}

/// `Orderer/ConsensusType`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Consensus {
    /// "solo", "etcdraft", "BFT", ...
    pub kind: String,
    /// `state == STATE_MAINTENANCE`.
    pub maintenance: bool,
    /// The raw `ConsensusType.metadata` (etcdraft: `etcdraft.ConfigMetadata`).
    pub metadata: Bytes,
}

/// The parsed config of one channel.
#[derive(Clone, Debug)]
pub struct ChannelConfig {
    pub channel_id: String,
    /// `Config.sequence`.
    pub sequence: u64,
    pub batch_size: BatchSize,
    /// `Orderer/BatchTimeout`, a Go duration string, in milliseconds (rounded up to a
    /// whole millisecond).
    pub batch_timeout_ms: u64,
    pub consensus: Consensus,
    pub channel_capabilities: Vec<String>,
    pub orderer_capabilities: Vec<String>,
    pub application_capabilities: Vec<String>,
    /// Every org MSP of the Orderer and Application groups.
    pub msps: MspManager,
    /// MSP ids of the orgs of the Orderer group, sorted by org name.
    pub orderer_org_ids: Vec<String>,
    /// MSP ids of the orgs of the Application group, sorted by org name.
    pub application_org_ids: Vec<String>,
    /// Every policy of the config, by absolute path.
    pub policies: PolicyManager,
    /// The decoded `common.Config` this was parsed from.
    pub config: Config,
}

impl ChannelConfig {
    /// From an encoded `common.Block` whose `data[0]` is a CONFIG envelope (a genesis
    /// block or a later config block).
    pub fn from_config_block(block: &[u8], crypto: &dyn Crypto) -> Result<Self, String> {
        let block = Block::decode(block).map_err(|e| format!("error unmarshalling Block: {e}"))?;
        let envelope = block
            .data
            .as_ref()
            .and_then(|d| d.data.first())
            .ok_or_else(|| "block contains no data".to_string())?;
        Self::from_config_envelope(envelope, crypto)
    }

    /// From an encoded `common.Envelope` of type CONFIG.
    pub fn from_config_envelope(envelope: &[u8], crypto: &dyn Crypto) -> Result<Self, String> {
        let envelope =
            Envelope::decode(envelope).map_err(|e| format!("error unmarshalling Envelope: {e}"))?;
        let payload = Payload::decode(envelope.payload.as_ref())
            .map_err(|e| format!("error unmarshalling Payload: {e}"))?;
        let header = payload
            .header
            .as_ref()
            .ok_or_else(|| "header not set".to_string())?;
        let chdr = ChannelHeader::decode(header.channel_header.as_ref())
            .map_err(|e| format!("error unmarshalling ChannelHeader: {e}"))?;
        if chdr.r#type != HeaderType::Config as i32 {
            return Err(format!(
                "invalid header type {}, expected CONFIG ({})",
                chdr.r#type,
                HeaderType::Config as i32
            ));
        }
        let config_envelope = ConfigEnvelope::decode(payload.data.as_ref())
            .map_err(|e| format!("error unmarshalling ConfigEnvelope: {e}"))?;
        let config = config_envelope
            .config
            .ok_or_else(|| "config envelope has no config".to_string())?;
        Self::from_config(&chdr.channel_id, &config, crypto)
    }

    /// From a decoded `common.Config` of channel `channel_id`.
    pub fn from_config(
        channel_id: &str,
        config: &Config,
        crypto: &dyn Crypto,
    ) -> Result<Self, String> {
        if channel_id.is_empty() {
            return Err("channel ID is empty".into());
        }
        let channel = config
            .channel_group
            .as_ref()
            .ok_or_else(|| "config has no channel group".to_string())?;

        let channel_capabilities = capabilities(channel)?;
        let orderer = channel
            .groups
            .get(ORDERER_GROUP)
            .ok_or_else(|| "config has no Orderer group".to_string())?;
        let orderer_capabilities = capabilities(orderer)?;
        let application = channel.groups.get(APPLICATION_GROUP);
        let application_capabilities = match application {
            Some(group) => capabilities(group)?,
            None => Vec::new(),
        };
        check_supported(
            "Channel",
            &channel_capabilities,
            SUPPORTED_CHANNEL_CAPABILITIES,
        )?;
        check_supported(
            "Orderer",
            &orderer_capabilities,
            SUPPORTED_ORDERER_CAPABILITIES,
        )?;

        let consensus_type: ab::ConsensusType = value(orderer, CONSENSUS_TYPE_KEY)?
            .ok_or_else(|| "Orderer group has no ConsensusType value".to_string())?;
        let consensus = Consensus {
            kind: consensus_type.r#type.clone(),
            maintenance: consensus_type.state == consensus_type::State::Maintenance as i32,
            metadata: consensus_type.metadata.clone(),
        };

        let bs: ab::BatchSize = value(orderer, BATCH_SIZE_KEY)?
            .ok_or_else(|| "Orderer group has no BatchSize value".to_string())?;
        let batch_size = validate_batch_size(bs)?;

        let timeout: ab::BatchTimeout = value(orderer, BATCH_TIMEOUT_KEY)?
            .ok_or_else(|| "Orderer group has no BatchTimeout value".to_string())?;
        let timeout_nanos = parse_go_duration(&timeout.timeout)
            .map_err(|e| format!("Attempted to set the batch timeout to a invalid value: {e}"))?;
        if timeout_nanos <= 0 {
            return Err(format!(
                "Attempted to set the batch timeout to a non-positive value: {}",
                timeout.timeout
            ));
        }
        let batch_timeout_ms = (timeout_nanos as u64).div_ceil(1_000_000);

        let mut msp_configs = Vec::new();
        let orderer_org_ids = org_msps(orderer, &mut msp_configs)?;
        let application_org_ids = match application {
            Some(group) => org_msps(group, &mut msp_configs)?,
            None => Vec::new(),
        };
        let msps = MspManager::new(&msp_configs, crypto)?;
        let policies = PolicyManager::from_channel_group(channel)
            .map_err(|e| format!("initializing policymanager failed: {e}"))?;

        Ok(ChannelConfig {
            channel_id: channel_id.to_string(),
            sequence: config.sequence,
            batch_size,
            batch_timeout_ms,
            consensus,
            channel_capabilities,
            orderer_capabilities,
            application_capabilities,
            msps,
            orderer_org_ids,
            application_org_ids,
            policies,
            config: config.clone(),
        })
    }

    fn has_orderer_capability(&self, names: &[&str]) -> bool {
        self.orderer_capabilities
            .iter()
            .any(|c| names.contains(&c.as_str()))
    }

    /// Whether expiration checks apply (Fabric's `ExpirationCheck()`: orderer
    /// capability V1_1 or later).
    pub fn expiration_check(&self) -> bool {
        self.has_orderer_capability(&["V1_1", "V1_4_2", "V2_0"])
    }

    /// Fabric's `ConsensusTypeMigration()`: orderer capability V1_4_2 or later. With it,
    /// normal messages are refused in maintenance mode.
    pub fn consensus_type_migration(&self) -> bool {
        self.has_orderer_capability(&["V1_4_2", "V2_0"])
    }

    /// Number of consenters if the consensus type is etcdraft, else `None` (also when
    /// the metadata does not decode).
    pub fn etcdraft_consenters(&self) -> Option<usize> {
        if self.consensus.kind != "etcdraft" {
            return None;
        }
        fabric_protos::orderer::etcdraft::ConfigMetadata::decode(self.consensus.metadata.as_ref())
            .ok()
            .map(|m| m.consenters.len())
    }
}

/// Decodes the value `key` of `group`, `None` when absent.
fn value<M: Message + Default>(group: &ConfigGroup, key: &str) -> Result<Option<M>, String> {
    match group.values.get(key) {
        None => Ok(None),
        Some(v) => M::decode(v.value.as_ref())
            .map(Some)
            .map_err(|e| format!("error unmarshalling config value {key}: {e}")),
    }
}

/// The capability names of a group's `Capabilities` value, sorted.
fn capabilities(group: &ConfigGroup) -> Result<Vec<String>, String> {
    Ok(value::<Capabilities>(group, CAPABILITIES_KEY)?
        .map(|c| c.capabilities.into_keys().collect())
        .unwrap_or_default())
}

/// Fabric's `Supported()` check, done when a channel is created or joined.
fn check_supported(kind: &str, required: &[String], supported: &[&str]) -> Result<(), String> {
    match required.iter().find(|c| !supported.contains(&c.as_str())) {
        Some(c) => Err(format!(
            "{kind} capability {c} is required but not supported"
        )),
        None => Ok(()),
    }
}

/// Fabric's `validateBatchSize` (`common/channelconfig/orderer.go`).
fn validate_batch_size(bs: ab::BatchSize) -> Result<BatchSize, String> {
    if bs.max_message_count == 0 {
        return Err(
            "Attempted to set the batch size max message count to an invalid value: 0".into(),
        );
    }
    if bs.absolute_max_bytes == 0 {
        return Err(
            "Attempted to set the batch size absolute max bytes to an invalid value: 0".into(),
        );
    }
    if bs.preferred_max_bytes == 0 {
        return Err(
            "Attempted to set the batch size preferred max bytes to an invalid value: 0".into(),
        );
    }
    if bs.preferred_max_bytes > bs.absolute_max_bytes {
        return Err(format!(
            "Attempted to set the batch size preferred max bytes ({}) greater than the absolute max bytes ({}).",
            bs.preferred_max_bytes, bs.absolute_max_bytes
        ));
    }
    Ok(BatchSize {
        max_message_count: bs.max_message_count,
        absolute_max_bytes: bs.absolute_max_bytes,
        preferred_max_bytes: bs.preferred_max_bytes,
    })
}

/// Collects the `MSP` value of every org subgroup of `group` into `out`; returns their
/// MSP ids in org-name order.
fn org_msps(group: &ConfigGroup, out: &mut Vec<MspConfig>) -> Result<Vec<String>, String> {
    let mut ids = Vec::new();
    for (org, org_group) in &group.groups {
        let msp: MspConfig =
            value(org_group, MSP_KEY)?.ok_or_else(|| format!("org {org} has no MSP value"))?;
        let name = crate::msp::msp_config_name(&msp).map_err(|e| format!("org {org}: {e}"))?;
        ids.push(name);
        out.push(msp);
    }
    Ok(ids)
}

/// Parses a Go `time.ParseDuration` string ("2s", "500ms", "1m30s", "1.5h", "-3us")
/// into nanoseconds.
pub fn parse_go_duration(text: &str) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration \"{text}\"");
    let mut s = text;
    let mut negative = false;
    if let Some(rest) = s.strip_prefix('-') {
        negative = true;
        s = rest;
    } else if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: u128 = 0;
    while !s.is_empty() {
        let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
        let int_part = &s[..int_len];
        s = &s[int_len..];
        let mut frac_part = "";
        if let Some(rest) = s.strip_prefix('.') {
            let frac_len = rest.bytes().take_while(u8::is_ascii_digit).count();
            frac_part = &rest[..frac_len];
            s = &rest[frac_len..];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(invalid());
        }
        let unit_len = s
            .bytes()
            .take_while(|b| *b != b'.' && !b.is_ascii_digit())
            .count();
        let unit = &s[..unit_len];
        s = &s[unit_len..];
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(format!("time: missing unit in duration \"{text}\"")),
            _ => {
                return Err(format!(
                    "time: unknown unit \"{unit}\" in duration \"{text}\""
                ));
            }
        };
        let int_value: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| invalid())?
        };
        let mut value = int_value.checked_mul(scale).ok_or_else(invalid)?;
        if !frac_part.is_empty() {
            // Fraction digits beyond the unit's resolution are truncated, as in Go.
            let mut frac_scale = scale;
            for digit in frac_part.bytes() {
                frac_scale /= 10;
                if frac_scale == 0 {
                    break;
                }
                value += u128::from(digit - b'0') * frac_scale;
            }
        }
        total = total.checked_add(value).ok_or_else(invalid)?;
        if total > i64::MAX as u128 + u128::from(negative) {
            return Err(invalid());
        }
    }
    if negative {
        Ok((total as i128).wrapping_neg() as i64)
    } else {
        Ok(total as i64)
    }
}

/// Fixtures from the real Fabric v2.5.12 tools (`testdata/fabric`) and helpers to
/// sign fresh envelopes and mint certificates with the fixture keys (test keys).
/// Fixture identities and helpers for tests, also for policy crates (feature
/// `testkit`): the fixtures live in the repository's `testdata/fabric`.
#[cfg(any(test, feature = "testkit"))]
#[doc(hidden)]
pub mod testkit {
    use std::path::PathBuf;

    use fabric_protos::common::{Block, ChannelHeader, Envelope, Header, Payload, SignatureHeader};
    use fabric_protos::msp::SerializedIdentity;
    use p256::ecdsa::{Signature, SigningKey, signature::Signer as _};
    use p256::pkcs8::DecodePrivateKey;
    use prost::Message;

    use super::ChannelConfig;
    use crate::crypto::NativeCrypto;

    /// [`NativeCrypto`] counting signature verifications, to see what is cached.
    #[derive(Debug, Default)]
    pub struct CountingCrypto {
        verifies: std::cell::Cell<usize>,
    }

    impl CountingCrypto {
        pub fn verifies(&self) -> usize {
            self.verifies.get()
        }
    }

    impl crate::crypto::Crypto for CountingCrypto {
        fn sha256(&self, data: &[u8]) -> [u8; 32] {
            NativeCrypto.sha256(data)
        }

        fn verify_p256(&self, public_key: &[u8], message: &[u8], signature_der: &[u8]) -> bool {
            self.verifies.set(self.verifies.get() + 1);
            NativeCrypto.verify_p256(public_key, message, signature_der)
        }
    }

    pub fn fabric_path(rel: &str) -> PathBuf {
        PathBuf::from(env!("FABRIC_FIXTURES")).join(rel)
    }

    pub fn read(rel: &str) -> Vec<u8> {
        let path = fabric_path(rel);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    pub fn etcdraft_config() -> ChannelConfig {
        ChannelConfig::from_config_block(
            &read("blocks/mychannel-etcdraft-genesis.block"),
            &NativeCrypto,
        )
        .expect("genesis config")
    }

    /// The envelopes of a block file.
    pub fn block_envelopes(rel: &str) -> Vec<Vec<u8>> {
        let block = Block::decode(read(rel).as_slice()).unwrap();
        block
            .data
            .unwrap()
            .data
            .iter()
            .map(|d| d.to_vec())
            .collect()
    }

    pub fn channel_header(envelope: &[u8]) -> ChannelHeader {
        let env = Envelope::decode(envelope).unwrap();
        let payload = Payload::decode(env.payload.as_ref()).unwrap();
        ChannelHeader::decode(payload.header.unwrap().channel_header.as_ref()).unwrap()
    }

    /// The channel header timestamp, in Unix nanoseconds.
    pub fn envelope_time_nanos(envelope: &[u8]) -> u64 {
        let ts = channel_header(envelope).timestamp.unwrap();
        ts.seconds as u64 * 1_000_000_000 + ts.nanos as u64
    }

    /// The creator (serialized identity) of an envelope.
    pub fn creator(envelope: &[u8]) -> Vec<u8> {
        let env = Envelope::decode(envelope).unwrap();
        let payload = Payload::decode(env.payload.as_ref()).unwrap();
        SignatureHeader::decode(payload.header.unwrap().signature_header.as_ref())
            .unwrap()
            .creator
            .to_vec()
    }

    /// A fixture identity: MSP id, certificate PEM and private key.
    pub struct Signer {
        pub msp_id: String,
        pub cert_pem: Vec<u8>,
        pub key: SigningKey,
    }

    fn key_from(rel: &str) -> SigningKey {
        let pem = String::from_utf8(read(rel)).unwrap();
        SigningKey::from_pkcs8_pem(&pem).unwrap()
    }

    fn signer(msp_id: &str, msp_dir: &str, cert_file: &str) -> Signer {
        Signer {
            msp_id: msp_id.into(),
            cert_pem: read(&format!("{msp_dir}/signcerts/{cert_file}")),
            key: key_from(&format!("{msp_dir}/keystore/priv_sk")),
        }
    }

    const ORG1: &str = "crypto/peerOrganizations/org1.example.com";
    const ORDERER_ORG: &str = "crypto/ordererOrganizations/example.com";

    pub fn user1() -> Signer {
        signer(
            "Org1MSP",
            &format!("{ORG1}/users/User1@org1.example.com/msp"),
            "User1@org1.example.com-cert.pem",
        )
    }

    pub fn admin1() -> Signer {
        signer(
            "Org1MSP",
            &format!("{ORG1}/users/Admin@org1.example.com/msp"),
            "Admin@org1.example.com-cert.pem",
        )
    }

    pub fn peer0() -> Signer {
        signer(
            "Org1MSP",
            &format!("{ORG1}/peers/peer0.org1.example.com/msp"),
            "peer0.org1.example.com-cert.pem",
        )
    }

    pub fn orderer_admin() -> Signer {
        signer(
            "OrdererMSP",
            &format!("{ORDERER_ORG}/users/Admin@example.com/msp"),
            "Admin@example.com-cert.pem",
        )
    }

    pub fn orderer0() -> Signer {
        signer(
            "OrdererMSP",
            &format!("{ORDERER_ORG}/orderers/orderer0.example.com/msp"),
            "orderer0.example.com-cert.pem",
        )
    }

    pub fn org1_ca_key() -> SigningKey {
        key_from(&format!("{ORG1}/ca/priv_sk"))
    }

    pub fn org1_ca_pem() -> Vec<u8> {
        read(&format!("{ORG1}/ca/ca.org1.example.com-cert.pem"))
    }

    /// DER ECDSA signature, low-S.
    pub fn sign(key: &SigningKey, message: &[u8]) -> Vec<u8> {
        let sig: Signature = key.sign(message);
        let sig = sig.normalize_s().unwrap_or(sig);
        sig.to_der().as_bytes().to_vec()
    }

    pub fn serialized(msp_id: &str, cert_pem: &[u8]) -> Vec<u8> {
        SerializedIdentity {
            mspid: msp_id.into(),
            id_bytes: cert_pem.to_vec().into(),
        }
        .encode_to_vec()
    }

    impl Signer {
        pub fn creator(&self) -> Vec<u8> {
            serialized(&self.msp_id, &self.cert_pem)
        }

        /// A signed envelope of `header_type` for `channel_id` at `now_nanos`.
        pub fn envelope(
            &self,
            channel_id: &str,
            header_type: i32,
            now_nanos: u64,
            data: &[u8],
        ) -> Vec<u8> {
            let payload = payload(self.creator(), channel_id, header_type, now_nanos, data);
            let signature = sign(&self.key, &payload);
            Envelope {
                payload: payload.into(),
                signature: signature.into(),
            }
            .encode_to_vec()
        }
    }

    pub fn payload(
        creator: Vec<u8>,
        channel_id: &str,
        header_type: i32,
        now_nanos: u64,
        data: &[u8],
    ) -> Vec<u8> {
        let chdr = ChannelHeader {
            r#type: header_type,
            channel_id: channel_id.into(),
            timestamp: Some(prost_types_timestamp(now_nanos)),
            tx_id: format!("tx-{now_nanos}"),
            ..Default::default()
        };
        let shdr = SignatureHeader {
            creator: creator.into(),
            nonce: vec![7u8; 24].into(),
        };
        Payload {
            header: Some(Header {
                channel_header: chdr.encode_to_vec().into(),
                signature_header: shdr.encode_to_vec().into(),
            }),
            data: data.to_vec().into(),
        }
        .encode_to_vec()
    }

    fn prost_types_timestamp(nanos: u64) -> fabric_protos::Timestamp {
        fabric_protos::Timestamp {
            seconds: (nanos / 1_000_000_000) as i64,
            nanos: (nanos % 1_000_000_000) as i32,
        }
    }

    /// A DER TLV with a definite length.
    pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = content.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes: Vec<u8> = len
                .to_be_bytes()
                .into_iter()
                .skip_while(|b| *b == 0)
                .collect();
            out.push(0x80 | bytes.len() as u8);
            out.extend(bytes);
        }
        out.extend_from_slice(content);
        out
    }

    /// Splits a DER TLV into (tag, content, rest).
    pub fn split_tlv(data: &[u8]) -> (u8, &[u8], &[u8]) {
        let tag = data[0];
        let (len, hdr) = if data[1] < 0x80 {
            (data[1] as usize, 2)
        } else {
            let n = (data[1] & 0x7f) as usize;
            let mut len = 0usize;
            for b in &data[2..2 + n] {
                len = (len << 8) | *b as usize;
            }
            (len, 2 + n)
        };
        (tag, &data[hdr..hdr + len], &data[hdr + len..])
    }

    fn der_integer(magnitude: &[u8]) -> Vec<u8> {
        let start = magnitude
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(magnitude.len() - 1);
        let mut content = magnitude[start..].to_vec();
        if content[0] & 0x80 != 0 {
            content.insert(0, 0);
        }
        tlv(0x02, &content)
    }

    /// The same ECDSA signature with S replaced by n - S (equally valid mathematically).
    pub fn high_s_twin(signature_der: &[u8]) -> Vec<u8> {
        let (_, body, _) = split_tlv(signature_der);
        let (_, r, rest) = split_tlv(body);
        let (_, s, _) = split_tlv(rest);
        let mut s32 = [0u8; 32];
        let s = &s[s.len().saturating_sub(32)..];
        s32[32 - s.len()..].copy_from_slice(s);
        let n = crate::msp::P256_ORDER;
        let mut out = [0u8; 32];
        let mut borrow = 0i16;
        for i in (0..32).rev() {
            let mut d = n[i] as i16 - s32[i] as i16 - borrow;
            borrow = if d < 0 {
                d += 256;
                1
            } else {
                0
            };
            out[i] = d as u8;
        }
        let mut seq = der_integer(r);
        seq.extend(der_integer(&out));
        tlv(0x30, &seq)
    }

    pub fn base64_encode(data: &[u8]) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in data.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let v = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(ALPHABET[(v >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    pub fn pem(label: &str, der: &[u8]) -> Vec<u8> {
        let b64 = base64_encode(der);
        let mut out = format!("-----BEGIN {label}-----\n");
        for line in b64.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(line).unwrap());
            out.push('\n');
        }
        out.push_str(&format!("-----END {label}-----\n"));
        out.into_bytes()
    }

    /// Re-signs `cert_pem` with `ca_key` after `edit` changed its TBS bytes; `high_s`
    /// makes the certificate signature high-S.
    pub fn mint_cert(
        cert_pem: &[u8],
        ca_key: &SigningKey,
        edit: impl FnOnce(&mut Vec<u8>),
        high_s: bool,
    ) -> Vec<u8> {
        let der = crate::msp::pem_decode(cert_pem).unwrap();
        let (_, body, _) = split_tlv(&der);
        let (_, _, after_tbs) = split_tlv(body);
        let mut tbs = body[..body.len() - after_tbs.len()].to_vec();
        let (_, _, after_alg) = split_tlv(after_tbs);
        let alg = &after_tbs[..after_tbs.len() - after_alg.len()];
        edit(&mut tbs);
        let mut sig = sign(ca_key, &tbs);
        if high_s {
            sig = high_s_twin(&sig);
        }
        let mut bits = vec![0u8];
        bits.extend(sig);
        let mut content = tbs;
        content.extend_from_slice(alg);
        content.extend(tlv(0x03, &bits));
        pem("CERTIFICATE", &tlv(0x30, &content))
    }

    /// The `MSPConfig` of org `org` of the Application group of the genesis block.
    pub fn genesis_application_msp(org: &str) -> fabric_protos::msp::MspConfig {
        let env = &block_envelopes("blocks/mychannel-etcdraft-genesis.block")[0];
        let env = Envelope::decode(env.as_slice()).unwrap();
        let payload = Payload::decode(env.payload.as_ref()).unwrap();
        let config = fabric_protos::common::ConfigEnvelope::decode(payload.data.as_ref())
            .unwrap()
            .config
            .unwrap();
        let app = &config.channel_group.unwrap().groups["Application"];
        let value = &app.groups[org].values["MSP"];
        fabric_protos::msp::MspConfig::decode(value.value.as_ref()).unwrap()
    }

    /// Replaces the first occurrence of `from` by `to` (same length) in `bytes`.
    pub fn replace_once(bytes: &mut [u8], from: &[u8], to: &[u8]) {
        assert_eq!(from.len(), to.len());
        let pos = bytes
            .windows(from.len())
            .position(|w| w == from)
            .expect("pattern present");
        bytes[pos..pos + to.len()].copy_from_slice(to);
    }
}

#[cfg(test)]
mod tests;
