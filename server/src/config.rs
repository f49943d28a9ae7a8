//! Configuration: built-in defaults, then a TOML file (`--config`), then `SAKSI_*` environment
//! variables. Validated at start-up; settings that would weaken the protection of the people
//! whose records this server holds are refused, not warned about.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// How the server speaks to clients.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TlsMode {
    /// A certificate authority made on first run, constrained to `tls_names`, that phones
    /// install once; the server certificate is issued from it (see `tls::local_ca`).
    LocalCa,
    /// A self-signed certificate generated into the data directory on first run. Browsers do
    /// not install the offline app over it; kept for servers set up before `local_ca`.
    SelfSigned,
    /// Certificate chain and private key from PEM files (`tls_cert`, `tls_key`).
    Files,
    /// Plain HTTP, only on a loopback address, behind a TLS-terminating reverse proxy.
    Off,
    /// A certificate from an ACME certificate authority (Let's Encrypt by default) for
    /// `acme_domains`, obtained and renewed by the server itself (TLS-ALPN-01 challenge on the
    /// listening port, which must be reachable as port 443 of those names).
    Acme,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Text,
    Json,
}

/// Every setting of the server. See [`EXAMPLE`] for what each one means.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub tls: TlsMode,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// Host names and addresses the self-signed certificate is valid for.
    pub tls_names: Vec<String>,
    /// Public DNS names to get an ACME certificate for (`tls = "acme"`).
    pub acme_domains: Vec<String>,
    /// Contact addresses given to the ACME certificate authority (expiry warnings).
    pub acme_contact: Vec<String>,
    /// `letsencrypt`, `letsencrypt-staging`, or the `https://` URL of an ACME directory.
    pub acme_directory: String,
    /// PEM certificates to trust for the ACME directory's HTTPS instead of the public web PKI
    /// (a private ACME CA).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acme_directory_ca: Option<PathBuf>,
    pub session_days: u64,
    /// Shortest PIN a phone accepts (digits, or characters with `pin_letters`).
    pub pin_min_length: u32,
    /// Phones may (and with a long `pin_min_length` should) use a passphrase: any characters.
    pub pin_letters: bool,
    pub ticket_seconds: u64,
    pub max_frame_bytes: usize,
    pub max_documents_per_connection: usize,
    pub idle_connection_seconds: u64,
    pub evict_idle_document_seconds: u64,
    pub compact_after_changes: usize,
    pub login_failures_per_account: u32,
    pub login_failures_per_address: u32,
    pub login_window_seconds: u64,
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub log_format: LogFormat,
    /// The organisation's time zone (IANA name): the console shows times in it; exports keep
    /// UTC.
    pub time_zone: String,
    /// Largest file a phone may upload (photos, recordings, documents), in bytes.
    pub max_file_bytes: u64,
    /// Most bytes of files one device may have uploaded (and be uploading), in bytes.
    pub device_quota_bytes: u64,
    /// A file no live record names any more is deleted after this many days.
    pub unreferenced_file_days: u64,
    /// An upload nobody continued for this many days is dropped (the phone starts it again).
    pub stale_upload_days: u64,
    /// An upload request that sends nothing for this long is ended (keeping what it sent).
    pub upload_idle_seconds: u64,
    /// An upload request that runs longer than this is ended (keeping what it sent).
    pub upload_request_seconds: u64,
    /// A purge waits this many days (hidden from field staff, undoable) before the record is
    /// destroyed.
    pub purge_grace_days: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_token: Option<Secret>,
}

/// A secret setting: usable as a string, never shown by `Debug` (configurations get logged).
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            data_dir: PathBuf::from("./data"),
            tls: TlsMode::LocalCa,
            tls_cert: None,
            tls_key: None,
            tls_names: vec!["localhost".into(), "127.0.0.1".into()],
            acme_domains: Vec::new(),
            acme_contact: Vec::new(),
            acme_directory: "letsencrypt".into(),
            acme_directory_ca: None,
            session_days: 30,
            pin_min_length: 8,
            time_zone: "Asia/Phnom_Penh".into(),
            pin_letters: false,
            ticket_seconds: 60,
            max_frame_bytes: 16 * 1024 * 1024,
            max_documents_per_connection: 10_000,
            idle_connection_seconds: 60,
            evict_idle_document_seconds: 120,
            compact_after_changes: 256,
            login_failures_per_account: 5,
            login_failures_per_address: 20,
            login_window_seconds: 900,
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
            log_format: LogFormat::Text,
            metrics_token: None,
            max_file_bytes: 100 * 1024 * 1024,
            device_quota_bytes: 2 * 1024 * 1024 * 1024,
            unreferenced_file_days: 7,
            stale_upload_days: 7,
            upload_idle_seconds: 30,
            upload_request_seconds: 900,
            purge_grace_days: 7,
        }
    }
}

/// A commented configuration file with every option at its default (`saksi print-config`).
pub const EXAMPLE: &str = r#"# Saksi server configuration. Every option is shown at its default value.
# Precedence: built-in defaults < this file (saksi serve --config FILE) < SAKSI_* environment
# variables (the upper-case option name, e.g. SAKSI_LISTEN, SAKSI_DATA_DIR).

# Address and port to listen on. Use 0.0.0.0:8443 to accept connections from other machines.
listen = "127.0.0.1:8443"

# Where the database, the TLS certificates and backups live. Keep it on an encrypted disk.
data_dir = "./data"

# "local_ca":    make a certificate authority on first run, allowed to sign only for tls_names,
#                and serve with a certificate issued from it (data_dir/tls/). Phones install
#                the CA once (console: Certificate; OPERATIONS.md) and then install the offline
#                app with no warning. The CA key is kept encrypted under a passphrase printed
#                once at first start: keep it offline, it is needed to renew the certificate.
# "self_signed": a self-signed certificate in data_dir on first run. Browsers do not install
#                the offline app over it; for servers set up before local_ca.
# "files":       use tls_cert and tls_key (PEM), e.g. from your certificate authority.
# "off":         plain HTTP behind a TLS-terminating reverse proxy; only allowed when `listen`
#                is a loopback address.
# "acme":        get and renew a certificate for acme_domains from Let's Encrypt (or another
#                ACME authority) by itself. The server must be reachable from the internet as
#                port 443 of every name in acme_domains (listen on 0.0.0.0:443, or forward
#                443 to the listening port). Until the first certificate arrives (seconds to
#                minutes) TLS connections fail. Account key and certificate are kept in
#                data_dir/acme/.
tls = "local_ca"
# tls_cert = "/etc/saksi/fullchain.pem"
# tls_key = "/etc/saksi/privkey.pem"

# Names (DNS or IP) phones use to reach this server (local_ca and self_signed). The local CA
# may sign only for these (a DNS name covers its subdomains): list every name and address now,
# e.g. ["localhost", "127.0.0.1", "192.168.1.10", "saksi.lan"]; a name outside them later
# needs a new CA.
tls_names = ["localhost", "127.0.0.1"]

# tls = "acme": the public DNS names of this server, e.g. ["saksi.example.org"].
acme_domains = []
# tls = "acme": contact addresses for the certificate authority, e.g. ["admin@example.org"].
acme_contact = []
# tls = "acme": "letsencrypt", "letsencrypt-staging" (for trying things out: its certificates
# are not trusted by phones), or the https:// URL of another ACME directory.
acme_directory = "letsencrypt"
# tls = "acme" with a private ACME authority: PEM file of the CA that signed its HTTPS
# certificate (default: the public web PKI).
# acme_directory_ca = "/etc/saksi/acme-ca.pem"

# Days a device stays signed in before its user must enter the password again (at most 90).
session_days = 30

# The PIN that unlocks the app on a phone: at least this many digits (6 to 64). A copied
# browser profile can be attacked offline; each guess costs an Argon2id derivation (64 MiB),
# so every extra digit multiplies the attacker's work by ten (SECURITY.md gives the figures).
# Phones with a shorter PIN are asked for a new one at their next unlock.
pin_min_length = 8
# true: phones may use a passphrase (any characters, at least pin_min_length of them) instead of
# digits only.
pin_letters = false

# Seconds a single-use sync ticket stays valid (at most 300).
ticket_seconds = 60

# Largest WebSocket message accepted, in bytes (at most 64 MiB).
max_frame_bytes = 16777216

# Most documents one connection may sync.
max_documents_per_connection = 10000

# A connection that sends nothing (not even a pong) for this long is closed.
idle_connection_seconds = 60

# A document nobody has used for this long is written back and dropped from memory.
evict_idle_document_seconds = 120

# Stored changes of one document are merged into a snapshot after this many.
compact_after_changes = 256

# Failed logins allowed per account and per client address within login_window_seconds,
# after which further attempts are refused until the window has passed.
login_failures_per_account = 5
login_failures_per_address = 20
login_window_seconds = 900

# Argon2id cost for password hashes (OWASP minimum: 19456 KiB, 2 iterations; lower is refused).
argon2_memory_kib = 19456
argon2_iterations = 2

# "text" or "json". The level is set with SAKSI_LOG (e.g. "info", "saksi_server=debug").
log_format = "text"

# The organisation's time zone: the console shows times in it (exports and the printable report
# keep UTC, marked as such). An IANA name: Asia/Phnom_Penh, Asia/Bangkok, UTC, ...
time_zone = "Asia/Phnom_Penh"

# Files attached to records (photos, audio, documents). Largest file a phone may upload, in
# bytes (100 MiB; at most 4 GiB): a larger one is refused before its bytes are sent, and the
# phone says so.
max_file_bytes = 104857600
# Most bytes of files one device may have on the server (uploaded by it, or being uploaded):
# 2 GiB. Refused before the bytes are sent.
device_quota_bytes = 2147483648
# A file that no record names any more (its entry removed, its record purged) is deleted after
# this many days. Backups taken meanwhile keep it.
unreferenced_file_days = 7
# An upload that no phone continued for this many days is dropped; the phone starts it again.
stale_upload_days = 7
# An upload request that sends nothing for this many seconds, or runs longer than
# upload_request_seconds, is ended; what it sent is kept and the phone continues from there
# (a slow or stalled connection holds nothing open for ever).
upload_idle_seconds = 30
upload_request_seconds = 900

# A purge (consent withdrawn, recorded in error, safety) waits this many days before the record
# is destroyed: meanwhile it is hidden from everyone but coordinators and admins, and a
# coordinator can undo it. An admin can skip the wait deliberately (console, or
# `saksi admin purge --now`). A destroyed record is gone from the server, its files and every
# phone, and its id is refused for ever.
purge_grace_days = 7

# Prometheus metrics at /metrics (counts only). Without a token they are served to loopback
# clients only, and not at all when tls = "off" (behind a proxy every request is loopback).
# With a token (at least 32 characters), to any client sending "Authorization: Bearer TOKEN".
# metrics_token = "..."
"#;

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("environment variable {name}: {message}")]
    Env { name: String, message: String },
    #[error("refused setting `{setting}`: {reason}")]
    Refused {
        setting: &'static str,
        reason: &'static str,
    },
}

impl Config {
    /// Defaults, then `file` if given, then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut config = match file {
            Some(path) => Self::from_toml_file(path)?,
            None => Config::default(),
        };
        config.apply_env(std::env::vars())?;
        config.validate()?;
        Ok(config)
    }

    fn from_toml_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::File {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    /// Applies `SAKSI_<OPTION>` variables. Unknown `SAKSI_` variables are refused (a typo must
    /// not silently leave a weaker default in place), except `SAKSI_LOG`.
    pub fn apply_env(
        &mut self,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(), ConfigError> {
        let mut table = toml::Table::new();
        for (name, value) in vars {
            let Some(option) = name.strip_prefix("SAKSI_") else {
                continue;
            };
            if option == "LOG" {
                continue;
            }
            let key = option.to_ascii_lowercase();
            // Interpret the value as TOML if it parses as a typed value, else as a string.
            let parsed = format!("v = {value}")
                .parse::<toml::Table>()
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or(toml::Value::String(value.clone()));
            table.insert(key, parsed);
        }
        if table.is_empty() {
            return Ok(());
        }
        let mut current = toml::Table::try_from(&*self)
            .expect("the configuration always serialises to a TOML table");
        for (k, v) in table {
            if !current.contains_key(&k) && !OPTIONAL_KEYS.contains(&k.as_str()) {
                return Err(ConfigError::Env {
                    name: format!("SAKSI_{}", k.to_ascii_uppercase()),
                    message: "not a Saksi setting".into(),
                });
            }
            current.insert(k, v);
        }
        *self = current
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Env {
                name: "SAKSI_*".into(),
                message: e.to_string(),
            })?;
        Ok(())
    }

    /// Refuses settings that are unsafe or nonsensical.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let refuse = |setting, reason| Err(ConfigError::Refused { setting, reason });
        if self.tls == TlsMode::Off && !self.listen.ip().is_loopback() {
            return refuse(
                "tls",
                "plain HTTP is only allowed on a loopback address behind a TLS reverse proxy",
            );
        }
        if self.tls == TlsMode::Files && (self.tls_cert.is_none() || self.tls_key.is_none()) {
            return refuse("tls", "tls = \"files\" needs tls_cert and tls_key");
        }
        if self.tls == TlsMode::Acme {
            if self.acme_domains.is_empty() {
                return refuse("acme_domains", "tls = \"acme\" needs at least one domain");
            }
            if !self.acme_domains.iter().all(|d| is_dns_name(d)) {
                return refuse(
                    "acme_domains",
                    "each must be a DNS name such as saksi.example.org (not an address)",
                );
            }
            if self.acme_directory_url().is_none() {
                return refuse(
                    "acme_directory",
                    "must be letsencrypt, letsencrypt-staging or an https:// URL",
                );
            }
        }
        if matches!(self.tls, TlsMode::LocalCa | TlsMode::SelfSigned) {
            if self.tls_names.is_empty() {
                return refuse(
                    "tls_names",
                    "needs at least one name or address that phones use to reach the server",
                );
            }
            if let Some(reason) = self.tls_names.iter().find_map(|n| tls_name_problem(n)) {
                return refuse("tls_names", reason);
            }
        }
        if self.max_file_bytes == 0
            || self.max_file_bytes > saksi_shared::attachment::MAX_FILE_BYTES
        {
            return refuse("max_file_bytes", "must be from 1 byte to 4 GiB");
        }
        if self.device_quota_bytes < self.max_file_bytes {
            return refuse(
                "device_quota_bytes",
                "must be at least max_file_bytes (or no file could be uploaded)",
            );
        }
        if self.upload_idle_seconds == 0 || self.upload_request_seconds < self.upload_idle_seconds {
            return refuse(
                "upload_idle_seconds, upload_request_seconds",
                "must be at least 1 second, the request limit at least the idle limit",
            );
        }
        if self.purge_grace_days == 0 || self.purge_grace_days > 90 {
            return refuse(
                "purge_grace_days",
                "must be from 1 to 90 days (an admin skips it deliberately, per record)",
            );
        }
        if self.unreferenced_file_days == 0 || self.stale_upload_days == 0 {
            return refuse(
                "unreferenced_file_days, stale_upload_days",
                "must be at least 1 day",
            );
        }
        if self.session_days == 0 || self.session_days > 90 {
            return refuse("session_days", "must be between 1 and 90");
        }
        if jiff::tz::TimeZone::get(&self.time_zone).is_err() {
            return refuse(
                "time_zone",
                "must be a time zone name such as Asia/Phnom_Penh or UTC",
            );
        }
        if !(6..=64).contains(&self.pin_min_length) {
            return refuse("pin_min_length", "must be between 6 and 64");
        }
        if self.ticket_seconds == 0 || self.ticket_seconds > 300 {
            return refuse("ticket_seconds", "must be between 1 and 300");
        }
        if self.max_frame_bytes < 64 * 1024 || self.max_frame_bytes > 64 * 1024 * 1024 {
            return refuse("max_frame_bytes", "must be between 64 KiB and 64 MiB");
        }
        if self.max_documents_per_connection == 0 {
            return refuse("max_documents_per_connection", "must be at least 1");
        }
        if self.idle_connection_seconds < 5 {
            return refuse("idle_connection_seconds", "must be at least 5");
        }
        if self.compact_after_changes < 2 {
            return refuse("compact_after_changes", "must be at least 2");
        }
        if self.login_failures_per_account == 0
            || self.login_failures_per_account > 100
            || self.login_failures_per_address == 0
            || self.login_failures_per_address > 1000
        {
            return refuse(
                "login_failures_per_*",
                "must be at least 1 (and at most 100 per account, 1000 per address)",
            );
        }
        if self.login_window_seconds < 60 {
            return refuse("login_window_seconds", "must be at least 60");
        }
        if self
            .metrics_token
            .as_ref()
            .is_some_and(|t| t.expose().len() < 32)
        {
            return refuse("metrics_token", "must be at least 32 characters");
        }
        if self.argon2_memory_kib < 19_456 || self.argon2_iterations < 2 {
            return refuse(
                "argon2_*",
                "below the OWASP minimum for Argon2id (19456 KiB, 2 iterations)",
            );
        }
        Ok(())
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("saksi.sqlite3")
    }

    /// The ACME directory URL `acme_directory` names, if it is valid.
    pub fn acme_directory_url(&self) -> Option<&str> {
        match self.acme_directory.as_str() {
            "letsencrypt" => Some("https://acme-v02.api.letsencrypt.org/directory"),
            "letsencrypt-staging" => Some("https://acme-staging-v02.api.letsencrypt.org/directory"),
            url if url.starts_with("https://") && url.len() > "https://".len() => Some(url),
            _ => None,
        }
    }
}

/// A DNS name: dot-separated labels of letters, digits and hyphens, not all digits (an
/// address), at most 253 characters.
fn is_dns_name(name: &str) -> bool {
    let labels: Vec<&str> = name.split('.').collect();
    name.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && !labels
            .last()
            .is_some_and(|l| l.chars().all(|c| c.is_ascii_digit()))
}

/// Why `name` cannot be one of `tls_names`, or `None`. The local CA may sign for each name and
/// everything below it: a wildcard, an address that means "any", or a public suffix (`com`,
/// `co.uk`, `com.kh`, from Mozilla's Public Suffix List) would let it sign for the world.
fn tls_name_problem(name: &str) -> Option<&'static str> {
    if let Ok(ip) = name.parse::<std::net::IpAddr>() {
        return (ip.is_unspecified() || ip.is_multicast())
            .then_some("an address must be one phones connect to (not 0.0.0.0, :: or multicast)");
    }
    if name.contains('*') {
        return Some("wildcards are not allowed: list each name (a name covers its subdomains)");
    }
    let single_label = !name.is_empty()
        && name.len() <= 63
        && !name.starts_with('-')
        && !name.ends_with('-')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !(single_label || is_dns_name(name)) || name.bytes().any(|b| b.is_ascii_uppercase()) {
        return Some(
            "each must be a lower-case DNS name (letters, digits, hyphens) or an IP address",
        );
    }
    if psl::suffix(name.as_bytes()).is_some_and(|s| s.is_known() && s.as_bytes() == name.as_bytes())
    {
        return Some(
            "a public suffix (such as com, org or com.kh) is not a name of this server: the local \
             CA could sign for every site under it",
        );
    }
    None
}

/// Options that may be absent from the serialised form (no default value).
const OPTIONAL_KEYS: [&str; 4] = ["tls_cert", "tls_key", "metrics_token", "acme_directory_ca"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_is_the_defaults() {
        let parsed: Config = toml::from_str(EXAMPLE).expect("the example parses");
        assert_eq!(parsed, Config::default());
        parsed.validate().expect("defaults are valid");
    }

    /// Parsing the example fills what it lacks with defaults (`#[serde(default)]`), so the test
    /// above cannot see an option missing from it: every option that has a default value must
    /// be written out in the example.
    #[test]
    fn example_writes_out_every_option() {
        let defaults = toml::Table::try_from(Config::default()).expect("the defaults serialise");
        let example: toml::Table = toml::from_str(EXAMPLE).expect("the example parses");
        let missing: Vec<&String> = defaults
            .keys()
            .filter(|k| !example.contains_key(*k))
            .collect();
        assert!(missing.is_empty(), "missing from the example: {missing:?}");
        assert!(
            ["listen", "data_dir", "max_frame_bytes"]
                .iter()
                .all(|k| defaults.contains_key(*k)),
            "the defaults serialise option by option: {:?}",
            defaults.keys().collect::<Vec<_>>()
        );
    }

    #[test]
    fn environment_overrides_file_and_typos_are_refused() {
        let mut c = Config::default();
        c.apply_env([
            ("SAKSI_LISTEN".to_string(), "0.0.0.0:9443".to_string()),
            ("SAKSI_DATA_DIR".to_string(), "/var/lib/saksi".to_string()),
            ("SAKSI_SESSION_DAYS".to_string(), "7".to_string()),
            ("SAKSI_LOG".to_string(), "debug".to_string()),
            ("HOME".to_string(), "/root".to_string()),
        ])
        .expect("valid overrides");
        assert_eq!(c.listen.port(), 9443);
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/saksi"));
        assert_eq!(c.session_days, 7);
        let mut with_token = Config::default();
        with_token
            .apply_env([(
                "SAKSI_METRICS_TOKEN".to_string(),
                "a-long-random-token-for-prometheus-1234".to_string(),
            )])
            .expect("token");
        assert!(
            !format!("{with_token:?}").contains("prometheus"),
            "redacted in Debug"
        );
        let err = Config::default()
            .apply_env([("SAKSI_SESION_DAYS".to_string(), "7".to_string())])
            .expect_err("typo refused");
        assert!(err.to_string().contains("SAKSI_SESION_DAYS"), "{err}");
        let err = Config::default()
            .apply_env([("SAKSI_SESSION_DAYS".to_string(), "many".to_string())])
            .expect_err("bad type refused");
        assert!(err.to_string().contains("session_days"), "{err}");
    }

    /// The local CA may sign for every name below each of `tls_names`: nothing that would
    /// cover other people's sites is accepted.
    #[test]
    fn tls_names_that_would_let_the_ca_sign_for_the_world_are_refused() {
        let with = |names: &[&str]| Config {
            tls_names: names.iter().map(|n| n.to_string()).collect(),
            ..Config::default()
        };
        for bad in [
            &[][..],
            &["*.saksi.example.org"],
            &["*"],
            &["com"],
            &["org"],
            &["co.uk"],
            &["com.kh"],
            &["0.0.0.0"],
            &["::"],
            &["224.0.0.1"],
            &[""],
            &["saksi.example.org."],
            &["Saksi.example.org"],
            &["saksi example"],
            &["localhost", "kh"],
        ] {
            let err = with(bad).validate().expect_err(&format!("{bad:?} refused"));
            assert!(err.to_string().contains("tls_names"), "{bad:?}: {err}");
        }
        for good in [
            &["localhost", "127.0.0.1"][..],
            &["saksi.example.org", "192.168.1.10", "fe80::1"],
            &["saksi-office"],
            &["saksi.lan", "office.internal"],
        ] {
            with(good)
                .validate()
                .expect("a server's own names are fine");
        }
        // ACME and certificate files do not use them for a CA.
        Config {
            tls: TlsMode::Files,
            tls_cert: Some("/etc/saksi/cert.pem".into()),
            tls_key: Some("/etc/saksi/key.pem".into()),
            tls_names: vec![],
            ..Config::default()
        }
        .validate()
        .expect("tls_names unused with certificate files");
    }

    #[test]
    fn weak_settings_are_refused() {
        let weak = [
            Config {
                tls: TlsMode::Off,
                listen: "0.0.0.0:80".parse().expect("addr"),
                ..Config::default()
            },
            Config {
                argon2_memory_kib: 4096,
                ..Config::default()
            },
            Config {
                session_days: 365,
                ..Config::default()
            },
            Config {
                ticket_seconds: 3600,
                ..Config::default()
            },
            Config {
                pin_min_length: 4,
                ..Config::default()
            },
            Config {
                time_zone: "Mars/Olympus_Mons".into(),
                ..Config::default()
            },
            Config {
                metrics_token: Some(Secret::new("short")),
                ..Config::default()
            },
            Config {
                tls: TlsMode::Files,
                ..Config::default()
            },
            Config {
                tls: TlsMode::Acme,
                ..Config::default()
            },
            Config {
                tls: TlsMode::Acme,
                acme_domains: vec!["192.168.1.10".into()],
                ..Config::default()
            },
            Config {
                tls: TlsMode::Acme,
                acme_domains: vec!["saksi.example.org".into()],
                acme_directory: "http://acme.example.org/directory".into(),
                ..Config::default()
            },
        ];
        for c in weak {
            assert!(c.validate().is_err(), "{c:?}");
        }
        let proxied = Config {
            tls: TlsMode::Off,
            listen: "127.0.0.1:8080".parse().expect("addr"),
            ..Config::default()
        };
        proxied.validate().expect("loopback plain HTTP is allowed");
        let acme = Config {
            tls: TlsMode::Acme,
            listen: "0.0.0.0:443".parse().expect("addr"),
            acme_domains: vec!["saksi.example.org".into()],
            acme_directory: "letsencrypt-staging".into(),
            ..Config::default()
        };
        acme.validate().expect("acme with a domain");
        assert_eq!(
            acme.acme_directory_url(),
            Some("https://acme-staging-v02.api.letsencrypt.org/directory")
        );
    }

    #[test]
    fn deploy_example_is_print_config() {
        // deploy/saksi.toml is `saksi print-config`: regenerate it when an option changes
        // (`saksi print-config > deploy/saksi.toml`).
        assert_eq!(
            include_str!("../../deploy/saksi.toml"),
            EXAMPLE,
            "deploy/saksi.toml differs from `saksi print-config`"
        );
    }
}
