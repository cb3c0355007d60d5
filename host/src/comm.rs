//! gRPC settings shared by the server and the client, as Fabric's comm package has
//! them.

/// Fabric's default gRPC message limit (General.MaxRecvMsgSize / MaxSendMsgSize).
pub const MAX_MESSAGE_BYTES: usize = 100 * 1024 * 1024;
