//! The `GetState` reply ([`pb::ClusterStatus`]) as core values: [`StatusView`]; a
//! `GetStateRequest`'s filter and page as a core [`ListQuery`], and
//! [`StatusView::paged`], which applies one (the rules are hearth-core's `listing`).

use super::{state, ConvertError};
use crate::pb;
use hearth_core::listing::{parse_states, Capacity, Kind, ListQuery, Totals};
use hearth_core::{AppInfo, DriverInfo, MasterRole, Millis, WorkerInfo};
use std::fmt;
use std::str::FromStr;

/// A master's place in the Raft group, as `/json`'s `masters[].role` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MemberRole {
    Leader,
    Follower,
    Learner,
    /// The answering master cannot reach it.
    Unreachable,
}

impl MemberRole {
    /// Every value, in declaration order.
    pub const ALL: &'static [MemberRole] = &[
        MemberRole::Leader,
        MemberRole::Follower,
        MemberRole::Learner,
        MemberRole::Unreachable,
    ];

    /// The lower-case name used on the wire and in `/json`.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberRole::Leader => "leader",
            MemberRole::Follower => "follower",
            MemberRole::Learner => "learner",
            MemberRole::Unreachable => "unreachable",
        }
    }
}

impl fmt::Display for MemberRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MemberRole {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        MemberRole::ALL
            .iter()
            .copied()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown member role {s:?}"))
    }
}

/// One master of the Raft group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Its Raft node id (`hearth master --id`).
    pub id: u64,
    /// Its gRPC address, `host:port`.
    pub address: String,
    pub role: MemberRole,
}

/// A worker's replicated record plus when the answering master last heard from it
/// (leader-local soft state, so it is not in [`WorkerInfo`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerStatus {
    pub info: WorkerInfo,
    pub last_heartbeat: Option<Millis>,
}

/// Everything `GET /json` shows (README "The CLI"), as core values. The totals of `/json`
/// are derived from `workers`; durations from `now`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusView {
    /// The answering master's status: its recovery role when it leads, else STANDBY.
    pub status: MasterRole,
    /// The leader's gRPC address, when known.
    pub leader: Option<String>,
    pub term: u64,
    pub masters: Vec<Member>,
    pub workers: Vec<WorkerStatus>,
    pub active_apps: Vec<AppInfo>,
    pub completed_apps: Vec<AppInfo>,
    pub active_drivers: Vec<DriverInfo>,
    pub completed_drivers: Vec<DriverInfo>,
    /// The answering master's clock when it made this view.
    pub now: Millis,
    /// Set when the view was filtered or paged ([`StatusView::paged`]): what it was cut
    /// from. `None`: the lists are whole.
    pub totals: Option<Totals>,
}

impl StatusView {
    /// The entries `q` shows (workers; apps active then completed; drivers active then
    /// completed, each list paged on its own), with the [`Totals`] they were cut from.
    /// Only the shown entries are copied.
    pub fn paged(&self, q: &ListQuery) -> StatusView {
        let workers = q.page(&self.workers, |w| w.info.state.as_str());
        let (active_apps, completed_apps, apps) =
            q.page_two(&self.active_apps, &self.completed_apps, |a| {
                a.state.as_str()
            });
        let (active_drivers, completed_drivers, drivers) =
            q.page_two(&self.active_drivers, &self.completed_drivers, |d| {
                d.state.as_str()
            });
        StatusView {
            status: self.status,
            leader: self.leader.clone(),
            term: self.term,
            masters: self.masters.clone(),
            workers: workers.items.into_iter().cloned().collect(),
            active_apps: active_apps.into_iter().cloned().collect(),
            completed_apps: completed_apps.into_iter().cloned().collect(),
            active_drivers: active_drivers.into_iter().cloned().collect(),
            completed_drivers: completed_drivers.into_iter().cloned().collect(),
            now: self.now,
            totals: Some(Totals {
                workers: workers.total,
                apps,
                drivers,
                capacity: self.capacity(),
            }),
        }
    }

    /// The totals: those the view was cut from, else counted from its whole lists.
    pub fn totals(&self) -> Totals {
        self.totals.unwrap_or_else(|| Totals {
            workers: self.workers.len(),
            apps: self.active_apps.len() + self.completed_apps.len(),
            drivers: self.active_drivers.len() + self.completed_drivers.len(),
            capacity: self.capacity(),
        })
    }

    /// The capacity of the cluster's ALIVE workers (of all of them, also in a paged view).
    pub fn capacity(&self) -> Capacity {
        match &self.totals {
            Some(t) => t.capacity,
            None => Capacity::of(self.workers.iter().map(|w| &w.info)),
        }
    }
}

/// The filter and page a `GetStateRequest` asks for; an unknown state name is refused
/// with a message listing the known ones.
pub fn list_query(r: &pb::GetStateRequest) -> Result<ListQuery, String> {
    let states = if r.states.is_empty() {
        None
    } else {
        Some(parse_states(&r.states.join(","), &Kind::ALL)?)
    };
    Ok(ListQuery {
        states,
        offset: r.offset.map(|o| o as usize),
        limit: r.limit.map(|l| l as usize),
    })
}

impl From<&ListQuery> for pb::GetStateRequest {
    fn from(q: &ListQuery) -> Self {
        let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        pb::GetStateRequest {
            states: q.states.iter().flatten().map(|s| (*s).to_owned()).collect(),
            offset: q.offset.map(clamp),
            limit: q.limit.map(clamp),
        }
    }
}

impl From<&Totals> for pb::StatusTotals {
    fn from(t: &Totals) -> Self {
        pb::StatusTotals {
            workers: t.workers as u64,
            apps: t.apps as u64,
            drivers: t.drivers as u64,
            alive_workers: t.capacity.alive_workers,
            cores: t.capacity.cores,
            cores_used: t.capacity.cores_used,
            memory_mb: t.capacity.memory_mb,
            memory_used_mb: t.capacity.memory_used_mb,
        }
    }
}

impl From<pb::StatusTotals> for Totals {
    fn from(t: pb::StatusTotals) -> Self {
        let n = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        Totals {
            workers: n(t.workers),
            apps: n(t.apps),
            drivers: n(t.drivers),
            capacity: Capacity {
                alive_workers: t.alive_workers,
                cores: t.cores,
                cores_used: t.cores_used,
                memory_mb: t.memory_mb,
                memory_used_mb: t.memory_used_mb,
            },
        }
    }
}

impl From<&Member> for pb::MasterMember {
    fn from(v: &Member) -> Self {
        pb::MasterMember {
            id: v.id,
            address: v.address.clone(),
            role: v.role.as_str().to_owned(),
        }
    }
}

impl TryFrom<pb::MasterMember> for Member {
    type Error = ConvertError;
    fn try_from(v: pb::MasterMember) -> Result<Self, ConvertError> {
        Ok(Member {
            id: v.id,
            address: v.address,
            role: state("MasterMember.role", &v.role)?,
        })
    }
}

impl From<&WorkerStatus> for pb::WorkerInfo {
    fn from(v: &WorkerStatus) -> Self {
        pb::WorkerInfo {
            last_heartbeat_ms: v.last_heartbeat.map(|t| t.0),
            ..(&v.info).into()
        }
    }
}

impl TryFrom<pb::WorkerInfo> for WorkerStatus {
    type Error = ConvertError;
    fn try_from(v: pb::WorkerInfo) -> Result<Self, ConvertError> {
        let last_heartbeat = v.last_heartbeat_ms.map(Millis);
        Ok(WorkerStatus {
            info: v.try_into()?,
            last_heartbeat,
        })
    }
}

impl From<&StatusView> for pb::ClusterStatus {
    fn from(v: &StatusView) -> Self {
        pb::ClusterStatus {
            status: v.status.as_str().to_owned(),
            leader: v.leader.clone(),
            term: v.term,
            masters: v.masters.iter().map(Into::into).collect(),
            workers: v.workers.iter().map(Into::into).collect(),
            active_apps: v.active_apps.iter().map(Into::into).collect(),
            completed_apps: v.completed_apps.iter().map(Into::into).collect(),
            active_drivers: v.active_drivers.iter().map(Into::into).collect(),
            completed_drivers: v.completed_drivers.iter().map(Into::into).collect(),
            now_ms: v.now.0,
            totals: v.totals.as_ref().map(Into::into),
        }
    }
}

impl TryFrom<pb::ClusterStatus> for StatusView {
    type Error = ConvertError;
    fn try_from(v: pb::ClusterStatus) -> Result<Self, ConvertError> {
        Ok(StatusView {
            status: state("ClusterStatus.status", &v.status)?,
            leader: v.leader,
            term: v.term,
            masters: decode_all(v.masters)?,
            workers: decode_all(v.workers)?,
            active_apps: decode_all(v.active_apps)?,
            completed_apps: decode_all(v.completed_apps)?,
            active_drivers: decode_all(v.active_drivers)?,
            completed_drivers: decode_all(v.completed_drivers)?,
            now: Millis(v.now_ms),
            totals: v.totals.map(Into::into),
        })
    }
}

super::encode_owned!(
    Member => pb::MasterMember,
    WorkerStatus => pb::WorkerInfo,
    StatusView => pb::ClusterStatus,
);

fn decode_all<P, T: TryFrom<P, Error = ConvertError>>(v: Vec<P>) -> Result<Vec<T>, ConvertError> {
    v.into_iter().map(T::try_from).collect()
}
