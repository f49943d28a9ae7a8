//! Every input the fuzzers ever found interesting: the seed corpora (`fuzz/corpus/<target>/`)
//! and every crasher, minimised (`fuzz/regressions/<target>/`). Each is replayed through the same
//! entry point the fuzz target uses and must be handled without a panic.
//!
//! To refresh the seeds after a protocol or schema change: `cargo xtask fixtures` (the generator
//! is `saksi_testkit::fixtures::write_fuzz_seeds`).

use std::path::{Path, PathBuf};

use saksi_testkit::fuzzing;

/// A fuzz target: its name and entry point.
type Target = (&'static str, fn(&[u8]));

const TARGETS: [Target; 4] = [
    ("protocol_decode", fuzzing::protocol_decode),
    ("sync_receive", fuzzing::sync_receive),
    ("document_load", fuzzing::document_load),
    ("malformed_change", fuzzing::malformed_change),
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_seed_and_crasher_is_handled_without_a_panic() {
    for (target, run) in TARGETS {
        let seeds = files(&fuzz_dir().join("corpus").join(target));
        assert!(
            seeds.len() >= 5,
            "{target}: seed corpus missing ({} files)",
            seeds.len()
        );
        let crashers = files(&fuzz_dir().join("regressions").join(target));
        for file in seeds.iter().chain(&crashers) {
            let data = std::fs::read(file).expect("readable");
            run(&data);
        }
    }
}

/// The malformed-change target's invariant over inputs of every shape, without the fuzzer: the
/// same entry point, pseudo-random bytes (so that this test does not depend on a corpus).
#[test]
fn malformed_changes_never_leave_a_record_unloadable() {
    let mut state: u64 = 0x5341_4b53_4920;
    for len in 0..2_000usize {
        let data: Vec<u8> = (0..len % 97)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                (state >> 33) as u8
            })
            .collect();
        fuzzing::malformed_change(&data);
    }
}
