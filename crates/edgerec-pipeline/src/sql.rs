//! The DataFusion side: table registration with schema checks, the downsampling UDF, and the
//! SQL plans. Plans are plain SQL over registered Parquet tables plus one Rust scalar UDF, so
//! they can run unchanged on a Ballista cluster that registers the same UDF.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, Result, anyhow, bail};
use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, UInt32Type, UInt64Type};
use arrow_array::{Array, Float64Array};
use arrow_schema::{DataType, SchemaRef};
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use edgerec_data::schema::{Impression, Item, Play, Table, User};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::PipelineConfig;

/// The canonical schema of a table the pipeline reads (`edgerec_data::schema`).
fn canonical_schema(table: &str) -> SchemaRef {
    match table {
        "users" => User::schema(),
        "items" => Item::schema(),
        "plays" => Play::schema(),
        _ => Impression::schema(),
    }
}

fn same_type(found: &DataType, expected: &DataType) -> bool {
    match (found, expected) {
        (DataType::List(a), DataType::List(b)) => a.data_type() == b.data_type(),
        (a, b) => a == b,
    }
}

/// Row counts and files of the registered tables.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TableFiles {
    /// Table name and the number of part files.
    pub files: Vec<(String, usize)>,
}

/// Checks every part file's footer against the canonical schema (naming the file and column on
/// a mismatch) and registers the four tables (replacing tables of those names).
pub(crate) async fn register(ctx: &SessionContext, world: &Path) -> Result<TableFiles> {
    let mut files = Vec::new();
    for table in ["users", "items", "plays", "impressions"] {
        let dir = world.join(table);
        let mut parts: Vec<PathBuf> = std::fs::read_dir(&dir)
            .with_context(|| {
                format!(
                    "reading {} (is {} a world?)",
                    dir.display(),
                    world.display()
                )
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
            .collect();
        parts.sort();
        if parts.is_empty() {
            bail!("{} holds no .parquet files", dir.display());
        }
        for part in &parts {
            let file = File::open(part).with_context(|| format!("opening {}", part.display()))?;
            let builder = ParquetRecordBatchReaderBuilder::try_new(file)
                .with_context(|| format!("{}: not a readable Parquet file", part.display()))?;
            let schema = builder.schema();
            for f in canonical_schema(table).fields() {
                let (name, expected) = (f.name(), f.data_type());
                let field = schema
                    .field_with_name(name)
                    .map_err(|_| anyhow!("{}: column {name:?} is missing", part.display()))?;
                if !same_type(field.data_type(), expected) {
                    bail!(
                        "{}: column {name:?} has type {}, expected {expected}",
                        part.display(),
                        field.data_type()
                    );
                }
            }
        }
        let path = dir
            .to_str()
            .ok_or_else(|| anyhow!("{} is not valid UTF-8", dir.display()))?;
        // A session that ran the pipeline before now reads this world.
        ctx.deregister_table(table)?;
        ctx.register_parquet(table, path, ParquetReadOptions::default())
            .await
            .with_context(|| format!("registering {}", dir.display()))?;
        files.push((table.to_string(), parts.len()));
    }
    Ok(TableFiles { files })
}

/// SplitMix64's finaliser.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A uniform number in `[0, 1)` from `(seed, user, item, time, session)`: the downsampling
/// decision, identical wherever the plan runs.
pub fn unit_hash(seed: u64, user: u32, item: u32, time: i64, session: u64) -> f64 {
    let mut h = mix(seed ^ 0x6564_6765_7265_6321);
    for w in [u64::from(user), u64::from(item), time as u64, session] {
        h = mix(h ^ w);
    }
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// `edgerec_unit_hash(seed BIGINT UNSIGNED, user INT UNSIGNED, item INT UNSIGNED, time BIGINT,
/// session BIGINT UNSIGNED) -> DOUBLE`.
pub(crate) fn unit_hash_udf() -> ScalarUDF {
    create_udf(
        "edgerec_unit_hash",
        vec![
            DataType::UInt64,
            DataType::UInt32,
            DataType::UInt32,
            DataType::Int64,
            DataType::UInt64,
        ],
        DataType::Float64,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let seed = arrays[0].as_primitive::<UInt64Type>();
            let user = arrays[1].as_primitive::<UInt32Type>();
            let item = arrays[2].as_primitive::<UInt32Type>();
            let time = arrays[3].as_primitive::<Int64Type>();
            let session = arrays[4].as_primitive::<UInt64Type>();
            let out: Float64Array = (0..user.len())
                .map(|i| {
                    let any_null = arrays.iter().any(|a| a.is_null(i));
                    (!any_null).then(|| {
                        unit_hash(
                            seed.value(i),
                            user.value(i),
                            item.value(i),
                            time.value(i),
                            session.value(i),
                        )
                    })
                })
                .collect();
            Ok(ColumnarValue::Array(Arc::new(out)))
        }),
    )
}

/// Label counts before downsampling.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
pub struct LabelCounts {
    /// All plays.
    pub plays: u64,
    /// Plays above the positive threshold.
    pub positive_plays: u64,
    /// Plays below the negative threshold.
    pub negative_plays: u64,
    /// Plays dropped as neither (the middle band, thresholds included).
    pub dropped_plays: u64,
    /// All impressions.
    pub impressions: u64,
    /// Impressions without a play in their session (negatives when enabled).
    pub negative_impressions: u64,
    /// Whether impressions count as negatives.
    pub impressions_as_negatives: bool,
}

impl LabelCounts {
    /// Positives.
    pub fn positives(&self) -> u64 {
        self.positive_plays
    }

    /// Negatives before downsampling.
    pub fn negatives(&self) -> u64 {
        self.negative_plays
            + if self.impressions_as_negatives {
                self.negative_impressions
            } else {
                0
            }
    }

    /// The probability of keeping a negative.
    pub fn negative_sample_rate(&self, per_positive: f64) -> f64 {
        let n = self.negatives();
        if n == 0 {
            1.0
        } else {
            (per_positive * self.positives() as f64 / n as f64).min(1.0)
        }
    }
}

fn thresholds(c: &PipelineConfig) -> (String, String) {
    // Compared in f32 with the stored fraction: exactly 0.8 is not above 0.8.
    (
        format!("CAST({:?} AS REAL)", c.positive_above as f64),
        format!("CAST({:?} AS REAL)", c.negative_below as f64),
    )
}

const UNPLAYED_IMPRESSIONS: &str = "impressions m WHERE NOT EXISTS (
    SELECT 1 FROM plays p
    WHERE p.session_id = m.session_id AND p.item_id = m.item_id AND p.user_id = m.user_id)";

/// The first row of a query's result, every column cast to `i64` (`None` for nulls).
async fn first_row(ctx: &SessionContext, sql: &str) -> Result<Vec<Option<i64>>> {
    let batches = ctx.sql(sql).await?.collect().await?;
    let batch = batches
        .iter()
        .find(|b| b.num_rows() > 0)
        .ok_or_else(|| anyhow!("no result for {sql}"))?;
    (0..batch.num_columns())
        .map(|c| {
            let col = datafusion::arrow::compute::cast(batch.column(c), &DataType::Int64)?;
            let col = col.as_primitive::<Int64Type>();
            Ok((!col.is_null(0)).then(|| col.value(0)))
        })
        .collect()
}

/// Counts (an empty `SUM` is 0).
async fn counts(ctx: &SessionContext, sql: &str) -> Result<Vec<u64>> {
    Ok(first_row(ctx, sql)
        .await?
        .into_iter()
        .map(|v| v.unwrap_or(0) as u64)
        .collect())
}

/// First and last event time over plays and impressions.
pub(crate) async fn time_range(ctx: &SessionContext) -> Result<(i64, i64)> {
    let row = first_row(
        ctx,
        "SELECT MIN(t), MAX(t) FROM (SELECT time AS t FROM plays UNION ALL SELECT time AS t FROM impressions)",
    )
    .await?;
    match row[..] {
        [Some(first), Some(last)] => Ok((first, last)),
        _ => bail!("the world has no events"),
    }
}

/// Counts the label bands and the unplayed impressions.
pub(crate) async fn label_counts(ctx: &SessionContext, c: &PipelineConfig) -> Result<LabelCounts> {
    let (pos, neg) = thresholds(c);
    let plays = counts(
        ctx,
        &format!(
            "SELECT COUNT(*),
                    SUM(CASE WHEN fraction > {pos} THEN 1 ELSE 0 END),
                    SUM(CASE WHEN fraction < {neg} THEN 1 ELSE 0 END)
             FROM plays"
        ),
    )
    .await?;
    let impressions = counts(
        ctx,
        &format!(
            "SELECT (SELECT COUNT(*) FROM impressions) AS impressions,
                    (SELECT COUNT(*) FROM {UNPLAYED_IMPRESSIONS}) AS unplayed"
        ),
    )
    .await?;
    Ok(LabelCounts {
        plays: plays[0],
        positive_plays: plays[1],
        negative_plays: plays[2],
        dropped_plays: plays[0] - plays[1] - plays[2],
        impressions: impressions[0],
        negative_impressions: impressions[1],
        impressions_as_negatives: c.impressions_as_negatives,
    })
}

/// The examples plan: labels, downsampling, weights, point-in-time platform counts and the
/// per-user merge (`merge`: the [`crate::merge`] window function's call, which sees every
/// play of the user), sorted by `(user_id, time, item_id, source, session_id)`.
pub(crate) fn examples_sql(c: &PipelineConfig, sample_rate: f64, merge: &str) -> String {
    let (pos, neg) = thresholds(c);
    let impressions = if c.impressions_as_negatives {
        format!(
            "UNION ALL
             SELECT m.user_id, m.item_id, m.time, m.device, m.session_id, 'impression' AS source,
                    0 AS label, CAST(0 AS INT UNSIGNED) AS watched_s, CAST(0 AS REAL) AS fraction
             FROM {UNPLAYED_IMPRESSIONS}"
        )
    } else {
        String::new()
    };
    format!(
        "WITH labelled AS (
            SELECT user_id, item_id, time, device, session_id, 'play' AS source,
                   CASE WHEN fraction > {pos} THEN 1 ELSE 0 END AS label, watched_s, fraction
            FROM plays WHERE fraction > {pos} OR fraction < {neg}
            {impressions}
         ),
         sampled AS (
            SELECT l.*, CASE WHEN label = 1 THEN 1.0 ELSE {rate:?} END AS sample_rate
            FROM labelled l
            WHERE label = 1
               OR edgerec_unit_hash(CAST({seed} AS BIGINT UNSIGNED), user_id, item_id, time, session_id) < {rate:?}
         ),
         weighted AS (
            SELECT s.*, i.duration_s,
                   LEAST(GREATEST(CAST(CASE WHEN s.label = 1 THEN s.watched_s ELSE i.duration_s END AS DOUBLE) / 3600.0, 0.1), 4.0) AS weight
            FROM sampled s JOIN items i ON s.item_id = i.item_id
         ),
         events AS (
            SELECT user_id, item_id, time, device, session_id, source, label, watched_s, fraction,
                   sample_rate, duration_s, weight, 0 AS is_play
            FROM weighted
            UNION ALL
            SELECT user_id, item_id, time, device, session_id, 'event' AS source, 0 AS label, watched_s,
                   fraction, 0.0 AS sample_rate, CAST(0 AS INT UNSIGNED) AS duration_s, 0.0 AS weight, 1 AS is_play
            FROM plays
         ),
         counted AS (
            SELECT *,
                   SUM(is_play) OVER (PARTITION BY item_id ORDER BY time
                       RANGE BETWEEN 86400 PRECEDING AND 1 PRECEDING) AS plays_24h_sum,
                   SUM(is_play) OVER (PARTITION BY item_id ORDER BY time
                       RANGE BETWEEN 604800 PRECEDING AND 1 PRECEDING) AS plays_7d_sum
            FROM events
         ),
         merged AS (
            SELECT *, {merge} AS features
            FROM (SELECT *,
                         CAST(COALESCE(plays_24h_sum, 0) AS INT UNSIGNED) AS plays_24h,
                         CAST(COALESCE(plays_7d_sum, 0) AS INT UNSIGNED) AS plays_7d
                  FROM counted)
         )
         SELECT user_id, item_id, time, device, session_id, source, label, watched_s, fraction,
                sample_rate, duration_s, weight, plays_24h, plays_7d, features
         FROM merged WHERE is_play = 0
         ORDER BY user_id, time, item_id, source, session_id",
        seed = c.seed,
        rate = sample_rate,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_hash_is_uniform_enough_and_stable() {
        let n = 100_000;
        let below = (0..n)
            .filter(|&i| unit_hash(7, i, i * 3, i64::from(i), 1) < 0.25)
            .count();
        assert!((below as f64 / n as f64 - 0.25).abs() < 0.01, "{below}");
        assert_eq!(unit_hash(1, 2, 3, 4, 5), unit_hash(1, 2, 3, 4, 5));
        assert_ne!(unit_hash(1, 2, 3, 4, 5), unit_hash(2, 2, 3, 4, 5));
    }
}
