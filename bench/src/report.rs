//! The results table: medians over runs, ratios per run (Node ÷ Saksi, from the same run) and
//! their median, and whether each target is met.

use std::fmt::Write as _;

use crate::Options;
use crate::storm::StormResult;

/// Storm results of every run, per server.
#[derive(Debug, Default)]
pub struct Runs {
    pub saksi: Vec<StormResult>,
    pub node: Vec<StormResult>,
}

/// A target: the ratio (or Saksi's value) must be at least / at most a bound.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// Node ÷ Saksi at least this.
    RatioAtLeast(f64),
    /// Saksi's value at most this.
    AtMost(f64),
    /// Saksi's value below this.
    Below(f64),
}

#[derive(Debug, Clone)]
pub struct Row {
    pub scenario: String,
    pub metric: String,
    pub unit: &'static str,
    pub saksi: Option<f64>,
    pub node: Option<f64>,
    /// Median of the per-run ratios Node ÷ Saksi.
    pub ratio: Option<f64>,
    pub target: Option<Target>,
    /// Node's value and the ratio are lower bounds: in some run Node had not finished when the
    /// time limit (its value in that run) was reached.
    pub node_lower_bound: bool,
}

impl Row {
    fn met(&self) -> Option<bool> {
        match self.target? {
            // A lower bound shows the target met, never missed.
            Target::RatioAtLeast(x) if self.node_lower_bound => {
                self.ratio.and_then(|r| (r >= x).then_some(true))
            }
            Target::RatioAtLeast(x) => self.ratio.map(|r| r >= x),
            Target::AtMost(x) => self.saksi.map(|v| v <= x),
            Target::Below(x) => self.saksi.map(|v| v < x),
        }
    }

    fn target_text(&self) -> String {
        match self.target {
            None => String::new(),
            Some(Target::RatioAtLeast(x)) => format!("Node ÷ Saksi ≥ {x}"),
            Some(Target::AtMost(x)) => format!("≤ {}", fmt_num(x)),
            Some(Target::Below(x)) => format!("< {}", fmt_num(x)),
        }
    }
}

pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    })
}

fn fmt_num(x: f64) -> String {
    if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

#[derive(Debug)]
pub struct Report {
    config: String,
    machine: String,
    pub rows: Vec<Row>,
    pub notes: Vec<String>,
    loads: Vec<f64>,
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: u64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|| "no node".into());
    format!(
        "{cores} cores ({model}), {:.1} GiB RAM, Node {node}",
        mem_kib as f64 / 1024.0 / 1024.0
    )
}

impl Report {
    pub fn new(options: &Options) -> Report {
        Report {
            config: format!(
                "runs {} · (a) {} devices (both servers up to {}) × {} edits over {} documents · (c) {} stored documents{}",
                options.runs,
                options.devices,
                options.node_devices,
                options.edits,
                options.docs,
                options.stored,
                if options.quick { " · QUICK MODE" } else { "" }
            ),
            machine: machine(),
            rows: Vec::new(),
            notes: Vec::new(),
            loads: Vec::new(),
        }
    }

    pub fn note_load(&mut self, load: f64) {
        self.loads.push(load);
    }

    pub fn note(&mut self, text: impl Into<String>) {
        self.notes.push(text.into());
    }

    #[allow(clippy::too_many_arguments)]
    pub fn row(
        &mut self,
        scenario: &str,
        metric: &str,
        unit: &'static str,
        saksi: &[f64],
        node: &[f64],
        target: Option<Target>,
    ) {
        let ratios: Vec<f64> = saksi
            .iter()
            .zip(node)
            .filter(|(s, _)| **s > 0.0)
            .map(|(s, n)| n / s)
            .collect();
        self.rows.push(Row {
            scenario: scenario.into(),
            metric: metric.into(),
            unit,
            saksi: median(saksi),
            node: median(node),
            ratio: median(&ratios),
            target,
            node_lower_bound: false,
        });
    }

    pub fn storm(&mut self, n: usize, options: &Options, runs: Runs) {
        let scenario = format!(
            "(a) {n} devices × {} edits / {} docs",
            options.edits, options.docs
        );
        let get = |v: &[StormResult], f: fn(&StormResult) -> f64| -> Vec<f64> {
            v.iter().map(f).collect()
        };
        let both = !runs.node.is_empty();
        let converged = |r: &StormResult| r.converged == r.devices;
        let all_converged = runs.saksi.iter().all(converged);
        let node_converged = runs.node.iter().all(converged);
        let secs = |r: &StormResult| {
            if r.converged == r.devices {
                r.converge_seconds
            } else {
                f64::NAN
            }
        };
        // Where Saksi converged and Node had not by the time limit, Node's time is at least the
        // limit: the row says so ("> limit") rather than leaving the cell empty.
        let bounded = runs
            .node
            .iter()
            .zip(&runs.saksi)
            .any(|(node, saksi)| !converged(node) && converged(saksi));
        let node_secs: Vec<f64> = runs
            .node
            .iter()
            .zip(&runs.saksi)
            .map(|(node, saksi)| {
                if converged(node) || converged(saksi) {
                    node.converge_seconds
                } else {
                    f64::NAN
                }
            })
            .collect();
        self.row(
            &scenario,
            "time to full convergence",
            "s",
            &get(&runs.saksi, secs),
            &node_secs,
            both.then_some(Target::RatioAtLeast(3.0)),
        );
        if let Some(row) = self.rows.last_mut() {
            row.node_lower_bound = bounded;
        }
        self.row(
            &scenario,
            "server CPU during convergence",
            "s",
            &get(&runs.saksi, |r| r.cpu_seconds),
            &get(&runs.node, |r| r.cpu_seconds),
            None,
        );
        self.row(
            &scenario,
            "server peak RSS",
            "MB",
            &get(&runs.saksi, |r| r.peak_rss as f64 / 1e6),
            &get(&runs.node, |r| r.peak_rss as f64 / 1e6),
            both.then_some(Target::RatioAtLeast(3.0)),
        );
        for (metric, f) in [
            (
                "wire bytes up (TCP payload)",
                (|r: &StormResult| r.wire_up as f64 / 1e6) as fn(&StormResult) -> f64,
            ),
            ("wire bytes down (TCP payload)", |r| {
                r.wire_down as f64 / 1e6
            }),
            ("protocol bytes up (WS messages)", |r| {
                r.payload_up as f64 / 1e6
            }),
            ("protocol bytes down (WS messages)", |r| {
                r.payload_down as f64 / 1e6
            }),
        ] {
            self.row(
                &scenario,
                metric,
                "MB",
                &get(&runs.saksi, f),
                &get(&runs.node, f),
                None,
            );
        }
        self.row(
            &scenario,
            "live edit → other device, p50",
            "ms",
            &get(&runs.saksi, |r| r.latency_p50_ms),
            &get(&runs.node, |r| r.latency_p50_ms),
            None,
        );
        self.row(
            &scenario,
            "live edit → other device, p99",
            "ms",
            &get(&runs.saksi, |r| r.latency_p99_ms),
            &get(&runs.node, |r| r.latency_p99_ms),
            None,
        );
        if !all_converged || (both && !node_converged) {
            let said = |v: &[StormResult]| {
                v.iter()
                    .map(|r| format!("{}/{}", r.converged, r.devices))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let bounds = if both && !node_converged {
                " Where Node had not converged, its time is the limit and its ratio a lower \
                 bound (marked >), and its figures are those until the limit."
            } else {
                ""
            };
            self.note(format!(
                "{scenario}: not every run converged within the time limit (Saksi {}; Node {}).{bounds}",
                said(&runs.saksi),
                said(&runs.node)
            ));
        }
        let trouble: u64 = runs
            .saksi
            .iter()
            .chain(&runs.node)
            .map(|r| r.errors + r.reconnects)
            .sum();
        if trouble > 0 {
            let list = |v: &[StormResult]| {
                v.iter()
                    .map(|r| format!("{} errors, {} reconnects", r.errors, r.reconnects))
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            self.note(format!(
                "{scenario}: Saksi runs: {}. Node runs: {}.",
                list(&runs.saksi),
                list(&runs.node)
            ));
        }
        for (server, list) in [("Saksi", &runs.saksi), ("Node", &runs.node)] {
            for (i, r) in list.iter().enumerate() {
                if r.connect_failures.is_empty() {
                    continue;
                }
                let kinds = r
                    .connect_failures
                    .iter()
                    .map(|(kind, count)| format!("{count}× {kind}"))
                    .collect::<Vec<_>>()
                    .join("; ");
                self.note(format!(
                    "{scenario}: {server} run {}: failed connects, drops and error messages: {kinds}.",
                    i + 1
                ));
            }
        }
    }

    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "| scenario | metric | Saksi | Node | Node ÷ Saksi | target | met |"
        );
        let _ = writeln!(out, "|---|---|---:|---:|---:|---|---|");
        for row in &self.rows {
            let cell = |v: Option<f64>| match v {
                Some(x) => format!("{} {}", fmt_num(x), row.unit),
                None => "–".into(),
            };
            let at_least = if row.node_lower_bound { "> " } else { "" };
            let node = match row.node {
                Some(_) => format!("{at_least}{}", cell(row.node)),
                None => cell(None),
            };
            let ratio = row
                .ratio
                .map(|r| format!("{at_least}{}×", fmt_num(r)))
                .unwrap_or_else(|| "–".into());
            let met = match row.met() {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "",
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                row.scenario,
                row.metric,
                cell(row.saksi),
                node,
                ratio,
                row.target_text(),
                met
            );
        }
        out
    }

    pub fn print(&self) {
        println!("\n## Results\n");
        println!("Machine: {}", self.machine);
        println!("Settings: {}", self.config);
        if !self.loads.is_empty() {
            let max = self.loads.iter().copied().fold(0.0, f64::max);
            let mid = median(&self.loads).unwrap_or(f64::NAN);
            println!(
                "1-minute load average at the start of the {} measured runs: median {mid:.2}, at most {max:.2}",
                self.loads.len()
            );
        }
        println!("Medians of the runs; ratios are medians of per-run ratios (same run).\n");
        print!("{}", self.table());
        for note in &self.notes {
            println!("\n- {note}");
        }
    }

    pub fn json(&self) -> String {
        let rows: Vec<serde_json::Value> = self
            .rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "scenario": r.scenario, "metric": r.metric, "unit": r.unit,
                    "saksi": r.saksi, "node": r.node, "ratio": r.ratio,
                    "target": r.target_text(), "met": r.met(),
                    "node_lower_bound": r.node_lower_bound,
                })
            })
            .collect();
        serde_json::to_string_pretty(&serde_json::json!({
            "machine": self.machine, "settings": self.config, "rows": rows,
            "notes": self.notes, "load_averages": self.loads,
        }))
        .expect("json")
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;

    fn options() -> Options {
        Options {
            saksi: PathBuf::from("saksi"),
            node_dir: None,
            work: PathBuf::from("work"),
            runs: 1,
            quick: false,
            only: vec!['a'],
            devices: 1000,
            node_devices: 1000,
            edits: 100,
            docs: 10,
            storm_timeout: Duration::from_secs(1800),
            stored: 0,
            pwa_script: None,
            files_script: None,
            json: None,
            quiet_wait: Duration::ZERO,
        }
    }

    fn run(converged: usize, seconds: f64) -> StormResult {
        StormResult {
            devices: 1000,
            converged,
            converge_seconds: seconds,
            peak_rss: 500_000_000,
            ..StormResult::default()
        }
    }

    fn convergence_row(saksi: StormResult, node: StormResult) -> (String, Row) {
        let mut report = Report::new(&options());
        report.storm(
            1000,
            &options(),
            Runs {
                saksi: vec![saksi],
                node: vec![node],
            },
        );
        let line = report
            .table()
            .lines()
            .find(|l| l.contains("time to full convergence"))
            .expect("a convergence row")
            .to_owned();
        (line, report.rows[0].clone())
    }

    /// Node stopped at the limit while Saksi converged: its time and the ratio are shown as
    /// lower bounds, and a bound above the target counts as met.
    #[test]
    fn a_node_run_stopped_at_the_limit_is_a_lower_bound() {
        let (line, row) = convergence_row(run(1000, 223.0), run(0, 1800.0));
        assert!(line.contains("| > 1800 s |"), "{line}");
        assert!(line.contains("| > 8.07× |"), "{line}");
        assert_eq!(row.met(), Some(true));
    }

    /// A lower bound below the target says nothing either way: not met, not missed.
    #[test]
    fn a_lower_bound_below_the_target_is_not_a_miss() {
        let (line, row) = convergence_row(run(1000, 900.0), run(0, 1800.0));
        assert!(line.contains("| > 2.00× |"), "{line}");
        assert_eq!(row.met(), None);
    }

    /// Both converged: plain figures, and a ratio under the target is a miss.
    #[test]
    fn both_converged_is_a_plain_ratio() {
        let (line, row) = convergence_row(run(1000, 100.0), run(1000, 200.0));
        assert!(line.contains("| 200 s | 2.00× |"), "{line}");
        assert_eq!(row.met(), Some(false));
    }

    /// Neither converged: no time and no ratio.
    #[test]
    fn neither_converged_has_no_ratio() {
        let (line, row) = convergence_row(run(10, 1800.0), run(0, 1800.0));
        assert!(line.contains("| – | – | – |"), "{line}");
        assert_eq!(row.met(), None);
    }
}
