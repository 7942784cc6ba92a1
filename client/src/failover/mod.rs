//! The failover-measuring engine that `hearth drill` and the `bench-failover` benchmark
//! share: inject a fault, submit an app at once, watch the masters from outside until a
//! leader is ALIVE, has placed new work and has every worker back, and count what was
//! lost or doubled.
//!
//! Layout:
//! - [`round`]: one round as a state machine — views of the masters (each with the
//!   instant it was seen) and the submission's answer in, timings out. No IO, no clock.
//! - [`view`]: [`MasterView`], what a round needs of a master's view, and [`view()`], a
//!   master's own view over gRPC without retries.
//! - [`submit`]: [`submit_or_find`], a submission whose uncertain answer ("may or may
//!   not have taken effect") is settled by looking the app up by name.
//! - [`tally`]: [`Tally`], counting lost and doubled apps or processes.
//! - [`stats`]: [`Distribution`], n / p50 / p99 / max over the rounds.
//! - this file: [`run_round`], the runtime that injects the fault it is given, submits,
//!   polls every master on its own and feeds the round; and [`poll_until`].
//!
//! Must not: decide what to fault or how (the caller passes the fault in: the drill asks
//! a process to crash itself over gRPC, the benchmark SIGKILLs its child), or mock a
//! cluster: a round watches real masters.

pub mod round;
pub mod stats;
pub mod submit;
pub mod tally;
pub mod view;

pub use round::{CountedOn, Placement, Round, Target, Timings, Watch};
pub use stats::Distribution;
pub use submit::{find_app, submit_or_find};
pub use tally::Tally;
pub use view::{alive_leader, all_answer, view, AppSeen, MasterView};

use hearth_core::AppId;
use std::fmt::Display;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How a round watches the masters.
#[derive(Clone, Debug)]
pub struct Polling {
    /// The masters to poll, `host:port` as each names itself when it leads.
    pub masters: Vec<String>,
    /// Between two views of one master.
    pub every: Duration,
    /// From the fault: a round not done by then ends as it is (see [`Round::missing`]).
    pub within: Duration,
}

fn lock(round: &Mutex<Round>) -> MutexGuard<'_, Round> {
    round.lock().unwrap_or_else(|e| e.into_inner())
}

/// One round: reads the clock (t0), injects `fault`, then at once starts `submit` and
/// one poller per master (`view` asks a master for its own view; the masters the watch
/// ignores are not polled) and feeds the round until it is done or `polling.within` has
/// passed since t0. An error from `fault` ends the round before anything else starts.
pub async fn run_round<E, F, S, SE, V, VF>(
    watch: Watch,
    polling: &Polling,
    fault: F,
    submit: S,
    view: V,
) -> Result<Round, E>
where
    F: Future<Output = Result<(), E>>,
    S: Future<Output = Result<AppId, SE>> + Send + 'static,
    SE: Display + Send + 'static,
    V: Fn(String) -> VF + Clone + Send + Sync + 'static,
    VF: Future<Output = Option<MasterView>> + Send + 'static,
{
    let t0 = Instant::now();
    fault.await?;
    let ignore = watch.ignore.clone();
    let round = Arc::new(Mutex::new(Round::new(watch, t0)));
    let mut submission = {
        let (round, task) = (round.clone(), tokio::spawn(submit));
        tokio::spawn(async move {
            let answer = match task.await {
                Ok(Ok(app)) => Ok(app),
                Ok(Err(e)) => Err(format!("the submission failed: {e}")),
                Err(e) => Err(format!("the submitter panicked: {e}")),
            };
            lock(&round).submitted(Instant::now(), answer);
        })
    };
    let deadline = t0 + polling.within;
    let pollers: Vec<_> = (polling.masters.iter())
        .filter(|m| ignore.as_ref() != Some(*m))
        .map(|m| {
            let (m, view, round) = (m.clone(), view.clone(), round.clone());
            tokio::spawn(poll_master(m, view, round, polling.every, deadline))
        })
        .collect();
    for p in pollers {
        if let Err(e) = p.await {
            if e.is_panic() {
                std::panic::resume_unwind(e.into_panic());
            }
        }
    }
    // Everything seen (or out of time): the submission's answer may still be on its way.
    let left = deadline.saturating_duration_since(Instant::now());
    let _ = tokio::time::timeout(left, &mut submission).await;
    let r = lock(&round).clone();
    Ok(r)
}

/// One master's poller: its view every `every` until the round has seen everything or
/// `deadline` passes.
async fn poll_master<V, VF>(
    master: String,
    view: V,
    round: Arc<Mutex<Round>>,
    every: Duration,
    deadline: Instant,
) where
    V: Fn(String) -> VF,
    VF: Future<Output = Option<MasterView>>,
{
    while Instant::now() < deadline && !lock(&round).seen_all() {
        if let Some(v) = view(master.clone()).await {
            lock(&round).observe(&master, Instant::now(), &v);
        }
        tokio::time::sleep(every).await;
    }
}

/// Calls `check` every `every` until it gives `Some`, or gives `None` once `within` has
/// passed (`check` runs at least once).
pub async fn poll_until<T, F, Fut>(within: Duration, every: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if start.elapsed() > within {
            return None;
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests;
