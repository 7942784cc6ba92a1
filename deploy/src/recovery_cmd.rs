//! `hearth recovery inspect|verify|export|import`: offline tools on a stopped master's
//! FILESYSTEM recovery directory.

use crate::{Failure, Outcome};
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum RecoveryCmd {
    /// Show snapshots, journal segments, record counts and the last command.
    Inspect {
        #[arg(long)]
        dir: PathBuf,
    },
    /// Check every snapshot and record and replay them; exit 1 naming the exact bad
    /// record (file, record, offset) on any corruption.
    Verify {
        #[arg(long)]
        dir: PathBuf,
    },
    /// Write the restored state to one versioned JSON document (recovery/FORMAT.md).
    Export {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Seed an empty recovery directory from an exported document: a FILESYSTEM
    /// directory, or with --raft-peers a Raft master's directory (do it for every
    /// master's directory with the same file and peers, then start them; they do not
    /// initialize a new group, they start from this state).
    Import {
        /// The exported document.
        #[arg(long)]
        file: PathBuf,
        #[arg(long)]
        dir: PathBuf,
        /// Seed a Raft directory for a group of these masters (1=host:port,2=...), the
        /// same list their --peers will give.
        #[arg(long, value_name = "ID=HOST:PORT,...")]
        raft_peers: Option<String>,
    },
}

pub fn run(cmd: RecoveryCmd) -> Outcome {
    use hearth_recovery::offline;
    let fail = |e: hearth_recovery::RecoveryError| Failure::Request(e.to_string());
    match cmd {
        RecoveryCmd::Inspect { dir } => print!("{}", offline::inspect(&dir).map_err(fail)?),
        RecoveryCmd::Verify { dir } => {
            let report = offline::verify(&dir).map_err(fail)?;
            print!("{report}");
            println!("verify: OK");
        }
        RecoveryCmd::Export { dir, out } => {
            let lsn = offline::export(&dir, &out).map_err(fail)?;
            println!("exported the state as of record {lsn} to {}", out.display());
        }
        RecoveryCmd::Import {
            file,
            dir,
            raft_peers: Some(peers),
        } => {
            let voters = crate::servers::parse_peers(&peers)
                .map_err(|e| Failure::Usage(e.replace("--peers", "--raft-peers")))?
                .into_iter()
                .map(|(id, addr)| (id, hearth_raft_store::BasicNode { addr }))
                .collect();
            std::fs::create_dir_all(&dir)
                .map_err(|e| Failure::Request(format!("cannot create {}: {e}", dir.display())))?;
            let lsn = hearth_raft_store::seed_from_export(&dir, &file, &voters)
                .map_err(|e| Failure::Request(e.to_string()))?;
            println!(
                "seeded the Raft directory {} from {} (state as of record {lsn}); start every master with --peers {peers}",
                dir.display(),
                file.display(),
            );
        }
        RecoveryCmd::Import {
            file,
            dir,
            raft_peers: None,
        } => {
            let lsn = offline::import(&file, &dir).map_err(fail)?;
            println!(
                "imported {} (state as of record {lsn}) into {}",
                file.display(),
                dir.display()
            );
        }
    }
    Ok(())
}
