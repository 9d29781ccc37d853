//! Generated hostile inputs with valid checksums, and what every one of them must lead to.
//!
//! Checksums are public, so anyone can craft a bundle or a user state whose every sha256 is
//! right and whose payloads are anything at all. [`bundle_cases`] and [`state_cases`] make such
//! inputs from real seeds, deterministically from a seed number: per section, truncations, bit
//! flips, counts and lengths (0, 1, 2¹⁶, 2³¹, 2³²−1, …), floats (NaN, ±inf, `f32::MAX`),
//! times (`i64::MIN`, `i64::MAX`, milliseconds), 16-bit fields, inserted and dropped bytes;
//! sections dropped, duplicated, swapped in from another seed, unknown or of a newer version;
//! and inside `RANK` and `TWRT`, structure-aware ONNX edits (operators, attributes, initialiser
//! dims and values, tree-ensemble node ids). [`check_case`] states the contract for each: a
//! typed error, or a model whose rows for [`probe_states`] pass every filter ([`check_row`]).
//!
//! The native suite is `tests/mutations.rs` (with a counting allocator and a time cap per
//! case); `examples/mutations.rs` writes the same cases for the npm package's suite
//! (`tests/js/mutations.test.mjs`), so wasm is held to the same contract; `examples/fuzz.rs`
//! draws from the same mutators for as long as it is let run.

use prost::Message;
use sha2::{Digest, Sha256};

use crate::bundle::{Layout, SectionEntry, Tag, container_header};
use crate::context::{Context, Device};
use crate::onnx::pb;
use crate::rng::SplitMix64;
use crate::state::UserState;
use crate::{Recommender, Row, RowRequest};

/// What a case's bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// A model bundle (loaded with [`Recommender::from_bytes`]).
    Bundle,
    /// A user state (imported with [`UserState::import`]).
    State,
}

impl Input {
    /// `"bundle"` or `"state"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Input::Bundle => "bundle",
            Input::State => "state",
        }
    }
}

/// One generated input.
#[derive(Debug, Clone)]
pub struct Case {
    /// What was done to which seed, e.g. `"logistic/RANK/count@1204=4294967295"`.
    pub name: String,
    /// What the bytes are.
    pub input: Input,
    /// The bytes, every checksum valid.
    pub bytes: Vec<u8>,
}

/// The request time of [`probe_states`] and [`probe_requests`]: 2025-11-29, in Unix seconds.
pub const PROBE_TIME: i64 = 1_764_446_400;

/// Counts and lengths written over 4-byte fields.
pub(super) const COUNTS: [u32; 10] = [
    0,
    1,
    2,
    255,
    65_535,
    65_536,
    1 << 24,
    i32::MAX as u32,
    u32::MAX - 1,
    u32::MAX,
];

/// Floats written over 4-byte fields.
pub(super) const FLOATS: [f32; 7] = [
    f32::NAN,
    f32::INFINITY,
    f32::NEG_INFINITY,
    f32::MAX,
    f32::MIN,
    -0.0,
    1e-45,
];

/// Times written over 8-byte fields.
const TIMES: [i64; 6] = [
    i64::MIN,
    i64::MAX,
    -1,
    0,
    PROBE_TIME * 1000,
    crate::limits::MAX_TIME + 1,
];

/// A section: tag, version, payload.
pub(super) type Section = (Tag, u16, Vec<u8>);

/// A container with these sections in this order; unlike [`crate::bundle::ContainerWriter`]
/// it writes repeated tags (which readers must refuse) when the header allows it, and
/// otherwise lays the table out by hand.
pub(super) fn container(sections: &[Section]) -> Vec<u8> {
    let entries: Vec<SectionEntry> = sections
        .iter()
        .map(|(tag, version, payload)| SectionEntry::of(*tag, *version, payload))
        .collect();
    let mut out = match container_header(&entries) {
        Ok(h) => h,
        Err(_) => raw_header(&entries),
    };
    for (_, _, payload) in sections {
        out.extend_from_slice(payload);
    }
    out
}

/// The header bytes [`container_header`] would write, without its checks.
fn raw_header(entries: &[SectionEntry]) -> Vec<u8> {
    let ok: Vec<SectionEntry> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| SectionEntry {
            tag: [
                b'X',
                b'X',
                b'0' + (i / 10 % 10) as u8,
                b'0' + (i % 10) as u8,
            ],
            ..*e
        })
        .collect();
    let mut out = container_header(&ok).unwrap_or_default();
    // Put the real tags back and re-sign the header.
    let fixed = 4 + 2 + 2 + 4;
    let entry = 4 + 2 + 2 + 8 + 8 + 32;
    if out.len() < fixed + entry * entries.len() + 32 {
        return out;
    }
    for (i, e) in entries.iter().enumerate() {
        out[fixed + entry * i..fixed + entry * i + 4].copy_from_slice(&e.tag);
    }
    let end = fixed + entry * entries.len();
    let digest = Sha256::digest(&out[..end]);
    out[end..end + 32].copy_from_slice(&digest);
    out
}

/// The sections of a valid bundle, owned.
pub(super) fn sections_of(bundle: &[u8]) -> Vec<Section> {
    Layout::of(bundle)
        .map(|l| {
            l.sections
                .iter()
                .map(|(e, p)| (e.tag, e.version, p.to_vec()))
                .collect()
        })
        .unwrap_or_default()
}

pub(super) fn tag_str(tag: &Tag) -> String {
    String::from_utf8_lossy(tag).into_owned()
}

/// One edit of a payload: what was done, and the new payload.
pub(super) fn mutate_payload(rng: &mut SplitMix64, payload: &[u8]) -> (String, Vec<u8>) {
    let mut p = payload.to_vec();
    let n = p.len();
    let at = |rng: &mut SplitMix64, width: usize| {
        if n < width {
            None
        } else {
            Some(rng.below(n - width + 1))
        }
    };
    match rng.below(9) {
        0 => {
            let cut = rng.below(n.max(1));
            p.truncate(cut);
            (format!("truncate@{cut}"), p)
        }
        1 => {
            let flips = 1 + rng.below(4);
            for _ in 0..flips {
                if n > 0 {
                    let i = rng.below(n);
                    p[i] ^= 1 << rng.below(8);
                }
            }
            (format!("flip×{flips}"), p)
        }
        2 | 3 => match at(rng, 4) {
            Some(i) => {
                let v = COUNTS[rng.below(COUNTS.len())];
                p[i..i + 4].copy_from_slice(&v.to_le_bytes());
                (format!("count@{i}={v}"), p)
            }
            None => (format!("empty{n}"), vec![]),
        },
        4 => match at(rng, 4) {
            Some(i) => {
                let v = FLOATS[rng.below(FLOATS.len())];
                p[i..i + 4].copy_from_slice(&v.to_le_bytes());
                (format!("float@{i}={v}"), p)
            }
            None => ("float-none".into(), p),
        },
        5 => match at(rng, 8) {
            Some(i) => {
                let v = TIMES[rng.below(TIMES.len())];
                p[i..i + 8].copy_from_slice(&v.to_le_bytes());
                (format!("time@{i}={v}"), p)
            }
            None => ("time-none".into(), p),
        },
        6 => match at(rng, 2) {
            Some(i) => {
                let v = [0u16, 1, u16::MAX][rng.below(3)];
                p[i..i + 2].copy_from_slice(&v.to_le_bytes());
                (format!("u16@{i}={v}"), p)
            }
            None => ("u16-none".into(), p),
        },
        7 => {
            let i = rng.below(n + 1);
            let len = 1 + rng.below(64);
            let from = if n == 0 { 0 } else { rng.below(n) };
            let copy: Vec<u8> = p[from..(from + len).min(n)].to_vec();
            p.splice(i..i, copy.iter().copied());
            (format!("insert@{i}+{}", copy.len()), p)
        }
        _ => {
            if n == 0 {
                return ("delete-none".into(), p);
            }
            let i = rng.below(n);
            let len = 1 + rng.below(64).min(n - i - 1);
            p.drain(i..i + len);
            (format!("delete@{i}-{len}"), p)
        }
    }
}

/// A structure-aware edit of an ONNX model: `None` when the bytes are not one.
pub(super) fn mutate_onnx(rng: &mut SplitMix64, bytes: &[u8]) -> Option<(String, Vec<u8>)> {
    let mut model = pb::ModelProto::decode(bytes).ok()?;
    let graph = model.graph.as_mut()?;
    let what = match rng.below(6) {
        0 if !graph.node.is_empty() => {
            let i = rng.below(graph.node.len());
            let ops = [
                "ConstantOfShape",
                "Expand",
                "Tile",
                "Loop",
                "Relu",
                "Gemm",
                "Reshape",
                "TreeEnsembleRegressor",
                "Unsqueeze",
                "NoSuchOp",
            ];
            let op = ops[rng.below(ops.len())];
            graph.node[i].op_type = op.into();
            format!("op[{i}]={op}")
        }
        1 if !graph.node.is_empty() => {
            let i = rng.below(graph.node.len());
            let node = &mut graph.node[i];
            if node.attribute.is_empty() {
                node.input.push("nowhere".into());
                format!("input[{i}]+nowhere")
            } else {
                let a = rng.below(node.attribute.len());
                let attr = &mut node.attribute[a];
                let v = [i64::MIN, -1, 1 << 40, i64::MAX, 0][rng.below(5)];
                if !attr.ints.is_empty() {
                    let j = rng.below(attr.ints.len());
                    attr.ints[j] = v;
                } else if !attr.floats.is_empty() {
                    let j = rng.below(attr.floats.len());
                    attr.floats[j] = FLOATS[rng.below(FLOATS.len())];
                } else {
                    attr.i = v;
                }
                format!("attr[{i}].{}={v}", attr.name)
            }
        }
        2 if !graph.initializer.is_empty() => {
            let i = rng.below(graph.initializer.len());
            let t = &mut graph.initializer[i];
            let v = [0i64, -1, 1 << 31, 1 << 40][rng.below(4)];
            match t.dims.first_mut() {
                Some(d) => *d = v,
                None => t.dims.push(v),
            }
            format!("dims[{i}]={v}")
        }
        3 if !graph.initializer.is_empty() => {
            let i = rng.below(graph.initializer.len());
            let t = &mut graph.initializer[i];
            if t.raw_data.len() >= 4 {
                let j = 4 * rng.below(t.raw_data.len() / 4);
                let v = FLOATS[rng.below(FLOATS.len())];
                t.raw_data[j..j + 4].copy_from_slice(&v.to_le_bytes());
                format!("value[{i}]={v}")
            } else {
                t.raw_data.clear();
                format!("value[{i}]=empty")
            }
        }
        4 => {
            // Tree ensembles: node and child ids out of range (tract 0.23.9 panics on some).
            let Some(node) = graph
                .node
                .iter_mut()
                .find(|n| n.op_type == "TreeEnsembleClassifier")
            else {
                graph.output.clear();
                return Some(("outputs=none".into(), encode(&model)));
            };
            let names = [
                "nodes_falsenodeids",
                "nodes_truenodeids",
                "nodes_featureids",
                "nodes_nodeids",
                "class_nodeids",
                "class_ids",
            ];
            let name = names[rng.below(names.len())];
            let v = [i64::MAX, -1, 1 << 40, 65_535][rng.below(4)];
            if let Some(a) = node.attribute.iter_mut().find(|a| a.name == name)
                && !a.ints.is_empty()
            {
                let j = rng.below(a.ints.len());
                a.ints[j] = v;
            }
            format!("tree.{name}={v}")
        }
        _ => {
            if graph.node.len() > 1 {
                let i = rng.below(graph.node.len());
                graph.node.swap(0, i);
                format!("swap-node 0,{i}")
            } else {
                graph.node.clear();
                "nodes=none".into()
            }
        }
    };
    Some((what, encode(&model)))
}

fn encode(model: &pb::ModelProto) -> Vec<u8> {
    model.encode_to_vec()
}

/// `RANK` or `TWRT` with its ONNX model edited (`None` when the payload does not decode).
fn mutate_model_section(
    rng: &mut SplitMix64,
    tag: &Tag,
    payload: &[u8],
) -> Option<(String, Vec<u8>)> {
    match tag {
        b"RANK" => {
            let mut rank = crate::bundle::RankerModel::from_payload(payload).ok()?;
            let (what, onnx) = mutate_onnx(rng, &rank.onnx)?;
            rank.onnx = onnx;
            Some((format!("onnx:{what}"), rank.to_payload()))
        }
        b"TWRT" => {
            // The tower's ONNX is the payload's last length-prefixed field.
            let (onnx_at, onnx) = last_blob(payload)?;
            let (what, edited) = mutate_onnx(rng, onnx)?;
            let mut p = payload[..onnx_at].to_vec();
            p.extend_from_slice(&(edited.len() as u32).to_le_bytes());
            p.extend_from_slice(&edited);
            Some((format!("onnx:{what}"), p))
        }
        _ => None,
    }
}

/// The payload's trailing `len: u32, bytes` field, found as the longest suffix whose prefix
/// says its length: `(offset of the length, the bytes)`.
pub(super) fn last_blob(payload: &[u8]) -> Option<(usize, &[u8])> {
    (0..payload.len().saturating_sub(4)).find_map(|i| {
        let len = u32::from_le_bytes(payload[i..i + 4].try_into().ok()?) as usize;
        (len > 16 && i + 4 + len == payload.len()).then(|| (i, &payload[i + 4..]))
    })
}

/// Which edits [`mutate_sections`] may make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Edit {
    /// Sections dropped, duplicated, versioned, unknown or taken from another bundle.
    Structure,
    /// One section's payload (its ONNX model, for `RANK` and `TWRT`, half the time).
    Payload,
    /// Either, one in four structural.
    Any,
}

/// One edit of a bundle's sections `s` (never empty); `others` are bundles a section may be
/// taken from. Returns what was done, e.g. `"RANK/onnx:op[2]=Loop"` or `"CATL/from-#3"`.
pub(super) fn mutate_sections(
    rng: &mut SplitMix64,
    others: &[Vec<Section>],
    s: &mut Vec<Section>,
    edit: Edit,
) -> String {
    if s.is_empty() {
        return "no-sections".into();
    }
    let i = rng.below(s.len());
    let tag = tag_str(&s[i].0);
    let roll = match edit {
        Edit::Structure => rng.below(5),
        Edit::Payload => 5 + rng.below(15),
        Edit::Any => rng.below(20),
    };
    match roll {
        0 => {
            s.remove(i);
            format!("{tag}/drop")
        }
        1 => {
            let copy = s[i].clone();
            s.push(copy);
            format!("{tag}/duplicate")
        }
        2 => {
            s[i].1 = s[i].1.saturating_add(1);
            format!("{tag}/version+1")
        }
        3 => {
            s.push((*b"ZZZZ", 1, vec![0xff; rng.below(64)]));
            "ZZZZ/unknown".into()
        }
        4 => {
            // Mix and match: the same tag from another bundle.
            let j = rng.below(others.len().max(1));
            match others.get(j).and_then(|o| o.iter().find(|t| t.0 == s[i].0)) {
                Some(t) => {
                    s[i] = t.clone();
                    format!("{tag}/from-#{j}")
                }
                None => {
                    s.remove(i);
                    format!("{tag}/drop")
                }
            }
        }
        5..=8 => match mutate_model_section(rng, &s[i].0, &s[i].2) {
            Some((what, payload)) => {
                s[i].2 = payload;
                format!("{tag}/{what}")
            }
            None => {
                let (what, payload) = mutate_payload(rng, &s[i].2);
                s[i].2 = payload;
                format!("{tag}/{what}")
            }
        },
        _ => {
            let (what, payload) = mutate_payload(rng, &s[i].2);
            s[i].2 = payload;
            format!("{tag}/{what}")
        }
    }
}

/// `per_seed` mutated bundles from each of `seeds` (`(name, bytes)`, each a valid bundle), all
/// checksums valid. Deterministic in `seed`.
pub fn bundle_cases(seeds: &[(&str, &[u8])], per_seed: usize, seed: u64) -> Vec<Case> {
    let parsed: Vec<(&str, Vec<Section>)> = seeds
        .iter()
        .map(|(name, bytes)| (*name, sections_of(bytes)))
        .collect();
    let others: Vec<Vec<Section>> = parsed.iter().map(|(_, s)| s.clone()).collect();
    let mut rng = SplitMix64::new(seed);
    let mut out = Vec::with_capacity(seeds.len() * per_seed);
    for (name, sections) in &parsed {
        if sections.is_empty() {
            continue;
        }
        for _ in 0..per_seed {
            let mut s = sections.clone();
            let what = mutate_sections(&mut rng, &others, &mut s, Edit::Any);
            out.push(Case {
                name: format!("{name}/{what}"),
                input: Input::Bundle,
                bytes: container(&s),
            });
        }
    }
    out
}

/// `per_seed` mutated user states from each of `seeds` (exported states), checksums valid.
pub fn state_cases(seeds: &[(&str, &[u8])], per_seed: usize, seed: u64) -> Vec<Case> {
    let mut rng = SplitMix64::new(seed ^ 0x5eed_5747);
    let mut out = Vec::new();
    for (name, bytes) in seeds {
        let Some(payload) = bytes.get(crate::state::HEADER..) else {
            continue;
        };
        for _ in 0..per_seed {
            let (what, p) = mutate_payload(&mut rng, payload);
            out.push(Case {
                name: format!("state-{name}/{what}"),
                input: Input::State,
                bytes: crate::state::seal(&p),
            });
        }
    }
    out
}

/// The users every loaded case is asked for a row: new, with a short past (finished and
/// half-watched titles of the catalog, impressions), and with a maturity limit.
pub fn probe_states(catalog: &crate::catalog::Catalog) -> Vec<UserState> {
    let items: Vec<u32> = catalog.items().iter().map(|i| i.id).collect();
    let mut out = vec![UserState::new()];
    let mut past = UserState::new();
    for (i, &item) in items.iter().take(3).enumerate() {
        let t = PROBE_TIME - 86_400 * (3 - i as i64);
        let _ = past.record_completion(item, t, Device::Tv);
    }
    if let Some(&item) = items.get(3) {
        let _ = past.record_play(item, PROBE_TIME - 3_600, 0.4);
    }
    let _ = past.record_impression(&items[..items.len().min(5)], PROBE_TIME - 600);
    out.push(past.clone());
    past.settings_mut()
        .set_maturity_limit(Some(crate::features::Maturity::Pg));
    out.push(past);
    out
}

/// The requests every loaded case answers: the bundle's defaults, and k = 10 with the ranker
/// off, on a TV and a phone.
pub fn probe_requests() -> Vec<RowRequest> {
    let ctx = |device| Context::new(device, PROBE_TIME, 60).expect("a valid context");
    let mut plain = RowRequest::new(ctx(Device::Mobile));
    plain.k = Some(10);
    plain.use_ranker = false;
    vec![RowRequest::new(ctx(Device::Tv)), plain]
}

/// Checks a row against the rules every row must keep: at most `k` titles (the request's, else
/// the bundle's), no title twice, every title in the catalog, no finished title of `state`,
/// nothing above its maturity limit, finite scores.
pub fn check_row(
    rec: &Recommender,
    state: &UserState,
    req: &RowRequest,
    row: &Row,
) -> Result<(), String> {
    let contents = rec.model().contents();
    let k = req
        .k
        .or_else(|| contents.serving.as_ref().map(|s| s.rerank.k))
        .unwrap_or(10);
    if row.items.len() > k {
        return Err(format!("{} titles for k = {k}", row.items.len()));
    }
    let finished = state.finished_titles();
    let mut seen = std::collections::HashSet::new();
    for r in &row.items {
        if !seen.insert(r.item_id) {
            return Err(format!("title {} twice", r.item_id));
        }
        if contents.catalog.position(r.item_id).is_none() {
            return Err(format!("title {} is not in the catalog", r.item_id));
        }
        if finished.contains(&r.item_id) {
            return Err(format!("finished title {} came back", r.item_id));
        }
        if !r.score.is_finite() {
            return Err(format!("title {} scored {}", r.item_id, r.score));
        }
        if let (Some(limit), Some(media)) =
            (state.settings().maturity_limit(), contents.media.as_ref())
            && let Some(m) = media.media().iter().find(|m| m.id == r.item_id)
            && m.maturity > limit
        {
            return Err(format!("title {} is rated above {limit:?}", r.item_id));
        }
    }
    Ok(())
}

/// The seed bundles of the standard suite, as paths under the crate's `tests/data` (the
/// hand-made device bundle, [`crate::test_support::tiny_contents_for_device`], is added by
/// [`standard_cases`] itself).
pub const SEED_FILES: [(&str, &str); 4] = [
    ("tiny-v1", "tiny-v1.edgerec"),
    ("logistic", "ranker/logistic.edgerec"),
    ("gbdt", "ranker/gbdt.edgerec"),
    ("deep", "ranker/deep.edgerec"),
];

/// The device bundle (`test_support::tiny_contents_for_device`) and its exported
/// [`probe_states`]: the first seed of every suite, and what state inputs are served from.
pub fn device_seed() -> (Vec<u8>, Vec<Vec<u8>>) {
    let contents = crate::test_support::tiny_contents_for_device();
    let states = probe_states(&contents.catalog)
        .iter()
        .map(UserState::export)
        .collect();
    (contents.encode(), states)
}

/// The standard suite (natively `tests/mutations.rs`, in wasm `tests/js/mutations.test.mjs`):
/// 250 cases from each bundle seed (the device bundle, then `files`, the bytes of
/// [`SEED_FILES`] in order) and 84 from each of the three [`probe_states`].
pub fn standard_cases(files: &[(&str, Vec<u8>)]) -> Suite {
    let (device, states) = device_seed();
    let mut seeds: Vec<(&str, &[u8])> = vec![("device", &device)];
    seeds.extend(files.iter().map(|(n, b)| (*n, b.as_slice())));
    let mut cases = bundle_cases(&seeds, 250, 20261203);
    let named: Vec<(&str, &[u8])> = ["new", "past", "limited"]
        .into_iter()
        .zip(states.iter().map(Vec::as_slice))
        .collect();
    cases.extend(state_cases(&named, 84, 20261203));
    Suite {
        cases,
        device,
        states,
    }
}

/// The standard suite ([`standard_cases`]).
#[derive(Debug, Clone)]
pub struct Suite {
    /// The generated inputs.
    pub cases: Vec<Case>,
    /// The device bundle, which state cases are served from.
    pub device: Vec<u8>,
    /// The exported [`probe_states`] of the device bundle's titles.
    pub states: Vec<Vec<u8>>,
}

/// What a case led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Refused with this error code and message.
    Refused {
        /// The error's code.
        code: &'static str,
        /// What it says.
        message: String,
    },
    /// Loaded (or imported) and every probe row kept the rules; how many rows were made.
    Served(usize),
}

/// Runs one case: a bundle is loaded and asked for every probe row ([`probe_states`] ×
/// [`probe_requests`]; a request may fail with a typed error, never with a broken row); a
/// state is imported and, when it imports, asked for rows from `model`. Errors describe a
/// broken rule.
pub fn check_case(case: &Case, model: &Recommender) -> Result<Outcome, String> {
    match case.input {
        Input::Bundle => match Recommender::from_bytes(&case.bytes) {
            Err(e) => Ok(Outcome::Refused {
                code: e.code(),
                message: e.to_string(),
            }),
            Ok(rec) => rows(&rec, &probe_states(&rec.model().contents().catalog)),
        },
        Input::State => match UserState::import(&case.bytes) {
            Err(e) => Ok(Outcome::Refused {
                code: e.code(),
                message: e.to_string(),
            }),
            Ok(state) => {
                // What it exports must import to the same state.
                let back = UserState::import(&state.export()).map_err(|e| e.to_string())?;
                if back != state {
                    return Err("export(import(b)) imports to another state".into());
                }
                rows(model, &[state])
            }
        },
    }
}

fn rows(rec: &Recommender, states: &[UserState]) -> Result<Outcome, String> {
    let mut made = 0;
    for state in states {
        for req in probe_requests() {
            // A typed error is a valid answer (e.g. a ranker whose scores are not finite).
            if let Ok(row) = rec.recommend_row(state, &req) {
                check_row(rec, state, &req, &row)?;
                made += 1;
            }
        }
    }
    Ok(Outcome::Served(made))
}
