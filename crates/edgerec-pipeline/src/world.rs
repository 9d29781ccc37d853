//! The small tables (items, users) loaded into the core crate's types, with the vocabularies
//! that map their categorical values to ids.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use anyhow::{Context as _, Result, anyhow, bail};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int32Type, Int64Type, UInt8Type, UInt16Type, UInt32Type,
};
use arrow_array::{Array, ListArray, RecordBatch, StringArray};
use datafusion::prelude::SessionContext;
use edgerec::features::{
    FeatureConfig, FeatureSpace, Gender, Maturity, Media, MediaKind, ReleaseType, UserProfile,
    Vocabularies, Vocabulary,
};
use serde::Serialize;

/// Items and users of a world, in core types.
pub struct World {
    /// The feature space over the world's vocabularies.
    pub space: FeatureSpace,
    /// Titles, ordered by item id; an item's index here is its `media` index.
    pub media: Vec<Media>,
    /// Item id → index in `media`.
    pub index: HashMap<u32, u32>,
    /// User id → profile.
    pub users: HashMap<u32, UserProfile>,
}

fn col<'a>(b: &'a RecordBatch, table: &str, name: &str) -> Result<&'a dyn Array> {
    b.column_by_name(name)
        .map(|a| a.as_ref())
        .ok_or_else(|| anyhow!("{table}: column {name:?} is missing"))
}

fn strings(list: &ListArray, i: usize) -> Vec<String> {
    if list.is_null(i) {
        return vec![];
    }
    let v = list.value(i);
    let s: &StringArray = v.as_string::<i32>();
    s.iter().flatten().map(str::to_string).collect()
}

fn opt_str(a: &StringArray, i: usize) -> Option<String> {
    a.is_valid(i).then(|| a.value(i).to_string())
}

async fn collect(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>> {
    Ok(ctx.sql(sql).await?.collect().await?)
}

/// Raw item row before vocabulary mapping.
struct RawItem {
    id: u32,
    kind: String,
    series_id: Option<u32>,
    season: Option<u16>,
    episode: Option<u16>,
    duration_s: u32,
    genres: Vec<String>,
    tags: Vec<String>,
    actors: Vec<String>,
    directors: Vec<String>,
    composer: Option<String>,
    distributor: Option<String>,
    language: String,
    country: String,
    release_time: i64,
    release_type: String,
    added_time: i64,
    maturity: String,
    public_rating: Option<f32>,
    revenue_usd: Option<f64>,
}

struct RawUser {
    id: u32,
    age: Option<u8>,
    gender: Option<String>,
    language: String,
    country: String,
    utc_offset_minutes: i32,
    signup_time: i64,
    onboarding_genres: Vec<String>,
}

async fn raw_items(ctx: &SessionContext) -> Result<Vec<RawItem>> {
    let mut out = Vec::new();
    for b in collect(ctx, "SELECT * FROM items ORDER BY item_id").await? {
        let t = "items";
        let id = col(&b, t, "item_id")?.as_primitive::<UInt32Type>();
        let kind = col(&b, t, "kind")?.as_string::<i32>();
        let series = col(&b, t, "series_id")?.as_primitive::<UInt32Type>();
        let season = col(&b, t, "season")?.as_primitive::<UInt16Type>();
        let episode = col(&b, t, "episode")?.as_primitive::<UInt16Type>();
        let duration = col(&b, t, "duration_s")?.as_primitive::<UInt32Type>();
        let genres = col(&b, t, "genres")?.as_list::<i32>();
        let tags = col(&b, t, "tags")?.as_list::<i32>();
        let actors = col(&b, t, "actors")?.as_list::<i32>();
        let directors = col(&b, t, "directors")?.as_list::<i32>();
        let composer = col(&b, t, "composer")?.as_string::<i32>();
        let distributor = col(&b, t, "distributor")?.as_string::<i32>();
        let language = col(&b, t, "original_language")?.as_string::<i32>();
        let country = col(&b, t, "country")?.as_string::<i32>();
        let release = col(&b, t, "release_time")?.as_primitive::<Int64Type>();
        let release_type = col(&b, t, "release_type")?.as_string::<i32>();
        let added = col(&b, t, "added_time")?.as_primitive::<Int64Type>();
        let maturity = col(&b, t, "maturity")?.as_string::<i32>();
        let rating = col(&b, t, "public_rating")?.as_primitive::<Float32Type>();
        let revenue = col(&b, t, "revenue_usd")?.as_primitive::<Float64Type>();
        for i in 0..b.num_rows() {
            out.push(RawItem {
                id: id.value(i),
                kind: kind.value(i).to_string(),
                series_id: series.is_valid(i).then(|| series.value(i)),
                season: season.is_valid(i).then(|| season.value(i)),
                episode: episode.is_valid(i).then(|| episode.value(i)),
                duration_s: duration.value(i),
                genres: strings(genres, i),
                tags: strings(tags, i),
                actors: strings(actors, i),
                directors: strings(directors, i),
                composer: opt_str(composer, i),
                distributor: opt_str(distributor, i),
                language: language.value(i).to_string(),
                country: country.value(i).to_string(),
                release_time: release.value(i),
                release_type: release_type.value(i).to_string(),
                added_time: added.value(i),
                maturity: maturity.value(i).to_string(),
                public_rating: rating.is_valid(i).then(|| rating.value(i)),
                revenue_usd: revenue.is_valid(i).then(|| revenue.value(i)),
            });
        }
    }
    Ok(out)
}

async fn raw_users(ctx: &SessionContext) -> Result<Vec<RawUser>> {
    let mut out = Vec::new();
    for b in collect(ctx, "SELECT * FROM users ORDER BY user_id").await? {
        let t = "users";
        let id = col(&b, t, "user_id")?.as_primitive::<UInt32Type>();
        let age = col(&b, t, "age")?.as_primitive::<UInt8Type>();
        let gender = col(&b, t, "gender")?.as_string::<i32>();
        let language = col(&b, t, "language")?.as_string::<i32>();
        let country = col(&b, t, "country")?.as_string::<i32>();
        let offset = col(&b, t, "utc_offset_minutes")?.as_primitive::<Int32Type>();
        let signup = col(&b, t, "signup_time")?.as_primitive::<Int64Type>();
        let picks = col(&b, t, "onboarding_genres")?.as_list::<i32>();
        for i in 0..b.num_rows() {
            out.push(RawUser {
                id: id.value(i),
                age: age.is_valid(i).then(|| age.value(i)),
                gender: opt_str(gender, i),
                language: language.value(i).to_string(),
                country: country.value(i).to_string(),
                utc_offset_minutes: offset.value(i),
                signup_time: signup.value(i),
                onboarding_genres: strings(picks, i),
            });
        }
    }
    Ok(out)
}

/// Sorted, de-duplicated names.
fn vocab<'a>(names: impl IntoIterator<Item = &'a String>) -> Vocabulary {
    Vocabulary::new(
        names
            .into_iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .cloned(),
    )
}

/// The input contract written beside the examples.
#[derive(Serialize)]
struct Contract<'a> {
    format: &'static str,
    dense: &'a [String],
    genres: &'a [String],
    tags: &'a [String],
    people: &'a [String],
    distributors: &'a [String],
    languages: &'a [String],
    countries: &'a [String],
    holidays: Vec<String>,
    recent_days: u32,
    holiday_horizon_days: u16,
}

impl World {
    /// Loads items and users and builds the vocabularies (sorted names, so ids are stable for
    /// the same data).
    pub async fn load(ctx: &SessionContext, config: FeatureConfig) -> Result<World> {
        let items = raw_items(ctx).await?;
        let users = raw_users(ctx).await?;
        let vocab = Vocabularies {
            genres: vocab(items.iter().flat_map(|i| &i.genres)),
            tags: vocab(items.iter().flat_map(|i| &i.tags)),
            people: vocab(
                items
                    .iter()
                    .flat_map(|i| i.actors.iter().chain(&i.directors).chain(&i.composer)),
            ),
            distributors: vocab(items.iter().filter_map(|i| i.distributor.as_ref())),
            languages: vocab(
                items
                    .iter()
                    .map(|i| &i.language)
                    .chain(users.iter().map(|u| &u.language)),
            ),
            countries: vocab(
                items
                    .iter()
                    .map(|i| &i.country)
                    .chain(users.iter().map(|u| &u.country)),
            ),
        };
        let ids = |v: &Vocabulary, names: &[String]| names.iter().map(|n| v.id(n)).collect();
        let mut media = Vec::with_capacity(items.len());
        let mut index = HashMap::with_capacity(items.len());
        for r in &items {
            let kind = match r.kind.as_str() {
                "movie" => MediaKind::Movie,
                "episode" => MediaKind::Episode,
                k => bail!("items: item {}: column \"kind\": unknown value {k:?}", r.id),
            };
            let release_type = match r.release_type.as_str() {
                "theatrical" => ReleaseType::Theatrical,
                "streaming" => ReleaseType::Streaming,
                "tv" => ReleaseType::Tv,
                k => bail!(
                    "items: item {}: column \"release_type\": unknown value {k:?}",
                    r.id
                ),
            };
            let maturity = Maturity::parse(&r.maturity).ok_or_else(|| {
                anyhow!(
                    "items: item {}: column \"maturity\": unknown rating {:?}",
                    r.id,
                    r.maturity
                )
            })?;
            index.insert(r.id, media.len() as u32);
            media.push(Media {
                id: r.id,
                kind,
                series_id: r.series_id,
                season: r.season,
                episode: r.episode,
                duration_s: r.duration_s,
                genres: ids(&vocab.genres, &r.genres),
                tags: ids(&vocab.tags, &r.tags),
                actors: ids(&vocab.people, &r.actors),
                directors: ids(&vocab.people, &r.directors),
                composer: r.composer.as_deref().map_or(0, |c| vocab.people.id(c)),
                distributor: r
                    .distributor
                    .as_deref()
                    .map_or(0, |d| vocab.distributors.id(d)),
                language: vocab.languages.id(&r.language),
                country: vocab.countries.id(&r.country),
                release_time: r.release_time,
                release_type,
                added_time: r.added_time,
                maturity,
                public_rating: r.public_rating,
                revenue_usd: r.revenue_usd,
            });
        }
        let users = users
            .into_iter()
            .map(|u| {
                let gender = match u.gender.as_deref() {
                    Some("f") => Gender::Female,
                    Some("m") => Gender::Male,
                    Some("x") => Gender::Other,
                    _ => Gender::Unknown,
                };
                let profile = UserProfile {
                    age: u.age,
                    gender,
                    language: vocab.languages.id(&u.language),
                    country: vocab.countries.id(&u.country),
                    utc_offset_minutes: u.utc_offset_minutes,
                    signup_time: u.signup_time,
                    onboarding_genres: ids(&vocab.genres, &u.onboarding_genres),
                };
                (u.id, profile)
            })
            .collect();
        Ok(World {
            space: FeatureSpace::new(vocab, config),
            media,
            index,
            users,
        })
    }

    /// Writes the feature contract: dense names in order and every vocabulary.
    pub fn write_contract(&self, path: &Path) -> Result<()> {
        let v = self.space.vocabularies();
        let c = self.space.config();
        let contract = Contract {
            format: "edgerec-features/1",
            dense: self.space.dense_names(),
            genres: v.genres.names(),
            tags: v.tags.names(),
            people: v.people.names(),
            distributors: v.distributors.names(),
            languages: v.languages.names(),
            countries: v.countries.names(),
            holidays: edgerec::features::holiday_vocabulary().names().to_vec(),
            recent_days: c.recent_days,
            holiday_horizon_days: c.holiday_horizon_days,
        };
        std::fs::write(path, serde_json::to_vec_pretty(&contract)?)
            .with_context(|| format!("writing {}", path.display()))
    }
}
