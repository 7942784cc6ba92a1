//! The apps' HTTP JSON API (`/v1/apps`), driven the way curl or the Spark plugin drives
//! it: on a `hearth local` cluster over the masters' gRPC addresses (HTTP/1.1 on the same
//! port), and on a master with `--secret-file`.

use hearth_tests::harness::{http_request, wait_for, MasterProc, TestDir};
use hearth_tests::spark::Local;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

/// A request with the cluster's secret (`bearer`).
fn call(bearer: &str, method: &str, url: &str, body: &Value) -> (u16, Value) {
    call_with(method, url, &[("Authorization", bearer)], body)
}

fn call_with(method: &str, url: &str, headers: &[(&str, &str)], body: &Value) -> (u16, Value) {
    let text = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let (code, answer) = http_request(method, url, headers, &text).expect("HTTP request");
    let json = serde_json::from_str(&answer)
        .unwrap_or_else(|e| panic!("{method} {url} answered {code} with no JSON ({e}): {answer}"));
    (code, json)
}

fn app_request(name: &str) -> Value {
    json!({
        "name": name,
        "executor_cores": 1,
        "executor_memory_mb": 64,
        "driver_url": format!("spark://CoarseGrainedScheduler@127.0.0.1:1/{name}"),
        "command": {"argv": ["sh", "-c", "sleep 1000"], "env": {"A": "b"}},
    })
}

fn executor_ids(app: &Value) -> BTreeSet<u64> {
    app["executors"]
        .as_array()
        .expect("executors")
        .iter()
        .filter_map(|e| e["id"].as_u64())
        .collect()
}

#[test]
fn the_json_api_redirects_to_the_leader_registers_once_and_kills_only_named_executors() {
    let dir = TestDir::new("api");
    let local = Local::start(dir.path(), 1, &[]);
    let leader = local.leader().expect("leader");
    let bearer = local.bearer();
    let call = |method: &str, url: &str, body: &Value| call(&bearer, method, url, body);
    let standby = local
        .addrs
        .iter()
        .find(|a| **a != leader)
        .expect("a standby");

    // A standby answers with the leader's address.
    let (code, j) = call(
        "POST",
        &format!("http://{standby}/v1/apps"),
        &app_request("api"),
    );
    assert_eq!(
        (code, &j["code"], &j["leader"]),
        (307, &json!("NOT_LEADER"), &json!(leader)),
        "{j}"
    );

    // On the leader: registered; the same request again is the same app.
    let base = format!("http://{leader}/v1/apps");
    let (code, first) = call("POST", &base, &app_request("api"));
    assert_eq!(code, 200, "{first}");
    let app = first["app_id"].as_str().expect("app_id").to_owned();
    assert!(first["heartbeat_interval_ms"]
        .as_u64()
        .is_some_and(|ms| ms > 0));
    let (_, again) = call("POST", &base, &app_request("api"));
    assert_eq!(
        again["app_id"],
        json!(app),
        "a retried registration is the same app"
    );

    let (code, hb) = call("POST", &format!("{base}/{app}/heartbeat"), &Value::Null);
    assert_eq!((code, hb), (200, json!({"exists": true})));

    // Four executors (4 cores, 1 each), each listed with its host.
    let running = || {
        let (code, j) = call("GET", &format!("{base}/{app}"), &Value::Null);
        let all = j["executors"].as_array()?;
        (code == 200
            && all.len() == 4
            && all
                .iter()
                .all(|e| e["state"] == "RUNNING" && e["host"] == "127.0.0.1"))
        .then_some(j)
    };
    let j = wait_for("four executors RUNNING", Duration::from_secs(30), running);
    assert_eq!(
        (&j["state"], &j["active"], &j["name"]),
        (&json!("RUNNING"), &json!(true), &json!("api"))
    );
    let ids = executor_ids(&j);

    // A lower total kills nothing; the named kill takes exactly those (9 never existed).
    let (code, a) = call(
        "POST",
        &format!("{base}/{app}/executors/total"),
        &json!({"total": 2}),
    );
    assert_eq!((code, a), (200, json!({"unchanged": false})));
    let (_, j) = call("GET", &format!("{base}/{app}"), &Value::Null);
    assert_eq!(executor_ids(&j), ids, "lowering the total kills nothing");
    let named: Vec<u64> = ids.iter().take(2).copied().collect();
    let (code, a) = call(
        "POST",
        &format!("{base}/{app}/executors/kill"),
        &json!({"executors": [named[0], named[1], 9]}),
    );
    assert_eq!((code, a), (200, json!({"unchanged": false})));
    let (_, j) = call("GET", &format!("{base}/{app}"), &Value::Null);
    let left: BTreeSet<u64> = ids.iter().skip(2).copied().collect();
    assert_eq!(executor_ids(&j), left);
    assert_eq!(j["executor_limit"], 2);
    wait_for(
        "the killed executors' processes are gone",
        Duration::from_secs(30),
        || {
            let live: BTreeSet<u64> = hearth_tests::procs::of_app(&local.masters, &app)
                .iter()
                .filter(|p| !p.is_guard())
                .filter_map(|p| p.env("HEARTH_EXECUTOR_ID")?.parse().ok())
                .collect();
            (live == left).then_some(())
        },
    );
    let (_, a) = call(
        "POST",
        &format!("{base}/{app}/executors/kill"),
        &json!({"executors": named}),
    );
    assert_eq!(
        a,
        json!({"unchanged": true}),
        "a retried kill changes nothing"
    );

    // Refusals, each with its code.
    let (code, j) = call(
        "POST",
        &format!("{base}/{app}/executors/total"),
        &json!({"total": "x"}),
    );
    assert_eq!((code, &j["code"]), (400, &json!("INVALID")), "{j}");
    let (code, j) = call("GET", &format!("{base}/app-nope"), &Value::Null);
    assert_eq!(
        (code, &j["code"], &j["error"]),
        (404, &json!("NOT_FOUND"), &json!("unknown app app-nope"))
    );

    // Finish: once, then unchanged; the ended app refuses kills and says how it ended.
    let done = json!({"state": "FINISHED", "reason": "done"});
    let (code, a) = call("POST", &format!("{base}/{app}/finish"), &done);
    assert_eq!((code, a), (200, json!({"unchanged": false})));
    let (_, a) = call("POST", &format!("{base}/{app}/finish"), &done);
    assert_eq!(a, json!({"unchanged": true}));
    let (code, j) = call(
        "POST",
        &format!("{base}/{app}/executors/kill"),
        &json!({"executors": [3]}),
    );
    assert_eq!(
        (code, &j["code"]),
        (409, &json!("FAILED_PRECONDITION")),
        "{j}"
    );
    let (_, j) = call("GET", &format!("{base}/{app}"), &Value::Null);
    assert_eq!(
        (
            &j["state"],
            &j["active"],
            &j["end_reason"],
            executor_ids(&j).len()
        ),
        (&json!("FINISHED"), &json!(false), &json!("done"), 0)
    );
    let (_, hb) = call("POST", &format!("{base}/{app}/heartbeat"), &Value::Null);
    assert_eq!(hb, json!({"exists": false}));
}

#[test]
fn with_a_secret_file_the_api_refuses_writes_without_the_secret_and_reads_show_no_env() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TestDir::new("api-secret");
    let secret = dir.path().join("secret");
    let text = "0123456789abcdef0123456789abcdef-the-secret";
    std::fs::write(&secret, format!("  {text}\n")).expect("write secret");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let m = MasterProc::start(dir.path(), &["--secret-file", secret.to_str().unwrap()]);
    let addr = m.url.trim_start_matches("hearth://");
    let right = format!("Bearer {text}");
    for base in [format!("http://{addr}"), m.ui.clone()] {
        let url = format!("{base}/v1/apps");
        let (code, j) = call_with("POST", &url, &[], &app_request("secret"));
        assert_eq!((code, &j["code"]), (401, &json!("UNAUTHENTICATED")), "{j}");
        assert!(
            j["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("no secret")),
            "{j}"
        );
        let wrong = [(
            "Authorization",
            "Bearer 0123456789abcdef0123456789abcdef-the-secreT",
        )];
        let (code, j) = call_with("POST", &url, &wrong, &app_request("secret"));
        assert_eq!(code, 401);
        assert!(
            j["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("wrong secret")),
            "{j}"
        );
        let (code, j) = call(&right, "POST", &url, &app_request("secret"));
        assert_eq!(code, 200, "{j}");
    }
    // Exactly one app (the second was the same registration); reads are open and show
    // env names, never values.
    let j = m.json();
    let apps = j["activeapps"].as_array().expect("apps");
    assert_eq!(apps.len(), 1, "{j}");
    assert!(
        !j.to_string().contains("\"b\""),
        "an env value in /json: {j}"
    );

    // A short secret, and one others may read, are refused at start, saying what to do.
    let refused = |file: &std::path::Path| {
        hearth_tests::harness::master_refuses(&["--secret-file", file.to_str().unwrap()])
    };
    let short = dir.path().join("short");
    std::fs::write(&short, "too-short\n").expect("write");
    std::fs::set_permissions(&short, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let err = refused(&short);
    assert!(
        err.contains("fewer than 32") && err.contains("hearth secret new"),
        "{err}"
    );
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let err = refused(&secret);
    assert!(
        err.contains("may be read by others") && err.contains("chmod 600"),
        "{err}"
    );
}
