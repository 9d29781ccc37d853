//! The data an evaluation reads, and the protocols that split it into a past to train on and a
//! future to test against.
//!
//! Every protocol orders positives by time and, within one second, by their position in the
//! log (MovieLens has hundreds of users with several ratings in the same second; item id
//! order would leak popularity). Titles a user already had in the training past are never
//! relevant in the test future.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, ensure};
use edgerec_data::schema::{self, Item, Play, Search, User};

/// A positive: the user watched more than the label threshold of the title.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Event {
    /// Dense user index.
    pub user: u32,
    /// Dense item index (catalog position).
    pub item: u32,
    /// Unix seconds.
    pub time: i64,
    /// Position in the log (breaks ties in time).
    pub seq: u32,
}

/// A world loaded for evaluation: dense indices for users and items, positives in time order.
pub struct EvalData {
    /// The world directory.
    pub dir: PathBuf,
    /// Items in table order; the dense item index is the position here.
    pub items: Vec<Item>,
    /// Users in table order; the dense user index is the position here.
    pub users: Vec<User>,
    /// Positives ordered by (time, log position).
    pub events: Vec<Event>,
    /// Every play of each user in log order (the oracle's history), by dense user index.
    pub plays: Vec<Vec<Play>>,
    /// Searches by dense user index, in time order.
    pub searches: Vec<Vec<Search>>,
}

impl EvalData {
    /// Reads users, items, plays and searches of a canonical world. Plays above
    /// `positive_above` of the title are positives.
    pub fn load(dir: &Path, positive_above: f32) -> Result<EvalData> {
        let users = schema::read_table::<User>(dir)?;
        let items = schema::read_table::<Item>(dir)?;
        ensure!(
            !items.is_empty(),
            "{}: the world has no items",
            dir.display()
        );
        let user_pos: HashMap<u32, u32> = users
            .iter()
            .enumerate()
            .map(|(i, u)| (u.user_id, i as u32))
            .collect();
        let item_pos: HashMap<u32, u32> = items
            .iter()
            .enumerate()
            .map(|(i, it)| (it.item_id, i as u32))
            .collect();
        let mut events = Vec::new();
        let mut plays: Vec<Vec<Play>> = vec![Vec::new(); users.len()];
        let mut seq = 0u32;
        schema::for_each_batch::<Play>(dir, |rows| {
            for p in rows {
                let (Some(&u), Some(&i)) = (user_pos.get(&p.user_id), item_pos.get(&p.item_id))
                else {
                    anyhow::bail!(
                        "play of item {} by user {}: unknown user or item",
                        p.item_id,
                        p.user_id
                    );
                };
                if p.fraction > positive_above {
                    events.push(Event {
                        user: u,
                        item: i,
                        time: p.time,
                        seq,
                    });
                }
                seq += 1;
                plays[u as usize].push(p);
            }
            Ok(())
        })
        .with_context(|| format!("reading the plays of {}", dir.display()))?;
        events.sort_by_key(|e| (e.time, e.seq));
        let mut searches: Vec<Vec<Search>> = vec![Vec::new(); users.len()];
        for s in schema::read_table::<Search>(dir)? {
            if let Some(&u) = user_pos.get(&s.user_id) {
                searches[u as usize].push(s);
            }
        }
        for s in &mut searches {
            s.sort_by_key(|s| s.time);
        }
        Ok(EvalData {
            dir: dir.to_path_buf(),
            items,
            users,
            events,
            plays,
            searches,
        })
    }
}

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
pub fn temporal(data: &EvalData, train_share: f64, onboarding: usize) -> Split {
    let n = data.events.len();
    let k = ((n as f64) * train_share).floor() as usize;
    let (past, future) = data.events.split_at(k.min(n));
    let cut = future.first().map_or(i64::MAX, |e| e.time);
    let (warm, cold, as_new) = cases(data.users.len(), past, future, cut, onboarding);
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
pub fn leave_last_out(data: &EvalData) -> Split {
    let users = data.users.len();
    let mut last: Vec<Option<usize>> = vec![None; users];
    let mut count: Vec<HashSet<u32>> = vec![HashSet::new(); users];
    for (k, e) in data.events.iter().enumerate() {
        last[e.user as usize] = Some(k);
        count[e.user as usize].insert(e.item);
    }
    let held: HashSet<usize> = last
        .iter()
        .enumerate()
        .filter(|(u, _)| count[*u].len() >= 2)
        .filter_map(|(_, k)| *k)
        .collect();
    let train: Vec<Event> = data
        .events
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
        .map(|k| data.events[k])
        .filter(|e| !seen[e.user as usize].contains(&e.item))
        .map(|e| Case {
            user: e.user,
            time: e.time,
            onboarding: Vec::new(),
            relevant: [e.item].into(),
        })
        .collect();
    let cut = data.events.last().map_or(0, |e| e.time + 1);
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
pub fn folds(data: &EvalData, n: u32, days: u32, onboarding: usize) -> Vec<Split> {
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

/// Builders shared by the evaluation's unit tests (this module's and [`super::rerank`]'s).
#[cfg(test)]
pub(crate) mod test_support {
    use std::path::PathBuf;

    use edgerec_data::schema::User;

    use super::{EvalData, Event};

    /// An event of `user` with `item` at `time`, `seq`-th in the log.
    pub(crate) fn ev(user: u32, item: u32, time: i64, seq: u32) -> Event {
        Event {
            user,
            item,
            time,
            seq,
        }
    }

    /// A tiny `EvalData`: `users` users with the same profile, no items, plays or searches.
    pub(crate) fn data(events: Vec<Event>, users: usize) -> EvalData {
        EvalData {
            dir: PathBuf::new(),
            items: Vec::new(),
            users: (0..users as u32)
                .map(|u| User {
                    user_id: u,
                    age: 30,
                    gender: "f".into(),
                    language: "en".into(),
                    country: "US".into(),
                    utc_offset_minutes: 0,
                    signup_time: 0,
                    onboarding_genres: vec![],
                })
                .collect(),
            events,
            plays: vec![Vec::new(); users],
            searches: vec![Vec::new(); users],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{data, ev};
    use super::*;

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
