//! A world loaded for fitting and evaluation: dense indices for users and items, positives in
//! time order, every play and search per user.

use std::collections::HashMap;
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
pub struct WorldData {
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

impl WorldData {
    /// Reads users, items, plays and searches of a canonical world. Plays above
    /// `positive_above` of the title are positives.
    pub fn load(dir: &Path, positive_above: f32) -> Result<WorldData> {
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
        Ok(WorldData {
            dir: dir.to_path_buf(),
            items,
            users,
            events,
            plays,
            searches,
        })
    }
}

/// Builders shared by the unit tests of [`crate::split`] and [`crate::ranking`].
#[cfg(test)]
pub(crate) mod test_support {
    use std::path::PathBuf;

    use edgerec_data::schema::User;

    use super::{Event, WorldData};

    /// An event of `user` with `item` at `time`, `seq`-th in the log.
    pub(crate) fn ev(user: u32, item: u32, time: i64, seq: u32) -> Event {
        Event {
            user,
            item,
            time,
            seq,
        }
    }

    /// A tiny `WorldData`: `users` users with the same profile, no items, plays or searches.
    pub(crate) fn data(events: Vec<Event>, users: usize) -> WorldData {
        WorldData {
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
