//! `hearth status`, `app`, `driver`, `worker-admin`: read the leader's snapshot and print
//! it, or send one request.
//!
//! Paging (README "The CLI"; the rules are hearth-core's `listing`): `app list`, `driver
//! list` and `worker-admin list` take `--state S[,S...]`, `--offset K` and `--limit N`,
//! applied on the master (`GetState`), so only the page crosses the wire. Given any of
//! them, a line on stderr says how many were shown of how many and, when more remain,
//! the `--offset` of the next page; without them the output is what it always was.
//! `hearth status` prints the counts and the first 20 workers, apps and drivers (with a
//! line saying how many more and how to see them), `--limit`/`--offset`/`--state` to
//! choose others, `--all` for every one; `hearth status --json` prints the whole `/json`
//! document unless given `--state`, `--offset` or `--limit` (then that page of it, with
//! its `*total` fields).

use crate::{Failure, Outcome};
use clap::{Args, Subcommand};
use hearth_client::MasterClient;
use hearth_core::listing::{parse_states, Kind, ListQuery};
use hearth_core::{AppId, AppInfo, DriverId, DriverInfo, WorkerId, WorkerState};
use hearth_proto::convert::json::status_json;
use hearth_proto::convert::StatusView;

/// The filter and page of a list: `--state`, `--offset`, `--limit`.
#[derive(Args, Debug, Default, Clone)]
pub struct PageArgs {
    /// Only those in one of these states (comma-separated, any case; the command's
    /// `--help` lists its states).
    #[arg(long, value_name = "STATE[,STATE...]")]
    pub state: Option<String>,
    /// Skip the first K (after --state), in the order listed.
    #[arg(long, value_name = "K")]
    pub offset: Option<usize>,
    /// Show at most N (after --offset). 0: only count them.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
}

impl PageArgs {
    /// The query these flags ask for; a state that `kinds` do not have is bad usage.
    fn query(&self, kinds: &[Kind]) -> Result<ListQuery, Failure> {
        let states = match &self.state {
            Some(text) => Some(parse_states(text, kinds).map_err(Failure::Usage)?),
            None => None,
        };
        Ok(ListQuery {
            states,
            offset: self.offset,
            limit: self.limit,
        })
    }
}

/// `hearth status`.
#[derive(Args, Debug, Default)]
pub struct StatusArgs {
    /// Print the /json document instead of tables (the whole document, unless --state,
    /// --offset or --limit is given: then that page of it, with workerstotal, appstotal
    /// and driverstotal).
    #[arg(long)]
    pub json: bool,
    /// Only workers, apps and drivers in one of these states (comma-separated, any
    /// case): workers ALIVE, DEAD, DECOMMISSIONED, UNKNOWN, DRAINING; apps WAITING,
    /// RUNNING, FINISHED, FAILED, KILLED, UNKNOWN; drivers SUBMITTED, RUNNING,
    /// RELAUNCHING, FINISHED, FAILED, KILLED, ERROR, UNKNOWN. A list whose kind has none
    /// of them shows none: `--state RUNNING,ALIVE` shows running apps and drivers and
    /// alive workers.
    #[arg(long, value_name = "STATE[,STATE...]")]
    pub state: Option<String>,
    /// Skip the first K workers, the first K apps (active, then completed) and the
    /// first K drivers (active, then completed).
    #[arg(long, value_name = "K", conflicts_with = "all")]
    pub offset: Option<usize>,
    /// Show at most N workers, N apps and N drivers [default without --json: 20].
    #[arg(long, value_name = "N", conflicts_with = "all")]
    pub limit: Option<usize>,
    /// Show every worker, app and driver (no --limit).
    #[arg(long)]
    pub all: bool,
}

/// How many workers, apps and drivers `hearth status` shows without `--limit`.
pub const STATUS_ROWS: usize = 20;

#[derive(Subcommand)]
pub enum AppCmd {
    /// Active and completed apps (active first, each oldest first).
    ///
    /// --state keeps the apps in one of WAITING, RUNNING, FINISHED, FAILED, KILLED,
    /// UNKNOWN; --offset K skips the first K of those, --limit N shows at most N. With
    /// any of them, stderr says how many were shown of how many, and the --offset of the
    /// next page when more remain.
    List(PageArgs),
    /// One app with its executors, as JSON.
    Show { id: String },
    /// Kill an app: its executors and, in cluster mode, its driver.
    Kill { id: String },
    /// Set how many executors an app may have.
    Scale {
        id: String,
        #[arg(long)]
        executors: u32,
    },
}

#[derive(Subcommand)]
pub enum DriverCmd {
    /// Active and completed drivers (active first, each oldest first).
    ///
    /// --state keeps the drivers in one of SUBMITTED, RUNNING, RELAUNCHING, FINISHED,
    /// FAILED, KILLED, ERROR, UNKNOWN; --offset K skips the first K of those, --limit N
    /// shows at most N. With any of them, stderr says how many were shown of how many,
    /// and the --offset of the next page when more remain.
    List(PageArgs),
    /// One driver, as JSON.
    Show { id: String },
    /// Kill a driver (and so its app).
    Kill { id: String },
}

#[derive(Subcommand)]
pub enum WorkerAdminCmd {
    /// Every worker the leader knows (by id).
    ///
    /// --state keeps the workers in one of ALIVE, DEAD, DECOMMISSIONED, UNKNOWN,
    /// DRAINING; --offset K skips the first K of those, --limit N shows at most N. With
    /// any of them, stderr says how many were shown of how many, and the --offset of the
    /// next page when more remain.
    List(PageArgs),
    /// Place nothing new on a worker; what runs there keeps running.
    Decommission { id: String },
    /// Drain a worker (an id), or every worker on a host: nothing new is placed there,
    /// what runs there may finish until the deadline, then it is killed and placed
    /// elsewhere and the worker stays DECOMMISSIONED. Again: a new deadline.
    Drain {
        /// A worker id, or a host (every worker registered from it).
        target: String,
        /// How long running work may keep running, from when the leader accepts the
        /// drain (default 1h, as Nomad's `node drain -deadline`).
        #[arg(long, default_value = "1h", value_parser = crate::units::parse_duration)]
        deadline: std::time::Duration,
    },
    /// A draining or decommissioned worker (an id, or every worker on a host) takes
    /// placements again.
    Undrain {
        /// A worker id, or a host.
        target: String,
    },
}

pub fn client(master: Option<String>) -> Result<MasterClient, Failure> {
    let url = master.ok_or_else(|| {
        Failure::Usage(
            "no master given: pass --master hearth://host:port or set HEARTH_MASTERS".into(),
        )
    })?;
    let client = MasterClient::from_url(&url).map_err(|e| Failure::Usage(e.to_string()))?;
    Ok(client.with_credential(crate::secret::credential()))
}

pub async fn status(client: &MasterClient, args: StatusArgs) -> Outcome {
    let page = PageArgs {
        state: args.state,
        offset: args.offset,
        limit: args.limit,
    };
    let mut q = page.query(&Kind::ALL)?;
    if args.json {
        let s = client.state_listed(&q).await?;
        println!("{}", serde_json::to_string_pretty(&status_json(&s))?);
        return Ok(());
    }
    if !args.all && q.limit.is_none() {
        q.limit = Some(STATUS_ROWS);
    }
    let s = client.state_listed(&q).await?;
    println!(
        "status {}  leader {}  term {}",
        s.status,
        s.leader.as_deref().unwrap_or("unknown"),
        s.term
    );
    for m in &s.masters {
        println!("master {} {} {}", m.id, m.address, m.role);
    }
    let t = s.totals();
    let c = t.capacity;
    println!(
        "workers {}  apps {}  drivers {}  alive workers {}  cores used {}/{}  memory used {}/{} MiB",
        t.workers, t.apps, t.drivers, c.alive_workers, c.cores_used, c.cores, c.memory_used_mb, c.memory_mb
    );
    let more = |kind: Kind, shown: usize, total: usize| {
        if let Some(next) = q.next_offset(shown, total) {
            println!(
                "... {} more {}: hearth status --offset {next} (or --limit N, --all)",
                total - next,
                kind.plural()
            );
        }
    };
    print_workers(&s);
    more(Kind::Worker, s.workers.len(), t.workers);
    print_apps(s.active_apps.iter().chain(&s.completed_apps));
    more(
        Kind::App,
        s.active_apps.len() + s.completed_apps.len(),
        t.apps,
    );
    print_drivers(s.active_drivers.iter().chain(&s.completed_drivers));
    more(
        Kind::Driver,
        s.active_drivers.len() + s.completed_drivers.len(),
        t.drivers,
    );
    Ok(())
}

/// What a paged list says on stderr: how many of how many were shown, and where the next
/// page starts when more remain.
fn page_note(q: &ListQuery, kind: Kind, shown: usize, total: usize) -> String {
    let mut note = format!("{shown} of {total} {} shown", kind.plural());
    if let Some(next) = q.next_offset(shown, total) {
        note.push_str(&format!("; the next page: --offset {next}"));
    }
    note
}

/// The leader's status filtered and paged by `page` for a list of `kind` (a state of
/// another kind is bad usage): the view and the query it answered.
async fn listed(
    client: &MasterClient,
    page: &PageArgs,
    kind: Kind,
) -> Result<(StatusView, ListQuery), Failure> {
    let q = page.query(&[kind])?;
    Ok((client.state_listed(&q).await?, q))
}

fn note_if_paged(q: &ListQuery, kind: Kind, shown: usize, total: usize) {
    if q.is_given() {
        eprintln!("{}", page_note(q, kind, shown, total));
    }
}

fn print_workers(s: &StatusView) {
    println!(
        "{:<44} {:<22} {:<15} {:>11} {:>17}",
        "WORKER", "ADDRESS", "STATE", "CORES USED", "MEMORY USED (MiB)"
    );
    for w in &s.workers {
        let i = &w.info;
        let until = i
            .state
            .drain_deadline()
            .map_or(String::new(), |t| format!("  until {t}"));
        println!(
            "{:<44} {:<22} {:<15} {:>11} {:>17}{until}",
            i.identity.id.as_str(),
            i.identity.addr(),
            i.state.as_str(),
            format!("{}/{}", i.cores_used, i.identity.cores),
            format!("{}/{}", i.memory_used_mb, i.identity.memory_mb)
        );
    }
}

fn print_apps<'a>(apps: impl Iterator<Item = &'a AppInfo>) {
    println!(
        "{:<26} {:<20} {:<9} {:>5} {:>9}  DRIVER",
        "APP", "NAME", "STATE", "CORES", "EXECUTORS"
    );
    for a in apps {
        println!(
            "{:<26} {:<20} {:<9} {:>5} {:>9}  {}",
            a.id.as_str(),
            a.desc.name,
            a.state.as_str(),
            a.cores_granted(),
            a.executors.len(),
            a.driver.as_ref().map_or("(client mode)", |d| d.as_str())
        );
    }
}

fn print_drivers<'a>(drivers: impl Iterator<Item = &'a DriverInfo>) {
    println!("{:<29} {:<26} {:<11} WORKER", "DRIVER", "APP", "STATE");
    for d in drivers {
        println!(
            "{:<29} {:<26} {:<11} {}",
            d.id.as_str(),
            d.app.as_str(),
            d.state.as_str(),
            d.worker.as_ref().map_or("-", |w| w.as_str())
        );
    }
}

/// The `/json` entry of one app or driver, found by id among active and completed ones.
fn find_json(s: &StatusView, lists: [&str; 2], id: &str) -> Option<serde_json::Value> {
    let doc = status_json(s);
    lists
        .iter()
        .filter_map(|l| doc[*l].as_array())
        .flatten()
        .find(|v| v["id"] == id)
        .cloned()
}

/// Prints the `/json` entry of one app or driver.
async fn show(client: &MasterClient, lists: [&str; 2], what: &str, id: &str) -> Outcome {
    let s = client.state().await?;
    let v =
        find_json(&s, lists, id).ok_or_else(|| Failure::Request(format!("unknown {what} {id}")))?;
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}

fn killed(id: &str, changed: bool) {
    println!(
        "{id} {}",
        if changed {
            "killed"
        } else {
            "had already ended"
        }
    );
}

pub async fn app(client: &MasterClient, cmd: AppCmd) -> Outcome {
    match cmd {
        AppCmd::List(page) => {
            let (s, q) = listed(client, &page, Kind::App).await?;
            print_apps(s.active_apps.iter().chain(&s.completed_apps));
            let shown = s.active_apps.len() + s.completed_apps.len();
            note_if_paged(&q, Kind::App, shown, s.totals().apps);
        }
        AppCmd::Show { id } => show(client, ["activeapps", "completedapps"], "app", &id).await?,
        AppCmd::Kill { id } => killed(&id, client.kill_app(&AppId(id.clone())).await?),
        AppCmd::Scale { id, executors } => {
            client.scale_app(&AppId(id.clone()), executors).await?;
            println!("{id} scaled to at most {executors} executors");
        }
    }
    Ok(())
}

pub async fn driver(client: &MasterClient, cmd: DriverCmd) -> Outcome {
    match cmd {
        DriverCmd::List(page) => {
            let (s, q) = listed(client, &page, Kind::Driver).await?;
            print_drivers(s.active_drivers.iter().chain(&s.completed_drivers));
            let shown = s.active_drivers.len() + s.completed_drivers.len();
            note_if_paged(&q, Kind::Driver, shown, s.totals().drivers);
        }
        DriverCmd::Show { id } => {
            show(client, ["activedrivers", "completeddrivers"], "driver", &id).await?
        }
        DriverCmd::Kill { id } => killed(&id, client.kill_driver(&DriverId(id.clone())).await?),
    }
    Ok(())
}

pub async fn worker_admin(client: &MasterClient, cmd: WorkerAdminCmd) -> Outcome {
    match cmd {
        WorkerAdminCmd::List(page) => {
            let (s, q) = listed(client, &page, Kind::Worker).await?;
            print_workers(&s);
            note_if_paged(&q, Kind::Worker, s.workers.len(), s.totals().workers);
        }
        WorkerAdminCmd::Decommission { id } => {
            let changed = client.decommission_worker(&WorkerId(id.clone())).await?;
            println!(
                "{id} {}",
                if changed {
                    "decommissioned"
                } else {
                    "was already decommissioned"
                }
            );
        }
        WorkerAdminCmd::Drain { target, deadline } => {
            let workers = named_workers(&client.state().await?, &target)?;
            let grace = humantime::format_duration(deadline);
            for w in &workers {
                client.drain_worker(w, deadline).await?;
                println!(
                    "{w} draining: what still runs there in {grace} is killed and placed elsewhere"
                );
            }
        }
        WorkerAdminCmd::Undrain { target } => {
            for w in named_workers(&client.state().await?, &target)? {
                let changed = client.undrain_worker(&w).await?;
                println!(
                    "{w} {}",
                    if changed {
                        "undrained: takes placements again"
                    } else {
                        "was not draining or decommissioned"
                    }
                );
            }
        }
    }
    Ok(())
}

/// The workers `target` names, saying so when a host names several: the worker with that
/// id, else every worker registered from that host that is not DEAD.
fn named_workers(s: &StatusView, target: &str) -> Result<Vec<WorkerId>, Failure> {
    let (ids, note) = resolve_workers(s, target).map_err(Failure::Request)?;
    if let Some(note) = note {
        println!("{note}");
    }
    Ok(ids)
}

/// [`named_workers`] without the printing: the ids, and a note when a host names several.
fn resolve_workers(
    s: &StatusView,
    target: &str,
) -> Result<(Vec<WorkerId>, Option<String>), String> {
    if let Some(w) = s
        .workers
        .iter()
        .find(|w| w.info.identity.id.as_str() == target)
    {
        return Ok((vec![w.info.identity.id.clone()], None));
    }
    let on_host: Vec<_> = s
        .workers
        .iter()
        .filter(|w| w.info.identity.host == target)
        .collect();
    let live: Vec<WorkerId> = on_host
        .iter()
        .filter(|w| w.info.state != WorkerState::Dead)
        .map(|w| w.info.identity.id.clone())
        .collect();
    if live.is_empty() {
        if !on_host.is_empty() {
            return Err(format!(
                "every worker on host {target} is DEAD ({} of them)",
                on_host.len()
            ));
        }
        let hosts: std::collections::BTreeSet<_> = s
            .workers
            .iter()
            .map(|w| w.info.identity.host.as_str())
            .collect();
        let known = if hosts.is_empty() {
            "none".to_owned()
        } else {
            hosts.into_iter().collect::<Vec<_>>().join(", ")
        };
        return Err(format!(
            "no worker has the id or host {target}; hosts with workers: {known}"
        ));
    }
    let note = (live.len() > 1).then(|| {
        let names: Vec<_> = live.iter().map(|w| w.as_str()).collect();
        format!(
            "host {target} has {} workers: {}",
            live.len(),
            names.join(", ")
        )
    });
    Ok((live, note))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_core::{Millis, WorkerIdentity, WorkerInfo};
    use hearth_proto::convert::WorkerStatus;

    fn view(workers: &[(&str, &str, WorkerState)]) -> StatusView {
        StatusView {
            status: hearth_core::MasterRole::Alive,
            leader: None,
            term: 1,
            masters: vec![],
            workers: workers
                .iter()
                .map(|&(id, host, state)| WorkerStatus {
                    info: WorkerInfo {
                        identity: WorkerIdentity {
                            id: WorkerId(id.into()),
                            host: host.into(),
                            port: 7078,
                            http_port: 0,
                            cores: 4,
                            memory_mb: 1024,
                        },
                        cores_used: 0,
                        memory_used_mb: 0,
                        state,
                        registered_at: Millis(0),
                        dead_since: None,
                        executors: Default::default(),
                        drivers: Default::default(),
                    },
                    last_heartbeat: None,
                })
                .collect(),
            active_apps: vec![],
            completed_apps: vec![],
            active_drivers: vec![],
            completed_drivers: vec![],
            now: Millis(0),
            totals: None,
        }
    }

    fn ids(v: &[WorkerId]) -> Vec<&str> {
        v.iter().map(|w| w.as_str()).collect()
    }

    #[test]
    fn a_target_is_an_id_else_every_live_worker_on_that_host() {
        let s = view(&[
            ("w-1", "h1", WorkerState::Alive),
            (
                "w-2",
                "h1",
                WorkerState::Draining {
                    deadline: Millis(5),
                },
            ),
            ("w-3", "h1", WorkerState::Dead),
            ("w-4", "h2", WorkerState::Alive),
            ("w-5", "h3", WorkerState::Dead),
        ]);
        let (one, note) = resolve_workers(&s, "w-3").unwrap();
        assert_eq!((ids(&one), note), (vec!["w-3"], None));
        let (one, note) = resolve_workers(&s, "h2").unwrap();
        assert_eq!((ids(&one), note), (vec!["w-4"], None));
        let (two, note) = resolve_workers(&s, "h1").unwrap();
        assert_eq!(ids(&two), vec!["w-1", "w-2"]);
        assert_eq!(note.as_deref(), Some("host h1 has 2 workers: w-1, w-2"));
        assert_eq!(
            resolve_workers(&s, "h3").unwrap_err(),
            "every worker on host h3 is DEAD (1 of them)"
        );
        assert_eq!(
            resolve_workers(&s, "h9").unwrap_err(),
            "no worker has the id or host h9; hosts with workers: h1, h2, h3"
        );
        assert_eq!(
            resolve_workers(&view(&[]), "h9").unwrap_err(),
            "no worker has the id or host h9; hosts with workers: none"
        );
    }
}
