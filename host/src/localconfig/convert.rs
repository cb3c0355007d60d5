//! The text syntaxes Fabric's orderer accepts, as Go's standard library parses them
//! (strconv, time.ParseDuration, path/filepath) plus Fabric's own hooks (byte sizes,
//! `[a,b]` lists, Kafka versions). Kept separate so each can be tested on its own.

/// Why text is not an integer of the wanted width.
#[derive(Debug, PartialEq)]
pub(crate) enum IntError {
    Syntax,
    Range,
}

/// Go's integer literal syntax, as `strconv.ParseInt(s, 0, _)` reads it: an optional
/// sign, then `0x`/`0o`/`0b` prefixes or a leading `0` for octal, `_` between digits.
/// Returns (negative, had a sign, magnitude); a magnitude past u128 saturates.
fn go_int_literal(s: &str) -> Option<(bool, bool, u128)> {
    let (neg, signed, rest) = match s.as_bytes().first()? {
        b'-' => (true, true, &s[1..]),
        b'+' => (false, true, &s[1..]),
        _ => (false, false, s),
    };
    let lower = rest.to_ascii_lowercase();
    let (radix, digits, prefixed) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d, true)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d, true)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d, true)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..], true)
    } else {
        (10, lower.as_str(), false)
    };
    // `_` must sit between digits (a base prefix counts as a digit).
    let mut prev_digit = prefixed;
    let mut value: u128 = 0;
    let mut any = false;
    for c in digits.chars() {
        if c == '_' {
            if !prev_digit {
                return None;
            }
            prev_digit = false;
            continue;
        }
        let d = c.to_digit(radix)?;
        value = value.saturating_mul(radix.into()).saturating_add(d.into());
        prev_digit = true;
        any = true;
    }
    if !any || !prev_digit {
        return None;
    }
    Some((neg, signed, value))
}

/// `strconv.ParseInt(s, 0, bits)`.
pub(crate) fn go_parse_signed(s: &str, bits: u32) -> Result<i128, IntError> {
    let (neg, _, mag) = go_int_literal(s).ok_or(IntError::Syntax)?;
    let limit = 1u128 << (bits - 1);
    match (neg, mag) {
        (true, m) if m <= limit => Ok(-(m as i128)),
        (false, m) if m < limit => Ok(m as i128),
        _ => Err(IntError::Range),
    }
}

/// `strconv.ParseUint(s, 0, bits)`: no sign allowed.
pub(crate) fn go_parse_unsigned(s: &str, bits: u32) -> Result<u128, IntError> {
    match go_int_literal(s) {
        Some((_, false, mag)) if mag < (1u128 << bits) => Ok(mag),
        Some((_, false, _)) => Err(IntError::Range),
        _ => Err(IntError::Syntax),
    }
}

/// An integer as yaml.v2 resolves a plain scalar: int64, else uint64.
pub(crate) fn yaml_int(plain: &str) -> Option<i128> {
    go_parse_signed(plain, 64)
        .ok()
        .or_else(|| go_parse_unsigned(plain, 64).ok().map(|u| u as i128))
}

/// yaml.v2's float pattern `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
pub(crate) fn looks_like_yaml_float(s: &str) -> bool {
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", frac)) => digits(frac),
        Some((int, frac)) => digits(int) && (frac.is_empty() || digits(frac)),
        None => digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| digits(e.strip_prefix(['-', '+']).unwrap_or(e)));
    mantissa_ok && exponent_ok
}

/// `strconv.ParseBool`.
pub(crate) fn go_parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// `strconv.FormatFloat(f, 'f', -1, 64)`, which is how a float becomes a string field.
pub(crate) fn go_format_float(f: f64) -> String {
    match f {
        f64::INFINITY => "+Inf".into(),
        f64::NEG_INFINITY => "-Inf".into(),
        _ => f.to_string(),
    }
}

/// `time.ParseDuration`, as the core parses BatchTimeout: nanoseconds, `None` for
/// anything Go rejects.
pub(crate) fn go_parse_duration(text: &str) -> Option<i64> {
    ordering_core::config::parse_go_duration(text).ok()
}

/// Fabric's byte-size hook for uint32 fields: `<digits> [k|m|g][b]`, any case, spaces
/// allowed before the unit, e.g. `1 MB`, `512k`, `2GB`. `None` when the text is not of
/// that form (Fabric then parses it as a plain unsigned integer).
pub(crate) fn byte_size(s: &str) -> Option<Result<u64, ()>> {
    let digits_len = s.bytes().take_while(u8::is_ascii_digit).count();
    let rest = s[digits_len..].trim_start_matches([' ', '\t', '\n', '\r', '\x0c']);
    let lower = rest.to_ascii_lowercase();
    let shift = match lower.strip_suffix('b').unwrap_or(&lower) {
        "k" => 10,
        "m" => 20,
        "g" => 30,
        _ => return None,
    };
    if digits_len == 0 {
        return None;
    }
    let size = go_parse_unsigned(&s[..digits_len], 64).ok()? as u64;
    Some(
        size.checked_mul(1 << shift)
            .filter(|v| *v <= u64::from(u32::MAX))
            .ok_or(()),
    )
}

/// Fabric's list hook: a string `[a, b, c]` is a list, each item trimmed (how lists are
/// given in environment variables). Note `[]` is one empty item, as in Fabric.
pub(crate) fn bracket_list(s: &str) -> Option<Vec<String>> {
    let inner = s.strip_prefix('[')?.strip_suffix(']')?;
    Some(inner.split(',').map(|i| i.trim().to_string()).collect())
}

/// The Kafka protocol versions Fabric's Kafka client (sarama 1.20) knows; a configured
/// version maps to the highest one not above it.
const KAFKA_VERSIONS: [[u64; 4]; 11] = [
    [0, 8, 2, 0],
    [0, 8, 2, 1],
    [0, 8, 2, 2],
    [0, 9, 0, 0],
    [0, 9, 0, 1],
    [0, 10, 0, 0],
    [0, 10, 0, 1],
    [0, 10, 1, 0],
    [0, 10, 2, 0],
    [0, 11, 0, 0],
    [1, 0, 0, 0],
];

/// Fabric's Kafka version hook: `v?N(.N)*` (build metadata after `+` ignored), mapped
/// onto [`KAFKA_VERSIONS`]. Pre-releases match no version there, so they fail too.
pub(crate) fn kafka_version(s: &str) -> Result<[u64; 4], String> {
    let core = s.strip_prefix('v').unwrap_or(s);
    let core = core.split_once('+').map_or(core, |(c, _)| c);
    let mut segments = Vec::new();
    for part in core.split('.') {
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("unable to parse Kafka version {s:?}"));
        }
        segments.push(
            part.parse::<u64>()
                .map_err(|_| format!("unable to parse Kafka version {s:?}"))?,
        );
    }
    let pad = |v: &[u64]| -> Vec<u64> {
        let mut v = v.to_vec();
        v.resize(segments.len().max(4), 0);
        v
    };
    let wanted = pad(&segments);
    KAFKA_VERSIONS
        .iter()
        .rev()
        .find(|known| pad(&known[..]) <= wanted)
        .copied()
        .ok_or_else(|| format!("unsupported Kafka version {s:?}"))
}

/// `filepath.Clean` on Unix: lexical, no file system access.
pub(crate) fn go_clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ if rooted => {}
                _ => parts.push(".."),
            },
            p => parts.push(p),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// `filepath.Dir`: the folder of a path, cleaned (`.` for a bare file name).
pub(crate) fn go_dir(path: &str) -> String {
    match path.rfind('/') {
        Some(i) => go_clean(&path[..=i]),
        None => ".".into(),
    }
}

/// Fabric's `TranslatePath`: an absolute path is kept as it is; a relative one is
/// joined to the config file's folder and cleaned (`filepath.Join`).
pub(crate) fn translate_path(dir: &str, path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else if dir.is_empty() {
        go_clean(path)
    } else {
        go_clean(&format!("{dir}/{path}"))
    }
}

/// The CERTIFICATE blocks of a PEM file, each re-encoded as Go's `pem.EncodeToMemory`
/// writes it (64-column base64, `\n` endings); other blocks and blocks with headers are
/// skipped, as Fabric's hook for a list field given as `{File: path}` does.
pub(crate) fn pem_certificates(text: &str) -> Vec<String> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let after = &rest[start + BEGIN.len()..];
        let Some(end) = after.find(END) else { break };
        let body = &after[..end];
        rest = &after[end + END.len()..];
        if body.contains(':') {
            continue;
        }
        let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
        if b64.is_empty()
            || !b64
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
        {
            break;
        }
        let mut block = format!("{BEGIN}\n");
        for line in b64.as_bytes().chunks(64) {
            block.push_str(std::str::from_utf8(line).unwrap_or_default());
            block.push('\n');
        }
        block.push_str(END);
        block.push('\n');
        out.push(block);
    }
    out
}
