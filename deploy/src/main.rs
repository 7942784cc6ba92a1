//! `hearth`: the one binary (README "The CLI"). Thin: it parses flags, builds configs and
//! calls the library crates (hearth-master, hearth-worker, hearth-client).
//!
//! Exit codes: 0 ok; 1 the request failed (stderr says why); 2 bad usage.

mod admin;
mod cluster_cmd;
mod config;
mod drill;
mod local;
mod logs;
mod recovery_cmd;
mod secret;
mod servers;
mod submit;
mod units;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use std::process::ExitCode;

/// jemalloc, not glibc's malloc: a master taking 5,000 re-registrations spent 13 % of its
/// time in glibc's malloc, free and malloc_consolidate (bench-scale, perf).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// hearth: a highly available cluster manager for Spark-style apps.
///
/// Masters schedule drivers and executors onto workers; workers run them as real
/// processes. Every command that talks to a running cluster takes `--master
/// hearth://host:port[,host:port...]` (or HEARTH_MASTERS) and follows the leader itself.
#[derive(Parser)]
#[command(name = "hearth", version, propagate_version = true)]
struct Cli {
    /// The masters to talk to: hearth://host:port[,host:port...] (port defaults to 7077).
    #[arg(
        long = "master",
        global = true,
        env = "HEARTH_MASTERS",
        value_name = "URL"
    )]
    master: Option<String>,
    /// The cluster secret: a file holding at least 32 bytes, readable by its owner only
    /// (`hearth secret new`). Servers ask every caller for it; clients send it.
    #[arg(
        long = "secret-file",
        global = true,
        env = "HEARTH_SECRET_FILE",
        value_name = "FILE"
    )]
    secret_file: Option<std::path::PathBuf>,
    /// Mutual TLS: this machine's certificate (PEM), signed by the --tls-ca, valid for
    /// every name or address it is dialled by. With --tls-key and --tls-ca, servers accept
    /// only peers showing a certificate the CA signed and clients dial https. `hearth tls`
    /// makes a CA and certificates.
    #[arg(
        long = "tls-cert",
        global = true,
        env = "HEARTH_TLS_CERT",
        value_name = "FILE"
    )]
    tls_cert: Option<std::path::PathBuf>,
    /// The private key of --tls-cert (PEM), readable by its owner only.
    #[arg(
        long = "tls-key",
        global = true,
        env = "HEARTH_TLS_KEY",
        value_name = "FILE"
    )]
    tls_key: Option<std::path::PathBuf>,
    /// The cluster's CA certificate (PEM): peers are trusted if it signed theirs.
    #[arg(
        long = "tls-ca",
        global = true,
        env = "HEARTH_TLS_CA",
        value_name = "FILE"
    )]
    tls_ca: Option<std::path::PathBuf>,
    /// A TOML file of settings: keys are long flag names (`worker-timeout = "30s"`), at
    /// the top level for every command, in `[master]`, `[worker]`, ... for one. Command
    /// line flags and HEARTH_* variables win over it.
    #[arg(long, global = true, env = "HEARTH_CONFIG", value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    /// Print every setting of the command with its value and where it came from (flag,
    /// env, file, default), and exit without doing anything.
    #[arg(long, global = true)]
    print_config: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a master.
    Master(servers::MasterArgs),
    /// Run a worker agent that launches executors and drivers on this machine.
    Worker(servers::WorkerArgs),
    /// Start a whole cluster on this machine as real processes (the embedded default).
    Local(servers::LocalArgs),
    /// Submit an application (client or cluster deploy mode).
    Submit(submit::SubmitArgs),
    /// Show the cluster: leader, term, counts, the first workers, apps and drivers.
    ///
    /// Prints the leader, term and masters, a line of counts (workers, apps, drivers, and
    /// the alive workers' cores and memory), then the first 20 workers, apps (active,
    /// then completed) and drivers, each table followed by how many more there are and
    /// the --offset that shows them. --limit, --offset and --state choose others (applied
    /// on the leader, so a cluster of 100,000 executors answers quickly); --all shows
    /// every one. --json prints the whole /json document, or with --state, --offset or
    /// --limit that page of it.
    Status(admin::StatusArgs),
    /// List, show, kill or scale applications.
    App {
        #[command(subcommand)]
        cmd: admin::AppCmd,
    },
    /// List, show or kill cluster-mode drivers.
    Driver {
        #[command(subcommand)]
        cmd: admin::DriverCmd,
    },
    /// List or decommission workers.
    WorkerAdmin {
        #[command(subcommand)]
        cmd: admin::WorkerAdminCmd,
    },
    /// Offline tools for a stopped master's FILESYSTEM recovery directory.
    Recovery {
        #[command(subcommand)]
        cmd: recovery_cmd::RecoveryCmd,
    },
    /// Raft administration: list the masters, add or remove one, move leadership off
    /// the leader, build a snapshot.
    Cluster {
        #[command(subcommand)]
        cmd: cluster_cmd::ClusterCmd,
    },
    /// Print a driver's or an executor's output (stdout, or --stderr), read from the
    /// worker that runs it; -f follows it, also through a failover of the masters.
    Logs(logs::LogsArgs),
    /// Rehearse a failover on a running cluster started with --enable-drills: inject a
    /// fault round after round, measure the recovery, check nothing was lost or doubled.
    Drill(drill::DrillArgs),
    /// Make a cluster secret (see --secret-file).
    Secret {
        #[command(subcommand)]
        cmd: secret::SecretCmd,
    },
    /// Make a cluster CA and members' certificates for mutual TLS (see --tls-cert).
    Tls {
        #[command(subcommand)]
        cmd: secret::TlsCmd,
    },
}

/// Errors a command reports; the message is printed as `error: ...`.
pub enum Failure {
    /// The request failed (exit 1).
    Request(String),
    /// The command line was wrong (exit 2).
    Usage(String),
}

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure::Request(e.to_string())
    }
}

pub type Outcome = Result<(), Failure>;

fn init_logs(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HEARTH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

/// `hearth app list | head` ends quietly, like any Unix tool, when the reader goes away:
/// by SIGPIPE, once printing to stdout fails with a broken pipe.
///
/// SIGPIPE itself stays ignored (Rust's default) for everything else. With the default
/// disposition, a write to a socket whose peer has died — a gRPC call to a master killed
/// a moment before, which a client rides out by trying the next master — killed the
/// whole command silently: hyper writes with `writev`, which cannot opt out of SIGPIPE.
/// A failover drill and a client-mode `hearth submit` (whose driver dies with it) are
/// exactly the commands that talk to masters as they die.
fn end_quietly_when_stdout_closes() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.starts_with("failed printing to stdout") && msg.contains("Broken pipe") {
            // SAFETY: restoring the default disposition and raising the signal this
            // process would have died of, in the panicking thread.
            unsafe {
                libc::signal(libc::SIGPIPE, libc::SIG_DFL);
                libc::raise(libc::SIGPIPE);
            }
        }
        default(info);
    }));
}

/// The command line, with the config file's settings (`config.rs`) under it; `--print-config`
/// and every error end here.
fn parse() -> Result<Cli, ExitCode> {
    let plan = match config::plan(Cli::command(), std::env::args_os().collect()) {
        Ok(plan) => plan,
        Err(msg) => {
            eprintln!("error: {msg}");
            return Err(ExitCode::from(2));
        }
    };
    let refused = |e: clap::Error| -> ExitCode {
        match config::blame(&plan, &e) {
            Some(note) => {
                eprint!("{}", e.render());
                eprintln!("{note}");
                ExitCode::from(e.exit_code() as u8)
            }
            None => e.exit(),
        }
    };
    let matches = Cli::command()
        .try_get_matches_from(&plan.argv)
        .map_err(refused)?;
    let cli = Cli::from_arg_matches(&matches).map_err(|e| -> ExitCode { e.exit() })?;
    if cli.print_config {
        print!("{}", config::render(Cli::command(), &matches, &plan));
        return Err(ExitCode::SUCCESS);
    }
    Ok(cli)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    // The process guard the worker and `submit` wrap every launched command in: handled
    // before any argument parsing, and never shown in --help.
    if args.get(1).map(String::as_str) == Some("__guard") {
        hearth_worker::guard::main(&args[2..]);
    }
    let cli = match parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let server = matches!(cli.cmd, Cmd::Master(_) | Cmd::Worker(_) | Cmd::Local(_));
    if !server {
        end_quietly_when_stdout_closes();
    }
    // openraft logs every failed RPC to a down peer (10 a second) at ERROR; hearth logs
    // peers going away and coming back, and leadership changes, itself.
    // `HEARTH_LOG=info,openraft=info` shows openraft's own lines.
    init_logs(if server {
        "info,openraft=off"
    } else {
        "warn,openraft=off"
    });
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let master = cli.master;
    let secret_file = cli.secret_file;
    let tls = (cli.tls_cert, cli.tls_key, cli.tls_ca);
    let result = runtime.block_on(async move {
        secret::init(secret_file.as_deref(), tls)?;
        match cli.cmd {
            Cmd::Master(a) => servers::master(a).await,
            Cmd::Worker(a) => servers::worker(a, master).await,
            Cmd::Local(a) => servers::local(a).await,
            Cmd::Submit(a) => submit::run(a, admin::client(master)?).await,
            Cmd::Status(a) => admin::status(&admin::client(master)?, a).await,
            Cmd::App { cmd } => admin::app(&admin::client(master)?, cmd).await,
            Cmd::Driver { cmd } => admin::driver(&admin::client(master)?, cmd).await,
            Cmd::WorkerAdmin { cmd } => admin::worker_admin(&admin::client(master)?, cmd).await,
            Cmd::Recovery { cmd } => recovery_cmd::run(cmd),
            Cmd::Cluster { cmd } => cluster_cmd::run(master, cmd).await,
            Cmd::Logs(a) => logs::run(&admin::client(master)?, a).await,
            Cmd::Drill(a) => drill::run(a, master).await,
            Cmd::Secret { cmd } => secret::run(cmd),
            Cmd::Tls { cmd } => secret::tls_run(cmd),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Request(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(1)
        }
        Err(Failure::Usage(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(2)
        }
    }
}
