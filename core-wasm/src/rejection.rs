//! A refusal as Fabric reports it: a `common.Status` and an `info` text.

use fabric_protos::common::Status;
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub status: Status,
    pub info: String,
}

impl Rejection {
    pub fn new(status: Status, info: impl Into<String>) -> Self {
        Rejection {
            status,
            info: info.into(),
        }
    }

    pub fn bad_request(info: impl Into<String>) -> Self {
        Self::new(Status::BadRequest, info)
    }

    pub fn forbidden(info: impl Into<String>) -> Self {
        Self::new(Status::Forbidden, info)
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.status.as_str_name(),
            self.status as i32,
            self.info
        )
    }
}

impl std::error::Error for Rejection {}
