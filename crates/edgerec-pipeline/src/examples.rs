//! Writing the examples: the plan's rows (labels, weights, platform counts and the merge's
//! encoded features, see [`crate::merge`]) become the part files of `examples/`.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, Result, anyhow, bail};
use arrow_array::builder::{
    FixedSizeListBuilder, Float32Builder, Int8Builder, Int32Builder, Int64Builder, ListBuilder,
    StringBuilder, UInt32Builder, UInt64Builder,
};
use arrow_array::cast::AsArray;
use arrow_array::types::ArrowPrimitiveType;
use arrow_array::{
    Array, ArrayRef, BinaryArray, Float32Array, Float64Array, Int64Array, PrimitiveArray,
    RecordBatch, StringArray, UInt32Array, UInt64Array,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use datafusion::prelude::SessionContext;
use edgerec::features::FeatureVector;
use futures::StreamExt;
use parquet::arrow::ArrowWriter;

use crate::report::{Fold, Tally, fold_window};
use crate::{PipelineConfig, World, merge};

/// The columns of `examples/*.parquet`, in order (the dense vector's width is the number of
/// names in `features.json`).
pub const EXAMPLE_COLUMNS: &[&str] = &[
    "user_id",
    "item_id",
    "time",
    "device",
    "session_id",
    "source",
    "label",
    "weight",
    "sample_rate",
    "watched_s",
    "fraction",
    "fold_window",
    "plays_24h",
    "plays_7d",
    "dense",
    "movie",
    "directors",
    "actors",
    "distributor",
    "composer",
    "language",
    "country",
    "genres",
    "tags",
    "user_country",
    "user_language",
    "last_genre",
    "holiday",
    "history",
    "search",
];

fn ids_field(name: &str) -> Field {
    Field::new(
        name,
        DataType::List(Arc::new(Field::new("item", DataType::UInt32, true))),
        false,
    )
}

fn schema(dense: usize) -> SchemaRef {
    use DataType::*;
    let f = |n: &str, t: DataType| Field::new(n, t, false);
    Arc::new(Schema::new(vec![
        f("user_id", UInt32),
        f("item_id", UInt32),
        f("time", Int64),
        f("device", Utf8),
        f("session_id", UInt64),
        f("source", Utf8),
        f("label", Int8),
        f("weight", Float32),
        f("sample_rate", Float32),
        f("watched_s", UInt32),
        f("fraction", Float32),
        f("fold_window", Int32),
        f("plays_24h", UInt32),
        f("plays_7d", UInt32),
        f(
            "dense",
            FixedSizeList(Arc::new(Field::new("item", Float32, true)), dense as i32),
        ),
        f("movie", UInt32),
        ids_field("directors"),
        ids_field("actors"),
        f("distributor", UInt32),
        f("composer", UInt32),
        f("language", UInt32),
        f("country", UInt32),
        ids_field("genres"),
        ids_field("tags"),
        f("user_country", UInt32),
        f("user_language", UInt32),
        f("last_genre", UInt32),
        f("holiday", UInt32),
        ids_field("history"),
        ids_field("search"),
    ]))
}

/// Column builders of one output part.
struct Builders {
    user: UInt32Builder,
    item: UInt32Builder,
    time: Int64Builder,
    device: StringBuilder,
    session: UInt64Builder,
    source: StringBuilder,
    label: Int8Builder,
    weight: Float32Builder,
    sample_rate: Float32Builder,
    watched_s: UInt32Builder,
    fraction: Float32Builder,
    fold: Int32Builder,
    plays_24h: UInt32Builder,
    plays_7d: UInt32Builder,
    dense: FixedSizeListBuilder<Float32Builder>,
    movie: UInt32Builder,
    directors: ListBuilder<UInt32Builder>,
    actors: ListBuilder<UInt32Builder>,
    distributor: UInt32Builder,
    composer: UInt32Builder,
    language: UInt32Builder,
    country: UInt32Builder,
    genres: ListBuilder<UInt32Builder>,
    tags: ListBuilder<UInt32Builder>,
    user_country: UInt32Builder,
    user_language: UInt32Builder,
    last_genre: UInt32Builder,
    holiday: UInt32Builder,
    history: ListBuilder<UInt32Builder>,
    search: ListBuilder<UInt32Builder>,
    rows: usize,
}

fn ids_builder() -> ListBuilder<UInt32Builder> {
    ListBuilder::new(UInt32Builder::new()).with_field(Arc::new(Field::new(
        "item",
        DataType::UInt32,
        true,
    )))
}

fn push_ids(b: &mut ListBuilder<UInt32Builder>, ids: &[u32]) {
    b.values().append_slice(ids);
    b.append(true);
}

impl Builders {
    fn new(dense: usize) -> Builders {
        Builders {
            user: UInt32Builder::new(),
            item: UInt32Builder::new(),
            time: Int64Builder::new(),
            device: StringBuilder::new(),
            session: UInt64Builder::new(),
            source: StringBuilder::new(),
            label: Int8Builder::new(),
            weight: Float32Builder::new(),
            sample_rate: Float32Builder::new(),
            watched_s: UInt32Builder::new(),
            fraction: Float32Builder::new(),
            fold: Int32Builder::new(),
            plays_24h: UInt32Builder::new(),
            plays_7d: UInt32Builder::new(),
            dense: FixedSizeListBuilder::new(Float32Builder::new(), dense as i32)
                .with_field(Arc::new(Field::new("item", DataType::Float32, true))),
            movie: UInt32Builder::new(),
            directors: ids_builder(),
            actors: ids_builder(),
            distributor: UInt32Builder::new(),
            composer: UInt32Builder::new(),
            language: UInt32Builder::new(),
            country: UInt32Builder::new(),
            genres: ids_builder(),
            tags: ids_builder(),
            user_country: UInt32Builder::new(),
            user_language: UInt32Builder::new(),
            last_genre: UInt32Builder::new(),
            holiday: UInt32Builder::new(),
            history: ids_builder(),
            search: ids_builder(),
            rows: 0,
        }
    }

    /// Appends example `i` of `c` with its fold window, features and ranker sequences
    /// (recent titles, search tokens).
    fn push(
        &mut self,
        c: &ExampleColumns,
        i: usize,
        window: i32,
        fv: &FeatureVector,
        sequences: &(Vec<u32>, Vec<u32>),
    ) {
        self.user.append_value(c.user.value(i));
        self.item.append_value(c.item.value(i));
        self.time.append_value(c.time.value(i));
        self.device.append_value(c.device.value(i));
        self.session.append_value(c.session.value(i));
        self.source.append_value(c.source.value(i));
        self.label.append_value(c.label.value(i) as i8);
        self.weight.append_value(c.weight.value(i) as f32);
        self.sample_rate.append_value(c.sample_rate.value(i) as f32);
        self.watched_s.append_value(c.watched_s.value(i));
        self.fraction.append_value(c.fraction.value(i));
        self.fold.append_value(window);
        self.plays_24h.append_value(c.plays_24h.value(i));
        self.plays_7d.append_value(c.plays_7d.value(i));
        self.dense.values().append_slice(&fv.dense);
        self.dense.append(true);
        let s = &fv.sparse;
        self.movie.append_value(s.movie);
        push_ids(&mut self.directors, &s.directors);
        push_ids(&mut self.actors, &s.actors);
        self.distributor.append_value(s.distributor);
        self.composer.append_value(s.composer);
        self.language.append_value(s.language);
        self.country.append_value(s.country);
        push_ids(&mut self.genres, &s.genres);
        push_ids(&mut self.tags, &s.tags);
        self.user_country.append_value(s.user_country);
        self.user_language.append_value(s.user_language);
        self.last_genre.append_value(s.last_genre);
        self.holiday.append_value(s.holiday);
        push_ids(&mut self.history, &sequences.0);
        push_ids(&mut self.search, &sequences.1);
        self.rows += 1;
    }

    fn finish(&mut self, schema: SchemaRef) -> Result<RecordBatch> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.user.finish()),
            Arc::new(self.item.finish()),
            Arc::new(self.time.finish()),
            Arc::new(self.device.finish()),
            Arc::new(self.session.finish()),
            Arc::new(self.source.finish()),
            Arc::new(self.label.finish()),
            Arc::new(self.weight.finish()),
            Arc::new(self.sample_rate.finish()),
            Arc::new(self.watched_s.finish()),
            Arc::new(self.fraction.finish()),
            Arc::new(self.fold.finish()),
            Arc::new(self.plays_24h.finish()),
            Arc::new(self.plays_7d.finish()),
            Arc::new(self.dense.finish()),
            Arc::new(self.movie.finish()),
            Arc::new(self.directors.finish()),
            Arc::new(self.actors.finish()),
            Arc::new(self.distributor.finish()),
            Arc::new(self.composer.finish()),
            Arc::new(self.language.finish()),
            Arc::new(self.country.finish()),
            Arc::new(self.genres.finish()),
            Arc::new(self.tags.finish()),
            Arc::new(self.user_country.finish()),
            Arc::new(self.user_language.finish()),
            Arc::new(self.last_genre.finish()),
            Arc::new(self.holiday.finish()),
            Arc::new(self.history.finish()),
            Arc::new(self.search.finish()),
        ];
        self.rows = 0;
        Ok(RecordBatch::try_new(schema, columns)?)
    }
}

/// A column cast to the type the merge reads.
fn column(batch: &RecordBatch, name: &str, to: &DataType) -> Result<ArrayRef> {
    let c = batch
        .column_by_name(name)
        .ok_or_else(|| anyhow!("plan output has no column {name:?}"))?;
    Ok(datafusion::arrow::compute::cast(c, to)?)
}

fn features_column(batch: &RecordBatch) -> Result<BinaryArray> {
    Ok(column(batch, "features", &DataType::Binary)?
        .as_binary::<i32>()
        .clone())
}

/// What was written, for the report.
#[derive(Debug, Default)]
pub struct Written {
    /// Totals by label and source, weights, and per-window counts.
    pub tally: Tally,
    /// Part files written.
    pub files: usize,
}

/// Runs the examples plan and writes featurised examples into `dir` (replaced if present).
pub(crate) async fn write_examples(
    ctx: &SessionContext,
    plan: &str,
    world: &World,
    config: &PipelineConfig,
    folds: &[Fold],
    dir: &Path,
) -> Result<Written> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let dense = world.space.dense_names().len();
    let schema = schema(dense);
    let mut examples = ctx.sql(plan).await?.execute_stream().await?;
    let mut out = Builders::new(dense);
    let mut written = Written::default();
    let mut writer: Option<ArrowWriter<File>> = None;

    while let Some(batch) = examples.next().await {
        let b = batch?;
        let c = ExampleColumns::read(&b)?;
        let features = features_column(&b)?;
        for i in 0..b.num_rows() {
            if features.is_null(i) {
                bail!(
                    "the merge gave no features for an example of user {}",
                    c.user.value(i)
                );
            }
            let (fv, sequences) = merge::decode(features.value(i)).with_context(|| {
                format!(
                    "features of user {} at {}",
                    c.user.value(i),
                    c.time.value(i)
                )
            })?;
            if fv.dense.len() != dense {
                bail!(
                    "the merge gave {} dense values, expected {dense}",
                    fv.dense.len()
                );
            }
            let t = c.time.value(i);
            let window = fold_window(folds, t);
            let (label, weight) = (c.label.value(i) as i8, c.weight.value(i) as f32);
            written.tally.add(label, c.source.value(i), weight, window);
            out.push(&c, i, window, &fv, &sequences);

            if out.rows >= 65_536 {
                let batch = out.finish(schema.clone())?;
                write_batch(&mut writer, &mut written, dir, &schema, batch, config)?;
            }
        }
    }
    if out.rows > 0 || written.files == 0 {
        let batch = out.finish(schema.clone())?;
        write_batch(&mut writer, &mut written, dir, &schema, batch, config)?;
    }
    if let Some(w) = writer.take() {
        w.close()?;
    }
    Ok(written)
}

/// Column `name` of the plan output as a primitive array of type `T`.
fn primitive<T: ArrowPrimitiveType>(batch: &RecordBatch, name: &str) -> Result<PrimitiveArray<T>> {
    Ok(column(batch, name, &T::DATA_TYPE)?
        .as_primitive::<T>()
        .clone())
}

/// Column `name` of the plan output as strings.
fn strings(batch: &RecordBatch, name: &str) -> Result<StringArray> {
    Ok(column(batch, name, &DataType::Utf8)?
        .as_string::<i32>()
        .clone())
}

/// The columns of one batch of the examples plan, cast to the types the merge reads.
struct ExampleColumns {
    user: UInt32Array,
    item: UInt32Array,
    time: Int64Array,
    device: StringArray,
    session: UInt64Array,
    source: StringArray,
    label: Int64Array,
    weight: Float64Array,
    sample_rate: Float64Array,
    watched_s: UInt32Array,
    fraction: Float32Array,
    plays_24h: UInt32Array,
    plays_7d: UInt32Array,
}

impl ExampleColumns {
    /// Reads the columns of `b` (an error names the first missing one).
    fn read(b: &RecordBatch) -> Result<ExampleColumns> {
        Ok(ExampleColumns {
            user: primitive(b, "user_id")?,
            item: primitive(b, "item_id")?,
            time: primitive(b, "time")?,
            device: strings(b, "device")?,
            session: primitive(b, "session_id")?,
            source: strings(b, "source")?,
            label: primitive(b, "label")?,
            weight: primitive(b, "weight")?,
            sample_rate: primitive(b, "sample_rate")?,
            watched_s: primitive(b, "watched_s")?,
            fraction: primitive(b, "fraction")?,
            plays_24h: primitive(b, "plays_24h")?,
            plays_7d: primitive(b, "plays_7d")?,
        })
    }
}

/// Appends a batch, starting a new part file every `rows_per_file` rows.
fn write_batch(
    writer: &mut Option<ArrowWriter<File>>,
    written: &mut Written,
    dir: &Path,
    schema: &SchemaRef,
    batch: RecordBatch,
    config: &PipelineConfig,
) -> Result<()> {
    let full = writer.as_ref().is_some_and(|w| {
        w.flushed_row_groups()
            .iter()
            .map(|g| g.num_rows() as usize)
            .sum::<usize>()
            + w.in_progress_rows()
            >= config.rows_per_file
    });
    if full && let Some(w) = writer.take() {
        w.close()?;
    }
    if writer.is_none() {
        let path = dir.join(format!("part-{:05}.parquet", written.files));
        let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        *writer = Some(ArrowWriter::try_new(file, schema.clone(), None)?);
        written.files += 1;
    }
    writer.as_mut().expect("opened above").write(&batch)?;
    Ok(())
}
