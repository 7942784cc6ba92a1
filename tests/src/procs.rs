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
