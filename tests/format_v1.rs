//! Format stability: a version-1 bundle kept as test data must keep loading, and today's
//! encoder must still produce it byte for byte. Regenerate it only when the format version
//! changes (then keep the old file and add a new one): `EDGEREC_BLESS=1 cargo test --test format_v1`.

use edgerec::bundle::{
    Bundle, FORMAT_VERSION,
    tests_support::{tiny_contents, tiny_contents_with_sources},
};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/tiny-v1.edgerec");

#[test]
fn v1_fixture_loads_and_encoding_is_stable() {
    let encoded = tiny_contents().encode();
    if std::env::var_os("EDGEREC_BLESS").is_some() {
        std::fs::write(FIXTURE, &encoded).unwrap();
    }
    let kept = std::fs::read(FIXTURE).expect("tests/data/tiny-v1.edgerec is committed");
    assert_eq!(
        FORMAT_VERSION, 1,
        "format changed: keep tiny-v1 and add a fixture for the new version"
    );
    assert_eq!(&kept[8..10], &1u16.to_le_bytes());
    let bundle = Bundle::from_bytes(&kept).expect("the v1 fixture loads");
    assert_eq!(bundle.contents(), &tiny_contents());
    assert_eq!(
        kept, encoded,
        "the encoder no longer reproduces the v1 fixture"
    );
}

#[test]
fn v1_fixture_predates_the_optional_sections_and_a_full_bundle_is_still_v1() {
    let kept = std::fs::read(FIXTURE).expect("tests/data/tiny-v1.edgerec is committed");
    let old = Bundle::from_bytes(&kept).unwrap();
    let c = old.contents();
    assert!(c.ials.is_none() && c.content.is_none() && c.two_tower.is_none() && c.quotas.is_none());
    // The candidate sources are optional sections of the same container version.
    let full = tiny_contents_with_sources().encode();
    assert_eq!(&full[8..10], &FORMAT_VERSION.to_le_bytes());
    assert_eq!(
        Bundle::from_bytes(&full).unwrap().contents(),
        &tiny_contents_with_sources()
    );
}
