//! The MSP config of an MSP folder, as Fabric's msp.GetVerifyingMspConfig reads it
//! for configtxgen.

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use fabric_protos::msp::{
    FabricCryptoConfig, FabricMspConfig, FabricNodeOUs, FabricOuIdentifier, MspConfig,
};
use prost::Message;

use crate::identity::first_pem_block;

/// msp.GetVerifyingMspConfig for a FABRIC MSP folder: cacerts (required), admincerts,
/// intermediatecerts, tlscacerts (+ tlsintermediatecerts), crls, config.yaml NodeOUs
/// and OU identifiers; every certificate is the file's bytes as read.
pub fn verifying_msp_config(dir: &Path, msp_id: &str) -> Result<MspConfig> {
    let fail = |msg: String| anyhow!("MSP folder {}: {msg}", dir.display());
    let root_certs = pem_files(&dir.join("cacerts")).map_err(|e| fail(format!("cacerts/: {e}")))?;
    if root_certs.is_empty() {
        return Err(fail("cacerts/ has no PEM certificate".into()));
    }
    let optional = |sub: &str| -> Result<Vec<Bytes>> {
        let path = dir.join(sub);
        if !path.exists() {
            return Ok(Vec::new());
        }
        pem_files(&path).map_err(|e| fail(format!("{sub}/: {e}")))
    };
    let admins = optional("admincerts")?;
    let intermediate_certs = optional("intermediatecerts")?;
    let tls_root_certs = optional("tlscacerts")?;
    let tls_intermediate_certs = if tls_root_certs.is_empty() {
        Vec::new()
    } else {
        optional("tlsintermediatecerts")?
    };
    let revocation_list = optional("crls")?;

    let mut organizational_unit_identifiers = Vec::new();
    let mut fabric_node_ous = None;
    let config_file = dir.join("config.yaml");
    if config_file.exists() {
        let text =
            std::fs::read_to_string(&config_file).map_err(|e| fail(format!("config.yaml: {e}")))?;
        let config = parse_msp_config_yaml(&text).map_err(|e| fail(format!("config.yaml: {e}")))?;
        for (cert, ou) in &config.ou_identifiers {
            let raw = std::fs::read(dir.join(cert)).map_err(|e| {
                fail(format!(
                    "config.yaml: OrganizationalUnit certificate {cert}: {e}"
                ))
            })?;
            organizational_unit_identifiers.push(FabricOuIdentifier {
                certificate: raw.into(),
                organizational_unit_identifier: ou.clone(),
            });
        }
        if config.node_ous_enable {
            // As Fabric: an unreadable certificate is left out, not an error.
            let ou = |entry: &Option<(String, String)>| {
                entry
                    .as_ref()
                    .filter(|(_, ou)| !ou.is_empty())
                    .map(|(cert, ou)| FabricOuIdentifier {
                        certificate: if cert.is_empty() {
                            Bytes::new()
                        } else {
                            std::fs::read(dir.join(cert))
                                .map(Bytes::from)
                                .unwrap_or_default()
                        },
                        organizational_unit_identifier: ou.clone(),
                    })
            };
            fabric_node_ous = Some(FabricNodeOUs {
                enable: true,
                client_ou_identifier: ou(&config.client),
                peer_ou_identifier: ou(&config.peer),
                admin_ou_identifier: ou(&config.admin),
                orderer_ou_identifier: ou(&config.orderer),
            });
        }
    }

    let fabric = FabricMspConfig {
        name: msp_id.into(),
        root_certs,
        intermediate_certs,
        admins,
        revocation_list,
        signing_identity: None,
        organizational_unit_identifiers,
        crypto_config: Some(FabricCryptoConfig {
            signature_hash_family: "SHA2".into(),
            identity_identifier_hash_function: "SHA256".into(),
        }),
        tls_root_certs,
        tls_intermediate_certs,
        fabric_node_ous,
    };
    Ok(MspConfig {
        r#type: 0, /* FABRIC */
        config: fabric.encode_to_vec().into(),
    })
}

/// The files of `dir` holding PEM content, by name, each as its whole bytes.
fn pem_files(dir: &Path) -> Result<Vec<Bytes>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_file() {
            names.push(path);
        }
    }
    names.sort();
    let mut out = Vec::new();
    for path in names {
        let raw = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        // Fabric skips (with a warning) files without PEM content.
        if first_pem_block(&raw).is_some() {
            out.push(Bytes::from(raw));
        }
    }
    Ok(out)
}

/// The parts of an MSP `config.yaml` Fabric reads; entries are (Certificate, OU).
#[derive(Debug, Default, PartialEq)]
pub(crate) struct MspConfigYaml {
    pub ou_identifiers: Vec<(String, String)>,
    pub node_ous_enable: bool,
    pub client: Option<(String, String)>,
    pub peer: Option<(String, String)>,
    pub admin: Option<(String, String)>,
    pub orderer: Option<(String, String)>,
}

/// A small reader for the MSP `config.yaml` shape (block mappings, one list of
/// mappings under `OrganizationalUnitIdentifiers`, plain or quoted scalars).
pub(crate) fn parse_msp_config_yaml(text: &str) -> Result<MspConfigYaml> {
    let mut out = MspConfigYaml::default();
    // (indent, key) of the open mappings.
    let mut stack: Vec<(usize, String)> = Vec::new();
    for (number, raw_line) in text.lines().enumerate() {
        let line = strip_comment(raw_line);
        if line.trim().is_empty() || line.trim() == "---" {
            continue;
        }
        let mut indent = line.len() - line.trim_start().len();
        let mut content = line.trim();
        let mut new_item = false;
        if let Some(rest) = content.strip_prefix("- ") {
            new_item = true;
            indent += 2;
            content = rest.trim();
        }
        let Some((key, value)) = content.split_once(':') else {
            bail!("line {}: expected `key: value`", number + 1);
        };
        let key = unquote(key.trim());
        let value = unquote(value.trim());
        while stack.last().is_some_and(|(i, _)| *i >= indent) {
            stack.pop();
        }
        let parent: Vec<&str> = stack.iter().map(|(_, k)| k.as_str()).collect();
        match parent.as_slice() {
            ["OrganizationalUnitIdentifiers"] => {
                if new_item || out.ou_identifiers.is_empty() {
                    out.ou_identifiers.push(Default::default());
                }
                let item = out.ou_identifiers.last_mut().expect("pushed");
                match key.as_str() {
                    "Certificate" => item.0 = value.clone(),
                    "OrganizationalUnitIdentifier" => item.1 = value.clone(),
                    _ => {}
                }
            }
            ["NodeOUs"] if key == "Enable" => {
                out.node_ous_enable = value.eq_ignore_ascii_case("true")
            }
            ["NodeOUs", which] => {
                let slot = match *which {
                    "ClientOUIdentifier" => &mut out.client,
                    "PeerOUIdentifier" => &mut out.peer,
                    "AdminOUIdentifier" => &mut out.admin,
                    "OrdererOUIdentifier" => &mut out.orderer,
                    _ => continue,
                };
                let entry = slot.get_or_insert_with(Default::default);
                match key.as_str() {
                    "Certificate" => entry.0 = value.clone(),
                    "OrganizationalUnitIdentifier" => entry.1 = value.clone(),
                    _ => {}
                }
            }
            _ => {}
        }
        if value.is_empty() {
            stack.push((indent, key));
        }
    }
    Ok(out)
}

fn strip_comment(line: &str) -> &str {
    // A `#` starts a comment at the line start or after whitespace (not inside quotes,
    // which MSP paths never need).
    let bytes = line.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'#' && (i == 0 || bytes[i - 1].is_ascii_whitespace()) {
            return &line[..i];
        }
    }
    line
}

fn unquote(s: &str) -> String {
    let s = s.trim();
    for q in ['"', '\''] {
        if s.len() >= 2 && s.starts_with(q) && s.ends_with(q) {
            return s[1..s.len() - 1].to_string();
        }
    }
    s.to_string()
}
