//! Log levels: Fabric's logging spec (`FABRIC_LOGGING_SPEC`, `/logspec`) on a
//! tracing-subscriber filter that can be replaced while the orderer runs.
//!
//! A spec is Fabric's: `:`-separated segments, each a level (the default) or
//! `logger[,logger...]=level`; a logger covers its dotted children
//! (`orderer.consensus` covers `orderer.consensus.solo`). Fabric's logger names map
//! onto our module targets ([`target_of`]): the orderer's packages to the modules that
//! play their part, any other name to itself with `.` read as `::`. Levels: payload
//! (trace), debug, info, warn/warning, error; dpanic, panic, fatal, critical are error
//! and notice is info, as the nearest tracing has.
//!
//! `ORDERER_LOG` (tracing's own filter syntax) wins over `FABRIC_LOGGING_SPEC` when
//! both are set: it is this binary's own, more precise setting.

use std::sync::{Mutex, OnceLock};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::reload;
use tracing_subscriber::util::SubscriberInitExt;

/// A spec Fabric would refuse, with Fabric's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("invalid logging specification '{spec}': bad segment '{segment}'")]
    BadSegment { spec: String, segment: String },
    #[error("invalid logging specification '{spec}': no logger specified in segment '{segment}'")]
    NoLogger { spec: String, segment: String },
    #[error("invalid logging specification '{spec}': bad logger name '{logger}'")]
    BadLogger { spec: String, logger: String },
}

/// Fabric's logger names of the orderer's packages, and our targets for them.
/// Longest match wins; a name not listed maps to itself (`a.b` is `a::b`).
const TARGETS: &[(&str, &[&str])] = &[
    ("orderer.common.broadcast", &["orderer::broadcast"]),
    (
        "common.deliver",
        &["orderer::deliver", "orderer::server::deliver_route"],
    ),
    ("orderer.common.msgprocessor", &["orderer::msgprocessor"]),
    ("orderer.common.multichannel", &["orderer::multichannel"]),
    (
        "orderer.common.channelparticipation",
        &["orderer::channelparticipation"],
    ),
    ("orderer.common.server", &["orderer::server", "orderer"]),
    (
        "orderer.common.localconfig",
        &["orderer::localconfig", "orderer::config"],
    ),
    ("orderer.consensus", &["orderer::consensus"]),
    ("orderer.operations", &["orderer::operations"]),
    ("orderer.admin", &["orderer::admin"]),
    ("common.ledger", &["orderer::ledger"]),
    ("core.comm", &["orderer::comm"]),
    ("comm.grpc.server", &["orderer::server"]),
];

/// Dependencies whose logs stay at warn (or the default, if quieter) unless a spec
/// names them: a Fabric spec of `debug` means the orderer's own debug logs.
const QUIET: &[&str] = &[
    "wasmtime",
    "cranelift",
    "h2",
    "hyper",
    "hyper_util",
    "tower",
    "tonic",
    "rustls",
    "axum",
    "mio",
];

/// Our tracing targets for a Fabric logger name.
pub fn target_of(logger: &str) -> Vec<String> {
    let logger = logger.trim_end_matches('.');
    let listed = TARGETS
        .iter()
        .filter(|(name, _)| logger == *name || logger.starts_with(&format!("{name}.")))
        .max_by_key(|(name, _)| name.len());
    match listed {
        Some((name, targets)) => {
            // A child of a listed name: its tail goes under each target.
            let tail = logger[name.len()..].replace('.', "::");
            targets.iter().map(|t| format!("{t}{tail}")).collect()
        }
        None => vec![logger.replace('.', "::")],
    }
}

/// Fabric's level names, as a tracing level.
fn level(name: &str) -> Option<&'static str> {
    Some(match name {
        "PAYLOAD" | "payload" => "trace",
        "DEBUG" | "debug" => "debug",
        "INFO" | "info" | "NOTICE" | "notice" => "info",
        "WARNING" | "WARN" | "warning" | "warn" => "warn",
        "ERROR" | "error" | "DPANIC" | "dpanic" | "PANIC" | "panic" | "FATAL" | "fatal"
        | "CRITICAL" | "critical" => "error",
        _ => return None,
    })
}

/// A level as Fabric's `Spec()` prints it (zap's names).
fn canonical(name: &str) -> String {
    match name.to_lowercase().as_str() {
        "warning" => "warn".into(),
        "notice" => "info".into(),
        "critical" => "error".into(),
        other => other.into(),
    }
}

fn verbosity(level: &str) -> u8 {
    match level {
        "trace" => 5,
        "debug" => 4,
        "info" => 3,
        "warn" => 2,
        _ => 1,
    }
}

/// A parsed Fabric spec: the default level and per-logger levels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    default: &'static str,
    /// (Fabric logger name, tracing level, the level as written), sorted by name.
    loggers: Vec<(String, &'static str, String)>,
    default_written: String,
}

impl Spec {
    /// Parses as Fabric's `LoggerLevels.ActivateSpec` does (same checks, same texts).
    pub fn parse(spec: &str) -> Result<Spec, SpecError> {
        let bad_segment = |segment: &str| SpecError::BadSegment {
            spec: spec.into(),
            segment: segment.into(),
        };
        let mut parsed = Spec {
            default: "info",
            loggers: Vec::new(),
            default_written: "info".into(),
        };
        for segment in spec.split(':') {
            let parts: Vec<&str> = segment.split('=').collect();
            match parts[..] {
                // As Fabric: an empty segment sets the default back to info.
                [""] => {
                    parsed.default = "info";
                    parsed.default_written = "info".into();
                }
                [name] => {
                    parsed.default = level(name).ok_or_else(|| bad_segment(segment))?;
                    parsed.default_written = canonical(name);
                }
                [loggers, name] => {
                    if loggers.is_empty() {
                        return Err(SpecError::NoLogger {
                            spec: spec.into(),
                            segment: segment.into(),
                        });
                    }
                    let level = level(name).ok_or_else(|| bad_segment(segment))?;
                    for logger in loggers.split(',') {
                        if !valid_logger(logger.trim_end_matches('.')) {
                            return Err(SpecError::BadLogger {
                                spec: spec.into(),
                                logger: logger.into(),
                            });
                        }
                        parsed.loggers.retain(|(l, _, _)| l != logger);
                        parsed.loggers.push((logger.into(), level, canonical(name)));
                    }
                }
                _ => return Err(bad_segment(segment)),
            }
        }
        parsed.loggers.sort();
        Ok(parsed)
    }

    /// As Fabric's `Spec()` prints it: `logger=level` sorted, then the default.
    pub fn to_fabric(&self) -> String {
        let mut fields: Vec<String> = self
            .loggers
            .iter()
            .map(|(logger, _, written)| format!("{logger}={written}"))
            .collect();
        fields.push(self.default_written.clone());
        fields.join(":")
    }

    /// The tracing filter directives this spec means.
    pub fn directives(&self) -> String {
        let mut directives = vec![self.default.to_string()];
        let named: Vec<Vec<String>> = self.loggers.iter().map(|(l, _, _)| target_of(l)).collect();
        let quiet = if verbosity(self.default) < verbosity("warn") {
            self.default
        } else {
            "warn"
        };
        for dependency in QUIET {
            if !named
                .iter()
                .flatten()
                .any(|t| t == dependency || t.starts_with(&format!("{dependency}::")))
            {
                directives.push(format!("{dependency}={quiet}"));
            }
        }
        for ((_, level, _), targets) in self.loggers.iter().zip(&named) {
            for target in targets {
                directives.push(format!("{target}={level}"));
            }
        }
        directives.join(",")
    }

    fn filter(&self) -> EnvFilter {
        EnvFilter::new(self.directives())
    }
}

/// Fabric's logger name rule: dot-separated words of letters, digits, `_#:-`.
fn valid_logger(name: &str) -> bool {
    !name.is_empty()
        && name.split('.').all(|word| {
            !word.is_empty()
                && word
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '#' | ':' | '-'))
        })
}

type Handle = reload::Handle<EnvFilter, tracing_subscriber::Registry>;

/// The installed subscriber's filter and the spec it was made from.
struct Logging {
    handle: Handle,
    spec: Mutex<String>,
}

static LOGGING: OnceLock<Logging> = OnceLock::new();

/// Where the start-up filter came from, for the one line that says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Default,
    FabricLoggingSpec,
    OrdererLog,
    /// Both were set: ORDERER_LOG was used, FABRIC_LOGGING_SPEC ignored.
    OrdererLogOverFabric,
}

/// The start-up filter from `ORDERER_LOG` (tracing syntax) or `FABRIC_LOGGING_SPEC`
/// (Fabric's), `env` being `std::env::var`; a malformed value is an error.
pub fn initial(
    env: &impl Fn(&str) -> Option<String>,
) -> Result<(EnvFilter, String, Origin), String> {
    let fabric = env("FABRIC_LOGGING_SPEC").filter(|s| !s.is_empty());
    if let Some(ours) = env("ORDERER_LOG").filter(|s| !s.is_empty()) {
        let filter = EnvFilter::try_new(&ours).map_err(|e| format!("ORDERER_LOG {ours:?}: {e}"))?;
        let origin = match fabric {
            Some(_) => Origin::OrdererLogOverFabric,
            None => Origin::OrdererLog,
        };
        return Ok((filter, ours, origin));
    }
    let (spec, origin) = match fabric {
        Some(text) => (
            Spec::parse(&text).map_err(|e| format!("FABRIC_LOGGING_SPEC: {e}"))?,
            Origin::FabricLoggingSpec,
        ),
        None => (Spec::parse("info").expect("a valid spec"), Origin::Default),
    };
    Ok((spec.filter(), spec.to_fabric(), origin))
}

/// Installs the process' subscriber: logs to stderr, ANSI colours only when stderr
/// is a terminal, the filter replaceable by [`activate`].
pub fn init(filter: EnvFilter, spec: String) {
    use std::io::IsTerminal;
    let (layer, handle) = reload::Layer::new(filter);
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    if tracing_subscriber::registry()
        .with(layer)
        .with(fmt)
        .try_init()
        .is_ok()
    {
        let _ = LOGGING.set(Logging {
            handle,
            spec: Mutex::new(spec),
        });
    }
}

/// The spec in force, as `GET /logspec` answers it.
pub fn current() -> String {
    LOGGING
        .get()
        .map(|l| l.spec.lock().unwrap().clone())
        .unwrap_or_default()
}

/// Puts a Fabric spec in force (`PUT /logspec`).
pub fn activate(spec: &str) -> Result<(), SpecError> {
    let parsed = Spec::parse(spec)?;
    if let Some(logging) = LOGGING.get() {
        let mut current = logging.spec.lock().unwrap();
        // Fails only if the subscriber is gone, which it never is once set.
        let _ = logging.handle.reload(parsed.filter());
        *current = parsed.to_fabric();
    }
    Ok(())
}
