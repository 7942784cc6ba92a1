//! Identifiers and their text formats.
//!
//! App and driver ids are minted by [`apply`](crate::apply) from counters kept in the
//! replicated state and the timestamp carried by the command, so every replica mints the
//! same id and a new leader never reuses one. Worker ids are chosen by the worker itself
//! (it needs one before it can talk to any master); executor ids are small integers,
//! numbered per app from a per-app counter.

use crate::time::Millis;
use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name(s.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                $name(s)
            }
        }
    };
}

string_id!(
    /// `app-YYYYMMDDHHMMSS-NNNN`.
    AppId
);
string_id!(
    /// `driver-YYYYMMDDHHMMSS-NNNN`.
    DriverId
);
string_id!(
    /// `worker-YYYYMMDDHHMMSS-HOST-PORT`, chosen by the worker when it starts.
    WorkerId
);

/// An executor's number within its app (0, 1, 2, ...). Never reused within an app.
pub type ExecutorId = u32;

/// The id of the `number`-th app, registered at `at`.
pub fn app_id(at: Millis, number: u64) -> AppId {
    AppId(format!("app-{}-{number:04}", at.compact_utc()))
}

/// The id of the `number`-th driver, submitted at `at`.
pub fn driver_id(at: Millis, number: u64) -> DriverId {
    DriverId(format!("driver-{}-{number:04}", at.compact_utc()))
}

/// The id a worker started at `at` on `host:port` gives itself (Spark's format).
pub fn worker_id(at: Millis, host: &str, port: u16) -> WorkerId {
    WorkerId(format!("worker-{}-{host}-{port}", at.compact_utc()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_match_spark() {
        let at = Millis(1_795_457_728_000);
        assert_eq!(app_id(at, 7).as_str(), "app-20261123181528-0007");
        assert_eq!(app_id(at, 12_345).as_str(), "app-20261123181528-12345");
        assert_eq!(driver_id(at, 0).as_str(), "driver-20261123181528-0000");
        assert_eq!(
            worker_id(at, "10.0.0.5", 7078).as_str(),
            "worker-20261123181528-10.0.0.5-7078"
        );
    }
}
