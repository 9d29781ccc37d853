//! The sections the device's full pipeline reads besides the models: the media table (`MDIA`),
//! the serving settings (`SERV`) and the HNSW graphs (`HNSW`).
//!
//! * `MDIA` v1 ([`MediaTable`]): `stats_time: i64` (when the platform counts were taken),
//!   `items: [media]`, one per catalog item in catalog order, where a media is `id: u32,
//!   kind: u8` (0 movie, 1 episode), `series: u8 flag, series_id: u32, season: u16,
//!   episode: u16` (0 = none for season and episode), `duration_s: u32, genres: [u32],
//!   tags: [u32], actors: [u32], directors: [u32], composer: u32, distributor: u32,
//!   language: u32, country: u32, release_time: i64, release_type: u8` (0 theatrical,
//!   1 streaming, 2 tv), `added_time: i64, maturity: u8` (0 G … 4 NC-17),
//!   `rating: u8 flag, f32, revenue: u8 flag, f64, plays_24h: u32, plays_7d: u32`. Ids are the
//!   feature contract's (`FEAT`) vocabulary ids: a bundle with `MDIA` must have `FEAT`, and
//!   every id must be inside its vocabulary ([`super::BundleContents::validate`]).
//! * `SERV` v1 ([`ServingSettings`]): `candidates: u32` (blend candidates the ranker scores),
//!   `k: u32, fatigue_impressions: u32, lambda: f32, max_per_genre: u32` (0 = no cap) — the
//!   [`RerankSettings`] a request uses unless it overrides them.
//! * `HNSW` v1 ([`GraphSection`]s): `graphs: [(space: str, max_norm: f32, graph: [u8])]`,
//!   `space` `"ials"` or `"two-tower"`, `max_norm` the augmentation's `M` (0 for unit rows,
//!   see [`crate::retrieval`]), `graph` the bytes of [`crate::hnsw::HnswIndex::to_bytes`],
//!   loaded by [`crate::hnsw::HnswIndex::from_bytes`] (which never trusts them).

use super::codec::{Reader, Writer};
use crate::error::BundleError;
use crate::features::{Maturity, Media, MediaKind, MediaStats, ReleaseType};
use crate::limits::MAX_CANDIDATES;
use crate::rerank::RerankSettings;

/// Every catalog title's metadata for the ranking features, with its platform counts as of
/// the bundle (section `MDIA`).
#[derive(Debug, Clone, PartialEq)]
pub struct MediaTable {
    media: Vec<Media>,
    stats: Vec<MediaStats>,
    stats_time: i64,
}

impl MediaTable {
    /// One media and one count per catalog item, in catalog order; `stats_time` is when the
    /// counts were taken (unix seconds). Refuses different lengths and non-finite ratings or
    /// revenues.
    pub fn new(
        media: Vec<Media>,
        stats: Vec<MediaStats>,
        stats_time: i64,
    ) -> Result<MediaTable, BundleError> {
        let bad = |reason: String| BundleError::Malformed {
            what: "MDIA".into(),
            reason,
        };
        if media.len() != stats.len() {
            return Err(bad(format!(
                "{} media with {} platform counts",
                media.len(),
                stats.len()
            )));
        }
        for m in &media {
            if m.public_rating.is_some_and(|r| !r.is_finite())
                || m.revenue_usd.is_some_and(|r| !r.is_finite())
            {
                return Err(bad(format!("title {}: non-finite rating or revenue", m.id)));
            }
        }
        Ok(MediaTable {
            media,
            stats,
            stats_time,
        })
    }

    /// The titles, in catalog order.
    pub fn media(&self) -> &[Media] {
        &self.media
    }

    /// Their platform counts as of [`stats_time`](Self::stats_time), in catalog order.
    pub fn stats(&self) -> &[MediaStats] {
        &self.stats
    }

    /// When the counts were taken.
    pub fn stats_time(&self) -> i64 {
        self.stats_time
    }

    /// Number of titles.
    pub fn len(&self) -> usize {
        self.media.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.media.is_empty()
    }

    /// The `MDIA` v1 payload.
    pub fn to_payload(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.i64(self.stats_time);
        w.len(self.media.len());
        for (m, s) in self.media.iter().zip(&self.stats) {
            w.u32(m.id);
            w.u8(match m.kind {
                MediaKind::Movie => 0,
                MediaKind::Episode => 1,
            });
            w.u8(u8::from(m.series_id.is_some()));
            w.u32(m.series_id.unwrap_or(0));
            w.u16(m.season.unwrap_or(0));
            w.u16(m.episode.unwrap_or(0));
            w.u32(m.duration_s);
            for ids in [&m.genres, &m.tags, &m.actors, &m.directors] {
                w.u32s(ids);
            }
            for id in [m.composer, m.distributor, m.language, m.country] {
                w.u32(id);
            }
            w.i64(m.release_time);
            w.u8(match m.release_type {
                ReleaseType::Theatrical => 0,
                ReleaseType::Streaming => 1,
                ReleaseType::Tv => 2,
            });
            w.i64(m.added_time);
            w.u8(m.maturity.rank());
            w.u8(u8::from(m.public_rating.is_some()));
            w.f32(m.public_rating.unwrap_or(0.0));
            w.u8(u8::from(m.revenue_usd.is_some()));
            w.f64(m.revenue_usd.unwrap_or(0.0));
            w.u32(s.plays_24h);
            w.u32(s.plays_7d);
        }
        w.finish()
    }

    /// Decodes a `MDIA` v1 payload. Never panics; allocation is bounded by the payload's
    /// length.
    pub fn from_payload(b: &[u8]) -> Result<MediaTable, BundleError> {
        let mut r = Reader::new(b, "MDIA");
        let stats_time = r.time("stats_time")?;
        // The smallest media is 4 + 1 + 1 + 4 + 2 + 2 + 4 + 4·4 + 4·4 + 8 + 1 + 8 + 1 + 5 + 9 + 8 = 90 bytes.
        let n = r.len(90)?;
        let mut media = Vec::with_capacity(n);
        let mut stats = Vec::with_capacity(n);
        for _ in 0..n {
            let id = r.u32()?;
            let kind = match r.u8()? {
                0 => MediaKind::Movie,
                1 => MediaKind::Episode,
                k => return Err(r.malformed(format!("title {id}: kind {k}"))),
            };
            let has_series = flag(&mut r, id)?;
            let series_id = r.u32()?;
            let season = r.u16()?;
            let episode = r.u16()?;
            let duration_s = r.u32()?;
            let genres = r.u32s()?;
            let tags = r.u32s()?;
            let actors = r.u32s()?;
            let directors = r.u32s()?;
            let composer = r.u32()?;
            let distributor = r.u32()?;
            let language = r.u32()?;
            let country = r.u32()?;
            let release_time = r.time("release_time")?;
            let release_type = match r.u8()? {
                0 => ReleaseType::Theatrical,
                1 => ReleaseType::Streaming,
                2 => ReleaseType::Tv,
                t => return Err(r.malformed(format!("title {id}: release type {t}"))),
            };
            let added_time = r.time("added_time")?;
            let maturity = r.u8()?;
            let maturity = *Maturity::ALL
                .get(maturity as usize)
                .ok_or_else(|| r.malformed(format!("title {id}: maturity {maturity}")))?;
            let has_rating = flag(&mut r, id)?;
            let rating = r.f32()?;
            let has_revenue = flag(&mut r, id)?;
            let revenue = r.f64()?;
            stats.push(MediaStats {
                plays_24h: r.u32()?,
                plays_7d: r.u32()?,
            });
            media.push(Media {
                id,
                kind,
                series_id: has_series.then_some(series_id),
                season: (season > 0).then_some(season),
                episode: (episode > 0).then_some(episode),
                duration_s,
                genres,
                tags,
                actors,
                directors,
                composer,
                distributor,
                language,
                country,
                release_time,
                release_type,
                added_time,
                maturity,
                public_rating: has_rating.then_some(rating),
                revenue_usd: has_revenue.then_some(revenue),
            });
        }
        r.finish()?;
        MediaTable::new(media, stats, stats_time)
    }
}

fn flag(r: &mut Reader, id: u32) -> Result<bool, BundleError> {
    match r.u8()? {
        0 => Ok(false),
        1 => Ok(true),
        f => Err(r.malformed(format!("title {id}: flag byte {f}"))),
    }
}

/// How the device serves a request unless the request says otherwise (section `SERV`).
#[derive(Debug, Clone, PartialEq)]
pub struct ServingSettings {
    /// Blend candidates the ranker scores (the blend's top N); `1..=`[`MAX_CANDIDATES`].
    pub candidates: usize,
    /// The rerank stage's settings.
    pub rerank: RerankSettings,
}

impl Default for ServingSettings {
    fn default() -> ServingSettings {
        ServingSettings {
            candidates: 500,
            rerank: RerankSettings::default(),
        }
    }
}

impl ServingSettings {
    /// Checks the settings (candidates in range, [`RerankSettings::validate`]).
    pub fn validate(&self) -> Result<(), BundleError> {
        let bad = |reason: String| BundleError::Malformed {
            what: "SERV".into(),
            reason,
        };
        if self.candidates == 0 || self.candidates > MAX_CANDIDATES {
            return Err(bad(format!(
                "candidates {} outside 1..={MAX_CANDIDATES}",
                self.candidates
            )));
        }
        self.rerank.validate().map_err(|e| bad(e.to_string()))
    }

    /// The `SERV` v1 payload.
    pub fn to_payload(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u32(self.candidates as u32);
        w.u32(self.rerank.k as u32);
        w.u32(self.rerank.fatigue_impressions);
        w.f32(self.rerank.lambda);
        w.u32(self.rerank.max_per_genre.map_or(0, |m| m as u32));
        w.finish()
    }

    /// Decodes and checks a `SERV` v1 payload. Never panics.
    pub fn from_payload(b: &[u8]) -> Result<ServingSettings, BundleError> {
        let mut r = Reader::new(b, "SERV");
        let candidates = r.u32()? as usize;
        let k = r.u32()? as usize;
        let fatigue_impressions = r.u32()?;
        let lambda = r.f32()?;
        let max_per_genre = r.u32()? as usize;
        r.finish()?;
        let s = ServingSettings {
            candidates,
            rerank: RerankSettings {
                k,
                fatigue_impressions,
                lambda,
                max_per_genre: (max_per_genre > 0).then_some(max_per_genre),
            },
        };
        s.validate()?;
        Ok(s)
    }
}

/// The embedding space a graph indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Space {
    /// iALS item factors (`FACT`).
    Ials,
    /// Two-tower item embeddings (`TWRT`).
    TwoTower,
}

impl Space {
    /// `"ials"` or `"two-tower"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Space::Ials => "ials",
            Space::TwoTower => "two-tower",
        }
    }
}

/// One HNSW graph as shipped (section `HNSW`); the bundle loads it when it is read.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphSection {
    /// Which item vectors it indexes.
    pub space: Space,
    /// The augmentation's `M` (0 for a graph over unit rows).
    pub max_norm: f32,
    /// [`crate::hnsw::HnswIndex::to_bytes`].
    pub graph: Vec<u8>,
}

/// The `HNSW` v1 payload of `graphs` (at most one per space).
pub fn encode_graphs(graphs: &[GraphSection]) -> Vec<u8> {
    let mut w = Writer::new();
    w.len(graphs.len());
    for g in graphs {
        w.str(g.space.as_str());
        w.f32(g.max_norm);
        w.bytes(&g.graph);
    }
    w.finish()
}

/// Decodes a `HNSW` v1 payload (the graphs' bytes are checked when they are loaded).
pub fn decode_graphs(b: &[u8]) -> Result<Vec<GraphSection>, BundleError> {
    let mut r = Reader::new(b, "HNSW");
    let n = r.len(12)?;
    let mut out: Vec<GraphSection> = Vec::with_capacity(n);
    for _ in 0..n {
        let name = r.str()?;
        let space = match name.as_str() {
            "ials" => Space::Ials,
            "two-tower" => Space::TwoTower,
            _ => return Err(r.malformed(format!("unknown space {name:?}"))),
        };
        if out.iter().any(|g| g.space == space) {
            return Err(r.malformed(format!("two graphs for {name}")));
        }
        let max_norm = r.f32()?;
        if max_norm < 0.0 {
            return Err(r.malformed(format!("max norm {max_norm} < 0")));
        }
        out.push(GraphSection {
            space,
            max_norm,
            graph: r.bytes()?.to_vec(),
        });
    }
    r.finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::tiny_features as tiny;

    fn table() -> MediaTable {
        let (_, _, media) = tiny();
        let stats = vec![
            MediaStats {
                plays_24h: 3,
                plays_7d: 10,
            },
            MediaStats::default(),
        ];
        MediaTable::new(media, stats, 1_700_000_000).unwrap()
    }

    #[test]
    fn media_round_trip() {
        let t = table();
        let b = t.to_payload();
        assert_eq!(MediaTable::from_payload(&b).unwrap(), t);
        // Every truncation is an error, never a panic.
        for cut in 0..b.len() {
            assert!(MediaTable::from_payload(&b[..cut]).is_err(), "cut {cut}");
        }
    }

    #[test]
    fn media_refuses_bad_enums_and_lengths() {
        let t = table();
        assert!(MediaTable::new(t.media().to_vec(), vec![], 0).is_err());
        let mut b = t.to_payload();
        b[8 + 4 + 4] = 7; // the first title's kind
        assert!(matches!(
            MediaTable::from_payload(&b).unwrap_err(),
            BundleError::Malformed { .. }
        ));
        // A count far beyond the bytes is refused before allocating.
        let mut huge = t.to_payload();
        huge[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(MediaTable::from_payload(&huge).is_err());
    }

    #[test]
    fn serving_round_trip_and_checks() {
        let s = ServingSettings {
            candidates: 300,
            rerank: RerankSettings {
                k: 12,
                fatigue_impressions: 2,
                lambda: 0.5,
                max_per_genre: Some(3),
            },
        };
        assert_eq!(ServingSettings::from_payload(&s.to_payload()).unwrap(), s);
        let d = ServingSettings::default();
        assert_eq!(ServingSettings::from_payload(&d.to_payload()).unwrap(), d);
        let bad = ServingSettings {
            candidates: 0,
            ..ServingSettings::default()
        };
        assert!(ServingSettings::from_payload(&bad.to_payload()).is_err());
        let mut lambda = ServingSettings::default();
        lambda.rerank.lambda = 2.0;
        assert!(ServingSettings::from_payload(&lambda.to_payload()).is_err());
        // The same bound as a request's: a bundle never asks for more than a request may.
        let most = ServingSettings {
            candidates: MAX_CANDIDATES,
            ..ServingSettings::default()
        };
        assert!(ServingSettings::from_payload(&most.to_payload()).is_ok());
        let over = ServingSettings {
            candidates: MAX_CANDIDATES + 1,
            ..ServingSettings::default()
        };
        assert!(ServingSettings::from_payload(&over.to_payload()).is_err());
    }

    #[test]
    fn graphs_round_trip_and_refuse_repeats() {
        let g = vec![
            GraphSection {
                space: Space::Ials,
                max_norm: 2.5,
                graph: vec![1, 2, 3],
            },
            GraphSection {
                space: Space::TwoTower,
                max_norm: 0.0,
                graph: vec![],
            },
        ];
        assert_eq!(decode_graphs(&encode_graphs(&g)).unwrap(), g);
        let twice = vec![g[0].clone(), g[0].clone()];
        assert!(decode_graphs(&encode_graphs(&twice)).is_err());
    }
}
