//! A Raft group of real `hearth master` processes on loopback: fixed ports chosen at
//! start (`--peers` needs them before the masters run), one directory per master,
//! restartable on its own directory, and helpers that read each master's `/json`.

use crate::harness::{get_over, MasterProc};
use crate::procs::app_pids;
use hearth_client::failover::{AppSeen, MasterView};
use hearth_core::AppId;
use hearth_proto::tls::TlsFiles;
use serde_json::Value;
use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A master's view as the failover engine asks for it: `None` if it does not answer.
pub type ViewFuture = Pin<Box<dyn Future<Output = Option<MasterView>> + Send>>;

/// Free loopback ports for masters that must know each other's ports before they run
/// (from below the ephemeral range, see [`hearth_master::ports`]).
pub fn free_ports(n: usize) -> Vec<u16> {
    hearth_master::ports::free_peer_ports(n).expect("free ports")
}

pub struct RaftCluster {
    pub dir: PathBuf,
    /// gRPC port of master `i + 1`.
    pub grpc: Vec<u16>,
    /// HTTP port of master `i + 1`.
    pub http: Vec<u16>,
    pub masters: Vec<Option<MasterProc>>,
    /// Flags every master gets (timings, timeouts).
    flags: Vec<String>,
    /// Flags master `i + 1` alone gets.
    pub own_flags: Vec<Vec<String>>,
    /// What `--peers` says (and what clients use): each master's advertised address.
    pub advertised: Vec<String>,
    /// The TLS files of `--tls-cert/--tls-key/--tls-ca` among the flags: then `/json` is
    /// read over HTTPS.
    pub tls: Option<TlsFiles>,
}

/// The files of `--tls-cert`, `--tls-key` and `--tls-ca` in `flags`, if all three are.
fn tls_in(flags: &[&str]) -> Option<TlsFiles> {
    let value = |name: &str| {
        let i = flags.iter().position(|f| *f == name)?;
        flags.get(i + 1).map(PathBuf::from)
    };
    Some(TlsFiles {
        cert: value("--tls-cert")?,
        key: value("--tls-key")?,
        ca: value("--tls-ca")?,
    })
}

/// Raft and worker timings a little slower than the defaults, so a loaded 2-core CI
/// machine running several test binaries at once does not call spurious elections.
pub const CI_TIMINGS: &[&str] = &[
    "--worker-timeout",
    "3s",
    "--raft-heartbeat",
    "100ms",
    "--election-timeout-min",
    "500ms",
    "--election-timeout-max",
    "1000ms",
];

/// One proxy per ordered pair of masters of `c` (`[i][j]`: master `i + 1` dialling
/// master `j + 1`; `None` on the diagonal), each master given `--peer-via` through its
/// row (after `extra`, its own flags), so a master can be cut from its peers alone.
pub fn peer_proxies(
    c: &mut RaftCluster,
    extra: impl Fn(usize) -> Vec<String>,
) -> Vec<Vec<Option<crate::proxy::Proxy>>> {
    let n = c.grpc.len();
    let direct = |j: usize| format!("127.0.0.1:{}", c.grpc[j]);
    let pair: Vec<Vec<Option<crate::proxy::Proxy>>> = (0..n)
        .map(|i| {
            (0..n)
                .map(|j| {
                    (i != j).then(|| crate::proxy::Proxy::start(&direct(j)).expect("pair proxy"))
                })
                .collect()
        })
        .collect();
    for (i, row) in pair.iter().enumerate() {
        let via: Vec<String> = (row.iter().enumerate())
            .filter_map(|(j, p)| p.as_ref().map(|p| format!("{}={}", j + 1, p.addr())))
            .collect();
        let mut flags = extra(i);
        flags.extend(["--peer-via".to_owned(), via.join(",")]);
        c.own_flags[i] = flags;
    }
    pair
}

impl RaftCluster {
    /// Ports and directories for `n` masters with `flags`; nothing started yet.
    pub fn new(dir: &Path, n: usize, flags: &[&str]) -> Self {
        let ports = free_ports(2 * n);
        let grpc = ports[..n].to_vec();
        RaftCluster {
            dir: dir.to_path_buf(),
            advertised: grpc.iter().map(|p| format!("127.0.0.1:{p}")).collect(),
            grpc,
            http: ports[n..].to_vec(),
            masters: (0..n).map(|_| None).collect(),
            flags: flags.iter().map(|s| s.to_string()).collect(),
            own_flags: vec![Vec::new(); n],
            tls: tls_in(flags),
        }
    }

    /// Starts `n` masters with `flags` and returns once every one is listening.
    pub fn start(dir: &Path, n: usize, flags: &[&str]) -> Self {
        let mut c = Self::new(dir, n, flags);
        for i in 0..n {
            c.start_master(i);
        }
        c
    }

    pub fn peers(&self) -> String {
        self.advertised
            .iter()
            .enumerate()
            .map(|(i, a)| format!("{}={a}", i + 1))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The master list clients and workers use.
    pub fn url(&self) -> String {
        format!("hearth://{}", self.advertised.join(","))
    }

    pub fn data_dir(&self, i: usize) -> PathBuf {
        self.dir.join(format!("raft-{}", i + 1))
    }

    /// Starts (or restarts, on its directory) master `i`.
    pub fn start_master(&mut self, i: usize) {
        let data = self.data_dir(i).to_string_lossy().into_owned();
        let mut args: Vec<String> = vec![
            "--recovery-mode".into(),
            "raft".into(),
            "--id".into(),
            (i + 1).to_string(),
            "--peers".into(),
            self.peers(),
            "--recovery-dir".into(),
            data,
            "--port".into(),
            self.grpc[i].to_string(),
            "--http-port".into(),
            self.http[i].to_string(),
        ];
        args.extend(self.flags.iter().cloned());
        args.extend(self.own_flags[i].iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.masters[i] = Some(MasterProc::start_with(&self.dir, &args));
    }

    /// SIGKILLs master `i`.
    pub fn kill9(&mut self, i: usize) {
        if let Some(mut m) = self.masters[i].take() {
            m.proc.kill9();
        }
    }

    pub fn signal(&self, i: usize, sig: i32) {
        if let Some(m) = &self.masters[i] {
            m.proc.signal(sig);
        }
    }

    /// Master `i`'s `/json`, if it answers within a second.
    pub fn json(&self, i: usize) -> Option<Value> {
        self.masters[i].as_ref()?;
        let (code, body) =
            get_within(&self.json_url(i), self.tls.as_ref(), Duration::from_secs(1))?;
        (code == 200).then(|| serde_json::from_str(&body).ok())?
    }

    /// The failover engine's way to view a master (by its advertised address): one
    /// `GET /json`, read to the end.
    pub fn json_views(&self) -> impl Fn(String) -> ViewFuture + Clone + Send + Sync + 'static {
        let urls: Arc<BTreeMap<String, String>> = Arc::new(
            (0..self.advertised.len())
                .map(|i| (self.advertised[i].clone(), self.json_url(i)))
                .collect(),
        );
        let tls = self.tls.clone();
        move |master| {
            let url = urls.get(&master).cloned();
            let tls = tls.clone();
            Box::pin(async move {
                let url = url?;
                let get = move || {
                    let (_, body) = get_over(&url, tls.as_ref())
                        .ok()
                        .filter(|(code, _)| *code == 200)?;
                    master_view(&serde_json::from_str(&body).ok()?)
                };
                tokio::task::spawn_blocking(get).await.ok().flatten()
            })
        }
    }

    /// Master `i`'s `/json` URL (https with TLS).
    pub fn json_url(&self, i: usize) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}/json", self.http[i])
    }

    /// The ALIVE leader, once it counts `workers` ALIVE workers.
    pub fn leader_with_workers(&self, workers: usize) -> Option<usize> {
        let l = self.alive_leader(None)?;
        (self.json(l)?["aliveworkers"] == workers).then_some(l)
    }

    /// `app`'s processes (driver and executors, in `/proc`), once the ALIVE leader shows
    /// `executors` of them RUNNING and `/proc` shows `processes`.
    pub fn app_running(&self, app: &str, executors: usize, processes: usize) -> Option<Vec<u32>> {
        let l = self.alive_leader(None)?;
        let p = app_pids(&self.url(), app);
        (running_executors(&self.json(l)?, "id", app) == executors && p.len() == processes)
            .then_some(p)
    }

    /// Master `i` is a STANDBY following master `leader` and lists the same history.
    pub fn follows(&self, i: usize, leader: usize) -> bool {
        let Some(j) = self.json(i) else {
            return false;
        };
        j["status"] == "STANDBY"
            && j["leader"] == self.advertised[leader]
            && self
                .json(leader)
                .is_some_and(|l| history(&j) == history(&l))
    }

    /// The index of the master that says it is the ALIVE leader, if exactly one of the
    /// running masters (other than `except`) does.
    pub fn alive_leader(&self, except: Option<usize>) -> Option<usize> {
        let alive: Vec<usize> = (0..self.masters.len())
            .filter(|i| Some(*i) != except)
            .filter(|i| {
                self.json(*i)
                    .is_some_and(|j| j["status"] == "ALIVE" && j["leader"] == self.advertised[*i])
            })
            .collect();
        (alive.len() == 1).then(|| alive[0])
    }
}

/// The unlabelled samples of the `/metrics` of the master whose HTTP port is `http`, by
/// name.
pub fn metrics(http: u16) -> Option<std::collections::HashMap<String, f64>> {
    let url = format!("http://127.0.0.1:{http}/metrics");
    let (code, body) = crate::harness::http_get(&url).ok()?;
    (code == 200).then(|| {
        body.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once(' '))
            .filter_map(|(k, v)| Some((k.to_owned(), v.trim().parse().ok()?)))
            .collect()
    })
}

/// One gauge of a master's `/metrics` ([`metrics`]).
pub fn gauge(http: u16, name: &str) -> Option<f64> {
    metrics(http)?.get(name).copied()
}

/// `http_get` with a read deadline (a SIGSTOPped master accepts and never answers).
pub fn http_get_within(url: &str, timeout: Duration) -> Option<(u16, String)> {
    get_within(url, None, timeout)
}

/// [`get_over`] with a read deadline.
pub fn get_within(url: &str, tls: Option<&TlsFiles>, timeout: Duration) -> Option<(u16, String)> {
    let start = Instant::now();
    let url = url.to_owned();
    let tls = tls.cloned();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(get_over(&url, tls.as_ref()).ok());
    });
    rx.recv_timeout(timeout.saturating_sub(start.elapsed()))
        .ok()
        .flatten()
}

/// The RUNNING executors of the active app with `key` (`id` or `name`) equal to `value`,
/// in a master's `/json`.
pub fn running_executors(j: &Value, key: &str, value: &str) -> usize {
    j["activeapps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a[key] == value)
        .flat_map(|a| a["executors"].as_array().cloned().unwrap_or_default())
        .filter(|e| e["state"] == "RUNNING")
        .count()
}

/// The ids and states of every app a master's `/json` lists, active and completed,
/// sorted: what every master of a group must agree on.
pub fn history(j: &Value) -> Vec<(String, String)> {
    let mut h: Vec<(String, String)> = ["activeapps", "completedapps"]
        .iter()
        .filter_map(|k| j[*k].as_array())
        .flatten()
        .map(|a| {
            (
                a["id"].as_str().unwrap_or("").to_owned(),
                a["state"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    h.sort();
    h
}

/// A master's `/json` as the failover engine reads a view: its status, the leader it
/// names, its ALIVE workers and its apps with their RUNNING executors. `None` if `j` is
/// not a master's `/json`.
pub fn master_view(j: &Value) -> Option<MasterView> {
    let app = |a: &Value, active: bool| AppSeen {
        id: AppId::from(a["id"].as_str().unwrap_or("")),
        name: a["name"].as_str().unwrap_or("").to_owned(),
        active,
        running: (a["executors"].as_array().into_iter().flatten())
            .filter(|e| e["state"] == "RUNNING")
            .filter_map(|e| e["id"].as_u64().map(|id| id as u32))
            .collect(),
    };
    let apps = |key: &str, active: bool| {
        (j[key].as_array().into_iter().flatten()).map(move |a| app(a, active))
    };
    Some(MasterView {
        role: j["status"].as_str()?.parse().ok()?,
        leader: (j["leader"].as_str())
            .filter(|l| !l.is_empty())
            .map(str::to_owned),
        alive_workers: j["aliveworkers"].as_u64().unwrap_or(0) as usize,
        apps: apps("activeapps", true)
            .chain(apps("completedapps", false))
            .collect(),
    })
}
