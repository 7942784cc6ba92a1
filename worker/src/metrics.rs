//! `GET /metrics` of a worker (Prometheus text, on its port over HTTP/1.1, open like a
//! master's): what runs here and how processes end.
//!
//! - `hearth_worker_processes{phase="launching"|"running"}` (read from the table at the
//!   scrape), `hearth_worker_launches_total`, `hearth_worker_process_ends_total{state}`
//!   (EXITED / FAILED / KILLED / FINISHED ... as reported to the master),
//!   `hearth_worker_kill_seconds` (a kill from SIGTERM until the group is gone);
//! - the worker's own lease: `hearth_worker_leader_silence_seconds` (since a leading
//!   master last answered) and `hearth_worker_lease_ok` (0 once that passes the
//!   master's worker timeout: the masters count this worker lost) — what to alert on
//!   for a worker cut off from its masters.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::sync::OnceLock;

type Labels = Vec<(String, String)>;

pub(crate) struct Metrics {
    registry: Registry,
    processes: Family<Labels, Gauge>,
    pub launches: Counter,
    pub ends: Family<Labels, Counter>,
    pub kill_seconds: Histogram,
    silence: Gauge<f64, AtomicU64>,
    lease_ok: Gauge,
}

impl Metrics {
    fn new() -> Self {
        let mut m = Metrics {
            registry: Registry::default(),
            processes: Family::default(),
            launches: Counter::default(),
            ends: Family::default(),
            // 1 ms .. ~33 s (a kill waits up to its grace, 5 s by default).
            kill_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            silence: Gauge::default(),
            lease_ok: Gauge::default(),
        };
        let r = &mut m.registry;
        r.register(
            "hearth_worker_processes",
            "Processes here by phase",
            m.processes.clone(),
        );
        r.register(
            "hearth_worker_launches",
            "Processes launched here",
            m.launches.clone(),
        );
        r.register(
            "hearth_worker_process_ends",
            "Processes ended here, by the state reported",
            m.ends.clone(),
        );
        r.register(
            "hearth_worker_kill_seconds",
            "A kill from SIGTERM until the process group is gone",
            m.kill_seconds.clone(),
        );
        r.register(
            "hearth_worker_leader_silence_seconds",
            "Since a leading master last answered this worker",
            m.silence.clone(),
        );
        r.register(
            "hearth_worker_lease_ok",
            "1 while a leader answered within the master's worker timeout",
            m.lease_ok.clone(),
        );
        m
    }

    /// A process ended in `state` (as reported).
    pub fn ended(&self, state: &str) {
        self.ends
            .get_or_create(&vec![("state".to_owned(), state.to_owned())])
            .inc();
    }
}

pub(crate) fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// The text `/metrics` answers, with the table's `(launching, running)` and the lease.
pub(crate) fn render(counts: (usize, usize), lease: &crate::lease::MasterLease) -> String {
    let m = metrics();
    for (phase, n) in [("launching", counts.0), ("running", counts.1)] {
        m.processes
            .get_or_create(&vec![("phase".to_owned(), phase.to_owned())])
            .set(n as i64);
    }
    m.silence.set(lease.silence().as_secs_f64());
    m.lease_ok.set(i64::from(lease.lapsed().is_none()));
    let mut text = String::new();
    if let Err(e) = encode(&mut text, &m.registry) {
        tracing::warn!(error = %e, "encoding /metrics failed");
    }
    text
}
