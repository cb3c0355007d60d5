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

use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::sync::Arc;

use fabric_protos::common::{
    ConfigGroup, ImplicitMetaPolicy, SignaturePolicy, SignaturePolicyEnvelope,
    implicit_meta_policy, policy::PolicyType, signature_policy,
};
use fabric_protos::msp::{
    CombinedPrincipal, MspIdentityAnonymity, MspPrincipal, MspRole, OrganizationUnit,
    SerializedIdentity, msp_identity_anonymity, msp_principal::Classification,
    msp_role::MspRoleType,
};
use prost::Message;

use crate::crypto::Crypto;
use crate::msp::{self, Creator, Identity, MspManager, NodeRole, ParsedCert};

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

/// A compiled policy.
#[derive(Debug)]
enum Policy {
    Signature {
        rule: Rule,
        principals: Vec<Principal>,
    },
    ImplicitMeta {
        sub_policy: String,
        /// Fabric's threshold (an `isize`, as Go's `int`, for its arithmetic).
        threshold: isize,
        /// The sub-policy of each subgroup, by group name; `None` when the subgroup
        /// has no such policy (Fabric's `rejectPolicy`).
        subs: Vec<(String, Option<Arc<Policy>>)>,
    },
}

/// A principal of a `SIGNATURE` policy, its `MSPRole` decoded when the policy is
/// compiled rather than at each evaluation.
#[derive(Debug)]
struct Principal {
    principal: MspPrincipal,
    /// For a ROLE principal: its `MSPRole`, or the text of the decoding error (the
    /// principal is then satisfied by nobody, as in Fabric, which decodes it each time).
    role: Option<Result<MspRole, String>>,
}

impl Principal {
    fn new(principal: MspPrincipal) -> Self {
        let role = (principal.principal_classification == Classification::Role as i32)
            .then(|| decode_role(&principal));
        Principal { principal, role }
    }
}

/// The `MSPRole` of a ROLE principal, with Fabric's error text.
fn decode_role(principal: &MspPrincipal) -> Result<MspRole, String> {
    MspRole::decode(principal.principal.as_ref())
        .map_err(|e| format!("could not unmarshal MSPRole from principal: {e}"))
}

/// A compiled `SignaturePolicy`.
#[derive(Debug)]
enum Rule {
    SignedBy(usize),
    NOutOf { n: i32, rules: Vec<Rule> },
}

/// Fabric's `rejectPolicy` text for a policy that does not exist.
fn no_such_policy(id: &str) -> String {
    format!("no such policy: '{id}'")
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

/// Fabric's `cauthdsl.compile`.
fn compile_rule(policy: Option<&SignaturePolicy>, principals: usize) -> Result<Rule, String> {
    let Some(policy) = policy else {
        return Err("Empty policy element".into());
    };
    match &policy.r#type {
        Some(signature_policy::Type::NOutOf(n_out_of)) => Ok(Rule::NOutOf {
            n: n_out_of.n,
            rules: n_out_of
                .rules
                .iter()
                .map(|r| compile_rule(Some(r), principals))
                .collect::<Result<_, _>>()?,
        }),
        Some(signature_policy::Type::SignedBy(index)) => {
            if *index < 0 || *index as usize >= principals {
                return Err(format!(
                    "identity index out of range, requested {index}, but identities length is {principals}"
                ));
            }
            Ok(Rule::SignedBy(*index as usize))
        }
        None => Err("Unknown type: <nil>:<nil>".into()),
    }
}

/// Fabric's `cauthdsl` provider `NewPolicy`.
fn compile_signature_policy(value: &[u8]) -> Result<Policy, String> {
    let envelope = SignaturePolicyEnvelope::decode(value)
        .map_err(|e| format!("Error unmarshalling to SignaturePolicy: {e}"))?;
    if envelope.version != 0 {
        return Err(format!(
            "This evaluator only understands messages of version 0, but version was {}",
            envelope.version
        ));
    }
    let rule = compile_rule(envelope.rule.as_ref(), envelope.identities.len())?;
    Ok(Policy::Signature {
        rule,
        principals: envelope
            .identities
            .into_iter()
            .map(Principal::new)
            .collect(),
    })
}

/// Fabric's `NewImplicitMetaPolicy`, over the sub-managers of a group.
fn compile_implicit_meta(
    value: &[u8],
    managers: &BTreeMap<String, (String, BTreeMap<String, Arc<Policy>>)>,
) -> Result<Policy, String> {
    let definition = ImplicitMetaPolicy::decode(value)
        .map_err(|e| format!("Error unmarshalling to ImplicitMetaPolicy: {e}"))?;
    let subs: Vec<(String, Option<Arc<Policy>>)> = managers
        .iter()
        .map(|(name, (path, policies))| {
            let sub = lookup(path, policies, &definition.sub_policy).ok().cloned();
            (name.clone(), sub)
        })
        .collect();
    let len = subs.len() as isize;
    let mut threshold = match implicit_meta_policy::Rule::try_from(definition.rule) {
        Ok(implicit_meta_policy::Rule::Any) => 1,
        Ok(implicit_meta_policy::Rule::All) => len,
        Ok(implicit_meta_policy::Rule::Majority) => len / 2 + 1,
        // Go's switch has no default: the threshold stays 0.
        Err(_) => 0,
    };
    if subs.is_empty() {
        threshold = 0;
    }
    Ok(Policy::ImplicitMeta {
        sub_policy: definition.sub_policy,
        threshold,
        subs,
    })
}

/// Fabric's `NewManagerImpl` for the group at `path` ("Channel", "Channel/Orderer",
/// ...): its own policies plus every descendant's as "group/name".
fn build(path: &str, group: &ConfigGroup) -> Result<BTreeMap<String, Arc<Policy>>, String> {
    let mut managers = BTreeMap::new();
    for (name, sub) in &group.groups {
        let sub_path = format!("{path}{SEP}{name}");
        let policies = build(&sub_path, sub)?;
        managers.insert(name.clone(), (sub_path, policies));
    }
    let mut policies = BTreeMap::new();
    for (name, config_policy) in &group.policies {
        let Some(policy) = config_policy.policy.as_ref() else {
            return Err(format!("policy {name} at path {path} was nil"));
        };
        let compiled = if policy.r#type == PolicyType::ImplicitMeta as i32 {
            compile_implicit_meta(&policy.value, &managers).map_err(|e| {
                format!("implicit policy {name} at path {path} did not compile: {e}")
            })?
        } else if policy.r#type == PolicyType::Signature as i32 {
            compile_signature_policy(&policy.value)
                .map_err(|e| format!("policy {name} at path {path} did not compile: {e}"))?
        } else {
            return Err(format!(
                "policy {name} at path {path} has unknown policy type: {}",
                policy.r#type
            ));
        };
        policies.insert(name.clone(), Arc::new(compiled));
    }
    for (group_name, (_, sub_policies)) in managers {
        for (name, policy) in sub_policies {
            policies.insert(format!("{group_name}{SEP}{name}"), policy);
        }
    }
    Ok(policies)
}

impl PolicyManager {
    /// Builds the policies of the config tree rooted at `channel_group` (`/Channel`).
    /// Errors carry Fabric's `NewManagerImpl` texts.
    pub fn from_channel_group(channel_group: &ConfigGroup) -> Result<PolicyManager, String> {
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
    ) -> Result<(), String> {
        let _ = now_unix_nanos;
        let policy = lookup(ROOT, &self.policies, path).map_err(|id| no_such_policy(&id))?;
        let eval = Evaluation {
            signed,
            creators: None,
            msps,
            crypto,
            identities: OnceCell::new(),
        };
        eval.policy(policy)
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
    ) -> Option<Result<(), String>> {
        assert_eq!(signed.len(), creators.len(), "one creator per signature");
        let policy = lookup(ROOT, &self.policies, path).ok()?;
        let eval = Evaluation {
            signed,
            creators: Some(creators),
            msps,
            crypto,
            identities: OnceCell::new(),
        };
        Some(eval.policy(policy))
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
    validated: OnceCell<Result<Arc<Identity>, String>>,
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
struct Evaluation<'a, 'm> {
    signed: &'a [SignedData<'a>],
    /// The creators of `signed`, when the caller looked them up.
    creators: Option<&'a [Option<&'a Creator>]>,
    msps: &'m MspManager,
    crypto: &'a dyn Crypto,
    identities: OnceCell<Vec<SignerIdentity<'a, 'm>>>,
}

impl<'a, 'm> Evaluation<'a, 'm> {
    fn policy(&self, policy: &Policy) -> Result<(), String> {
        match policy {
            Policy::Signature { rule, principals } => {
                let ids = self.identities();
                let mut used = Used::new(ids.len());
                if self.rule(rule, principals, ids, &mut used) {
                    Ok(())
                } else {
                    Err("signature set did not satisfy policy".into())
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
                Err(format!(
                    "implicit policy evaluation failed - {} sub-policies were satisfied, but this policy requires {threshold} of the '{sub_policy}' sub-policies to be satisfied",
                    threshold - remaining
                ))
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
    fn validate(&self, id: &SignerIdentity<'a, 'm>) -> Result<Arc<Identity>, String> {
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
        let not_valid = |e: String| {
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
                    Ok(MspRoleType::Member) => self.validate(id).map(|_| ()),
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
                    return self.validate(id).map(|_| ());
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
                let identity = self.validate(id)?;
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

#[cfg(test)]
mod tests;
