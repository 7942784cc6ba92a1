//! From a master's launch ([`ExecutorLaunch`], [`DriverLaunch`], as hearth-core defines
//! them) to a [`Plan`]: where the process runs, with which environment (README.md, "What
//! a launched process gets"), and whether it is supervised (drivers: the `supervise` flag
//! of `LaunchDriver`).

use crate::error::WorkerError;
use crate::table::ProcId;
use hearth_core::{DriverLaunch, ExecutorLaunch, ProcessSpec};
use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};

/// Everything needed to run (and re-run) one process.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    pub id: ProcId,
    /// Its own directory, holding `stdout` and `stderr`.
    pub dir: PathBuf,
    pub argv: Vec<String>,
    /// The spec's env plus the `HEARTH_*` variables.
    pub env: BTreeMap<String, String>,
    pub memory_mb: u64,
    /// A driver restarted on a non-zero exit.
    pub supervise: bool,
    /// Drivers: `host:HEARTH_DRIVER_PORT`, reported with RUNNING.
    pub driver_url: Option<String>,
}

/// What every plan of this worker shares.
pub(crate) struct PlanContext {
    /// Absolute.
    pub work_dir: PathBuf,
    /// `hearth://h:p,h:p`.
    pub masters_url: String,
    pub host: String,
}

impl PlanContext {
    pub fn executor(&self, l: ExecutorLaunch) -> Result<Plan, WorkerError> {
        check_argv(&l.command)?;
        let dir = self
            .work_dir
            .join(file_name("app_id", l.app.as_str())?)
            .join(l.executor.to_string());
        let mut env = self.base_env(&l.command, &dir, l.cores, l.memory_mb);
        env.insert("HEARTH_APP_ID".into(), l.app.0.clone());
        env.insert("HEARTH_EXECUTOR_ID".into(), l.executor.to_string());
        env.insert("HEARTH_DRIVER_URL".into(), l.driver_url);
        Ok(Plan {
            id: ProcId::Executor {
                app: l.app,
                executor: l.executor,
            },
            dir,
            argv: l.command.argv,
            env,
            memory_mb: l.memory_mb,
            supervise: false,
            driver_url: None,
        })
    }

    pub fn driver(&self, l: DriverLaunch) -> Result<Plan, WorkerError> {
        check_argv(&l.command)?;
        let dir = self
            .work_dir
            .join(file_name("driver_id", l.driver.as_str())?);
        let port = free_port(&self.host);
        let mut env = self.base_env(&l.command, &dir, l.cores, l.memory_mb);
        env.insert("HEARTH_APP_ID".into(), l.app.0.clone());
        env.insert("HEARTH_DRIVER_ID".into(), l.driver.0.clone());
        env.insert("HEARTH_DRIVER_PORT".into(), port.to_string());
        Ok(Plan {
            id: ProcId::Driver(l.driver),
            dir,
            argv: l.command.argv,
            env,
            memory_mb: l.memory_mb,
            supervise: l.supervise,
            driver_url: Some(format!("{}:{port}", self.host)),
        })
    }

    fn base_env(
        &self,
        command: &ProcessSpec,
        dir: &Path,
        cores: u32,
        memory_mb: u64,
    ) -> BTreeMap<String, String> {
        let mut env = command.env.clone();
        env.insert("HEARTH_CORES".into(), cores.to_string());
        env.insert("HEARTH_MEMORY_MB".into(), memory_mb.to_string());
        env.insert("HEARTH_MASTERS".into(), self.masters_url.clone());
        env.insert("HEARTH_HOST".into(), self.host.clone());
        env.insert("HEARTH_WORK_DIR".into(), dir.display().to_string());
        env
    }
}

fn check_argv(command: &ProcessSpec) -> Result<(), WorkerError> {
    match command.argv.first() {
        Some(p) if !p.is_empty() => Ok(()),
        _ => Err(WorkerError::Invalid {
            field: "command.argv",
            reason: "no program to run".into(),
        }),
    }
}

/// An id used as a directory name must be one plain file name.
pub(crate) fn file_name<'a>(field: &'static str, id: &'a str) -> Result<&'a str, WorkerError> {
    let plain = id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if id.is_empty() || id == "." || id == ".." || !plain {
        return Err(WorkerError::Invalid {
            field,
            reason: format!("{id:?} is not a plain name (letters, digits, '-', '_', '.')"),
        });
    }
    Ok(id)
}

/// A port that was free on `host` a moment ago (bound to port 0 and released); 0 if
/// no port could be bound at all.
fn free_port(host: &str) -> u16 {
    TcpListener::bind((host, 0))
        .or_else(|_| TcpListener::bind(("0.0.0.0", 0)))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_core::{AppId, DriverId, WorkerId};

    fn ctx() -> PlanContext {
        PlanContext {
            work_dir: PathBuf::from("/w"),
            masters_url: "hearth://a:1,b:2".into(),
            host: "127.0.0.1".into(),
        }
    }

    fn spec(env: &[(&str, &str)]) -> ProcessSpec {
        ProcessSpec {
            argv: vec!["sh".into()],
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn executor_env_and_dir() {
        let p = ctx()
            .executor(ExecutorLaunch {
                worker: WorkerId::from("worker-1"),
                app: AppId::from("app-1"),
                executor: 3,
                cores: 2,
                memory_mb: 512,
                command: spec(&[("A", "b"), ("HEARTH_CORES", "99")]),
                driver_url: "h:9".into(),
            })
            .unwrap();
        assert_eq!(p.dir, PathBuf::from("/w/app-1/3"));
        let want = [
            ("A", "b"),
            ("HEARTH_APP_ID", "app-1"),
            ("HEARTH_CORES", "2"),
            ("HEARTH_DRIVER_URL", "h:9"),
            ("HEARTH_EXECUTOR_ID", "3"),
            ("HEARTH_HOST", "127.0.0.1"),
            ("HEARTH_MASTERS", "hearth://a:1,b:2"),
            ("HEARTH_MEMORY_MB", "512"),
            ("HEARTH_WORK_DIR", "/w/app-1/3"),
        ];
        let got: Vec<_> = p
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(got, want);
        assert!(!p.supervise);
    }

    #[test]
    fn driver_gets_a_port_and_the_supervise_flag() {
        let p = ctx()
            .driver(DriverLaunch {
                worker: WorkerId::from("worker-1"),
                driver: DriverId::from("driver-1"),
                app: AppId::from("app-1"),
                cores: 1,
                memory_mb: 256,
                supervise: true,
                command: spec(&[]),
            })
            .unwrap();
        assert!(p.supervise);
        let port = &p.env["HEARTH_DRIVER_PORT"];
        assert_ne!(port, "0");
        assert_eq!(p.driver_url, Some(format!("127.0.0.1:{port}")));
        assert_eq!(p.env["HEARTH_DRIVER_ID"], "driver-1");
        assert!(!p.env.contains_key("HEARTH_EXECUTOR_ID"));
    }

    #[test]
    fn refuses_ids_that_are_not_plain_names_and_empty_commands() {
        for bad in ["", "..", "a/b", "../x"] {
            let r = ctx().executor(ExecutorLaunch {
                worker: WorkerId::from("worker-1"),
                app: AppId::from(bad),
                executor: 0,
                cores: 1,
                memory_mb: 1,
                command: spec(&[]),
                driver_url: String::new(),
            });
            assert!(r.is_err(), "{bad:?} accepted");
        }
        let mut empty = spec(&[]);
        empty.argv.clear();
        let r = ctx().driver(DriverLaunch {
            worker: WorkerId::from("worker-1"),
            driver: DriverId::from("driver-1"),
            app: AppId::from("app-1"),
            cores: 1,
            memory_mb: 1,
            supervise: false,
            command: empty,
        });
        assert!(r.unwrap_err().to_string().contains("no program"));
    }
}
