//! The process guard: a tiny parent between the worker and every command it runs, so
//! that nothing a worker started can outlive it, even when the worker is SIGKILLed and
//! even for the command's own children.
//!
//! The worker spawns `GUARD... [--cgroup DIR] [--status-fd N] [--log-dir DIR
//! [--log-max-file-size BYTES] [--log-max-files N]] -- PROGRAM ARGS...` as the leader of
//! a new process group G (`process_group(0)`); the command the guard starts stays in G.
//! The guard:
//! 1. handles SIGUSR1 with `kill(0, SIGKILL)` (its whole group, itself included; the
//!    handler is async-signal-safe) and asks for SIGUSR1 when its parent dies
//!    (`PR_SET_PDEATHSIG`), then checks that the parent did not die before that (the
//!    worker passes its pid in [`PARENT_ENV`]);
//! 2. handles SIGTERM with a no-op, so a `kill(-G, SIGTERM)` stops the command but leaves
//!    the guard alive to report its exit. Handlers reset to the default on `exec`, so the
//!    command gets the ordinary SIGTERM (SIG_IGN would survive `exec`; it is not used);
//! 3. joins the cgroup `DIR` (writes its pid to `DIR/cgroup.procs`) when `--cgroup` is
//!    given, so the command is held to that cgroup's `memory.max`; failing to join is
//!    logged to stderr and does not stop the launch;
//! 4. with `--log-dir`, opens `DIR/stdout` and `DIR/stderr` (rotated by size, see
//!    [`crate::logs`]), gives the command a pipe for each and copies them on a thread of
//!    its own, so the command never waits on rotation; the guard's own messages go to
//!    `DIR/stderr` too. Without it the command inherits the guard's stdout and stderr
//!    (`hearth submit`'s client-mode driver);
//! 5. starts the command and writes `ok PID` (or `error WHY` when it cannot be started)
//!    on the status descriptor, then closes it;
//! 6. waits for the command, copies what it left in its pipes, and exits with its exit
//!    code, or 128 + the signal that ended it.
//!
//! The pipes live exactly as long as the guard, which lives exactly as long as the
//! command (and dies with the worker): a worker that restarts or crashes takes its
//! processes with it, as it always did, and never leaves one blocked on a full pipe.
//!
//! Exit codes of its own: 2 for bad usage, 126 when the worker was already gone, 127
//! when the command (or its log files) could not be started.

use crate::logs::{self, LogLimits, RotatingFile, SharedFile};
use rustix::process::{self, Pid, Signal};
use std::ffi::c_int;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};

/// Environment variable in which the worker passes its pid to the guard (and which the
/// guard removes before starting the command).
pub const PARENT_ENV: &str = "HEARTH_GUARD_PARENT";

const USAGE: &str = "usage: hearth-guard [--cgroup DIR] [--status-fd N] [--log-dir DIR \
                     [--log-max-file-size BYTES] [--log-max-files N]] -- PROGRAM [ARGS...]";

/// What the guard was asked to do.
#[derive(Debug, PartialEq, Eq)]
struct Args {
    cgroup: Option<PathBuf>,
    status_fd: Option<c_int>,
    log_dir: Option<PathBuf>,
    limits: LogLimits,
    argv: Vec<String>,
}

impl Default for Args {
    fn default() -> Self {
        Args {
            cgroup: None,
            status_fd: None,
            log_dir: None,
            limits: LogLimits::DEFAULT,
            argv: Vec::new(),
        }
    }
}

/// Runs the guard and exits. `args` are the arguments after the program name (and after
/// the `__guard` subcommand of the `hearth` binary): `[--cgroup DIR] [--status-fd N] --
/// PROGRAM [ARGS...]`.
pub fn main(args: &[String]) -> ! {
    let args = match parse(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("hearth-guard: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    std::process::exit(guard(args))
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut out = Args::default();
    let mut it = args.iter();
    loop {
        match it.next().map(String::as_str) {
            Some("--cgroup") => {
                let dir = it.next().ok_or("--cgroup needs a directory")?;
                out.cgroup = Some(PathBuf::from(dir));
            }
            Some("--status-fd") => {
                let fd = it.next().ok_or("--status-fd needs a descriptor number")?;
                let fd = fd
                    .parse::<c_int>()
                    .ok()
                    .filter(|fd| *fd > 2)
                    .ok_or_else(|| format!("--status-fd {fd:?} is not a descriptor above 2"))?;
                out.status_fd = Some(fd);
            }
            Some("--log-dir") => {
                let dir = it.next().ok_or("--log-dir needs a directory")?;
                out.log_dir = Some(PathBuf::from(dir));
            }
            Some("--log-max-file-size") => {
                let n = it
                    .next()
                    .ok_or("--log-max-file-size needs a number of bytes")?;
                out.limits.max_file_bytes =
                    n.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                        format!("--log-max-file-size {n:?} is not a size in bytes")
                    })?;
            }
            Some("--log-max-files") => {
                let n = it.next().ok_or("--log-max-files needs a number")?;
                out.limits.max_files = n
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("--log-max-files {n:?} is not a number above 0"))?;
            }
            Some("--") => break,
            Some(other) => return Err(format!("unexpected argument {other:?}")),
            None => return Err("missing `-- PROGRAM [ARGS...]`".to_owned()),
        }
    }
    out.argv = it.cloned().collect();
    if out.argv.is_empty() {
        return Err("no program after `--`".to_owned());
    }
    Ok(out)
}

fn guard(args: Args) -> i32 {
    // SAFETY: the worker hands this descriptor to the guard and nothing else in this
    // process uses it; taking ownership closes it on drop.
    let mut status = args.status_fd.map(|fd| unsafe { File::from_raw_fd(fd) });
    if let Some(f) = &status {
        set_cloexec(f); // the command must not inherit it
    }
    let logs = match args.log_dir.as_deref().map(|d| Logs::open(d, args.limits)) {
        None => None,
        Some(Ok(logs)) => Some(logs),
        Some(Err(msg)) => {
            eprintln!("hearth-guard: {msg}");
            tell(&mut status, &format!("error {msg}"));
            return 127;
        }
    };
    let note = |msg: &str| match &logs {
        Some(l) => logs::say(&l.stderr, msg),
        None => eprintln!("hearth-guard: {msg}"),
    };
    if let Err(e) = arm_parent_death() {
        let msg = format!("not starting {:?}: {e}", args.argv[0]);
        note(&msg);
        tell(&mut status, &format!("error {msg}"));
        return 126;
    }
    if let Some(dir) = &args.cgroup {
        if let Err(e) = std::fs::write(dir.join("cgroup.procs"), std::process::id().to_string()) {
            note(&format!(
                "memory limit not applied: cannot join cgroup {}: {e}",
                dir.display()
            ));
        }
    }
    let mut command = Command::new(&args.argv[0]);
    command.args(&args.argv[1..]).env_remove(PARENT_ENV);
    if logs.is_some() {
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
    }
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => {
            let msg = format!("cannot start {:?}: {e}", args.argv[0]);
            note(&msg);
            tell(&mut status, &format!("error {msg}"));
            return 127;
        }
    };
    // Copying starts before the worker hears of the start: nothing the command writes
    // waits on the worker.
    let copier = logs.as_ref().map(|l| l.start_copying(&mut child));
    tell(&mut status, &format!("ok {}", child.id()));
    drop(status);
    let code = match child.wait() {
        Ok(st) => exit_code(st),
        Err(e) => {
            note(&format!("waiting for the command failed: {e}"));
            1
        }
    };
    if let (Some(logs), Some(copier)) = (&logs, copier) {
        logs.finish(copier);
    }
    code
}

/// The command's rotated stdout and stderr.
struct Logs {
    stdout: SharedFile,
    stderr: SharedFile,
}

/// The copying thread, and the pipe whose closing tells it the command exited.
struct Copier {
    thread: Option<std::thread::JoinHandle<()>>,
    done: Option<io::PipeWriter>,
}

impl Logs {
    /// Opens both files, then points the guard's own stderr (the worker gives it the
    /// `stderr` file, for usage errors) at /dev/null: it would keep a rotated-away file
    /// on disk after it was removed.
    fn open(dir: &Path, limits: LogLimits) -> Result<Logs, String> {
        let open = |name: &str| {
            RotatingFile::open(dir, name, limits)
                .map(|f| Arc::new(Mutex::new(f)))
                .map_err(|e| format!("cannot open {}: {e}", dir.join(name).display()))
        };
        let logs = Logs {
            stdout: open("stdout")?,
            stderr: open("stderr")?,
        };
        if let Ok(null) = File::options().write(true).open("/dev/null") {
            let _ = rustix::stdio::dup2_stderr(&null);
        }
        Ok(logs)
    }

    fn start_copying(&self, child: &mut std::process::Child) -> Copier {
        let mut streams: Vec<(OwnedFd, SharedFile)> = Vec::new();
        if let Some(out) = child.stdout.take() {
            streams.push((out.into(), Arc::clone(&self.stdout)));
        }
        if let Some(err) = child.stderr.take() {
            streams.push((err.into(), Arc::clone(&self.stderr)));
        }
        // Close-on-exec: only this process holds either end.
        let (done_r, done_w) = match io::pipe() {
            Ok(p) => p,
            Err(e) => {
                logs::say(&self.stderr, &format!("cannot copy the output: {e}"));
                return Copier {
                    thread: None,
                    done: None,
                };
            }
        };
        let thread = std::thread::Builder::new()
            .name("copy".into())
            .spawn(move || logs::copy(streams, done_r.into()));
        match thread {
            Ok(t) => Copier {
                thread: Some(t),
                done: Some(done_w),
            },
            Err(e) => {
                logs::say(&self.stderr, &format!("cannot copy the output: {e}"));
                Copier {
                    thread: None,
                    done: None,
                }
            }
        }
    }

    /// After the command exited: lets the copier take what is left, and says how much
    /// output could not be written, if any.
    fn finish(&self, mut copier: Copier) {
        drop(copier.done.take());
        if let Some(t) = copier.thread.take() {
            let _ = t.join();
        }
        for (name, f) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            let dropped = f.lock().unwrap_or_else(|p| p.into_inner()).dropped();
            if dropped > 0 {
                logs::say(
                    &self.stderr,
                    &format!("{dropped} bytes of the command's {name} could not be written"),
                );
            }
        }
    }
}

/// The exit code of a process as a shell reports it: its code, or 128 + its signal.
pub(crate) fn exit_code(status: ExitStatus) -> i32 {
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

fn tell(status: &mut Option<File>, line: &str) {
    if let Some(f) = status {
        // The worker reads this; if it is gone there is nobody to tell.
        let _ = writeln!(f, "{line}");
    }
}

fn set_cloexec(f: &File) {
    let _ = rustix::io::fcntl_setfd(f, rustix::io::FdFlags::CLOEXEC);
}

extern "C" fn kill_own_group(_: c_int) {
    // kill(2), a plain system call: async-signal-safe.
    let _ = process::kill_current_process_group(Signal::KILL);
}

extern "C" fn ignore_signal(_: c_int) {}

fn set_handler(signal: c_int, handler: extern "C" fn(c_int)) -> io::Result<()> {
    // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value; the handlers
    // only call async-signal-safe functions.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler as usize;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(signal, &action, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Installs the handlers and the parent-death signal; fails when the parent is already
/// gone (it died between forking us and the `prctl`).
fn arm_parent_death() -> io::Result<()> {
    let parent = || Pid::as_raw(process::getppid());
    let expected = std::env::var(PARENT_ENV)
        .ok()
        .and_then(|p| p.parse::<i32>().ok())
        .unwrap_or_else(parent);
    set_handler(Signal::USR1.as_raw(), kill_own_group)?;
    set_handler(Signal::TERM.as_raw(), ignore_signal)?;
    process::set_parent_process_death_signal(Some(Signal::USR1))?;
    if parent() != expected {
        return Err(io::Error::other(format!(
            "the worker (pid {expected}) exited before the command started"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_options_and_command() {
        let a = parse(&strings(&[
            "--cgroup",
            "/cg/x",
            "--status-fd",
            "3",
            "--",
            "sh",
            "-c",
            "echo --",
        ]))
        .unwrap();
        assert_eq!(a.cgroup, Some(PathBuf::from("/cg/x")));
        assert_eq!(a.status_fd, Some(3));
        assert_eq!(a.argv, strings(&["sh", "-c", "echo --"]));
        assert_eq!(parse(&strings(&["--", "true"])).unwrap().argv, ["true"]);
        let l = parse(&strings(&[
            "--log-dir",
            "/w/d",
            "--log-max-file-size",
            "1000",
            "--log-max-files",
            "3",
            "--",
            "x",
        ]))
        .unwrap();
        assert_eq!(l.log_dir, Some(PathBuf::from("/w/d")));
        assert_eq!(
            l.limits,
            LogLimits {
                max_file_bytes: 1000,
                max_files: 3
            }
        );
        assert_eq!(
            parse(&strings(&["--", "x"])).unwrap().limits,
            LogLimits::DEFAULT
        );
    }

    #[test]
    fn refuses_bad_usage() {
        assert!(parse(&strings(&["sh"])).unwrap_err().contains("unexpected"));
        assert!(parse(&strings(&["--"])).unwrap_err().contains("no program"));
        assert!(parse(&strings(&[])).unwrap_err().contains("missing"));
        assert!(parse(&strings(&["--status-fd", "1", "--", "x"])).is_err());
        assert!(parse(&strings(&["--cgroup"])).is_err());
        assert!(parse(&strings(&["--log-max-files", "0", "--", "x"])).is_err());
        assert!(parse(&strings(&["--log-max-file-size", "10m", "--", "x"])).is_err());
    }
}
