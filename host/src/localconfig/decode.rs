//! Typed reading of the value tree, mirroring what Fabric's viperutil does with
//! mapstructure: keys matched case-insensitively, `ORDERER_<PATH>` environment
//! overrides, Fabric's decode hooks, then Go's weak typing (`"7050"` is a port, `true`
//! a string `"1"`), and unknown keys refused.

use std::path::Path;
use std::time::Duration;

use super::convert::{
    IntError, bracket_list, byte_size, go_format_float, go_parse_bool, go_parse_duration,
    go_parse_signed, go_parse_unsigned, kafka_version, pem_certificates,
};
use super::yaml::{Value, resolve_plain};
use super::{ConfigError, KafkaVersion, Source};

/// Where a raw value came from, for error messages and [`Source`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Origin {
    File,
    Env(String),
}

/// A value as found, before conversion to its field's type.
pub(crate) struct Raw {
    pub value: Value,
    pub origin: Origin,
}

/// State shared by the whole decoding: the environment, the file, what was found.
pub(crate) struct Cx<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    file: Option<&'a Path>,
    /// With no file, every known key reads the environment (Fabric has no such case:
    /// it refuses to start without a file).
    everywhere: bool,
    /// Leaf keys given a value, in decoding order.
    pub present: Vec<(String, Source)>,
    /// Variables named like a known key but not read, as Fabric does not read them.
    pub ignored_env: Vec<String>,
}

impl<'a> Cx<'a> {
    pub fn new(env: &'a dyn Fn(&str) -> Option<String>, file: Option<&'a Path>) -> Self {
        Cx {
            env,
            file,
            everywhere: file.is_none(),
            present: Vec::new(),
            ignored_env: Vec::new(),
        }
    }

    /// Fabric ignores a variable set to the empty string.
    pub fn getenv(&self, var: &str) -> Option<String> {
        (self.env)(var).filter(|v| !v.is_empty())
    }

    pub fn fail(&self, origin: &Origin, key: &str, problem: impl Into<String>) -> ConfigError {
        let problem = problem.into();
        match origin {
            Origin::Env(var) => ConfigError::Env {
                var: var.clone(),
                key: key.to_string(),
                problem,
            },
            Origin::File => ConfigError::File {
                file: self.file.map(Path::to_path_buf).unwrap_or_default(),
                key: key.to_string(),
                problem,
            },
        }
    }
}

/// `a.b` joined, the top level having no prefix.
pub(crate) fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// How a leaf reports itself to visitors (flattening, default comparison).
pub(crate) trait Leaf {
    fn render(&self) -> String;
    fn is_zero(&self) -> bool;
    /// Whether `text`, read as a plain YAML scalar of this leaf's type, equals it.
    fn equals_text(&self, text: &str) -> bool;
}

/// A field of a section: a leaf value, a nested section, or the free `Consensus` map.
pub(crate) trait Field: Sized {
    fn decode(raw: Raw, key: &str, var: &str, cx: &mut Cx) -> Result<Self, ConfigError>;
    /// Called when the field gets no value: records variables that Fabric would not
    /// read here (`this` too, when its own variable was not consulted).
    fn probe(var: &str, cx: &mut Cx, this: bool) {
        if this && cx.getenv(var).is_some() {
            cx.ignored_env.push(var.to_string());
        }
    }
    fn is_leaf() -> bool {
        true
    }
    fn is_section() -> bool {
        false
    }
    fn visit(&self, key: &str, out: &mut dyn FnMut(&str, &dyn Leaf));
}

/// Leaf types: one conversion from a raw value, Go-weak as mapstructure is.
pub(crate) trait Scalar: Clone + PartialEq + Default + 'static {
    fn convert(raw: &Raw, key: &str, var: &str, cx: &Cx) -> Result<Self, String>;
    fn render(&self) -> String;
}

impl<T: Scalar> Field for T {
    fn decode(raw: Raw, key: &str, var: &str, cx: &mut Cx) -> Result<Self, ConfigError> {
        T::convert(&raw, key, var, cx).map_err(|problem| cx.fail(&raw.origin, key, problem))
    }
    fn visit(&self, key: &str, out: &mut dyn FnMut(&str, &dyn Leaf)) {
        out(key, self)
    }
}

impl<T: Scalar> Leaf for T {
    fn render(&self) -> String {
        Scalar::render(self)
    }
    fn is_zero(&self) -> bool {
        *self == T::default()
    }
    fn equals_text(&self, text: &str) -> bool {
        let env = |_: &str| None;
        let cx = Cx::new(&env, None);
        let raw = Raw {
            value: resolve_plain(text),
            origin: Origin::File,
        };
        T::convert(&raw, "", "", &cx).is_ok_and(|v| v == *self)
    }
}

/// Whether `key` is how Fabric's keys are matched: case-insensitively.
fn same_key(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// One mapping being read into a section struct.
pub(crate) struct Node<'c, 'a> {
    cx: &'c mut Cx<'a>,
    key: String,
    var: String,
    entries: Vec<(String, Value)>,
    used: Vec<bool>,
    /// BCCSP is decoded apart in Fabric: unknown keys ignored, and only keys written
    /// in the file read the environment.
    lenient: bool,
}

impl<'c, 'a> Node<'c, 'a> {
    pub fn new(
        raw: Raw,
        key: &str,
        var: &str,
        cx: &'c mut Cx<'a>,
        lenient: bool,
    ) -> Result<Self, ConfigError> {
        let entries = match raw.value {
            Value::Map(entries) => entries,
            other => {
                let problem = format!("expected a mapping, got {}", other.describe());
                return Err(cx.fail(&raw.origin, key, problem));
            }
        };
        for (i, (a, _)) in entries.iter().enumerate() {
            if let Some((b, _)) = entries[..i].iter().find(|(b, _)| same_key(a, b)) {
                let problem = format!("{b} and {a} are the same key (keys ignore case)");
                return Err(cx.fail(&raw.origin, &join(key, a), problem));
            }
        }
        let used = vec![false; entries.len()];
        Ok(Node {
            cx,
            key: key.to_string(),
            var: var.to_string(),
            entries,
            used,
            lenient,
        })
    }

    /// The field `name`: the environment first, then the file, as Fabric's viperutil.
    pub fn field<T: Field>(&mut self, name: &str) -> Result<Option<T>, ConfigError> {
        let key = join(&self.key, name);
        let var = format!("{}_{}", self.var, name.to_ascii_uppercase());
        let at = self.entries.iter().position(|(k, _)| same_key(k, name));
        if let Some(i) = at {
            self.used[i] = true;
        }
        let in_file = at.map(|i| self.entries[i].1.clone());
        let consult_env = in_file.is_some() || !self.lenient;
        let raw = match (consult_env.then(|| self.cx.getenv(&var)).flatten(), in_file) {
            (Some(text), _) => Some(Raw {
                value: Value::Str(text),
                origin: Origin::Env(var.clone()),
            }),
            (None, Some(value)) if value != Value::Null => Some(Raw {
                value,
                origin: Origin::File,
            }),
            // A null or absent key may still be given as a file's contents.
            _ => consult_env
                .then(|| self.cx.getenv(&format!("{var}_FILE")))
                .flatten()
                .map(|path| Raw {
                    value: Value::Map(vec![("File".into(), Value::Str(path))]),
                    origin: Origin::Env(format!("{var}_FILE")),
                }),
        };
        let raw = match raw {
            Some(raw) => raw,
            // With no file at all, act as if each section were written but empty.
            None if T::is_section() && self.cx.everywhere && !self.lenient => Raw {
                value: Value::Map(Vec::new()),
                origin: Origin::File,
            },
            None => {
                T::probe(&var, self.cx, !consult_env);
                return Ok(None);
            }
        };
        let source = match &raw.origin {
            Origin::File => Source::File,
            Origin::Env(var) => Source::Env(var.clone()),
        };
        let value = T::decode(raw, &key, &var, self.cx)?;
        if T::is_leaf() {
            self.cx.present.push((key, source));
        }
        Ok(Some(value))
    }

    /// Refuses keys no field took, as Fabric's exact unmarshalling does (null ones are
    /// dropped before that check in Fabric, so they pass).
    pub fn finish(self) -> Result<(), ConfigError> {
        if self.lenient {
            return Ok(());
        }
        for ((name, value), used) in self.entries.iter().zip(&self.used) {
            let var = format!("{}_{}", self.var, name.to_ascii_uppercase());
            if !used && (*value != Value::Null || self.cx.getenv(&var).is_some()) {
                let problem = "not a key of Fabric v2.5's orderer.yaml";
                return Err(self.cx.fail(&Origin::File, &join(&self.key, name), problem));
            }
        }
        Ok(())
    }
}

/// Declares a section struct and its decoding from a mapping, field by field, each with
/// Fabric's key spelling (the env variable is derived from it).
macro_rules! section {
    ($(#[$meta:meta])* $name:ident $(lenient = $lenient:literal)? {
        $($(#[$fmeta:meta])* $field:ident: $ty:ty = $key:literal,)*
    }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
        }

        impl $crate::localconfig::decode::Field for $name {
            fn decode(
                raw: $crate::localconfig::decode::Raw,
                key: &str,
                var: &str,
                cx: &mut $crate::localconfig::decode::Cx,
            ) -> Result<Self, $crate::localconfig::ConfigError> {
                let lenient = false $(|| $lenient)?;
                let mut node = $crate::localconfig::decode::Node::new(raw, key, var, cx, lenient)?;
                let base = <Self as Default>::default();
                let out = Self {
                    $($field: node.field($key)?.unwrap_or(base.$field),)*
                };
                node.finish()?;
                Ok(out)
            }
            fn probe(var: &str, cx: &mut $crate::localconfig::decode::Cx, this: bool) {
                if this && cx.getenv(var).is_some() {
                    cx.ignored_env.push(var.to_string());
                }
                $(<$ty as $crate::localconfig::decode::Field>::probe(
                    &format!("{var}_{}", $key.to_ascii_uppercase()), cx, true);)*
            }
            fn is_leaf() -> bool {
                false
            }
            fn is_section() -> bool {
                true
            }
            fn visit(
                &self,
                key: &str,
                out: &mut dyn FnMut(&str, &dyn $crate::localconfig::decode::Leaf),
            ) {
                $($crate::localconfig::decode::Field::visit(
                    &self.$field, &$crate::localconfig::decode::join(key, $key), out);)*
            }
        }
    };
}
pub(crate) use section;

fn got(v: &Value) -> String {
    format!("got {}", v.describe())
}

/// A `{File: path}` mapping: Fabric's hooks read such a file for string and list
/// fields. `None` when the mapping has no `File` (or `file`) key.
fn file_contents(
    entries: &[(String, Value)],
    raw: &Raw,
    var: &str,
    cx: &Cx,
) -> Option<Result<String, String>> {
    let (_, value) = entries
        .iter()
        .find(|(k, _)| k == "File")
        .or_else(|| entries.iter().find(|(k, _)| k == "file"))?;
    let from_env = match raw.origin {
        Origin::File if !var.is_empty() => cx.getenv(&format!("{var}_FILE")),
        _ => None,
    };
    let path = match (from_env, value) {
        (Some(path), _) => path,
        (None, Value::Str(path)) => path.clone(),
        (None, Value::Null) => return Some(Err("File: has no value".into())),
        (None, other) => return Some(Err(format!("File: expected a file name, {}", got(other)))),
    };
    Some(std::fs::read_to_string(&path).map_err(|e| format!("reading File {path:?}: {e}")))
}

impl Scalar for String {
    fn convert(raw: &Raw, _: &str, var: &str, cx: &Cx) -> Result<Self, String> {
        match &raw.value {
            Value::Str(s) if bracket_list(s).is_some() => {
                Err(format!("expected a string, got the list {s:?}"))
            }
            Value::Str(s) => Ok(s.clone()),
            Value::Bool(b) => Ok(if *b { "1" } else { "0" }.into()),
            Value::Int(i) => Ok(i.to_string()),
            Value::Float(f) => Ok(go_format_float(*f)),
            Value::Null => Ok(String::new()),
            Value::Map(entries) => file_contents(entries, raw, var, cx)
                .unwrap_or_else(|| Err(format!("expected a string, {}", got(&raw.value)))),
            Value::List(_) => Err(format!("expected a string, {}", got(&raw.value))),
        }
    }
    fn render(&self) -> String {
        format!("{self:?}")
    }
}

impl Scalar for bool {
    fn convert(raw: &Raw, _: &str, _: &str, _: &Cx) -> Result<Self, String> {
        let expected = || format!("expected a boolean (true or false), {}", got(&raw.value));
        match &raw.value {
            Value::Bool(b) => Ok(*b),
            Value::Int(i) => Ok(*i != 0),
            Value::Float(f) => Ok(*f != 0.0),
            Value::Str(s) if s.is_empty() => Ok(false),
            Value::Str(s) if bracket_list(s).is_none() => go_parse_bool(s).ok_or_else(expected),
            _ => Err(expected()),
        }
    }
    fn render(&self) -> String {
        self.to_string()
    }
}

/// Integers of Go's widths. Out-of-range numbers are refused where Fabric's decoder
/// silently wraps them (a port of 70000 would become 4464 there).
macro_rules! integer {
    ($($ty:ty, $signed:literal;)*) => {$(
        impl Scalar for $ty {
            fn convert(raw: &Raw, _: &str, _: &str, _: &Cx) -> Result<Self, String> {
                let range = || format!(
                    "expected an integer from {} to {}, {}", <$ty>::MIN, <$ty>::MAX, got(&raw.value));
                let wide: i128 = match &raw.value {
                    Value::Int(i) => *i,
                    Value::Float(f) if f.is_finite() => f.trunc() as i128,
                    Value::Bool(b) => i128::from(*b),
                    Value::Str(s) if bracket_list(s).is_none() => {
                        // Fabric's byte-size hook applies to uint32 fields only.
                        let sizes = <$ty>::BITS == 32 && !$signed;
                        let parsed = match sizes.then(|| byte_size(s)).flatten() {
                            Some(Ok(n)) => Ok(n as i128),
                            Some(Err(())) => Err(IntError::Range),
                            None if s.is_empty() => Ok(0),
                            None if $signed => go_parse_signed(s, <$ty>::BITS),
                            None => go_parse_unsigned(s, <$ty>::BITS).map(|u| u as i128),
                        };
                        match parsed {
                            Ok(n) => n,
                            Err(IntError::Range) => return Err(range()),
                            Err(IntError::Syntax) if sizes => return Err(format!(
                                "expected an integer or a byte size such as \"1 MB\", {}", got(&raw.value))),
                            Err(IntError::Syntax) => {
                                return Err(format!("expected an integer, {}", got(&raw.value)));
                            }
                        }
                    }
                    _ => return Err(format!("expected an integer, {}", got(&raw.value))),
                };
                <$ty>::try_from(wide).map_err(|_| range())
            }
            fn render(&self) -> String {
                self.to_string()
            }
        }
    )*};
}
integer! { i16, true; i32, true; i64, true; u16, false; u32, false; }

/// Durations as Go's `time.ParseDuration` reads them; a bare number is nanoseconds, as
/// in Fabric. Negative durations are refused (Fabric accepts them; nothing uses one).
impl Scalar for Duration {
    fn convert(raw: &Raw, _: &str, _: &str, _: &Cx) -> Result<Self, String> {
        let nanos: i128 = match &raw.value {
            Value::Str(s) => match go_parse_duration(s) {
                Some(n) => n.into(),
                None => {
                    return Err(format!(
                        "expected a duration such as \"10s\" or \"1m30s\", {}",
                        got(&raw.value)
                    ));
                }
            },
            Value::Int(i) => *i,
            Value::Float(f) if f.is_finite() => f.trunc() as i128,
            Value::Bool(b) => i128::from(*b),
            _ => {
                return Err(format!(
                    "expected a duration such as \"10s\", {}",
                    got(&raw.value)
                ));
            }
        };
        match u64::try_from(nanos) {
            Ok(n) if nanos <= i128::from(i64::MAX) => Ok(Duration::from_nanos(n)),
            _ if nanos < 0 => Err(format!(
                "a negative duration is not supported, {}",
                got(&raw.value)
            )),
            _ => Err(format!("the duration is too long, {}", got(&raw.value))),
        }
    }
    fn render(&self) -> String {
        format!("{self:?}")
    }
}

/// Lists: a YAML list, `[a, b]` text (the environment's syntax), or a single value
/// taken as a one-item list (Go's weak decoding); `{File: path}` reads a PEM file's
/// certificates.
impl Scalar for Vec<String> {
    fn convert(raw: &Raw, key: &str, var: &str, cx: &Cx) -> Result<Self, String> {
        let item = |i: usize, value: &Value| {
            let raw = Raw {
                value: value.clone(),
                origin: raw.origin.clone(),
            };
            String::convert(&raw, key, "", cx).map_err(|p| format!("item {i}: {p}"))
        };
        match &raw.value {
            Value::List(items) => items.iter().enumerate().map(|(i, v)| item(i, v)).collect(),
            Value::Str(s) => Ok(bracket_list(s).unwrap_or_else(|| vec![s.clone()])),
            Value::Map(entries) if entries.is_empty() => Ok(Vec::new()),
            Value::Map(entries) => match file_contents(entries, raw, var, cx) {
                Some(text) => text.map(|t| pem_certificates(&t)),
                None => Err(format!("expected a list, {}", got(&raw.value))),
            },
            single => item(0, single).map(|s| vec![s]),
        }
    }
    fn render(&self) -> String {
        format!("{self:?}")
    }
}

impl Scalar for KafkaVersion {
    fn convert(raw: &Raw, _: &str, _: &str, _: &Cx) -> Result<Self, String> {
        match &raw.value {
            Value::Str(s) => kafka_version(s).map(KafkaVersion),
            other => Err(format!(
                "expected a Kafka version such as \"2.3.0\", {}",
                got(other)
            )),
        }
    }
    fn render(&self) -> String {
        self.to_string()
    }
}

/// The free `Consensus` map: kept as written, with `ORDERER_CONSENSUS_<KEY>` overrides
/// for the keys the file has (Fabric cannot know any other key there).
impl Field for Value {
    fn decode(raw: Raw, key: &str, var: &str, cx: &mut Cx) -> Result<Self, ConfigError> {
        let Value::Map(entries) = raw.value else {
            let source = match raw.origin {
                Origin::File => Source::File,
                Origin::Env(var) => Source::Env(var),
            };
            cx.present.push((key.to_string(), source));
            return Ok(raw.value);
        };
        let mut out = Vec::new();
        for (name, value) in entries {
            let (key, var) = (
                join(key, &name),
                format!("{var}_{}", name.to_ascii_uppercase()),
            );
            let raw = match cx.getenv(&var) {
                Some(text) => Raw {
                    value: Value::Str(text),
                    origin: Origin::Env(var.clone()),
                },
                None if value == Value::Null => continue,
                None => Raw {
                    value,
                    origin: Origin::File,
                },
            };
            out.push((name, Value::decode(raw, &key, &var, cx)?));
        }
        Ok(Value::Map(out))
    }
    fn is_leaf() -> bool {
        false
    }
    fn visit(&self, key: &str, out: &mut dyn FnMut(&str, &dyn Leaf)) {
        match self {
            Value::Map(entries) => {
                for (name, value) in entries {
                    value.visit(&join(key, name), out);
                }
            }
            Value::Null => {}
            leaf => out(key, &FreeLeaf(leaf)),
        }
    }
}

/// A leaf of the free map, compared as text.
struct FreeLeaf<'v>(&'v Value);

impl Leaf for FreeLeaf<'_> {
    fn render(&self) -> String {
        match self.0 {
            Value::Str(s) => format!("{s:?}"),
            Value::List(items) => {
                let items: Vec<String> = items.iter().map(|i| FreeLeaf(i).render()).collect();
                format!("[{}]", items.join(", "))
            }
            other => other.describe(),
        }
    }
    fn is_zero(&self) -> bool {
        false
    }
    fn equals_text(&self, text: &str) -> bool {
        *self.0 == resolve_plain(text) || self.0.as_str() == Some(text)
    }
}
