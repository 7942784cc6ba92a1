//! Conversions between [`pb`](crate::pb) messages and hearth-core types, in one place.
//!
//! Encoding (core to pb) cannot fail: `From<&T>` and `From<T>`. Decoding (pb to core) is
//! `TryFrom` with [`ConvertError`], because the wire may carry anything: an unknown state
//! name, an absent required message, an empty id, a port above 65535.
//!
//! Field names in errors are `Message.field` as written in `hearth.proto`.
//!
//! - [`desc`]: `ProcessSpec`, `AppDescription`, `DriverDescription`.
//! - [`info`]: `WorkerInfo`, `ExecutorInfo`, `AppInfo`, `DriverInfo`.
//! - [`requests`]: `WorkerRegistration`/`ReportedExecutor` and the `MasterService`
//!   requests that become a core `Command`.
//! - [`worker_control`]: core `Action` to and from the `WorkerControl` requests.
//! - [`view`]: the `GetState` reply as a [`StatusView`].
//! - [`json`]: the `GET /json` document rendered from that reply.

pub mod desc;
pub mod info;
pub mod json;
pub mod requests;
pub mod view;
pub mod worker_control;

pub use view::{Member, MemberRole, StatusView, WorkerStatus};
pub use worker_control::{Fence, WorkerCommand};

use std::str::FromStr;

/// Why a wire message could not become a core value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    /// A required message is absent, or a required id is empty.
    #[error("{field} is missing")]
    Missing { field: &'static str },
    /// A state (or role) name the receiver does not know.
    #[error("{field} = {value:?} is not a known value; expected one of {expected}")]
    UnknownState {
        field: &'static str,
        value: String,
        expected: String,
    },
    /// A number that does not fit the core type.
    #[error("{field} = {value} is out of range (at most {max})")]
    OutOfRange {
        field: &'static str,
        value: u64,
        max: u64,
    },
    /// A list that core holds as a set or map names the same thing twice.
    #[error("{field} lists {value} twice")]
    Duplicate { field: &'static str, value: String },
}

/// A name with a fixed set of values: core's state enums and [`MemberRole`].
pub(crate) trait Named: FromStr + Copy + 'static {
    const ALL: &'static [Self];
    fn name(self) -> &'static str;
}

macro_rules! named {
    ($($t:ty),+) => {$(
        impl Named for $t {
            const ALL: &'static [Self] = <$t>::ALL;
            fn name(self) -> &'static str {
                self.as_str()
            }
        }
    )+};
}

named!(
    hearth_core::WorkerState,
    hearth_core::AppState,
    hearth_core::DriverState,
    hearth_core::ExecutorState,
    hearth_core::MasterRole,
    MemberRole
);

/// Decodes a state name (`"ALIVE"`, ...).
pub(crate) fn state<T: Named>(field: &'static str, value: &str) -> Result<T, ConvertError> {
    T::from_str(value).map_err(|_| ConvertError::UnknownState {
        field,
        value: value.to_owned(),
        expected: T::ALL
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// Decodes a TCP port.
pub(crate) fn port(field: &'static str, value: u32) -> Result<u16, ConvertError> {
    u16::try_from(value).map_err(|_| ConvertError::OutOfRange {
        field,
        value: u64::from(value),
        max: u64::from(u16::MAX),
    })
}

/// Decodes a required message field.
pub(crate) fn required<T>(field: &'static str, value: Option<T>) -> Result<T, ConvertError> {
    value.ok_or(ConvertError::Missing { field })
}

/// Decodes a required id (`AppId`, `DriverId`, `WorkerId`): it must not be empty.
pub(crate) fn id<T: From<String>>(field: &'static str, value: String) -> Result<T, ConvertError> {
    if value.is_empty() {
        Err(ConvertError::Missing { field })
    } else {
        Ok(T::from(value))
    }
}

/// Decodes an optional id: absent is `None`, present but empty is an error.
pub(crate) fn opt_id<T: From<String>>(
    field: &'static str,
    value: Option<String>,
) -> Result<Option<T>, ConvertError> {
    value.map(|v| id(field, v)).transpose()
}

/// Implements `From<T> for pb::T` through `From<&T>`.
macro_rules! encode_owned {
    ($($core:ty => $pb:ty),+ $(,)?) => {$(
        impl From<$core> for $pb {
            fn from(v: $core) -> Self {
                <$pb>::from(&v)
            }
        }
    )+};
}
pub(crate) use encode_owned;
