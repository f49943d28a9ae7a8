//! Random malformed changes over a real record, offered to the server's sync engine:
//! accepted ⇒ the document still saves and loads.
//!
//! automerge panics on some of these changes; the sync engine catches those panics
//! (`saksi_shared::integrity::guarded`) and refuses the change. libFuzzer's panic hook would
//! abort on any panic, caught or not (and print a backtrace for each), so this target puts a
//! silent hook in its place and counts only a panic that escapes the entry point (a broken
//! invariant) as a crash.
#![no_main]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;

use libfuzzer_sys::fuzz_target;

static QUIET: Once = Once::new();

fuzz_target!(|data: &[u8]| {
    QUIET.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    let escaped = catch_unwind(AssertUnwindSafe(|| {
        saksi_testkit::fuzzing::malformed_change(data)
    }));
    if escaped.is_err() {
        std::process::abort();
    }
});
