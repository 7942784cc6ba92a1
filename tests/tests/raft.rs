//! Raft HA with real processes: three `hearth master --recovery-mode raft` processes,
//! two workers, real executors. The leader is SIGKILLed (three times in a row) and
//! SIGSTOPped; each time a survivor leads, the running apps keep their processes, new
//! work is placed, and the old leader comes back as a follower that relaunches nothing.

use hearth_tests::cluster::{gauge, history, running_executors, RaftCluster};
use hearth_tests::harness::*;
use hearth_tests::procs::app_pids;
use hearth_tests::proxy::Proxy;
use std::path::{Path, PathBuf};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(60);

const FLAGS: &[&str] = hearth_tests::cluster::CI_TIMINGS;

/// A cluster-mode app whose driver and `executors` one-core executors sleep.
fn cluster_app(url: &str, name: &str, executors: u32) -> String {
    let app = SleepingApp::cluster().named(name).executors(executors);
    submit_app(url, &app)[0].clone()
}

fn workers(dir: &Path, c: &RaftCluster) -> (Proc, Proc) {
    let a = start_worker(dir, "wa", &c.url(), 8, &[]);
    let b = start_worker(dir, "wb", &c.url(), 8, &[]);
    wait_for("two ALIVE workers on the leader", LONG, || {
        c.leader_with_workers(2)
    });
    (a, b)
}

#[test]
fn three_leaders_sigkilled_in_a_row_lose_nothing_and_double_nothing() {
    let dir = TestDir::new("raft-kill");
    let mut c = RaftCluster::start(dir.path(), 3, FLAGS);
    let _w = workers(dir.path(), &c);
    let url = c.url();
    let first = cluster_app(&url, "long", 2);
    let before = wait_for(
        "the first app's driver and 2 executors running",
        LONG,
        || c.app_running(&first, 2, 3),
    );
    // A client-mode app too: its submitter must find each new leader and check in.
    let (_submitter, client_app) =
        client_app_in_background(dir.path(), &url, &SleepingApp::client());
    // Two processes: the executor on a worker and the driver the submitter starts
    // itself once the app is registered (which may be a moment after the executor).
    let client_before = wait_for(
        "the client-mode app's executor and local driver running",
        LONG,
        || c.app_running(&client_app, 1, 2),
    );
    let mut apps = vec![first.clone()];
    for round in 1..=3 {
        let old = wait_for("an ALIVE leader", LONG, || c.alive_leader(None));
        c.kill9(old);
        let new = wait_for(&format!("round {round}: a new ALIVE leader"), LONG, || {
            c.alive_leader(Some(old))
        });
        assert_ne!(new, old);
        let app = cluster_app(&url, &format!("round-{round}"), 1);
        wait_for(
            &format!("round {round}: the new app's executor RUNNING"),
            LONG,
            || (running_executors(&c.json(new)?, "id", &app) == 1).then_some(()),
        );
        apps.push(app.clone());
        assert_eq!(
            app_pids(&url, &first),
            before,
            "round {round}: the running app kept exactly its processes"
        );
        c.start_master(old);
        wait_for(
            &format!("round {round}: the restarted master follows"),
            LONG,
            || c.follows(old, new).then_some(()),
        );
    }
    // Nothing doubled: every app has exactly its driver and executors in /proc, and
    // every master lists the same history.
    let leader = wait_for("an ALIVE leader", LONG, || c.alive_leader(None));
    assert_eq!(app_pids(&url, &first), before);
    assert_eq!(
        app_pids(&url, &client_app),
        client_before,
        "the client-mode app kept its executor through three failovers"
    );
    let j = c.json(leader).expect("leader /json");
    assert_eq!(running_executors(&j, "id", &client_app), 1, "{j}");
    for app in &apps[1..] {
        assert_eq!(
            app_pids(&url, app).len(),
            2,
            "{app}: one driver, one executor"
        );
    }
    let want = history(&c.json(leader).expect("leader /json"));
    assert_eq!(want.len(), 5, "{want:?}");
    for i in 0..3 {
        wait_for("every master holds the same history", LONG, || {
            (history(&c.json(i)?) == want).then_some(())
        });
    }
    for m in c.masters.iter().flatten() {
        m.assert_no_errors();
    }
    // At most one master process acted in each term. Each killed leader here is restarted on its
    // directory after the others elected a new one: it comes back as leader of its old,
    // stale term (openraft restores its committed vote) and must step down, not act.
    // (Restarted before the others' lease ends, it may lead its old term again, which
    // is safe; this test does not restart that fast.)
    let terms = terms_taken_over(dir.path());
    let mut distinct = terms.clone();
    distinct.dedup();
    assert_eq!(terms, distinct, "a term taken over twice");
}

/// The terms each master process took over ("took over as master" lines; one log file
/// per process under `dir`), each process's terms once, all sorted together.
fn terms_taken_over(dir: &Path) -> Vec<u64> {
    let mut terms: Vec<u64> = std::fs::read_dir(dir)
        .expect("test dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("master-"))
        .flat_map(|e| {
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            text.lines()
                .filter_map(|l| l.split("took over as master").nth(1))
                .filter_map(|l| l.split("term=").nth(1)?.split(' ').next()?.parse().ok())
                .collect::<std::collections::BTreeSet<u64>>()
        })
        .collect();
    terms.sort();
    terms
}

#[test]
fn a_paused_leader_steps_down_on_resume_and_relaunches_nothing() {
    let dir = TestDir::new("raft-stop");
    let c = RaftCluster::start(dir.path(), 3, FLAGS);
    let _w = workers(dir.path(), &c);
    let url = c.url();
    let keep = cluster_app(&url, "keep", 1);
    let doomed = cluster_app(&url, "doomed", 2);
    wait_for("both apps running", LONG, || {
        let l = c.alive_leader(None)?;
        let j = c.json(l)?;
        (running_executors(&j, "id", &keep) == 1 && running_executors(&j, "id", &doomed) == 2)
            .then_some(())
    });
    let kept = app_pids(&url, &keep);
    let old = c.alive_leader(None).expect("leader");
    c.signal(old, libc::SIGSTOP);
    let new = wait_for(
        "a new ALIVE leader while the old one is paused",
        LONG,
        || c.alive_leader(Some(old)),
    );
    let out = hearth(&url, &["app", "kill", &doomed]);
    assert!(out.status.success(), "app kill: {}", stderr(&out));
    wait_for("the killed app's processes gone", LONG, || {
        app_pids(&url, &doomed).is_empty().then_some(())
    });
    c.signal(old, libc::SIGCONT);
    wait_for("the resumed master steps down and follows", LONG, || {
        c.follows(old, new).then_some(())
    });
    // It remembered `doomed` running; it must not have started anything for it, and
    // `keep` still has exactly its processes.
    assert!(app_pids(&url, &doomed).is_empty(), "nothing relaunched");
    assert_eq!(app_pids(&url, &keep), kept);
    let app = cluster_app(&url, "after", 1);
    wait_for("work placed after the old leader came back", LONG, || {
        (running_executors(&c.json(new)?, "id", &app) == 1).then_some(())
    });
}

/// Master `i`'s cluster with every connection to and from it through a proxy the test
/// owns: one in front of each master (the address in `--peers`, used by workers and
/// clients) and one per ordered pair of masters (`--peer-via`), so cutting a master's
/// proxies isolates it from its peers and workers in both directions.
struct Proxied {
    c: RaftCluster,
    front: Vec<Proxy>,
    /// `pair[i][j]`: master i's way to master j.
    pair: Vec<Vec<Option<Proxy>>>,
}

impl Proxied {
    fn start(dir: &Path, n: usize) -> Self {
        let mut c = RaftCluster::new(dir, n, FLAGS);
        let direct = |j: usize| format!("127.0.0.1:{}", c.grpc[j]);
        let front: Vec<Proxy> = (0..n)
            .map(|j| Proxy::start(&direct(j)).expect("front proxy"))
            .collect();
        c.advertised = front.iter().map(Proxy::addr).collect();
        let advertised = c.advertised.clone();
        let pair = hearth_tests::cluster::peer_proxies(&mut c, |i| {
            vec!["--advertise".into(), advertised[i].clone()]
        });
        for i in 0..n {
            c.start_master(i);
        }
        Proxied { c, front, pair }
    }

    /// Every proxy into or out of master `i`.
    fn of(&self, i: usize) -> Vec<&Proxy> {
        let mut p = vec![&self.front[i]];
        for (a, row) in self.pair.iter().enumerate() {
            for (b, proxy) in row.iter().enumerate() {
                if a == i || b == i {
                    p.extend(proxy.as_ref());
                }
            }
        }
        p
    }
}

#[test]
fn a_leader_cut_off_accepts_no_write_and_after_healing_there_is_one_history() {
    let dir = TestDir::new("raft-cut");
    let p = Proxied::start(dir.path(), 3);
    let c = &p.c;
    let _w = workers(dir.path(), c);
    let url = c.url();
    let keep = cluster_app(&url, "keep", 1);
    wait_for("the app running", LONG, || {
        let l = c.alive_leader(None)?;
        (running_executors(&c.json(l)?, "id", &keep) == 1).then_some(())
    });
    let kept = app_pids(&url, &keep);
    let old = c.alive_leader(None).expect("leader");
    for proxy in p.of(old) {
        proxy.cut();
    }
    let new = wait_for("the majority elects a new ALIVE leader", LONG, || {
        c.alive_leader(Some(old))
    });
    // The cut-off master stops acting within its lease (the election timeout) and
    // refuses writes sent straight to it, past the proxies.
    wait_for("the cut-off master stands by", LONG, || {
        (c.json(old)?["status"] == "STANDBY").then_some(())
    });
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let mut direct = hearth_client::MasterClient::new(vec![format!("127.0.0.1:{}", c.grpc[old])]);
    direct.deadline = Duration::from_secs(2);
    let (tiny, _) = SleepingApp::client().named("minority").exiting().describe();
    let refused = rt.block_on(direct.register_app(&tiny, None, Some("127.0.0.1:1")));
    assert!(
        refused.is_err(),
        "the minority accepted a write: {refused:?}"
    );
    // The majority takes writes meanwhile.
    let during = cluster_app(&url, "during", 1);
    wait_for("the app submitted during the cut runs", LONG, || {
        (running_executors(&c.json(new)?, "id", &during) == 1).then_some(())
    });
    for proxy in p.of(old) {
        proxy.heal();
    }
    wait_for("after healing, one history on every master", LONG, || {
        let want = history(&c.json(new)?);
        (0..3)
            .all(|i| c.json(i).is_some_and(|j| history(&j) == want))
            .then_some(())
    });
    let j = c.json(old).expect("old leader /json");
    assert_eq!(j["status"], "STANDBY");
    assert_eq!(j["leader"], c.advertised[new].as_str());
    assert_eq!(
        app_pids(&url, &keep),
        kept,
        "nothing of the kept app relaunched"
    );
    assert_eq!(app_pids(&url, &during).len(), 2, "one driver, one executor");
}

/// A FILESYSTEM master with two apps, stopped and exported: the export file, the apps'
/// ids and the history the master showed.
fn two_app_export(dir: &Path) -> (PathBuf, String, String, Vec<(String, String)>) {
    let fs_dir = dir.join("fs");
    let fs_dir_s = fs_dir.to_string_lossy().into_owned();
    let mut single = MasterProc::start(
        dir,
        &["--recovery-mode", "filesystem", "--recovery-dir", &fs_dir_s],
    );
    let a = cluster_app(&single.url, "seeded-a", 1);
    let b = cluster_app(&single.url, "seeded-b", 1);
    let before = history(&single.json());
    assert_eq!(before.len(), 2, "{before:?}");
    single.proc.stop(Duration::from_secs(20));
    let export = dir.join("export.json");
    let out = hearth(
        "",
        &[
            "recovery",
            "export",
            "--dir",
            &fs_dir_s,
            "--out",
            export.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "export: {}", stderr(&out));
    (export, a, b, before)
}

/// `hearth recovery import` of `export` into master `i`'s directory.
fn seed(c: &RaftCluster, i: usize, export: &Path) {
    let out = hearth(
        "",
        &[
            "recovery",
            "import",
            "--file",
            export.to_str().unwrap(),
            "--dir",
            c.data_dir(i).to_str().unwrap(),
            "--raft-peers",
            &c.peers(),
        ],
    );
    assert!(out.status.success(), "import: {}", stderr(&out));
}

/// `hearth master` for master `i` of `c` with `peers` as `--peers`, run to its end (for
/// a master expected to refuse to start).
fn master_run(c: &RaftCluster, i: usize, peers: &str) -> std::process::Output {
    let args = vec![
        "master".to_owned(),
        "--recovery-mode".into(),
        "raft".into(),
        "--id".into(),
        (i + 1).to_string(),
        "--peers".into(),
        peers.to_owned(),
        "--recovery-dir".into(),
        c.data_dir(i).to_string_lossy().into_owned(),
        "--port".into(),
        c.grpc[i].to_string(),
        "--http-port".into(),
        "0".into(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    hearth("", &args)
}

#[test]
fn a_filesystem_export_seeds_a_new_raft_group() {
    let dir = TestDir::new("raft-seed");
    let (export, a, b, before) = two_app_export(dir.path());
    let mut c = RaftCluster::new(dir.path(), 3, FLAGS);
    for i in 0..3 {
        seed(&c, i, &export);
    }
    for i in 0..3 {
        c.start_master(i);
    }
    let leader = wait_for("an ALIVE leader over the seeded state", LONG, || {
        c.alive_leader(None)
    });
    let j = c.json(leader).expect("/json");
    assert_eq!(history(&j), before);
    // New ids follow the imported ones.
    let next = cluster_app(&c.url(), "after-seed", 1);
    assert!(next > a && next > b, "{next} after {a} and {b}");
    // A master whose --peers disagrees with what it stored refuses to start, naming both.
    let leader_pid = c.masters[leader].as_ref().map(|m| m.proc.pid());
    let other = (leader + 1) % 3;
    c.kill9(other);
    let out = master_run(&c, other, &format!("{}={}", other + 1, c.advertised[other]));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("disagrees with the membership stored") && err.contains(&c.peers()),
        "{err}"
    );
    assert_eq!(c.masters[leader].as_ref().map(|m| m.proc.pid()), leader_pid);
}

/// HA hole 3: seeding one master only. Its empty peers used to `initialize` a group of
/// their own at the seed's log position, so the leader never sent the seed and the
/// replicas differed. Started first, the seeded master now leads with its seed and its
/// empty peers join it: every replica shows the seed. Started after its peers already
/// run without the seed, it refuses to start, saying what to do.
#[test]
fn seeding_one_master_gives_every_replica_the_seed_or_is_refused() {
    let dir = TestDir::new("raft-seed-one");
    let (export, _, _, before) = two_app_export(dir.path());

    let first = dir.path().join("seeded-first");
    std::fs::create_dir_all(&first).expect("a directory");
    let mut c = RaftCluster::new(&first, 3, FLAGS);
    seed(&c, 0, &export);
    c.start_master(0);
    wait_for("the seeded master answering", LONG, || c.json(0));
    c.start_master(1);
    c.start_master(2);
    let leader = wait_for("an ALIVE leader", LONG, || c.alive_leader(None));
    assert_eq!(history(&c.json(leader).expect("/json")), before);
    wait_for("both others following with the seed", LONG, || {
        (0..3)
            .filter(|i| *i != leader)
            .all(|i| c.follows(i, leader))
            .then_some(())
    });

    let late = dir.path().join("seeded-late");
    std::fs::create_dir_all(&late).expect("a directory");
    let mut c = RaftCluster::new(&late, 3, FLAGS);
    seed(&c, 0, &export);
    c.start_master(1);
    c.start_master(2);
    wait_for("the two empty masters electing a leader", LONG, || {
        c.alive_leader(None)
    });
    let out = master_run(&c, 0, &c.peers());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("seeded from an export")
            && err.contains("seed every master from the same export"),
        "{err}"
    );
}

/// HA hole 4: a voter whose directory was wiped used to rejoin under its old id with its
/// votes and acknowledged entries forgotten (only a warning): with another master
/// lagging, an acknowledged write could be lost, and it could vote twice in a term. It
/// now refuses to start, naming the procedure (remove it, add it back under a new id);
/// the group goes on untouched.
#[test]
fn a_voter_whose_directory_was_wiped_refuses_to_rejoin_under_its_old_id() {
    let dir = TestDir::new("raft-wiped");
    let mut c = RaftCluster::start(dir.path(), 3, FLAGS);
    let leader = wait_for("an ALIVE leader", LONG, || c.alive_leader(None));
    let app = cluster_app(&c.url(), "before-the-wipe", 1);
    let wiped = (0..3).find(|i| *i != leader).expect("a follower");
    wait_for("the follower holding the app", LONG, || {
        c.follows(wiped, leader).then_some(())
    });
    c.kill9(wiped);
    std::fs::remove_dir_all(c.data_dir(wiped)).expect("wipe the directory");
    let out = master_run(&c, wiped, &c.peers());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("was wiped or lost")
            && err.contains(&format!("hearth cluster remove-master {}", wiped + 1)),
        "{err}"
    );
    assert_eq!(c.alive_leader(Some(wiped)), Some(leader));
    let j = c.json(leader).expect("/json");
    assert!(history(&j).iter().any(|(id, _)| *id == app), "{app} kept");
}

/// HA hole 10: a master frozen (SIGSTOP) first in the client's list used to cost every
/// fresh client its 5 s attempt timeout and an uncertain answer. A fresh CLI asks every
/// master who leads at once and sends its write to the leader: certain, and quick.
#[test]
fn a_frozen_master_first_in_the_list_costs_a_fresh_client_nothing() {
    let dir = TestDir::new("raft-frozen-first");
    let c = RaftCluster::start(dir.path(), 3, FLAGS);
    let leader = wait_for("an ALIVE leader", LONG, || c.alive_leader(None));
    wait_for("both followers following it", LONG, || {
        (0..3)
            .filter(|i| *i != leader)
            .all(|i| c.follows(i, leader))
            .then_some(())
    });
    let frozen = (0..3).find(|i| *i != leader).expect("a follower");
    c.signal(frozen, libc::SIGSTOP);
    let mut order = vec![c.advertised[frozen].clone()];
    order.extend(
        (0..3)
            .filter(|i| *i != frozen)
            .map(|i| c.advertised[i].clone()),
    );
    let url = format!("hearth://{}", order.join(","));
    for round in 0..3 {
        let name = format!("fresh-{round}");
        let app = SleepingApp::cluster().named(&name).sleeping(1);
        let mut args = vec!["submit".to_owned()];
        args.extend(app.submit_args());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let started = std::time::Instant::now();
        let out = hearth(&url, &args);
        let took = started.elapsed();
        assert!(out.status.success(), "submission {round}: {}", stderr(&out));
        // The 5 s attempt timeout on the frozen master is what this used to cost.
        assert!(
            took < Duration::from_secs(2),
            "submission {round} took {took:?}"
        );
        eprintln!(
            "fresh submission {round} with master {} frozen first: {took:?}",
            frozen + 1
        );
    }
    c.signal(frozen, libc::SIGCONT);
}

/// An uncertain registration is looked up before it is sent again, and the lookup must
/// read a leader: a standby's replica may not have applied a registration that is
/// already committed, and the app would then be registered twice (the drill saw 5
/// doubled apps that way when a frozen leader's last registration was committed by its
/// successor). While the only master that answers is a standby, `leader_state` waits
/// rather than answer from the replica; with a leader back, it answers from the leader.
#[test]
fn a_lookup_after_an_uncertain_answer_reads_a_leader_never_a_standby() {
    let dir = TestDir::new("raft-leader-read");
    let c = RaftCluster::start(dir.path(), 3, FLAGS);
    let leader = wait_for("an ALIVE leader", LONG, || c.alive_leader(None));
    let standby = (0..3).find(|i| *i != leader).expect("a follower");
    wait_for("the follower following", LONG, || {
        c.follows(standby, leader).then_some(())
    });
    let others: Vec<usize> = (0..3).filter(|i| *i != standby).collect();
    for i in &others {
        c.signal(*i, libc::SIGSTOP);
    }
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let mut client = hearth_client::MasterClient::new(vec![c.advertised[standby].clone()]);
    // The frozen leader is still named for a while: each try of it costs one attempt.
    client.attempt_timeout = Duration::from_millis(500);
    client.deadline = Duration::from_millis(1500);
    let here = rt.block_on(client.state()).expect("the standby answers");
    assert_eq!(here.status, hearth_core::MasterRole::Standby);
    let err = rt
        .block_on(client.leader_state())
        .expect_err("no leader can answer while a majority is frozen");
    assert!(
        matches!(err, hearth_client::ClientError::NoLeader { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("only standbys answered"), "{err}");
    for i in &others {
        c.signal(*i, libc::SIGCONT);
    }
    client.deadline = LONG;
    let read = rt
        .block_on(client.leader_state())
        .expect("a leader answers");
    assert_ne!(read.status, hearth_core::MasterRole::Standby);
}

/// A write in flight to a leader that freezes is uncertain: the frozen master may read
/// it and apply it when it resumes. The client's HTTP/2 keepalive notices the frozen
/// connection within a second and reports UNAVAILABLE, which it used to read as "never
/// sent" and send the write again to the next leader: a second app. It must report the
/// outcome as unknown; looking the app up on a leader then finds it at most once, and
/// `submit_or_find` leaves exactly one.
#[test]
fn a_write_on_a_connection_to_a_leader_that_froze_is_uncertain_never_sent_twice() {
    let dir = TestDir::new("raft-frozen-inflight");
    let c = RaftCluster::start(dir.path(), 3, FLAGS);
    let leader = wait_for("an ALIVE leader", LONG, || c.alive_leader(None));
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let client = hearth_client::MasterClient::new(c.advertised.clone());
    client.prefer(c.advertised[leader].clone());
    let seen = rt
        .block_on(client.state_here())
        .expect("the leader answers");
    assert_ne!(seen.status, hearth_core::MasterRole::Standby);
    c.signal(leader, libc::SIGSTOP);
    let (desc, driver) = SleepingApp::cluster().named("inflight").describe();
    let first = rt.block_on(client.register_app(&desc, driver.as_ref(), None));
    // The frozen leader is resumed only once another leads: that is the failover this
    // test is about. Resumed earlier, before anyone took over (under a loaded machine the
    // pre-vote may take longer than the client's keepalive), it would still be the leader
    // and rightly commit the write it then reads, and `submit_or_find` below, which
    // registers before it looks, would make a second app (it failed that way 1 run in 5).
    wait_for("another leader while the old one is frozen", LONG, || {
        c.alive_leader(Some(leader))
    });
    c.signal(leader, libc::SIGCONT);
    match &first {
        Err(hearth_client::ClientError::Unknown { .. }) => {}
        other => panic!("a write on the frozen leader's connection must be uncertain: {other:?}"),
    }
    let named = |client: &hearth_client::MasterClient| {
        let s = rt
            .block_on(client.leader_state())
            .expect("a leader answers");
        s.active_apps
            .iter()
            .chain(&s.completed_apps)
            .filter(|a| a.desc.name == "inflight")
            .count()
    };
    assert!(named(&client) <= 1);
    let (app, _) = rt
        .block_on(hearth_client::failover::submit_or_find(
            &client,
            &desc,
            driver.as_ref(),
            None,
        ))
        .expect("registered or found");
    assert_eq!(named(&client), 1, "{app} registered once");
}

/// HA hole 12: a follower resumed from SIGSTOP used to campaign at once at a higher term
/// (openraft's election timer had run out while it was frozen); the healthy leader
/// stepped down on seeing that term, and writes in flight ended "may or may not have
/// taken effect". With the pre-vote the resumed follower asks first, the others still
/// hear the leader and refuse, and nothing changes: same leader, same term, every write
/// certain.
#[test]
fn a_follower_resumed_from_sigstop_deposes_nobody_and_leaves_no_write_uncertain() {
    let dir = TestDir::new("raft-prevote");
    let c = RaftCluster::start(dir.path(), 3, FLAGS);
    let leader = wait_for("an ALIVE leader", LONG, || c.alive_leader(None));
    let followers: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
    wait_for("both followers following it", LONG, || {
        followers
            .iter()
            .all(|i| c.follows(*i, leader))
            .then_some(())
    });
    let term = |i: usize| c.json(i).and_then(|j| j["term"].as_u64());
    let before = term(leader).expect("the leader's term");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let mut client = hearth_client::MasterClient::new(c.advertised.clone());
    client.attempt_timeout = Duration::from_secs(2);
    client.prefer(c.advertised[leader].clone());
    let (mut certain, mut uncertain) = (0, Vec::new());
    let mut write = |n: &mut usize| {
        *n += 1;
        let (desc, driver) = SleepingApp::cluster()
            .named(&format!("prevote-{n}"))
            .sleeping(1)
            .describe();
        match rt.block_on(client.register_app(&desc, driver.as_ref(), None)) {
            Ok(_) => certain += 1,
            Err(e) => uncertain.push(e.to_string()),
        }
        // Pacing, about 20 writes a second (not a wait for anything).
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut n = 0;
    for (round, f) in followers.iter().chain(&followers).enumerate() {
        c.signal(*f, libc::SIGSTOP);
        // The fault lasts 3 s (the figure): writes go on meanwhile.
        let frozen = std::time::Instant::now();
        while frozen.elapsed() < Duration::from_secs(3) {
            write(&mut n);
        }
        c.signal(*f, libc::SIGCONT);
        // A window for the resumed follower to campaign in, if it would (several
        // election timeouts), with writes going on.
        let resumed = std::time::Instant::now();
        while resumed.elapsed() < Duration::from_secs(2) {
            write(&mut n);
        }
        wait_for("the resumed follower following again", LONG, || {
            c.follows(*f, leader).then_some(())
        });
        assert_eq!(
            term(leader),
            Some(before),
            "round {round}: master {} resumed and the term moved",
            f + 1
        );
    }
    assert!(uncertain.is_empty(), "uncertain writes: {uncertain:?}");
    assert_eq!(c.alive_leader(None), Some(leader));
    eprintln!("{certain} writes, all certain, term {before} throughout");
}

#[test]
fn workers_watching_every_master_are_registered_by_a_new_leader_without_a_call_either_way() {
    let dir = TestDir::new("raft-watch");
    let mut c = RaftCluster::start(dir.path(), 3, FLAGS);
    let (wa, wb) = workers(dir.path(), &c);
    let url = c.url();
    let app = cluster_app(&url, "adopted", 2);
    let before = wait_for("the driver and 2 executors running", LONG, || {
        c.app_running(&app, 2, 3)
    });
    // Each worker keeps a leader watch waiting on every master, offering what it runs
    // now: renewed once the launches settled on the masters that may take over (on the
    // leader only when the watch is renewed), which their replicas match.
    let old = wait_for("an ALIVE leader", LONG, || c.alive_leader(None));
    for i in 0..3 {
        let offers = if i == old {
            ""
        } else {
            ", offering what it holds"
        };
        wait_for(
            &format!("both workers watching master {}{offers}", i + 1),
            LONG,
            || {
                (gauge(c.http[i], "hearth_watching_workers") == Some(2.0)
                    && (i == old || gauge(c.http[i], "hearth_adoptable_workers") == Some(2.0)))
                .then_some(())
            },
        );
    }
    c.kill9(old);
    let new = wait_for("a new leader with both workers ALIVE", LONG, || {
        c.alive_leader(Some(old))
            .filter(|l| c.json(*l).is_some_and(|j| j["aliveworkers"] == 2))
    });
    let log = c.masters[new].as_ref().expect("running").proc.log_text();
    let line = |what: &str| {
        (log.lines().rev().find(|l| l.contains(what)))
            .unwrap_or_else(|| panic!("no {what:?} line in the new leader's log:\n{log}"))
            .to_owned()
    };
    let took_over = line("took over as master");
    assert!(
        took_over.contains("offered=2 adopted=2"),
        "the new leader registered both workers from their offers: {took_over}"
    );
    let announced = line("announcing this leader to the workers that do not watch it");
    assert!(
        announced.contains("now=0 watching=2"),
        "both workers watched the new leader when it took over: {announced}"
    );
    assert_eq!(
        gauge(c.http[new], "hearth_adopted_workers_total"),
        Some(2.0)
    );
    // Neither dialled the other: no MasterChanged reached a worker, and no worker called
    // RegisterWorker on the new leader; the app kept its processes.
    let term = gauge(c.http[new], "hearth_raft_term").expect("term") as u64;
    for w in [&wa, &wb] {
        let text = w.log_text();
        assert!(
            !(text.lines()).any(|l| l.contains("made itself known") && l.contains("MasterChanged")),
            "a worker was announced to although it watched:\n{text}"
        );
        assert!(
            text.contains(
                "a new leader registered this worker from the registration its watch offered"
            ),
            "{text}"
        );
        let registered_anew = (text.lines()).any(|l| {
            l.contains("registered with the leading master") && l.contains(&format!("term={term}"))
        });
        assert!(
            !registered_anew,
            "a worker registered with the new leader itself:\n{text}"
        );
    }
    assert_eq!(
        wait_for("the app RUNNING on the new leader", LONG, || c
            .app_running(&app, 2, 3)),
        before
    );
}
