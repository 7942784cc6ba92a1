//! The CLI contract (README "The CLI") from outside: help, usage errors (exit 2) and refused
//! requests (exit 1), against the built binaries.
//!
//! Having integration tests here also makes `cargo test --workspace` build the `hearth`
//! and `hearth-pi` executables, which hearth-tests' real-process tests run.

use std::process::{Command, Output};

fn run(bin: &str, args: &[&str]) -> Output {
    Command::new(bin)
        .args(args)
        .env_remove("HEARTH_MASTERS")
        .output()
        .expect("run the binary")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

const HEARTH: &str = env!("CARGO_BIN_EXE_hearth");
const PI: &str = env!("CARGO_BIN_EXE_hearth-pi");

#[test]
fn help_lists_every_command() {
    let o = run(HEARTH, &["--help"]);
    assert!(o.status.success());
    let (out, _) = text(&o);
    for cmd in [
        "master",
        "worker",
        "local",
        "submit",
        "status",
        "app",
        "driver",
        "worker-admin",
        "recovery",
        "cluster",
        "drill",
    ] {
        assert!(
            out.contains(&format!("  {cmd}")),
            "--help lacks {cmd}:\n{out}"
        );
    }
}

#[test]
fn usage_errors_exit_2_and_name_the_problem() {
    let o = run(HEARTH, &["status"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        text(&o).1.trim(),
        "error: no master given: pass --master hearth://host:port or set HEARTH_MASTERS"
    );
    let o = run(
        HEARTH,
        &[
            "submit",
            "--master",
            "hearth://127.0.0.1:1",
            "--executor-memory",
            "banana",
            "--",
            "true",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o).1;
    assert!(
        err.contains("--executor-memory") && err.contains("\"banana\" is not a size"),
        "{err}"
    );
    let o = run(HEARTH, &["app", "list", "--master", "http://x:1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("expected hearth://host:port"));
}

#[test]
fn requests_that_cannot_be_served_exit_1() {
    let o = run(
        HEARTH,
        &[
            "master",
            "--recovery-mode",
            "raft",
            "--port",
            "0",
            "--http-port",
            "0",
        ],
    );
    // Raft mode without its directory and peers is bad usage (2), said plainly.
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o)
        .1
        .contains("--recovery-mode raft needs --recovery-dir DIR"));
    let o = run(
        HEARTH,
        &[
            "recovery",
            "verify",
            "--dir",
            "/nonexistent/hearth-recovery-dir",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).1.contains("/nonexistent/hearth-recovery-dir"),
        "{}",
        text(&o).1
    );
}

#[test]
fn the_example_app_computes_its_expected_answer() {
    let o = run(
        PI,
        &["expected", "--tasks", "4", "--samples-per-task", "1000"],
    );
    assert!(o.status.success());
    let (out, _) = text(&o);
    assert!(
        out.starts_with("pi=") && out.contains(" samples=4000 tasks=4"),
        "{out}"
    );
    assert_eq!(run(PI, &["driver"]).status.code(), Some(2), "no port given");
}

/// A command whose reader goes away (`hearth ... | head`) ends by SIGPIPE, quietly: no
/// panic message.
#[test]
fn a_closed_stdout_ends_the_command_by_sigpipe_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let dir = std::env::temp_dir().join(format!("hearth-cli-pipe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut fds = [0; 2];
    // SAFETY: a plain pipe(2); both ends are owned below.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: fds[0] is ours and closed once: the reader is gone before anything is
    // written.
    unsafe { libc::close(fds[0]) };
    // SAFETY: fds[1] is ours; the Stdio takes it over.
    let write_end = unsafe { <std::process::Stdio as std::os::fd::FromRawFd>::from_raw_fd(fds[1]) };
    let o = Command::new(HEARTH)
        .args(["recovery", "verify", "--dir", dir.to_str().unwrap()])
        .stdout(write_end)
        .output()
        .expect("run hearth");
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(o.status.signal(), Some(libc::SIGPIPE), "{:?}", o.status);
    assert_eq!(text(&o).1, "", "nothing on stderr");
}

/// A command talking to masters keeps SIGPIPE ignored, so a master that dies mid-call
/// (its connections reset) is an error the client rides out or reports, never a silent
/// death: hyper writes to sockets with `writev`, which cannot opt out of SIGPIPE.
#[test]
fn commands_that_talk_to_masters_ignore_sigpipe() {
    // A port nothing listens on: `hearth status` keeps retrying while we look at it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut child = Command::new(HEARTH)
        .args(["status", "--master", &format!("hearth://127.0.0.1:{port}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run hearth");
    let status = format!("/proc/{}/status", child.id());
    let start = std::time::Instant::now();
    // The disposition is set before the runtime starts; wait for the runtime's threads
    // so the check does not race the start.
    let ignored = loop {
        let text = std::fs::read_to_string(&status).unwrap_or_default();
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_owned())
        };
        let threads: usize = field("Threads:").and_then(|t| t.parse().ok()).unwrap_or(0);
        if threads > 1 {
            let mask = u64::from_str_radix(&field("SigIgn:").unwrap_or_default(), 16)
                .expect("SigIgn mask");
            break mask & (1 << (libc::SIGPIPE - 1)) != 0;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "hearth status did not start its runtime"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(ignored, "SIGPIPE is not ignored while hearth status runs");
}
