//! A filtered or paged status: what `StatusView::paged` keeps, its totals over the wire,
//! its `/json` (the `*total` fields only when paged), and `GetStateRequest` as a query.

use crate::round_trip::snapshot;
use hearth_core::listing::{Capacity, ListQuery, Totals};
use hearth_proto::convert::json::{status_json, status_json_with};
use hearth_proto::convert::view::list_query;
use hearth_proto::convert::StatusView;
use hearth_proto::pb;

/// The snapshot's capacity: its one ALIVE worker (16 cores, 5 used, 64 GiB, 2.5 used).
const CAPACITY: Capacity = Capacity {
    alive_workers: 1,
    cores: 16,
    cores_used: 5,
    memory_mb: 65_536,
    memory_used_mb: 2_560,
};

/// The ids of a view's workers, active apps, completed apps, active drivers, completed
/// drivers.
type Ids<'a> = (
    Vec<&'a str>,
    Vec<&'a str>,
    Vec<&'a str>,
    Vec<&'a str>,
    Vec<&'a str>,
);

fn ids(v: &StatusView) -> Ids<'_> {
    (
        v.workers
            .iter()
            .map(|w| w.info.identity.id.as_str())
            .collect(),
        v.active_apps.iter().map(|a| a.id.as_str()).collect(),
        v.completed_apps.iter().map(|a| a.id.as_str()).collect(),
        v.active_drivers.iter().map(|d| d.id.as_str()).collect(),
        v.completed_drivers.iter().map(|d| d.id.as_str()).collect(),
    )
}

#[test]
fn a_filter_keeps_the_named_states_in_every_list_and_counts_them() {
    let all = snapshot();
    let (workers, active, completed, drivers, ended) = ids(&all);
    let q = ListQuery {
        states: Some(vec!["RUNNING", "DEAD"]),
        ..ListQuery::default()
    };
    let v = all.paged(&q);
    assert_eq!(
        ids(&v),
        (vec![workers[1]], active, vec![], drivers, vec![]),
        "the DEAD worker, the RUNNING app and driver; not {completed:?} {ended:?}"
    );
    assert_eq!(
        v.totals,
        Some(Totals {
            workers: 1,
            apps: 1,
            drivers: 1,
            capacity: CAPACITY,
        })
    );
    // Over the wire, totals included.
    let back = StatusView::try_from(pb::ClusterStatus::from(&v)).expect("decodes");
    assert_eq!(back, v);
    assert_eq!(pb::ClusterStatus::from(&all).totals, None);
}

#[test]
fn apps_and_drivers_page_active_then_completed() {
    let all = snapshot();
    let (workers, active, completed, drivers, ended) = ids(&all);
    let page = |offset, limit| {
        all.paged(&ListQuery {
            states: None,
            offset,
            limit,
        })
    };
    assert_eq!(
        ids(&page(None, Some(1))),
        (
            vec![workers[0]],
            active.clone(),
            vec![],
            drivers.clone(),
            vec![]
        )
    );
    assert_eq!(
        ids(&page(Some(1), Some(1))),
        (vec![workers[1]], vec![], completed, vec![], ended)
    );
    assert_eq!(
        ids(&page(Some(2), None)),
        (vec![], vec![], vec![], vec![], vec![])
    );
    let counted = page(None, Some(0));
    assert_eq!(ids(&counted), (vec![], vec![], vec![], vec![], vec![]));
    assert_eq!(
        counted.totals(),
        Totals {
            workers: 2,
            apps: 2,
            drivers: 2,
            capacity: CAPACITY,
        }
    );
    assert_eq!(
        counted.totals(),
        all.totals(),
        "a whole view counts its lists"
    );
}

#[test]
fn json_has_totals_only_when_paged_and_the_capacity_of_the_whole_cluster() {
    let all = snapshot();
    let whole = status_json(&all);
    for key in ["workerstotal", "appstotal", "driverstotal"] {
        assert!(whole.get(key).is_none(), "{key} in {whole}");
    }
    assert_eq!(whole, status_json_with(&all, true));
    let none_alive = all.paged(&ListQuery {
        states: Some(vec!["DEAD"]),
        offset: Some(0),
        limit: Some(5),
    });
    let j = status_json(&none_alive);
    assert_eq!(
        (
            &j["workerstotal"],
            &j["appstotal"],
            &j["driverstotal"],
            &j["workers"][0]["state"],
        ),
        (&1.into(), &0.into(), &0.into(), &"DEAD".into())
    );
    for key in ["aliveworkers", "cores", "coresused", "memory", "memoryused"] {
        assert_eq!(j[key], whole[key], "{key} is the whole cluster's");
    }
    assert_eq!(
        (j["aliveworkers"].clone(), j["cores"].clone()),
        (1.into(), 16.into())
    );
}

#[test]
fn without_executors_an_app_has_their_number() {
    let j = status_json_with(&snapshot(), false);
    let app = &j["activeapps"][0];
    assert_eq!(app.get("executors"), None, "{app}");
    assert_eq!(app["executorcount"], 2);
    assert_eq!(
        app["cores"],
        status_json(&snapshot())["activeapps"][0]["cores"]
    );
    assert_eq!(j["completedapps"][0]["executorcount"], 0);
}

#[test]
fn a_get_state_request_is_a_list_query() {
    assert_eq!(
        list_query(&pb::GetStateRequest::default()),
        Ok(ListQuery::default())
    );
    let q = ListQuery {
        states: Some(vec!["RUNNING", "ALIVE"]),
        offset: Some(10),
        limit: Some(0),
    };
    let req = pb::GetStateRequest::from(&q);
    assert_eq!(
        req,
        pb::GetStateRequest {
            states: vec!["RUNNING".into(), "ALIVE".into()],
            offset: Some(10),
            limit: Some(0),
        }
    );
    assert_eq!(list_query(&req), Ok(q));
    let lower = pb::GetStateRequest {
        states: vec!["running".into(), "Waiting".into()],
        ..Default::default()
    };
    assert_eq!(
        list_query(&lower).map(|q| q.states),
        Ok(Some(vec!["RUNNING", "WAITING"]))
    );
    let unknown = pb::GetStateRequest {
        states: vec!["SLEEPING".into()],
        ..Default::default()
    };
    assert!(
        list_query(&unknown)
            .unwrap_err()
            .starts_with("unknown state \"SLEEPING\"; states are: workers ALIVE, DEAD"),
        "{:?}",
        list_query(&unknown)
    );
}
