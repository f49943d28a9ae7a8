//! For the browser tests only (`tests/browser/pwa-shell.test.mjs`): issues a server
//! certificate from a data directory's local CA for any names, without the check that
//! `saksi admin renew-certificate` makes, so that a test can show a real browser refusing one
//! for a name outside the CA's constraints. It needs the CA key's passphrase, like an attacker
//! who has the key would. Not part of the `saksi` binary.
//!
//! usage: forge_certificate DATA_DIR OUT_DIR NAME...   (the passphrase on standard input)
//! writes OUT_DIR/cert.pem and OUT_DIR/key.pem

use std::io::BufRead as _;
use std::path::PathBuf;

use anyhow::Context as _;
use saksi_server::tls::local_ca::{Paths, issue_from};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(data_dir), Some(out)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: forge_certificate DATA_DIR OUT_DIR NAME... (passphrase on stdin)");
    };
    let names: Vec<String> = args.collect();
    anyhow::ensure!(!names.is_empty(), "name at least one name");
    let mut passphrase = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut passphrase)
        .context("reading the passphrase")?;
    let paths = Paths::new(&PathBuf::from(data_dir));
    let (cert, key) = issue_from(&paths, &names, passphrase.trim())?;
    let out = PathBuf::from(out);
    std::fs::write(out.join("cert.pem"), cert)?;
    std::fs::write(out.join("key.pem"), key)?;
    Ok(())
}
