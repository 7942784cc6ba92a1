//! The web UI's handlers on real masters, without a browser: users' text comes back
//! escaped; a standby's page links to the leader's; a form's POST needs a login session
//! and that session's CSRF token; the cookie counts on the UI's routes only (not the
//! API's); a submit token submits, kills and reads logs of its own apps only, as
//! through the API.

use hearth_proto::auth::Secret;
use hearth_tests::cluster::{RaftCluster, CI_TIMINGS};
use hearth_tests::harness::{http_get, http_request, wait_for, MasterProc, TestDir};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(60);

/// An HTTP/1.0 answer: status, headers (lower-case names), body.
struct Answer {
    code: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        (self.headers.iter())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A request as a browser's form would send it: `form` url-encoded (when given), the
/// session `cookie` (when given).
fn send(method: &str, url: &str, cookie: Option<&str>, form: &[(&str, &str)]) -> Answer {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let body: String = (form.iter())
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let mut head = format!("{method} {path} HTTP/1.0\r\nHost: {host}\r\n");
    if let Some(c) = cookie {
        head.push_str(&format!("Cookie: hearth_session={c}\r\n"));
    }
    if method == "POST" {
        head.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    let mut s = TcpStream::connect(host).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(s, "{head}\r\n{body}").expect("send");
    let mut buf = String::new();
    s.read_to_string(&mut buf).expect("read");
    let (head, body) = buf.split_once("\r\n\r\n").unwrap_or((&buf, ""));
    let mut lines = head.lines();
    let code = (lines.next().and_then(|l| l.split_whitespace().nth(1)))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Answer {
        code,
        headers,
        body: body.to_owned(),
    }
}

/// `application/x-www-form-urlencoded` of `v`.
fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Logs in at `ui` with `secret`: the session cookie's value.
fn login(ui: &str, secret: &str) -> String {
    let a = send(
        "POST",
        &format!("{ui}/ui/login"),
        None,
        &[("secret", secret)],
    );
    assert_eq!(a.code, 303, "login answered {}: {}", a.code, a.body);
    let cookie = a.header("set-cookie").expect("a session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let value = cookie
        .strip_prefix("hearth_session=")
        .and_then(|c| c.split(';').next())
        .expect("hearth_session=...");
    value.to_owned()
}

/// The CSRF token in the forms of the page at `url`, seen with `cookie`.
fn csrf(url: &str, cookie: &str) -> String {
    let a = send("GET", url, Some(cookie), &[]);
    assert_eq!(a.code, 200, "{}", a.body);
    let at = a.body.find("name=\"csrf\" value=\"").expect("a form") + 19;
    a.body[at..at + 64].to_owned()
}

fn state(master: &MasterProc, app: &str) -> String {
    master.app(app).expect("the app in /json")["state"]
        .as_str()
        .expect("state")
        .to_owned()
}

#[test]
fn forms_need_a_session_and_its_csrf_token_and_a_token_acts_on_its_own_apps() {
    let dir = TestDir::new("ui-forms");
    let secret_file = dir.path().join("secret");
    Secret::create(&secret_file).expect("secret");
    let secret_text = std::fs::read_to_string(&secret_file).expect("secret");
    let secret_text = secret_text.trim();
    let alice = Secret::random_text().expect("token");
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, format!("alice {alice}\n")).expect("tokens");
    std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let master = MasterProc::start(
        dir.path(),
        &[
            "--secret-file",
            secret_file.to_str().unwrap(),
            "--submit-token-file",
            tokens.to_str().unwrap(),
        ],
    );
    let secret_arg = ["--secret-file", secret_file.to_str().unwrap()];
    let _worker = hearth_tests::harness::start_worker(dir.path(), "w", &master.url, 2, &secret_arg);
    wait_for("the worker ALIVE", LONG, || {
        (master.json()["aliveworkers"] == 1).then_some(())
    });
    let ui = master.ui.clone();

    // An app named like a script, submitted with the secret through the API.
    let evil = "<script>alert(1)</script>";
    let body = serde_json::json!({
        "name": evil, "executor_memory_mb": 64, "driver_url": "127.0.0.1:1",
        "command": {"argv": ["sh", "-c", "echo admins-line; exec sleep 600"]},
    })
    .to_string();
    let bearer = format!("Bearer {secret_text}");
    let (code, answer) = http_request(
        "POST",
        &format!("{ui}/v1/apps"),
        &[("authorization", &bearer)],
        &body,
    )
    .expect("POST /v1/apps");
    assert_eq!(code, 200, "{answer}");
    let admins: serde_json::Value = serde_json::from_str(&answer).expect("json");
    let admins = admins["app_id"].as_str().expect("app_id").to_owned();

    // Escaped, on the overview and the app's page, to anyone.
    for page in ["/".to_owned(), format!("/ui/apps/{admins}")] {
        let (code, html) = http_get(&format!("{ui}{page}")).expect("GET");
        assert_eq!(code, 200, "{page}: {html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;") && !html.contains(evil),
            "{page}: {html}"
        );
    }

    // A wrong secret logs no one in; no session, no action; the cookie is not the API's.
    let wrong = send("POST", &format!("{ui}/ui/login"), None, &[("secret", "x")]);
    assert_eq!(wrong.code, 401, "{}", wrong.body);
    assert!(wrong.header("set-cookie").is_none());
    let kill_admins = format!("{ui}/ui/apps/{admins}/kill");
    assert_eq!(send("POST", &kill_admins, None, &[("csrf", "x")]).code, 401);
    let admin = login(&ui, secret_text);
    let api_kill = send(
        "POST",
        &format!("{ui}/v1/apps/{admins}/kill"),
        Some(&admin),
        &[],
    );
    assert_eq!(api_kill.code, 401, "{}", api_kill.body);

    // Without the CSRF token, or with another session's: refused, nothing done.
    let alices = login(&ui, &alice);
    let alices_csrf = csrf(&format!("{ui}/"), &alices);
    let admin_csrf = csrf(&format!("{ui}/"), &admin);
    assert_ne!(alices_csrf, admin_csrf);
    for form in [
        vec![],
        vec![("csrf", "")],
        vec![("csrf", alices_csrf.as_str())],
    ] {
        let a = send("POST", &kill_admins, Some(&admin), &form);
        assert_eq!(a.code, 403, "{form:?}: {}", a.body);
        assert!(a.body.contains("CSRF"), "{}", a.body);
    }
    // A token's session, with its own CSRF token: not another's app (as the API).
    let a = send(
        "POST",
        &kill_admins,
        Some(&alices),
        &[("csrf", &alices_csrf)],
    );
    assert_eq!(a.code, 403, "{}", a.body);
    assert!(
        a.body.contains("may act only on the apps it submitted"),
        "{}",
        a.body
    );
    let logs = send(
        "GET",
        &format!("{ui}/ui/logs/{admins}/stdout?executor=0"),
        Some(&alices),
        &[],
    );
    assert_eq!(logs.code, 403, "{}", logs.body);
    assert_ne!(state(&master, &admins), "KILLED", "still there");
    // The secret's session reads it, through the master from the worker.
    let read = wait_for(
        "the executor's line through the UI's log route",
        LONG,
        || {
            let url = format!("{ui}/ui/logs/{admins}/stdout?executor=0");
            let a = send("GET", &url, Some(&admin), &[]);
            (a.code == 200 && a.body.contains("admins-line")).then_some(a)
        },
    );
    assert_eq!(
        read.header("content-type"),
        Some("text/plain; charset=utf-8")
    );

    // The token submits through the form (the app is alice's) and kills its own app.
    let submitted = send(
        "POST",
        &format!("{ui}/ui/submit"),
        Some(&alices),
        &[
            ("csrf", &alices_csrf),
            ("name", "alices-ui"),
            ("command", "sleep"),
            ("args", "600"),
            ("cores", "1"),
            ("memory_mb", "64"),
            ("executors", "0"),
        ],
    );
    assert_eq!(submitted.code, 303, "{}", submitted.body);
    let page = submitted.header("location").expect("to the app's page");
    let own = page
        .strip_prefix("/ui/apps/")
        .expect("an app page")
        .to_owned();
    assert_eq!(master.app(&own).expect("in /json")["user"], "alice");
    let a = send(
        "POST",
        &format!("{ui}/ui/apps/{own}/kill"),
        Some(&alices),
        &[("csrf", &alices_csrf)],
    );
    assert_eq!(a.code, 303, "{}", a.body);
    wait_for("alice's app KILLED", LONG, || {
        (state(&master, &own) == "KILLED").then_some(())
    });
    // The secret's session kills the other one.
    let a = send("POST", &kill_admins, Some(&admin), &[("csrf", &admin_csrf)]);
    assert_eq!(a.code, 303, "{}", a.body);
    wait_for("the admin's app KILLED", LONG, || {
        (state(&master, &admins) == "KILLED").then_some(())
    });
    master.assert_no_errors();
}

#[test]
fn a_standbys_page_links_to_the_leaders() {
    let dir = TestDir::new("ui-standby");
    let c = RaftCluster::start(dir.path(), 3, CI_TIMINGS);
    let leader = wait_for("an ALIVE leader", LONG, || c.alive_leader(None));
    let follower = (0..3).find(|i| *i != leader).expect("a follower");
    let link = format!("href=\"//{}/\"", c.advertised[leader]);
    let page = wait_for("the follower naming the leader", LONG, || {
        let (code, html) = http_get(&format!("http://127.0.0.1:{}/", c.http[follower])).ok()?;
        (code == 200 && html.contains("id=\"leader-link\"")).then_some(html)
    });
    assert!(page.contains("STANDBY") && page.contains(&link), "{page}");
    // The link's target answers the UI: the leader's gRPC port, over HTTP/1.1.
    let (code, html) =
        http_get(&format!("http://{}/", c.advertised[leader])).expect("the leader's page");
    assert_eq!(code, 200, "{html}");
    assert!(
        html.contains("leads") && !html.contains("leader-link"),
        "{html}"
    );
}
