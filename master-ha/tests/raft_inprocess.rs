//! Three Raft masters in one process on loopback (real gRPC, real RocksDB directories):
//! every kind of command replicates to every master; a master that was down while the
//! others snapshotted and purged their logs catches up from a snapshot; submissions
//! racing a leader change are acknowledged exactly once or reported as uncertain, never
//! applied twice behind the client's back.

mod common;

use common::{app, wait, Group, Settings};
use hearth_client::ClientError;
use hearth_core::{
    AppId, DriverDescription, ProcessSpec, WorkerId, WorkerIdentity, WorkerRegistration,
};
use hearth_proto::convert::StatusView;
use hearth_proto::pb;
use hearth_proto::pb::master_service_client::MasterServiceClient;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// A fresh directory for one test, removed at the end of a passing run.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("hearth-raft-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("test dir");
        Dir(d)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// What must be identical on every master: apps, drivers and workers with their states.
fn digest(s: &StatusView) -> Vec<String> {
    let mut d: Vec<String> = Vec::new();
    for a in s.active_apps.iter().chain(&s.completed_apps) {
        let execs: Vec<String> = a
            .executors
            .values()
            .map(|e| format!("{}@{}:{:?}", e.id, e.worker, e.state))
            .collect();
        d.push(format!("app {} {:?} {:?}", a.id, a.state, execs));
    }
    for dr in s.active_drivers.iter().chain(&s.completed_drivers) {
        d.push(format!("driver {} {:?} {:?}", dr.id, dr.state, dr.worker));
    }
    for w in &s.workers {
        d.push(format!(
            "worker {} {:?} {}",
            w.info.identity.id, w.info.state, w.info.cores_used
        ));
    }
    d.sort();
    d
}

async fn raw(addr: &str) -> MasterServiceClient<tonic::transport::Channel> {
    MasterServiceClient::connect(format!("http://{addr}"))
        .await
        .expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_command_kind_replicates_and_a_lagging_master_catches_up_from_a_snapshot() {
    let dir = Dir::new("replicate");
    let mut g = Group::start(
        &dir.0,
        3,
        Settings {
            snapshot_every: 20,
            ..Settings::default()
        },
    );
    let leader = g.leader().await;
    let lagging = (leader + 1) % 3;
    g.stop(lagging).await;
    let client = g.client();
    let lead = g.addr(leader);

    // A worker (at an address nothing listens on: launches to it are retried, which is
    // fine here), apps in client and cluster mode, placements, reports, scaling, kills,
    // a finish, a decommission.
    let worker = WorkerId("worker-fake-1".into());
    let reg = WorkerRegistration {
        identity: WorkerIdentity {
            id: worker.clone(),
            host: "127.0.0.1".into(),
            port: 1,
            http_port: 0,
            cores: 4,
            memory_mb: 4096,
        },
        executors: Vec::new(),
        drivers: Vec::new(),
    };
    raw(&lead)
        .await
        .register_worker(pb::RegisterWorkerRequest::from(&reg))
        .await
        .expect("register worker");
    let mut apps: Vec<AppId> = Vec::new();
    for i in 0..40 {
        let (id, _) = client
            .register_app(&app(&format!("client-{i}")), None, Some("127.0.0.1:1"))
            .await
            .expect("register app");
        apps.push(id);
    }
    let driver = DriverDescription {
        cores: 1,
        memory_mb: 64,
        supervise: false,
        command: ProcessSpec {
            argv: vec!["true".into()],
            env: Default::default(),
        },
    };
    let (cluster_app, driver_id) = client
        .register_app(&app("cluster"), Some(&driver), None)
        .await
        .expect("cluster app");
    let driver_id = driver_id.expect("a driver id");
    // Wait for placements, then report one executor and the driver RUNNING.
    let placed = wait("an executor placed on the worker", || async {
        let s = client.state().await.ok()?;
        s.active_apps
            .iter()
            .find_map(|a| a.executors.values().next().map(|e| (a.id.clone(), e.id)))
    })
    .await;
    raw(&lead)
        .await
        .executor_state_changed(pb::ExecutorStateChangedRequest {
            worker_id: worker.0.clone(),
            app_id: placed.0 .0.clone(),
            executor_id: placed.1,
            state: "RUNNING".into(),
            exit_code: None,
            message: String::new(),
        })
        .await
        .expect("executor report");
    raw(&lead)
        .await
        .driver_state_changed(pb::DriverStateChangedRequest {
            worker_id: worker.0.clone(),
            driver_id: driver_id.0.clone(),
            state: "RUNNING".into(),
            driver_url: Some("127.0.0.1:2".into()),
            exit_code: None,
            message: String::new(),
        })
        .await
        .expect("driver report");
    client.scale_app(&apps[1], 0).await.expect("scale");
    assert!(client.kill_app(&apps[2]).await.expect("kill app"));
    client
        .finish_app(&apps[3], hearth_core::AppState::Finished, "done")
        .await
        .expect("finish");
    assert!(client.kill_driver(&driver_id).await.expect("kill driver"));
    assert!(client
        .decommission_worker(&worker)
        .await
        .expect("decommission"));
    let _ = cluster_app;

    // Far more entries than a snapshot interval went by: the lagging master is sent a
    // snapshot, then the rest of the log, and ends with the same state as the leader.
    g.restart(lagging);
    let want = digest(&client.state().await.expect("leader state"));
    assert!(want.len() > 40, "{want:?}");
    wait("every master holds the leader's state", || async {
        for i in 0..3 {
            let v = g.view(i).await?;
            if digest(&v) != want {
                return None;
            }
        }
        Some(())
    })
    .await;
    for i in 0..3 {
        g.stop(i).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn submissions_racing_a_leader_change_are_never_applied_twice_silently() {
    let dir = Dir::new("race");
    let mut g = Group::start(
        &dir.0,
        3,
        Settings {
            snapshot_every: 5000,
            ..Settings::default()
        },
    );
    let leader = g.leader().await;
    let client = Arc::new(g.client());
    let acked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let submitters: Vec<_> = (0..4)
        .map(|k| {
            let client = client.clone();
            let acked = acked.clone();
            tokio::spawn(async move {
                let mut outcomes = Vec::new();
                for i in 0..40 {
                    let name = format!("s{k}-{i}");
                    let r = client
                        .register_app(&app(&name), None, Some("127.0.0.1:1"))
                        .await;
                    if r.is_ok() {
                        acked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    outcomes.push((name, r.map(|(id, _)| id)));
                }
                outcomes
            })
        })
        .collect();
    wait("some submissions acknowledged", || async {
        (acked.load(std::sync::atomic::Ordering::SeqCst) >= 20).then_some(())
    })
    .await;
    g.stop(leader).await;
    let mut outcomes = Vec::new();
    for s in submitters {
        outcomes.extend(s.await.expect("submitter"));
    }
    let new = g.leader().await;
    assert_ne!(new, leader);
    let state = client.state().await.expect("state");
    let mut by_name: BTreeMap<String, Vec<AppId>> = BTreeMap::new();
    for a in state.active_apps.iter().chain(&state.completed_apps) {
        by_name
            .entry(a.desc.name.clone())
            .or_default()
            .push(a.id.clone());
    }
    let mut uncertain = 0;
    for (name, outcome) in &outcomes {
        let found = by_name.get(name).cloned().unwrap_or_default();
        assert!(found.len() <= 1, "{name} registered twice: {found:?}");
        match outcome {
            Ok(id) => assert_eq!(found, vec![id.clone()], "{name} acknowledged as {id}"),
            Err(ClientError::Unknown { .. }) => uncertain += 1,
            Err(e) => assert!(found.is_empty(), "{name} refused ({e}) yet registered"),
        }
    }
    let names: BTreeSet<&String> = outcomes.iter().map(|(n, _)| n).collect();
    assert!(
        by_name.keys().all(|n| names.contains(n)),
        "an app nobody submitted"
    );
    assert!(
        outcomes.iter().filter(|(_, r)| r.is_ok()).count() >= 20,
        "{outcomes:?}"
    );
    eprintln!(
        "{} acknowledged, {uncertain} reported uncertain, {} failed cleanly",
        outcomes.iter().filter(|(_, r)| r.is_ok()).count(),
        outcomes.len() - uncertain - outcomes.iter().filter(|(_, r)| r.is_ok()).count()
    );
    for i in 0..3 {
        g.stop(i).await;
    }
}

/// The isolate drill's switch is a handle per master: in one process, one master of
/// three is cut off, the other two elect a leader, and the isolated one answers nothing
/// until the drill ends, then follows.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn isolating_one_master_of_three_in_process_moves_leadership_to_another() {
    let dir = Dir::new("isolate");
    let mut g = Group::start(&dir.0, 3, Settings::default());
    let first = g.leader().await;
    let isolation = g.master(first).expect("running").isolation.clone();
    // Long enough for the checks below under any load; ended early once they are done.
    isolation.isolate(Duration::from_secs(60));
    let next = wait("another ALIVE leader", || async {
        let i = g.leader().await;
        (i != first).then_some(i)
    })
    .await;
    assert!(g.view(first).await.is_none(), "an isolated master answers");
    assert!(isolation.active());
    // Once the drill ends it rejoins as a follower of the new leader.
    isolation.isolate(Duration::ZERO);
    wait("the isolated master following again", || async {
        let v = g.view(first).await?;
        (v.leader == Some(g.addr(next))).then_some(())
    })
    .await;
    g.stop_all().await;
}
