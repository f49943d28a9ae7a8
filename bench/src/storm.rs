//! Scenario (a): the reconnect storm, and the live-edit latency once everything has merged.
//!
//! Every device opens its WebSocket at the same moment (Saksi: TLS, bearer token from the
//! earlier login; the peer server: plain WebSocket, no authentication), says `join`, and syncs
//! its documents with a [`LightDoc`] each. Convergence is when every device's heads equal the
//! expected heads of every document. Then the live edits: one device at a time makes an edit and
//! the time until each other device has it is recorded.
//!
//! A device whose connection fails or drops reconnects until the run is over, as a phone does;
//! why each attempt failed is counted by kind and printed with the results, and a line on
//! stderr each minute says how many devices are connected and converged.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use saksi_client::{Client, Meter, SyncSocket};
use saksi_shared::DocumentId;
use saksi_shared::protocol::{Message, PROTOCOL_VERSION, PeerMetadata};
use tokio::sync::mpsc;

use crate::light::LightDoc;
use crate::proc::{Kind, Server, reset_peak};
use crate::workload::Workload;

/// How often a storm says how far it has got (on stderr), for runs that take minutes.
const PROGRESS_EVERY: Duration = Duration::from_secs(60);

/// How to reach the server under test.
#[derive(Debug, Clone)]
pub struct Target {
    pub kind: Kind,
    pub client: Client,
}

impl Target {
    pub async fn open(&self, token: Option<&str>) -> Result<SyncSocket, saksi_client::ClientError> {
        match (self.kind, token) {
            (Kind::Saksi, Some(token)) => {
                let auth = format!("Bearer {token}");
                self.client
                    .open_socket("/sync", &[("Authorization", &auth)])
                    .await
            }
            _ => self.client.open_socket("/", &[]).await,
        }
    }
}

/// What one storm run measured.
#[derive(Debug, Clone, Default)]
pub struct StormResult {
    pub devices: usize,
    pub converged: usize,
    /// From the moment every device starts connecting until the last one has every change.
    pub converge_seconds: f64,
    /// Server CPU (user + system) during the convergence.
    pub cpu_seconds: f64,
    /// Server peak RSS during storm and live edits.
    pub peak_rss: u64,
    /// TCP payload bytes, load generator → server and back (TLS, HTTP upgrade, framing
    /// included).
    pub wire_up: u64,
    pub wire_down: u64,
    /// WebSocket message payload bytes (the protocol's own bytes), each way.
    pub payload_up: u64,
    pub payload_down: u64,
    /// Live edit → another device, milliseconds.
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
    pub latency_samples: usize,
    pub reconnects: u64,
    pub errors: u64,
    /// Why connection attempts failed and connections dropped, by kind, with counts (see
    /// [`Shared::failed`]).
    pub connect_failures: BTreeMap<String, u64>,
}

/// State shared by the device tasks and the conductor.
#[derive(Debug, Default)]
struct Shared {
    converged: AtomicUsize,
    payload_up: AtomicU64,
    payload_down: AtomicU64,
    reconnects: AtomicU64,
    errors: AtomicU64,
    /// Devices with an open connection that has had the server's `peer`.
    connected: AtomicUsize,
    /// Why attempts to connect failed and connections dropped, by kind, counted.
    connect_failures: Mutex<BTreeMap<String, u64>>,
    /// Set when the run is over: devices still trying to connect stop.
    stopping: AtomicBool,
    /// Live edit (doc, change index) → (number, when it was sent).
    live_sent: Mutex<HashMap<(usize, u32), Instant>>,
    live_arrived: Mutex<HashMap<(usize, u32), usize>>,
    latencies: Mutex<Vec<Duration>>,
}

impl Shared {
    /// Counts one failed connection attempt or dropped connection, by kind.
    fn failed(&self, kind: String) {
        *self
            .connect_failures
            .lock()
            .expect("failures lock")
            .entry(failure_kind(&kind))
            .or_default() += 1;
    }
}

/// The kind of a failure, from its message: a number becomes `N`, so that ports, sizes and
/// addresses do not split one kind into many, except an OS error code, which names the kind.
/// At most 120 bytes, cut at a character boundary.
fn failure_kind(message: &str) -> String {
    const ERRNO: &str = "os error ";
    const LIMIT: usize = 120;
    let mut kind = String::with_capacity(message.len().min(LIMIT));
    let mut chars = message.chars().peekable();
    while let Some(c) = chars.next() {
        if !c.is_ascii_digit() {
            kind.push(c);
            continue;
        }
        let keep = kind.ends_with(ERRNO);
        kind.push(if keep { c } else { 'N' });
        while let Some(digit) = chars.next_if(char::is_ascii_digit) {
            if keep {
                kind.push(digit);
            }
        }
    }
    if kind.len() > LIMIT {
        let mut end = LIMIT;
        while !kind.is_char_boundary(end) {
            end -= 1;
        }
        kind.truncate(end);
    }
    kind
}

enum Command {
    LiveEdit { doc: usize, idx: u32 },
    Stop,
}

struct DeviceRun {
    n: usize,
    target: Target,
    work: Arc<Workload>,
    shared: Arc<Shared>,
    docs: Vec<LightDoc>,
    by_id: Arc<HashMap<DocumentId, usize>>,
    converged: bool,
}

impl DeviceRun {
    fn join(&self) -> Vec<u8> {
        let device = &self.work.devices[self.n];
        Message::Join {
            sender_id: device.peer_id.clone().into(),
            supported_protocol_versions: vec![PROTOCOL_VERSION.to_owned()],
            metadata: Some(PeerMetadata {
                storage_id: Some(format!("{}-storage", device.peer_id)),
                is_ephemeral: false,
            }),
        }
        .encode()
    }

    fn sync_frame(&self, server: &str, doc: usize, data: Vec<u8>) -> Vec<u8> {
        Message::Sync {
            sender_id: self.work.devices[self.n].peer_id.clone().into(),
            target_id: server.to_owned().into(),
            document_id: self.work.docs[doc],
            data,
        }
        .encode()
    }

    async fn send(&self, socket: &mut SyncSocket, frame: Vec<u8>) -> Result<(), ()> {
        self.shared
            .payload_up
            .fetch_add(frame.len() as u64, Ordering::Relaxed);
        socket.send(frame).await.map_err(|_| ())
    }

    /// Connects and says `join`; returns the socket and the server's peer id. Like a phone, a
    /// device keeps trying until the run is over (`None`), waiting longer after each failure
    /// (0.25 s doubling to 8 s, with jitter so that failed devices do not retry in step).
    async fn connect(&self) -> Option<(SyncSocket, String)> {
        let token = self.work.devices[self.n].token.as_deref();
        let mut wait = Duration::from_millis(250);
        let mut attempt: u64 = 0;
        loop {
            if self.shared.stopping.load(Ordering::Relaxed) {
                return None;
            }
            if attempt > 0 {
                self.shared.reconnects.fetch_add(1, Ordering::Relaxed);
                let jitter = (self.n as u64 * 7919 + attempt * 104_729) % 1000;
                tokio::time::sleep(wait.mul_f64(0.5 + jitter as f64 / 2000.0)).await;
                wait = (wait * 2).min(Duration::from_secs(8));
            }
            attempt += 1;
            let mut socket = match self.target.open(token).await {
                Ok(socket) => socket,
                Err(e) => {
                    self.shared.failed(format!("open: {e}"));
                    continue;
                }
            };
            if self.send(&mut socket, self.join()).await.is_err() {
                self.shared.failed("join: send failed".into());
                continue;
            }
            let frame = match socket.recv_timeout(Duration::from_secs(120)).await {
                Ok(Some(frame)) => frame,
                Ok(None) => {
                    self.shared.failed("peer: closed before it".into());
                    continue;
                }
                Err(e) => {
                    self.shared.failed(format!("peer: {e}"));
                    continue;
                }
            };
            self.shared
                .payload_down
                .fetch_add(frame.len() as u64, Ordering::Relaxed);
            match Message::decode(&frame) {
                Ok(Message::Peer { sender_id, .. }) => {
                    return Some((socket, sender_id.to_string()));
                }
                _ => self.shared.failed("peer: another message first".into()),
            }
        }
    }

    fn check_converged(&mut self) {
        if !self.converged && self.docs.iter().all(LightDoc::converged) {
            self.converged = true;
            self.shared.converged.fetch_add(1, Ordering::SeqCst);
        }
    }

    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        while let Some((socket, server)) = self.connect().await {
            self.shared.connected.fetch_add(1, Ordering::Relaxed);
            let stop = self.connected(socket, &server, &mut commands).await;
            self.shared.connected.fetch_sub(1, Ordering::Relaxed);
            if stop {
                return;
            }
        }
    }

    /// Syncs over one connection until it drops (`false`: reconnect) or the run stops (`true`).
    async fn connected(
        &mut self,
        mut socket: SyncSocket,
        server: &str,
        commands: &mut mpsc::UnboundedReceiver<Command>,
    ) -> bool {
        for x in 0..self.docs.len() {
            self.docs[x].reset_sync();
            if let Some(data) = self.docs[x].generate() {
                let frame = self.sync_frame(server, x, data);
                if self.send(&mut socket, frame).await.is_err() {
                    self.shared.failed("dropped: send failed".into());
                    return false;
                }
            }
        }
        loop {
            tokio::select! {
                frame = socket.recv() => {
                    // Dropped (the peer server drops peers that miss its pings while this
                    // machine is saturated): reconnect and carry on.
                    let frame = match frame {
                        Ok(Some(frame)) => frame,
                        Ok(None) => {
                            self.shared.failed("dropped: closed by the server".into());
                            return false;
                        }
                        Err(e) => {
                            self.shared.failed(format!("dropped: {e}"));
                            return false;
                        }
                    };
                    self.shared.payload_down.fetch_add(frame.len() as u64, Ordering::Relaxed);
                    let Ok(message) = Message::decode(&frame) else {
                        self.shared.errors.fetch_add(1, Ordering::Relaxed);
                        continue;
                    };
                    let (document_id, data) = match message {
                        Message::Sync { document_id, data, .. }
                        | Message::Request { document_id, data, .. } => (document_id, data),
                        Message::Error { message, .. } => {
                            self.shared.errors.fetch_add(1, Ordering::Relaxed);
                            self.shared.failed(format!("error message: {message}"));
                            continue;
                        }
                        Message::DocUnavailable { .. } => {
                            self.shared.errors.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        _ => continue,
                    };
                    let Some(&x) = self.by_id.get(&document_id) else { continue };
                    match self.docs[x].receive(&data) {
                        Ok(received) => {
                            if received.unknown > 0 {
                                self.shared.errors.fetch_add(1, Ordering::Relaxed);
                            }
                            self.note_arrivals(x, &received.new);
                        }
                        Err(_) => {
                            self.shared.errors.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                    }
                    if let Some(data) = self.docs[x].generate() {
                        let frame = self.sync_frame(server, x, data);
                        if self.send(&mut socket, frame).await.is_err() {
                            self.shared.failed("dropped: send failed".into());
                            return false;
                        }
                    }
                    self.check_converged();
                }
                command = commands.recv() => {
                    match command {
                        Some(Command::LiveEdit { doc, idx }) => {
                            self.docs[doc].add(idx);
                            if let Some(data) = self.docs[doc].generate() {
                                let frame = self.sync_frame(server, doc, data);
                                if self.send(&mut socket, frame).await.is_err() {
                                    self.shared.failed("dropped: send failed".into());
                                    return false;
                                }
                            }
                        }
                        Some(Command::Stop) | None => {
                            socket.close().await;
                            return true;
                        }
                    }
                }
            }
        }
    }

    fn note_arrivals(&self, doc: usize, new: &[u32]) {
        if new.is_empty() {
            return;
        }
        let now = Instant::now();
        let sent = self.shared.live_sent.lock().expect("live lock");
        if sent.is_empty() {
            return;
        }
        for idx in new {
            if let Some(at) = sent.get(&(doc, *idx)) {
                self.shared
                    .latencies
                    .lock()
                    .expect("latency lock")
                    .push(now - *at);
                *self
                    .shared
                    .live_arrived
                    .lock()
                    .expect("arrived lock")
                    .entry((doc, *idx))
                    .or_default() += 1;
            }
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1000.0
}

/// Runs the storm against `server` (already holding the base documents), then the live edits.
pub async fn run(
    server: &Server,
    target: Target,
    work: Arc<Workload>,
    timeout: Duration,
) -> Result<StormResult> {
    let meter = Arc::new(Meter::default());
    let target = Target {
        kind: target.kind,
        client: target.client.with_meter(meter.clone()),
    };
    let shared = Arc::new(Shared::default());
    let by_id: Arc<HashMap<DocumentId, usize>> =
        Arc::new(work.docs.iter().enumerate().map(|(i, d)| (*d, i)).collect());
    let n = work.devices.len();

    // Everything the devices hold is prepared before the clock starts.
    let mut runs = Vec::with_capacity(n);
    for i in 0..n {
        let docs = (0..work.docs.len())
            .map(|x| LightDoc::new(work.tables[x].clone(), &work.own[i][x]))
            .collect();
        runs.push(DeviceRun {
            n: i,
            target: target.clone(),
            work: work.clone(),
            shared: shared.clone(),
            docs,
            by_id: by_id.clone(),
            converged: false,
        });
    }

    let pid = server.pid();
    reset_peak(pid);
    let before = server.usage()?;
    let started = Instant::now();
    let mut commands = Vec::with_capacity(n);
    let mut tasks = Vec::with_capacity(n);
    for run in runs {
        let (tx, rx) = mpsc::unbounded_channel();
        commands.push(tx);
        tasks.push(tokio::spawn(run.run(rx)));
    }
    let deadline = started + timeout;
    let mut next_report = started + PROGRESS_EVERY;
    while shared.converged.load(Ordering::SeqCst) < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
        if Instant::now() >= next_report {
            next_report += PROGRESS_EVERY;
            eprintln!(
                "  {:.0} s: {} of {n} devices converged, {} connected, {} reconnects",
                started.elapsed().as_secs_f64(),
                shared.converged.load(Ordering::SeqCst),
                shared.connected.load(Ordering::Relaxed),
                shared.reconnects.load(Ordering::Relaxed),
            );
        }
    }
    let converge_seconds = started.elapsed().as_secs_f64();
    let after = server.usage()?;
    let converged = shared.converged.load(Ordering::SeqCst);
    let (wire_up, wire_down) = (meter.sent(), meter.received());
    let (payload_up, payload_down) = (
        shared.payload_up.load(Ordering::Relaxed),
        shared.payload_down.load(Ordering::Relaxed),
    );

    // Live edits, one at a time, each waited for on every other device.
    if converged == n && n > 1 {
        for edit in &work.live {
            let key = (edit.doc, edit.idx);
            shared
                .live_sent
                .lock()
                .expect("live lock")
                .insert(key, Instant::now());
            let _ = commands[edit.device].send(Command::LiveEdit {
                doc: edit.doc,
                idx: edit.idx,
            });
            let wait_until = Instant::now() + Duration::from_secs(30);
            loop {
                let arrived = shared
                    .live_arrived
                    .lock()
                    .expect("arrived lock")
                    .get(&key)
                    .copied()
                    .unwrap_or(0);
                if arrived >= n - 1 || Instant::now() > wait_until {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }
    let peak_rss = server.usage()?.peak_rss;
    shared.stopping.store(true, Ordering::Relaxed);
    for tx in &commands {
        let _ = tx.send(Command::Stop);
    }
    for mut task in tasks {
        if tokio::time::timeout(Duration::from_secs(10), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
    let mut latencies = shared.latencies.lock().expect("latency lock").clone();
    latencies.sort();
    Ok(StormResult {
        devices: n,
        converged,
        converge_seconds,
        cpu_seconds: after.cpu_seconds - before.cpu_seconds,
        peak_rss,
        wire_up,
        wire_down,
        payload_up,
        payload_down,
        latency_p50_ms: percentile(&latencies, 50.0),
        latency_p99_ms: percentile(&latencies, 99.0),
        latency_samples: latencies.len(),
        reconnects: shared.reconnects.load(Ordering::Relaxed),
        errors: shared.errors.load(Ordering::Relaxed),
        connect_failures: shared
            .connect_failures
            .lock()
            .expect("failures lock")
            .clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::failure_kind;

    #[test]
    fn a_failure_kind_keeps_the_os_error_code_and_folds_other_numbers() {
        assert_eq!(
            failure_kind("open: network: Connection timed out (os error 110)"),
            "open: network: Connection timed out (os error 110)"
        );
        assert_eq!(
            failure_kind("open: connect 127.0.0.1:40211 refused (os error 111)"),
            "open: connect N.N.N.N:N refused (os error 111)"
        );
        assert_eq!(
            failure_kind("error message: frame of 70000 bytes"),
            failure_kind("error message: frame of 81234 bytes")
        );
    }

    #[test]
    fn a_failure_kind_is_cut_at_a_character_boundary() {
        // 119 ASCII bytes and then a three-byte character across the 120-byte limit.
        let message = format!("{}សាក្សី", "x".repeat(119));
        let kind = failure_kind(&message);
        assert_eq!(kind, "x".repeat(119));
    }
}
