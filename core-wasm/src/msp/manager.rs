//! The MSPs of a channel and the identities validated under them.

use std::collections::BTreeMap;
use std::sync::Arc;

use fabric_protos::msp::{FabricMspConfig, MspConfig};
use prost::Message;

use super::cache::IdentityCache;
use super::cert::check_validity;
use super::error::MspError;
use super::identity::{Creator, CreatorState, Identity, ParsedIdentity};
use super::x509::Msp;
use crate::crypto::Crypto;

/// `MSPConfig.type` of an X.509 (Fabric) MSP; 1 is idemix.
const MSP_TYPE_FABRIC: i32 = 0;

/// An MSP this orderer cannot evaluate (idemix): its identities are refused.
#[derive(Clone, Debug)]
enum MspEntry {
    X509(Box<Msp>),
    Unsupported { kind: i32 },
}

/// Field 1 of both `FabricMSPConfig` and `IdemixMSPConfig`: the MSP id.
#[derive(Clone, PartialEq, prost::Message)]
struct MspName {
    #[prost(string, tag = "1")]
    name: String,
}

/// The MSP id an `MSPConfig` defines, whatever its type.
pub fn msp_config_name(config: &MspConfig) -> Result<String, MspError> {
    MspName::decode(config.config.as_ref())
        .map(|n| n.name)
        .map_err(MspError::MspConfig)
}

/// The MSPs of a channel, by MSP id, with the identities validated under them.
#[derive(Clone, Debug, Default)]
pub struct MspManager {
    msps: BTreeMap<String, MspEntry>,
    pub(super) cache: IdentityCache,
}

impl MspManager {
    /// Builds the MSPs from their `MSPConfig`s (Fabric type 0 is X.509; idemix MSPs are
    /// recorded but their identities are refused). The same MSP id twice is an error
    /// unless both configs are identical.
    pub fn new(configs: &[MspConfig], crypto: &dyn Crypto) -> Result<Self, MspError> {
        let mut msps = BTreeMap::new();
        let mut seen: BTreeMap<String, &MspConfig> = BTreeMap::new();
        for config in configs {
            let (name, entry) = if config.r#type == MSP_TYPE_FABRIC {
                let fabric = FabricMspConfig::decode(config.config.as_ref())
                    .map_err(MspError::FabricMspConfig)?;
                let msp = Msp::setup(&fabric, crypto).map_err(MspError::Setup)?;
                (msp.name.clone(), MspEntry::X509(Box::new(msp)))
            } else {
                (
                    msp_config_name(config)?,
                    MspEntry::Unsupported {
                        kind: config.r#type,
                    },
                )
            };
            if let Some(previous) = seen.get(&name) {
                if *previous != config {
                    return Err(MspError::Duplicate(name));
                }
                continue;
            }
            seen.insert(name.clone(), config);
            msps.insert(name, entry);
        }
        Ok(MspManager {
            msps,
            cache: IdentityCache::default(),
        })
    }

    /// The MSP ids, sorted.
    pub fn msp_ids(&self) -> Vec<String> {
        self.msps.keys().cloned().collect()
    }

    /// Whether an MSP of this id exists.
    pub fn contains(&self, msp_id: &str) -> bool {
        self.msps.contains_key(msp_id)
    }

    /// The X.509 MSP of this id (`None`: undefined, or of a type this orderer does not
    /// support).
    pub(crate) fn x509_msp(&self, msp_id: &str) -> Option<&Msp> {
        match self.msps.get(msp_id) {
            Some(MspEntry::X509(msp)) => Some(msp),
            _ => None,
        }
    }

    /// Deserialize a `msp.SerializedIdentity` and validate it against the MSP it
    /// names: the MSP checks of [`MspManager::validate_parsed`] (cached), plus the
    /// certificate being within its validity period at `now_unix_nanos`.
    pub fn validate_identity(
        &self,
        serialized: &[u8],
        now_unix_nanos: u64,
        crypto: &dyn Crypto,
    ) -> Result<Identity, MspError> {
        let creator = self.creator(serialized)?;
        let identity = self.validate_creator(&creator, crypto)?;
        check_validity(
            identity.not_before_unix_nanos,
            identity.not_after_unix_nanos,
            now_unix_nanos,
        )?;
        Ok(Identity::clone(&identity))
    }

    /// A message's creator, from the identity cache when it was validated before,
    /// else parsed (a malformed identity is an error). No signature is checked.
    pub fn creator(&self, serialized: &[u8]) -> Result<Creator, MspError> {
        if let Some(identity) = self.cache.get(serialized) {
            return Ok(Creator(CreatorState::Validated(identity)));
        }
        let parsed = ParsedIdentity::from_serialized(serialized)?;
        Ok(Creator(CreatorState::Parsed {
            serialized: serialized.into(),
            parsed: Box::new(parsed),
        }))
    }

    /// The validated identity of a creator this manager returned: the cached one, or
    /// validated now (see [`MspManager::validate_parsed`]) and cached if valid.
    pub fn validate_creator(
        &self,
        creator: &Creator,
        crypto: &dyn Crypto,
    ) -> Result<Arc<Identity>, MspError> {
        match &creator.0 {
            CreatorState::Validated(identity) => Ok(identity.clone()),
            CreatorState::Parsed { serialized, parsed } => {
                let identity = Arc::new(self.validate_parsed(parsed, crypto)?);
                self.cache.insert(serialized, identity.clone());
                Ok(identity)
            }
        }
    }

    /// How many validated identities are cached (for tests and metrics).
    pub fn cached_identities(&self) -> usize {
        self.cache.len()
    }

    /// Validate an already parsed creator the way Fabric's MSP does (chain checked at
    /// the certificate's NotBefore + 1s, so an expired certificate still validates:
    /// expiry is checked separately, see [`crate::msp`]).
    pub fn validate_parsed(
        &self,
        parsed: &ParsedIdentity,
        crypto: &dyn Crypto,
    ) -> Result<Identity, MspError> {
        let msp = match self.msps.get(&parsed.msp_id) {
            None => return Err(MspError::UnknownMsp(parsed.msp_id.clone())),
            Some(MspEntry::Unsupported { kind }) => {
                return Err(MspError::UnsupportedType {
                    msp_id: parsed.msp_id.clone(),
                    kind: *kind,
                });
            }
            Some(MspEntry::X509(msp)) => msp,
        };
        let Some(public_key) = parsed.cert.public_key() else {
            return Err(MspError::NotP256);
        };
        let certifiers_identifier = msp
            .validate(&parsed.cert, crypto)
            .map_err(MspError::Invalid)?;
        Ok(Identity {
            msp_id: parsed.msp_id.clone(),
            public_key: public_key.to_vec(),
            not_before_unix_nanos: parsed.cert.not_before_unix_nanos,
            not_after_unix_nanos: parsed.cert.not_after_unix_nanos,
            organizational_units: parsed.cert.organizational_units.clone(),
            cert_der: parsed.cert.raw.clone(),
            certifiers_identifier,
        })
    }
}
