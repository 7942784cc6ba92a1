//! hearth-proto: hearth's wire format.
//!
//! Owns: the `.proto` files under `proto/` (package `hearth.v1`), the tonic/prost code
//! generated from them at build time ([`pb`]), and the conversions between those types
//! and hearth-core's ([`convert`]), plus the mapping of refusals to gRPC statuses and the
//! "not the leader" hint ([`status`]). Every other crate converts here, once, at its
//! boundary, and works with core types inside.
//!
//! Must not: hold logic. Nothing here validates beyond what decoding needs (a known state
//! name, a present required field, a port that fits `u16`), decides, schedules, or keeps
//! state; that lives in hearth-core and the servers. Decoding never panics: malformed
//! input yields a [`ConvertError`] naming the field and the bad value.
//!
//! # Layout
//! - `proto/hearth.proto`: the services. `MasterService` (workers, apps and the CLI call
//!   any master), `WorkerControl` (the leader calls a worker; every request carries the
//!   leader's term as a fencing token), `RaftService` (master to master, opaque payloads).
//! - [`pb`]: the generated messages, clients (`pb::master_service_client`, ...) and server
//!   traits (`pb::master_service_server`, ...).
//! - [`convert`]: `From`/`TryFrom` between `pb` and core types; master requests into core
//!   `Command`s; core `Action`s into `WorkerControl` requests; the `GetState` status view.
//! - [`status`]: `Rejection` and [`ConvertError`] to `tonic::Status`; the not-leader
//!   status and its `x-hearth-leader` hint.
//! - [`auth`]: the cluster secret, sent by every client ([`auth::Credential`]) and checked
//!   in front of every port ([`auth::require_secret`]).
//! - [`tls`]: mutual TLS on every port and client (`--tls-cert/--tls-key/--tls-ca`), and
//!   making a CA and certificates.
//! - `refusals`: the rate-limited log line of a refused request or connection (both use it).

pub mod auth;
pub mod convert;
mod refusals;
pub mod status;
pub mod tls;

/// Generated from `proto/hearth.proto` by `tonic-prost-build` (see `build.rs`).
pub mod pb {
    tonic::include_proto!("hearth.v1");
}

pub use convert::ConvertError;

/// The encoded `FileDescriptorSet` of `proto/hearth.proto`: every service and rpc.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("hearth_descriptor");

/// The largest request a master accepts from clients and workers (`MasterService`, the
/// apps' HTTP JSON API): 1 MiB, an app with its command and env many times over. A bigger
/// one is refused before it is decoded, so no client can make the leader replicate (and
/// stall on) megabytes.
pub const MAX_REQUEST: usize = 1024 * 1024;

/// The largest gRPC message any hearth client or server sends or accepts, on every
/// service: a whole cluster's `GetState` answer or a Raft snapshot can be tens of MiB,
/// far above tonic's default decoding limit of 4 MiB.
pub const MAX_MESSAGE: usize = 64 * 1024 * 1024;
