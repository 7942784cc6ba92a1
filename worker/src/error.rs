//! The crate's error at its boundary, and its mapping to `tonic::Status`.

use std::io;
use std::path::PathBuf;
use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The configuration cannot work; `field` is the `WorkerConfig` field.
    #[error("invalid worker config: {field}: {reason}")]
    Config { field: &'static str, reason: String },
    /// A file or directory the worker needs could not be read or written.
    #[error("cannot {action} {}: {source}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The fencing file holds something that is not a term.
    #[error(
        "{} holds {content:?}, which is not a term; it is written atomically, so something \
         else wrote it: restore it or, if no older leader can still be running, delete it",
        .path.display()
    )]
    CorruptTerm { path: PathBuf, content: String },
    /// A request names something the worker will not use (e.g. an id that is not a
    /// plain file name).
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("cannot start the process spawner thread: {0}")]
    Spawner(#[source] io::Error),
}

impl WorkerError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        WorkerError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// How a service call that failed (rather than was refused) is answered.
impl From<WorkerError> for Status {
    fn from(e: WorkerError) -> Self {
        match e {
            WorkerError::Invalid { .. } | WorkerError::Config { .. } => {
                Status::invalid_argument(e.to_string())
            }
            WorkerError::Io { .. } | WorkerError::CorruptTerm { .. } | WorkerError::Spawner(_) => {
                Status::internal(e.to_string())
            }
        }
    }
}
