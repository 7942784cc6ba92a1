//! `bench-scale`'s command line: every flag with its default and its help, parsed by
//! hand (`--flag value`), refusing what it does not know.

use anyhow::{anyhow, bail, Result};
use std::time::Duration;

/// What to run.
#[derive(Clone, Debug)]
pub struct Opts {
    pub workers: usize,
    pub executors: u64,
    pub apps: u64,
    pub rounds: u64,
    pub window: Duration,
    pub worker_timeout: String,
    pub clients: usize,
    pub submissions: u64,
    pub poll: Duration,
    pub master_args: Vec<String>,
    pub keep: bool,
    pub json: bool,
    /// The simulated workers watch the masters for a new leader (`WatchLeader`).
    pub watch: bool,
}

/// Flag, value name, help (defaults are said in the help).
const FLAGS: &[(&str, &str, &str)] = &[
    ("--workers", "N", "simulated workers (default 500; at most 62,500)"),
    (
        "--executors",
        "E",
        "executors in all, one core each, spread over the apps (default 10000)",
    ),
    (
        "--apps",
        "M",
        "cluster-mode apps, each with a driver on a simulated worker (default E/1000, at least 1)",
    ),
    (
        "--rounds",
        "R",
        "failover rounds: SIGKILL the leader, measure, restart it (default 10; 0 skips)",
    ),
    (
        "--window-s",
        "S",
        "seconds of each steady-state RSS/CPU window (default 10)",
    ),
    (
        "--worker-timeout",
        "D",
        "the masters' --worker-timeout (default 60s, the product's; workers heartbeat every quarter of it)",
    ),
    (
        "--clients",
        "C",
        "master clients (one connection to each master each) the simulated workers share (default min(N, 500))",
    ),
    (
        "--submissions",
        "K",
        "commit benchmark on a fresh group of 3 masters: K submissions by 1 client, then by 256 (default 2000; 0 skips)",
    ),
    (
        "--poll-ms",
        "MS",
        "how often /readyz is polled during a failover (default 5)",
    ),
    (
        "--master-args",
        "'ARGS'",
        "more flags for every master, split at spaces (e.g. '--raft-heartbeat 100ms')",
    ),
    (
        "--keep",
        "",
        "keep the directory with the masters' logs (always kept on failure)",
    ),
    (
        "--json",
        "",
        "print one JSON object on stdout (progress goes to stderr either way)",
    ),
    (
        "--no-watch",
        "",
        "the simulated workers do not watch the masters for a new leader (as workers before WatchLeader): every one waits for the new leader's MasterChanged",
    ),
    ("--help", "", "this text"),
];

pub fn help() -> String {
    let mut s = String::from(
        "bench-scale: 3 real Raft masters (fsync, the `hearth` binary next to this one) against N \
         simulated workers in this process, with M cluster-mode apps holding E executors.\n\
         Measures the leader's RSS and CPU at steady state (workers only, then with the \
         executors), placements/s, /json and GetState time and size (whole, paged, filtered), \
         the wall time of `hearth status` (paged and --all), a snapshot's build time, \
         leader SIGKILL -> a new ALIVE leader with every worker registered again (p50/p99 over \
         R rounds), and commits/s through a fresh group.\n\n\
         usage: bench-scale [--workers N] [--executors E] [--rounds R] [--json] [...]\n\n",
    );
    for (flag, value, help) in FLAGS {
        s.push_str(&format!("  {:<28} {help}\n", format!("{flag} {value}")));
    }
    s
}

fn number<T: std::str::FromStr>(flag: &str, v: Option<String>) -> Result<T> {
    let v = v.ok_or_else(|| anyhow!("{flag} needs a value"))?;
    v.replace(['_', ','], "")
        .parse()
        .map_err(|_| anyhow!("{flag} {v}: not a number"))
}

impl Opts {
    /// `None` for `--help`.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Option<Opts>> {
        let mut o = Opts {
            workers: 500,
            executors: 10_000,
            apps: 0,
            rounds: 10,
            window: Duration::from_secs(10),
            worker_timeout: "60s".into(),
            clients: 0,
            submissions: 2000,
            poll: Duration::from_millis(5),
            master_args: Vec::new(),
            keep: false,
            json: false,
            watch: true,
        };
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            match flag.as_str() {
                "--help" | "-h" => return Ok(None),
                "--workers" => o.workers = number(&flag, args.next())?,
                "--executors" => o.executors = number(&flag, args.next())?,
                "--apps" => o.apps = number(&flag, args.next())?,
                "--rounds" => o.rounds = number(&flag, args.next())?,
                "--window-s" => {
                    o.window = Duration::from_secs_f64(number(&flag, args.next())?);
                }
                "--worker-timeout" => {
                    o.worker_timeout =
                        args.next().ok_or_else(|| anyhow!("{flag} needs a value"))?;
                }
                "--clients" => o.clients = number(&flag, args.next())?,
                "--submissions" => o.submissions = number(&flag, args.next())?,
                "--poll-ms" => o.poll = Duration::from_millis(number(&flag, args.next())?),
                "--master-args" => {
                    let v = args.next().ok_or_else(|| anyhow!("{flag} needs a value"))?;
                    o.master_args = v.split_whitespace().map(str::to_owned).collect();
                }
                "--keep" => o.keep = true,
                "--json" => o.json = true,
                "--no-watch" => o.watch = false,
                other => bail!("unknown argument {other:?}; see --help"),
            }
        }
        if o.workers == 0 || o.workers > crate::sim::MAX_WORKERS {
            bail!("--workers must be 1..={}", crate::sim::MAX_WORKERS);
        }
        if o.apps == 0 {
            o.apps = o.executors.div_ceil(1000).max(1);
        }
        if o.clients == 0 {
            o.clients = o.workers.min(500);
        }
        Ok(Some(o))
    }

    /// One core per executor and driver, spread evenly, and one spare core per worker.
    pub fn worker_cores(&self) -> u32 {
        ((self.executors + self.apps).div_ceil(self.workers as u64) + 1) as u32
    }

    /// The executors of app `i` (of `apps`): `executors` split as evenly as can be.
    pub fn executors_of(&self, i: u64) -> u32 {
        let (per, extra) = (self.executors / self.apps, self.executors % self.apps);
        (per + u64::from(i < extra)) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<Opts>> {
        Opts::parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn defaults_follow_the_size() {
        let o = parse(&["--workers", "5,000", "--executors", "100000"])
            .unwrap()
            .unwrap();
        assert_eq!(
            (o.workers, o.executors, o.apps, o.clients),
            (5000, 100_000, 100, 500)
        );
        assert_eq!(o.worker_cores(), 22);
        assert_eq!(
            (0..o.apps)
                .map(|i| u64::from(o.executors_of(i)))
                .sum::<u64>(),
            100_000
        );
        let o = parse(&["--workers", "50", "--executors", "201", "--apps", "4"])
            .unwrap()
            .unwrap();
        assert_eq!(
            (0..4).map(|i| o.executors_of(i)).collect::<Vec<_>>(),
            [51, 50, 50, 50]
        );
        assert!(parse(&["--help"]).unwrap().is_none());
        assert!(parse(&["--wrokers", "5"]).is_err());
        assert!(parse(&["--workers"]).is_err());
    }
}
