//! Who the consenters are, and how a config block changes them (Fabric's
//! `ComputeMembershipChanges`): consenters are matched by client TLS certificate; one
//! added consenter takes `next_consenter_id` (IDs are never reused), one removed
//! leaves, one of each is a certificate rotation that keeps the Raft ID; anything more
//! is refused. An addition or a removal becomes one Raft `ConfChange`.

use crate::cluster::RemoteNode;
use anyhow::{Context, Result, bail};
use bytes::Bytes;
use fabric_protos::orderer::etcdraft::{BlockMetadata, Consenter};
use raft::eraftpb::{ConfChange, ConfChangeType};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// The consenters with their Raft IDs, in the config's order.
pub type Consenters = Vec<(u64, Consenter)>;

/// What a new consenter list does to the cluster.
#[derive(Debug)]
pub struct Changes {
    pub metadata: BlockMetadata,
    pub consenters: Consenters,
    pub conf_change: Option<ConfChange>,
    /// The Raft ID whose certificates changed (a rotation).
    pub rotated: Option<u64>,
    pub added: usize,
    pub removed: usize,
}

impl Changes {
    pub fn changed(&self) -> bool {
        self.added + self.removed > 0
    }

    /// Fabric's `UnacceptableQuorumLoss`: whether, with the nodes `active` alive, the
    /// change leaves fewer alive than the new cluster's quorum where more could be
    /// started to avoid it (growing a cluster of one or two always loses it for a while).
    pub fn unacceptable_quorum_loss(&self, active: &[u64]) -> bool {
        let fault_tolerant = self.consenters.len() > 2;
        let quorum = self.consenters.len() / 2 + 1;
        let alive_but = |gone: u64| active.iter().filter(|id| **id != gone).count();
        match (&self.conf_change, self.rotated) {
            (Some(change), _) if change.get_change_type() == ConfChangeType::AddNode => {
                fault_tolerant && active.len() < quorum
            }
            (_, Some(rotated)) => fault_tolerant && alive_but(rotated) < quorum,
            (Some(change), _) => alive_but(change.node_id) < quorum,
            (None, None) => false,
        }
    }
}

/// The consenters of a config, with the IDs `metadata` lists in the same order.
pub fn consenters(list: &[Consenter], metadata: &BlockMetadata) -> Result<Consenters> {
    if list.len() != metadata.consenter_ids.len() {
        bail!(
            "{} consenter IDs for {} consenters",
            metadata.consenter_ids.len(),
            list.len()
        );
    }
    Ok(metadata
        .consenter_ids
        .iter()
        .copied()
        .zip(list.iter().cloned())
        .collect())
}

/// Fabric's `ComputeMembershipChanges` from `old` (with `metadata`) to `new`.
pub fn compute(
    metadata: &BlockMetadata,
    old: &Consenters,
    new: &[Consenter],
) -> Result<Changes, String> {
    let mut next = metadata.clone();
    let mut ids = Vec::with_capacity(new.len());
    let mut added = Vec::new();
    for (i, consenter) in new.iter().enumerate() {
        match old
            .iter()
            .find(|(_, c)| c.client_tls_cert == consenter.client_tls_cert)
        {
            Some((id, _)) => ids.push(Some(*id)),
            None => {
                ids.push(None);
                added.push(i);
            }
        }
    }
    let removed: Vec<u64> = old
        .iter()
        .filter(|(_, c)| !new.iter().any(|n| n.client_tls_cert == c.client_tls_cert))
        .map(|(id, _)| *id)
        .collect();
    let (mut conf_change, mut rotated) = (None, None);
    match (added.as_slice(), removed.as_slice()) {
        ([at], [id]) => {
            ids[*at] = Some(*id);
            rotated = Some(*id);
        }
        ([at], []) => {
            let id = next.next_consenter_id;
            ids[*at] = Some(id);
            next.next_consenter_id += 1;
            conf_change = Some(change(ConfChangeType::AddNode, id));
        }
        ([], [id]) => conf_change = Some(change(ConfChangeType::RemoveNode, *id)),
        ([], []) => {}
        _ => {
            return Err(format!(
                "update of more than one consenter at a time is not supported, requested changes: add {} node(s), remove {} node(s)",
                added.len(),
                removed.len()
            ));
        }
    }
    next.consenter_ids = ids.into_iter().flatten().collect();
    let consenters = next
        .consenter_ids
        .iter()
        .copied()
        .zip(new.iter().cloned())
        .collect();
    Ok(Changes {
        metadata: next,
        consenters,
        conf_change,
        rotated,
        added: added.len(),
        removed: removed.len(),
    })
}

fn change(kind: ConfChangeType, id: u64) -> ConfChange {
    let mut change = ConfChange::default();
    change.set_change_type(kind);
    change.node_id = id;
    change
}

/// The ConfChange still to make when Raft's voters differ from the consenter IDs
/// the last config block recorded (Fabric's `ConfChange`: a leader elected before the
/// change committed proposes it again).
pub fn pending_change(voters: &[u64], ids: &[u64]) -> Option<ConfChange> {
    if let Some(id) = ids.iter().find(|id| !voters.contains(id)) {
        return Some(change(ConfChangeType::AddNode, *id));
    }
    let id = voters.iter().find(|id| !ids.contains(id))?;
    Some(change(ConfChangeType::RemoveNode, *id))
}

/// The consenters as the cluster layer knows them: endpoint and DER certificates.
pub fn remote_nodes(consenters: &Consenters) -> Result<Vec<RemoteNode>> {
    consenters
        .iter()
        .map(|(id, consenter)| {
            let der = |pem: &[u8], what: &str| {
                CertificateDer::from_pem_slice(pem)
                    .map(|c| Bytes::copy_from_slice(&c))
                    .with_context(|| {
                        format!("consenter {}:{}: {what}", consenter.host, consenter.port)
                    })
            };
            Ok(RemoteNode {
                id: *id,
                endpoint: format!("{}:{}", consenter.host, consenter.port),
                server_cert: der(&consenter.server_tls_cert, "server_tls_cert")?,
                client_cert: der(&consenter.client_tls_cert, "client_tls_cert")?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn consenter(name: &str) -> Consenter {
        Consenter {
            host: name.into(),
            port: 7050,
            client_tls_cert: format!("client {name}").into_bytes().into(),
            server_tls_cert: format!("server {name}").into_bytes().into(),
        }
    }

    fn start() -> (BlockMetadata, Consenters) {
        let metadata = BlockMetadata {
            consenter_ids: vec![1, 2, 3],
            next_consenter_id: 4,
            raft_index: 9,
        };
        let list = [consenter("a"), consenter("b"), consenter("c")];
        let consenters = consenters(&list, &metadata).unwrap();
        (metadata, consenters)
    }

    #[test]
    fn an_added_consenter_takes_the_next_id_and_a_removed_one_leaves_its_id_unused() {
        let (metadata, old) = start();
        let added = compute(
            &metadata,
            &old,
            &[
                consenter("a"),
                consenter("d"),
                consenter("b"),
                consenter("c"),
            ],
        )
        .unwrap();
        assert_eq!(added.metadata.consenter_ids, vec![1, 4, 2, 3]);
        assert_eq!(added.metadata.next_consenter_id, 5);
        let cc = added.conf_change.unwrap();
        assert_eq!(
            (cc.get_change_type(), cc.node_id),
            (ConfChangeType::AddNode, 4)
        );

        let removed = compute(
            &added.metadata,
            &added.consenters,
            &[consenter("a"), consenter("d"), consenter("c")],
        )
        .unwrap();
        assert_eq!(removed.metadata.consenter_ids, vec![1, 4, 3]);
        assert_eq!(
            removed.metadata.next_consenter_id, 5,
            "IDs are never reused"
        );
        assert!(removed.changed());
        let cc = removed.conf_change.unwrap();
        assert_eq!(
            (cc.get_change_type(), cc.node_id),
            (ConfChangeType::RemoveNode, 2)
        );
    }

    #[test]
    fn a_rotated_certificate_keeps_the_id_and_two_changes_at_once_are_refused() {
        let (metadata, old) = start();
        let mut rotated = consenter("b");
        rotated.client_tls_cert = Bytes::from_static(b"client b, renewed");
        let changes = compute(&metadata, &old, &[consenter("a"), rotated, consenter("c")]).unwrap();
        assert_eq!(changes.metadata.consenter_ids, vec![1, 2, 3]);
        assert_eq!(changes.rotated, Some(2));
        assert!(changes.conf_change.is_none());

        let same = compute(
            &metadata,
            &old,
            &[consenter("a"), consenter("b"), consenter("c")],
        )
        .unwrap();
        assert!(!same.changed() && same.conf_change.is_none());

        let error = compute(&metadata, &old, &[consenter("a")]).unwrap_err();
        assert_eq!(
            error,
            "update of more than one consenter at a time is not supported, requested changes: add 0 node(s), remove 2 node(s)"
        );
    }

    #[test]
    fn a_change_that_would_cost_the_quorum_with_the_nodes_alive_is_found() {
        let (metadata, old) = start();
        let four = [
            consenter("a"),
            consenter("b"),
            consenter("c"),
            consenter("d"),
        ];
        let add = compute(&metadata, &old, &four).unwrap();
        assert!(
            add.unacceptable_quorum_loss(&[1, 2]),
            "4 nodes need 3 alive"
        );
        assert!(!add.unacceptable_quorum_loss(&[1, 2, 3]));

        let remove = compute(&metadata, &old, &[consenter("a"), consenter("c")]).unwrap();
        assert!(
            remove.unacceptable_quorum_loss(&[1, 2]),
            "2 nodes need both alive"
        );
        assert!(
            !remove.unacceptable_quorum_loss(&[1, 3]),
            "the removed node need not be"
        );
        let remove_dead = compute(&metadata, &old, &[consenter("a"), consenter("b")]).unwrap();
        assert!(!remove_dead.unacceptable_quorum_loss(&[1, 2]));

        let mut renewed = consenter("b");
        renewed.client_tls_cert = Bytes::from_static(b"client b, renewed");
        let rotate = compute(&metadata, &old, &[consenter("a"), renewed, consenter("c")]).unwrap();
        assert!(
            rotate.unacceptable_quorum_loss(&[1, 2]),
            "the rotated node restarts"
        );
        assert!(!rotate.unacceptable_quorum_loss(&[1, 2, 3]));

        // Growing one node to two loses the quorum whatever is alive: not refused.
        let one = BlockMetadata {
            consenter_ids: vec![1],
            next_consenter_id: 2,
            raft_index: 3,
        };
        let single = consenters(&[consenter("a")], &one).unwrap();
        let grow = compute(&one, &single, &[consenter("a"), consenter("b")]).unwrap();
        assert!(!grow.unacceptable_quorum_loss(&[]));
        let none = compute(&metadata, &old, &four[..3]).unwrap();
        assert!(!none.unacceptable_quorum_loss(&[]));
    }

    #[test]
    fn a_change_not_yet_made_in_raft_is_found_from_the_voters() {
        let add = pending_change(&[1, 2, 3], &[1, 2, 3, 4]).unwrap();
        assert_eq!(
            (add.get_change_type(), add.node_id),
            (ConfChangeType::AddNode, 4)
        );
        let remove = pending_change(&[1, 2, 3], &[1, 3]).unwrap();
        assert_eq!(
            (remove.get_change_type(), remove.node_id),
            (ConfChangeType::RemoveNode, 2)
        );
        assert!(pending_change(&[1, 2, 3], &[3, 1, 2]).is_none());
    }
}
