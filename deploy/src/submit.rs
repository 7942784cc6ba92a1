//! `hearth submit`: cluster mode registers the app and its driver and returns (or waits
//! with `--wait`); client mode runs the driver here, keeps the app alive while it runs and
//! finishes it with the driver's outcome.

use crate::servers::shutdown_signal;
use crate::units::{parse_cores, parse_mib};
use crate::{Failure, Outcome};
use clap::{Args, ValueEnum};
use hearth_client::MasterClient;
use hearth_core::{AppDescription, AppId, AppState, DriverDescription, ProcessSpec};
use rustix::process::{Pid, Signal};
use std::collections::BTreeMap;
use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DeployMode {
    /// The driver runs here, in the `hearth submit` process's care.
    Client,
    /// The leader places the driver on a worker.
    Cluster,
}

#[derive(Args)]
pub struct SubmitArgs {
    /// Where the driver runs.
    #[arg(long, value_enum, default_value_t = DeployMode::Client)]
    deploy_mode: DeployMode,
    /// Cluster mode: restart the driver if it fails, relaunch it if its worker is lost.
    #[arg(long)]
    supervise: bool,
    /// The app's name (default: the driver program's file name).
    #[arg(long)]
    name: Option<String>,
    /// Cluster mode: cores for the driver.
    #[arg(long, default_value = "1", value_parser = parse_cores)]
    driver_cores: u32,
    /// Cluster mode: memory for the driver, e.g. 1g.
    #[arg(long, default_value = "1g", value_parser = parse_mib)]
    driver_memory: u64,
    /// Cores per executor (default: one executor per worker with all cores it is given).
    #[arg(long, value_parser = parse_cores)]
    executor_cores: Option<u32>,
    /// Memory per executor, e.g. 1g or 512m.
    #[arg(long, default_value = "1g", value_parser = parse_mib)]
    executor_memory: u64,
    /// Cap on the cores the app holds at once (default: the master's default cap).
    #[arg(long, value_parser = parse_cores)]
    total_executor_cores: Option<u32>,
    /// The command each executor runs (through `sh -c`). Without it the app gets no
    /// executors: its driver asks for its own (a Spark driver with a `spark+hearth://`
    /// master URL registers its own app and executors), e.g.
    /// `hearth submit --deploy-mode cluster --supervise -- spark-submit --master spark+hearth://... app.py`.
    #[arg(long)]
    executor_command: Option<String>,
    /// Extra environment for the driver and executors, KEY=VALUE (repeatable).
    #[arg(long = "env", value_parser = parse_env)]
    env: Vec<(String, String)>,
    /// Cluster mode: wait until the app ends; exit 0 only if it FINISHED.
    #[arg(long)]
    wait: bool,
    /// Client mode: the address executors reach this machine's driver on.
    #[arg(long, default_value = "127.0.0.1", env = "HEARTH_DRIVER_HOST")]
    driver_host: String,
    /// Client mode: how often to tell the master the app is alive (default: what the
    /// master asks for, a quarter of its app timeout).
    #[arg(long, value_parser = crate::units::parse_duration)]
    heartbeat_interval: Option<Duration>,
    /// The driver command and its arguments.
    #[arg(last = true, required = true, value_name = "DRIVER_COMMAND")]
    command: Vec<String>,
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

pub async fn run(a: SubmitArgs, client: MasterClient) -> Outcome {
    let (desc, driver) = describe(&a)?;
    match driver {
        Some(driver) => cluster(&a, &client, desc, driver).await,
        None => {
            let env = desc.command.env.clone();
            client_mode(&a, &client, desc, env).await
        }
    }
}

/// What the submission registers: the app and, in cluster mode, its driver.
fn describe(a: &SubmitArgs) -> Result<(AppDescription, Option<DriverDescription>), Failure> {
    // No executor command: the app holds no executors (limit 0); the command is never run.
    let (executor_command, executor_limit) = match &a.executor_command {
        Some(c) => (c.clone(), None),
        None => ("true".to_owned(), Some(0)),
    };
    let env: BTreeMap<String, String> = a.env.iter().cloned().collect();
    let name = a.name.clone().unwrap_or_else(|| {
        let prog = a.command.first().map(String::as_str).unwrap_or("app");
        prog.rsplit('/').next().unwrap_or(prog).to_owned()
    });
    let desc = AppDescription {
        name,
        cores_per_executor: a.executor_cores,
        memory_per_executor_mb: a.executor_memory,
        max_cores: a.total_executor_cores,
        initial_executor_limit: executor_limit,
        command: ProcessSpec {
            argv: vec!["sh".into(), "-c".into(), executor_command],
            env: with_user(env.clone()),
        },
    };
    let driver = (a.deploy_mode == DeployMode::Cluster).then(|| DriverDescription {
        cores: a.driver_cores,
        memory_mb: a.driver_memory,
        supervise: a.supervise,
        command: ProcessSpec {
            argv: a.command.clone(),
            env,
        },
    });
    Ok((desc, driver))
}

async fn cluster(
    a: &SubmitArgs,
    client: &MasterClient,
    desc: AppDescription,
    driver: DriverDescription,
) -> Outcome {
    let (app, driver) = client.register_app(&desc, Some(&driver), None).await?;
    say(app.as_str());
    if let Some(d) = &driver {
        say(d.as_str());
    }
    if a.wait {
        return wait_for_end(client, &app).await;
    }
    Ok(())
}

/// Polls the leader until the app has ended; exit 0 only when it FINISHED.
async fn wait_for_end(client: &MasterClient, app: &AppId) -> Outcome {
    loop {
        // A standby's replica may not list the app yet: only a leader's answer tells.
        let s = client.leader_state().await?;
        if let Some(done) = s.completed_apps.iter().find(|x| &x.id == app) {
            let reason = done.end_reason.clone().unwrap_or_default();
            return match done.state {
                AppState::Finished => Ok(()),
                other => Err(Failure::Request(format!("{app} ended {other}: {reason}"))),
            };
        }
        if !s.active_apps.iter().any(|x| &x.id == app) {
            return Err(Failure::Request(format!(
                "{app} is no longer known to the master"
            )));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn free_port(host: &str) -> Result<u16, Failure> {
    let l = std::net::TcpListener::bind((host, 0)).map_err(|e| {
        Failure::Request(format!(
            "cannot find a free port on --driver-host {host}: {e}"
        ))
    })?;
    Ok(l.local_addr()?.port())
}

async fn client_mode(
    a: &SubmitArgs,
    client: &MasterClient,
    desc: AppDescription,
    env: BTreeMap<String, String>,
) -> Outcome {
    let port = free_port(&a.driver_host)?;
    let url = format!("{}:{port}", a.driver_host);
    let (app, _, advised) = client.register_app_advised(&desc, None, Some(&url)).await?;
    say(app.as_str());
    let every = a
        .heartbeat_interval
        .or(advised)
        .unwrap_or(Duration::from_secs(5));
    let exe = std::env::current_exe()?;
    let mut cmd = tokio::process::Command::new(exe);
    cmd.arg("__guard")
        .arg("--")
        .args(&a.command)
        .envs(&env)
        .env("HEARTH_APP_ID", app.as_str())
        .env("HEARTH_DRIVER_PORT", port.to_string())
        .env(
            "HEARTH_MASTERS",
            format!("hearth://{}", client.masters().join(",")),
        )
        .stdin(Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let why = format!("cannot start the driver {:?}: {e}", a.command);
            let _ = client.finish_app(&app, AppState::Failed, &why).await;
            return Err(Failure::Request(why));
        }
    };
    let pgid = child.id().map(|p| p as i32);
    tracing::debug!(%app, ?every, "heartbeating the app");
    let mut beat = tokio::time::interval(every);
    let stop = shutdown_signal();
    tokio::pin!(stop);
    let end = loop {
        tokio::select! {
            status = child.wait() => break Ending::Exited(status?),
            _ = &mut stop => break Ending::Interrupted,
            _ = beat.tick() => match client.app_heartbeat(&app).await {
                Ok(true) => tracing::debug!(%app, "app heartbeat answered"),
                Ok(false) => break Ending::EndedByMaster,
                Err(e) => tracing::warn!(%app, error = %e, "cannot reach the master; the driver keeps running"),
            },
        }
    };
    let (state, reason) = match &end {
        Ending::Exited(s) if s.success() => (AppState::Finished, "the driver exited 0".to_owned()),
        Ending::Exited(s) => (AppState::Failed, format!("the driver exited with {s}")),
        Ending::Interrupted => (AppState::Killed, "hearth submit was interrupted".to_owned()),
        Ending::EndedByMaster => (AppState::Killed, "the master ended the app".to_owned()),
    };
    if !matches!(end, Ending::Exited(_)) {
        stop_group(pgid, &mut child).await;
    }
    // Whatever the driver left behind in its process group goes with it.
    if let Some(pgid) = pgid {
        // ESRCH when the group is empty.
        kill_group(pgid, Signal::KILL);
    }
    if !matches!(end, Ending::EndedByMaster) {
        client.finish_app(&app, state, &reason).await?;
    }
    match state {
        AppState::Finished => Ok(()),
        _ => Err(Failure::Request(format!("{app} ended {state}: {reason}"))),
    }
}

enum Ending {
    Exited(std::process::ExitStatus),
    Interrupted,
    EndedByMaster,
}

/// SIGTERM to the driver's process group, SIGKILL after 5 s.
async fn stop_group(pgid: Option<i32>, child: &mut tokio::process::Child) {
    let Some(pgid) = pgid else { return };
    kill_group(pgid, Signal::TERM);
    if tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .is_err()
    {
        kill_group(pgid, Signal::KILL);
        let _ = child.wait().await;
    }
}

/// `signal` to the process group our child led, if any of it is left.
fn kill_group(pgid: i32, signal: Signal) {
    if let Some(group) = Pid::from_raw(pgid) {
        let _ = rustix::process::kill_process_group(group, signal);
    }
}

/// `env` with who submits ([`hearth_core::USER_ENV`]): `$USER`, unless `--env` said.
/// A master that took a submit token replaces it with the token's name.
fn with_user(mut env: BTreeMap<String, String>) -> BTreeMap<String, String> {
    if let Ok(user) = std::env::var("USER") {
        env.entry(hearth_core::USER_ENV.to_owned()).or_insert(user);
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use hearth_client::SleepingApp;

    #[derive(Parser)]
    struct Submit {
        #[command(flatten)]
        a: SubmitArgs,
    }

    /// The test helpers render one [`SleepingApp`] both as `hearth submit` arguments and
    /// as what the client library registers: the two must be the same app.
    #[test]
    fn a_sleeping_apps_arguments_register_what_the_library_registers() {
        for app in [
            SleepingApp::cluster().named("long").executors(2),
            SleepingApp::cluster().supervised().memory_mb(256),
            SleepingApp::cluster()
                .executor_cores(None)
                .sleeping(100_000),
            SleepingApp::client().executors(4).executor_memory_mb(128),
        ] {
            let argv = std::iter::once("submit".to_owned()).chain(app.submit_args());
            let parsed = Submit::try_parse_from(argv).expect("hearth submit takes them");
            let Ok(described) = describe(&parsed.a) else {
                panic!("{:?} is not a full submission", app.submit_args());
            };
            assert_eq!(described, app.describe());
        }
    }
}
