//! The deterministic test suite of `saksi-shared`: everything runs in process, with no sockets,
//! no clock and no sleeps. One test binary (faster to build than one per file); each module is
//! one area.

mod convergence;
mod harness;
mod history;
mod khmer;
mod scenario_s2;
mod schema_versions;
mod wire_protocol;
mod write_policy;
