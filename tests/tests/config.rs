//! `--config FILE` / `HEARTH_CONFIG` with the real `hearth` binary: `--print-config`
//! shows each setting and where it came from (a flag over its environment variable over
//! the file over the default); a section applies to its command only; an unknown key or a
//! bad value stops the command (exit 2) naming the key and the file; a master started
//! with `port` and `http-port` in its file listens there.

use hearth_tests::harness::{bin, http_get, stderr, stdout, MasterProc, TestDir};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// `hearth ARGS` with exactly `env` among the HEARTH_* variables (none inherited).
fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(bin("hearth"));
    for (k, _) in std::env::vars_os().filter(|(k, _)| k.to_string_lossy().starts_with("HEARTH_")) {
        cmd.env_remove(k);
    }
    cmd.args(args)
        .envs(env.iter().copied())
        .env("HEARTH_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("run hearth")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write config");
    path
}

/// The `--print-config` line of `key`: its value and its source comment.
fn line<'a>(out: &'a str, key: &str) -> (&'a str, &'a str) {
    let l = out
        .lines()
        .find(|l| l.starts_with(&format!("{key} =")))
        .unwrap_or_else(|| panic!("no {key} in:\n{out}"));
    let (value, source) = l.split_once("  # ").expect("a source comment");
    (
        value.trim_start_matches(&format!("{key} =")).trim(),
        source.trim(),
    )
}

const FILE: &str = r#"
# Every command: the masters and the secret.
masters = "hearth://h1:7077,h2:7077"
secret-file = "/etc/hearth/secret"

[master]
id = 2
worker-timeout = "30s"
retained-apps = 5
recovery-mode = "raft"
peers = "1=h1:7077,2=h2:7077,3=h3:7077"
insecure-no-auth = true
drill-token = "file-token-0123456789abcdef"

[worker]
cores = 3
port = 7078
"#;

#[test]
fn print_config_shows_flag_over_env_over_file_over_default() {
    let dir = TestDir::new("config-print");
    let f = write(dir.path(), "hearth.toml", FILE);
    let file = f.to_str().unwrap();
    let out = run(
        &["--config", file, "master", "--print-config", "--id", "3"],
        &[("HEARTH_MASTER_ID", "4"), ("HEARTH_RETAINED_APPS", "7")],
    );
    let text = stdout(&out);
    assert!(out.status.success(), "{}{}", text, stderr(&out));
    assert!(
        text.starts_with(&format!(
            "# hearth master: merged settings (config file {file}, from --config)"
        )),
        "{text}"
    );
    let in_master = format!("file {file} (in [master])");
    // A flag beats the environment and the file.
    assert_eq!(line(&text, "id"), ("3", "flag"));
    // The environment beats the file.
    assert_eq!(
        line(&text, "retained-apps"),
        ("7", "env HEARTH_RETAINED_APPS")
    );
    // The file beats the default; top-level keys apply too.
    assert_eq!(
        line(&text, "worker-timeout"),
        ("\"30s\"", in_master.as_str())
    );
    assert_eq!(
        line(&text, "recovery-mode"),
        ("\"raft\"", in_master.as_str())
    );
    assert_eq!(
        line(&text, "peers"),
        ("\"1=h1:7077,2=h2:7077,3=h3:7077\"", in_master.as_str())
    );
    assert_eq!(
        line(&text, "insecure-no-auth"),
        ("true", in_master.as_str())
    );
    let top = format!("file {file}");
    assert_eq!(
        line(&text, "master"),
        ("\"hearth://h1:7077,h2:7077\"", top.as_str())
    );
    assert_eq!(
        line(&text, "secret-file"),
        ("\"/etc/hearth/secret\"", top.as_str())
    );
    // Defaults, and nothing of [worker].
    assert_eq!(line(&text, "port"), ("7077", "default"));
    assert_eq!(
        line(&text, "election-timeout-max"),
        ("\"250ms\"", "default")
    );
    // A token is never shown.
    assert_eq!(
        line(&text, "drill-token"),
        ("\"<hidden>\"", in_master.as_str())
    );
    assert!(!text.contains("file-token"), "{text}");

    // The worker, named by HEARTH_CONFIG: its section, the top level, not [master].
    let out = run(&["worker", "--print-config"], &[("HEARTH_CONFIG", file)]);
    let text = stdout(&out);
    assert!(out.status.success(), "{}{}", text, stderr(&out));
    assert!(text.contains("from HEARTH_CONFIG"), "{text}");
    let in_worker = format!("file {file} (in [worker])");
    assert_eq!(line(&text, "cores"), ("3", in_worker.as_str()));
    assert_eq!(line(&text, "port"), ("7078", in_worker.as_str()));
    assert_eq!(
        line(&text, "masters"),
        ("\"hearth://h1:7077,h2:7077\"", top.as_str())
    );
    assert_eq!(line(&text, "insecure-no-auth"), ("false", "default"));
    assert!(
        !text.contains("worker-timeout") && !text.contains("file-token"),
        "{text}"
    );

    // Without a file, everything is a default (or unset).
    let out = run(&["master", "--print-config"], &[]);
    let text = stdout(&out);
    assert!(
        out.status.success() && text.contains("(no config file)"),
        "{text}"
    );
    assert_eq!(line(&text, "worker-timeout"), ("\"60s\"", "default"));
}

#[test]
fn unknown_keys_and_bad_values_stop_the_command() {
    let dir = TestDir::new("config-errors");
    let f = write(
        dir.path(),
        "typo.toml",
        "[master]\nworker-timout = \"30s\"\n",
    );
    let out = run(
        &[
            "--config",
            f.to_str().unwrap(),
            "master",
            "--port",
            "0",
            "--http-port",
            "0",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "unknown key worker-timout in config file {}",
            f.display()
        )) && err.contains("did you mean worker-timeout?"),
        "{err}"
    );
    assert!(stdout(&out).is_empty(), "it started: {}", stdout(&out));

    // A typo in another command's section stops this one too: the whole file is checked.
    let f = write(dir.path(), "section.toml", "[worker]\ncorse = 2\n");
    let out = run(&["--config", f.to_str().unwrap(), "status"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("unknown key corse") && stderr(&out).contains("did you mean cores?"),
        "{}",
        stderr(&out)
    );

    // A value that does not parse: clap's message names the flag, a note names the key.
    let f = write(
        dir.path(),
        "bad.toml",
        "[master]\nworker-timeout = \"soon\"\n",
    );
    let out = run(
        &["--config", f.to_str().unwrap(), "master", "--print-config"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("--worker-timeout"), "{err}");
    assert!(
        err.contains(&format!(
            "note: --worker-timeout was set by key worker-timeout in config file {} (in [master])",
            f.display()
        )),
        "{err}"
    );

    // A file that is not there.
    let out = run(&["--config", "/nonexistent/hearth.toml", "status"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot read config file /nonexistent/hearth.toml"),
        "{}",
        stderr(&out)
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

#[test]
fn a_master_listens_where_its_file_says() {
    let dir = TestDir::new("config-ports");
    let (port, http_port) = (free_port(), free_port());
    let f = write(
        dir.path(),
        "hearth.toml",
        &format!("[master]\nport = {port}\nhttp-port = {http_port}\nworker-timeout = \"20s\"\n"),
    );
    let mut m = MasterProc::start_with(dir.path(), &["--config", f.to_str().unwrap()]);
    assert_eq!(m.url, format!("hearth://127.0.0.1:{port}"));
    assert_eq!(m.ui, format!("http://127.0.0.1:{http_port}"));
    let (code, body) = http_get(&format!("{}/json", m.ui)).expect("GET /json");
    assert_eq!(code, 200, "{body}");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    let status = m
        .proc
        .stop(Duration::from_secs(20))
        .expect("the master stops on SIGTERM");
    assert!(status.success(), "{status:?}\n{}", m.proc.log_text());
}
