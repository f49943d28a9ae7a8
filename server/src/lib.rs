//! # saksi-server
//!
//! The Saksi sync server, as a library with a thin binary (`saksi`).
//!
//! - [`config`]: defaults < TOML file < `SAKSI_*` environment, validated at start.
//! - [`app`]: shared state, start-up ([`app::Application`]), first admin.
//! - [`storage`]: the [`storage::Storage`] trait and its SQLite implementation (WAL, group
//!   commit, migrations); [`db`] runs it off the async runtime.
//! - [`accounts`]: Argon2id passwords, device tokens, sync tickets, login throttling, the
//!   username rule, signing in and out; [`clock`]: the injected clock.
//! - [`tls`]: rustls, self-signed certificate generation.
//! - [`http`]: routes, security headers, the JSON API, the embedded PWA.
//! - [`sync`]: the automerge-repo `/sync` WebSocket and the per-document tasks that check,
//!   store and forward changes.
//! - [`console`]: the coordinator console (server-rendered HTML under `/console`): records,
//!   conflicts, review, history, exports, audit log, admin pages.
//! - [`admin`]: the audited account, device and case operations the console's admin pages
//!   share with the `saksi admin <command>` line ([`admin::cli`], clap).
//! - [`backup`]: `saksi admin backup` / `restore`; [`datadir`]: the data directory's lock that
//!   a running server holds.
//! - [`errors`]: an error with its causes, as the log writes it.

pub mod accounts;
pub mod admin;
pub mod app;
pub mod backup;
pub mod clock;
pub mod config;
pub mod console;
pub mod datadir;
pub mod db;
pub mod errors;
pub mod files;
pub mod http;
pub mod purge;
pub mod storage;
pub mod sync;
pub mod tls;

pub use app::Application;
pub use config::Config;
