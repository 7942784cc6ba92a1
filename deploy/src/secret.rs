//! The cluster secret of this `hearth` process (`--secret-file` / `HEARTH_SECRET_FILE`)
//! and its TLS certificate (`--tls-cert/--tls-key/--tls-ca`), read once at start:
//! servers check the secret on their ports and send it to their peers, the CLI sends it
//! with every request (see `hearth_proto::auth`); with TLS every port and every
//! connection is mutual TLS (`hearth_proto::tls`). `hearth secret new` makes a secret,
//! `hearth tls new-ca` / `new-cert` a CA and certificates.

use crate::{Failure, Outcome};
use clap::Subcommand;
use hearth_proto::auth::{Credential, Secret};
use hearth_proto::tls::{Generate, Tls, TlsFiles};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

static SECRET: OnceLock<Option<Secret>> = OnceLock::new();
static TLS: OnceLock<Option<Tls>> = OnceLock::new();

/// `--tls-cert`, `--tls-key`, `--tls-ca`, as given.
pub type TlsArgs = (Option<PathBuf>, Option<PathBuf>, Option<PathBuf>);

/// Reads the secret file and the TLS files, if given; a bad one is a usage error saying
/// what to do.
pub fn init(path: Option<&Path>, tls: TlsArgs) -> Outcome {
    let secret = path.map(Secret::read).transpose().map_err(Failure::Usage)?;
    let _ = SECRET.set(secret);
    let tls = match tls {
        (None, None, None) => None,
        (Some(cert), Some(key), Some(ca)) => {
            Some(Tls::read(&TlsFiles { cert, key, ca }).map_err(Failure::Usage)?)
        }
        _ => {
            return Err(Failure::Usage(
                "TLS needs all three of --tls-cert, --tls-key and --tls-ca (HEARTH_TLS_CERT, HEARTH_TLS_KEY, HEARTH_TLS_CA)".into(),
            ))
        }
    };
    let _ = TLS.set(tls);
    Ok(())
}

/// The TLS set-up read at start, if any.
pub fn tls() -> Option<Tls> {
    TLS.get().cloned().flatten()
}

/// The secret read at start, if any.
pub fn get() -> Option<Secret> {
    SECRET.get().cloned().flatten()
}

/// What this process shows: the secret, if any, and its TLS certificate, if any.
pub fn credential() -> Credential {
    Credential::new(get().as_ref()).with_tls(tls().as_ref())
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

#[derive(Subcommand)]
pub enum TlsCmd {
    /// Make a cluster CA in DIR (created 0700): `ca.pem` (give it to every master, worker
    /// and client as --tls-ca) and `ca-key.pem` (keep it offline; it signs members).
    NewCa {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// Make a member's certificate `NAME.pem` and key `NAME-key.pem` in DIR, signed by
    /// DIR's CA, valid as server and client for every --host (the names and IP
    /// addresses others dial it by: its --host, --advertise, the addresses in --peers
    /// and HEARTH_MASTERS).
    NewCert {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// File name and common name, e.g. `master1`.
        #[arg(long)]
        name: String,
        /// A DNS name or IP address the certificate is valid for (repeat).
        #[arg(long = "host", required = true)]
        hosts: Vec<String>,
    },
}

pub fn tls_run(cmd: TlsCmd) -> Outcome {
    let written = match &cmd {
        TlsCmd::NewCa { dir } => hearth_proto::tls::generate(dir, Generate::Ca),
        TlsCmd::NewCert { dir, name, hosts } => {
            hearth_proto::tls::generate(dir, Generate::Cert { name, hosts })
        }
    }
    .map_err(Failure::Request)?;
    for path in written {
        println!("wrote {}", path.display());
    }
    Ok(())
}
