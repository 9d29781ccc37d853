//! The ranking stage's sections: the feature contract (`FEAT`) and the ranker (`RANK`).
//!
//! * `FEAT` v1 ([`FeatureContract`]): `format: str` (`edgerec-features/1`), `recent_days: u32,
//!   holiday_horizon_days: u16`, the vocabularies `genres, tags, people, distributors,
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

/// The feature-contract format this crate reads and writes.
pub const FEATURES_FORMAT: &str = "edgerec-features/1";

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
        w.str(FEATURES_FORMAT);
        let c = self.space.config();
        w.u32(c.recent_days);
        w.u16(c.holiday_horizon_days);
        let v = self.space.vocabularies();
        for voc in [
            &v.genres,
            &v.tags,
            &v.people,
            &v.distributors,
            &v.languages,
            &v.countries,
        ] {
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
        if format != FEATURES_FORMAT {
            return Err(r.malformed(format!(
                "feature format {format:?}, this reader knows {FEATURES_FORMAT:?}"
            )));
        }
        let config = FeatureConfig {
            recent_days: r.u32()?,
            holiday_horizon_days: r.u16()?,
        };
        let mut vocab = || -> Result<Vocabulary, BundleError> {
            let names = read_strs(&mut r)?;
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
            genres: vocab()?,
            tags: vocab()?,
            people: vocab()?,
            distributors: vocab()?,
            languages: vocab()?,
            countries: vocab()?,
        };
        let dense = read_strs(&mut r)?;
        r.finish()?;
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
