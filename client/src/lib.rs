//! hearth-client: talking to a hearth cluster (the single-master issue fills it).
//!
//! Owns (when built): leader discovery over a master list, retry on `NotLeader` hints,
//! app registration and heartbeats for client-mode drivers, submission, status.
//!
//! Must not: hold cluster rules; it only carries requests.
//!
//! Status: empty. Nothing here works yet and nothing pretends to.
