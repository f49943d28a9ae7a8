//! The `saksi` binary: `serve`, `print-config`, `admin ...`.

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;

use anyhow::Context as _;
use saksi_server::config::{Config, LogFormat};
use saksi_server::{Application, admin};

const HELP: &str = "\
saksi: offline-first sync server for human-rights monitoring records

usage:
  saksi serve [--config FILE]       run the server (HTTPS, data in SAKSI_DATA_DIR or ./data)
  saksi print-config                print a commented configuration file with every option
  saksi admin <command> [options]   manage users, devices and cases (saksi admin help)
  saksi --version

Settings: defaults < --config FILE < SAKSI_* environment variables (see print-config).
Log level: SAKSI_LOG (e.g. info, debug). Log format: log_format = text | json.
";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = run(&args) {
        eprintln!("saksi: {e:#}");
        std::process::exit(1);
    }
}

/// Splits `--config FILE` out of the arguments.
fn config_arg(args: &[String]) -> anyhow::Result<(Option<PathBuf>, Vec<String>)> {
    let mut rest = Vec::new();
    let mut config = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--config" {
            config = Some(PathBuf::from(it.next().context("--config needs a file")?));
        } else {
            rest.push(a.clone());
        }
    }
    Ok((config, rest))
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SAKSI_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,actix_server=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn run(args: &[String]) -> anyhow::Result<()> {
    let (config_file, rest) = config_arg(args)?;
    let command = rest.first().map(String::as_str).unwrap_or("help");
    match command {
        "help" | "--help" | "-h" => {
            print!("{HELP}");
            Ok(())
        }
        "--version" | "-V" => {
            println!("saksi {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        "print-config" => {
            print!("{}", saksi_server::config::EXAMPLE);
            Ok(())
        }
        "serve" => {
            let config = Config::load(config_file.as_deref())?;
            init_logging(config.log_format);
            serve(config)
        }
        "admin" => {
            let sub = rest.get(1).map(String::as_str).unwrap_or("help");
            if matches!(sub, "help" | "--help" | "-h") {
                print!("{}", admin::USAGE);
                return Ok(());
            }
            let config = Config::load(config_file.as_deref())?;
            if matches!(sub, "backup" | "restore") {
                let mut out = std::io::stdout();
                saksi_server::backup::command(sub, &rest[2..], &config, &mut out)?;
                out.flush()?;
                return Ok(());
            }
            let storage = saksi_server::app::open_storage(&config)?;
            let stdin = std::io::stdin();
            let mut out = std::io::stdout();
            // A secret typed at a terminal is not echoed; piped in, it is read as it comes.
            if let Some(prompt) = admin::secret_prompt(sub).filter(|_| stdin.is_terminal()) {
                let secret =
                    rpassword::prompt_password(prompt).context("reading from the terminal")?;
                let mut input = std::io::Cursor::new(format!("{secret}\n").into_bytes());
                admin::run(sub, &rest[2..], &config, &*storage, &mut input, &mut out)?;
            } else {
                let mut input = stdin.lock();
                admin::run(sub, &rest[2..], &config, &*storage, &mut input, &mut out)?;
            }
            out.flush()?;
            Ok(())
        }
        other => anyhow::bail!("unknown command `{other}`\n\n{HELP}"),
    }
}

#[tokio::main]
async fn serve(config: Config) -> anyhow::Result<()> {
    let app = Application::build(config.clone()).await?;
    let report = app.report().clone();
    let mut out = std::io::stdout();
    writeln!(out, "listening on {}", report.url)?;
    if let Some(trust) = &report.trust {
        print_local_ca(&mut out, &config, &report, trust)?;
    } else if let Some(fp) = &report.tls_fingerprint {
        if report.certificate_generated {
            writeln!(
                out,
                "generated a self-signed TLS certificate in {}",
                config.data_dir.display()
            )?;
        }
        writeln!(out, "TLS certificate SHA-256 fingerprint: {fp}")?;
    }
    if config.tls == saksi_server::config::TlsMode::Acme {
        writeln!(
            out,
            "TLS certificate for {} from the ACME directory {} (kept in {})",
            config.acme_domains.join(", "),
            config.acme_directory_url().unwrap_or_default(),
            saksi_server::tls::acme_cache_dir(&config.data_dir).display()
        )?;
    }
    if let Some(password) = &report.first_admin_password {
        writeln!(out)?;
        writeln!(
            out,
            "First start: created the account `admin` with this one-time password:"
        )?;
        writeln!(out, "    {password}")?;
        writeln!(
            out,
            "It is shown only now. Sign in at {}console and change it.",
            report.url
        )?;
        writeln!(out)?;
    }
    out.flush()?;
    app.run_until_stopped().await?;
    Ok(())
}

/// What an operator needs about the local CA: its fingerprint, on first start its key's
/// passphrase, and the one step that makes this machine's Chromium trust it.
fn print_local_ca(
    out: &mut impl std::io::Write,
    config: &Config,
    report: &saksi_server::app::StartReport,
    trust: &saksi_server::tls::local_ca::Trust,
) -> anyhow::Result<()> {
    use saksi_server::tls::local_ca;
    let ca_path = local_ca::Paths::new(&config.data_dir).ca_cert();
    let ca_path = std::fs::canonicalize(&ca_path).unwrap_or(ca_path);
    let expires = time::OffsetDateTime::from_unix_timestamp(trust.server_not_after)
        .map(|t| t.date().to_string())
        .unwrap_or_else(|_| "?".into());
    if report.certificate_generated {
        writeln!(
            out,
            "made a local certificate authority for {} in {}",
            trust.names.join(", "),
            ca_path.parent().unwrap_or(&ca_path).display()
        )?;
    }
    writeln!(
        out,
        "local CA certificate SHA-256 fingerprint: {}",
        trust.ca_fingerprint
    )?;
    if let Some(passphrase) = &report.new_ca_passphrase {
        writeln!(out)?;
        writeln!(
            out,
            "The CA key's passphrase, shown only now. Write it down and keep it offline: \
             `saksi admin renew-certificate` needs it before the server certificate expires \
             on {expires}."
        )?;
        writeln!(out, "    {passphrase}")?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "To trust it in Chromium on this machine (once; certutil is in Debian's libnss3-tools):"
    )?;
    writeln!(
        out,
        "    certutil -d sql:$HOME/.pki/nssdb -A -t \"C,,\" -n \"Saksi local CA\" -i {}",
        ca_path.display()
    )?;
    writeln!(
        out,
        "then restart Chromium and open {}. Phones: sign in to {}console, open Certificate.",
        report.url, report.url
    )?;
    for name in &trust.uncovered {
        writeln!(
            out,
            "warning: the server certificate does not cover `{name}` from tls_names: run \
             `saksi admin renew-certificate`"
        )?;
    }
    let days_left =
        (trust.server_not_after - time::OffsetDateTime::now_utc().unix_timestamp()) / 86_400;
    if days_left < local_ca::WARN_DAYS {
        writeln!(
            out,
            "warning: the server certificate expires on {expires} ({days_left} days): run \
             `saksi admin renew-certificate`"
        )?;
    }
    Ok(())
}
