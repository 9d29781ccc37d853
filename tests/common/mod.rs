//! Bundle helpers shared by the ranker integration tests (`tests/ranker.rs`,
//! `tests/ranker_byo.rs`). A directory module, so cargo does not build it as a test of its own.

use edgerec::bundle::{BundleContents, ContainerWriter, FeatureContract, RankerModel};
use edgerec::features::{FeatureSpace, FeatureVector};
use edgerec::ranker::{RankerContract, RankerRow};
use edgerec::test_support::tiny_contents;

/// The tiny test bundle carrying `space`'s feature contract and this ranker.
pub fn with_ranker(c: RankerContract, onnx: Vec<u8>, space: FeatureSpace) -> BundleContents {
    BundleContents {
        features: Some(FeatureContract::new(space)),
        ranker: Some(RankerModel { contract: c, onnx }),
        ..tiny_contents()
    }
}

/// Encodes without the encoder's consistency check, as a foreign or buggy trainer might.
pub fn encode_unchecked(c: &BundleContents) -> Vec<u8> {
    let full = BundleContents {
        features: None,
        ranker: None,
        ..c.clone()
    }
    .encode();
    let mut w = ContainerWriter::default();
    for (tag, payload) in sections_of(&full) {
        w.section(tag, 1, payload);
    }
    if let Some(f) = &c.features {
        w.section(*b"FEAT", 1, f.to_payload());
    }
    if let Some(r) = &c.ranker {
        w.section(*b"RANK", 1, r.to_payload());
    }
    w.finish()
}

/// The (tag, payload) pairs of an encoded bundle, read from its section table.
pub fn sections_of(bytes: &[u8]) -> Vec<([u8; 4], Vec<u8>)> {
    let n = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    (0..n)
        .map(|i| {
            let e = &bytes[16 + 56 * i..16 + 56 * (i + 1)];
            let tag: [u8; 4] = e[0..4].try_into().unwrap();
            let off = u64::from_le_bytes(e[8..16].try_into().unwrap()) as usize;
            let len = u64::from_le_bytes(e[16..24].try_into().unwrap()) as usize;
            (tag, bytes[off..off + len].to_vec())
        })
        .collect()
}

/// Ranker rows of these feature vectors with no history and no searches.
pub fn as_rows(fvs: &[FeatureVector]) -> Vec<RankerRow<'_>> {
    fvs.iter()
        .map(|f| RankerRow {
            features: f,
            history: &[],
            search: &[],
        })
        .collect()
}
