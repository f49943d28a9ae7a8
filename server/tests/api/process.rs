//! The real `saksi` binary as a child process: `saksi serve` on a data directory, and
//! `saksi admin ...` commands, configured through `SAKSI_*` variables as an operator would.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use saksi_client::Client;
use saksi_server::accounts::Passwords;
use saksi_server::storage::prelude::*;
use saksi_server::storage::sqlite::SqliteStorage;
use saksi_shared::{DocumentId, Role};
use saksi_testkit::at;

use crate::helpers::PASSWORD;

/// A running `saksi serve`.
pub struct ServerProcess {
    pub child: Child,
    pub client: Client,
    /// Everything it printed on standard output.
    pub stdout: Arc<Mutex<Vec<String>>>,
}

/// `saksi` with a clean `SAKSI_*` environment plus `env`.
pub fn saksi_command(data_dir: &Path, env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_saksi"));
    for (name, _) in std::env::vars() {
        if name.starts_with("SAKSI_") {
            command.env_remove(name);
        }
    }
    command.env("SAKSI_DATA_DIR", data_dir);
    for (k, v) in env {
        command.env(k, v);
    }
    command
}

/// Starts `saksi serve` on `data_dir` (port 0, self-signed TLS), its log (standard error)
/// appended to `log`. Returns once it listens.
pub fn start(data_dir: &Path, log: &Path, env: &[(&str, &str)]) -> ServerProcess {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log file");
    let mut child = saksi_command(data_dir, env)
        .arg("serve")
        .env("SAKSI_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("server process starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let printed = Arc::new(Mutex::new(Vec::new()));
    let url = loop {
        let line = lines
            .next()
            .expect("the server printed its address")
            .expect("readable");
        printed.lock().expect("stdout").push(line.clone());
        if let Some(url) = line.strip_prefix("listening on ") {
            break url.to_owned();
        }
    };
    // Keep draining stdout so that the server never blocks on a full pipe.
    let sink = printed.clone();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            sink.lock().expect("stdout").push(line);
        }
    });
    let port: u16 = url
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port in the url");
    let cert = std::fs::read(data_dir.join("tls/ca.pem")).expect("certificate");
    let client = Client::new(
        format!("127.0.0.1:{port}").parse().expect("addr"),
        "localhost",
        &cert,
    )
    .expect("client");
    ServerProcess {
        child,
        client,
        stdout: printed,
    }
}

impl ServerProcess {
    /// SIGTERM, as systemd and docker stop a service, and waits for the graceful exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "SIGTERM sent");
        self.child.wait().expect("server exits")
    }
}

/// Runs `saksi admin ARGS` on `data_dir` with `stdin`, and returns what it did.
pub fn admin(data_dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = saksi_command(data_dir, &[])
        .arg("admin")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("saksi admin starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("stdin written");
    child.wait_with_output().expect("saksi admin ends")
}

/// Standard output and error of a finished command, for assertions.
pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Creates monitors (password [`PASSWORD`]) and a case with all of them, in a new database.
pub fn seed(data_dir: &Path, monitors: &[&str]) -> DocumentId {
    let storage = SqliteStorage::open(&data_dir.join("saksi.sqlite3")).expect("open");
    let hash = Passwords::new(19_456, 2).hash(PASSWORD).expect("hash");
    let mut ids = Vec::new();
    for name in monitors {
        ids.push(
            storage
                .create_user(name, Role::Monitor, &hash, at(0))
                .expect("user")
                .id,
        );
    }
    let case = saksi_server::admin::create_case(&storage, "ករណី ops", "admin", at(0)).expect("case");
    for id in ids {
        storage.add_member(&case, id).expect("member");
    }
    storage.close();
    case
}
