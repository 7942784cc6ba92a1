//! Looking at the masters from outside, as an operator would: a process's RSS and CPU
//! time in `/proc`, `/readyz`, the gauges of `/metrics`, `/json` (whole or with a query:
//! paged, filtered, without executors) and `GetState` (whole or filtered and paged) timed
//! and weighed, the wall time of a real `hearth status`, a directory's size on disk, the
//! machine's load.

use anyhow::{anyhow, Context, Result};
use hearth_proto::pb;
use hearth_proto::pb::master_service_client::MasterServiceClient;
pub use hearth_tests::cluster::{gauge, metrics};
use hearth_tests::harness::{bin, http_get, secret_of};
pub use hearth_tests::procs::{ticks_per_s, usage};
use prost::Message;
use std::path::Path;
use std::time::{Duration, Instant};

/// RSS at the end of a window and the CPU used over it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Steady {
    pub rss_mb: f64,
    /// CPU seconds per second over the window.
    pub cpu_cores: f64,
}

/// `pid`'s usage over `window` (a measuring window, not a wait for anything).
pub fn steady(pid: u32, window: Duration) -> Result<Steady> {
    let gone = || anyhow!("process {pid} is gone");
    let (a, t) = (usage(pid).ok_or_else(gone)?, Instant::now());
    std::thread::sleep(window);
    let b = usage(pid).ok_or_else(gone)?;
    let secs = t.elapsed().as_secs_f64();
    Ok(Steady {
        rss_mb: b.rss_kb as f64 / 1024.0,
        cpu_cores: (b.cpu_ticks - a.cpu_ticks) as f64 / ticks_per_s() / secs,
    })
}

/// The master at `http` answers `/readyz` 200 (it is the ALIVE leader).
pub fn ready(http: u16) -> bool {
    http_get(&format!("http://127.0.0.1:{http}/readyz")).is_ok_and(|(code, _)| code == 200)
}

/// The fastest of `n` reads of `/json{query}` (`query` empty or `?limit=100`...) on the
/// master at `http`: time and bytes.
pub fn json_status(http: u16, query: &str, n: usize) -> Result<(Duration, usize)> {
    fastest_get(http, &format!("/json{query}"), n)
}

/// The fastest of `n` reads of `path` (`/json?...`, `/` for the web UI's overview) on
/// the master at `http`: time and bytes.
pub fn fastest_get(http: u16, path: &str, n: usize) -> Result<(Duration, usize)> {
    let mut best: Option<(Duration, usize)> = None;
    for _ in 0..n.max(1) {
        let t = Instant::now();
        let (code, body) = http_get(&format!("http://127.0.0.1:{http}{path}"))?;
        let took = t.elapsed();
        anyhow::ensure!(code == 200, "GET {path} answered {code}: {body}");
        if best.is_none_or(|(b, _)| took < b) {
            best = Some((took, body.len()));
        }
    }
    Ok(best.expect("at least one read"))
}

/// The fastest of `n` `GetState` calls (`req`: the whole state, or a filter and page) on
/// the master at `addr`: time and encoded size.
pub async fn get_state(
    addr: &str,
    req: pb::GetStateRequest,
    n: usize,
) -> Result<(Duration, usize)> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
        .connect()
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    let mut client = MasterServiceClient::new(channel)
        .max_decoding_message_size(hearth_proto::MAX_MESSAGE)
        .max_encoding_message_size(hearth_proto::MAX_MESSAGE);
    let mut best: Option<(Duration, usize)> = None;
    for _ in 0..n.max(1) {
        let t = Instant::now();
        let s = client.get_state(req.clone()).await?.into_inner();
        let took = t.elapsed();
        if best.is_none_or(|(b, _)| took < b) {
            best = Some((took, s.encoded_len()));
        }
    }
    Ok(best.expect("at least one call"))
}

/// The fastest of `n` runs of the real `hearth` CLI with `args` (`status`, ...) against
/// `masters`, from start to exit: wall time and the bytes it printed on stdout. Not
/// `harness::hearth_within`: its output (a whole status) can be more than a pipe holds
/// unread.
pub fn cli(masters: &str, args: &[&str], n: usize) -> Result<(Duration, usize)> {
    let mut best: Option<(Duration, usize)> = None;
    for _ in 0..n.max(1) {
        let mut cmd = std::process::Command::new(bin("hearth"));
        if let Some(secret) = secret_of(masters) {
            cmd.env("HEARTH_SECRET_FILE", secret);
        }
        cmd.args(args)
            .env("HEARTH_MASTERS", masters)
            .env("HEARTH_LOG", "warn")
            .stdin(std::process::Stdio::null());
        let t = Instant::now();
        let out = cmd.output().context("running hearth")?;
        let took = t.elapsed();
        anyhow::ensure!(
            out.status.success(),
            "hearth {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        if best.is_none_or(|(b, _)| took < b) {
            best = Some((took, out.stdout.len()));
        }
    }
    Ok(best.expect("at least one run"))
}

/// Bytes of the files under `dir`.
pub fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// The 1-minute load average.
pub fn load() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// Raises this process's soft limit on open files to its hard limit (the masters it
/// starts inherit it): the leader holds a connection to every simulated worker, and
/// this process one from it. Returns the limit now.
pub fn raise_nofile() -> u64 {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) == 0 && l.rlim_cur < l.rlim_max {
            l.rlim_cur = l.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &l);
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut l);
        }
    }
    l.rlim_cur
}
