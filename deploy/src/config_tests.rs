//! Tests of the config merge ([`super`]): exact argument lists and sources.

use super::*;
use clap::{Arg, ArgAction, Command};
use std::io::Write;

/// A small CLI shaped like hearth's; `port_env` names `master --port`'s variable (each
/// test its own, as tests run in parallel).
fn cli(port_env: &'static str) -> Command {
    Command::new("hearth")
        .subcommand_required(true)
        .arg(
            Arg::new("master")
                .long("master")
                .global(true)
                .env("HEARTH_TEST_CFG_MASTERS"),
        )
        .arg(Arg::new("config").long("config").global(true))
        .arg(
            Arg::new("print_config")
                .long("print-config")
                .global(true)
                .action(ArgAction::SetTrue),
        )
        .subcommand(
            Command::new("master")
                .arg(
                    Arg::new("port")
                        .long("port")
                        .default_value("7077")
                        .env(port_env)
                        .value_parser(clap::value_parser!(u16)),
                )
                .arg(
                    Arg::new("worker_timeout")
                        .long("worker-timeout")
                        .default_value("60s"),
                )
                .arg(
                    Arg::new("insecure_no_auth")
                        .long("insecure-no-auth")
                        .action(ArgAction::SetTrue),
                )
                .arg(
                    Arg::new("spread_out")
                        .long("spread-out")
                        .default_value("true")
                        .value_parser(clap::value_parser!(bool))
                        .action(ArgAction::Set),
                )
                .arg(
                    Arg::new("drill_token")
                        .long("drill-token")
                        .hide_env_values(true),
                ),
        )
        .subcommand(
            Command::new("worker")
                .arg(Arg::new("port").long("port").default_value("0"))
                .arg(Arg::new("masters").long("masters"))
                .arg(
                    Arg::new("insecure_no_auth")
                        .long("insecure-no-auth")
                        .action(ArgAction::SetTrue),
                ),
        )
        .subcommand(
            Command::new("submit")
                .arg(Arg::new("env").long("env").action(ArgAction::Append))
                .arg(Arg::new("name").long("name"))
                .arg(Arg::new("command").last(true).required(true).num_args(1..)),
        )
        .subcommand(
            Command::new("cluster")
                .subcommand_required(true)
                .subcommand(
                    Command::new("transfer")
                        .arg(Arg::new("timeout").long("timeout").default_value("30s")),
                ),
        )
}

fn file(name: &str, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "hearth-config-unit-{}-{name}.toml",
        std::process::id()
    ));
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .expect("write config");
    path
}

fn argv(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

fn plan_of(port_env: &'static str, args: &[&str]) -> Result<Plan, String> {
    plan(cli(port_env), argv(args))
}

fn strings(p: &Plan) -> Vec<String> {
    p.argv
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

const FILE: &str = r#"
    port = 1111                  # top level: master and worker both have --port
    [master]
    port = 2222                  # deeper wins for master
    worker-timeout = "30s"
    insecure-no-auth = true
    spread-out = false
    [worker]
    insecure-no-auth = false
    [cluster.transfer]
    timeout = "5s"
"#;

#[test]
fn file_fills_what_flags_and_env_leave_unset() {
    let f = file("fill", FILE);
    let c = f.to_str().unwrap();
    let p = plan_of(
        "HEARTH_TEST_CFG_PORT_A",
        &["hearth", "--config", c, "master"],
    )
    .unwrap();
    assert_eq!(
        strings(&p),
        [
            "hearth",
            "--config",
            c,
            "master",
            "--insecure-no-auth",
            "--port=2222",
            "--spread-out=false",
            "--worker-timeout=30s"
        ]
    );
    assert_eq!(p.file, Some((f.clone(), "--config")));
    assert_eq!(
        p.from_file["port"],
        Applied {
            key: "port".into(),
            table: "[master]".into(),
            long: "port".into()
        }
    );
    // A flag wins: the file's port is dropped, the rest stays.
    let p = plan_of(
        "HEARTH_TEST_CFG_PORT_A",
        &["hearth", "master", "--port", "9", "--config", c],
    )
    .unwrap();
    assert_eq!(
        strings(&p),
        [
            "hearth",
            "master",
            "--port",
            "9",
            "--config",
            c,
            "--insecure-no-auth",
            "--spread-out=false",
            "--worker-timeout=30s"
        ]
    );
    assert!(!p.from_file.contains_key("port"));
}

#[test]
fn env_wins_over_the_file_and_a_flag_over_env() {
    let f = file("env", FILE);
    let c = f.to_str().unwrap();
    std::env::set_var("HEARTH_TEST_CFG_PORT_B", "3333");
    let p = plan_of(
        "HEARTH_TEST_CFG_PORT_B",
        &["hearth", "--config", c, "master"],
    )
    .unwrap();
    assert!(
        !strings(&p).iter().any(|a| a.starts_with("--port")),
        "{:?}",
        strings(&p)
    );
    let m = cli("HEARTH_TEST_CFG_PORT_B")
        .try_get_matches_from(&p.argv)
        .unwrap();
    let out = render(cli("HEARTH_TEST_CFG_PORT_B"), &m, &p);
    assert!(
        out.contains("port = 3333") && out.contains("# env HEARTH_TEST_CFG_PORT_B"),
        "{out}"
    );
    assert!(
        out.contains("worker-timeout = \"30s\"")
            && out.contains(&format!("# file {c} (in [master])")),
        "{out}"
    );
    // The flag over both.
    let p = plan_of(
        "HEARTH_TEST_CFG_PORT_B",
        &["hearth", "--config", c, "master", "--port=4"],
    )
    .unwrap();
    let m = cli("HEARTH_TEST_CFG_PORT_B")
        .try_get_matches_from(&p.argv)
        .unwrap();
    let out = render(cli("HEARTH_TEST_CFG_PORT_B"), &m, &p);
    let port = out.lines().find(|l| l.starts_with("port =")).unwrap();
    assert!(
        port.starts_with("port = 4 ") && port.ends_with("# flag"),
        "{out}"
    );
}

#[test]
fn sections_apply_to_their_command_only() {
    let f = file("sections", FILE);
    let c = f.to_str().unwrap();
    // worker: the top-level port, nothing of [master]; false leaves the switch out.
    let p = plan_of(
        "HEARTH_TEST_CFG_PORT_C",
        &["hearth", "worker", "--config", c],
    )
    .unwrap();
    assert_eq!(
        strings(&p),
        ["hearth", "worker", "--config", c, "--port=1111"]
    );
    assert_eq!(p.from_file["insecure_no_auth"].table, "[worker]");
    let m = cli("HEARTH_TEST_CFG_PORT_C")
        .try_get_matches_from(&p.argv)
        .unwrap();
    let out = render(cli("HEARTH_TEST_CFG_PORT_C"), &m, &p);
    assert!(
        out.contains("insecure-no-auth = false") && out.contains("port = 1111"),
        "{out}"
    );
    // A nested section, for its subcommand; a command without --port ignores it.
    let p = plan_of(
        "HEARTH_TEST_CFG_PORT_C",
        &["hearth", "cluster", "transfer", "--config", c],
    )
    .unwrap();
    assert_eq!(
        strings(&p),
        [
            "hearth",
            "cluster",
            "transfer",
            "--config",
            c,
            "--timeout=5s"
        ]
    );
    // submit: file values go before `--`; a list repeats the flag.
    let f = file(
        "submit",
        "[submit]\nenv = [\"A=1\", \"B=2\"]\nname = \"x\"\n",
    );
    let c = f.to_str().unwrap();
    let p = plan_of(
        "HEARTH_TEST_CFG_PORT_C",
        &["hearth", "--config", c, "submit", "--", "sh", "--name"],
    )
    .unwrap();
    assert_eq!(
        strings(&p),
        [
            "hearth",
            "--config",
            c,
            "submit",
            "--env=A=1",
            "--env=B=2",
            "--name=x",
            "--",
            "sh",
            "--name"
        ]
    );
}

#[test]
fn unknown_keys_and_sections_are_errors_naming_key_and_file() {
    // (file name, its text, the command, the error with `{c}` for the file's path)
    let cases = [
        (
            "unknown",
            "[master]\nworker-timout = \"30s\"\n",
            "worker",
            "unknown key worker-timout in config file {c} (in [master]): hearth master has no --worker-timout; did you mean worker-timeout?",
        ),
        (
            "unknown-top",
            "worker_timeout = \"30s\"\n",
            "worker",
            "unknown key worker_timeout in config file {c}: no hearth command has --worker_timeout; did you mean worker-timeout?",
        ),
        (
            "unknown-section",
            "[mastr]\nport = 1\n",
            "master",
            "unknown section [mastr] in config file {c}: hearth has no command mastr; did you mean master?",
        ),
        (
            "switch",
            "[master]\ninsecure-no-auth = \"yes\"\n",
            "master",
            "config file {c} (in [master]): key insecure-no-auth: --insecure-no-auth is a switch, write insecure-no-auth = true or false",
        ),
    ];
    for (name, text, command, expected) in cases {
        let f = file(name, text);
        let c = f.to_str().unwrap();
        let e = plan_of(
            "HEARTH_TEST_CFG_PORT_D",
            &["hearth", "--config", c, command],
        )
        .unwrap_err();
        assert_eq!(e, expected.replace("{c}", c), "{name}");
    }
    let f = file("config-key", "config = \"other.toml\"\n");
    let c = f.to_str().unwrap();
    let e = plan_of(
        "HEARTH_TEST_CFG_PORT_D",
        &["hearth", "--config", c, "master"],
    )
    .unwrap_err();
    assert!(
        e.contains("key config") && e.contains("cannot be set"),
        "{e}"
    );
    let e = plan_of(
        "HEARTH_TEST_CFG_PORT_D",
        &["hearth", "--config", "/nonexistent/h.toml", "master"],
    )
    .unwrap_err();
    assert!(
        e.starts_with("cannot read config file /nonexistent/h.toml (--config): "),
        "{e}"
    );
    let f = file("bad-toml", "port = \n");
    let e = plan_of(
        "HEARTH_TEST_CFG_PORT_D",
        &["hearth", "--config", f.to_str().unwrap(), "master"],
    )
    .unwrap_err();
    assert!(e.contains("is not valid TOML"), "{e}");
}

#[test]
fn a_bad_value_is_clap_s_error_blamed_on_the_key() {
    let f = file("bad-value", "[master]\nport = \"lots\"\n");
    let c = f.to_str().unwrap();
    let p = plan_of(
        "HEARTH_TEST_CFG_PORT_E",
        &["hearth", "--config", c, "master"],
    )
    .unwrap();
    let e = cli("HEARTH_TEST_CFG_PORT_E")
        .try_get_matches_from(&p.argv)
        .err()
        .unwrap();
    assert!(e.to_string().contains("--port"), "{e}");
    assert_eq!(
        blame(&p, &e).unwrap(),
        format!("note: --port was set by key port in config file {c} (in [master])")
    );
}

#[test]
fn masters_is_master_and_one_setting_with_it() {
    let f = file("masters", "masters = \"hearth://h:7077\"\n");
    let c = f.to_str().unwrap();
    // A command without --masters: the key sets the global --master.
    let p = plan_of(
        "HEARTH_TEST_CFG_PORT_F",
        &["hearth", "--config", c, "submit", "--", "x"],
    )
    .unwrap();
    assert_eq!(strings(&p)[4], "--master=hearth://h:7077");
    // The worker's own --masters, dropped when --master is given.
    let p = plan_of(
        "HEARTH_TEST_CFG_PORT_F",
        &["hearth", "--config", c, "worker"],
    )
    .unwrap();
    assert_eq!(strings(&p)[4], "--masters=hearth://h:7077");
    let p = plan_of(
        "HEARTH_TEST_CFG_PORT_F",
        &["hearth", "--config", c, "worker", "--master", "hearth://o"],
    )
    .unwrap();
    assert_eq!(strings(&p).len(), 6, "{:?}", strings(&p));
    let f = file("both", "master = \"a\"\nmasters = \"b\"\n");
    let e = plan_of(
        "HEARTH_TEST_CFG_PORT_F",
        &["hearth", "--config", f.to_str().unwrap(), "master"],
    )
    .unwrap_err();
    assert!(
        e.contains("keys master and masters both set --master"),
        "{e}"
    );
}

#[test]
fn no_file_no_change_and_secrets_hidden() {
    let p = plan_of(
        "HEARTH_TEST_CFG_PORT_G",
        &["hearth", "master", "--drill-token", "s3cr3t-s3cr3t-s3cr3t"],
    )
    .unwrap();
    assert_eq!(p.file, None);
    assert_eq!(strings(&p).len(), 4);
    let m = cli("HEARTH_TEST_CFG_PORT_G")
        .try_get_matches_from(&p.argv)
        .unwrap();
    let out = render(cli("HEARTH_TEST_CFG_PORT_G"), &m, &p);
    assert!(
        !out.contains("s3cr3t") && out.contains("drill-token = \"<hidden>\""),
        "{out}"
    );
    assert!(
        out.contains("(no config file)") && !out.contains("# worker-timeout"),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("worker-timeout = \"60s\"") && l.ends_with("# default")),
        "{out}"
    );
    // A command line clap refuses is left for clap to report.
    let p = plan_of(
        "HEARTH_TEST_CFG_PORT_G",
        &["hearth", "--config", "/nonexistent", "master", "--bogus"],
    )
    .unwrap();
    assert_eq!(p.file, None);
}

#[test]
fn the_real_cli_takes_its_flags_from_a_file() {
    use clap::CommandFactory;
    let f = file(
        "real",
        "secret-file = \"/etc/hearth/secret\"\n[master]\nworker-timeout = \"30s\"\nrecovery-mode = \"raft\"\npeers = \"1=h1:7077,2=h2:7077,3=h3:7077\"\n[worker]\ncores = 3\n",
    );
    let c = f.to_str().unwrap();
    let p = plan(
        crate::Cli::command(),
        argv(&["hearth", "--config", c, "master", "--id", "2"]),
    )
    .unwrap();
    let s = strings(&p);
    for want in [
        "--secret-file=/etc/hearth/secret",
        "--worker-timeout=30s",
        "--recovery-mode=raft",
        "--peers=1=h1:7077,2=h2:7077,3=h3:7077",
    ] {
        assert!(s.iter().any(|a| a == want), "{want} not in {s:?}");
    }
    assert!(!s.iter().any(|a| a.starts_with("--cores")), "{s:?}");
    crate::Cli::command()
        .try_get_matches_from(&p.argv)
        .expect("parses");
}
