//! The join request's body as Fabric's handler reads it: Go's `mime.ParseMediaType`
//! and `multipart.Reader.ReadForm`, as far as the handler depends on them, with
//! their error texts (the handler puts them in its answers).

use std::collections::{BTreeMap, BTreeSet};

/// Why a media type (Content-Type, Content-Disposition) did not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MediaTypeError {
    #[error("mime: no media type")]
    NoMediaType,
    #[error("mime: expected slash after first token")]
    ExpectedSlash,
    #[error("mime: expected token after slash")]
    ExpectedSubtype,
    #[error("mime: unexpected content after media subtype")]
    AfterSubtype,
    #[error("mime: invalid media parameter")]
    InvalidParameter,
    #[error("mime: duplicate parameter name")]
    DuplicateParameter,
}

/// Go's `mime.ParseMediaType`: the lower-cased media type and its parameters
/// (names lower-cased).
pub fn parse_media_type(text: &str) -> Result<(String, BTreeMap<String, String>), MediaTypeError> {
    let base = text.split(';').next().unwrap_or_default();
    let media_type = base.to_lowercase().trim().to_string();
    check_media_type(&media_type)?;
    let mut params = BTreeMap::new();
    let mut rest = &text[base.len()..];
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        let Some((key, value, after)) = media_param(rest) else {
            // A trailing semicolon is allowed.
            if rest.trim() == ";" {
                break;
            }
            return Err(MediaTypeError::InvalidParameter);
        };
        if params.get(&key).is_some_and(|v| *v != value) {
            return Err(MediaTypeError::DuplicateParameter);
        }
        params.insert(key, value);
        rest = after;
    }
    Ok((media_type, params))
}

fn check_media_type(text: &str) -> Result<(), MediaTypeError> {
    let (kind, rest) = token(text);
    if kind.is_empty() {
        return Err(MediaTypeError::NoMediaType);
    }
    if rest.is_empty() {
        return Ok(());
    }
    let Some(rest) = rest.strip_prefix('/') else {
        return Err(MediaTypeError::ExpectedSlash);
    };
    let (subtype, rest) = token(rest);
    if subtype.is_empty() {
        return Err(MediaTypeError::ExpectedSubtype);
    }
    if !rest.is_empty() {
        return Err(MediaTypeError::AfterSubtype);
    }
    Ok(())
}

/// `; key=value` (value a token or a quoted string), and what follows it.
fn media_param(text: &str) -> Option<(String, String, &str)> {
    let rest = text.trim_start().strip_prefix(';')?.trim_start();
    let (key, rest) = token(rest);
    if key.is_empty() {
        return None;
    }
    let rest = rest.trim_start().strip_prefix('=')?.trim_start();
    let (value, after) = if let Some(quoted) = rest.strip_prefix('"') {
        quoted_string(quoted)?
    } else {
        let (value, after) = token(rest);
        if value.is_empty() {
            return None;
        }
        (value.to_string(), after)
    };
    Some((key.to_lowercase(), value, after))
}

/// RFC 1521 token characters: printable ASCII but the tspecials.
fn token(text: &str) -> (&str, &str) {
    let end = text
        .find(|c: char| !(c > ' ' && c < '\x7f' && !"()<>@,;:\\\"/[]?=".contains(c)))
        .unwrap_or(text.len());
    text.split_at(end)
}

/// The rest of a quoted string after its opening quote: its value and what follows.
fn quoted_string(text: &str) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((value, &text[i + 1..])),
            '\\' => value.push(chars.next()?.1),
            c => value.push(c),
        }
    }
    None
}

/// How the body ended too early: Go's reader errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("EOF")]
    Eof,
    #[error("unexpected EOF")]
    UnexpectedEof,
    /// More than the handler's MaxRequestBodySize was sent (Go's `MaxBytesReader`).
    #[error("http: request body too large")]
    TooLarge,
}

/// Why the multipart form could not be read (Go's `mime/multipart` texts).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error("multipart: boundary is empty")]
    EmptyBoundary,
    #[error("multipart: NextPart: {0}")]
    NextPart(ReadError),
    #[error("{0}")]
    Read(ReadError),
    #[error("multipart: expecting a new Part; got line {0:?}")]
    ExpectingNewPart(String),
    #[error("multipart: unexpected line in Next(): {0:?}")]
    UnexpectedLine(String),
    #[error("malformed MIME header line: {0}")]
    MalformedHeader(String),
}

/// A read form: the first file of each field name, and the names of plain fields.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Form {
    pub files: BTreeMap<String, Vec<u8>>,
    pub values: BTreeSet<String>,
}

/// A multipart body as Go's reader sees it: `data` is what arrived within the
/// size limit, `truncated` whether more was sent.
pub struct Body<'a> {
    pub data: &'a [u8],
    pub truncated: bool,
}

/// Go's `ReadForm`: every part with a form-data name, in order; a part with a
/// file name is a file.
pub fn read_form(body: &Body<'_>, boundary: &str) -> Result<Form, FormError> {
    if boundary.is_empty() {
        return Err(FormError::EmptyBoundary);
    }
    let mut reader = Reader {
        body,
        pos: 0,
        dash_boundary: format!("--{boundary}").into_bytes(),
        nl: b"\r\n",
        parts_read: 0,
    };
    let mut form = Form::default();
    while let Some((headers, content)) = reader.next_part()? {
        let Some((name, file_name)) = form_names(&headers) else {
            continue;
        };
        if file_name.is_empty() {
            form.values.insert(name);
        } else {
            form.files.entry(name).or_insert_with(|| content.to_vec());
        }
    }
    Ok(form)
}

/// The part's form-data `name` and `filename` (empty when absent), from its
/// Content-Disposition; None when it has no name.
fn form_names(headers: &[(String, String)]) -> Option<(String, String)> {
    let (_, disposition) = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-disposition"))?;
    let (kind, mut params) = parse_media_type(disposition).ok()?;
    let name = params
        .remove("name")
        .filter(|n| kind == "form-data" && !n.is_empty())?;
    Some((name, params.remove("filename").unwrap_or_default()))
}

struct Reader<'a> {
    body: &'a Body<'a>,
    pos: usize,
    dash_boundary: Vec<u8>,
    /// The line ending, `\r\n` unless the first boundary line ends in a bare `\n`.
    nl: &'static [u8],
    parts_read: usize,
}

type Part<'a> = (Vec<(String, String)>, &'a [u8]);

impl<'a> Reader<'a> {
    /// Where the data ends: the size limit, or the end of the body.
    fn end_error(&self, at_eof: ReadError) -> ReadError {
        if self.body.truncated {
            ReadError::TooLarge
        } else {
            at_eof
        }
    }

    /// The next line with its `\n`, or Err with the unterminated rest.
    fn line(&mut self) -> Result<&'a [u8], &'a [u8]> {
        let data: &'a [u8] = self.body.data;
        let rest = &data[self.pos..];
        match rest.iter().position(|&b| b == b'\n') {
            Some(i) => {
                self.pos += i + 1;
                Ok(&rest[..=i])
            }
            None => {
                self.pos = data.len();
                Err(rest)
            }
        }
    }

    fn next_part(&mut self) -> Result<Option<Part<'a>>, FormError> {
        let mut expect_new_part = false;
        loop {
            let line = match self.line() {
                Ok(line) => line,
                Err(rest) if !self.body.truncated && self.is_final_boundary(rest) => {
                    return Ok(None);
                }
                Err(_) => return Err(FormError::NextPart(self.end_error(ReadError::Eof))),
            };
            if self.is_delimiter(line) {
                self.parts_read += 1;
                return self.part();
            }
            if self.is_final_boundary(line) {
                return Ok(None);
            }
            let text = || String::from_utf8_lossy(line).into_owned();
            if expect_new_part {
                return Err(FormError::ExpectingNewPart(text()));
            }
            if self.parts_read == 0 {
                continue; // the preamble
            }
            if line == self.nl {
                expect_new_part = true;
                continue;
            }
            return Err(FormError::UnexpectedLine(text()));
        }
    }

    fn is_delimiter(&mut self, line: &[u8]) -> bool {
        let Some(rest) = line.strip_prefix(self.dash_boundary.as_slice()) else {
            return false;
        };
        let rest = skip_lwsp(rest);
        if self.parts_read == 0 && rest == b"\n" {
            self.nl = b"\n";
        }
        rest == self.nl
    }

    fn is_final_boundary(&self, line: &[u8]) -> bool {
        let Some(rest) = line
            .strip_prefix(self.dash_boundary.as_slice())
            .and_then(|r| r.strip_prefix(b"--"))
        else {
            return false;
        };
        let rest = skip_lwsp(rest);
        rest.is_empty() || rest == self.nl
    }

    /// A part's headers and content; None where Go's reader sees the end of the form
    /// (the body ends inside the headers).
    fn part(&mut self) -> Result<Option<Part<'a>>, FormError> {
        let mut headers = Vec::new();
        loop {
            let line = match self.line() {
                Ok(line) => line,
                Err(_) if self.body.truncated => return Err(FormError::Read(ReadError::TooLarge)),
                Err(_) => return Ok(None),
            };
            let text = String::from_utf8_lossy(line);
            let text = text.trim_end_matches(['\r', '\n']);
            if text.is_empty() {
                break;
            }
            let Some((key, value)) = text.split_once(':') else {
                return Err(FormError::MalformedHeader(text.to_string()));
            };
            headers.push((key.to_string(), value.trim_matches([' ', '\t']).to_string()));
        }
        let content = self.content()?;
        Ok(Some((headers, content)))
    }

    /// The content up to the next boundary (`nl` `--boundary` then `-`, a space or a
    /// line end; at the very start the boundary needs no `nl` before it).
    fn content(&mut self) -> Result<&'a [u8], FormError> {
        let data: &'a [u8] = self.body.data;
        let start = self.pos;
        if boundary_follows(&data[start..], &self.dash_boundary) {
            return Ok(&data[start..start]);
        }
        let mut nl_dash = self.nl.to_vec();
        nl_dash.extend_from_slice(&self.dash_boundary);
        let mut from = start;
        while let Some(i) = find(&data[from..], &nl_dash) {
            let at = from + i;
            if boundary_follows(&data[at..], &nl_dash) {
                self.pos = at;
                return Ok(&data[start..at]);
            }
            from = at + 1;
        }
        Err(FormError::Read(self.end_error(ReadError::UnexpectedEof)))
    }
}

/// Go's `matchAfterPrefix` on complete data: `buf` starts with `prefix`; is that a
/// boundary (followed by the end, a space, a line end or `--`)?
fn boundary_follows(buf: &[u8], prefix: &[u8]) -> bool {
    let Some(rest) = buf.strip_prefix(prefix) else {
        return false;
    };
    matches!(
        rest,
        [] | [b' ' | b'\t' | b'\r' | b'\n', ..] | [b'-', b'-', ..]
    )
}

fn skip_lwsp(mut bytes: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = bytes {
        bytes = rest;
    }
    bytes
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
