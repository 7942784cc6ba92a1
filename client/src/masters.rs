//! The master list and leader following.

use hearth_proto::auth::{authed, AuthChannel, Credential};
use hearth_proto::pb;
use hearth_proto::pb::master_service_client::MasterServiceClient;
use hearth_proto::status::leader_hint;
use hearth_proto::MAX_MESSAGE;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;
use tonic::{Code, Status};

/// The default master gRPC port.
pub const DEFAULT_PORT: u16 = 7077;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid master list {0:?}: {1}")]
    InvalidMasters(String, String),
    /// No master answered as leader before the deadline.
    #[error("no leading master answered within {waited:?} (tried {tried}); last error: {last}")]
    NoLeader {
        waited: Duration,
        tried: String,
        last: String,
    },
    /// The leader answered and refused the request.
    #[error("{}", .0.message())]
    Refused(Status),
    /// The leader may have applied the request, but the answer was lost; retrying could
    /// apply it twice, so the caller must check (e.g. `hearth app list`).
    #[error("the outcome of {what} is unknown ({}); check before retrying", .status.message())]
    Unknown { what: String, status: Status },
    #[error("malformed answer from the master: {0}")]
    Malformed(#[from] hearth_proto::ConvertError),
}

impl ClientError {
    /// The gRPC code of a refusal, if this is one.
    pub fn code(&self) -> Option<Code> {
        match self {
            ClientError::Refused(s) => Some(s.code()),
            _ => None,
        }
    }
}

/// Whether a request may be sent again after its answer was lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Idempotency {
    /// Sending it twice has the effect of sending it once (kills, state reports,
    /// registrations of a worker, heartbeats, reads).
    Idempotent,
    /// Sending it twice could apply it twice (a submission): retried only when it surely
    /// did not reach a leader.
    AtMostOnce,
}

/// Parses `hearth://h1:7077,h2:7077` (the scheme is optional, a missing port is 7077)
/// into `host:port` addresses.
pub fn parse_masters(url: &str) -> Result<Vec<String>, ClientError> {
    let bad = |why: &str| ClientError::InvalidMasters(url.to_owned(), why.to_owned());
    let list = url.trim();
    let list = list.strip_prefix("hearth://").unwrap_or(list);
    if list.contains("://") {
        return Err(bad("expected hearth://host:port[,host:port...]"));
    }
    let mut out = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (host, port) = match part.rsplit_once(':') {
            Some((h, p)) => {
                let port: u16 = p
                    .parse()
                    .map_err(|_| bad(&format!("{p:?} is not a port")))?;
                (h, port)
            }
            None => (part, DEFAULT_PORT),
        };
        if host.is_empty() || port == 0 {
            return Err(bad(&format!("{part:?} is not host:port")));
        }
        out.push(format!("{host}:{port}"));
    }
    if out.is_empty() {
        return Err(bad("no master address in it"));
    }
    Ok(out)
}

struct Cache {
    /// Where the last successful call went, or the last leader hint.
    preferred: Option<String>,
    channels: HashMap<String, AuthChannel>,
}

/// How long a leader probe waits for one master.
const PROBE: Duration = Duration::from_millis(300);

/// A handle on the cluster's masters that sends each request to the leader, following
/// `NotLeader` hints and trying the other masters when one cannot be reached.
pub struct MasterClient {
    masters: Vec<String>,
    cache: Mutex<Cache>,
    /// Time allowed for one attempt on one master.
    pub attempt_timeout: Duration,
    /// Time allowed to find a leader across all attempts.
    pub deadline: Duration,
    /// The cluster secret, sent on every call.
    credential: Credential,
}

impl MasterClient {
    pub fn new(masters: Vec<String>) -> Self {
        MasterClient {
            credential: Credential::default(),
            masters,
            cache: Mutex::new(Cache {
                preferred: None,
                channels: HashMap::new(),
            }),
            attempt_timeout: Duration::from_secs(5),
            deadline: Duration::from_secs(30),
        }
    }

    /// From a master URL (`hearth://h1:7077,h2:7077`).
    pub fn from_url(url: &str) -> Result<Self, ClientError> {
        Ok(Self::new(parse_masters(url)?))
    }

    /// Sends `credential` (the cluster secret) on every call.
    pub fn with_credential(mut self, credential: Credential) -> Self {
        self.credential = credential;
        self
    }

    pub fn credential(&self) -> &Credential {
        &self.credential
    }

    pub fn masters(&self) -> &[String] {
        &self.masters
    }

    /// The master the next call goes to first.
    pub fn preferred(&self) -> Option<String> {
        self.cache.lock().expect("cache lock").preferred.clone()
    }

    fn channel(&self, addr: &str) -> Result<AuthChannel, Status> {
        let mut cache = self.cache.lock().expect("cache lock");
        if let Some(c) = cache.channels.get(addr) {
            return Ok(c.clone());
        }
        let endpoint = self
            .credential
            .endpoint(addr)
            .map_err(|e| Status::invalid_argument(format!("bad master address: {e}")))?
            .connect_timeout(Duration::from_millis(500))
            .tcp_nodelay(true)
            // A master that froze or vanished behind an open connection is noticed
            // within a second, not at the next call's timeout.
            .http2_keep_alive_interval(Duration::from_millis(500))
            .keep_alive_timeout(Duration::from_millis(500))
            .keep_alive_while_idle(true);
        let channel = authed(endpoint.connect_lazy(), &self.credential);
        cache.channels.insert(addr.to_owned(), channel.clone());
        Ok(channel)
    }

    fn forget(&self, addr: &str) {
        let mut cache = self.cache.lock().expect("cache lock");
        cache.channels.remove(addr);
        if cache.preferred.as_deref() == Some(addr) {
            cache.preferred = None;
        }
    }

    fn unprefer(&self, addr: &str) {
        let mut cache = self.cache.lock().expect("cache lock");
        if cache.preferred.as_deref() == Some(addr) {
            cache.preferred = None;
        }
    }

    /// Sends the next call to `addr` first (a leader that announced itself, or the one a
    /// refusal named).
    pub fn prefer(&self, addr: String) {
        self.cache.lock().expect("cache lock").preferred = Some(addr);
    }

    /// Sends a request to the leader. `call` is invoked once per attempt with a client
    /// for the master being tried. `what` names the request in errors.
    pub async fn call<T, F, Fut>(
        &self,
        what: &str,
        idem: Idempotency,
        call: F,
    ) -> Result<T, ClientError>
    where
        F: Fn(MasterServiceClient<AuthChannel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let limits = (self.attempt_timeout, self.deadline);
        let make = |ch| {
            MasterServiceClient::new(ch)
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE)
        };
        self.call_service(what, idem, limits, make, call).await
    }

    /// [`call`](Self::call) for any gRPC service the masters serve: `make` wraps a
    /// channel to the master being tried in that service's client; `limits` are the time
    /// for one attempt and the time to find a master that answers.
    pub async fn call_service<C, T, F, Fut>(
        &self,
        what: &str,
        idem: Idempotency,
        limits: (Duration, Duration),
        make: fn(AuthChannel) -> C,
        call: F,
    ) -> Result<T, ClientError>
    where
        F: Fn(C) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let (attempt_timeout, deadline) = limits;
        let start = Instant::now();
        if self.preferred().is_none() && self.masters.len() > 1 {
            self.find_leader().await;
        }
        let mut next = 0usize;
        let mut backoff = Duration::from_millis(25);
        let mut last;
        let mut tried = Vec::new();
        loop {
            let addr = self.preferred().unwrap_or_else(|| {
                next += 1;
                self.masters[(next - 1) % self.masters.len()].clone()
            });
            if !tried.contains(&addr) {
                tried.push(addr.clone());
            }
            let outcome = match self.channel(&addr) {
                Ok(ch) => tokio::time::timeout(attempt_timeout, call(make(ch)))
                    .await
                    .unwrap_or_else(|_| Err(Status::deadline_exceeded(NO_ANSWER))),
                Err(s) => Err(s),
            };
            let status = match outcome {
                Ok(resp) => {
                    self.prefer(addr);
                    return Ok(resp.into_inner());
                }
                Err(s) => s,
            };
            last = format!("{addr}: {}", explain(&status));
            match self.after_failure(&addr, status, idem, what) {
                Next::Give(e) => return Err(e),
                Next::Follow => continue,
                Next::Retry => {}
            }
            if start.elapsed() >= deadline {
                return Err(ClientError::NoLeader {
                    waited: start.elapsed(),
                    tried: tried.join(", "),
                    last,
                });
            }
            // After a full round of the list without a leader, back off a little.
            if next.is_multiple_of(self.masters.len()) {
                tokio::time::sleep(backoff).await;
                // Capped low: during a failover the new leader is usually there within a
                // few hundred milliseconds, and a client should find it at once.
                backoff = (backoff * 2).min(Duration::from_millis(100));
            }
        }
    }

    /// The leader watch of `worker`, which registered with the leader of `after_term`
    /// (process `after_incarnation`), offering `registration` (what it would register
    /// with now, for a new leader to register it at once): it waits 20–40 s, drawn per
    /// call, so that the watches of workers started together do not all end (and are
    /// renewed) at once.
    pub fn watch_request(
        worker: &str,
        after_term: u64,
        after_incarnation: u64,
        registration: Option<pb::RegisterWorkerRequest>,
    ) -> pb::WatchLeaderRequest {
        pb::WatchLeaderRequest {
            after_term,
            after_incarnation,
            worker_id: worker.to_owned(),
            wait_ms: 20_000 + (random() % 20_000) as u32,
            registration,
        }
    }

    /// When a worker renews its leader watches with a new registration after what it
    /// runs changed (`changes` is bumped at each change): once that has stayed unchanged
    /// for 1–2 s (drawn per call, so workers launched together do not renew together),
    /// or 10 s after the first change while changes keep coming. A burst of launches is
    /// offered once, not once per launch: each renewal is a call on every master.
    /// `Err` when the sender is gone.
    async fn reoffer_when_settled(
        changes: &mut tokio::sync::watch::Receiver<u64>,
    ) -> Result<(), tokio::sync::watch::error::RecvError> {
        changes.changed().await?;
        let quiet = Duration::from_millis(1_000 + random() % 1_000);
        let cap = tokio::time::sleep(Duration::from_secs(10));
        tokio::pin!(cap);
        loop {
            tokio::select! {
                () = &mut cap => return Ok(()),
                () = tokio::time::sleep(quiet) => return Ok(()),
                changed = changes.changed() => changed?,
            }
        }
    }

    /// How long a worker waits before it watches again the master whose watch answered
    /// (it leads now, so the watch is for its next term): 1–3 s, drawn per call, so the
    /// thousands of workers that just registered with it do not all call it again at
    /// once while it still takes their registrations.
    pub fn rewatch_pause() -> Duration {
        Duration::from_millis(1_000 + random() % 2_000)
    }

    /// Waits on the master at `addr` for a new leader (`WatchLeader`, see the proto), over
    /// the connection this client keeps to it (a later call to the leader it names goes
    /// over the same one). One attempt, at most `req.wait_ms` and a second more.
    pub async fn watch_leader(
        &self,
        addr: &str,
        req: pb::WatchLeaderRequest,
    ) -> Result<pb::WhoLeadsResponse, Status> {
        let limit = Duration::from_millis(u64::from(req.wait_ms)) + Duration::from_secs(1);
        let mut client = MasterServiceClient::new(self.channel(addr)?);
        match tokio::time::timeout(limit, client.watch_leader(req)).await {
            Ok(answer) => answer.map(tonic::Response::into_inner),
            Err(_) => Err(Status::deadline_exceeded(NO_ANSWER)),
        }
    }

    /// A worker's leader watch on `addr` ([`watch_leader`](Self::watch_leader)), given up
    /// (`None`) once what the worker runs has changed and settled
    /// ([`reoffer_when_settled`](Self::reoffer_when_settled) on `changes`), so that it
    /// watches again offering its registration as it is then. Not given up on the master
    /// this client prefers: that one leads, and could adopt the worker only after losing
    /// and retaking the lead; the watch's own renewal (every 20–40 s) refreshes it there.
    pub async fn watch_or_reoffer(
        &self,
        addr: &str,
        req: pb::WatchLeaderRequest,
        changes: &mut tokio::sync::watch::Receiver<u64>,
    ) -> Option<Result<pb::WhoLeadsResponse, Status>> {
        let leads = self.preferred().as_deref() == Some(addr);
        tokio::select! {
            answer = self.watch_leader(addr, req) => Some(answer),
            Ok(()) = Self::reoffer_when_settled(changes), if !leads => None,
        }
    }

    /// Asks every master at once who leads (`WhoLeads`, at most [`PROBE`] each) and
    /// prefers the one that says it leads, else the leader named with the highest term. A
    /// frozen or unreachable master costs nothing while another answers: the first write
    /// goes to the leader, not to the first master of the list.
    async fn find_leader(&self) {
        let mut asks = tokio::task::JoinSet::new();
        for addr in &self.masters {
            let Ok(ch) = self.channel(addr) else { continue };
            let addr = addr.clone();
            asks.spawn(async move {
                let mut client = MasterServiceClient::new(ch);
                let ask = client.who_leads(pb::WhoLeadsRequest {});
                let answer = tokio::time::timeout(PROBE, ask).await.ok()?.ok()?;
                Some((addr, answer.into_inner()))
            });
        }
        let mut best: Option<(u64, String)> = None;
        while let Some(done) = asks.join_next().await {
            let Ok(Some((addr, a))) = done else { continue };
            if a.leads {
                self.prefer(addr);
                return;
            }
            if let Some(leader) = a.leader.filter(|l| !l.is_empty()) {
                if best.as_ref().is_none_or(|(term, _)| a.term > *term) {
                    best = Some((a.term, leader));
                }
            }
        }
        if let Some((_, leader)) = best {
            self.prefer(leader);
        }
    }

    /// What to do after `addr` answered `status`: give the caller an error, follow the
    /// leader it named, or try the next master.
    fn after_failure(&self, addr: &str, status: Status, idem: Idempotency, what: &str) -> Next {
        match classify(&status) {
            Failure::Refused => return Next::Give(ClientError::Refused(status)),
            Failure::NotLeader => {
                // It answered: its connection is good for the next call to it (a watch,
                // or the next time it leads), only not this write.
                self.unprefer(addr);
                if let Some(leader) = leader_hint(&status).filter(|l| *l != addr) {
                    tracing::debug!(from = %addr, to = %leader, "following the leader hint");
                    self.prefer(leader);
                    return Next::Follow;
                }
            }
            Failure::Unreachable => self.forget(addr),
            Failure::MaybeApplied => {
                self.forget(addr);
                if idem == Idempotency::AtMostOnce {
                    return Next::Give(ClientError::Unknown {
                        what: what.to_owned(),
                        status,
                    });
                }
            }
        }
        Next::Retry
    }
}

/// What [`MasterClient::call_service`] does after a failed attempt.
enum Next {
    Give(ClientError),
    Follow,
    Retry,
}

enum Failure {
    /// The leader answered no: return it to the caller.
    Refused,
    /// A master that does not lead answered; nothing was applied.
    NotLeader,
    /// The request did not reach a master (connection refused, DNS, ...).
    Unreachable,
    /// The request may have reached the leader and been applied.
    MaybeApplied,
}

/// The message of an attempt this client gave up waiting for.
const NO_ANSWER: &str = "no answer in time";

fn classify(status: &Status) -> Failure {
    match status.code() {
        Code::Unavailable
            if status
                .metadata()
                .contains_key(hearth_proto::status::LEADER_KEY) =>
        {
            Failure::NotLeader
        }
        Code::Unavailable if status.message().starts_with("not the leader") => Failure::NotLeader,
        // A master's own UNAVAILABLE (shutting down, isolated) or a connection that could
        // not be made: the request was not taken. A connection that broke with the
        // request on it (the HTTP/2 keepalive gave up on a frozen master) is also
        // UNAVAILABLE, but the master may have read the request and may still apply it.
        Code::Unavailable if never_sent(status) => Failure::Unreachable,
        Code::Unavailable => Failure::MaybeApplied,
        // A master's own "took too long" answer is its answer, returned as it is; only
        // this client giving up on an attempt leaves the outcome open.
        Code::DeadlineExceeded if status.message() != NO_ANSWER => Failure::Refused,
        Code::DeadlineExceeded
        | Code::Cancelled
        | Code::Unknown
        | Code::Aborted
        | Code::Internal => Failure::MaybeApplied,
        _ => Failure::Refused,
    }
}

/// A failed call's message with the causes behind it (a transport error says little by
/// itself: "tcp connect error: ... invalid peer certificate: UnknownIssuer" says which
/// side's TLS set-up is wrong).
fn explain(status: &Status) -> String {
    let mut text = status.message().to_owned();
    let mut cause = std::error::Error::source(status);
    while let Some(e) = cause {
        let part = e.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cause = e.source();
    }
    text
}

/// Whether a failed call is known not to have reached a master: it is the master's own
/// answer (no transport error behind it), or the connection was never made (tonic's
/// `ConnectError` in the chain).
fn never_sent(status: &Status) -> bool {
    let mut cause = std::error::Error::source(status);
    if cause.is_none() {
        return true;
    }
    while let Some(e) = cause {
        if e.is::<tonic::ConnectError>() {
            return true;
        }
        cause = e.source();
    }
    false
}

/// A random number, different at each call (std's per-process random hash keys).
fn random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_call_that_never_left_counts_as_not_applied() {
        let refused = || std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        // Connection refused: tonic wraps it in a ConnectError.
        let connect = Status::from_error(Box::new(tonic::ConnectError(Box::new(refused()))));
        assert_eq!(connect.code(), Code::Unavailable);
        assert!(matches!(classify(&connect), Failure::Unreachable));
        // A master's own UNAVAILABLE carries no transport error.
        let own = Status::unavailable("shutting down");
        assert!(matches!(classify(&own), Failure::Unreachable));
        // A connection that broke under the request (keepalive timeout): maybe applied.
        let mut broke = Status::unavailable("keep-alive timed out");
        broke.set_source(std::sync::Arc::new(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "keep-alive timed out",
        )));
        assert!(matches!(classify(&broke), Failure::MaybeApplied));
        let mut hinted = Status::unavailable("not the leader; the leader is at b:1");
        hinted.set_source(std::sync::Arc::new(refused()));
        assert!(matches!(classify(&hinted), Failure::NotLeader));
    }

    #[test]
    fn parses_master_lists() {
        assert_eq!(
            parse_masters("hearth://a:7077,b:7078, c").unwrap(),
            vec!["a:7077", "b:7078", "c:7077"]
        );
        assert_eq!(parse_masters("127.0.0.1:9").unwrap(), vec!["127.0.0.1:9"]);
        assert_eq!(
            parse_masters("http://a:1").unwrap_err().to_string(),
            "invalid master list \"http://a:1\": expected hearth://host:port[,host:port...]"
        );
        assert_eq!(
            parse_masters("hearth://a:x").unwrap_err().to_string(),
            "invalid master list \"hearth://a:x\": \"x\" is not a port"
        );
        assert!(parse_masters("hearth://").is_err());
    }
}

/// The term of a new leader that registered a worker from the registration its leader
/// watch offered (`WhoLeadsResponse.registered`): set by the watch, taken once by the
/// worker's session loop, which then starts heartbeating instead of registering.
#[derive(Debug, Default)]
pub struct Adopted(std::sync::Mutex<Option<u64>>);

impl Adopted {
    pub fn set(&self, term: u64) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(term);
    }

    pub fn take(&self) -> Option<u64> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}
