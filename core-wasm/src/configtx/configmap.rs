//! Fabric's `configmap.go`: a config tree as a flat map from element paths
//! ("[Value]  /Channel/Orderer/BatchSize") to elements, and back.

use std::collections::BTreeMap;

use fabric_protos::common::{ConfigGroup, ConfigPolicy, ConfigValue};

use super::ROOT_GROUP;

const GROUP_PREFIX: &str = "[Group]  ";
const VALUE_PREFIX: &str = "[Value]  ";
const POLICY_PREFIX: &str = "[Policy] ";
/// `configmap.go`'s upgrade of v1.0 channels: with this key present, an empty
/// mod_policy becomes `Admins`.
const HACKY_FIX_ORDERER_CAPABILITIES: &str = "[Value]  /Channel/Orderer/Capabilities";
const HACKY_FIX_NEW_MOD_POLICY: &str = "Admins";
/// `configtx.MaxLength`.
const MAX_ID_LENGTH: usize = 249;

/// One element of a config tree (Fabric's `comparable`).
#[derive(Clone, Copy, Debug)]
enum Element<'a> {
    Group(&'a ConfigGroup),
    Value(&'a ConfigValue),
    Policy(&'a ConfigPolicy),
}

#[derive(Clone, Debug)]
pub(super) struct Comparable<'a> {
    element: Element<'a>,
    key: &'a str,
    /// The path of the group holding the element, from the root key on.
    path: Vec<&'a str>,
}

impl Comparable<'_> {
    pub(super) fn version(&self) -> u64 {
        match self.element {
            Element::Group(g) => g.version,
            Element::Value(v) => v.version,
            Element::Policy(p) => p.version,
        }
    }

    pub(super) fn mod_policy(&self) -> &str {
        match self.element {
            Element::Group(g) => &g.mod_policy,
            Element::Value(v) => &v.mod_policy,
            Element::Policy(p) => &p.mod_policy,
        }
    }

    /// The group whose policy manager a relative mod_policy is resolved in (Fabric's
    /// `policyForItem`): the holding group, or the group itself for a group.
    pub(super) fn policy_group_path(&self) -> String {
        let mut path = String::new();
        for p in &self.path {
            path.push('/');
            path.push_str(p);
        }
        if let Element::Group(_) = self.element {
            path.push('/');
            path.push_str(self.key);
        }
        path
    }
}

pub(super) type ConfigMap<'a> = BTreeMap<String, Comparable<'a>>;

/// Fabric's `validateConfigID`.
fn validate_config_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("config ID illegal, cannot be empty".into());
    }
    if id.len() > MAX_ID_LENGTH {
        return Err(format!(
            "config ID illegal, cannot be longer than {MAX_ID_LENGTH}"
        ));
    }
    if id == "." || id == ".." {
        return Err(format!("name '{id}' for config ID is not allowed"));
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    {
        return Err(format!("config ID '{id}' contains illegal characters"));
    }
    Ok(())
}

/// Fabric's `validateModPolicy`.
pub(super) fn validate_mod_policy(mod_policy: &str) -> Result<(), String> {
    if mod_policy.is_empty() {
        return Err("mod_policy not set".into());
    }
    let trimmed = mod_policy.strip_prefix('/').unwrap_or(mod_policy);
    for (i, element) in trimmed.split('/').enumerate() {
        validate_config_id(element).map_err(|e| format!("path element at {i} is invalid: {e}"))?;
    }
    Ok(())
}

/// Fabric's `mapConfig`: every element of the tree under `group` (taken as the root
/// group) by its full path key.
pub(super) fn map_config(group: Option<&ConfigGroup>) -> Result<ConfigMap<'_>, String> {
    let mut out = ConfigMap::new();
    if let Some(group) = group {
        recurse_config(&mut out, Vec::new(), ROOT_GROUP, group)?;
    }
    Ok(out)
}

fn add_to_map<'a>(out: &mut ConfigMap<'a>, item: Comparable<'a>) -> Result<(), String> {
    let prefix = match item.element {
        Element::Group(_) => GROUP_PREFIX,
        Element::Value(_) => VALUE_PREFIX,
        Element::Policy(_) => POLICY_PREFIX,
    };
    validate_config_id(item.key)
        .map_err(|e| format!("illegal characters in key: {prefix}: {e}"))?;
    let mut key = prefix.to_string();
    for p in &item.path {
        key.push('/');
        key.push_str(p);
    }
    key.push('/');
    key.push_str(item.key);
    out.insert(key, item);
    Ok(())
}

fn recurse_config<'a>(
    out: &mut ConfigMap<'a>,
    path: Vec<&'a str>,
    key: &'a str,
    group: &'a ConfigGroup,
) -> Result<(), String> {
    add_to_map(
        out,
        Comparable {
            element: Element::Group(group),
            key,
            path: path.clone(),
        },
    )?;
    let mut inner = path;
    inner.push(key);
    for (k, g) in &group.groups {
        recurse_config(out, inner.clone(), k, g)?;
    }
    for (k, v) in &group.values {
        add_to_map(
            out,
            Comparable {
                element: Element::Value(v),
                key: k,
                path: inner.clone(),
            },
        )?;
    }
    for (k, p) in &group.policies {
        add_to_map(
            out,
            Comparable {
                element: Element::Policy(p),
                key: k,
                path: inner.clone(),
            },
        )?;
    }
    Ok(())
}

/// Fabric's `configMapToConfig`: the tree rooted at `/Channel` rebuilt from a map.
pub(super) fn config_map_to_config(map: &ConfigMap) -> Result<ConfigGroup, String> {
    let hacky_fix = map.contains_key(HACKY_FIX_ORDERER_CAPABILITIES);
    recurse_config_map(&format!("/{ROOT_GROUP}"), map, hacky_fix)
}

fn recurse_config_map(path: &str, map: &ConfigMap, hacky_fix: bool) -> Result<ConfigGroup, String> {
    let group_path = format!("{GROUP_PREFIX}{path}");
    let Some(item) = map.get(&group_path) else {
        return Err(format!("missing group at path: {group_path}"));
    };
    let Element::Group(group) = item.element else {
        return Err(format!("ConfigGroup not found at group path: {group_path}"));
    };
    let mut out = ConfigGroup {
        version: group.version,
        mod_policy: group.mod_policy.clone(),
        ..Default::default()
    };
    for key in group.groups.keys() {
        let child = recurse_config_map(&format!("{path}/{key}"), map, hacky_fix)?;
        out.groups.insert(key.clone(), child);
    }
    for key in group.values.keys() {
        let value_path = format!("{VALUE_PREFIX}{path}/{key}");
        let Some(item) = map.get(&value_path) else {
            return Err(format!("missing value at path: {value_path}"));
        };
        let Element::Value(value) = item.element else {
            return Err(format!("ConfigValue not found at value path: {value_path}"));
        };
        out.values.insert(key.clone(), value.clone());
    }
    for key in group.policies.keys() {
        let policy_path = format!("{POLICY_PREFIX}{path}/{key}");
        let Some(item) = map.get(&policy_path) else {
            return Err(format!("missing policy at path: {policy_path}"));
        };
        let Element::Policy(policy) = item.element else {
            return Err(format!(
                "ConfigPolicy not found at policy path: {policy_path}"
            ));
        };
        out.policies.insert(key.clone(), policy.clone());
    }
    if hacky_fix {
        if out.mod_policy.is_empty() {
            out.mod_policy = HACKY_FIX_NEW_MOD_POLICY.into();
        }
        for value in out.values.values_mut() {
            if value.mod_policy.is_empty() {
                value.mod_policy = HACKY_FIX_NEW_MOD_POLICY.into();
            }
        }
        for policy in out.policies.values_mut() {
            if policy.mod_policy.is_empty() {
                policy.mod_policy = HACKY_FIX_NEW_MOD_POLICY.into();
            }
        }
    }
    Ok(out)
}
