//! Compiling the policies of a config tree (Fabric's `NewManagerImpl` and the
//! `cauthdsl` and implicit-meta providers).

use std::collections::BTreeMap;
use std::sync::Arc;

use fabric_protos::common::{
    ConfigGroup, ImplicitMetaPolicy, SignaturePolicy, SignaturePolicyEnvelope,
    implicit_meta_policy, policy::PolicyType, signature_policy,
};
use fabric_protos::msp::{MspPrincipal, MspRole, msp_principal::Classification};
use prost::Message;

use super::{PolicyError, SEP, lookup};

/// A compiled policy.
#[derive(Debug)]
pub(super) enum Policy {
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
pub(super) struct Principal {
    pub(super) principal: MspPrincipal,
    /// For a ROLE principal: its `MSPRole`, or the text of the decoding error (the
    /// principal is then satisfied by nobody, as in Fabric, which decodes it each time).
    pub(super) role: Option<Result<MspRole, String>>,
}

impl Principal {
    fn new(principal: MspPrincipal) -> Self {
        let role = (principal.principal_classification == Classification::Role as i32)
            .then(|| decode_role(&principal));
        Principal { principal, role }
    }
}

/// The `MSPRole` of a ROLE principal, with Fabric's error text.
pub(super) fn decode_role(principal: &MspPrincipal) -> Result<MspRole, String> {
    MspRole::decode(principal.principal.as_ref())
        .map_err(|e| format!("could not unmarshal MSPRole from principal: {e}"))
}

/// A compiled `SignaturePolicy`.
#[derive(Debug)]
pub(super) enum Rule {
    SignedBy(usize),
    NOutOf { n: i32, rules: Vec<Rule> },
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
pub(super) fn build(
    path: &str,
    group: &ConfigGroup,
) -> Result<BTreeMap<String, Arc<Policy>>, PolicyError> {
    let mut managers = BTreeMap::new();
    for (name, sub) in &group.groups {
        let sub_path = format!("{path}{SEP}{name}");
        let policies = build(&sub_path, sub)?;
        managers.insert(name.clone(), (sub_path, policies));
    }
    let mut policies = BTreeMap::new();
    for (name, config_policy) in &group.policies {
        let Some(policy) = config_policy.policy.as_ref() else {
            return Err(PolicyError::Nil {
                name: name.clone(),
                path: path.into(),
            });
        };
        let compiled = if policy.r#type == PolicyType::ImplicitMeta as i32 {
            compile_implicit_meta(&policy.value, &managers).map_err(|reason| {
                PolicyError::ImplicitMeta {
                    name: name.clone(),
                    path: path.into(),
                    reason,
                }
            })?
        } else if policy.r#type == PolicyType::Signature as i32 {
            compile_signature_policy(&policy.value).map_err(|reason| PolicyError::Signature {
                name: name.clone(),
                path: path.into(),
                reason,
            })?
        } else {
            return Err(PolicyError::UnknownType {
                name: name.clone(),
                path: path.into(),
                kind: policy.r#type,
            });
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
