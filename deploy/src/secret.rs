//! The cluster secret of this `hearth` process (`--secret-file` / `HEARTH_SECRET_FILE`),
//! read once at start: servers check it on their ports and send it to their peers, the
//! CLI sends it with every request (see `hearth_proto::auth`). `hearth secret new` makes
//! one.

use crate::{Failure, Outcome};
use clap::Subcommand;
use hearth_proto::auth::{Credential, Secret};
use std::net::IpAddr;
use std::path::Path;
use std::sync::OnceLock;

static SECRET: OnceLock<Option<Secret>> = OnceLock::new();

/// Reads the secret file, if one is given; a bad one is a usage error saying what to do.
pub fn init(path: Option<&Path>) -> Outcome {
    let secret = path.map(Secret::read).transpose().map_err(Failure::Usage)?;
    let _ = SECRET.set(secret);
    Ok(())
}

/// The secret read at start, if any.
pub fn get() -> Option<Secret> {
    SECRET.get().cloned().flatten()
}

/// What this process sends: the secret, if any.
pub fn credential() -> Credential {
    Credential::new(get().as_ref())
}

/// Whether `host` is only reachable from this machine.
fn loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A server bound to an address other machines can reach needs the secret: anyone who
/// reaches an unguarded port can run commands on every worker. `--insecure-no-auth` is
/// the explicit way out, logged loudly.
pub fn check_exposure(host: &str, insecure: bool, what: &str) -> Outcome {
    if get().is_some() || loopback(host) {
        return Ok(());
    }
    if insecure {
        tracing::warn!(
            host,
            "--insecure-no-auth: this {what} obeys anyone who reaches its port; give every master, worker and client the same --secret-file instead"
        );
        return Ok(());
    }
    Err(Failure::Usage(format!(
        "this {what} would listen on {host}, reachable from other machines, without a cluster secret: \
         anyone reaching it could run commands on the workers. Make one with \
         `hearth secret new > /etc/hearth/secret && chmod 600 /etc/hearth/secret` and give every master, \
         worker and client `--secret-file /etc/hearth/secret` (or HEARTH_SECRET_FILE); \
         or pass --insecure-no-auth to run unprotected"
    )))
}

#[derive(Subcommand)]
pub enum SecretCmd {
    /// Print a new random secret (32 bytes from the kernel, as 64 hex digits); save it in
    /// a file only its owner may read and give that file to every master, worker and
    /// client as --secret-file.
    New,
}

pub fn run(cmd: SecretCmd) -> Outcome {
    match cmd {
        SecretCmd::New => {
            println!("{}", Secret::random_text()?);
            Ok(())
        }
    }
}
