//! The ground truth of a synthetic world: the hidden preference model, its coefficients and the
//! hidden parameters of every user and item, so an evaluation can compute an oracle ranking.
//!
//! A world directory holds, next to the logs:
//!
//! | path | content |
//! |---|---|
//! | `world.json` | [`WorldSpec`]: sizes and seed, vocabularies (genres, languages, holidays, tags, countries, devices), every coefficient ([`Coefficients`], [`crate::behaviour::Behaviour`], [`crate::world::Generation`]) and the row counts |
//! | `truth/users/` | [`UserTruth`]: `user_id` u32, `latent` `list<f32>`, `genre_affinity` `list<f32>` (in `world.json` genre order), `favourite_actors` `list<utf8>`, `actor_affinity` `list<f32>`, then f32 columns `foreign_penalty`, `quality_weight`, `novelty_weight`, `mainstream`, `binge`, `series_affinity`, `click_bias`, `patience`, `activity`, `device_weights` `list<f32>` (tv, desktop, mobile, tablet), `peak_hour`, `second_hour`, `second_share` |
//! | `truth/items/` | [`ItemTruth`]: `item_id` u32, `latent` `list<f32>`, `quality` f32, `popularity` f32 |
//!
//! # The preference model
//!
//! The utility of item `i` for user `u` in context `c` ([`utility`]) is a sum of terms, each
//! weighted by a coefficient of [`Coefficients`]:
//!
//! * taste: `latent · <p_u, q_i>` (16-dimensional hidden vectors);
//! * genres: `genre · Σ_g a_u[g] / √n` over the item's `n` genres, plus the mean over its genres
//!   of the context effects `daypart_genre[g][daypart]` (kids' fare in the morning, horror at
//!   night), `season_genre[g][season]` and, at weekends, `weekend_genre[g]`;
//! * cast: `actor · w` for each of the user's favourite actors in the cast;
//! * language: `−foreign_language · penalty_u` when the original language is not the user's
//!   (times `english_factor` for English titles);
//! * quality and popularity: `quality · β_u · quality_i + popularity · m_u · popularity_i`;
//! * newness: `novelty · ν_u · exp(−age_days / novelty_days)` since release;
//! * device and length: `device_duration[d] · (hours − reference_hours)` (TVs favour long
//!   films, phones short content), `weekend_duration · (hours − reference_hours)` at weekends,
//!   and for episodes `device_episode[d] + series · s_u`;
//! * holidays: `holiday · (1 − days/(window + 7))` for an item tagged with the user's country's
//!   next holiday when it is at most `holiday_window_days` away (per the core calendar);
//! * history ([`ItemState`]): `next_episode · binge_u` for the next episode of a series the
//!   user is watching, `skip_episode · min(gap, 3)` for episodes ahead of it, `rewatch` (or
//!   `kids_rewatch` for profiles under 13) for titles already completed;
//! * maturity: `−∞` above the profile's limit, so such items are never chosen.
//!
//! A user who examines an item plays it with probability `σ(utility + click_bias_u)`
//! ([`play_probability`]); position `k` (0-based) of a row is examined with probability
//! `1 / (1 + k / patience_u)` ([`examination_probability`]). How long a play lasts follows
//! [`crate::behaviour::Behaviour`].
//!
//! ```no_run
//! use edgerec_data::truth::Truth;
//! use edgerec::context::Device;
//! let truth = Truth::load(std::path::Path::new("world"))?;
//! let ctx = truth.context(7, 1_762_000_000, Device::Tv);
//! let best = (0..truth.items.len() as u32)
//!     .max_by(|&a, &b| truth.utility(7, a, &ctx).total_cmp(&truth.utility(7, b, &ctx)));
//! # Ok::<(), anyhow::Error>(())
//! ```

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, Result, anyhow, bail};
use arrow_array::{Float32Array, RecordBatch, UInt32Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use edgerec::calendar::{self, COUNTRIES, Season};
use edgerec::context::{Daypart, Device};
use serde::{Deserialize, Serialize};

use crate::behaviour::Behaviour;
use crate::schema::{
    self, MediaKind, Table, TableFile, build_f32_lists, build_str_lists, f32_list, utf8_list,
};
use crate::world::{
    self, DAY, GENRES, ItemModel, ItemTruth, LANGUAGES, LATENT_DIM, MAX_ACTORS,
    MAX_FAVOURITE_ACTORS, MAX_TITLE_WORDS, N_GENRES, UserModel, UserTruth, WorldConfig,
};

/// Format tag of `world.json`.
pub const WORLD_FORMAT: &str = "edgerec-world/1";

/// A context effect on one genre: one value per daypart (morning, afternoon, evening, night),
/// per season (winter, spring, summer, autumn) or a single value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenreEffect {
    /// Genre name.
    pub genre: String,
    /// The effect's values.
    pub values: Vec<f32>,
}

fn effect(genre: &str, values: &[f32]) -> GenreEffect {
    GenreEffect {
        genre: genre.to_string(),
        values: values.to_vec(),
    }
}

/// Every coefficient of the hidden preference model (see the module doc for the formula).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Coefficients {
    /// Weight of the latent dot product.
    pub latent: f32,
    /// Weight of the genre affinities.
    pub genre: f32,
    /// Weight of favourite actors.
    pub actor: f32,
    /// Weight of the foreign-language penalty.
    pub foreign_language: f32,
    /// Share of the penalty English titles pay.
    pub english_factor: f32,
    /// Weight of hidden quality.
    pub quality: f32,
    /// Weight of hidden popularity.
    pub popularity: f32,
    /// Weight of newness.
    pub novelty: f32,
    /// Decay of newness, days.
    pub novelty_days: f32,
    /// Weight of the user's liking of episodes.
    pub series: f32,
    /// Per device (tv, desktop, mobile, tablet): utility per hour of running time above
    /// `reference_hours`.
    pub device_duration: [f32; 4],
    /// Running time without device effect, hours.
    pub reference_hours: f32,
    /// Per device: utility of an episode.
    pub device_episode: [f32; 4],
    /// Utility per hour above `reference_hours` at weekends.
    pub weekend_duration: f32,
    /// Genre effects per daypart (morning 05–11, afternoon 12–16, evening 17–22, night).
    pub daypart_genre: Vec<GenreEffect>,
    /// Genre effects per season (winter, spring, summer, autumn; by hemisphere).
    pub season_genre: Vec<GenreEffect>,
    /// Genre effects on Saturdays and Sundays (one value).
    pub weekend_genre: Vec<GenreEffect>,
    /// Boost of an item tagged for the coming holiday.
    pub holiday: f32,
    /// Days before a holiday its tagged items gain.
    pub holiday_window_days: u16,
    /// Weight of the user's binge pull for the next episode.
    pub next_episode: f32,
    /// Utility per episode skipped ahead of the next one (up to 3).
    pub skip_episode: f32,
    /// Utility of a title already completed (13 and over).
    pub rewatch: f32,
    /// Utility of a title already completed, for profiles under 13.
    pub kids_rewatch: f32,
}

impl Default for Coefficients {
    fn default() -> Coefficients {
        Coefficients {
            latent: 1.0,
            genre: 0.7,
            actor: 1.0,
            foreign_language: 1.0,
            english_factor: 0.4,
            quality: 0.8,
            popularity: 0.6,
            novelty: 1.0,
            novelty_days: 45.0,
            series: 0.5,
            device_duration: [0.5, 0.0, -0.8, -0.3],
            reference_hours: 1.0,
            device_episode: [-0.2, 0.0, 0.5, 0.3],
            weekend_duration: 0.3,
            daypart_genre: vec![
                effect("Children", &[0.8, 0.4, 0.0, -1.2]),
                effect("Animation", &[0.6, 0.3, 0.0, -0.8]),
                effect("Family", &[0.5, 0.3, 0.1, -0.8]),
                effect("Horror", &[-0.9, -0.4, 0.2, 0.9]),
                effect("Thriller", &[-0.3, -0.1, 0.1, 0.4]),
                effect("Mystery", &[-0.2, 0.0, 0.1, 0.3]),
                effect("Crime", &[-0.2, 0.0, 0.1, 0.3]),
                effect("Documentary", &[0.3, 0.3, -0.1, -0.2]),
                effect("Romance", &[-0.2, 0.0, 0.3, 0.1]),
            ],
            season_genre: vec![
                effect("Family", &[0.3, 0.0, -0.1, 0.0]),
                effect("Drama", &[0.15, 0.0, -0.1, 0.05]),
                effect("Romance", &[0.1, 0.2, 0.0, 0.0]),
                effect("Action", &[0.0, 0.0, 0.3, 0.0]),
                effect("Adventure", &[0.0, 0.1, 0.3, 0.0]),
                effect("Sci-Fi", &[0.0, 0.0, 0.2, 0.0]),
                effect("Horror", &[0.0, -0.1, 0.0, 0.3]),
                effect("Mystery", &[0.1, 0.0, -0.1, 0.2]),
            ],
            weekend_genre: vec![
                effect("Children", &[0.3]),
                effect("Family", &[0.4]),
                effect("Adventure", &[0.2]),
                effect("Documentary", &[-0.2]),
            ],
            holiday: 1.8,
            holiday_window_days: 21,
            next_episode: 1.0,
            skip_episode: -0.8,
            rewatch: -3.0,
            kids_rewatch: -1.0,
        }
    }
}

/// The preference model ready to score: coefficients plus dense per-genre context tables.
#[derive(Debug, Clone)]
pub struct Preference {
    /// The coefficients.
    pub coef: Coefficients,
    daypart: [[f32; 4]; N_GENRES],
    season: [[f32; 4]; N_GENRES],
    weekend: [f32; N_GENRES],
}

impl Preference {
    /// Checks the genre names and value counts of `coef` and builds the dense tables.
    pub fn new(coef: Coefficients) -> Result<Preference> {
        let mut daypart = [[0.0; 4]; N_GENRES];
        let mut season = [[0.0; 4]; N_GENRES];
        let mut weekend = [0.0; N_GENRES];
        for (list, name) in [
            (&coef.daypart_genre, "daypart_genre"),
            (&coef.season_genre, "season_genre"),
            (&coef.weekend_genre, "weekend_genre"),
        ] {
            for e in list {
                let gi = world::genre_index(&e.genre)
                    .ok_or_else(|| anyhow!("{name}: unknown genre {:?}", e.genre))?;
                match (name, e.values.as_slice()) {
                    ("daypart_genre", &[a, b, c, d]) => daypart[gi] = [a, b, c, d],
                    ("season_genre", &[a, b, c, d]) => season[gi] = [a, b, c, d],
                    ("weekend_genre", &[a]) => weekend[gi] = a,
                    _ => bail!("{name}: wrong number of values for {:?}", e.genre),
                }
            }
        }
        Ok(Preference {
            coef,
            daypart,
            season,
            weekend,
        })
    }
}

/// Where and when a recommendation is shown, as the preference model sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Context {
    /// Unix seconds.
    pub time: i64,
    /// Index into [`schema::DEVICES`] (tv, desktop, mobile, tablet).
    pub device: usize,
    /// 0 morning, 1 afternoon, 2 evening, 3 night (the core's [`Daypart`]).
    pub daypart: usize,
    /// Saturday or Sunday, local time.
    pub weekend: bool,
    /// Index into [`Season::ALL`] for the user's hemisphere.
    pub season: usize,
    /// The country's next holiday within the window: index into the holiday list and days to it.
    pub holiday: Option<(u8, u16)>,
}

/// The calendar facts of one local day in one country.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DayFacts {
    /// Monday = 0 … Sunday = 6.
    pub weekday: u8,
    /// Index into [`Season::ALL`].
    pub season: usize,
    /// Next holiday within the window (index into the holiday list, days to it).
    pub holiday: Option<(u8, u16)>,
}

/// The calendar facts of a country's local day, from the core calendar.
pub fn day_facts(country: usize, day: i64, holidays: &[&str], window_days: u16) -> DayFacts {
    let c = &COUNTRIES[country];
    let month = calendar::civil_from_days(day).month;
    let season = calendar::season(month, c.hemisphere);
    let holiday = calendar::next_holiday(c, day, window_days).and_then(|h| {
        holidays
            .iter()
            .position(|n| *n == h.name)
            .map(|i| (i as u8, h.days_until))
    });
    DayFacts {
        weekday: calendar::weekday(day),
        season: Season::ALL.iter().position(|s| *s == season).unwrap_or(0),
        holiday,
    }
}

/// Calendar facts precomputed for every country and local day of a window (the simulator
/// asks for them once per session); days outside the window are computed on demand.
#[derive(Debug, Clone)]
pub struct CalendarCache {
    first_day: i64,
    days: usize,
    facts: Vec<DayFacts>,
    holidays: Vec<&'static str>,
    window_days: u16,
}

impl CalendarCache {
    /// Facts for local days covering `[start, end)` in every time zone (±1 day).
    pub fn new(start: i64, end: i64, holidays: Vec<&'static str>, window_days: u16) -> Self {
        let first_day = start.div_euclid(DAY) - 1;
        let days = (end.div_euclid(DAY) + 2 - first_day).max(0) as usize;
        let mut facts = Vec::with_capacity(days * COUNTRIES.len());
        for c in 0..COUNTRIES.len() {
            for d in 0..days {
                facts.push(day_facts(c, first_day + d as i64, &holidays, window_days));
            }
        }
        CalendarCache {
            first_day,
            days,
            facts,
            holidays,
            window_days,
        }
    }

    /// The facts of `country`'s local `day`.
    pub fn get(&self, country: usize, day: i64) -> DayFacts {
        let d = day - self.first_day;
        if d >= 0 && (d as usize) < self.days {
            self.facts[country * self.days + d as usize]
        } else {
            day_facts(country, day, &self.holidays, self.window_days)
        }
    }

    /// The preference context of `user` at `time` on device index `device`.
    pub fn context(&self, user: &UserModel, time: i64, device: usize) -> Context {
        let local = calendar::local_seconds(time, user.utc_offset_minutes);
        let day = local.div_euclid(DAY);
        let f = self.get(user.country as usize, day);
        Context {
            time,
            device,
            daypart: daypart_index(((local.rem_euclid(DAY)) / 3_600) as u8),
            weekend: f.weekday >= 5,
            season: f.season,
            holiday: f.holiday,
        }
    }
}

/// The core's daypart of a local hour, as an index (morning 0 … night 3).
pub fn daypart_index(hour: u8) -> usize {
    // One definition of dayparts: the core's Context (hour 0 at the epoch plus `hour` hours).
    let ctx = edgerec::context::Context::new(Device::Unknown, hour as i64 * 3_600, 0);
    match ctx.map(|c| c.daypart()) {
        Ok(Daypart::Morning) => 0,
        Ok(Daypart::Afternoon) => 1,
        Ok(Daypart::Evening) => 2,
        _ => 3,
    }
}

/// What the user's history says about one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ItemState {
    /// The user completed this item before.
    pub completed: bool,
    /// Episodes only: the user has watched an episode of this series.
    pub series_started: bool,
    /// Episodes only: this episode's index minus the next one due (0 = the next episode,
    /// positive = ahead, negative = already past).
    pub series_gap: i32,
}

/// A user's viewing history as the preference model needs it: completed items and the last
/// episode watched of each series. Linear scans: users have tens to hundreds of plays.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    completed: Vec<u32>,
    series: Vec<(u32, u16)>,
}

/// A play counts as completing an item from this fraction on.
pub const COMPLETED_FRACTION: f32 = 0.8;
/// An episode counts as watched (for series progress) from this fraction on.
pub const EPISODE_WATCHED_FRACTION: f32 = 0.5;

impl History {
    /// An empty history.
    pub fn new() -> History {
        History::default()
    }

    /// Records a play of `item_id` watched to `fraction`.
    pub fn record(&mut self, item_id: u32, item: &ItemModel, fraction: f32) {
        if fraction >= COMPLETED_FRACTION && !self.completed.contains(&item_id) {
            self.completed.push(item_id);
        }
        if item.kind == MediaKind::Episode && fraction >= EPISODE_WATCHED_FRACTION {
            // Most recently watched series last.
            self.series.retain(|s| s.0 != item.series);
            self.series.push((item.series, item.episode_index));
        }
    }

    /// Whether `item_id` was completed.
    pub fn completed(&self, item_id: u32) -> bool {
        self.completed.contains(&item_id)
    }

    /// The last episode index watched of `series`.
    pub fn last_episode(&self, series: u32) -> Option<u16> {
        self.series.iter().find(|s| s.0 == series).map(|s| s.1)
    }

    /// Series in progress with the last episode index watched, least recently watched first.
    pub fn series_progress(&self) -> &[(u32, u16)] {
        &self.series
    }

    /// What the history says about `item`.
    pub fn state(&self, item_id: u32, item: &ItemModel) -> ItemState {
        let mut s = ItemState {
            completed: self.completed(item_id),
            ..ItemState::default()
        };
        if item.kind == MediaKind::Episode {
            let last = self.last_episode(item.series);
            s.series_started = last.is_some();
            let next = last.map_or(0, |l| l as i32 + 1);
            s.series_gap = item.episode_index as i32 - next;
        }
        s
    }
}

#[inline]
fn dot(a: &[f32; LATENT_DIM], b: &[f32; LATENT_DIM]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The true utility of `item` for `user` in `ctx` given the user's history `state` (see the
/// module doc). `−∞` above the user's maturity limit. Cost: O(latent dim + genres + cast).
pub fn utility(
    p: &Preference,
    user: &UserModel,
    item: &ItemModel,
    ctx: &Context,
    state: ItemState,
) -> f32 {
    if item.maturity > user.maturity_limit {
        return f32::NEG_INFINITY;
    }
    let c = &p.coef;
    let mut s = c.latent * dot(&user.latent, &item.latent);
    let (mut taste, mut context, mut n) = (0.0f32, 0.0f32, 0u32);
    let mut bits = item.genres;
    while bits != 0 {
        let gi = bits.trailing_zeros() as usize;
        bits &= bits - 1;
        taste += user.genre_affinity[gi];
        context += p.daypart[gi][ctx.daypart] + p.season[gi][ctx.season];
        if ctx.weekend {
            context += p.weekend[gi];
        }
        n += 1;
    }
    if n > 0 {
        s += c.genre * taste / (n as f32).sqrt() + context / n as f32;
    }
    for &(a, w) in &user.actors {
        if a != u32::MAX && item.actors.contains(&a) {
            s += c.actor * w;
        }
    }
    if item.language != user.language {
        let english = if item.language == 0 {
            c.english_factor
        } else {
            1.0
        };
        s -= c.foreign_language * user.foreign_penalty * english;
    }
    s += c.quality * user.quality_weight * item.quality;
    s += c.popularity * user.mainstream * item.popularity;
    let age_days = ((ctx.time - item.release_time) as f32 / DAY as f32).max(0.0);
    s += c.novelty * user.novelty_weight * (-age_days / c.novelty_days).exp();
    let hours = item.duration_s as f32 / 3_600.0 - c.reference_hours;
    if ctx.device < 4 {
        s += c.device_duration[ctx.device] * hours;
    }
    if ctx.weekend {
        s += c.weekend_duration * hours;
    }
    if item.kind == MediaKind::Episode {
        if ctx.device < 4 {
            s += c.device_episode[ctx.device];
        }
        s += c.series * user.series_affinity;
        if state.series_gap == 0 && state.series_started {
            s += c.next_episode * user.binge;
        } else if state.series_gap > 0 {
            s += c.skip_episode * state.series_gap.min(3) as f32;
        } else if state.series_gap < 0 {
            s += c.rewatch;
        }
    }
    if state.completed && item.kind == MediaKind::Movie {
        s += if user.age < 13 {
            c.kids_rewatch
        } else {
            c.rewatch
        };
    }
    if let Some((h, days)) = ctx.holiday
        && days <= c.holiday_window_days
        && item.holidays & (1u64 << h) != 0
    {
        s += c.holiday * (1.0 - days as f32 / (c.holiday_window_days as f32 + 7.0));
    }
    s
}

/// The logistic function.
#[inline]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Probability that `user` plays an item of this utility once they have examined it:
/// `σ(utility + click_bias)`.
pub fn play_probability(user: &UserModel, utility: f32) -> f32 {
    sigmoid(utility + user.click_bias)
}

/// Probability that `user` examines 0-based row position `position`: `1 / (1 + k / patience)`.
pub fn examination_probability(user: &UserModel, position: usize) -> f32 {
    1.0 / (1.0 + position as f32 / user.patience)
}

/// A country as described in `world.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CountrySpec {
    /// ISO 3166-1 alpha-2.
    pub code: String,
    /// Main language.
    pub language: String,
    /// Share of users.
    pub user_share: f64,
    /// Holidays (core calendar names).
    pub holidays: Vec<String>,
}

/// Row counts of a world's tables.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Rows of `users`.
    pub users: u64,
    /// Users who signed up during the window.
    pub cold_users: u64,
    /// Profiles under 18.
    pub restricted_users: u64,
    /// Rows of `items`.
    pub items: u64,
    /// Items added to the platform during the window.
    pub cold_items: u64,
    /// Movies and series.
    pub titles: u64,
    /// Series.
    pub series: u64,
    /// Rows of `impressions`.
    pub impressions: u64,
    /// Rows of `plays`.
    pub plays: u64,
    /// Rows of `searches`.
    pub searches: u64,
    /// Sessions.
    pub sessions: u64,
}

/// The content of `world.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorldSpec {
    /// [`WORLD_FORMAT`].
    pub format: String,
    /// Sizes and seed.
    pub config: WorldConfig,
    /// Dimension of the latent vectors.
    pub latent_dim: usize,
    /// Genre names, the order of `genre_affinity`.
    pub genres: Vec<String>,
    /// Languages (ISO 639-1).
    pub languages: Vec<String>,
    /// Holiday names (item tags), the order of holiday indices.
    pub holidays: Vec<String>,
    /// Non-holiday tags.
    pub tags: Vec<String>,
    /// Countries, their languages, user shares and holidays.
    pub countries: Vec<CountrySpec>,
    /// Devices, the order of `device_weights` and device coefficients.
    pub devices: Vec<String>,
    /// The preference model.
    pub preference: Coefficients,
    /// The behaviour model (sessions, policy, watch time).
    pub behaviour: Behaviour,
    /// The main shares of entity generation.
    pub generation: world::Generation,
    /// Row counts.
    pub counts: Counts,
}

impl WorldSpec {
    /// The spec of a world built with these settings.
    pub fn new(cfg: &WorldConfig, vocab: &world::Vocab, behaviour: &Behaviour) -> WorldSpec {
        let shares: Vec<f64> = COUNTRIES
            .iter()
            .map(|c| world::country_user_weight(c.code))
            .collect();
        let total: f64 = shares.iter().sum();
        WorldSpec {
            format: WORLD_FORMAT.to_string(),
            config: *cfg,
            latent_dim: LATENT_DIM,
            genres: GENRES.iter().map(|g| g.to_string()).collect(),
            languages: LANGUAGES.iter().map(|l| l.to_string()).collect(),
            holidays: vocab.holidays.iter().map(|h| h.to_string()).collect(),
            tags: world::TAGS.iter().map(|t| t.to_string()).collect(),
            countries: COUNTRIES
                .iter()
                .zip(&shares)
                .map(|(c, s)| CountrySpec {
                    code: c.code.to_string(),
                    language: c.language.to_string(),
                    user_share: s / total,
                    holidays: c.holidays.iter().map(|h| h.name.to_string()).collect(),
                })
                .collect(),
            devices: schema::DEVICES
                .iter()
                .map(|d| d.as_str().to_string())
                .collect(),
            preference: Coefficients::default(),
            behaviour: behaviour.clone(),
            generation: world::GENERATION,
            counts: Counts::default(),
        }
    }
}

impl Table for UserTruth {
    const DIR: &'static str = "truth/users";
    const MAX_ROWS_PER_GROUP: usize = 1 << 16;

    fn schema() -> SchemaRef {
        let f = |n: &str| Field::new(n, DataType::Float32, false);
        Arc::new(Schema::new(vec![
            Field::new("user_id", DataType::UInt32, false),
            Field::new("latent", f32_list(), false),
            Field::new("genre_affinity", f32_list(), false),
            Field::new("favourite_actors", utf8_list(), false),
            Field::new("actor_affinity", f32_list(), false),
            f("foreign_penalty"),
            f("quality_weight"),
            f("novelty_weight"),
            f("mainstream"),
            f("binge"),
            f("series_affinity"),
            f("click_bias"),
            f("patience"),
            f("activity"),
            Field::new("device_weights", f32_list(), false),
            f("peak_hour"),
            f("second_hour"),
            f("second_share"),
        ]))
    }

    fn to_batch(rows: &[UserTruth]) -> Result<RecordBatch> {
        let f = |v: fn(&UserTruth) -> f32| {
            Arc::new(Float32Array::from_iter_values(rows.iter().map(v))) as _
        };
        Ok(RecordBatch::try_new(
            Self::schema(),
            vec![
                Arc::new(UInt32Array::from_iter_values(
                    rows.iter().map(|r| r.user_id),
                )),
                build_f32_lists(rows.iter().map(|r| r.latent.as_slice())),
                build_f32_lists(rows.iter().map(|r| r.genre_affinity.as_slice())),
                build_str_lists(
                    rows.iter()
                        .map(|r| r.favourite_actors.iter().map(String::as_str)),
                ),
                build_f32_lists(rows.iter().map(|r| r.actor_affinity.as_slice())),
                f(|r| r.foreign_penalty),
                f(|r| r.quality_weight),
                f(|r| r.novelty_weight),
                f(|r| r.mainstream),
                f(|r| r.binge),
                f(|r| r.series_affinity),
                f(|r| r.click_bias),
                f(|r| r.patience),
                f(|r| r.activity),
                build_f32_lists(rows.iter().map(|r| r.device_weights.as_slice())),
                f(|r| r.peak_hour),
                f(|r| r.second_hour),
                f(|r| r.second_share),
            ],
        )?)
    }

    fn from_batch(b: &RecordBatch, t: &TableFile) -> Result<Vec<UserTruth>> {
        let id = t.u32(b, "user_id")?;
        let (latent, genres) = (t.list(b, "latent")?, t.list(b, "genre_affinity")?);
        let (actors, actor_aff) = (t.list(b, "favourite_actors")?, t.list(b, "actor_affinity")?);
        let devices = t.list(b, "device_weights")?;
        let names = [
            "foreign_penalty",
            "quality_weight",
            "novelty_weight",
            "mainstream",
            "binge",
            "series_affinity",
            "click_bias",
            "patience",
            "activity",
            "peak_hour",
            "second_hour",
            "second_share",
        ];
        let cols = names
            .iter()
            .map(|n| t.f32(b, n))
            .collect::<Result<Vec<_>>>()?;
        (0..b.num_rows())
            .map(|i| {
                let v = |k: usize| cols[k].value(i);
                Ok(UserTruth {
                    user_id: id.value(i),
                    latent: t.f32_list(latent, "latent", i)?,
                    genre_affinity: t.f32_list(genres, "genre_affinity", i)?,
                    favourite_actors: t.str_list(actors, "favourite_actors", i)?,
                    actor_affinity: t.f32_list(actor_aff, "actor_affinity", i)?,
                    foreign_penalty: v(0),
                    quality_weight: v(1),
                    novelty_weight: v(2),
                    mainstream: v(3),
                    binge: v(4),
                    series_affinity: v(5),
                    click_bias: v(6),
                    patience: v(7),
                    activity: v(8),
                    device_weights: t.f32_list(devices, "device_weights", i)?,
                    peak_hour: v(9),
                    second_hour: v(10),
                    second_share: v(11),
                })
            })
            .collect()
    }
}

impl Table for ItemTruth {
    const DIR: &'static str = "truth/items";
    const MAX_ROWS_PER_GROUP: usize = 1 << 17;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("item_id", DataType::UInt32, false),
            Field::new("latent", f32_list(), false),
            Field::new("quality", DataType::Float32, false),
            Field::new("popularity", DataType::Float32, false),
        ]))
    }

    fn to_batch(rows: &[ItemTruth]) -> Result<RecordBatch> {
        Ok(RecordBatch::try_new(
            Self::schema(),
            vec![
                Arc::new(UInt32Array::from_iter_values(
                    rows.iter().map(|r| r.item_id),
                )),
                build_f32_lists(rows.iter().map(|r| r.latent.as_slice())),
                Arc::new(Float32Array::from_iter_values(
                    rows.iter().map(|r| r.quality),
                )),
                Arc::new(Float32Array::from_iter_values(
                    rows.iter().map(|r| r.popularity),
                )),
            ],
        )?)
    }

    fn from_batch(b: &RecordBatch, t: &TableFile) -> Result<Vec<ItemTruth>> {
        let (id, latent) = (t.u32(b, "item_id")?, t.list(b, "latent")?);
        let (quality, popularity) = (t.f32(b, "quality")?, t.f32(b, "popularity")?);
        (0..b.num_rows())
            .map(|i| {
                Ok(ItemTruth {
                    item_id: id.value(i),
                    latent: t.f32_list(latent, "latent", i)?,
                    quality: quality.value(i),
                    popularity: popularity.value(i),
                })
            })
            .collect()
    }
}

/// A loaded world's ground truth: the preference model and every user's and item's hidden
/// parameters, indexed by id.
pub struct Truth {
    /// `world.json`.
    pub spec: WorldSpec,
    /// The preference model.
    pub preference: Preference,
    /// Users by id.
    pub users: Vec<UserModel>,
    /// Items by id.
    pub items: Vec<ItemModel>,
    calendar: CalendarCache,
}

fn latent_array(v: &[f32], what: &str) -> Result<[f32; LATENT_DIM]> {
    v.try_into().map_err(|_| {
        anyhow!(
            "{what}: latent has {} values, expected {LATENT_DIM}",
            v.len()
        )
    })
}

/// Person name → id, numbered in order of first appearance in the cast lists.
type PersonIds = std::collections::HashMap<String, u32>;

/// The id of person `name`, numbering a name not seen before next.
fn person_id(people: &mut PersonIds, name: &str) -> u32 {
    let n = people.len() as u32;
    *people.entry(name.to_string()).or_insert(n)
}

/// Reads `world.json` at `path` and checks its format, genres, languages and latent size
/// against this build.
fn read_spec(path: &Path) -> Result<WorldSpec> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let spec: WorldSpec = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a world description", path.display()))?;
    if spec.format != WORLD_FORMAT {
        bail!(
            "{}: format {:?}, expected {WORLD_FORMAT}",
            path.display(),
            spec.format
        );
    }
    if spec.genres != GENRES || spec.latent_dim != LATENT_DIM || spec.languages != LANGUAGES {
        bail!(
            "{}: genres, languages or latent size differ from this build",
            path.display()
        );
    }
    Ok(spec)
}

/// The holidays of the world's window per the core calendar, checked against the list in
/// `world.json` (at `path`).
fn spec_holidays(spec: &WorldSpec, path: &Path) -> Result<Vec<&'static str>> {
    let holidays: Vec<&'static str> = world::Vocab::new(&spec.config).holidays;
    if holidays.iter().map(|h| h.to_string()).collect::<Vec<_>>() != spec.holidays {
        bail!(
            "{}: holiday list differs from the core calendar's",
            path.display()
        );
    }
    Ok(holidays)
}

/// Episode index within each series of the `items` rows (by position): rank by (season,
/// episode); 0 for movies.
fn episode_indices(rows: &[schema::Item]) -> Vec<u16> {
    let mut episodes: Vec<(u32, u16, u16, usize)> = rows
        .iter()
        .enumerate()
        .filter_map(|(i, r)| Some((r.series_id?, r.season?, r.episode?, i)))
        .collect();
    episodes.sort_unstable();
    let mut episode_index = vec![0u16; rows.len()];
    let mut run = (u32::MAX, 0u16);
    for e in &episodes {
        run = if run.0 == e.0 {
            (e.0, run.1.saturating_add(1))
        } else {
            (e.0, 0)
        };
        episode_index[e.3] = run.1;
    }
    episode_index
}

/// Reads `items` and `truth/items` of world `dir` into item models by id, numbering the cast
/// in `people` as it goes.
fn load_items(dir: &Path, holidays: &[&str], people: &mut PersonIds) -> Result<Vec<ItemModel>> {
    let rows: Vec<schema::Item> = schema::read_table(dir)?;
    let truths: Vec<ItemTruth> = schema::read_table(dir)?;
    if rows.len() != truths.len() {
        bail!("items and truth/items have different row counts");
    }
    let episode_index = episode_indices(&rows);
    let mut items = Vec::with_capacity(rows.len());
    for (i, (r, t)) in rows.iter().zip(&truths).enumerate() {
        if r.item_id as usize != i || t.item_id as usize != i {
            bail!("items and truth/items must list ids 0, 1, 2, … in order (row {i})");
        }
        items.push(item_model(r, t, episode_index[i], holidays, people)?);
    }
    Ok(items)
}

/// The model of one item from its `items` row and `truth/items` row.
fn item_model(
    r: &schema::Item,
    t: &ItemTruth,
    episode_index: u16,
    holidays: &[&str],
    people: &mut PersonIds,
) -> Result<ItemModel> {
    let mut actors = [u32::MAX; MAX_ACTORS];
    for (slot, a) in actors.iter_mut().zip(&r.actors) {
        *slot = person_id(people, a);
    }
    Ok(ItemModel {
        latent: latent_array(&t.latent, "truth/items")?,
        quality: t.quality,
        popularity: t.popularity,
        genres: r
            .genres
            .iter()
            .filter_map(|g| world::genre_index(g))
            .fold(0, |m, g| m | 1 << g),
        holidays: r
            .tags
            .iter()
            .filter_map(|tag| holidays.iter().position(|h| h == tag))
            .fold(0, |m, h| m | 1 << h),
        actors,
        language: world::language_index(&r.original_language).unwrap_or(u8::MAX as usize) as u8,
        maturity: r.maturity,
        kind: r.kind,
        duration_s: r.duration_s,
        release_time: r.release_time,
        added_time: r.added_time,
        // The simulator's title index and words do not enter the utility.
        title: 0,
        series: r.series_id.unwrap_or(u32::MAX),
        episode_index,
        words: [u16::MAX; MAX_TITLE_WORDS],
    })
}

/// Reads `users` and `truth/users` of world `dir` into user models by id (favourite actors
/// looked up in `people`).
fn load_users(dir: &Path, people: &PersonIds) -> Result<Vec<UserModel>> {
    let profiles: Vec<schema::User> = schema::read_table(dir)?;
    let hidden: Vec<UserTruth> = schema::read_table(dir)?;
    if profiles.len() != hidden.len() {
        bail!("users and truth/users have different row counts");
    }
    let mut users = Vec::with_capacity(profiles.len());
    for (i, (r, t)) in profiles.iter().zip(&hidden).enumerate() {
        if r.user_id as usize != i || t.user_id as usize != i {
            bail!("users and truth/users must list ids 0, 1, 2, … in order (row {i})");
        }
        users.push(user_model(r, t, i, people)?);
    }
    Ok(users)
}

/// The model of user `i` from its `users` row and `truth/users` row.
fn user_model(r: &schema::User, t: &UserTruth, i: usize, people: &PersonIds) -> Result<UserModel> {
    let mut fav = [(u32::MAX, 0.0); MAX_FAVOURITE_ACTORS];
    for ((slot, name), w) in fav
        .iter_mut()
        .zip(&t.favourite_actors)
        .zip(&t.actor_affinity)
    {
        // Actors in no item can never match; keep them as padding.
        *slot = (people.get(name).copied().unwrap_or(u32::MAX), *w);
    }
    let genre_affinity: [f32; N_GENRES] = t.genre_affinity.as_slice().try_into().map_err(|_| {
        anyhow!(
            "truth/users: user {i} has {} genre affinities",
            t.genre_affinity.len()
        )
    })?;
    let device_weights: [f32; 4] = t.device_weights.as_slice().try_into().map_err(|_| {
        anyhow!(
            "truth/users: user {i} has {} device weights",
            t.device_weights.len()
        )
    })?;
    Ok(UserModel {
        user_id: r.user_id,
        latent: latent_array(&t.latent, "truth/users")?,
        genre_affinity,
        actors: fav,
        language: world::language_index(&r.language).unwrap_or(u8::MAX as usize) as u8,
        country: COUNTRIES
            .iter()
            .position(|c| c.code == r.country)
            .ok_or_else(|| anyhow!("users: unknown country {:?}", r.country))?
            as u8,
        utc_offset_minutes: r.utc_offset_minutes,
        age: r.age,
        maturity_limit: schema::maturity_limit(r.age),
        signup_time: r.signup_time,
        onboarding: r
            .onboarding_genres
            .iter()
            .filter_map(|g| world::genre_index(g))
            .fold(0, |m, g| m | 1 << g),
        foreign_penalty: t.foreign_penalty,
        quality_weight: t.quality_weight,
        novelty_weight: t.novelty_weight,
        mainstream: t.mainstream,
        binge: t.binge,
        series_affinity: t.series_affinity,
        click_bias: t.click_bias,
        patience: t.patience,
        activity: t.activity,
        device_weights,
        peak_hour: t.peak_hour,
        second_hour: t.second_hour,
        second_share: t.second_share,
    })
}

impl Truth {
    /// Loads `world.json`, `users`, `items`, `truth/users` and `truth/items` of a world
    /// directory (memory: O(users + items)).
    pub fn load(dir: &Path) -> Result<Truth> {
        let path = dir.join("world.json");
        let spec = read_spec(&path)?;
        let preference = Preference::new(spec.preference.clone())
            .with_context(|| format!("{}: preference coefficients", path.display()))?;
        let holidays = spec_holidays(&spec, &path)?;
        let mut people = PersonIds::new();
        let items = load_items(dir, &holidays, &mut people)?;
        let users = load_users(dir, &people)?;
        let calendar = CalendarCache::new(
            spec.config.start,
            spec.config.end(),
            holidays,
            spec.preference.holiday_window_days,
        );
        Ok(Truth {
            spec,
            preference,
            users,
            items,
            calendar,
        })
    }

    /// The preference context of `user` at `time` on `device` (`Unknown` gets no device term).
    /// Panics if `user` is not a user id of the world.
    pub fn context(&self, user: u32, time: i64, device: Device) -> Context {
        let d = schema::DEVICES
            .iter()
            .position(|x| *x == device)
            .unwrap_or(usize::MAX);
        self.calendar.context(&self.users[user as usize], time, d)
    }

    /// The true utility of `item` for `user` in `ctx`, for a user with no history (use
    /// [`Truth::utility_with`] to account for what they watched). Panics on unknown ids.
    pub fn utility(&self, user: u32, item: u32, ctx: &Context) -> f32 {
        self.utility_with(user, item, ctx, &History::new())
    }

    /// The true utility given the user's history.
    pub fn utility_with(&self, user: u32, item: u32, ctx: &Context, history: &History) -> f32 {
        let it = &self.items[item as usize];
        utility(
            &self.preference,
            &self.users[user as usize],
            it,
            ctx,
            history.state(item, it),
        )
    }

    /// The history of a user's `plays` (in time order), for [`Truth::utility_with`]: e.g. the
    /// plays before the time of a ranking request. Panics on unknown item ids.
    pub fn history<'p>(&self, plays: impl IntoIterator<Item = &'p schema::Play>) -> History {
        let mut h = History::new();
        for p in plays {
            h.record(p.item_id, &self.items[p.item_id as usize], p.fraction);
        }
        h
    }

    /// Probability that `user` plays `item` once examined, in `ctx` with `history`.
    pub fn play_probability(&self, user: u32, item: u32, ctx: &Context, history: &History) -> f32 {
        play_probability(
            &self.users[user as usize],
            self.utility_with(user, item, ctx, history),
        )
    }
}
