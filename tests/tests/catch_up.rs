//! A master that was down while the leader committed megabytes of log catches up with
//! the product's default Raft timings (issue 15's "a lagging master catching up").
//!
//! openraft 0.9 gives each AppendEntries one heartbeat interval (50 ms by default) and
//! sends up to 300 entries in it, with no limit on bytes. A follower behind by a few
//! megabytes was sent the same oversized call again and again, each dropped at 50 ms, and
//! never caught up (bench-scale saw followers 850 entries behind for minutes, and the
//! elections that followed). hearth's Raft network now sends a shorter prefix after a call
//! that did not finish in time (`raft::net::Window`) and reports the rest as not yet sent.

use hearth_client::MasterClient;
use hearth_client::SleepingApp;
use hearth_tests::cluster::RaftCluster;
use hearth_tests::harness::*;
use std::time::Duration;

/// Apps registered while the follower is down, each with an env value of this many bytes:
/// 48 × 160 KiB ≈ 7.5 MiB of log, far more than fits in one 50 ms call.
const APPS: usize = 48;
const ENV_BYTES: usize = 160 * 1024;

#[test]
fn a_follower_behind_by_megabytes_catches_up_with_default_timings() {
    let _one = one_at_a_time();
    let dir = TestDir::new("catch-up");
    // Default Raft timings: no --raft-heartbeat / --election-timeout-* flags.
    let mut c = RaftCluster::start(dir.path(), 3, &["--app-timeout", "1h"]);
    let leader = wait_for("an ALIVE leader", Duration::from_secs(30), || {
        c.alive_leader(None)
    });
    let behind = (leader + 1) % 3;
    c.kill9(behind);

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let client = MasterClient::from_url(&c.url()).expect("client");
        for i in 0..APPS {
            let (mut app, _) = SleepingApp::client()
                .named(&format!("big-{i}"))
                .exiting()
                .describe();
            app.command
                .env
                .insert("PAYLOAD".into(), "x".repeat(ENV_BYTES));
            client
                .register_app(&app, None, Some("127.0.0.1:1"))
                .await
                .expect("register a big app");
        }
    });
    let leader = wait_for("an ALIVE leader", Duration::from_secs(30), || {
        c.alive_leader(None)
    });

    c.start_master(behind);
    wait_for(
        "the restarted master a STANDBY with the leader's whole history",
        Duration::from_secs(90),
        || {
            let leader = c.alive_leader(None).unwrap_or(leader);
            c.follows(behind, leader).then_some(())
        },
    );
}
