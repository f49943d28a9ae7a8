//! The `saksi` binary: `serve`, `print-config`, `admin <command>` (`saksi --help`).

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use saksi_server::config::{Config, LogFormat};
use saksi_server::{Application, admin};

/// saksi: offline-first sync server for human-rights monitoring records.
#[derive(Debug, Parser)]
#[command(
    name = "saksi",
    version,
    arg_required_else_help = true,
    after_help = "Settings: defaults < --config FILE < SAKSI_* environment variables (see \
                  print-config).\nLog level: SAKSI_LOG (e.g. info, debug). Log format: \
                  log_format = text | json."
)]
struct Cli {
    /// A configuration file (TOML; `saksi print-config` writes one with every option).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the server (HTTPS; data in SAKSI_DATA_DIR or ./data).
    Serve,
    /// Prints a commented configuration file with every option and its default.
    PrintConfig,
    /// Manages users, devices, cases, purges, the certificate and backups.
    Admin {
        #[command(subcommand)]
        command: admin::cli::Command,
    },
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("saksi: {e:#}");
        std::process::exit(1);
    }
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

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::PrintConfig => {
            print!("{}", saksi_server::config::EXAMPLE);
            Ok(())
        }
        Command::Serve => {
            let config = Config::load(cli.config.as_deref())?;
            init_logging(config.log_format);
            serve(config)
        }
        Command::Admin { command } => {
            let config = Config::load(cli.config.as_deref())?;
            run_admin(command, &config)
        }
    }
}

fn run_admin(command: admin::cli::Command, config: &Config) -> anyhow::Result<()> {
    use admin::cli::Command as Admin;
    let mut out = std::io::stdout();
    match &command {
        Admin::Backup { file } => saksi_server::backup::backup_command(config, file, &mut out)?,
        Admin::Restore { file, force } => {
            saksi_server::backup::restore_command(config, file, *force, &mut out)?
        }
        _ => {
            let storage = saksi_server::app::open_storage(config)?;
            let stdin = std::io::stdin();
            // A secret typed at a terminal is not echoed; piped in, it is read as it comes.
            if let Some(prompt) = command.secret_prompt().filter(|_| stdin.is_terminal()) {
                let secret =
                    rpassword::prompt_password(prompt).context("reading from the terminal")?;
                let mut input = std::io::Cursor::new(format!("{secret}\n").into_bytes());
                admin::cli::run(command, config, &*storage, &mut input, &mut out)?;
            } else {
                admin::cli::run(command, config, &*storage, &mut stdin.lock(), &mut out)?;
            }
        }
    }
    out.flush()?;
    Ok(())
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
    let expires = time::OffsetDateTime::from_unix_timestamp(trust.server_not_after.as_secs())
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
    let days_left = (trust.server_not_after.as_secs()
        - time::OffsetDateTime::now_utc().unix_timestamp())
        / 86_400;
    if days_left < local_ca::WARN_DAYS {
        writeln!(
            out,
            "warning: the server certificate expires on {expires} ({days_left} days): run \
             `saksi admin renew-certificate`"
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn the_command_line_is_consistent_and_keeps_its_shape() {
        Cli::command().debug_assert();
        // What scripts, the README and the tests type.
        for line in [
            "saksi serve",
            "saksi serve --config saksi.toml",
            "saksi --config saksi.toml admin list-users",
            "saksi admin --config saksi.toml list-users",
            "saksi admin list-users --config saksi.toml",
            "saksi admin backup /tmp/b.saksi-backup",
            "saksi admin restore /tmp/b.saksi-backup --force",
            "saksi print-config",
        ] {
            Cli::try_parse_from(line.split_whitespace()).unwrap_or_else(|e| panic!("{line}: {e}"));
        }
        let cli = Cli::try_parse_from(["saksi", "admin", "list-users", "--config", "x.toml"])
            .expect("parses");
        assert_eq!(cli.config.as_deref(), Some(std::path::Path::new("x.toml")));
        assert!(Cli::try_parse_from(["saksi", "admin"]).is_err());
        assert!(Cli::try_parse_from(["saksi", "frobnicate"]).is_err());
    }
}
