//! hearth-master: the master server (the single-master issue fills it).
//!
//! Owns (when built): the persistence backend (none / filesystem / raft) behind one trait,
//! leadership, the gRPC services of hearth-proto, worker liveness (leader-local last-heard
//! times fed to `hearth_core::liveness`), the recovery protocol driver, the scheduling loop
//! (`hearth_core::schedule` → `Command::Place` → send the resulting actions), and HTTP
//! (status page, `/json`, `/readyz`).
//!
//! Must not: hold scheduling or state rules; they live in hearth-core and this crate only
//! moves messages and bytes.
//!
//! Status: empty. Nothing here works yet and nothing pretends to.
