//! `hearth cluster members|add-master|remove-master|transfer-leader|snapshot`: Raft
//! administration of a running group of masters (`--recovery-mode raft`), through
//! hearth-client's `AdminClient`.
//!
//! Owns: the subcommands' flags and how their answers are printed (tables, or JSON with
//! `--json`). Must not: decide anything about membership or leadership (the leader
//! does, and refuses what it must) or retry a change whose outcome is unknown.

use crate::units::parse_duration;
use crate::{Failure, Outcome};
use clap::Subcommand;
use hearth_client::admin::{AdminClient, RaftMembers};
use serde_json::json;
use std::time::Duration;

#[derive(Subcommand)]
pub enum ClusterCmd {
    /// Every master of the Raft group: id, address, role, and (from the leader) the log
    /// index replicated to it.
    Members {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Take the answer of the first master that replies even if it does not lead
        /// (no replication progress); for when no leader is elected.
        #[arg(long)]
        any: bool,
    },
    /// Add a master: start it first on an empty --recovery-dir with --id ID and --peers
    /// listing the current members and itself. It joins as a learner, catches up, and is
    /// then made a voter.
    AddMaster {
        /// Its Raft id (`hearth master --id`), unused by any member.
        id: u64,
        /// Its gRPC address, host:port, exactly as in its --peers entry.
        address: String,
        /// How long it may take to catch up and become a voter.
        #[arg(long, default_value = "60s", value_parser = parse_duration)]
        timeout: Duration,
        #[arg(long)]
        json: bool,
    },
    /// Remove a master from the group (then stop it). The leader may remove itself: it
    /// steps down and the others elect a new leader. The last voter cannot be removed.
    RemoveMaster {
        id: u64,
        #[arg(long, default_value = "30s", value_parser = parse_duration)]
        timeout: Duration,
        #[arg(long)]
        json: bool,
    },
    /// Move leadership off the current leader (before maintenance on it): to --to, else
    /// to the most caught-up follower. Writes pause for about one election timeout.
    TransferLeader {
        /// The voter that should lead.
        #[arg(long)]
        to: Option<u64>,
        #[arg(long, default_value = "10s", value_parser = parse_duration)]
        timeout: Duration,
        #[arg(long)]
        json: bool,
    },
    /// Build a Raft snapshot now (on the leader, or on master --id), so a restart
    /// replays less log and the log before it can be dropped.
    Snapshot {
        /// The master to build it on (default: the leader).
        #[arg(long)]
        id: Option<u64>,
        #[arg(long, default_value = "30s", value_parser = parse_duration)]
        timeout: Duration,
        #[arg(long)]
        json: bool,
    },
}

fn client(master: Option<String>) -> Result<AdminClient, Failure> {
    let url = master.ok_or_else(|| {
        Failure::Usage(
            "no master given: pass --master hearth://host:port or set HEARTH_MASTERS".into(),
        )
    })?;
    let client = AdminClient::from_url(&url).map_err(|e| Failure::Usage(e.to_string()))?;
    Ok(client.with_credential(crate::secret::credential()))
}

pub async fn run(master: Option<String>, cmd: ClusterCmd) -> Outcome {
    let c = client(master)?;
    match cmd {
        ClusterCmd::Members { json, any } => {
            let m = c.members(!any).await?;
            show(&m, json)?;
        }
        ClusterCmd::AddMaster {
            id,
            address,
            timeout,
            json,
        } => {
            let address = address.trim().to_owned();
            let host_port = address.rsplit_once(':').is_some_and(|(host, port)| {
                !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
            });
            if !host_port {
                return Err(Failure::Usage(format!(
                    "{address:?} is not host:port; give the new master's gRPC address as in its --peers entry"
                )));
            }
            let m = c.add_master(id, &address, timeout).await?;
            show(&m, json)?;
        }
        ClusterCmd::RemoveMaster { id, timeout, json } => {
            let m = c.remove_master(id, timeout).await?;
            show(&m, json)?;
        }
        ClusterCmd::TransferLeader { to, timeout, json } => {
            let t = c.transfer_leader(to, timeout).await?;
            if json {
                let doc = json!({
                    "leader_id": t.leader_id,
                    "leader_address": t.leader_address,
                    "term": t.term,
                    "previous_leader_id": t.previous_leader_id,
                    "message": t.message,
                });
                println!("{}", serde_json::to_string_pretty(&doc)?);
            } else {
                println!("{}", t.message);
            }
        }
        ClusterCmd::Snapshot { id, timeout, json } => {
            let s = c.snapshot(id, timeout).await?;
            if json {
                let doc = json!({
                    "master": s.answered_by,
                    "index": s.index,
                    "term": s.term,
                    "previous_index": s.previous_index,
                    "built": s.built,
                });
                println!("{}", serde_json::to_string_pretty(&doc)?);
            } else if s.built {
                println!(
                    "master {} built a snapshot up to log index {} (term {}); the previous one was at {}",
                    s.answered_by,
                    s.index,
                    s.term,
                    s.previous_index
                        .map_or_else(|| "none".to_owned(), |i| i.to_string())
                );
            } else {
                println!(
                    "master {}: nothing was applied since the snapshot at log index {}; none built",
                    s.answered_by, s.index
                );
            }
        }
    }
    Ok(())
}

fn opt(v: Option<u64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// `RaftMembers` as the `--json` document.
fn members_json(m: &RaftMembers) -> serde_json::Value {
    json!({
        "answered_by": m.answered_by,
        "term": m.term,
        "leader_id": m.leader_id,
        "leader_address": m.leader_address,
        "last_log_index": m.last_log_index,
        "last_applied_index": m.last_applied_index,
        "snapshot_index": m.snapshot_index,
        "joint": m.joint,
        "message": m.message,
        "members": m.members.iter().map(|x| json!({
            "id": x.id,
            "address": x.address,
            "role": x.role.as_str(),
            "voter": x.voter,
            "matched_index": x.matched_index,
        })).collect::<Vec<_>>(),
    })
}

fn show(m: &RaftMembers, json: bool) -> Outcome {
    if json {
        println!("{}", serde_json::to_string_pretty(&members_json(m))?);
        return Ok(());
    }
    if !m.message.is_empty() {
        println!("{}", m.message);
    }
    let leader = match (m.leader_id, &m.leader_address) {
        (Some(id), Some(addr)) => format!("{id} ({addr})"),
        (Some(id), None) => id.to_string(),
        _ => "none known".to_owned(),
    };
    println!(
        "leader {leader}  term {}  answered by {}  log {}  applied {}  snapshot {}",
        m.term,
        m.answered_by,
        opt(m.last_log_index),
        opt(m.last_applied_index),
        opt(m.snapshot_index),
    );
    if m.joint {
        println!("a membership change is in progress (joint membership)");
    }
    println!(
        "{:<6} {:<28} {:<12} {:<6} {:>8}",
        "ID", "ADDRESS", "ROLE", "VOTER", "MATCHED"
    );
    for x in &m.members {
        println!(
            "{:<6} {:<28} {:<12} {:<6} {:>8}",
            x.id,
            x.address,
            x.role.as_str(),
            if x.voter { "yes" } else { "no" },
            opt(x.matched_index)
        );
    }
    Ok(())
}
