//! FILESYSTEM recovery with real processes: a master SIGKILLed and restarted on its
//! directory gets everything back — the same processes, not relaunched — and refuses a
//! corrupt directory with a message naming the file and offset.

use hearth_tests::harness::*;
use hearth_tests::procs;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(30);

fn master_args<'a>(port: &'a str, http: &'a str, rec: &'a str) -> Vec<&'a str> {
    vec![
        "--port",
        port,
        "--http-port",
        http,
        "--worker-timeout",
        "4s",
        "--recovery-mode",
        "filesystem",
        "--recovery-dir",
        rec,
    ]
}

fn start(dir: &Path, args: &[&str]) -> MasterProc {
    MasterProc::start_with(dir, args)
}

/// Non-guard processes of every app, sorted: what must survive a master restart as is.
fn app_pids(master: &str, apps: &[String]) -> Vec<u32> {
    let mut pids: Vec<u32> = apps
        .iter()
        .flat_map(|a| procs::app_pids(master, a))
        .collect();
    pids.sort();
    pids
}

/// ALIVE, with `cluster` cluster-mode apps (driver and executor RUNNING) and `client`
/// client-mode apps (executor RUNNING) active.
fn all_running(j: &Value, cluster: usize, client: usize) -> bool {
    let apps = cluster + client;
    let active = j["activeapps"].as_array().cloned().unwrap_or_default();
    let drivers = j["activedrivers"].as_array().cloned().unwrap_or_default();
    j["status"] == "ALIVE"
        && active.len() == apps
        && active.iter().all(|a| {
            a["state"] == "RUNNING"
                && a["executors"]
                    .as_array()
                    .is_some_and(|e| e.len() == 1 && e[0]["state"] == "RUNNING")
        })
        && drivers.len() == cluster
        && drivers.iter().all(|d| d["state"] == "RUNNING")
}

fn journal_file(rec: &Path) -> PathBuf {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(rec)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("journal-")
        })
        .collect();
    logs.sort();
    logs.pop().expect("a journal segment")
}

fn submit_supervised(master: &MasterProc) -> Vec<String> {
    submit_app(&master.url, &SleepingApp::cluster().supervised())
}

#[test]
fn a_sigkilled_master_restores_everything_and_refuses_corruption() {
    let dir = TestDir::new("fs");
    let rec = dir.path().join("recovery");
    let rec_s = rec.to_str().unwrap().to_owned();
    // The master restarts on the same ports below, so they come from where the kernel
    // never hands ports to port-0 binders meanwhile.
    let ports = hearth_tests::cluster::free_ports(2);
    let (port, http) = (ports[0].to_string(), ports[1].to_string());
    let mut master = start(dir.path(), &master_args(&port, &http, &rec_s));
    let _w = start_worker(dir.path(), "worker", &master.url, 12, &[]);
    let mut apps = vec![];
    for _ in 0..3 {
        apps.push(submit_supervised(&master)[0].clone());
    }
    // A client-mode app too: its driver runs under `hearth submit`, which must find the
    // restarted master by itself.
    let (mut submitter, client_app) =
        client_app_in_background(dir.path(), &master.url, &SleepingApp::client());
    apps.push(client_app);
    // 4 drivers + 4 executors in /proc: the client-mode driver is started by the
    // submitter itself once its app is registered, so it may come a moment later.
    let before = wait_for(
        "4 apps with their drivers and executors RUNNING",
        LONG,
        || {
            let pids = app_pids(&master.url, &apps);
            (all_running(&master.json(), 3, 1) && pids.len() == 8).then_some(pids)
        },
    );

    // 1. SIGKILL and restart: the same processes are re-adopted, nothing doubled.
    master.proc.kill9();
    master = start(dir.path(), &master_args(&port, &http, &rec_s));
    wait_for("ALIVE with everything RUNNING again", LONG, || {
        all_running(&master.json(), 3, 1).then_some(())
    });
    assert_eq!(
        app_pids(&master.url, &apps),
        before,
        "same pids, none relaunched or doubled"
    );
    // Counters come back with the state: the next ids follow the old ones (apps 0..3,
    // drivers 0..2 were taken) and no driver was relaunched under a new id.
    let fresh = submit_supervised(&master);
    assert!(
        fresh[0].ends_with("-0004") && fresh[1].ends_with("-0003"),
        "fresh ids: {fresh:?}"
    );
    apps.push(fresh[0].clone());
    wait_for("the new app RUNNING", LONG, || {
        all_running(&master.json(), 4, 1).then_some(())
    });
    let before = app_pids(&master.url, &apps);

    // 2. A torn tail (a crash mid-write) is cut with a warning and survived.
    master.proc.kill9();
    let journal = journal_file(&rec);
    let len = std::fs::metadata(&journal).unwrap().len();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&journal)
        .unwrap();
    std::io::Write::write_all(&mut f, &[0x4a, 0x01, 0x00, 0x00, 0xff, 0xff]).unwrap();
    drop(f);
    master = start(dir.path(), &master_args(&port, &http, &rec_s));
    wait_for("ALIVE after a torn tail", LONG, || {
        all_running(&master.json(), 4, 1).then_some(())
    });
    assert_eq!(app_pids(&master.url, &apps), before);
    let log = master.proc.log_text();
    let name = journal.file_name().unwrap().to_str().unwrap();
    assert!(
        log.contains(name) && log.contains(&len.to_string()) && log.contains("WARN"),
        "no warning naming {name} at {len}:\n{log}"
    );

    // 3. A flipped byte in the middle: verify exits 1 naming it, the master refuses.
    master.proc.kill9();
    let mut bytes = std::fs::read(&journal).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x5a;
    std::fs::write(&journal, &bytes).unwrap();
    let verify = hearth(&master.url, &["recovery", "verify", "--dir", &rec_s]);
    assert_eq!(verify.status.code(), Some(1), "{}", stdout(&verify));
    let why = stderr(&verify);
    assert!(why.contains(name) && why.contains("offset"), "{why}");
    let refused = hearth(
        &master.url,
        &[
            &["master", "--host", "127.0.0.1"][..],
            &master_args("0", "0", &rec_s),
        ]
        .concat(),
    );
    assert_eq!(refused.status.code(), Some(1));
    let msg = stderr(&refused);
    eprintln!("verify said: {why}\nthe master said: {msg}");
    assert!(
        msg.contains(name) && msg.contains("offset") && msg.contains("hearth recovery verify"),
        "{msg}"
    );
    // The processes the dead master left are untouched by the refusal, and the
    // client-mode submitter is still waiting for its master.
    assert_eq!(app_pids(&master.url, &apps), before);
    assert!(
        submitter.running(),
        "hearth submit gave up while its master was down"
    );

    // 4. The operator's explicit choice: drop the bad record and what follows it.
    let point = msg
        .split("--truncate-at ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .expect("a truncate point");
    let mut args = master_args(&port, &http, &rec_s);
    args.extend(["--truncate-at", point]);
    let master = start(dir.path(), &args);
    wait_for("ALIVE after the operator's truncation", LONG, || {
        (master.json()["status"] == "ALIVE").then_some(())
    });
    assert!(master
        .proc
        .log_text()
        .contains(point.split(':').next().unwrap()));
}
