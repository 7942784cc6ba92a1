//! The one `WorkerControl` gRPC server of every simulated worker ([`crate::sim`]): it
//! tells the worker a call is for by the local address the leader dialled (each worker
//! has its own loopback address; `MasterChanged` carries no worker id) and hands the
//! request to it.

use crate::sim::{index_of, Sim, Step};
use hearth_proto::pb;
use hearth_proto::pb::worker_control_server::WorkerControl;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// The one `WorkerControl` server of every simulated worker.
pub(crate) struct Control {
    workers: Arc<Vec<Arc<Sim>>>,
}

impl Control {
    pub(crate) fn new(workers: Arc<Vec<Arc<Sim>>>) -> Self {
        Control { workers }
    }

    /// The worker the connection was made to (by its local address).
    fn sim<T>(&self, r: &Request<T>) -> Result<Arc<Sim>, Status> {
        let at = r.local_addr().map(|a| a.ip());
        at.and_then(index_of)
            .and_then(|i| self.workers.get(i).cloned())
            .ok_or_else(|| Status::not_found(format!("no simulated worker at {at:?}")))
    }
}

type Answer = Result<Response<pb::WorkerAck>, Status>;

#[tonic::async_trait]
impl WorkerControl for Control {
    async fn launch_executor(&self, r: Request<pb::LaunchExecutorRequest>) -> Answer {
        let sim = self.sim(&r)?;
        let r = r.into_inner();
        let step = Step::LaunchExecutor(r.app_id, r.executor_id);
        Ok(sim.obey(r.term, &r.worker_id, step))
    }

    async fn kill_executor(&self, r: Request<pb::KillExecutorRequest>) -> Answer {
        let sim = self.sim(&r)?;
        let r = r.into_inner();
        let step = Step::KillExecutor(r.app_id, r.executor_id);
        Ok(sim.obey(r.term, &r.worker_id, step))
    }

    async fn launch_driver(&self, r: Request<pb::LaunchDriverRequest>) -> Answer {
        let sim = self.sim(&r)?;
        let r = r.into_inner();
        Ok(sim.obey(r.term, &r.worker_id, Step::LaunchDriver(r.driver_id)))
    }

    async fn kill_driver(&self, r: Request<pb::WorkerKillDriverRequest>) -> Answer {
        let sim = self.sim(&r)?;
        let r = r.into_inner();
        Ok(sim.obey(r.term, &r.worker_id, Step::KillDriver(r.driver_id)))
    }

    async fn master_changed(&self, r: Request<pb::MasterChangedRequest>) -> Answer {
        let sim = self.sim(&r)?;
        sim.counters.announced.fetch_add(1, Ordering::Relaxed);
        Ok(sim.master_changed(r.get_ref()))
    }

    async fn read_log(
        &self,
        _: Request<pb::ReadLogRequest>,
    ) -> Result<Response<pb::ReadLogResponse>, Status> {
        Err(Status::not_found("a simulated worker runs no process"))
    }
}
