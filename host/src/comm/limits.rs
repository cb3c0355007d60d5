//! The gRPC server's limits, as Fabric's orderer sets them from orderer.yaml:
//! `General.MaxRecvMsgSize`, `General.MaxSendMsgSize` and `General.Keepalive`
//! (internal/pkg/comm's defaults when zero).

use std::time::Duration;

/// Fabric's default gRPC message limit, both ways.
pub const MAX_MESSAGE_BYTES: usize = 100 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// The largest message a client may send (General.MaxRecvMsgSize).
    pub max_recv_msg_size: usize,
    /// The largest message sent, a block on Deliver included (General.MaxSendMsgSize).
    pub max_send_msg_size: usize,
    /// An idle connection is pinged this often (General.Keepalive.ServerInterval)...
    pub keepalive_interval: Duration,
    /// ...and closed when the ping is not answered in this time (ServerTimeout).
    pub keepalive_timeout: Duration,
}

impl Default for ServerLimits {
    /// grpc-go's keepalive defaults, which Fabric keeps when the settings are zero.
    fn default() -> Self {
        ServerLimits {
            max_recv_msg_size: MAX_MESSAGE_BYTES,
            max_send_msg_size: MAX_MESSAGE_BYTES,
            keepalive_interval: Duration::from_secs(2 * 3600),
            keepalive_timeout: Duration::from_secs(20),
        }
    }
}

/// The status a handler ends its call with when reading the request stream fails:
/// a message over the limit as grpc-go reports it (RESOURCE_EXHAUSTED, not tonic's
/// OUT_OF_RANGE), anything else as tonic found it.
pub fn recv_error(status: tonic::Status) -> tonic::Status {
    let message = status.message();
    let sizes = message
        .strip_prefix("Error, decoded message length too large: found ")
        .and_then(|rest| rest.split_once(" bytes, the limit is: "))
        .and_then(|(found, limit)| Some((found, limit.strip_suffix(" bytes")?)));
    match sizes {
        Some((found, limit)) if status.code() == tonic::Code::OutOfRange => {
            tonic::Status::resource_exhausted(format!(
                "grpc: received message larger than max ({found} vs. {limit})"
            ))
        }
        _ => status,
    }
}

/// grpc-go's refusal to send a message over the limit (a Deliver block).
pub fn send_error(size: usize, limit: usize) -> tonic::Status {
    tonic::Status::resource_exhausted(format!(
        "grpc: trying to send message larger than max ({size} vs. {limit})"
    ))
}
