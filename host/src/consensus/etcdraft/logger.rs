//! raft-rs logs through `slog`; this drain hands its records to `tracing`, with the
//! record's key-values appended, under the `etcdraft` target.

use slog::{Drain, KV, Key, Level, OwnedKVList, Record, Serializer};
use std::fmt::{Arguments, Write};

/// The logger raft-rs is given for `channel`.
pub fn logger(channel: &str) -> slog::Logger {
    slog::Logger::root(Tracing.fuse(), slog::o!("channel" => channel.to_string()))
}

struct Tracing;

struct Line(String);

impl Serializer for Line {
    fn emit_arguments(&mut self, key: Key, value: &Arguments) -> slog::Result {
        let _ = write!(self.0, " {key}={value}");
        Ok(())
    }
}

impl Drain for Tracing {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &Record, values: &OwnedKVList) -> Result<(), slog::Never> {
        let mut line = Line(record.msg().to_string());
        let _ = record.kv().serialize(record, &mut line);
        let _ = values.serialize(record, &mut line);
        let line = line.0;
        match record.level() {
            Level::Critical | Level::Error => tracing::error!(target: "etcdraft", "{line}"),
            Level::Warning => tracing::warn!(target: "etcdraft", "{line}"),
            Level::Info => tracing::info!(target: "etcdraft", "{line}"),
            Level::Debug => tracing::debug!(target: "etcdraft", "{line}"),
            Level::Trace => tracing::trace!(target: "etcdraft", "{line}"),
        }
        Ok(())
    }
}
