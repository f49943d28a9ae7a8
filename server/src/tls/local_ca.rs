//! `tls = "local_ca"`: a certificate authority of this server's own, made on first start, that
//! phones trust once; the server certificate is issued from it.
//!
//! A browser registers the offline app's service worker only over a certificate it trusts, and
//! "accepting" a self-signed certificate once is not trust. So the server makes a CA whose
//! certificate a user installs on the phone (Android, iOS, desktop: OPERATIONS.md), and serves
//! with a certificate issued from it.
//!
//! What keeps an installed CA from being a danger to the phone:
//! - **Name constraints** (critical): the CA may sign only for the names in `tls_names` (a DNS
//!   name and its subdomains; an IP address exactly). A phone's browser refuses a certificate from
//!   it for any other name, so its key is worth no more than the server key itself: it cannot be
//!   used to intercept the phone's other traffic.
//! - **The CA key is kept encrypted**, under a passphrase made at first start and printed once
//!   (Argon2id, 64 MiB, 3 passes; ChaCha20-Poly1305). The server needs it only to issue the next
//!   server certificate (`saksi admin renew-certificate`), every two years or when a name is
//!   added.
//!
//! Files, in `data_dir/tls/`: `ca.pem` (the CA certificate; public), `ca-key.json` (its key,
//! encrypted), `server.pem` and `server-key.pem` (what the server serves with; 0600).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    NameConstraints,
};
use ring::aead;
use rustls::client::danger::ServerCertVerifier as _;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use saksi_shared::Timestamp;
use serde::{Deserialize, Serialize};

use super::{TlsError, fingerprint, write_private};

/// How long the CA certificate is valid: long, since every phone must install a new one.
const CA_DAYS: i64 = 10 * 365;
/// How long a server certificate is valid: iOS refuses more than 825 days.
pub const SERVER_DAYS: i64 = 800;
/// From how many days before expiry the server warns at start.
pub const WARN_DAYS: i64 = 60;
/// Argon2id cost for the CA key's passphrase (memory in KiB, passes).
const KDF_MEMORY_KIB: u32 = 64 * 1024;
const KDF_PASSES: u32 = 3;

/// The files of a local CA inside the data directory.
#[derive(Debug, Clone)]
pub struct Paths {
    pub dir: PathBuf,
}

impl Paths {
    pub fn new(data_dir: &Path) -> Paths {
        Paths {
            dir: data_dir.join("tls"),
        }
    }
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
    pub fn ca_key(&self) -> PathBuf {
        self.dir.join("ca-key.json")
    }
    pub fn server_cert(&self) -> PathBuf {
        self.dir.join("server.pem")
    }
    pub fn server_key(&self) -> PathBuf {
        self.dir.join("server-key.pem")
    }
    /// Every file of the CA, in the order [`create`] writes them.
    fn all(&self) -> [PathBuf; 4] {
        [
            self.ca_key(),
            self.server_key(),
            self.server_cert(),
            self.ca_cert(),
        ]
    }
}

/// The name a renewed file has until it replaces the file in use ([`renew`]).
fn pending(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".new");
    PathBuf::from(name)
}

/// The CA as phones see it: what the console and `/ca.pem`, `/ca.crt` serve.
#[derive(Debug, Clone)]
pub struct Trust {
    pub ca_pem: String,
    pub ca_der: Vec<u8>,
    /// SHA-256 of the CA certificate, `AA:BB:...`: what a user compares before installing it.
    pub ca_fingerprint: String,
    /// SHA-256 of the server certificate.
    pub server_fingerprint: String,
    /// When the server certificate expires.
    pub server_not_after: Timestamp,
    /// The names the CA may sign for (its name constraints).
    pub names: Vec<String>,
    /// Names of `tls_names` the current server certificate does not serve (needs
    /// `saksi admin renew-certificate`, or a new CA if outside the constraints).
    pub uncovered: Vec<String>,
}

/// What [`ensure`] found or made.
#[derive(Debug)]
pub struct Ensured {
    pub trust: Trust,
    /// The CA key's passphrase, when the CA was made just now (shown once).
    pub new_passphrase: Option<String>,
}

/// The encrypted CA key as stored in `ca-key.json`.
#[derive(Debug, Serialize, Deserialize)]
struct SealedKey {
    /// What this file is, for someone who finds it.
    what: String,
    kdf: String,
    memory_kib: u32,
    passes: u32,
    salt: String,
    nonce: String,
    /// ChaCha20-Poly1305 over the PKCS#8 DER key.
    ciphertext: String,
    /// The names the CA may sign for (also in the certificate; kept for the operator).
    names: Vec<String>,
}

/// Makes the CA and the server certificate on first start; afterwards reads them.
pub fn ensure(data_dir: &Path, names: &[String]) -> Result<Ensured, TlsError> {
    let paths = Paths::new(data_dir);
    finish_renewal(&paths)?;
    let have_ca = paths.ca_cert().is_file() && paths.ca_key().is_file();
    if !have_ca {
        // Any file of a CA left behind (a key without its certificate, a server certificate
        // without the CA) is never overwritten: it may be all that is left of one phones trust.
        if paths.all().iter().any(|p| p.exists()) {
            return Err(TlsError::Generate(format!(
                "{} is incomplete (ca.pem or ca-key.json is missing): restore both from where \
                 you keep them, or move the directory away to make a new CA (phones must \
                 then trust the new one)",
                paths.dir.display()
            )));
        }
        let passphrase = new_passphrase();
        create(&paths, names, &passphrase)?;
        return Ok(Ensured {
            trust: read(&paths, names)?,
            new_passphrase: Some(passphrase),
        });
    }
    if !paths.server_cert().is_file() || !paths.server_key().is_file() {
        return Err(TlsError::Generate(format!(
            "{} has the CA but no server certificate: issue one with \
             `saksi admin renew-certificate` (it asks for the CA key's passphrase)",
            paths.dir.display()
        )));
    }
    Ok(Ensured {
        trust: read(&paths, names)?,
        new_passphrase: None,
    })
}

/// Issues a new server certificate for `names` from the CA, after checking that the CA may sign
/// for every one of them. The running server uses it after a restart.
pub fn renew(data_dir: &Path, names: &[String], passphrase: &str) -> Result<Trust, TlsError> {
    let paths = Paths::new(data_dir);
    let ca_pem = read_string(&paths.ca_cert())?;
    let ca_der = first_cert(&ca_pem, &paths.ca_cert())?;
    let (cert_pem, key_pem) = issue_from(&paths, names, passphrase)?;
    let outside = unserved(&ca_der, &cert_pem, names)?;
    if !outside.is_empty() {
        return Err(TlsError::Generate(format!(
            "this CA may not sign for {}: it was made for other names. Make a new CA (see \
             OPERATIONS.md, \"Rotating the local CA\"); phones must then trust the new one",
            outside.join(", ")
        )));
    }
    // Both files are written beside the ones in use, then take their place: a crash leaves
    // the old pair or (finished at the next start by `finish_renewal`) the new one, never a
    // key and a certificate that do not belong together.
    write_private(&pending(&paths.server_key()), key_pem.as_bytes())?;
    write_private(&pending(&paths.server_cert()), cert_pem.as_bytes())?;
    finish_renewal(&paths)?;
    read(&paths, names)
}

/// A server certificate (PEM) and its new key (PEM) for `names`, signed with the CA's key
/// (opened with `passphrase`). Nothing here checks the names against the CA's constraints:
/// [`renew`] does before it uses one, and a browser refuses one outside them (which the browser
/// tests prove with certificates made by this, through `examples/forge_certificate.rs`).
pub fn issue_from(
    paths: &Paths,
    names: &[String],
    passphrase: &str,
) -> Result<(String, String), TlsError> {
    let ca_pem = read_string(&paths.ca_cert())?;
    let ca_der = first_cert(&ca_pem, &paths.ca_cert())?;
    let ca_key = unseal(&read_string(&paths.ca_key())?, passphrase, &paths.ca_key())?;
    let issuer = Issuer::from_ca_cert_der(&ca_der, &ca_key)
        .map_err(|e| TlsError::Generate(format!("cannot read the CA certificate: {e}")))?;
    issue(&issuer, names, SERVER_DAYS)
}

/// Puts a renewed key and certificate in place: the key first, then the certificate, so that
/// a certificate still pending means its key may already be in place. A key pending alone was
/// written by a renewal that stopped before its certificate: it is dropped (the old pair stays).
fn finish_renewal(paths: &Paths) -> Result<(), TlsError> {
    let (key, cert) = (paths.server_key(), paths.server_cert());
    let (key_new, cert_new) = (pending(&key), pending(&cert));
    let rename = |from: &Path, to: &Path| {
        std::fs::rename(from, to).map_err(|source| TlsError::Write {
            path: to.to_owned(),
            source,
        })
    };
    if cert_new.is_file() {
        if key_new.is_file() {
            rename(&key_new, &key)?;
        }
        rename(&cert_new, &cert)?;
    } else if key_new.is_file() {
        std::fs::remove_file(&key_new).map_err(|source| TlsError::Write {
            path: key_new.clone(),
            source,
        })?;
    } else {
        return Ok(());
    }
    crate::datadir::sync_dir(&paths.dir).map_err(|source| TlsError::Write {
        path: paths.dir.clone(),
        source,
    })
}

/// Removes a CA made by this start whose passphrase nobody saw (the start failed before it
/// could be shown): the next start makes a new one and shows its passphrase.
pub fn forget_new(data_dir: &Path) {
    let paths = Paths::new(data_dir);
    for path in paths.all() {
        let _ = std::fs::remove_file(path);
    }
    let _ = std::fs::remove_dir(&paths.dir);
}

fn create(paths: &Paths, names: &[String], passphrase: &str) -> Result<(), TlsError> {
    crate::datadir::create_private_dir(&paths.dir).map_err(|source| TlsError::Write {
        path: paths.dir.clone(),
        source,
    })?;
    let ca_key = KeyPair::generate().map_err(generate)?;
    let ca_params = ca_params(names)?;
    let ca_cert = ca_params.self_signed(&ca_key).map_err(generate)?;
    let issuer = Issuer::from_params(&ca_params, &ca_key);
    let (cert_pem, key_pem) = issue(&issuer, names, SERVER_DAYS)?;
    // The key first, so that a CA certificate on disk always has its key.
    write_private(
        &paths.ca_key(),
        seal(&ca_key.serialize_der(), passphrase, names)?.as_bytes(),
    )?;
    write_private(&paths.server_key(), key_pem.as_bytes())?;
    write_private(&paths.server_cert(), cert_pem.as_bytes())?;
    write_private(&paths.ca_cert(), ca_cert.pem().as_bytes())?;
    Ok(())
}

fn ca_params(names: &[String]) -> Result<CertificateParams, TlsError> {
    let mut params = CertificateParams::default();
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(CA_DAYS);
    let mut dn = DistinguishedName::new();
    // A per-CA suffix, so that two servers' CAs on one phone can be told apart.
    let tag = hex::encode(crate::accounts::random_16())[..8].to_owned();
    dn.push(DnType::CommonName, format!("Saksi local CA {tag}"));
    dn.push(DnType::OrganizationName, "Saksi server");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let mut permitted = Vec::new();
    for name in names {
        permitted.push(match name.parse::<std::net::IpAddr>() {
            Ok(ip) => GeneralSubtree::IpAddress(CidrSubnet::from_addr_prefix(
                ip,
                if ip.is_ipv4() { 32 } else { 128 },
            )),
            Err(_) => GeneralSubtree::DnsName(name.clone()),
        });
    }
    if permitted.is_empty() {
        return Err(TlsError::Generate(
            "tls_names is empty: a local CA needs at least one name".into(),
        ));
    }
    // A constraint limits only the name types it lists: without an address among tls_names
    // every address would stay open (and without a DNS name every DNS name), so the missing
    // type is closed too.
    let mut excluded = Vec::new();
    if !names.iter().any(|n| n.parse::<std::net::IpAddr>().is_ok()) {
        excluded.push(GeneralSubtree::IpAddress(CidrSubnet::from_v4_prefix(
            [0; 4], 0,
        )));
        excluded.push(GeneralSubtree::IpAddress(CidrSubnet::from_v6_prefix(
            [0; 16], 0,
        )));
    }
    if names.iter().all(|n| n.parse::<std::net::IpAddr>().is_ok()) {
        permitted.push(GeneralSubtree::DnsName("invalid".into()));
    }
    params.name_constraints = Some(NameConstraints {
        permitted_subtrees: permitted,
        excluded_subtrees: excluded,
    });
    Ok(params)
}

/// A server certificate (PEM) and its new key (PEM) for `names`, signed by `issuer`.
pub fn issue(
    issuer: &Issuer<'_, &KeyPair>,
    names: &[String],
    days: i64,
) -> Result<(String, String), TlsError> {
    let key = KeyPair::generate().map_err(generate)?;
    let mut params = CertificateParams::new(names.to_vec()).map_err(generate)?;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(days);
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        names.first().cloned().unwrap_or_default(),
    );
    params.distinguished_name = dn;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let cert = params.signed_by(&key, issuer).map_err(generate)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn read(paths: &Paths, names: &[String]) -> Result<Trust, TlsError> {
    let ca_pem = read_string(&paths.ca_cert())?;
    let ca_der = first_cert(&ca_pem, &paths.ca_cert())?;
    let server_pem = read_string(&paths.server_cert())?;
    let server_der = first_cert(&server_pem, &paths.server_cert())?;
    let sealed: SealedKey = serde_json::from_str(&read_string(&paths.ca_key())?)
        .map_err(|e| bad_key_file(&paths.ca_key(), e))?;
    let uncovered = unserved(&ca_der, &server_pem, names)?;
    let server_not_after = not_after(&server_der).unwrap_or(Timestamp::EPOCH);
    Ok(Trust {
        ca_fingerprint: fingerprint(&ca_der),
        server_fingerprint: fingerprint(&server_der),
        server_not_after,
        ca_der: ca_der.to_vec(),
        ca_pem,
        names: sealed.names,
        uncovered,
    })
}

/// The names a browser trusting only `ca_der` would refuse `server_pem` for (wrong name,
/// outside the CA's constraints, expired).
pub fn unserved(
    ca_der: &CertificateDer<'_>,
    server_pem: &str,
    names: &[String],
) -> Result<Vec<String>, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(ca_der.clone().into_owned())
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()
    .map_err(|e| TlsError::Rustls(e.to_string()))?;
    let leaf = CertificateDer::from_pem_slice(server_pem.as_bytes())
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    let mut outside = Vec::new();
    for name in names {
        let ok = ServerName::try_from(name.clone()).is_ok_and(|server_name| {
            verifier
                .verify_server_cert(&leaf, &[], &server_name, &[], UnixTime::now())
                .is_ok()
        });
        if !ok {
            outside.push(name.clone());
        }
    }
    Ok(outside)
}

/// The passphrase of a new CA key: 24 characters of a 32-letter alphabet (120 bits), in groups.
fn new_passphrase() -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghjkmnpqrstuvwxyz23456789.";
    let bytes: [u8; 24] = {
        let mut b = [0u8; 24];
        rand::fill(&mut b[..]);
        b
    };
    let letters: Vec<char> = bytes
        .iter()
        .map(|b| ALPHABET[usize::from(b & 31)] as char)
        .map(|c| if c == '.' { '8' } else { c })
        .collect();
    letters
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

fn kdf(passphrase: &str, salt: &[u8], memory_kib: u32, passes: u32) -> Result<[u8; 32], TlsError> {
    let params = Params::new(memory_kib, passes, 1, Some(32))
        .map_err(|e| TlsError::Generate(format!("key derivation: {e}")))?;
    let mut key = [0u8; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(normalise(passphrase).as_bytes(), salt, &mut key)
        .map_err(|e| TlsError::Generate(format!("key derivation: {e}")))?;
    Ok(key)
}

/// Passphrases are typed by hand: case, spaces and dashes do not count.
fn normalise(passphrase: &str) -> String {
    passphrase
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

fn seal(key_der: &[u8], passphrase: &str, names: &[String]) -> Result<String, TlsError> {
    let mut salt = [0u8; 16];
    rand::fill(&mut salt[..]);
    let mut nonce = [0u8; 12];
    rand::fill(&mut nonce[..]);
    let key = kdf(passphrase, &salt, KDF_MEMORY_KIB, KDF_PASSES)?;
    let sealing = aead::LessSafeKey::new(
        aead::UnboundKey::new(&aead::CHACHA20_POLY1305, &key).map_err(|_| crypto())?,
    );
    let mut data = key_der.to_vec();
    sealing
        .seal_in_place_append_tag(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::from(b"saksi local CA key"),
            &mut data,
        )
        .map_err(|_| crypto())?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let sealed = SealedKey {
        what: "The private key of this Saksi server's local certificate authority, encrypted \
               with the passphrase printed at first start"
            .into(),
        kdf: "argon2id".into(),
        memory_kib: KDF_MEMORY_KIB,
        passes: KDF_PASSES,
        salt: b64.encode(salt),
        nonce: b64.encode(nonce),
        ciphertext: b64.encode(data),
        names: names.to_vec(),
    };
    serde_json::to_string_pretty(&sealed).map_err(|e| TlsError::Generate(e.to_string()))
}

/// The CA key from `ca-key.json`; a wrong passphrase is [`TlsError::WrongPassphrase`].
pub fn unseal(json: &str, passphrase: &str, path: &Path) -> Result<KeyPair, TlsError> {
    let sealed: SealedKey = serde_json::from_str(json).map_err(|e| bad_key_file(path, e))?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let decode = |s: &str| b64.decode(s).map_err(|e| bad_key_file(path, e));
    let salt = decode(&sealed.salt)?;
    let nonce: [u8; 12] = decode(&sealed.nonce)?
        .try_into()
        .map_err(|_| bad_key_file(path, "nonce"))?;
    let mut data = decode(&sealed.ciphertext)?;
    if sealed.kdf != "argon2id" || sealed.memory_kib > 4 * 1024 * 1024 || sealed.passes > 100 {
        return Err(bad_key_file(path, "unknown key derivation"));
    }
    let key = kdf(passphrase, &salt, sealed.memory_kib, sealed.passes)?;
    let opening = aead::LessSafeKey::new(
        aead::UnboundKey::new(&aead::CHACHA20_POLY1305, &key).map_err(|_| crypto())?,
    );
    let der = opening
        .open_in_place(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::from(b"saksi local CA key"),
            &mut data,
        )
        .map_err(|_| TlsError::WrongPassphrase)?;
    let der = rustls::pki_types::PrivatePkcs8KeyDer::from(der.to_vec());
    KeyPair::try_from(&der).map_err(|e| bad_key_file(path, e))
}

/// The `notAfter` of a DER certificate, in Unix seconds.
fn not_after(der: &[u8]) -> Option<Timestamp> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let secs = cert.validity().not_after.timestamp();
    Some(Timestamp::from_millis(secs.saturating_mul(1000)))
}

fn first_cert(pem: &str, path: &Path) -> Result<CertificateDer<'static>, TlsError> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .ok_or_else(|| TlsError::NoCertificate {
            path: path.to_owned(),
        })?
        .map_err(|e| TlsError::Read {
            path: path.to_owned(),
            message: e.to_string(),
        })
}

fn read_string(path: &Path) -> Result<String, TlsError> {
    std::fs::read_to_string(path).map_err(|e| TlsError::Read {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

fn generate(e: rcgen::Error) -> TlsError {
    TlsError::Generate(e.to_string())
}

fn crypto() -> TlsError {
    TlsError::Generate("encryption failed".into())
}

fn bad_key_file(path: &Path, e: impl std::fmt::Display) -> TlsError {
    TlsError::Read {
        path: path.to_owned(),
        message: format!("not a sealed CA key: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        vec!["localhost".into(), "127.0.0.1".into(), "saksi.lan".into()]
    }

    #[test]
    fn a_new_ca_serves_its_names_and_its_key_opens_only_with_the_passphrase() {
        let dir = tempfile::tempdir().expect("tempdir");
        let made = ensure(dir.path(), &names()).expect("made");
        let passphrase = made.new_passphrase.clone().expect("new passphrase");
        assert_eq!(made.trust.uncovered, Vec::<String>::new());
        assert!(made.trust.server_not_after > Timestamp::EPOCH);
        // Read again: the same CA, no new passphrase.
        let again = ensure(dir.path(), &names()).expect("read");
        assert!(again.new_passphrase.is_none());
        assert_eq!(again.trust.ca_fingerprint, made.trust.ca_fingerprint);

        let paths = Paths::new(dir.path());
        let json = std::fs::read_to_string(paths.ca_key()).expect("key file");
        assert!(!json.contains("PRIVATE KEY"));
        assert!(matches!(
            unseal(&json, "not-the-passphrase", &paths.ca_key()),
            Err(TlsError::WrongPassphrase)
        ));
        // Typed by hand in upper case and without dashes: still opens.
        let typed = passphrase.replace('-', " ").to_uppercase();
        unseal(&json, &typed, &paths.ca_key()).expect("opens");
    }

    #[test]
    fn the_ca_cannot_sign_for_a_name_outside_tls_names() {
        let dir = tempfile::tempdir().expect("tempdir");
        let made = ensure(dir.path(), &names()).expect("made");
        let paths = Paths::new(dir.path());
        let ca_key = unseal(
            &std::fs::read_to_string(paths.ca_key()).expect("key"),
            made.new_passphrase.as_deref().expect("passphrase"),
            &paths.ca_key(),
        )
        .expect("key");
        let ca_der = CertificateDer::from(made.trust.ca_der.clone());
        let issuer = Issuer::from_ca_cert_der(&ca_der, &ca_key).expect("issuer");
        // Whoever holds the CA key signs for other names: a browser that trusts the CA refuses
        // every one of them, while a name inside the constraints (a subdomain) is accepted.
        let others: Vec<String> = [
            "bank.example",
            "saksi.lan.evil.example",
            "10.0.0.1",
            "127.0.0.2",
        ]
        .map(String::from)
        .to_vec();
        let (forged, _) = issue(&issuer, &others, 30).expect("signed anyway");
        assert_eq!(
            unserved(&ca_der, &forged, &others).expect("checked"),
            others
        );
        let inside = vec!["files.saksi.lan".to_owned()];
        let (sub, _) = issue(&issuer, &inside, 30).expect("signed");
        assert!(
            unserved(&ca_der, &sub, &inside)
                .expect("checked")
                .is_empty()
        );
        // Renewal refuses a name outside the constraints and leaves the certificate alone.
        let before = std::fs::read(paths.server_cert()).expect("cert");
        let mut wider = names();
        wider.push("192.168.1.10".into());
        let err = renew(dir.path(), &wider, made.new_passphrase.as_deref().unwrap())
            .expect_err("outside");
        assert!(err.to_string().contains("192.168.1.10"), "{err}");
        assert_eq!(std::fs::read(paths.server_cert()).expect("cert"), before);
        // Within them it issues a new server certificate from the same CA.
        let renewed = renew(
            dir.path(),
            &names(),
            made.new_passphrase.as_deref().unwrap(),
        )
        .expect("renewed");
        assert_eq!(renewed.ca_fingerprint, made.trust.ca_fingerprint);
        assert_ne!(renewed.server_fingerprint, made.trust.server_fingerprint);
    }

    #[test]
    fn a_ca_for_addresses_only_or_names_only_cannot_sign_for_the_other_kind() {
        for (names, others) in [
            (
                vec!["192.168.1.10".to_owned()],
                vec!["bank.example".to_owned()],
            ),
            (vec!["saksi.lan".to_owned()], vec!["10.0.0.1".to_owned()]),
        ] {
            let dir = tempfile::tempdir().expect("tempdir");
            let made = ensure(dir.path(), &names).expect("made");
            assert!(made.trust.uncovered.is_empty(), "{names:?}");
            let paths = Paths::new(dir.path());
            let ca_key = unseal(
                &std::fs::read_to_string(paths.ca_key()).expect("key"),
                made.new_passphrase.as_deref().expect("passphrase"),
                &paths.ca_key(),
            )
            .expect("key");
            let ca_der = CertificateDer::from(made.trust.ca_der.clone());
            let issuer = Issuer::from_ca_cert_der(&ca_der, &ca_key).expect("issuer");
            let (forged, _) = issue(&issuer, &others, 30).expect("signed anyway");
            assert_eq!(
                unserved(&ca_der, &forged, &others).expect("checked"),
                others
            );
        }
    }

    #[test]
    fn a_name_added_to_tls_names_later_is_reported_uncovered() {
        let dir = tempfile::tempdir().expect("tempdir");
        ensure(dir.path(), &names()).expect("made");
        let mut more = names();
        more.push("saksi.office".into());
        let read = ensure(dir.path(), &more).expect("read");
        assert_eq!(read.trust.uncovered, vec!["saksi.office".to_owned()]);
    }

    #[test]
    fn a_ca_certificate_without_its_key_is_refused_not_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        ensure(dir.path(), &names()).expect("made");
        let paths = Paths::new(dir.path());
        let ca = std::fs::read(paths.ca_cert()).expect("ca");
        std::fs::remove_file(paths.ca_key()).expect("rm");
        let err = ensure(dir.path(), &names()).expect_err("incomplete");
        assert!(err.to_string().contains("ca-key.json"), "{err}");
        assert_eq!(std::fs::read(paths.ca_cert()).expect("ca"), ca);
    }

    /// Any file left of a CA is kept, whichever it is: a key alone may be all that is left of
    /// one phones trust (its certificate can be restored from a phone or a backup).
    #[test]
    fn a_ca_key_or_server_file_alone_is_refused_not_replaced() {
        for keep in ["ca-key.json", "server-key.pem", "server.pem"] {
            let dir = tempfile::tempdir().expect("tempdir");
            ensure(dir.path(), &names()).expect("made");
            let paths = Paths::new(dir.path());
            for path in paths.all() {
                if !path.ends_with(keep) {
                    std::fs::remove_file(path).expect("rm");
                }
            }
            let kept = std::fs::read(paths.dir.join(keep)).expect("kept");
            let err = ensure(dir.path(), &names()).expect_err("incomplete");
            assert!(err.to_string().contains("incomplete"), "{keep}: {err}");
            assert_eq!(
                std::fs::read(paths.dir.join(keep)).expect("kept"),
                kept,
                "{keep}"
            );
        }
    }

    /// A renewal that stopped part way leaves the old pair or the new one in use, never a key
    /// and a certificate that do not belong together.
    #[test]
    fn an_interrupted_renewal_leaves_a_matching_pair() {
        let dir = tempfile::tempdir().expect("tempdir");
        let made = ensure(dir.path(), &names()).expect("made");
        let passphrase = made.new_passphrase.expect("passphrase");
        let paths = Paths::new(dir.path());
        let read = |p: PathBuf| std::fs::read(p).expect("read");
        let old = (read(paths.server_key()), read(paths.server_cert()));
        renew(dir.path(), &names(), &passphrase).expect("renewed");
        let new = (read(paths.server_key()), read(paths.server_cert()));
        assert_ne!(old, new);
        assert!(!pending(&paths.server_key()).exists() && !pending(&paths.server_cert()).exists());

        // Stopped after writing the new key only: the pair in use stays.
        std::fs::write(pending(&paths.server_key()), &old.0).expect("write");
        ensure(dir.path(), &names()).expect("starts");
        assert_eq!((read(paths.server_key()), read(paths.server_cert())), new);
        assert!(!pending(&paths.server_key()).exists());

        // Stopped with both written (or the key already in place): the next start finishes.
        std::fs::write(pending(&paths.server_key()), &old.0).expect("write");
        std::fs::write(pending(&paths.server_cert()), &old.1).expect("write");
        ensure(dir.path(), &names()).expect("starts");
        assert_eq!((read(paths.server_key()), read(paths.server_cert())), old);
        std::fs::write(paths.server_key(), &new.0).expect("write");
        std::fs::write(pending(&paths.server_cert()), &new.1).expect("write");
        let trust = ensure(dir.path(), &names()).expect("starts").trust;
        assert_eq!((read(paths.server_key()), read(paths.server_cert())), new);
        assert_eq!(trust.uncovered, Vec::<String>::new());
    }

    #[test]
    fn forgetting_a_new_ca_removes_it_and_the_next_start_makes_another() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = ensure(dir.path(), &names()).expect("made");
        forget_new(dir.path());
        assert!(!Paths::new(dir.path()).dir.exists());
        let second = ensure(dir.path(), &names()).expect("made again");
        assert!(second.new_passphrase.is_some());
        assert_ne!(second.trust.ca_fingerprint, first.trust.ca_fingerprint);
    }
}
