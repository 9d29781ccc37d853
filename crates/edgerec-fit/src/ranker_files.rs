//! Reading a ranker and the feature contract it was trained on from files, for
//! `edgerec bundle build --ranker`.
//!
//! * The feature contract is the pipeline's `features.json` (`edgerec-features/1`: the
//!   vocabularies, windows and dense names). The feature space is rebuilt from the
//!   vocabularies with the core's code and must give exactly the dense names the file lists.
//! * The ranker is an ONNX file plus its `edgerec-ranker/1` contract: a JSON file
//!   (`--ranker-contract`, for models made elsewhere) or, for models exported by
//!   `edgerec rank train`, the model's own metadata (`edgerec.ranker`, `edgerec.bags`; the dense
//!   features are then the feature contract's).
//!
//! Contract JSON:
//!
//! ```json
//! { "contract": "edgerec-ranker/1", "kind": "sklearn-logistic/1",
//!   "dense": ["user.age", "..."], "bags": [{"field": "genres", "rows": 40, "len": 8}],
//!   "search_vocab": [], "output": "probabilities", "column": 1 }
//! ```

use std::path::Path;

use anyhow::{Context as _, Result, bail};
use edgerec::bundle::{FeatureContract, RankerModel};
use edgerec::features::{FeatureConfig, FeatureSpace, Vocabularies, Vocabulary};
use edgerec::onnx;
use edgerec::ranker::{Bag, BagField, CONTRACT, RankerContract};
use serde::Deserialize;

#[derive(Deserialize)]
struct FeaturesFile {
    format: String,
    dense: Vec<String>,
    genres: Vec<String>,
    tags: Vec<String>,
    people: Vec<String>,
    distributors: Vec<String>,
    languages: Vec<String>,
    countries: Vec<String>,
    recent_days: u32,
    holiday_horizon_days: u16,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BagFile {
    field: String,
    rows: u32,
    len: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ContractFile {
    contract: String,
    kind: String,
    dense: Vec<String>,
    #[serde(default)]
    bags: Vec<BagFile>,
    #[serde(default)]
    search_vocab: Vec<String>,
    output: String,
    column: u32,
}

fn read<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))
}

/// The feature space of a pipeline's `features.json`, checked against the core's feature code.
pub fn feature_contract(path: &Path) -> Result<FeatureContract> {
    let f: FeaturesFile = read(path)?;
    if f.format != edgerec::bundle::ranking::FEATURES_FORMAT {
        bail!(
            "{}: format {:?}, expected {:?}",
            path.display(),
            f.format,
            edgerec::bundle::ranking::FEATURES_FORMAT
        );
    }
    let v = |names: &[String]| Vocabulary::new(names.iter().map(String::as_str));
    let space = FeatureSpace::new(
        Vocabularies {
            genres: v(&f.genres),
            tags: v(&f.tags),
            people: v(&f.people),
            distributors: v(&f.distributors),
            languages: v(&f.languages),
            countries: v(&f.countries),
        },
        FeatureConfig {
            recent_days: f.recent_days,
            holiday_horizon_days: f.holiday_horizon_days,
            provenance: false,
        },
    );
    if space.dense_names() != f.dense.as_slice() {
        bail!(
            "{}: its {} dense features are not the {} the feature code computes from its \
             vocabularies (written by another version of the pipeline?)",
            path.display(),
            f.dense.len(),
            space.dense_names().len()
        );
    }
    Ok(FeatureContract::new(space))
}

fn bags(items: impl IntoIterator<Item = (String, u32, u32)>) -> Result<Vec<Bag>> {
    items
        .into_iter()
        .map(|(field, rows, len)| {
            let field = BagField::parse(&field).with_context(|| {
                format!(
                    "unknown bag field {field:?} (known: {})",
                    BagField::ALL.map(BagField::as_str).join(", ")
                )
            })?;
            Ok(Bag { field, rows, len })
        })
        .collect()
}

/// The ranker in `onnx_path` with its contract: from `contract_path`, or else from the model's
/// `edgerec.*` metadata with the dense features of `features`.
pub fn ranker(
    onnx_path: &Path,
    contract_path: Option<&Path>,
    features: &FeatureContract,
) -> Result<RankerModel> {
    let bytes =
        std::fs::read(onnx_path).with_context(|| format!("reading {}", onnx_path.display()))?;
    let contract = match contract_path {
        Some(path) => contract_file(path)?,
        None => contract_from_metadata(onnx_path, &bytes, features)?,
    };
    Ok(RankerModel {
        contract,
        onnx: bytes,
    })
}

/// A contract JSON file (models made elsewhere).
fn contract_file(path: &Path) -> Result<RankerContract> {
    let c: ContractFile = read(path)?;
    if c.contract != CONTRACT {
        bail!(
            "{}: contract {:?}, this edgerec reads {CONTRACT:?}",
            path.display(),
            c.contract
        );
    }
    Ok(RankerContract {
        kind: c.kind,
        dense: c.dense,
        bags: bags(c.bags.into_iter().map(|b| (b.field, b.rows, b.len)))?,
        search_vocab: c.search_vocab,
        output: c.output,
        column: c.column,
    })
}

/// A ranker exported by `edgerec-rank` (`to_onnx`), held in memory, with the contract its
/// `edgerec.*` metadata and `features`' dense names make.
pub fn ranker_from_onnx(
    name: &str,
    onnx: Vec<u8>,
    features: &FeatureContract,
) -> Result<RankerModel> {
    let contract = contract_from_metadata(Path::new(name), &onnx, features)?;
    Ok(RankerModel { contract, onnx })
}

/// The contract of a model exported by `edgerec rank`, from its `edgerec.*` metadata, with
/// the dense features of `features`.
fn contract_from_metadata(
    onnx_path: &Path,
    bytes: &[u8],
    features: &FeatureContract,
) -> Result<RankerContract> {
    let model = onnx::decode(bytes)
        .with_context(|| format!("{} is not an ONNX model", onnx_path.display()))?;
    let kind = onnx::metadata(&model, "edgerec.ranker").with_context(|| {
        format!(
            "{} has no edgerec.ranker metadata: pass its contract with --ranker-contract",
            onnx_path.display()
        )
    })?;
    let mut parsed = Vec::new();
    for entry in onnx::metadata(&model, "edgerec.bags")
        .unwrap_or("")
        .split(',')
        .filter(|e| !e.is_empty())
    {
        let parts: Vec<&str> = entry.split(':').collect();
        let [field, rows, len] = parts[..] else {
            bail!("edgerec.bags entry {entry:?} is not field:rows:len");
        };
        parsed.push((field.to_string(), rows.parse()?, len.parse()?));
    }
    let outputs: Vec<&str> = model
        .graph
        .iter()
        .flat_map(|g| g.output.iter().map(|o| o.name.as_str()))
        .collect();
    let (output, column) = if outputs.contains(&"p_watch") {
        ("p_watch", 0)
    } else if outputs.contains(&"probabilities") {
        ("probabilities", 1)
    } else {
        bail!(
            "{}: no p_watch or probabilities output (outputs {outputs:?}); pass a contract \
             with --ranker-contract",
            onnx_path.display()
        );
    };
    let search_vocab = match onnx::metadata(&model, "edgerec.search_tokens") {
        Some(s) if !s.is_empty() => s.split('\n').map(str::to_string).collect(),
        _ => Vec::new(),
    };
    Ok(RankerContract {
        kind: kind.to_string(),
        dense: features.space().dense_names().to_vec(),
        bags: bags(parsed)?,
        search_vocab,
        output: output.to_string(),
        column,
    })
}
