//! Evaluating a compiled policy over signed data (Fabric's `cauthdsl` evaluator and
//! the principal checks of `msp/mspimpl.go`).

use std::cell::OnceCell;
use std::sync::Arc;

use fabric_protos::msp::{
    CombinedPrincipal, MspIdentityAnonymity, MspPrincipal, MspRole, OrganizationUnit,
    SerializedIdentity, msp_identity_anonymity, msp_principal::Classification,
    msp_role::MspRoleType,
};
use prost::Message;

use super::compile::{Policy, Principal, Rule, decode_role};
use super::{PolicyError, SignedData};
use crate::crypto::Crypto;
use crate::msp::{self, Creator, Identity, MspError, MspManager, NodeRole, ParsedCert};

/// A signer's creator: the caller's (see [`PolicyManager::evaluate_with_creators`]),
/// or looked up by the evaluation.
enum SignerCreator<'a> {
    Given(&'a Creator),
    LookedUp(Creator),
}

impl std::ops::Deref for SignerCreator<'_> {
    type Target = Creator;

    fn deref(&self) -> &Creator {
        match self {
            SignerCreator::Given(creator) => creator,
            SignerCreator::LookedUp(creator) => creator,
        }
    }
}

/// A signer that passed deserialization, de-duplication and signature verification.
struct SignerIdentity<'a, 'm> {
    creator: SignerCreator<'a>,
    msp: &'m msp::Msp,
    /// Validation against the MSP, done at most once per evaluation.
    validated: OnceCell<Result<Arc<Identity>, MspError>>,
}

/// Which of the identities a rule has used (Fabric's `used` slice): one bit each in
/// a word for up to 64 identities (a Broadcast message has one), so that evaluating a
/// rule allocates nothing; a flag each in a vector beyond.
#[derive(Debug)]
enum Used {
    Word(u64),
    Flags(Vec<bool>),
}

impl Clone for Used {
    fn clone(&self) -> Self {
        match self {
            Used::Word(word) => Used::Word(*word),
            Used::Flags(flags) => Used::Flags(flags.clone()),
        }
    }

    fn clone_from(&mut self, source: &Self) {
        match (self, source) {
            (Used::Flags(flags), Used::Flags(from)) => flags.copy_from_slice(from),
            (this, source) => *this = source.clone(),
        }
    }
}

impl Used {
    fn new(identities: usize) -> Self {
        if identities <= 64 {
            Used::Word(0)
        } else {
            Used::Flags(vec![false; identities])
        }
    }

    fn get(&self, i: usize) -> bool {
        match self {
            Used::Word(word) => word >> i & 1 == 1,
            Used::Flags(flags) => flags[i],
        }
    }

    fn set(&mut self, i: usize) {
        match self {
            Used::Word(word) => *word |= 1 << i,
            Used::Flags(flags) => flags[i] = true,
        }
    }
}

/// One `evaluate` call.
pub(super) struct Evaluation<'a, 'm> {
    signed: &'a [SignedData<'a>],
    /// The creators of `signed`, when the caller looked them up.
    creators: Option<&'a [Option<&'a Creator>]>,
    msps: &'m MspManager,
    crypto: &'a dyn Crypto,
    identities: OnceCell<Vec<SignerIdentity<'a, 'm>>>,
}

impl<'a, 'm> Evaluation<'a, 'm> {
    /// An evaluation of `signed`; `creators`: see [`super::PolicyManager::evaluate_with_creators`].
    pub(super) fn new(
        signed: &'a [SignedData<'a>],
        creators: Option<&'a [Option<&'a Creator>]>,
        msps: &'m MspManager,
        crypto: &'a dyn Crypto,
    ) -> Self {
        Evaluation {
            signed,
            creators,
            msps,
            crypto,
            identities: OnceCell::new(),
        }
    }

    pub(super) fn policy(&self, policy: &Policy) -> Result<(), PolicyError> {
        match policy {
            Policy::Signature { rule, principals } => {
                let ids = self.identities();
                let mut used = Used::new(ids.len());
                if self.rule(rule, principals, ids, &mut used) {
                    Ok(())
                } else {
                    Err(PolicyError::NotSatisfied)
                }
            }
            Policy::ImplicitMeta {
                sub_policy,
                threshold,
                subs,
            } => {
                let mut remaining = *threshold;
                for (_, sub) in subs {
                    let satisfied = sub.as_ref().is_some_and(|p| self.policy(p).is_ok());
                    if satisfied {
                        remaining -= 1;
                        if remaining == 0 {
                            return Ok(());
                        }
                    }
                }
                if remaining == 0 {
                    return Ok(());
                }
                Err(PolicyError::ImplicitMetaNotSatisfied {
                    satisfied: threshold - remaining,
                    threshold: *threshold,
                    sub_policy: sub_policy.clone(),
                })
            }
        }
    }

    /// Fabric's `SignatureSetToValidIdentities`, computed once.
    fn identities(&self) -> &[SignerIdentity<'a, 'm>] {
        self.identities.get_or_init(|| {
            let mut ids: Vec<SignerIdentity> = Vec::with_capacity(self.signed.len());
            // The identities seen: indices into `ids`, sorted by (MSP id, certificate).
            let mut seen: Vec<usize> = Vec::new();
            for (i, sd) in self.signed.iter().enumerate() {
                let creator = match self.creators {
                    Some(creators) => match creators[i] {
                        Some(creator) => SignerCreator::Given(creator),
                        None => continue,
                    },
                    None => match self.msps.creator(sd.identity) {
                        Ok(creator) => SignerCreator::LookedUp(creator),
                        Err(_) => continue,
                    },
                };
                let Some((msp_id, msp)) = self
                    .msps
                    .x509_msp(creator.msp_id())
                    .map(|msp| (msp.name(), msp))
                else {
                    continue;
                };
                let Some(public_key) = creator.public_key() else {
                    continue;
                };
                let key = (msp_id, creator.cert_der());
                let slot = match seen
                    .binary_search_by(|&j| (ids[j].msp.name(), ids[j].creator.cert_der()).cmp(&key))
                {
                    Ok(_) => continue,
                    Err(slot) => slot,
                };
                if !msp::verify_signature(public_key, sd.data, sd.signature, self.crypto) {
                    continue;
                }
                // Only later signatures look at `seen` (so one signature, a Broadcast's,
                // needs no set at all).
                if i + 1 < self.signed.len() {
                    seen.insert(slot, ids.len());
                }
                ids.push(SignerIdentity {
                    creator,
                    msp,
                    validated: OnceCell::new(),
                });
            }
            ids
        })
    }

    /// Fabric's compiled `cauthdsl` evaluator: each identity satisfies at most one
    /// principal; a failed branch gives back the identities it used.
    fn rule(
        &self,
        rule: &Rule,
        principals: &[Principal],
        ids: &[SignerIdentity<'a, 'm>],
        used: &mut Used,
    ) -> bool {
        match rule {
            Rule::NOutOf { n, rules } => {
                let mut verified: i32 = 0;
                let mut scratch = used.clone();
                for r in rules {
                    scratch.clone_from(used);
                    if self.rule(r, principals, ids, &mut scratch) {
                        verified += 1;
                        used.clone_from(&scratch);
                    }
                }
                verified >= *n
            }
            Rule::SignedBy(index) => {
                let principal = &principals[*index];
                for (i, id) in ids.iter().enumerate() {
                    if used.get(i) {
                        continue;
                    }
                    if self.satisfies_principal(id, principal).is_ok() {
                        used.set(i);
                        return true;
                    }
                }
                false
            }
        }
    }

    /// The identity validated against its MSP (cached by the manager across
    /// evaluations, and here within one).
    fn validate(&self, id: &SignerIdentity<'a, 'm>) -> Result<Arc<Identity>, MspError> {
        id.validated
            .get_or_init(|| self.msps.validate_creator(&id.creator, self.crypto))
            .clone()
    }

    /// Fabric's `bccspmsp.SatisfiesPrincipal` (MSP v1.4.3): a combined principal is
    /// satisfied when all of its principals are.
    fn satisfies_principal(
        &self,
        id: &SignerIdentity<'a, 'm>,
        principal: &Principal,
    ) -> Result<(), String> {
        let Principal { principal, role } = principal;
        if principal.principal_classification != Classification::Combined as i32 {
            return self.satisfies_single(id, principal, role.as_ref());
        }
        let mut singles = Vec::new();
        collect_principals(principal, &mut singles)?;
        for single in &singles {
            self.satisfies_single(id, single, None)?;
        }
        Ok(())
    }

    /// Fabric's `satisfiesPrincipalInternalV142` (and the V13 / pre-V13 functions it
    /// falls back to). `role`: a ROLE principal's `MSPRole` when it was decoded
    /// already (see [`Principal`]).
    fn satisfies_single(
        &self,
        id: &SignerIdentity<'a, 'm>,
        principal: &MspPrincipal,
        role: Option<&Result<MspRole, String>>,
    ) -> Result<(), String> {
        let msp = id.msp;
        let different_msp = |expected: &str| {
            format!(
                "the identity is a member of a different MSP (expected {expected}, got {})",
                id.creator.msp_id()
            )
        };
        let not_valid = |e: MspError| {
            format!(
                "The identity is not valid under this MSP [{}]: {e}",
                msp.name()
            )
        };
        match Classification::try_from(principal.principal_classification) {
            Ok(Classification::Role) => {
                let decoded;
                let role = match role {
                    Some(role) => role.as_ref().map_err(Clone::clone)?,
                    None => {
                        decoded = decode_role(principal)?;
                        &decoded
                    }
                };
                if role.msp_identifier != msp.name() {
                    return Err(different_msp(&role.msp_identifier));
                }
                let kind = MspRoleType::try_from(role.role);
                if msp.ou_enforcement() {
                    match kind {
                        Ok(MspRoleType::Admin) => {
                            if msp.is_in_admins(id.creator.cert_der()) {
                                return Ok(());
                            }
                            let identity = self.validate(id).map_err(not_valid)?;
                            return msp
                                .has_ou_role(&identity.organizational_units, NodeRole::Admin)
                                .map_err(|e| {
                                    format!(
                                        "The identity is not an admin under this MSP [{}]: {e}",
                                        msp.name()
                                    )
                                });
                        }
                        Ok(MspRoleType::Orderer) => {
                            return self.has_role(id, NodeRole::Orderer);
                        }
                        _ => {}
                    }
                }
                match kind {
                    Ok(MspRoleType::Member) => {
                        self.validate(id).map(drop).map_err(|e| e.to_string())
                    }
                    Ok(MspRoleType::Admin) => {
                        if msp.is_in_admins(id.creator.cert_der()) {
                            Ok(())
                        } else {
                            Err("This identity is not an admin".into())
                        }
                    }
                    Ok(MspRoleType::Client) => self.has_role(id, NodeRole::Client),
                    Ok(MspRoleType::Peer) => self.has_role(id, NodeRole::Peer),
                    _ => Err(format!("invalid MSP role type {}", role.role)),
                }
            }
            Ok(Classification::Combined) => Err(
                "SatisfiesPrincipalInternal shall not be called with a CombinedPrincipal".into(),
            ),
            Ok(Classification::Anonymity) => {
                let anon =
                    MspIdentityAnonymity::decode(principal.principal.as_ref()).map_err(|e| {
                        format!("could not unmarshal MSPIdentityAnonymity from principal: {e}")
                    })?;
                match msp_identity_anonymity::MspIdentityAnonymityType::try_from(
                    anon.anonymity_type,
                ) {
                    Ok(msp_identity_anonymity::MspIdentityAnonymityType::Nominal) => Ok(()),
                    Ok(msp_identity_anonymity::MspIdentityAnonymityType::Anonymous) => Err(
                        "Principal is anonymous, but X.509 MSP does not support anonymous identities"
                            .into(),
                    ),
                    Err(_) => Err(format!(
                        "Unknown principal anonymity type: {}",
                        anon.anonymity_type
                    )),
                }
            }
            Ok(Classification::Identity) => {
                let invalid =
                    |e: String| format!("invalid identity principal, not a certificate: {e}");
                let sid =
                    SerializedIdentity::decode(principal.principal.as_ref()).map_err(|e| {
                        invalid(format!("could not deserialize a SerializedIdentity: {e}"))
                    })?;
                if sid.mspid != msp.name() {
                    return Err(invalid(format!(
                        "expected MSP ID {}, received {}",
                        msp.name(),
                        sid.mspid
                    )));
                }
                let der = msp::pem_decode(&sid.id_bytes)
                    .ok_or_else(|| invalid("could not decode the PEM structure".into()))?;
                let cert = ParsedCert::from_der(&der)
                    .map_err(|e| invalid(format!("parseCertificate failed: {e}")))?;
                if cert.public_key().is_none() {
                    return Err(invalid("failed to import certificate's public key".into()));
                }
                if cert.raw == id.creator.cert_der() {
                    // The principal's identity is the signer's certificate: validating
                    // one validates the other.
                    return self.validate(id).map(drop).map_err(|e| e.to_string());
                }
                Err("The identities do not match".into())
            }
            Ok(Classification::OrganizationUnit) => {
                let ou = OrganizationUnit::decode(principal.principal.as_ref()).map_err(|e| {
                    format!("could not unmarshal OrganizationUnit from principal: {e}")
                })?;
                if ou.msp_identifier != msp.name() {
                    return Err(different_msp(&ou.msp_identifier));
                }
                let identity = self.validate(id).map_err(|e| e.to_string())?;
                let matches = identity.organizational_units.iter().any(|unit| {
                    *unit == ou.organizational_unit_identifier
                        && identity.certifiers_identifier[..] == ou.certifiers_identifier[..]
                });
                if matches {
                    Ok(())
                } else {
                    Err("The identities do not match".into())
                }
            }
            Err(_) => Err(format!(
                "invalid principal type {}",
                principal.principal_classification
            )),
        }
    }

    /// Fabric's CLIENT / PEER / ORDERER role check: valid, and carrying the role's OU.
    fn has_role(&self, id: &SignerIdentity<'a, 'm>, role: NodeRole) -> Result<(), String> {
        let msp = id.msp;
        let identity = self.validate(id).map_err(|e| {
            format!(
                "The identity is not valid under this MSP [{}]: {e}",
                msp.name()
            )
        })?;
        msp.has_ou_role(&identity.organizational_units, role)
            .map_err(|e| {
                format!(
                    "The identity is not a [{}] under this MSP [{}]: {e}",
                    role.name(),
                    msp.name()
                )
            })
    }
}

/// Fabric's `collectPrincipals`: the leaves of (nested) combined principals.
fn collect_principals(principal: &MspPrincipal, out: &mut Vec<MspPrincipal>) -> Result<(), String> {
    if principal.principal_classification != Classification::Combined as i32 {
        out.push(principal.clone());
        return Ok(());
    }
    let combined = CombinedPrincipal::decode(principal.principal.as_ref())
        .map_err(|e| format!("could not unmarshal CombinedPrincipal from principal: {e}"))?;
    if combined.principals.is_empty() {
        return Err("No principals in CombinedPrincipal".into());
    }
    for p in &combined.principals {
        collect_principals(p, out)?;
    }
    Ok(())
}
