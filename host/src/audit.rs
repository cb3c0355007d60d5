//! Who changed what: every request to the admin or operations listener that can change
//! what the orderer does (all but GET and HEAD: component swaps and rollbacks,
//! participation joins and removals, log levels) is logged once it is answered, with
//! the client's TLS certificate subject and address.

use crate::comm::PeerInfo;
use axum::extract::{ConnectInfo, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use der::Decode;

/// The axum middleware (`axum::middleware::from_fn(audit::log_changes)`).
pub async fn log_changes(request: Request, next: Next) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD) {
        return next.run(request).await;
    }
    let peer = request.extensions().get::<ConnectInfo<PeerInfo>>();
    let (who, from) = match peer {
        Some(ConnectInfo(peer)) => (client(peer), peer.addr.to_string()),
        None => ("an unknown client".to_string(), "nowhere known".to_string()),
    };
    let (method, path) = (request.method().clone(), request.uri().path().to_string());
    let response = next.run(request).await;
    let status = response.status().as_u16();
    tracing::info!(target: "audit", "audit: {method} {path} by {who} from {from}: {status}");
    response
}

/// The client as its TLS certificate names it (RFC 4514 subject).
fn client(peer: &PeerInfo) -> String {
    let Some(der) = &peer.cert else {
        return "a client without a TLS certificate".to_string();
    };
    match subject(der) {
        Ok(subject) => subject,
        Err(e) => format!("a client whose certificate does not parse ({e})"),
    }
}

/// A DER certificate's subject, RFC 4514.
pub fn subject(der: &[u8]) -> Result<String, der::Error> {
    let cert = x509_cert::Certificate::from_der(der)?;
    Ok(cert.tbs_certificate.subject.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_are_named_by_their_certificate_subject() {
        let pem = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../testdata/fabric/crypto/ordererOrganizations/example.com/users/",
            "Admin@example.com/tls/client.crt"
        ))
        .unwrap();
        let (_, der) = der::pem::decode_vec(pem.as_bytes()).unwrap();
        let peer = |cert: Option<Vec<u8>>| PeerInfo {
            addr: "127.0.0.1:1".parse().unwrap(),
            cert_hash: None,
            cert: cert.map(Into::into),
        };
        let named = client(&peer(Some(der)));
        assert!(named.starts_with("CN=Admin@example.com,"), "{named}");
        assert_eq!(client(&peer(None)), "a client without a TLS certificate");
        let garbled = client(&peer(Some(b"not DER".to_vec())));
        assert!(garbled.starts_with("a client whose certificate does not parse"));
    }
}
