//! Refusals as `tonic::Status`, and the "not the leader" hint.
//!
//! # Not the leader
//! A master that does not lead answers a write with code `UNAVAILABLE` (the request is
//! fine; this master cannot serve it now, another can) and, when it knows the leader, the
//! leader's gRPC address (`host:port`, as in the master list) in the ASCII metadata key
//! [`LEADER_KEY`] (`x-hearth-leader`). A client retries on that address; with no hint it
//! tries the next master of its list, as it does when a master cannot be reached.
//!
//! # Refusals
//! [`rejection_status`] maps a core [`Rejection`]: unknown id → `NOT_FOUND`; `Invalid` →
//! `INVALID_ARGUMENT`; `WrongState` and `StalePlacement` → `FAILED_PRECONDITION`;
//! `Unschedulable` → `INVALID_ARGUMENT` (retrying the same request cannot help; it needs
//! smaller resources or bigger workers). The message is the rejection's `Display` text.
//! A [`ConvertError`] (malformed request) is `INVALID_ARGUMENT` too.

use crate::ConvertError;
use hearth_core::Rejection;
use tonic::metadata::MetadataValue;
use tonic::{Code, Status};

/// Metadata key of the leader's gRPC address on a not-leader status.
pub const LEADER_KEY: &str = "x-hearth-leader";

/// The status a non-leader answers a write with; `leader` is the leader's gRPC address
/// when known. An address that cannot travel as ASCII metadata is left out (the client
/// then tries its next master) rather than failing the answer.
pub fn not_leader(leader: Option<&str>) -> Status {
    let message = match leader {
        Some(addr) => format!("not the leader; the leader is {addr}"),
        None => "not the leader; no leader is known yet".to_owned(),
    };
    let mut status = Status::new(Code::Unavailable, message);
    if let Some(value) = leader.and_then(|a| MetadataValue::try_from(a).ok()) {
        status.metadata_mut().insert(LEADER_KEY, value);
    }
    status
}

/// The leader's gRPC address carried by `status`, if it carries one.
pub fn leader_hint(status: &Status) -> Option<String> {
    let value = status.metadata().get(LEADER_KEY)?.to_str().ok()?;
    (!value.is_empty()).then(|| value.to_owned())
}

/// The status a refused command is answered with (see the module docs for the codes).
pub fn rejection_status(rejection: &Rejection) -> Status {
    let code = match rejection {
        Rejection::UnknownWorker(_)
        | Rejection::UnknownApp(_)
        | Rejection::UnknownDriver(_)
        | Rejection::UnknownExecutor(..) => Code::NotFound,
        Rejection::Invalid { .. } | Rejection::Unschedulable(_) => Code::InvalidArgument,
        Rejection::WrongState { .. } | Rejection::StalePlacement(_) => Code::FailedPrecondition,
    };
    Status::new(code, rejection.to_string())
}

impl From<ConvertError> for Status {
    fn from(e: ConvertError) -> Self {
        Status::invalid_argument(format!("malformed request: {e}"))
    }
}
