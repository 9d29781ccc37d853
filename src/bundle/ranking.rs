//! The ranking stage's sections: the feature contract (`FEAT`) and the ranker (`RANK`).
//!
//! * `FEAT` v1 ([`FeatureContract`]): `format: str` (`edgerec-features/1`, or
//!   `edgerec-features/2` followed by `provenance: u8` — whether vectors end with the
//!   candidate family `cand.*`; a space without it is written as `/1`, so older readers keep
//!   reading it), `recent_days: u32, holiday_horizon_days: u16`, the vocabularies `genres, tags, people, distributors,
//!   languages, countries: [str]` each, then `dense: [str]`, the dense feature names the
//!   trainer computed. The reader rebuilds the [`FeatureSpace`] from the vocabularies and
//!   refuses the section unless its own dense names are exactly the stored ones: a device
//!   whose feature code differs from the trainer's cannot silently feed a ranker other
//!   features than it was trained on.
//! * `RANK` v1 ([`RankerModel`]): `contract: str` (`edgerec-ranker/1`), `kind: str`,
//!   `dense: [str]`, `bags: [(field: str, rows: u32, len: u32)]`, `search_vocab: [str]`,
//!   `output: str, column: u32`, then `onnx: [u8]`. A bundle with `RANK` must have `FEAT`, and
//!   the contract's dense names must equal the feature space's ([`BundleContents::validate`]);
//!   loading the bundle then loads the model into tract against the contract
//!   ([`Ranker::load`]).
//!
//! [`BundleContents::validate`]: super::BundleContents::validate
//! [`Ranker::load`]: crate::ranker::Ranker::load

use super::codec::{Reader, Writer};
use crate::error::BundleError;
use crate::features::{FeatureConfig, FeatureSpace, Vocabularies, Vocabulary};
use crate::ranker::{Bag, BagField, CONTRACT, RankerContract};

/// The feature-contract format of a space without the candidate family (the pipeline's
/// `features.json` too).
pub const FEATURES_FORMAT: &str = "edgerec-features/1";

/// The feature-contract format of a space with the candidate family
/// ([`FeatureConfig::provenance`]).
pub const FEATURES_FORMAT_PROVENANCE: &str = "edgerec-features/2";

/// Most genres a feature space may have: each adds three dense features (all-time and recent
/// genre shares, the title's genre), so the dense width, and every request's candidates ×
/// width feature matrix, stay bounded (1,000 candidates × ~4,000 floats = 16 MB).
pub const MAX_FEATURE_GENRES: usize = 1_024;

/// Most languages a feature space may have (each adds a dense feature).
pub const MAX_FEATURE_LANGUAGES: usize = 1_024;

/// Most names of a sparse vocabulary (tags, people, distributors, countries): ids only, no
/// dense width, but the names are held in memory.
pub const MAX_VOCABULARY: usize = 1 << 22;

/// Longest "recent" window, in days (ten years).
pub const MAX_RECENT_DAYS: u32 = 3_650;

/// The feature space the bundle's models were trained on (section `FEAT`).
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureContract {
    space: FeatureSpace,
}

fn strs(w: &mut Writer, v: &[String]) {
    w.len(v.len());
    for s in v {
        w.str(s);
    }
}

fn read_strs(r: &mut Reader) -> Result<Vec<String>, BundleError> {
    let n = r.len(4)?;
    (0..n).map(|_| r.str()).collect()
}

impl FeatureContract {
    /// The contract of a feature space.
    pub fn new(space: FeatureSpace) -> FeatureContract {
        FeatureContract { space }
    }

    /// The feature space (vocabularies, windows, dense names).
    pub fn space(&self) -> &FeatureSpace {
        &self.space
    }

    /// The `FEAT` v1 payload.
    pub fn to_payload(&self) -> Vec<u8> {
        let mut w = Writer::new();
        let c = self.space.config();
        if c.provenance {
            w.str(FEATURES_FORMAT_PROVENANCE);
            w.u8(1);
        } else {
            w.str(FEATURES_FORMAT);
        }
        w.u32(c.recent_days);
        w.u16(c.holiday_horizon_days);
        for voc in self.space.vocabularies().all() {
            strs(&mut w, voc.names());
        }
        strs(&mut w, self.space.dense_names());
        w.finish()
    }

    /// Decodes and checks a `FEAT` v1 payload. Never panics; allocation is bounded by the
    /// payload's length.
    pub fn from_payload(b: &[u8]) -> Result<FeatureContract, BundleError> {
        let mut r = Reader::new(b, "FEAT");
        let format = r.str()?;
        let provenance = match &*format {
            FEATURES_FORMAT => false,
            FEATURES_FORMAT_PROVENANCE => match r.u8()? {
                0 => false,
                1 => true,
                v => return Err(r.malformed(format!("provenance flag {v}, expected 0 or 1"))),
            },
            _ => {
                return Err(r.malformed(format!(
                    "feature format {format:?}, this reader knows {FEATURES_FORMAT:?} and \
                     {FEATURES_FORMAT_PROVENANCE:?}"
                )));
            }
        };
        let config = FeatureConfig {
            recent_days: r.u32()?,
            holiday_horizon_days: r.u16()?,
            provenance,
        };
        if config.recent_days == 0 || config.recent_days > MAX_RECENT_DAYS {
            return Err(r.malformed(format!(
                "recent_days {} outside 1..={MAX_RECENT_DAYS}",
                config.recent_days
            )));
        }
        let mut vocab = |what: &str, max: usize| -> Result<Vocabulary, BundleError> {
            // The count is checked before any name is read.
            let n = r.len(4)?;
            if n > max {
                return Err(r.malformed(format!("{n} {what}, at most {max}")));
            }
            let names = (0..n).map(|_| r.str()).collect::<Result<Vec<_>, _>>()?;
            let v = Vocabulary::new(names.iter().map(String::as_str));
            if v.names().len() != names.len() {
                return Err(BundleError::Malformed {
                    what: "FEAT".into(),
                    reason: "a vocabulary repeats a name".into(),
                });
            }
            Ok(v)
        };
        let vocab = Vocabularies {
            genres: vocab("genres", MAX_FEATURE_GENRES)?,
            tags: vocab("tags", MAX_VOCABULARY)?,
            people: vocab("people", MAX_VOCABULARY)?,
            distributors: vocab("distributors", MAX_VOCABULARY)?,
            languages: vocab("languages", MAX_FEATURE_LANGUAGES)?,
            countries: vocab("countries", MAX_VOCABULARY)?,
        };
        let dense = read_strs(&mut r)?;
        r.finish()?;
        // The width those vocabularies give is bounded above, so this allocation is too.
        let space = FeatureSpace::new(vocab, config);
        if space.dense_names() != dense.as_slice() {
            let i = (0..dense.len().min(space.dense_names().len()))
                .find(|&i| dense[i] != space.dense_names()[i])
                .unwrap_or(dense.len().min(space.dense_names().len()));
            return Err(BundleError::Contract {
                reason: format!(
                    "the bundle's {} dense features differ from the {} this device computes \
                     from its vocabularies (first difference at {i}: {:?} vs {:?}); the \
                     feature code changed between trainer and device",
                    dense.len(),
                    space.dense_names().len(),
                    dense.get(i),
                    space.dense_names().get(i)
                ),
            });
        }
        Ok(FeatureContract { space })
    }
}

/// A ranker and its input contract (section `RANK`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RankerModel {
    /// What the model reads and where its score is.
    pub contract: RankerContract,
    /// The ONNX model.
    pub onnx: Vec<u8>,
}

impl RankerModel {
    /// The `RANK` v1 payload.
    pub fn to_payload(&self) -> Vec<u8> {
        let c = &self.contract;
        let mut w = Writer::new();
        w.str(CONTRACT);
        w.str(&c.kind);
        strs(&mut w, &c.dense);
        w.len(c.bags.len());
        for b in &c.bags {
            w.str(b.field.as_str());
            w.u32(b.rows);
            w.u32(b.len);
        }
        strs(&mut w, &c.search_vocab);
        w.str(&c.output);
        w.u32(c.column);
        w.bytes(&self.onnx);
        w.finish()
    }

    /// Decodes a `RANK` v1 payload and checks the contract on its own
    /// ([`RankerContract::validate`]); the model itself is checked when the bundle loads it.
    /// Never panics; allocation is bounded by the payload's length.
    pub fn from_payload(b: &[u8]) -> Result<RankerModel, BundleError> {
        let mut r = Reader::new(b, "RANK");
        let version = r.str()?;
        if version != CONTRACT {
            return Err(BundleError::Contract {
                reason: format!("contract {version:?}, this reader knows {CONTRACT:?}"),
            });
        }
        let kind = r.str()?;
        let dense = read_strs(&mut r)?;
        let n_bags = r.len(12)?;
        let mut bags = Vec::with_capacity(n_bags);
        for _ in 0..n_bags {
            let name = r.str()?;
            let field = BagField::parse(&name)
                .ok_or_else(|| r.malformed(format!("unknown bag field {name:?}")))?;
            bags.push(Bag {
                field,
                rows: r.u32()?,
                len: r.u32()?,
            });
        }
        let search_vocab = read_strs(&mut r)?;
        let output = r.str()?;
        let column = r.u32()?;
        let onnx = r.bytes()?.to_vec();
        r.finish()?;
        let contract = RankerContract {
            kind,
            dense,
            bags,
            search_vocab,
            output,
            column,
        };
        contract.validate()?;
        Ok(RankerModel { contract, onnx })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space(provenance: bool) -> FeatureSpace {
        FeatureSpace::new(
            Vocabularies {
                genres: Vocabulary::new(["Drama"]),
                ..Vocabularies::default()
            },
            FeatureConfig {
                provenance,
                ..FeatureConfig::default()
            },
        )
    }

    #[test]
    fn feat_writes_v1_without_the_candidate_family_and_v2_with_it() {
        let v1 = FeatureContract::new(space(false)).to_payload();
        let v2 = FeatureContract::new(space(true)).to_payload();
        let mut r = Reader::new(&v1, "FEAT");
        assert_eq!(r.str().unwrap(), FEATURES_FORMAT);
        let mut r = Reader::new(&v2, "FEAT");
        assert_eq!(r.str().unwrap(), FEATURES_FORMAT_PROVENANCE);
        for (payload, provenance) in [(&v1, false), (&v2, true)] {
            let back = FeatureContract::from_payload(payload).unwrap();
            assert_eq!(back.space().config().provenance, provenance);
            assert_eq!(back.space(), &space(provenance));
        }
        // An unknown flag, and every truncation, are errors (never a panic).
        let mut w = Writer::new();
        w.str(FEATURES_FORMAT_PROVENANCE);
        w.u8(2);
        let mut bad = w.finish();
        bad.extend_from_slice(&v2[FEATURES_FORMAT_PROVENANCE.len() + 5..]);
        assert!(FeatureContract::from_payload(&bad).is_err());
        for n in 0..v2.len() {
            assert!(FeatureContract::from_payload(&v2[..n]).is_err(), "{n}");
        }
    }

    #[test]
    fn feat_vocabularies_and_windows_are_bounded_before_the_space_is_built() {
        let payload = |genres: usize, languages: usize, recent_days: u32| {
            let mut w = Writer::new();
            w.str(FEATURES_FORMAT);
            w.u32(recent_days);
            w.u16(30);
            let names = |n: usize| (0..n).map(|i| format!("n{i}")).collect::<Vec<_>>();
            for v in [
                names(genres),
                vec![],
                vec![],
                vec![],
                names(languages),
                vec![],
            ] {
                strs(&mut w, &v);
            }
            let space = FeatureSpace::new(
                Vocabularies {
                    genres: Vocabulary::new(names(genres)),
                    languages: Vocabulary::new(names(languages)),
                    ..Vocabularies::default()
                },
                FeatureConfig {
                    recent_days,
                    ..FeatureConfig::default()
                },
            );
            strs(&mut w, space.dense_names());
            w.finish()
        };
        assert!(FeatureContract::from_payload(&payload(MAX_FEATURE_GENRES, 3, 90)).is_ok());
        assert!(FeatureContract::from_payload(&payload(3, MAX_FEATURE_LANGUAGES, 90)).is_ok());
        for (g, l, d) in [
            (MAX_FEATURE_GENRES + 1, 3, 90),
            (3, MAX_FEATURE_LANGUAGES + 1, 90),
            (3, 3, 0),
            (3, 3, MAX_RECENT_DAYS + 1),
        ] {
            let e = FeatureContract::from_payload(&payload(g, l, d)).unwrap_err();
            assert!(
                matches!(e, BundleError::Malformed { .. }),
                "{g}, {l}, {d}: {e}"
            );
        }
    }
}
