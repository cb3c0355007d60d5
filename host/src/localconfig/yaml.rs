//! YAML text to a [`Value`] tree. The parser is yaml-rust2 (YAML 1.2 syntax), but plain
//! scalars are resolved as Fabric's YAML library (gopkg.in/yaml.v2, YAML 1.1 rules)
//! resolves them, so `Enabled: yes` is a boolean and `017` is octal 15 here as there.

use std::collections::HashMap;
use std::str::Chars;

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::convert::{looks_like_yaml_float, yaml_int};

/// A node of the YAML tree (and, under `Consensus`, the configuration itself, which
/// Fabric keeps as a free map for the consensus plugin).
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    /// `~`, `null`, an empty value, or an absent key.
    #[default]
    Null,
    Bool(bool),
    /// Wide enough for every integer yaml.v2 yields (int64 and uint64).
    Int(i128),
    Float(f64),
    Str(String),
    List(Vec<Value>),
    /// Entries in file order; keys are compared case-insensitively, as Fabric does.
    Map(Vec<(String, Value)>),
}

impl Value {
    /// The entry `key` of a mapping, matched case-insensitively.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The text of a string scalar.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// How an error message shows this value: strings quoted, collections by kind.
    pub(crate) fn describe(&self) -> String {
        match self {
            Value::Null => "null".into(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Str(s) => format!("{s:?}"),
            Value::List(_) => "a list".into(),
            Value::Map(_) => "a mapping".into(),
        }
    }
}

/// A syntax error, with the 1-based position yaml-rust2 reports.
#[derive(Debug)]
pub(crate) struct SyntaxError {
    pub line: usize,
    pub column: usize,
    pub problem: String,
}

/// Nesting deeper than this is refused rather than risking the stack.
const MAX_DEPTH: usize = 128;

/// Parses the first document of `text`, as Fabric's decoder reads only the first.
/// `None` when the text holds no document at all (Fabric fails on it with "EOF").
pub(crate) fn parse(text: &str) -> Result<Option<Value>, SyntaxError> {
    let mut loader = Loader {
        parser: Parser::new_from_str(text),
        anchors: HashMap::new(),
    };
    loop {
        let (event, mark) = loader.next()?;
        match event {
            Event::StreamStart => {}
            Event::StreamEnd => return Ok(None),
            Event::DocumentStart => {
                let (event, mark) = loader.next()?;
                return loader.node(event, mark, 0).map(Some);
            }
            other => return Err(syntax(mark, format!("unexpected {other:?}"))),
        }
    }
}

struct Loader<'a> {
    parser: Parser<Chars<'a>>,
    anchors: HashMap<usize, Value>,
}

fn syntax(mark: Marker, problem: String) -> SyntaxError {
    SyntaxError {
        line: mark.line(),
        column: mark.col() + 1,
        problem,
    }
}

impl Loader<'_> {
    fn next(&mut self) -> Result<(Event, Marker), SyntaxError> {
        self.parser.next_token().map_err(|e| SyntaxError {
            line: e.marker().line(),
            column: e.marker().col() + 1,
            problem: e.info().to_string(),
        })
    }

    fn node(&mut self, event: Event, mark: Marker, depth: usize) -> Result<Value, SyntaxError> {
        if depth > MAX_DEPTH {
            return Err(syntax(mark, "nested too deeply".into()));
        }
        let (value, anchor) = match event {
            Event::Scalar(text, style, anchor, tag) => {
                let verbatim = style != TScalarStyle::Plain
                    || tag.is_some_and(|t| {
                        t.handle == "tag:yaml.org,2002:"
                            && (t.suffix == "str" || t.suffix == "binary")
                    });
                let value = if verbatim {
                    Value::Str(text)
                } else {
                    resolve_plain(&text)
                };
                (value, anchor)
            }
            Event::SequenceStart(anchor, _) => {
                let mut items = Vec::new();
                loop {
                    let (event, mark) = self.next()?;
                    if event == Event::SequenceEnd {
                        break;
                    }
                    items.push(self.node(event, mark, depth + 1)?);
                }
                (Value::List(items), anchor)
            }
            Event::MappingStart(anchor, _) => (self.mapping(depth)?, anchor),
            Event::Alias(id) => {
                let value = self.anchors.get(&id).cloned();
                return value.ok_or_else(|| syntax(mark, "unknown alias".into()));
            }
            other => return Err(syntax(mark, format!("unexpected {other:?}"))),
        };
        if anchor > 0 {
            self.anchors.insert(anchor, value.clone());
        }
        Ok(value)
    }

    /// A mapping's entries, as yaml.v2 builds them: a repeated key replaces the earlier
    /// value, and `<<` inserts another mapping's entries at that point (so keys after
    /// it win, keys before it lose; in a list of mappings the earlier ones win).
    fn mapping(&mut self, depth: usize) -> Result<Value, SyntaxError> {
        let mut entries: Vec<(String, Value)> = Vec::new();
        loop {
            let (event, mark) = self.next()?;
            if event == Event::MappingEnd {
                break;
            }
            let is_merge =
                matches!(&event, Event::Scalar(t, TScalarStyle::Plain, _, None) if t == "<<");
            let key = match self.node(event, mark, depth + 1)? {
                Value::Str(key) => key,
                other => {
                    let got = other.describe();
                    return Err(syntax(mark, format!("a key must be a string, got {got}")));
                }
            };
            let (event, vmark) = self.next()?;
            let value = self.node(event, vmark, depth + 1)?;
            if !is_merge {
                insert(&mut entries, key, value);
                continue;
            }
            let sources = match value {
                Value::List(items) => items.into_iter().rev().collect(),
                single => vec![single],
            };
            for source in sources {
                let Value::Map(source) = source else {
                    return Err(syntax(vmark, "`<<` must name a mapping".into()));
                };
                for (k, v) in source {
                    insert(&mut entries, k, v);
                }
            }
        }
        Ok(Value::Map(entries))
    }
}

fn insert(entries: &mut Vec<(String, Value)>, key: String, value: Value) {
    match entries.iter_mut().find(|(k, _)| *k == key) {
        Some(slot) => slot.1 = value,
        None => entries.push((key, value)),
    }
}

/// yaml.v2's resolution of an untagged plain scalar: its YAML 1.1 booleans and nulls,
/// Go's integer syntax (`0x`, `0o`, `0b`, a leading `0` for octal, `_` separators),
/// then floats; anything else is a string (timestamps too, as yaml.v2 keeps them).
pub(crate) fn resolve_plain(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Value::Bool(true);
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Value::Bool(false);
        }
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        _ => {}
    }
    match text.as_bytes()[0] {
        b'.' => text
            .parse::<f64>()
            .ok()
            .filter(|_| looks_like_yaml_float(text))
            .map_or_else(|| Value::Str(text.into()), Value::Float),
        b'0'..=b'9' | b'+' | b'-' => {
            let plain = text.replace('_', "");
            if let Some(i) = yaml_int(&plain) {
                return Value::Int(i);
            }
            if looks_like_yaml_float(&plain)
                && let Ok(f) = plain.parse::<f64>()
            {
                return Value::Float(f);
            }
            Value::Str(text.into())
        }
        _ => Value::Str(text.into()),
    }
}
