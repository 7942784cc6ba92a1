//! What workers report about the processes they run: an executor's or a driver's new
//! state. A report about a process the state does not place on that worker changes
//! nothing (a live one is killed): it may come from before a leader change or a kill.

use crate::command::{Action, DriverKill, ExecutorKill, Outcome, Rejection};
use crate::ids::{AppId, DriverId, ExecutorId, WorkerId};
use crate::lifecycle::{complete_driver, finish_app};
use crate::state::{AppState, ClusterState, DriverState, ExecutorState};
use crate::time::Millis;

/// [`Command::ExecutorStateChanged`](crate::Command::ExecutorStateChanged) without its time.
pub(crate) struct ExecutorReport<'a> {
    pub worker: &'a WorkerId,
    pub app: &'a AppId,
    pub executor: ExecutorId,
    pub state: ExecutorState,
    pub exit_code: Option<i32>,
    pub message: &'a str,
}

/// An executor's new state: RUNNING resets its app's failure count; an end frees its
/// resources and, after `max_executor_retries` failures in a row with none running, fails
/// the app.
pub(crate) fn executor_state_changed(
    state: &mut ClusterState,
    r: ExecutorReport<'_>,
    at: Millis,
    actions: &mut Vec<Action>,
) -> Result<Outcome, Rejection> {
    let known = state
        .apps
        .get(r.app)
        .and_then(|a| a.executors.get(&r.executor))
        .is_some_and(|e| &e.worker == r.worker);
    if !known {
        // Not ours (ended, killed, or placed by a deposed leader): a live one is killed,
        // an ended one is a late report. Either way the worker is answered.
        if !r.state.is_terminal() {
            actions.push(Action::KillExecutor(ExecutorKill {
                worker: r.worker.clone(),
                app: r.app.clone(),
                executor: r.executor,
            }));
        }
        return Ok(Outcome::Unchanged);
    }
    let app = state.apps.get_mut(r.app).expect("checked above");
    match r.state {
        ExecutorState::Launching => Ok(Outcome::Unchanged),
        ExecutorState::Running => {
            let e = app.executors.get_mut(&r.executor).expect("checked above");
            e.state = ExecutorState::Running;
            app.retry_count = 0;
            if app.state == AppState::Waiting {
                app.state = AppState::Running;
            }
            Ok(Outcome::Done)
        }
        end => {
            let counts_as_failure = r.exit_code != Some(0) && end != ExecutorState::Decommissioned;
            state.remove_executor(r.app, r.executor);
            let app = state.apps.get_mut(r.app).expect("checked above");
            if counts_as_failure {
                app.retry_count += 1;
            }
            let exhausted = state
                .config
                .max_executor_retries
                .is_some_and(|max| app.retry_count >= max);
            if counts_as_failure && exhausted && !app.has_running_executor() {
                let why = format!(
                    "{} executors failed in a row with none running (last: {end}, {})",
                    app.retry_count,
                    ended_with(r.exit_code, r.message)
                );
                finish_app(state, r.app, AppState::Failed, &why, at, actions);
            }
            Ok(Outcome::Done)
        }
    }
}

/// [`Command::DriverStateChanged`](crate::Command::DriverStateChanged) without its time.
pub(crate) struct DriverReport<'a> {
    pub worker: &'a WorkerId,
    pub driver: &'a DriverId,
    pub state: DriverState,
    pub driver_url: Option<&'a str>,
    pub exit_code: Option<i32>,
    pub message: &'a str,
}

/// A driver's new state: RUNNING brings where it listens (so its app can get executors);
/// an end completes it, and its app with it.
pub(crate) fn driver_state_changed(
    state: &mut ClusterState,
    r: DriverReport<'_>,
    at: Millis,
    actions: &mut Vec<Action>,
) -> Result<Outcome, Rejection> {
    let reportable = matches!(
        r.state,
        DriverState::Running
            | DriverState::Finished
            | DriverState::Failed
            | DriverState::Killed
            | DriverState::Error
    );
    if !reportable {
        return Err(Rejection::invalid(
            "state",
            format!("a worker cannot report a driver {}", r.state),
        ));
    }
    let known = state
        .drivers
        .get(r.driver)
        .is_some_and(|d| d.worker.as_ref() == Some(r.worker));
    if !known {
        if r.state == DriverState::Running {
            actions.push(Action::KillDriver(DriverKill {
                worker: r.worker.clone(),
                driver: r.driver.clone(),
            }));
        }
        return Ok(Outcome::Unchanged);
    }
    if r.state == DriverState::Running {
        let d = state.drivers.get_mut(r.driver).expect("checked above");
        d.state = DriverState::Running;
        let app_id = d.app.clone();
        if let (Some(app), Some(url)) = (state.apps.get_mut(&app_id), r.driver_url) {
            if app.driver.as_ref() == Some(r.driver) && !url.trim().is_empty() {
                app.driver_url = Some(url.to_owned());
            }
        }
        return Ok(Outcome::Done);
    }
    let reason = ended_with(r.exit_code, r.message);
    complete_driver(state, r.driver, r.state, &reason, at, actions);
    Ok(Outcome::Done)
}

/// How a process's end reads: its exit code, and what the worker said beyond it (a
/// plain exit says nothing more: "exit code 0", not "exit code 0: exited with code 0").
pub(crate) fn ended_with(code: Option<i32>, message: &str) -> String {
    match (code, message.is_empty()) {
        (Some(c), true) => format!("exit code {c}"),
        (Some(c), false) => format!("exit code {c}: {message}"),
        (None, _) => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::ended_with;

    /// Regression: a plain exit read "exit code 0: exited with code 0".
    #[test]
    fn an_end_reason_says_the_exit_code_once() {
        assert_eq!(ended_with(Some(0), ""), "exit code 0");
        assert_eq!(ended_with(Some(1), ""), "exit code 1");
        assert_eq!(
            ended_with(Some(137), "killed at the master's request"),
            "exit code 137: killed at the master's request"
        );
        assert_eq!(
            ended_with(None, "cannot start: no such file"),
            "cannot start: no such file"
        );
    }
}
