//! The arithmetic behind a component's `crypto` import.

use ordering_core::{Crypto, NativeCrypto};
use std::sync::Arc;

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

/// The arithmetic behind a component's crypto import: [`RingCrypto`] unless
/// [`super::CoreComponent::with_crypto`] says otherwise.
pub type HostCrypto = Arc<dyn Crypto + Send + Sync>;

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
