//! `hearth-pi`: the example application for hearth, a Monte-Carlo estimate of pi split into
//! tasks that a driver hands out to executors over a tiny line protocol (std only).
//!
//! Protocol (ASCII, one `\n`-terminated line per message):
//! executor -> driver: `GET` | `RESULT <id> <inside>`;
//! driver -> executor: `TASK <id> <seed> <samples>` | `WAIT` | `DONE`.
//! Tasks handed to a connection are in flight on it; when it drops they go back to the queue.

use std::collections::{HashMap, VecDeque};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use std::{env, process, thread};

const DEFAULT_TASKS: u64 = 200;
const DEFAULT_SAMPLES: u64 = 200_000;
const MAX_TASKS: u64 = 1 << 24;
const MAX_LINE: u64 = 128;

const USAGE: &str =
    "usage: hearth-pi <driver|executor|expected> [FLAGS]   (hearth-pi <role> --help)
Monte-Carlo pi, the example application for hearth.
  driver    serve N tasks to executors over TCP, print the merged estimate
  executor  connect to a driver and compute tasks until it says DONE
  expected  compute the same result line locally, without network
";
const DRIVER_HELP: &str =
    "usage: hearth-pi driver [--tasks N] [--samples-per-task M] [--port P] [--exit-code C]
Listens on 0.0.0.0:P and hands out N tasks of M samples each to executors. When all N results
are in it prints one line `pi=<12 decimals> inside=<I> samples=<N*M> tasks=<N>` on stdout and
exits. Tasks in flight on a connection that drops are re-queued. Progress is logged on stderr.
  --tasks N             number of tasks (default 200)
  --samples-per-task M  samples per task (default 200000)
  --port P              TCP port (default: env HEARTH_DRIVER_PORT; one of the two is required)
  --exit-code C         exit with code C (0-255) after printing the result (default 0)
";
const EXECUTOR_HELP: &str = "usage: hearth-pi executor [--driver HOST:PORT]
Connects to the driver (retrying for up to 30 s), then loops GET / compute / RESULT; on WAIT it
sleeps 50 ms and asks again; on DONE, or when the driver closes the connection, it exits 0.
  --driver HOST:PORT  the driver (default: env HEARTH_DRIVER_URL)
Env: HEARTH_PI_TASK_DELAY_MS  extra sleep per task, in milliseconds (for tests)
     HEARTH_EXECUTOR_ID, HEARTH_APP_ID  shown in the log lines when set
";
const EXPECTED_HELP: &str = "usage: hearth-pi expected [--tasks N] [--samples-per-task M]
Prints the line the driver would print for the same N and M (same defaults), computed locally.
";

// ---------------------------------------------------------------- computation

/// A driver log line on stderr.
macro_rules! dlog {
    ($($arg:tt)*) => { eprintln!("hearth-pi driver: {}", format_args!($($arg)*)) };
}

mod compute;
mod driver;
mod executor;
mod protocol;
#[cfg(test)]
mod tests;

use compute::*;
use driver::*;
use executor::*;
use protocol::*;

/// Ok(exit code) or Err((exit code, message)); code 2 is bad usage.
type Outcome<T = i32> = Result<T, (i32, String)>;

fn usage<T>(msg: impl Into<String>) -> Outcome<T> {
    Err((2, msg.into()))
}

/// `--name value` or `--name=value`, each at most once, names from `known` only.
fn parse_flags(args: &[String], known: &[&str]) -> Outcome<HashMap<String, String>> {
    let mut flags = HashMap::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        if !known.contains(&name) {
            return usage(format!("unknown argument {arg:?}"));
        }
        let Some(value) = inline.or_else(|| it.next().cloned()) else {
            return usage(format!("{name} needs a value"));
        };
        if flags.insert(name.to_string(), value).is_some() {
            return usage(format!("{name} given twice"));
        }
    }
    Ok(flags)
}

/// The flag's value, else the env var's, parsed; Ok(None) when neither is set.
fn flag_or_env<T: std::str::FromStr>(
    flags: &HashMap<String, String>,
    name: &str,
    var: &str,
) -> Outcome<Option<T>> {
    let from_env = || (!var.is_empty()).then(|| env::var(var).ok()).flatten();
    match flags.get(name).cloned().or_else(from_env) {
        None => Ok(None),
        Some(v) => match v.trim().parse() {
            Ok(x) => Ok(Some(x)),
            Err(_) => {
                let what: Vec<&str> = [name, var].into_iter().filter(|s| !s.is_empty()).collect();
                usage(format!("bad value for {}: {v:?}", what.join(" / ")))
            }
        },
    }
}

/// (tasks, samples per task), validated.
fn task_shape(flags: &HashMap<String, String>) -> Outcome<(u64, u64)> {
    let tasks = flag_or_env(flags, "--tasks", "")?.unwrap_or(DEFAULT_TASKS);
    let samples = flag_or_env(flags, "--samples-per-task", "")?.unwrap_or(DEFAULT_SAMPLES);
    if tasks == 0 || tasks > MAX_TASKS {
        return usage(format!("--tasks must be between 1 and {MAX_TASKS}"));
    }
    if samples == 0 || tasks.checked_mul(samples).is_none() {
        return usage("--samples-per-task must be >= 1 and tasks*samples must fit in 64 bits");
    }
    Ok((tasks, samples))
}

fn run_driver(args: &[String]) -> Outcome {
    let flags = parse_flags(
        args,
        &["--tasks", "--samples-per-task", "--port", "--exit-code"],
    )?;
    let (tasks, samples) = task_shape(&flags)?;
    let Some(port) = flag_or_env::<u16>(&flags, "--port", "HEARTH_DRIVER_PORT")? else {
        return usage("no port: pass --port P or set HEARTH_DRIVER_PORT");
    };
    let exit_code = flag_or_env::<u8>(&flags, "--exit-code", "")?.unwrap_or(0);
    let addr = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
    let (driver, addr) = start_driver(addr, tasks, samples)
        .map_err(|e| (1, format!("cannot listen on {addr}: {e}")))?;
    dlog!("listening on {addr}; {tasks} tasks x {samples} samples");
    let line = driver.wait_complete();
    let mut out = io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|e| (1, format!("cannot write stdout: {e}")))?;
    // Let connected executors collect their DONE before the process goes away.
    driver.wait_until(Duration::from_secs(2), |st| st.active == 0);
    dlog!("all {tasks} results in; exiting with code {exit_code}");
    Ok(i32::from(exit_code))
}

fn run_executor(args: &[String]) -> Outcome {
    let flags = parse_flags(args, &["--driver"])?;
    let Some(addr) = flag_or_env::<String>(&flags, "--driver", "HEARTH_DRIVER_URL")? else {
        return usage("no driver: pass --driver HOST:PORT or set HEARTH_DRIVER_URL");
    };
    let delay_ms = flag_or_env(&flags, "", "HEARTH_PI_TASK_DELAY_MS")?.unwrap_or(0);
    let mut tag = "hearth-pi executor".to_string();
    for (var, label) in [("HEARTH_EXECUTOR_ID", "executor"), ("HEARTH_APP_ID", "app")] {
        if let Ok(v) = env::var(var) {
            tag.push_str(&format!(" {label}={v}"));
        }
    }
    let stream = connect_with_retry(&addr, &tag).map_err(|e| (1, e))?;
    let _ = stream.set_nodelay(true);
    eprintln!("{tag}: connected to driver {addr}");
    let end = executor_session(&stream, &tag, |seed, samples| {
        thread::sleep(Duration::from_millis(delay_ms));
        count_inside(seed, samples)
    })
    .map_err(|e| (1, e))?;
    eprintln!("{tag}: finished ({end:?}); exiting");
    Ok(0)
}

fn run_expected(args: &[String]) -> Outcome {
    let (tasks, samples) = task_shape(&parse_flags(args, &["--tasks", "--samples-per-task"])?)?;
    println!("{}", expected_line(tasks, samples));
    Ok(0)
}

fn main() {
    let args: Vec<String> = env::args().skip(1).collect();
    let rest = args.get(1..).unwrap_or(&[]);
    let help = if rest.iter().any(|a| a == "-h" || a == "--help") {
        match args[0].as_str() {
            "driver" => Some(DRIVER_HELP),
            "executor" => Some(EXECUTOR_HELP),
            "expected" => Some(EXPECTED_HELP),
            _ => None,
        }
    } else {
        None
    };
    let outcome = match (args.first().map(String::as_str), help) {
        (_, Some(_)) | (Some("-h" | "--help" | "help"), None) => {
            print!("{}", help.unwrap_or(USAGE));
            Ok(0)
        }
        (Some("driver"), _) => run_driver(rest),
        (Some("executor"), _) => run_executor(rest),
        (Some("expected"), _) => run_expected(rest),
        (Some(other), _) => usage(format!("unknown role {other:?}\n{USAGE}")),
        (None, _) => usage(USAGE),
    };
    process::exit(match outcome {
        Ok(code) => code,
        Err((code, msg)) => {
            eprintln!("hearth-pi: {}", msg.trim_end());
            code
        }
    })
}
