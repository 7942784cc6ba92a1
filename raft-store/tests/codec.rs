//! The compact encoding (`hearth_raft_store::codec`) against every value the Raft side
//! stores or sends: each round-trips exactly through the compact form and through JSON.
//! postcard is not self-describing, so a type using `skip_serializing_if`, `flatten`,
//! `untagged` or `deserialize_any` would fail here rather than on a live cluster.

mod common;

use common::{blank, log_id, normal, register_app, register_worker, scenario};
use hearth_core::{
    apply, schedule, AppId, ClusterState, Command, ExecutorState, Millis, Placement, Policy,
    WorkerId,
};
use hearth_raft_store::codec::{self, Format, COMPACT};
use hearth_raft_store::{Entry, NodeId, Request, SnapshotDoc, TypeConfig};
use openraft::error::{Fatal, InstallSnapshotError, RaftError, SnapshotMismatch};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{
    AnyError, BasicNode, DefensiveError, EntryPayload, ErrorSubject, ErrorVerb, LogId, Membership,
    SnapshotMeta, SnapshotSegmentId, StorageError, StorageIOError, StoredMembership, Violation,
    Vote,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

/// `value` comes back the same (same JSON, same `Debug`) through both forms, and each is
/// recognised as what it is.
fn round_trips<T: Serialize + DeserializeOwned + Debug>(what: &str, value: &T) {
    let want_json = serde_json::to_value(value).expect("JSON of the value");
    for format in [Format::Compact, Format::Json] {
        let bytes = codec::encode_as(format, value)
            .unwrap_or_else(|e| panic!("{what}: encoding as {format:?}: {e}"));
        assert_eq!(Format::of(&bytes), format, "{what}");
        let back: T =
            codec::decode(&bytes).unwrap_or_else(|e| panic!("{what}: decoding {format:?}: {e}"));
        assert_eq!(
            serde_json::to_value(&back).expect("JSON of the value"),
            want_json,
            "{what} through {format:?}"
        );
        assert_eq!(
            format!("{back:?}"),
            format!("{value:?}"),
            "{what} through {format:?}"
        );
    }
}

fn membership() -> Membership<NodeId, BasicNode> {
    // A joint configuration {1,2,3} -> {2,3,4} with a learner 5.
    let nodes: BTreeMap<NodeId, BasicNode> = (1..=5)
        .map(|n| (n, BasicNode::new(format!("10.0.0.{n}:7077"))))
        .collect();
    Membership::new(
        vec![BTreeSet::from([1, 2, 3]), BTreeSet::from([2, 3, 4])],
        nodes,
    )
}

/// One entry of each payload kind, the normal one a batch of the scenario's commands.
fn entries() -> Vec<Entry> {
    let (cmds, _) = scenario();
    vec![
        blank(3, 10),
        Entry {
            log_id: log_id(3, 11),
            payload: EntryPayload::Normal(Request::batch(cmds)),
        },
        Entry {
            log_id: log_id(4, 12),
            payload: EntryPayload::Membership(membership()),
        },
    ]
}

fn meta(last: Option<LogId<NodeId>>) -> SnapshotMeta<NodeId, BasicNode> {
    SnapshotMeta {
        last_log_id: last,
        last_membership: StoredMembership::new(last, membership()),
        snapshot_id: "3-1-11-1700000000".into(),
    }
}

/// An error with a source and a context.
fn any_error() -> AnyError {
    #[derive(Debug, thiserror::Error)]
    #[error("append failed")]
    struct Outer(#[source] std::io::Error);
    AnyError::new(&Outer(std::io::Error::other("disk on fire"))).add_context(|| "while appending")
}

/// Every `Fatal` a peer can answer with, storage errors of both kinds included.
fn fatals() -> Vec<Fatal<NodeId>> {
    let io = StorageIOError::new(
        ErrorSubject::Log(log_id(2, 5)),
        ErrorVerb::Write,
        any_error(),
    );
    let defensive = DefensiveError::new(
        ErrorSubject::Logs,
        Violation::LogsNonConsecutive {
            prev: Some(log_id(2, 5)),
            next: log_id(2, 7),
        },
    );
    vec![
        Fatal::Panicked,
        Fatal::Stopped,
        Fatal::StorageError(StorageError::from(io)),
        Fatal::StorageError(StorageError::from(defensive)),
        Fatal::StorageError(StorageError::from(StorageIOError::<NodeId>::read_snapshot(
            None,
            AnyError::error("gone"),
        ))),
    ]
}

#[test]
fn every_stored_value_round_trips() {
    for (i, e) in entries().iter().enumerate() {
        round_trips(&format!("entry {i}"), e);
    }
    round_trips("vote", &Vote::<NodeId>::new(7, 2));
    round_trips("committed vote", &Vote::<NodeId>::new_committed(7, 2));
    round_trips("log id", &log_id(7, 123_456));
    round_trips("no log id", &None::<LogId<NodeId>>);
    round_trips("snapshot meta", &meta(Some(log_id(3, 11))));
    round_trips("empty snapshot meta", &meta(None));
    round_trips(
        "default snapshot meta",
        &SnapshotMeta::<NodeId, BasicNode>::default(),
    );
}

#[test]
fn every_raft_message_and_answer_round_trips() {
    let vote = Vote::new_committed(4, 1);
    round_trips(
        "AppendEntries",
        &AppendEntriesRequest::<TypeConfig> {
            vote,
            prev_log_id: Some(log_id(3, 9)),
            entries: entries(),
            leader_commit: Some(log_id(3, 8)),
        },
    );
    round_trips(
        "heartbeat",
        &AppendEntriesRequest::<TypeConfig> {
            vote,
            prev_log_id: None,
            entries: vec![],
            leader_commit: None,
        },
    );
    round_trips(
        "Vote",
        &VoteRequest::new(Vote::new(5, 2), Some(log_id(4, 12))),
    );
    round_trips(
        "Vote, empty log",
        &VoteRequest::<NodeId>::new(Vote::new(1, 2), None),
    );
    for done in [false, true] {
        round_trips(
            "InstallSnapshot",
            &InstallSnapshotRequest::<TypeConfig> {
                vote,
                meta: meta(Some(log_id(3, 11))),
                offset: 1 << 33,
                data: (0..=255).collect(),
                done,
            },
        );
    }

    type AppendAnswer = Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>;
    type VoteAnswer = Result<VoteResponse<NodeId>, RaftError<NodeId>>;
    type SnapshotAnswer =
        Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>;
    for ok in [
        AppendEntriesResponse::Success,
        AppendEntriesResponse::PartialSuccess(Some(log_id(3, 10))),
        AppendEntriesResponse::PartialSuccess(None),
        AppendEntriesResponse::Conflict,
        AppendEntriesResponse::HigherVote(Vote::new(9, 3)),
    ] {
        round_trips("AppendEntries answer", &AppendAnswer::Ok(ok));
    }
    for granted in [false, true] {
        round_trips(
            "Vote answer",
            &VoteAnswer::Ok(VoteResponse::new(
                Vote::new(5, 2),
                Some(log_id(4, 3)),
                granted,
            )),
        );
    }
    round_trips(
        "InstallSnapshot answer",
        &SnapshotAnswer::Ok(InstallSnapshotResponse { vote }),
    );
    round_trips(
        "snapshot mismatch",
        &SnapshotAnswer::Err(RaftError::APIError(InstallSnapshotError::SnapshotMismatch(
            SnapshotMismatch {
                expect: SnapshotSegmentId {
                    id: "a".into(),
                    offset: 0,
                },
                got: SnapshotSegmentId {
                    id: "b".into(),
                    offset: 4096,
                },
            },
        ))),
    );
    for fatal in fatals() {
        round_trips(
            "fatal AppendEntries answer",
            &AppendAnswer::Err(RaftError::Fatal(fatal.clone())),
        );
        round_trips(
            "fatal Vote answer",
            &VoteAnswer::Err(RaftError::Fatal(fatal.clone())),
        );
        round_trips(
            "fatal InstallSnapshot answer",
            &SnapshotAnswer::Err(RaftError::Fatal(fatal)),
        );
    }
}

/// A state with `executors` RUNNING executors (1 core each) on 32-core workers, over
/// 100 apps, built by applying the commands a master would.
fn big_state(executors: u32) -> ClusterState {
    let t0 = Millis(1_700_000_000_000);
    let mut state = ClusterState::default();
    let push = |state: &mut ClusterState, cmd: Command| {
        apply(state, &cmd).unwrap_or_else(|e| panic!("{} refused: {e}", cmd.kind()));
    };
    push(&mut state, Command::BeginRecovery { at: t0 });
    push(&mut state, Command::CompleteRecovery { at: t0.plus(1) });
    let workers = executors.div_ceil(32);
    for n in 0..workers {
        let mut cmd = register_worker(1, t0.plus(2));
        if let Command::RegisterWorker { reg, .. } = &mut cmd {
            reg.identity.host = format!("10.{}.{}.{}", n >> 16, (n >> 8) & 255, n & 255);
            reg.identity.id = WorkerId(format!("worker-{}-{}-7078", t0.0, reg.identity.host));
            reg.identity.cores = 32;
            reg.identity.memory_mb = 1 << 20;
        }
        push(&mut state, cmd);
    }
    let apps = 100;
    for a in 0..apps {
        let mut cmd = register_app(&format!("app-{a}"), t0.plus(3));
        if let Command::RegisterApp { desc, .. } = &mut cmd {
            desc.max_cores = Some(executors.div_ceil(apps));
            desc.memory_per_executor_mb = 1;
        }
        push(&mut state, cmd);
    }
    let placements = schedule(&state, &Policy::default(), 7);
    let running: Vec<(WorkerId, AppId, u32)> = placements.iter().filter_map(executor_of).collect();
    push(
        &mut state,
        Command::Place {
            placements,
            at: t0.plus(4),
        },
    );
    for (worker, app, executor) in running {
        push(
            &mut state,
            running_report(worker, app, executor, t0.plus(5)),
        );
    }
    state
}

/// The snapshot document decodes to exactly the state, from JSON and compact bytes; the
/// sizes are printed (`--nocapture`). `HEARTH_SNAPSHOT_EXECUTORS` sets the size of the
/// big state (default 3,200; the figures in the report used 100,000 in release).
#[test]
fn snapshot_documents_round_trip_exactly_in_both_forms() {
    let executors = std::env::var("HEARTH_SNAPSHOT_EXECUTORS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3_200);
    let (_, small) = scenario();
    let big = big_state(executors);
    let placed: usize = big.apps.values().map(|a| a.executors.len()).sum();
    assert_eq!(placed, executors as usize, "every executor placed");
    for (what, state) in [("scenario", &small), ("big", &big)] {
        let json = SnapshotDoc::encode(state).expect("JSON");
        let compact = SnapshotDoc::encode_compact(state).expect("compact");
        assert_eq!(Format::of(&json), Format::Json);
        assert_eq!(compact[0], COMPACT);
        assert_eq!(
            &SnapshotDoc::decode(&json).expect("JSON decodes"),
            state,
            "{what}"
        );
        assert_eq!(
            &SnapshotDoc::decode(&compact).expect("compact decodes"),
            state,
            "{what}"
        );
        assert!(compact.len() < json.len(), "{what}");
        println!(
            "snapshot of the {what} state ({} executors): JSON {} bytes, compact {} bytes ({:.0}%)",
            state
                .apps
                .values()
                .map(|a| a.executors.len())
                .sum::<usize>(),
            json.len(),
            compact.len(),
            100.0 * compact.len() as f64 / json.len() as f64
        );
    }
    // A document of another format or version is refused whatever its encoding.
    let mut doc = SnapshotDoc {
        format: "something-else".into(),
        version: 1,
        state: small,
    };
    for bytes in [
        codec::encode(&doc).unwrap(),
        codec::encode_json(&doc).unwrap(),
    ] {
        assert!(SnapshotDoc::decode(&bytes)
            .unwrap_err()
            .contains("something-else"));
    }
    doc.format = hearth_raft_store::state_machine::SNAPSHOT_FORMAT.into();
    doc.version = 2;
    assert!(SnapshotDoc::decode(&codec::encode(&doc).unwrap())
        .unwrap_err()
        .contains("version 2"));
}

/// Bytes per log entry for typical commands, JSON vs compact (printed with
/// `--nocapture`); the compact form is smaller for each.
#[test]
fn typical_entries_are_smaller_compact() {
    let (cmds, _) = scenario();
    let t0 = Millis(1_700_000_000_000);
    let place = cmds
        .iter()
        .find(|c| matches!(c, Command::Place { .. }))
        .expect("the scenario places")
        .clone();
    let (worker, app, executor) = match &place {
        Command::Place { placements, .. } => placements
            .iter()
            .find_map(executor_of)
            .expect("an executor placement"),
        _ => unreachable!(),
    };
    let typical = [
        ("RegisterWorker", register_worker(7, t0)),
        ("Place", place),
        (
            "ExecutorStateChanged",
            running_report(worker, app, executor, t0.plus(9)),
        ),
    ];
    for (what, cmd) in typical {
        let entry = normal(12, 123_456, cmd);
        let json = codec::encode_json(&entry).unwrap();
        let compact = codec::encode(&entry).unwrap();
        println!(
            "{what} entry: JSON {} bytes, compact {} bytes",
            json.len(),
            compact.len()
        );
        assert!(compact.len() < json.len(), "{what}");
    }
}

/// Where an executor placement puts which executor: (worker, app, executor id).
fn executor_of(p: &Placement) -> Option<(WorkerId, AppId, u32)> {
    match p {
        Placement::Executor {
            app,
            executor,
            worker,
            ..
        } => Some((worker.clone(), app.clone(), *executor)),
        Placement::Driver { .. } => None,
    }
}

/// A worker's report that `executor` of `app` runs.
fn running_report(worker: WorkerId, app: AppId, executor: u32, at: Millis) -> Command {
    Command::ExecutorStateChanged {
        worker,
        app,
        executor,
        state: ExecutorState::Running,
        exit_code: None,
        message: String::new(),
        at,
    }
}
