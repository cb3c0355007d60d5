//! Mutual TLS that trusts the channels' organizations, as Fabric's orderer does
//! (orderer/common/server's caManager): a client certificate is accepted when it
//! chains to `ClientRootCAs` or to a TLS root or intermediate CA
//! (`tls_root_certs`, `tls_intermediate_certs`) of an orderer or application org
//! of any channel served. The roots follow the channels: the verifier asks its
//! [`ChannelRoots`] for a version stamp at each handshake and rebuilds its trust
//! store when the stamp changed (a channel joined or removed, a config committed).

use fabric_protos::common::{Block, ConfigEnvelope, Envelope, Payload};
use fabric_protos::msp::{FabricMspConfig, MspConfig};
use prost::Message;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, UnixTime};
use std::sync::{Arc, RwLock};

/// Where the channels' TLS CAs come from (the registrar, in the orderer).
pub trait ChannelRoots: Send + Sync {
    /// Changes whenever [`ChannelRoots::roots`] may have: e.g. every channel's name
    /// and config sequence. Asked at every handshake, so it must be cheap.
    fn stamp(&self) -> Vec<(String, u64)>;
    /// The TLS root and intermediate CAs of every channel's orgs.
    fn roots(&self) -> Vec<CertificateDer<'static>>;
}

/// No channel: to check a listener's TLS files before any channel is open.
pub struct NoChannels;

impl ChannelRoots for NoChannels {
    fn stamp(&self) -> Vec<(String, u64)> {
        Vec::new()
    }
    fn roots(&self) -> Vec<CertificateDer<'static>> {
        Vec::new()
    }
}

/// Fabric's MSP type of an X.509 MSP (`msp.FABRIC`); only these carry TLS CAs.
const FABRIC_MSP: i32 = 0;

/// The TLS CAs of the Orderer and Application orgs of a config block, in DER.
/// Anything that does not decode contributes nothing: the block was validated when
/// it was committed, and a certificate rustls cannot use is skipped with a warning.
pub fn config_block_tls_cas(block: &[u8]) -> Vec<CertificateDer<'static>> {
    let config = (|| {
        let block = Block::decode(block).ok()?;
        let envelope = Envelope::decode(&block.data?.data.first()?[..]).ok()?;
        let payload = Payload::decode(&envelope.payload[..]).ok()?;
        ConfigEnvelope::decode(&payload.data[..])
            .ok()?
            .config?
            .channel_group
    })();
    let mut cas = Vec::new();
    let Some(channel) = config else {
        return cas;
    };
    for section in ["Orderer", "Application"] {
        let Some(group) = channel.groups.get(section) else {
            continue;
        };
        for org in group.groups.values() {
            let Some(value) = org.values.get("MSP") else {
                continue;
            };
            let Ok(msp) = MspConfig::decode(&value.value[..]) else {
                continue;
            };
            if msp.r#type != FABRIC_MSP {
                continue;
            }
            let Ok(fabric) = FabricMspConfig::decode(&msp.config[..]) else {
                continue;
            };
            for pem in fabric
                .tls_root_certs
                .iter()
                .chain(&fabric.tls_intermediate_certs)
            {
                cas.extend(CertificateDer::pem_slice_iter(pem).filter_map(Result::ok));
            }
        }
    }
    cas
}

/// A client certificate verifier over `ClientRootCAs` plus the channels' TLS CAs.
pub struct ChannelClientVerifier {
    configured: Vec<CertificateDer<'static>>,
    channels: Arc<dyn ChannelRoots>,
    provider: Arc<CryptoProvider>,
    current: RwLock<Built>,
}

/// The stamp a verifier was built for, and the verifier (None: no CA at all, so
/// every client is refused).
type Built = (
    Option<Vec<(String, u64)>>,
    Option<Arc<dyn ClientCertVerifier>>,
);

impl std::fmt::Debug for ChannelClientVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelClientVerifier")
            .field("configured", &self.configured.len())
            .finish_non_exhaustive()
    }
}

impl ChannelClientVerifier {
    pub fn new(
        configured: Vec<CertificateDer<'static>>,
        channels: Arc<dyn ChannelRoots>,
        provider: Arc<CryptoProvider>,
    ) -> Self {
        ChannelClientVerifier {
            configured,
            channels,
            provider,
            current: RwLock::new((None, None)),
        }
    }

    /// The verifier for the channels as they are now.
    fn verifier(&self) -> Option<Arc<dyn ClientCertVerifier>> {
        let stamp = self.channels.stamp();
        {
            let current = self.current.read().unwrap();
            if current.0.as_ref() == Some(&stamp) {
                return current.1.clone();
            }
        }
        let mut store = RootCertStore::empty();
        for cert in self.configured.iter().cloned().chain(self.channels.roots()) {
            if let Err(e) = store.add(cert) {
                tracing::warn!("a channel's TLS CA certificate is not usable, skipped: {e}");
            }
        }
        let verifier =
            WebPkiClientVerifier::builder_with_provider(store.into(), self.provider.clone())
                .build()
                .ok();
        tracing::debug!(channels = stamp.len(), "client TLS roots rebuilt");
        *self.current.write().unwrap() = (Some(stamp), verifier.clone());
        verifier
    }
}

impl ClientCertVerifier for ChannelClientVerifier {
    /// No CA names in the CertificateRequest: the set changes with the channels,
    /// and clients with one certificate send it regardless (Go's and rustls' do).
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        match self.verifier() {
            Some(verifier) => verifier.verify_client_cert(end_entity, intermediates, now),
            None => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
