//! `hearth local`: a whole cluster on this machine as real processes — masters and
//! workers are this same binary, started as children on free ports with their data under
//! `--dir`. Three masters (the default) replicate through Raft; one runs without
//! persistence. Prints `HEARTH_MASTERS=...` and `HEARTH_UI=...`; Ctrl-C or SIGTERM stops
//! everything. Children also die if this process is killed (parent-death signal), and
//! every executor and driver dies with its worker. Masters and workers accept failover
//! drills (`hearth drill`) with the token printed as `HEARTH_DRILL_TOKEN=...`. With
//! several masters, a master or worker that dies (a failover rehearsal) is restarted on
//! its own directory and ports. `--tls` makes a CA and a certificate for this machine in
//! the directory and runs everything over mutual TLS (`HEARTH_TLS_*` printed for
//! clients).

use crate::servers::shutdown_signal;
use crate::units::{parse_cores, parse_duration, parse_mib};
use crate::{Failure, Outcome};
use clap::Args;
use rustix::process::{Pid, Signal};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

#[derive(Args)]
pub struct LocalArgs {
    /// Masters to start: 3 (or 5, 7) replicate through Raft; 1 runs alone without
    /// persistence.
    #[arg(long, default_value_t = 3)]
    masters: u32,
    /// Workers to start.
    #[arg(long, default_value_t = 2)]
    workers: u32,
    /// Where masters and workers keep their data and logs (default: a new directory
    /// under the system temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Cores each worker offers.
    #[arg(long, default_value = "4", value_parser = parse_cores)]
    worker_cores: u32,
    /// Memory each worker offers.
    #[arg(long, default_value = "4g", value_parser = parse_mib)]
    worker_memory: u64,
    /// The masters' worker timeout (workers heartbeat at a quarter of it).
    #[arg(long, default_value = "4s", value_parser = parse_duration)]
    worker_timeout: Duration,
    /// Mutual TLS between every process: makes a CA and a certificate for this machine
    /// in DIR/tls (once; later runs on the same --dir reuse them) and prints
    /// HEARTH_TLS_CERT, HEARTH_TLS_KEY and HEARTH_TLS_CA for clients.
    #[arg(long)]
    tls: bool,
}

fn spawn(exe: &Path, args: &[String], log: &Path) -> Result<Child, Failure> {
    let log_file = std::fs::File::create(log)
        .map_err(|e| Failure::Request(format!("cannot create {}: {e}", log.display())))?;
    spawn_logging(exe, args, log_file)
}

/// Starts a child again, appending to its log.
fn spawn_appending(exe: &Path, args: &[String], log: &Path) -> Result<Child, Failure> {
    let log_file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(log)
        .map_err(|e| Failure::Request(format!("cannot open {}: {e}", log.display())))?;
    spawn_logging(exe, args, log_file)
}

/// The drill token every child gets (in its environment, not its argv).
static DRILL_TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// `HEARTH_DRILL_TOKEN` if set, else 32 random hex digits.
fn drill_token() -> Result<String, Failure> {
    if let Ok(t) = std::env::var("HEARTH_DRILL_TOKEN") {
        if t.len() >= 16 {
            return Ok(t);
        }
    }
    Ok(hearth_proto::auth::Secret::random_text()?[..32].to_owned())
}

/// The cluster secret's file every child gets (`HEARTH_SECRET_FILE`).
static SECRET_FILE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// The cluster's secret in `dir/secret`: the one a previous run there made, else a new
/// one (readable by its owner only).
fn secret_file(dir: &Path) -> Result<PathBuf, Failure> {
    let path = dir.join("secret");
    let made = match hearth_proto::auth::Secret::create(&path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Failure::Request(format!(
            "cannot write the cluster secret {}: {e}",
            path.display()
        ))),
    };
    made?;
    hearth_proto::auth::Secret::read(&path).map_err(Failure::Request)?;
    Ok(path)
}

/// The TLS files every child gets (`HEARTH_TLS_CERT`, `_KEY`, `_CA`), with `--tls`.
static TLS_FILES: std::sync::OnceLock<hearth_proto::tls::TlsFiles> = std::sync::OnceLock::new();

/// A CA and a certificate for this machine in `dir/tls`: the ones a previous run there
/// made, else new ones.
fn tls_files(dir: &Path) -> Result<hearth_proto::tls::TlsFiles, Failure> {
    let tls = dir.join("tls");
    let files = hearth_proto::tls::TlsFiles {
        cert: tls.join("node.pem"),
        key: tls.join("node-key.pem"),
        ca: tls.join(hearth_proto::tls::CA_CERT),
    };
    if !files.cert.exists() {
        let host = hostname();
        let hosts: Vec<String> = host.into_iter().collect();
        hearth_proto::tls::generate_local(&tls, &hosts).map_err(Failure::Request)?;
    }
    hearth_proto::tls::Tls::read(&files).map_err(Failure::Request)?;
    Ok(files)
}

/// This machine's name, if it has one.
fn hostname() -> Option<String> {
    let uname = rustix::system::uname();
    let name = uname.nodename().to_str().ok()?.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

/// A new directory only this user may enter, with a name no one can guess in advance.
fn private_temp_dir() -> Result<PathBuf, Failure> {
    use std::os::unix::fs::DirBuilderExt;
    let suffix = &hearth_proto::auth::Secret::random_text()?[..12];
    let dir = std::env::temp_dir().join(format!("hearth-local-{}-{suffix}", std::process::id()));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(|e| Failure::Request(format!("cannot create {}: {e}", dir.display())))?;
    Ok(dir)
}

fn spawn_logging(exe: &Path, args: &[String], log_file: std::fs::File) -> Result<Child, Failure> {
    let mut cmd = Command::new(exe);
    if let Some(path) = SECRET_FILE.get() {
        cmd.env("HEARTH_SECRET_FILE", path);
    }
    if let Some(tls) = TLS_FILES.get() {
        cmd.env("HEARTH_TLS_CERT", &tls.cert)
            .env("HEARTH_TLS_KEY", &tls.key)
            .env("HEARTH_TLS_CA", &tls.ca);
    }
    if let Some(token) = DRILL_TOKEN.get() {
        cmd.env("HEARTH_ENABLE_DRILLS", "true")
            .env("HEARTH_DRILL_TOKEN", token);
    }
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file);
    // SAFETY: prctl is async-signal-safe; nothing else runs in the child.
    unsafe {
        cmd.pre_exec(|| {
            rustix::process::set_parent_process_death_signal(Some(Signal::TERM))?;
            Ok(())
        });
    }
    cmd.spawn()
        .map_err(|e| Failure::Request(format!("cannot start {}: {e}", exe.display())))
}

/// Reads a child's stdout until it has printed `KEY=value` lines for every key.
async fn read_announced(child: &mut Child, keys: &[&str]) -> Result<Vec<String>, Failure> {
    let out = child
        .stdout
        .take()
        .ok_or_else(|| Failure::Request("no stdout from child".into()))?;
    let mut lines = BufReader::new(out).lines();
    let mut found = vec![None; keys.len()];
    let read = async {
        while found.iter().any(Option::is_none) {
            let Some(line) = lines.next_line().await? else {
                break;
            };
            for (i, k) in keys.iter().enumerate() {
                if let Some(v) = line.strip_prefix(&format!("{k}=")) {
                    found[i] = Some(v.to_owned());
                }
            }
        }
        Ok::<_, std::io::Error>(())
    };
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .map_err(|_| Failure::Request("the master did not start within 30 s".into()))??;
    found
        .into_iter()
        .zip(keys)
        .map(|(v, k)| {
            v.ok_or_else(|| Failure::Request(format!("the master exited before announcing {k}")))
        })
        .collect()
}

async fn stop_all(members: &mut [Member]) {
    for m in members.iter() {
        if let Some(pid) = m.child.id().and_then(|p| Pid::from_raw(p.try_into().ok()?)) {
            let _ = rustix::process::kill_process(pid, Signal::TERM);
        }
    }
    for m in members.iter_mut() {
        if tokio::time::timeout(Duration::from_secs(10), m.child.wait())
            .await
            .is_err()
        {
            tracing::warn!(name = %m.name, "did not stop within 10 s; killing it");
            let _ = m.child.kill().await;
        }
    }
}

/// Fixed loopback ports for the children (see [`hearth_master::ports`]).
fn free_ports(n: usize) -> Result<Vec<u16>, Failure> {
    hearth_master::ports::free_peer_ports(n)
        .map_err(|e| Failure::Request(format!("cannot find free ports: {e}")))
}

/// One child of `hearth local`: how to start it again.
struct Member {
    name: String,
    args: Vec<String>,
    child: Child,
    started: std::time::Instant,
    /// Exits in a row within 5 s of a start.
    quick_exits: u32,
}

impl Member {
    fn new(name: String, args: Vec<String>, child: Child) -> Self {
        Member {
            name,
            args,
            child,
            started: std::time::Instant::now(),
            quick_exits: 0,
        }
    }
}

/// Where `hearth local` runs its children from and keeps their files.
struct Site {
    exe: PathBuf,
    dir: PathBuf,
    /// More than one master: Raft, and killed children are restarted.
    ha: bool,
}

impl Site {
    fn log(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.log"))
    }
}

pub async fn local(a: LocalArgs) -> Outcome {
    if a.masters == 0 || a.masters.is_multiple_of(2) {
        return Err(Failure::Usage(format!(
            "--masters {}: use 1 (no failover) or an odd number such as 3 or 5 (a majority must survive a failure)",
            a.masters
        )));
    }
    let dir = match &a.dir {
        Some(d) => {
            std::fs::create_dir_all(d).map_err(|e| {
                Failure::Request(format!("cannot create --dir {}: {e}", d.display()))
            })?;
            d.clone()
        }
        None => private_temp_dir()?,
    };
    let secret = SECRET_FILE.get_or_init(|| dir.join("secret")).clone();
    secret_file(&dir)?;
    if a.tls {
        let files = tls_files(&dir)?;
        let _ = TLS_FILES.set(files);
    }
    let token = DRILL_TOKEN.get_or_init(|| drill_token().unwrap_or_default());
    if token.is_empty() {
        return Err(Failure::Request(
            "cannot make a drill token (/dev/urandom unreadable); set HEARTH_DRILL_TOKEN".into(),
        ));
    }
    let site = Site {
        exe: std::env::current_exe()?,
        dir,
        ha: a.masters > 1,
    };
    let mut members: Vec<Member> = Vec::new();
    let started = start_all(&a, &site, &mut members).await;
    let ended = match started {
        Ok(ui) => {
            print_started(&a, &site, &ui, token, &secret);
            supervise(&site, &mut members).await
        }
        Err(e) => Err(e),
    };
    stop_all(&mut members).await;
    match ended? {
        None => Ok(()),
        Some((name, status)) => Err(Failure::Request(format!(
            "{name} exited unexpectedly ({status:?}); see {}",
            site.log(&name).display()
        ))),
    }
}

/// What a script reads from `hearth local`'s stdout, and a line for the person.
fn print_started(a: &LocalArgs, site: &Site, ui: &(String, String), token: &str, secret: &Path) {
    println!("HEARTH_MASTERS={}", ui.0);
    println!("HEARTH_UI={}", ui.1);
    // Every client (`hearth status`, `hearth submit`, the Spark plugin) needs it.
    println!("HEARTH_SECRET_FILE={}", secret.display());
    if let Some(tls) = TLS_FILES.get() {
        println!("HEARTH_TLS_CERT={}", tls.cert.display());
        println!("HEARTH_TLS_KEY={}", tls.key.display());
        println!("HEARTH_TLS_CA={}", tls.ca.display());
    }
    // `hearth drill` reads it from the environment.
    println!("HEARTH_DRILL_TOKEN={token}");
    eprintln!(
        "hearth local: {} master{} ({}), {} workers; logs and data in {}",
        a.masters,
        if site.ha { "s" } else { "" },
        if site.ha { "Raft" } else { "no persistence" },
        a.workers,
        site.dir.display()
    );
}

/// Starts every master, then every worker, into `members`; returns the masters' URL
/// and the first master's UI.
async fn start_all(
    a: &LocalArgs,
    site: &Site,
    members: &mut Vec<Member>,
) -> Result<(String, String), Failure> {
    let n = a.masters as usize;
    let ports = if site.ha {
        free_ports(2 * n)?
    } else {
        vec![0, 0]
    };
    let peers: Vec<String> = (0..n)
        .map(|i| format!("{}=127.0.0.1:{}", i + 1, ports[i]))
        .collect();
    let timeout = humantime::format_duration(a.worker_timeout).to_string();
    let mut announced = Vec::new();
    for i in 0..n {
        let mut args: Vec<String> = vec![
            "master".into(),
            "--port".into(),
            ports[i].to_string(),
            "--http-port".into(),
            ports[n + i].to_string(),
            "--worker-timeout".into(),
            timeout.clone(),
        ];
        if site.ha {
            let data = site.dir.join(format!("master-{}", i + 1));
            args.extend([
                "--recovery-mode".into(),
                "raft".into(),
                "--id".into(),
                (i + 1).to_string(),
                "--peers".into(),
                peers.join(","),
                "--recovery-dir".into(),
                data.to_string_lossy().into_owned(),
            ]);
        }
        let name = format!("master-{}", i + 1);
        let mut child = spawn(&site.exe, &args, &site.log(&name))?;
        let read = read_announced(&mut child, &["HEARTH_MASTERS", "HEARTH_UI"]).await;
        members.push(Member::new(name, args, child));
        announced.push(read?);
    }
    let masters_url = format!(
        "hearth://{}",
        announced
            .iter()
            .map(|v| v[0].trim_start_matches("hearth://").to_owned())
            .collect::<Vec<_>>()
            .join(",")
    );
    start_workers(a, site, &masters_url, members)?;
    Ok((masters_url, announced[0][1].clone()))
}

fn start_workers(
    a: &LocalArgs,
    site: &Site,
    masters_url: &str,
    members: &mut Vec<Member>,
) -> Result<(), Failure> {
    let beat = humantime::format_duration(a.worker_timeout / 4).to_string();
    // Fixed worker ports too: a worker restarted in place keeps its address, and the
    // leader then replaces the old one at once.
    let worker_ports = free_ports(a.workers as usize)?;
    for (w, port) in (1..=a.workers).zip(worker_ports) {
        let work = site.dir.join(format!("worker-{w}"));
        let args: Vec<String> = vec![
            "worker".into(),
            "--port".into(),
            port.to_string(),
            "--masters".into(),
            masters_url.to_owned(),
            "--work-dir".into(),
            work.to_string_lossy().into_owned(),
            "--cores".into(),
            a.worker_cores.to_string(),
            "--memory".into(),
            format!("{}m", a.worker_memory),
            "--heartbeat-interval".into(),
            beat.clone(),
        ];
        std::fs::create_dir_all(&work)?;
        let name = format!("worker-{w}");
        let child = spawn(&site.exe, &args, &site.log(&name))?;
        members.push(Member::new(name, args, child));
    }
    Ok(())
}

/// Runs until Ctrl-C or SIGTERM (`None`), or until a child ends it: with one master,
/// any child exiting; with Raft, a child that keeps exiting by itself at once (a port
/// taken, a broken directory). A child killed by a signal (a drill, an operator) is
/// started again on its directory.
async fn supervise(
    site: &Site,
    members: &mut [Member],
) -> Result<Option<(String, std::io::Result<std::process::ExitStatus>)>, Failure> {
    loop {
        let which = {
            let waits = members
                .iter_mut()
                .enumerate()
                .map(|(i, m)| Box::pin(async move { (i, m.child.wait().await) }));
            tokio::select! {
                _ = shutdown_signal() => None,
                first = first_of(waits) => Some(first),
            }
        };
        let Some((i, status)) = which else {
            return Ok(None);
        };
        let m = &mut members[i];
        let name = m.name.clone();
        if !site.ha {
            return Ok(Some((name, status)));
        }
        eprintln!("hearth local: {name} exited ({status:?}); restarting it");
        tracing::warn!(%name, ?status, "exited; restarting it on its directory");
        let by_signal = status
            .as_ref()
            .is_ok_and(|s| std::os::unix::process::ExitStatusExt::signal(s).is_some());
        if m.started.elapsed() < Duration::from_secs(5) && !by_signal {
            m.quick_exits += 1;
        } else {
            m.quick_exits = 0;
        }
        if m.quick_exits >= 3 {
            return Ok(Some((name, status)));
        }
        m.child = spawn_appending(&site.exe, &m.args, &site.log(&name))?;
        m.started = std::time::Instant::now();
    }
}

/// Waits for the first of several futures (a tiny `select_all`, to avoid a dependency).
async fn first_of<F: std::future::Future + Unpin>(futs: impl Iterator<Item = F>) -> F::Output {
    let mut futs: Vec<F> = futs.collect();
    std::future::poll_fn(|cx| {
        for f in futs.iter_mut() {
            if let std::task::Poll::Ready(v) = std::pin::Pin::new(f).poll(cx) {
                return std::task::Poll::Ready(v);
            }
        }
        std::task::Poll::Pending
    })
    .await
}
