//! Shared by the in-process Raft tests: loopback listeners that can be re-bound after a
//! master stops, a condition wait with a deadline, and a minimal app description.

#![allow(dead_code)]

use hearth_core::{AppDescription, ProcessSpec};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpSocket};

pub const DEADLINE: Duration = Duration::from_secs(30);

/// A listener on 127.0.0.1 (`port` 0: an ephemeral one), reusable after a stop.
pub fn listen(port: u16) -> TcpListener {
    let s = TcpSocket::new_v4().expect("socket");
    s.set_reuseaddr(true).expect("reuseaddr");
    s.bind(([127, 0, 0, 1], port).into()).expect("bind");
    s.listen(128).expect("listen")
}

/// Polls `f` every 20 ms until it yields, or panics naming `what` after [`DEADLINE`].
pub async fn wait<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A client-mode app asking for one one-core executor that runs `true`.
pub fn app(name: &str) -> AppDescription {
    AppDescription {
        name: name.into(),
        cores_per_executor: Some(1),
        memory_per_executor_mb: 64,
        max_cores: Some(1),
        initial_executor_limit: None,
        command: ProcessSpec {
            argv: vec!["true".into()],
            env: Default::default(),
        },
    }
}
