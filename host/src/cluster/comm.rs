//! The sending side: one `Step` stream per remote consenter of a channel (Fabric's
//! `RPC` over `Comm`). Sending never blocks the chain: each remote has a bounded
//! queue and a task that connects (mutual TLS: our cluster client certificate, the
//! remote's server certificate pinned), opens the stream and writes to it. While a
//! remote is unreachable its messages are dropped, as Fabric's are; Raft sends again.

use super::RemoteNode;
use crate::comm::ClientTls;
use crate::comm::client::Connector;
use fabric_protos::orderer::StepRequest;
use fabric_protos::orderer::cluster_client::ClusterClient;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

/// Messages queued per remote before new ones are dropped.
const QUEUE: usize = 1024;
/// Between two attempts to reach a remote that could not be reached.
const RETRY: Duration = Duration::from_millis(500);

/// What this node presents to the others: its cluster client certificate and key
/// (None: the cluster runs without TLS, tests only).
pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Identity {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

/// The streams of one channel to its other consenters.
pub struct Remotes {
    channel: String,
    identity: Option<Identity>,
    queues: Mutex<BTreeMap<u64, Queue>>,
}

/// A remote's queue, and whether its stream is open now.
struct Queue {
    node: RemoteNode,
    tx: mpsc::Sender<StepRequest>,
    connected: Arc<AtomicBool>,
}

impl Remotes {
    pub fn new(channel: &str, identity: Option<Identity>, nodes: Vec<RemoteNode>) -> Remotes {
        let remotes = Remotes {
            channel: channel.to_string(),
            identity,
            queues: Mutex::new(BTreeMap::new()),
        };
        remotes.configure(nodes);
        remotes
    }

    /// Streams to exactly `nodes` (a changed consenter set or certificate restarts
    /// that node's stream).
    pub fn configure(&self, nodes: Vec<RemoteNode>) {
        let mut queues = self.queues.lock().unwrap();
        queues.retain(|id, queue| nodes.iter().any(|n| n.id == *id && *n == queue.node));
        for node in nodes {
            if queues.contains_key(&node.id) {
                continue;
            }
            let tls = match client_tls(self.identity.as_ref(), &node) {
                Ok(tls) => tls,
                Err(e) => {
                    tracing::error!(channel = %self.channel, remote = node.id, "cannot reach {}: {e}", node.endpoint);
                    continue;
                }
            };
            let (tx, rx) = mpsc::channel(QUEUE);
            let connected = Arc::new(AtomicBool::new(false));
            let stream = run(
                self.channel.clone(),
                node.clone(),
                tls,
                rx,
                connected.clone(),
            );
            tokio::spawn(stream);
            queues.insert(
                node.id,
                Queue {
                    node,
                    tx,
                    connected,
                },
            );
        }
    }

    /// Queues `request` for node `to`; false when it was dropped (unknown node, full
    /// queue).
    pub fn send(&self, to: u64, request: StepRequest) -> bool {
        let queues = self.queues.lock().unwrap();
        queues
            .get(&to)
            .is_some_and(|queue| queue.tx.try_send(request).is_ok())
    }

    /// Queues a forwarded submission for node `to` only while its stream is open: a
    /// submission must not be answered SUCCESS and then wait for a node that is down
    /// (Fabric's forwarding fails when the leader's stream cannot be opened).
    pub fn submit(&self, to: u64, request: StepRequest) -> bool {
        let queues = self.queues.lock().unwrap();
        queues.get(&to).is_some_and(|queue| {
            queue.connected.load(Ordering::Acquire) && queue.tx.try_send(request).is_ok()
        })
    }
}

/// Mutual TLS to `node`: our identity, its server certificate pinned (None: no TLS).
pub(crate) fn client_tls(
    identity: Option<&Identity>,
    node: &RemoteNode,
) -> Result<Option<ClientTls>, String> {
    let Some(identity) = identity else {
        return Ok(None);
    };
    let host = node
        .endpoint
        .rsplit_once(':')
        .map_or(&node.endpoint[..], |(h, _)| h);
    let name = ServerName::try_from(host.to_string()).map_err(|e| e.to_string())?;
    let identity = identity.clone();
    ClientTls::pinned(identity.chain, identity.key, &node.server_cert, name)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// A connection to `node`.
pub(crate) async fn connect(
    node: &RemoteNode,
    tls: Option<&ClientTls>,
) -> Result<tonic::transport::Channel, String> {
    let scheme = crate::comm::client::scheme(tls);
    let endpoint = tonic::transport::Endpoint::from_shared(format!("{scheme}://{}", node.endpoint))
        .map_err(|e| format!("bad endpoint {}: {e}", node.endpoint))?;
    let connector = Connector {
        address: node.endpoint.clone(),
        tls: tls.cloned(),
    };
    endpoint
        .connect_timeout(Duration::from_secs(5))
        .connect_with_connector(connector)
        .await
        .map_err(|e| format!("cannot connect to {}: {e:?}", node.endpoint))
}

/// Connects to `node` when there is something to send, and streams until the stream
/// breaks; then again with the next message.
async fn run(
    channel: String,
    node: RemoteNode,
    tls: Option<ClientTls>,
    mut queue: mpsc::Receiver<StepRequest>,
    connected: Arc<AtomicBool>,
) {
    let mut reported = false;
    while let Some(first) = queue.recv().await {
        let connection = match connect(&node, tls.as_ref()).await {
            Ok(connection) => connection,
            Err(e) => {
                if !reported {
                    tracing::warn!(%channel, remote = node.id, "{e}");
                    reported = true;
                }
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        let (tx, rx) = mpsc::channel(QUEUE);
        let _ = tx.send(first).await;
        let mut client = ClusterClient::new(connection)
            .max_encoding_message_size(crate::comm::MAX_MESSAGE_BYTES)
            .max_decoding_message_size(crate::comm::MAX_MESSAGE_BYTES);
        // The call resolves only once the server sends its headers, which a Go
        // server does only with its first answer: the requests flow meanwhile.
        let mut call = tokio::spawn(async move {
            match client.step(ReceiverStream::new(rx)).await {
                Ok(response) => {
                    let mut answers = response.into_inner();
                    loop {
                        match answers.message().await {
                            Ok(Some(_)) => continue,
                            Ok(None) => return None,
                            Err(status) => return Some(status),
                        }
                    }
                }
                Err(status) => Some(status),
            }
        });
        if reported {
            tracing::info!(%channel, remote = node.id, "connected to {}", node.endpoint);
            reported = false;
        }
        connected.store(true, Ordering::Release);
        loop {
            tokio::select! {
                next = queue.recv() => match next {
                    Some(request) => {
                        if tx.send(request).await.is_err() {
                            connected.store(false, Ordering::Release);
                            break;
                        }
                    }
                    None => {
                        call.abort();
                        return;
                    }
                },
                ended = &mut call => {
                    connected.store(false, Ordering::Release);
                    if let Ok(Some(status)) = ended {
                        tracing::warn!(%channel, remote = node.id, "cluster stream to {} ended: {status}", node.endpoint);
                        tokio::time::sleep(RETRY).await;
                    }
                    break;
                }
            }
        }
    }
}
