//! What the operations listener and the client listener's TLS read of the channels
//! served: health checks, the gauges set before a scrape, the channels' TLS CAs.

use crate::comm::ChannelRoots;
use crate::comm::trust::config_block_tls_cas;
use crate::consensus::{ChannelStatus, ConsensusRelation};
use crate::multichannel::Registrar;
use crate::operations::health::{FailedCheck, HealthChecker};
use crate::operations::metrics;
use rustls_pki_types::CertificateDer;
use std::sync::Arc;

/// `/healthz` checks: a channel whose chain halted (it orders nothing more), a
/// ledger whose last write or fsync failed (appends stopped) or whose folder takes no
/// new file now (read-only, full, gone), so the next block would fail.
pub struct RegistrarHealth(pub Arc<Registrar>);

/// The probe file: not a block file name, so a ledger opening the folder ignores
/// one a crash left behind.
const PROBE: &str = ".healthz-probe";

/// Writes and removes a one-byte file in `dir`.
fn probe(dir: &std::path::Path) -> std::io::Result<()> {
    let path = dir.join(PROBE);
    std::fs::write(&path, [0])?;
    std::fs::remove_file(&path)
}

impl HealthChecker for RegistrarHealth {
    fn check(&self) -> Vec<FailedCheck> {
        let mut failed = Vec::new();
        for name in self.0.channel_names() {
            let Some(support) = self.0.get(&name) else {
                continue;
            };
            let why = (support.ledger.write_failure())
                .or_else(|| probe(support.ledger.dir()).err().map(|e| e.to_string()));
            if let Some(why) = why {
                failed.push(FailedCheck {
                    component: "ledger".into(),
                    reason: format!("channel {name}: the ledger cannot be written: {why}"),
                });
            }
            if support.chain.errored() {
                failed.push(FailedCheck {
                    component: "consensus".into(),
                    reason: format!("channel {name}: the chain has halted"),
                });
            }
        }
        failed
    }
}

/// Sets the gauges that describe the channels served (height, participation, the
/// component in force), dropping those of channels gone.
pub fn refresh_gauges(registrar: &Registrar) {
    let m = metrics();
    for gauge in [
        &m.ledger_blockchain_height,
        &m.participation_status,
        &m.participation_consensus_relation,
        &m.core_component,
    ] {
        gauge.reset();
    }
    for name in registrar.channel_names() {
        let Some(info) = registrar.channel_info(&name) else {
            continue;
        };
        // Fabric's numbers: active 1, onboarding 2, failed 3; other 0, consenter 1.
        let status = match info.status {
            ChannelStatus::Active => 1.0,
            ChannelStatus::Onboarding => 2.0,
            ChannelStatus::Failed => 3.0,
        };
        let relation = match info.relation {
            ConsensusRelation::Other => 0.0,
            ConsensusRelation::Consenter => 1.0,
        };
        m.participation_status
            .with_label_values(&[&name])
            .set(status);
        m.participation_consensus_relation
            .with_label_values(&[&name])
            .set(relation);
        let Some(support) = registrar.get(&name) else {
            continue;
        };
        m.ledger_blockchain_height
            .with_label_values(&[&name])
            .set(support.ledger.height() as f64);
        let core = support.core.state();
        m.core_component
            .with_label_values(&[&name, &core.sha256, &core.name, &core.version])
            .set(1.0);
    }
}

/// The TLS CAs of the channels served, for mutual TLS on the client listener.
pub struct RegistrarRoots(pub Arc<Registrar>);

impl ChannelRoots for RegistrarRoots {
    fn stamp(&self) -> Vec<(String, u64)> {
        let names = self.0.channel_names();
        let configs = names
            .iter()
            .filter_map(|n| Some((n.clone(), self.0.get(n)?.config().1)));
        configs.collect()
    }

    fn roots(&self) -> Vec<CertificateDer<'static>> {
        let names = self.0.channel_names();
        let configs = names
            .iter()
            .filter_map(|n| self.0.get(n))
            .map(|s| s.config().0);
        configs
            .flat_map(|block| config_block_tls_cas(&block))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::component::{ComponentCache, CoreComponent};
    use crate::hotswap::CoreSettings;
    use crate::testkit::{orderer0, solo_genesis};

    fn registrar(dir: &std::path::Path) -> Arc<Registrar> {
        let cache = ComponentCache::new(dir.join("components"));
        let core = CoreComponent::native();
        Registrar::with_core(dir.into(), orderer0(), core, cache, CoreSettings::default())
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn roots_gauges_and_health_follow_the_channels() {
        let dir = tempfile::tempdir().unwrap();
        let registrar = registrar(dir.path());
        let roots = RegistrarRoots(registrar.clone());
        assert!(roots.stamp().is_empty() && roots.roots().is_empty());

        registrar.join(&solo_genesis()).unwrap();
        assert_eq!(roots.stamp(), vec![("mychannel".to_string(), 0)]);
        assert!(!roots.roots().is_empty(), "the channel's orgs' TLS CAs");
        assert_eq!(RegistrarHealth(registrar.clone()).check(), vec![]);

        refresh_gauges(&registrar);
        let height = metrics()
            .ledger_blockchain_height
            .with_label_values(&["mychannel"]);
        assert_eq!(height.get(), 1.0);

        // A ledger folder gone from under the channel takes no block.
        let ledger_dir = registrar
            .get("mychannel")
            .unwrap()
            .ledger
            .dir()
            .to_path_buf();
        std::fs::rename(&ledger_dir, dir.path().join("moved")).unwrap();
        let failed = RegistrarHealth(registrar.clone()).check();
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert_eq!(failed[0].component, "ledger");
        assert!(
            failed[0]
                .reason
                .starts_with("channel mychannel: the ledger cannot be written: "),
            "{failed:?}"
        );
        std::fs::rename(dir.path().join("moved"), &ledger_dir).unwrap();

        registrar.remove("mychannel").await.unwrap();
        assert!(
            roots.stamp().is_empty(),
            "a removed channel's CAs are no longer trusted"
        );
    }
}
