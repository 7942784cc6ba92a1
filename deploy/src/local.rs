//! `hearth local`: a whole cluster on this machine as real processes — masters and
//! workers are this same binary, started as children on free ports with their data under
//! `--dir`. Prints `HEARTH_MASTERS=...` and `HEARTH_UI=...`; Ctrl-C or SIGTERM stops
//! everything. Children also die if this process is killed (parent-death signal), and
//! every executor and driver dies with its worker.

use crate::servers::shutdown_signal;
use crate::units::{parse_cores, parse_duration, parse_mib};
use crate::{Failure, Outcome};
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

#[derive(Args)]
pub struct LocalArgs {
    /// Masters to start. Only 1 until Raft HA lands (then the default becomes 3).
    #[arg(long, default_value_t = 1)]
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
}

fn spawn(exe: &Path, args: &[String], log: &Path) -> Result<Child, Failure> {
    let log_file = std::fs::File::create(log)
        .map_err(|e| Failure::Request(format!("cannot create {}: {e}", log.display())))?;
    let mut cmd = Command::new(exe);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file);
    // SAFETY: prctl and getppid are async-signal-safe; nothing else runs in the child.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
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

async fn stop_all(children: &mut [(String, Child)]) {
    for (_, c) in children.iter() {
        if let Some(pid) = c.id() {
            // SAFETY: kill(2) on our own child.
            unsafe { libc::kill(pid as i32, libc::SIGTERM) };
        }
    }
    for (name, c) in children.iter_mut() {
        if tokio::time::timeout(Duration::from_secs(10), c.wait())
            .await
            .is_err()
        {
            tracing::warn!(%name, "did not stop within 10 s; killing it");
            let _ = c.kill().await;
        }
    }
}

pub async fn local(a: LocalArgs) -> Outcome {
    if a.masters != 1 {
        return Err(Failure::Usage(format!(
            "--masters {}: several masters need Raft HA, which this build does not have yet; use --masters 1",
            a.masters
        )));
    }
    let dir = match a.dir {
        Some(d) => d,
        None => std::env::temp_dir().join(format!("hearth-local-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| Failure::Request(format!("cannot create --dir {}: {e}", dir.display())))?;
    let exe = std::env::current_exe()?;
    let timeout = humantime::format_duration(a.worker_timeout).to_string();
    let beat = humantime::format_duration(a.worker_timeout / 4).to_string();
    let master_args: Vec<String> = [
        "master",
        "--port",
        "0",
        "--http-port",
        "0",
        "--worker-timeout",
        &timeout,
    ]
    .map(String::from)
    .to_vec();
    let mut master = spawn(&exe, &master_args, &dir.join("master-1.log"))?;
    let announced = read_announced(&mut master, &["HEARTH_MASTERS", "HEARTH_UI"]).await?;
    let mut children = vec![("master-1".to_owned(), master)];
    for n in 1..=a.workers {
        let work = dir.join(format!("worker-{n}"));
        let args: Vec<String> = vec![
            "worker".into(),
            "--masters".into(),
            announced[0].clone(),
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
        match spawn(&exe, &args, &dir.join(format!("worker-{n}.log"))) {
            Ok(c) => children.push((format!("worker-{n}"), c)),
            Err(e) => {
                stop_all(&mut children).await;
                return Err(e);
            }
        }
    }
    println!("HEARTH_MASTERS={}", announced[0]);
    println!("HEARTH_UI={}", announced[1]);
    eprintln!(
        "hearth local: {} master, {} workers; logs and data in {}",
        a.masters,
        a.workers,
        dir.display()
    );
    let ended = {
        let waits = children.iter_mut().map(|(name, c)| {
            let name = name.clone();
            Box::pin(async move { (name, c.wait().await) })
        });
        tokio::select! {
            _ = shutdown_signal() => None,
            first = first_of(waits) => Some(first),
        }
    };
    stop_all(&mut children).await;
    match ended {
        None => Ok(()),
        Some((name, status)) => Err(Failure::Request(format!(
            "{name} exited unexpectedly ({status:?}); see {}",
            dir.join(format!("{name}.log")).display()
        ))),
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
