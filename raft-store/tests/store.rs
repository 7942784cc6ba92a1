//! The storage contract: openraft's own suite, then hearth's durability and state checks.

mod common;

use common::{blank, log_id, normal, scenario};
use hearth_core::{apply, ClusterState, Command, Rejection};
use hearth_raft_store::{open, LogStore, NodeId, StateMachineStore, TypeConfig};
use openraft::storage::{RaftLogStorage, RaftLogStorageExt, RaftStateMachine};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{AnyError, RaftLogReader, RaftSnapshotBuilder, StorageError, StorageIOError, Vote};
use tempfile::TempDir;

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachineStore), StorageError<NodeId>> {
        let dir = TempDir::new().expect("create a temp dir");
        let (log, sm) = open(dir.path())
            .await
            .map_err(|e| StorageIOError::write(AnyError::error(e.to_string())))?;
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite() -> anyhow::Result<()> {
    Suite::test_all(Builder)?;
    Ok(())
}

#[tokio::test]
async fn reopen_keeps_vote_log_and_committed() -> anyhow::Result<()> {
    let dir = TempDir::new()?;
    let (cmds, _) = scenario();
    {
        let (mut log, _sm) = open(dir.path()).await?;
        log.save_vote(&Vote::new(3, 2)).await?;
        let entries: Vec<_> = std::iter::once(blank(3, 1))
            .chain(
                cmds.iter()
                    .enumerate()
                    .map(|(i, c)| normal(3, i as u64 + 2, c.clone())),
            )
            .collect();
        log.blocking_append(entries).await?;
        log.save_committed(Some(log_id(3, 4))).await?;
        log.purge(log_id(3, 1)).await?;
    }
    let (mut log, _sm) = open(dir.path()).await?;
    assert_eq!(log.read_vote().await?, Some(Vote::new(3, 2)));
    assert_eq!(log.read_committed().await?, Some(log_id(3, 4)));
    let state = log.get_log_state().await?;
    assert_eq!(state.last_purged_log_id, Some(log_id(3, 1)));
    assert_eq!(state.last_log_id, Some(log_id(3, cmds.len() as u64 + 1)));
    let entries = log.try_get_log_entries(2..).await?;
    assert_eq!(entries.len(), cmds.len());
    for (entry, cmd) in entries.iter().zip(&cmds) {
        match &entry.payload {
            openraft::EntryPayload::Normal(req) => assert_eq!(req.commands, vec![cmd.clone()]),
            other => panic!("expected a normal entry, got {other:?}"),
        }
    }
    Ok(())
}

/// Applies the scenario through the state machine and returns each answer.
async fn apply_scenario(
    sm: &mut StateMachineStore,
) -> anyhow::Result<Vec<hearth_raft_store::Response>> {
    let (cmds, _) = scenario();
    let mut entries = vec![blank(1, 1)];
    entries.extend(
        cmds.into_iter()
            .enumerate()
            .map(|(i, c)| normal(1, i as u64 + 2, c)),
    );
    Ok(sm.apply(entries).await?)
}

#[tokio::test]
async fn applying_commands_matches_core_apply() -> anyhow::Result<()> {
    let dir = TempDir::new()?;
    let (_log, mut sm) = open(dir.path()).await?;
    let (cmds, want) = scenario();
    let responses = apply_scenario(&mut sm).await?;
    assert_eq!(responses.len(), cmds.len() + 1);
    assert!(
        responses.iter().flat_map(|r| &r.results).all(|r| r.is_ok()),
        "{responses:?}"
    );

    // Same answers as core gives, command by command.
    let mut direct = ClusterState::default();
    for (cmd, resp) in cmds.iter().zip(&responses[1..]) {
        assert_eq!(vec![apply(&mut direct, cmd)], resp.results);
    }
    let reader = sm.reader();
    assert_eq!(
        reader.cloned(),
        (Some(log_id(1, cmds.len() as u64 + 1)), want.clone())
    );
    assert!(reader.read(|s| s.apps.values().any(|a| !a.executors.is_empty())));

    // A refusal is answered, changes nothing, and still advances last_applied.
    let bad = Command::ForgetWorker {
        worker: hearth_core::WorkerId("worker-nobody".into()),
    };
    let next = cmds.len() as u64 + 2;
    let resp = sm.apply([normal(1, next, bad)]).await?;
    assert!(matches!(
        resp[0].results[..],
        [Err(Rejection::UnknownWorker(_))]
    ));
    assert_eq!(reader.cloned(), (Some(log_id(1, next)), want));
    Ok(())
}

#[tokio::test]
async fn snapshot_installed_on_a_fresh_store_gives_the_same_state() -> anyhow::Result<()> {
    let (a, b) = (TempDir::new()?, TempDir::new()?);
    let (_la, mut sm_a) = open(a.path()).await?;
    apply_scenario(&mut sm_a).await?;
    let built = sm_a.get_snapshot_builder().await.build_snapshot().await?;

    let (_lb, mut sm_b) = open(b.path()).await?;
    let mut data = sm_b.begin_receiving_snapshot().await?;
    *data = *built.snapshot;
    sm_b.install_snapshot(&built.meta, data).await?;
    assert_eq!(sm_b.reader().cloned(), sm_a.reader().cloned());
    assert_eq!(sm_b.applied_state().await?, sm_a.applied_state().await?);

    // The installed snapshot survives a restart of b, state and all.
    let want = sm_a.reader().cloned();
    drop((_lb, sm_b));
    let (_lb, mut sm_b) = open(b.path()).await?;
    assert_eq!(sm_b.reader().cloned(), want);
    let current = sm_b.get_current_snapshot().await?.expect("a snapshot");
    assert_eq!(current.meta, built.meta);
    Ok(())
}

#[tokio::test]
async fn restart_restores_the_last_built_snapshot() -> anyhow::Result<()> {
    let dir = TempDir::new()?;
    let want = {
        let (_log, mut sm) = open(dir.path()).await?;
        apply_scenario(&mut sm).await?;
        sm.get_snapshot_builder().await.build_snapshot().await?;
        sm.reader().cloned()
    };
    let (_log, mut sm) = open(dir.path()).await?;
    assert_eq!(sm.reader().cloned(), want);
    assert_eq!(sm.applied_state().await?.0, want.0);
    Ok(())
}

#[tokio::test]
async fn seeded_store_starts_from_the_export() -> anyhow::Result<()> {
    let tmp = TempDir::new()?;
    let (_, want) = scenario();
    let export = tmp.path().join("export.json");
    hearth_recovery::offline::write_export(&export, 42, &want)?;
    let dir = tmp.path().join("raft");
    let voters: std::collections::BTreeMap<NodeId, openraft::BasicNode> =
        [(1, openraft::BasicNode::new("127.0.0.1:7077"))].into();
    assert_eq!(
        hearth_raft_store::seed_from_export(&dir, &export, &voters)?,
        42
    );

    let (mut log, mut sm) = open(&dir).await?;
    assert_eq!(sm.reader().read(Clone::clone), want);
    let (applied, membership) = sm.applied_state().await?;
    assert_eq!(applied, Some(openraft::LogId::default()));
    assert_eq!(
        membership.membership().voter_ids().collect::<Vec<_>>(),
        vec![1]
    );
    let state = log.get_log_state().await?;
    assert_eq!(state.last_log_id, Some(openraft::LogId::default()));

    // A second seed into the same directory is refused.
    let again = hearth_raft_store::seed_from_export(&dir, &export, &voters);
    assert!(matches!(
        again,
        Err(hearth_raft_store::StoreError::NotFresh { .. })
    ));
    Ok(())
}
