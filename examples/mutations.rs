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
    let (cases, device) = mutations::standard_cases(&files);
    if out.exists() {
        std::fs::remove_dir_all(&out)?;
    }
    std::fs::create_dir_all(out.join("cases"))?;
    std::fs::write(out.join("device.edgerec"), &device)?;
    let model = Recommender::from_bytes(&device)?;
    let items: Vec<u32> = edgerec::test_support::tiny_contents_for_device()
        .catalog
        .items()
        .iter()
        .map(|i| i.id)
        .collect();
    let hex = |b: &[u8]| {
        b.iter().fold(String::new(), |mut s, x| {
            let _ = write!(s, "{x:02x}");
            s
        })
    };
    let states: Vec<String> = mutations::probe_states(&items)
        .iter()
        .map(|s| format!("\"{}\"", hex(&s.export())))
        .collect();
    let mut index = format!(
        "{{\"time\":{PROBE_TIME},\"states\":[{}],\"cases\":[\n",
        states.join(",")
    );
    for (i, case) in cases.iter().enumerate() {
        let file = format!("cases/{i:04}.bin");
        std::fs::write(out.join(&file), &case.bytes)?;
        let name = case.name.replace('\\', "\\\\").replace('"', "\\\"");
        let native = match mutations::check_case(case, &model) {
            Ok(Outcome::Served(_)) => "served".to_string(),
            Ok(Outcome::Refused(code)) => format!("refused {code}"),
            Err(rule) => {
                return Err(format!("{}: {rule} (see tests/mutations.rs)", case.name).into());
            }
        };
        // Why a bundle was refused, for the wasm run to tell one kind of difference from others.
        let why = match case.input {
            mutations::Input::Bundle => Recommender::from_bytes(&case.bytes)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default(),
            mutations::Input::State => String::new(),
        };
        let why = why.replace('\\', "\\\\").replace('"', "\\\"");
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
