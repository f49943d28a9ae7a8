//! Scenario (d): the PWA. Gzip transfer size of the app shell and the wasm module, and the
//! first load and the offline repeat load in headless Chromium on a slow-3G profile.
//!
//! The measuring is `bench/pwa.mjs` (playwright-core from `tests/browser/`, Debian Chromium),
//! run against the release `saksi` serving the PWA; it makes `--runs` fresh phone contexts and
//! prints JSON, medians of which go into the table. Saksi only: the peer server serves no app.

use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

use crate::Options;
use crate::proc::Server;
use crate::report::{Report, Target};
use crate::setup;

pub async fn scenario(options: &Options, report: &mut Report) -> Result<()> {
    let Some(script) = &options.pwa_script else {
        report
            .note("(d) PWA: not run (no --pwa-script; `cargo xtask bench` passes bench/pwa.mjs).");
        return Ok(());
    };
    println!("\n== (d) PWA: shell + wasm gzip size, slow-3G first load, offline reload");
    crate::quiet_machine(options, report).await;
    let dir = setup::fresh_dir(&options.work, "d-data")?;
    let server = Server::saksi(&options.saksi, &dir, &[])?;
    let url = format!("https://127.0.0.1:{}", server.addr.port());
    let runs = options.runs.max(if options.quick { 1 } else { 5 });
    let script = script.clone();
    let ca_dir = dir.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(&script)
            // The browser trusts this server's local CA (bench/pwa.mjs).
            .env("SAKSI_TEST_CA_DIR", &ca_dir)
            .args(["--url", &url, "--runs", &runs.to_string()])
            .output()
    })
    .await?
    .context("running node bench/pwa.mjs")?;
    server.stop(Duration::from_secs(30));
    if !output.status.success() {
        bail!(
            "bench/pwa.mjs failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .context("no JSON from bench/pwa.mjs")?;
    let v: serde_json::Value = serde_json::from_str(line)?;
    let num = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    let list = |k: &str| -> Vec<f64> {
        v[k].as_array()
            .map(|a| a.iter().filter_map(|x| x.as_f64()).collect())
            .unwrap_or_default()
    };
    println!("saksi-bench: (d) {line}");
    let scenario = "(d) PWA, headless Chromium";
    let (shell, wasm) = (num("shell_gzip_bytes"), num("wasm_gzip_bytes"));
    report.row(scenario, "app shell, gzip", "kB", &[shell / 1e3], &[], None);
    report.row(
        scenario,
        "wasm module, gzip",
        "kB",
        &[wasm / 1e3],
        &[],
        None,
    );
    report.row(
        scenario,
        "shell + wasm, gzip",
        "kB",
        &[(shell + wasm) / 1e3],
        &[],
        Some(Target::AtMost(700.0)),
    );
    let first = list("first_load_ms");
    report.row(scenario, "first load, slow 3G", "ms", &first, &[], None);
    report.row(
        scenario,
        "offline repeat load (reload)",
        "ms",
        &list("offline_reload_ms"),
        &[],
        Some(Target::Below(1000.0)),
    );
    report.note(format!(
        "(d): {} runs in fresh phone contexts; sizes are bytes on the wire with \
         `accept-encoding: gzip`, 1 kB = 1,000 B (wasm sent as {}).",
        first.len(),
        v["wasm_encoding"].as_str().unwrap_or("?")
    ));
    Ok(())
}
