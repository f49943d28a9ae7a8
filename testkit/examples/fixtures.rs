//! Writes committed test data (run by `cargo xtask fixtures`, from the workspace root):
//!
//! ```text
//! fixtures record-v1 FILE        the schema version 1 record, only if FILE is missing and the
//!                                schema is still version 1
//! fixtures fuzz-seeds DIR V1     the fuzz targets' seed corpora under DIR/corpus/, with the
//!                                version 1 record at V1 among them
//! fixtures all V1 DIR            both
//! ```

use std::path::Path;
use std::process::ExitCode;

use saksi_shared::schema::CURRENT_SCHEMA_VERSION;
use saksi_testkit::fixtures;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["record-v1", file] => record_v1(Path::new(file)),
        ["fuzz-seeds", dir, v1] => fuzz_seeds(dir, v1),
        ["all", v1, dir] => record_v1(Path::new(v1))
            .and_then(|done| Ok(format!("{done}\n{}", fuzz_seeds(dir, v1)?))),
        _ => Err(
            "usage: fixtures record-v1 FILE | fixtures fuzz-seeds DIR V1 | fixtures all V1 DIR"
                .into(),
        ),
    };
    match result {
        Ok(done) => {
            println!("{done}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("fixtures: {e}");
            ExitCode::FAILURE
        }
    }
}

fn fuzz_seeds(dir: &str, v1: &str) -> Result<String, String> {
    let bytes = std::fs::read(v1).map_err(|e| format!("{v1}: {e}"))?;
    fixtures::write_fuzz_seeds(Path::new(dir), &bytes).map_err(|e| format!("{dir}: {e}"))?;
    Ok(format!("seed corpora written under {dir}/corpus"))
}

/// The committed fixture is what version 1 wrote: never replaced, written only if lost.
fn record_v1(file: &Path) -> Result<String, String> {
    if file.exists() {
        return Ok(format!("{} kept (it is never regenerated)", file.display()));
    }
    if CURRENT_SCHEMA_VERSION != 1 {
        return Err(format!(
            "{} is missing, and this build writes schema version {CURRENT_SCHEMA_VERSION}: \
             restore it from git",
            file.display()
        ));
    }
    std::fs::write(file, fixtures::court_observation_v1())
        .map_err(|e| format!("{}: {e}", file.display()))?;
    Ok(format!("{} written", file.display()))
}
