//! The plain ABI called natively (the same functions the .wasm exports): handles, error codes
//! and the row, on the core's tiny device bundle. `edgerec-wasm-tools tv-parity` runs the real
//! module in wasmi against the native CLI's rows.

use edgerec::Recommender;
use edgerec::state::UserState;
use edgerec_tv::host::{buffer_from, take_buffer};
use edgerec_tv::*;

fn last_error() -> serde_json::Value {
    let h = edgerec_last_error();
    assert!(h > 0, "no last error");
    serde_json::from_slice(&take_buffer(h).unwrap()).unwrap()
}

fn tiny_bundle() -> Vec<u8> {
    edgerec::test_support::tiny_contents_for_device().encode()
}

const OPTIONS: &str =
    r#"{"context":{"device":"tv","timestamp":1764446400,"utcOffsetMinutes":60},"k":3}"#;

#[test]
fn a_row_through_the_abi_is_the_core_row() {
    let bundle = tiny_bundle();
    let buf = buffer_from(&bundle);
    let rec = edgerec_recommender_load(buf, 0);
    assert!(rec > 0, "load: {}", last_error());
    assert_eq!(edgerec_free(buf), 0);

    let state = edgerec_state_new();
    assert_eq!(
        edgerec_state_record_play(state, 10, 1_764_400_000, 0.95, 0, 0),
        0
    );
    let options = buffer_from(OPTIONS.as_bytes());
    let row = edgerec_recommend_row(rec, state, options);
    assert!(row > 0, "row: {}", last_error());
    assert_eq!(edgerec_last_error(), 0, "a success clears the last error");
    let row: serde_json::Value = serde_json::from_slice(&take_buffer(row).unwrap()).unwrap();
    assert!(row.get("timings").is_none(), "the module has no clock");

    // The same request through the core.
    let core = Recommender::from_bytes(&bundle).unwrap();
    let mut s = UserState::new();
    s.record_progress(
        10,
        1_764_400_000,
        edgerec::state::Progress {
            fraction: 0.95,
            watched_s: 0,
            device: edgerec::context::Device::Tv,
        },
    )
    .unwrap();
    let parsed: edgerec::wire::RowOptions = serde_json::from_str(OPTIONS).unwrap();
    let want = core
        .recommend_row(&s, &parsed.to_request().unwrap())
        .unwrap();
    let got: Vec<u64> = row["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["itemId"].as_u64().unwrap())
        .collect();
    let want_ids: Vec<u64> = want.items.iter().map(|i| u64::from(i.item_id)).collect();
    assert_eq!(got, want_ids);
    assert!(!got.contains(&10), "a finished title came back");
    for (item, w) in row["items"].as_array().unwrap().iter().zip(&want.items) {
        assert_eq!(item["reason"].as_str().unwrap(), w.reason.text());
        assert!((item["score"].as_f64().unwrap() - f64::from(w.score)).abs() < 1e-6);
    }

    // State round trip.
    let exported = take_buffer(edgerec_state_export(state)).unwrap();
    assert_eq!(exported, s.export());
    let again = edgerec_state_import(buffer_from(&exported));
    assert!(again > 0);
    for h in [rec, state, again, options] {
        assert_eq!(edgerec_free(h), 0);
    }
}

#[test]
fn bad_input_gets_a_code_and_a_message_never_a_panic() {
    // Handles: made up, freed, or of the wrong kind.
    assert_eq!(
        edgerec_recommend_row(12345, 1, 2),
        ErrorCode::BadHandle as i32
    );
    assert_eq!(last_error()["code"], "bad_handle");
    let state = edgerec_state_new();
    assert_eq!(edgerec_free(state), 0);
    assert_eq!(edgerec_free(state), ErrorCode::BadHandle as i32);
    assert_eq!(edgerec_state_export(state), ErrorCode::BadHandle as i32);
    let buf = buffer_from(b"not a bundle at all");
    assert_eq!(edgerec_state_export(buf), ErrorCode::BadHandle as i32);
    assert!(
        last_error()["message"]
            .as_str()
            .unwrap()
            .contains("is a buffer, not a state")
    );
    assert_eq!(edgerec_buffer_ptr(999_999), 0);

    // Bytes: not a bundle, a truncated one, a bundle over the memory budget, corrupt state.
    assert_eq!(edgerec_recommender_load(buf, 0), ErrorCode::BadMagic as i32);
    let bundle = tiny_bundle();
    let short = buffer_from(&bundle[..bundle.len() / 2]);
    assert_eq!(
        edgerec_recommender_load(short, 0),
        ErrorCode::Truncated as i32
    );
    let whole = buffer_from(&bundle);
    assert_eq!(
        edgerec_recommender_load(whole, 1024),
        ErrorCode::OverBudget as i32
    );
    assert_eq!(last_error()["code"], "over_budget");
    assert_eq!(edgerec_state_import(buf), ErrorCode::CorruptState as i32);

    // Sizes: a buffer past the limit is refused before allocating.
    assert_eq!(
        edgerec_buffer_new(MAX_BUFFER_BYTES + 1),
        ErrorCode::OutOfMemory as i32
    );
    let odd = buffer_from(&[1, 2, 3]);
    let state = edgerec_state_new();
    assert_eq!(
        edgerec_state_record_impressions(state, odd, 1_764_446_400),
        ErrorCode::InvalidArgument as i32
    );

    // Arguments: fraction, device, time, options.
    assert_eq!(
        edgerec_state_record_play(state, 1, 1_764_446_400, 1.5, 0, 0),
        ErrorCode::InvalidArgument as i32
    );
    assert_eq!(
        edgerec_state_record_play(state, 1, 1_764_446_400, 0.5, 0, 9),
        ErrorCode::InvalidArgument as i32
    );
    assert_eq!(
        edgerec_state_record_play(state, 1, i64::MAX, 0.5, 0, 0),
        ErrorCode::InvalidArgument as i32
    );
    let rec = edgerec_recommender_load(whole, 0);
    assert!(rec > 0);
    for bad in [
        "{",
        r#"{"k":3}"#,
        r#"{"context":{"device":"tv","timestamp":1764446400},"k":0}"#,
        r#"{"context":{"device":"tv","timestamp":1764446400},"k":2.5}"#,
        r#"{"context":{"device":"toaster","timestamp":1764446400}}"#,
        r#"{"context":{"device":"tv","timestamp":1764446400000}}"#,
        r#"{"context":{"device":"tv","timestamp":1764446400},"kk":3}"#,
        r#"{"context":{"device":"tv","timestamp":1764446400,"tz":1}}"#,
    ] {
        let options = buffer_from(bad.as_bytes());
        assert_eq!(
            edgerec_recommend_row(rec, state, options),
            ErrorCode::InvalidArgument as i32,
            "{bad}"
        );
        assert!(
            last_error()["message"]
                .as_str()
                .unwrap()
                .starts_with("invalid argument"),
            "{bad}"
        );
    }
    assert_eq!(edgerec_abi_version(), ABI_VERSION);
}

#[test]
fn a_signed_release_is_verified_then_assembled_into_the_bundle() {
    use edgerec::release::{KeySet, Manifest, SecretKey, TrustRoot};
    let (root, signer) = (SecretKey::from_seed([1; 32]), SecretKey::from_seed([2; 32]));
    let bundle = tiny_bundle();
    let key_set = KeySet {
        serial: 1,
        expires: 2_000_000_000,
        keys: vec![signer.public_key()],
    }
    .sign(&[&root])
    .unwrap();
    let signed = Manifest::for_bundle(
        &bundle,
        3,
        "stable",
        "tiny",
        1_764_000_000,
        1_800_000_000,
        1,
    )
    .unwrap()
    .sign(&key_set, &signer)
    .unwrap();
    let trust = buffer_from(TrustRoot::single(root.public_key()).to_text().as_bytes());
    let manifest = buffer_from(&signed);
    let verify =
        |expect: &str| edgerec_release_verify(manifest, trust, buffer_from(expect.as_bytes()));

    // Policy refusals, each with its code.
    assert_eq!(
        verify(r#"{"channel":"beta"}"#),
        ErrorCode::WrongChannel as i32
    );
    assert_eq!(
        verify(r#"{"channel":"stable","now":1900000000}"#),
        ErrorCode::Expired as i32
    );
    assert_eq!(
        verify(r#"{"channel":"stable","installedVersion":4}"#),
        ErrorCode::Rollback as i32
    );
    assert_eq!(
        verify(r#"{"channel":"stable","nope":1}"#),
        ErrorCode::InvalidArgument as i32
    );
    let mut forged = signed.clone();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    let forged = buffer_from(&forged);
    let code = edgerec_release_verify(forged, trust, buffer_from(br#"{"channel":"stable"}"#));
    assert!(code < 0, "a forged manifest verified");
    let other_root = buffer_from(TrustRoot::single(signer.public_key()).to_text().as_bytes());
    assert!(
        edgerec_release_verify(
            manifest,
            other_root,
            buffer_from(br#"{"channel":"stable"}"#)
        ) < 0
    );

    let release = verify(r#"{"channel":"stable","now":1764446400,"installedVersion":2}"#);
    assert!(release > 0, "verify: {}", last_error());
    let m: serde_json::Value =
        serde_json::from_slice(&take_buffer(edgerec_release_manifest(release)).unwrap()).unwrap();
    assert_eq!(m["version"], 3);
    assert_eq!(m["bundleLength"].as_u64().unwrap() as usize, bundle.len());
    let payload: u64 = m["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["length"].as_u64().unwrap())
        .sum();
    let sections = &bundle[bundle.len() - payload as usize..];

    // A flipped byte or a short download is refused; the right bytes give the bundle back.
    let mut bad = sections.to_vec();
    bad[0] ^= 1;
    assert_eq!(
        edgerec_release_assemble(release, buffer_from(&bad)),
        ErrorCode::SectionMismatch as i32
    );
    assert_eq!(
        edgerec_release_assemble(release, buffer_from(&sections[1..])),
        ErrorCode::SectionMismatch as i32
    );
    let assembled = edgerec_release_assemble(release, buffer_from(sections));
    assert!(assembled > 0, "assemble: {}", last_error());
    assert!(
        edgerec_recommender_load(assembled, 0) > 0,
        "load: {}",
        last_error()
    );
    assert_eq!(take_buffer(assembled).unwrap(), bundle);
}
