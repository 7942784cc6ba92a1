//! hearth-tests: tests that span crates — real-process cluster tests and the master
//! benchmark — and the harness they share.
//!
//! Owns: test fixtures only: starting real `hearth master` / `hearth worker` processes on
//! ephemeral ports with their own directories, reading `/json`, finding processes in
//! `/proc`, and waiting on conditions with deadlines (never sleeping as synchronisation).
//!
//! Must not: be depended on by any product crate, or mock what it tests: masters,
//! workers, executors and drivers here are real OS processes.

pub mod cluster;
pub mod commit;
pub mod harness;
pub mod logs;
pub mod procs;
pub mod proxy;
pub mod spark;
pub mod stats;
pub mod wait;
