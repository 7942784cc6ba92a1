//! Fuzzing every decode path that takes network input: arbitrary bytes, and mutations of
//! valid encodings, as each request and answer type, then converted into core types
//! (commands, actions, the status view). Nothing may panic; a conversion either yields a
//! value or a `ConvertError`. 10,000 cases per property (`PROPTEST_CASES` for a long
//! run).

use hearth_core::Millis;
use hearth_proto::convert::StatusView;
use hearth_proto::pb;
use proptest::prelude::*;
use prost::Message;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(10_000)
}

/// Decodes `bytes` as every message a master or worker reads off the network and
/// converts what decodes.
fn decode_everything(bytes: &[u8]) {
    let at = Millis(1);
    macro_rules! command_at {
        ($($t:ty),*) => {$(
            if let Ok(m) = <$t>::decode(bytes) { let _ = m.into_command(at); }
        )*};
    }
    macro_rules! command {
        ($($t:ty),*) => {$(
            if let Ok(m) = <$t>::decode(bytes) { let _ = m.into_command(); }
        )*};
    }
    macro_rules! core {
        ($($t:ty),*) => {$(
            if let Ok(m) = <$t>::decode(bytes) { let _ = m.into_core(); }
        )*};
    }
    macro_rules! action {
        ($($t:ty),*) => {$(
            if let Ok(m) = <$t>::decode(bytes) { let _ = hearth_core::Action::try_from(m); }
        )*};
    }
    command_at!(
        pb::RegisterWorkerRequest,
        pb::ExecutorStateChangedRequest,
        pb::DriverStateChangedRequest,
        pb::RegisterAppRequest,
        pb::FinishAppRequest,
        pb::KillDriverRequest
    );
    command!(
        pb::ScaleAppRequest,
        pb::SetExecutorLimitRequest,
        pb::KillExecutorsRequest,
        pb::DecommissionWorkerRequest
    );
    core!(
        pb::HeartbeatRequest,
        pb::AppHeartbeatRequest,
        pb::KillAppRequest,
        pb::RegisterAppResponse
    );
    action!(
        pb::LaunchExecutorRequest,
        pb::KillExecutorRequest,
        pb::LaunchDriverRequest,
        pb::WorkerKillDriverRequest
    );
    if let Ok(m) = pb::ClusterStatus::decode(bytes) {
        let _ = StatusView::try_from(m);
    }
    let _ = pb::MasterChangedRequest::decode(bytes);
    let _ = pb::WorkerAck::decode(bytes);
}

/// A valid, non-trivial encoding to mutate: a registration with a command and env.
fn valid() -> Vec<u8> {
    pb::RegisterAppRequest {
        app: Some(pb::AppDescription {
            name: "app".into(),
            cores_per_executor: Some(2),
            memory_per_executor_mb: 512,
            max_cores: Some(8),
            initial_executor_limit: None,
            command: Some(pb::ProcessSpec {
                argv: vec!["sh".into(), "-c".into(), "sleep 1".into()],
                env: [("K".to_owned(), "V".to_owned())].into(),
            }),
            user: Default::default(),
        }),
        driver: None,
        driver_url: Some("h:1".into()),
    }
    .encode_to_vec()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_decode_or_are_refused_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        decode_everything(&bytes);
    }

    #[test]
    fn mutated_valid_messages_decode_or_are_refused_without_panic(
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in any::<usize>(),
    ) {
        let mut bytes = valid();
        for (at, value) in flips {
            let n = bytes.len();
            bytes[at % n] = value;
        }
        let keep = cut % (bytes.len() + 1);
        bytes.truncate(keep);
        decode_everything(&bytes);
    }
}
