//! hearth-raft-store: the Raft side of a master's persistence (the Raft HA issue fills it).
//!
//! Owns (when built): the openraft 0.9 `TypeConfig` whose app data is hearth-core's
//! `Command` and whose state machine is `hearth_core::apply`; the RocksDB log store and
//! state-machine store with durable vote/append/truncate/snapshot install; snapshots; the
//! tonic `RaftNetwork`.
//!
//! Must not: know about workers' processes or scheduling rules (those live in hearth-core).
//!
//! Status: empty. Nothing here works yet and nothing pretends to.
