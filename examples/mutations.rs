//! Writes the standard mutation suite (`edgerec::test_support::mutations::standard_cases`) for
//! the npm package's run in wasm (`tests/js/mutations.test.mjs`):
//!
//!   cargo run --example mutations -- $EDGEREC_ARTIFACTS/mutations
//!
//! `OUT/cases/NNNN.bin` per case, `OUT/device.edgerec` (the model state cases are served
//! from), and `OUT/index.json`: the cases (name, input, file), the probe states (hex) and
//! the probe requests' time, and per case what the native build decided ("served" or
//! "refused CODE"): the wasm build must decide the same on the same bytes.

use std::fmt::Write as _;
use std::path::PathBuf;

use edgerec::Recommender;
use edgerec::test_support::mutations::{self, Outcome, PROBE_TIME};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(std::env::args().nth(1).ok_or("usage: mutations OUT")?);
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let files = mutations::SEED_FILES
        .iter()
        .map(|(name, rel)| Ok((*name, std::fs::read(data.join(rel))?)))
        .collect::<std::io::Result<Vec<_>>>()?;
    let mutations::Suite {
        cases,
        device,
        states,
    } = mutations::standard_cases(&files);
    if out.exists() {
        std::fs::remove_dir_all(&out)?;
    }
    std::fs::create_dir_all(out.join("cases"))?;
    std::fs::write(out.join("device.edgerec"), &device)?;
    let model = Recommender::from_bytes(&device)?;
    let hex = |b: &[u8]| {
        b.iter().fold(String::new(), |mut s, x| {
            let _ = write!(s, "{x:02x}");
            s
        })
    };
    let states: Vec<String> = states.iter().map(|s| format!("\"{}\"", hex(s))).collect();
    let mut index = format!(
        "{{\"time\":{PROBE_TIME},\"states\":[{}],\"cases\":[\n",
        states.join(",")
    );
    for (i, case) in cases.iter().enumerate() {
        let file = format!("cases/{i:04}.bin");
        std::fs::write(out.join(&file), &case.bytes)?;
        let name = json_string(&case.name);
        // What the native build decided, and why it refused (for the wasm run to tell one
        // kind of difference from others).
        let (native, why) = match mutations::check_case(case, &model) {
            Ok(Outcome::Served(_)) => ("served".to_string(), String::new()),
            Ok(Outcome::Refused { code, message }) => (format!("refused {code}"), message),
            Err(rule) => {
                return Err(format!("{}: {rule} (see tests/mutations.rs)", case.name).into());
            }
        };
        let why = json_string(&why);
        let sep = if i + 1 < cases.len() { "," } else { "" };
        let _ = writeln!(
            index,
            "{{\"name\":\"{name}\",\"input\":\"{}\",\"file\":\"{file}\",\"native\":\"{native}\",\"why\":\"{why}\"}}{sep}",
            case.input.as_str()
        );
    }
    index.push_str("]}\n");
    std::fs::write(out.join("index.json"), index)?;
    println!("{} cases in {}", cases.len(), out.display());
    Ok(())
}

/// `s` as the inside of a JSON string: quotes, backslashes and control characters escaped.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}
