//! # xtask
//!
//! Saksi's build and test tasks, written in Rust so that they run wherever rustup does
//! (`rust-toolchain.toml` pins the compiler and the wasm target). `.cargo/config.toml` makes
//! them `cargo xtask <task>`:
//!
//! - `wasm`: adds the `wasm32-unknown-unknown` target to the pinned toolchain if it lacks it
//!   (`rustup target add`), builds `pwa/wasm` for it with the `wasm-release` profile,
//!   generates the ES module with wasm-bindgen (the library, at the crate's exact version) into
//!   `pwa/dist/pkg/`, shrinks it with `wasm-opt` (npm `binaryen`, installed on demand under
//!   `target/tools/`; skipped with a warning without npm; its output is kept only if it is
//!   smaller gzipped) and prints raw and gzip sizes.
//! - `run [-- ARGS]`: `wasm`, then the server (`saksi serve ARGS`, release build).
//! - `test`: `wasm`, every Rust test (`cargo test --workspace --no-fail-fast`), then the
//!   browser tests (`node --test tests/browser/`, headless Debian Chromium through
//!   `playwright-core`, with `SAKSI_BIN` naming the debug server binary).
//! - `ci`: format check, clippy (`-D warnings`, native and wasm32), the wasm32 build of
//!   `shared`, then `test`. `.ci/run` installs Chromium and runs this.
//! - `bench [-- ARGS]`: `wasm`, the release `saksi` and `saksi-bench`, the peer server
//!   (`@automerge/automerge-repo-sync-server` from npm, installed into a temporary directory),
//!   then `saksi-bench ARGS` (see BENCHMARKS.md).
//! - `fixtures`: writes committed test data with the generators in `saksi-testkit`: the fuzz
//!   targets' seed corpora (`fuzz/corpus/`, refreshed after a protocol or schema change), and
//!   the schema version 1 record only if it is missing (it is never regenerated).
//!
//! Every step runs from the workspace root, in cargo's own target directory (so
//! `CARGO_TARGET_DIR` is honoured), and is timed.

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{Context, Result, bail};

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  wasm               build the PWA's wasm module into pwa/dist/pkg/ (and print its size)
  run [-- ARGS...]   wasm, then `saksi serve ARGS...` (release build)
  test               wasm, `cargo test --workspace`, then the browser tests
  ci                 fmt check, clippy, wasm32 build of shared, then test
  bench [-- ARGS...] wasm, release builds, the npm peer server, then `saksi-bench ARGS...`
                     (`cargo xtask bench -- --help` lists them; `-- --quick` for a quick look)
  fixtures           the fuzz seed corpora, and the schema version 1 record if it is missing

environment:
  SAKSI_CHROMIUM     the Chromium binary for browser tests (default /usr/bin/chromium)
  SAKSI_SKIP_WASM_OPT=1  do not run wasm-opt (faster local builds)";

const WASM_TARGET: &str = "wasm32-unknown-unknown";
const WASM_PROFILE: &str = "wasm-release";
const WASM_CRATE: &str = "saksi-wasm";
/// wasm-bindgen's name for the module: `saksi_wasm.js` and `saksi_wasm_bg.wasm`.
const WASM_NAME: &str = "saksi_wasm";
const SERVER_PACKAGE: &str = "saksi-server";
const SERVER_BIN: &str = "saksi";
/// The npm `binaryen` release whose `wasm-opt` shrinks the module.
const BINARYEN_VERSION: &str = "132.0.0";
/// Measured on this module (automerge + saksi-shared, already built with `opt-level = "z"`,
/// LTO, one codegen unit): `-O1` saves ~4 % raw and ~1 % gzip in ~20 s, while `-Os`/`-Oz`
/// save ~10 % raw but make the gzip ~10 % *larger* and take ~50 s.
const WASM_OPT_LEVEL: &str = "-O1";
/// What rustc's default wasm32 CPU emits; wasm-opt must accept (and may keep) exactly this.
const WASM_FEATURES: &[&str] = &[
    "--enable-bulk-memory",
    "--enable-bulk-memory-opt",
    "--enable-call-indirect-overlong",
    "--enable-multivalue",
    "--enable-mutable-globals",
    "--enable-nontrapping-float-to-int",
    "--enable-reference-types",
    "--enable-sign-ext",
];
const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";
/// The peer server the benchmarks compare against (npm), at a fixed version.
const PEER_SERVER: &str = "@automerge/automerge-repo-sync-server@0.2.8";
const BENCH_PACKAGE: &str = "saksi-bench";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let task = args.next();
    let mut rest: Vec<String> = args.collect();
    if rest.first().map(String::as_str) == Some("--") {
        rest.remove(0);
    }
    let needs_no_args = |task: &str| {
        if rest.is_empty() {
            Ok(())
        } else {
            Err(anyhow::anyhow!(
                "`{task}` takes no arguments (got {rest:?})\n\n{USAGE}"
            ))
        }
    };
    match task.as_deref() {
        Some("wasm") => {
            needs_no_args("wasm")?;
            Workspace::locate()?.wasm()
        }
        Some("run") => Workspace::locate()?.run(&rest),
        Some("test") => {
            needs_no_args("test")?;
            Workspace::locate()?.test()
        }
        Some("ci") => {
            needs_no_args("ci")?;
            Workspace::locate()?.ci()
        }
        Some("bench") => Workspace::locate()?.bench(&rest),
        Some("fixtures") => {
            needs_no_args("fixtures")?;
            Workspace::locate()?.fixtures()
        }
        Some("help" | "-h" | "--help") | None => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => bail!("unknown task `{other}`\n\n{USAGE}"),
    }
}

/// The workspace as cargo sees it.
struct Workspace {
    root: PathBuf,
    target: PathBuf,
    cargo: PathBuf,
    has_server: bool,
}

impl Workspace {
    fn locate() -> Result<Self> {
        let cargo = std::env::var_os("CARGO")
            .map(PathBuf::from)
            .unwrap_or_else(|| "cargo".into());
        // xtask lives one level below the workspace root.
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .context("xtask has no parent directory")?
            .to_path_buf();
        let output = Command::new(&cargo)
            .args(["metadata", "--format-version", "1", "--no-deps"])
            .current_dir(&root)
            .output()
            .context("running `cargo metadata`")?;
        if !output.status.success() {
            bail!(
                "`cargo metadata` failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let metadata: serde_json::Value =
            serde_json::from_slice(&output.stdout).context("reading `cargo metadata`")?;
        let target = metadata["target_directory"]
            .as_str()
            .context("`cargo metadata` names no target directory")?
            .into();
        let has_server = metadata["packages"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["name"] == SERVER_PACKAGE));
        Ok(Workspace {
            root,
            target,
            cargo,
            has_server,
        })
    }

    fn cargo(&self, args: &[&str]) -> Result<()> {
        let mut cmd = Command::new(&self.cargo);
        cmd.args(args);
        self.step(cmd)
    }

    /// Runs a command from the workspace root, echoing and timing it.
    fn step(&self, mut cmd: Command) -> Result<()> {
        cmd.current_dir(&self.root);
        let shown = show(&cmd);
        println!("\n$ {shown}");
        let started = Instant::now();
        let status = cmd
            .status()
            .with_context(|| format!("could not start `{shown}`"))?;
        let took = started.elapsed().as_secs_f64();
        if !status.success() {
            bail!("`{shown}` failed ({status}) after {took:.1} s");
        }
        println!("xtask: `{shown}` took {took:.1} s");
        Ok(())
    }

    /// Makes sure the pinned toolchain has the wasm target. rustup installs the targets of
    /// `rust-toolchain.toml` only when it installs the toolchain itself: on a machine that
    /// already had 1.95.0 (seen on a fresh CI machine), the wasm build failed for want of
    /// `core`. A no-op when the target is there, and skipped without rustup.
    fn ensure_wasm_target(&self) -> Result<()> {
        if Command::new("rustup").arg("--version").output().is_err() {
            return Ok(());
        }
        let mut add = Command::new("rustup");
        add.args(["target", "add", WASM_TARGET]);
        self.step(add)
    }

    fn wasm(&self) -> Result<()> {
        let started = Instant::now();
        self.ensure_wasm_target()?;
        self.cargo(&[
            "build",
            "-p",
            WASM_CRATE,
            "--target",
            WASM_TARGET,
            "--profile",
            WASM_PROFILE,
        ])?;
        let input = self
            .target
            .join(WASM_TARGET)
            .join(WASM_PROFILE)
            .join(format!("{}.wasm", WASM_CRATE.replace('-', "_")));
        let out = self.root.join("pwa/dist/pkg");
        if out.exists() {
            fs::remove_dir_all(&out).with_context(|| format!("removing {}", out.display()))?;
        }
        fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;

        println!("\nxtask: wasm-bindgen --target web {}", input.display());
        let bindgen_started = Instant::now();
        wasm_bindgen_cli_support::Bindgen::new()
            .input_path(&input)
            .out_name(WASM_NAME)
            .web(true)?
            .typescript(true)
            // `init()` with no argument loads `saksi_wasm_bg.wasm` beside the JS.
            .omit_default_module_path(false)
            .remove_name_section(true)
            .remove_producers_section(true)
            .generate(&out)
            .with_context(|| format!("wasm-bindgen on {}", input.display()))?;
        println!(
            "xtask: wasm-bindgen took {:.1} s",
            bindgen_started.elapsed().as_secs_f64()
        );

        let wasm = out.join(format!("{WASM_NAME}_bg.wasm"));
        if std::env::var_os("SAKSI_SKIP_WASM_OPT").is_some_and(|v| v == "1") {
            println!("xtask: SAKSI_SKIP_WASM_OPT=1: not running wasm-opt");
        } else if let Some(wasm_opt) = self.wasm_opt()? {
            let optimised = out.join(format!("{WASM_NAME}_bg.opt.wasm"));
            let mut cmd = Command::new(wasm_opt);
            cmd.arg(WASM_OPT_LEVEL)
                .args(WASM_FEATURES)
                .arg(&wasm)
                .arg("-o")
                .arg(&optimised);
            self.step(cmd)?;
            let before = fs::read(&wasm)?;
            let after = fs::read(&optimised)?;
            let (before_gz, after_gz) = (gzip_len(&before)?, gzip_len(&after)?);
            println!(
                "xtask: wasm-opt {WASM_OPT_LEVEL}: {} -> {} raw, {} -> {} gzip",
                before.len(),
                after.len(),
                before_gz,
                after_gz
            );
            // What the phone downloads is the compressed module: keep the smaller one.
            if after_gz <= before_gz {
                fs::rename(&optimised, &wasm)?;
            } else {
                println!("xtask: wasm-opt's output is larger compressed; keeping the original");
                fs::remove_file(&optimised)?;
            }
        }

        println!();
        for name in [format!("{WASM_NAME}_bg.wasm"), format!("{WASM_NAME}.js")] {
            let path = out.join(&name);
            let bytes = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            println!(
                "xtask: pwa/dist/pkg/{name}: {} raw, {} gzip",
                human(bytes.len()),
                human(gzip_len(&bytes)?)
            );
        }
        println!(
            "xtask: wasm done in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }

    /// `wasm-opt` from npm's `binaryen`, installed under `target/tools/` on first use. `None`
    /// (with a warning) when npm is not there.
    fn wasm_opt(&self) -> Result<Option<PathBuf>> {
        let tools = self.target.join("tools");
        let wasm_opt = tools.join("node_modules/.bin/wasm-opt");
        let installed = tools.join("node_modules/binaryen/package.json");
        let right_version = fs::read_to_string(&installed)
            .ok()
            .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
            .is_some_and(|p| p["version"] == BINARYEN_VERSION);
        if wasm_opt.exists() && right_version {
            return Ok(Some(wasm_opt));
        }
        if !works(Command::new("npm").arg("--version")) {
            println!(
                "xtask: warning: npm not found, so wasm-opt is skipped and the wasm is larger \
                 than it could be (install Node.js and npm to shrink it)"
            );
            return Ok(None);
        }
        fs::create_dir_all(&tools)?;
        // A package.json of its own, so npm does not walk up into another project.
        fs::write(
            tools.join("package.json"),
            "{\"private\": true, \"description\": \"build tools installed by cargo xtask\"}\n",
        )?;
        let mut cmd = Command::new("npm");
        cmd.args([
            "install",
            "--no-audit",
            "--no-fund",
            "--no-save",
            "--prefix",
        ])
        .arg(&tools)
        .arg(format!("binaryen@{BINARYEN_VERSION}"));
        self.step(cmd)
            .context("installing wasm-opt (npm binaryen)")?;
        if !wasm_opt.exists() {
            bail!(
                "npm installed binaryen but {} is missing",
                wasm_opt.display()
            );
        }
        Ok(Some(wasm_opt))
    }

    /// Writes committed test data (see the module docs).
    fn fixtures(&self) -> Result<()> {
        self.cargo(&[
            "run",
            "-q",
            "-p",
            "saksi-testkit",
            "--example",
            "fixtures",
            "--",
            "all",
            "shared/tests/fixtures/court_observation_v1.automerge",
            "fuzz",
        ])
    }

    fn run(&self, server_args: &[String]) -> Result<()> {
        if !self.has_server {
            bail!("the workspace has no `{SERVER_PACKAGE}` package yet: nothing to run");
        }
        self.wasm()?;
        let mut args = vec![
            "run",
            "--release",
            "-p",
            SERVER_PACKAGE,
            "--bin",
            SERVER_BIN,
            "--",
            "serve",
        ];
        args.extend(server_args.iter().map(String::as_str));
        self.cargo(&args)
    }

    fn test(&self) -> Result<()> {
        let started = Instant::now();
        // Check what the browser tests need first, not after twenty minutes of building.
        let chromium = std::env::var("SAKSI_CHROMIUM").unwrap_or_else(|_| DEFAULT_CHROMIUM.into());
        if !Path::new(&chromium).exists() {
            bail!(
                "the browser tests need Chromium at {chromium}: install it with \
                 `apt-get install chromium` (or set SAKSI_CHROMIUM)"
            );
        }
        // The browser tests trust the server's local CA in Chromium's NSS database, as a user does.
        // (`certutil -H` prints its help and exits 1: being able to start it is enough.)
        if Command::new("certutil").arg("-H").output().is_err() {
            bail!(
                "the browser tests need `certutil` to trust the test server's CA in Chromium: \
                 install it with `apt-get install libnss3-tools`"
            );
        }
        for tool in ["node", "npm"] {
            if !works(Command::new(tool).arg("--version")) {
                bail!("the browser tests need `{tool}` (Node.js 20 or newer) on the PATH");
            }
        }

        self.wasm()?;
        // Every test binary runs, so one failure does not hide the others.
        self.cargo(&["test", "--workspace", "--no-fail-fast"])?;
        let server_bin = if self.has_server {
            // Debug, like the tests above: it reuses their build.
            self.cargo(&["build", "-p", SERVER_PACKAGE, "--bin", SERVER_BIN])?;
            Some(self.target.join("debug").join(SERVER_BIN))
        } else {
            println!(
                "xtask: warning: no `{SERVER_PACKAGE}` package in the workspace yet: \
                 SAKSI_BIN is not set and browser tests that need the server will fail"
            );
            None
        };

        let browser = self.root.join("tests/browser");
        let mut install = Command::new("npm");
        if browser.join("package-lock.json").exists() {
            install.args(["ci", "--no-audit", "--no-fund"]);
        } else {
            install.args(["install", "--no-audit", "--no-fund"]);
        }
        install.arg("--prefix").arg(&browser);
        self.step(install)?;

        let mut node = Command::new("node");
        node.args(["--test", "tests/browser/"])
            .env("SAKSI_CHROMIUM", &chromium);
        if let Some(bin) = server_bin {
            node.env("SAKSI_BIN", bin);
        }
        self.step(node)?;
        println!(
            "\nxtask: all tests passed in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }

    /// Builds everything the benchmarks run, installs the peer server from npm into a
    /// temporary directory and runs `saksi-bench` with `args`.
    fn bench(&self, args: &[String]) -> Result<()> {
        if args.iter().any(|a| a == "-h" || a == "--help") {
            self.cargo(&["run", "--release", "-p", BENCH_PACKAGE, "--", "--help"])?;
            return Ok(());
        }
        for tool in ["node", "npm"] {
            if !works(Command::new(tool).arg("--version")) {
                bail!("the benchmarks need `{tool}` (Node.js 20 or newer) on the PATH");
            }
        }
        self.wasm()?;
        self.cargo(&[
            "build",
            "--release",
            "-p",
            SERVER_PACKAGE,
            "--bin",
            SERVER_BIN,
        ])?;
        // Separately: `--bin` would apply to both packages.
        self.cargo(&["build", "--release", "-p", BENCH_PACKAGE])?;
        // The PWA benchmark drives Chromium through the browser tests' playwright-core.
        let browser = self.root.join("tests/browser");
        if !browser.join("node_modules/playwright-core").exists() {
            let mut install = Command::new("npm");
            if browser.join("package-lock.json").exists() {
                install.args(["ci", "--no-audit", "--no-fund"]);
            } else {
                install.args(["install", "--no-audit", "--no-fund"]);
            }
            install.arg("--prefix").arg(&browser);
            self.step(install)?;
        }
        let node_dir =
            std::env::temp_dir().join(format!("saksi-bench-node-{}", std::process::id()));
        fs::create_dir_all(&node_dir)?;
        fs::write(
            node_dir.join("package.json"),
            "{\"private\": true, \"description\": \"peer server for cargo xtask bench\"}\n",
        )?;
        let mut install = Command::new("npm");
        install
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(&node_dir)
            .arg(PEER_SERVER);
        let result = self
            .step(install)
            .context("installing the peer server (npm)")
            .and_then(|()| {
                let release = self.target.join("release");
                let mut cmd = Command::new(release.join(BENCH_PACKAGE));
                cmd.arg("--saksi")
                    .arg(release.join(SERVER_BIN))
                    .arg("--node-dir")
                    .arg(&node_dir)
                    .arg("--pwa-script")
                    .arg(self.root.join("bench/pwa.mjs"))
                    .arg("--files-script")
                    .arg(self.root.join("bench/files.mjs"))
                    .args(args);
                self.step(cmd)
            });
        let _ = fs::remove_dir_all(&node_dir);
        result
    }

    fn ci(&self) -> Result<()> {
        let started = Instant::now();
        self.ensure_wasm_target()?;
        self.cargo(&["fmt", "--all", "--", "--check"])?;
        self.cargo(&[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ])?;
        self.cargo(&[
            "clippy",
            "-p",
            WASM_CRATE,
            "--target",
            WASM_TARGET,
            "--",
            "-D",
            "warnings",
        ])?;
        self.cargo(&["build", "-p", "saksi-shared", "--target", WASM_TARGET])?;
        self.test()?;
        println!(
            "\nxtask: ci passed in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }
}

/// Whether a command can be started and succeeds (for probing tools).
fn works(cmd: &mut Command) -> bool {
    cmd.output().is_ok_and(|o| o.status.success())
}

fn show(cmd: &Command) -> String {
    let program = Path::new(cmd.get_program())
        .file_name()
        .unwrap_or(OsStr::new("?"))
        .to_string_lossy()
        .into_owned();
    let args: Vec<_> = cmd.get_args().map(|a| a.to_string_lossy()).collect();
    if args.is_empty() {
        program
    } else {
        format!("{program} {}", args.join(" "))
    }
}

fn gzip_len(bytes: &[u8]) -> Result<usize> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes)?;
    Ok(encoder.finish()?.len())
}

/// `1 661 234 B (1.58 MiB)`.
fn human(bytes: usize) -> String {
    let kib = bytes as f64 / 1024.0;
    if kib < 1024.0 {
        format!("{bytes} B ({kib:.1} KiB)")
    } else {
        format!("{bytes} B ({:.2} MiB)", kib / 1024.0)
    }
}
