//! `hearth logs ID`: a process's output, read from the worker that runs (or ran) it.
//!
//! The leader says where the process is (a driver's worker; an executor's, for an app
//! and `--executor N`: `hearth_client::logs::locate`, which the web UI uses too); the
//! CLI then reads the worker's `WorkerControl.ReadLog` directly,
//! so `-f` goes on through a failover of the masters. Rotation (`stdout` becoming
//! `stdout.1`) is followed: when the current file is shorter than what was read, the rest
//! of the rotated file is read first.

use crate::{Failure, Outcome};
use clap::Args;
use hearth_client::logs::{locate, LocateError};
use hearth_client::MasterClient;
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
    let (addr, base) = locate(&state, &a.id, a.executor, a.stderr).map_err(|e| match e {
        LocateError::NotFound(why) => Failure::Request(why),
        client_mode @ LocateError::ClientMode(_) => {
            Failure::Usage(format!("{client_mode} with --executor N"))
        }
    })?;
    let worker = hearth_client::logs::worker(client.credential(), &addr)
        .await
        .map_err(Failure::Request)?;
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
