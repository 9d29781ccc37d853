//! Structure-aware fuzzing on stable Rust: a target per input the device accepts, each drawing
//! inputs by stacking the mutation suite's edits ([`super::mutations`]) onto a corpus that
//! starts from real bundles and states and grows with every input that reaches an outcome not
//! seen before (an error code and message shape, or how many rows were served).
//!
//! The targets, and what each input must lead to (otherwise [`Fuzzer::run`] returns the broken
//! rule; a panic, a hang or an allocation above a cap is the driver's to catch):
//!
//! | target | input | contract |
//! |---|---|---|
//! | `container` | a bundle whose header or section table was edited and the header hash redone (or not) | [`BundleContents::decode`] gives a typed error or contents that re-encode to bytes decoding to the same contents |
//! | `sections` | a bundle with one section's payload edited, every hash valid | the same, per section decoder (`META` … `RELS`) |
//! | `state` | a user state whose payload was edited, checksum valid | [`crate::state::UserState::import`] gives a typed error, or a state that exports and imports to itself and whose rows keep the rules |
//! | `onnx` | a bundle whose ranker or user tower ONNX was edited (protobuf-aware, or bytes) | [`Recommender::from_bytes`] (the ONNX check, tract, the load probes) gives a typed error or rows that keep the rules |
//! | `trees` | a tree-ensemble ranker with edited node, child, feature and class ids, weights and values | the same, through the tree check and the native tree engine |
//! | `pipeline` | a bundle with any section edited, dropped, duplicated, swapped or versioned | load → recommend: a typed error or rows that keep the rules ([`check_case`]) |
//!
//! `tests/mutations.rs` runs every target for a fixed number of inputs (the CI smoke run);
//! `examples/fuzz.rs` runs them for as long as it is let run, with a counting allocator, a
//! time cap and a watchdog, and keeps any input that breaks a rule.

use std::collections::{BTreeMap, HashSet};

use sha2::{Digest, Sha256};

use super::mutations::{
    COUNTS, Case, Edit, FLOATS, Input, Outcome, Section, check_case, container, device_seed,
    mutate_onnx, mutate_payload, mutate_sections, sections_of, tag_str,
};
use crate::bundle::BundleContents;
use crate::rng::SplitMix64;
use crate::{Recommender, onnx::pb};

/// One fuzz target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    /// The container: header, section table, hashes.
    Container,
    /// Every section decoder.
    Sections,
    /// The user-state import.
    State,
    /// The ONNX check and tract (ranker and user tower).
    Onnx,
    /// The tree-ensemble check and engine.
    Trees,
    /// The whole load → recommend path.
    Pipeline,
}

impl Target {
    /// Every target, in the order the smoke run takes them.
    pub const ALL: [Target; 6] = [
        Target::Container,
        Target::Sections,
        Target::State,
        Target::Onnx,
        Target::Trees,
        Target::Pipeline,
    ];

    /// The target's name on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Target::Container => "container",
            Target::Sections => "sections",
            Target::State => "state",
            Target::Onnx => "onnx",
            Target::Trees => "trees",
            Target::Pipeline => "pipeline",
        }
    }

    /// The target named `s`.
    pub fn parse(s: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// Most inputs a corpus keeps (new ones replace a random one beyond it).
const MAX_CORPUS: usize = 512;

/// A fuzzer for one target: its corpus, what it has seen, and the device model state inputs
/// are served from.
pub struct Fuzzer {
    target: Target,
    rng: SplitMix64,
    /// Seeds and inputs that reached a new outcome; for bundle targets, parsed into sections.
    corpus: Vec<Vec<Section>>,
    states: Vec<Vec<u8>>,
    seen: HashSet<String>,
    device: Recommender,
    /// Inputs run.
    pub executions: u64,
    /// Inputs by outcome class (`refused <code>`, `served`, `broken`).
    pub outcomes: BTreeMap<String, u64>,
}

impl Fuzzer {
    /// A fuzzer for `target` seeded with `files` (valid bundles, `(name, bytes)`) and the
    /// device bundle with its probe states; deterministic in `seed`.
    pub fn new(target: Target, files: &[(&str, Vec<u8>)], seed: u64) -> Fuzzer {
        let (device_bytes, states) = device_seed();
        let device = Recommender::from_bytes(&device_bytes).expect("the device seed loads");
        let mut bundles: Vec<&[u8]> = vec![&device_bytes];
        bundles.extend(files.iter().map(|(_, b)| b.as_slice()));
        let corpus: Vec<Vec<Section>> = bundles
            .iter()
            .map(|b| sections_of(b))
            .filter(|s| match target {
                Target::Onnx => s.iter().any(|(t, _, _)| t == b"RANK" || t == b"TWRT"),
                Target::Trees => s.iter().any(|(t, _, p)| t == b"RANK" && is_trees(p)),
                _ => !s.is_empty(),
            })
            .collect();
        assert!(!corpus.is_empty(), "no seed for the {target:?} target");
        Fuzzer {
            target,
            rng: SplitMix64::new(seed ^ (target as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)),
            corpus,
            states,
            seen: HashSet::new(),
            device,
            executions: 0,
            outcomes: BTreeMap::new(),
        }
    }

    /// The target.
    pub fn target(&self) -> Target {
        self.target
    }

    /// Inputs in the corpus (seeds included).
    pub fn corpus_len(&self) -> usize {
        self.corpus.len()
            + if self.target == Target::State {
                self.states.len()
            } else {
                0
            }
    }

    /// Outcomes not seen before that grew the corpus.
    pub fn distinct_outcomes(&self) -> usize {
        self.seen.len()
    }

    /// The next input: a corpus entry with one to four edits stacked, and what was done.
    pub fn next_input(&mut self) -> (String, Vec<u8>) {
        let rng = &mut self.rng;
        // Half the inputs carry one edit (most stacks of edits are refused early).
        let edits = if rng.below(2) == 0 {
            1
        } else {
            1 + rng.below(4)
        };
        match self.target {
            Target::State => {
                let base = &self.states[rng.below(self.states.len())];
                let mut payload = base.get(crate::state::HEADER..).unwrap_or(&[]).to_vec();
                let mut what = Vec::new();
                for _ in 0..edits {
                    let (w, p) = mutate_payload(rng, &payload);
                    payload = p;
                    what.push(w);
                }
                (what.join("+"), crate::state::seal(&payload))
            }
            Target::Container => {
                let mut s = self.corpus[rng.below(self.corpus.len())].clone();
                let mut what = Vec::new();
                // Structure first (sections dropped, duplicated, reordered…), then the header.
                if rng.below(2) == 0 {
                    what.push(mutate_sections(rng, &self.corpus, &mut s, Edit::Structure));
                }
                let mut bytes = container(&s);
                for _ in 0..edits {
                    what.push(mutate_header(rng, &mut bytes));
                }
                if rng.below(8) != 0 {
                    reseal_header(&mut bytes);
                } else {
                    what.push("stale-header-hash".into());
                }
                (what.join("+"), bytes)
            }
            Target::Sections | Target::Pipeline => {
                let mut s = self.corpus[rng.below(self.corpus.len())].clone();
                let mut what = Vec::new();
                let edit = match self.target {
                    Target::Pipeline => Edit::Any,
                    _ => Edit::Payload,
                };
                for _ in 0..edits {
                    what.push(mutate_sections(rng, &self.corpus, &mut s, edit));
                }
                (what.join("+"), container(&s))
            }
            Target::Onnx | Target::Trees => {
                let mut s = self.corpus[rng.below(self.corpus.len())].clone();
                let models: Vec<usize> = s
                    .iter()
                    .enumerate()
                    .filter(|(_, (t, _, p))| match self.target {
                        Target::Trees => t == b"RANK" && is_trees(p),
                        _ => t == b"RANK" || t == b"TWRT",
                    })
                    .map(|(i, _)| i)
                    .collect();
                let Some(&i) = models.get(rng.below(models.len().max(1))) else {
                    return ("no-model".into(), container(&s));
                };
                let tag = tag_str(&s[i].0);
                let mut what = Vec::new();
                for _ in 0..edits {
                    let edited = edit_model(rng, &s[i].0, &s[i].2, self.target == Target::Trees);
                    match edited {
                        Some((w, p)) => {
                            s[i].2 = p;
                            what.push(format!("{tag}/{w}"));
                        }
                        None => break,
                    }
                }
                (what.join("+"), container(&s))
            }
        }
    }

    /// Runs one input through the target's contract; `Err` is a broken rule. Inputs that reach
    /// an outcome not seen before join the corpus.
    pub fn run(&mut self, bytes: &[u8]) -> Result<Outcome, String> {
        self.executions += 1;
        let result = match self.target {
            Target::Container | Target::Sections => decode_round_trip(bytes),
            Target::State => check_case(
                &Case {
                    name: String::new(),
                    input: Input::State,
                    bytes: bytes.to_vec(),
                },
                &self.device,
            ),
            Target::Onnx | Target::Trees | Target::Pipeline => check_case(
                &Case {
                    name: String::new(),
                    input: Input::Bundle,
                    bytes: bytes.to_vec(),
                },
                &self.device,
            ),
        };
        let class = match &result {
            Ok(Outcome::Refused { code, .. }) => format!("refused {code}"),
            Ok(Outcome::Served(_)) => "served".to_string(),
            Err(_) => "broken".to_string(),
        };
        *self.outcomes.entry(class).or_default() += 1;
        if let Ok(outcome) = &result
            && self.seen.len() < MAX_SEEN
            && self.seen.insert(signature(outcome))
        {
            self.keep(bytes);
        }
        result
    }

    fn keep(&mut self, bytes: &[u8]) {
        if self.target == Target::State {
            if self.states.len() < MAX_CORPUS {
                self.states.push(bytes.to_vec());
            }
            return;
        }
        let s = sections_of(bytes);
        if s.is_empty() {
            return;
        }
        if self.corpus.len() < MAX_CORPUS {
            self.corpus.push(s);
        } else {
            let i = self.rng.below(self.corpus.len());
            self.corpus[i] = s;
        }
    }
}

/// Most outcome shapes a fuzzer remembers (beyond it, no input joins the corpus for being new).
const MAX_SEEN: usize = 1 << 16;

/// An outcome's shape: the code and the message with its numbers and quoted text dropped (so
/// "count 7" and "count 9", or two garbage names, are one outcome), or how many rows were
/// served.
fn signature(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Refused { code, message } => {
            let mut shape = String::new();
            let mut quote: Option<char> = None;
            for c in message.chars() {
                match quote {
                    Some(q) if c == q => quote = None,
                    Some(_) => {}
                    None if matches!(c, '"' | '\'' | '`') => quote = Some(c),
                    None if c.is_ascii_digit() => {}
                    None => shape.push(c),
                }
                if shape.len() >= 80 {
                    break;
                }
            }
            format!("{code}: {shape}")
        }
        Outcome::Served(rows) => format!("served {rows}"),
    }
}

/// Decodes a bundle; what decodes must be consistent, re-encode, and decode to itself.
fn decode_round_trip(bytes: &[u8]) -> Result<Outcome, String> {
    match BundleContents::decode(bytes) {
        Err(e) => Ok(Outcome::Refused {
            code: e.code(),
            message: e.to_string(),
        }),
        Ok(contents) => {
            contents
                .validate()
                .map_err(|e| format!("decoded contents fail validate: {e}"))?;
            let again = BundleContents::decode(&contents.encode())
                .map_err(|e| format!("re-encoded contents are refused: {e}"))?;
            if again != contents {
                return Err("decode(encode(contents)) differs from contents".into());
            }
            Ok(Outcome::Served(0))
        }
    }
}

/// Whether a `RANK` payload carries a tree ensemble.
fn is_trees(payload: &[u8]) -> bool {
    crate::bundle::RankerModel::from_payload(payload)
        .ok()
        .and_then(|r| <pb::ModelProto as prost::Message>::decode(r.onnx.as_slice()).ok())
        .and_then(|m| m.graph)
        .is_some_and(|g| g.node.iter().any(|n| n.op_type.starts_with("TreeEnsemble")))
}

/// One edit of a model section: mostly protobuf-aware ([`mutate_onnx`], for trees the tree
/// attributes), sometimes the ONNX bytes themselves.
fn edit_model(
    rng: &mut SplitMix64,
    tag: &crate::bundle::Tag,
    payload: &[u8],
    trees: bool,
) -> Option<(String, Vec<u8>)> {
    let edit = |rng: &mut SplitMix64, onnx: &[u8]| -> Option<(String, Vec<u8>)> {
        match rng.below(if trees { 6 } else { 4 }) {
            0 => Some(mutate_payload(rng, onnx)).map(|(w, b)| (format!("bytes:{w}"), b)),
            4 | 5 => edit_trees(rng, onnx),
            _ => mutate_onnx(rng, onnx),
        }
    };
    match tag {
        b"RANK" => {
            let mut rank = crate::bundle::RankerModel::from_payload(payload).ok()?;
            let (what, onnx) = edit(rng, &rank.onnx)?;
            rank.onnx = onnx;
            Some((what, rank.to_payload()))
        }
        b"TWRT" => {
            let (at, onnx) = super::mutations::last_blob(payload)?;
            let (what, edited) = edit(rng, onnx)?;
            let mut p = payload[..at].to_vec();
            p.extend_from_slice(&(edited.len() as u32).to_le_bytes());
            p.extend_from_slice(&edited);
            Some((what, p))
        }
        _ => None,
    }
}

/// Edits one value of a tree ensemble's attributes: ids (node, child, feature, class, tree),
/// modes, thresholds, weights and base values.
fn edit_trees(rng: &mut SplitMix64, onnx: &[u8]) -> Option<(String, Vec<u8>)> {
    let mut model = <pb::ModelProto as prost::Message>::decode(onnx).ok()?;
    let node = model
        .graph
        .as_mut()?
        .node
        .iter_mut()
        .find(|n| n.op_type.starts_with("TreeEnsemble"))?;
    if node.attribute.is_empty() {
        return None;
    }
    let a = rng.below(node.attribute.len());
    let attr = &mut node.attribute[a];
    let what = if !attr.ints.is_empty() {
        let j = rng.below(attr.ints.len());
        let v = match rng.below(4) {
            0 => COUNTS[rng.below(COUNTS.len())] as i64,
            1 => -1 - rng.below(3) as i64,
            2 => attr.ints[rng.below(attr.ints.len())], // another node's value: cycles, repeats
            _ => attr.ints[j].wrapping_add(1),
        };
        attr.ints[j] = v;
        format!("{}[{j}]={v}", attr.name)
    } else if !attr.floats.is_empty() {
        let j = rng.below(attr.floats.len());
        let v = FLOATS[rng.below(FLOATS.len())];
        attr.floats[j] = v;
        format!("{}[{j}]={v}", attr.name)
    } else if !attr.strings.is_empty() {
        let j = rng.below(attr.strings.len());
        let modes: [&[u8]; 4] = [b"BRANCH_LEQ", b"BRANCH_EQ", b"LEAF", b"BRANCH_XX"];
        attr.strings[j] = modes[rng.below(modes.len())].to_vec();
        format!("{}[{j}]", attr.name)
    } else {
        // Drop the attribute altogether.
        let name = attr.name.clone();
        node.attribute.remove(a);
        format!("{name}=none")
    };
    Some((what, prost::Message::encode_to_vec(&model)))
}

/// Size of the fixed header and of one section-table entry (see [`crate::bundle`]).
const FIXED: usize = 16;
const ENTRY: usize = 56;

/// One edit of a container's header or section table: the format version, flags or section
/// count, or one entry's version, reserved field, offset or length.
fn mutate_header(rng: &mut SplitMix64, bytes: &mut [u8]) -> String {
    let n = u32::from_le_bytes(bytes[12..16].try_into().unwrap_or([0; 4])) as usize;
    let entries = n.min(bytes.len().saturating_sub(FIXED) / ENTRY);
    let len = bytes.len() as u64;
    let mut put = |at: usize, v: &[u8]| {
        if let Some(dst) = bytes.get_mut(at..at + v.len()) {
            dst.copy_from_slice(v);
        }
    };
    let u64s = [0, 1, len - 1, len, len + 1, u64::MAX, u32::MAX as u64 + 1];
    match rng.below(8) {
        0 => {
            let v = [0u16, 2, u16::MAX][rng.below(3)];
            put(8, &v.to_le_bytes());
            format!("format={v}")
        }
        1 => {
            put(10, &1u16.to_le_bytes());
            "flags=1".into()
        }
        2 => {
            let v = COUNTS[rng.below(COUNTS.len())];
            put(12, &v.to_le_bytes());
            format!("count={v}")
        }
        _ if entries == 0 => "no-entries".into(),
        k => {
            let e = FIXED + ENTRY * rng.below(entries);
            match k {
                3 => {
                    let v = [0u16, 2, u16::MAX][rng.below(3)];
                    put(e + 4, &v.to_le_bytes());
                    format!("entry@{e}.version={v}")
                }
                4 => {
                    put(e + 6, &1u16.to_le_bytes());
                    format!("entry@{e}.reserved=1")
                }
                5 | 6 => {
                    let v = u64s[rng.below(u64s.len())];
                    put(e + 8, &v.to_le_bytes());
                    format!("entry@{e}.offset={v}")
                }
                _ => {
                    let v = u64s[rng.below(u64s.len())];
                    put(e + 16, &v.to_le_bytes());
                    format!("entry@{e}.length={v}")
                }
            }
        }
    }
}

/// Rewrites the header hash over the header and table as the (possibly edited) count declares
/// them, so an edit reaches the checks behind the hash.
fn reseal_header(bytes: &mut [u8]) {
    let n = u32::from_le_bytes(bytes[12..16].try_into().unwrap_or([0; 4])) as usize;
    let Some(end) = n.checked_mul(ENTRY).and_then(|t| t.checked_add(FIXED)) else {
        return;
    };
    if end + 32 <= bytes.len() {
        let digest = Sha256::digest(&bytes[..end]);
        bytes[end..end + 32].copy_from_slice(&digest);
    }
}
