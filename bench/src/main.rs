//! # saksi-bench
//!
//! Saksi's benchmarks, side by side with `@automerge/automerge-repo-sync-server` (Node) on the
//! same workload, machine and run. `cargo xtask bench` builds everything, installs the Node
//! server into a temporary directory and runs this; see BENCHMARKS.md.
//!
//! - (a) [`storm`]: N devices with K offline edits each over D shared documents reconnect at
//!   once: time to full convergence, server CPU and peak RSS, bytes on the wire, then the
//!   latency of live edits to the other devices.
//! - (b) [`reconnect`]: one device reconnects after 1,000 offline edits on one document: bytes
//!   on the wire against the compressed size of those changes.
//! - (c) [`cold`]: 100,000 stored documents, 100 in use: server RSS and the time to open a cold
//!   1,000-change document.
//! - (d) [`pwa`]: gzip transfer size of the app shell and wasm, first and offline repeat load
//!   in headless Chromium on a slow-3G profile.
//! - (e) [`upload`]: attached files: 20 phones uploading 50 MB each at once (throughput, server
//!   RSS), a connection dropped at 50 % (bytes sent again), and the phone's memory while a
//!   100 MB file is hashed and encrypted (headless Chromium).

mod cold;
mod light;
mod proc;
mod pwa;
mod reconnect;
mod report;
mod setup;
mod storm;
mod upload;
mod workload;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::proc::{Kind, Server, copy_dir, free_port, loadavg};
use crate::report::{Report, Runs};
use crate::workload::{Rng, base_documents, generate};

const USAGE: &str = "\
usage: saksi-bench --saksi BIN [--node-dir DIR] [options]

  --saksi BIN          the saksi server binary (release build)
  --node-dir DIR       where @automerge/automerge-repo-sync-server is installed (npm);
                       without it, Saksi runs alone
  --work DIR           scratch directory (default: a new one under /tmp)
  --quick              small scale, one run each (a quick look, not the figures)
  --runs N             runs of each scenario (default 3; medians reported)
  --only LIST          scenarios to run, e.g. a,b (default a,b,c,d,e)
  --devices N          (a) devices (default 100; at 1000 the Node server does not
                       converge within 10 minutes: see BENCHMARKS.md)
  --node-devices N     (a) largest scale run on both servers (default: --devices)
  --edits K            (a) offline edits per device (default 5)
  --docs D             (a) shared documents (default 10)
  --storm-timeout S    (a) give up on convergence after S seconds (default 900)
  --stored N           (c) stored documents (default 100000)
  --pwa-script FILE    (d) bench/pwa.mjs
  --files-script FILE  (e) bench/files.mjs
  --quiet-wait S       wait up to S seconds before each measured run for the 1-minute load
                       average to drop below 1.5 (default 3600; the report records it)
  --json FILE          also write the results as JSON

The Saksi server logs at `warn` to this program's stderr; set SAKSI_BENCH_SERVER_LOG=info to
see each connection's opening and closing, with the reason.";

#[derive(Debug, Clone)]
pub struct Options {
    saksi: PathBuf,
    node_dir: Option<PathBuf>,
    work: PathBuf,
    runs: usize,
    quick: bool,
    only: Vec<char>,
    devices: usize,
    node_devices: usize,
    edits: usize,
    docs: usize,
    storm_timeout: Duration,
    stored: usize,
    pwa_script: Option<PathBuf>,
    files_script: Option<PathBuf>,
    json: Option<PathBuf>,
    quiet_wait: Duration,
}

fn parse_args() -> Result<Options> {
    let mut args = std::env::args().skip(1);
    let mut saksi = None;
    let mut node_dir = None;
    let mut work = None;
    let mut runs = None;
    let mut quick = false;
    let mut only = vec!['a', 'b', 'c', 'd', 'e'];
    let mut devices = None;
    let mut node_devices = None;
    let mut edits = None;
    let mut docs = None;
    let mut storm_timeout = 900;
    let mut stored = None;
    let mut pwa_script = None;
    let mut files_script = None;
    let mut json = None;
    let mut quiet_wait = 3600;
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--saksi" => saksi = Some(PathBuf::from(value()?)),
            "--node-dir" => node_dir = Some(PathBuf::from(value()?)),
            "--work" => work = Some(PathBuf::from(value()?)),
            "--runs" => runs = Some(value()?.parse()?),
            "--quick" => quick = true,
            "--only" => {
                only = value()?
                    .split(',')
                    .filter_map(|s| s.chars().next())
                    .collect()
            }
            "--devices" => devices = Some(value()?.parse()?),
            "--node-devices" => node_devices = Some(value()?.parse()?),
            "--edits" => edits = Some(value()?.parse()?),
            "--docs" => docs = Some(value()?.parse()?),
            "--storm-timeout" => storm_timeout = value()?.parse()?,
            "--stored" => stored = Some(value()?.parse()?),
            "--pwa-script" => pwa_script = Some(PathBuf::from(value()?)),
            "--files-script" => files_script = Some(PathBuf::from(value()?)),
            "--json" => json = Some(PathBuf::from(value()?)),
            "--quiet-wait" => quiet_wait = value()?.parse()?,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument `{other}`\n\n{USAGE}"),
        }
    }
    let devices = devices.unwrap_or(if quick { 50 } else { 100 });
    let work = match work {
        Some(w) => w,
        None => std::env::temp_dir().join(format!("saksi-bench-{}", std::process::id())),
    };
    std::fs::create_dir_all(&work)?;
    Ok(Options {
        saksi: saksi.context("--saksi BIN is required")?,
        node_dir,
        work,
        runs: runs.unwrap_or(if quick { 1 } else { 3 }),
        quick,
        only,
        devices,
        node_devices: node_devices.unwrap_or(devices).min(devices),
        edits: edits.unwrap_or(if quick { 20 } else { 5 }),
        docs: docs.unwrap_or(10),
        storm_timeout: Duration::from_secs(storm_timeout),
        stored: stored.unwrap_or(if quick { 2_000 } else { 100_000 }),
        pwa_script,
        files_script,
        json,
        quiet_wait: Duration::from_secs(quiet_wait),
    })
}

fn main() -> Result<()> {
    let options = parse_args()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let started = Instant::now();
    let mut report = Report::new(&options);
    let result = runtime.block_on(run_all(&options, &mut report));
    report.print();
    if let Some(path) = &options.json {
        std::fs::write(path, report.json())?;
    }
    println!(
        "\nsaksi-bench: finished in {:.1} min",
        started.elapsed().as_secs_f64() / 60.0
    );
    let _ = std::fs::remove_dir_all(&options.work);
    result
}

/// Waits (up to `--quiet-wait`) for the 1-minute load average to drop below 1.5 before a
/// measured run, so that other work on the machine does not end up in the figures; the report
/// records the load average at the start of every measured run.
pub async fn quiet_machine(options: &Options, report: &mut Report) {
    let deadline = Instant::now() + options.quiet_wait;
    let mut said = false;
    while loadavg() > 1.5 && Instant::now() < deadline {
        if !said {
            println!(
                "saksi-bench: load average {:.2}: waiting for a quieter machine",
                loadavg()
            );
            said = true;
        }
        tokio::time::sleep(Duration::from_secs(15)).await;
    }
    report.note_load(loadavg());
}

async fn run_all(options: &Options, report: &mut Report) -> Result<()> {
    if options.only.contains(&'a') {
        storm_scenario(options, report).await?;
    }
    if options.only.contains(&'b') {
        reconnect::scenario(options, report).await?;
    }
    if options.only.contains(&'c') {
        cold::scenario(options, report).await?;
    }
    if options.only.contains(&'d') {
        pwa::scenario(options, report).await?;
    }
    if options.only.contains(&'e') {
        upload::scenario(options, report).await?;
    }
    Ok(())
}

/// Scenario (a), at `--node-devices` on both servers and, if larger, `--devices` on Saksi
/// alone.
async fn storm_scenario(options: &Options, report: &mut Report) -> Result<()> {
    let n_max = options.devices;
    println!(
        "\n== (a) reconnect storm: {n_max} devices × {} edits over {} documents",
        options.edits, options.docs
    );
    // Accounts, logins and base documents, once: the template every Saksi run copies.
    let template = setup::fresh_dir(&options.work, "a-template")?;
    let (names, case) = setup::accounts_and_case(&template, n_max)?;
    let server = Server::saksi(&options.saksi, &template, &[])?;
    let client = setup::saksi_client(&server)?;
    let t = Instant::now();
    let devices = setup::login_all(&client, &names, 11).await?;
    println!(
        "saksi-bench: {} logins in {:.1} s (before the measured phase)",
        devices.len(),
        t.elapsed().as_secs_f64()
    );
    let mut rng = Rng::new(5);
    let (docs, base) = base_documents(&mut rng, case, options.docs, &devices[0]);
    let uploads: Vec<_> = docs.iter().copied().zip(base.iter().cloned()).collect();
    setup::upload(&server, &client, &devices[0], &uploads).await?;
    server.stop(Duration::from_secs(30));

    let mut scales = vec![options.node_devices];
    if n_max > options.node_devices {
        scales.push(n_max);
    }
    for &n in &scales {
        let t = Instant::now();
        let work = Arc::new(generate(
            docs.clone(),
            base.clone(),
            devices[..n].to_vec(),
            options.edits,
            if options.quick { 10 } else { 30 },
            17,
        ));
        let changes: usize = work.tables.iter().map(|t| t.len()).sum();
        println!(
            "saksi-bench: workload for {n} devices: {changes} changes, generated in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        let with_node = options.node_dir.is_some() && n <= options.node_devices;
        let mut runs = Runs::default();
        for r in 0..options.runs {
            quiet_machine(options, report).await;
            // Saksi: a copy of the template, default configuration.
            let dir = setup::fresh_dir(&options.work, "a-saksi")?;
            copy_dir(&template, &dir)?;
            let server = Server::saksi(&options.saksi, &dir, &[])?;
            let target = storm::Target {
                kind: Kind::Saksi,
                client: setup::saksi_client(&server)?,
            };
            let result = storm::run(&server, target, work.clone(), options.storm_timeout).await?;
            println!("saksi-bench: (a) run {} Saksi n={n}: {result:?}", r + 1);
            server.stop(Duration::from_secs(60));
            runs.saksi.push(result);
            if with_node {
                let node_dir = options.node_dir.as_ref().expect("checked");
                let dir = setup::fresh_dir(&options.work, "a-node")?;
                let server = Server::node(node_dir, &dir, free_port()?)?;
                let client = saksi_client::Client::plain(server.addr);
                setup::upload(&server, &client, &work.devices[0], &uploads).await?;
                let target = storm::Target {
                    kind: Kind::Node,
                    client,
                };
                let result =
                    storm::run(&server, target, work.clone(), options.storm_timeout).await?;
                println!("saksi-bench: (a) run {} Node n={n}: {result:?}", r + 1);
                server.stop(Duration::from_secs(10));
                runs.node.push(result);
            }
        }
        report.storm(n, options, runs);
    }
    Ok(())
}
