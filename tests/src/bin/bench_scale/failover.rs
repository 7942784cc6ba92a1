//! One failover round on the big state: SIGKILL the ALIVE leader, then measure from the
//! kill (t0)
//! - *ALIVE*: the first survivor whose `/readyz` answers 200 (polled every `--poll-ms`);
//! - *workers back*: the latest of the instants at which each simulated worker's
//!   registration was answered by a new master process (recorded by the worker itself,
//!   so polling adds nothing to it);
//! - *failover*: the later of the two: a new leader ALIVE with every worker registered;
//!
//! then the new leader's `/metrics` must count every worker ALIVE, the term step is read
//! (more than 1 or 2 per failover is an election storm), and the killed master is
//! restarted on its directory until it has applied what the leader had (*rejoined*,
//! from its restart: a lagging master catching up).

use crate::{probe, Scale};
use anyhow::{bail, Result};
use hearth_tests::wait::Wait;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// What one round measured.
#[derive(Clone, Debug)]
pub struct RoundFigures {
    pub alive: Duration,
    pub back: Duration,
    pub failover: Duration,
    pub rejoin: Duration,
    /// How far the Raft term moved.
    pub term_step: u64,
    /// Workers registered with the new leader in this round.
    pub reregistered: usize,
    /// `MasterChanged` announcements the workers received in this round (the others
    /// register at their next heartbeat).
    pub announced: u64,
    /// Workers' watches the new leader answered in this round.
    pub watched: u64,
    /// Of those, the answers saying the new leader registered the worker from its offer.
    pub adopted: u64,
    /// When half of them, and the last, had arrived.
    pub announced_p50: Duration,
    pub announced_last: Duration,
    /// The master that leads after the round.
    pub leader: usize,
}

impl Scale {
    /// The longest a round may take: the recovery timeout (the worker timeout) and more.
    fn round_deadline(&self) -> Duration {
        self.worker_timeout + Duration::from_secs(60)
    }

    pub fn round(&mut self, round: u64) -> Result<RoundFigures> {
        let old = self.leader;
        let n = self.opts.workers;
        let term_before = probe::gauge(self.c.http[old], "hearth_raft_term").unwrap_or(0.0) as u64;
        let Some(old_inc) = self.fleet.incarnation() else {
            bail!("round {round}: no worker has registered");
        };
        let survivors: Vec<(usize, u16)> = (0..3)
            .filter(|i| *i != old)
            .map(|i| (i, self.c.http[i]))
            .collect();
        let (poll, deadline) = (self.opts.poll, self.round_deadline());

        let announced = &self.fleet.counters.announced;
        let announced_before = announced.load(Ordering::Relaxed);
        let watch_answers = &self.fleet.counters.watch_answers;
        let watched_before = watch_answers.load(Ordering::Relaxed);
        let adoptions = &self.fleet.counters.adoptions;
        let adopted_before = adoptions.load(Ordering::Relaxed);
        let t0 = Instant::now();
        self.c.kill9(old);
        let alive = std::thread::spawn(move || {
            Wait::new("a survivor ALIVE (/readyz 200)", deadline)
                .every(poll)
                .until(|| {
                    (survivors.iter())
                        .find(|(_, http)| probe::ready(*http))
                        .map(|(i, _)| (*i, Instant::now()))
                })
        });
        let back = Wait::new(
            format!("round {round}: all {n} workers registered with a new leader"),
            deadline,
        )
        .every(Duration::from_millis(20))
        .until(|| (self.fleet.all_registered_since(t0)).filter(|(_, _, inc)| *inc != old_inc));
        let (new, alive_at) = alive.join().expect("the /readyz poller")?;
        let (back_at, _, new_inc) = back?;
        let (alive, back) = (alive_at - t0, back_at - t0);
        let failover = alive.max(back);
        let reregistered = self.fleet.registered_with(new_inc, t0);
        let announced = announced.load(Ordering::Relaxed) - announced_before;
        let watched = watch_answers.load(Ordering::Relaxed) - watched_before;
        let adopted = adoptions.load(Ordering::Relaxed) - adopted_before;
        let arrivals = self.fleet.announced_since(t0);
        let arrived = |q: usize| arrivals.get(q).map_or(Duration::ZERO, |at| *at - t0);
        let (announced_p50, announced_last) = (
            arrived(arrivals.len() / 2),
            arrived(arrivals.len().saturating_sub(1)),
        );

        let http = self.c.http[new];
        Wait::new(
            format!("round {round}: the new leader counts {n} ALIVE workers"),
            deadline,
        )
        .every(Duration::from_millis(100))
        .until(|| (probe::gauge(http, "hearth_alive_workers") == Some(n as f64)).then_some(()))?;
        let term_after = probe::gauge(http, "hearth_raft_term").unwrap_or(0.0) as u64;
        let rejoin = self.rejoin(round, old, new)?;
        self.leader = new;
        self.await_watches(round)?;
        let r = RoundFigures {
            alive,
            back,
            failover,
            rejoin,
            term_step: term_after.saturating_sub(term_before),
            reregistered,
            announced,
            watched,
            adopted,
            announced_p50,
            announced_last,
            leader: new,
        };
        self.say(format!(
            "  round {round:>3}: master {} killed, master {} ALIVE after {:>7.1} ms, all {n} workers \
             back after {:>7.1} ms (term +{}, {} watches answered, {} of them registered from the offer, {} announcements received, half by {:.0} ms, the last at {:.0} ms); restarted master in step after {:>7.1} ms; load {:.1}; {} watches failed so far",
            old + 1,
            new + 1,
            ms(alive),
            ms(back),
            r.term_step,
            r.watched,
            r.adopted,
            r.announced,
            ms(r.announced_p50),
            ms(r.announced_last),
            ms(rejoin),
            probe::load(),
            self.fleet.counters.watch_failures.load(Ordering::Relaxed),
        ));
        Ok(r)
    }

    /// Waits until every worker watches every master again (the restarted one, and the
    /// new leader, which workers watch again 1–3 s after registering with it), so that
    /// each round begins from a cluster at rest, as the first does.
    pub fn await_watches(&self, round: u64) -> Result<()> {
        if !self.opts.watch {
            return Ok(());
        }
        let n = self.opts.workers as f64;
        let http = self.c.http.clone();
        Wait::new(
            format!("round {round}: every worker watching every master"),
            Duration::from_secs(30),
        )
        .every(Duration::from_millis(100))
        .until(|| {
            (http.iter())
                .all(|h| probe::gauge(*h, "hearth_watching_workers") == Some(n))
                .then_some(())
        })?;
        Ok(())
    }

    /// Restarts master `old` on its directory and waits until it follows `new` and has
    /// applied every entry the leader had when it came back; the time from its restart.
    fn rejoin(&mut self, round: u64, old: usize, new: usize) -> Result<Duration> {
        let restarted = Instant::now();
        self.c.start_master(old);
        let (old_http, new_http) = (self.c.http[old], self.c.http[new]);
        let target = probe::gauge(new_http, "hearth_raft_last_log_index").unwrap_or(0.0);
        Wait::new(
            format!("round {round}: the restarted master {} in step", old + 1),
            self.round_deadline(),
        )
        .every(Duration::from_millis(20))
        .until(|| {
            let m = probe::metrics(old_http)?;
            let following = m.get("hearth_is_leader") == Some(&0.0);
            let applied = m.get("hearth_raft_applied_index").copied().unwrap_or(0.0);
            (following && applied >= target).then_some(())
        })?;
        Ok(restarted.elapsed())
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
