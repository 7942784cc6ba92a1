//! Filtering and paging of the status lists: which workers, apps and drivers `GET /json`,
//! `GetState`, `hearth status` and `hearth app|driver|worker-admin list` show, in which
//! order, and what an offset means. The servers and the CLI parse their parameters and
//! render; the rules are here.
//!
//! # The rules
//! - Three lists are paged, each on its own: **workers**; **apps**: the active apps, then
//!   the completed ones (as `/json` lists `activeapps` then `completedapps`); **drivers**:
//!   the active drivers, then the completed ones.
//! - The order is the state's own: workers, active apps and active drivers by id (ids
//!   grow with time, so oldest first), completed apps and drivers in the order they ended.
//! - A state filter ([`ListQuery::states`], upper-case names; any case is accepted when
//!   parsed) keeps the entries whose state is one of the named ones, in every list. A list
//!   whose kind has none of the named states comes out empty, so `RUNNING,ALIVE` gives the
//!   running apps and drivers and the alive workers. A name that is no state of a worker,
//!   an app or a driver is refused ([`parse_states`]).
//! - `offset` K skips the first K entries the filter kept; `limit` N then keeps at most N.
//!   An offset at or past the end gives an empty page; `limit` 0 gives only the total.
//!   No limit: everything from the offset on.
//! - An offset counts positions at the time of the request, not a snapshot: an entry that
//!   ends or arrives between two requests shifts the ones after it by one.
//! - A query that names any of state, offset or limit ([`ListQuery::is_given`]) is
//!   answered with the [`Totals`]: how many entries of each list the filter kept, before
//!   paging, and the capacity of the whole cluster. A query that names none is answered
//!   exactly as before paging existed, without totals.

use crate::state::{AppState, DriverState, WorkerInfo, WorkerState};

/// The three kinds of entries a status lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Worker,
    App,
    Driver,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Worker, Kind::App, Kind::Driver];

    /// The names of this kind's states, in declaration order.
    pub fn states(self) -> Vec<&'static str> {
        match self {
            Kind::Worker => WorkerState::ALL.iter().map(|s| s.as_str()).collect(),
            Kind::App => AppState::ALL.iter().map(|s| s.as_str()).collect(),
            Kind::Driver => DriverState::ALL.iter().map(|s| s.as_str()).collect(),
        }
    }

    /// "workers", "apps", "drivers".
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Worker => "workers",
            Kind::App => "apps",
            Kind::Driver => "drivers",
        }
    }
}

/// Parses state names (any case; `text` is comma-separated, e.g. `running,waiting`) that
/// must each be a state of one of `kinds`. Returns the upper-case names, each once, in
/// the order given. Refused: an empty name, and a name no kind of `kinds` has (the
/// message lists the states of each kind).
pub fn parse_states(text: &str, kinds: &[Kind]) -> Result<Vec<&'static str>, String> {
    let mut names: Vec<&'static str> = Vec::new();
    for given in text.split(',') {
        let upper = given.trim().to_ascii_uppercase();
        if upper.is_empty() {
            return Err(format!(
                "empty state name in {text:?}: give one or more comma-separated states"
            ));
        }
        let found = kinds.iter().flat_map(|k| k.states()).find(|s| *s == upper);
        match found {
            Some(name) if !names.contains(&name) => names.push(name),
            Some(_) => {}
            None => {
                let known: Vec<String> = kinds
                    .iter()
                    .map(|k| format!("{} {}", k.plural(), k.states().join(", ")))
                    .collect();
                return Err(format!(
                    "unknown state {:?}; states are: {}",
                    given.trim(),
                    known.join("; ")
                ));
            }
        }
    }
    Ok(names)
}

/// A state filter and a page, applied to each list (see the module docs). The default
/// shows everything, as a status without paging does.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// Keep only entries in one of these states (upper-case names); `None`: every entry.
    pub states: Option<Vec<&'static str>>,
    /// Skip this many entries (after the filter).
    pub offset: Option<usize>,
    /// Then keep at most this many.
    pub limit: Option<usize>,
}

/// One page of a list: the entries shown and how many the filter kept in all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: usize,
}

impl ListQuery {
    /// Whether any of state, offset or limit was given: then answers carry [`Totals`].
    pub fn is_given(&self) -> bool {
        self.states.is_some() || self.offset.is_some() || self.limit.is_some()
    }

    /// Whether the filter keeps an entry in state `state` (an upper-case name).
    pub fn keeps(&self, state: &str) -> bool {
        self.states
            .as_ref()
            .is_none_or(|names| names.contains(&state))
    }

    /// The page of `items` (in their order) this query shows; `state` names an item's
    /// state.
    pub fn page<T>(
        &self,
        items: impl IntoIterator<Item = T>,
        state: impl Fn(&T) -> &str,
    ) -> Page<T> {
        let offset = self.offset.unwrap_or(0);
        let limit = self.limit.unwrap_or(usize::MAX);
        let mut total = 0;
        let mut shown = Vec::new();
        for item in items {
            if !self.keeps(state(&item)) {
                continue;
            }
            if total >= offset && shown.len() < limit {
                shown.push(item);
            }
            total += 1;
        }
        Page {
            items: shown,
            total,
        }
    }

    /// [`page`](Self::page) of `first` followed by `second` (active then completed apps
    /// or drivers), split back: the shown entries of each, and the total of both.
    pub fn page_two<T>(
        &self,
        first: impl IntoIterator<Item = T>,
        second: impl IntoIterator<Item = T>,
        state: impl Fn(&T) -> &str,
    ) -> (Vec<T>, Vec<T>, usize) {
        let both = first
            .into_iter()
            .map(|t| (true, t))
            .chain(second.into_iter().map(|t| (false, t)));
        let page = self.page(both, |(_, t)| state(t));
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for (in_first, t) in page.items {
            if in_first {
                a.push(t);
            } else {
                b.push(t);
            }
        }
        (a, b, page.total)
    }

    /// The offset of the next page after one showing `shown` entries of `total` with this
    /// query, or `None` when that page reached the end.
    pub fn next_offset(&self, shown: usize, total: usize) -> Option<usize> {
        let next = self.offset.unwrap_or(0).saturating_add(shown);
        (next < total).then_some(next)
    }
}

/// What the cluster offers: `/json`'s `aliveworkers`, `cores`, `coresused`, `memory` and
/// `memoryused`, over the ALIVE workers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Capacity {
    pub alive_workers: u64,
    pub cores: u64,
    pub cores_used: u64,
    pub memory_mb: u64,
    pub memory_used_mb: u64,
}

impl Capacity {
    /// The capacity of the ALIVE workers among `workers`.
    pub fn of<'a>(workers: impl IntoIterator<Item = &'a WorkerInfo>) -> Capacity {
        workers
            .into_iter()
            .filter(|w| w.state == WorkerState::Alive)
            .fold(Capacity::default(), |c, w| Capacity {
                alive_workers: c.alive_workers + 1,
                cores: c.cores + u64::from(w.identity.cores),
                cores_used: c.cores_used + u64::from(w.cores_used),
                memory_mb: c.memory_mb + w.identity.memory_mb,
                memory_used_mb: c.memory_used_mb + w.memory_used_mb,
            })
    }
}

/// What a filtered or paged status was cut from: how many workers, apps and drivers the
/// state filter kept (before paging), and the capacity of every worker (no filter).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub workers: usize,
    pub apps: usize,
    pub drivers: usize,
    pub capacity: Capacity,
}

/// `GET /json`'s query parameters (README "HTTP JSON API"), as [`parse_status_query`]
/// reads them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusQuery {
    pub list: ListQuery,
    /// Each app's executors in detail (`executors=1`, the default), or only their number
    /// (`executors=0`).
    pub executors: bool,
}

impl Default for StatusQuery {
    fn default() -> Self {
        StatusQuery {
            list: ListQuery::default(),
            executors: true,
        }
    }
}

/// What `GET /json` takes, for refusals.
pub const STATUS_QUERY_HELP: &str = "/json takes state=S[,S...] (only workers, apps and \
drivers in one of these states, any case), offset=K and limit=N (skip K, then show at most \
N of each of workers, apps and drivers) and executors=0|1 (0: each app's number of \
executors instead of the list)";

/// Reads `/json`'s query parameters (name, value pairs as decoded from the URL). Refused,
/// with a message naming what is allowed: a repeated name, a state no worker, app or
/// driver has, an offset or limit that is not a whole number, an `executors` other than
/// 0, 1, false or true. Other names are ignored, as `/json` always ignored its query
/// (scripts and dashboards add their own, e.g. jQuery's `_=` cache breaker).
pub fn parse_status_query(pairs: &[(String, String)]) -> Result<StatusQuery, String> {
    let mut q = StatusQuery::default();
    let mut seen: Vec<&str> = Vec::new();
    for (name, value) in pairs {
        if seen.contains(&name.as_str()) {
            return Err(format!("{name} given twice; {STATUS_QUERY_HELP}"));
        }
        seen.push(name);
        let count = |what: &str| {
            value.parse::<usize>().map_err(|_| {
                format!("{what} must be a whole number, not {value:?}; {STATUS_QUERY_HELP}")
            })
        };
        match name.as_str() {
            "state" => {
                q.list.states = Some(
                    parse_states(value, &Kind::ALL)
                        .map_err(|e| format!("{e}; {STATUS_QUERY_HELP}"))?,
                )
            }
            "offset" => q.list.offset = Some(count("offset")?),
            "limit" => q.list.limit = Some(count("limit")?),
            "executors" => {
                q.executors = match value.to_ascii_lowercase().as_str() {
                    "1" | "true" => true,
                    "0" | "false" => false,
                    _ => {
                        return Err(format!(
                            "executors must be 0 or 1, not {value:?}; {STATUS_QUERY_HELP}"
                        ))
                    }
                }
            }
            _ => {}
        }
    }
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(
        states: Option<&[&'static str]>,
        offset: Option<usize>,
        limit: Option<usize>,
    ) -> ListQuery {
        ListQuery {
            states: states.map(|s| s.to_vec()),
            offset,
            limit,
        }
    }

    /// Items named by their state: "a1:RUNNING" is in state RUNNING.
    const ITEMS: [&str; 5] = [
        "a1:WAITING",
        "a2:RUNNING",
        "a3:RUNNING",
        "a4:WAITING",
        "a5:RUNNING",
    ];

    fn state<'b>(s: &'b &str) -> &'b str {
        s.split_once(':').unwrap().1
    }

    fn page(query: &ListQuery) -> (Vec<&'static str>, usize) {
        let p = query.page(ITEMS, state);
        (p.items, p.total)
    }

    #[test]
    fn no_query_shows_everything_in_order() {
        let all = ListQuery::default();
        assert!(!all.is_given());
        assert_eq!(page(&all), (ITEMS.to_vec(), 5));
    }

    #[test]
    fn a_state_filter_keeps_the_order_and_counts_what_it_kept() {
        let running = q(Some(&["RUNNING"]), None, None);
        assert!(running.is_given());
        assert_eq!(
            page(&running),
            (vec!["a2:RUNNING", "a3:RUNNING", "a5:RUNNING"], 3)
        );
        let either = q(Some(&["WAITING", "RUNNING"]), None, None);
        assert_eq!(page(&either), (ITEMS.to_vec(), 5));
        let none = q(Some(&["FINISHED"]), None, None);
        assert_eq!(page(&none), (vec![], 0));
    }

    #[test]
    fn offset_and_limit_count_after_the_filter() {
        assert_eq!(
            page(&q(None, Some(1), Some(2))),
            (vec!["a2:RUNNING", "a3:RUNNING"], 5)
        );
        assert_eq!(
            page(&q(Some(&["RUNNING"]), Some(1), Some(1))),
            (vec!["a3:RUNNING"], 3)
        );
        assert_eq!(
            page(&q(Some(&["RUNNING"]), Some(2), None)),
            (vec!["a5:RUNNING"], 3)
        );
        assert_eq!(
            page(&q(None, None, Some(2))),
            (vec!["a1:WAITING", "a2:RUNNING"], 5)
        );
    }

    #[test]
    fn an_offset_at_or_past_the_end_is_an_empty_page_and_limit_zero_only_counts() {
        assert_eq!(page(&q(None, Some(5), None)), (vec![], 5));
        assert_eq!(page(&q(None, Some(1000), Some(10))), (vec![], 5));
        assert_eq!(
            page(&q(None, Some(usize::MAX), Some(usize::MAX))),
            (vec![], 5)
        );
        assert_eq!(page(&q(None, None, Some(0))), (vec![], 5));
        assert_eq!(page(&q(Some(&["RUNNING"]), Some(1), Some(0))), (vec![], 3));
    }

    #[test]
    fn two_lists_page_as_one_and_split_back() {
        let active = ["a1:WAITING", "a2:RUNNING", "a3:RUNNING"];
        let done = ["a4:FINISHED", "a5:KILLED"];
        let two = |query: &ListQuery| query.page_two(active, done, state);
        assert_eq!(
            two(&ListQuery::default()),
            (active.to_vec(), done.to_vec(), 5)
        );
        assert_eq!(
            two(&q(None, Some(2), Some(2))),
            (vec!["a3:RUNNING"], vec!["a4:FINISHED"], 5)
        );
        assert_eq!(
            two(&q(None, Some(3), Some(2))),
            (vec![], vec!["a4:FINISHED", "a5:KILLED"], 5)
        );
        assert_eq!(
            two(&q(Some(&["KILLED", "WAITING"]), None, None)),
            (vec!["a1:WAITING"], vec!["a5:KILLED"], 2)
        );
        assert_eq!(two(&q(None, Some(9), None)), (vec![], vec![], 5));
    }

    #[test]
    fn the_next_offset_is_after_what_was_shown_until_the_end() {
        assert_eq!(q(None, None, Some(2)).next_offset(2, 5), Some(2));
        assert_eq!(q(None, Some(2), Some(2)).next_offset(2, 5), Some(4));
        assert_eq!(q(None, Some(4), Some(2)).next_offset(1, 5), None);
        assert_eq!(q(None, Some(9), Some(2)).next_offset(0, 5), None);
        assert_eq!(q(None, None, Some(0)).next_offset(0, 5), Some(0));
        assert_eq!(ListQuery::default().next_offset(0, 0), None);
    }

    #[test]
    fn state_names_are_any_case_each_once_and_checked_against_the_kinds() {
        assert_eq!(parse_states("running", &[Kind::App]), Ok(vec!["RUNNING"]));
        assert_eq!(
            parse_states("Running, waiting,RUNNING", &[Kind::App]),
            Ok(vec!["RUNNING", "WAITING"])
        );
        assert_eq!(
            parse_states("alive,running", &Kind::ALL),
            Ok(vec!["ALIVE", "RUNNING"])
        );
        assert_eq!(
            parse_states("draining", &[Kind::Worker]),
            Ok(vec!["DRAINING"])
        );
        assert_eq!(
            parse_states("ALIVE", &[Kind::App]),
            Err(
                "unknown state \"ALIVE\"; states are: apps WAITING, RUNNING, FINISHED, \
                 FAILED, KILLED, UNKNOWN"
                    .into()
            )
        );
        assert_eq!(
            parse_states("runing", &Kind::ALL),
            Err(
                "unknown state \"runing\"; states are: workers ALIVE, DEAD, DECOMMISSIONED, \
                 UNKNOWN, DRAINING; apps WAITING, RUNNING, FINISHED, FAILED, KILLED, UNKNOWN; \
                 drivers SUBMITTED, RUNNING, RELAUNCHING, FINISHED, FAILED, KILLED, ERROR, \
                 UNKNOWN"
                    .into()
            )
        );
        assert_eq!(
            parse_states("RUNNING,", &[Kind::Driver]),
            Err("empty state name in \"RUNNING,\": give one or more comma-separated states".into())
        );
        assert_eq!(
            parse_states("", &[Kind::Driver]),
            Err("empty state name in \"\": give one or more comma-separated states".into())
        );
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_json_query_reads_state_offset_limit_and_executors() {
        assert_eq!(parse_status_query(&[]), Ok(StatusQuery::default()));
        assert_eq!(
            parse_status_query(&pairs(&[
                ("state", "running,Alive"),
                ("limit", "100"),
                ("offset", "0"),
                ("executors", "0"),
            ])),
            Ok(StatusQuery {
                list: q(Some(&["RUNNING", "ALIVE"]), Some(0), Some(100)),
                executors: false,
            })
        );
        let only_executors = parse_status_query(&pairs(&[("executors", "false")])).unwrap();
        assert!(!only_executors.list.is_given(), "executors=0 pages nothing");
        assert_eq!(
            parse_status_query(&pairs(&[("executors", "TRUE")])),
            Ok(StatusQuery::default())
        );
    }

    #[test]
    fn the_json_query_refuses_what_it_does_not_know_and_says_what_it_takes() {
        let refused = |p: &[(&str, &str)]| parse_status_query(&pairs(p)).unwrap_err();
        let help = STATUS_QUERY_HELP;
        assert_eq!(
            refused(&[("limit", "ten")]),
            format!("limit must be a whole number, not \"ten\"; {help}")
        );
        assert_eq!(
            refused(&[("offset", "-1")]),
            format!("offset must be a whole number, not \"-1\"; {help}")
        );
        assert_eq!(
            parse_status_query(&[("_".into(), "1700000000".into())]),
            Ok(StatusQuery::default()),
            "names /json does not know are ignored, as they always were"
        );
        assert_eq!(
            refused(&[("limit", "1"), ("limit", "2")]),
            format!("limit given twice; {help}")
        );
        assert_eq!(
            refused(&[("executors", "no")]),
            format!("executors must be 0 or 1, not \"no\"; {help}")
        );
        assert!(
            refused(&[("state", "SLEEPING")])
                .starts_with("unknown state \"SLEEPING\"; states are: workers ALIVE"),
            "{}",
            refused(&[("state", "SLEEPING")])
        );
    }

    #[test]
    fn capacity_counts_alive_workers_only() {
        use crate::ids::WorkerId;
        use crate::state::WorkerIdentity;
        use crate::time::Millis;
        let w = |id: &str, state, cores_used| WorkerInfo {
            identity: WorkerIdentity {
                id: WorkerId(id.into()),
                host: "h".into(),
                port: 1,
                http_port: 0,
                cores: 4,
                memory_mb: 1000,
            },
            cores_used,
            memory_used_mb: 100 * u64::from(cores_used),
            state,
            registered_at: Millis(0),
            dead_since: None,
            executors: Default::default(),
            drivers: Default::default(),
        };
        let workers = [
            w("w1", WorkerState::Alive, 1),
            w("w2", WorkerState::Dead, 0),
            w("w3", WorkerState::Alive, 3),
            w("w4", WorkerState::Decommissioned, 2),
        ];
        assert_eq!(
            Capacity::of(&workers),
            Capacity {
                alive_workers: 2,
                cores: 8,
                cores_used: 4,
                memory_mb: 2000,
                memory_used_mb: 400,
            }
        );
        assert_eq!(Capacity::of(&[]), Capacity::default());
    }
}
