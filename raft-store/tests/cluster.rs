//! A 3-master cluster in one process: real stores on temp dirs, openraft's `Raft`, and an
//! in-memory network that calls the target's `Raft` handle directly.

mod common;

use common::scenario;
use hearth_raft_store::{open, BasicNode, NodeId, Raft, Request, StateReader, TypeConfig};
use openraft::error::{
    ClientWriteError, InstallSnapshotError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{AnyError, Config};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tempfile::TempDir;

const WAIT: Option<Duration> = Some(Duration::from_secs(10));

/// Every node's `Raft` handle by id: the "network".
#[derive(Clone, Default)]
struct Router {
    nodes: Arc<Mutex<BTreeMap<NodeId, Raft>>>,
}

struct Conn {
    target: NodeId,
    router: Router,
}

impl Conn {
    fn raft(&self) -> Option<Raft> {
        let nodes = self.router.nodes.lock().expect("router lock");
        nodes.get(&self.target).cloned()
    }
}

fn unreachable<E: std::error::Error>(target: NodeId) -> RPCError<NodeId, BasicNode, E> {
    let why = AnyError::error(format!("node {target} is not running"));
    RPCError::Unreachable(Unreachable::new(&why))
}

fn remote<E: std::error::Error>(target: NodeId, e: E) -> RPCError<NodeId, BasicNode, E> {
    RPCError::RemoteError(RemoteError::new(target, e))
}

impl RaftNetworkFactory<TypeConfig> for Router {
    type Network = Conn;

    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> Conn {
        Conn {
            target,
            router: self.clone(),
        }
    }
}

impl RaftNetwork<TypeConfig> for Conn {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let raft = self.raft().ok_or_else(|| unreachable(self.target))?;
        raft.append_entries(rpc)
            .await
            .map_err(|e| remote(self.target, e))
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        let raft = self.raft().ok_or_else(|| unreachable(self.target))?;
        raft.install_snapshot(rpc)
            .await
            .map_err(|e| remote(self.target, e))
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let raft = self.raft().ok_or_else(|| unreachable(self.target))?;
        raft.vote(rpc).await.map_err(|e| remote(self.target, e))
    }
}

struct Node {
    raft: Raft,
    reader: StateReader,
    _dir: TempDir,
}

fn members() -> BTreeMap<NodeId, BasicNode> {
    (1..=3)
        .map(|id| (id, BasicNode::new(format!("127.0.0.1:{}", 7076 + id))))
        .collect()
}

/// Starts nodes 1..=3; `prepare` may write into a node's directory before it opens.
async fn start(prepare: impl Fn(NodeId, &std::path::Path)) -> anyhow::Result<(Router, Vec<Node>)> {
    let config = Arc::new(
        Config {
            heartbeat_interval: 50,
            election_timeout_min: 200,
            election_timeout_max: 400,
            ..Default::default()
        }
        .validate()?,
    );
    let router = Router::default();
    let mut nodes = Vec::new();
    for id in 1..=3 {
        let dir = TempDir::new()?;
        let path = dir.path().join("raft");
        prepare(id, &path);
        let (log, sm) = open(&path).await?;
        let reader = sm.reader();
        let raft = Raft::new(id, config.clone(), router.clone(), log, sm).await?;
        router
            .nodes
            .lock()
            .expect("router lock")
            .insert(id, raft.clone());
        nodes.push(Node {
            raft,
            reader,
            _dir: dir,
        });
    }
    Ok((router, nodes))
}

async fn leader_of(nodes: &[Node]) -> anyhow::Result<NodeId> {
    let m = nodes[0]
        .raft
        .wait(WAIT)
        .metrics(|m| m.current_leader.is_some(), "a leader is elected")
        .await?;
    Ok(m.current_leader.expect("waited for it"))
}

async fn shutdown(nodes: Vec<Node>) -> anyhow::Result<()> {
    for n in nodes {
        n.raft.shutdown().await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_masters_elect_replicate_and_redirect() -> anyhow::Result<()> {
    tracing::info!("--- start three nodes and initialize node 1 with all of them");
    let (_router, nodes) = start(|_, _| {}).await?;
    nodes[0].raft.initialize(members()).await?;
    let leader = leader_of(&nodes).await?;
    let lead = &nodes[leader as usize - 1].raft;

    tracing::info!("--- write the scenario's commands through the leader");
    let (cmds, want) = scenario();
    let mut last = 0;
    for cmd in cmds {
        let resp = lead.client_write(Request::new(cmd)).await?;
        assert!(
            resp.data.results.iter().all(|r| r.is_ok()),
            "{:?}",
            resp.data
        );
        last = resp.log_id.index;
    }

    tracing::info!("--- every node applies them and holds the same state");
    for n in &nodes {
        n.raft
            .wait(WAIT)
            .applied_index(Some(last), "replicated")
            .await?;
        assert_eq!(n.reader.read(Clone::clone), want);
    }

    tracing::info!("--- a follower refuses a write and names the leader");
    let follower = nodes
        .iter()
        .find(|n| n.raft.metrics().borrow().id != leader);
    let follower = follower.expect("two followers");
    let (cmds, _) = scenario();
    match follower
        .raft
        .client_write(Request::new(cmds[0].clone()))
        .await
    {
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
            assert_eq!(f.leader_id, Some(leader));
            assert_eq!(f.leader_node, members().get(&leader).cloned());
        }
        other => panic!("expected ForwardToLeader, got {other:?}"),
    }
    shutdown(nodes).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeded_node_leads_and_ships_the_seed_to_empty_peers() -> anyhow::Result<()> {
    tracing::info!("--- seed node 1 from an export; nodes 2 and 3 start empty");
    let tmp = TempDir::new()?;
    let (_, seeded) = scenario();
    let export = tmp.path().join("export.json");
    hearth_recovery::offline::write_export(&export, 6, &seeded)?;
    let (_router, nodes) = start(|id, dir| {
        if id == 1 {
            hearth_raft_store::seed_from_export(dir, &export, &members()).expect("seed");
        }
    })
    .await?;
    let leader = leader_of(&nodes).await?;
    assert_eq!(leader, 1, "only the seeded node has a log to win with");

    tracing::info!("--- a write on top of the seed reaches every node");
    let cmd = hearth_core::Command::SetExecutorTarget {
        app: seeded.apps.keys().next().expect("an app").clone(),
        target: 1,
    };
    let mut want = seeded.clone();
    let direct = hearth_core::apply(&mut want, &cmd);
    let resp = nodes[0].raft.client_write(Request::new(cmd)).await?;
    assert_eq!(resp.data.results, vec![direct]);
    for n in &nodes {
        n.raft
            .wait(WAIT)
            .applied_index(Some(resp.log_id.index), "replicated")
            .await?;
        assert_eq!(n.reader.read(Clone::clone), want);
    }
    shutdown(nodes).await
}
