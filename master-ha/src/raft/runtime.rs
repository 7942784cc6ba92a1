//! Raft's own threads: a small tokio runtime that runs openraft (its core, log and state
//! machine tasks, the replication streams that carry heartbeats), the pre-vote watcher
//! ([`super::elect::run`]) and the `RaftService` calls peers make to this master.
//!
//! Why: everything else a master does (thousands of workers' heartbeats and
//! registrations, launches, client calls, `/json`) runs on the process's main runtime.
//! When that work piles up, as it does when every worker re-registers after a failover
//! or a placement burst sends 100,000 launches, a heartbeat queued behind it reaches the
//! followers late, they call an election, and the new leader meets the same pile: an
//! election storm (issue 15 measured terms 1 → 350 at 5,000 simulated workers). On its
//! own threads, Raft's timers and messages wait only for Raft's own work and for the
//! operating system's scheduler, never for the master's queue.
//!
//! Must not: run master work (proposals are sent to openraft from the main runtime;
//! openraft answers through channels, which work across runtimes).

use crate::error::MasterError;
use std::convert::Infallible;
use tonic::codegen::{http, BoxFuture, Context, Poll, Service};
use tonic::server::NamedService;

/// Threads of the Raft runtime: one may be blocked in an fsync (openraft awaits storage
/// calls one after another on its core task) while the other sends heartbeats.
const THREADS: usize = 2;

/// The Raft runtime of one master, shut down when dropped (without waiting for its
/// tasks: Raft is shut down first, through `Raft::shutdown`).
pub struct RaftRuntime {
    rt: Option<tokio::runtime::Runtime>,
}

impl RaftRuntime {
    /// Starts the runtime's threads (named `hearth-raft`).
    pub fn start() -> Result<Self, MasterError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(THREADS)
            .thread_name("hearth-raft")
            .enable_all()
            .build()
            .map_err(|e| MasterError::io("starting Raft's threads", e))?;
        Ok(RaftRuntime { rt: Some(rt) })
    }

    /// Where to spawn Raft's tasks.
    pub fn handle(&self) -> tokio::runtime::Handle {
        match &self.rt {
            Some(rt) => rt.handle().clone(),
            None => unreachable!("the runtime is only taken when dropped"),
        }
    }
}

impl Drop for RaftRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            // Dropping a runtime blocks until its threads stop, which tokio forbids on a
            // runtime thread (the master drops this from async code).
            rt.shutdown_background();
        }
    }
}

/// A gRPC service whose calls run on the Raft runtime: the connection is read on the
/// main runtime, but decoding the request, openraft's answer and encoding it do not
/// queue behind the master's work there.
#[derive(Clone)]
pub struct OnRaftThreads<S> {
    inner: S,
    rt: tokio::runtime::Handle,
    /// The span the calls run in (the master's, so their log lines name it).
    span: tracing::Span,
}

impl<S> OnRaftThreads<S> {
    /// Serves `inner` on `rt`, its calls in the span current now.
    pub fn new(inner: S, rt: tokio::runtime::Handle) -> Self {
        OnRaftThreads {
            inner,
            rt,
            span: tracing::Span::current(),
        }
    }
}

impl<S: NamedService> NamedService for OnRaftThreads<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<http::Request<tonic::body::Body>> for OnRaftThreads<S>
where
    S: Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        let call = self.inner.call(req);
        let task = self
            .rt
            .spawn(tracing::Instrument::instrument(call, self.span.clone()));
        Box::pin(async move {
            match task.await {
                Ok(answer) => answer,
                // The runtime was shut down (this master is stopping) or the call
                // panicked (openraft's own assertion): the peer retries.
                Err(e) => Ok(tonic::Status::unavailable(format!(
                    "this master's Raft is stopping: {e}"
                ))
                .into_http()),
            }
        })
    }
}
