//! Raft administration (`RaftAdmin`, through hearth-client's `AdminClient`) against Raft
//! masters run in this process on loopback (real gRPC, real RocksDB directories):
//! membership 3 → 5 → 3 with new masters that join instead of initializing, leadership
//! transfer to a named follower and to the most caught-up one, snapshots on request,
//! refusals, and a master whose `--peers` disagrees with its stored membership.
//!
//! Every wait is on a condition with a deadline; nothing sleeps to let things happen.

mod common;

use common::{app, listen, start_master, wait, Running, Settings, DEADLINE};
use hearth_client::admin::{AdminClient, RaftMembers};
use hearth_client::{ClientError, MasterClient};
use hearth_core::MasterRole;
use hearth_master::ports::free_peer_ports;
use hearth_proto::convert::MemberRole;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::net::TcpListener;
use tonic::Code;

fn addr_of(l: &TcpListener) -> String {
    format!("127.0.0.1:{}", l.local_addr().expect("local addr").port())
}

fn start(id: u64, peers: &BTreeMap<u64, String>, dir: &Path, grpc: TcpListener) -> Running {
    let settings = Settings {
        recovery_timeout: Duration::from_millis(500),
        ..Settings::default()
    };
    start_master(id, peers, dir, grpc, &settings)
}

/// Masters 1..=n bound (so `--peers` is known) and started with those peers.
fn group(dir: &Path, n: u64) -> (BTreeMap<u64, String>, BTreeMap<u64, Running>) {
    let listeners: BTreeMap<u64, TcpListener> = (1..=n).map(|id| (id, listen(0))).collect();
    let peers: BTreeMap<u64, String> = listeners.iter().map(|(id, l)| (*id, addr_of(l))).collect();
    let running = listeners
        .into_iter()
        .map(|(id, l)| (id, start(id, &peers, dir, l)))
        .collect();
    (peers, running)
}

fn admin(peers: &BTreeMap<u64, String>, ids: &[u64]) -> AdminClient {
    AdminClient::new(ids.iter().map(|id| peers[id].clone()).collect())
}

/// The leader's view, once a leader answers (the client follows hints and retries until
/// one does, within its deadline).
async fn leader_view(c: &AdminClient) -> RaftMembers {
    let m = c.members(true).await.expect("a leader answers");
    assert_eq!(m.leader_id, Some(m.answered_by), "{m:?}");
    m
}

/// The leader's view once it shows exactly `want` as voters, every one of them reached
/// (a follower that has not acknowledged the leader yet shows as unreachable).
async fn settled_view(c: &AdminClient, want: &[u64]) -> RaftMembers {
    let want: BTreeSet<u64> = want.iter().copied().collect();
    wait(&format!("voters {want:?}, all reached"), || async {
        let m = leader_view(c).await;
        (voters(&m) == want && m.members.iter().all(|x| x.matched_index.is_some())).then_some(m)
    })
    .await
}

fn voters(m: &RaftMembers) -> BTreeSet<u64> {
    m.voters().map(|v| v.id).collect()
}

/// The leader's view shows exactly `want` as voters, one leader, the others followers
/// (reached: each has a matched index), and no learner left over.
fn assert_voters(m: &RaftMembers, want: &[u64]) {
    assert_eq!(voters(m), want.iter().copied().collect(), "{m:?}");
    assert_eq!(m.members.len(), want.len(), "no learners left: {m:?}");
    assert!(!m.joint, "{m:?}");
    for x in &m.members {
        let expected = if Some(x.id) == m.leader_id {
            MemberRole::Leader
        } else {
            MemberRole::Follower
        };
        assert_eq!(x.role, expected, "{m:?}");
        assert!(x.matched_index.is_some(), "{m:?}");
    }
}

fn code(e: &ClientError) -> Option<Code> {
    e.code()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn membership_grows_from_three_to_five_masters_and_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Every port first: masters 4 and 5 are started with the five-master list.
    let listeners: BTreeMap<u64, TcpListener> = (1..=5).map(|id| (id, listen(0))).collect();
    let all: BTreeMap<u64, String> = listeners.iter().map(|(id, l)| (*id, addr_of(l))).collect();
    let three: BTreeMap<u64, String> = all.range(1..=3).map(|(i, a)| (*i, a.clone())).collect();
    let mut listeners = listeners;
    let mut running: BTreeMap<u64, Running> = BTreeMap::new();
    for id in 1..=3 {
        let l = listeners.remove(&id).expect("listener");
        running.insert(id, start(id, &three, dir.path(), l));
    }
    let c = admin(&all, &[1, 2, 3]);
    let m = settled_view(&c, &[1, 2, 3]).await;
    assert_voters(&m, &[1, 2, 3]);
    assert_eq!(m.member(1).expect("master 1").address, all[&1]);

    // New masters on empty directories with the five-master list: a peer is past term 0,
    // so they join (wait to be added) instead of initializing a group of their own.
    for id in 4..=5 {
        let l = listeners.remove(&id).expect("listener");
        running.insert(id, start(id, &all, dir.path(), l));
    }
    for id in 4..=5 {
        let own = admin(&all, &[id]).members(false).await.expect("it answers");
        assert_eq!(own.answered_by, id);
        assert!(
            own.members.is_empty() && own.leader_id.is_none(),
            "master {id} initialized instead of joining: {own:?}"
        );
    }

    let m = c
        .add_master(4, &all[&4], DEADLINE)
        .await
        .expect("add master 4");
    assert_eq!(voters(&m), BTreeSet::from([1, 2, 3, 4]), "{m:?}");
    assert!(m.message.contains("is now a voter"), "{}", m.message);
    let m = c
        .add_master(5, &all[&5], DEADLINE)
        .await
        .expect("add master 5");
    assert_eq!(voters(&m), BTreeSet::from([1, 2, 3, 4, 5]), "{m:?}");
    let peer_flag = all
        .iter()
        .map(|(i, a)| format!("{i}={a}"))
        .collect::<Vec<_>>()
        .join(",");
    assert!(m.message.contains(&peer_flag), "{}", m.message);
    assert_voters(&settled_view(&c, &[1, 2, 3, 4, 5]).await, &[1, 2, 3, 4, 5]);
    // Adding a voter again changes nothing.
    let again = c
        .add_master(5, &all[&5], DEADLINE)
        .await
        .expect("add master 5 again");
    assert!(
        again.message.contains("already a voter"),
        "{}",
        again.message
    );
    // The new masters hold the membership too.
    for id in 4..=5 {
        let one = admin(&all, &[id]);
        wait(&format!("master {id} to see five voters"), || async {
            let own = one.members(false).await.ok()?;
            (voters(&own).len() == 5 && own.leader_id.is_some()).then_some(())
        })
        .await;
    }

    // With five voters a transfer also waits for the other followers' leader leases
    // to run out. Master 4 leads, then removes itself (it steps down, the others elect).
    let t = c
        .transfer_leader(Some(4), Duration::from_secs(10))
        .await
        .expect("transfer to master 4");
    assert_eq!(t.leader_id, 4, "{t:?}");
    assert_eq!(leader_view(&c).await.answered_by, 4);

    for id in [4, 5] {
        let m = c
            .remove_master(id, DEADLINE)
            .await
            .unwrap_or_else(|e| panic!("remove master {id}: {e}"));
        assert!(m.member(id).is_none(), "{m:?}");
        if id == 4 {
            assert_eq!(m.answered_by, 4, "{m:?}");
            assert!(
                m.message.contains("the leader that answers"),
                "{}",
                m.message
            );
        }
        assert!(
            m.message.contains(&format!("Stop master {id}")),
            "{}",
            m.message
        );
    }
    let m = settled_view(&c, &[1, 2, 3]).await;
    assert_voters(&m, &[1, 2, 3]);
    for id in 4..=5 {
        running.remove(&id).expect("running").stop().await.ok();
    }
    let gone = c
        .remove_master(4, DEADLINE)
        .await
        .expect_err("not a member");
    assert_eq!(code(&gone), Some(Code::NotFound), "{gone}");
    assert_voters(&settled_view(&c, &[1, 2, 3]).await, &[1, 2, 3]);
    for (_, r) in running {
        r.stop().await.expect("a clean stop");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leadership_moves_to_a_named_follower_then_to_the_most_caught_up() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (peers, running) = group(dir.path(), 3);
    let c = admin(&peers, &[1, 2, 3]);
    let before = leader_view(&c).await;
    let old = before.answered_by;
    let target = (1..=3).find(|id| *id != old).expect("a follower");

    let t = c
        .transfer_leader(Some(target), Duration::from_secs(10))
        .await
        .expect("transfer to a named follower");
    assert_eq!((t.leader_id, t.previous_leader_id), (target, old), "{t:?}");
    assert_eq!(t.leader_address, peers[&target]);
    assert!(t.term > before.term, "{t:?} after term {}", before.term);
    let now = leader_view(&c).await;
    assert_eq!(now.answered_by, target, "{now:?}");
    // The hearth side follows: the new leader acts, the old one stands by.
    let mc = MasterClient::new(peers.values().cloned().collect());
    wait("the new leader to act", || async {
        let s = mc.state().await.ok()?;
        (s.leader.as_deref() == Some(peers[&target].as_str()) && s.status != MasterRole::Standby)
            .then_some(())
    })
    .await;
    let mut old_client = MasterClient::new(vec![peers[&old].clone()]);
    old_client.deadline = Duration::from_secs(2);
    wait("the old leader to stand by", || async {
        let s = old_client.state_here().await.ok()?;
        (s.status == MasterRole::Standby).then_some(())
    })
    .await;

    // Transferring to the leader itself changes nothing.
    let same = c
        .transfer_leader(Some(target), Duration::from_secs(10))
        .await
        .expect("transfer to the leader");
    assert_eq!(same.leader_id, target);
    assert!(same.message.contains("already leads"), "{}", same.message);

    // No target: the most caught-up follower takes over.
    let t = c
        .transfer_leader(None, Duration::from_secs(10))
        .await
        .expect("transfer to the most caught-up follower");
    assert_ne!(t.leader_id, target, "{t:?}");
    assert_eq!(t.previous_leader_id, target);
    assert_eq!(leader_view(&c).await.answered_by, t.leader_id);

    let e = c
        .transfer_leader(Some(9), Duration::from_secs(10))
        .await
        .expect_err("not a member");
    assert_eq!(code(&e), Some(Code::NotFound), "{e}");
    assert!(e.to_string().contains("master 9 is not a member"), "{e}");
    for (_, r) in running {
        r.stop().await.expect("a clean stop");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn snapshots_on_request_advance_the_snapshot_index() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (peers, running) = group(dir.path(), 3);
    let c = admin(&peers, &[1, 2, 3]);
    let first = leader_view(&c).await;
    // Wait until the leader is ALIVE (its recovery's commands are in the log), so
    // nothing is written behind the test's back from here on.
    let mc = MasterClient::new(peers.values().cloned().collect());
    wait("an ALIVE leader", || async {
        let s = mc.state().await.ok()?;
        (s.status == MasterRole::Alive).then_some(())
    })
    .await;
    let m = leader_view(&c).await;
    assert_eq!(m.answered_by, first.answered_by, "no election in between");
    let applied = m.last_applied_index.expect("entries applied");

    let s = c
        .snapshot(None, Duration::from_secs(10))
        .await
        .expect("snapshot on the leader");
    assert!(s.built, "{s:?}");
    assert_eq!(s.answered_by, m.answered_by);
    assert!(s.index >= applied, "{s:?} before applied {applied}");
    assert!(s.previous_index < Some(s.index), "{s:?}");
    assert_eq!(leader_view(&c).await.snapshot_index, Some(s.index));

    // Nothing new applied: none is built.
    let same = c
        .snapshot(None, Duration::from_secs(10))
        .await
        .expect("snapshot again");
    assert!(!same.built, "{same:?}");
    assert_eq!(same.index, s.index);

    // A write, then the snapshot covers it.
    mc.register_app(&app("snap"), None, Some("127.0.0.1:1"))
        .await
        .expect("register an app");
    let next = c
        .snapshot(None, Duration::from_secs(10))
        .await
        .expect("snapshot after a write");
    assert!(next.built && next.index > s.index, "{next:?} after {s:?}");
    assert_eq!(next.previous_index, Some(s.index));

    // On a named follower.
    let follower = (1..=3).find(|id| *id != m.answered_by).expect("a follower");
    let f = c
        .snapshot(Some(follower), Duration::from_secs(10))
        .await
        .expect("snapshot on a follower");
    assert_eq!(f.answered_by, follower);
    assert!(f.built && f.index > 0, "{f:?}");
    let own = admin(&peers, &[follower])
        .members(false)
        .await
        .expect("the follower answers");
    assert_eq!(own.snapshot_index, Some(f.index));
    for (_, r) in running {
        r.stop().await.expect("a clean stop");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_say_what_to_do() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (peers, running) = group(dir.path(), 1);
    let c = admin(&peers, &[1]);
    leader_view(&c).await;
    let e = c.remove_master(1, DEADLINE).await.expect_err("last voter");
    assert_eq!(code(&e), Some(Code::FailedPrecondition), "{e}");
    assert!(e.to_string().contains("last voter"), "{e}");
    let e = c
        .transfer_leader(None, Duration::from_secs(5))
        .await
        .expect_err("no one to hand over to");
    assert_eq!(code(&e), Some(Code::FailedPrecondition), "{e}");
    assert!(e.to_string().contains("only voter"), "{e}");
    let e = c
        .add_master(2, "nohost", DEADLINE)
        .await
        .expect_err("bad address");
    assert_eq!(code(&e), Some(Code::InvalidArgument), "{e}");
    let e = c
        .add_master(2, &peers[&1], DEADLINE)
        .await
        .expect_err("address in use");
    assert_eq!(code(&e), Some(Code::FailedPrecondition), "{e}");
    assert!(
        e.to_string().contains("already the address of master 1"),
        "{e}"
    );
    // A learner that never comes: the add times out, says what to check, and leaves
    // the voters as they were.
    let absent = addr_of(&listen(0));
    let e = c
        .add_master(2, &absent, Duration::from_secs(2))
        .await
        .expect_err("nothing runs there");
    assert_eq!(code(&e), Some(Code::DeadlineExceeded), "{e}");
    assert!(
        e.to_string()
            .contains("added as a learner but did not catch up"),
        "{e}"
    );
    let m = leader_view(&c).await;
    assert_eq!(voters(&m), BTreeSet::from([1]));
    assert_eq!(m.member(2).map(|x| x.role), Some(MemberRole::Learner));
    let m = c
        .remove_master(2, DEADLINE)
        .await
        .expect("remove the learner");
    assert!(m.member(2).is_none(), "{m:?}");
    for (_, r) in running {
        r.stop().await.expect("a clean stop");
    }
}

/// Waits until no stopped master of this process holds `dir`'s RocksDB lock any more
/// (a stopped in-process master releases it when its last task has been dropped).
async fn released(dir: &Path) {
    wait(&format!("{} to be released", dir.display()), || async {
        hearth_raft_store::open(dir).await.ok().map(drop)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_whose_peers_disagree_with_its_stored_membership_refuses_to_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data: PathBuf = dir.path().join("m1");
    // Bound again after each stop: a port the kernel never hands to port-0 binders.
    let port = free_peer_ports(1).expect("a free port")[0];
    let l = listen(port);
    let stored = BTreeMap::from([(1, addr_of(&l))]);
    let r = start(1, &stored, dir.path(), l);
    leader_view(&admin(&stored, &[1])).await;
    r.stop().await.expect("a clean stop");

    // The same directory, with a master added to --peers by hand.
    let mut other = stored.clone();
    other.insert(2, addr_of(&listen(0)));
    released(&data).await;
    let err = start(1, &other, dir.path(), listen(port))
        .stop()
        .await
        .expect_err("refuses to start");
    let msg = format!("{err:#}");
    let list = |p: &BTreeMap<u64, String>| {
        p.iter()
            .map(|(i, a)| format!("{i}={a}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    assert!(
        msg.contains(&format!("--peers ({})", list(&other))),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("{} ({})", data.display(), list(&stored))),
        "{msg}"
    );
    assert!(msg.contains("hearth cluster add-master"), "{msg}");

    // With the stored list it starts again and leads.
    released(&data).await;
    let r = start(1, &stored, dir.path(), listen(port));
    leader_view(&admin(&stored, &[1])).await;
    r.stop().await.expect("a clean stop");
}
