//! Integration tests: a real server (port 0, temporary SQLite file, real TLS) and native clients
//! built on `saksi-shared`. One test binary, as building many is slow.

mod acme;
mod audit;
mod auth;
mod authz;
mod backup;
mod console;
mod crash;
mod evidence;
mod files;
mod headers;
mod helpers;
mod hostile;
mod interop;
mod lifecycle;
mod ops;
mod process;
mod purge;
mod redteam;
mod restart;
mod sync;
mod upgrade;
