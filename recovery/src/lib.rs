//! hearth-recovery: FILESYSTEM recovery mode (the FILESYSTEM recovery issue fills it).
//!
//! Owns (when built): the crash-safe journal of hearth-core `Command`s and periodic
//! `ClusterState` snapshots in `--recovery-dir` (framed records with length, CRC32C and
//! version; fsync before acknowledging; temp-file + rename + directory fsync for
//! snapshots), restore, the directory lock, and the offline tools (inspect, verify,
//! export, import).
//!
//! Must not: depend on openraft, or decide anything about the cluster (restore replays
//! commands through `hearth_core::apply`).
//!
//! Status: empty. Nothing here works yet and nothing pretends to.
