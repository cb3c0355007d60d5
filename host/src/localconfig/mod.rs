//! Fabric v2.5's `orderer.yaml`, read as Fabric's orderer reads it (its packages
//! `orderer/common/localconfig` and `common/viperutil`), so an existing Fabric
//! deployment's file and `ORDERER_*` environment mean the same here.
//!
//! - **Which file**: the one given, else `orderer.yaml` (then `orderer.yml`) in
//!   `$FABRIC_CFG_PATH`, then `.`, then `/etc/hyperledger/fabric` ([`find_file`]).
//!   Fabric stops when none is found; here the caller gets defaults and
//!   [`Loaded::file`] `None`; with no file, every known key outside BCCSP reads the
//!   environment.
//! - **Keys** are case-insensitive. A key Fabric does not know is an error, except
//!   under `General.BCCSP` (ignored there too) and the free `Consensus` map.
//! - **Environment**: `ORDERER_` + the dotted path upper-cased with `_` for `.`, e.g.
//!   `ORDERER_GENERAL_TLS_ENABLED`. It beats the file; an empty value is ignored. As in
//!   Fabric, it applies to a known key absent from the file only when the key's
//!   section is in the file (`Admin:` missing means `ORDERER_ADMIN_*` is not read;
//!   [`Loaded::ignored_env`] lists such variables), and under BCCSP and Consensus only
//!   to keys the file has. For a null or absent key, `<VAR>_FILE` names a file whose
//!   contents are the value (its PEM certificates, for a list), like `{File: path}`.
//! - **Values** follow Go: YAML 1.1 scalars (`yes` is true), Go's weak typing (`"7050"`
//!   is a number), lists as YAML lists or `[a, b]` text (or one bare item), durations
//!   as `time.ParseDuration` (`10s`, `1m30s`, `250ms`; a bare number is nanoseconds),
//!   ChannelParticipation.MaxRequestBodySize as a byte size (`1 MB`, `512k`, `2gb`,
//!   or bytes).
//! - **Defaults**: an absent key is Go's zero value unless Fabric's
//!   `completeInitialization` fills it ([`LocalConfig::fabric_defaults`]); notably the
//!   sample file's Operations, Metrics, Admin and MaxRequestBodySize values are not
//!   defaults.
//! - **Paths**: [`PATH_KEYS`] are taken relative to the file's folder, as Fabric does.
//!
//! Deviations, all refusals of what Fabric would accept silently: integers out of
//! their field's range (Fabric wraps them), negative durations, and an empty list
//! where Fabric checks for a nil one (Kafka.TLS.RootCAs).

mod complete;
mod convert;
mod decode;
mod schema;
#[cfg(test)]
mod tests;
mod yaml;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

pub use complete::TRANSLATED as PATH_KEYS;
pub use schema::*;
pub use yaml::Value;

use convert::{go_dir, translate_path};
use decode::{Cx, Field, Origin, Raw};

/// A Kafka protocol version, as the nearest one Fabric's Kafka client knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KafkaVersion(pub [u64; 4]);

impl fmt::Display for KafkaVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d] = self.0;
        write!(f, "{a}.{b}.{c}.{d}")
    }
}

/// Where a key's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File,
    /// The environment variable that set it.
    Env(String),
}

/// A key given a value, in the file or the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// Fabric's spelling, dotted: `General.TLS.Enabled`.
    pub key: String,
    pub source: Source,
    /// The value is neither the zero value, nor Fabric's default, nor the value in
    /// Fabric's sample orderer.yaml: somebody chose it.
    pub chosen: bool,
}

/// A loaded configuration and how it was made.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// Defaults filled in and paths translated, as Fabric's `localconfig.Load` returns.
    pub config: LocalConfig,
    /// The file read; `None` when none was found (defaults and environment only).
    pub file: Option<PathBuf>,
    /// Every key given a value, in file order, environment-only keys included.
    pub settings: Vec<Setting>,
    /// `ORDERER_*` variables naming a known key that Fabric would not read (see the
    /// module documentation); worth a warning, as the operator probably meant them.
    pub ignored_env: Vec<String>,
}

/// A key's problem, or the file's. Each is one line naming the file (or environment
/// variable), the dotted key and the problem.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: {error}", file.display())]
    Read {
        file: PathBuf,
        error: std::io::Error,
    },
    #[error("{}: line {line}, column {column}: {problem}", file.display())]
    Syntax {
        file: PathBuf,
        line: usize,
        column: usize,
        problem: String,
    },
    #[error("{}: {key}: {problem}", file.display())]
    File {
        file: PathBuf,
        key: String,
        problem: String,
    },
    #[error("{var}: {problem}")]
    Env {
        var: String,
        key: String,
        problem: String,
    },
    /// Settings Fabric refuses together at start (it panics); `at` is the file or the
    /// variable that set `key`.
    #[error("{at}: {key}: {problem}")]
    Invalid {
        at: String,
        key: String,
        problem: String,
    },
}

/// The folders Fabric searches after `$FABRIC_CFG_PATH`.
pub const DEFAULT_DIRS: [&str; 2] = [".", "/etc/hyperledger/fabric"];

/// Fabric's search for the file: `$FABRIC_CFG_PATH` (when set and not empty), then
/// [`DEFAULT_DIRS`]; in each, `orderer.yaml` then `orderer.yml`.
pub fn find_file(env: &impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let mut dirs: Vec<String> = env("FABRIC_CFG_PATH")
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect();
    dirs.extend(DEFAULT_DIRS.iter().map(|d| d.to_string()));
    find_in(&dirs)
}

/// The first `orderer.yaml`/`orderer.yml` in `dirs`, joined as Go joins paths (so one
/// found in `.` is plain `orderer.yaml`, and relative paths stay relative).
pub(crate) fn find_in(dirs: &[String]) -> Option<PathBuf> {
    dirs.iter()
        .flat_map(|d| ["yaml", "yml"].map(|ext| translate_path(d, &format!("orderer.{ext}"))))
        .find(|candidate| Path::new(candidate).exists())
        .map(PathBuf::from)
}

impl LocalConfig {
    /// Reads `file` (our `--config`), else the file [`find_file`] finds, else nothing;
    /// applies the environment `env` (e.g. `|k| std::env::var(k).ok()`), fills Fabric's
    /// defaults, checks what Fabric checks and translates [`PATH_KEYS`].
    pub fn load(
        file: Option<&Path>,
        env: &impl Fn(&str) -> Option<String>,
    ) -> Result<Loaded, ConfigError> {
        let file = file.map(Path::to_path_buf).or_else(|| find_file(env));
        let tree = match &file {
            Some(path) => read_tree(path)?,
            None => Value::Map(Vec::new()),
        };
        let mut cx = Cx::new(env, file.as_deref());
        let raw = Raw {
            value: tree,
            origin: Origin::File,
        };
        let mut config = LocalConfig::decode(raw, "", "ORDERER", &mut cx)?;

        let mut chosen = HashMap::new();
        config.visit("", &mut |key, leaf| {
            chosen.insert(key.to_string(), complete::is_chosen(key, leaf));
        });
        let ignored_env = cx.ignored_env;
        let settings: Vec<Setting> = cx
            .present
            .into_iter()
            .map(|(key, source)| Setting {
                chosen: chosen.get(&key).copied().unwrap_or(true),
                key,
                source,
            })
            .collect();

        if let Err((key, problem)) = complete::complete(&mut config) {
            return Err(ConfigError::Invalid {
                at: origin_label(&settings, file.as_deref(), key),
                key: key.into(),
                problem: problem.into(),
            });
        }
        let dir = file
            .as_deref()
            .map_or_else(|| ".".into(), |f| go_dir(&f.to_string_lossy()));
        complete::translate(&mut config, &dir);
        Ok(Loaded {
            config,
            file,
            settings,
            ignored_env,
        })
    }

    /// What Fabric's orderer runs with given an empty file: the zero values, plus the
    /// defaults `completeInitialization` fills (listen 127.0.0.1:7050, BootstrapMethod
    /// `file`, LocalMSPDir `msp`, LocalMSPID `SampleOrg`, 100 MB messages, ...).
    pub fn fabric_defaults() -> LocalConfig {
        let mut config = LocalConfig::default();
        complete::complete(&mut config).expect("the zero config is consistent");
        complete::translate(&mut config, ".");
        config
    }

    /// Every leaf as (`Dotted.Key`, value), in declaration order, as Fabric logs its
    /// configuration at start.
    pub fn flatten(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        self.visit("", &mut |key, leaf| {
            out.push((key.to_string(), leaf.render()))
        });
        out
    }
}

/// The parsed file; a null document is an empty one, no document at all an error.
fn read_tree(path: &Path) -> Result<Value, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
        file: path.to_path_buf(),
        error,
    })?;
    let syntax = |line, column, problem: String| ConfigError::Syntax {
        file: path.to_path_buf(),
        line,
        column,
        problem,
    };
    match yaml::parse(&text) {
        Err(e) => Err(syntax(e.line, e.column, e.problem)),
        Ok(None) => Err(syntax(1, 1, "no YAML document in the file".into())),
        Ok(Some(Value::Null)) => Ok(Value::Map(Vec::new())),
        Ok(Some(map @ Value::Map(_))) => Ok(map),
        Ok(Some(other)) => {
            let problem = format!("the top level must be a mapping, got {}", other.describe());
            Err(syntax(1, 1, problem))
        }
    }
}

/// The variable that set `key`, else the file (for errors raised after decoding).
fn origin_label(settings: &[Setting], file: Option<&Path>, key: &str) -> String {
    match settings.iter().find(|s| s.key.eq_ignore_ascii_case(key)) {
        Some(Setting {
            source: Source::Env(var),
            ..
        }) => var.clone(),
        _ => file.map_or_else(|| "defaults".into(), |f| f.display().to_string()),
    }
}

/// The etcdraft consenter's settings, from `Consensus` (Fabric decodes them strictly:
/// each must be a string).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EtcdRaft {
    pub wal_dir: String,
    pub snap_dir: String,
    pub eviction_suspicion: String,
    pub tick_interval_override: String,
}

impl Loaded {
    /// The settings an orderer implementing only `implemented` (dotted keys, or
    /// sections such as `"Kafka"` covering all below, case-insensitive) should warn
    /// about: those whose value was chosen ([`Setting::chosen`]). Keys merely present
    /// with default or sample values are left out, as Fabric's sample file sets many.
    pub fn unimplemented(&self, implemented: &[&str]) -> Vec<&Setting> {
        // As bytes: a key of the free Consensus map may have any character where a
        // prefix ends.
        let covered = |key: &str| {
            let key = key.as_bytes();
            implemented.iter().any(|i| {
                key.get(..i.len())
                    .is_some_and(|prefix| prefix.eq_ignore_ascii_case(i.as_bytes()))
                    && key.get(i.len()).is_none_or(|&b| b == b'.')
            })
        };
        self.settings
            .iter()
            .filter(|s| s.chosen && !covered(&s.key))
            .collect()
    }

    /// `Consensus` as the etcdraft consenter reads it.
    pub fn etcdraft(&self) -> Result<EtcdRaft, ConfigError> {
        let consensus = &self.config.consensus;
        let fail = |key: String, problem: String| ConfigError::Invalid {
            at: origin_label(&self.settings, self.file.as_deref(), &key),
            key,
            problem,
        };
        if !matches!(consensus, Value::Map(_) | Value::Null) {
            let problem = format!("expected a mapping, got {}", consensus.describe());
            return Err(fail("Consensus".into(), problem));
        }
        let get = |name: &str| match consensus.get(name) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::Str(s)) => Ok(s.clone()),
            Some(other) => Err(fail(
                format!("Consensus.{name}"),
                format!("expected a string, got {}", other.describe()),
            )),
        };
        Ok(EtcdRaft {
            wal_dir: get("WALDir")?,
            snap_dir: get("SnapDir")?,
            eviction_suspicion: get("EvictionSuspicion")?,
            tick_interval_override: get("TickIntervalOverride")?,
        })
    }
}
