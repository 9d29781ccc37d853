//! Titles, users and their events as the feature code sees them: categorical values are
//! already mapped to vocabulary ids, so the same structs serve the trainer and the device.

use std::collections::HashMap;

use crate::context::Device;

/// A list of names with stable ids. Id 0 is reserved for "unknown / out of vocabulary"; the
/// `i`-th name has id `i + 1`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vocabulary {
    names: Vec<String>,
    ids: HashMap<String, u32>,
}

impl Vocabulary {
    /// A vocabulary over `names` in the given order; repeated names keep their first id.
    pub fn new<S: Into<String>>(names: impl IntoIterator<Item = S>) -> Vocabulary {
        let mut v = Vocabulary::default();
        for n in names {
            let n = n.into();
            if !v.ids.contains_key(&n) {
                v.ids.insert(n.clone(), v.names.len() as u32 + 1);
                v.names.push(n);
            }
        }
        v
    }

    /// The id of a name, 0 when unknown.
    pub fn id(&self, name: &str) -> u32 {
        self.ids.get(name).copied().unwrap_or(0)
    }

    /// The name of an id (`None` for 0 and unknown ids).
    pub fn name(&self, id: u32) -> Option<&str> {
        id.checked_sub(1)
            .and_then(|i| self.names.get(i as usize))
            .map(String::as_str)
    }

    /// Number of ids including the reserved 0.
    pub fn size(&self) -> usize {
        self.names.len() + 1
    }

    /// The names, in id order (id 1 first).
    pub fn names(&self) -> &[String] {
        &self.names
    }
}

/// Movie or episode of a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    /// A film.
    Movie,
    /// One episode of a series.
    Episode,
}

/// How a title was first released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseType {
    /// In cinemas.
    Theatrical,
    /// Straight to streaming.
    Streaming,
    /// On television.
    Tv,
}

/// Maturity ratings, one ordered ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Maturity {
    /// All ages.
    G,
    /// Parental guidance.
    Pg,
    /// 13 and over.
    Pg13,
    /// 17 and over, or with a guardian.
    R,
    /// Adults only.
    Nc17,
}

impl Maturity {
    /// The ladder, lowest first.
    pub const ALL: [Maturity; 5] = [
        Maturity::G,
        Maturity::Pg,
        Maturity::Pg13,
        Maturity::R,
        Maturity::Nc17,
    ];

    /// The rating's usual label (`"PG-13"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Maturity::G => "G",
            Maturity::Pg => "PG",
            Maturity::Pg13 => "PG-13",
            Maturity::R => "R",
            Maturity::Nc17 => "NC-17",
        }
    }

    /// Parses a label of [`Maturity::as_str`].
    pub fn parse(s: &str) -> Option<Maturity> {
        Maturity::ALL.into_iter().find(|m| m.as_str() == s)
    }

    /// The youngest age the rating suits.
    pub fn min_age(self) -> u8 {
        match self {
            Maturity::G => 0,
            Maturity::Pg => 8,
            Maturity::Pg13 => 13,
            Maturity::R => 17,
            Maturity::Nc17 => 18,
        }
    }

    /// Position on the ladder, 0 for G.
    pub fn rank(self) -> u8 {
        self as u8
    }
}

/// A title's metadata, with categorical values as vocabulary ids (0 = unknown).
#[derive(Debug, Clone, PartialEq)]
pub struct Media {
    /// The title's id in the data (also its sparse movie id after vocabulary mapping).
    pub id: u32,
    /// Movie or episode.
    pub kind: MediaKind,
    /// The series an episode belongs to.
    pub series_id: Option<u32>,
    /// Season number of an episode.
    pub season: Option<u16>,
    /// Episode number within its season.
    pub episode: Option<u16>,
    /// Running time.
    pub duration_s: u32,
    /// Genre ids.
    pub genres: Vec<u32>,
    /// Tag ids.
    pub tags: Vec<u32>,
    /// Person ids of the cast.
    pub actors: Vec<u32>,
    /// Person ids of the directors.
    pub directors: Vec<u32>,
    /// Person id of the music composer (0 = unknown).
    pub composer: u32,
    /// Distributor id (0 = unknown).
    pub distributor: u32,
    /// Original language id.
    pub language: u32,
    /// Country of origin id.
    pub country: u32,
    /// First release, unix seconds.
    pub release_time: i64,
    /// How it was released.
    pub release_type: ReleaseType,
    /// When it was added to the platform, unix seconds.
    pub added_time: i64,
    /// Maturity rating.
    pub maturity: Maturity,
    /// Public-platform rating, 0–10.
    pub public_rating: Option<f32>,
    /// Box-office or other revenue before the platform, USD.
    pub revenue_usd: Option<f64>,
}

/// Gender as reported at sign-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gender {
    /// Female.
    Female,
    /// Male.
    Male,
    /// Another answer.
    Other,
    /// Not given.
    Unknown,
}

impl Gender {
    /// Every gender, in the order of their codes' documentation.
    pub const ALL: [Gender; 4] = [Gender::Female, Gender::Male, Gender::Other, Gender::Unknown];

    /// The one-letter code of the canonical schema and the JS API: `"f"`, `"m"`, `"x"` (another
    /// answer), or `""` (not given).
    pub fn code(self) -> &'static str {
        match self {
            Gender::Female => "f",
            Gender::Male => "m",
            Gender::Other => "x",
            Gender::Unknown => "",
        }
    }

    /// Parses a code of [`Gender::code`]; `None` for anything else.
    ///
    /// ```
    /// use edgerec::features::Gender;
    /// assert_eq!(Gender::from_code("f"), Some(Gender::Female));
    /// assert_eq!(Gender::from_code(""), Some(Gender::Unknown));
    /// assert_eq!(Gender::from_code("F"), None);
    /// ```
    pub fn from_code(code: &str) -> Option<Gender> {
        Gender::ALL.into_iter().find(|g| g.code() == code)
    }
}

/// What the user told the service about themselves.
#[derive(Debug, Clone, PartialEq)]
pub struct UserProfile {
    /// Age in years, when known.
    pub age: Option<u8>,
    /// Gender.
    pub gender: Gender,
    /// Language id.
    pub language: u32,
    /// Country id.
    pub country: u32,
    /// Offset of the user's local time from UTC, minutes.
    pub utc_offset_minutes: i32,
    /// Sign-up time, unix seconds.
    pub signup_time: i64,
    /// Genre ids picked at onboarding.
    pub onboarding_genres: Vec<u32>,
}

/// One play of a title.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Play {
    /// Index of the title in the media table the features are computed against.
    pub media: u32,
    /// When the play started, unix seconds.
    pub time: i64,
    /// On which device.
    pub device: Device,
    /// Session id.
    pub session: u64,
    /// Seconds watched.
    pub watched_s: u32,
    /// Share of the title watched, 0–1.
    pub fraction: f32,
}

/// A user's events, sorted by time (ties keep insertion order).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    plays: Vec<Play>,
}

impl History {
    /// Builds a history; plays are sorted by time with a stable sort.
    pub fn new(mut plays: Vec<Play>) -> History {
        plays.sort_by_key(|p| p.time);
        History { plays }
    }

    /// Appends a play; O(1) when it is the newest, O(n) otherwise.
    pub fn push(&mut self, play: Play) {
        let at = self.plays.partition_point(|p| p.time <= play.time);
        self.plays.insert(at, play);
    }

    /// All plays, oldest first.
    pub fn plays(&self) -> &[Play] {
        &self.plays
    }

    /// The plays strictly before `time`: what a feature computed at `time` may see.
    /// O(log n).
    pub fn before(&self, time: i64) -> &[Play] {
        &self.plays[..self.plays.partition_point(|p| p.time < time)]
    }
}

/// Platform-wide counts for a title at a point in time (computed by the pipeline from all
/// users' plays, shipped to the device in the bundle).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MediaStats {
    /// Plays in the 24 hours before the time.
    pub plays_24h: u32,
    /// Plays in the 7 days before the time.
    pub plays_7d: u32,
}
