//! `orderer core`: which core component a channel runs, and swapping it, through the
//! orderer's admin API.

use super::TlsArgs;
use crate::comm::client::{dial, scheme};
use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::{Args, Subcommand};
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use std::path::{Path, PathBuf};

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
    /// With Admin.TLS on: --tls-ca, and the admin client's --tls-cert and --tls-key.
    #[command(flatten)]
    pub tls: TlsArgs,
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
        /// Its detached signature (`orderer core sign`), which an orderer started
        /// with --require-signed-components requires.
        #[arg(long)]
        signature: Option<PathBuf>,
    },
    /// Sign a component as an admin of the orderer's org: writes FILE.sig (or
    /// --output), the detached signature `load --signature` sends.
    Sign {
        file: PathBuf,
        /// The admin's MSP folder (signcerts/, keystore/).
        #[arg(long)]
        msp_dir: PathBuf,
        #[arg(long)]
        msp_id: String,
        #[arg(long)]
        output: Option<PathBuf>,
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
    let mut signature = None;
    let (target, method, path, body) = match args.command {
        CoreCommand::Status { target } => (target, Method::GET, "", Vec::new()),
        CoreCommand::Load {
            target,
            file,
            signature: sig,
        } => {
            if let Some(sig) = sig {
                let bytes = std::fs::read(&sig)
                    .with_context(|| format!("reading signature {}", sig.display()))?;
                signature = Some(hex::encode(bytes));
            }
            (target, Method::PUT, "", read(&file)?)
        }
        CoreCommand::Rollback { target } => (target, Method::POST, "/rollback", Vec::new()),
        CoreCommand::DryRun { target, file } => (target, Method::POST, "/dry-run", read(&file)?),
        CoreCommand::Sign {
            file,
            msp_dir,
            msp_id,
            output,
        } => return sign(&file, &msp_dir, &msp_id, output),
    };
    let (status, answer) = request(&target, method, path, body, signature).await?;
    if !status.is_success() {
        let error = answer["error"].as_str().unwrap_or("no error text");
        bail!("admin API answered {status}: {error}");
    }
    println!("{}", serde_json::to_string_pretty(&answer)?);
    Ok(())
}

fn sign(file: &Path, msp_dir: &Path, msp_id: &str, output: Option<PathBuf>) -> Result<()> {
    let signer = crate::identity::Signer::from_msp_dir(msp_dir, msp_id)?;
    let sig = crate::hotswap::signature::sign(&signer, &read(file)?);
    let output = output.unwrap_or_else(|| {
        let mut name = file.as_os_str().to_owned();
        name.push(".sig");
        PathBuf::from(name)
    });
    std::fs::write(&output, sig).with_context(|| format!("writing {}", output.display()))?;
    println!(
        "signed {} as {msp_id}: {}",
        file.display(),
        output.display()
    );
    Ok(())
}

fn read(file: &Path) -> Result<Vec<u8>> {
    std::fs::read(file).with_context(|| format!("reading component {}", file.display()))
}

/// One HTTP/1.1 request on its own connection (TLS when `--tls-ca` is given).
async fn request(
    target: &Target,
    method: Method,
    path: &str,
    body: Vec<u8>,
    signature: Option<String>,
) -> Result<(hyper::StatusCode, serde_json::Value)> {
    let tls = target.tls.client()?.map(|tls| tls.http1());
    let target_path = format!("/core/v1/channels/{}{path}", target.channel);
    let url = format!("{}://{}{target_path}", scheme(tls.as_ref()), target.admin);
    let calling = || format!("calling the admin API at {url}");
    let io = dial(&target.admin, tls.as_ref())
        .await
        .with_context(calling)?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .with_context(calling)?;
    tokio::spawn(connection);
    let mut request = Request::builder()
        .method(method)
        .uri(&target_path)
        .header(hyper::header::HOST, &target.admin);
    if let Some(signature) = signature {
        request = request.header(crate::hotswap::signature::HEADER, signature);
    }
    let request = request.body(Full::new(Bytes::from(body)))?;
    let response = sender.send_request(request).await.with_context(calling)?;
    let status = response.status();
    let bytes = response.into_body().collect().await?.to_bytes();
    let answer = serde_json::from_slice(&bytes)
        .with_context(|| format!("{url} answered {status} with no JSON"))?;
    Ok((status, answer))
}
