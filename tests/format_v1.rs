//! Format stability: version-1 bundles kept as test data must keep loading and serving, and
//! today's encoder must still produce the newest of them byte for byte.
//!
//! * `tiny-v1.edgerec` — written by the first encoder, when the skeleton's `GENV` (genre
//!   vectors) and `BLND` (blend weights) sections were required. Readers now skip both; the
//!   file is kept unchanged as the golden old bundle.
//! * `tiny-v1-without-genv.edgerec` — the same contents from today's encoder, which no longer
//!   writes them. Regenerate it only when the encoding of these sections changes (and keep the
//!   old file): `EDGEREC_BLESS=1 cargo test --test format_v1`.

use edgerec::bundle::{BundleContents, FORMAT_VERSION};
use edgerec::context::{Context, Device};
use edgerec::state::UserState;
use edgerec::test_support::{tiny_contents, tiny_contents_with_sources};
use edgerec::{Recommender, RowRequest};

const OLD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/tiny-v1.edgerec");
const CURRENT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/tiny-v1-without-genv.edgerec"
);

/// The section tags of an encoded bundle, in table order.
fn tags(bytes: &[u8]) -> Vec<String> {
    let n = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    (0..n)
        .map(|i| String::from_utf8_lossy(&bytes[16 + 56 * i..20 + 56 * i]).into_owned())
        .collect()
}

#[test]
fn current_fixture_loads_and_encoding_is_stable() {
    let encoded = tiny_contents().encode();
    if std::env::var_os("EDGEREC_BLESS").is_some() {
        std::fs::write(CURRENT, &encoded).unwrap();
    }
    let kept =
        std::fs::read(CURRENT).expect("tests/data/tiny-v1-without-genv.edgerec is committed");
    assert_eq!(
        FORMAT_VERSION, 1,
        "format changed: keep the v1 fixtures and add one for the new version"
    );
    assert_eq!(&kept[8..10], &1u16.to_le_bytes());
    assert_eq!(tags(&kept), ["META", "CATL", "POPL"]);
    let decoded = BundleContents::decode(&kept).expect("the v1 fixture loads");
    assert_eq!(decoded, tiny_contents());
    assert_eq!(
        kept, encoded,
        "the encoder no longer reproduces the v1 fixture"
    );
}

#[test]
fn the_first_encoders_bundle_still_loads_and_serves_a_row() {
    let old = std::fs::read(OLD).expect("tests/data/tiny-v1.edgerec is committed");
    assert_eq!(tags(&old), ["META", "CATL", "POPL", "GENV", "BLND"]);
    // GENV and BLND are skipped; everything else decodes to the same contents.
    assert_eq!(BundleContents::decode(&old).unwrap(), tiny_contents());
    let rec = Recommender::from_bytes(&old).unwrap();
    let mut state = UserState::new();
    state.record_play(10, 1_000, 1.0).unwrap();
    let ctx = Context::new(Device::Tv, 90_000, 0).unwrap();
    let row = rec.recommend_row(&state, &RowRequest::new(ctx)).unwrap();
    // Popularity alone (the only source such a bundle has), finished title left out.
    let ids: Vec<u32> = row.items.iter().map(|r| r.item_id).collect();
    assert_eq!(ids, [40, 20, 30]);
}

#[test]
fn old_bundles_predate_the_optional_sections_and_a_full_bundle_is_still_v1() {
    let kept = std::fs::read(OLD).expect("tests/data/tiny-v1.edgerec is committed");
    let c = BundleContents::decode(&kept).unwrap();
    assert!(c.ials.is_none() && c.content.is_none() && c.two_tower.is_none() && c.quotas.is_none());
    // The candidate sources are optional sections of the same container version.
    let full = tiny_contents_with_sources().encode();
    assert_eq!(&full[8..10], &FORMAT_VERSION.to_le_bytes());
    assert_eq!(
        BundleContents::decode(&full).unwrap(),
        tiny_contents_with_sources()
    );
}
