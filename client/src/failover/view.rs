//! What a round needs of one master's view of the cluster, and how to ask a master for its
//! own view without retries (a dead master must show as dead even if it is back a moment
//! later).

use hearth_core::{AppId, ExecutorState, MasterRole, WorkerState};
use hearth_proto::auth::{authed, Credential};
use hearth_proto::convert::StatusView;
use hearth_proto::pb;
use std::time::Duration;

/// One master's own account: whether it leads, how far its recovery is, which workers
/// are ALIVE and which apps run executors. Built from a `GetState` answer
/// ([`StatusView`]) or from a master's `/json`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MasterView {
    /// STANDBY unless it leads.
    pub role: MasterRole,
    /// The leader it names, if any.
    pub leader: Option<String>,
    pub alive_workers: usize,
    /// Active and completed apps.
    pub apps: Vec<AppSeen>,
}

/// One app in a [`MasterView`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppSeen {
    pub id: AppId,
    pub name: String,
    /// Still active (not completed).
    pub active: bool,
    /// Its RUNNING executors' ids, in the master's order.
    pub running: Vec<u32>,
}

impl MasterView {
    pub fn active_apps(&self) -> impl Iterator<Item = &AppSeen> {
        self.apps.iter().filter(|a| a.active)
    }

    /// The RUNNING executors of the active app `app`.
    pub fn running(&self, app: &AppId) -> Vec<u32> {
        self.active_apps()
            .filter(|a| a.id == *app)
            .flat_map(|a| a.running.iter().copied())
            .collect()
    }

    /// Its status in a line.
    pub fn summary(&self) -> String {
        format!(
            "status {}, leader {:?}, {} workers ALIVE",
            self.role,
            self.leader.as_deref().unwrap_or(""),
            self.alive_workers
        )
    }
}

impl From<&StatusView> for MasterView {
    fn from(s: &StatusView) -> Self {
        let app = |a: &hearth_core::AppInfo, active: bool| AppSeen {
            id: a.id.clone(),
            name: a.desc.name.clone(),
            active,
            running: a
                .executors
                .values()
                .filter(|e| e.state == ExecutorState::Running)
                .map(|e| e.id)
                .collect(),
        };
        MasterView {
            role: s.status,
            leader: s.leader.clone(),
            alive_workers: s
                .workers
                .iter()
                .filter(|w| w.info.state == WorkerState::Alive)
                .count(),
            apps: (s.active_apps.iter().map(|a| app(a, true)))
                .chain(s.completed_apps.iter().map(|a| app(a, false)))
                .collect(),
        }
    }
}

/// One master's own view (`GetState` at `addr`, `host:port`, with `credential`), or
/// `None` if it does not answer one request within 300 ms. No retries, no leader
/// following.
pub async fn view(addr: &str, credential: &Credential) -> Option<StatusView> {
    let endpoint = credential
        .endpoint(addr)
        .ok()?
        .connect_timeout(Duration::from_millis(200))
        .timeout(Duration::from_millis(300));
    let ask = async {
        let mut c = pb::master_service_client::MasterServiceClient::new(authed(
            endpoint.connect().await.ok()?,
            credential,
        ))
        .max_decoding_message_size(hearth_proto::MAX_MESSAGE);
        let resp = c.get_state(pb::GetStateRequest::default()).await.ok()?;
        StatusView::try_from(resp.into_inner()).ok()
    };
    tokio::time::timeout(Duration::from_millis(400), ask)
        .await
        .ok()
        .flatten()
}

/// The master that leads and is ALIVE by its own account, the first of `masters` that
/// does, with its view.
pub async fn alive_leader(
    masters: &[String],
    credential: &Credential,
) -> Option<(String, StatusView)> {
    for m in masters {
        if let Some(s) = view(m, credential).await {
            if s.status == MasterRole::Alive && s.leader.as_deref() == Some(m) {
                return Some((m.clone(), s));
            }
        }
    }
    None
}

/// Whether every one of `masters` answers `GetState` now.
pub async fn all_answer(masters: &[String], credential: &Credential) -> bool {
    for m in masters {
        if view(m, credential).await.is_none() {
            return false;
        }
    }
    true
}
