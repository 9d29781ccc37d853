//! MovieLens-100K in the canonical log schema (`edgerec_data::schema`), so the training-data
//! pipeline and later stages read it like any other world.
//!
//! The mapping, and what MovieLens lacks:
//!
//! | canonical | from MovieLens | note |
//! |---|---|---|
//! | `users.age`, `gender` | age, gender | `F`/`M` → `f`/`m` |
//! | `users.language`, `country` | — | `en`, `US` (MovieLens users are US residents) |
//! | `users.utc_offset_minutes` | zip code | first digit: 0–3 → −300 (Eastern), 4–7 → −360 (Central), 8 → −420 (Mountain), 9 → −480 (Pacific); others −300. No daylight saving. |
//! | `users.signup_time` | first rating | |
//! | `users.onboarding_genres` | — | empty |
//! | `items.kind`, `release_type` | — | `movie`, `theatrical` |
//! | `items.duration_s` | — | unknown: 6,000 s (100 minutes) for every film |
//! | `items.genres` | genres | `unknown` → none |
//! | `items.tags`, `actors`, `directors`, `composer`, `distributor` | — | empty / null |
//! | `items.original_language`, `country` | — | `en`, `US` |
//! | `items.release_time` | release year | 1 January of the year; the first rating when unknown |
//! | `items.added_time` | first rating | when the title first appears in the log |
//! | `items.maturity` | — | unknown: `PG-13` for every film |
//! | `items.public_rating`, `revenue_usd` | — | null (the mean MovieLens rating would leak the future) |
//! | `plays` | ratings | one play per rating at its time: a rating means the film was watched, so `fraction` = 1 and `watched_s` = `duration_s`; device `desktop`; one session per user and UTC day |
//! | `impressions`, `searches` | — | none (empty tables) |
//!
//! So every MovieLens play is a positive under the label rules, and the pipeline finds no
//! negatives in it: ranking on MovieLens needs sampled negatives, which the synthetic world
//! does not.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context as _, Result};
use edgerec::calendar;
use edgerec::context::Device;
use edgerec::features::{Maturity, MediaKind, ReleaseType};
use edgerec_data::schema::{
    self, Impression, Item, PartWriter, Play, Search, Table, User, WriterOptions,
};

use crate::tables::Tables;

/// Duration assumed for every MovieLens film.
pub const DEFAULT_DURATION_S: u32 = 6_000;

/// The UTC offset guessed from a US zip code.
fn utc_offset_from_zip(zip: Option<&str>) -> i32 {
    match zip.and_then(|z| z.chars().next()) {
        Some('4'..='7') => -360,
        Some('8') => -420,
        Some('9') => -480,
        _ => -300,
    }
}

/// Writes one table of the world in `root`.
fn write_all<T: Table>(root: &Path, rows: impl IntoIterator<Item = T>) -> Result<()> {
    let mut w = PartWriter::<T>::create(root, WriterOptions::default())
        .with_context(|| format!("writing a table into {}", root.display()))?;
    for r in rows {
        w.push(r)?;
    }
    w.finish()?;
    Ok(())
}

/// Writes `tables` as a canonical world in `out` (`users/`, `items/`, `plays/`,
/// `impressions/`, `searches/`).
pub fn write_world(tables: &Tables, out: &Path) -> Result<()> {
    let mut first_by_user: HashMap<u32, i64> = HashMap::new();
    let mut first_by_item: HashMap<u32, i64> = HashMap::new();
    for x in &tables.interactions {
        first_by_user.entry(x.user_id).or_insert(x.timestamp);
        first_by_item.entry(x.item_id).or_insert(x.timestamp);
    }
    let log_start = tables.interactions.first().map_or(0, |x| x.timestamp);

    write_all(
        out,
        tables.users.iter().map(|u| User {
            user_id: u.user_id,
            age: u.age.map_or(0, |a| a.min(255) as u8),
            gender: match u.gender.as_deref() {
                Some("F") => "f",
                Some("M") => "m",
                _ => "x",
            }
            .into(),
            language: "en".into(),
            country: "US".into(),
            utc_offset_minutes: utc_offset_from_zip(u.zip.as_deref()),
            signup_time: first_by_user.get(&u.user_id).copied().unwrap_or(log_start),
            onboarding_genres: vec![],
        }),
    )?;
    write_all(
        out,
        tables.items.iter().map(|i| {
            let first = first_by_item.get(&i.item_id).copied().unwrap_or(log_start);
            let release = i.year.map_or(first, |y| {
                calendar::days_from_civil(i32::from(y), 1, 1) * 86_400
            });
            Item {
                item_id: i.item_id,
                kind: MediaKind::Movie,
                series_id: None,
                season: None,
                episode: None,
                title: i.title.clone(),
                duration_s: DEFAULT_DURATION_S,
                genres: i.genres.clone(),
                tags: vec![],
                actors: vec![],
                directors: vec![],
                composer: None,
                distributor: None,
                original_language: "en".into(),
                country: "US".into(),
                release_time: release.min(first),
                release_type: ReleaseType::Theatrical,
                added_time: first,
                maturity: Maturity::Pg13,
                public_rating: None,
                revenue_usd: None,
            }
        }),
    )?;
    // Grouped by user, each user's plays in time order (ties keep file order).
    let mut plays: Vec<_> = tables.interactions.iter().collect();
    plays.sort_by_key(|x| (x.user_id, x.timestamp, x.seq));
    write_all(
        out,
        plays.into_iter().map(|x| Play {
            user_id: x.user_id,
            item_id: x.item_id,
            time: x.timestamp,
            device: Device::Desktop,
            session_id: (u64::from(x.user_id) << 32)
                | (x.timestamp.div_euclid(86_400) as u64 & 0xffff_ffff),
            watched_s: DEFAULT_DURATION_S,
            fraction: 1.0,
        }),
    )?;
    write_all::<Impression>(out, [])?;
    write_all::<Search>(out, [])?;
    // Read back through the validating reader: the world is well-formed.
    schema::read_table::<User>(out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zip_codes_give_us_time_zones() {
        assert_eq!(utc_offset_from_zip(Some("02139")), -300);
        assert_eq!(utc_offset_from_zip(Some("60614")), -360);
        assert_eq!(utc_offset_from_zip(Some("80302")), -420);
        assert_eq!(utc_offset_from_zip(Some("94043")), -480);
        assert_eq!(utc_offset_from_zip(Some("T8H1N")), -300);
        assert_eq!(utc_offset_from_zip(None), -300);
    }
}
