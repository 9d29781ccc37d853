//! The feature catalog: one definition of every ranking feature, computed by the same code in
//! the training pipeline and on the device.
//!
//! Features are computed **point in time**: a feature for a request at time `t` sees only the
//! user's plays strictly before `t` ([`History::before`]) and platform counts as of `t`
//! ([`MediaStats`]). Values use only `+ − × ÷`, `sqrt`, comparisons and integer arithmetic, so
//! native and wasm builds give bit-identical vectors (no `ln`, `exp` or trigonometry, whose
//! last bits differ between libms). Every dense value is scaled to roughly `[0, 1]`.
//!
//! Families (dense names in [`FeatureSpace::dense_names`]):
//!
//! | family | features |
//! |---|---|
//! | user | age (and whether known), gender, tenure, number of plays, average session time, genre and language histograms (all time and over the last `recent_days`), last genre watched (sparse) |
//! | context | device, part of day, hour, day of week, weekend, season (by hemisphere), upcoming holiday within `holiday_horizon_days` and days to it (sparse holiday id) |
//! | media | public rating, revenue bucket, years since release, days on platform, new on platform, plays in the last 24 h and 7 days, genres, duration, movie/episode, season and episode numbers, release year and type, maturity |
//! | cross | the user's share of the title's genres (all time and recent), actor and director match, language match and share, maturity fits the age, age gap, watched before, next episode of a series in progress, onboarding genre match |
//! | candidate (only with [`FeatureConfig::provenance`]) | per source (iALS, two-tower, content, popularity): in its row, reciprocal rank, score over the row's best; the blend's reciprocal rank and position, the share of sources proposing it, time-decayed popularity ([`Provenance`]) |
//! | sparse ids | movie, directors, actors, distributor, composer, original language, country of origin, genres, tags, user country and language, last genre, holiday |
//!
//! ```
//! use edgerec::features::*;
//! use edgerec::context::{Context, Device};
//! # let (space, profile, media) = edgerec::test_support::tiny_features();
//! let history = History::new(vec![Play {
//!     media: 0, time: 1_000, device: Device::Tv, session: 1, watched_s: 5_400, fraction: 0.9,
//! }]);
//! let ctx = Context::new(Device::Tv, 90_000, 0)?;
//! let user = space.user_state(&profile, history.before(ctx.timestamp()), &media, ctx.timestamp());
//! let context = space.context(&profile, &ctx);
//! let fv = space.features(&user, &context, &media[1], 1, MediaStats::default());
//! assert_eq!(fv.dense.len(), space.dense_names().len());
//! # Ok::<(), edgerec::Error>(())
//! ```

mod media;

use std::collections::{HashMap, HashSet};

pub use media::{
    Gender, History, Maturity, Media, MediaKind, MediaStats, Play, ReleaseType, UserProfile,
    Vocabulary,
};

use crate::calendar::{self, Calendar, Hemisphere, Season};
use crate::context::{Context, Daypart, Device};

const DAY: i64 = 86_400;

/// A play above this fraction of the title counts as watched (the training data's positive
/// rule): it is in the user's history for the candidate sources, the ranker's `history` bag
/// and the rerank's "finished" filter.
pub const WATCHED_ABOVE: f32 = 0.8;

/// The vocabularies categorical features are mapped with.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Vocabularies {
    /// Genre names.
    pub genres: Vocabulary,
    /// Tags.
    pub tags: Vocabulary,
    /// Actors, directors and composers.
    pub people: Vocabulary,
    /// Distributors.
    pub distributors: Vocabulary,
    /// Languages (ISO 639-1).
    pub languages: Vocabulary,
    /// Countries (ISO 3166-1 alpha-2).
    pub countries: Vocabulary,
}

impl Vocabularies {
    /// Every vocabulary, in the order `FEAT` stores them.
    pub fn all(&self) -> [&Vocabulary; 6] {
        [
            &self.genres,
            &self.tags,
            &self.people,
            &self.distributors,
            &self.languages,
            &self.countries,
        ]
    }
}

/// Holiday names of every country of [`calendar::COUNTRIES`], in first-seen order; the sparse
/// holiday feature is `1 + position` (0 = none). This is the vocabulary of a space over the
/// built-in calendar; [`FeatureSpace::holidays`] is a space's own.
pub fn holiday_vocabulary() -> Vocabulary {
    Vocabulary::new(
        calendar::COUNTRIES
            .iter()
            .flat_map(|c| c.holidays.iter().map(|h| h.name)),
    )
}

/// Windows and horizons of the time-based features.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureConfig {
    /// The "recent" genre histogram covers this many days before the request.
    pub recent_days: u32,
    /// Holidays further ahead than this are not "upcoming".
    pub holiday_horizon_days: u16,
    /// Whether vectors end with the candidate family (`cand.*`, [`Provenance`]): what the
    /// first stage knew about the title. Only a ranker trained on the device's own candidates
    /// can read it (the pipeline's examples from logs have no first stage); `FEAT` v1 spaces
    /// have none.
    pub provenance: bool,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        FeatureConfig {
            recent_days: 90,
            holiday_horizon_days: 30,
            provenance: false,
        }
    }
}

/// The candidate sources of the provenance family, in the blend's order (the names of
/// `cand.<source>.*`).
pub const PROVENANCE_SOURCES: [&str; 4] = ["ials", "two_tower", "content", "popularity"];

/// One source's view of a candidate: its 1-based rank in the source's row (0 when the row
/// does not hold the title) and its score divided by the row's top score.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SourceRank {
    /// 1-based rank in the source's row; 0 = not in it.
    pub rank: u32,
    /// The source's score over its row's best score (0 when absent or the best is not
    /// positive), clamped to `[-1, 1]`.
    pub relative_score: f32,
}

/// What the first stage knew about one candidate (the `cand.*` family): the blend's order,
/// every source's rank and relative score ([`PROVENANCE_SOURCES`] order), and the title's
/// time-decayed popularity. Built by the ranking stage from the device's own candidates, and
/// by the trainer from the same stage.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Provenance {
    /// 0-based position in the blend.
    pub blend_rank: u32,
    /// Titles in the blend.
    pub candidates: u32,
    /// Per source, in [`PROVENANCE_SOURCES`] order.
    pub sources: [SourceRank; 4],
    /// The bundle's popularity score of the title (`POPL`, in `[0, 1]`).
    pub popularity: f32,
}

/// The feature space: vocabularies, windows, the holiday calendar, and the names of the dense
/// features in order.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureSpace {
    vocab: Vocabularies,
    holidays: Vocabulary,
    calendar: Calendar,
    config: FeatureConfig,
    names: Vec<String>,
}

/// Aggregates of one user's plays before a time: computed once per request.
#[derive(Debug, Clone, PartialEq)]
pub struct UserState {
    time: i64,
    plays: usize,
    sessions: usize,
    watched_s: u64,
    genre_s: Vec<u64>,
    recent_genre_s: Vec<u64>,
    recent_s: u64,
    language_s: Vec<u64>,
    last_genre: u32,
    actors: HashSet<u32>,
    directors: HashSet<u32>,
    max_fraction: HashMap<u32, f32>,
    last_episode: HashMap<u32, (u16, u16)>,
    profile: UserProfile,
}

/// Context features of one request: computed once per request.
#[derive(Debug, Clone, PartialEq)]
pub struct ContextFeatures {
    dense: Vec<f32>,
    holiday: u32,
    time: i64,
}

/// Ids for embedding lookups (0 = unknown or none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SparseFeatures {
    /// The title's id.
    pub movie: u32,
    /// Director person ids.
    pub directors: Vec<u32>,
    /// Actor person ids.
    pub actors: Vec<u32>,
    /// Distributor id.
    pub distributor: u32,
    /// Composer person id.
    pub composer: u32,
    /// Original language id.
    pub language: u32,
    /// Country of origin id.
    pub country: u32,
    /// Genre ids.
    pub genres: Vec<u32>,
    /// Tag ids.
    pub tags: Vec<u32>,
    /// The user's country id.
    pub user_country: u32,
    /// The user's language id.
    pub user_language: u32,
    /// Genre id of the last title watched.
    pub last_genre: u32,
    /// Upcoming holiday id ([`FeatureSpace::holidays`]).
    pub holiday: u32,
}

/// All features of one (user, context, title) example.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureVector {
    /// Dense values, in [`FeatureSpace::dense_names`] order.
    pub dense: Vec<f32>,
    /// Sparse ids.
    pub sparse: SparseFeatures,
}

/// `x / (x + half)`: maps counts to `[0, 1)`, 0.5 at `half`.
fn saturate(x: f32, half: f32) -> f32 {
    x / (x + half)
}

fn share(part: u64, total: u64) -> f32 {
    if total == 0 {
        0.0
    } else {
        (part as f64 / total as f64) as f32
    }
}

fn flag(b: bool) -> f32 {
    if b { 1.0 } else { 0.0 }
}

fn one_hot(out: &mut Vec<f32>, n: usize, i: usize) {
    out.extend((0..n).map(|j| flag(i == j)));
}

const DEVICES: [Device; 5] = Device::ALL;
const DAYPARTS: [Daypart; 4] = [
    Daypart::Morning,
    Daypart::Afternoon,
    Daypart::Evening,
    Daypart::Night,
];
const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const GENDERS: [&str; 4] = ["f", "m", "x", "unknown"];

impl FeatureSpace {
    /// The space over these vocabularies and the built-in holiday calendar
    /// ([`Calendar::builtin`]).
    pub fn new(vocab: Vocabularies, config: FeatureConfig) -> FeatureSpace {
        FeatureSpace::with_calendar(vocab, config, Calendar::builtin())
    }

    /// The space over these vocabularies whose context features use `calendar` (a bundle's
    /// `CALD`): the user's country's hemisphere and holidays come from it, and its holidays
    /// have sparse ids ([`FeatureSpace::holidays`]). The dense feature names do not depend on
    /// the calendar. The calendar is not checked here ([`Calendar::validate`]; the bundle
    /// reader does).
    pub fn with_calendar(
        vocab: Vocabularies,
        config: FeatureConfig,
        calendar: Calendar,
    ) -> FeatureSpace {
        let names = dense_feature_names(&vocab, config);
        FeatureSpace {
            vocab,
            holidays: Vocabulary::new(
                holiday_vocabulary()
                    .names()
                    .iter()
                    .map(String::as_str)
                    .chain(calendar.holiday_names()),
            ),
            calendar,
            config,
            names,
        }
    }

    /// The holiday calendar of the context features.
    pub fn calendar(&self) -> &Calendar {
        &self.calendar
    }

    /// The sparse holiday ids: [`holiday_vocabulary`] (the built-in calendar's names, so
    /// their ids never depend on the calendar), then the calendar's other holiday names in
    /// first-seen order.
    pub fn holidays(&self) -> &Vocabulary {
        &self.holidays
    }

    /// Names of the dense features, in vector order. Stable for a given vocabulary; this list
    /// is the input contract a ranker is trained against.
    pub fn dense_names(&self) -> &[String] {
        &self.names
    }

    /// The vocabularies.
    pub fn vocabularies(&self) -> &Vocabularies {
        &self.vocab
    }

    /// The windows and horizons.
    pub fn config(&self) -> FeatureConfig {
        self.config
    }

    /// Aggregates the plays a user made before `time`. `plays` must all be before `time`
    /// (pass [`History::before`]); plays of titles outside `media` are ignored.
    /// Cost: O(plays × (genres + cast)).
    pub fn user_state(
        &self,
        profile: &UserProfile,
        plays: &[Play],
        media: &[Media],
        time: i64,
    ) -> UserState {
        let n_genres = self.vocab.genres.size();
        let mut s = UserState {
            time,
            plays: 0,
            sessions: 0,
            watched_s: 0,
            genre_s: vec![0; n_genres],
            recent_genre_s: vec![0; n_genres],
            recent_s: 0,
            language_s: vec![0; self.vocab.languages.size()],
            last_genre: 0,
            actors: HashSet::new(),
            directors: HashSet::new(),
            max_fraction: HashMap::new(),
            last_episode: HashMap::new(),
            profile: profile.clone(),
        };
        let recent_from = time - i64::from(self.config.recent_days) * DAY;
        let mut sessions = HashSet::new();
        for p in plays.iter().filter(|p| p.time < time) {
            let Some(m) = media.get(p.media as usize) else {
                continue;
            };
            s.plays += 1;
            sessions.insert(p.session);
            let w = u64::from(p.watched_s);
            s.watched_s += w;
            let recent = p.time >= recent_from;
            if recent {
                s.recent_s += w;
            }
            for &g in &m.genres {
                if let Some(x) = s.genre_s.get_mut(g as usize) {
                    *x += w;
                }
                if recent && let Some(x) = s.recent_genre_s.get_mut(g as usize) {
                    *x += w;
                }
            }
            if let Some(x) = s.language_s.get_mut(m.language as usize) {
                *x += w;
            }
            s.last_genre = m.genres.first().copied().unwrap_or(0);
            s.actors.extend(&m.actors);
            s.directors.extend(&m.directors);
            let f = s.max_fraction.entry(p.media).or_insert(0.0);
            *f = f.max(p.fraction);
            if let (Some(series), Some(season), Some(episode)) = (m.series_id, m.season, m.episode)
            {
                let last = s.last_episode.entry(series).or_insert((season, episode));
                *last = (*last).max((season, episode));
            }
        }
        s.sessions = sessions.len();
        s
    }

    /// Context features of a request; the hemisphere and holidays are the user's country's in
    /// the space's calendar ([`FeatureSpace::calendar`]).
    pub fn context(&self, profile: &UserProfile, ctx: &Context) -> ContextFeatures {
        let mut d = Vec::with_capacity(32);
        one_hot(
            &mut d,
            DEVICES.len(),
            DEVICES.iter().position(|&x| x == ctx.device()).unwrap_or(4),
        );
        one_hot(
            &mut d,
            DAYPARTS.len(),
            DAYPARTS
                .iter()
                .position(|&x| x == ctx.daypart())
                .unwrap_or(0),
        );
        d.push(f32::from(ctx.local_hour()) / 23.0);
        let wd = ctx.weekday();
        one_hot(&mut d, 7, wd as usize);
        d.push(flag(wd >= 5));
        let country = self
            .vocab
            .countries
            .name(profile.country)
            .and_then(|code| self.calendar.country(code));
        let today = ctx.local_days();
        let month = calendar::civil_from_days(today).month;
        let hemisphere = country.map_or(Hemisphere::Northern, |c| c.hemisphere);
        let season = calendar::season(month, hemisphere);
        one_hot(
            &mut d,
            4,
            Season::ALL.iter().position(|&s| s == season).unwrap_or(0),
        );
        let horizon = self.config.holiday_horizon_days;
        let next = country.and_then(|c| c.next_holiday(today, horizon));
        d.push(flag(next.is_some()));
        d.push(next.map_or(1.0, |h| f32::from(h.days_until) / f32::from(horizon.max(1))));
        ContextFeatures {
            dense: d,
            holiday: next.map_or(0, |h| self.holidays.id(h.name)),
            time: ctx.timestamp(),
        }
    }

    /// The full vector for one title. `index` is the title's position in the media table the
    /// user state was computed against; `stats` are its platform counts as of the request.
    pub fn features(
        &self,
        user: &UserState,
        ctx: &ContextFeatures,
        media: &Media,
        index: u32,
        stats: MediaStats,
    ) -> FeatureVector {
        let t = ctx.time;
        let p = &user.profile;
        let mut d = Vec::with_capacity(self.names.len());
        push_user(&mut d, user, t);
        // Context: computed once per request, by `FeatureSpace::context`.
        d.extend_from_slice(&ctx.dense);
        push_media(&mut d, media, stats, t, self.vocab.genres.size());
        push_crosses(&mut d, user, media, index);
        debug_assert_eq!(
            d.len()
                + if self.config.provenance {
                    PROVENANCE_LEN
                } else {
                    0
                },
            self.names.len()
        );

        FeatureVector {
            dense: d,
            sparse: SparseFeatures {
                movie: media.id,
                directors: media.directors.clone(),
                actors: media.actors.clone(),
                distributor: media.distributor,
                composer: media.composer,
                language: media.language,
                country: media.country,
                genres: media.genres.clone(),
                tags: media.tags.clone(),
                user_country: p.country,
                user_language: p.language,
                last_genre: user.last_genre,
                holiday: ctx.holiday,
            },
        }
    }

    /// Appends the candidate family to a vector of [`FeatureSpace::features`] when the space
    /// has it ([`FeatureConfig::provenance`]); a space without it leaves `fv` as it is.
    pub fn push_provenance(&self, fv: &mut FeatureVector, p: &Provenance) {
        if !self.config.provenance {
            return;
        }
        let d = &mut fv.dense;
        for s in &p.sources {
            d.push(flag(s.rank > 0));
            d.push(if s.rank > 0 { 1.0 / s.rank as f32 } else { 0.0 });
            d.push(if s.rank > 0 {
                s.relative_score.clamp(-1.0, 1.0)
            } else {
                0.0
            });
        }
        let n = p.candidates.max(1) as f32;
        d.push(1.0 / (1.0 + p.blend_rank as f32));
        d.push((1.0 - p.blend_rank as f32 / n).clamp(0.0, 1.0));
        d.push(p.sources.iter().filter(|s| s.rank > 0).count() as f32 / 4.0);
        d.push(p.popularity.clamp(0.0, 1.0));
    }

    /// Everything in one call, point in time at the context's timestamp: only plays strictly
    /// before it are seen.
    pub fn compute(
        &self,
        profile: &UserProfile,
        history: &History,
        media: &[Media],
        index: u32,
        stats: MediaStats,
        ctx: &Context,
    ) -> Option<FeatureVector> {
        let m = media.get(index as usize)?;
        let t = ctx.timestamp();
        let user = self.user_state(profile, history.before(t), media, t);
        let c = self.context(profile, ctx);
        Some(self.features(&user, &c, m, index, stats))
    }
}

/// The genre names by id: `"?"` for id 0 (unknown), then the vocabulary's names.
fn genre_names(vocab: &Vocabularies) -> impl Iterator<Item = &str> {
    std::iter::once("?").chain(vocab.genres.names().iter().map(String::as_str))
}

/// The dense feature names over these vocabularies, in vector order
/// ([`FeatureSpace::dense_names`]).
fn dense_feature_names(vocab: &Vocabularies, config: FeatureConfig) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    user_names(&mut names, vocab);
    context_names(&mut names);
    media_names(&mut names, vocab);
    cross_names(&mut names);
    if config.provenance {
        provenance_names(&mut names);
    }
    names
}

/// Values of the candidate family ([`FeatureSpace::push_provenance`]).
const PROVENANCE_LEN: usize = 3 * PROVENANCE_SOURCES.len() + 4;

/// Appends the candidate family's dense names: per source whether its row holds the title,
/// the reciprocal rank and the relative score; then the blend's reciprocal rank and position,
/// the share of sources that proposed it, and its popularity.
fn provenance_names(names: &mut Vec<String>) {
    for s in PROVENANCE_SOURCES {
        for f in ["in", "rr", "score"] {
            names.push(format!("cand.{s}.{f}"));
        }
    }
    for n in [
        "cand.blend_rr",
        "cand.blend_pos",
        "cand.sources",
        "cand.popularity",
    ] {
        names.push(n.into());
    }
}

/// Appends the user family's dense names.
fn user_names(names: &mut Vec<String>, vocab: &Vocabularies) {
    for n in ["user.age", "user.age_known"] {
        names.push(n.into());
    }
    for g in GENDERS {
        names.push(format!("user.gender={g}"));
    }
    for n in ["user.tenure", "user.plays", "user.avg_session"] {
        names.push(n.into());
    }
    for g in genre_names(vocab) {
        names.push(format!("user.genre_share={g}"));
    }
    for g in genre_names(vocab) {
        names.push(format!("user.genre_share_recent={g}"));
    }
    for l in std::iter::once("?").chain(vocab.languages.names().iter().map(String::as_str)) {
        names.push(format!("user.language_share={l}"));
    }
}

/// Appends the context family's dense names.
fn context_names(names: &mut Vec<String>) {
    for d in DEVICES {
        names.push(format!("ctx.device={d}"));
    }
    for d in DAYPARTS {
        names.push(format!("ctx.daypart={d:?}").to_lowercase());
    }
    names.push("ctx.hour".into());
    for w in WEEKDAYS {
        names.push(format!("ctx.weekday={w}"));
    }
    names.push("ctx.weekend".into());
    for s in Season::ALL {
        names.push(format!("ctx.season={}", s.as_str()));
    }
    for n in ["ctx.holiday_upcoming", "ctx.days_to_holiday"] {
        names.push(n.into());
    }
}

/// Appends the media family's dense names.
fn media_names(names: &mut Vec<String>, vocab: &Vocabularies) {
    for n in [
        "media.rating",
        "media.rating_known",
        "media.revenue_bucket",
        "media.revenue_known",
        "media.years_since_release",
        "media.days_on_platform",
        "media.new_on_platform",
        "media.plays_24h",
        "media.plays_7d",
    ] {
        names.push(n.into());
    }
    for g in genre_names(vocab) {
        names.push(format!("media.genre={g}"));
    }
    for n in [
        "media.duration",
        "media.kind=movie",
        "media.kind=episode",
        "media.season",
        "media.episode",
        "media.release_year",
        "media.release_type=theatrical",
        "media.release_type=streaming",
        "media.release_type=tv",
        "media.maturity",
    ] {
        names.push(n.into());
    }
}

/// Appends the cross family's dense names.
fn cross_names(names: &mut Vec<String>) {
    for n in [
        "cross.genre_share",
        "cross.genre_share_recent",
        "cross.actor_match",
        "cross.director_match",
        "cross.language_match",
        "cross.language_share",
        "cross.maturity_fits_age",
        "cross.age_gap",
        "cross.watched_before",
        "cross.next_episode",
        "cross.onboarding_genre",
    ] {
        names.push(n.into());
    }
}

/// Appends the user family's dense values (profile, activity, genre and language shares).
fn push_user(d: &mut Vec<f32>, user: &UserState, t: i64) {
    let p = &user.profile;
    d.push(p.age.map_or(0.0, |a| f32::from(a.min(100)) / 100.0));
    d.push(flag(p.age.is_some()));
    let g = match p.gender {
        Gender::Female => 0,
        Gender::Male => 1,
        Gender::Other => 2,
        Gender::Unknown => 3,
    };
    one_hot(d, 4, g);
    let tenure_days = (t.saturating_sub(p.signup_time).max(0) / DAY) as f32;
    d.push(saturate(tenure_days, 365.0));
    d.push(saturate(user.plays as f32, 20.0));
    let avg_session_min = if user.sessions == 0 {
        0.0
    } else {
        (user.watched_s as f64 / user.sessions as f64 / 60.0) as f32
    };
    d.push(saturate(avg_session_min, 60.0));
    d.extend(user.genre_s.iter().map(|&x| share(x, user.watched_s)));
    d.extend(user.recent_genre_s.iter().map(|&x| share(x, user.recent_s)));
    d.extend(user.language_s.iter().map(|&x| share(x, user.watched_s)));
}

/// Appends the media family's dense values for a title at time `t` (`n_genres` genre
/// columns).
fn push_media(d: &mut Vec<f32>, media: &Media, stats: MediaStats, t: i64, n_genres: usize) {
    d.push(
        media
            .public_rating
            .map_or(0.0, |r| r.clamp(0.0, 10.0) / 10.0),
    );
    d.push(flag(media.public_rating.is_some()));
    let bucket = media.revenue_usd.map_or(0, |r| {
        [1e5, 1e6, 1e7, 1e8, 1e9]
            .iter()
            .filter(|&&b| r >= b)
            .count()
    });
    d.push(bucket as f32 / 5.0);
    d.push(flag(media.revenue_usd.is_some()));
    let years = t.saturating_sub(media.release_time).max(0) as f64 / (365.25 * DAY as f64);
    d.push((years.min(50.0) / 50.0) as f32);
    let on_platform_days = (t.saturating_sub(media.added_time).max(0) / DAY) as f32;
    d.push(on_platform_days.min(365.0) / 365.0);
    d.push(flag(on_platform_days < 30.0));
    d.push(saturate(stats.plays_24h as f32, 100.0));
    d.push(saturate(stats.plays_7d as f32, 500.0));
    let start = d.len();
    d.resize(start + n_genres, 0.0);
    for &g in &media.genres {
        if let Some(x) = d.get_mut(start + g as usize) {
            *x = 1.0;
        }
    }
    d.push((media.duration_s as f32 / 60.0).min(240.0) / 240.0);
    d.push(flag(media.kind == MediaKind::Movie));
    d.push(flag(media.kind == MediaKind::Episode));
    d.push(f32::from(media.season.unwrap_or(0).min(10)) / 10.0);
    d.push(f32::from(media.episode.unwrap_or(0).min(30)) / 30.0);
    let year = calendar::civil_from_days(media.release_time.div_euclid(DAY)).year;
    d.push(((year - 1900).clamp(0, 150)) as f32 / 150.0);
    for rt in [
        ReleaseType::Theatrical,
        ReleaseType::Streaming,
        ReleaseType::Tv,
    ] {
        d.push(flag(media.release_type == rt));
    }
    d.push(f32::from(media.maturity.rank()) / 4.0);
}

/// Appends the cross family's dense values: how the title at media index `index` matches
/// the user's history and profile.
fn push_crosses(d: &mut Vec<f32>, user: &UserState, media: &Media, index: u32) {
    let p = &user.profile;
    let genre_sum = |hist: &[u64], total: u64| -> f32 {
        media
            .genres
            .iter()
            .map(|&g| share(hist.get(g as usize).copied().unwrap_or(0), total))
            .sum::<f32>()
            .min(1.0)
    };
    d.push(genre_sum(&user.genre_s, user.watched_s));
    d.push(genre_sum(&user.recent_genre_s, user.recent_s));
    let seen_actors = media
        .actors
        .iter()
        .filter(|a| user.actors.contains(a))
        .count();
    d.push(if media.actors.is_empty() {
        0.0
    } else {
        seen_actors as f32 / media.actors.len() as f32
    });
    d.push(flag(
        media.directors.iter().any(|x| user.directors.contains(x)),
    ));
    d.push(flag(media.language != 0 && media.language == p.language));
    d.push(share(
        user.language_s
            .get(media.language as usize)
            .copied()
            .unwrap_or(0),
        user.watched_s,
    ));
    let min_age = media.maturity.min_age();
    d.push(flag(p.age.is_none_or(|a| a >= min_age)));
    d.push(
        p.age
            .map_or(0.0, |a| f32::from(min_age.saturating_sub(a)) / 18.0),
    );
    d.push(user.max_fraction.get(&index).copied().unwrap_or(0.0));
    let next_episode = match (media.series_id, media.season, media.episode) {
        (Some(series), Some(season), Some(episode)) => {
            user.last_episode.get(&series).is_some_and(|&(s, e)| {
                (s == season && e.checked_add(1) == Some(episode))
                    || (s.checked_add(1) == Some(season) && episode == 1)
            })
        }
        _ => false,
    };
    d.push(flag(next_episode));
    d.push(flag(
        media.genres.iter().any(|g| p.onboarding_genres.contains(g)),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::tiny_features as tiny;
    use proptest::prelude::*;

    fn value(space: &FeatureSpace, fv: &FeatureVector, name: &str) -> f32 {
        let i = space
            .dense_names()
            .iter()
            .position(|n| n == name)
            .unwrap_or_else(|| panic!("no feature {name}"));
        fv.dense[i]
    }

    fn play(media: u32, time: i64, session: u64, watched_s: u32, fraction: f32) -> Play {
        Play {
            media,
            time,
            device: Device::Tv,
            session,
            watched_s,
            fraction,
        }
    }

    #[test]
    fn hand_worked_example() {
        let (space, profile, media) = tiny();
        // Two sessions: 5400 s of the Drama film, then 1200 s of the Drama/Horror episode.
        let h = History::new(vec![
            play(0, 1_000, 1, 5_400, 0.9),
            play(1, 2_000, 2, 1_200, 0.5),
        ]);
        // 2026-11-20 (a Friday) 21:00 UTC in the US: Thanksgiving in 6 days.
        let t = calendar::days_from_civil(2026, 11, 20) * DAY + 21 * 3_600;
        let ctx = Context::new(Device::Tv, t, 0).unwrap();
        let fv = space
            .compute(
                &profile,
                &h,
                &media,
                1,
                MediaStats {
                    plays_24h: 100,
                    plays_7d: 0,
                },
                &ctx,
            )
            .unwrap();
        let v = |n: &str| value(&space, &fv, n);
        assert_eq!(v("user.age"), 0.15);
        assert_eq!(v("user.gender=f"), 1.0);
        assert_eq!(v("user.plays"), 2.0 / 22.0);
        // (5400 + 1200) / 2 sessions = 55 min.
        assert_eq!(v("user.avg_session"), 55.0 / 115.0);
        assert_eq!(v("user.genre_share=Drama"), 1.0);
        assert_eq!(v("user.genre_share=Horror"), (1_200.0f64 / 6_600.0) as f32);
        assert_eq!(v("ctx.device=tv"), 1.0);
        assert_eq!(v("ctx.daypart=evening"), 1.0);
        assert_eq!(v("ctx.weekday=fri"), 1.0);
        assert_eq!(v("ctx.season=autumn"), 1.0);
        assert_eq!(v("ctx.holiday_upcoming"), 1.0);
        assert_eq!(v("ctx.days_to_holiday"), 6.0 / 30.0);
        assert_eq!(fv.sparse.holiday, holiday_vocabulary().id("thanksgiving"));
        assert_eq!(v("media.plays_24h"), 0.5);
        assert_eq!(v("media.kind=episode"), 1.0);
        assert_eq!(v("media.genre=Horror"), 1.0);
        assert_eq!(v("media.maturity"), 0.75);
        // The user half-watched this very episode (both actors seen) and is 15: R does not fit.
        assert_eq!(v("cross.actor_match"), 1.0);
        assert_eq!(v("cross.maturity_fits_age"), 0.0);
        assert_eq!(v("cross.age_gap"), 2.0 / 18.0);
        assert_eq!(v("cross.watched_before"), 0.5);
        assert_eq!(v("cross.onboarding_genre"), 1.0);
        assert_eq!(v("cross.language_match"), 1.0);
        assert_eq!(fv.sparse.last_genre, 1);
        assert_eq!(fv.sparse.movie, 200);
    }

    #[test]
    fn next_episode_and_seasons() {
        let (space, profile, mut media) = tiny();
        let mut e2 = media[1].clone();
        e2.id = 201;
        e2.episode = Some(2);
        media.push(e2);
        let h = History::new(vec![play(1, 10, 1, 2_400, 1.0)]);
        let ctx = Context::new(Device::Mobile, 100, 0).unwrap();
        let fv = space
            .compute(&profile, &h, &media, 2, MediaStats::default(), &ctx)
            .unwrap();
        assert_eq!(value(&space, &fv, "cross.next_episode"), 1.0);
        let fv = space
            .compute(&profile, &h, &media, 1, MediaStats::default(), &ctx)
            .unwrap();
        assert_eq!(value(&space, &fv, "cross.next_episode"), 0.0);
    }

    #[test]
    fn southern_summer_at_christmas() {
        let (mut space, mut profile, media) = tiny();
        space.vocab.countries = Vocabulary::new(["US", "AU"]);
        profile.country = 2;
        let t = calendar::days_from_civil(2026, 12, 20) * DAY;
        let ctx = Context::new(Device::Tv, t, 600).unwrap();
        let fv = space
            .compute(
                &profile,
                &History::default(),
                &media,
                0,
                MediaStats::default(),
                &ctx,
            )
            .unwrap();
        assert_eq!(value(&space, &fv, "ctx.season=summer"), 1.0);
        assert_eq!(fv.sparse.holiday, holiday_vocabulary().id("christmas"));
    }

    #[test]
    fn the_space_computes_context_with_its_calendar() {
        use crate::calendar::{CountryCalendar, HolidayRule, Rule};
        let (space, profile, _) = tiny();
        assert_eq!(space.calendar(), &Calendar::builtin());
        assert_eq!(space.holidays(), &holiday_vocabulary());
        // 2026-11-20: Thanksgiving (US) in 6 days; a calendar adding 22 November has one in 2.
        let t = calendar::days_from_civil(2026, 11, 20) * DAY + 21 * 3_600;
        let ctx = Context::new(Device::Tv, t, 0).unwrap();
        let mut cal = Calendar::builtin();
        let us = cal.countries.iter_mut().find(|c| c.code == "US").unwrap();
        us.holidays.push(HolidayRule {
            name: "streaming_day".into(),
            rule: Rule::Fixed { month: 11, day: 22 },
        });
        // And a country the built-in table does not have.
        cal.countries.push(CountryCalendar {
            code: "NZ".into(),
            hemisphere: calendar::Hemisphere::Southern,
            holidays: vec![],
        });
        let custom =
            FeatureSpace::with_calendar(space.vocabularies().clone(), space.config(), cal.clone());
        assert_eq!(custom.dense_names(), space.dense_names());
        assert_eq!(custom.calendar(), &cal);
        // Every built-in holiday keeps its id; new ones come after them.
        let builtin_ids = holiday_vocabulary();
        let n = builtin_ids.names().len();
        assert_eq!(&custom.holidays().names()[..n], builtin_ids.names());
        assert_eq!(&custom.holidays().names()[n..], ["streaming_day"]);
        let days = |s: &FeatureSpace, p: &UserProfile| {
            let c = s.context(p, &ctx);
            let i = s
                .dense_names()
                .iter()
                .position(|n| n == "ctx.days_to_holiday");
            let offset = s
                .dense_names()
                .iter()
                .position(|n| n.starts_with("ctx."))
                .unwrap();
            (c.dense[i.unwrap() - offset], c.holiday)
        };
        assert_eq!(
            days(&space, &profile),
            (6.0 / 30.0, builtin_ids.id("thanksgiving"))
        );
        assert_eq!(
            days(&custom, &profile),
            (2.0 / 30.0, custom.holidays().id("streaming_day"))
        );
        // NZ is southern in the custom calendar only; unknown countries default to northern.
        let mut nz = space.vocabularies().clone();
        nz.countries = Vocabulary::new(["NZ"]);
        let mut p = profile.clone();
        p.country = 1;
        let spring = |s: &FeatureSpace| {
            let c = s.context(&p, &ctx);
            let offset = s
                .dense_names()
                .iter()
                .position(|n| n.starts_with("ctx."))
                .unwrap();
            let i = s
                .dense_names()
                .iter()
                .position(|n| n == "ctx.season=spring")
                .unwrap();
            c.dense[i - offset]
        };
        assert_eq!(spring(&FeatureSpace::new(nz.clone(), space.config())), 0.0);
        assert_eq!(
            spring(&FeatureSpace::with_calendar(nz, space.config(), cal)),
            1.0
        );
    }

    proptest! {
        /// No feature reads the future: events at or after the request time change nothing.
        #[test]
        fn no_feature_reads_the_future(
            past in proptest::collection::vec((0u32..2, 0i64..1_000, 1u32..7_000, 0.0f32..=1.0), 0..20),
            future in proptest::collection::vec((0u32..2, 1_000i64..5_000, 1u32..7_000, 0.0f32..=1.0), 1..10),
            index in 0u32..2,
        ) {
            let (space, profile, media) = tiny();
            let mk = |v: &[(u32, i64, u32, f32)]| v.iter().enumerate().map(|(i, &(m, t, w, f))| play(m, t, i as u64 % 3, w, f)).collect::<Vec<_>>();
            let ctx = Context::new(Device::Desktop, 1_000, 0).unwrap();
            let only_past = History::new(mk(&past));
            let mut all = mk(&past);
            all.extend(mk(&future));
            let with_future = History::new(all);
            let a = space.compute(&profile, &only_past, &media, index, MediaStats::default(), &ctx);
            let b = space.compute(&profile, &with_future, &media, index, MediaStats::default(), &ctx);
            prop_assert_eq!(a, b);
        }
    }
}
