//! The leader's side of a take-over: [`Master::take_over`] begins recovery and adopts
//! the workers whose leader-watch offers match the state (`Command::AdoptWorkers`),
//! [`Master::adopted`] tells a watch whether its offer was adopted, and
//! [`Master::announce`] tells the workers that did not hear of this leader through a
//! watch (`MasterChanged`).

use super::*;

impl Master {
    /// Becomes the acting master: proposes the configured settings and begins recovery
    /// (ALIVE at once when there is nothing to recover), then adopts the workers whose
    /// `offers` (registrations offered with their leader watches, [`Node::offers`])
    /// match what the state places on them ([`Command::AdoptWorkers`]). `Err` when it
    /// was deposed first.
    ///
    /// [`Node::offers`]: crate::node::Node::offers
    pub async fn take_over(&self, offers: &[WorkerRegistration]) -> Result<(), ProposeError> {
        let lsn = {
            let mut inner = self.lock().await;
            let _in_term = self.span.enter();
            let at = now();
            inner.heard = LastHeard::new(mono_now());
            if inner.state.config != self.config.cluster {
                let _ = self.commit(&mut inner, &Command::SetConfig(self.config.cluster.clone()));
            }
            let _ = self.commit(&mut inner, &Command::BeginRecovery { at });
            let awaiting = recovery::awaiting(&inner.state);
            let adopted = self.adopt(&mut inner, offers, at);
            tracing::info!(
                term = self.term,
                role = %inner.state.role,
                workers = awaiting.workers.len(),
                offered = offers.len(),
                adopted,
                apps = awaiting.apps.len(),
                drivers = inner.state.drivers.len(),
                "took over as master"
            );
            inner.lsn
        };
        self.make_durable(lsn).await
    }

    /// Proposes [`Command::AdoptWorkers`] for the `offers` of UNKNOWN workers and keeps
    /// what each adopted one offered; how many were adopted.
    fn adopt(&self, inner: &mut Inner, offers: &[WorkerRegistration], at: Millis) -> usize {
        let unknown = |r: &&WorkerRegistration| {
            (inner.state.workers.get(&r.identity.id))
                .is_some_and(|w| w.state == WorkerState::Unknown)
        };
        let workers: Vec<Adoption> = (offers.iter().filter(unknown))
            .map(|r| Adoption {
                identity: r.identity.clone(),
                fingerprint: recovery::report_fingerprint(r),
            })
            .collect();
        if workers.is_empty() {
            return 0;
        }
        let cmd = Command::AdoptWorkers { workers, at };
        let adopted = match self.commit(inner, &cmd) {
            Ok(Applied {
                outcome: Outcome::WorkersAdopted { workers },
                ..
            }) => workers.into_iter().collect::<HashSet<_>>(),
            _ => return 0,
        };
        let Command::AdoptWorkers { workers, .. } = cmd else {
            unreachable!("built above")
        };
        let mut kept = self.adopted.lock().unwrap_or_else(|p| p.into_inner());
        for a in workers
            .into_iter()
            .filter(|a| adopted.contains(&a.identity.id))
        {
            kept.insert(a.identity.id.clone(), a);
        }
        (crate::metrics::metrics().adopted_workers).inc_by(adopted.len() as u64);
        adopted.len()
    }

    /// Whether this master adopted its worker from exactly `offer` when it took over
    /// (the answer to that worker's watch then says it is registered).
    pub fn adopted(&self, offer: &WorkerRegistration) -> bool {
        let kept = self.adopted.lock().unwrap_or_else(|p| p.into_inner());
        kept.get(&offer.identity.id).is_some_and(|a| {
            a.identity == offer.identity && a.fingerprint == recovery::report_fingerprint(offer)
        })
    }

    /// Tells every worker it knows of (not DEAD) that this master now leads: at once
    /// those not `watching` it (no `WatchLeader` call of theirs waits here: older
    /// workers, or ones whose watch is not connected), and after [`ANNOUNCE_GRACE`] those
    /// watching that have not registered by then. A worker that watches learns of this
    /// leader from its watch over a connection it holds, so a failover of thousands of
    /// workers does not begin with this master dialling each of them.
    pub async fn announce(self: &Arc<Self>, watching: &HashSet<String>) {
        let (now, later) = {
            let inner = self.lock().await;
            let live = (inner.state.workers.values()).filter(|w| w.state != WorkerState::Dead);
            live.map(|w| (w.identity.id.clone(), w.identity.addr()))
                .partition::<Vec<_>, _>(|(id, _)| !watching.contains(&id.0))
        };
        tracing::info!(
            now = now.len(),
            watching = later.len(),
            grace_ms = ANNOUNCE_GRACE.as_millis() as u64,
            "announcing this leader to the workers that do not watch it"
        );
        tracing::debug!(first = ?now.iter().take(5).map(|(id, _)| id).collect::<Vec<_>>(), "workers not watching this master");
        self.announce_to(now.into_iter().map(|(_, addr)| addr).collect());
        if later.is_empty() {
            return;
        }
        let master = Arc::clone(self);
        tokio::spawn(
            async move {
                tokio::time::sleep(ANNOUNCE_GRACE).await;
                if !master.holds_lease() {
                    return;
                }
                let missing: Vec<String> = {
                    let inner = master.lock().await;
                    (later.into_iter())
                        .filter(|(id, _)| !inner.heard.workers.contains_key(id))
                        .map(|(_, addr)| addr)
                        .collect()
                };
                if !missing.is_empty() {
                    tracing::info!(
                        workers = missing.len(),
                        "workers watching this leader did not register within the grace; announcing it to them"
                    );
                }
                master.announce_to(missing);
            }
            .instrument(self.span.clone()),
        );
    }

    fn announce_to(&self, addrs: Vec<String>) {
        crate::dispatch::announce(
            addrs,
            hearth_proto::pb::MasterChangedRequest {
                term: self.term,
                master_id: self.config.id,
                leader: self.advertised.clone(),
                incarnation: incarnation(),
            },
            &self.config.credential(),
        );
    }
}

/// How long a new leader waits for the workers watching it to register before it
/// announces itself to them as well.
pub const ANNOUNCE_GRACE: Duration = Duration::from_secs(1);
