//! The protocols that split a world's positives into a past to train on and a future to test
//! against: [`temporal`], [`leave_last_out`] and the time-series [`folds`].
//!
//! Every protocol orders positives by time and, within one second, by their position in the
//! log (MovieLens has hundreds of users with several ratings in the same second; item id
//! order would leak popularity). Titles a user already had in the training past are never
//! relevant in the test future.

use std::collections::HashSet;

use crate::data::{Event, WorldData};

/// One user to recommend for.
#[derive(Debug, Clone)]
pub struct Case {
    /// Dense user index.
    pub user: u32,
    /// When the request is made (unix seconds).
    pub time: i64,
    /// Titles a new user picked at onboarding (taken from the start of their future); empty
    /// for users with a past.
    pub onboarding: Vec<u32>,
    /// Titles watched in the test future, not in the past or onboarding.
    pub relevant: HashSet<u32>,
}

/// A train/test split.
pub struct Split {
    /// Short name used for files (`temporal`, `leave-last-out`, `fold-1`).
    pub name: String,
    /// How it was made, for the report.
    pub description: String,
    /// The training past, in time order.
    pub train: Vec<Event>,
    /// Popularity and request time reference: the end of the past.
    pub cut: i64,
    /// Users with a past.
    pub warm: Vec<Case>,
    /// Users without a past, given onboarding picks.
    pub cold: Vec<Case>,
    /// Users with a past treated as new: their past hidden, their first future titles taken as
    /// onboarding picks (a larger cold-start sample than the truly new users).
    pub as_new: Vec<Case>,
}

impl Split {
    /// Each user's past items in time order.
    pub fn histories(&self, users: usize) -> Vec<Vec<(u32, i64)>> {
        let mut h = vec![Vec::new(); users];
        for e in &self.train {
            h[e.user as usize].push((e.item, e.time));
        }
        h
    }
}

/// `YYYY-MM-DD` of a unix time (UTC).
pub fn date(t: i64) -> String {
    let d = edgerec::calendar::civil_from_days(t.div_euclid(86_400));
    format!("{:04}-{:02}-{:02}", d.year, d.month, d.day)
}

/// Builds warm, cold and as-new cases from a past and a future (both in time order).
fn cases(
    users: usize,
    past: &[Event],
    future: &[Event],
    time: i64,
    onboarding: usize,
) -> (Vec<Case>, Vec<Case>, Vec<Case>) {
    let mut seen: Vec<HashSet<u32>> = vec![HashSet::new(); users];
    for e in past {
        seen[e.user as usize].insert(e.item);
    }
    let mut fut: Vec<Vec<u32>> = vec![Vec::new(); users];
    for e in future {
        let f = &mut fut[e.user as usize];
        if !f.contains(&e.item) {
            f.push(e.item);
        }
    }
    let (mut warm, mut cold, mut as_new) = (Vec::new(), Vec::new(), Vec::new());
    for (u, f) in fut.into_iter().enumerate() {
        if !seen[u].is_empty() && f.len() > onboarding {
            as_new.push(Case {
                user: u as u32,
                time,
                onboarding: f[..onboarding].to_vec(),
                relevant: f[onboarding..].iter().copied().collect(),
            });
        }
        if seen[u].is_empty() {
            if f.len() > onboarding {
                cold.push(Case {
                    user: u as u32,
                    time,
                    onboarding: f[..onboarding].to_vec(),
                    relevant: f[onboarding..].iter().copied().collect(),
                });
            }
        } else {
            let relevant: HashSet<u32> = f.into_iter().filter(|i| !seen[u].contains(i)).collect();
            if !relevant.is_empty() {
                warm.push(Case {
                    user: u as u32,
                    time,
                    onboarding: Vec::new(),
                    relevant,
                });
            }
        }
    }
    (warm, cold, as_new)
}

/// Global temporal split: the first `train_share` of all positives (by time, then log order)
/// are the past, the rest the future. New users in the future are cold-start cases whose first
/// `onboarding` titles stand for their onboarding picks.
pub fn temporal(data: &WorldData, train_share: f64, onboarding: usize) -> Split {
    temporal_of(data.users.len(), &data.events, train_share, onboarding)
}

/// [`temporal`] of `events` (positives in time order, then log order) of `users` users: also
/// the validation split inside a split's past ([`Split::train`]).
pub fn temporal_of(users: usize, events: &[Event], train_share: f64, onboarding: usize) -> Split {
    let n = events.len();
    let k = ((n as f64) * train_share).floor() as usize;
    let (past, future) = events.split_at(k.min(n));
    let cut = future.first().map_or(i64::MAX, |e| e.time);
    let (warm, cold, as_new) = cases(users, past, future, cut, onboarding);
    Split {
        name: "temporal".into(),
        description: format!(
            "global temporal split: the first {:.0}% of positives by time (ties in log order) train, the rest test; users new in the test period are cold-start cases with their first {onboarding} titles as onboarding picks",
            train_share * 100.0
        ),
        train: past.to_vec(),
        cut,
        warm,
        cold,
        as_new,
    }
}

/// Leave-last-out: each user's last positive (by time, ties in log order) is the test item if
/// the user has at least two distinct titles; everything else trains. No cold users.
pub fn leave_last_out(data: &WorldData) -> Split {
    leave_last_out_of(data.users.len(), &data.events)
}

/// [`leave_last_out`] of `events` (positives in time order, then log order) of `users`
/// users: also the validation split inside a split's past ([`Split::train`]).
pub fn leave_last_out_of(users: usize, events: &[Event]) -> Split {
    let mut last: Vec<Option<usize>> = vec![None; users];
    let mut count: Vec<HashSet<u32>> = vec![HashSet::new(); users];
    for (k, e) in events.iter().enumerate() {
        last[e.user as usize] = Some(k);
        count[e.user as usize].insert(e.item);
    }
    let held: HashSet<usize> = last
        .iter()
        .enumerate()
        .filter(|(u, _)| count[*u].len() >= 2)
        .filter_map(|(_, k)| *k)
        .collect();
    let train: Vec<Event> = events
        .iter()
        .enumerate()
        .filter(|(k, _)| !held.contains(k))
        .map(|(_, e)| *e)
        .collect();
    let mut seen: Vec<HashSet<u32>> = vec![HashSet::new(); users];
    for e in &train {
        seen[e.user as usize].insert(e.item);
    }
    let mut held: Vec<usize> = held.into_iter().collect();
    held.sort_unstable();
    let warm = held
        .into_iter()
        .map(|k| events[k])
        .filter(|e| !seen[e.user as usize].contains(&e.item))
        .map(|e| Case {
            user: e.user,
            time: e.time,
            onboarding: Vec::new(),
            relevant: [e.item].into(),
        })
        .collect();
    let cut = events.last().map_or(0, |e| e.time + 1);
    Split {
        name: "leave-last-out".into(),
        description: "leave-last-out: each user's last positive (ties in log order) is held out; all other positives of all users train".into(),
        train,
        cut,
        warm,
        cold: Vec::new(),
        as_new: Vec::new(),
    }
}

/// Rolling-origin folds of the training-data pipeline (`edgerec_pipeline::rolling_folds`):
/// fold k trains on everything before its window and tests on the window.
pub fn folds(data: &WorldData, n: u32, days: u32, onboarding: usize) -> Vec<Split> {
    let (Some(first), Some(last)) = (data.events.first(), data.events.last()) else {
        return Vec::new();
    };
    edgerec_pipeline::rolling_folds(first.time, last.time, n, days)
        .into_iter()
        .map(|f| {
            let past: Vec<Event> = data
                .events
                .iter()
                .filter(|e| e.time < f.valid_start)
                .copied()
                .collect();
            let future: Vec<Event> = data
                .events
                .iter()
                .filter(|e| f.valid_start <= e.time && e.time < f.valid_end)
                .copied()
                .collect();
            let (warm, cold, as_new) =
                cases(data.users.len(), &past, &future, f.valid_start, onboarding);
            Split {
                name: format!("fold-{}", f.index + 1),
                description: format!(
                    "time-series fold {}: train before {}, test the {days} days after (the pipeline's rolling origin)",
                    f.index + 1,
                    date(f.valid_start)
                ),
                train: past,
                cut: f.valid_start,
                warm,
                cold,
                as_new,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::test_support::{data, ev};

    #[test]
    fn temporal_split_keeps_log_order_within_a_second_and_finds_cold_users() {
        // Ten positives; 80% = 8 train. Two events share time 7; the log order decides.
        let d = data(
            vec![
                ev(0, 1, 1, 0),
                ev(0, 2, 2, 1),
                ev(1, 3, 3, 2),
                ev(1, 4, 4, 3),
                ev(0, 5, 5, 4),
                ev(1, 6, 6, 5),
                ev(0, 7, 7, 6),
                ev(1, 8, 7, 7),
                ev(0, 9, 7, 8),
                ev(2, 1, 9, 9),
            ],
            4,
        );
        let s = temporal(&d, 0.8, 0);
        assert_eq!(s.train.len(), 8);
        assert_eq!(s.train.last().unwrap().item, 8);
        assert_eq!(s.warm.len(), 1);
        assert_eq!(s.warm[0].relevant, [9].into());
        // User 2 is new in the future; with 0 onboarding picks their one title is relevant.
        assert_eq!(s.cold.len(), 1);
        assert_eq!(s.cold[0].user, 2);
        let s1 = temporal(&d, 0.8, 1);
        assert!(
            s1.cold.is_empty(),
            "one title, one onboarding pick: nothing left to test"
        );
    }

    #[test]
    fn leave_last_out_holds_out_the_last_distinct_title() {
        let d = data(
            vec![
                ev(0, 1, 1, 0),
                ev(0, 2, 5, 1),
                ev(0, 3, 5, 2),
                ev(1, 4, 2, 3),
                ev(2, 5, 3, 4),
                ev(2, 5, 4, 5),
            ],
            3,
        );
        let s = leave_last_out(&d);
        assert_eq!(s.warm.len(), 1);
        assert_eq!(s.warm[0].user, 0);
        assert_eq!(
            s.warm[0].relevant,
            [3].into(),
            "same second: the later log row"
        );
        assert_eq!(s.train.len(), 5);
        assert!(s.cold.is_empty());
    }

    #[test]
    fn relevant_titles_exclude_the_past() {
        let d = data(
            vec![
                ev(0, 1, 1, 0),
                ev(0, 2, 2, 1),
                ev(0, 1, 3, 2),
                ev(0, 3, 4, 3),
            ],
            1,
        );
        let s = temporal(&d, 0.5, 3);
        assert_eq!(s.warm[0].relevant, [3].into());
    }
}
