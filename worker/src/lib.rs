//! hearth-worker: the worker agent (the single-master issue fills it).
//!
//! Owns (when built): registration and heartbeats, re-registration with a new leader,
//! process runners for executors and drivers (process groups, parent-death signal, logs,
//! kill with grace, supervise), term fencing, idempotent launches by id.
//!
//! Must not: trust a command carrying a term older than the highest it has obeyed.
//!
//! Status: empty. Nothing here works yet and nothing pretends to.
