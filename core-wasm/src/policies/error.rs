//! The policy machinery's errors, displayed with Fabric's texts.

use thiserror::Error;

/// Why a config's policies did not compile (Fabric's `NewManagerImpl`), or why signed
/// data did not satisfy a policy (`EvaluateSignedData`).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum PolicyError {
    #[error("policy {name} at path {path} was nil")]
    Nil { name: String, path: String },
    #[error("policy {name} at path {path} has unknown policy type: {kind}")]
    UnknownType {
        name: String,
        path: String,
        kind: i32,
    },
    #[error("policy {name} at path {path} did not compile: {reason}")]
    Signature {
        name: String,
        path: String,
        reason: String,
    },
    #[error("implicit policy {name} at path {path} did not compile: {reason}")]
    ImplicitMeta {
        name: String,
        path: String,
        reason: String,
    },
    /// Fabric's `rejectPolicy` for a path with no policy.
    #[error("no such policy: '{0}'")]
    NoSuchPolicy(String),
    #[error("signature set did not satisfy policy")]
    NotSatisfied,
    #[error(
        "implicit policy evaluation failed - {satisfied} sub-policies were satisfied, but this policy requires {threshold} of the '{sub_policy}' sub-policies to be satisfied"
    )]
    ImplicitMetaNotSatisfied {
        satisfied: isize,
        threshold: isize,
        sub_policy: String,
    },
}
