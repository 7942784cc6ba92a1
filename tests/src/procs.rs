//! Looking at processes the way an operator would: through `/proc`, not by asking hearth.

use std::path::PathBuf;

/// A live (not zombie) process.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// A process's resident memory (KiB) and CPU time (user + system, in clock ticks).
#[derive(Clone, Copy, Debug)]
pub struct Usage {
    pub rss_kb: u64,
    pub cpu_ticks: u64,
}

/// `pid`'s usage now, from `/proc/<pid>/status` (VmRSS) and `/proc/<pid>/stat` (utime,
/// stime).
pub fn usage(pid: u32) -> Option<Usage> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised name: state is field 3, utime 14, stime 15.
    let rest: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let field = |n: usize| rest.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    Some(Usage {
        rss_kb,
        cpu_ticks: field(14)? + field(15)?,
    })
}

/// The whole machine's CPU time from `/proc/stat`, in clock ticks summed over every CPU:
/// (busy, all). Busy is everything but idle and iowait.
pub fn machine_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = cpu
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is within user).
    let all: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4)?;
    Some((all - idle, all))
}

/// Clock ticks per second (`utime` and `stime` are counted in them).
pub fn ticks_per_s() -> f64 {
    // SAFETY: sysconf reads a constant of the running system.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// One process's view: pid, argv and environment.
#[derive(Clone, Debug)]
pub struct ProcInfo {
    pub pid: u32,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
}

impl ProcInfo {
    pub fn env(&self, key: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The process guard hearth wraps every launched command in.
    pub fn is_guard(&self) -> bool {
        self.argv.get(1).map(String::as_str) == Some("__guard")
    }
}

fn split_nul(bytes: &[u8]) -> Vec<String> {
    bytes
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

/// Every live process whose environment we may read.
pub fn all() -> Vec<ProcInfo> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    let mut out = Vec::new();
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let base = PathBuf::from(format!("/proc/{pid}"));
        let (Ok(cmdline), Ok(environ)) = (
            std::fs::read(base.join("cmdline")),
            std::fs::read(base.join("environ")),
        ) else {
            continue;
        };
        if !alive(pid) {
            continue;
        }
        let env = split_nul(&environ)
            .into_iter()
            .filter_map(|kv| {
                kv.split_once('=')
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
            })
            .collect();
        out.push(ProcInfo {
            pid,
            argv: split_nul(&cmdline),
            env,
        });
    }
    out
}

/// Live processes (guards included) whose environment has `key=value`.
pub fn with_env(key: &str, value: &str) -> Vec<ProcInfo> {
    all()
        .into_iter()
        .filter(|p| p.env(key) == Some(value))
        .collect()
}

/// Live processes (guards included) of `app` in the cluster whose master is `master`
/// (`hearth://host:port`): app ids are only unique within a cluster, and tests run
/// several clusters at once.
pub fn of_app(master: &str, app: &str) -> Vec<ProcInfo> {
    let addr = master.trim_start_matches("hearth://");
    with_env("HEARTH_APP_ID", app)
        .into_iter()
        .filter(|p| p.env("HEARTH_MASTERS").is_some_and(|m| m.contains(addr)))
        .collect()
}

/// The pids of `app`'s live processes other than guards (its driver and executors),
/// sorted.
pub fn app_pids(master: &str, app: &str) -> Vec<u32> {
    let mut p: Vec<u32> = of_app(master, app)
        .into_iter()
        .filter(|p| !p.is_guard())
        .map(|p| p.pid)
        .collect();
    p.sort();
    p
}

/// Live processes whose environment variable `key` starts with `prefix`.
pub fn with_env_prefix(key: &str, prefix: &str) -> Vec<ProcInfo> {
    all()
        .into_iter()
        .filter(|p| p.env(key).is_some_and(|v| v.starts_with(prefix)))
        .collect()
}
