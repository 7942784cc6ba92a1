//! [`MasterError`]: why a master could not start or stopped, at the library boundary.
//! The `hearth` binary prints it; each message names what failed and what to do.

use crate::master::ProposeError;

#[derive(Debug, thiserror::Error)]
pub enum MasterError {
    /// The master's flags or options are inconsistent; the message names the flag.
    #[error("{0}")]
    Config(String),
    /// A socket could not be used.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// The Raft store could not be opened.
    #[error(transparent)]
    Store(#[from] hearth_raft_store::StoreError),
    /// Raft failed to start or to bootstrap the group.
    #[error("Raft: {0}")]
    Raft(String),
    /// The master could not take over (it was deposed first).
    #[error("taking over: {0}")]
    TakeOver(ProposeError),
    /// The gRPC server failed.
    #[error("gRPC server: {0}")]
    Serve(#[from] tonic::transport::Error),
}

impl MasterError {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        MasterError::Io {
            what: what.into(),
            source,
        }
    }
}
