//! `hearth master`, `hearth worker` and `hearth local`.

use crate::units::{parse_cores, parse_duration, parse_mib};
use crate::{Failure, Outcome};
use clap::{Args, ValueEnum};
use hearth_core::ClusterState;
use hearth_core::{ClusterConfig, Policy, WorkerSelection};
use hearth_master::{FsJournal, Journal, MasterConfig, NoJournal};
use hearth_worker::WorkerConfig;
use std::path::PathBuf;
use std::time::Duration;
use tokio::net::TcpListener;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RecoveryMode {
    /// Nothing survives a restart of the master.
    None,
    /// One master; state restored from --recovery-dir after a restart or crash.
    Filesystem,
    /// Several masters replicating through Raft (--id, --peers, --recovery-dir).
    Raft,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Selection {
    CoresFreeDesc,
    CoresFreeAsc,
    MemoryFreeDesc,
    MemoryFreeAsc,
    WorkerId,
}

#[derive(Args)]
pub struct MasterArgs {
    /// This master's id (its Raft node id in raft mode).
    #[arg(long, default_value_t = 1, env = "HEARTH_MASTER_ID")]
    id: u64,
    /// Address to listen on and to advertise to workers and clients.
    #[arg(long, default_value = "127.0.0.1", env = "HEARTH_HOST")]
    host: String,
    /// The host:port workers, clients and peers reach this master at, when it differs
    /// from --host and --port (a proxy or NAT in between). In raft mode it must be this
    /// master's entry in --peers.
    #[arg(long, value_name = "HOST:PORT", env = "HEARTH_ADVERTISE")]
    advertise: Option<String>,
    /// gRPC port for workers, apps and the CLI (0: any free port, printed at start).
    #[arg(long, default_value_t = 7077, env = "HEARTH_PORT")]
    port: u16,
    /// HTTP port for the status page, /json and /readyz (0: any free port).
    #[arg(long, default_value_t = 8080, env = "HEARTH_HTTP_PORT")]
    http_port: u16,
    /// What survives a master restart: none, filesystem or raft.
    #[arg(long, value_enum, default_value_t = RecoveryMode::None, env = "HEARTH_RECOVERY_MODE")]
    recovery_mode: RecoveryMode,
    /// Directory for the filesystem or raft recovery modes.
    #[arg(long, env = "HEARTH_RECOVERY_DIR")]
    recovery_dir: Option<PathBuf>,
    /// Raft peers, 1=host:port,2=host:port,3=host:port (raft mode): every master's id
    /// and gRPC address, this one's included. All masters get the same list.
    #[arg(long, env = "HEARTH_PEERS")]
    peers: Option<String>,
    /// Raft: how often the leader heartbeats its followers.
    #[arg(long, default_value = "50ms", value_parser = parse_duration, env = "HEARTH_RAFT_HEARTBEAT")]
    raft_heartbeat: Duration,
    /// Raft: a follower that hears no leader for a random time between this and
    /// --election-timeout-max calls an election; a leader that hears no quorum for this
    /// long stops commanding workers and accepting writes.
    #[arg(long, default_value = "150ms", value_parser = parse_duration, env = "HEARTH_ELECTION_TIMEOUT_MIN")]
    election_timeout_min: Duration,
    /// Raft: upper bound of the randomized election timeout; also how long followers
    /// keep trusting a silent leader (openraft's leader lease), so it bounds failover.
    #[arg(long, default_value = "250ms", value_parser = parse_duration, env = "HEARTH_ELECTION_TIMEOUT_MAX")]
    election_timeout_max: Duration,
    /// Raft: reach these peers at another address than their --peers one, as
    /// ID=host:port,... (a proxy in between; failover tests cut masters off this way).
    #[arg(long, value_name = "ID=HOST:PORT,...", env = "HEARTH_PEER_VIA")]
    peer_via: Option<String>,
    /// Raft: build a snapshot (and drop the log it covers) after this many entries.
    #[arg(long, default_value_t = 5000, env = "HEARTH_RAFT_SNAPSHOT_EVERY")]
    raft_snapshot_every: u64,
    /// Filesystem mode: drop the damaged journal record at FILE:OFFSET (as named by the
    /// error that stopped the master) and everything after it. Only for an operator who
    /// has read `hearth recovery verify` and accepts losing those records.
    #[arg(long, value_name = "FILE:OFFSET")]
    truncate_at: Option<hearth_recovery::TruncatePoint>,
    /// A worker silent for longer is DEAD and its executors are rescheduled.
    #[arg(long, default_value = "60s", value_parser = parse_duration, env = "HEARTH_WORKER_TIMEOUT")]
    worker_timeout: Duration,
    /// How long a master that takes over waits for workers and apps to check in
    /// (it becomes ALIVE as soon as all have). Default: the worker timeout.
    #[arg(long, value_parser = parse_duration, env = "HEARTH_RECOVERY_TIMEOUT")]
    recovery_timeout: Option<Duration>,
    /// A client-mode app whose `hearth submit` is silent for longer is FAILED.
    /// Default: the worker timeout.
    #[arg(long, value_parser = parse_duration, env = "HEARTH_APP_TIMEOUT")]
    app_timeout: Option<Duration>,
    /// Spread each app's executors over as many workers as possible (false: fill one
    /// worker first).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, env = "HEARTH_SPREAD_OUT")]
    spread_out: bool,
    /// Which workers executors go to first.
    #[arg(long, value_enum, default_value_t = Selection::CoresFreeDesc, env = "HEARTH_WORKER_SELECTION")]
    worker_selection: Selection,
    /// Core cap for apps that set no --total-executor-cores (default: unlimited).
    #[arg(long, value_parser = parse_cores, env = "HEARTH_DEFAULT_CORES")]
    default_cores: Option<u32>,
    /// Executor failures in a row after which an app with none running FAILS
    /// (-1: never).
    #[arg(
        long,
        default_value_t = 10,
        allow_negative_numbers = true,
        env = "HEARTH_MAX_EXECUTOR_RETRIES"
    )]
    max_executor_retries: i64,
    /// Completed apps kept for display.
    #[arg(long, default_value_t = 200, env = "HEARTH_RETAINED_APPS")]
    retained_apps: usize,
    /// Completed drivers kept for display.
    #[arg(long, default_value_t = 200, env = "HEARTH_RETAINED_DRIVERS")]
    retained_drivers: usize,
    /// Run without a cluster secret on an address other machines can reach (anyone who
    /// reaches the port is obeyed). Without it, such a master refuses to start.
    #[arg(long)]
    insecure_no_auth: bool,
    /// Named submit tokens, one `NAME TOKEN` per line (make a token with `hearth secret
    /// new`), in a file readable by its owner only. A token's holder may only submit,
    /// look at and kill apps (no workers' calls, decommission, membership, drills); the
    /// app records the token's name as its user. Needs the cluster secret.
    #[arg(long, env = "HEARTH_SUBMIT_TOKEN_FILE", value_name = "FILE")]
    submit_token_file: Option<std::path::PathBuf>,
    #[command(flatten)]
    drills: crate::drill::DrillFlags,
}

pub(crate) async fn bind(
    host: &str,
    port: u16,
    what: &str,
    flag: &str,
) -> Result<TcpListener, Failure> {
    TcpListener::bind((host, port)).await.map_err(|e| {
        Failure::Request(format!(
            "cannot listen for {what} on {host}:{port}: {e}; is another hearth running there? choose another {flag}"
        ))
    })
}

pub(crate) async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("stopping on signal");
}

/// Files and directories this server creates (recovery dirs, RocksDB, work dirs, the
/// worker's fence, logs of launched processes) are its user's only: they hold app env
/// values and the cluster's state.
fn private_files() {
    rustix::process::umask(rustix::fs::Mode::RWXG | rustix::fs::Mode::RWXO);
}

/// Refuses a directory that other users may write into (they could plant or replace
/// state), saying how to fix it. A directory that does not exist yet is made private.
fn check_private_dir(dir: &std::path::Path, flag: &str) -> Outcome {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(dir) {
        Ok(m) if m.permissions().mode() & 0o022 != 0 => Err(Failure::Usage(format!(
            "{flag} {} may be written by other users (mode {:03o}); `chmod 700 {}`",
            dir.display(),
            m.permissions().mode() & 0o777,
            dir.display()
        ))),
        _ => Ok(()),
    }
}

pub async fn master(a: MasterArgs) -> Outcome {
    private_files();
    if let Some(dir) = &a.recovery_dir {
        check_private_dir(dir, "--recovery-dir")?;
    }
    let raft = match a.recovery_mode {
        RecoveryMode::Raft => Some(raft_options(&a)?),
        _ => None,
    };
    let max_executor_retries = match a.max_executor_retries {
        n if n < 0 => None,
        n => Some(
            u32::try_from(n)
                .map_err(|_| Failure::Usage("--max-executor-retries is too large".into()))?,
        ),
    };
    let worker_selection = match a.worker_selection {
        Selection::CoresFreeDesc => WorkerSelection::CoresFreeDesc,
        Selection::CoresFreeAsc => WorkerSelection::CoresFreeAsc,
        Selection::MemoryFreeDesc => WorkerSelection::MemoryFreeDesc,
        Selection::MemoryFreeAsc => WorkerSelection::MemoryFreeAsc,
        Selection::WorkerId => WorkerSelection::WorkerId,
    };
    let isolation = hearth_master::drill::Isolation::default();
    let config = MasterConfig {
        id: a.id,
        host: a.host.clone(),
        advertise: a.advertise.clone(),
        worker_timeout: a.worker_timeout,
        recovery_timeout: a.recovery_timeout.unwrap_or(a.worker_timeout),
        app_timeout: a.app_timeout.unwrap_or(a.worker_timeout),
        policy: Policy {
            spread_out_apps: a.spread_out,
            spread_out_drivers: true,
            worker_selection,
            default_cores: a.default_cores,
            max_drivers: None,
        },
        cluster: ClusterConfig {
            max_executor_retries,
            retained_apps: a.retained_apps,
            retained_drivers: a.retained_drivers,
        },
        extra_grpc: a.drills.routes(Some(isolation.clone()))?,
        isolation,
        secret: crate::secret::get(),
        submit_tokens: submit_tokens(a.submit_token_file.as_deref())?,
        tls: crate::secret::tls(),
    };
    crate::secret::check_exposure(&a.host, a.insecure_no_auth, "master")?;
    let grpc = bind(&a.host, a.port, "gRPC", "--port").await?;
    let http = bind(&a.host, a.http_port, "HTTP", "--http-port").await?;
    // Two lines a script (or `hearth local`) can read to find an ephemeral port.
    println!(
        "HEARTH_MASTERS=hearth://{}:{}",
        a.host,
        grpc.local_addr()?.port()
    );
    let scheme = if crate::secret::tls().is_some() {
        "https"
    } else {
        "http"
    };
    println!(
        "HEARTH_UI={scheme}://{}:{}",
        a.host,
        http.local_addr()?.port()
    );
    tracing::info!(id = a.id, grpc = %grpc.local_addr()?, http = %http.local_addr()?, "master listening");
    ready();
    let ran = match raft {
        Some(opts) => hearth_master::serve_raft(config, opts, grpc, http, shutdown_signal()).await,
        None => {
            let (journal, restored) = open_persistence(&a)?;
            hearth_master::serve(config, journal, restored, grpc, http, shutdown_signal()).await
        }
    };
    ran.map_err(|e| Failure::Request(format!("master failed: {e:#}")))
}

/// `--recovery-mode raft`'s settings, checked.
fn raft_options(a: &MasterArgs) -> Result<hearth_master::RaftOptions, Failure> {
    if a.truncate_at.is_some() {
        return Err(Failure::Usage(
            "--truncate-at needs --recovery-mode filesystem".into(),
        ));
    }
    let dir = a
        .recovery_dir
        .clone()
        .ok_or_else(|| Failure::Usage("--recovery-mode raft needs --recovery-dir DIR".into()))?;
    let peers = a.peers.as_deref().ok_or_else(|| {
        Failure::Usage(
            "--recovery-mode raft needs --peers 1=host:port,2=host:port,3=host:port".into(),
        )
    })?;
    let peers = parse_peers(peers).map_err(Failure::Usage)?;
    std::fs::create_dir_all(&dir).map_err(|e| {
        Failure::Request(format!(
            "cannot create --recovery-dir {}: {e}",
            dir.display()
        ))
    })?;
    let opts = hearth_master::RaftOptions {
        id: a.id,
        peers,
        dir,
        heartbeat: a.raft_heartbeat,
        election_min: a.election_timeout_min,
        election_max: a.election_timeout_max,
        snapshot_every: a.raft_snapshot_every,
        via: match &a.peer_via {
            Some(v) => {
                parse_peers(v).map_err(|e| Failure::Usage(e.replace("--peers", "--peer-via")))?
            }
            None => Default::default(),
        },
        credential: crate::secret::credential(),
    };
    opts.config()
        .map_err(|e| Failure::Usage(format!("{e:#}")))?;
    Ok(opts)
}

/// `1=host:port,2=host:port` as a map from id to address.
pub(crate) fn parse_peers(s: &str) -> Result<std::collections::BTreeMap<u64, String>, String> {
    let mut peers = std::collections::BTreeMap::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let bad = || format!("--peers: {item:?} is not ID=host:port (e.g. 1=10.0.0.1:7077)");
        let (id, addr) = item.split_once('=').ok_or_else(bad)?;
        let id: u64 = id.trim().parse().map_err(|_| bad())?;
        let (host, port) = addr.trim().rsplit_once(':').ok_or_else(bad)?;
        if host.is_empty() || port.parse::<u16>().is_err() {
            return Err(bad());
        }
        if peers.insert(id, addr.trim().to_owned()).is_some() {
            return Err(format!("--peers names master {id} twice"));
        }
    }
    if peers.is_empty() {
        return Err("--peers is empty".into());
    }
    Ok(peers)
}

type Persistence = (Box<dyn Journal>, (ClusterState, u64));

/// The master's journal and the state it restores, by recovery mode.
fn open_persistence(a: &MasterArgs) -> Result<Persistence, Failure> {
    if a.peers.is_some() && a.recovery_mode != RecoveryMode::Raft {
        return Err(Failure::Usage("--peers needs --recovery-mode raft".into()));
    }
    if a.truncate_at.is_some() && a.recovery_mode != RecoveryMode::Filesystem {
        return Err(Failure::Usage(
            "--truncate-at needs --recovery-mode filesystem".into(),
        ));
    }
    match a.recovery_mode {
        RecoveryMode::None => {
            if a.recovery_dir.is_some() {
                return Err(Failure::Usage(
                    "--recovery-dir needs --recovery-mode filesystem or raft".into(),
                ));
            }
            Ok((Box::new(NoJournal::new()), (ClusterState::default(), 0)))
        }
        RecoveryMode::Filesystem => {
            let dir = a.recovery_dir.clone().ok_or_else(|| {
                Failure::Usage("--recovery-mode filesystem needs --recovery-dir DIR".into())
            })?;
            std::fs::create_dir_all(&dir).map_err(|e| {
                Failure::Request(format!(
                    "cannot create --recovery-dir {}: {e}",
                    dir.display()
                ))
            })?;
            let opts = hearth_recovery::Options {
                allow_truncate_at: a.truncate_at.clone(),
                ..hearth_recovery::Options::default()
            };
            let (journal, r) = hearth_recovery::Journal::open(&dir, opts)
                .map_err(|e| Failure::Request(e.to_string()))?;
            tracing::info!(
                dir = %dir.display(),
                lsn = r.lsn,
                snapshot = ?r.snapshot_lsn,
                replayed = r.replayed,
                workers = r.state.workers.len(),
                apps = r.state.apps.len(),
                drivers = r.state.drivers.len(),
                took_ms = r.elapsed.as_millis() as u64,
                "state restored"
            );
            if let Some(t) = &r.truncated_tail {
                tracing::warn!(file = %t.file.display(), offset = t.offset, bytes = t.bytes_dropped, problem = %t.problem, "journal tail cut");
            }
            Ok((Box::new(FsJournal(journal)), (r.state, r.lsn)))
        }
        RecoveryMode::Raft => unreachable!("raft mode does not use a journal"),
    }
}

#[derive(Args)]
pub struct WorkerArgs {
    /// The masters: hearth://host:port[,host:port...] (also --master or HEARTH_MASTERS).
    #[arg(long = "masters", value_name = "URL")]
    masters: Option<String>,
    /// Cores to offer (default: every core of this machine).
    #[arg(long, value_parser = parse_cores, env = "HEARTH_WORKER_CORES")]
    cores: Option<u32>,
    /// Memory to offer, e.g. 8g or 512m (default: this machine's memory minus 1 GiB).
    #[arg(long, value_parser = parse_mib, env = "HEARTH_WORKER_MEMORY")]
    memory: Option<u64>,
    /// Where executors and drivers run (one directory each, with stdout and stderr).
    #[arg(long, default_value = "work", env = "HEARTH_WORK_DIR")]
    work_dir: PathBuf,
    /// Address to listen on and to advertise to masters (and drivers' URL host).
    #[arg(long, default_value = "127.0.0.1", env = "HEARTH_WORKER_HOST")]
    host: String,
    /// gRPC port the leader sends launches and kills to (0: any free port).
    #[arg(long, default_value_t = 0, env = "HEARTH_WORKER_PORT")]
    port: u16,
    /// HTTP port advertised to masters (reserved: the worker serves no HTTP yet).
    #[arg(long, default_value_t = 0, env = "HEARTH_WORKER_HTTP_PORT")]
    http_port: u16,
    /// How often to heartbeat. Default: as the leading master asks when the worker
    /// registers (a quarter of its --worker-timeout), 15s until then. Set, it is kept
    /// whatever the master asks, with a warning when it is slower than that.
    #[arg(long, value_parser = parse_duration, env = "HEARTH_HEARTBEAT_INTERVAL")]
    heartbeat_interval: Option<Duration>,
    /// Time between SIGTERM and SIGKILL when killing a process.
    #[arg(long, default_value = "5s", value_parser = parse_duration, env = "HEARTH_KILL_GRACE")]
    kill_grace: Duration,
    /// Largest file of a process's stdout or stderr, e.g. 10m. A full `stdout` becomes
    /// `stdout.1` (`stdout.1` becomes `stdout.2`, ...) and a new `stdout` starts.
    #[arg(long, default_value = "10m", value_parser = parse_mib, env = "HEARTH_LOG_MAX_FILE_SIZE")]
    log_max_file_size: u64,
    /// Files kept per stream of a process, the current one included; older output is
    /// dropped.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..), env = "HEARTH_LOG_MAX_FILES")]
    log_max_files: u32,
    /// Directories of processes that ended are removed once nothing in them has changed
    /// for this long, e.g. 7d or 12h.
    #[arg(long, default_value = "7d", value_parser = parse_duration, env = "HEARTH_FINISHED_DIR_TTL")]
    finished_dir_ttl: Duration,
    /// While the process directories in --work-dir add up to more than this, e.g. 10g,
    /// directories of processes that ended are removed, oldest first. A live process's
    /// directory is never removed.
    #[arg(long, default_value = "10g", value_parser = parse_mib, env = "HEARTH_WORK_DIR_MAX_SIZE")]
    work_dir_max_size: u64,
    /// Run without a cluster secret on an address other machines can reach (anyone who
    /// reaches the port can start processes here). Without it, such a worker refuses to
    /// start.
    #[arg(long)]
    insecure_no_auth: bool,
    #[command(flatten)]
    drills: crate::drill::DrillFlags,
}

fn machine_memory_mib() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some((kib / 1024).saturating_sub(1024).max(1024))
}

pub async fn worker(a: WorkerArgs, master: Option<String>) -> Outcome {
    private_files();
    check_private_dir(&a.work_dir, "--work-dir")?;
    let url = a.masters.or(master).ok_or_else(|| {
        Failure::Usage(
            "no master given: pass --masters hearth://host:port or set HEARTH_MASTERS".into(),
        )
    })?;
    let masters = hearth_client::parse_masters(&url).map_err(|e| Failure::Usage(e.to_string()))?;
    let cores = match a.cores {
        Some(c) => c,
        None => std::thread::available_parallelism()
            .map(|n| n.get() as u32)
            .unwrap_or(1),
    };
    let memory_mb = match a.memory.or_else(machine_memory_mib) {
        Some(m) => m,
        None => {
            return Err(Failure::Usage(
                "cannot read this machine's memory; pass --memory".into(),
            ))
        }
    };
    std::fs::create_dir_all(&a.work_dir).map_err(|e| {
        Failure::Request(format!(
            "cannot create --work-dir {}: {e}",
            a.work_dir.display()
        ))
    })?;
    let work_dir = a.work_dir.canonicalize()?;
    let exe = std::env::current_exe()?;
    crate::secret::check_exposure(&a.host, a.insecure_no_auth, "worker")?;
    let listener = bind(&a.host, a.port, "worker gRPC", "--port").await?;
    let config = WorkerConfig {
        masters,
        host: a.host,
        cores,
        memory_mb,
        work_dir,
        heartbeat_interval: a.heartbeat_interval,
        kill_grace: a.kill_grace,
        guard: vec![exe.to_string_lossy().into_owned(), "__guard".into()],
        http_port: a.http_port,
        extra_grpc: a.drills.routes(None)?,
        secret: crate::secret::get(),
        tls: crate::secret::tls(),
        housekeeping: hearth_worker::Housekeeping {
            logs: hearth_worker::LogLimits {
                max_file_bytes: a.log_max_file_size.saturating_mul(1 << 20),
                max_files: a.log_max_files,
            },
            finished_dir_ttl: a.finished_dir_ttl,
            work_dir_max_bytes: a.work_dir_max_size.saturating_mul(1 << 20),
            ..hearth_worker::Housekeeping::default()
        },
    };
    tracing::info!(addr = %listener.local_addr()?, cores, memory_mb, "worker listening");
    ready();
    hearth_worker::run(config, listener, shutdown_signal())
        .await
        .map_err(|e| Failure::Request(format!("worker failed: {e:#}")))
}

pub use crate::local::{local, LocalArgs};

/// The submit tokens of `--submit-token-file`, checked (they need the cluster secret).
fn submit_tokens(
    file: Option<&std::path::Path>,
) -> Result<Vec<(String, hearth_proto::auth::Secret)>, Failure> {
    let Some(file) = file else {
        return Ok(Vec::new());
    };
    let secret = crate::secret::get().ok_or_else(|| {
        Failure::Usage(
            "--submit-token-file needs the cluster secret (--secret-file or HEARTH_SECRET_FILE): \
             without one, anyone may do anything and tokens would limit nobody"
                .into(),
        )
    })?;
    hearth_proto::auth::read_tokens(file, &secret).map_err(Failure::Usage)
}

/// Tells systemd (a `Type=notify` unit) that this server listens; nothing without
/// `NOTIFY_SOCKET`.
fn ready() {
    if let Err(e) = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]) {
        tracing::warn!(error = %e, "could not tell systemd this process is ready");
    }
}
