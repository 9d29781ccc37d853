//! The entities of a synthetic world: the vocabularies (genres, languages, countries, holidays,
//! tags, people), the catalog (movies and series of episodes) and the users, each with the
//! hidden parameters the behaviour model draws from.
//!
//! Every title draws from its own random stream `(seed, TITLES, title index)` and every user
//! from `(seed, USERS, user id)`, so users can be generated in any order, in chunks and in
//! parallel with identical results. The catalog is small enough to build up front; users are
//! built chunk by chunk by the driver ([`crate::sim`]).
//!
//! ```
//! use edgerec_data::world::{Catalog, WorldConfig, Vocab};
//! let cfg = WorldConfig { users: 10, items: 200, days: 7, seed: 1, start: 1_761_955_200 };
//! let vocab = Vocab::new(&cfg);
//! let catalog = Catalog::generate(&cfg, &vocab, |_, _| Ok(()))?;
//! assert_eq!(catalog.items.len(), 200);
//! let user = edgerec_data::world::generate_user(&cfg, &vocab, 3);
//! assert_eq!(user.row.user_id, 3);
//! # Ok::<(), anyhow::Error>(())
//! ```

use anyhow::Result;
use edgerec::calendar::{self, COUNTRIES, Country};
use serde::{Deserialize, Serialize};

use crate::rng::{AliasTable, Rng};
use crate::schema::{self, Maturity, MediaKind, ReleaseType, maturity_limit};

/// Dimension of the hidden user and item taste vectors.
pub const LATENT_DIM: usize = 16;
/// Seconds per day.
pub const DAY: i64 = 86_400;
/// Seconds per (Julian) year.
pub const YEAR: i64 = 31_557_600;
/// The default start of the simulated window: 2025-11-01T00:00:00Z (Halloween just past,
/// Thanksgiving, Diwali's aftermath and the run-up to Christmas ahead).
pub const DEFAULT_START: i64 = 1_761_955_200;

/// Random-stream domains, so entity ids of different kinds never share a stream.
pub mod domain {
    /// World-level draws (genre centroids, tag directions).
    pub const WORLD: u64 = 1;
    /// One stream per title (movie or series).
    pub const TITLES: u64 = 2;
    /// One stream per user's profile and hidden tastes.
    pub const USERS: u64 = 3;
    /// One stream per user's behaviour over the window.
    pub const SESSIONS: u64 = 4;
}

/// Genre names, in the order of every per-genre vector (also written to `world.json`).
pub const GENRES: [&str; 18] = [
    "Action",
    "Adventure",
    "Animation",
    "Children",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Family",
    "Fantasy",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
];
/// Number of genres.
pub const N_GENRES: usize = GENRES.len();
/// Share of titles with each primary genre (relative weights).
const GENRE_WEIGHTS: [f64; N_GENRES] = [
    8.0, 5.0, 3.0, 3.0, 10.0, 6.0, 3.0, 12.0, 4.0, 4.0, 5.0, 1.5, 3.0, 6.0, 4.0, 7.0, 1.5, 1.0,
];

/// Index of a genre name in [`GENRES`].
pub fn genre_index(name: &str) -> Option<usize> {
    GENRES.iter().position(|g| *g == name)
}

/// Genre indices used by the behaviour model.
pub mod g {
    #![allow(missing_docs)]
    pub const ACTION: usize = 0;
    pub const ADVENTURE: usize = 1;
    pub const ANIMATION: usize = 2;
    pub const CHILDREN: usize = 3;
    pub const COMEDY: usize = 4;
    pub const CRIME: usize = 5;
    pub const DOCUMENTARY: usize = 6;
    pub const DRAMA: usize = 7;
    pub const FAMILY: usize = 8;
    pub const FANTASY: usize = 9;
    pub const HORROR: usize = 10;
    pub const MUSICAL: usize = 11;
    pub const MYSTERY: usize = 12;
    pub const ROMANCE: usize = 13;
    pub const SCI_FI: usize = 14;
    pub const THRILLER: usize = 15;
    pub const WAR: usize = 16;
    pub const WESTERN: usize = 17;
}

/// Bit mask of the kids' genres (Animation, Children, Family).
pub const KIDS_GENRES: u32 = (1 << g::ANIMATION) | (1 << g::CHILDREN) | (1 << g::FAMILY);

/// Original languages of titles and profile languages (ISO 639-1), in index order.
pub const LANGUAGES: [&str; 8] = ["en", "es", "fr", "de", "pt", "hi", "ja", "ko"];
/// Share of titles in each language.
const LANGUAGE_WEIGHTS: [f64; 8] = [55.0, 8.0, 6.0, 5.0, 4.0, 8.0, 7.0, 7.0];

/// Index of a language code in [`LANGUAGES`].
pub fn language_index(code: &str) -> Option<usize> {
    LANGUAGES.iter().position(|l| *l == code)
}

/// Countries a title of each language comes from, with shares.
fn origin_countries(lang: usize) -> &'static [(&'static str, f64)] {
    match LANGUAGES[lang] {
        "en" => &[("US", 0.75), ("GB", 0.2), ("AU", 0.05)],
        "es" => &[("ES", 0.5), ("MX", 0.5)],
        "fr" => &[("FR", 1.0)],
        "de" => &[("DE", 1.0)],
        "pt" => &[("BR", 1.0)],
        "hi" => &[("IN", 1.0)],
        "ja" => &[("JP", 1.0)],
        _ => &[("KR", 1.0)],
    }
}

/// Share of users in each country (countries of the core calendar not listed get 1).
const COUNTRY_WEIGHTS: [(&str, f64); 11] = [
    ("US", 28.0),
    ("IN", 14.0),
    ("BR", 10.0),
    ("GB", 8.0),
    ("DE", 8.0),
    ("FR", 7.0),
    ("MX", 7.0),
    ("ES", 5.0),
    ("JP", 5.0),
    ("KR", 4.0),
    ("AU", 4.0),
];

/// Relative share of users in a country (1 for calendar countries not listed).
pub fn country_user_weight(code: &str) -> f64 {
    COUNTRY_WEIGHTS
        .iter()
        .find(|(c, _)| *c == code)
        .map_or(1.0, |(_, w)| *w)
}

/// A random noun of the title vocabulary, lowercase (unrelated search noise).
pub fn random_word(rng: &mut Rng) -> &'static str {
    NOUNS[rng.index(NOUNS.len())]
}

/// Time zones of a country's users (fixed offsets in minutes, with shares); countries with one
/// zone use the calendar's typical offset.
fn time_zones(c: &Country) -> Vec<(i32, f64)> {
    match c.code {
        "US" => vec![(-300, 0.47), (-360, 0.29), (-420, 0.07), (-480, 0.17)],
        "MX" => vec![(-360, 0.8), (-420, 0.2)],
        "AU" => vec![(600, 0.75), (570, 0.1), (480, 0.15)],
        "BR" => vec![(-180, 0.9), (-240, 0.1)],
        _ => vec![(c.utc_offset_minutes, 1.0)],
    }
}

/// Lowercase content tags other than holidays; each has a hidden direction in taste space, so
/// tags say something about who likes a title.
pub const TAGS: [&str; 30] = [
    "based-on-a-true-story",
    "twist-ending",
    "feel-good",
    "dark",
    "slow-burn",
    "ensemble-cast",
    "award-winner",
    "cult-classic",
    "visually-stunning",
    "dialogue-driven",
    "coming-of-age",
    "family-drama",
    "friendship",
    "revenge",
    "heist",
    "road-trip",
    "time-travel",
    "space",
    "dystopia",
    "superhero",
    "zombies",
    "vampires",
    "detective",
    "courtroom",
    "sports",
    "music",
    "small-town",
    "period-piece",
    "remake",
    "true-crime",
];

/// Relative weight of titles tagged for a holiday, by holiday name (others get 0.5).
fn holiday_tag_weight(name: &str) -> f64 {
    match name {
        "christmas" => 10.0,
        "halloween" => 6.0,
        "valentines" => 3.0,
        "thanksgiving" => 2.0,
        "new_year" => 2.0,
        "easter" => 1.5,
        "diwali" => 2.0,
        "holi" => 1.0,
        "carnival" => 1.0,
        "day_of_the_dead" => 1.0,
        "chuseok" => 1.0,
        "seollal" => 1.0,
        _ => 0.5,
    }
}

/// Whether a holiday tag fits a title with these genres (Halloween needs horror or family
/// fare, Valentine's romance or comedy).
fn holiday_fits(name: &str, genres: u32) -> bool {
    let has = |g: usize| genres & (1 << g) != 0;
    match name {
        "halloween" | "day_of_the_dead" => {
            has(g::HORROR) || has(g::COMEDY) || has(g::FANTASY) || genres & KIDS_GENRES != 0
        }
        "valentines" => has(g::ROMANCE) || has(g::COMEDY),
        _ => !has(g::HORROR) && !has(g::WAR),
    }
}

const ADJECTIVES: [&str; 64] = [
    "silent",
    "golden",
    "broken",
    "hidden",
    "last",
    "burning",
    "frozen",
    "lost",
    "wild",
    "dark",
    "bright",
    "crimson",
    "silver",
    "hollow",
    "quiet",
    "endless",
    "secret",
    "savage",
    "gentle",
    "iron",
    "velvet",
    "midnight",
    "distant",
    "fallen",
    "restless",
    "electric",
    "paper",
    "glass",
    "northern",
    "southern",
    "little",
    "final",
    "crooked",
    "shining",
    "bitter",
    "sweet",
    "lonely",
    "wicked",
    "brave",
    "eternal",
    "forgotten",
    "scarlet",
    "wandering",
    "stolen",
    "twisted",
    "blue",
    "green",
    "black",
    "white",
    "hungry",
    "sleeping",
    "falling",
    "rising",
    "open",
    "closed",
    "young",
    "old",
    "strange",
    "perfect",
    "dangerous",
    "lucky",
    "blind",
    "royal",
    "crystal",
];

const NOUNS: [&str; 96] = [
    "river",
    "harbour",
    "kingdom",
    "garden",
    "storm",
    "mirror",
    "city",
    "road",
    "house",
    "forest",
    "ocean",
    "mountain",
    "island",
    "desert",
    "shadow",
    "light",
    "fire",
    "winter",
    "summer",
    "heart",
    "dream",
    "promise",
    "secret",
    "letter",
    "bridge",
    "tower",
    "station",
    "empire",
    "voyage",
    "witness",
    "stranger",
    "detective",
    "hunter",
    "soldier",
    "queen",
    "king",
    "thief",
    "doctor",
    "teacher",
    "pilot",
    "ghost",
    "dragon",
    "wolf",
    "fox",
    "raven",
    "tiger",
    "horse",
    "star",
    "moon",
    "sun",
    "planet",
    "signal",
    "machine",
    "code",
    "game",
    "song",
    "dance",
    "festival",
    "wedding",
    "funeral",
    "journey",
    "escape",
    "return",
    "legacy",
    "border",
    "frontier",
    "village",
    "valley",
    "canyon",
    "lighthouse",
    "orchard",
    "vineyard",
    "circus",
    "carnival",
    "academy",
    "hospital",
    "prison",
    "courtroom",
    "newsroom",
    "kitchen",
    "bakery",
    "library",
    "museum",
    "theatre",
    "cinema",
    "train",
    "ship",
    "submarine",
    "rocket",
    "compass",
    "map",
    "key",
    "crown",
    "sword",
    "shield",
    "knight",
];

const FIRST_NAMES: [&str; 60] = [
    "Ada", "Ben", "Clara", "Daniel", "Elena", "Felix", "Grace", "Hugo", "Iris", "Jonas", "Keiko",
    "Liam", "Maya", "Noah", "Olivia", "Pablo", "Quinn", "Rosa", "Samuel", "Tara", "Ulrich", "Vera",
    "William", "Ximena", "Yuki", "Zoe", "Arjun", "Beatriz", "Chloe", "Diego", "Emma", "Farah",
    "Gabriel", "Hana", "Ivan", "Julia", "Kenji", "Lucia", "Mateo", "Nadia", "Oscar", "Priya",
    "Rafael", "Sofia", "Tomas", "Uma", "Victor", "Wen", "Yara", "Jin", "Amelie", "Bruno",
    "Camille", "Dev", "Eva", "Finn", "Greta", "Hiro", "Ines", "Leo",
];

const LAST_NAMES: [&str; 60] = [
    "Moreau", "Cole", "Tanaka", "Kim", "Garcia", "Silva", "Schmidt", "Dubois", "Sharma", "Park",
    "Rossi", "Novak", "Walker", "Hughes", "Lopez", "Martin", "Fischer", "Sato", "Lee", "Patel",
    "Costa", "Weber", "Bernard", "Reyes", "Kowalski", "Jensen", "Okafor", "Haddad", "Nguyen",
    "Ito", "Choi", "Santos", "Becker", "Laurent", "Mehta", "Yoon", "Ortiz", "Hansen", "Murphy",
    "Byrne", "Keller", "Fontaine", "Rao", "Han", "Diaz", "Ferreira", "Wagner", "Girard", "Iyer",
    "Jung", "Morales", "Almeida", "Koch", "Roux", "Nair", "Shin", "Vargas", "Lima", "Hoffmann",
    "Blanc",
];

const STUDIOS: [&str; 8] = [
    "Northlight Pictures",
    "Bluefield Studios",
    "Crown & Anchor Films",
    "Meridian Entertainment",
    "Silver Fern Pictures",
    "Red Lantern Films",
    "Atlas Pictures",
    "Harbor Light Studios",
];
const STREAMERS: [&str; 2] = ["Streamhouse Originals", "Parallax Originals"];
const NETWORKS: [&str; 8] = [
    "Channel Nine",
    "Northern Broadcasting",
    "Coastline TV",
    "Metro Network",
    "Sunrise Television",
    "Kanto Broadcasting",
    "Seoul Vision",
    "Rede Aurora",
];

/// The display name of person `p` (actors, directors and composers share one id space, so
/// every person has a unique name). Deterministic; no randomness.
pub fn person_name(p: u32) -> String {
    let block = (FIRST_NAMES.len() * LAST_NAMES.len()) as u64;
    let p = p as u64;
    // A bijection of each block so consecutive ids do not share a first or last name.
    let k = (p % block) * 2_029 % block;
    let first = FIRST_NAMES[(k % FIRST_NAMES.len() as u64) as usize];
    let last = LAST_NAMES[(k / FIRST_NAMES.len() as u64) as usize];
    match p / block {
        0 => format!("{first} {last}"),
        m if m <= 26 => format!("{first} {}. {last}", (b'A' + (m - 1) as u8) as char),
        m => format!("{first} {last} {}", m - 25),
    }
}

/// The lowercase search tokens of a person's name (initials dropped).
pub fn name_tokens(name: &str) -> impl Iterator<Item = String> + '_ {
    name.split(' ')
        .filter(|w| !w.ends_with('.'))
        .map(str::to_lowercase)
}

/// The sizes and seed of a world: everything that determines its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorldConfig {
    /// Number of users (ids `0..users`).
    pub users: u32,
    /// Number of items (movies and episodes, ids `0..items`).
    pub items: u32,
    /// Length of the simulated window in days.
    pub days: u32,
    /// Seed of every random stream.
    pub seed: u64,
    /// Start of the window, unix seconds.
    pub start: i64,
}

impl WorldConfig {
    /// End of the window (exclusive), unix seconds.
    pub fn end(&self) -> i64 {
        self.start + self.days as i64 * DAY
    }
}

/// World-level vocabularies and hidden directions derived from the seed.
#[derive(Debug, Clone)]
pub struct Vocab {
    /// Holiday names of every calendar country, in first-seen order (bit `i` of
    /// [`ItemModel::holidays`] is `holidays[i]`); matches `edgerec::features::holiday_vocabulary`.
    pub holidays: Vec<&'static str>,
    /// Hidden centre of each genre in taste space.
    pub genre_centroids: Vec<[f32; LATENT_DIM]>,
    /// Hidden direction of each tag of [`TAGS`].
    pub tag_directions: Vec<[f32; LATENT_DIM]>,
    /// Actors per language: person ids `actor_start[l]..actor_start[l + 1]`.
    pub actor_start: Vec<u32>,
    /// Popularity draw of actors within each language pool (Zipf-like).
    pub actor_tables: Vec<AliasTable>,
    /// First director person id, and count.
    pub directors: (u32, u32),
    /// First composer person id, and count.
    pub composers: (u32, u32),
    /// User share of each calendar country, in [`COUNTRIES`] order.
    pub country_table: AliasTable,
}

fn latent(rng: &mut Rng, sigma: f64) -> [f32; LATENT_DIM] {
    std::array::from_fn(|_| rng.gauss(0.0, sigma) as f32)
}

impl Vocab {
    /// The vocabularies of a world with this configuration.
    pub fn new(cfg: &WorldConfig) -> Vocab {
        let mut holidays: Vec<&'static str> = Vec::new();
        for c in COUNTRIES {
            for h in c.holidays {
                if !holidays.contains(&h.name) {
                    holidays.push(h.name);
                }
            }
        }
        holidays.truncate(64);
        let mut rng = Rng::stream(cfg.seed, domain::WORLD, 0);
        let genre_centroids = (0..N_GENRES).map(|_| latent(&mut rng, 0.5)).collect();
        let tag_directions = (0..TAGS.len()).map(|_| latent(&mut rng, 0.5)).collect();
        // About one actor per two titles, at least 40 per language.
        let titles_estimate = (cfg.items as f64 / 1.6).max(50.0);
        let total_w: f64 = LANGUAGE_WEIGHTS.iter().sum();
        let mut actor_start = vec![0u32];
        let mut actor_tables = Vec::new();
        for w in LANGUAGE_WEIGHTS {
            let n = ((titles_estimate * 0.6 * w / total_w) as u32).max(40);
            actor_start.push(actor_start.last().copied().unwrap_or(0) + n);
            let weights: Vec<f64> = (0..n).map(|r| 1.0 / (r as f64 + 8.0).powf(0.9)).collect();
            actor_tables.push(AliasTable::new(&weights).expect("positive weights"));
        }
        let people = actor_start.last().copied().unwrap_or(0);
        let n_directors = ((titles_estimate * 0.3) as u32).max(30);
        let n_composers = ((titles_estimate * 0.05) as u32).max(20);
        let weights: Vec<f64> = COUNTRIES
            .iter()
            .map(|c| country_user_weight(c.code))
            .collect();
        Vocab {
            holidays,
            genre_centroids,
            tag_directions,
            actor_start,
            actor_tables,
            directors: (people, n_directors),
            composers: (people + n_directors, n_composers),
            country_table: AliasTable::new(&weights).expect("positive weights"),
        }
    }

    /// Index of a holiday name.
    pub fn holiday_index(&self, name: &str) -> Option<usize> {
        self.holidays.iter().position(|h| *h == name)
    }

    fn actor(&self, rng: &mut Rng, lang: usize) -> u32 {
        self.actor_start[lang] + self.actor_tables[lang].sample(rng) as u32
    }
}

/// The main shares of entity generation (written to `world.json`; the finer distributions
/// are documented where they are drawn in this module).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Generation {
    /// Share of titles that are series (of episodes) rather than movies.
    pub series_share: f64,
    /// Share of titles first added to the platform during the window (cold items).
    pub cold_title_share: f64,
    /// Share of running series whose latest season comes out during the window.
    pub new_season_share: f64,
    /// Share of titles tagged for a holiday.
    pub holiday_tag_share: f64,
    /// Share of users who sign up during the window (cold users).
    pub cold_user_share: f64,
    /// Share of kids' profiles (4–12 years).
    pub kids_share: f64,
    /// Share of teen profiles (13–17 years).
    pub teen_share: f64,
    /// Share of users who picked genres at onboarding.
    pub onboarding_share: f64,
}

/// The generation shares every world uses.
pub const GENERATION: Generation = Generation {
    series_share: 0.07,
    cold_title_share: 0.06,
    new_season_share: 0.12,
    holiday_tag_share: 0.06,
    cold_user_share: 0.1,
    kids_share: 0.09,
    teen_share: 0.06,
    onboarding_share: 0.8,
};

/// Most actors an item lists.
pub const MAX_ACTORS: usize = 6;
/// Most words in a generated title.
pub const MAX_TITLE_WORDS: usize = 3;

/// The compact, hidden-parameter view of one item that the behaviour model and the truth
/// utility read ([`crate::truth::utility`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ItemModel {
    /// Hidden taste vector.
    pub latent: [f32; LATENT_DIM],
    /// Hidden quality, about N(0, 1); the public rating is a noisy view of it.
    pub quality: f32,
    /// Hidden log-popularity (mainstream appeal).
    pub popularity: f32,
    /// Bit mask over [`GENRES`].
    pub genres: u32,
    /// Bit mask over [`Vocab::holidays`].
    pub holidays: u64,
    /// Cast as person ids (`u32::MAX` pads).
    pub actors: [u32; MAX_ACTORS],
    /// Index into [`LANGUAGES`].
    pub language: u8,
    /// Maturity rating.
    pub maturity: Maturity,
    /// Movie or episode.
    pub kind: MediaKind,
    /// Running time in seconds.
    pub duration_s: u32,
    /// First release, unix seconds.
    pub release_time: i64,
    /// Availability on the platform, unix seconds.
    pub added_time: i64,
    /// The title (movie or series) this item belongs to.
    pub title: u32,
    /// Series id (episodes) or `u32::MAX` (movies).
    pub series: u32,
    /// 0-based position of an episode within its series (all seasons); 0 for movies.
    pub episode_index: u16,
    /// Title words as indices: ADJECTIVES below 1000, NOUNS from 1000 (`u16::MAX` pads).
    pub words: [u16; MAX_TITLE_WORDS],
}

impl ItemModel {
    /// Whether the item has genre `g`.
    pub fn has_genre(&self, g: usize) -> bool {
        self.genres & (1 << g) != 0
    }

    /// The lowercase words of the (series) title.
    pub fn title_words(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.words.iter().filter(|&&w| w != u16::MAX).map(|&w| {
            if w < 1000 {
                ADJECTIVES[w as usize]
            } else {
                NOUNS[(w - 1000) as usize]
            }
        })
    }

    /// The cast as person ids.
    pub fn actor_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.actors.iter().copied().filter(|&a| a != u32::MAX)
    }
}

/// A movie or a series: the unit the logging policy recommends.
#[derive(Debug, Clone, PartialEq)]
pub struct TitleModel {
    /// First item id of the title (the movie, or the series' first episode).
    pub first_item: u32,
    /// Number of items (1 for movies).
    pub n_items: u32,
    /// Movie or series (of episodes).
    pub kind: MediaKind,
    /// Maturity rating.
    pub maturity: Maturity,
    /// Bit mask over [`GENRES`].
    pub genres: u32,
    /// Hidden log-popularity.
    pub popularity: f32,
    /// When the first item became available.
    pub first_added: i64,
}

/// A catalog: items (ids are positions) and the titles they group into.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// Items by id.
    pub items: Vec<ItemModel>,
    /// Titles by index; a title's items are consecutive ids.
    pub titles: Vec<TitleModel>,
    /// Number of series (series ids are `0..series`).
    pub series: u32,
    /// First item id of each series, by series id.
    pub series_first_item: Vec<u32>,
}

/// A row of `truth/items`: an item's hidden parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemTruth {
    /// The item.
    pub item_id: u32,
    /// Hidden taste vector ([`LATENT_DIM`] values).
    pub latent: Vec<f32>,
    /// Hidden quality.
    pub quality: f32,
    /// Hidden log-popularity.
    pub popularity: f32,
}

struct TitleDraft {
    kind: MediaKind,
    genres: u32,
    language: usize,
    country: &'static str,
    latent: [f32; LATENT_DIM],
    quality: f64,
    popularity: f64,
    maturity: Maturity,
    actors: [u32; MAX_ACTORS],
    directors: Vec<u32>,
    composer: Option<u32>,
    release_type: ReleaseType,
    distributor: Option<&'static str>,
    tags: Vec<String>,
    holidays: u64,
    words: [u16; MAX_TITLE_WORDS],
    title: String,
    /// Seasons: (release time, episode count).
    seasons: Vec<(i64, u16)>,
    movie_duration: u32,
    episode_duration: u32,
}

fn pick_genres(rng: &mut Rng) -> u32 {
    let primary = rng.weighted(&GENRE_WEIGHTS);
    let mut mask = 1u32 << primary;
    let extra = rng.weighted(&[0.4, 0.4, 0.2]);
    for _ in 0..extra {
        for _ in 0..4 {
            let g = rng.weighted(&GENRE_WEIGHTS);
            let m = mask | (1 << g);
            let kids_and_dark = m & KIDS_GENRES != 0 && m & ((1 << g::HORROR) | (1 << g::WAR)) != 0;
            if m != mask && !kids_and_dark && g != g::DOCUMENTARY && primary != g::DOCUMENTARY {
                mask = m;
                break;
            }
        }
    }
    mask
}

fn pick_maturity(rng: &mut Rng, genres: u32) -> Maturity {
    let w: [f64; 5] = if genres & (1 << g::CHILDREN) != 0 {
        [0.6, 0.4, 0.0, 0.0, 0.0]
    } else if genres & KIDS_GENRES != 0 {
        [0.35, 0.5, 0.15, 0.0, 0.0]
    } else if genres & (1 << g::HORROR) != 0 {
        [0.0, 0.0, 0.3, 0.62, 0.08]
    } else if genres & (1 << g::DOCUMENTARY) != 0 {
        [0.25, 0.35, 0.3, 0.1, 0.0]
    } else {
        [0.04, 0.18, 0.43, 0.32, 0.03]
    };
    Maturity::ALL[rng.weighted(&w)]
}

fn capitalise(w: &str) -> String {
    let mut c = w.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn make_title(rng: &mut Rng) -> ([u16; MAX_TITLE_WORDS], String) {
    let adj = rng.index(ADJECTIVES.len()) as u16;
    let n1 = 1000 + rng.index(NOUNS.len()) as u16;
    let n2 = 1000 + rng.index(NOUNS.len()) as u16;
    let word = |w: u16| {
        capitalise(if w < 1000 {
            ADJECTIVES[w as usize]
        } else {
            NOUNS[(w - 1000) as usize]
        })
    };
    let p = u16::MAX;
    match rng.weighted(&[0.35, 0.2, 0.15, 0.15, 0.15]) {
        0 => ([adj, n1, p], format!("The {} {}", word(adj), word(n1))),
        1 => ([adj, n1, p], format!("{} {}", word(adj), word(n1))),
        2 => ([n1, n2, p], format!("{} of the {}", word(n1), word(n2))),
        3 => ([n1, p, p], format!("The {}", word(n1))),
        _ => (
            [n1, adj, n2],
            format!("{} and the {} {}", word(n1), word(adj), word(n2)),
        ),
    }
}

impl Catalog {
    /// Generates the catalog of `cfg.items` items, calling `emit` with each item's row and
    /// hidden parameters in id order. Titles are drawn until the items are used up (the last
    /// series may be cut short). Cost: O(items).
    pub fn generate(
        cfg: &WorldConfig,
        vocab: &Vocab,
        mut emit: impl FnMut(schema::Item, ItemTruth) -> Result<()>,
    ) -> Result<Catalog> {
        let mut items = Vec::with_capacity(cfg.items as usize);
        let mut titles = Vec::new();
        let mut series = 0u32;
        let mut series_first_item = Vec::new();
        while (items.len() as u32) < cfg.items {
            let t = titles.len() as u32;
            let left = cfg.items - items.len() as u32;
            let mut rng = Rng::stream(cfg.seed, domain::TITLES, t as u64);
            let d = draft_title(cfg, vocab, &mut rng);
            let first_item = items.len() as u32;
            let series_id = (d.kind == MediaKind::Episode).then_some(series);
            let mut n = 0u32;
            let mut first_added = i64::MAX;
            let mut episode_index = 0u16;
            'seasons: for (s, &(season_release, episodes)) in d.seasons.iter().enumerate() {
                for e in 0..episodes {
                    if n == left {
                        break 'seasons;
                    }
                    let place = ItemPlace {
                        item_id: first_item + n,
                        title: t,
                        series_id,
                        season: s,
                        season_release,
                        episode: e,
                        episodes,
                        episode_index,
                    };
                    let (model, row) = draw_item(&d, &mut rng, &place);
                    first_added = first_added.min(model.added_time);
                    let truth = ItemTruth {
                        item_id: place.item_id,
                        latent: model.latent.to_vec(),
                        quality: model.quality,
                        popularity: model.popularity,
                    };
                    emit(row, truth)?;
                    items.push(model);
                    n += 1;
                    episode_index = episode_index.saturating_add(1);
                }
            }
            if d.kind == MediaKind::Episode {
                series += 1;
                series_first_item.push(first_item);
            }
            titles.push(TitleModel {
                first_item,
                n_items: n,
                kind: d.kind,
                maturity: d.maturity,
                genres: d.genres,
                popularity: d.popularity as f32,
                first_added,
            });
        }
        Ok(Catalog {
            items,
            titles,
            series,
            series_first_item,
        })
    }
}

/// Where an item sits in its title.
struct ItemPlace {
    /// The item's id.
    item_id: u32,
    /// The title's index.
    title: u32,
    /// Series id (episodes) or `None` (movies).
    series_id: Option<u32>,
    /// 0-based season.
    season: usize,
    /// When the season (or the movie) was released.
    season_release: i64,
    /// 0-based episode within the season (0 for movies).
    episode: u16,
    /// Episodes in the season (1 for movies).
    episodes: u16,
    /// 0-based position within the series (all seasons); 0 for movies.
    episode_index: u16,
}

/// What varies between the items of one title: availability, running time and hidden
/// parameters.
struct ItemDraw {
    added: i64,
    release: i64,
    duration: u32,
    quality: f64,
    popularity: f64,
    latent: [f32; LATENT_DIM],
}

/// Draws the item at `at` of title `d`: its hidden model and its `items` row.
fn draw_item(d: &TitleDraft, rng: &mut Rng, at: &ItemPlace) -> (ItemModel, schema::Item) {
    let v = draw_variation(d, rng, at);
    let model = ItemModel {
        latent: v.latent,
        quality: v.quality as f32,
        popularity: v.popularity as f32,
        genres: d.genres,
        holidays: d.holidays,
        actors: d.actors,
        language: d.language as u8,
        maturity: d.maturity,
        kind: d.kind,
        duration_s: v.duration,
        release_time: v.release,
        added_time: v.added,
        title: at.title,
        series: at.series_id.unwrap_or(u32::MAX),
        episode_index: at.episode_index,
        words: d.words,
    };
    let rating = (!rng.bernoulli(0.03)).then(|| {
        ((6.4 + 1.1 * v.quality + rng.gauss(0.0, 0.6)).clamp(1.0, 10.0) * 10.0).round() as f32
            / 10.0
    });
    let revenue = (d.kind == MediaKind::Movie
        && d.release_type == ReleaseType::Theatrical
        && !rng.bernoulli(0.15))
    .then(|| {
        (16.5 + 1.1 * v.popularity + 0.3 * v.quality + rng.gauss(0.0, 0.8))
            .exp()
            .round()
    });
    let row = item_row(d, at, &model, rating, revenue);
    (model, row)
}

/// Availability, running time and hidden parameters of the item at `at`: a movie takes its
/// title's; episodes vary around the series'.
fn draw_variation(d: &TitleDraft, rng: &mut Rng, at: &ItemPlace) -> ItemDraw {
    let (s, e, episodes) = (at.season, at.episode, at.episodes);
    let (added, duration, quality, popularity, latent);
    if d.kind == MediaKind::Movie {
        added = at.season_release;
        duration = d.movie_duration;
        quality = d.quality;
        popularity = d.popularity;
        latent = d.latent;
    } else {
        // Weekly episodes on TV, whole seasons at once on streaming.
        added = if d.release_type == ReleaseType::Tv {
            at.season_release + e as i64 * 7 * DAY
        } else {
            at.season_release
        };
        duration = ((d.episode_duration as f64) * rng.range_f64(0.93, 1.07))
            .round()
            .max(60.0) as u32;
        // Pilots and finales are stronger; interest fades over seasons.
        let arc = if e == 0 || e + 1 == episodes {
            0.2
        } else {
            0.0
        };
        quality = d.quality + rng.gauss(arc, 0.25);
        popularity = d.popularity - 0.15 * s as f64 - 0.02 * e as f64;
        latent = d.latent.map(|x| x + rng.gauss(0.0, 0.05) as f32);
    }
    let release = match (d.kind, d.release_type) {
        (MediaKind::Movie, ReleaseType::Theatrical) => {
            added - rng.range_f64(45.0, 150.0) as i64 * DAY
        }
        (MediaKind::Movie, _) => added,
        (_, _) => added,
    };
    ItemDraw {
        added,
        release,
        duration,
        quality,
        popularity,
        latent,
    }
}

/// The public `items` row of the item at `at` of title `d` with hidden model `model`.
fn item_row(
    d: &TitleDraft,
    at: &ItemPlace,
    model: &ItemModel,
    public_rating: Option<f32>,
    revenue_usd: Option<f64>,
) -> schema::Item {
    let (s, e) = (at.season, at.episode);
    schema::Item {
        item_id: at.item_id,
        kind: d.kind,
        series_id: at.series_id,
        season: at.series_id.map(|_| s as u16 + 1),
        episode: at.series_id.map(|_| e + 1),
        title: match at.series_id {
            Some(_) => format!("{} S{}E{}", d.title, s + 1, e + 1),
            None => d.title.clone(),
        },
        duration_s: model.duration_s,
        genres: GENRES
            .iter()
            .enumerate()
            .filter(|(i, _)| d.genres & (1 << i) != 0)
            .map(|(_, g)| g.to_string())
            .collect(),
        tags: d.tags.clone(),
        actors: model.actor_ids().map(person_name).collect(),
        directors: d.directors.iter().map(|&p| person_name(p)).collect(),
        composer: d.composer.map(person_name),
        distributor: d.distributor.map(str::to_string),
        original_language: LANGUAGES[d.language].to_string(),
        country: d.country.to_string(),
        release_time: model.release_time,
        release_type: d.release_type,
        added_time: model.added_time,
        maturity: d.maturity,
        public_rating,
        revenue_usd,
    }
}

/// Draws one title from its stream, in this order: kind, genres, origin, taste and quality,
/// cast, popularity, maturity, crew, release, tags (and holiday tag), name, release schedule
/// and running times.
fn draft_title(cfg: &WorldConfig, vocab: &Vocab, rng: &mut Rng) -> TitleDraft {
    let kind = if rng.bernoulli(GENERATION.series_share) {
        MediaKind::Episode
    } else {
        MediaKind::Movie
    };
    let genres = pick_genres(rng);
    let language = rng.weighted(&LANGUAGE_WEIGHTS);
    let origins = origin_countries(language);
    let country = origins[rng.weighted(&origins.iter().map(|o| o.1).collect::<Vec<_>>())].0;
    let latent = title_latent(rng, vocab, genres);
    let quality = rng.normal();
    let (actors, n_actors, star) = pick_cast(rng, vocab, language);
    let popularity = rng.gauss(0.0, 0.8)
        + 0.3 * quality
        + 0.4 * star / n_actors as f64
        + if language == 0 { 0.2 } else { 0.0 };
    let maturity = pick_maturity(rng, genres);
    let (directors, composer) = pick_crew(rng, vocab);
    let (release_type, distributor) = pick_release(rng, kind);
    let mut tags = pick_tags(rng, vocab, &latent);
    let holidays = pick_holiday_tag(rng, vocab, genres, &mut tags);
    let (words, title) = make_title(rng);
    let seasons = release_schedule(cfg, rng, kind);
    let (movie_duration, episode_duration) = running_times(rng, genres);
    TitleDraft {
        kind,
        genres,
        language,
        country,
        latent,
        quality,
        popularity,
        maturity,
        actors,
        directors,
        composer,
        release_type,
        distributor,
        tags,
        holidays,
        words,
        title,
        seasons,
        movie_duration,
        episode_duration,
    }
}

/// A title's taste vector: the mean of its genres' centres plus the title's own character.
fn title_latent(rng: &mut Rng, vocab: &Vocab, genres: u32) -> [f32; LATENT_DIM] {
    let n_g = genres.count_ones() as f32;
    let mut latent = latent(rng, 0.4);
    for (gi, c) in vocab.genre_centroids.iter().enumerate() {
        if genres & (1 << gi) != 0 {
            for (x, y) in latent.iter_mut().zip(c) {
                *x += 0.8 * y / n_g;
            }
        }
    }
    latent
}

/// The cast (person ids, `u32::MAX` pads), its size and its summed star power (1 for the
/// most popular actor of a language, falling with rank).
fn pick_cast(rng: &mut Rng, vocab: &Vocab, language: usize) -> ([u32; MAX_ACTORS], usize, f64) {
    let mut actors = [u32::MAX; MAX_ACTORS];
    let n_actors = 3 + rng.index(MAX_ACTORS - 2);
    let mut star = 0.0;
    for slot in actors.iter_mut().take(n_actors) {
        // Mostly cast from the title's language; some international stars.
        let lang = if rng.bernoulli(0.85) { language } else { 0 };
        let a = vocab.actor(rng, lang);
        let rank = (a - vocab.actor_start[lang]) as f64;
        star += 1.0 / (1.0 + rank / 20.0);
        *slot = a;
    }
    (actors, n_actors, star)
}

/// One or two directors and, usually, a composer (person ids).
fn pick_crew(rng: &mut Rng, vocab: &Vocab) -> (Vec<u32>, Option<u32>) {
    let directors = (0..if rng.bernoulli(0.9) { 1 } else { 2 })
        .map(|_| vocab.directors.0 + rng.below(vocab.directors.1 as u64) as u32)
        .collect();
    let composer = rng
        .bernoulli(0.75)
        .then(|| vocab.composers.0 + rng.below(vocab.composers.1 as u64) as u32);
    (directors, composer)
}

/// How a title of `kind` is released, and by whom (a studio, streamer or network, or none).
fn pick_release(rng: &mut Rng, kind: MediaKind) -> (ReleaseType, Option<&'static str>) {
    let release_type = match kind {
        MediaKind::Movie if rng.bernoulli(0.6) => ReleaseType::Theatrical,
        MediaKind::Movie => ReleaseType::Streaming,
        _ if rng.bernoulli(0.5) => ReleaseType::Tv,
        _ => ReleaseType::Streaming,
    };
    let distributor = match release_type {
        _ if rng.bernoulli(0.1) => None,
        ReleaseType::Theatrical => Some(STUDIOS[rng.index(STUDIOS.len())]),
        ReleaseType::Streaming => Some(STREAMERS[rng.index(STREAMERS.len())]),
        ReleaseType::Tv => Some(NETWORKS[rng.index(NETWORKS.len())]),
    };
    (release_type, distributor)
}

/// Tags: the 1–3 whose hidden directions best match the title's taste, plus noise.
fn pick_tags(rng: &mut Rng, vocab: &Vocab, latent: &[f32; LATENT_DIM]) -> Vec<String> {
    let mut scored: Vec<(f64, usize)> = vocab
        .tag_directions
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let dot: f32 = d.iter().zip(latent).map(|(a, b)| a * b).sum();
            (dot as f64 * 3.0 + rng.gumbel(), i)
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored
        .iter()
        .take(1 + rng.index(3))
        .map(|&(_, i)| TAGS[i].to_string())
        .collect()
}

/// For some titles, a holiday that fits the genres, added to `tags`; returns the mask over
/// the vocabulary's holidays (0 for none).
fn pick_holiday_tag(rng: &mut Rng, vocab: &Vocab, genres: u32, tags: &mut Vec<String>) -> u64 {
    let mut holidays = 0u64;
    if rng.bernoulli(GENERATION.holiday_tag_share) {
        let w: Vec<f64> = vocab
            .holidays
            .iter()
            .map(|h| {
                if holiday_fits(h, genres) {
                    holiday_tag_weight(h)
                } else {
                    0.0
                }
            })
            .collect();
        if w.iter().any(|&x| x > 0.0) {
            let h = rng.weighted(&w);
            holidays |= 1 << h;
            tags.push(vocab.holidays[h].to_string());
        }
    }
    holidays
}

/// Release schedule as seasons of (release time, episode count): cold titles arrive during
/// the window; others before it. A movie is one "season" of one item.
fn release_schedule(cfg: &WorldConfig, rng: &mut Rng, kind: MediaKind) -> Vec<(i64, u16)> {
    let window = (cfg.days as f64 * DAY as f64).max(1.0);
    let cold = rng.bernoulli(GENERATION.cold_title_share);
    if kind == MediaKind::Movie {
        let added = if cold {
            cfg.start + rng.range_f64(0.0, window) as i64
        } else {
            let age = rng.exponential(2.0).min(8.0);
            cfg.start
                - (age * YEAR as f64) as i64
                - rng.range_f64(DAY as f64, 30.0 * DAY as f64) as i64
        };
        vec![(added, 1)]
    } else {
        let n_seasons = (1 + rng.geometric(0.45)).min(8) as usize;
        let last = if cold || rng.bernoulli(GENERATION.new_season_share) {
            // A new series, or a new season of a running one, released in the window.
            cfg.start + rng.range_f64(0.0, window) as i64
        } else {
            cfg.start - (rng.exponential(1.5) * YEAR as f64) as i64 - 14 * DAY
        };
        let n_seasons = if cold { 1 } else { n_seasons };
        (0..n_seasons)
            .map(|s| {
                let back = (n_seasons - 1 - s) as i64;
                let jitter = if back > 0 {
                    rng.range_f64(-40.0, 40.0) as i64 * DAY
                } else {
                    0
                };
                (last - back * YEAR + jitter, 6 + rng.index(8) as u16)
            })
            .collect()
    }
}

/// Typical running times, seconds, of a movie and of an episode with these genres.
fn running_times(rng: &mut Rng, genres: u32) -> (u32, u32) {
    let kids = genres & KIDS_GENRES != 0;
    let movie_duration = if genres & (1 << g::DOCUMENTARY) != 0 {
        rng.gauss(5_400.0, 1_200.0)
    } else if kids {
        rng.gauss(5_500.0, 700.0)
    } else {
        rng.gauss(6_500.0, 1_100.0)
    }
    .clamp(3_600.0, 12_000.0) as u32;
    let sitcom = genres & ((1 << g::COMEDY) | KIDS_GENRES) != 0 && rng.bernoulli(0.8);
    let episode_duration = if sitcom {
        rng.gauss(1_380.0, 150.0)
    } else {
        rng.gauss(2_800.0, 420.0)
    }
    .clamp(600.0, 4_800.0) as u32;
    (movie_duration, episode_duration)
}

/// Most favourite actors a user has.
pub const MAX_FAVOURITE_ACTORS: usize = 4;

/// The compact, hidden-parameter view of one user that the behaviour model and the truth
/// utility read.
#[derive(Debug, Clone, PartialEq)]
pub struct UserModel {
    /// The user.
    pub user_id: u32,
    /// Hidden taste vector.
    pub latent: [f32; LATENT_DIM],
    /// Affinity per genre of [`GENRES`].
    pub genre_affinity: [f32; N_GENRES],
    /// Favourite actors (person ids, `u32::MAX` pads) and the utility each adds.
    pub actors: [(u32, f32); MAX_FAVOURITE_ACTORS],
    /// Profile language, index into [`LANGUAGES`].
    pub language: u8,
    /// Index into [`COUNTRIES`].
    pub country: u8,
    /// Local time = UTC + offset.
    pub utc_offset_minutes: i32,
    /// Age in years.
    pub age: u8,
    /// Highest maturity rating the profile may see.
    pub maturity_limit: Maturity,
    /// Sign-up time, unix seconds.
    pub signup_time: i64,
    /// Onboarding genre picks (mask over [`GENRES`]).
    pub onboarding: u32,
    /// Utility lost by a title in a language the user does not speak.
    pub foreign_penalty: f32,
    /// Weight on hidden item quality.
    pub quality_weight: f32,
    /// Weight on newness.
    pub novelty_weight: f32,
    /// Weight on mainstream popularity.
    pub mainstream: f32,
    /// Pull of a series' next episode.
    pub binge: f32,
    /// Liking of episodic content over films.
    pub series_affinity: f32,
    /// Intercept of the click (play) probability.
    pub click_bias: f32,
    /// Positions examined in a row before attention halves (position-bias scale).
    pub patience: f32,
    /// Mean sessions per day.
    pub activity: f32,
    /// Device preference, in [`schema::DEVICES`] order (sums to 1).
    pub device_weights: [f32; 4],
    /// Main local hour of viewing (0–24).
    pub peak_hour: f32,
    /// Second local hour of viewing.
    pub second_hour: f32,
    /// Share of sessions around the second hour.
    pub second_share: f32,
}

/// A row of `truth/users`: a user's hidden parameters (see [`UserModel`] for each field).
#[derive(Debug, Clone, PartialEq)]
pub struct UserTruth {
    /// The user.
    pub user_id: u32,
    /// Hidden taste vector ([`LATENT_DIM`] values).
    pub latent: Vec<f32>,
    /// Per genre, in `world.json` genre order.
    pub genre_affinity: Vec<f32>,
    /// Favourite actors' names.
    pub favourite_actors: Vec<String>,
    /// Utility each favourite actor adds.
    pub actor_affinity: Vec<f32>,
    /// See [`UserModel::foreign_penalty`].
    pub foreign_penalty: f32,
    /// See [`UserModel::quality_weight`].
    pub quality_weight: f32,
    /// See [`UserModel::novelty_weight`].
    pub novelty_weight: f32,
    /// See [`UserModel::mainstream`].
    pub mainstream: f32,
    /// See [`UserModel::binge`].
    pub binge: f32,
    /// See [`UserModel::series_affinity`].
    pub series_affinity: f32,
    /// See [`UserModel::click_bias`].
    pub click_bias: f32,
    /// See [`UserModel::patience`].
    pub patience: f32,
    /// See [`UserModel::activity`].
    pub activity: f32,
    /// Per device, tv/desktop/mobile/tablet.
    pub device_weights: Vec<f32>,
    /// See [`UserModel::peak_hour`].
    pub peak_hour: f32,
    /// See [`UserModel::second_hour`].
    pub second_hour: f32,
    /// See [`UserModel::second_share`].
    pub second_share: f32,
}

impl UserModel {
    /// The `truth/users` row of this user.
    pub fn truth_row(&self) -> UserTruth {
        let fav: Vec<(u32, f32)> = self
            .actors
            .iter()
            .copied()
            .filter(|a| a.0 != u32::MAX)
            .collect();
        UserTruth {
            user_id: self.user_id,
            latent: self.latent.to_vec(),
            genre_affinity: self.genre_affinity.to_vec(),
            favourite_actors: fav.iter().map(|a| person_name(a.0)).collect(),
            actor_affinity: fav.iter().map(|a| a.1).collect(),
            foreign_penalty: self.foreign_penalty,
            quality_weight: self.quality_weight,
            novelty_weight: self.novelty_weight,
            mainstream: self.mainstream,
            binge: self.binge,
            series_affinity: self.series_affinity,
            click_bias: self.click_bias,
            patience: self.patience,
            activity: self.activity,
            device_weights: self.device_weights.to_vec(),
            peak_hour: self.peak_hour,
            second_hour: self.second_hour,
            second_share: self.second_share,
        }
    }

    /// Whether the profile is restricted (under 18).
    pub fn is_kid(&self) -> bool {
        self.maturity_limit < Maturity::Nc17
    }
}

/// A generated user: the `users` row and the hidden model.
#[derive(Debug, Clone)]
pub struct GeneratedUser {
    /// The public profile row.
    pub row: schema::User,
    /// The hidden parameters.
    pub model: UserModel,
}

/// Generates user `id` from its own stream. Cost: O(genres + devices).
pub fn generate_user(cfg: &WorldConfig, vocab: &Vocab, id: u32) -> GeneratedUser {
    let mut rng = Rng::stream(cfg.seed, domain::USERS, id as u64);
    let (ci, offset, language) = pick_locale(&mut rng, vocab);
    let country = &COUNTRIES[ci];
    let age = pick_age(&mut rng);
    let gender = ["f", "m", "x"][rng.weighted(&[0.485, 0.485, 0.03])];
    let limit = maturity_limit(age);
    let signup = pick_signup(cfg, &mut rng);
    let latent = latent(&mut rng, 0.5);
    let aff = genre_affinities(&mut rng, age, gender);
    let kid = age < 13;
    let teen = (13..18).contains(&age);
    let actors = pick_favourite_actors(&mut rng, vocab, language);
    let device_weights = pick_device_weights(&mut rng, kid, country);
    let (peak, second) = viewing_hours(&mut rng, kid, teen);
    let onboarding = pick_onboarding(&mut rng, &aff);
    let model = UserModel {
        user_id: id,
        latent,
        genre_affinity: aff,
        actors,
        language: language as u8,
        country: ci as u8,
        utc_offset_minutes: offset,
        age,
        maturity_limit: limit,
        signup_time: signup,
        onboarding,
        foreign_penalty: rng.lognormal((1.2f64).ln(), 0.5) as f32 + if kid { 0.8 } else { 0.0 },
        quality_weight: rng.gauss(0.5, 0.25).clamp(0.0, 1.2) as f32,
        novelty_weight: rng.lognormal((0.6f64).ln(), 0.5) as f32,
        mainstream: rng.gauss(0.8, 0.3).clamp(0.1, 1.6) as f32,
        binge: rng.gauss(1.8, 0.8) as f32,
        series_affinity: (rng.gauss(0.0, 0.6) + if teen { 0.3 } else { 0.0 }) as f32,
        click_bias: rng.gauss(-0.6, 0.4) as f32,
        patience: rng.lognormal((4.0f64).ln(), 0.4) as f32,
        activity: rng.lognormal((0.3f64).ln(), 0.8).min(4.0) as f32,
        device_weights,
        peak_hour: peak.rem_euclid(24.0) as f32,
        second_hour: second.rem_euclid(24.0) as f32,
        second_share: rng.range_f64(0.1, 0.35) as f32,
    };
    let row = user_row(&model, gender);
    GeneratedUser { row, model }
}

/// A user's country (index into [`COUNTRIES`]), UTC offset in minutes and profile language
/// (index into [`LANGUAGES`]).
fn pick_locale(rng: &mut Rng, vocab: &Vocab) -> (usize, i32, usize) {
    let ci = vocab.country_table.sample(rng);
    let country = &COUNTRIES[ci];
    let zones = time_zones(country);
    let offset = zones[rng.weighted(&zones.iter().map(|z| z.1).collect::<Vec<_>>())].0;
    let home = language_index(country.language).unwrap_or(0);
    let language = match country.code {
        "IN" if rng.bernoulli(0.45) => 0,
        "US" if rng.bernoulli(0.15) => 1,
        _ if rng.bernoulli(0.08) => 0,
        _ => home,
    };
    (ci, offset, language)
}

/// A user's age in years: a kid, a teen or an adult.
fn pick_age(rng: &mut Rng) -> u8 {
    let g = &GENERATION;
    match rng.weighted(&[
        g.kids_share,
        g.teen_share,
        1.0 - g.kids_share - g.teen_share,
    ]) {
        0 => 4 + rng.index(9) as u8,
        1 => 13 + rng.index(5) as u8,
        _ => 18 + (rng.beta(2.0, 3.5) * 62.0) as u8,
    }
}

/// Sign-up time: during the window for cold users, before it otherwise.
fn pick_signup(cfg: &WorldConfig, rng: &mut Rng) -> i64 {
    let window = (cfg.days as f64 * DAY as f64).max(1.0);
    if rng.bernoulli(GENERATION.cold_user_share) {
        cfg.start + rng.range_f64(0.0, window) as i64
    } else {
        cfg.start - 3_600 - (rng.exponential(500.0).min(2_900.0) * DAY as f64) as i64
    }
}

/// Affinity per genre: personal noise shifted by age group and gender.
fn genre_affinities(rng: &mut Rng, age: u8, gender: &str) -> [f32; N_GENRES] {
    let mut aff: [f32; N_GENRES] = std::array::from_fn(|_| rng.gauss(0.0, 0.8) as f32);
    let mut add = |gi: usize, x: f32| aff[gi] += x;
    let kid = age < 13;
    let teen = (13..18).contains(&age);
    if kid {
        for gi in [g::ANIMATION, g::CHILDREN, g::FAMILY] {
            add(gi, 1.6);
        }
        add(g::HORROR, -2.0);
        add(g::WAR, -1.0);
        add(g::DOCUMENTARY, -0.5);
    } else if teen {
        for gi in [g::ANIMATION, g::HORROR, g::SCI_FI, g::ACTION] {
            add(gi, 0.3);
        }
    } else {
        add(g::CHILDREN, -1.0);
        add(g::ANIMATION, -0.3);
    }
    match gender {
        "f" => {
            add(g::ROMANCE, 0.3);
            add(g::DRAMA, 0.2);
            add(g::WAR, -0.3);
        }
        "m" => {
            add(g::ACTION, 0.3);
            add(g::WAR, 0.2);
            add(g::ROMANCE, -0.2);
        }
        _ => {}
    }
    if age > 55 {
        add(g::WESTERN, 0.4);
        add(g::WAR, 0.3);
        add(g::DOCUMENTARY, 0.3);
        add(g::ANIMATION, -0.5);
    }
    aff
}

/// Favourite actors (mostly of the profile language) and the utility each adds.
fn pick_favourite_actors(
    rng: &mut Rng,
    vocab: &Vocab,
    language: usize,
) -> [(u32, f32); MAX_FAVOURITE_ACTORS] {
    let mut actors = [(u32::MAX, 0.0f32); MAX_FAVOURITE_ACTORS];
    let n_fav = rng.poisson(1.5).min(MAX_FAVOURITE_ACTORS as u32) as usize;
    for slot in actors.iter_mut().take(n_fav) {
        let lang = if rng.bernoulli(0.7) { language } else { 0 };
        *slot = (vocab.actor(rng, lang), rng.range_f64(0.5, 1.5) as f32);
    }
    actors
}

/// Device preference in [`schema::DEVICES`] order (sums to 1), around a base mix for kids,
/// mobile-first countries and everyone else.
fn pick_device_weights(rng: &mut Rng, kid: bool, country: &Country) -> [f32; 4] {
    let base: [f64; 4] = if kid {
        [0.4, 0.05, 0.15, 0.4]
    } else if country.code == "IN" || country.code == "BR" {
        [0.2, 0.15, 0.55, 0.1]
    } else {
        [0.38, 0.2, 0.32, 0.1]
    };
    let dw: Vec<f64> = base.iter().map(|b| rng.gamma(3.0 * b) + 1e-6).collect();
    let total: f64 = dw.iter().sum();
    std::array::from_fn(|i| (dw[i] / total) as f32)
}

/// The main and second local hours of viewing (not yet wrapped to 0–24).
fn viewing_hours(rng: &mut Rng, kid: bool, teen: bool) -> (f64, f64) {
    if kid {
        (rng.gauss(16.5, 1.5), rng.gauss(8.5, 1.0))
    } else if teen {
        (rng.gauss(21.0, 1.5), rng.gauss(16.0, 1.5))
    } else {
        let second = [8.0, 12.5, 15.0][rng.index(3)];
        (rng.gauss(20.7, 1.2), rng.gauss(second, 1.0))
    }
}

/// Onboarding genre picks (mask over [`GENRES`]): for some users, 1–3 of their best liked
/// genres, with noise; 0 for the rest.
fn pick_onboarding(rng: &mut Rng, aff: &[f32; N_GENRES]) -> u32 {
    if rng.bernoulli(GENERATION.onboarding_share) {
        let mut scored: Vec<(f64, usize)> = (0..N_GENRES)
            .map(|gi| (aff[gi] as f64 + 0.5 * rng.gumbel(), gi))
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        let n = 1 + rng.index(3);
        scored.iter().take(n).fold(0u32, |m, &(_, gi)| m | 1 << gi)
    } else {
        0
    }
}

/// The public `users` row of a generated user.
fn user_row(model: &UserModel, gender: &str) -> schema::User {
    schema::User {
        user_id: model.user_id,
        age: model.age,
        gender: gender.to_string(),
        language: LANGUAGES[model.language as usize].to_string(),
        country: user_country(model).code.to_string(),
        utc_offset_minutes: model.utc_offset_minutes,
        signup_time: model.signup_time,
        onboarding_genres: GENRES
            .iter()
            .enumerate()
            .filter(|(i, _)| model.onboarding & (1 << i) != 0)
            .map(|(_, g)| g.to_string())
            .collect(),
    }
}

/// The calendar country of a user model.
pub fn user_country(u: &UserModel) -> &'static Country {
    &COUNTRIES[u.country as usize]
}

/// Local day count of a time for a user (see [`calendar::local_days`]).
pub fn local_day(u: &UserModel, time: i64) -> i64 {
    calendar::local_days(time, u.utc_offset_minutes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> WorldConfig {
        WorldConfig {
            users: 100,
            items: 3_000,
            days: 28,
            seed: 9,
            start: DEFAULT_START,
        }
    }

    #[test]
    fn names_are_unique() {
        let names: std::collections::HashSet<String> = (0..200_000).map(person_name).collect();
        assert_eq!(names.len(), 200_000);
    }

    #[test]
    fn catalog_has_movies_series_and_cold_items() {
        let cfg = cfg();
        let vocab = Vocab::new(&cfg);
        let mut rows = Vec::new();
        let cat = Catalog::generate(&cfg, &vocab, |r, _| {
            rows.push(r);
            Ok(())
        })
        .unwrap();
        assert_eq!(cat.items.len(), 3_000);
        let episodes = rows.iter().filter(|r| r.kind == MediaKind::Episode).count();
        assert!((600..2_400).contains(&episodes), "{episodes}");
        let cold = rows
            .iter()
            .filter(|r| r.added_time >= cfg.start && r.added_time < cfg.end())
            .count();
        assert!(cold > 50, "{cold}");
        assert!(rows.iter().all(|r| r.release_time <= r.added_time));
        assert!(rows.iter().any(|r| r.tags.iter().any(|t| t == "christmas")));
        for (i, r) in rows.iter().enumerate() {
            assert_eq!(r.item_id as usize, i);
        }
    }
}
