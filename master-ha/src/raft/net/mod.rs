//! Raft between masters over tonic: the client side ([`Network`], openraft's
//! `RaftNetworkFactory`) and the server side ([`RaftServer`], the `RaftService` gRPC
//! service). Payloads are openraft's own messages in `RaftPayload.payload`, encoded by
//! [`codec`]: compact (a `0x01` marker, then postcard) or JSON, which masters of builds
//! before the compact form send and read; a server answers in the form it was asked in,
//! and a peer that refuses compact messages is sent JSON for a while ([`Formats`]). An
//! answer carries the `Result` the peer's `Raft` returned, so a remote refusal (a higher
//! vote, a snapshot error) reaches openraft as a `RemoteError`, not as a network failure.
//! How many entries one AppendEntries carries adapts to what gets through in time
//! ([`Window`]).

mod formats;
mod window;

use crate::drill::Isolation;
use crate::lease::Acks;
pub(crate) use formats::{refuses_compact, Formats, UNREADABLE};
use hearth_proto::auth::{authed, AuthChannel, Credential};
use hearth_proto::pb::raft_service_client::RaftServiceClient;
use hearth_proto::pb::raft_service_server::{RaftService, RaftServiceServer};
use hearth_proto::pb::{PreVoteRequest, PreVoteResponse, RaftPayload};
use hearth_proto::MAX_MESSAGE;
use hearth_raft_store::codec::{self, Format};
use hearth_raft_store::openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use hearth_raft_store::openraft::network::Backoff;
use hearth_raft_store::openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use hearth_raft_store::openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use hearth_raft_store::openraft::Vote;
use hearth_raft_store::{BasicNode, NodeId, Raft, TypeConfig};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::{Request, Response, Status};
pub(crate) use window::Window;

/// One cached channel per peer address, shared by every client openraft makes (it makes
/// one per election and per replication stream).
#[derive(Clone, Default)]
pub struct Network {
    /// Peers dialled at another address than their membership one (`--peer-via`).
    via: Arc<HashMap<NodeId, String>>,
    channels: Arc<Mutex<HashMap<String, AuthChannel>>>,
    /// Peers last found unreachable, so each loss and return is logged once.
    down: Arc<Mutex<HashMap<String, bool>>>,
    acks: Acks,
    /// While this master is isolated by a drill, no peer is reached.
    isolation: Isolation,
    /// The cluster secret, sent with every message.
    credential: Credential,
    /// Which encoding each peer is sent.
    formats: Formats,
}

impl Network {
    pub fn new(
        via: impl IntoIterator<Item = (NodeId, String)>,
        isolation: Isolation,
        credential: Credential,
    ) -> Self {
        Network {
            via: Arc::new(via.into_iter().collect()),
            isolation,
            credential,
            ..Default::default()
        }
    }

    /// The acknowledgements every peer client records.
    pub fn acks(&self) -> Acks {
        self.acks.clone()
    }

    fn channel(&self, addr: &str) -> Result<AuthChannel, String> {
        let mut channels = self.channels.lock().expect("channels lock");
        if let Some(c) = channels.get(addr) {
            return Ok(c.clone());
        }
        let endpoint = self
            .credential
            .endpoint(addr)
            .map_err(|e| format!("bad peer address: {e}"))?
            .connect_timeout(Duration::from_millis(200))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(1))
            .keep_alive_timeout(Duration::from_secs(1));
        let channel = authed(endpoint.connect_lazy(), &self.credential);
        channels.insert(addr.to_owned(), channel.clone());
        Ok(channel)
    }
}

impl Network {
    /// Asks the master at `addr` for its pre-vote (at most `ttl`). A master that does not
    /// know the call (an older hearth, during a rolling upgrade) votes by openraft's own
    /// rules, as before: counted as granted.
    pub async fn pre_vote(
        &self,
        addr: &str,
        req: PreVoteRequest,
        ttl: Duration,
    ) -> Result<PreVoteResponse, String> {
        if self.isolation.active() {
            return Err("isolated by a drill".into());
        }
        let mut client = RaftServiceClient::new(self.channel(addr)?);
        match tokio::time::timeout(ttl, client.pre_vote(req)).await {
            Err(_) => Err(format!("no answer within {ttl:?}")),
            Ok(Ok(a)) => Ok(a.into_inner()),
            Ok(Err(s)) if s.code() == tonic::Code::Unimplemented => Ok(PreVoteResponse {
                granted: true,
                reason: String::new(),
                term: 0,
            }),
            Ok(Err(s)) => Err(format!("{:?}: {}", s.code(), s.message())),
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Peer {
        let addr = self.via.get(&target).unwrap_or(&node.addr).clone();
        Peer {
            target,
            down: self.down.clone(),
            acks: self.acks.clone(),
            isolation: self.isolation.clone(),
            client: self.channel(&addr).map(|ch| {
                RaftServiceClient::new(ch)
                    .max_decoding_message_size(MAX_MESSAGE)
                    .max_encoding_message_size(MAX_MESSAGE)
            }),
            addr,
            window: Window::default(),
            formats: self.formats.clone(),
        }
    }
}

/// openraft's client for one peer.
pub struct Peer {
    target: NodeId,
    down: Arc<Mutex<HashMap<String, bool>>>,
    acks: Acks,
    isolation: Isolation,
    addr: String,
    client: Result<RaftServiceClient<AuthChannel>, String>,
    window: Window,
    formats: Formats,
}

/// A failure that is not a remote refusal: the peer was not reached, or its answer was
/// unreadable.
#[derive(Debug, thiserror::Error)]
#[error("raft peer {addr}: {what}")]
struct Failure {
    addr: String,
    what: String,
}

enum Rpc {
    Append,
    Vote,
    Snapshot,
}

impl Peer {
    /// Logs a change in whether the peer answers (once per change, not per RPC).
    fn reached(&self, ok: bool, why: &str) {
        let mut down = self.down.lock().expect("down lock");
        let was_down = down.insert(self.addr.clone(), !ok).unwrap_or(false);
        match (was_down, ok) {
            (false, false) => {
                tracing::warn!(peer = self.target, addr = %self.addr, error = %why, "raft peer unreachable")
            }
            (true, true) => {
                tracing::info!(peer = self.target, addr = %self.addr, "raft peer reachable again")
            }
            _ => {}
        }
    }

    /// Sends `req` and decodes the peer's `Result<Resp, E>`, noting reachability.
    async fn send<Req, Resp, E>(
        &mut self,
        rpc: Rpc,
        req: &Req,
        ttl: Duration,
    ) -> Result<Resp, RPCError<NodeId, BasicNode, E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let result = self.exchange(rpc, req, ttl).await;
        match &result {
            Err(RPCError::Unreachable(e)) => {
                self.formats.unreachable(&self.addr);
                self.reached(false, &e.to_string())
            }
            Err(RPCError::Network(e)) => self.reached(false, &e.to_string()),
            _ => self.reached(true, ""),
        }
        result
    }

    async fn exchange<Req, Resp, E>(
        &mut self,
        rpc: Rpc,
        req: &Req,
        ttl: Duration,
    ) -> Result<Resp, RPCError<NodeId, BasicNode, E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let fail = |what: String| Failure {
            addr: self.addr.clone(),
            what,
        };
        if self.isolation.active() {
            return Err(RPCError::Unreachable(Unreachable::new(&fail(
                "isolated by a drill".into(),
            ))));
        }
        let client = match &mut self.client {
            Ok(c) => c,
            Err(e) => return Err(RPCError::Unreachable(Unreachable::new(&fail(e.clone())))),
        };
        let unencodable =
            |e: codec::CodecError| RPCError::Network(NetworkError::new(&fail(e.to_string())));
        let format = self.formats.for_peer(&self.addr, Instant::now());
        let deadline = tokio::time::Instant::now() + ttl;
        let mut answer = tokio::time::timeout_at(
            deadline,
            call(
                client,
                &rpc,
                codec::encode_as(format, req).map_err(unencodable)?,
            ),
        )
        .await;
        if format == Format::Compact && matches!(&answer, Ok(Err(s)) if refuses_compact(s)) {
            // A master of an older build: resend this message as JSON, and the next ones.
            if let Ok(Err(s)) = &answer {
                tracing::info!(peer = self.target, addr = %self.addr, answer = %s.message(),
                    "raft peer does not read the compact encoding; sending it JSON");
            }
            self.formats.refused_compact(&self.addr, Instant::now());
            answer = tokio::time::timeout_at(
                deadline,
                call(client, &rpc, codec::encode_json(req).map_err(unencodable)?),
            )
            .await;
        }
        let answer = match answer {
            Err(_) => {
                return Err(RPCError::Network(NetworkError::new(&fail(format!(
                    "no answer within {ttl:?}"
                )))))
            }
            Ok(Err(status)) if status.code() == tonic::Code::Unavailable => {
                return Err(RPCError::Unreachable(Unreachable::new(&fail(
                    status.message().to_owned(),
                ))))
            }
            Ok(Err(status)) => {
                return Err(RPCError::Network(NetworkError::new(&fail(format!(
                    "{:?}: {}",
                    status.code(),
                    status.message()
                )))))
            }
            Ok(Ok(payload)) => payload,
        };
        let result: Result<Resp, E> = codec::decode(&answer).map_err(|e| {
            RPCError::Network(NetworkError::new(&fail(format!("unreadable answer: {e}"))))
        })?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

/// Sends one encoded message; the answer's payload.
async fn call(
    client: &mut RaftServiceClient<AuthChannel>,
    rpc: &Rpc,
    payload: Vec<u8>,
) -> Result<Vec<u8>, Status> {
    let msg = RaftPayload { payload };
    let answer = match rpc {
        Rpc::Append => client.append_entries(msg).await,
        Rpc::Vote => client.vote(msg).await,
        Rpc::Snapshot => client.install_snapshot(msg).await,
    };
    answer.map(|a| a.into_inner().payload)
}

impl RaftNetwork<TypeConfig> for Peer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let sent = Instant::now();
        let leader = *rpc.vote.leader_id();
        let mut rpc = rpc;
        let offered = rpc.entries.len();
        let n = self.window.start(offered);
        let held_back = n < offered;
        rpc.entries.truncate(n);
        let last_sent = rpc.entries.last().map(|e| e.log_id);
        let answer = self.send(Rpc::Append, &rpc, option.hard_ttl()).await;
        self.window.finish(answer.is_ok());
        // Only a prefix went: the follower has the entries up to the last one sent (it
        // commits no further than that either: openraft's followers take the lesser of
        // the leader's commit and what they accepted).
        let answer = match answer {
            Ok(AppendEntriesResponse::Success) if held_back => {
                Ok(AppendEntriesResponse::PartialSuccess(last_sent))
            }
            other => other,
        };
        // Anything but a higher vote means the peer accepted this leader (a conflict is
        // only about log positions).
        if matches!(&answer, Ok(a) if !matches!(a, AppendEntriesResponse::HigherVote(_))) {
            self.acks.record(self.target, leader, sent);
        }
        answer
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.send(Rpc::Snapshot, &rpc, option.hard_ttl()).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.send(Rpc::Vote, &rpc, option.hard_ttl()).await
    }

    /// A restarted peer is retried after 100 ms (openraft's default is 500 ms), so it
    /// catches up soon after it is back.
    fn backoff(&self) -> Backoff {
        Backoff::new(std::iter::repeat(Duration::from_millis(100)))
    }
}

/// The `RaftService` gRPC service: hands each message to the local `Raft` and returns its
/// `Result` as the payload.
pub struct RaftServer {
    handle: Arc<crate::raft::RaftHandle>,
    raft: Raft,
    /// When an AppendEntries (a leader's heartbeat or entries) last arrived.
    last_append: Arc<Mutex<Option<std::time::Instant>>>,
    /// While this master is isolated by a drill, every message is refused.
    isolation: Isolation,
}

impl RaftServer {
    pub fn service(h: &Arc<crate::raft::RaftHandle>) -> RaftServiceServer<RaftServer> {
        let server = RaftServer {
            handle: h.clone(),
            raft: h.raft.clone(),
            last_append: h.last_append.clone(),
            isolation: h.isolation.clone(),
        };
        RaftServiceServer::new(server)
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE)
    }
}

impl RaftServer {
    /// The message in `req` and its encoding; refused while an isolate drill is in force.
    fn decode<T: DeserializeOwned>(
        &self,
        req: Request<RaftPayload>,
    ) -> Result<(T, Format), Status> {
        self.isolation.refuse()?;
        decode(req)
    }

    /// Refuses a message openraft must never see (see [`admissible`]), logging it.
    fn admit(&self, what: &str, vote: &Vote<NodeId>) -> Result<(), Status> {
        let (term, voters) = {
            let m = self.raft.metrics();
            let m = m.borrow();
            let voters: BTreeSet<NodeId> = m.membership_config.membership().voter_ids().collect();
            (m.current_term, voters)
        };
        let from = vote.leader_id().voted_for();
        admissible(term, &voters, from, vote.leader_id().term).map_err(|why| {
            tracing::warn!(what, ?from, term = vote.leader_id().term, %why, "refused a Raft message");
            Status::invalid_argument(format!("{what} refused: {why}"))
        })
    }
}

/// How far above this master's term a peer's may be. A real group moves one term per
/// election; a jump this big is a corrupt or hostile message, and `u64::MAX` would make
/// openraft overflow (`term + 1`) and panic on every restart.
pub const MAX_TERM_JUMP: u64 = 1 << 32;

/// Whether a Raft message from `from` at `term` may reach openraft on a master at
/// `current_term` whose group's voters are `voters`: its term must be sane, and its
/// sender a voter (a master that knows no membership yet, joining, takes any).
pub fn admissible(
    current_term: u64,
    voters: &BTreeSet<NodeId>,
    from: Option<NodeId>,
    term: u64,
) -> Result<(), String> {
    if term == u64::MAX || term > current_term.saturating_add(MAX_TERM_JUMP) {
        return Err(format!(
            "term {term} is absurd (this master is at term {current_term})"
        ));
    }
    match from {
        None => Err("it names no sender".into()),
        Some(n) if !voters.is_empty() && !voters.contains(&n) => Err(format!(
            "master {n} is not a voter of this group {voters:?}"
        )),
        Some(_) => Ok(()),
    }
}

/// The message in `req`, compact or JSON, and which it was.
fn decode<T: DeserializeOwned>(req: Request<RaftPayload>) -> Result<(T, Format), Status> {
    let payload = req.into_inner().payload;
    let format = Format::of(&payload);
    codec::decode(&payload)
        .map(|m| (m, format))
        .map_err(|e| Status::invalid_argument(format!("{UNREADABLE}: {e}")))
}

/// `answer` in `format`, the encoding of the request it answers: a master of an older
/// build reads only JSON, and asks in JSON.
fn encode<T: Serialize>(answer: &T, format: Format) -> Result<Response<RaftPayload>, Status> {
    let payload =
        codec::encode_as(format, answer).map_err(|e| Status::internal(format!("encoding: {e}")))?;
    Ok(Response::new(RaftPayload { payload }))
}

#[tonic::async_trait]
impl RaftService for RaftServer {
    async fn append_entries(
        &self,
        req: Request<RaftPayload>,
    ) -> Result<Response<RaftPayload>, Status> {
        let (rpc, format): (AppendEntriesRequest<TypeConfig>, _) = self.decode(req)?;
        self.admit("AppendEntries", &rpc.vote)?;
        let arrived = std::time::Instant::now();
        let answer = self.raft.append_entries(rpc).await;
        // A leader is heard only when its message is accepted: a deposed leader's
        // heartbeat (answered with a higher vote) must not hold off an election.
        if matches!(&answer, Ok(a) if !matches!(a, AppendEntriesResponse::HigherVote(_))) {
            *self.last_append.lock().expect("last_append lock") = Some(arrived);
        }
        encode(&answer, format)
    }

    async fn pre_vote(
        &self,
        req: Request<PreVoteRequest>,
    ) -> Result<Response<PreVoteResponse>, Status> {
        self.isolation.refuse()?;
        let req = req.into_inner();
        let vote = Vote::new(req.term, req.candidate);
        self.admit("PreVote", &vote)?;
        Ok(Response::new(
            crate::raft::elect::answer(&self.handle, &req).await,
        ))
    }

    async fn vote(&self, req: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        let (rpc, format): (VoteRequest<NodeId>, _) = self.decode(req)?;
        self.admit("Vote", &rpc.vote)?;
        encode(&self.raft.vote(rpc).await, format)
    }

    async fn install_snapshot(
        &self,
        req: Request<RaftPayload>,
    ) -> Result<Response<RaftPayload>, Status> {
        let (rpc, format): (InstallSnapshotRequest<TypeConfig>, _) = self.decode(req)?;
        self.admit("InstallSnapshot", &rpc.vote)?;
        encode(&self.raft.install_snapshot(rpc).await, format)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use hearth_raft_store::openraft::error::InstallSnapshotError;
    use hearth_raft_store::openraft::raft::{
        AppendEntriesResponse, InstallSnapshotResponse, VoteResponse,
    };
    use proptest::prelude::*;

    fn cases() -> u32 {
        std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(10_000)
    }

    /// Every Raft payload a master reads off the network, requests and answers.
    fn decode_everything(payload: &[u8]) {
        let req = || {
            Request::new(RaftPayload {
                payload: payload.to_vec(),
            })
        };
        let _ = decode::<AppendEntriesRequest<TypeConfig>>(req());
        let _ = decode::<VoteRequest<NodeId>>(req());
        let _ = decode::<InstallSnapshotRequest<TypeConfig>>(req());
        let _ = codec::decode::<Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>>(payload);
        let _ = codec::decode::<Result<VoteResponse<NodeId>, RaftError<NodeId>>>(payload);
        let _ = codec::decode::<
            Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
        >(payload);
    }

    fn entry(term: u64, index: u64) -> hearth_raft_store::Entry {
        serde_json::from_str(&format!(
            r#"{{"log_id":{{"leader_id":{{"term":{term},"node_id":1}},"index":{index}}},"payload":"Blank"}}"#
        ))
        .expect("an entry")
    }

    fn append(entries: Vec<hearth_raft_store::Entry>) -> AppendEntriesRequest<TypeConfig> {
        AppendEntriesRequest::<TypeConfig> {
            vote: Vote::new_committed(3, 1),
            prev_log_id: None,
            entries,
            leader_commit: None,
        }
    }

    /// A valid AppendEntries with one entry, to mutate, in `format`.
    fn valid(format: Format) -> Vec<u8> {
        codec::encode_as(format, &append(vec![entry(3, 7)])).expect("encodes")
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

        /// Fuzzing: arbitrary bytes (also behind the compact marker) and mutated valid
        /// messages of both encodings decode or are refused; nothing panics (10,000
        /// cases; `PROPTEST_CASES` for a long run).
        #[test]
        fn raft_payloads_decode_or_are_refused_without_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..256),
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
        ) {
            decode_everything(&bytes);
            let mut marked = vec![codec::COMPACT];
            marked.extend_from_slice(&bytes);
            decode_everything(&marked);
            for format in [Format::Json, Format::Compact] {
                let mut v = valid(format);
                for &(at, value) in &flips {
                    let n = v.len();
                    v[at % n] = value;
                }
                decode_everything(&v);
            }
        }
    }

    #[test]
    fn lengths_claiming_2_pow_60_elements_are_refused_without_allocating_them() {
        // A compact AppendEntries whose entry count, and an InstallSnapshot whose data
        // length, claim 2^60: refused (the input ends), not allocated (that would abort).
        // 2^60 as a postcard varint: 7 bits a byte, low first.
        let huge = [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10];
        assert_eq!(
            codec::decode::<u64>(&[&[codec::COMPACT][..], &huge].concat()).unwrap(),
            1 << 60
        );
        let mut append_bytes = codec::encode(&Vote::<NodeId>::new_committed(3, 1)).unwrap();
        append_bytes.push(0); // prev_log_id: None
        append_bytes.extend(&huge);
        append_bytes.extend([0, 1, 2, 3]);
        let req = |payload: Vec<u8>| Request::new(RaftPayload { payload });
        let e = decode::<AppendEntriesRequest<TypeConfig>>(req(append_bytes)).unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(
            e.message().starts_with("unreadable raft message: compact"),
            "{e:?}"
        );

        let snapshot = InstallSnapshotRequest::<TypeConfig> {
            vote: Vote::new_committed(3, 1),
            meta: Default::default(),
            offset: 0,
            data: vec![],
            done: true,
        };
        let mut bytes = codec::encode(&snapshot).unwrap();
        // The encoding ends with data's length (0) and done (1): claim 2^60 bytes.
        assert_eq!(bytes[bytes.len() - 2..], [0, 1]);
        bytes.truncate(bytes.len() - 2);
        bytes.extend(&huge);
        bytes.extend([7; 16]);
        assert!(decode::<InstallSnapshotRequest<TypeConfig>>(req(bytes)).is_err());
    }

    #[test]
    fn the_server_reads_both_encodings_and_answers_in_the_one_it_was_asked_in() {
        let msg = append(vec![entry(3, 7), entry(3, 8)]);
        for format in [Format::Json, Format::Compact] {
            let payload = codec::encode_as(format, &msg).unwrap();
            let (got, asked): (AppendEntriesRequest<TypeConfig>, _) =
                decode(Request::new(RaftPayload { payload })).expect("decodes");
            assert_eq!(asked, format);
            assert_eq!(got.entries, msg.entries);
            let answer: Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>> =
                Ok(AppendEntriesResponse::Success);
            let bytes = encode(&answer, asked).unwrap().into_inner().payload;
            assert_eq!(Format::of(&bytes), format);
            if format == Format::Json {
                // Exactly what the old build sent and reads.
                assert_eq!(bytes, serde_json::to_vec(&answer).unwrap());
            }
        }
        // The old build's refusal of a compact message, and this build's of garbage behind
        // the marker, both read as "does not read compact"; other refusals do not.
        let old =
            serde_json::from_slice::<AppendEntriesRequest<TypeConfig>>(&valid(Format::Compact))
                .map_err(|e| Status::invalid_argument(format!("unreadable raft message: {e}")))
                .unwrap_err();
        assert!(refuses_compact(&old));
        let new = decode::<VoteRequest<NodeId>>(Request::new(RaftPayload {
            payload: vec![codec::COMPACT, 0xff],
        }))
        .unwrap_err();
        assert!(refuses_compact(&new));
        assert!(!refuses_compact(&Status::invalid_argument(
            "AppendEntries refused: term"
        )));
        assert!(!refuses_compact(&Status::unavailable(
            "unreadable raft message"
        )));
    }

    /// The entries of one AppendEntries and the encoding they came in.
    type Received = (Format, Vec<hearth_raft_store::Entry>);

    /// A Raft server that records the AppendEntries it got and answers success: `legacy`,
    /// it reads only JSON and refuses anything else as the build before the compact
    /// encoding did; otherwise it decodes and answers as [`RaftServer`] does.
    #[derive(Clone, Default)]
    struct FakeServer {
        legacy: bool,
        got: Arc<Mutex<Vec<Received>>>,
        refused: Arc<Mutex<usize>>,
    }

    #[tonic::async_trait]
    impl RaftService for FakeServer {
        async fn append_entries(
            &self,
            req: Request<RaftPayload>,
        ) -> Result<Response<RaftPayload>, Status> {
            let answer: Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>> =
                Ok(AppendEntriesResponse::Success);
            let (rpc, format): (AppendEntriesRequest<TypeConfig>, _) = if self.legacy {
                let payload = req.into_inner().payload;
                let rpc = serde_json::from_slice(&payload).map_err(|e| {
                    *self.refused.lock().unwrap() += 1;
                    Status::invalid_argument(format!("unreadable raft message: {e}"))
                })?;
                (rpc, Format::Json)
            } else {
                decode(req)?
            };
            self.got.lock().unwrap().push((format, rpc.entries));
            if self.legacy {
                let payload = serde_json::to_vec(&answer).unwrap();
                return Ok(Response::new(RaftPayload { payload }));
            }
            encode(&answer, format)
        }

        async fn pre_vote(
            &self,
            _: Request<PreVoteRequest>,
        ) -> Result<Response<PreVoteResponse>, Status> {
            Err(Status::unimplemented("not here"))
        }

        async fn vote(&self, _: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
            Err(Status::unimplemented("not here"))
        }

        async fn install_snapshot(
            &self,
            _: Request<RaftPayload>,
        ) -> Result<Response<RaftPayload>, Status> {
            Err(Status::unimplemented("not here"))
        }
    }

    /// Serves `server` on a loopback port; its address.
    async fn serve(server: FakeServer) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(RaftServiceServer::new(server))
                .serve_with_incoming(incoming),
        );
        addr
    }

    async fn replicate(
        network: &mut Network,
        addr: &str,
        entries: Vec<hearth_raft_store::Entry>,
    ) -> AppendEntriesResponse<NodeId> {
        let mut peer = network.new_client(2, &BasicNode::new(addr)).await;
        peer.append_entries(append(entries), RPCOption::new(Duration::from_secs(10)))
            .await
            .expect("the peer takes the entries")
    }

    #[tokio::test]
    async fn entries_reach_a_master_of_the_json_only_build_and_a_current_one() {
        let mut network = Network::new([], Isolation::default(), Credential::default());

        // The old build: the first (compact) message is refused and resent as JSON at
        // once; the entries arrive, and the next messages go JSON straight away, from
        // this client and from the next one openraft makes.
        let legacy = FakeServer {
            legacy: true,
            ..Default::default()
        };
        let addr = serve(legacy.clone()).await;
        let first = vec![entry(3, 7), entry(3, 8)];
        let r = replicate(&mut network, &addr, first.clone()).await;
        assert_eq!(r, AppendEntriesResponse::Success);
        assert_eq!(*legacy.refused.lock().unwrap(), 1);
        assert_eq!(*legacy.got.lock().unwrap(), vec![(Format::Json, first)]);
        let second = vec![entry(3, 9)];
        replicate(&mut network, &addr, second.clone()).await;
        assert_eq!(
            *legacy.refused.lock().unwrap(),
            1,
            "not asked compact again"
        );
        assert_eq!(
            legacy.got.lock().unwrap().last(),
            Some(&(Format::Json, second))
        );

        // A current master is sent compact, by the same network.
        let current = FakeServer::default();
        let addr = serve(current.clone()).await;
        let entries = vec![entry(4, 10)];
        let r = replicate(&mut network, &addr, entries.clone()).await;
        assert_eq!(r, AppendEntriesResponse::Success);
        assert_eq!(
            *current.got.lock().unwrap(),
            vec![(Format::Compact, entries)]
        );
    }
    #[test]
    fn absurd_terms_and_strangers_are_refused_before_openraft() {
        let voters: BTreeSet<NodeId> = [1, 2, 3].into();
        assert_eq!(admissible(5, &voters, Some(2), 6), Ok(()));
        assert_eq!(
            admissible(5, &voters, Some(2), 3),
            Ok(()),
            "a stale term is openraft's to answer"
        );
        assert_eq!(admissible(5, &voters, Some(2), 5 + MAX_TERM_JUMP), Ok(()));
        assert_eq!(
            admissible(5, &voters, Some(2), 6 + MAX_TERM_JUMP),
            Err(format!(
                "term {} is absurd (this master is at term 5)",
                6 + MAX_TERM_JUMP
            ))
        );
        assert_eq!(
            admissible(u64::MAX - 1, &voters, Some(2), u64::MAX),
            Err(format!(
                "term {} is absurd (this master is at term {})",
                u64::MAX,
                u64::MAX - 1
            ))
        );
        assert_eq!(
            admissible(5, &voters, Some(99), 6),
            Err("master 99 is not a voter of this group {1, 2, 3}".into())
        );
        assert_eq!(
            admissible(5, &voters, None, 6),
            Err("it names no sender".into())
        );
        // A master joining the group knows no voters yet: the leader's messages pass.
        assert_eq!(admissible(0, &BTreeSet::new(), Some(99), 7), Ok(()));
    }
}
