//! `NBRS`: the item-to-item neighbour source — for every title, the titles most often watched
//! by the same people (a sparse top-k list with similarities), and the source's blend quotas.
//!
//! On the device a user's neighbour scores are `Σ w(t) · sim(t, j)` over the titles `t` they
//! watched or picked at onboarding, `w(t) = 1 / (1 + recency_decay · titles watched since)`
//! for the history and 1 for onboarding picks ([`Neighbours::scores`]). Because the lists are
//! per title, the source needs no user vector: it serves a new user from three onboarding
//! picks as well as a long-standing one, and it is the natural source of "because you watched
//! X" (the title with the largest share of a candidate's score).
//!
//! Payload, version 1 (little-endian, `f32` finite):
//!
//! | field | type |
//! |---|---|
//! | quota (users with a history) | `u32` |
//! | quota for users known only by onboarding picks | `u32` |
//! | recency decay | `f32`, `0 ..= 1000` |
//! | similarity scale | `f32`, `≥ 0` (a stored weight `q` is `q · scale`) |
//! | counts | `[u16]`: neighbours per title, one per catalog item, each ≤ [`MAX_NEIGHBOURS`] |
//! | entries | `[(item: u32, weight: u16)]`: every title's neighbours back to back, in catalog order; their number is the sum of the counts |
//!
//! An entry's item is a catalog position other than its own title. The quotas live here, not
//! in `QUOT`/`QUON`, so readers that predate the section keep their four-source blend.

use super::codec::{Reader, Writer};
use crate::error::BundleError;

/// The most neighbours one title may list.
pub const MAX_NEIGHBOURS: usize = 1_024;

/// The largest recency decay (`1 / (1 + decay · k)`; beyond it the weight is the last title's).
const MAX_RECENCY_DECAY: f32 = 1_000.0;

/// The item-to-item neighbour lists and the source's quotas (section `NBRS`, see the module
/// docs).
#[derive(Debug, Clone, PartialEq)]
pub struct Neighbours {
    quota: u32,
    new_user_quota: u32,
    recency_decay: f32,
    scale: f32,
    /// `rows + 1` offsets into `items`/`weights`.
    offsets: Vec<u32>,
    items: Vec<u32>,
    weights: Vec<u16>,
}

impl Neighbours {
    /// Packs per-title lists of `(catalog position, similarity)` (best first, as the trainer
    /// ranks them), quantising similarities to 16 bits of the largest one.
    ///
    /// Errors: a list longer than [`MAX_NEIGHBOURS`], a position outside the lists or equal to
    /// its own title, a similarity that is negative or not finite, or a recency decay outside
    /// `0..=1000`.
    pub fn new(
        lists: &[Vec<(u32, f32)>],
        quota: u32,
        new_user_quota: u32,
        recency_decay: f32,
    ) -> Result<Neighbours, BundleError> {
        let bad = |reason: String| BundleError::Malformed {
            what: "NBRS".into(),
            reason,
        };
        let rows = lists.len();
        let mut max = 0f32;
        for (i, l) in lists.iter().enumerate() {
            if l.len() > MAX_NEIGHBOURS {
                return Err(bad(format!(
                    "title {i} lists {} neighbours, at most {MAX_NEIGHBOURS}",
                    l.len()
                )));
            }
            for &(j, s) in l {
                if j as usize >= rows || j as usize == i {
                    return Err(bad(format!("title {i} lists neighbour {j}")));
                }
                if !(s.is_finite() && s >= 0.0) {
                    return Err(bad(format!("title {i} has similarity {s}")));
                }
                max = max.max(s);
            }
        }
        let scale = if max > 0.0 {
            max / f32::from(u16::MAX)
        } else {
            0.0
        };
        let mut offsets = Vec::with_capacity(rows + 1);
        let mut items = Vec::new();
        let mut weights = Vec::new();
        offsets.push(0);
        for l in lists {
            for &(j, s) in l {
                items.push(j);
                weights.push(if scale > 0.0 {
                    (s / scale).round().min(f32::from(u16::MAX)) as u16
                } else {
                    0
                });
            }
            offsets.push(items.len() as u32);
        }
        Neighbours {
            quota,
            new_user_quota,
            recency_decay,
            scale,
            offsets,
            items,
            weights,
        }
        .checked()
    }

    /// Sets the source's quotas (what tuning changes), for users with a history and for
    /// users known only by onboarding picks.
    pub fn set_quotas(&mut self, quota: u32, new_user_quota: u32) {
        self.quota = quota;
        self.new_user_quota = new_user_quota;
    }

    /// Titles (catalog items) the lists cover.
    pub fn rows(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// Every neighbour entry of every title.
    pub fn entries(&self) -> usize {
        self.items.len()
    }

    /// The source's blend quota for users with a history.
    pub fn quota(&self) -> u32 {
        self.quota
    }

    /// The source's blend quota for users known only by onboarding picks.
    pub fn new_user_quota(&self) -> u32 {
        self.new_user_quota
    }

    /// The history's recency decay.
    pub fn recency_decay(&self) -> f32 {
        self.recency_decay
    }

    /// Title `row`'s neighbours as `(catalog position, similarity)`, best first (empty for a
    /// row outside the lists).
    pub fn of(&self, row: usize) -> impl Iterator<Item = (usize, f32)> + '_ {
        let (a, b) = match (self.offsets.get(row), self.offsets.get(row + 1)) {
            (Some(&a), Some(&b)) => (a as usize, b as usize),
            _ => (0, 0),
        };
        self.items[a..b]
            .iter()
            .zip(&self.weights[a..b])
            .map(|(&j, &w)| (j as usize, f32::from(w) * self.scale))
    }

    /// Every title's score for a user who watched `known` — `(catalog position, weight)`
    /// pairs — : the weighted sum of the similarities of the titles' lists, 0 for a title no
    /// list holds. Positions outside the lists are ignored. Cost O(rows + Σ list lengths).
    pub fn scores(&self, known: &[(usize, f32)]) -> Vec<f32> {
        let mut s = vec![0f32; self.rows()];
        for &(t, w) in known {
            for (j, sim) in self.of(t) {
                s[j] += w * sim;
            }
        }
        s
    }

    /// The settings' bounds: the lists as they are, or `malformed`.
    fn checked(self) -> Result<Neighbours, BundleError> {
        let bad = |reason: String| {
            Err(BundleError::Malformed {
                what: "NBRS".into(),
                reason,
            })
        };
        if !(0.0..=MAX_RECENCY_DECAY).contains(&self.recency_decay) {
            return bad(format!(
                "recency decay {} outside 0..={MAX_RECENCY_DECAY}",
                self.recency_decay
            ));
        }
        if !(self.scale >= 0.0 && self.scale.is_finite()) {
            return bad(format!("similarity scale {}", self.scale));
        }
        Ok(self)
    }

    /// The `NBRS` v1 payload (module docs).
    pub fn to_payload(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u32(self.quota);
        w.u32(self.new_user_quota);
        w.f32(self.recency_decay);
        w.f32(self.scale);
        w.len(self.rows());
        for r in self.offsets.windows(2) {
            w.u16((r[1] - r[0]) as u16);
        }
        w.len(self.items.len());
        for (&j, &q) in self.items.iter().zip(&self.weights) {
            w.u32(j);
            w.u16(q);
        }
        w.finish()
    }

    /// Decodes an `NBRS` v1 payload. Every count is checked against the bytes left before
    /// anything is allocated; never panics.
    pub fn from_payload(b: &[u8]) -> Result<Neighbours, BundleError> {
        let mut r = Reader::new(b, "NBRS");
        let quota = r.u32()?;
        let new_user_quota = r.u32()?;
        let recency_decay = r.f32()?;
        let scale = r.f32()?;
        let rows = r.len(2)?;
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0u32);
        let mut total = 0usize;
        for i in 0..rows {
            let c = usize::from(r.u16()?);
            if c > MAX_NEIGHBOURS {
                return Err(r.malformed(format!(
                    "title {i} lists {c} neighbours, at most {MAX_NEIGHBOURS}"
                )));
            }
            total += c;
            // rows ≤ u32::MAX / 2 and c ≤ 1024 per row cannot overflow u32 in a payload that
            // fits in memory, but the entries' count below is the real bound.
            offsets.push(u32::try_from(total).map_err(|_| r.malformed("too many entries"))?);
        }
        let entries = r.len(6)?;
        if entries != total {
            return Err(r.malformed(format!(
                "{entries} entries where the counts add up to {total}"
            )));
        }
        let mut items = Vec::with_capacity(entries);
        let mut weights = Vec::with_capacity(entries);
        for row in 0..rows {
            for _ in offsets[row]..offsets[row + 1] {
                let j = r.u32()?;
                if j as usize >= rows || j as usize == row {
                    return Err(r.malformed(format!("title {row} lists neighbour {j}")));
                }
                items.push(j);
                weights.push(r.u16()?);
            }
        }
        r.finish()?;
        Neighbours {
            quota,
            new_user_quota,
            recency_decay,
            scale,
            offsets,
            items,
            weights,
        }
        .checked()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lists() -> Vec<Vec<(u32, f32)>> {
        vec![
            vec![(1, 0.5), (2, 0.25)],
            vec![(0, 0.5)],
            vec![],
            vec![(2, 1.0), (0, 0.125)],
        ]
    }

    #[test]
    fn round_trip_and_scores() {
        let n = Neighbours::new(&lists(), 2, 3, 0.05).unwrap();
        let back = Neighbours::from_payload(&n.to_payload()).unwrap();
        assert_eq!(back, n);
        assert_eq!(
            (back.quota(), back.new_user_quota(), back.rows()),
            (2, 3, 4)
        );
        assert_eq!(back.entries(), 5);
        let of3: Vec<(usize, f32)> = back.of(3).collect();
        assert_eq!(of3[0].0, 2);
        assert!((of3[0].1 - 1.0).abs() < 1e-4 && (of3[1].1 - 0.125).abs() < 1e-4);
        // Watched 0 (weight 1) and 3 (weight 0.5): 1 gets 0.5, 2 gets 0.25 + 0.5.
        let s = back.scores(&[(0, 1.0), (3, 0.5)]);
        assert!(
            (s[1] - 0.5).abs() < 1e-4 && (s[2] - 0.75).abs() < 1e-4,
            "{s:?}"
        );
        assert!((s[0] - 0.0625).abs() < 1e-4 && s[3] == 0.0, "{s:?}");
        // Out-of-range rows and positions are ignored, not a panic.
        assert_eq!(back.of(99).count(), 0);
        assert_eq!(back.scores(&[(99, 1.0)]), vec![0.0; 4]);
        let w = crate::content::recency_weights([0, 3].into_iter(), back.recency_decay());
        assert!((w[0].1 - 1.0 / 1.05).abs() < 1e-6 && w[1].1 == 1.0);
    }

    #[test]
    fn bad_lists_and_payloads_are_refused() {
        for bad in [
            vec![vec![(0u32, 0.5f32)]],
            vec![vec![(5, 0.5)]],
            vec![vec![], vec![(0, -1.0)]],
            vec![vec![], vec![(0, f32::NAN)]],
        ] {
            assert!(Neighbours::new(&bad, 1, 1, 0.0).is_err(), "{bad:?}");
        }
        assert!(Neighbours::new(&lists(), 1, 1, -1.0).is_err());
        let long = vec![vec![(1u32, 1.0f32); MAX_NEIGHBOURS + 1], vec![]];
        assert!(Neighbours::new(&long, 1, 1, 0.0).is_err());
        let p = Neighbours::new(&lists(), 1, 1, 0.0).unwrap().to_payload();
        for cut in 0..p.len() {
            assert!(matches!(
                Neighbours::from_payload(&p[..cut]),
                Err(BundleError::Malformed { .. })
            ));
        }
        let mut extra = p.clone();
        extra.push(0);
        assert!(Neighbours::from_payload(&extra).is_err());
        // A neighbour pointing at its own title (title 0's first entry rewritten to 0).
        let first_entry = 4 * 4 + 4 + 2 * 4 + 4;
        let mut own = p.clone();
        own[first_entry..first_entry + 4].copy_from_slice(&0u32.to_le_bytes());
        assert!(Neighbours::from_payload(&own).is_err());
        // A count above the bound.
        let mut many = p;
        many[20..22].copy_from_slice(&2000u16.to_le_bytes());
        assert!(Neighbours::from_payload(&many).is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = Neighbours::from_payload(&bytes);
        }

        #[test]
        fn packed_lists_decode_to_themselves(
            raw in proptest::collection::vec(
                proptest::collection::vec((0u32..20, 0f32..4.0), 0..8), 1..20)
        ) {
            let rows = raw.len() as u32;
            let lists: Vec<Vec<(u32, f32)>> = raw
                .iter()
                .enumerate()
                .map(|(i, l)| l.iter().filter(|(j, _)| *j < rows && *j != i as u32).copied().collect())
                .collect();
            let n = Neighbours::new(&lists, 1, 2, 0.1).unwrap();
            prop_assert_eq!(Neighbours::from_payload(&n.to_payload()).unwrap(), n);
        }
    }
}
