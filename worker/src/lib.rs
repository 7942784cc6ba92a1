//! hearth-worker: the worker agent. It offers a machine's cores and memory to the
//! masters and runs the executors and drivers the leader places on it.
//!
//! Owns: registration and heartbeats, re-registration with a new leader (reporting what
//! it really runs), at-least-once state reports, the `WorkerControl` gRPC service, term
//! fencing (the highest obeyed term, durable in `WORK_DIR/worker-term`), idempotent
//! launches by `(app, executor)` / driver id, and the process runners: process groups
//! behind a guard with a parent-death signal, logs rotated by size, kill with grace,
//! supervise, memory limits through cgroup v2 where the machine allows it, and the work
//! dir's hygiene (finished directories removed after a time-to-live or oldest first
//! above a size; the table of ended processes bounded).
//!
//! Must not: trust a command from an older term than the highest it has obeyed (it
//! refuses it and starts and kills nothing); start a second process for an id it runs or
//! ran (among the last [`Housekeeping::keep_finished`] that ended, see `table`); remove
//! the directory of a live process; leave a process behind when it stops or dies (even
//! when SIGKILLed, even a grandchild); give up on the masters (it retries forever, with
//! backoff); decide anything about placement (that is the leader's, through
//! hearth-core).
//!
//! # Layout
//! - [`run`]: wires everything together and serves until `shutdown`.
//! - `control`: the `WorkerControl` service; `fence`: the term store.
//! - `link`: registration, heartbeats, the report queue (uses hearth-client's
//!   `MasterClient`, which follows `NotLeader` hints); `lease`: whether a leader answered
//!   within the masters' worker timeout (supervised drivers are not restarted after).
//! - `table`: what runs and ran (idempotency, kills, the registration report).
//! - `plan`: a launch request to a directory + environment; `runner`: one task per
//!   process (LAUNCHING → RUNNING → EXITED/FAILED/KILLED, supervise); `spawn`: the
//!   dedicated spawner thread and process-group signals; [`guard`]: the process guard
//!   (`hearth __guard`, or the `hearth-guard` test binary); `logs`: the guard's copy of
//!   each process's stdout/stderr into files rotated by size; `cgroup`: memory limits.
//! - `gc`: the work dir's cleanup (at start, then every `cleanup_interval`).
//!
//! # Process tree
//! ```text
//! worker ──(spawner thread)── guard  [leader of group G, PDEATHSIG → kill(0, SIGKILL)]
//!                               └── command [group G]   stdout, stderr: pipes the
//!                                     └── its children     guard copies into rotated
//!                                         [group G]         files (`logs`)
//! ```
//! The worker kills a process with `kill(-G, SIGTERM)`, then `kill(-G, SIGKILL)` after
//! `kill_grace`; when the worker dies, each guard gets SIGUSR1 and kills its group. A
//! process that leaves its group (`setsid`) escapes this; with cgroups it is still
//! killed through `cgroup.kill` when the worker stops it.

mod backoff;
mod cgroup;
mod control;
mod error;
mod fence;
mod gc;
pub mod guard;
mod lease;
mod link;
mod logread;
mod logs;
mod metrics;
mod plan;
mod runner;
mod spawn;
mod table;

pub use cgroup::{detect_memory_enforcement, MemoryEnforcement};
pub use error::WorkerError;
pub use fence::TERM_FILE;
pub use logs::LogLimits;

use control::Control;
use hearth_core::{ids, Millis, WorkerId, WorkerIdentity};
use hearth_proto::pb::worker_control_server::WorkerControlServer;
use link::Link;
use runner::{Runner, RunnerConfig};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tracing::{info, info_span, Instrument};

/// File in the work dir holding the id of the worker that runs there now (for people and
/// tests; the worker never reads it).
pub const WORKER_ID_FILE: &str = "worker-id";

/// How a worker is set up. Every field is needed; the `DEFAULT_*` constants give the
/// usual values.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// `host:port` gRPC addresses of all masters; the worker finds the leader itself.
    pub masters: Vec<String>,
    /// The address the worker advertises: masters call it there, and drivers'
    /// `HEARTH_DRIVER_URL` carries it.
    pub host: String,
    /// Cores offered to the masters.
    pub cores: u32,
    /// Memory offered, in MiB.
    pub memory_mb: u64,
    /// Where processes run (`<app>/<executor>/`, `<driver>/`) and the term file lives.
    pub work_dir: PathBuf,
    /// How often a registered worker tells the leader it lives. `None`: as the leader
    /// asks at registration (a quarter of its worker timeout), and
    /// [`Self::DEFAULT_HEARTBEAT_INTERVAL`] until then. `Some`: this interval whatever
    /// the leader asks (a warning says when it is slower than that).
    pub heartbeat_interval: Option<Duration>,
    /// Time between SIGTERM and SIGKILL when stopping a process.
    pub kill_grace: Duration,
    /// argv prefix that runs the process guard, e.g. `[current_exe, "__guard"]`.
    pub guard: Vec<String>,
    /// HTTP port advertised to the masters (0: none).
    pub http_port: u16,
    /// More gRPC services served on the worker's port (the drill service, when drills
    /// are enabled).
    pub extra_grpc: Option<tonic::service::Routes>,
    /// The cluster secret (`--secret-file`): the masters must send it to this worker's
    /// port, and this worker sends it to them. `None`: a cluster without one.
    pub secret: Option<hearth_proto::auth::Secret>,
    /// Mutual TLS on this worker's port and to the masters (`--tls-*`); `None`: plain TCP.
    pub tls: Option<hearth_proto::tls::Tls>,
    /// Log rotation, cleanup of finished directories, the bound on remembered processes.
    pub housekeeping: Housekeeping,
}

/// What keeps a long-running worker's disk and memory bounded; on by default
/// ([`Housekeeping::default`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Housekeeping {
    /// Each process's stdout and stderr are rotated by size: `stdout` (newest),
    /// `stdout.1`, … `stdout.<max_files - 1>` (oldest), each at most `max_file_bytes`.
    pub logs: LogLimits,
    /// Directories of ended processes last modified longer ago than this are removed.
    pub finished_dir_ttl: Duration,
    /// While the process directories add up to more than this (bytes), directories of
    /// ended processes are removed, oldest first. Live ones are never removed.
    pub work_dir_max_bytes: u64,
    /// How often the work dir is cleaned (also once at start).
    pub cleanup_interval: Duration,
    /// How many ended processes the worker remembers (a launch of one of them is a
    /// duplicate); older ones are forgotten.
    pub keep_finished: usize,
}

impl Housekeeping {
    pub const DEFAULT_FINISHED_DIR_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
    pub const DEFAULT_WORK_DIR_MAX_BYTES: u64 = 10 << 30;
    pub const DEFAULT_CLEANUP_INTERVAL: Duration = Duration::from_secs(60);
    pub const DEFAULT_KEEP_FINISHED: usize = table::Table::DEFAULT_KEEP_FINISHED;
}

impl Default for Housekeeping {
    /// 10 files of 10 MiB per stream, ended directories kept 7 days and within 10 GiB,
    /// cleaned every minute, the last 1,000 ended processes remembered.
    fn default() -> Self {
        Housekeeping {
            logs: LogLimits::DEFAULT,
            finished_dir_ttl: Self::DEFAULT_FINISHED_DIR_TTL,
            work_dir_max_bytes: Self::DEFAULT_WORK_DIR_MAX_BYTES,
            cleanup_interval: Self::DEFAULT_CLEANUP_INTERVAL,
            keep_finished: Self::DEFAULT_KEEP_FINISHED,
        }
    }
}

impl WorkerConfig {
    /// A quarter of the default 60 s worker timeout, as in Spark.
    pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(15);
    pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(5);

    fn validate(&self) -> Result<(), WorkerError> {
        let bad = |field, reason: &str| {
            Err(WorkerError::Config {
                field,
                reason: reason.to_owned(),
            })
        };
        if self.masters.is_empty() {
            return bad("masters", "no master address given");
        }
        if self.guard.first().is_none_or(|g| g.is_empty()) {
            return bad("guard", "no process guard command given");
        }
        if self.heartbeat_interval.is_some_and(|d| d.is_zero()) {
            return bad("heartbeat_interval", "must be above zero");
        }
        if self.host.is_empty() {
            return bad("host", "no address to advertise");
        }
        let h = &self.housekeeping;
        if h.logs.max_file_bytes == 0 || h.logs.max_files == 0 {
            return bad(
                "housekeeping.logs",
                "files of at least 1 byte, at least 1 file",
            );
        }
        if h.cleanup_interval.is_zero() {
            return bad("housekeeping.cleanup_interval", "must be above zero");
        }
        if h.keep_finished == 0 {
            return bad("housekeeping.keep_finished", "must be at least 1");
        }
        Ok(())
    }
}

fn now() -> Millis {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Millis(since.as_millis() as u64)
}

/// Runs a worker: serves `WorkerControl` on `listener`, registers with the masters and
/// heartbeats, runs what the leader asks. When `shutdown` completes it stops serving,
/// stops every process it started (SIGTERM, `kill_grace`, SIGKILL) and returns.
///
/// Fails at startup if the work dir cannot be used or its term file is corrupt; once
/// serving, masters being unreachable is never an error (it keeps trying).
pub async fn run(
    config: WorkerConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    config.validate()?;
    let port = listener.local_addr()?.port();
    let id = fresh_id(&config.work_dir, &config.host, port);
    let span = info_span!("worker", worker_id = %id);
    serve(config, id, port, listener, shutdown)
        .instrument(span)
        .await
}

/// Spark's worker id (start second, host, port), never the id the previous process in
/// this work dir had: a worker restarted within the same second at the same address
/// would otherwise pass for the old one, and the master would keep counting processes
/// that died with it.
fn fresh_id(work_dir: &Path, host: &str, port: u16) -> WorkerId {
    let previous = std::fs::read_to_string(work_dir.join(WORKER_ID_FILE)).unwrap_or_default();
    fresh_id_after(now(), previous.trim(), host, port)
}

/// A worker id stamped `at` or, if the id this work dir had last (`previous`) is stamped
/// `at` or later, the first second after it. Ids of a worker restarted in place only
/// move forward, even several restarts within one second: reusing an earlier id would
/// make the master take the new process for a worker it already buried.
fn fresh_id_after(at: Millis, previous: &str, host: &str, port: u16) -> WorkerId {
    // `worker-YYYYMMDDHHMMSS-...`: fixed-width digits compare as numbers.
    let last = previous
        .strip_prefix("worker-")
        .and_then(|s| s.get(..14))
        .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or("");
    let mut at = at;
    while at.compact_utc().as_str() <= last {
        at = Millis(at.0 + 1000);
    }
    ids::worker_id(at, host, port)
}

async fn serve(
    config: WorkerConfig,
    id: WorkerId,
    port: u16,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let Parts {
        control,
        runner,
        link,
        reports,
        table,
        lease,
    } = assemble(&config, id, port).await?;
    let scraped = (Arc::clone(&table), lease);
    let link_task = tokio::spawn(link.run(reports).in_current_span());
    let h = config.housekeeping;
    let stop_cleaning = Arc::new(AtomicBool::new(false));
    let cleaner = tokio::spawn(
        gc::run(
            control.plans.work_dir.clone(),
            table,
            gc::CleanupRules {
                ttl: h.finished_dir_ttl,
                max_bytes: h.work_dir_max_bytes,
            },
            h.cleanup_interval,
            Arc::clone(&stop_cleaning),
        )
        .in_current_span(),
    );
    // Every service of the port behind the cluster secret (hearth_proto::auth).
    let routes = config
        .extra_grpc
        .clone()
        .unwrap_or_default()
        .add_service(WorkerControlServer::new(control));
    // `GET /metrics` over HTTP/1.1 on the same port (open, like the masters').
    let metrics = axum::routing::get(move || {
        let (table, lease) = scraped.clone();
        async move { metrics::render(table.counts(), &lease) }
    });
    let guarded = routes.into_axum_router().route("/metrics", metrics).layer(
        axum::middleware::from_fn_with_state(
            config.secret.clone().map(hearth_proto::auth::Access::from),
            hearth_proto::auth::require_secret,
        ),
    );
    let served = tonic::transport::Server::builder()
        .accept_http1(true)
        .add_routes(tonic::service::Routes::from(guarded))
        .serve_with_incoming_shutdown(
            hearth_proto::tls::incoming(listener, config.tls.as_ref()),
            shutdown,
        )
        .await;
    info!("shutting down: stopping every process");
    link_task.abort();
    // Before the processes stop: their directories stay for the next run's cleanup.
    stop_cleaning.store(true, Ordering::Relaxed);
    cleaner.abort();
    runner.shutdown().await;
    info!("worker stopped");
    served.map_err(|e| anyhow::anyhow!("serving WorkerControl failed: {e}"))
}

/// What a running worker is made of.
struct Parts {
    control: Control,
    runner: Arc<Runner>,
    link: Arc<Link>,
    reports: tokio::sync::mpsc::UnboundedReceiver<link::Report>,
    table: Arc<table::Table>,
    lease: Arc<lease::MasterLease>,
}

/// Opens the work dir and its term file, finds out about cgroups, starts the spawner
/// thread and wires the parts together.
async fn assemble(config: &WorkerConfig, id: WorkerId, port: u16) -> Result<Parts, WorkerError> {
    let work_dir = prepare_work_dir(&config.work_dir)?;
    let fence = Arc::new(fence::TermStore::open(&work_dir)?);
    fence::write_atomic(&work_dir.join(WORKER_ID_FILE), &format!("{id}\n"))?;
    let memory = detect_memory_enforcement();
    let highest_term = fence.highest().await;
    info!(
        host = %config.host, port, cores = config.cores, memory_mb = config.memory_mb,
        work_dir = %work_dir.display(), highest_term, "worker starting; {memory}"
    );
    let cgroups = match memory {
        MemoryEnforcement::Enforced { parent } => Some(parent),
        MemoryEnforcement::NotEnforced { .. } => None,
    };
    let h = config.housekeeping;
    info!(
        log_max_file_bytes = h.logs.max_file_bytes,
        log_max_files = h.logs.max_files,
        finished_dir_ttl = ?h.finished_dir_ttl,
        work_dir_max_bytes = h.work_dir_max_bytes,
        "housekeeping"
    );
    let table = Arc::new(table::Table::new(h.keep_finished));
    let (reports_tx, reports) = tokio::sync::mpsc::unbounded_channel();
    let spawner =
        spawn::Spawner::start(tokio::runtime::Handle::current()).map_err(WorkerError::Spawner)?;
    let lease = Arc::new(lease::MasterLease::new(
        config
            .heartbeat_interval
            .unwrap_or(WorkerConfig::DEFAULT_HEARTBEAT_INTERVAL),
    ));
    let runner_config = RunnerConfig {
        lease: Arc::clone(&lease),
        worker_id: id.clone(),
        guard: config.guard.clone(),
        kill_grace: config.kill_grace,
        cgroups,
        logs: h.logs,
        span: tracing::Span::current(),
    };
    let runner = Arc::new(Runner::new(
        runner_config,
        Arc::clone(&table),
        reports_tx,
        spawner,
    ));
    let identity = WorkerIdentity {
        id: id.clone(),
        host: config.host.clone(),
        port,
        http_port: config.http_port,
        cores: config.cores,
        memory_mb: config.memory_mb,
    };
    let link = Link::new(
        config.masters.clone(),
        identity,
        Arc::clone(&table),
        config.heartbeat_interval,
        hearth_proto::auth::Credential::new(config.secret.as_ref()).with_tls(config.tls.as_ref()),
        Arc::clone(&fence),
        Arc::clone(&lease),
    );
    let plans = plan::PlanContext {
        work_dir,
        masters_url: format!("hearth://{}", config.masters.join(",")),
        host: config.host.clone(),
    };
    let control = Control {
        id,
        fence,
        plans,
        table: Arc::clone(&table),
        runner: Arc::clone(&runner),
        link: Arc::clone(&link),
        span: tracing::Span::current(),
    };
    Ok(Parts {
        control,
        runner,
        link,
        reports,
        table,
        lease,
    })
}

/// Creates the work dir and returns its absolute path.
fn prepare_work_dir(dir: &Path) -> Result<PathBuf, WorkerError> {
    std::fs::create_dir_all(dir).map_err(|e| WorkerError::io("create", dir, e))?;
    std::fs::canonicalize(dir).map_err(|e| WorkerError::io("resolve", dir, e))
}

#[cfg(test)]
mod id_tests {
    use super::*;

    #[test]
    fn a_restarted_worker_never_reuses_the_previous_id() {
        let dir = std::env::temp_dir().join(format!("hearth-worker-id-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let previous = fresh_id(&dir, "127.0.0.1", 7078);
        std::fs::write(dir.join(WORKER_ID_FILE), format!("{previous}\n")).unwrap();
        let next = fresh_id(&dir, "127.0.0.1", 7078);
        assert_ne!(next, previous);
        assert!(next.0.starts_with("worker-") && next.0.ends_with("-127.0.0.1-7078"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn ids_of_restarts_within_one_second_only_move_forward() {
        // 2026-11-23T23:54:15Z, three restarts in that second: 15, 16, 17, never back
        // to 15 (which the master already knows as dead).
        let at = Millis(1_795_478_055_200);
        let a = fresh_id_after(at, "", "h", 1);
        let b = fresh_id_after(Millis(at.0 + 300), &a.0, "h", 1);
        let c = fresh_id_after(Millis(at.0 + 600), &b.0, "h", 1);
        assert_eq!(
            [a.0, b.0, c.0],
            [
                "worker-20261123235415-h-1",
                "worker-20261123235416-h-1",
                "worker-20261123235417-h-1"
            ]
        );
        // A clock that is ahead of the previous id, or garbage in the file: now.
        assert_eq!(
            fresh_id_after(at, "worker-20261123235400-h-1", "h", 1).0,
            "worker-20261123235415-h-1"
        );
        assert_eq!(
            fresh_id_after(at, "not an id", "h", 1).0,
            "worker-20261123235415-h-1"
        );
    }
}
