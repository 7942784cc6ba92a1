//! [`SleepingApp`]: the app drills, benchmarks and tests submit to watch placements — its
//! driver and executors only sleep — described once and rendered either as what the
//! client library registers or as the arguments of `hearth submit`.

use hearth_core::{AppDescription, DriverDescription, ProcessSpec};

/// Where the driver runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeployMode {
    /// Beside the client (`hearth submit` runs it); the app has no driver description.
    Client,
    /// On a worker, placed by the leader.
    Cluster,
}

/// An app whose driver and executors sleep (or, [`exiting`](Self::exiting), exit at
/// once). Built from [`cluster`](Self::cluster) or [`client`](Self::client), then
/// adjusted; every executor has one core unless [`executor_cores`](Self::executor_cores)
/// says otherwise.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SleepingApp {
    /// `None`: what `hearth submit` names it, the driver program's file name.
    pub name: Option<String>,
    pub mode: DeployMode,
    /// Cluster mode: relaunch the driver if it fails or its worker is lost.
    pub supervise: bool,
    pub driver_memory_mb: u64,
    /// `None`: one executor per worker with every core it is given.
    pub executor_cores: Option<u32>,
    pub executor_memory_mb: u64,
    /// The cores the app holds at once; with one-core executors, its executors.
    pub total_cores: Option<u32>,
    /// How long the driver and executors sleep, in seconds; `None`: they run `true`.
    pub sleep_secs: Option<u64>,
}

impl SleepingApp {
    /// A cluster-mode app with one one-core executor, 64 MiB each, sleeping 1000 s.
    pub fn cluster() -> Self {
        SleepingApp {
            name: None,
            mode: DeployMode::Cluster,
            supervise: false,
            driver_memory_mb: 64,
            executor_cores: Some(1),
            executor_memory_mb: 64,
            total_cores: Some(1),
            sleep_secs: Some(1000),
        }
    }

    /// The same in client mode.
    pub fn client() -> Self {
        SleepingApp {
            mode: DeployMode::Client,
            ..Self::cluster()
        }
    }

    pub fn named(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }

    /// `n` one-core executors.
    pub fn executors(mut self, n: u32) -> Self {
        self.executor_cores = Some(1);
        self.total_cores = Some(n);
        self
    }

    /// Cores per executor (`None`: one executor per worker).
    pub fn executor_cores(mut self, cores: Option<u32>) -> Self {
        self.executor_cores = cores;
        self
    }

    pub fn supervised(mut self) -> Self {
        self.supervise = true;
        self
    }

    /// Memory of the driver and of each executor.
    pub fn memory_mb(mut self, mb: u64) -> Self {
        self.driver_memory_mb = mb;
        self.executor_memory_mb = mb;
        self
    }

    pub fn executor_memory_mb(mut self, mb: u64) -> Self {
        self.executor_memory_mb = mb;
        self
    }

    pub fn sleeping(mut self, secs: u64) -> Self {
        self.sleep_secs = Some(secs);
        self
    }

    /// Its driver and executors run `true`: an app that holds its cores without doing
    /// anything where no worker runs it (benchmarks of the masters alone).
    pub fn exiting(mut self) -> Self {
        self.sleep_secs = None;
        self
    }

    /// The shell command the driver and executors run (`hearth submit` runs executors'
    /// through `sh -c`).
    fn script(&self) -> String {
        match self.sleep_secs {
            Some(s) => format!("exec sleep {s}"),
            None => "true".to_owned(),
        }
    }

    /// The driver's (and, for the client library, the executors') argv.
    fn argv(&self) -> Vec<String> {
        match self.sleep_secs {
            Some(_) => vec!["sh".into(), "-c".into(), self.script()],
            None => vec!["true".into()],
        }
    }

    /// What the client library registers: the app and, in cluster mode, its driver.
    pub fn describe(&self) -> (AppDescription, Option<DriverDescription>) {
        let command = ProcessSpec {
            argv: self.argv(),
            env: Default::default(),
        };
        let app = AppDescription {
            name: (self.name.clone()).unwrap_or_else(|| self.argv()[0].clone()),
            cores_per_executor: self.executor_cores,
            memory_per_executor_mb: self.executor_memory_mb,
            max_cores: self.total_cores,
            initial_executor_limit: None,
            command: command.clone(),
        };
        let driver = (self.mode == DeployMode::Cluster).then_some(DriverDescription {
            cores: 1,
            memory_mb: self.driver_memory_mb,
            supervise: self.supervise,
            command,
        });
        (app, driver)
    }

    /// The arguments of `hearth submit` (after `submit`) that register the same app
    /// (`hearth submit` runs executors through `sh -c`, so an [`exiting`](Self::exiting)
    /// app's executors run `sh -c true` there).
    pub fn submit_args(&self) -> Vec<String> {
        let cluster = self.mode == DeployMode::Cluster;
        let mut a: Vec<String> = Vec::new();
        if cluster {
            a.extend(["--deploy-mode".into(), "cluster".into()]);
            if self.supervise {
                a.push("--supervise".into());
            }
        }
        let options = [
            ("--name", self.name.clone()),
            (
                "--driver-memory",
                cluster.then(|| format!("{}m", self.driver_memory_mb)),
            ),
            (
                "--executor-cores",
                self.executor_cores.map(|c| c.to_string()),
            ),
            (
                "--executor-memory",
                Some(format!("{}m", self.executor_memory_mb)),
            ),
            (
                "--total-executor-cores",
                self.total_cores.map(|c| c.to_string()),
            ),
            ("--executor-command", Some(self.script())),
        ];
        for (flag, value) in options {
            if let Some(v) = value {
                a.extend([flag.to_owned(), v]);
            }
        }
        a.push("--".into());
        a.extend(self.argv());
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_arguments_the_tests_used_to_spell_out() {
        let args = SleepingApp::cluster()
            .named("long")
            .executors(2)
            .submit_args();
        assert_eq!(
            args.join(" "),
            "--deploy-mode cluster --name long --driver-memory 64m --executor-cores 1 \
             --executor-memory 64m --total-executor-cores 2 --executor-command exec sleep 1000 \
             -- sh -c exec sleep 1000"
        );
        let args = SleepingApp::client().executor_memory_mb(128).submit_args();
        assert_eq!(
            args.join(" "),
            "--executor-cores 1 --executor-memory 128m --total-executor-cores 1 \
             --executor-command exec sleep 1000 -- sh -c exec sleep 1000"
        );
        let args = SleepingApp::cluster()
            .supervised()
            .executor_cores(None)
            .submit_args();
        assert_eq!(
            args.join(" "),
            "--deploy-mode cluster --supervise --driver-memory 64m --executor-memory 64m \
             --total-executor-cores 1 --executor-command exec sleep 1000 -- sh -c exec sleep 1000"
        );
    }

    #[test]
    fn describes_the_drills_probe_and_the_benchmarks_client_app() {
        let (app, driver) = SleepingApp::cluster()
            .named("drill-probe")
            .executors(3)
            .sleeping(100_000)
            .describe();
        let sleep = ProcessSpec {
            argv: vec!["sh".into(), "-c".into(), "exec sleep 100000".into()],
            env: Default::default(),
        };
        assert_eq!(
            app,
            AppDescription {
                name: "drill-probe".into(),
                cores_per_executor: Some(1),
                memory_per_executor_mb: 64,
                max_cores: Some(3),
                initial_executor_limit: None,
                command: sleep.clone(),
            }
        );
        assert_eq!(
            driver,
            Some(DriverDescription {
                cores: 1,
                memory_mb: 64,
                supervise: false,
                command: sleep,
            })
        );
        let (app, driver) = SleepingApp::client().named("bench").exiting().describe();
        assert_eq!(app.command.argv, vec!["true".to_owned()]);
        assert_eq!((app.max_cores, driver), (Some(1), None));
    }
}
