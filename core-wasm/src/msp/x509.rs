//! One X.509 MSP: its CAs, revocation lists, OU rules and admins, set up as Fabric's
//! `bccspmsp.Setup` does.

use std::collections::BTreeMap;

use fabric_protos::msp::FabricMspConfig;

use super::cert::ParsedCert;
use super::crl::Crl;
use super::validate::chain_identifier;
use crate::crypto::Crypto;

/// An OU a NodeOU role or an `OrganizationalUnitIdentifiers` entry names: the OU
/// value and the certifiers identifier (SHA-256 of the issuing chain), empty = any.
#[derive(Clone, Debug)]
pub(super) struct OuIdentifier {
    pub(super) role: NodeRole,
    pub(super) ou: String,
    pub(super) certifiers: Vec<u8>,
}

/// A NodeOU role (Fabric's `clientOU`, `peerOU`, `adminOU`, `ordererOU`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeRole {
    Client,
    Peer,
    Admin,
    Orderer,
}

impl NodeRole {
    /// The `MSPRole.MSPRoleType` name, as Fabric prints it.
    pub fn name(self) -> &'static str {
        match self {
            NodeRole::Client => "CLIENT",
            NodeRole::Peer => "PEER",
            NodeRole::Admin => "ADMIN",
            NodeRole::Orderer => "ORDERER",
        }
    }
}

/// One X.509 MSP of a channel.
#[derive(Clone, Debug)]
pub(crate) struct Msp {
    pub(super) name: String,
    pub(super) roots: Vec<ParsedCert>,
    pub(super) intermediates: Vec<ParsedCert>,
    pub(super) crls: Vec<Crl>,
    /// `OrganizationalUnitIdentifiers`: OU value -> accepted certifiers identifiers.
    pub(super) ou_identifiers: BTreeMap<String, Vec<Vec<u8>>>,
    /// NodeOU roles (client, peer, admin, orderer) when NodeOUs are enforced
    /// (Fabric's `ouEnforcement`).
    pub(super) node_ous: Option<Vec<OuIdentifier>>,
    /// The certificates (DER) of the `admins` of the MSP config.
    pub(super) admins: Vec<Vec<u8>>,
}

impl Msp {
    pub(super) fn setup(config: &FabricMspConfig, crypto: &dyn Crypto) -> Result<Self, String> {
        let name = config.name.clone();
        if name.is_empty() {
            return Err("setup error: name cannot be empty".into());
        }
        let parse_all = |certs: &[bytes::Bytes], what: &str| -> Result<Vec<ParsedCert>, String> {
            certs
                .iter()
                .map(|pem| {
                    ParsedCert::from_pem(pem)
                        .map_err(|e| format!("MSP {name}: could not parse {what} certificate: {e}"))
                })
                .collect()
        };
        let roots = parse_all(&config.root_certs, "root CA")?;
        if roots.is_empty() {
            return Err(format!("MSP {name}: expected at least one CA certificate"));
        }
        let intermediates = parse_all(&config.intermediate_certs, "intermediate CA")?;
        let crls = config
            .revocation_list
            .iter()
            .map(|pem| Crl::from_pem(pem).map_err(|e| format!("MSP {name}: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        let mut msp = Msp {
            name,
            roots,
            intermediates,
            crls,
            ou_identifiers: BTreeMap::new(),
            node_ous: None,
            admins: Vec::new(),
        };
        for ou in &config.organizational_unit_identifiers {
            let certifiers = msp.certifiers_identifier(&ou.certificate, crypto)?;
            let list = msp
                .ou_identifiers
                .entry(ou.organizational_unit_identifier.clone())
                .or_default();
            if !list.contains(&certifiers) {
                list.push(certifiers);
            }
        }
        if let Some(node_ous) = &config.fabric_node_ous {
            let mut roles = Vec::new();
            for (role_kind, role) in [
                (NodeRole::Client, &node_ous.client_ou_identifier),
                (NodeRole::Peer, &node_ous.peer_ou_identifier),
                (NodeRole::Admin, &node_ous.admin_ou_identifier),
                (NodeRole::Orderer, &node_ous.orderer_ou_identifier),
            ]
            .into_iter()
            .filter_map(|(kind, role)| role.as_ref().map(|r| (kind, r)))
            {
                let certifiers = if role.certificate.is_empty() {
                    Vec::new()
                } else {
                    msp.certifiers_identifier(&role.certificate, crypto)?
                };
                roles.push(OuIdentifier {
                    role: role_kind,
                    ou: role.organizational_unit_identifier.clone(),
                    certifiers,
                });
            }
            if node_ous.enable && !roles.is_empty() {
                msp.node_ous = Some(roles);
            }
        }
        msp.setup_admins(config, crypto)?;
        Ok(msp)
    }

    /// Fabric's `setupAdminsV142` and `postSetupV142`: the admin certificates must
    /// parse; without an admin OU there must be some; they must be valid members
    /// (without NodeOUs) or carry the client or admin OU (with NodeOUs).
    fn setup_admins(
        &mut self,
        config: &FabricMspConfig,
        crypto: &dyn Crypto,
    ) -> Result<(), String> {
        let name = &self.name;
        let admins = config
            .admins
            .iter()
            .map(|pem| {
                ParsedCert::from_pem(pem)
                    .map_err(|e| format!("MSP {name}: could not parse admin certificate: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if admins.is_empty() && self.node_ou(NodeRole::Admin).is_none() {
            return Err(format!(
                "MSP {name}: administrators must be declared when no admin ou classification is set"
            ));
        }
        for (i, admin) in admins.iter().enumerate() {
            if self.node_ous.is_none() {
                self.validate(admin, crypto)
                    .map_err(|e| format!("MSP {name}: admin {i} is invalid: {e}"))?;
            } else {
                let client = self.has_ou_role(&admin.organizational_units, NodeRole::Client);
                let adm = self.has_ou_role(&admin.organizational_units, NodeRole::Admin);
                if let (Err(e1), Err(e2)) = (client, adm) {
                    return Err(format!("MSP {name}: admin {i} is invalid [{e1},{e2}]"));
                }
            }
        }
        self.admins = admins.into_iter().map(|a| a.raw).collect();
        Ok(())
    }

    /// The NodeOU of `role`, when NodeOUs are enforced and the role is defined.
    fn node_ou(&self, role: NodeRole) -> Option<&OuIdentifier> {
        self.node_ous.as_ref()?.iter().find(|r| r.role == role)
    }

    /// Fabric's `hasOURole`: whether one of `ous` is the OU of the NodeOU `role` (the
    /// certifiers are checked by validation, not here).
    pub(crate) fn has_ou_role(&self, ous: &[String], role: NodeRole) -> Result<(), String> {
        if self.node_ous.is_none() {
            return Err("NodeOUs not activated. Cannot tell apart identities.".into());
        }
        let Some(node_ou) = self.node_ou(role) else {
            return Err(format!(
                "cannot test for classification, node ou for type [{}], not defined, msp: [{}]",
                role.name(),
                self.name
            ));
        };
        if ous.contains(&node_ou.ou) {
            return Ok(());
        }
        Err(format!(
            "The identity does not contain OU [{}], MSP: [{}]",
            role.name(),
            self.name
        ))
    }

    /// Fabric's `isInAdmins`: the certificate is one of the config's `admins`.
    pub(crate) fn is_in_admins(&self, cert_der: &[u8]) -> bool {
        self.admins.iter().any(|a| a == cert_der)
    }

    /// Whether NodeOUs are enforced (Fabric's `ouEnforcement`).
    pub(crate) fn ou_enforcement(&self) -> bool {
        self.node_ous.is_some()
    }

    /// The MSP id.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Fabric's `getCertifiersIdentifier`: the CA certificate must be one of this MSP's
    /// roots or intermediates; the identifier hashes its chain up to the root.
    fn certifiers_identifier(&self, pem: &[u8], crypto: &dyn Crypto) -> Result<Vec<u8>, String> {
        let cert = ParsedCert::from_pem(pem)
            .map_err(|e| format!("MSP {}: Failed getting certificate for OU: {e}", self.name))?;
        let chain = if let Some(root) = self.roots.iter().find(|r| r.tbs == cert.tbs) {
            vec![root]
        } else if let Some(inter) = self.intermediates.iter().find(|r| r.tbs == cert.tbs) {
            let mut chain = vec![inter];
            chain.extend(
                self.build_chain(inter, inter.not_before_unix_nanos + 1_000_000_000, crypto)
                    .map_err(|e| {
                        format!("Failed computing validation chain for OU certificate: {e}")
                    })?,
            );
            chain
        } else {
            return Err(format!(
                "MSP {}: Failed adding OU. Certificate [{}] not in root or intermediate certs.",
                self.name, cert.common_name
            ));
        };
        Ok(chain_identifier(&chain, crypto))
    }
}
