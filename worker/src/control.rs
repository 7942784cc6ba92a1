//! The `WorkerControl` gRPC service: the leader's launches and kills, fenced by term.
//!
//! Every request goes through [`Control::obey`]: it must be addressed to this worker's
//! id, and its term must be at least the highest this worker has obeyed (see
//! [`crate::fence`]). A refused request starts and kills nothing and is answered
//! `WorkerAck { refused: Some(why), highest_term, duplicate: false }`. An obeyed launch
//! of an id the worker runs or ran, and a kill of an id it does not run, are answered
//! `duplicate: true`.

use crate::error::WorkerError;
use crate::fence::{absurd_term, Admission, TermStore};
use crate::link::Link;
use crate::plan::PlanContext;
use crate::runner::Runner;
use crate::table::{KillAck, KillReason, ProcId, Table};
use hearth_core::{Action, WorkerId};
use hearth_proto::convert::Fence;
use hearth_proto::pb;
use hearth_proto::pb::worker_control_server::WorkerControl;
use std::sync::Arc;
use tonic::{Request, Response, Status};
use tracing::{info, Instrument};

pub(crate) struct Control {
    pub id: WorkerId,
    pub fence: Arc<TermStore>,
    pub plans: PlanContext,
    pub table: Arc<Table>,
    pub runner: Arc<Runner>,
    pub link: Arc<Link>,
    /// The worker's span: tonic runs handlers outside it.
    pub span: tracing::Span,
}

/// A checked request, ready to carry out.
enum Step {
    Launch(Box<crate::plan::Plan>),
    Kill(ProcId),
}

fn ack(highest_term: u64, duplicate: bool) -> Response<pb::WorkerAck> {
    Response::new(pb::WorkerAck {
        refused: None,
        highest_term,
        duplicate,
    })
}

fn refuse(why: String, highest_term: u64) -> Response<pb::WorkerAck> {
    Response::new(pb::WorkerAck {
        refused: Some(why),
        highest_term,
        duplicate: false,
    })
}

/// A short description of an action for logs.
fn describe(action: &Action) -> String {
    match action {
        Action::LaunchExecutor(l) => format!("LaunchExecutor {}/{}", l.app, l.executor),
        Action::KillExecutor(k) => format!("KillExecutor {}/{}", k.app, k.executor),
        Action::LaunchDriver(l) => format!("LaunchDriver {}", l.driver),
        Action::KillDriver(k) => format!("KillDriver {}", k.driver),
    }
}

impl Control {
    /// Checks the fence and carries `action` out. Holds the fence while accepting the
    /// action, so no command of a lower term can be accepted after a higher one.
    async fn obey(&self, fence: Fence, action: Action) -> Result<Response<pb::WorkerAck>, Status> {
        self.obey_in_span(fence, action)
            .instrument(self.span.clone())
            .await
    }

    async fn obey_in_span(
        &self,
        fence: Fence,
        action: Action,
    ) -> Result<Response<pb::WorkerAck>, Status> {
        let what = describe(&action);
        if action.worker() != &self.id {
            let highest = self.fence.highest().await;
            let why = format!(
                "addressed to worker {}, but this is {} (the worker restarted?)",
                action.worker(),
                self.id
            );
            info!(%what, term = fence.term, master_id = fence.master_id, %why, "refused");
            return Ok(refuse(why, highest));
        }
        // Validate and build what to do before the fence moves: a request that cannot be
        // carried out must not raise the term (it would lock out the real leader).
        let step = self.prepare(action)?;
        let highest_now = self.fence.highest().await;
        if absurd_term(fence.term, highest_now) {
            let why = format!(
                "absurd term {} (this worker has obeyed up to {highest_now})",
                fence.term
            );
            tracing::warn!(%what, term = fence.term, master_id = fence.master_id, %why, "refused");
            return Ok(refuse(why, highest_now));
        }
        let guard = match self.fence.admit(fence.term).await? {
            Admission::Obey(guard) => guard,
            Admission::Stale { highest } => {
                let why = format!(
                    "stale term {} < {highest}: this worker has obeyed a newer leader",
                    fence.term
                );
                info!(%what, term = fence.term, master_id = fence.master_id, %why, "refused");
                return Ok(refuse(why, highest));
            }
        };
        let highest = *guard;
        self.link.saw_term(fence.term);
        let duplicate = self.carry_out(step);
        drop(guard);
        info!(%what, term = fence.term, master_id = fence.master_id, duplicate, "obeyed");
        Ok(ack(highest, duplicate))
    }

    /// What `action` asks, checked and built (a launch's plan), changing nothing yet.
    fn prepare(&self, action: Action) -> Result<Step, WorkerError> {
        Ok(match action {
            Action::LaunchExecutor(l) => Step::Launch(Box::new(self.plans.executor(l)?)),
            Action::LaunchDriver(l) => Step::Launch(Box::new(self.plans.driver(l)?)),
            Action::KillExecutor(k) => Step::Kill(ProcId::Executor {
                app: k.app,
                executor: k.executor,
            }),
            Action::KillDriver(k) => Step::Kill(ProcId::Driver(k.driver)),
        })
    }

    /// Does `step`. Returns true for a duplicate (nothing new done).
    fn carry_out(&self, step: Step) -> bool {
        match step {
            Step::Launch(plan) => !self.runner.launch(*plan),
            Step::Kill(id) => self.table.kill(&id, KillReason::Master) == KillAck::Duplicate,
        }
    }
}

#[tonic::async_trait]
impl WorkerControl for Control {
    async fn launch_executor(
        &self,
        request: Request<pb::LaunchExecutorRequest>,
    ) -> Result<Response<pb::WorkerAck>, Status> {
        let r = request.into_inner();
        let fence = r.fence();
        self.obey(fence, r.try_into()?).await
    }

    async fn kill_executor(
        &self,
        request: Request<pb::KillExecutorRequest>,
    ) -> Result<Response<pb::WorkerAck>, Status> {
        let r = request.into_inner();
        let fence = r.fence();
        self.obey(fence, r.try_into()?).await
    }

    async fn launch_driver(
        &self,
        request: Request<pb::LaunchDriverRequest>,
    ) -> Result<Response<pb::WorkerAck>, Status> {
        let r = request.into_inner();
        let fence = r.fence();
        self.obey(fence, r.try_into()?).await
    }

    async fn kill_driver(
        &self,
        request: Request<pb::WorkerKillDriverRequest>,
    ) -> Result<Response<pb::WorkerAck>, Status> {
        let r = request.into_inner();
        let fence = r.fence();
        self.obey(fence, r.try_into()?).await
    }

    async fn read_log(
        &self,
        request: Request<pb::ReadLogRequest>,
    ) -> Result<Response<pb::ReadLogResponse>, Status> {
        let r = request.into_inner();
        let file = crate::logread::log_file(&self.plans.work_dir, &r)?;
        let id = if r.driver_id.is_empty() {
            ProcId::Executor {
                app: hearth_core::AppId(r.app_id.clone()),
                executor: r.executor_id,
            }
        } else {
            ProcId::Driver(hearth_core::DriverId(r.driver_id.clone()))
        };
        let running = self.table.live().contains(&id);
        crate::logread::read(&file, &r, running).map(Response::new)
    }

    async fn master_changed(
        &self,
        request: Request<pb::MasterChangedRequest>,
    ) -> Result<Response<pb::WorkerAck>, Status> {
        let r = request.into_inner();
        let highest = self.fence.highest().await;
        if r.term < highest || absurd_term(r.term, highest) {
            return Ok(ack(highest, false));
        }
        // Only a master of this worker's list is taken at its word: dialled, and trusted
        // to move the fence (else anyone with the secret could make it hand its
        // registration to any address, or lock out the real leader). Another address is
        // not preferred; the worker finds the leader through its list, and the fence
        // moves when that leader answers the registration.
        let configured = self.link.is_configured(&r.leader);
        // The fence moves to the new leader's term before this worker registers with it:
        // a command the deposed leader sent late is refused from now on, so nothing it
        // starts can be missing from the report the new leader reconciles.
        if configured && r.term > highest {
            self.fence
                .admit(r.term)
                .instrument(self.span.clone())
                .await?;
        }
        let _in = self.span.enter();
        let leader = if configured {
            r.leader.as_str()
        } else {
            tracing::warn!(leader = %r.leader, term = r.term, "a leader announcement names an address outside --masters: not dialling it");
            ""
        };
        // A newer term, or the same term from a restarted leader process: the link
        // decides whether to register again.
        self.link
            .new_leader(r.term, r.incarnation, r.master_id, leader, "MasterChanged");
        Ok(ack(highest, false))
    }
}
