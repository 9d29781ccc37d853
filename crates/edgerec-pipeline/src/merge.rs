//! The per-user merge as a window function: `edgerec_features(…) OVER (PARTITION BY user_id
//! ORDER BY time, item_id, source, session_id, is_play)` walks one user's plays and examples in
//! time order and hands each example to the core crate's feature code (what the device runs),
//! which sees only the plays strictly before it. The window's order is the examples' output
//! order, so the plan sorts the narrow rows once, before the merge, and never re-sorts the
//! wide featurised rows after it; plays of equal time are kept in `(session, title)` order,
//! as a device's history has them.
//!
//! Being a window function, the merge is part of the plan: DataFusion hash-partitions the
//! rows by user and runs one merge per partition on every core (and a Ballista cluster runs it
//! on every executor). It runs in bounded memory: the evaluator is causal (a row needs only the
//! rows before it), so rows stream through and only the current user's plays are held.
//!
//! The function's output is one binary value per example (`NULL` for play rows): the dense
//! vector, the sparse ids and the ranker's two sequences, encoded by [`encode`] and read back
//! by [`Decoder`] where the examples are written.

use std::any::Any;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Int64Type, UInt32Type, UInt64Type};
use arrow_array::{Array, ArrayRef};
use arrow_schema::{DataType, Field, FieldRef};
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::logical_expr::function::{PartitionEvaluatorArgs, WindowUDFFieldArgs};
use datafusion::logical_expr::{
    PartitionEvaluator, Signature, Volatility, WindowUDF, WindowUDFImpl,
};
use datafusion::physical_expr::expressions::Literal;
use edgerec::context::{Context, Device};
use edgerec::features::{
    FeatureConfig, FeatureVector, MediaStats, Play, SparseFeatures, UserState,
};
use edgerec::ranker::{MAX_HISTORY, MAX_SEARCH, history_titles};

use crate::World;

type DfResult<T> = datafusion::common::Result<T>;

/// The ranker's two sequences of an example: recent titles and search tokens.
pub(crate) type Sequences = (Vec<u32>, Vec<u32>);

/// The window function's name in SQL.
pub(crate) const NAME: &str = "edgerec_features";

fn exec_err(msg: impl Into<String>) -> DataFusionError {
    DataFusionError::Execution(msg.into())
}

/// The argument types, in order: four literals naming the world (its directory, a
/// fingerprint of its small tables, and the feature configuration), then the row's columns.
fn argument_types() -> Vec<DataType> {
    use DataType::*;
    vec![
        Utf8,    // world directory (absolute)
        Utf8,    // world fingerprint (see `fingerprint`)
        Int64,   // FeatureConfig::recent_days
        Int64,   // FeatureConfig::holiday_horizon_days
        Int64,   // FeatureConfig::provenance (0 or 1)
        UInt32,  // user_id
        UInt32,  // item_id
        Int64,   // time
        Utf8,    // device
        UInt64,  // session_id
        Int64,   // is_play (1 for a play, 0 for an example)
        UInt32,  // watched_s
        Float32, // fraction
        UInt32,  // plays_24h
        UInt32,  // plays_7d
    ]
}

/// The SQL call, its literals filled in (`world` must be absolute: executors resolve it).
pub(crate) fn call_sql(world: &Path, fingerprint: &str, config: &FeatureConfig) -> String {
    let quote = |s: &str| format!("'{}'", s.replace('\'', "''"));
    format!(
        "{NAME}({world}, {fingerprint}, CAST({recent} AS BIGINT), CAST({horizon} AS BIGINT), \
         CAST({provenance} AS BIGINT), user_id, item_id, time, device, session_id, \
         CAST(is_play AS BIGINT), watched_s, fraction, plays_24h, plays_7d) \
         OVER (PARTITION BY user_id ORDER BY time, item_id, source, session_id, is_play)",
        world = quote(&world.to_string_lossy()),
        fingerprint = quote(fingerprint),
        recent = config.recent_days,
        horizon = config.holiday_horizon_days,
        provenance = u8::from(config.provenance),
    )
}

/// Names, sizes and modification times of the small tables' part files: a world rewritten in
/// place gets a new fingerprint, so a long-running executor never serves a stale copy.
pub(crate) fn fingerprint(world: &Path) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for table in ["items", "users", "searches"] {
        let dir = world.join(table);
        if !dir.is_dir() {
            continue;
        }
        let mut parts: Vec<(String, u64, u128)> = Vec::new();
        for e in std::fs::read_dir(&dir)? {
            let e = e?;
            let m = e.metadata()?;
            let modified = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            parts.push((
                e.file_name().to_string_lossy().into_owned(),
                m.len(),
                modified,
            ));
        }
        parts.sort();
        h.update(format!("{table}:{parts:?};").as_bytes());
    }
    Ok(format!("{:x}", h.finalize()))
}

/// What identifies a loaded world.
#[derive(Clone, PartialEq, Eq)]
struct WorldKey {
    dir: PathBuf,
    fingerprint: String,
    config: (u32, u16, bool),
}

/// Worlds loaded by this process, most recent last (a few: executors serve many jobs).
static WORLDS: Mutex<Vec<(WorldKey, Arc<World>)>> = Mutex::new(Vec::new());
const KEEP_WORLDS: usize = 4;

fn remember(key: WorldKey, world: Arc<World>) {
    let mut worlds = WORLDS.lock().unwrap_or_else(|e| e.into_inner());
    worlds.retain(|(k, _)| *k != key);
    if worlds.len() >= KEEP_WORLDS {
        worlds.remove(0);
    }
    worlds.push((key, world));
}

/// Makes `world` (already loaded by the caller) what the window function uses for its
/// directory, fingerprint and configuration in this process.
pub(crate) fn share_world(dir: &Path, fingerprint: &str, config: FeatureConfig, world: Arc<World>) {
    let key = WorldKey {
        dir: dir.to_path_buf(),
        fingerprint: fingerprint.to_string(),
        config: (
            config.recent_days,
            config.holiday_horizon_days,
            config.provenance,
        ),
    };
    remember(key, world);
}

/// The world for `key`, loaded on first use.
fn world_for(key: &WorldKey) -> DfResult<Arc<World>> {
    {
        let worlds = WORLDS.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, w)) = worlds.iter().rev().find(|(k, _)| k == key) {
            return Ok(w.clone());
        }
    }
    let (recent_days, holiday_horizon_days, provenance) = key.config;
    let config = FeatureConfig {
        recent_days,
        holiday_horizon_days,
        provenance,
    };
    let world = World::load(&key.dir, config)
        .map_err(|e| exec_err(format!("{NAME}: loading the world: {e:#}")))?;
    let found = fingerprint(&key.dir).map_err(|e| exec_err(format!("{NAME}: {e}")))?;
    if found != key.fingerprint {
        return Err(exec_err(format!(
            "{NAME}: the world at {} is not the one the plan was made for (it changed, or this \
             executor sees another directory at that path)",
            key.dir.display()
        )));
    }
    let world = Arc::new(world);
    remember(key.clone(), world.clone());
    Ok(world)
}

/// The window function (register it wherever the plan is planned or executed: the embedded
/// session, the Ballista client, scheduler and executors).
pub fn features_udwf() -> WindowUDF {
    WindowUDF::new_from_impl(FeaturesUdwf {
        signature: Signature::exact(argument_types(), Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct FeaturesUdwf {
    signature: Signature,
}

/// The value of literal argument `i`.
fn literal(args: &PartitionEvaluatorArgs, i: usize) -> DfResult<ScalarValue> {
    args.input_exprs()
        .get(i)
        .and_then(|e| (e.as_ref() as &dyn Any).downcast_ref::<Literal>())
        .map(|l| l.value().clone())
        .ok_or_else(|| exec_err(format!("{NAME}: argument {} must be a literal", i + 1)))
}

fn literal_str(args: &PartitionEvaluatorArgs, i: usize) -> DfResult<String> {
    match literal(args, i)? {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => Ok(s),
        v => Err(exec_err(format!(
            "{NAME}: argument {} is {v:?}, expected a string",
            i + 1
        ))),
    }
}

fn literal_int<T: TryFrom<i64>>(args: &PartitionEvaluatorArgs, i: usize) -> DfResult<T> {
    match literal(args, i)? {
        ScalarValue::Int64(Some(v)) => T::try_from(v)
            .map_err(|_| exec_err(format!("{NAME}: argument {} out of range: {v}", i + 1))),
        v => Err(exec_err(format!(
            "{NAME}: argument {} is {v:?}, expected an integer",
            i + 1
        ))),
    }
}

impl WindowUDFImpl for FeaturesUdwf {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn partition_evaluator(
        &self,
        args: PartitionEvaluatorArgs,
    ) -> DfResult<Box<dyn PartitionEvaluator>> {
        let key = WorldKey {
            dir: PathBuf::from(literal_str(&args, 0)?),
            fingerprint: literal_str(&args, 1)?,
            config: (
                literal_int(&args, 2)?,
                literal_int(&args, 3)?,
                literal_int::<u8>(&args, 4)? != 0,
            ),
        };
        // The world loads at the first row, not here: planners create evaluators too (to ask
        // whether the function streams), and must not need the world's files.
        Ok(Box::new(Merge {
            key,
            world: None,
            plays: Vec::new(),
            state: None,
            sequences: (Vec::new(), Vec::new()),
        }))
    }

    fn field(&self, field_args: WindowUDFFieldArgs) -> DfResult<FieldRef> {
        Ok(Arc::new(Field::new(
            field_args.name(),
            DataType::Binary,
            true,
        )))
    }
}

/// One user's merge: the plays so far and the point-in-time state at the last example's time.
struct Merge {
    key: WorldKey,
    world: Option<Arc<World>>,
    /// The user's plays so far, by `(time, session, title)`.
    plays: Vec<Play>,
    state: Option<(i64, UserState)>,
    /// The ranker's sequences at the state's time: recent titles and search tokens.
    sequences: Sequences,
}

impl std::fmt::Debug for Merge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Merge")
            .field("plays", &self.plays.len())
            .field("time", &self.state.as_ref().map(|s| s.0))
            .finish()
    }
}

fn device(s: &str) -> DfResult<Device> {
    s.parse()
        .map_err(|_| exec_err(format!("unknown device {s:?}")))
}

/// Row `i` of the arguments (after the five literals).
struct RowArgs<'a> {
    values: &'a [ArrayRef],
    i: usize,
}

impl RowArgs<'_> {
    fn u32(&self, col: usize) -> u32 {
        self.values[col].as_primitive::<UInt32Type>().value(self.i)
    }
    fn i64(&self, col: usize) -> i64 {
        self.values[col].as_primitive::<Int64Type>().value(self.i)
    }
}

impl PartitionEvaluator for Merge {
    fn is_causal(&self) -> bool {
        true
    }

    fn supports_bounded_execution(&self) -> bool {
        true
    }

    fn evaluate(&mut self, values: &[ArrayRef], range: &Range<usize>) -> DfResult<ScalarValue> {
        let i = range.start;
        if values.len() < 15 || values[5..15].iter().any(|v| v.len() <= i) {
            return Err(exec_err(format!("{NAME}: row {i} out of range")));
        }
        if values[5..15].iter().any(|v| v.is_null(i)) {
            return Err(exec_err(format!("{NAME}: null argument in row {i}")));
        }
        let row = RowArgs { values, i };
        let (user, item, time) = (row.u32(5), row.u32(6), row.i64(7));
        let dev = values[8].as_string::<i32>().value(i);
        let session = values[9].as_primitive::<UInt64Type>().value(i);
        if self.world.is_none() {
            self.world = Some(world_for(&self.key)?);
        }
        let world = &**self.world.as_ref().expect("loaded above");
        if row.i64(10) != 0 {
            // Plays of titles missing from the items table cannot be featurised.
            if let Some(&media) = world.index.get(&item) {
                let play = Play {
                    media,
                    time,
                    device: device(dev)
                        .map_err(|e| exec_err(format!("plays: user {user}: {e}")))?,
                    session,
                    watched_s: row.u32(11),
                    fraction: values[12].as_primitive::<Float32Type>().value(i),
                };
                // Rows arrive by time; equal times by title, so place by session then title.
                let key = |p: &Play| (p.time, p.session, p.media);
                let at = self.plays.partition_point(|p| key(p) <= key(&play));
                self.plays.insert(at, play);
            }
            return Ok(ScalarValue::Binary(None));
        }
        let profile = world
            .users
            .get(&user)
            .ok_or_else(|| exec_err(format!("user {user} has events but no row in users")))?;
        if self.state.as_ref().is_none_or(|s| s.0 != time) {
            let before = &self.plays[..self.plays.partition_point(|p| p.time < time)];
            let s = world.space.user_state(profile, before, &world.media, time);
            self.state = Some((time, s));
            self.sequences = (
                history_titles(before, &world.media, MAX_HISTORY),
                world.recent_search_tokens(user, time, MAX_SEARCH),
            );
        }
        let user_state = &self.state.as_ref().expect("set above").1;
        let ctx = Context::new(device(dev)?, time, profile.utc_offset_minutes)
            .map_err(|e| exec_err(format!("user {user} at {time}: {e}")))?;
        let context = world.space.context(profile, &ctx);
        let index = *world
            .index
            .get(&item)
            .ok_or_else(|| exec_err(format!("example of unknown item {item}")))?;
        let stats = MediaStats {
            plays_24h: row.u32(13),
            plays_7d: row.u32(14),
        };
        let fv = world.space.features(
            user_state,
            &context,
            &world.media[index as usize],
            index,
            stats,
        );
        Ok(ScalarValue::Binary(Some(encode(&fv, &self.sequences))))
    }

    fn evaluate_all(&mut self, values: &[ArrayRef], num_rows: usize) -> DfResult<ArrayRef> {
        let rows = (0..num_rows)
            .map(|i| self.evaluate(values, &(i..i + 1)))
            .collect::<DfResult<Vec<_>>>()?;
        if rows.is_empty() {
            return Ok(arrow_array::new_empty_array(&DataType::Binary));
        }
        ScalarValue::iter_to_array(rows)
    }
}

/// An example's features as little-endian `u32` words: the dense vector (length, then `f32`
/// bits), the sparse ids in [`SparseFeatures`](edgerec::features::SparseFeatures) order
/// (lists as length then ids), then the recent titles and the search tokens.
pub(crate) fn encode(fv: &FeatureVector, sequences: &Sequences) -> Vec<u8> {
    let s = &fv.sparse;
    let lists = s.directors.len()
        + s.actors.len()
        + s.genres.len()
        + s.tags.len()
        + sequences.0.len()
        + sequences.1.len();
    let mut out = Vec::with_capacity(4 * (fv.dense.len() + lists + 20));
    let mut word = |w: u32| out.extend_from_slice(&w.to_le_bytes());
    word(fv.dense.len() as u32);
    fv.dense.iter().for_each(|v| word(v.to_bits()));
    let list = |word: &mut dyn FnMut(u32), ids: &[u32]| {
        word(ids.len() as u32);
        ids.iter().for_each(|&id| word(id));
    };
    word(s.movie);
    list(&mut word, &s.directors);
    list(&mut word, &s.actors);
    word(s.distributor);
    word(s.composer);
    word(s.language);
    word(s.country);
    list(&mut word, &s.genres);
    list(&mut word, &s.tags);
    word(s.user_country);
    word(s.user_language);
    word(s.last_genre);
    word(s.holiday);
    list(&mut word, &sequences.0);
    list(&mut word, &sequences.1);
    out
}

/// Reads what [`encode`] wrote, checking every length against what is left.
struct Decoder<'a> {
    bytes: &'a [u8],
}

impl<'a> Decoder<'a> {
    fn word(&mut self) -> anyhow::Result<u32> {
        let (head, rest) = self
            .bytes
            .split_first_chunk::<4>()
            .ok_or_else(|| anyhow::anyhow!("features value ends early"))?;
        self.bytes = rest;
        Ok(u32::from_le_bytes(*head))
    }

    /// A length-prefixed list of words.
    fn list(&mut self) -> anyhow::Result<Vec<u32>> {
        let n = self.word()? as usize;
        let len = n
            .checked_mul(4)
            .filter(|&l| l <= self.bytes.len())
            .ok_or_else(|| anyhow::anyhow!("features value: a list of {n} overruns the value"))?;
        let (run, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Ok(run
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
}

/// An example's features and sequences from what [`encode`] wrote (an error, never a panic,
/// for anything else).
pub(crate) fn decode(bytes: &[u8]) -> anyhow::Result<(FeatureVector, Sequences)> {
    let mut d = Decoder { bytes };
    let dense = d.list()?.into_iter().map(f32::from_bits).collect();
    let sparse = SparseFeatures {
        movie: d.word()?,
        directors: d.list()?,
        actors: d.list()?,
        distributor: d.word()?,
        composer: d.word()?,
        language: d.word()?,
        country: d.word()?,
        genres: d.list()?,
        tags: d.list()?,
        user_country: d.word()?,
        user_language: d.word()?,
        last_genre: d.word()?,
        holiday: d.word()?,
    };
    let sequences = (d.list()?, d.list()?);
    anyhow::ensure!(d.bytes.is_empty(), "features value has trailing bytes");
    Ok((FeatureVector { dense, sparse }, sequences))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trips_and_refuses_anything_else() {
        let fv = FeatureVector {
            dense: vec![0.5, -1.0, f32::MIN_POSITIVE],
            sparse: SparseFeatures {
                movie: 7,
                directors: vec![1, 2],
                actors: vec![],
                distributor: 3,
                composer: 0,
                language: 4,
                country: 5,
                genres: vec![6],
                tags: vec![8, 9, 10],
                user_country: 11,
                user_language: 12,
                last_genre: 13,
                holiday: 14,
            },
        };
        let sequences = (vec![20, 21], vec![30]);
        let bytes = encode(&fv, &sequences);
        let (back, seq) = decode(&bytes).unwrap();
        assert_eq!(back, fv);
        assert_eq!(seq, sequences);
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.extend_from_slice(&[0; 4]);
        assert!(decode(&longer).is_err());
        let mut huge = bytes.clone();
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(&huge).is_err());
    }
}
