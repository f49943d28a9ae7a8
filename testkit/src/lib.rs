//! # saksi-testkit
//!
//! Test support for Saksi, a dev-dependency only (nothing here ships in the server or the PWA):
//!
//! - [`Hub`]: an in-process sync hub that serves documents with
//!   [`saksi_shared::served::ServedDocument`], the code the server's document tasks run, so the
//!   crate's property tests and scenarios exercise what the server decides.
//! - [`Rng`]: a seeded random source (schedules, workloads, the load generator).
//! - [`fuzzing`]: the fuzz targets' entry points, shared with their regression tests.
//! - [`s2`]: scenario S2's edits and the check of their merge, for every test that runs it.
//! - [`at`] and [`ms`]: a moment and a length of time, spelt short.

pub mod fixtures;
pub mod fuzzing;
mod hub;
mod rng;
pub mod s2;

pub use hub::{ConnId, Hub};

/// The moment `millis` milliseconds after the epoch.
pub const fn at(millis: i64) -> saksi_shared::Timestamp {
    saksi_shared::Timestamp::from_millis(millis)
}

/// `n` milliseconds, as a length of time (`t + ms(100)`).
pub const fn ms(n: u64) -> std::time::Duration {
    std::time::Duration::from_millis(n)
}

/// An editor: who edits (`user`, with `role`) on which device.
pub fn editor(
    user: &str,
    device: &str,
    role: saksi_shared::workflow::Role,
) -> saksi_shared::Editor {
    saksi_shared::Editor::new(user, device, role)
}
pub use rng::Rng;
