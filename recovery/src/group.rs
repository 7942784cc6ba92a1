//! Group commit: who waits for which LSN to be durable, and the flusher's work queue.
//!
//! Callers of `sync` raise `requested` and wait; one flusher thread (see
//! `journal::flusher_loop`) takes "everything appended so far", fsyncs it once and raises
//! `durable`, waking every waiter whose LSN it covers. While one fsync runs, new requests
//! pile up and the next fsync covers them all, so N concurrent appenders share roughly
//! one fsync per round instead of N.
//!
//! Blocking waiters sleep on a condvar; async waiters on a `tokio::sync::watch` of the
//! same value, so an async caller never parks a runtime thread.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use tokio::sync::watch;

/// What the journal has made durable, and why it stopped if it did.
#[derive(Clone, Debug, Default)]
pub(crate) struct Durable {
    pub lsn: u64,
    pub failure: Option<Arc<str>>,
}

#[derive(Debug, Default)]
struct SyncState {
    requested: u64,
    durable: Durable,
    shutdown: bool,
    fsyncs: u64,
}

#[derive(Debug)]
pub(crate) struct Group {
    state: Mutex<SyncState>,
    /// The flusher sleeps here until a request exceeds `durable` or shutdown.
    work: Condvar,
    /// Blocking waiters sleep here.
    done: Condvar,
    watch: watch::Sender<Durable>,
}

/// Why a wait ended without the LSN being durable.
pub(crate) enum WaitError {
    Failed(Arc<str>),
    Shutdown,
}

impl Group {
    pub(crate) fn new(durable: u64) -> Self {
        let d = Durable {
            lsn: durable,
            failure: None,
        };
        Group {
            state: Mutex::new(SyncState {
                requested: durable,
                durable: d.clone(),
                ..SyncState::default()
            }),
            work: Condvar::new(),
            done: Condvar::new(),
            watch: watch::Sender::new(d),
        }
    }

    fn lock(&self) -> MutexGuard<'_, SyncState> {
        // The state is a few integers updated in single statements: usable after a panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Asks the flusher to make `lsn` durable. Returns true if it already is.
    pub(crate) fn request(&self, lsn: u64) -> Result<bool, WaitError> {
        let mut st = self.lock();
        if st.durable.lsn >= lsn {
            return Ok(true);
        }
        if let Some(f) = &st.durable.failure {
            return Err(WaitError::Failed(f.clone()));
        }
        if st.shutdown {
            return Err(WaitError::Shutdown);
        }
        if lsn > st.requested {
            st.requested = lsn;
            self.work.notify_one();
        }
        Ok(false)
    }

    pub(crate) fn wait_blocking(&self, lsn: u64) -> Result<(), WaitError> {
        if self.request(lsn)? {
            return Ok(());
        }
        let mut st = self.lock();
        loop {
            if st.durable.lsn >= lsn {
                return Ok(());
            }
            if let Some(f) = &st.durable.failure {
                return Err(WaitError::Failed(f.clone()));
            }
            if st.shutdown {
                return Err(WaitError::Shutdown);
            }
            st = self.done.wait(st).unwrap_or_else(PoisonError::into_inner);
        }
    }

    pub(crate) async fn wait(&self, lsn: u64) -> Result<(), WaitError> {
        let mut rx = self.watch.subscribe();
        if self.request(lsn)? {
            return Ok(());
        }
        let seen = rx
            .wait_for(|d| d.lsn >= lsn || d.failure.is_some())
            .await
            .map_err(|_| WaitError::Shutdown)?;
        if seen.lsn >= lsn {
            Ok(())
        } else {
            Err(WaitError::Failed(
                seen.failure.clone().expect("checked by wait_for"),
            ))
        }
    }

    /// Flusher side: sleeps until there is something to fsync. False: stop.
    pub(crate) fn next_round(&self) -> bool {
        let mut st = self.lock();
        loop {
            if st.shutdown || st.durable.failure.is_some() {
                return false;
            }
            if st.requested > st.durable.lsn {
                return true;
            }
            st = self.work.wait(st).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Records that everything up to `lsn` is on disk and wakes whoever that satisfies.
    pub(crate) fn mark_durable(&self, lsn: u64) {
        let mut st = self.lock();
        st.fsyncs += 1;
        if lsn > st.durable.lsn {
            st.durable.lsn = lsn;
            let d = st.durable.clone();
            self.watch.send_replace(d);
            self.done.notify_all();
        }
    }

    /// The journal is unusable: every waiter, present and future, gets `cause`.
    pub(crate) fn fail(&self, cause: &str) {
        let mut st = self.lock();
        if st.durable.failure.is_none() {
            st.durable.failure = Some(Arc::from(cause));
            let d = st.durable.clone();
            self.watch.send_replace(d);
        }
        self.done.notify_all();
        self.work.notify_all();
    }

    pub(crate) fn shutdown(&self) {
        let mut st = self.lock();
        st.shutdown = true;
        self.work.notify_all();
        self.done.notify_all();
    }

    pub(crate) fn durable(&self) -> u64 {
        self.lock().durable.lsn
    }

    pub(crate) fn fsyncs(&self) -> u64 {
        self.lock().fsyncs
    }
}
