//! TLS with rustls (ring provider): a certificate issued by a local CA made on first start
//! ([`local_ca`], the default), a self-signed certificate, certificate and key files, or a
//! certificate obtained and renewed from an ACME authority (`rustls-acme`, TLS-ALPN-01 on the
//! listening port; account and certificate cached in `data_dir/acme/`).

pub mod local_ca;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

use crate::config::{Config, TlsMode};
use crate::errors::Chain;

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("cannot write {path}")]
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
    #[error("wrong passphrase for the CA key")]
    WrongPassphrase,
}

/// The ACME account and certificate cache inside the data directory.
pub fn acme_cache_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("acme")
}

/// The ACME client of a server with `tls = "acme"`: [`run_acme`] drives it for the life of
/// the server (first order, then renewal a third of the validity before expiry).
pub struct Acme {
    state: rustls_acme::AcmeState<std::io::Error>,
}

impl std::fmt::Debug for Acme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.state, f)
    }
}

/// Orders, caches and renews the certificate; failures are logged and retried with backoff.
pub async fn run_acme(acme: Acme) {
    use futures_util::StreamExt as _;
    let mut state = acme.state;
    while let Some(event) = state.next().await {
        match event {
            Ok(rustls_acme::EventOk::DeployedNewCert) => {
                tracing::info!("ACME: new certificate obtained and in use");
            }
            Ok(rustls_acme::EventOk::DeployedCachedCert) => {
                tracing::info!("ACME: cached certificate in use");
            }
            Ok(event) => tracing::debug!(?event, "ACME"),
            Err(e) => {
                tracing::warn!(error = %Chain(&e), "ACME: no new certificate yet; will retry")
            }
        }
    }
}

/// What the server serves with, and what to tell the operator.
#[derive(Debug)]
pub struct TlsSetup {
    pub server_config: rustls::ServerConfig,
    pub cert_path: PathBuf,
    /// SHA-256 of the leaf certificate, `AA:BB:...`, for comparing on phones (not known at
    /// start with ACME).
    pub fingerprint: Option<String>,
    /// Whether the certificate was generated just now.
    pub generated: bool,
    /// With `tls = "local_ca"`: the CA phones install.
    pub trust: Option<local_ca::Trust>,
    /// With `tls = "local_ca"`, on first start: the CA key's passphrase, shown once.
    pub new_ca_passphrase: Option<String>,
    /// With `tls = "acme"`: the client that obtains the certificate, to be run.
    pub acme: Option<Acme>,
}

/// The self-signed certificate and key paths inside the data directory.
pub fn self_signed_paths(data_dir: &Path) -> (PathBuf, PathBuf) {
    (data_dir.join("tls-cert.pem"), data_dir.join("tls-key.pem"))
}

/// Builds the TLS configuration, generating a self-signed certificate if needed. `None` when TLS
/// is off (plain HTTP behind a reverse proxy on loopback).
pub fn setup(config: &Config) -> Result<Option<TlsSetup>, TlsError> {
    let mut trust = None;
    let mut new_ca_passphrase = None;
    let (cert_path, key_path, generated) = match config.tls {
        TlsMode::Off => return Ok(None),
        TlsMode::LocalCa => {
            let ensured = local_ca::ensure(&config.data_dir, &config.tls_names)?;
            let paths = local_ca::Paths::new(&config.data_dir);
            let generated = ensured.new_passphrase.is_some();
            trust = Some(ensured.trust);
            new_ca_passphrase = ensured.new_passphrase;
            (paths.server_cert(), paths.server_key(), generated)
        }
        TlsMode::Acme => return acme_setup(config).map(Some),
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
        fingerprint: Some(fingerprint),
        generated,
        trust,
        new_ca_passphrase,
        acme: None,
    }))
}

fn acme_setup(config: &Config) -> Result<TlsSetup, TlsError> {
    use rustls_acme::caches::DirCache;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let directory = config.acme_directory_url().expect("validated");
    let acme = match &config.acme_directory_ca {
        None => rustls_acme::AcmeConfig::new_with_provider(&config.acme_domains, provider.clone()),
        Some(ca) => {
            let pem = std::fs::read(ca).map_err(|e| TlsError::Read {
                path: ca.clone(),
                message: e.to_string(),
            })?;
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| TlsError::Read {
                    path: ca.clone(),
                    message: e.to_string(),
                })?;
                roots
                    .add(cert)
                    .map_err(|e| TlsError::Rustls(e.to_string()))?;
            }
            let client = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map_err(|e| TlsError::Rustls(e.to_string()))?
                .with_root_certificates(roots)
                .with_no_client_auth();
            rustls_acme::AcmeConfig::new_with_client_config(&config.acme_domains, Arc::new(client))
        }
    };
    let cache = acme_cache_dir(&config.data_dir);
    let state = acme
        .contact(config.acme_contact.iter().map(|c| {
            if c.contains(':') {
                c.clone()
            } else {
                format!("mailto:{c}")
            }
        }))
        .directory(directory)
        .cache(DirCache::new(cache.clone()))
        .state();
    let mut server_config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Rustls(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(state.resolver());
    // The certificate authority proves control of the name with a TLS-ALPN-01 handshake.
    server_config
        .alpn_protocols
        .push(rustls_acme::acme::ACME_TLS_ALPN_NAME.to_vec());
    Ok(TlsSetup {
        server_config,
        cert_path: cache,
        fingerprint: None,
        generated: false,
        trust: None,
        new_ca_passphrase: None,
        acme: Some(Acme { state }),
    })
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
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
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
