//! Scenario (d): the PWA. Gzip transfer size of the app shell and the wasm module, and the
//! first load and the offline repeat load in headless Chromium on a slow-3G profile.
//!
//! The measuring is `bench/pwa.mjs` (playwright-core from `tests/browser/`, Debian Chromium),
//! run against the release `saksi` serving the PWA; it makes `--runs` fresh phone contexts and
//! prints JSON, medians of which go into the table. Saksi only: the peer server serves no app.

use std::time::Duration;

use anyhow::Result;

use crate::Options;
use crate::proc::{Server, json_list, node_json};
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
    // The browser trusts this server's local CA (bench/pwa.mjs).
    let args = vec![
        "--url".to_owned(),
        url,
        "--runs".to_owned(),
        runs.to_string(),
    ];
    let result = node_json(script, &dir, args).await;
    server.stop(Duration::from_secs(30));
    let v = result?;
    let num = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    let list = |k: &str| json_list(&v, k);
    println!("saksi-bench: (d) {v}");
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
