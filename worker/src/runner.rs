//! Running executors and drivers: one task per process, from LAUNCHING to its end.
//!
//! A process's task creates its directory (and cgroup), starts the guard on the spawner
//! thread, waits for the guard's word that the command started (then RUNNING is
//! reported), and waits for the exit or a kill. A kill is SIGTERM to the process group,
//! then SIGKILL when `kill_grace` has passed and anything of the group is still alive.
//! After any exit, whatever is left of the group is SIGKILLed: a finished process leaves
//! no stragglers. A supervised driver that exits non-zero is started again (same id,
//! dir and port) after [`RestartBackoff`]'s delay, reporting nothing in between, unless
//! no leader has answered within the masters' worker timeout (`lease`): the masters then
//! relaunch it elsewhere, and a restart here would run it twice.

use crate::backoff::RestartBackoff;
use crate::cgroup::ProcCgroup;
use crate::guard::exit_code;
use crate::link::Report;
use crate::plan::Plan;
use crate::spawn::{group_alive, signal_group, Handshake, SpawnRequest, Spawned, Spawner};
use crate::table::{KillReason, ProcId, Table};
use hearth_core::{DriverState, ExecutorState, WorkerId};
use rustix::process::Signal;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{info, info_span, warn, Instrument};

type KillRx = watch::Receiver<Option<KillReason>>;

/// How a process's life ended.
#[derive(Debug)]
enum End {
    /// The command exited by itself with this code (128 + signal if signalled).
    Exited(i32),
    /// It never ran, and why.
    NotStarted(String),
    /// It was stopped; `code` is the guard's exit code when known.
    Killed {
        reason: KillReason,
        code: Option<i32>,
    },
}

/// What the runner needs from the worker's configuration.
pub(crate) struct RunnerConfig {
    /// Whether a leader answered within the masters' worker timeout.
    pub lease: Arc<crate::lease::MasterLease>,
    pub worker_id: WorkerId,
    /// argv prefix of the process guard.
    pub guard: Vec<String>,
    pub kill_grace: Duration,
    /// Parent cgroup for per-process memory limits, when enforced.
    pub cgroups: Option<PathBuf>,
    /// How each process's stdout and stderr are rotated.
    pub logs: crate::logs::LogLimits,
    /// The worker's span, parent of every process's span.
    pub span: tracing::Span,
}

pub(crate) struct Runner {
    config: RunnerConfig,
    table: Arc<Table>,
    reports: mpsc::UnboundedSender<Report>,
    spawner: Spawner,
    tasks: Mutex<JoinSet<()>>,
    /// `HEARTH_*` variables of the worker's own environment, not passed on (a process
    /// gets only the ones that describe it).
    inherited_hearth_env: Vec<String>,
}

impl Runner {
    pub fn new(
        config: RunnerConfig,
        table: Arc<Table>,
        reports: mpsc::UnboundedSender<Report>,
        spawner: Spawner,
    ) -> Self {
        let inherited_hearth_env = std::env::vars_os()
            .filter_map(|(k, _)| k.into_string().ok())
            .filter(|k| k.starts_with("HEARTH_"))
            .collect();
        Runner {
            config,
            table,
            reports,
            spawner,
            tasks: Mutex::new(JoinSet::new()),
            inherited_hearth_env,
        }
    }

    /// Starts `plan` unless its id is already known. Returns false for a duplicate.
    pub fn launch(self: &Arc<Self>, plan: Plan) -> bool {
        let Some(kill) = self.table.insert(plan.id.clone()) else {
            return false;
        };
        crate::metrics::metrics().launches.inc();
        let span = match &plan.id {
            ProcId::Executor { app, executor } => {
                info_span!(parent: &self.config.span, "executor", app_id = %app, executor_id = executor)
            }
            ProcId::Driver(d) => info_span!(parent: &self.config.span, "driver", driver_id = %d),
        };
        let runner = Arc::clone(self);
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        while tasks.try_join_next().is_some() {}
        tasks.spawn(runner.lifecycle(plan, kill).instrument(span));
        true
    }

    /// Stops every process (SIGTERM, grace, SIGKILL) and waits until all are gone.
    pub async fn shutdown(&self) {
        self.table.kill_all(KillReason::Shutdown);
        let mut tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        while let Some(done) = tasks.join_next().await {
            if let Err(e) = done {
                warn!(error = %e, "a process task ended abnormally");
            }
        }
    }

    async fn lifecycle(self: Arc<Self>, plan: Plan, mut kill: KillRx) {
        info!(dir = %plan.dir.display(), argv = ?plan.argv, supervise = plan.supervise, "launching");
        let end = match self.prepare(&plan) {
            Ok(cgroup) => {
                let end = self.supervise(&plan, cgroup.as_ref(), &mut kill).await;
                if let Some(cg) = cgroup {
                    cg.remove().await;
                }
                end
            }
            Err(why) => End::NotStarted(why),
        };
        self.table.set_ended(&plan.id);
        self.report_end(&plan, end);
    }

    /// Creates the process's directory and, where memory is enforced, its cgroup.
    fn prepare(&self, plan: &Plan) -> Result<Option<ProcCgroup>, String> {
        std::fs::create_dir_all(&plan.dir)
            .map_err(|e| format!("cannot create {}: {e}", plan.dir.display()))?;
        let Some(parent) = &self.config.cgroups else {
            return Ok(None);
        };
        let name = match &plan.id {
            ProcId::Executor { app, executor } => format!("{app}-{executor}"),
            ProcId::Driver(d) => d.to_string(),
        };
        match ProcCgroup::create(parent, &name, plan.memory_mb) {
            Ok(cg) => Ok(Some(cg)),
            Err(e) => {
                warn!(error = %e, "memory limit not applied: cannot create the process's cgroup");
                Ok(None)
            }
        }
    }

    /// Runs the process, again and again while it is a supervised driver that fails.
    async fn supervise(&self, plan: &Plan, cg: Option<&ProcCgroup>, kill: &mut KillRx) -> End {
        let mut backoff = RestartBackoff::default();
        let mut running_reported = false;
        loop {
            let started = Instant::now();
            let end = self.run_once(plan, cg, kill, &mut running_reported).await;
            let End::Exited(code) = end else {
                return end;
            };
            if code == 0 || !plan.supervise {
                return end;
            }
            let delay = backoff.after_exit(started.elapsed());
            info!(code, ?delay, "supervised driver exited; restarting it");
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                reason = wait_kill(kill) => return End::Killed { reason, code: Some(code) },
            }
            if let Some(silence) = self.config.lease.lapsed() {
                // The masters count this worker lost and relaunch the driver elsewhere.
                warn!(
                    code,
                    ?silence,
                    timeout = ?self.config.lease.timeout(),
                    "not restarting the supervised driver: no leading master has answered \
                     within the masters' worker timeout, so they relaunch it elsewhere; its \
                     end is reported when a leader answers"
                );
                return end;
            }
        }
    }

    async fn run_once(
        &self,
        plan: &Plan,
        cg: Option<&ProcCgroup>,
        kill: &mut KillRx,
        running_reported: &mut bool,
    ) -> End {
        let request = match self.spawn_request(plan, cg) {
            Ok(r) => r,
            Err(why) => return End::NotStarted(why),
        };
        let mut s = match self.spawner.spawn(request).await {
            Ok(s) => s,
            Err(e) => {
                let guard = &self.config.guard[0];
                return End::NotStarted(format!("cannot start the process guard {guard:?}: {e}"));
            }
        };
        let handshake = tokio::select! {
            h = s.handshake() => h,
            reason = wait_kill(kill) => {
                let code = self.stop(&mut s, cg).await;
                return End::Killed { reason, code };
            }
        };
        match handshake {
            Handshake::Started(pid) => info!(pid, pgid = s.pgid, "started"),
            Handshake::Failed(why) => {
                reap(&mut s, cg).await;
                return End::NotStarted(why);
            }
            Handshake::Silent => {
                let code = reap(&mut s, cg).await;
                return End::NotStarted(format!(
                    "the process guard exited (code {code:?}) before starting the command"
                ));
            }
        }
        if !*running_reported {
            *running_reported = true;
            self.table.set_running(&plan.id);
            self.report_running(plan);
        }
        tokio::select! {
            code = reap(&mut s, cg) => End::Exited(code.unwrap_or(-1)),
            reason = wait_kill(kill) => {
                let code = self.stop(&mut s, cg).await;
                End::Killed { reason, code }
            }
        }
    }

    fn spawn_request(&self, plan: &Plan, cg: Option<&ProcCgroup>) -> Result<SpawnRequest, String> {
        // The guard's own stderr, for a usage error before it opens the rotated files
        // (it points it at /dev/null once it has).
        let stderr_path = plan.dir.join("stderr");
        let stderr = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&stderr_path)
            .map_err(|e| format!("cannot open {}: {e}", stderr_path.display()))?;
        let mut argv = self.config.guard.clone();
        if let Some(cg) = cg {
            argv.extend(["--cgroup".to_owned(), path_arg(cg.path())]);
        }
        argv.extend([
            "--status-fd".to_owned(),
            crate::spawn::STATUS_FD.to_string(),
            "--log-dir".to_owned(),
            path_arg(&plan.dir),
            "--log-max-file-size".to_owned(),
            self.config.logs.max_file_bytes.to_string(),
            "--log-max-files".to_owned(),
            self.config.logs.max_files.to_string(),
        ]);
        argv.push("--".to_owned());
        argv.extend(plan.argv.iter().cloned());
        Ok(SpawnRequest {
            argv,
            env: plan.env.clone(),
            remove_env: self.inherited_hearth_env.clone(),
            cwd: plan.dir.clone(),
            stdout: Stdio::null(),
            stderr: Stdio::from(stderr),
        })
    }

    /// SIGTERM to the group; SIGKILL once the grace is over if anything of it is alive.
    async fn stop(&self, s: &mut Spawned, cg: Option<&ProcCgroup>) -> Option<i32> {
        let started = Instant::now();
        let grace = self.config.kill_grace;
        info!(
            pgid = s.pgid,
            ?grace,
            "stopping: SIGTERM to the process group"
        );
        signal_group(s.pgid, Signal::TERM);
        let deadline = Instant::now() + grace;
        let mut status = tokio::time::timeout_at(deadline, s.child.wait())
            .await
            .ok()
            .and_then(Result::ok);
        // Children that outlive the guard get the rest of the grace too.
        while status.is_some() && Instant::now() < deadline && group_alive(s.pgid) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if status.is_none() || group_alive(s.pgid) {
            info!(pgid = s.pgid, "grace over: SIGKILL to the process group");
        }
        signal_group(s.pgid, Signal::KILL);
        if let Some(cg) = cg {
            cg.kill_all();
        }
        if status.is_none() {
            status = s.child.wait().await.ok();
        }
        crate::metrics::metrics()
            .kill_seconds
            .observe(started.elapsed().as_secs_f64());
        status.map(exit_code)
    }

    fn report_running(&self, plan: &Plan) {
        info!(driver_url = ?plan.driver_url, "RUNNING");
        let report = match &plan.id {
            ProcId::Executor { app, executor } => Report::executor(
                &self.config.worker_id,
                app,
                *executor,
                ExecutorState::Running,
            ),
            ProcId::Driver(d) => Report::driver(&self.config.worker_id, d, DriverState::Running)
                .with_driver_url(plan.driver_url.clone()),
        };
        self.send(report);
    }

    fn report_end(&self, plan: &Plan, end: End) {
        use DriverState as D;
        use ExecutorState as E;
        let (exec_state, driver_state, code, message) = match end {
            // The exit code says it all (the master shows "exit code N").
            End::Exited(0) => (E::Exited, D::Finished, Some(0), String::new()),
            End::Exited(c) => (E::Failed, D::Failed, Some(c), String::new()),
            End::NotStarted(why) => (E::Failed, D::Failed, None, why),
            End::Killed {
                reason: KillReason::Master,
                code,
            } => (
                E::Killed,
                D::Killed,
                code,
                "killed at the master's request".into(),
            ),
            End::Killed {
                reason: KillReason::Shutdown,
                code,
            } => {
                info!(?code, "stopped: the worker is shutting down");
                return;
            }
        };
        let shown = match &plan.id {
            ProcId::Executor { .. } => exec_state.to_string(),
            ProcId::Driver(_) => driver_state.to_string(),
        };
        crate::metrics::metrics().ended(&shown);
        let report = match &plan.id {
            ProcId::Executor { app, executor } => {
                info!(state = %exec_state, ?code, %message, "ended");
                Report::executor(&self.config.worker_id, app, *executor, exec_state)
            }
            ProcId::Driver(d) => {
                info!(state = %driver_state, ?code, %message, "ended");
                Report::driver(&self.config.worker_id, d, driver_state)
            }
        };
        self.send(report.with_exit(code, message));
    }

    fn send(&self, report: Report) {
        if self.reports.send(report).is_err() {
            // Only after the link stopped, at shutdown.
            warn!("state report dropped: the master link has stopped");
        }
    }
}

/// Waits for the guard to exit, then kills what is left of its group (and cgroup).
async fn reap(s: &mut Spawned, cg: Option<&ProcCgroup>) -> Option<i32> {
    let status = s.child.wait().await;
    signal_group(s.pgid, Signal::KILL);
    if let Some(cg) = cg {
        cg.kill_all();
    }
    status.ok().map(exit_code)
}

/// Waits until the process is asked to stop.
async fn wait_kill(kill: &mut KillRx) -> KillReason {
    match kill.wait_for(Option::is_some).await {
        Ok(reason) => reason.unwrap_or(KillReason::Shutdown),
        // The table is gone: the worker is going away.
        Err(_) => KillReason::Shutdown,
    }
}

fn path_arg(p: &Path) -> String {
    p.display().to_string()
}
