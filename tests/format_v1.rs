//! Format stability: a version-1 bundle kept as test data must keep loading, and today's
//! encoder must still produce it byte for byte. Regenerate it only when the format version
//! changes (then keep the old file and add a new one): `EDGEREC_BLESS=1 cargo test --test format_v1`.

use edgerec::bundle::{Bundle, FORMAT_VERSION, tests_support::tiny_contents};

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
