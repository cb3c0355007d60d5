//! The wasm ordering core inside wasmtime: one engine and compiled component per
//! process, one `Store` per channel instance. Calls are synchronous and short
//! (filters, cutter); the host's crypto import runs at native speed, with `ring`.

use anyhow::Result;
use fabric_protos::common::Status;
use ordering_core::{Crypto, NativeCrypto, Rejection};
use wasmtime::component::{Component, HasSelf, Linker, ResourceAny, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

wasmtime::component::bindgen!({
    path: "../wit",
    world: "ordering-core",
});

use exports::fabric::orderer::core::{BuiltBlock, Cut, Rejection as WitRejection, Verdict};

/// The core built by this workspace, embedded at compile time.
pub const BUILTIN_CORE: &[u8] = include_bytes!(env!("ORDERING_CORE_WASM"));

/// The host's arithmetic for the core's `crypto` import: `ring`, whose ECDSA P-256
/// verify takes ~36 µs here against ~185 µs for RustCrypto's (`NativeCrypto`, which
/// stays the reference). The answers are the same: a signature verifies under both
/// or neither (low-S is the core's check, made before it calls; high-S signatures
/// verify here).
#[derive(Clone, Copy, Debug, Default)]
pub struct RingCrypto;

impl Crypto for RingCrypto {
    fn sha256(&self, data: &[u8]) -> [u8; 32] {
        let digest = ring::digest::digest(&ring::digest::SHA256, data);
        digest
            .as_ref()
            .try_into()
            .expect("a SHA-256 digest is 32 bytes")
    }

    fn verify_p256(&self, public_key: &[u8], message: &[u8], signature_der: &[u8]) -> bool {
        // ring takes uncompressed SEC1 points only; a compressed key (which Go's x509,
        // hence Fabric, would refuse anyway) gets NativeCrypto's answer, so wasm and
        // native builds never disagree.
        if public_key.len() != 65 || public_key[0] != 0x04 {
            return NativeCrypto.verify_p256(public_key, message, signature_der);
        }
        ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_ASN1,
            public_key,
        )
        .verify(message, signature_der)
        .is_ok()
    }
}

/// Per-instance host state: an empty WASI context (the core does no I/O; std's
/// imports still need satisfying) and the crypto import.
struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl fabric::orderer::crypto::Host for HostState {
    fn sha256(&mut self, data: Vec<u8>) -> Vec<u8> {
        RingCrypto.sha256(&data).to_vec()
    }

    fn verify_p256(&mut self, public_key: Vec<u8>, message: Vec<u8>, signature: Vec<u8>) -> bool {
        RingCrypto.verify_p256(&public_key, &message, &signature)
    }
}

/// A compiled core, ready to instantiate many times.
pub struct CoreComponent {
    engine: Engine,
    pre: OrderingCorePre<HostState>,
}

impl CoreComponent {
    /// Compiles a component (its bytes) and links the host's imports.
    pub fn new(wasm: &[u8]) -> Result<Self> {
        let engine = Engine::new(&Config::new())?;
        let component = Component::new(&engine, wasm)
            .map_err(|e| anyhow::anyhow!("compiling the core component: {e}"))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        OrderingCore::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
        let pre = OrderingCorePre::new(linker.instantiate_pre(&component)?)?;
        Ok(CoreComponent { engine, pre })
    }

    pub fn builtin() -> Result<Self> {
        Self::new(BUILTIN_CORE)
    }

    /// Name and version the component reports.
    pub fn describe(&self) -> Result<(String, String)> {
        let (mut store, bindings) = self.instantiate()?;
        Ok(bindings.fabric_orderer_core().call_describe(&mut store)?)
    }

    fn instantiate(&self) -> Result<(Store<HostState>, OrderingCore)> {
        let state = HostState {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
        };
        let mut store = Store::new(&self.engine, state);
        let bindings = self.pre.instantiate(&mut store)?;
        Ok((store, bindings))
    }

    /// Opens one channel instance from its latest config block and tip header.
    pub fn open_channel(&self, config_block: &[u8], tip_header: &[u8]) -> Result<CoreChannel> {
        let (mut store, bindings) = self.instantiate()?;
        let opened = bindings.fabric_orderer_core().channel().call_open(
            &mut store,
            config_block,
            tip_header,
        )?;
        let channel = opened.map_err(|r| anyhow::anyhow!("{}", to_rejection(r)))?;
        Ok(CoreChannel {
            store,
            bindings,
            channel,
            faulted: false,
        })
    }
}

/// One instance of the core holding one channel's state.
pub struct CoreChannel {
    store: Store<HostState>,
    bindings: OrderingCore,
    channel: ResourceAny,
    /// A trap leaves a component instance unusable: it is dropped, not reused.
    faulted: bool,
}

/// A block the core cut: the encoded block without metadata, and the DER header.
pub type CoreBlock = BuiltBlock;

impl CoreChannel {
    pub fn validate(&mut self, envelope: &[u8], now_unix_nanos: u64) -> Result<Verdict, Rejection> {
        let api = self.bindings.fabric_orderer_core().channel();
        match api.call_validate(&mut self.store, self.channel, envelope, now_unix_nanos) {
            Ok(verdict) => verdict.map_err(to_rejection),
            Err(trap) => Err(self.fault(trap)),
        }
    }

    /// Ok: the creator certificate's NotAfter, in unix nanos.
    pub fn authorize_deliver(
        &mut self,
        envelope: &[u8],
        now_unix_nanos: u64,
    ) -> Result<u64, Rejection> {
        let api = self.bindings.fabric_orderer_core().channel();
        match api.call_authorize_deliver(&mut self.store, self.channel, envelope, now_unix_nanos) {
            Ok(answer) => answer.map_err(to_rejection),
            Err(trap) => Err(self.fault(trap)),
        }
    }

    pub fn is_faulted(&self) -> bool {
        self.faulted
    }

    /// A trap inside the core answers the message, it never takes the orderer down.
    fn fault(&mut self, trap: wasmtime::Error) -> Rejection {
        tracing::error!("ordering core fault: {trap:#}");
        self.faulted = true;
        Rejection::new(
            Status::InternalServerError,
            format!("ordering core fault: {trap}"),
        )
    }

    /// Ok: the encoded ConfigEnvelope the update leads to, for the orderer to sign.
    pub fn propose_config_update(
        &mut self,
        envelope: &[u8],
        now_unix_nanos: u64,
    ) -> Result<Vec<u8>, Rejection> {
        let api = self.bindings.fabric_orderer_core().channel();
        match api.call_propose_config_update(
            &mut self.store,
            self.channel,
            envelope,
            now_unix_nanos,
        ) {
            Ok(answer) => answer.map_err(to_rejection),
            Err(trap) => Err(self.fault(trap)),
        }
    }

    pub fn validate_config(
        &mut self,
        envelope: &[u8],
        now_unix_nanos: u64,
    ) -> Result<Verdict, Rejection> {
        let api = self.bindings.fabric_orderer_core().channel();
        match api.call_validate_config(&mut self.store, self.channel, envelope, now_unix_nanos) {
            Ok(answer) => answer.map_err(to_rejection),
            Err(trap) => Err(self.fault(trap)),
        }
    }

    pub fn config_sequence(&mut self) -> Result<u64> {
        let api = self.bindings.fabric_orderer_core().channel();
        Ok(api.call_config_sequence(&mut self.store, self.channel)?)
    }

    pub fn order(&mut self, envelope: &[u8], config_seq: u64, now_unix_nanos: u64) -> Result<Cut> {
        let api = self.bindings.fabric_orderer_core().channel();
        Ok(api.call_order(
            &mut self.store,
            self.channel,
            envelope,
            config_seq,
            now_unix_nanos,
        )?)
    }

    pub fn cut(&mut self) -> Result<Option<CoreBlock>> {
        let api = self.bindings.fabric_orderer_core().channel();
        Ok(api.call_cut(&mut self.store, self.channel)?)
    }

    pub fn batch_timeout_ms(&mut self) -> Result<u64> {
        let api = self.bindings.fabric_orderer_core().channel();
        Ok(api.call_batch_timeout_ms(&mut self.store, self.channel)?)
    }
}

fn to_rejection(r: WitRejection) -> Rejection {
    let status = Status::try_from(r.status as i32).unwrap_or(Status::InternalServerError);
    Rejection::new(status, r.info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::{Signature, SigningKey, signature::Signer as _};

    /// P-256 order n, for the high-S twin n - s.
    const N: [u8; 32] = ordering_core::msp::P256_ORDER;

    fn sub_from_n(s: &[u8]) -> Vec<u8> {
        let mut padded = [0u8; 32];
        padded[32 - s.len()..].copy_from_slice(s);
        let (mut out, mut borrow) = ([0u8; 32], 0i16);
        for i in (0..32).rev() {
            let d = N[i] as i16 - padded[i] as i16 - borrow;
            borrow = i16::from(d < 0);
            out[i] = d.rem_euclid(256) as u8;
        }
        out.to_vec()
    }

    /// A DER INTEGER of a big-endian unsigned value, minimally encoded.
    fn der_int(v: &[u8]) -> Vec<u8> {
        let v = &v[v.iter().position(|b| *b != 0).unwrap_or(v.len() - 1)..];
        let mut body = if v[0] & 0x80 != 0 { vec![0] } else { vec![] };
        body.extend_from_slice(v);
        let mut out = vec![0x02, body.len() as u8];
        out.extend(body);
        out
    }

    fn der_sig(r: &[u8], s: &[u8]) -> Vec<u8> {
        let mut body = der_int(r);
        body.extend(der_int(s));
        let mut out = vec![0x30, body.len() as u8];
        out.extend(body);
        out
    }

    #[test]
    fn ring_agrees_with_native_crypto() {
        let key = SigningKey::from_slice(&[0x42; 32]).unwrap();
        let public = key
            .verifying_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec();
        let compressed = key
            .verifying_key()
            .to_encoded_point(true)
            .as_bytes()
            .to_vec();
        let other = SigningKey::from_slice(&[0x43; 32]).unwrap();
        let other_public = other
            .verifying_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec();
        let message = vec![0xab; 3072];
        let sig: Signature = key.sign(&message);
        let (r, s) = (sig.r().to_bytes(), sig.s().to_bytes());
        let valid = der_sig(&r, &s);
        let high_s = der_sig(&r, &sub_from_n(&s));
        let mut tampered_message = message.clone();
        tampered_message[100] ^= 1;
        let mut non_minimal = valid.clone();
        non_minimal[1] += 1;
        non_minimal[3] += 1;
        non_minimal.insert(4, 0);
        let mut trailing = valid.clone();
        trailing.push(0);
        // (name, public key, message, signature)
        type Case<'a> = (&'a str, &'a [u8], &'a [u8], Vec<u8>);
        let cases: Vec<Case> = vec![
            ("valid", &public, &message, valid.clone()),
            ("high-S twin", &public, &message, high_s.clone()),
            (
                "tampered message",
                &public,
                &tampered_message,
                valid.clone(),
            ),
            ("other key", &other_public, &message, valid.clone()),
            ("compressed key", &compressed, &message, valid.clone()),
            ("truncated key", &public[..64], &message, valid.clone()),
            ("r = 0", &public, &message, der_sig(&[0], &s)),
            ("s = n", &public, &message, der_sig(&r, &N)),
            ("non-minimal DER", &public, &message, non_minimal),
            ("trailing byte", &public, &message, trailing),
            ("empty", &public, &message, vec![]),
            ("garbage", &public, &message, b"junk".to_vec()),
        ];
        for (name, key, message, sig) in &cases {
            assert_eq!(
                RingCrypto.verify_p256(key, message, sig),
                NativeCrypto.verify_p256(key, message, sig),
                "{name}"
            );
        }
        assert!(RingCrypto.verify_p256(&public, &message, &valid));
        assert!(
            RingCrypto.verify_p256(&public, &message, &high_s),
            "low-S is the core's check"
        );
        assert!(!RingCrypto.verify_p256(&public, &tampered_message, &valid));
        for data in [&b""[..], b"abc", &message] {
            assert_eq!(RingCrypto.sha256(data), NativeCrypto.sha256(data));
        }
    }
}
