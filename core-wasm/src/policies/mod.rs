//! Fabric's policy machinery (`common/policies`, `common/cauthdsl`, the principal
//! checks of `msp/mspimpl.go`): the policies of a channel config by absolute path,
//! and their evaluation over signed data.
//!
//! A [`PolicyManager`] compiles every policy of the config tree once, when the config
//! is parsed: `SIGNATURE` policies (a `SignaturePolicyEnvelope`: n-out-of rules over
//! MSP principals) and `IMPLICIT_META` policies (ANY / ALL / MAJORITY of the
//! same-named policy of each subgroup). Other types are refused, as Fabric's
//! channelconfig registers no provider for them.
//!
//! [`PolicyManager::evaluate`] is Fabric's `EvaluateSignedData`. The signature set is
//! turned into identities once per evaluation (Fabric's `SignatureSetToValidIdentities`,
//! which Fabric repeats for each signature policy reached): an identity that does not
//! deserialize (unknown MSP, not a certificate, not a P-256 key) is dropped, one whose
//! identity (MSP id + certificate) was already seen is dropped, one whose signature does
//! not verify (low-S enforced) is dropped and does not count as seen. An identity is
//! validated against its MSP (chain, CRLs, OUs; through the [`MspManager`]'s cache) only
//! when a principal needs it, at most once per evaluation.
//!
//! Like Fabric's MSP, the evaluation does not look at the clock: a certificate past its
//! NotAfter still satisfies a policy (the chain is checked at NotBefore + 1s, see
//! [`crate::msp`]); expiry is the job of the Broadcast expiration filter and of
//! Deliver's session check.
//!
//! The principal semantics are those of an MSP of version 1.4.3 (channel capability
//! V2_0): with NodeOUs, ADMIN is "listed in `admins`, or valid and carrying the admin
//! OU", ORDERER is "valid and carrying the orderer OU"; without NodeOUs, ADMIN is
//! "listed in `admins`" and CLIENT / PEER / ORDERER are never satisfied.

mod compile;
mod error;
mod evaluate;

use std::collections::BTreeMap;
use std::sync::Arc;

use fabric_protos::common::ConfigGroup;

use crate::crypto::Crypto;
use crate::msp::{Creator, MspManager};
use compile::{Policy, build};
use evaluate::Evaluation;

pub use error::PolicyError;

/// Fabric's `RootGroupKey`: the name of the channel group, root of every path.
const ROOT: &str = "Channel";
/// Fabric's `policies.PathSeparator`.
const SEP: &str = "/";

/// One signature over data, as Fabric's `protoutil.SignedData`.
#[derive(Clone, Copy, Debug)]
pub struct SignedData<'a> {
    pub data: &'a [u8],
    /// A serialized `msp.SerializedIdentity`.
    pub identity: &'a [u8],
    pub signature: &'a [u8],
}

/// Every policy of a channel config by absolute path (`/Channel/Writers`,
/// `/Channel/Orderer/Admins`, `/Channel/Application/Org1MSP/Readers`, ...; group
/// names as in the config tree).
#[derive(Clone, Debug, Default)]
pub struct PolicyManager {
    /// Fabric's `ManagerImpl.Policies` of the root manager: path relative to
    /// `/Channel` ("Writers", "Orderer/Admins", "Application/Org1/Readers") -> policy.
    policies: BTreeMap<String, Arc<Policy>>,
}

/// Fabric's `ManagerImpl.GetPolicy` lookup in the policies of the manager at
/// `manager_path` (no leading separator, e.g. "Channel/Orderer"): an absolute id must
/// start with the manager's path; a relative one is looked up as is. `Err` carries the
/// id Fabric's `rejectPolicy` names.
fn lookup<'a>(
    manager_path: &str,
    policies: &'a BTreeMap<String, Arc<Policy>>,
    id: &str,
) -> Result<&'a Arc<Policy>, String> {
    if id.is_empty() {
        return Err(String::new());
    }
    let relpath = if let Some(rest) = id.strip_prefix(SEP) {
        let Some(after) = rest.strip_prefix(manager_path) else {
            return Err(id.to_string());
        };
        // Go slices `id[1+len(path)+1:]`: one more character, whatever it is.
        let mut chars = after.chars();
        if chars.next().is_none() {
            return Err(id.to_string());
        }
        chars.as_str()
    } else {
        id
    };
    policies.get(relpath).ok_or_else(|| relpath.to_string())
}

impl PolicyManager {
    /// Builds the policies of the config tree rooted at `channel_group` (`/Channel`).
    /// Errors carry Fabric's `NewManagerImpl` texts.
    pub fn from_channel_group(channel_group: &ConfigGroup) -> Result<PolicyManager, PolicyError> {
        Ok(PolicyManager {
            policies: build(ROOT, channel_group)?,
        })
    }

    /// Whether the policy at `path` (absolute, or relative to `/Channel`) exists
    /// (Fabric's `GetPolicy` `ok`).
    pub fn contains(&self, path: &str) -> bool {
        lookup(ROOT, &self.policies, path).is_ok()
    }

    /// The absolute paths of all policies, sorted.
    pub fn paths(&self) -> Vec<String> {
        self.policies
            .keys()
            .map(|k| format!("{SEP}{ROOT}{SEP}{k}"))
            .collect()
    }

    /// Fabric's `EvaluateSignedData` for the policy at `path` (absolute, or relative
    /// to `/Channel`). `Err` carries Fabric's text: "signature set did not satisfy
    /// policy", "implicit policy evaluation failed - ...", or "no such policy: '...'"
    /// for a path that does not exist. `now_unix_nanos` is not used: Fabric's policy
    /// evaluation does not check expiry (see the module docs).
    pub fn evaluate(
        &self,
        path: &str,
        signed: &[SignedData],
        msps: &MspManager,
        now_unix_nanos: u64,
        crypto: &dyn Crypto,
    ) -> Result<(), PolicyError> {
        let _ = now_unix_nanos;
        let policy = lookup(ROOT, &self.policies, path).map_err(PolicyError::NoSuchPolicy)?;
        Evaluation::new(signed, None, msps, crypto).policy(policy)
    }

    /// [`PolicyManager::evaluate`] of signatures whose creators the caller has looked
    /// up already: `creators[i]` must be `msps.creator(signed[i].identity).ok()`, from
    /// the same `msps` (the Broadcast and Deliver filters look the creator up for
    /// their expiry check). The same answer, without looking each creator up (or
    /// parsing it, when it is not cached) a second time; `None` when there is no
    /// policy at `path` ([`PolicyManager::contains`] is false).
    pub(crate) fn evaluate_with_creators(
        &self,
        path: &str,
        signed: &[SignedData],
        creators: &[Option<&Creator>],
        msps: &MspManager,
        crypto: &dyn Crypto,
    ) -> Option<Result<(), PolicyError>> {
        assert_eq!(signed.len(), creators.len(), "one creator per signature");
        let policy = lookup(ROOT, &self.policies, path).ok()?;
        Some(Evaluation::new(signed, Some(creators), msps, crypto).policy(policy))
    }

    /// Resolves a mod_policy relative to a group path, as Fabric's configtx does
    /// ("Admins" under /Channel/Orderer -> /Channel/Orderer/Admins; absolute paths
    /// stay). An empty policy stays empty (Fabric refuses it as "no such policy").
    pub fn resolve(group_path: &str, policy: &str) -> String {
        if policy.is_empty() || policy.starts_with(SEP) {
            policy.to_string()
        } else {
            format!("{}{SEP}{policy}", group_path.trim_end_matches(SEP))
        }
    }
}

#[cfg(test)]
mod tests;
