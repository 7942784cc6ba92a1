//! `hearth status`, `app`, `driver`, `worker-admin`: read the leader's snapshot and print
//! it, or send one request.

use crate::{Failure, Outcome};
use clap::Subcommand;
use hearth_client::MasterClient;
use hearth_core::{AppId, AppInfo, DriverId, DriverInfo, WorkerId};
use hearth_proto::convert::json::status_json;
use hearth_proto::convert::StatusView;

#[derive(Subcommand)]
pub enum AppCmd {
    /// Active and completed apps.
    List,
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
    /// Active and completed drivers.
    List,
    /// One driver, as JSON.
    Show { id: String },
    /// Kill a driver (and so its app).
    Kill { id: String },
}

#[derive(Subcommand)]
pub enum WorkerAdminCmd {
    /// Every worker the leader knows.
    List,
    /// Place nothing new on a worker; what runs there keeps running.
    Decommission { id: String },
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

pub async fn status(client: &MasterClient, json: bool) -> Outcome {
    let s = client.state().await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&status_json(&s))?);
        return Ok(());
    }
    println!(
        "status {}  leader {}  term {}",
        s.status,
        s.leader.as_deref().unwrap_or("unknown"),
        s.term
    );
    for m in &s.masters {
        println!("master {} {} {}", m.id, m.address, m.role);
    }
    print_workers(&s);
    print_apps(s.active_apps.iter().chain(&s.completed_apps));
    print_drivers(s.active_drivers.iter().chain(&s.completed_drivers));
    Ok(())
}

fn print_workers(s: &StatusView) {
    println!(
        "{:<44} {:<22} {:<15} {:>11} {:>17}",
        "WORKER", "ADDRESS", "STATE", "CORES USED", "MEMORY USED (MiB)"
    );
    for w in &s.workers {
        let i = &w.info;
        println!(
            "{:<44} {:<22} {:<15} {:>11} {:>17}",
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
        AppCmd::List => {
            let s = client.state().await?;
            print_apps(s.active_apps.iter().chain(&s.completed_apps));
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
        DriverCmd::List => {
            let s = client.state().await?;
            print_drivers(s.active_drivers.iter().chain(&s.completed_drivers));
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
        WorkerAdminCmd::List => print_workers(&client.state().await?),
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
    }
    Ok(())
}
