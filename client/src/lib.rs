//! hearth-client: talking to a hearth cluster from outside the masters.
//!
//! Owns: master lists (`hearth://h1:7077,h2:7077`), finding the leader and following its
//! `NotLeader` hints ([`MasterClient`]), retry policy (what may be sent again after a
//! failure and what may not), the client-side requests the CLI and the worker make,
//! Raft administration ([`admin::AdminClient`], `hearth cluster ...`), and measuring a
//! failover from outside ([`failover`]: the engine of `hearth drill` and `bench-failover`,
//! with [`SleepingApp`], the app they submit).
//!
//! Must not: hold cluster rules (those live in hearth-core) or retry a non-idempotent
//! request when it may already have been applied: a duplicate submission is worse than
//! a clear error.

pub mod admin;
pub mod failover;
pub mod logs;
mod masters;
mod ops;
mod sleeping;

pub use hearth_proto::auth::Credential;
pub use masters::{parse_masters, Adopted, ClientError, Idempotency, MasterClient};
pub use sleeping::{DeployMode, SleepingApp};
