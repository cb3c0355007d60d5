//! A listener's accepted connections, plain or TLS (Fabric's `GRPCServer` listener
//! with its transport credentials): TCP_NODELAY on every connection, TLS handshakes
//! run concurrently so a slow or hostile client holds up nobody, and a refused
//! handshake is logged with the peer's address and never reaches the server.

use super::stream::Stream;
use super::tls::cert_hash;
use rustls::ServerConfig;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;

/// Fabric's default gRPC connection timeout, which bounds its TLS handshakes.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Who is on the other end of a connection; a request extension on every call.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    pub addr: SocketAddr,
    /// SHA-256 of the client's TLS certificate, when it sent one.
    pub cert_hash: Option<[u8; 32]>,
    /// The client's TLS certificate (DER), when it sent one: the cluster service
    /// identifies consenters by it.
    pub cert: Option<bytes::Bytes>,
}

/// One accepted connection.
pub struct Conn {
    io: Stream,
    peer: PeerInfo,
}

/// Accepted (and, with TLS, handshaken) connections of one listener.
pub struct Listener {
    connections: mpsc::Receiver<Conn>,
    local_addr: SocketAddr,
}

impl Listener {
    /// Starts accepting on `tcp`; `name` ("client", "admin") labels the log lines.
    pub fn new(tcp: TcpListener, tls: Option<Arc<ServerConfig>>, name: &'static str) -> Listener {
        let local_addr = tcp.local_addr().expect("a bound listener has an address");
        let (tx, connections) = mpsc::channel(64);
        tokio::spawn(accept_loop(tcp, tls.map(TlsAcceptor::from), tx, name));
        Listener {
            connections,
            local_addr,
        }
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The next connection; pending forever once the accept loop is gone.
    pub async fn next(&mut self) -> Conn {
        match self.connections.recv().await {
            Some(conn) => conn,
            None => std::future::pending().await,
        }
    }

    /// The connections as the stream tonic's `serve_with_incoming` takes.
    pub fn into_stream(self) -> impl tokio_stream::Stream<Item = io::Result<Conn>> {
        use tokio_stream::StreamExt;
        tokio_stream::wrappers::ReceiverStream::new(self.connections).map(Ok)
    }
}

async fn accept_loop(
    tcp: TcpListener,
    tls: Option<TlsAcceptor>,
    tx: mpsc::Sender<Conn>,
    name: &'static str,
) {
    loop {
        let (stream, addr) = match tcp.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: wait rather than spin.
                tracing::error!("{name} listener: accepting a connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // A small answer waiting for the client's delayed ACK would add ~40 ms.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::warn!("{name} listener: setting TCP_NODELAY for {addr}: {e}");
        }
        let Some(acceptor) = tls.clone() else {
            let conn = Conn {
                io: Stream::Plain(stream),
                peer: PeerInfo {
                    addr,
                    cert_hash: None,
                    cert: None,
                },
            };
            if tx.send(conn).await.is_err() {
                return;
            }
            continue;
        };
        let tx = tx.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => {
                    let cert = stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|chain| chain.first())
                        .map(|cert| bytes::Bytes::copy_from_slice(cert));
                    let cert_hash = cert.as_deref().map(cert_hash);
                    let peer = PeerInfo {
                        addr,
                        cert_hash,
                        cert,
                    };
                    let _ = tx
                        .send(Conn {
                            io: Stream::Tls(Box::new(stream.into())),
                            peer,
                        })
                        .await;
                }
                Ok(Err(e)) => {
                    tracing::warn!("{name} listener: TLS handshake with {addr} refused: {e}")
                }
                Err(_) => tracing::warn!(
                    "{name} listener: TLS handshake with {addr} timed out after {HANDSHAKE_TIMEOUT:?}"
                ),
            }
        });
    }
}

impl tonic::transport::server::Connected for Conn {
    type ConnectInfo = PeerInfo;

    fn connect_info(&self) -> PeerInfo {
        self.peer.clone()
    }
}

/// The peer of an axum request (`into_make_service_with_connect_info::<PeerInfo>`).
impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, Listener>>
    for PeerInfo
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, Listener>) -> PeerInfo {
        stream.io().peer.clone()
    }
}

impl axum::serve::Listener for Listener {
    type Io = Conn;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Conn, SocketAddr) {
        let conn = self.next().await;
        let addr = conn.peer.addr;
        (conn, addr)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local_addr)
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
