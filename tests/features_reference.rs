//! The feature catalog against values worked out by hand.
//!
//! The pipeline's parity test recomputes features with the same functions the device calls,
//! so a bug in that shared code would pass it. Here a reference user, their plays, a request
//! and three titles are written out, and every dense feature of every family (user, context,
//! media, crosses) and every sparse id is the number a person computes from the definitions in
//! `src/features/mod.rs` — the arithmetic is in the comments, with only literals and the four
//! operations, never the library. A change to a feature's definition must change this file.

use std::collections::BTreeMap;

use edgerec::context::{Context, Device};
use edgerec::features::{
    FeatureConfig, FeatureSpace, FeatureVector, Gender, History, Maturity, Media, MediaKind,
    MediaStats, Play, ReleaseType, UserProfile, Vocabularies, Vocabulary,
};

const DAY: i64 = 86_400;
/// 2026-11-20 21:30 UTC, a Friday; the user's device is at UTC−5, so 16:30 local.
const T: i64 = 1_795_210_200;
/// 2000-01-01, 2020-06-15 and 2020-06-22, 00:00 UTC.
const Y2000: i64 = 946_684_800;
const JUNE_15_2020: i64 = 1_592_179_200;
const JUNE_22_2020: i64 = 1_592_784_000;

/// Genres Drama = 1, Horror = 2; people Ann = 1, Dan = 2, Bob = 3; languages en = 1, fr = 2;
/// countries US = 1, FR = 2 (0 is "unknown" in every vocabulary).
fn space() -> FeatureSpace {
    FeatureSpace::new(
        Vocabularies {
            genres: Vocabulary::new(["Drama", "Horror"]),
            tags: Vocabulary::new(["christmas"]),
            people: Vocabulary::new(["Ann", "Dan", "Bob"]),
            distributors: Vocabulary::new(["Studio"]),
            languages: Vocabulary::new(["en", "fr"]),
            countries: Vocabulary::new(["US", "FR"]),
        },
        FeatureConfig {
            recent_days: 90,
            holiday_horizon_days: 30,
            provenance: false,
        },
    )
}

/// 0: a film; 1 and 2: episodes 1 and 2 of season 1 of series 9.
fn media() -> Vec<Media> {
    let film = Media {
        id: 100,
        kind: MediaKind::Movie,
        series_id: None,
        season: None,
        episode: None,
        duration_s: 7_200,
        genres: vec![1],
        tags: vec![1],
        actors: vec![1, 3],
        directors: vec![2],
        composer: 3,
        distributor: 1,
        language: 1,
        country: 1,
        release_time: Y2000,
        release_type: ReleaseType::Theatrical,
        added_time: T - 10 * DAY,
        maturity: Maturity::R,
        public_rating: Some(8.0),
        revenue_usd: Some(5e7),
    };
    let episode = |id, episode, duration_s, genres: Vec<u32>, actors, directors, release| Media {
        id,
        kind: MediaKind::Episode,
        series_id: Some(9),
        season: Some(1),
        episode: Some(episode),
        duration_s,
        genres,
        tags: vec![],
        actors,
        directors,
        composer: 0,
        distributor: 0,
        language: 2,
        country: 2,
        release_time: release,
        release_type: ReleaseType::Streaming,
        added_time: T - 400 * DAY,
        maturity: Maturity::Pg13,
        public_rating: None,
        revenue_usd: None,
    };
    let mut second = episode(201, 2, 2_700, vec![2], vec![3], vec![2], JUNE_22_2020);
    second.public_rating = Some(6.5);
    vec![
        film,
        episode(200, 1, 2_400, vec![1, 2], vec![1], vec![], JUNE_15_2020),
        second,
    ]
}

/// A 30-year-old man in the US whose device is at UTC−5, signed up 400 days before the
/// request, who picked Horror at onboarding.
fn profile(age: u8) -> UserProfile {
    UserProfile {
        age: Some(age),
        gender: Gender::Male,
        language: 1,
        country: 1,
        utc_offset_minutes: -300,
        signup_time: T - 400 * DAY,
        onboarding_genres: vec![2],
    }
}

/// The film 120 days ago (6,000 s, 83%), episode 1 three days ago (2,400 s, whole), and a play
/// after the request, which no feature may see.
fn history() -> History {
    let play = |media, time, device, session, watched_s, fraction| Play {
        media,
        time,
        device,
        session,
        watched_s,
        fraction,
    };
    History::new(vec![
        play(0, T - 120 * DAY, Device::Desktop, 11, 6_000, 0.83),
        play(1, T - 3 * DAY, Device::Tv, 22, 2_400, 1.0),
        play(2, T + 100, Device::Tv, 33, 2_700, 1.0),
    ])
}

fn features(age: u8, title: u32, stats: MediaStats) -> FeatureVector {
    let ctx = Context::new(Device::Tv, T, -300).unwrap();
    space()
        .compute(&profile(age), &history(), &media(), title, stats, &ctx)
        .unwrap()
}

/// Checks every dense feature against `want` (name → value), and that `want` names them all.
fn check(fv: &FeatureVector, want: &BTreeMap<&str, f64>) {
    let space = space();
    let names = space.dense_names();
    let mut missing: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|n| !want.contains_key(n))
        .collect();
    missing.sort_unstable();
    assert!(missing.is_empty(), "no hand-worked value for {missing:?}");
    assert_eq!(
        names.len(),
        want.len(),
        "values for features that do not exist"
    );
    for (name, got) in names.iter().zip(&fv.dense) {
        let w = want[name.as_str()];
        assert!(
            (f64::from(*got) - w).abs() <= 1e-6,
            "{name}: computed {got}, by hand {w}"
        );
    }
}

/// What the user and the request contribute, whatever the title: the user and context
/// families.
fn user_and_context() -> BTreeMap<&'static str, f64> {
    // Plays before T: the film (6,000 s, session 11, 120 days ago, en) and episode 1
    // (2,400 s, session 22, 3 days ago, fr, Drama + Horror). Watched 8,400 s in 2 sessions.
    // Genre seconds: Drama 6,000 + 2,400 = 8,400, Horror 2,400. Recent (last 90 days): only
    // episode 1: Drama 2,400, Horror 2,400 of 2,400. Languages: en 6,000, fr 2,400.
    BTreeMap::from([
        ("user.age", 0.3), // 30 / 100
        ("user.age_known", 1.0),
        ("user.gender=f", 0.0),
        ("user.gender=m", 1.0),
        ("user.gender=x", 0.0),
        ("user.gender=unknown", 0.0),
        ("user.tenure", 400.0 / 765.0),     // 400 days / (400 + 365)
        ("user.plays", 2.0 / 22.0),         // 2 / (2 + 20)
        ("user.avg_session", 70.0 / 130.0), // 8,400 s / 2 sessions = 70 min; 70 / (70 + 60)
        ("user.genre_share=?", 0.0),
        ("user.genre_share=Drama", 1.0),        // 8,400 / 8,400
        ("user.genre_share=Horror", 2.0 / 7.0), // 2,400 / 8,400
        ("user.genre_share_recent=?", 0.0),
        ("user.genre_share_recent=Drama", 1.0), // 2,400 / 2,400
        ("user.genre_share_recent=Horror", 1.0),
        ("user.language_share=?", 0.0),
        ("user.language_share=en", 5.0 / 7.0), // 6,000 / 8,400
        ("user.language_share=fr", 2.0 / 7.0), // 2,400 / 8,400
        ("ctx.device=tv", 1.0),
        ("ctx.device=desktop", 0.0),
        ("ctx.device=mobile", 0.0),
        ("ctx.device=tablet", 0.0),
        ("ctx.device=unknown", 0.0),
        ("ctx.daypart=morning", 0.0),
        ("ctx.daypart=afternoon", 1.0), // 16:30 local is 12–16
        ("ctx.daypart=evening", 0.0),
        ("ctx.daypart=night", 0.0),
        ("ctx.hour", 16.0 / 23.0),
        ("ctx.weekday=mon", 0.0),
        ("ctx.weekday=tue", 0.0),
        ("ctx.weekday=wed", 0.0),
        ("ctx.weekday=thu", 0.0),
        ("ctx.weekday=fri", 1.0), // 2026-11-20 was a Friday
        ("ctx.weekday=sat", 0.0),
        ("ctx.weekday=sun", 0.0),
        ("ctx.weekend", 0.0),
        ("ctx.season=winter", 0.0),
        ("ctx.season=spring", 0.0),
        ("ctx.season=summer", 0.0),
        ("ctx.season=autumn", 1.0), // November, northern hemisphere (US)
        ("ctx.holiday_upcoming", 1.0), // US Thanksgiving, Thursday 2026-11-26
        ("ctx.days_to_holiday", 6.0 / 30.0), // 6 days of a 30-day horizon
    ])
}

#[test]
fn the_next_episode_of_a_series_in_progress() {
    let stats = MediaStats {
        plays_24h: 12,
        plays_7d: 60,
    };
    let fv = features(30, 2, stats);
    let mut want = user_and_context();
    want.extend([
        // Episode 2: rated 6.5, no revenue, released 2020-06-22 (2,342 days and 21.5 hours
        // before T), added 400 days before T, 45 minutes, PG-13, Horror, Bob, directed by Dan,
        // in French.
        ("media.rating", 0.65),
        ("media.rating_known", 1.0),
        ("media.revenue_bucket", 0.0),
        ("media.revenue_known", 0.0),
        (
            "media.years_since_release",
            (2_342.0 + 21.5 / 24.0) / 365.25 / 50.0,
        ),
        ("media.days_on_platform", 1.0), // min(400, 365) / 365
        ("media.new_on_platform", 0.0),
        ("media.plays_24h", 12.0 / 112.0), // 12 / (12 + 100)
        ("media.plays_7d", 60.0 / 560.0),  // 60 / (60 + 500)
        ("media.genre=?", 0.0),
        ("media.genre=Drama", 0.0),
        ("media.genre=Horror", 1.0),
        ("media.duration", 45.0 / 240.0),
        ("media.kind=movie", 0.0),
        ("media.kind=episode", 1.0),
        ("media.season", 0.1), // 1 / 10
        ("media.episode", 2.0 / 30.0),
        ("media.release_year", 120.0 / 150.0), // (2020 − 1900) / 150
        ("media.release_type=theatrical", 0.0),
        ("media.release_type=streaming", 1.0),
        ("media.release_type=tv", 0.0),
        ("media.maturity", 0.5),             // PG-13 is rank 2 of 0–4
        ("cross.genre_share", 2.0 / 7.0),    // Horror: 2,400 / 8,400
        ("cross.genre_share_recent", 1.0),   // Horror: 2,400 / 2,400
        ("cross.actor_match", 1.0),          // Bob was in the film: 1 of 1
        ("cross.director_match", 1.0),       // so was Dan, directing
        ("cross.language_match", 0.0),       // French title, English speaker
        ("cross.language_share", 2.0 / 7.0), // fr: 2,400 / 8,400
        ("cross.maturity_fits_age", 1.0),    // 30 ≥ 13
        ("cross.age_gap", 0.0),
        ("cross.watched_before", 0.0), // its only play is after the request
        ("cross.next_episode", 1.0),   // episode 1 of season 1 was watched
        ("cross.onboarding_genre", 1.0), // Horror was picked
    ]);
    check(&fv, &want);
    let s = &fv.sparse;
    assert_eq!((s.movie, s.language, s.country), (201, 2, 2));
    assert_eq!(
        (s.genres.as_slice(), s.actors.as_slice()),
        (&[2][..], &[3][..])
    );
    assert_eq!(
        (s.directors.as_slice(), s.tags.as_slice()),
        (&[2][..], &[][..])
    );
    assert_eq!((s.distributor, s.composer), (0, 0));
    assert_eq!((s.user_country, s.user_language), (1, 1));
    assert_eq!(s.last_genre, 1, "episode 1's first genre, Drama");
    assert_eq!(space().holidays().name(s.holiday), Some("thanksgiving"));
}

#[test]
fn a_film_watched_before_and_a_viewer_too_young_for_it() {
    let fv = features(30, 0, MediaStats::default());
    let mut want = user_and_context();
    let film = [
        // The film: rated 8, $50M (at least 1e5, 1e6 and 1e7: bucket 3 of 5), released
        // 2000-01-01 (9,820 days and 21.5 hours before T), added 10 days ago, 120 minutes,
        // R, Drama, Ann and Bob, directed by Dan, in English.
        ("media.rating", 0.8),
        ("media.rating_known", 1.0),
        ("media.revenue_bucket", 0.6),
        ("media.revenue_known", 1.0),
        (
            "media.years_since_release",
            (9_820.0 + 21.5 / 24.0) / 365.25 / 50.0,
        ),
        ("media.days_on_platform", 10.0 / 365.0),
        ("media.new_on_platform", 1.0), // 10 < 30 days
        ("media.plays_24h", 0.0),
        ("media.plays_7d", 0.0),
        ("media.genre=?", 0.0),
        ("media.genre=Drama", 1.0),
        ("media.genre=Horror", 0.0),
        ("media.duration", 0.5), // 120 / 240
        ("media.kind=movie", 1.0),
        ("media.kind=episode", 0.0),
        ("media.season", 0.0),
        ("media.episode", 0.0),
        ("media.release_year", 100.0 / 150.0), // (2000 − 1900) / 150
        ("media.release_type=theatrical", 1.0),
        ("media.release_type=streaming", 0.0),
        ("media.release_type=tv", 0.0),
        ("media.maturity", 0.75),          // R is rank 3 of 0–4
        ("cross.genre_share", 1.0),        // Drama: 8,400 / 8,400
        ("cross.genre_share_recent", 1.0), // Drama: 2,400 / 2,400
        ("cross.actor_match", 1.0),        // Ann and Bob both seen: 2 of 2
        ("cross.director_match", 1.0),
        ("cross.language_match", 1.0), // English title, English speaker
        ("cross.language_share", 5.0 / 7.0), // en: 6,000 / 8,400
        ("cross.next_episode", 0.0),   // a film
        ("cross.onboarding_genre", 0.0), // Drama was not picked
        ("cross.watched_before", 0.83), // its best play before T
    ];
    want.extend(film);
    want.extend([("cross.maturity_fits_age", 1.0), ("cross.age_gap", 0.0)]); // 30 ≥ 17
    check(&fv, &want);
    assert_eq!(fv.sparse.actors, [1, 3]);
    assert_eq!((fv.sparse.composer, fv.sparse.distributor), (3, 1));
    assert_eq!(fv.sparse.tags, [1]);

    // At 15, the same film (R: 17 and over) does not fit, two years short of 18 max.
    let young = features(15, 0, MediaStats::default());
    let mut want = user_and_context();
    want.extend(film);
    want.extend([
        ("user.age", 0.15),
        ("cross.maturity_fits_age", 0.0),
        ("cross.age_gap", 2.0 / 18.0), // (17 − 15) / 18
    ]);
    check(&young, &want);
}
