//! The servers under test as child processes, and what `/proc` says about them.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

/// Which server a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Saksi,
    Node,
}

/// A running server.
#[derive(Debug)]
pub struct Server {
    pub kind: Kind,
    pub child: Child,
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
}

/// CPU time and memory of a process, from `/proc/<pid>/stat` and `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    /// User + system CPU seconds so far.
    pub cpu_seconds: f64,
    /// Peak resident set size (`VmHWM`), bytes.
    pub peak_rss: u64,
    /// Current resident set size (`VmRSS`), bytes.
    pub rss: u64,
}

/// Clock ticks per second for `/proc/<pid>/stat` (`getconf CLK_TCK`; 100 on Linux).
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

pub fn usage(pid: u32) -> Result<Usage> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // Fields after the command name (which may contain spaces) in parentheses.
    let after = stat.rsplit_once(')').context("malformed stat")?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    let utime: f64 = fields.get(11).context("utime")?.parse()?;
    let stime: f64 = fields.get(12).context("stime")?.parse()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = |name: &str| -> u64 {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok(Usage {
        cpu_seconds: (utime + stime) / clock_ticks(),
        peak_rss: kib("VmHWM:") * 1024,
        rss: kib("VmRSS:") * 1024,
    })
}

/// Resets the peak RSS (`VmHWM`) to the current RSS (`/proc/<pid>/clear_refs`, Linux ≥ 4.0),
/// so that a measured phase does not count the set-up before it. Best effort.
pub fn reset_peak(pid: u32) {
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

/// The environment for a child server: this process's, without `SAKSI_*` variables (the
/// server refuses unknown ones) other than those given.
fn clean_env(cmd: &mut Command) {
    for (name, _) in std::env::vars() {
        if name.starts_with("SAKSI_") {
            cmd.env_remove(name);
        }
    }
}

/// The Saksi server's log filter: `warn`, or `SAKSI_BENCH_SERVER_LOG` (say `info`, to see why
/// connections were closed: the server logs connection ids and reasons, never contents).
fn server_log_filter() -> String {
    std::env::var("SAKSI_BENCH_SERVER_LOG").unwrap_or_else(|_| "warn".to_owned())
}

/// Waits for a line on the child's stdout matching `pick`, draining the rest in the background.
fn wait_for_line(
    child: &mut Child,
    timeout: Duration,
    pick: impl Fn(&str) -> Option<String> + Send + 'static,
) -> Result<String> {
    let stdout = child.stdout.take().context("stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if !sent && let Some(found) = pick(&line) {
                let _ = tx.send(found);
                sent = true;
            }
        }
    });
    match rx.recv_timeout(timeout) {
        Ok(found) => Ok(found),
        Err(_) => {
            let _ = child.kill();
            bail!("the server did not start within {timeout:?}")
        }
    }
}

impl Server {
    /// Starts `saksi serve` on a free loopback port with `data_dir`, default configuration
    /// (TLS with its self-signed certificate, authentication, SQLite with `synchronous=FULL`).
    pub fn saksi(bin: &Path, data_dir: &Path, extra_env: &[(&str, &str)]) -> Result<Server> {
        let mut cmd = Command::new(bin);
        clean_env(&mut cmd);
        cmd.arg("serve")
            .env("SAKSI_DATA_DIR", data_dir)
            .env("SAKSI_LISTEN", "127.0.0.1:0")
            .env("SAKSI_LOG", server_log_filter())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let url = wait_for_line(&mut child, Duration::from_secs(120), |line| {
            line.strip_prefix("listening on ").map(str::to_owned)
        })?;
        let port: u16 = url
            .trim_end_matches('/')
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .context("port in the url")?;
        Ok(Server {
            kind: Kind::Saksi,
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            data_dir: data_dir.to_owned(),
        })
    }

    /// Starts `@automerge/automerge-repo-sync-server` (installed in `node_dir`) on `port`.
    pub fn node(node_dir: &Path, data_dir: &Path, port: u16) -> Result<Server> {
        let entry =
            node_dir.join("node_modules/@automerge/automerge-repo-sync-server/src/index.js");
        if !entry.exists() {
            bail!("{} is missing", entry.display());
        }
        let mut cmd = Command::new("node");
        clean_env(&mut cmd);
        cmd.arg(&entry)
            .current_dir(data_dir)
            .env("PORT", port.to_string())
            .env("DATA_DIR", data_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().context("starting node")?;
        wait_for_line(&mut child, Duration::from_secs(60), |line| {
            line.contains("Listening on port").then(|| line.to_owned())
        })?;
        // It says so before its WebSocket adapter is attached; a connection in that moment is
        // dropped.
        std::thread::sleep(Duration::from_secs(1));
        Ok(Server {
            kind: Kind::Node,
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            data_dir: data_dir.to_owned(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn usage(&self) -> Result<Usage> {
        usage(self.pid())
    }

    /// SIGTERM, then SIGKILL after `grace`.
    pub fn stop(mut self, grace: Duration) {
        let pid = self.pid().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = std::time::Instant::now() + grace;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A free TCP port on loopback (for the Node server, which takes a fixed `PORT`).
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Copies the files of `from` into a new directory `to` (one level: a data directory).
pub fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name()))?;
        }
    }
    Ok(())
}

/// The 1-minute load average.
pub fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0)
}

/// Runs `node script args...` (off the async runtime) with the browser trusting the local CA in
/// `ca_dir`, and returns the last JSON line it printed. A failed run is an error with its
/// standard error.
pub async fn node_json(
    script: &Path,
    ca_dir: &Path,
    args: Vec<String>,
) -> Result<serde_json::Value> {
    let (script, ca_dir) = (script.to_owned(), ca_dir.to_owned());
    let name = script.display().to_string();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(&script)
            .env("SAKSI_TEST_CA_DIR", &ca_dir)
            .args(&args)
            .output()
    })
    .await?
    .with_context(|| format!("running node {name}"))?;
    if !output.status.success() {
        bail!(
            "{name} failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .with_context(|| format!("no JSON from {name}"))?;
    Ok(serde_json::from_str(line)?)
}

/// The numbers of the JSON array `key` of `v` (empty when missing).
pub fn json_list(v: &serde_json::Value, key: &str) -> Vec<f64> {
    v[key]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x.as_f64()).collect())
        .unwrap_or_default()
}
