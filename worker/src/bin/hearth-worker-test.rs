//! A worker as a separate process, for hearth-worker's real-process tests (kill -9 of
//! the worker). Not an operator tool: `hearth worker` is.
//!
//! `hearth-worker-test --masters H:P[,H:P...] --work-dir DIR --guard PATH
//! [--heartbeat-ms N]` binds 127.0.0.1:0, prints `listening 127.0.0.1:PORT` on stdout,
//! and runs until SIGTERM or SIGINT.

use hearth_worker::{run, WorkerConfig};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

fn usage(why: &str) -> ! {
    eprintln!(
        "hearth-worker-test: {why}\nusage: hearth-worker-test --masters H:P[,H:P...] \
         --work-dir DIR --guard PATH [--heartbeat-ms N]"
    );
    std::process::exit(2)
}

fn config_from_args() -> WorkerConfig {
    let mut args = std::env::args().skip(1);
    let (mut masters, mut work_dir, mut guard, mut heartbeat_ms) = (None, None, None, 200);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        match flag.as_str() {
            "--masters" => masters = Some(value.split(',').map(str::to_owned).collect()),
            "--work-dir" => work_dir = Some(PathBuf::from(value)),
            "--guard" => guard = Some(vec![value]),
            "--heartbeat-ms" => {
                heartbeat_ms = value
                    .parse()
                    .unwrap_or_else(|_| usage("--heartbeat-ms takes milliseconds"))
            }
            other => usage(&format!("unknown flag {other}")),
        }
    }
    WorkerConfig {
        masters: masters.unwrap_or_else(|| usage("--masters is required")),
        host: "127.0.0.1".into(),
        cores: 4,
        memory_mb: 4096,
        work_dir: work_dir.unwrap_or_else(|| usage("--work-dir is required")),
        heartbeat_interval: Some(Duration::from_millis(heartbeat_ms)),
        kill_grace: Duration::from_secs(5),
        guard: guard.unwrap_or_else(|| usage("--guard is required")),
        http_port: 0,
        extra_grpc: None,
        secret: None,
        tls: None,
        housekeeping: Default::default(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = config_from_args();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let mut out = std::io::stdout();
    writeln!(out, "listening {}", listener.local_addr()?)?;
    out.flush()?;
    let shutdown = async {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    };
    run(config, listener, shutdown).await
}
