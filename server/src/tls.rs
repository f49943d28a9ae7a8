//! TLS with rustls (ring provider): a self-signed certificate generated into the data directory
//! on first run, or certificate and key files.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

use crate::config::{Config, TlsMode};

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot generate a certificate: {0}")]
    Generate(String),
    #[error("{path} holds no certificate")]
    NoCertificate { path: PathBuf },
    #[error("certificate and key do not work together: {0}")]
    Rustls(String),
}

/// What the server serves with, and what to tell the operator.
#[derive(Debug)]
pub struct TlsSetup {
    pub server_config: rustls::ServerConfig,
    pub cert_path: PathBuf,
    /// SHA-256 of the leaf certificate, `AA:BB:...`, for comparing on phones.
    pub fingerprint: String,
    /// Whether the certificate was generated just now.
    pub generated: bool,
}

/// The self-signed certificate and key paths inside the data directory.
pub fn self_signed_paths(data_dir: &Path) -> (PathBuf, PathBuf) {
    (data_dir.join("tls-cert.pem"), data_dir.join("tls-key.pem"))
}

/// Builds the TLS configuration, generating a self-signed certificate if needed. `None` when TLS
/// is off (plain HTTP behind a reverse proxy on loopback).
pub fn setup(config: &Config) -> Result<Option<TlsSetup>, TlsError> {
    let (cert_path, key_path, generated) = match config.tls {
        TlsMode::Off => return Ok(None),
        TlsMode::Files => (
            config.tls_cert.clone().expect("validated"),
            config.tls_key.clone().expect("validated"),
            false,
        ),
        TlsMode::SelfSigned => {
            let (cert, key) = self_signed_paths(&config.data_dir);
            let generated = if cert.is_file() && key.is_file() {
                false
            } else {
                generate_self_signed(&cert, &key, &config.tls_names)?;
                true
            };
            (cert, key, generated)
        }
    };
    let read = |path: &Path| {
        std::fs::read(path).map_err(|e| TlsError::Read {
            path: path.to_owned(),
            message: e.to_string(),
        })
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&read(&cert_path)?)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Read {
            path: cert_path.clone(),
            message: e.to_string(),
        })?;
    let leaf = chain.first().ok_or_else(|| TlsError::NoCertificate {
        path: cert_path.clone(),
    })?;
    let fingerprint = fingerprint(leaf);
    let key = PrivateKeyDer::from_pem_slice(&read(&key_path)?).map_err(|e| TlsError::Read {
        path: key_path.clone(),
        message: e.to_string(),
    })?;
    let server_config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| TlsError::Rustls(e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .map_err(|e| TlsError::Rustls(e.to_string()))?;
    Ok(Some(TlsSetup {
        server_config,
        cert_path,
        fingerprint,
        generated,
    }))
}

fn generate_self_signed(cert: &Path, key: &Path, names: &[String]) -> Result<(), TlsError> {
    let certified = rcgen::generate_simple_self_signed(names.to_vec())
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    write_private(key, certified.signing_key.serialize_pem().as_bytes())?;
    std::fs::write(cert, certified.cert.pem()).map_err(|source| TlsError::Write {
        path: cert.to_owned(),
        source,
    })?;
    Ok(())
}

/// Writes a file readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    let err = |source| TlsError::Write {
        path: path.to_owned(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(err)?;
    file.write_all(bytes).map_err(err)?;
    file.sync_all().map_err(err)
}

/// SHA-256 of a DER certificate as colon-separated upper-case hex.
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}
