//! A channel's genesis (config) block, built as Fabric's `configtxgen -outputBlock`
//! builds it for a profile like `AppChannelSolo` (internal/configtxgen/encoder and
//! common/genesis): same groups, values, policies, MSP configs and block layout.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use fabric_protos::common::{
    self as cb, Block, BlockData, BlockDataHashingStructure, BlockHeader, BlockMetadata,
    Capabilities, Capability, ChannelHeader, Config, ConfigEnvelope, ConfigGroup, ConfigPolicy,
    ConfigValue, Envelope, HashingAlgorithm, Header, HeaderType, ImplicitMetaPolicy, LastConfig,
    Metadata, OrdererAddresses, OrdererBlockMetadata, Payload, Policy, SignatureHeader,
    SignaturePolicy, SignaturePolicyEnvelope, implicit_meta_policy, policy::PolicyType,
    signature_policy,
};
use fabric_protos::msp::{
    MspPrincipal, MspRole, msp_principal::Classification, msp_role::MspRoleType,
};
use fabric_protos::orderer::{BatchSize, BatchTimeout, ChannelRestrictions, ConsensusType};
use prost::Message;
use sha2::{Digest, Sha256};

use super::mspconfig::verifying_msp_config;
use crate::identity::{compute_tx_id, new_nonce, to_timestamp};

/// The consensus type written into `/Channel/Orderer/ConsensusType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Consensus {
    /// Fabric's `solo`: one node, no consensus metadata.
    Solo,
}

impl Consensus {
    pub fn type_name(self) -> &'static str {
        match self {
            Consensus::Solo => "solo",
        }
    }
}

const ADMINS: &str = "Admins";
const READERS: &str = "Readers";
const WRITERS: &str = "Writers";
const ENDORSEMENT: &str = "Endorsement";

/// BatchSize defaults of configtx.yaml: 500 messages, 10 MB absolute, 2 MB preferred.
pub const MAX_MESSAGE_COUNT: u32 = 500;
pub const ABSOLUTE_MAX_BYTES: u32 = 10 * 1024 * 1024;
pub const PREFERRED_MAX_BYTES: u32 = 2 * 1024 * 1024;
pub const BATCH_TIMEOUT: &str = "2s";

/// One organization of a channel profile (configtx.yaml `Organizations:` entry).
#[derive(Clone, Debug)]
pub struct OrgProfile {
    /// The config group's name (configtx.yaml `Name`).
    pub name: String,
    /// The MSP id (configtx.yaml `ID`).
    pub msp_id: String,
    /// The org's verifying MSP folder (cacerts, tlscacerts, config.yaml, ...).
    pub msp_dir: PathBuf,
    /// `OrdererEndpoints` (orderer orgs only; written as the org's `Endpoints` value).
    pub orderer_endpoints: Vec<String>,
}

/// A channel profile as configtx.yaml describes it, for the parts we support.
#[derive(Clone, Debug)]
pub struct ChannelProfile {
    pub channel_id: String,
    pub consensus: Consensus,
    pub orderer_orgs: Vec<OrgProfile>,
    pub application_orgs: Vec<OrgProfile>,
    /// The channel header timestamp (configtxgen: now, whole seconds).
    pub timestamp: SystemTime,
    /// The signature header nonce (configtxgen: 24 random bytes); `None` draws one.
    pub nonce: Option<Bytes>,
}

/// The genesis block of `channel_id` with one orderer org (at `orderer_address`) and
/// the given application orgs, each org's config group named by its MSP id, as
/// `configtxgen -profile AppChannelSolo -outputBlock` makes it from configtx.yaml.
pub fn genesis_block(
    channel_id: &str,
    orderer_org_msp_dir: &Path,
    application_org_msp_dirs: &[(&str, &Path)],
    orderer_msp_id: &str,
    orderer_address: &str,
    consensus: Consensus,
) -> Result<Block> {
    genesis_block_from_profile(&ChannelProfile {
        channel_id: channel_id.to_string(),
        consensus,
        orderer_orgs: vec![OrgProfile {
            name: orderer_msp_id.to_string(),
            msp_id: orderer_msp_id.to_string(),
            msp_dir: orderer_org_msp_dir.to_path_buf(),
            orderer_endpoints: vec![orderer_address.to_string()],
        }],
        application_orgs: application_org_msp_dirs
            .iter()
            .map(|(msp_id, dir)| OrgProfile {
                name: msp_id.to_string(),
                msp_id: msp_id.to_string(),
                msp_dir: dir.to_path_buf(),
                orderer_endpoints: Vec::new(),
            })
            .collect(),
        timestamp: SystemTime::now(),
        nonce: None,
    })
}

/// The genesis block of a [`ChannelProfile`] (common/genesis `factory.Block`).
pub fn genesis_block_from_profile(profile: &ChannelProfile) -> Result<Block> {
    if profile.channel_id.is_empty() {
        bail!("genesis block: the channel id is empty");
    }
    if profile.orderer_orgs.is_empty() {
        bail!("genesis block: no orderer organization");
    }
    let config = Config {
        sequence: 0,
        channel_group: Some(channel_group(profile)?),
    };

    let nonce = profile.nonce.clone().unwrap_or_else(new_nonce);
    let signature_header = SignatureHeader {
        creator: Bytes::new(),
        nonce,
    };
    let mut timestamp = to_timestamp(profile.timestamp);
    timestamp.nanos = 0;
    let channel_header = ChannelHeader {
        r#type: HeaderType::Config as i32,
        version: 1, // common/genesis msgVersion
        timestamp: Some(timestamp),
        channel_id: profile.channel_id.clone(),
        tx_id: compute_tx_id(&signature_header.nonce, &signature_header.creator),
        epoch: 0,
        ..Default::default()
    };
    let payload = Payload {
        header: Some(Header {
            channel_header: channel_header.encode_to_vec().into(),
            signature_header: signature_header.encode_to_vec().into(),
        }),
        data: ConfigEnvelope {
            config: Some(config),
            last_update: None,
        }
        .encode_to_vec()
        .into(),
    };
    let envelope = Envelope {
        payload: payload.encode_to_vec().into(),
        signature: Bytes::new(),
    };
    let data = vec![Bytes::from(envelope.encode_to_vec())];
    let data_hash = Sha256::digest(&data[0]).to_vec();

    let mut metadata = vec![Bytes::new(); 5];
    metadata[cb::BlockMetadataIndex::Signatures as usize] = Metadata {
        value: OrdererBlockMetadata {
            last_config: Some(LastConfig { index: 0 }),
            consenter_metadata: Bytes::new(),
        }
        .encode_to_vec()
        .into(),
        signatures: Vec::new(),
    }
    .encode_to_vec()
    .into();
    metadata[cb::BlockMetadataIndex::LastConfig as usize] = Metadata {
        value: LastConfig { index: 0 }.encode_to_vec().into(),
        signatures: Vec::new(),
    }
    .encode_to_vec()
    .into();

    Ok(Block {
        header: Some(BlockHeader {
            number: 0,
            previous_hash: Bytes::new(),
            data_hash: data_hash.into(),
        }),
        data: Some(BlockData { data }),
        metadata: Some(BlockMetadata { metadata }),
    })
}

/// encoder.NewChannelGroup.
fn channel_group(profile: &ChannelProfile) -> Result<ConfigGroup> {
    let mut group = new_group();
    add_standard_policies(&mut group);
    add_value(
        &mut group,
        "HashingAlgorithm",
        HashingAlgorithm {
            name: "SHA256".into(),
        },
    );
    add_value(
        &mut group,
        "BlockDataHashingStructure",
        BlockDataHashingStructure { width: u32::MAX },
    );
    add_value(&mut group, "Capabilities", capabilities("V2_0"));
    group
        .groups
        .insert("Orderer".into(), orderer_group(profile)?);
    group
        .groups
        .insert("Application".into(), application_group(profile)?);
    Ok(group)
}

/// encoder.NewOrdererGroup.
fn orderer_group(profile: &ChannelProfile) -> Result<ConfigGroup> {
    let mut group = new_group();
    add_standard_policies(&mut group);
    add_policy(
        &mut group,
        "BlockValidation",
        implicit_meta(WRITERS, implicit_meta_policy::Rule::Any),
    );
    add_value(
        &mut group,
        "BatchSize",
        BatchSize {
            max_message_count: MAX_MESSAGE_COUNT,
            absolute_max_bytes: ABSOLUTE_MAX_BYTES,
            preferred_max_bytes: PREFERRED_MAX_BYTES,
        },
    );
    add_value(
        &mut group,
        "BatchTimeout",
        BatchTimeout {
            timeout: BATCH_TIMEOUT.into(),
        },
    );
    add_value(
        &mut group,
        "ChannelRestrictions",
        ChannelRestrictions { max_count: 0 },
    );
    add_value(&mut group, "Capabilities", capabilities("V2_0"));
    add_value(
        &mut group,
        "ConsensusType",
        ConsensusType {
            r#type: profile.consensus.type_name().into(),
            metadata: Bytes::new(),
            state: 0,
        },
    );
    for org in &profile.orderer_orgs {
        let mut org_group = org_group(org, false)?;
        if !org.orderer_endpoints.is_empty() {
            add_value(
                &mut org_group,
                "Endpoints",
                OrdererAddresses {
                    addresses: org.orderer_endpoints.clone(),
                },
            );
        }
        insert_org(&mut group, org, org_group)?;
    }
    Ok(group)
}

/// encoder.NewApplicationGroup (no ACLs, no anchor peers: configtx.yaml has none).
fn application_group(profile: &ChannelProfile) -> Result<ConfigGroup> {
    let mut group = new_group();
    add_standard_policies(&mut group);
    add_policy(
        &mut group,
        "LifecycleEndorsement",
        implicit_meta(ENDORSEMENT, implicit_meta_policy::Rule::Majority),
    );
    add_policy(
        &mut group,
        ENDORSEMENT,
        implicit_meta(ENDORSEMENT, implicit_meta_policy::Rule::Majority),
    );
    add_value(&mut group, "Capabilities", capabilities("V2_5"));
    for org in &profile.application_orgs {
        let org_group = org_group(org, true)?;
        insert_org(&mut group, org, org_group)?;
    }
    Ok(group)
}

fn insert_org(parent: &mut ConfigGroup, org: &OrgProfile, group: ConfigGroup) -> Result<()> {
    if parent.groups.insert(org.name.clone(), group).is_some() {
        bail!("genesis block: organization {} is listed twice", org.name);
    }
    Ok(())
}

/// An org group: Readers/Writers `OR('<msp>.member')`, Admins `OR('<msp>.admin')`
/// (plus Endorsement `OR('<msp>.member')` for application orgs) and the MSP value.
fn org_group(org: &OrgProfile, endorsement: bool) -> Result<ConfigGroup> {
    let mut group = new_group();
    add_policy(
        &mut group,
        READERS,
        signed_by_role(&org.msp_id, MspRoleType::Member),
    );
    add_policy(
        &mut group,
        WRITERS,
        signed_by_role(&org.msp_id, MspRoleType::Member),
    );
    add_policy(
        &mut group,
        ADMINS,
        signed_by_role(&org.msp_id, MspRoleType::Admin),
    );
    if endorsement {
        add_policy(
            &mut group,
            ENDORSEMENT,
            signed_by_role(&org.msp_id, MspRoleType::Member),
        );
    }
    let msp = verifying_msp_config(&org.msp_dir, &org.msp_id)
        .with_context(|| format!("loading the MSP of organization {}", org.name))?;
    add_value(&mut group, "MSP", msp);
    Ok(group)
}

fn new_group() -> ConfigGroup {
    ConfigGroup {
        mod_policy: ADMINS.into(),
        ..Default::default()
    }
}

fn add_value(group: &mut ConfigGroup, key: &str, value: impl ConfigValueBytes) {
    group.values.insert(
        key.into(),
        ConfigValue {
            version: 0,
            value: value.value_bytes().into(),
            mod_policy: ADMINS.into(),
        },
    );
}

fn add_policy(group: &mut ConfigGroup, key: &str, policy: Policy) {
    group.policies.insert(
        key.into(),
        ConfigPolicy {
            version: 0,
            policy: Some(policy),
            mod_policy: ADMINS.into(),
        },
    );
}

/// Readers `ANY Readers`, Writers `ANY Writers`, Admins `MAJORITY Admins`.
fn add_standard_policies(group: &mut ConfigGroup) {
    use implicit_meta_policy::Rule;
    add_policy(group, READERS, implicit_meta(READERS, Rule::Any));
    add_policy(group, WRITERS, implicit_meta(WRITERS, Rule::Any));
    add_policy(group, ADMINS, implicit_meta(ADMINS, Rule::Majority));
}

fn implicit_meta(sub_policy: &str, rule: implicit_meta_policy::Rule) -> Policy {
    Policy {
        r#type: PolicyType::ImplicitMeta as i32,
        value: ImplicitMetaPolicy {
            sub_policy: sub_policy.into(),
            rule: rule as i32,
        }
        .encode_to_vec()
        .into(),
    }
}

/// `OR('<msp_id>.<role>')` as policydsl compiles it: 1-of [signed_by 0].
fn signed_by_role(msp_id: &str, role: MspRoleType) -> Policy {
    let envelope = SignaturePolicyEnvelope {
        version: 0,
        rule: Some(SignaturePolicy {
            r#type: Some(signature_policy::Type::NOutOf(signature_policy::NOutOf {
                n: 1,
                rules: vec![SignaturePolicy {
                    r#type: Some(signature_policy::Type::SignedBy(0)),
                }],
            })),
        }),
        identities: vec![MspPrincipal {
            principal_classification: Classification::Role as i32,
            principal: MspRole {
                msp_identifier: msp_id.into(),
                role: role as i32,
            }
            .encode_to_vec()
            .into(),
        }],
    };
    Policy {
        r#type: PolicyType::Signature as i32,
        value: envelope.encode_to_vec().into(),
    }
}

/// `common.Capabilities{capabilities: {name: {}}}` encoded as Go's protobuf does: a
/// map entry always carries its message value, even an empty one (`12 00`), where
/// prost leaves a default value out. Peers and Fabric's orderer decode both forms, but
/// this keeps our config bytes identical to configtxgen's.
fn capabilities(name: &str) -> RawMessage {
    let mut entry = Vec::new();
    prost::encoding::string::encode(1, &name.to_string(), &mut entry);
    prost::encoding::message::encode(2, &Capability {}, &mut entry);
    let mut out = Vec::new();
    prost::encoding::bytes::encode(1, &entry, &mut out);
    debug_assert_eq!(
        Capabilities::decode(out.as_slice()).ok(),
        Some(Capabilities {
            capabilities: [(name.to_string(), Capability {})].into_iter().collect()
        })
    );
    RawMessage(out)
}

/// Bytes already encoded, for [`add_value`].
struct RawMessage(Vec<u8>);

trait ConfigValueBytes {
    fn value_bytes(&self) -> Vec<u8>;
}

impl<M: Message> ConfigValueBytes for M {
    fn value_bytes(&self) -> Vec<u8> {
        self.encode_to_vec()
    }
}

impl ConfigValueBytes for RawMessage {
    fn value_bytes(&self) -> Vec<u8> {
        self.0.clone()
    }
}
