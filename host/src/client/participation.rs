//! `orderer channel join|list|remove`: Fabric's `osnadmin channel` verbs against an
//! orderer's channel participation API, printing what osnadmin prints (the HTTP
//! status, then the JSON answer indented with tabs). As osnadmin, any HTTP answer
//! exits 0; only a failure to ask (or an answer that is not JSON) does not.

use anyhow::{Context, Result, anyhow};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode, header};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rand::Rng;
use std::path::Path;

const CHANNELS: &str = "/participation/v1/channels";

/// Joins the channel of this config block (POST, a multipart `config-block` file).
pub async fn join(admin: &str, config_block: &Path) -> Result<()> {
    let block = std::fs::read(config_block)
        .with_context(|| format!("reading config block {}", config_block.display()))?;
    let (content_type, body) = multipart_form("config-block", "config.block", &block);
    let answer = send(admin, Method::POST, CHANNELS, Some(&content_type), body).await?;
    print_answer(answer)
}

/// Joins the channel of `block` (encoded); the HTTP status and body.
pub(crate) async fn join_block(admin: &str, block: &[u8]) -> Result<(StatusCode, Bytes)> {
    let (content_type, body) = multipart_form("config-block", "config.block", block);
    send(admin, Method::POST, CHANNELS, Some(&content_type), body).await
}

/// Applies a CONFIG_UPDATE envelope through the API (PUT, a multipart
/// `config-update-envelope` file): Fabric 3.x's `osnadmin channel update`.
pub async fn update(admin: &str, envelope: &Path) -> Result<()> {
    let bytes = std::fs::read(envelope)
        .with_context(|| format!("reading config update envelope {}", envelope.display()))?;
    let (content_type, body) =
        multipart_form("config-update-envelope", "config-update.envelope", &bytes);
    let answer = send(admin, Method::PUT, CHANNELS, Some(&content_type), body).await?;
    print_answer(answer)
}

/// Every channel, or one channel's details.
pub async fn list(admin: &str, channel: Option<&str>) -> Result<()> {
    let path = match channel {
        Some(channel) => format!("{CHANNELS}/{channel}"),
        None => CHANNELS.to_string(),
    };
    print_answer(send(admin, Method::GET, &path, None, Vec::new()).await?)
}

pub async fn remove(admin: &str, channel: &str) -> Result<()> {
    let path = format!("{CHANNELS}/{channel}");
    print_answer(send(admin, Method::DELETE, &path, None, Vec::new()).await?)
}

/// Go's `multipart.Writer` with one `CreateFormFile(name, file)` holding `block`.
fn multipart_form(name: &str, file: &str, block: &[u8]) -> (String, Vec<u8>) {
    let boundary = loop {
        let boundary = hex::encode(rand::thread_rng().r#gen::<[u8; 30]>());
        // A boundary must not occur in the content.
        if !block
            .windows(boundary.len())
            .any(|w| w == boundary.as_bytes())
        {
            break boundary;
        }
    };
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{file}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(block);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn send(
    admin: &str,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Result<(StatusCode, Bytes)> {
    let url = format!("http://{admin}{path}");
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut request = Request::builder().method(method).uri(&url);
    if let Some(content_type) = content_type {
        request = request.header(header::CONTENT_TYPE, content_type);
    }
    let response = client
        .request(request.body(Full::new(Bytes::from(body)))?)
        .await
        .with_context(|| format!("calling the admin API at {url}"))?;
    let status = response.status();
    Ok((status, response.into_body().collect().await?.to_bytes()))
}

fn print_answer((status, body): (StatusCode, Bytes)) -> Result<()> {
    let body = String::from_utf8_lossy(&body);
    let indented = go_indent(&body)
        .ok_or_else(|| anyhow!("the admin API answered {status} with no JSON: {body:?}"))?;
    println!("Status: {}\n{indented}", status.as_u16());
    Ok(())
}

/// Go's `json.Indent(dst, src, "", "\t")`: one member per line, tab indentation,
/// `": "` after keys, empty objects and arrays kept on one line, leading whitespace
/// dropped and trailing whitespace kept. None if `src` is not JSON.
fn go_indent(src: &str) -> Option<String> {
    let value = src.trim();
    if value.is_empty() {
        return Some(String::new());
    }
    serde_json::from_str::<serde::de::IgnoredAny>(value).ok()?;
    // Walk the text rather than the parsed value: the field order is the server's.
    let mut out = String::with_capacity(src.len() * 2);
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.extend(std::iter::repeat_n('\t', depth));
    };
    let (mut depth, mut in_string, mut escaped) = (0, false, false);
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            (in_string, escaped) = match (escaped, c) {
                (true, _) => (true, false),
                (false, '\\') => (true, true),
                (false, '"') => (false, false),
                _ => (true, false),
            };
            continue;
        }
        match c {
            c if c.is_ascii_whitespace() => {}
            '{' | '[' => {
                out.push(c);
                while chars.next_if(char::is_ascii_whitespace).is_some() {}
                match chars.next_if(|c| matches!(c, '}' | ']')) {
                    Some(close) => out.push(close),
                    None => {
                        depth += 1;
                        newline(&mut out, depth);
                    }
                }
            }
            '}' | ']' => {
                depth -= 1;
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            '"' => {
                in_string = true;
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push_str(&src[src.trim_end().len()..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indents_as_go_json_indent() {
        let list =
            "{\"systemChannel\":null,\"channels\":[{\"name\":\"a\",\"url\":\"/x,y:{\\\"\"}]}\n";
        assert_eq!(
            go_indent(list).unwrap(),
            "{\n\t\"systemChannel\": null,\n\t\"channels\": [\n\t\t{\n\t\t\t\"name\": \"a\",\n\t\t\t\"url\": \"/x,y:{\\\"\"\n\t\t}\n\t]\n}\n"
        );
        assert_eq!(
            go_indent("{\"a\":[],\"b\":{ }}").unwrap(),
            "{\n\t\"a\": [],\n\t\"b\": {}\n}"
        );
        assert_eq!(go_indent("").unwrap(), "");
        assert_eq!(go_indent("404 page not found\n"), None);
    }

    #[test]
    fn the_form_carries_the_block_between_boundaries() {
        let (content_type, body) = multipart_form("config-block", "config.block", b"block bytes");
        let boundary = content_type
            .strip_prefix("multipart/form-data; boundary=")
            .unwrap();
        assert_eq!(boundary.len(), 60);
        let text = String::from_utf8(body).unwrap();
        assert!(text.starts_with(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"config-block\""
        )));
        assert!(text.ends_with(&format!("\r\n\r\nblock bytes\r\n--{boundary}--\r\n")));
    }
}
