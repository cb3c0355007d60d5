//! TLS between orderers of one cluster, as Fabric's cluster comm does it: identity is
//! the TLS certificate a consenter set names, compared by public key
//! (`CertificatesWithSamePublicKey`, so a renewed certificate with the same key still
//! matches). The server side asks every client for a certificate without requiring
//! or verifying one (Go's `tls.RequestClientCert`); the cluster service then checks
//! it against the consenters. The client side accepts exactly the server certificate
//! the consenter set names.

use super::tls::{ClientTls, VERSIONS, provider};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{ClientConfig, DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use std::sync::Arc;
use x509_cert::Certificate;
use x509_cert::der::{Decode, Encode};

/// The DER SubjectPublicKeyInfo of a DER certificate.
pub fn public_key(cert: &[u8]) -> Option<Vec<u8>> {
    let cert = Certificate::from_der(cert).ok()?;
    cert.tbs_certificate.subject_public_key_info.to_der().ok()
}

/// Whether two DER certificates carry the same public key.
pub fn same_public_key(a: &[u8], b: &[u8]) -> bool {
    matches!((public_key(a), public_key(b)), (Some(a), Some(b)) if a == b)
}

fn verify12(
    provider: &CryptoProvider,
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    rustls::crypto::verify_tls12_signature(
        message,
        cert,
        dss,
        &provider.signature_verification_algorithms,
    )
}

fn verify13(
    provider: &CryptoProvider,
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    rustls::crypto::verify_tls13_signature(
        message,
        cert,
        dss,
        &provider.signature_verification_algorithms,
    )
}

/// Asks for a client certificate, takes any (the handshake still proves the client
/// holds its key).
#[derive(Debug)]
pub struct RequestClientCert(pub Arc<CryptoProvider>);

impl ClientCertVerifier for RequestClientCert {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn verify_client_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify12(&self.0, message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify13(&self.0, message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Accepts only a server certificate with the public key of `expected`.
#[derive(Debug)]
struct PinnedServer {
    expected: Vec<u8>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if same_public_key(end_entity, &self.expected) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "the server's TLS certificate is not the one its consenter entry names".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify12(&self.provider, message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify13(&self.provider, message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

impl ClientTls {
    /// A client of another orderer: presents `chain`/`key` (its cluster client
    /// certificate), accepts only the server certificate `server_cert` (DER).
    pub fn pinned(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        server_cert: &[u8],
        server_name: ServerName<'static>,
    ) -> Result<ClientTls, rustls::Error> {
        let provider = provider();
        let verifier = PinnedServer {
            expected: server_cert.to_vec(),
            provider: provider.clone(),
        };
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(VERSIONS)
            .expect("ring supports TLS 1.2 and 1.3")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_client_auth_cert(chain, key)?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(ClientTls::new(Arc::new(config), Some(server_name), None))
    }
}
