//! Fabric's internal/pkg/comm: gRPC settings shared by the server and the client,
//! the listeners' TLS ([`tls`]), accepted connections with their peer's identity
//! ([`listener`]), the client's connections ([`client`]), and the plain-or-TLS
//! [`Stream`] both use.

pub mod client;
pub mod listener;
mod stream;
#[cfg(test)]
mod tests;
pub mod tls;

pub use listener::{Listener, PeerInfo};
pub use stream::Stream;
pub use tls::{ClientTls, ServerTlsFiles, TlsError};

/// Fabric's default gRPC message limit (General.MaxRecvMsgSize / MaxSendMsgSize).
pub const MAX_MESSAGE_BYTES: usize = 100 * 1024 * 1024;
