//! A world's training data streamed user by user, for the catalog-bounded trainers: positives
//! for iALS ([`edgerec_train::stream`]), and the two-tower model's examples
//! ([`TwoTower::train_streaming`]).
//!
//! The tables must be clustered by user, with user ids increasing across their part files in
//! name order. `edgerec simulate` writes them that way. A table that is not clustered is
//! refused on the first user that comes back, so a partition never holds half a user. Memory is
//! the catalog (items, id maps, the search vocabulary) plus one partition of users.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail, ensure};
use edgerec_data::rng::Rng;
use edgerec_data::schema::{self, Item, Play, Search, Table, TableReader, User};
use edgerec_train::stream::{PartitionFn, Partitions};
use edgerec_twotower::{Error as TowerError, TowerConfig, TowerExample, TowerExamples, TwoTower};

use crate::sources::{self, Tower};

/// A world's items and their dense index: the position in the items table, as in
/// [`crate::data::WorldData`].
struct Catalog {
    items: Vec<Item>,
    pos: HashMap<u32, u32>,
}

impl Catalog {
    fn read(dir: &Path) -> Result<Catalog> {
        let items = schema::read_table::<Item>(dir)
            .with_context(|| format!("reading the items of {}", dir.display()))?;
        ensure!(
            !items.is_empty(),
            "{}: the world has no items",
            dir.display()
        );
        let pos = items
            .iter()
            .enumerate()
            .map(|(i, it)| (it.item_id, i as u32))
            .collect();
        Ok(Catalog { items, pos })
    }

    /// The dense index of the title of `p` when `p` is a positive (above `positive_above` of
    /// the title) before `before`; a play of an unknown title is an error.
    fn positive(&self, p: &Play, positive_above: f32, before: i64) -> Result<Option<u32>> {
        if p.fraction <= positive_above || p.time >= before {
            return Ok(None);
        }
        match self.pos.get(&p.item_id) {
            Some(&i) => Ok(Some(i)),
            None => bail!("play of unknown item {} by user {}", p.item_id, p.user_id),
        }
    }
}

/// Positives (plays above `positive_above` of the title, before `before`) of a world, by user,
/// `users_per_partition` users at a time. Each positive counts 1, as in the in-memory fit.
pub struct PositivesByUser {
    dir: PathBuf,
    catalog: Catalog,
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
        let catalog = Catalog::read(dir)?;
        ensure!(
            users_per_partition > 0,
            "a partition needs at least one user"
        );
        Ok(PositivesByUser {
            dir: dir.to_path_buf(),
            catalog,
            positive_above,
            before: before.unwrap_or(i64::MAX),
            users_per_partition,
        })
    }

    fn pass(&self, f: &mut PartitionFn<'_>) -> Result<()> {
        let mut part: Vec<Vec<(u32, f32)>> = Vec::new();
        let mut plays = ByUser::<Play>::open(&self.dir)?;
        while let Some((_, rows)) = plays
            .next_user()
            .with_context(|| format!("reading the plays of {}", self.dir.display()))?
        {
            let mut history = Vec::new();
            for p in &rows {
                if let Some(i) = self.catalog.positive(p, self.positive_above, self.before)? {
                    history.push((i, 1.0));
                }
            }
            part.push(history);
            if part.len() == self.users_per_partition {
                f(&part).map_err(anyhow::Error::msg)?;
                part.clear();
            }
        }
        if !part.is_empty() {
            f(&part).map_err(anyhow::Error::msg)?;
        }
        Ok(())
    }
}

impl Partitions for PositivesByUser {
    fn items(&self) -> usize {
        self.catalog.items.len()
    }

    fn for_each(&self, f: &mut PartitionFn<'_>) -> Result<(), String> {
        self.pass(f).map_err(|e| format!("{e:#}"))
    }
}

/// A table row that belongs to one user.
trait UserRow: Table {
    fn user(&self) -> u32;
}

impl UserRow for User {
    fn user(&self) -> u32 {
        self.user_id
    }
}

impl UserRow for Play {
    fn user(&self) -> u32 {
        self.user_id
    }
}

impl UserRow for Search {
    fn user(&self) -> u32 {
        self.user_id
    }
}

/// A table read in order, one user's rows at a time, for walking several tables side by side.
struct ByUser<T: UserRow> {
    reader: TableReader<T>,
    buffer: VecDeque<T>,
    done: bool,
    last: Option<u32>,
}

impl<T: UserRow> ByUser<T> {
    fn open(dir: &Path) -> Result<ByUser<T>> {
        Ok(ByUser {
            reader: TableReader::open(dir)?,
            buffer: VecDeque::new(),
            done: false,
            last: None,
        })
    }

    /// The next row's user, reading a batch when the buffer is empty.
    fn peek(&mut self) -> Result<Option<u32>> {
        while self.buffer.is_empty() && !self.done {
            match self.reader.next_batch()? {
                Some(rows) => self.buffer = rows.into(),
                None => self.done = true,
            }
        }
        Ok(self.buffer.front().map(T::user))
    }

    /// The rows of the next user, or `None` at the end of the table.
    fn next_user(&mut self) -> Result<Option<(u32, Vec<T>)>> {
        let Some(user) = self.peek()? else {
            return Ok(None);
        };
        Ok(Some((user, self.take(user)?)))
    }

    /// The rows of `user`, which must come next: a row of a smaller user id left unread is of a
    /// user the walk has passed (the table is not clustered by increasing user id, or the user
    /// is not in the users table).
    fn take(&mut self, user: u32) -> Result<Vec<T>> {
        if let Some(last) = self.last
            && user <= last
        {
            bail!(
                "{}: user {user} after user {last}; the streaming trainers need every table \
                 clustered by user, in increasing user order",
                T::DIR
            );
        }
        self.last = Some(user);
        let mut rows = Vec::new();
        while let Some(next) = self.peek()? {
            if next > user {
                break;
            }
            if next < user {
                bail!(
                    "{}: a row of user {next} after the rows of user {user} or of no listed user; \
                     the streaming trainers need every table clustered by user, in increasing \
                     user order, and only users of the users table",
                    T::DIR
                );
            }
            rows.extend(self.buffer.pop_front());
        }
        Ok(rows)
    }
}

/// How [`TowerExamplesByUser`] reads a world.
#[derive(Clone, Debug)]
pub struct TowerStreamConfig {
    /// Plays above this fraction of the title are positives (0.8, as everywhere).
    pub positive_above: f32,
    /// Only plays and searches before this time (the training cut); `None` takes all.
    pub before: Option<i64>,
    /// Users per chunk (the memory bound: one chunk's examples).
    pub users_per_chunk: usize,
    /// At most this many examples per user, a seeded uniform sample of the user's positives
    /// (every user then counts about alike, as in YouTube's candidate generator); `None`
    /// keeps one example per positive, as the in-memory trainer does.
    pub examples_per_user: Option<usize>,
    /// Seed of the per-user samples.
    pub seed: u64,
}

impl Default for TowerStreamConfig {
    fn default() -> Self {
        TowerStreamConfig {
            positive_above: 0.8,
            before: None,
            users_per_chunk: 50_000,
            examples_per_user: None,
            seed: 1,
        }
    }
}

/// The two-tower model's training examples read from a world, a chunk of users at a time: the
/// users, plays and searches tables walked side by side. Each positive before the cut gives
/// the example the in-memory trainer builds for it ([`sources::tower_example`]: the earlier
/// positives, the searches before it, the user's dense inputs at its time). Memory: the items,
/// the search vocabulary and one chunk.
pub struct TowerExamplesByUser {
    dir: PathBuf,
    catalog: Catalog,
    search_vocab: HashMap<String, u32>,
    stream: TowerStreamConfig,
    tower: TowerConfig,
    /// Examples of the last complete pass.
    passed: std::cell::Cell<u64>,
}

impl TowerExamplesByUser {
    /// Reads the world's items and, in one pass over the searches before the cut, the search
    /// vocabulary (tokens numbered by first appearance, users in table order, each user's
    /// searches in time order: the in-memory trainer's numbering).
    pub fn open(
        dir: &Path,
        stream: &TowerStreamConfig,
        tower: &TowerConfig,
    ) -> Result<TowerExamplesByUser> {
        ensure!(
            stream.users_per_chunk > 0,
            "a chunk needs at least one user"
        );
        ensure!(
            stream.examples_per_user != Some(0),
            "examples_per_user must be at least 1"
        );
        let catalog = Catalog::read(dir)?;
        let before = stream.before.unwrap_or(i64::MAX);
        let mut search_vocab = HashMap::new();
        let mut searches = ByUser::<Search>::open(dir)?;
        while let Some((_, mut rows)) = searches
            .next_user()
            .with_context(|| format!("reading the searches of {}", dir.display()))?
        {
            rows.sort_by_key(|s| s.time);
            sources::add_search_tokens(&mut search_vocab, rows.iter().filter(|s| s.time < before));
        }
        Ok(TowerExamplesByUser {
            dir: dir.to_path_buf(),
            catalog,
            search_vocab,
            stream: stream.clone(),
            tower: tower.clone(),
            passed: std::cell::Cell::new(0),
        })
    }

    /// Examples in the last complete pass over the world (0 before the first).
    pub fn examples(&self) -> u64 {
        self.passed.get()
    }

    /// Number of search tokens in the vocabulary.
    pub fn search_tokens(&self) -> usize {
        self.search_vocab.len()
    }

    /// One user's examples.
    fn user_examples(
        &self,
        user: &User,
        plays: &[Play],
        searches: &mut [Search],
        out: &mut Vec<TowerExample>,
    ) -> Result<()> {
        let before = self.stream.before.unwrap_or(i64::MAX);
        let mut positives: Vec<(i64, u32)> = Vec::new();
        for p in plays {
            if let Some(i) = self
                .catalog
                .positive(p, self.stream.positive_above, before)?
            {
                positives.push((p.time, i));
            }
        }
        // Time order, ties in log order (the in-memory trainer's (time, seq)).
        positives.sort_by_key(|p| p.0);
        searches.sort_by_key(|s| s.time);
        let keep = self.sample(user.user_id, positives.len());
        let mut history: Vec<u32> = Vec::with_capacity(positives.len());
        for (k, &(time, item)) in positives.iter().enumerate() {
            if keep.as_ref().is_none_or(|keep| keep[k]) {
                out.push(sources::tower_example(
                    user,
                    &history,
                    searches,
                    time,
                    item,
                    &self.search_vocab,
                    &self.tower,
                ));
            }
            history.push(item);
        }
        Ok(())
    }

    /// Which of a user's `n` positives give examples: `None` for all, else a seeded uniform
    /// sample of `examples_per_user` of them.
    fn sample(&self, user: u32, n: usize) -> Option<Vec<bool>> {
        let cap = self.stream.examples_per_user?;
        if n <= cap {
            return None;
        }
        let mut rng = Rng::stream(self.stream.seed, 0x7477_7273, u64::from(user));
        let mut order: Vec<usize> = (0..n).collect();
        let mut keep = vec![false; n];
        for k in 0..cap {
            let j = k + rng.index(n - k);
            order.swap(k, j);
            keep[order[k]] = true;
        }
        Some(keep)
    }

    fn pass(&self, f: &mut dyn FnMut(&[TowerExample]) -> Result<(), TowerError>) -> Result<()> {
        let mut users = ByUser::<User>::open(&self.dir)?;
        let mut plays = ByUser::<Play>::open(&self.dir)?;
        let mut searches = ByUser::<Search>::open(&self.dir)?;
        let mut chunk = Vec::new();
        let mut in_chunk = 0;
        let mut examples = 0u64;
        while let Some((id, rows)) = users.next_user()? {
            ensure!(rows.len() == 1, "users: user {id} has {} rows", rows.len());
            let user_plays = plays.take(id)?;
            let mut user_searches = searches.take(id)?;
            self.user_examples(&rows[0], &user_plays, &mut user_searches, &mut chunk)?;
            in_chunk += 1;
            if in_chunk == self.stream.users_per_chunk {
                examples += chunk.len() as u64;
                if !chunk.is_empty() {
                    f(&chunk)?;
                }
                chunk.clear();
                in_chunk = 0;
            }
        }
        for (table, left) in [("plays", plays.peek()?), ("searches", searches.peek()?)] {
            if let Some(u) = left {
                bail!(
                    "{table}: rows of user {u}, who is not in the users table (or comes out of order)"
                );
            }
        }
        examples += chunk.len() as u64;
        if !chunk.is_empty() {
            f(&chunk)?;
        }
        self.passed.set(examples);
        Ok(())
    }

    /// Trains the two-tower model on this world's examples, a chunk at a time
    /// ([`TwoTower::train_streaming`]), with the items' content tokens (`max_cast` actors) as
    /// the catalog, and exports its user tower.
    pub fn train(&self, max_cast: usize) -> Result<Tower> {
        self.fit(self, max_cast)
    }

    /// [`TowerExamplesByUser::train`] with every example read into memory first and shuffled
    /// as one (the in-memory trainer, for comparison: memory grows with the users).
    pub fn train_in_memory(&self, max_cast: usize) -> Result<Tower> {
        let mut all: Vec<TowerExample> = Vec::new();
        self.for_each_chunk(&mut |chunk| {
            all.extend_from_slice(chunk);
            Ok(())
        })?;
        self.fit(&all, max_cast)
    }

    fn fit(&self, examples: &dyn TowerExamples, max_cast: usize) -> Result<Tower> {
        let tokens = sources::item_tokens(&self.catalog.items, max_cast);
        let catalog = sources::tower_catalog(&tokens, self.search_vocab.len());
        let model = TwoTower::train_streaming(&catalog, examples, &self.tower)
            .context("training the two-tower model")?;
        sources::finish_tower(model, self.search_vocab.clone(), self.tower.max_searches)
    }
}

impl TowerExamples for TowerExamplesByUser {
    fn for_each_chunk(
        &self,
        f: &mut dyn FnMut(&[TowerExample]) -> Result<(), TowerError>,
    ) -> Result<(), TowerError> {
        // The callback's own error comes back as it was; reading errors become data errors.
        let mut inner: Option<TowerError> = None;
        let read = self.pass(&mut |chunk| {
            f(chunk).map_err(|e| {
                let msg = e.to_string();
                inner = Some(e);
                TowerError::InvalidData(msg)
            })
        });
        match (read, inner) {
            (_, Some(e)) => Err(e),
            (Err(e), None) => Err(TowerError::InvalidData(format!(
                "{}: {e:#}",
                self.dir.display()
            ))),
            (Ok(()), None) => Ok(()),
        }
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

        // Plays not clustered by increasing user are refused.
        let mut plays = schema::read_table::<Play>(dir.path()).unwrap();
        plays.reverse();
        std::fs::remove_dir_all(dir.path().join("plays")).unwrap();
        let mut w = schema::PartWriter::<Play>::create(dir.path(), Default::default()).unwrap();
        w.extend(plays).unwrap();
        w.finish().unwrap();
        let err = source.for_each(&mut |_| Ok(())).unwrap_err();
        assert!(err.contains("plays") && err.contains("clustered"), "{err}");
    }

    fn small_world(users: u32, seed: u64) -> (tempfile::TempDir, WorldData, i64) {
        let dir = tempfile::tempdir().unwrap();
        let cfg = edgerec_data::world::WorldConfig {
            users,
            items: 120,
            days: 10,
            seed,
            start: edgerec_data::world::DEFAULT_START,
        };
        edgerec_data::sim::simulate(&cfg, dir.path(), &Default::default()).unwrap();
        let world = WorldData::load(dir.path(), 0.8).unwrap();
        (dir, world, edgerec_data::world::DEFAULT_START + 7 * 86_400)
    }

    /// An example as a sortable key (dense values by their bits).
    fn key(e: &TowerExample) -> (u32, Vec<u32>, Vec<u32>, Vec<u32>, u32) {
        (
            e.positive,
            e.history.clone(),
            e.searches.clone(),
            e.dense.iter().map(|v| v.to_bits()).collect(),
            e.weight.to_bits(),
        )
    }

    fn collect(source: &TowerExamplesByUser) -> (Vec<TowerExample>, Vec<usize>) {
        let mut all = Vec::new();
        let mut sizes = Vec::new();
        source
            .for_each_chunk(&mut |chunk| {
                sizes.push(chunk.len());
                all.extend_from_slice(chunk);
                Ok(())
            })
            .unwrap();
        (all, sizes)
    }

    #[test]
    fn tower_examples_streamed_are_the_in_memory_trainers() {
        let (dir, world, cut) = small_world(300, 4);
        let tower = TowerConfig {
            max_history: 5,
            max_searches: 4,
            ..TowerConfig::default()
        };
        let mut vocab = HashMap::new();
        sources::add_search_tokens(
            &mut vocab,
            world.searches.iter().flatten().filter(|s| s.time < cut),
        );
        let train: Vec<_> = world
            .events
            .iter()
            .filter(|e| e.time < cut)
            .copied()
            .collect();
        let mut expected: Vec<_> = sources::tower_examples(&world, &train, &vocab, &tower)
            .iter()
            .map(key)
            .collect();
        expected.sort();

        let stream = TowerStreamConfig {
            before: Some(cut),
            users_per_chunk: 64,
            ..TowerStreamConfig::default()
        };
        let source = TowerExamplesByUser::open(dir.path(), &stream, &tower).unwrap();
        assert_eq!(source.search_vocab, vocab, "same token numbering");
        let (all, sizes) = collect(&source);
        let mut got: Vec<_> = all.iter().map(key).collect();
        got.sort();
        assert_eq!(got, expected);
        assert!(sizes.len() > 2, "{sizes:?}");
        assert!(all.iter().any(|e| !e.searches.is_empty()));
        assert!(all.iter().any(|e| e.history.len() == 5));

        // At most two examples per user, the same ones on every pass, each an in-memory one.
        let capped = TowerExamplesByUser::open(
            dir.path(),
            &TowerStreamConfig {
                examples_per_user: Some(2),
                ..stream.clone()
            },
            &tower,
        )
        .unwrap();
        let (a, _) = collect(&capped);
        let (b, _) = collect(&capped);
        assert_eq!(a, b);
        let mut per_user: HashMap<u32, usize> = HashMap::new();
        for e in &train {
            *per_user.entry(e.user).or_default() += 1;
        }
        let want: usize = per_user.values().map(|&n| n.min(2)).sum();
        assert_eq!(a.len(), want);
        assert!(a.len() < all.len());
        for e in &a {
            assert!(expected.binary_search(&key(e)).is_ok(), "{e:?}");
        }
        // Another seed samples other positives.
        let other = TowerExamplesByUser::open(
            dir.path(),
            &TowerStreamConfig {
                examples_per_user: Some(2),
                seed: 2,
                ..stream
            },
            &tower,
        )
        .unwrap();
        assert_ne!(collect(&other).0, a);
    }

    #[test]
    fn trains_from_the_world_and_refuses_unclustered_tables() {
        let (dir, world, cut) = small_world(200, 6);
        let tower = TowerConfig {
            epochs: 1,
            dim: 8,
            hidden: 8,
            batch_size: 32,
            ..TowerConfig::default()
        };
        let stream = TowerStreamConfig {
            before: Some(cut),
            users_per_chunk: 50,
            ..TowerStreamConfig::default()
        };
        let source = TowerExamplesByUser::open(dir.path(), &stream, &tower).unwrap();
        let trained = source.train(3).unwrap();
        assert_eq!(trained.model.n_items(), world.items.len());
        assert!(trained.model.epoch_losses()[0].is_finite());
        assert_eq!(trained.search_vocab().len(), source.search_tokens());

        // One chunk holding every user is the in-memory trainer's model exactly.
        let one = TowerExamplesByUser::open(
            dir.path(),
            &TowerStreamConfig {
                users_per_chunk: 10_000,
                ..stream.clone()
            },
            &tower,
        )
        .unwrap();
        let (a, b) = (one.train(3).unwrap(), one.train_in_memory(3).unwrap());
        assert_eq!(one.examples(), source.examples());
        assert!(one.examples() > 0);
        assert_eq!(a.model.item_embeddings(), b.model.item_embeddings());
        assert_ne!(a.model.item_embeddings(), trained.model.item_embeddings());

        // The callback's error comes back as it was.
        let err = source
            .for_each_chunk(&mut |_| Err(TowerError::InvalidConfig("stop".into())))
            .unwrap_err();
        assert!(
            matches!(err, TowerError::InvalidConfig(ref m) if m == "stop"),
            "{err}"
        );

        // Searches written in reverse user order are refused, naming the table.
        let mut searches = schema::read_table::<Search>(dir.path()).unwrap();
        searches.reverse();
        std::fs::remove_dir_all(dir.path().join("searches")).unwrap();
        let mut w = schema::PartWriter::<Search>::create(dir.path(), Default::default()).unwrap();
        w.extend(searches).unwrap();
        w.finish().unwrap();
        let err = TowerExamplesByUser::open(dir.path(), &stream, &tower)
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        assert!(
            err.contains("searches") && err.contains("clustered"),
            "{err}"
        );
    }
}
