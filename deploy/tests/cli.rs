//! The CLI contract (DESIGN.md §4) from outside: help, usage errors (exit 2) and refused
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
