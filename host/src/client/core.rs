//! `orderer core`: which core component a channel runs, and swapping it, through the
//! orderer's admin API.

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::{Args, Subcommand};
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct CoreArgs {
    #[command(subcommand)]
    pub command: CoreCommand,
}

#[derive(Args, Debug)]
pub struct Target {
    /// The orderer's admin listener, HOST:PORT.
    #[arg(long, default_value = "127.0.0.1:9443")]
    pub admin: String,
    #[arg(long, default_value = "devchannel")]
    pub channel: String,
}

#[derive(Subcommand, Debug)]
pub enum CoreCommand {
    /// The component in force, its fault count and the previous ones.
    Status {
        #[command(flatten)]
        target: Target,
    },
    /// Compile, check and switch to this component (a .wasm file), while serving.
    Load {
        #[command(flatten)]
        target: Target,
        file: PathBuf,
    },
    /// Back to the previous component.
    Rollback {
        #[command(flatten)]
        target: Target,
    },
    /// Which recently accepted envelopes this component would reject, and why.
    DryRun {
        #[command(flatten)]
        target: Target,
        file: PathBuf,
    },
}

pub async fn run(args: CoreArgs) -> Result<()> {
    let (target, method, path, body) = match args.command {
        CoreCommand::Status { target } => (target, Method::GET, "", Vec::new()),
        CoreCommand::Load { target, file } => (target, Method::PUT, "", read(&file)?),
        CoreCommand::Rollback { target } => (target, Method::POST, "/rollback", Vec::new()),
        CoreCommand::DryRun { target, file } => (target, Method::POST, "/dry-run", read(&file)?),
    };
    let url = format!(
        "http://{}/core/v1/channels/{}{path}",
        target.admin, target.channel
    );
    let (status, answer) = request(method, &url, body).await?;
    if !status.is_success() {
        let error = answer["error"].as_str().unwrap_or("no error text");
        bail!("admin API answered {status}: {error}");
    }
    println!("{}", serde_json::to_string_pretty(&answer)?);
    Ok(())
}

fn read(file: &PathBuf) -> Result<Vec<u8>> {
    std::fs::read(file).with_context(|| format!("reading component {}", file.display()))
}

async fn request(
    method: Method,
    url: &str,
    body: Vec<u8>,
) -> Result<(hyper::StatusCode, serde_json::Value)> {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let request = Request::builder()
        .method(method)
        .uri(url)
        .body(Full::new(Bytes::from(body)))?;
    let response = client
        .request(request)
        .await
        .with_context(|| format!("calling the admin API at {url}"))?;
    let status = response.status();
    let bytes = response.into_body().collect().await?.to_bytes();
    let answer = serde_json::from_slice(&bytes)
        .with_context(|| format!("{url} answered {status} with no JSON"))?;
    Ok((status, answer))
}
