//! Fabric's internal/pkg/comm: gRPC settings shared by the server and the client,
//! the listeners' TLS ([`tls`]), accepted connections with their peer's identity
//! ([`listener`]), the client's connections ([`client`]), and the plain-or-TLS
//! [`Stream`] both use; [`trust`]: mutual TLS that trusts the channels' TLS CAs.

pub mod client;
mod limits;
pub mod listener;
pub mod pinned;
mod stream;
#[cfg(test)]
mod tests;
pub mod tls;
pub mod trust;

pub use limits::{MAX_MESSAGE_BYTES, ServerLimits, recv_error, send_error};
pub use listener::{Listener, PeerInfo};
pub use stream::Stream;
pub use tls::{ClientTls, ServerTlsFiles, TlsError};
pub use trust::ChannelRoots;
