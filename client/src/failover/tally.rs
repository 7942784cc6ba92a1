//! Counting what a failover lost or doubled.

use super::view::MasterView;
use hearth_core::AppId;
use std::collections::BTreeMap;

/// Things lost and things doubled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub lost: usize,
    pub doubled: usize,
}

impl Tally {
    /// Acknowledged apps (name → the id the acknowledgement gave) against what a master
    /// lists, active or completed: an app missing, or listed under another id, is lost;
    /// one listed more than once is doubled.
    pub fn of_apps(v: &MasterView, acked: &BTreeMap<String, AppId>) -> Tally {
        let mut names: BTreeMap<&str, Vec<&AppId>> = BTreeMap::new();
        for a in &v.apps {
            names.entry(a.name.as_str()).or_default().push(&a.id);
        }
        let mut t = Tally::default();
        for (name, id) in acked {
            match names.get(name.as_str()) {
                None => t.lost += 1,
                Some(ids) if ids.len() > 1 => t.doubled += 1,
                Some(ids) if ids[0] != id => t.lost += 1,
                Some(_) => {}
            }
        }
        t
    }

    /// What should have stayed exactly as it was (an app's processes): each one gone is
    /// lost, each new one doubled.
    pub fn of_kept<T: PartialEq>(before: &[T], now: &[T]) -> Tally {
        Tally {
            lost: before.iter().filter(|x| !now.contains(x)).count(),
            doubled: now.iter().filter(|x| !before.contains(x)).count(),
        }
    }

    /// `seen` where `expected` should be: the shortfall is lost, the excess doubled.
    pub fn of_count(expected: usize, seen: usize) -> Tally {
        Tally {
            lost: expected.saturating_sub(seen),
            doubled: seen.saturating_sub(expected),
        }
    }

    pub fn is_clean(&self) -> bool {
        self.lost == 0 && self.doubled == 0
    }
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, o: Tally) {
        self.lost += o.lost;
        self.doubled += o.doubled;
    }
}
