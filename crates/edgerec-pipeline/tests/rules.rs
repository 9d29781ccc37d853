//! The pipeline on hand-made worlds whose right answers are known: label edges, weights,
//! downsampling ratio and determinism, fold boundaries, point-in-time counts, feature parity
//! with the core crate, and schema errors.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{ListBuilder, StringBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Int8Type, Int32Type, Int64Type, UInt32Type};
use arrow_array::{
    ArrayRef, Float32Array, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
    UInt8Array, UInt16Array, UInt32Array, UInt64Array,
};
use arrow_schema::{Field, Schema};
use edgerec::context::{Context, Device};
use edgerec::features::{History, MediaStats, Play};
use edgerec::ranker::{MAX_HISTORY, MAX_SEARCH, history_titles};
use edgerec_data::schema::{PartWriter, Search, WriterOptions};
use edgerec_pipeline::{PipelineConfig, World};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

const DAY: i64 = 86_400;
const T0: i64 = 1_780_000_000; // 2026-05-28

#[derive(Clone)]
struct P {
    user: u32,
    item: u32,
    time: i64,
    session: u64,
    watched: u32,
    fraction: f32,
}

#[derive(Clone)]
struct I {
    user: u32,
    item: u32,
    time: i64,
    session: u64,
    position: u16,
}

/// (id, kind, duration_s, genres, series, season, episode)
type ItemRow = (
    u32,
    &'static str,
    u32,
    Vec<&'static str>,
    Option<u32>,
    Option<u16>,
    Option<u16>,
);

struct WorldSpec {
    users: u32,
    items: Vec<ItemRow>,
    plays: Vec<P>,
    impressions: Vec<I>,
}

fn list(values: Vec<Vec<&str>>) -> ArrayRef {
    let mut b = ListBuilder::new(StringBuilder::new());
    for v in values {
        for x in v {
            b.values().append_value(x);
        }
        b.append(true);
    }
    Arc::new(b.finish())
}

fn write(dir: &Path, table: &str, columns: Vec<(&str, ArrayRef)>) {
    let dir = dir.join(table);
    std::fs::create_dir_all(&dir).unwrap();
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
            .collect::<Vec<_>>(),
    ));
    let batch =
        RecordBatch::try_new(schema.clone(), columns.into_iter().map(|c| c.1).collect()).unwrap();
    let file = std::fs::File::create(dir.join("part-00000.parquet")).unwrap();
    let mut w = ArrowWriter::try_new(file, schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

fn write_world(dir: &Path, spec: &WorldSpec) {
    let n = spec.users as usize;
    let ids: Vec<u32> = (1..=spec.users).collect();
    write(
        dir,
        "users",
        vec![
            ("user_id", Arc::new(UInt32Array::from(ids.clone()))),
            ("age", Arc::new(UInt8Array::from(vec![30u8; n]))),
            ("gender", Arc::new(StringArray::from(vec!["f"; n]))),
            ("language", Arc::new(StringArray::from(vec!["en"; n]))),
            ("country", Arc::new(StringArray::from(vec!["US"; n]))),
            (
                "utc_offset_minutes",
                Arc::new(Int32Array::from(vec![-300; n])),
            ),
            (
                "signup_time",
                Arc::new(Int64Array::from(vec![T0 - 100 * DAY; n])),
            ),
            ("onboarding_genres", list(vec![vec!["Drama"]; n])),
        ],
    );
    let it = &spec.items;
    let m = it.len();
    write(
        dir,
        "items",
        vec![
            (
                "item_id",
                Arc::new(UInt32Array::from_iter_values(it.iter().map(|i| i.0))),
            ),
            (
                "kind",
                Arc::new(StringArray::from_iter_values(it.iter().map(|i| i.1))),
            ),
            (
                "title",
                Arc::new(StringArray::from_iter_values(
                    it.iter().map(|i| format!("T{}", i.0)),
                )),
            ),
            (
                "series_id",
                Arc::new(UInt32Array::from_iter(it.iter().map(|i| i.4))),
            ),
            (
                "season",
                Arc::new(UInt16Array::from_iter(it.iter().map(|i| i.5))),
            ),
            (
                "episode",
                Arc::new(UInt16Array::from_iter(it.iter().map(|i| i.6))),
            ),
            (
                "duration_s",
                Arc::new(UInt32Array::from_iter_values(it.iter().map(|i| i.2))),
            ),
            ("genres", list(it.iter().map(|i| i.3.clone()).collect())),
            ("tags", list(vec![vec!["christmas"]; m])),
            (
                "actors",
                list(
                    it.iter()
                        .map(|i| vec![if i.0 % 2 == 0 { "Ann" } else { "Bob" }])
                        .collect(),
                ),
            ),
            ("directors", list(vec![vec!["Dee"]; m])),
            (
                "composer",
                Arc::new(StringArray::from(vec![Some("Cal"); m])),
            ),
            (
                "distributor",
                Arc::new(StringArray::from(vec![None::<&str>; m])),
            ),
            (
                "original_language",
                Arc::new(StringArray::from(vec!["en"; m])),
            ),
            ("country", Arc::new(StringArray::from(vec!["US"; m]))),
            (
                "release_time",
                Arc::new(Int64Array::from(vec![T0 - 400 * DAY; m])),
            ),
            (
                "release_type",
                Arc::new(StringArray::from(vec!["theatrical"; m])),
            ),
            (
                "added_time",
                Arc::new(Int64Array::from(vec![T0 - 10 * DAY; m])),
            ),
            ("maturity", Arc::new(StringArray::from(vec!["PG-13"; m]))),
            (
                "public_rating",
                Arc::new(Float32Array::from(vec![Some(7.0f32); m])),
            ),
            (
                "revenue_usd",
                Arc::new(Float64Array::from(vec![Some(3e7); m])),
            ),
        ],
    );
    let p = &spec.plays;
    write(
        dir,
        "plays",
        vec![
            (
                "user_id",
                Arc::new(UInt32Array::from_iter_values(p.iter().map(|x| x.user))),
            ),
            (
                "item_id",
                Arc::new(UInt32Array::from_iter_values(p.iter().map(|x| x.item))),
            ),
            (
                "time",
                Arc::new(Int64Array::from_iter_values(p.iter().map(|x| x.time))),
            ),
            ("device", Arc::new(StringArray::from(vec!["tv"; p.len()]))),
            (
                "session_id",
                Arc::new(UInt64Array::from_iter_values(p.iter().map(|x| x.session))),
            ),
            (
                "watched_s",
                Arc::new(UInt32Array::from_iter_values(p.iter().map(|x| x.watched))),
            ),
            (
                "fraction",
                Arc::new(Float32Array::from_iter_values(p.iter().map(|x| x.fraction))),
            ),
        ],
    );
    let i = &spec.impressions;
    write(
        dir,
        "impressions",
        vec![
            (
                "user_id",
                Arc::new(UInt32Array::from_iter_values(i.iter().map(|x| x.user))),
            ),
            (
                "item_id",
                Arc::new(UInt32Array::from_iter_values(i.iter().map(|x| x.item))),
            ),
            (
                "time",
                Arc::new(Int64Array::from_iter_values(i.iter().map(|x| x.time))),
            ),
            (
                "device",
                Arc::new(StringArray::from(vec!["mobile"; i.len()])),
            ),
            (
                "session_id",
                Arc::new(UInt64Array::from_iter_values(i.iter().map(|x| x.session))),
            ),
            (
                "position",
                Arc::new(UInt16Array::from_iter_values(i.iter().map(|x| x.position))),
            ),
        ],
    );
}

fn items() -> Vec<ItemRow> {
    vec![
        (10, "movie", 7_200, vec!["Drama"], None, None, None),
        (
            20,
            "episode",
            2_400,
            vec!["Comedy"],
            Some(1),
            Some(1),
            Some(1),
        ),
        (
            21,
            "episode",
            2_400,
            vec!["Comedy"],
            Some(1),
            Some(1),
            Some(2),
        ),
        (
            30,
            "movie",
            5_400,
            vec!["Drama", "Horror"],
            None,
            None,
            None,
        ),
    ]
}

fn play(user: u32, item: u32, time: i64, session: u64, duration: u32, fraction: f32) -> P {
    P {
        user,
        item,
        time,
        session,
        watched: (duration as f32 * fraction) as u32,
        fraction,
    }
}

/// One row of `examples/*.parquet`.
#[derive(Debug, Clone)]
struct Row {
    user: u32,
    item: u32,
    time: i64,
    source: String,
    label: i8,
    weight: f32,
    fold: i32,
    plays_24h: u32,
    plays_7d: u32,
    dense: Vec<f32>,
    /// (movie, language, country, last_genre, holiday) sparse ids.
    ids: [u32; 5],
    genres: Vec<u32>,
    /// Recently watched titles, most recent first.
    history: Vec<u32>,
    /// Recent search-token ids, most recent first.
    search: Vec<u32>,
}

/// Reads every example row, in file order.
fn read_examples(out: &Path) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut parts: Vec<_> = std::fs::read_dir(out.join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    parts.sort();
    for part in parts {
        let r = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(part).unwrap())
            .unwrap()
            .build()
            .unwrap();
        for b in r {
            let b = b.unwrap();
            let c = |n: &str| b.column_by_name(n).unwrap().clone();
            let u32s = |n: &str| c(n).as_primitive::<UInt32Type>().clone();
            let (user, item, p24, p7) = (
                u32s("user_id"),
                u32s("item_id"),
                u32s("plays_24h"),
                u32s("plays_7d"),
            );
            let ids = ["movie", "language", "country", "last_genre", "holiday"].map(u32s);
            let (time, source, label) = (c("time"), c("source"), c("label"));
            let (weight, fold, dense, genres) =
                (c("weight"), c("fold_window"), c("dense"), c("genres"));
            let list = |a: &ArrayRef, i: usize| {
                a.as_list::<i32>()
                    .value(i)
                    .as_primitive::<UInt32Type>()
                    .values()
                    .to_vec()
            };
            let (history, search) = (c("history"), c("search"));
            for i in 0..b.num_rows() {
                rows.push(Row {
                    user: user.value(i),
                    item: item.value(i),
                    time: time.as_primitive::<Int64Type>().value(i),
                    source: source.as_string::<i32>().value(i).to_string(),
                    label: label.as_primitive::<Int8Type>().value(i),
                    weight: weight.as_primitive::<Float32Type>().value(i),
                    fold: fold.as_primitive::<Int32Type>().value(i),
                    plays_24h: p24.value(i),
                    plays_7d: p7.value(i),
                    dense: dense
                        .as_fixed_size_list()
                        .value(i)
                        .as_primitive::<Float32Type>()
                        .values()
                        .to_vec(),
                    ids: ids.each_ref().map(|a| a.value(i)),
                    genres: list(&genres, i),
                    history: list(&history, i),
                    search: list(&search, i),
                });
            }
        }
    }
    rows
}

fn run(world: &Path, out: &Path, config: &PipelineConfig) -> edgerec_pipeline::Report {
    edgerec_pipeline::block_on(edgerec_pipeline::run(world, out, config))
        .unwrap()
        .unwrap()
}

#[test]
fn label_edges_weights_and_point_in_time_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let t = T0 + 20 * DAY;
    let plays = vec![
        // User 1: exactly 80% and exactly 10% are dropped; just above 80% and below 10% are kept.
        play(1, 10, t, 1, 7_200, 0.8),
        play(
            1,
            20,
            t + 10,
            1,
            2_400,
            f32::from_bits(0.8f32.to_bits() + 1),
        ),
        play(1, 21, t + 20, 1, 2_400, 0.1),
        play(
            1,
            30,
            t + 30,
            1,
            5_400,
            f32::from_bits(0.1f32.to_bits() - 1),
        ),
        // User 2: 90% of a two-hour film outweighs 90% of a 40-minute episode.
        play(2, 10, t, 2, 7_200, 0.9),
        play(2, 20, t + 100, 2, 2_400, 0.9),
        // Plays of title 30 by user 3 around user 1's example at t + 30.
        play(3, 30, t + 30 - DAY, 3, 5_400, 0.5), // exactly 24 h before: counted
        play(3, 30, t + 30 - DAY - 1, 3, 5_400, 0.5), // just outside 24 h, inside 7 days
        play(3, 30, t + 29, 4, 5_400, 0.5),       // one second before: counted
        play(3, 30, t + 30, 5, 5_400, 0.5),       // same second: not before
        play(3, 30, t + 31, 6, 5_400, 0.5),       // after: never
    ];
    let impressions = vec![
        // Played in its session: not a negative.
        I {
            user: 2,
            item: 10,
            time: t - 5,
            session: 2,
            position: 0,
        },
        // Not played: a negative.
        I {
            user: 2,
            item: 30,
            time: t - 5,
            session: 2,
            position: 1,
        },
    ];
    let spec = WorldSpec {
        users: 3,
        items: items(),
        plays,
        impressions,
    };
    write_world(tmp.path(), &spec);
    let out = tmp.path().join("out");
    let config = PipelineConfig {
        negatives_per_positive: 100.0,
        folds: 1,
        fold_days: 1,
        ..Default::default()
    };
    let report = run(tmp.path(), &out, &config);
    assert_eq!(report.before.plays, 11);
    assert_eq!(report.before.positive_plays, 3);
    assert_eq!(report.before.negative_plays, 1);
    assert_eq!(report.before.dropped_plays, 7);
    assert_eq!(report.before.negative_impressions, 1);
    assert_eq!(report.negative_sample_rate, 1.0);

    let rows = read_examples(&out);
    let find = |u: u32, i: u32, src: &str| {
        rows.iter()
            .find(|r| r.user == u && r.item == i && r.source == src)
            .cloned()
    };
    assert!(find(1, 10, "play").is_none(), "exactly 80% is dropped");
    assert!(find(1, 21, "play").is_none(), "exactly 10% is dropped");
    assert_eq!(find(1, 20, "play").unwrap().label, 1);
    let neg = find(1, 30, "play").unwrap();
    assert_eq!(neg.label, 0);
    assert_eq!(neg.weight, 1.5, "a negative weighs the title's hours");
    let film = find(2, 10, "play").unwrap();
    let episode = find(2, 20, "play").unwrap();
    assert_eq!((film.weight, episode.weight), (1.8, 0.6));
    assert_eq!(find(2, 30, "impression").unwrap().label, 0);
    assert!(find(2, 10, "impression").is_none());
    // Point in time: two plays of title 30 in the 24 h before t + 30, three in 7 days.
    assert_eq!((neg.plays_24h, neg.plays_7d), (2, 3));
    assert_eq!(rows.len(), 5);
    // No searches table: empty search lists and vocabulary.
    assert!(rows.iter().all(|r| r.search.is_empty()));
    let contract: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("features.json")).unwrap()).unwrap();
    assert_eq!(contract["search_tokens"], serde_json::json!([]));
}

/// A bigger world: many users, impressions and plays over 30 days.
fn busy_world(users: u32) -> WorldSpec {
    let mut plays = Vec::new();
    let mut impressions = Vec::new();
    let its = items();
    let mut session = 0;
    for u in 1..=users {
        for day in 0..30i64 {
            if (u as i64 + day) % 3 != 0 {
                continue;
            }
            session += 1;
            let t = T0 + day * DAY + i64::from(u) * 7;
            for (k, item) in its.iter().enumerate() {
                let k = k as u32;
                impressions.push(I {
                    user: u,
                    item: item.0,
                    time: t,
                    session,
                    position: k as u16,
                });
                if (u + k + day as u32).is_multiple_of(4) {
                    let f = [0.95f32, 0.05, 0.5, 0.85][((u + k) % 4) as usize];
                    plays.push(play(u, item.0, t + 60 + i64::from(k), session, item.2, f));
                }
            }
        }
    }
    WorldSpec {
        users,
        items: its,
        plays,
        impressions,
    }
}

#[test]
fn downsampling_hits_the_ratio_and_is_deterministic() {
    let tmp = tempfile::tempdir().unwrap();
    write_world(tmp.path(), &busy_world(60));
    let config = PipelineConfig {
        negatives_per_positive: 1.0,
        ..Default::default()
    };
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    let ra = run(tmp.path(), &a, &config);
    run(tmp.path(), &b, &config);
    let bytes = |d: &Path| std::fs::read(d.join("examples/part-00000.parquet")).unwrap();
    assert_eq!(bytes(&a), bytes(&b), "same seed, same bytes");

    let kept = ra.after.negative_plays + ra.after.negative_impressions;
    let positives = ra.after.positives;
    assert!(ra.negative_sample_rate < 1.0);
    let expected = ra.negative_sample_rate * ra.before.negatives() as f64;
    let sd = (expected * (1.0 - ra.negative_sample_rate)).sqrt();
    assert!(
        (kept as f64 - expected).abs() < 4.0 * sd,
        "kept {kept}, expected {expected} ± {sd}"
    );
    assert!(
        (kept as f64 / positives as f64 - 1.0).abs() < 0.25,
        "{kept} negatives for {positives} positives"
    );

    let c = tmp.path().join("c");
    run(tmp.path(), &c, &PipelineConfig { seed: 7, ..config });
    assert_ne!(bytes(&a), bytes(&c), "another seed keeps other negatives");
}

#[test]
fn folds_and_feature_parity_with_the_core() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = busy_world(25);
    write_world(tmp.path(), &spec);
    // Searches: user u searches every other day at the session's time (so a search at the
    // example's own second is not "before" it) and a second one a minute later.
    let mut searches = Vec::new();
    for u in 1..=spec.users {
        for day in (0..30i64).step_by(2) {
            let t = T0 + day * DAY + i64::from(u) * 7;
            let word = |k: i64| format!("w{}", (i64::from(u) + day + k) % 9);
            searches.push(Search {
                user_id: u,
                time: t,
                session_id: 1,
                tokens: vec![word(0), word(1)],
            });
            searches.push(Search {
                user_id: u,
                time: t + 60,
                session_id: 1,
                tokens: vec![word(5)],
            });
        }
    }
    let mut w = PartWriter::<Search>::create(tmp.path(), WriterOptions::default()).unwrap();
    w.extend(searches.iter().cloned()).unwrap();
    w.finish().unwrap();
    let out = tmp.path().join("out");
    let config = PipelineConfig {
        negatives_per_positive: 3.0,
        folds: 3,
        fold_days: 7,
        ..Default::default()
    };
    let report = run(tmp.path(), &out, &config);
    let rows = read_examples(&out);
    assert_eq!(rows.len() as u64, report.after.rows);

    // Folds: three 7-day windows ending right after the last event, oldest first.
    let last = spec
        .plays
        .iter()
        .map(|p| p.time)
        .chain(spec.impressions.iter().map(|i| i.time))
        .max()
        .unwrap();
    assert_eq!(report.folds.len(), 3);
    assert_eq!(report.folds[2].fold.valid_end, last + 1);
    for r in &rows {
        assert_eq!(
            r.fold,
            edgerec_pipeline::fold_window(
                &report.folds.iter().map(|f| f.fold).collect::<Vec<_>>(),
                r.time
            )
        );
    }
    for f in &report.folds {
        let train = rows.iter().filter(|r| r.time < f.fold.valid_start).count() as u64;
        let valid = rows
            .iter()
            .filter(|r| f.fold.valid_start <= r.time && r.time < f.fold.valid_end)
            .count() as u64;
        assert_eq!((f.train_examples, f.valid_examples), (train, valid));
    }

    // Parity: the core crate, given each user's whole history, computes the same vectors.
    let world = World::load(tmp.path(), config.features).unwrap();
    let contract: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("features.json")).unwrap()).unwrap();
    let vocab: Vec<String> = (0..9).map(|k| format!("w{k}")).collect();
    assert_eq!(contract["search_tokens"], serde_json::json!(vocab));
    let (mut with_search, mut with_history) = (0, 0);
    let mut histories: HashMap<u32, Vec<Play>> = HashMap::new();
    for p in &spec.plays {
        histories.entry(p.user).or_default().push(Play {
            media: world.index[&p.item],
            time: p.time,
            device: Device::Tv,
            session: p.session,
            watched_s: p.watched,
            fraction: p.fraction,
        });
    }
    for r in &rows {
        let history = History::new(histories.get(&r.user).cloned().unwrap_or_default());
        let count = |days: i64| {
            spec.plays
                .iter()
                .filter(|p| p.item == r.item && p.time < r.time && p.time >= r.time - days * DAY)
                .count() as u32
        };
        let stats = MediaStats {
            plays_24h: count(1),
            plays_7d: count(7),
        };
        assert_eq!(
            (r.plays_24h, r.plays_7d),
            (stats.plays_24h, stats.plays_7d),
            "counts of {r:?}"
        );
        let device = if r.source == "impression" {
            Device::Mobile
        } else {
            Device::Tv
        };
        let profile = &world.users[&r.user];
        let ctx = Context::new(device, r.time, profile.utc_offset_minutes).unwrap();
        let fv = world
            .space
            .compute(
                profile,
                &history,
                &world.media,
                world.index[&r.item],
                stats,
                &ctx,
            )
            .unwrap();
        assert_eq!(
            (&fv.dense, &fv.sparse.genres),
            (&r.dense, &r.genres),
            "features of user {} item {} at {}",
            r.user,
            r.item,
            r.time
        );
        let sp = &fv.sparse;
        assert_eq!(
            r.ids,
            [sp.movie, sp.language, sp.country, sp.last_genre, sp.holiday]
        );
        assert_eq!(
            r.history,
            history_titles(history.before(r.time), &world.media, MAX_HISTORY),
            "history of {r:?}"
        );
        // Search tokens by brute force: searches strictly before, newest first.
        let mut before: Vec<&Search> = searches
            .iter()
            .filter(|s| s.user_id == r.user && s.time < r.time)
            .collect();
        before.sort_by_key(|s| std::cmp::Reverse(s.time));
        let expected: Vec<u32> = before
            .iter()
            .flat_map(|s| &s.tokens)
            .map(|t| 1 + vocab.iter().position(|v| v == t).unwrap() as u32)
            .take(MAX_SEARCH)
            .collect();
        assert_eq!(r.search, expected, "search of {r:?}");
        with_search += usize::from(!r.search.is_empty());
        with_history += usize::from(!r.history.is_empty());
    }
    assert!(with_search > rows.len() / 2 && with_history > rows.len() / 2);
}

#[test]
fn schema_violations_name_the_file_and_column() {
    let tmp = tempfile::tempdir().unwrap();
    write_world(tmp.path(), &busy_world(3));
    // plays.fraction as DOUBLE instead of FLOAT.
    write(
        tmp.path(),
        "plays",
        vec![
            ("user_id", Arc::new(UInt32Array::from(vec![1]))),
            ("item_id", Arc::new(UInt32Array::from(vec![10]))),
            ("time", Arc::new(Int64Array::from(vec![T0]))),
            ("device", Arc::new(StringArray::from(vec!["tv"]))),
            ("session_id", Arc::new(UInt64Array::from(vec![1]))),
            ("watched_s", Arc::new(UInt32Array::from(vec![10]))),
            ("fraction", Arc::new(Float64Array::from(vec![0.5]))),
        ],
    );
    let err = edgerec_pipeline::block_on(edgerec_pipeline::run(
        tmp.path(),
        &tmp.path().join("o"),
        &PipelineConfig::default(),
    ))
    .unwrap()
    .unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("plays/part-00000.parquet") && msg.contains("\"fraction\""),
        "{msg}"
    );
}

/// The per-user merge runs in every partition at once: 1, 3 and 8 partitions write the same
/// bytes, and the users are spread over the partitions (each partition's merge sees whole
/// users, so no example loses a play).
#[test]
fn the_merge_is_the_same_on_any_number_of_partitions() {
    let tmp = tempfile::tempdir().unwrap();
    write_world(tmp.path(), &busy_world(40));
    let config = PipelineConfig::default();
    let mut outputs = Vec::new();
    for partitions in [1, 3, 8] {
        let ctx = datafusion::prelude::SessionContext::new_with_config(
            edgerec_pipeline::session_config(partitions),
        );
        edgerec_pipeline::register_functions(&ctx);
        let out = tmp.path().join(format!("p{partitions}"));
        edgerec_pipeline::block_on(edgerec_pipeline::run_in(&ctx, tmp.path(), &out, &config))
            .unwrap()
            .unwrap();
        let plan =
            edgerec_pipeline::block_on(edgerec_pipeline::examples_plan(&ctx, tmp.path(), &config))
                .unwrap()
                .unwrap();
        let merge = plan
            .lines()
            .position(|l| l.contains("BoundedWindowAggExec: wdw=[edgerec_features"))
            .unwrap_or_else(|| panic!("the merge streams: {plan}"));
        if partitions > 1 {
            assert!(
                plan.lines()
                    .skip(merge)
                    .take(3)
                    .any(|l| l.contains("Hash([user_id@")
                        && l.contains(&format!("], {partitions})"))),
                "users spread over {partitions} partitions: {plan}"
            );
        }
        outputs.push(std::fs::read(out.join("examples/part-00000.parquet")).unwrap());
    }
    assert_eq!(outputs[0], outputs[1]);
    assert_eq!(outputs[0], outputs[2]);
}
