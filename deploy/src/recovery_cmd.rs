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
    /// Seed an empty recovery directory from an exported document.
    Import {
        /// The exported document.
        #[arg(long)]
        file: PathBuf,
        #[arg(long)]
        dir: PathBuf,
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
        RecoveryCmd::Import { file, dir } => {
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
