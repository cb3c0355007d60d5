//! Membership service providers (Fabric's `msp` package, X.509 flavour): who is a
//! member of which organisation.
//!
//! An [`MspManager`] is built from the `MSPConfig`s of a channel config. It parses
//! every root and intermediate CA certificate (and CRL) once, at construction. A
//! creator (`msp.SerializedIdentity`) is parsed into a [`ParsedIdentity`], then
//! validated the way Fabric's `bccspmsp.validateIdentity` does: a certification chain
//! to one of the MSP's root CAs (signatures checked through [`Crypto`]), no CA used
//! as an identity, the revocation lists, and the organizational-unit rules (OU
//! identifiers, NodeOUs). Valid identities are cached per manager (Fabric's MSP
//! cache), so a returning creator is neither parsed nor chain-checked again; message
//! signatures are always verified.
//!
//! Like Fabric, the chain is checked at the leaf's `NotBefore + 1s` (Fabric's
//! `getValidityOptsForCert`, FAB-3678), not at the current time: whether an identity
//! has expired is the job of the expiration filter (Broadcast) and the session check
//! (Deliver). [`MspManager::validate_identity`] adds the check at `now` for callers
//! that want both.
//!
//! Error texts follow Fabric's `msp/mspimpl.go`, `msp/mspimplvalidate.go` and
//! `msp/mspmgrimpl.go`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};

use der::asn1::ObjectIdentifier;
use der::{Decode, Encode};
use fabric_protos::msp::{FabricMspConfig, MspConfig, SerializedIdentity};
use prost::Message;
use x509_cert::Certificate;
use x509_cert::crl::CertificateList;
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, BasicConstraints, SubjectKeyIdentifier};

use crate::crypto::Crypto;

const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_PRIME256V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const OID_BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");
const OID_SUBJECT_KEY_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.14");
const OID_AUTHORITY_KEY_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.35");
const OID_ORGANIZATIONAL_UNIT: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.11");

/// `MSPConfig.type` of an X.509 (Fabric) MSP; 1 is idemix.
const MSP_TYPE_FABRIC: i32 = 0;

/// Half the order of the P-256 group, `floor(n / 2)`: a signature with a larger S is
/// "high-S" and Fabric's BCCSP refuses it.
const P256_HALF_ORDER: [u8; 32] = [
    0x7f, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xde, 0x73, 0x7d, 0x56, 0xd3, 0x8b, 0xcf, 0x42, 0x79, 0xdc, 0xe5, 0x61, 0x7e, 0x31, 0x92, 0xa8,
];

/// The order n of the P-256 group.
pub const P256_ORDER: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// A validated member of an MSP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub msp_id: String,
    /// SEC1 uncompressed P-256 point.
    pub public_key: Vec<u8>,
    pub not_before_unix_nanos: u64,
    pub not_after_unix_nanos: u64,
    /// The OU values of the certificate's subject, in order.
    pub organizational_units: Vec<String>,
    /// The certificate, DER (Fabric compares identities by it).
    pub cert_der: Vec<u8>,
    /// Fabric's certifiers identifier of the identity's chain: SHA-256 over the DER of
    /// the chain from the issuing CA up to the root (the `CertifiersIdentifier` of
    /// its OUs).
    pub certifiers_identifier: Vec<u8>,
}

impl Identity {
    /// Verifies a Fabric signature by this identity: ECDSA P-256 with SHA-256,
    /// DER-encoded, low-S.
    pub fn verify(&self, message: &[u8], signature_der: &[u8], crypto: &dyn Crypto) -> bool {
        verify_signature(&self.public_key, message, signature_der, crypto)
    }
}

/// ECDSA P-256/SHA-256 verification as Fabric's BCCSP does it: the DER signature must
/// parse, R and S must be positive, S must be at most n/2 (low-S), and the signature
/// must verify. The arithmetic is the host's, through `crypto`.
pub fn verify_signature(
    public_key: &[u8],
    message: &[u8],
    signature_der: &[u8],
    crypto: &dyn Crypto,
) -> bool {
    match ecdsa_signature_s(signature_der) {
        Some(s) if is_low_s(s) => crypto.verify_p256(public_key, message, signature_der),
        _ => false,
    }
}

/// The S value (big-endian, without leading zeros) of a DER `SEQUENCE { INTEGER r,
/// INTEGER s }`, or `None` when the encoding is malformed or R/S are not positive.
pub fn ecdsa_signature_s(signature_der: &[u8]) -> Option<&[u8]> {
    let (tag, body, rest) = read_tlv(signature_der)?;
    if tag != 0x30 || !rest.is_empty() {
        return None;
    }
    let (tag_r, r, rest) = read_tlv(body)?;
    let (tag_s, s, rest) = read_tlv(rest)?;
    if tag_r != 0x02 || tag_s != 0x02 || !rest.is_empty() {
        return None;
    }
    positive_integer(r)?;
    positive_integer(s)
}

/// Whether a big-endian unsigned S is at most half the P-256 order.
pub fn is_low_s(s: &[u8]) -> bool {
    if s.len() > 32 {
        return false;
    }
    let mut padded = [0u8; 32];
    padded[32 - s.len()..].copy_from_slice(s);
    padded <= P256_HALF_ORDER
}

/// The magnitude of a positive DER INTEGER, without leading zeros; `None` when zero
/// or negative.
fn positive_integer(content: &[u8]) -> Option<&[u8]> {
    if content.is_empty() || content[0] & 0x80 != 0 {
        return None;
    }
    let start = content.iter().position(|b| *b != 0)?;
    Some(&content[start..])
}

/// Reads one DER TLV: (tag byte, content, remaining bytes). Single-byte tags only.
fn read_tlv(data: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = data.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        first as usize
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let mut len = 0usize;
        for b in &rest[..n] {
            len = (len << 8) | *b as usize;
        }
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// The full TLV bytes of the first element inside a DER SEQUENCE (a certificate's
/// `tbsCertificate`, a CRL's `tbsCertList`), exactly as they were signed.
fn first_inner_tlv(der: &[u8]) -> Option<&[u8]> {
    let (tag, body, _) = read_tlv(der)?;
    if tag != 0x30 {
        return None;
    }
    let (_, _, rest) = read_tlv(body)?;
    Some(&body[..body.len() - rest.len()])
}

/// Decodes the first PEM block found in `data`, whatever its type, like Go's
/// `pem.Decode` (text before the block is skipped; RFC 1421 headers are ignored).
pub fn pem_decode(data: &[u8]) -> Option<Vec<u8>> {
    const BEGIN: &[u8] = b"-----BEGIN ";
    let start = find(data, BEGIN)?;
    let after_begin = &data[start + BEGIN.len()..];
    let type_end = find(after_begin, b"-----")?;
    let label = &after_begin[..type_end];
    if label.contains(&b'\n') {
        return None;
    }
    let body = &after_begin[type_end + 5..];
    let mut end_marker = b"-----END ".to_vec();
    end_marker.extend_from_slice(label);
    end_marker.extend_from_slice(b"-----");
    let end = find(body, &end_marker)?;
    let body = &body[..end];
    // Skip RFC 1421 headers ("Key: value" lines followed by a blank line).
    let body = match find(body, b":") {
        Some(_) => {
            let text = body;
            match find(text, b"\n\n").or_else(|| find(text, b"\r\n\r\n")) {
                Some(pos) => &text[pos..],
                None => text,
            }
        }
        None => body,
    };
    base64_decode(body)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Standard base64 with padding; ASCII whitespace is ignored.
fn base64_decode(text: &[u8]) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some((c - b'A') as u32),
            b'a'..=b'z' => Some((c - b'a' + 26) as u32),
            b'0'..=b'9' => Some((c - b'0' + 52) as u32),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0u32;
    let mut padding = 0usize;
    for &c in text {
        if c.is_ascii_whitespace() {
            continue;
        }
        if c == b'=' {
            padding += 1;
            continue;
        }
        if padding > 0 {
            return None; // data after padding
        }
        acc = (acc << 6) | value(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if padding > 2 || bits >= 6 {
        return None;
    }
    Some(out)
}

/// Formats Unix nanoseconds as an RFC 3339 UTC time (seconds precision).
pub fn format_unix_nanos(nanos: u64) -> String {
    let secs = nanos / 1_000_000_000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The parts of an X.509 certificate the MSP needs, decoded once.
#[derive(Clone, Debug)]
pub struct ParsedCert {
    /// The whole certificate, DER.
    pub raw: Vec<u8>,
    /// The signed `tbsCertificate` bytes, exactly as in `raw`.
    tbs: Vec<u8>,
    signature_algorithm: ObjectIdentifier,
    signature: Vec<u8>,
    issuer: Vec<u8>,
    subject: Vec<u8>,
    /// Common name of the subject, for messages.
    common_name: String,
    pub not_before_unix_nanos: u64,
    pub not_after_unix_nanos: u64,
    /// SEC1 point when the key is EC P-256.
    public_key: Option<Vec<u8>>,
    is_ca: bool,
    subject_key_id: Option<Vec<u8>>,
    serial: Vec<u8>,
    pub organizational_units: Vec<String>,
}

fn unix_nanos(t: x509_cert::time::Time) -> u64 {
    u64::try_from(t.to_unix_duration().as_nanos()).unwrap_or(u64::MAX)
}

fn name_attribute_strings(name: &x509_cert::name::Name, oid: ObjectIdentifier) -> Vec<String> {
    let mut values = Vec::new();
    for rdn in name.0.iter() {
        for atv in rdn.0.iter() {
            if atv.oid == oid {
                values.push(String::from_utf8_lossy(atv.value.value()).into_owned());
            }
        }
    }
    values
}

impl ParsedCert {
    /// Decodes a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, String> {
        let cert =
            Certificate::from_der(der).map_err(|e| format!("x509: malformed certificate: {e}"))?;
        let tbs = first_inner_tlv(der)
            .ok_or_else(|| "x509: malformed certificate".to_string())?
            .to_vec();
        let t = &cert.tbs_certificate;
        let spki = &t.subject_public_key_info;
        let public_key = (spki.algorithm.oid == OID_EC_PUBLIC_KEY
            && spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
                == Some(OID_PRIME256V1))
        .then(|| spki.subject_public_key.raw_bytes().to_vec());
        let mut is_ca = false;
        let mut subject_key_id = None;
        for ext in t.extensions.iter().flatten() {
            let value = ext.extn_value.as_bytes();
            if ext.extn_id == OID_BASIC_CONSTRAINTS {
                let bc = BasicConstraints::from_der(value)
                    .map_err(|e| format!("x509: malformed basic constraints: {e}"))?;
                is_ca = bc.ca;
            } else if ext.extn_id == OID_SUBJECT_KEY_ID
                && let Ok(ski) = SubjectKeyIdentifier::from_der(value)
            {
                subject_key_id = Some(ski.0.as_bytes().to_vec());
            }
        }
        let common_name =
            name_attribute_strings(&t.subject, ObjectIdentifier::new_unwrap("2.5.4.3"))
                .into_iter()
                .next()
                .unwrap_or_default();
        Ok(ParsedCert {
            raw: der.to_vec(),
            tbs,
            signature_algorithm: cert.signature_algorithm.oid,
            signature: cert.signature.raw_bytes().to_vec(),
            issuer: t.issuer.to_der().map_err(|e| e.to_string())?,
            subject: t.subject.to_der().map_err(|e| e.to_string())?,
            common_name,
            not_before_unix_nanos: unix_nanos(t.validity.not_before),
            not_after_unix_nanos: unix_nanos(t.validity.not_after),
            public_key,
            is_ca,
            subject_key_id,
            serial: t.serial_number.as_bytes().to_vec(),
            organizational_units: name_attribute_strings(&t.subject, OID_ORGANIZATIONAL_UNIT),
        })
    }

    /// Decodes the first PEM block of `pem` as a certificate.
    pub fn from_pem(pem: &[u8]) -> Result<Self, String> {
        let der =
            pem_decode(pem).ok_or_else(|| "could not decode the PEM structure".to_string())?;
        Self::from_der(&der)
    }

    /// SEC1 public key, when the certificate holds an EC P-256 key.
    /// The serial number (DER INTEGER content).
    pub fn serial_number(&self) -> &[u8] {
        &self.serial
    }

    /// The first common name (CN) of the subject, empty when there is none.
    pub fn common_name(&self) -> &str {
        &self.common_name
    }

    pub fn public_key(&self) -> Option<&[u8]> {
        self.public_key.as_deref()
    }

    /// Whether `self` was signed by `issuer`'s key (ECDSA with SHA-256 over P-256;
    /// high-S certificate signatures are accepted, as Fabric sanitises them).
    fn is_signed_by(&self, issuer: &ParsedCert, crypto: &dyn Crypto) -> Result<(), String> {
        if self.signature_algorithm != OID_ECDSA_WITH_SHA256 {
            return Err(format!(
                "x509: cannot verify signature: algorithm {} is not supported",
                self.signature_algorithm
            ));
        }
        let Some(key) = issuer.public_key() else {
            return Err("x509: cannot verify signature: issuer key is not EC P-256".into());
        };
        if crypto.verify_p256(key, &self.tbs, &self.signature) {
            Ok(())
        } else {
            Err("x509: ECDSA verification failure".into())
        }
    }

    fn check_time(&self, at_unix_nanos: u64) -> Result<(), String> {
        check_validity(
            self.not_before_unix_nanos,
            self.not_after_unix_nanos,
            at_unix_nanos,
        )
    }
}

/// Whether `at` lies within a certificate's validity period, with Go's x509 texts.
fn check_validity(not_before: u64, not_after: u64, at_unix_nanos: u64) -> Result<(), String> {
    if at_unix_nanos < not_before {
        return Err(format!(
            "x509: certificate has expired or is not yet valid: current time {} is before {}",
            format_unix_nanos(at_unix_nanos),
            format_unix_nanos(not_before)
        ));
    }
    if at_unix_nanos > not_after {
        return Err(format!(
            "x509: certificate has expired or is not yet valid: current time {} is after {}",
            format_unix_nanos(at_unix_nanos),
            format_unix_nanos(not_after)
        ));
    }
    Ok(())
}

/// A creator as found in a signature header: the MSP id and its parsed certificate.
/// Parse it once per envelope, then validate and verify with it.
#[derive(Clone, Debug)]
pub struct ParsedIdentity {
    pub msp_id: String,
    pub cert: ParsedCert,
}

impl ParsedIdentity {
    /// Decodes a `msp.SerializedIdentity` whose `id_bytes` is a PEM certificate.
    pub fn from_serialized(serialized: &[u8]) -> Result<Self, String> {
        let sid = SerializedIdentity::decode(serialized)
            .map_err(|e| format!("could not deserialize a SerializedIdentity: {e}"))?;
        let der = pem_decode(&sid.id_bytes)
            .ok_or_else(|| "could not decode the PEM structure".to_string())?;
        let cert =
            ParsedCert::from_der(&der).map_err(|e| format!("parseCertificate failed: {e}"))?;
        Ok(ParsedIdentity {
            msp_id: sid.mspid,
            cert,
        })
    }
}

/// An OU a NodeOU role or an `OrganizationalUnitIdentifiers` entry names: the OU
/// value and the certifiers identifier (SHA-256 of the issuing chain), empty = any.
#[derive(Clone, Debug)]
struct OuIdentifier {
    role: NodeRole,
    ou: String,
    certifiers: Vec<u8>,
}

/// A NodeOU role (Fabric's `clientOU`, `peerOU`, `adminOU`, `ordererOU`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeRole {
    Client,
    Peer,
    Admin,
    Orderer,
}

impl NodeRole {
    /// The `MSPRole.MSPRoleType` name, as Fabric prints it.
    pub fn name(self) -> &'static str {
        match self {
            NodeRole::Client => "CLIENT",
            NodeRole::Peer => "PEER",
            NodeRole::Admin => "ADMIN",
            NodeRole::Orderer => "ORDERER",
        }
    }
}

/// A parsed revocation list.
#[derive(Clone, Debug)]
struct Crl {
    tbs: Vec<u8>,
    signature_algorithm: ObjectIdentifier,
    signature: Vec<u8>,
    authority_key_id: Option<Vec<u8>>,
    revoked_serials: Vec<Vec<u8>>,
}

impl Crl {
    fn from_pem(pem: &[u8]) -> Result<Self, String> {
        let der =
            pem_decode(pem).ok_or_else(|| "could not decode the PEM structure".to_string())?;
        let list = CertificateList::from_der(&der)
            .map_err(|e| format!("could not parse RevocationList: {e}"))?;
        let tbs = first_inner_tlv(&der)
            .ok_or_else(|| "could not parse RevocationList".to_string())?
            .to_vec();
        let mut authority_key_id = None;
        for ext in list.tbs_cert_list.crl_extensions.iter().flatten() {
            if ext.extn_id == OID_AUTHORITY_KEY_ID
                && let Ok(aki) = AuthorityKeyIdentifier::from_der(ext.extn_value.as_bytes())
            {
                authority_key_id = aki.key_identifier.map(|k| k.as_bytes().to_vec());
            }
        }
        let revoked_serials = list
            .tbs_cert_list
            .revoked_certificates
            .iter()
            .flatten()
            .map(|r| r.serial_number.as_bytes().to_vec())
            .collect();
        Ok(Crl {
            tbs,
            signature_algorithm: list.signature_algorithm.oid,
            signature: list.signature.raw_bytes().to_vec(),
            authority_key_id,
            revoked_serials,
        })
    }
}

/// One X.509 MSP of a channel.
#[derive(Clone, Debug)]
pub(crate) struct Msp {
    name: String,
    roots: Vec<ParsedCert>,
    intermediates: Vec<ParsedCert>,
    crls: Vec<Crl>,
    /// `OrganizationalUnitIdentifiers`: OU value -> accepted certifiers identifiers.
    ou_identifiers: BTreeMap<String, Vec<Vec<u8>>>,
    /// NodeOU roles (client, peer, admin, orderer) when NodeOUs are enforced
    /// (Fabric's `ouEnforcement`).
    node_ous: Option<Vec<OuIdentifier>>,
    /// The certificates (DER) of the `admins` of the MSP config.
    admins: Vec<Vec<u8>>,
}

/// An MSP this orderer cannot evaluate (idemix): its identities are refused.
#[derive(Clone, Debug)]
enum MspEntry {
    X509(Box<Msp>),
    Unsupported { kind: i32 },
}

/// Field 1 of both `FabricMSPConfig` and `IdemixMSPConfig`: the MSP id.
#[derive(Clone, PartialEq, prost::Message)]
struct MspName {
    #[prost(string, tag = "1")]
    name: String,
}

/// The MSP id an `MSPConfig` defines, whatever its type.
pub fn msp_config_name(config: &MspConfig) -> Result<String, String> {
    MspName::decode(config.config.as_ref())
        .map(|n| n.name)
        .map_err(|e| format!("error unmarshalling msp config: {e}"))
}

/// The MSPs of a channel, by MSP id, with the identities validated under them.
#[derive(Clone, Debug, Default)]
pub struct MspManager {
    msps: BTreeMap<String, MspEntry>,
    cache: IdentityCache,
}

/// How many validated identities an [`MspManager`] remembers before it forgets them
/// all (a channel rarely has that many active clients; at ~1 KB per entry the cache
/// stays under ~5 MB).
pub const IDENTITY_CACHE_CAPACITY: usize = 4096;

/// Fabric's MSP cache (`msp/cache`): serialized identity -> validated identity.
///
/// Validating an identity (chain signatures, CRLs, OUs) depends only on the MSP
/// config and the identity's bytes, never on the clock (the chain is checked at
/// NotBefore + 1s, see the module docs), so an answer stays right for the life of
/// the config; a config change builds a new manager, hence a new cache. Only valid
/// identities are cached: an invalid one is validated again each time. When full,
/// the cache is cleared: simple, and the same inputs give the same behaviour.
///
/// The entries are kept sorted by [`key_order`] and found by binary search. A hit
/// compares the whole serialized identity (~1 KB) once, 8 bytes at a time: in wasm,
/// `memcmp` (what comparing two byte slices calls) is a byte loop, and the lookup is
/// on the path of every message. A miss mostly stops at the length or within the
/// first words that differ. An insert shifts the entries after it (three words
/// each), a cost only a newly validated identity pays, after its chain check.
///
/// A `Mutex` keeps the manager `Sync` natively; in wasm (one thread) it costs a flag.
#[derive(Default)]
struct IdentityCache {
    entries: Mutex<Vec<CacheEntry>>,
    capacity: Option<usize>,
}

/// A serialized identity and its validated identity.
type CacheEntry = (Box<[u8]>, Arc<Identity>);

/// The order of the identity cache's keys: by length, then 8 bytes at a time (as
/// little-endian words), then the last bytes. Any total order consistent with
/// equality would do, as the order is never seen outside the cache; this one is
/// cheap in wasm, where comparing whole words beats `memcmp`'s byte loop by far.
fn key_order(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| {
        let (a_words, a_rest) = a.as_chunks::<8>();
        let (b_words, b_rest) = b.as_chunks::<8>();
        for (x, y) in a_words.iter().zip(b_words) {
            let (x, y) = (u64::from_le_bytes(*x), u64::from_le_bytes(*y));
            if x != y {
                return x.cmp(&y);
            }
        }
        a_rest.cmp(b_rest)
    })
}

impl IdentityCache {
    fn capacity(&self) -> usize {
        self.capacity.unwrap_or(IDENTITY_CACHE_CAPACITY)
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Vec<CacheEntry>> {
        // A panic while holding the lock cannot leave the entries half-updated.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn get(&self, serialized: &[u8]) -> Option<Arc<Identity>> {
        let entries = self.entries();
        let i = entries
            .binary_search_by(|(key, _)| key_order(key, serialized))
            .ok()?;
        Some(entries[i].1.clone())
    }

    fn insert(&self, serialized: &[u8], identity: Arc<Identity>) {
        let mut entries = self.entries();
        if entries.len() >= self.capacity() {
            entries.clear();
        }
        match entries.binary_search_by(|(key, _)| key_order(key, serialized)) {
            Ok(i) => entries[i].1 = identity,
            Err(i) => entries.insert(i, (serialized.into(), identity)),
        }
    }

    fn len(&self) -> usize {
        self.entries().len()
    }
}

/// A clone starts empty: the cache only saves work, it never changes an answer.
impl Clone for IdentityCache {
    fn clone(&self) -> Self {
        IdentityCache {
            entries: Mutex::default(),
            capacity: self.capacity,
        }
    }
}

impl std::fmt::Debug for IdentityCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IdentityCache({} entries)", self.len())
    }
}

/// The creator of a message as first seen, before any signature check: validated
/// earlier under this manager (from its cache), or parsed and still to be validated.
/// Its NotAfter and MSP id are known either way, for the checks that come before
/// validation (expiry, maintenance mode). Get one from [`MspManager::creator`] and
/// validate it with the same manager's [`MspManager::validate_creator`].
#[derive(Debug)]
pub struct Creator(CreatorState);

#[derive(Debug)]
enum CreatorState {
    Validated(Arc<Identity>),
    Parsed {
        serialized: Box<[u8]>,
        parsed: Box<ParsedIdentity>,
    },
}

impl Creator {
    pub fn msp_id(&self) -> &str {
        match &self.0 {
            CreatorState::Validated(identity) => &identity.msp_id,
            CreatorState::Parsed { parsed, .. } => &parsed.msp_id,
        }
    }

    /// The certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        match &self.0 {
            CreatorState::Validated(identity) => &identity.cert_der,
            CreatorState::Parsed { parsed, .. } => &parsed.cert.raw,
        }
    }

    /// The SEC1 P-256 public key, `None` when the certificate has another key type.
    pub fn public_key(&self) -> Option<&[u8]> {
        match &self.0 {
            CreatorState::Validated(identity) => Some(&identity.public_key),
            CreatorState::Parsed { parsed, .. } => parsed.cert.public_key(),
        }
    }

    /// The certificate's NotAfter, in unix nanos.
    pub fn not_after_unix_nanos(&self) -> u64 {
        match &self.0 {
            CreatorState::Validated(identity) => identity.not_after_unix_nanos,
            CreatorState::Parsed { parsed, .. } => parsed.cert.not_after_unix_nanos,
        }
    }
}

const MAX_CHAIN_DEPTH: usize = 10;

impl Msp {
    fn setup(config: &FabricMspConfig, crypto: &dyn Crypto) -> Result<Self, String> {
        let name = config.name.clone();
        if name.is_empty() {
            return Err("setup error: name cannot be empty".into());
        }
        let parse_all = |certs: &[bytes::Bytes], what: &str| -> Result<Vec<ParsedCert>, String> {
            certs
                .iter()
                .map(|pem| {
                    ParsedCert::from_pem(pem)
                        .map_err(|e| format!("MSP {name}: could not parse {what} certificate: {e}"))
                })
                .collect()
        };
        let roots = parse_all(&config.root_certs, "root CA")?;
        if roots.is_empty() {
            return Err(format!("MSP {name}: expected at least one CA certificate"));
        }
        let intermediates = parse_all(&config.intermediate_certs, "intermediate CA")?;
        let crls = config
            .revocation_list
            .iter()
            .map(|pem| Crl::from_pem(pem).map_err(|e| format!("MSP {name}: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        let mut msp = Msp {
            name,
            roots,
            intermediates,
            crls,
            ou_identifiers: BTreeMap::new(),
            node_ous: None,
            admins: Vec::new(),
        };
        for ou in &config.organizational_unit_identifiers {
            let certifiers = msp.certifiers_identifier(&ou.certificate, crypto)?;
            let list = msp
                .ou_identifiers
                .entry(ou.organizational_unit_identifier.clone())
                .or_default();
            if !list.contains(&certifiers) {
                list.push(certifiers);
            }
        }
        if let Some(node_ous) = &config.fabric_node_ous {
            let mut roles = Vec::new();
            for (role_kind, role) in [
                (NodeRole::Client, &node_ous.client_ou_identifier),
                (NodeRole::Peer, &node_ous.peer_ou_identifier),
                (NodeRole::Admin, &node_ous.admin_ou_identifier),
                (NodeRole::Orderer, &node_ous.orderer_ou_identifier),
            ]
            .into_iter()
            .filter_map(|(kind, role)| role.as_ref().map(|r| (kind, r)))
            {
                let certifiers = if role.certificate.is_empty() {
                    Vec::new()
                } else {
                    msp.certifiers_identifier(&role.certificate, crypto)?
                };
                roles.push(OuIdentifier {
                    role: role_kind,
                    ou: role.organizational_unit_identifier.clone(),
                    certifiers,
                });
            }
            if node_ous.enable && !roles.is_empty() {
                msp.node_ous = Some(roles);
            }
        }
        msp.setup_admins(config, crypto)?;
        Ok(msp)
    }

    /// Fabric's `setupAdminsV142` and `postSetupV142`: the admin certificates must
    /// parse; without an admin OU there must be some; they must be valid members
    /// (without NodeOUs) or carry the client or admin OU (with NodeOUs).
    fn setup_admins(
        &mut self,
        config: &FabricMspConfig,
        crypto: &dyn Crypto,
    ) -> Result<(), String> {
        let name = &self.name;
        let admins = config
            .admins
            .iter()
            .map(|pem| {
                ParsedCert::from_pem(pem)
                    .map_err(|e| format!("MSP {name}: could not parse admin certificate: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if admins.is_empty() && self.node_ou(NodeRole::Admin).is_none() {
            return Err(format!(
                "MSP {name}: administrators must be declared when no admin ou classification is set"
            ));
        }
        for (i, admin) in admins.iter().enumerate() {
            if self.node_ous.is_none() {
                self.validate(admin, crypto)
                    .map_err(|e| format!("MSP {name}: admin {i} is invalid: {e}"))?;
            } else {
                let client = self.has_ou_role(&admin.organizational_units, NodeRole::Client);
                let adm = self.has_ou_role(&admin.organizational_units, NodeRole::Admin);
                if let (Err(e1), Err(e2)) = (client, adm) {
                    return Err(format!("MSP {name}: admin {i} is invalid [{e1},{e2}]"));
                }
            }
        }
        self.admins = admins.into_iter().map(|a| a.raw).collect();
        Ok(())
    }

    /// The NodeOU of `role`, when NodeOUs are enforced and the role is defined.
    fn node_ou(&self, role: NodeRole) -> Option<&OuIdentifier> {
        self.node_ous.as_ref()?.iter().find(|r| r.role == role)
    }

    /// Fabric's `hasOURole`: whether one of `ous` is the OU of the NodeOU `role` (the
    /// certifiers are checked by validation, not here).
    pub(crate) fn has_ou_role(&self, ous: &[String], role: NodeRole) -> Result<(), String> {
        if self.node_ous.is_none() {
            return Err("NodeOUs not activated. Cannot tell apart identities.".into());
        }
        let Some(node_ou) = self.node_ou(role) else {
            return Err(format!(
                "cannot test for classification, node ou for type [{}], not defined, msp: [{}]",
                role.name(),
                self.name
            ));
        };
        if ous.contains(&node_ou.ou) {
            return Ok(());
        }
        Err(format!(
            "The identity does not contain OU [{}], MSP: [{}]",
            role.name(),
            self.name
        ))
    }

    /// Fabric's `isInAdmins`: the certificate is one of the config's `admins`.
    pub(crate) fn is_in_admins(&self, cert_der: &[u8]) -> bool {
        self.admins.iter().any(|a| a == cert_der)
    }

    /// Whether NodeOUs are enforced (Fabric's `ouEnforcement`).
    pub(crate) fn ou_enforcement(&self) -> bool {
        self.node_ous.is_some()
    }

    /// The MSP id.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Fabric's `getCertifiersIdentifier`: the CA certificate must be one of this MSP's
    /// roots or intermediates; the identifier hashes its chain up to the root.
    fn certifiers_identifier(&self, pem: &[u8], crypto: &dyn Crypto) -> Result<Vec<u8>, String> {
        let cert = ParsedCert::from_pem(pem)
            .map_err(|e| format!("MSP {}: Failed getting certificate for OU: {e}", self.name))?;
        let chain = if let Some(root) = self.roots.iter().find(|r| r.tbs == cert.tbs) {
            vec![root]
        } else if let Some(inter) = self.intermediates.iter().find(|r| r.tbs == cert.tbs) {
            let mut chain = vec![inter];
            chain.extend(
                self.build_chain(inter, inter.not_before_unix_nanos + 1_000_000_000, crypto)
                    .map_err(|e| {
                        format!("Failed computing validation chain for OU certificate: {e}")
                    })?,
            );
            chain
        } else {
            return Err(format!(
                "MSP {}: Failed adding OU. Certificate [{}] not in root or intermediate certs.",
                self.name, cert.common_name
            ));
        };
        Ok(chain_identifier(&chain, crypto))
    }

    /// The issuers of `cert` up to (and including) a root, checked at `at`: Go's
    /// `x509.Certificate.Verify` as Fabric configures it (single chain).
    fn build_chain<'a>(
        &'a self,
        cert: &ParsedCert,
        at: u64,
        crypto: &dyn Crypto,
    ) -> Result<Vec<&'a ParsedCert>, String> {
        let mut last_error = None;
        let found = self.find_parents(cert, at, crypto, 0, &mut last_error);
        found.ok_or_else(|| match last_error {
            Some(e) => format!(
                "x509: certificate signed by unknown authority (possibly because of \"{e}\" while trying to verify candidate authority certificate)"
            ),
            None => "x509: certificate signed by unknown authority".to_string(),
        })
    }

    fn find_parents<'a>(
        &'a self,
        cert: &ParsedCert,
        at: u64,
        crypto: &dyn Crypto,
        depth: usize,
        last_error: &mut Option<String>,
    ) -> Option<Vec<&'a ParsedCert>> {
        if depth > MAX_CHAIN_DEPTH {
            return None;
        }
        for root in self.roots.iter().filter(|r| r.subject == cert.issuer) {
            if let Err(e) = root
                .check_time(at)
                .and_then(|_| cert.is_signed_by(root, crypto))
            {
                *last_error = Some(e);
                continue;
            }
            return Some(vec![root]);
        }
        for inter in self
            .intermediates
            .iter()
            .filter(|r| r.subject == cert.issuer)
        {
            if inter.raw == cert.raw {
                continue;
            }
            if !inter.is_ca {
                *last_error =
                    Some("x509: certificate is not authorized to sign other certificates".into());
                continue;
            }
            if let Err(e) = inter
                .check_time(at)
                .and_then(|_| cert.is_signed_by(inter, crypto))
            {
                *last_error = Some(e);
                continue;
            }
            if let Some(rest) = self.find_parents(inter, at, crypto, depth + 1, last_error) {
                let mut chain = vec![inter];
                chain.extend(rest);
                return Some(chain);
            }
        }
        None
    }

    /// Fabric's `validateIdentity`: chain, revocation, OUs. Returns the certifiers
    /// identifier of the identity's chain.
    fn validate(&self, cert: &ParsedCert, crypto: &dyn Crypto) -> Result<Vec<u8>, String> {
        if cert.is_ca {
            return Err("could not obtain certification chain: An X509 certificate with Basic Constraint: Certificate Authority equals true cannot be used as an identity".into());
        }
        let at = cert.not_before_unix_nanos.saturating_add(1_000_000_000);
        let chain = cert
            .check_time(at)
            .and_then(|_| self.build_chain(cert, at, crypto))
            .map_err(|e| {
                format!(
                    "could not obtain certification chain: the supplied identity is not valid: {e}"
                )
            })?;
        self.check_revocation(cert, chain[0], crypto)
            .map_err(|e| format!("could not validate identity against certification chain: {e}"))?;
        let certifiers = chain_identifier(&chain, crypto);
        self.validate_ous(cert, &certifiers)
            .map_err(|e| format!("could not validate identity's OUs: {e}"))?;
        Ok(certifiers)
    }

    /// Fabric's `validateCertAgainstChain`: the signer must have a subject key
    /// identifier; a CRL with that authority key identifier, signed by the signer,
    /// listing the serial number revokes the certificate.
    fn check_revocation(
        &self,
        cert: &ParsedCert,
        signer: &ParsedCert,
        crypto: &dyn Crypto,
    ) -> Result<(), String> {
        let Some(ski) = &signer.subject_key_id else {
            return Err("could not obtain Subject Key Identifier for signer cert: subjectKeyIdentifier not found in certificate".into());
        };
        for crl in &self.crls {
            let Some(aki) = &crl.authority_key_id else {
                return Err("could not obtain Authority Key Identifier for crl: authorityKeyIdentifier not found in certificate".into());
            };
            if aki != ski || !crl.revoked_serials.contains(&cert.serial) {
                continue;
            }
            let signed = crl.signature_algorithm == OID_ECDSA_WITH_SHA256
                && signer
                    .public_key()
                    .is_some_and(|key| crypto.verify_p256(key, &crl.tbs, &crl.signature));
            if signed {
                return Err("The certificate has been revoked".into());
            }
        }
        Ok(())
    }

    /// Fabric's `validateIdentityOUsV142` (MSP version 1.4.3 and later).
    fn validate_ous(&self, cert: &ParsedCert, certifiers: &[u8]) -> Result<(), String> {
        let ouids = || ou_ids_string(&cert.organizational_units, certifiers);
        if !self.ou_identifiers.is_empty() {
            let found = cert.organizational_units.iter().any(|ou| {
                self.ou_identifiers
                    .get(ou)
                    .is_some_and(|ids| ids.iter().any(|id| id == certifiers))
            });
            if !found {
                if cert.organizational_units.is_empty() {
                    return Err(
                        "the identity certificate does not contain an Organizational Unit (OU)"
                            .into(),
                    );
                }
                return Err(format!(
                    "none of the identity's organizational units {} are in MSP {}",
                    ouids(),
                    self.name
                ));
            }
        }
        let Some(roles) = &self.node_ous else {
            return Ok(());
        };
        let mut counter = 0;
        for ou in &cert.organizational_units {
            // Later roles with the same OU value replace earlier ones, as in Fabric's map.
            let Some(role) = roles.iter().rev().find(|r| &r.ou == ou) else {
                continue;
            };
            if !role.certifiers.is_empty() && role.certifiers != certifiers {
                return Err(format!(
                    "certifiersIdentifier does not match: {}, MSP: [{}]",
                    ouids(),
                    self.name
                ));
            }
            counter += 1;
            if counter > 1 {
                break;
            }
        }
        match counter {
            0 => Err(format!(
                "the identity does not have an OU that resolves to client, peer, orderer, or admin role. OUs: {}, MSP: [{}]",
                ouids(),
                self.name
            )),
            1 => Ok(()),
            _ => Err(format!(
                "the identity must have a client, a peer, an orderer, or an admin OU role to be valid, not a combination of them. OUs: {}, MSP: [{}]",
                ouids(),
                self.name
            )),
        }
    }
}

/// SHA-256 over the concatenated DER of a chain (Fabric's certification chain
/// identifier, with the default SHA256 identity identifier hash function).
fn chain_identifier(chain: &[&ParsedCert], crypto: &dyn Crypto) -> Vec<u8> {
    let mut all = Vec::new();
    for cert in chain {
        all.extend_from_slice(&cert.raw);
    }
    crypto.sha256(&all).to_vec()
}

/// Fabric's `OUIDs.String()`: `[client(0123456789ABCDEF) ...]`.
fn ou_ids_string(ous: &[String], certifiers: &[u8]) -> String {
    let mut hex = String::new();
    for b in certifiers.iter().take(8) {
        let _ = write!(hex, "{b:02X}");
    }
    let items: Vec<String> = ous.iter().map(|ou| format!("{ou}({hex})")).collect();
    format!("[{}]", items.join(" "))
}

impl MspManager {
    /// Builds the MSPs from their `MSPConfig`s (Fabric type 0 is X.509; idemix MSPs are
    /// recorded but their identities are refused). The same MSP id twice is an error
    /// unless both configs are identical.
    pub fn new(configs: &[MspConfig], crypto: &dyn Crypto) -> Result<Self, String> {
        let mut msps = BTreeMap::new();
        let mut seen: BTreeMap<String, &MspConfig> = BTreeMap::new();
        for config in configs {
            let (name, entry) = if config.r#type == MSP_TYPE_FABRIC {
                let fabric = FabricMspConfig::decode(config.config.as_ref())
                    .map_err(|e| format!("error unmarshalling fabric msp config: {e}"))?;
                let msp = Msp::setup(&fabric, crypto)?;
                (msp.name.clone(), MspEntry::X509(Box::new(msp)))
            } else {
                (
                    msp_config_name(config)?,
                    MspEntry::Unsupported {
                        kind: config.r#type,
                    },
                )
            };
            if let Some(previous) = seen.get(&name) {
                if *previous != config {
                    return Err(format!(
                        "Attempted to define two different versions of MSP: {name}"
                    ));
                }
                continue;
            }
            seen.insert(name.clone(), config);
            msps.insert(name, entry);
        }
        Ok(MspManager {
            msps,
            cache: IdentityCache::default(),
        })
    }

    /// The MSP ids, sorted.
    pub fn msp_ids(&self) -> Vec<String> {
        self.msps.keys().cloned().collect()
    }

    /// Whether an MSP of this id exists.
    pub fn contains(&self, msp_id: &str) -> bool {
        self.msps.contains_key(msp_id)
    }

    /// The X.509 MSP of this id (`None`: undefined, or of a type this orderer does not
    /// support).
    pub(crate) fn x509_msp(&self, msp_id: &str) -> Option<&Msp> {
        match self.msps.get(msp_id) {
            Some(MspEntry::X509(msp)) => Some(msp),
            _ => None,
        }
    }

    /// Deserialize a `msp.SerializedIdentity` and validate it against the MSP it
    /// names: the MSP checks of [`MspManager::validate_parsed`] (cached), plus the
    /// certificate being within its validity period at `now_unix_nanos`.
    pub fn validate_identity(
        &self,
        serialized: &[u8],
        now_unix_nanos: u64,
        crypto: &dyn Crypto,
    ) -> Result<Identity, String> {
        let creator = self.creator(serialized)?;
        let identity = self.validate_creator(&creator, crypto)?;
        check_validity(
            identity.not_before_unix_nanos,
            identity.not_after_unix_nanos,
            now_unix_nanos,
        )?;
        Ok(Identity::clone(&identity))
    }

    /// A message's creator, from the identity cache when it was validated before,
    /// else parsed (a malformed identity is an error). No signature is checked.
    pub fn creator(&self, serialized: &[u8]) -> Result<Creator, String> {
        if let Some(identity) = self.cache.get(serialized) {
            return Ok(Creator(CreatorState::Validated(identity)));
        }
        let parsed = ParsedIdentity::from_serialized(serialized)?;
        Ok(Creator(CreatorState::Parsed {
            serialized: serialized.into(),
            parsed: Box::new(parsed),
        }))
    }

    /// The validated identity of a creator this manager returned: the cached one, or
    /// validated now (see [`MspManager::validate_parsed`]) and cached if valid.
    pub fn validate_creator(
        &self,
        creator: &Creator,
        crypto: &dyn Crypto,
    ) -> Result<Arc<Identity>, String> {
        match &creator.0 {
            CreatorState::Validated(identity) => Ok(identity.clone()),
            CreatorState::Parsed { serialized, parsed } => {
                let identity = Arc::new(self.validate_parsed(parsed, crypto)?);
                self.cache.insert(serialized, identity.clone());
                Ok(identity)
            }
        }
    }

    /// How many validated identities are cached (for tests and metrics).
    pub fn cached_identities(&self) -> usize {
        self.cache.len()
    }

    /// Validate an already parsed creator the way Fabric's MSP does (chain checked at
    /// the certificate's NotBefore + 1s, so an expired certificate still validates:
    /// expiry is checked separately, see the module docs).
    pub fn validate_parsed(
        &self,
        parsed: &ParsedIdentity,
        crypto: &dyn Crypto,
    ) -> Result<Identity, String> {
        let msp = match self.msps.get(&parsed.msp_id) {
            None => return Err(format!("MSP {} is not defined on channel", parsed.msp_id)),
            Some(MspEntry::Unsupported { kind }) => {
                return Err(format!(
                    "MSP {} is of type {kind}, which this orderer does not support",
                    parsed.msp_id
                ));
            }
            Some(MspEntry::X509(msp)) => msp,
        };
        let Some(public_key) = parsed.cert.public_key() else {
            return Err(
                "failed to import certificate's public key: only EC P-256 keys are supported"
                    .into(),
            );
        };
        let certifiers_identifier = msp.validate(&parsed.cert, crypto)?;
        Ok(Identity {
            msp_id: parsed.msp_id.clone(),
            public_key: public_key.to_vec(),
            not_before_unix_nanos: parsed.cert.not_before_unix_nanos,
            not_after_unix_nanos: parsed.cert.not_after_unix_nanos,
            organizational_units: parsed.cert.organizational_units.clone(),
            cert_der: parsed.cert.raw.clone(),
            certifiers_identifier,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests;
