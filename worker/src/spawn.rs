//! Starting guards from one long-lived thread, and signalling their process groups.
//!
//! `PR_SET_PDEATHSIG` fires when the *thread* that forked the guard exits, not the
//! process. Runtime threads come and go (blocking-pool threads are reaped when idle,
//! `block_in_place` retires a worker thread), so every guard is forked by the dedicated
//! `hearth-spawner` thread, which lives exactly as long as the [`Spawner`]: when the
//! worker's `run` ends (or the process dies), it ends and every guard left kills its
//! group.

use crate::guard::PARENT_ENV;
use rustix::io::Errno;
use rustix::process::{kill_process_group, test_kill_process_group, Pid, Signal};
use std::collections::BTreeMap;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::mpsc;
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;
use tokio::process::Child;
use tokio::sync::oneshot;

/// The descriptor on which a guard reports whether it started the command.
pub(crate) const STATUS_FD: i32 = 3;

/// One guard to start.
pub(crate) struct SpawnRequest {
    /// The guard's full argv (guard prefix, options, `--`, the command).
    pub argv: Vec<String>,
    /// Variables to set (on top of the worker's environment minus `remove_env`).
    pub env: BTreeMap<String, String>,
    /// Inherited variables to drop.
    pub remove_env: Vec<String>,
    pub cwd: PathBuf,
    /// The guard's own stdout and stderr (with `--log-dir`, the command's are pipes the
    /// guard copies into rotated files).
    pub stdout: Stdio,
    pub stderr: Stdio,
}

/// A started guard: leader of process group `pgid`.
pub(crate) struct Spawned {
    pub child: Child,
    pub pgid: i32,
    status: pipe::Receiver,
}

/// What the guard said about starting the command.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Handshake {
    /// The command runs with this pid.
    Started(u32),
    /// The guard could not start it, and says why.
    Failed(String),
    /// The guard closed the status pipe without a word (it died first).
    Silent,
}

impl Spawned {
    /// Waits for the guard's word on the status pipe. Cancel-safe enough: dropping it
    /// loses only the guard's message.
    pub async fn handshake(&mut self) -> Handshake {
        let mut text = String::new();
        if let Err(e) = self.status.read_to_string(&mut text).await {
            return Handshake::Failed(format!("reading the guard's status pipe: {e}"));
        }
        parse_handshake(&text)
    }
}

fn parse_handshake(text: &str) -> Handshake {
    let line = text.lines().next().unwrap_or("");
    if let Some(pid) = line.strip_prefix("ok ") {
        return Handshake::Started(pid.trim().parse().unwrap_or(0));
    }
    if let Some(why) = line.strip_prefix("error ") {
        return Handshake::Failed(why.to_owned());
    }
    Handshake::Silent
}

type Job = (SpawnRequest, oneshot::Sender<io::Result<Spawned>>);

/// A handle on the spawner thread.
pub(crate) struct Spawner {
    jobs: mpsc::Sender<Job>,
}

impl Spawner {
    /// Starts the thread; guards it spawns are registered with `runtime`.
    pub fn start(runtime: tokio::runtime::Handle) -> io::Result<Spawner> {
        let (jobs, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("hearth-spawner".into())
            .spawn(move || {
                let _entered = runtime.enter();
                // Ends when the Spawner is dropped; guards still running then get their
                // parent-death signal and kill their groups.
                for (request, reply) in rx {
                    let _ = reply.send(spawn_now(request));
                }
            })?;
        Ok(Spawner { jobs })
    }

    /// Starts a guard (on the spawner thread).
    pub async fn spawn(&self, request: SpawnRequest) -> io::Result<Spawned> {
        let (reply, answer) = oneshot::channel();
        let gone = || io::Error::other("the spawner thread is gone");
        self.jobs.send((request, reply)).map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

fn spawn_now(req: SpawnRequest) -> io::Result<Spawned> {
    let (tx, rx) = pipe::pipe()?;
    let tx: OwnedFd = tx.into_blocking_fd()?;
    let raw = tx.as_raw_fd();
    let (program, args) = req
        .argv
        .split_first()
        .ok_or_else(|| io::Error::other("empty guard command"))?;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .current_dir(&req.cwd)
        .stdin(Stdio::null())
        .stdout(req.stdout)
        .stderr(req.stderr)
        .process_group(0)
        .kill_on_drop(false);
    for k in &req.remove_env {
        cmd.env_remove(k);
    }
    cmd.envs(&req.env)
        .env(PARENT_ENV, std::process::id().to_string());
    // SAFETY: runs in the forked child before exec and calls only async-signal-safe
    // functions (dup2, fcntl) on descriptors that exist in the child.
    unsafe {
        cmd.pre_exec(move || {
            let ok = if raw == STATUS_FD {
                libc::fcntl(raw, libc::F_SETFD, 0) != -1
            } else {
                libc::dup2(raw, STATUS_FD) != -1
            };
            if ok {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        });
    }
    let child = cmd.spawn()?;
    drop(tx); // only the guard holds the write end now: EOF when it closes or dies
    let pgid = child
        .id()
        .and_then(|p| i32::try_from(p).ok())
        .ok_or_else(|| io::Error::other("the guard has no pid"))?;
    Ok(Spawned {
        child,
        pgid,
        status: rx,
    })
}

/// Sends `signal` to every process of group `pgid`. False when none is left.
pub(crate) fn signal_group(pgid: i32, signal: Signal) -> bool {
    Pid::from_raw(pgid).is_some_and(|group| kill_process_group(group, signal).is_ok())
}

/// Whether a live (not zombie) process is left in group `pgid`. Zombies are skipped: an
/// orphan's zombie waits for whoever reaps orphans here, and no signal can hurry it.
pub(crate) fn group_alive(pgid: i32) -> bool {
    let Some(group) = Pid::from_raw(pgid) else {
        return false;
    };
    if matches!(test_kill_process_group(group), Err(e) if e != Errno::PERM) {
        return false;
    }
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return true;
    };
    dir.flatten().any(|entry| {
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        matches!(parse_stat(&stat), Some((state, group)) if group == pgid && state != 'Z' && state != 'X')
    })
}

/// (state, process group) from a `/proc/PID/stat` line.
pub(crate) fn parse_stat(stat: &str) -> Option<(char, i32)> {
    // "pid (comm) S ppid pgrp ...": comm may hold spaces and parentheses.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let pgrp = fields.nth(1)?.parse().ok()?;
    Some((state, pgrp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_guard_handshake() {
        assert_eq!(parse_handshake("ok 42\n"), Handshake::Started(42));
        assert_eq!(
            parse_handshake("error cannot start \"x\": No such file\n"),
            Handshake::Failed("cannot start \"x\": No such file".into())
        );
        assert_eq!(parse_handshake(""), Handshake::Silent);
    }

    #[test]
    fn reads_state_and_group_from_proc_stat() {
        assert_eq!(parse_stat("42 (a (b) c) S 1 40 40 0 -1"), Some(('S', 40)));
        assert_eq!(parse_stat("garbage"), None);
    }
}
