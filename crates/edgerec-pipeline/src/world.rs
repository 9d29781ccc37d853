//! The small tables (items, users, searches) loaded into the core crate's types, with the
//! vocabularies that map their categorical values to ids. Read with `edgerec_data::schema`'s
//! validating reader: one schema definition for the simulator, the importers and the pipeline.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use anyhow::{Context as _, Result};
use edgerec::features::{
    FeatureConfig, FeatureSpace, Gender, Media, UserProfile, Vocabularies, Vocabulary,
};
use edgerec_data::schema::{self, Item, Search, Table as _, User};
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
    /// The search vocabulary: sorted distinct tokens of all searches (id = 1 + position, 0
    /// unknown). Empty for a world without a `searches` table.
    pub search_vocab: Vocabulary,
    /// User id → the user's searches as `(time, token ids)`, oldest first (ties in file order).
    pub searches: HashMap<u32, Vec<(i64, Vec<u32>)>>,
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

/// User id → `(time, token ids)` sorted by time.
type SearchesByUser = HashMap<u32, Vec<(i64, Vec<u32>)>>;

/// The `searches` table (absent in worlds without searches, e.g. MovieLens: no searches) with
/// its vocabulary, grouped by user and sorted by time (stable: ties keep file order).
fn load_searches(world: &Path) -> Result<(Vocabulary, SearchesByUser)> {
    if !world.join(Search::DIR).is_dir() {
        return Ok((Vocabulary::default(), HashMap::new()));
    }
    let rows: Vec<Search> = schema::read_table(world)
        .with_context(|| format!("reading {}", world.join(Search::DIR).display()))?;
    let vocab = vocab(rows.iter().flat_map(|s| &s.tokens));
    let mut by_user: SearchesByUser = HashMap::new();
    for s in rows {
        let ids = s.tokens.iter().map(|t| vocab.id(t)).collect();
        by_user.entry(s.user_id).or_default().push((s.time, ids));
    }
    for v in by_user.values_mut() {
        v.sort_by_key(|s| s.0);
    }
    Ok((vocab, by_user))
}

/// The vocabularies of a world's categorical values: genres, tags, people (cast, directors,
/// composers), distributors, and languages and countries of items and users alike.
fn vocabularies(items: &[Item], users: &[User]) -> Vocabularies {
    Vocabularies {
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
                .map(|i| &i.original_language)
                .chain(users.iter().map(|u| &u.language)),
        ),
        countries: vocab(
            items
                .iter()
                .map(|i| &i.country)
                .chain(users.iter().map(|u| &u.country)),
        ),
    }
}

/// The ids of `names` in `v`.
fn ids(v: &Vocabulary, names: &[String]) -> Vec<u32> {
    names.iter().map(|n| v.id(n)).collect()
}

/// An `items` row as a core title, its names mapped to ids.
fn to_media(r: &Item, vocab: &Vocabularies) -> Media {
    Media {
        id: r.item_id,
        kind: r.kind,
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
        language: vocab.languages.id(&r.original_language),
        country: vocab.countries.id(&r.country),
        release_time: r.release_time,
        release_type: r.release_type,
        added_time: r.added_time,
        maturity: r.maturity,
        public_rating: r.public_rating,
        revenue_usd: r.revenue_usd,
    }
}

/// A `users` row as a core profile, its names mapped to ids.
fn to_profile(u: &User, vocab: &Vocabularies) -> UserProfile {
    let gender = match u.gender.as_str() {
        "f" => Gender::Female,
        "m" => Gender::Male,
        "x" => Gender::Other,
        _ => Gender::Unknown,
    };
    UserProfile {
        age: Some(u.age),
        gender,
        language: vocab.languages.id(&u.language),
        country: vocab.countries.id(&u.country),
        utc_offset_minutes: u.utc_offset_minutes,
        signup_time: u.signup_time,
        onboarding_genres: ids(&vocab.genres, &u.onboarding_genres),
    }
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
    search_tokens: &'a [String],
}

impl World {
    /// Loads the items and users of a world directory (with the schema's validating reader)
    /// and builds the vocabularies (sorted names, so ids are stable for the same data).
    pub fn load(world: &Path, config: FeatureConfig) -> Result<World> {
        let mut items: Vec<Item> = schema::read_table(world)?;
        items.sort_by_key(|i| i.item_id);
        let mut users: Vec<User> = schema::read_table(world)?;
        users.sort_by_key(|u| u.user_id);
        let vocab = vocabularies(&items, &users);
        let mut media = Vec::with_capacity(items.len());
        let mut index = HashMap::with_capacity(items.len());
        for r in &items {
            index.insert(r.item_id, media.len() as u32);
            media.push(to_media(r, &vocab));
        }
        let users = users
            .into_iter()
            .map(|u| (u.user_id, to_profile(&u, &vocab)))
            .collect();
        let (search_vocab, searches) = load_searches(world)?;
        Ok(World {
            space: FeatureSpace::new(vocab, config),
            media,
            index,
            users,
            search_vocab,
            searches,
        })
    }

    /// The ids of `user`'s search tokens strictly before `time`, most recent search first (a
    /// query's tokens in query order), at most `max`. Cost: O(log s + max) for s searches.
    pub fn recent_search_tokens(&self, user: u32, time: i64, max: usize) -> Vec<u32> {
        let Some(searches) = self.searches.get(&user) else {
            return Vec::new();
        };
        let before = &searches[..searches.partition_point(|s| s.0 < time)];
        before
            .iter()
            .rev()
            .flat_map(|s| s.1.iter().copied())
            .take(max)
            .collect()
    }

    /// Writes the feature contract ([`World::contract_json`]).
    pub fn write_contract(&self, path: &Path) -> Result<()> {
        edgerec_data::fs::write_atomic(path, &self.contract_json()?)
    }

    /// The feature contract as `features.json` holds it: dense names in order and every
    /// vocabulary.
    pub fn contract_json(&self) -> Result<Vec<u8>> {
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
            search_tokens: self.search_vocab.names(),
        };
        Ok(serde_json::to_vec_pretty(&contract)?)
    }
}
