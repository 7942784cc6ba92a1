//! The `Drill` gRPC service that masters and workers serve with `--enable-drills`: crash
//! (SIGKILL itself), freeze (SIGSTOP itself for a while) and, on masters, isolate (drop
//! all Raft, worker and client traffic for a while), each authenticated by a shared token.
//!
//! Must not: act on a request without the right token, or answer after the fact (a crash
//! or freeze is signalled a moment after the answer leaves).

use crate::Failure;
use clap::Args;
use hearth_master::drill::Isolation;
use hearth_proto::pb::drill_server::{Drill, DrillServer};
use hearth_proto::pb::{DrillRequest, DrillResponse};
use rustix::process::Signal;
use std::time::Duration;
use tonic::{Request, Response, Status};

/// `--enable-drills` and its token, on `hearth master` and `hearth worker`.
#[derive(Args, Clone, Debug)]
pub struct DrillFlags {
    /// Accept failover drills (crash, freeze, isolate) from `hearth drill`. Needs a
    /// shared token (--drill-token or, better, HEARTH_DRILL_TOKEN).
    #[arg(long, env = "HEARTH_ENABLE_DRILLS")]
    pub enable_drills: bool,
    /// The token drill requests must carry.
    #[arg(long, env = "HEARTH_DRILL_TOKEN", hide_env_values = true)]
    pub drill_token: Option<String>,
}

impl DrillFlags {
    /// The drill service to serve, if drills are enabled. `isolate` is the master's
    /// isolation switch (workers support only crash and freeze).
    pub fn routes(
        &self,
        isolate: Option<Isolation>,
    ) -> Result<Option<tonic::service::Routes>, Failure> {
        if !self.enable_drills {
            return Ok(None);
        }
        let token = self
            .drill_token
            .clone()
            .filter(|t| t.len() >= MIN_TOKEN)
            .ok_or_else(|| {
                Failure::Usage(
                    "--enable-drills needs a token of at least 16 characters (HEARTH_DRILL_TOKEN or --drill-token; `hearth secret new` makes one)"
                        .into(),
                )
            })?;
        tracing::warn!("failover drills enabled: holders of the drill token can crash, freeze or isolate this process");
        Ok(Some(tonic::service::Routes::new(DrillServer::new(
            DrillService { token, isolate },
        ))))
    }
}

struct DrillService {
    token: String,
    isolate: Option<Isolation>,
}

/// Compares without stopping at the first difference.
/// The shortest drill token accepted.
const MIN_TOKEN: usize = 16;

/// Compares in time that depends only on the token's own length, not on where (or
/// whether in length) the offered one differs.
fn same(offered: &str, token: &str) -> bool {
    hearth_proto::auth::same_bytes(token.as_bytes(), offered.as_bytes())
}

/// Sends `sig` to this process after `delay`, so the answer leaves first.
fn signal_self_soon(sig: Signal, delay: Duration) {
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let _ = rustix::process::kill_process(rustix::process::getpid(), sig);
    });
}

#[tonic::async_trait]
impl Drill for DrillService {
    async fn inject(&self, req: Request<DrillRequest>) -> Result<Response<DrillResponse>, Status> {
        let r = req.into_inner();
        if !same(&r.token, &self.token) {
            tracing::warn!(action = %r.action, "drill refused: wrong token");
            return Err(Status::permission_denied("wrong drill token"));
        }
        let pid = std::process::id();
        let d = Duration::from_millis(r.duration_ms);
        let message = match r.action.as_str() {
            "check" => "drills enabled".to_owned(),
            "crash" => {
                tracing::warn!("drill: crashing (SIGKILL) now");
                signal_self_soon(Signal::KILL, Duration::from_millis(50));
                "crashing (SIGKILL)".to_owned()
            }
            "freeze" => {
                if d.is_zero() || d > Duration::from_secs(600) {
                    return Err(Status::invalid_argument(
                        "freeze needs a duration of 1 ms to 600 s",
                    ));
                }
                // Something outside this process must wake it: a detached shell.
                let thaw = format!("sleep {:.3}; kill -CONT {pid}", d.as_secs_f64());
                std::process::Command::new("sh")
                    .args(["-c", &thaw])
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .map_err(|e| Status::internal(format!("cannot start the thaw timer: {e}")))?;
                tracing::warn!(for_ms = d.as_millis() as u64, "drill: freezing (SIGSTOP)");
                signal_self_soon(Signal::STOP, Duration::from_millis(50));
                format!("freezing for {d:?}")
            }
            "isolate" => {
                let isolate = self.isolate.as_ref().ok_or_else(|| {
                    Status::unimplemented("workers take crash and freeze drills, not isolate")
                })?;
                if d.is_zero() || d > Duration::from_secs(600) {
                    return Err(Status::invalid_argument(
                        "isolate needs a duration of 1 ms to 600 s",
                    ));
                }
                isolate.isolate(d);
                format!("isolated for {d:?}")
            }
            other => {
                return Err(Status::invalid_argument(format!(
                    "unknown drill action {other:?}: crash, freeze, isolate or check"
                )))
            }
        };
        Ok(Response::new(DrillResponse { pid, message }))
    }
}
