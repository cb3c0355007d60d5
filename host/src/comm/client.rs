//! The client side: a connection to an orderer listener, plain or TLS (Fabric's
//! `GRPCClient` with its `ClientConfig`), for tonic's channels and for hyper.

use super::stream::Stream;
use super::tls::ClientTls;
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// A connection to `address` (HOST:PORT), with TLS when `tls` is given; the server's
/// certificate is checked against `--tls-server-name`, else the host of `address`.
pub async fn dial(address: &str, tls: Option<&ClientTls>) -> io::Result<Stream> {
    let stream = TcpStream::connect(address).await?;
    stream.set_nodelay(true)?;
    let Some(tls) = tls else {
        return Ok(Stream::Plain(stream));
    };
    let name = match &tls.server_name {
        Some(name) => name.clone(),
        None => host_name(address)?,
    };
    let stream = TlsConnector::from(tls.config.clone())
        .connect(name, stream)
        .await?;
    Ok(Stream::Tls(Box::new(stream.into())))
}

fn host_name(address: &str) -> io::Result<ServerName<'static>> {
    let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string()).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("TLS server name {host:?}: {e}"),
        )
    })
}

/// The scheme a URI to this server should carry.
pub fn scheme(tls: Option<&ClientTls>) -> &'static str {
    if tls.is_some() { "https" } else { "http" }
}

/// A tonic connector (`Endpoint::connect_with_connector`) dialing one address.
#[derive(Clone)]
pub struct Connector {
    pub address: String,
    pub tls: Option<ClientTls>,
}

impl tower_service::Service<tonic::codegen::http::Uri> for Connector {
    type Response = TokioIo<Stream>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<TokioIo<Stream>>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: tonic::codegen::http::Uri) -> Self::Future {
        let (address, tls) = (self.address.clone(), self.tls.clone());
        Box::pin(async move { dial(&address, tls.as_ref()).await.map(TokioIo::new) })
    }
}
