//! TLS configurations from PEM files, as Fabric's comm package builds them
//! (`SecureOptions`, `fabhttp.TLS`): TLS 1.2 and 1.3, Fabric's AES-GCM suites for
//! TLS 1.2, ALPN h2, and with client authentication every client certificate
//! verified against the client root CAs at the handshake (Go's
//! `RequireAndVerifyClientCert`), expiry included.

use super::trust::{ChannelClientVerifier, ChannelRoots};
use rustls::crypto::{CryptoProvider, ring};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedCipherSuite};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A TLS setting's problem, on one line naming the setting (orderer.yaml key or
/// flag), the file where there is one, and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{setting} {}: {problem}", file.display())]
    File {
        setting: String,
        file: PathBuf,
        problem: String,
    },
    #[error("{setting}: {problem}")]
    Setting { setting: String, problem: String },
}

fn file_error(setting: &str, file: &Path, problem: impl Into<String>) -> TlsError {
    TlsError::File {
        setting: setting.into(),
        file: file.into(),
        problem: problem.into(),
    }
}

/// A listener's TLS files, each with the name of the setting it came from (for errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTlsFiles {
    /// e.g. `General.TLS`: the prefix of the setting names in errors.
    pub section: String,
    pub certificate: PathBuf,
    pub private_key: PathBuf,
    /// Some: client certificates are required and must chain to one of these.
    pub client_root_cas: Option<Vec<PathBuf>>,
    /// With `client_root_cas`: a client may connect without a certificate (Go's
    /// VerifyClientCertIfGiven, the operations listener without ClientAuthRequired).
    pub client_auth_optional: bool,
}

/// ring with Fabric's suites: its DefaultTLSCipherSuites for TLS 1.2 (ECDHE with
/// AES-GCM; rustls has no RSA key exchange), and the TLS 1.3 suites Go offers.
pub(super) fn provider() -> Arc<CryptoProvider> {
    use ring::cipher_suite::*;
    let cipher_suites: Vec<SupportedCipherSuite> = vec![
        TLS13_AES_128_GCM_SHA256,
        TLS13_AES_256_GCM_SHA384,
        TLS13_CHACHA20_POLY1305_SHA256,
        TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    ];
    Arc::new(CryptoProvider {
        cipher_suites,
        ..ring::default_provider()
    })
}

pub(super) const VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

fn read(setting: &str, file: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(file).map_err(|e| file_error(setting, file, e.to_string()))
}

/// Every certificate of a PEM file; at least one.
pub fn certificates(setting: &str, file: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(setting, file)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(setting, file, format!("not PEM: {e}")))?;
    if certs.is_empty() {
        return Err(file_error(setting, file, "no certificate found"));
    }
    Ok(certs)
}

/// The private key of a PEM file (PKCS#8, SEC1 or PKCS#1).
pub fn private_key(setting: &str, file: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(setting, file)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => {
            file_error(setting, file, "no private key found")
        }
        other => file_error(setting, file, format!("not a PEM private key: {other}")),
    })
}

/// A trust store of every certificate in `files`.
fn roots(setting: &str, files: &[PathBuf]) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    for file in files {
        for cert in certificates(setting, file)? {
            store.add(cert).map_err(|e| {
                file_error(setting, file, format!("not a usable CA certificate: {e}"))
            })?;
        }
    }
    Ok(store)
}

/// Fabric's certificate hash (`util.ExtractCertificateHashFromContext`): SHA-256 of
/// the DER certificate.
pub fn cert_hash(cert: &[u8]) -> [u8; 32] {
    Sha256::digest(cert).into()
}

impl ServerTlsFiles {
    /// The server configuration, offering `alpn` (`h2` for gRPC); errors name the
    /// setting and the file.
    pub fn server_config(&self, alpn: &[&[u8]]) -> Result<Arc<ServerConfig>, TlsError> {
        self.server_config_with(alpn, None)
    }

    /// [`ServerTlsFiles::server_config`]; with `channels`, client certificates may
    /// also chain to the channels' TLS CAs (the client listener, as Fabric's), and
    /// `client_root_cas` may be empty.
    pub fn server_config_with(
        &self,
        alpn: &[&[u8]],
        channels: Option<Arc<dyn ChannelRoots>>,
    ) -> Result<Arc<ServerConfig>, TlsError> {
        let certificate = format!("{}.Certificate", self.section);
        let key_setting = format!("{}.PrivateKey", self.section);
        let chain = certificates(&certificate, &self.certificate)?;
        let key = private_key(&key_setting, &self.private_key)?;
        let builder = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(VERSIONS)
            .expect("ring supports TLS 1.2 and 1.3");
        let builder = match &self.client_root_cas {
            // The client listener without ClientAuthRequired: a certificate is asked
            // for and not checked (Go's RequestClientCert), so that other orderers'
            // cluster connections carry the identity the cluster service checks.
            None if channels.is_some() => builder
                .with_client_cert_verifier(Arc::new(super::pinned::RequestClientCert(provider()))),
            None => builder.with_no_client_auth(),
            Some(files) if channels.is_some() => {
                let setting = format!("{}.ClientRootCAs", self.section);
                let mut configured = Vec::new();
                for file in files {
                    configured.extend(certificates(&setting, file)?);
                }
                // Refuse a bad file now, not at the first handshake.
                roots(&setting, files)?;
                let channels = channels.expect("matched");
                let verifier = ChannelClientVerifier::new(configured, channels, provider());
                builder.with_client_cert_verifier(Arc::new(verifier))
            }
            Some(files) if files.is_empty() && self.client_auth_optional => {
                // Go's empty pool: no certificate verifies, so none is asked for.
                builder.with_no_client_auth()
            }
            Some(files) => {
                let setting = format!("{}.ClientRootCAs", self.section);
                if files.is_empty() {
                    let problem = format!(
                        "no CA given, but {}.ClientAuthRequired is true: no client could connect",
                        self.section
                    );
                    return Err(TlsError::Setting { setting, problem });
                }
                let store = roots(&setting, files)?;
                let mut verifier =
                    WebPkiClientVerifier::builder_with_provider(store.into(), provider());
                if self.client_auth_optional {
                    verifier = verifier.allow_unauthenticated();
                }
                let verifier = verifier.build().map_err(|e| TlsError::Setting {
                    setting: setting.clone(),
                    problem: e.to_string(),
                })?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder.with_single_cert(chain, key).map_err(|e| {
            let problem = format!("does not fit {}: {e}", self.certificate.display());
            file_error(&key_setting, &self.private_key, problem)
        })?;
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        // Fabric's servers disable session tickets (SessionTicketsDisabled).
        config.send_tls13_tickets = 0;
        Ok(Arc::new(config))
    }
}

/// What a client needs to connect with TLS: the CA its server's certificate must
/// chain to, optionally its own certificate (mutual TLS), the name to check.
#[derive(Clone)]
pub struct ClientTls {
    pub(crate) config: Arc<ClientConfig>,
    pub(crate) server_name: Option<ServerName<'static>>,
    cert_hash: Option<[u8; 32]>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl ClientTls {
    /// From the CLI's `--tls-ca`, `--tls-cert`/`--tls-key` and `--tls-server-name`.
    pub fn from_files(
        ca: &Path,
        identity: Option<(&Path, &Path)>,
        server_name: Option<&str>,
    ) -> Result<ClientTls, TlsError> {
        let store = roots("--tls-ca", &[ca.to_path_buf()])?;
        let builder = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(VERSIONS)
            .expect("ring supports TLS 1.2 and 1.3")
            .with_root_certificates(store);
        let (mut config, cert_hash) = match identity {
            None => (builder.with_no_client_auth(), None),
            Some((cert, key_file)) => {
                let chain = certificates("--tls-cert", cert)?;
                let hash = cert_hash(&chain[0]);
                let key = private_key("--tls-key", key_file)?;
                let config = builder.with_client_auth_cert(chain, key).map_err(|e| {
                    let problem = format!("does not fit {}: {e}", cert.display());
                    file_error("--tls-key", key_file, problem)
                })?;
                (config, Some(hash))
            }
        };
        config.alpn_protocols = vec![b"h2".to_vec()];
        let server_name = server_name
            .map(|name| {
                ServerName::try_from(name.to_string()).map_err(|e| TlsError::Setting {
                    setting: "--tls-server-name".into(),
                    problem: format!("{name:?}: {e}"),
                })
            })
            .transpose()?;
        Ok(ClientTls {
            config: Arc::new(config),
            server_name,
            cert_hash,
        })
    }

    pub(crate) fn new(
        config: Arc<ClientConfig>,
        server_name: Option<ServerName<'static>>,
        cert_hash: Option<[u8; 32]>,
    ) -> ClientTls {
        ClientTls {
            config,
            server_name,
            cert_hash,
        }
    }

    /// Only HTTP/1.1 offered in ALPN: for the admin API's HTTP client.
    pub fn http1(&self) -> ClientTls {
        let mut config = (*self.config).clone();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        ClientTls {
            config: Arc::new(config),
            ..self.clone()
        }
    }

    /// SHA-256 of the client certificate, for the channel header's `tls_cert_hash`.
    pub fn cert_hash(&self) -> Option<[u8; 32]> {
        self.cert_hash
    }
}
