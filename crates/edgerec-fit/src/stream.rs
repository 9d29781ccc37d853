//! A world's positives streamed user by user, for the catalog-bounded trainer
//! ([`edgerec_train::stream`]).
//!
//! The plays table must be clustered by user, with user ids increasing across its part files
//! in name order. `edgerec simulate` writes it that way. A table that is not clustered is
//! refused on the first user that comes back, so a partition never holds half a user. Memory is
//! the catalog's id map plus one partition of histories.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail, ensure};
use edgerec_data::schema::{self, Item, Play};
use edgerec_train::stream::{PartitionFn, Partitions};

/// Positives (plays above `positive_above` of the title, before `before`) of a world, by user,
/// `users_per_partition` users at a time. Each positive counts 1, as in the in-memory fit.
pub struct PositivesByUser {
    dir: PathBuf,
    item_pos: HashMap<u32, u32>,
    items: usize,
    positive_above: f32,
    before: i64,
    users_per_partition: usize,
}

impl PositivesByUser {
    /// Reads the world's items (the dense item index is the position in the items table, as in
    /// [`crate::data::WorldData`]); plays are read on every pass.
    pub fn open(
        dir: &Path,
        positive_above: f32,
        before: Option<i64>,
        users_per_partition: usize,
    ) -> Result<PositivesByUser> {
        let items = schema::read_table::<Item>(dir)
            .with_context(|| format!("reading the items of {}", dir.display()))?;
        ensure!(
            !items.is_empty(),
            "{}: the world has no items",
            dir.display()
        );
        ensure!(
            users_per_partition > 0,
            "a partition needs at least one user"
        );
        Ok(PositivesByUser {
            dir: dir.to_path_buf(),
            item_pos: items
                .iter()
                .enumerate()
                .map(|(i, it)| (it.item_id, i as u32))
                .collect(),
            items: items.len(),
            positive_above,
            before: before.unwrap_or(i64::MAX),
            users_per_partition,
        })
    }

    fn pass(&self, f: &mut PartitionFn<'_>) -> Result<()> {
        let mut part: Vec<Vec<(u32, f32)>> = Vec::new();
        let mut current: Option<u32> = None;
        schema::for_each_batch::<Play>(&self.dir, |rows| {
            for p in rows {
                if current != Some(p.user_id) {
                    if let Some(c) = current
                        && p.user_id < c
                    {
                        bail!(
                            "the plays are not clustered by user (user {} after user {c}); \
                             the streaming trainer needs them grouped by user in increasing order",
                            p.user_id
                        );
                    }
                    if part.len() >= self.users_per_partition {
                        f(&part).map_err(anyhow::Error::msg)?;
                        part.clear();
                    }
                    part.push(Vec::new());
                    current = Some(p.user_id);
                }
                if p.fraction > self.positive_above && p.time < self.before {
                    let Some(&i) = self.item_pos.get(&p.item_id) else {
                        bail!("play of unknown item {} by user {}", p.item_id, p.user_id);
                    };
                    if let Some(h) = part.last_mut() {
                        h.push((i, 1.0));
                    }
                }
            }
            Ok(())
        })
        .with_context(|| format!("reading the plays of {}", self.dir.display()))?;
        if !part.is_empty() {
            f(&part).map_err(anyhow::Error::msg)?;
        }
        Ok(())
    }
}

impl Partitions for PositivesByUser {
    fn items(&self) -> usize {
        self.items
    }

    fn for_each(&self, f: &mut PartitionFn<'_>) -> Result<(), String> {
        self.pass(f).map_err(|e| format!("{e:#}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::WorldData;

    #[test]
    fn partitions_hold_each_users_positives_before_the_cut() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = edgerec_data::world::WorldConfig {
            users: 300,
            items: 120,
            days: 10,
            seed: 4,
            start: edgerec_data::world::DEFAULT_START,
        };
        edgerec_data::sim::simulate(&cfg, dir.path(), &Default::default()).unwrap();
        let world = WorldData::load(dir.path(), 0.8).unwrap();
        let cut = edgerec_data::world::DEFAULT_START + 7 * 86_400;
        let mut expected: Vec<Vec<(u32, f32)>> = vec![Vec::new(); world.users.len()];
        let mut order: Vec<_> = world.events.iter().filter(|e| e.time < cut).collect();
        order.sort_by_key(|e| e.seq);
        for e in order {
            expected[e.user as usize].push((e.item, 1.0));
        }

        let source = PositivesByUser::open(dir.path(), 0.8, Some(cut), 64).unwrap();
        assert_eq!(source.items(), world.items.len());
        let mut got: Vec<Vec<(u32, f32)>> = Vec::new();
        let mut sizes = Vec::new();
        source
            .for_each(&mut |part| {
                sizes.push(part.len());
                got.extend(part.iter().cloned());
                Ok(())
            })
            .unwrap();
        // Users with plays, in user order; the users without any play are not in the log.
        let with_plays: Vec<Vec<(u32, f32)>> = world
            .plays
            .iter()
            .zip(expected)
            .filter(|(plays, _)| !plays.is_empty())
            .map(|(_, e)| e)
            .collect();
        assert_eq!(got, with_plays);
        assert!(
            sizes.iter().all(|&n| n <= 64) && sizes.len() > 1,
            "{sizes:?}"
        );
        // A partition function's error stops the pass and comes back.
        let err = source.for_each(&mut |_| Err("stop".into())).unwrap_err();
        assert!(err.contains("stop"), "{err}");
    }
}
