//! Mutual TLS on every port (issue 11), on real processes: a `hearth local --tls`
//! cluster (3 Raft masters, a worker) works end to end over TLS — Raft between masters,
//! the leader's launches to the worker, the worker's registration and reports, the CLI,
//! `hearth logs` from the worker, the HTTP port over HTTP/1.1, a leader failover — and no
//! port talks to anyone without a certificate the cluster's CA signed, even a caller
//! holding the cluster secret.

use hearth_proto::pb;
use hearth_proto::tls::Tls;
use hearth_tests::harness::*;
use hearth_tests::spark::Local;
use serde_json::Value;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(60);

/// `GetState` on `addr` over `credential`'s connection: the status code (OK or why not).
async fn get_state(addr: &str, credential: &hearth_proto::auth::Credential) -> tonic::Code {
    let ask = async {
        let channel = credential
            .endpoint(addr)
            .map_err(tonic::Status::invalid_argument)?
            .connect_timeout(Duration::from_secs(2))
            .connect()
            .await
            .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        pb::master_service_client::MasterServiceClient::new(hearth_proto::auth::authed(
            channel, credential,
        ))
        .get_state(pb::GetStateRequest::default())
        .await
    };
    match tokio::time::timeout(Duration::from_secs(5), ask).await {
        Ok(Ok(_)) => tonic::Code::Ok,
        Ok(Err(s)) => s.code(),
        Err(_) => tonic::Code::DeadlineExceeded,
    }
}

/// `hearth status --json` of the cluster, if a leader is ALIVE.
fn leader_status(masters: &str) -> Option<Value> {
    let out = hearth_within(masters, &["status", "--json"], Duration::from_secs(20)).ok()?;
    let j: Value = serde_json::from_slice(&out.stdout).ok()?;
    (out.status.success() && j["status"] == "ALIVE").then_some(j)
}

fn running(j: &Value, app: &str) -> usize {
    hearth_tests::cluster::running_executors(j, "id", app)
}

#[test]
fn with_tls_every_port_talks_only_to_holders_of_a_cluster_certificate() {
    let _one = one_at_a_time();
    let dir = TestDir::new("tls");
    // Started and waited for over HTTPS (`/json` on the masters' gRPC ports, HTTP/1.1).
    let local = Local::start(dir.path(), 1, &["--tls"]);
    let files = local.tls.clone().expect("TLS files");
    let (masters, addrs, data) = (
        local.masters.clone(),
        local.addrs.clone(),
        local.dir.clone(),
    );
    let ui = local.ui.clone();
    assert!(ui.starts_with("https://"), "{ui}");
    // Everything works over TLS: elections and commits (Raft), the worker's registration,
    // the leader's launch, the executor's report, the CLI.
    wait_for("an ALIVE leader with its worker, over TLS", LONG, || {
        leader_status(&masters).filter(|j| j["aliveworkers"] == 1)
    });
    let app = submit(
        &masters,
        &[
            "--deploy-mode",
            "cluster",
            "--name",
            "over-tls",
            "--total-executor-cores",
            "1",
            "--executor-command",
            "echo hello-over-tls; sleep 100000",
            "--",
            "sleep",
            "100000",
        ],
    )[0]
    .clone();
    wait_for("the executor RUNNING", LONG, || {
        (running(&leader_status(&masters)?, &app) == 1).then_some(())
    });
    // The CLI reads the executor's output from the worker's port: TLS there too.
    wait_for("the executor's line through `hearth logs`", LONG, || {
        let out = hearth(&masters, &["logs", &app, "--executor", "0"]);
        stdout(&out).contains("hello-over-tls").then_some(())
    });

    // The HTTP port, over HTTP/1.1 (what curl or a script without HTTP/2 speaks), with
    // the cluster's certificate; the gRPC port answers HTTP/1.1 the same way.
    let client = Some((files.cert.as_path(), files.key.as_path()));
    let (code, body) =
        https_get(&format!("{ui}/json"), &files.ca, client).expect("https GET /json");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"aliveworkers\":1"), "{body}");
    let (code, _) = https_get(&format!("https://{}/readyz", addrs[0]), &files.ca, client)
        .expect("https GET /readyz on a gRPC port");
    assert!(code == 200 || code == 503, "{code}");

    // Without a client certificate, with plain HTTP, or with another CA's certificate, no
    // port answers anything: not even GetState, not even with the secret.
    let no_cert = https_get(&format!("{ui}/json"), &files.ca, None);
    assert!(
        no_cert.is_err(),
        "answered without a client certificate: {no_cert:?}"
    );
    let plain_ui = ui.replacen("https://", "http://", 1);
    if let Ok((code, body)) = http_get(&format!("{plain_ui}/json")) {
        assert!(
            code != 200 && !body.contains("aliveworkers"),
            "answered plain HTTP: {code} {body}"
        );
    }
    let stranger_dir = dir.path().join("stranger");
    let stranger = hearth_proto::tls::generate_local(&stranger_dir, &[]).expect("another CA");
    let secret = hearth_proto::auth::Secret::read(&local.secret).expect("secret");
    let ours = Tls::read(&files).expect("our TLS");
    let theirs = Tls::read(&stranger).expect("their TLS");
    let plain = hearth_proto::auth::Credential::new(Some(&secret));
    let with_ours = plain.clone().with_tls(Some(&ours));
    let with_theirs = plain.clone().with_tls(Some(&theirs));
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let j = leader_status(&masters).expect("a leader");
    let worker = format!(
        "{}:{}",
        j["workers"][0]["host"].as_str().expect("host"),
        j["workers"][0]["port"]
    );
    for addr in addrs.iter().chain([&worker]) {
        for (who, credential) in [
            ("plain TCP", &plain),
            ("another CA's certificate", &with_theirs),
        ] {
            let code = runtime.block_on(get_state(addr, credential));
            // Refused at the connection (a transport error, whatever tonic calls it),
            // never by the service: the request must not have reached it.
            use tonic::Code::*;
            assert!(
                !matches!(
                    code,
                    Ok | Unauthenticated | PermissionDenied | InvalidArgument | NotFound
                ),
                "{addr} let {who} reach its service: {code:?}"
            );
        }
    }
    for addr in &addrs {
        assert_eq!(
            runtime.block_on(get_state(addr, &with_ours)),
            tonic::Code::Ok,
            "{addr}"
        );
    }
    let refusals = std::fs::read_to_string(data.join("master-1.log")).unwrap_or_default()
        + &std::fs::read_to_string(data.join("master-2.log")).unwrap_or_default()
        + &std::fs::read_to_string(data.join("master-3.log")).unwrap_or_default();
    assert!(
        refusals.contains("TLS handshake failed"),
        "no master logged a refused handshake"
    );

    // A failover over TLS: the leader frozen (SIGSTOP; `hearth local` would restart a
    // killed one at once), another elected by votes over TLS, the worker re-registers
    // with it, the executor still RUNNING.
    let leader = j["leader"].as_str().expect("leader").to_owned();
    let pid = local.master_pid(&leader).expect("the leader's process");
    unsafe { libc::kill(pid as i32, libc::SIGSTOP) };
    let after = wait_for(
        "another leader ALIVE with the worker, over TLS",
        LONG,
        || {
            leader_status(&masters)
                .filter(|j| j["leader"] != leader.as_str() && j["aliveworkers"] == 1)
        },
    );
    unsafe { libc::kill(pid as i32, libc::SIGCONT) };
    assert_eq!(running(&after, &app), 1, "{after}");
    let out = hearth(&masters, &["app", "kill", &app]);
    assert!(out.status.success(), "{}", stderr(&out));
}
