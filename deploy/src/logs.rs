//! `hearth logs ID`: a process's output, read from the worker that runs (or ran) it.
//!
//! The leader says where the process is (a driver's worker; an executor's, for an app
//! and `--executor N`); the CLI then reads the worker's `WorkerControl.ReadLog` directly,
//! so `-f` goes on through a failover of the masters. Rotation (`stdout` becoming
//! `stdout.1`) is followed: when the current file is shorter than what was read, the rest
//! of the rotated file is read first.

use crate::{Failure, Outcome};
use clap::Args;
use hearth_client::MasterClient;
use hearth_proto::auth::authed;
use hearth_proto::convert::StatusView;
use hearth_proto::pb;
use hearth_proto::pb::worker_control_client::WorkerControlClient;
use std::io::Write;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// A driver id, or an app id (its driver in cluster mode; with `--executor N`, that
    /// executor).
    id: String,
    /// The app's executor to read.
    #[arg(long, value_name = "N")]
    executor: Option<u32>,
    /// Read stderr instead of stdout.
    #[arg(long)]
    stderr: bool,
    /// Only the last N lines.
    #[arg(long, value_name = "N")]
    tail: Option<usize>,
    /// Keep printing new output until the process ends (or Ctrl-C).
    #[arg(short, long)]
    follow: bool,
}

/// Where a process's output is: its worker's address and the request naming it.
fn locate(s: &StatusView, a: &LogsArgs) -> Result<(String, pb::ReadLogRequest), Failure> {
    let mut req = pb::ReadLogRequest {
        stderr: a.stderr,
        ..Default::default()
    };
    let apps = s.active_apps.iter().chain(&s.completed_apps);
    let drivers = || s.active_drivers.iter().chain(&s.completed_drivers);
    let worker = if a.id.starts_with("driver-") {
        req.driver_id = a.id.clone();
        let d = drivers()
            .find(|d| d.id.as_str() == a.id)
            .ok_or_else(|| Failure::Request(format!("unknown driver {}", a.id)))?;
        d.worker.clone()
    } else {
        let app = apps
            .clone()
            .find(|x| x.id.as_str() == a.id)
            .ok_or_else(|| Failure::Request(format!("unknown app or driver {}", a.id)))?;
        match a.executor {
            Some(n) => {
                req.app_id = a.id.clone();
                req.executor_id = n;
                let e = app.executors.get(&n).ok_or_else(|| {
                    Failure::Request(format!(
                        "{} has no executor {n} now (the leader lists running executors only)",
                        a.id
                    ))
                })?;
                Some(e.worker.clone())
            }
            None => {
                let driver = app.driver.clone().ok_or_else(|| {
                    Failure::Usage(format!(
                        "{} is a client-mode app: its driver runs outside hearth; pass --executor N",
                        a.id
                    ))
                })?;
                req.driver_id = driver.0.clone();
                drivers()
                    .find(|d| d.id == driver)
                    .and_then(|d| d.worker.clone())
            }
        }
    };
    let worker = worker
        .ok_or_else(|| Failure::Request(format!("{} has not been placed on a worker", a.id)))?;
    let w = s
        .workers
        .iter()
        .find(|w| w.info.identity.id == worker)
        .ok_or_else(|| Failure::Request(format!("worker {worker} is no longer listed")))?;
    Ok((
        format!("{}:{}", w.info.identity.host, w.info.identity.port),
        req,
    ))
}

/// The last `n` lines of `data` (all of it when it holds fewer).
fn last_lines(data: &[u8], n: usize) -> &[u8] {
    let body = data.strip_suffix(b"\n").unwrap_or(data);
    let start = body
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, b)| **b == b'\n')
        .nth(n.saturating_sub(1))
        .map_or(0, |(i, _)| i + 1);
    if n == 0 {
        return &data[data.len()..];
    }
    &data[start..]
}

pub async fn run(client: &MasterClient, a: LogsArgs) -> Outcome {
    let state = client.state().await?;
    let (addr, base) = locate(&state, &a)?;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| Failure::Request(format!("worker address {addr}: {e}")))?
        .connect()
        .await
        .map_err(|e| Failure::Request(format!("cannot reach worker {addr}: {e}")))?;
    let worker = WorkerControlClient::new(authed(channel, client.credential()));
    let read = |rotated: u32, offset: i64| {
        let mut r = base.clone();
        r.rotated = rotated;
        r.offset = offset;
        r.max_bytes = 1 << 20;
        let mut w = worker.clone();
        async move { w.read_log(r).await.map(|x| x.into_inner()) }
    };
    let mut out = std::io::stdout().lock();
    // The start: the whole current file, or its last lines.
    let first = read(0, if a.tail.is_some() { -(1 << 20) } else { 0 }).await?;
    let shown = match a.tail {
        Some(n) => last_lines(&first.data, n),
        None => &first.data[..],
    };
    out.write_all(shown)?;
    let mut pos = first.offset + first.data.len() as u64;
    if !a.follow {
        // Without --tail, everything of the current file, 1 MiB at a time.
        while a.tail.is_none() && pos < first.size {
            let more = read(0, pos as i64).await?;
            if more.data.is_empty() {
                break;
            }
            out.write_all(&more.data)?;
            pos += more.data.len() as u64;
        }
        return Ok(());
    }
    out.flush()?;
    loop {
        let now = read(0, pos as i64).await?;
        if now.size < pos {
            // Rotated: the rest of what was the current file, then the new one.
            if let Ok(old) = read(1, pos as i64).await {
                out.write_all(&old.data)?;
            }
            pos = 0;
            continue;
        }
        out.write_all(&now.data)?;
        out.flush()?;
        pos += now.data.len() as u64;
        if now.data.is_empty() {
            if !now.running {
                return Ok(());
            }
            // Polling the worker for new output (not a wait for a condition).
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_lines() {
        assert_eq!(last_lines(b"a\nb\nc\n", 2), b"b\nc\n");
        assert_eq!(last_lines(b"a\nb\nc", 2), b"b\nc");
        assert_eq!(last_lines(b"a\nb\nc\n", 5), b"a\nb\nc\n");
        assert_eq!(last_lines(b"a\nb\nc\n", 0), b"");
        assert_eq!(last_lines(b"", 3), b"");
    }
}
