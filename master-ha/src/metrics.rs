//! `GET /metrics` of a master, in the Prometheus text format: what an operator alerts on.
//!
//! - The cluster as this master shows it (a standby: its replica), as Spark's master
//!   reports it: `hearth_workers`, `hearth_alive_workers`, `hearth_apps`,
//!   `hearth_waiting_apps`, `hearth_drivers`, `hearth_running_executors`.
//! - Leadership and Raft: `hearth_is_leader`, `hearth_raft_term`,
//!   `hearth_leader_changes_total` (each new leader this process saw),
//!   `hearth_raft_last_log_index`, `hearth_raft_applied_index`, `hearth_raft_apply_lag`,
//!   `hearth_raft_snapshot_index`, `hearth_watching_workers` (workers whose leader watch
//!   waits here), `hearth_adoptable_workers` (of those, the ones whose offered
//!   registration matches this master's replica: a take-over here registers them at
//!   once), `hearth_adopted_workers_total` (workers registered that way by this
//!   process's take-overs).
//! - Work: `hearth_commit_seconds` (a histogram: a proposal from its commit to durable,
//!   on a majority with Raft, fsynced with FILESYSTEM), `hearth_take_over_seconds` (the
//!   last take-over: elected to leading), `hearth_dispatch_refusals_total` (commands a
//!   worker refused).
//!
//! One registry per process (a process is one master). Counters and the histogram are
//! fed where things happen; the gauges are read from the master at each scrape. Reads
//! are open, like `/json` (counts only, nothing secret).

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::sync::OnceLock;
use std::time::Duration;

/// Every metric of this process.
pub struct Metrics {
    registry: Registry,
    workers: Gauge,
    alive_workers: Gauge,
    apps: Gauge,
    waiting_apps: Gauge,
    drivers: Gauge,
    running_executors: Gauge,
    is_leader: Gauge,
    term: Gauge,
    last_log_index: Gauge,
    applied_index: Gauge,
    apply_lag: Gauge,
    snapshot_index: Gauge,
    watching_workers: Gauge,
    adoptable_workers: Gauge,
    take_over_seconds: Gauge<f64, AtomicU64>,
    pub leader_changes: Counter,
    pub adopted_workers: Counter,
    pub refusals: Counter,
    pub commit_seconds: Histogram,
}

impl Metrics {
    fn new() -> Self {
        let mut m = Metrics {
            registry: Registry::default(),
            workers: Gauge::default(),
            alive_workers: Gauge::default(),
            apps: Gauge::default(),
            waiting_apps: Gauge::default(),
            drivers: Gauge::default(),
            running_executors: Gauge::default(),
            is_leader: Gauge::default(),
            term: Gauge::default(),
            last_log_index: Gauge::default(),
            applied_index: Gauge::default(),
            apply_lag: Gauge::default(),
            snapshot_index: Gauge::default(),
            watching_workers: Gauge::default(),
            adoptable_workers: Gauge::default(),
            take_over_seconds: Gauge::default(),
            leader_changes: Counter::default(),
            adopted_workers: Counter::default(),
            refusals: Counter::default(),
            // 100 µs .. ~3.3 s.
            commit_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
        };
        let r = &mut m.registry;
        let gauges: [(&str, &str, &Gauge); 14] = [
            ("hearth_workers", "Workers listed (any state)", &m.workers),
            ("hearth_alive_workers", "ALIVE workers", &m.alive_workers),
            ("hearth_apps", "Active apps (WAITING or RUNNING)", &m.apps),
            (
                "hearth_waiting_apps",
                "Apps WAITING for resources",
                &m.waiting_apps,
            ),
            ("hearth_drivers", "Active cluster-mode drivers", &m.drivers),
            (
                "hearth_running_executors",
                "Executors RUNNING",
                &m.running_executors,
            ),
            (
                "hearth_is_leader",
                "1 while this master acts as the leader",
                &m.is_leader,
            ),
            (
                "hearth_raft_term",
                "This master's Raft term (a single master: its fencing term)",
                &m.term,
            ),
            (
                "hearth_raft_last_log_index",
                "Index of the last entry of this master's Raft log",
                &m.last_log_index,
            ),
            (
                "hearth_raft_applied_index",
                "Index of the last entry applied here",
                &m.applied_index,
            ),
            (
                "hearth_raft_apply_lag",
                "Entries in the log not yet applied here",
                &m.apply_lag,
            ),
            (
                "hearth_raft_snapshot_index",
                "Index of the last Raft snapshot here",
                &m.snapshot_index,
            ),
            (
                "hearth_watching_workers",
                "Workers with a leader watch (WatchLeader) waiting on this master: they learn at once that it leads",
                &m.watching_workers,
            ),
            (
                "hearth_adoptable_workers",
                "Workers watching this master whose offered registration matches its replica: a take-over here registers them at once",
                &m.adoptable_workers,
            ),
        ];
        for (name, help, g) in gauges {
            r.register(name, help, g.clone());
        }
        r.register(
            "hearth_take_over_seconds",
            "How long the last take-over took (elected to leading)",
            m.take_over_seconds.clone(),
        );
        r.register(
            "hearth_adopted_workers",
            "Workers this process registered from their watch's offer when it took over",
            m.adopted_workers.clone(),
        );
        r.register(
            "hearth_leader_changes",
            "New leaders this master saw",
            m.leader_changes.clone(),
        );
        r.register(
            "hearth_dispatch_refusals",
            "Commands a worker refused",
            m.refusals.clone(),
        );
        r.register(
            "hearth_commit_seconds",
            "A proposal from its commit until durable (majority or fsync)",
            m.commit_seconds.clone(),
        );
        m
    }

    pub fn take_over(&self, took: Duration) {
        self.take_over_seconds.set(took.as_secs_f64());
    }
}

/// This process's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// What `/metrics` reads from the master at a scrape (the HTTP side gathers it, so this
/// module depends on nothing of the master's).
pub struct Scrape<'a> {
    pub view: &'a hearth_proto::convert::StatusView,
    pub is_leader: bool,
    /// Workers watching this master for a new leader.
    pub watching: usize,
    /// Of those, the ones a take-over here would adopt.
    pub adoptable: usize,
    pub raft: Option<
        &'a hearth_raft_store::openraft::RaftMetrics<
            hearth_raft_store::NodeId,
            hearth_raft_store::BasicNode,
        >,
    >,
}

/// The text `/metrics` answers: the gauges set from `s`, then everything.
pub fn render(s: Scrape<'_>) -> String {
    let m = metrics();
    let view = s.view;
    let count = |n: usize| n as i64;
    m.workers.set(count(view.workers.len()));
    m.alive_workers.set(count(
        view.workers
            .iter()
            .filter(|w| w.info.state == hearth_core::WorkerState::Alive)
            .count(),
    ));
    m.apps.set(count(view.active_apps.len()));
    m.waiting_apps.set(count(
        view.active_apps
            .iter()
            .filter(|a| a.state == hearth_core::AppState::Waiting)
            .count(),
    ));
    m.drivers.set(count(view.active_drivers.len()));
    m.running_executors.set(count(
        view.active_apps
            .iter()
            .flat_map(|a| a.executors.values())
            .filter(|e| e.state == hearth_core::ExecutorState::Running)
            .count(),
    ));
    m.is_leader.set(i64::from(s.is_leader));
    m.watching_workers.set(count(s.watching));
    m.adoptable_workers.set(count(s.adoptable));
    m.term.set(view.term as i64);
    if let Some(r) = s.raft {
        let last = r.last_log_index.unwrap_or(0);
        let applied = r.last_applied.map_or(0, |l| l.index);
        m.last_log_index.set(last as i64);
        m.applied_index.set(applied as i64);
        m.apply_lag.set(last.saturating_sub(applied) as i64);
        m.snapshot_index
            .set(r.snapshot.map_or(0, |l| l.index) as i64);
    }
    let mut text = String::new();
    if let Err(e) = encode(&mut text, &m.registry) {
        tracing::warn!(error = %e, "encoding /metrics failed");
    }
    text
}
