//! A native evaluator for ONNX-ML `TreeEnsembleClassifier`, the operator gradient-boosted
//! trees and random forests are exported as (`edgerec-rank`'s GBDT, skl2onnx's forests).
//!
//! tract 0.23.9 finds a leaf's votes with `leaves.outer_iter().skip(start)`, which steps
//! through the whole leaf table up to the leaf for every tree of every row: scoring costs
//! O(rows · trees · leaves) instead of O(rows · trees · depth). [`TreeEnsemble`] reads the
//! operator's attributes from the decoded `NodeProto`, checks every index once, and lays the
//! trees out as one flat array of 16-byte nodes with absolute child indices, so a row walks
//! each tree with one comparison per level.
//!
//! # Semantics: tract's, which follow the ONNX-ML spec where the spec is clear
//!
//! * Per row, every tree's leaf adds its `class_weights` to their `class_ids`' scores, in tree
//!   order and, within a leaf, in attribute order, summing in f32 from 0 (tract's order, so
//!   sums match bit for bit); then `base_values` are added (when present), then
//!   `post_transform`: `NONE`, `LOGISTIC` (tract's f32 rational approximation of the
//!   sigmoid, copied here, so scores match to the last bits) or `SOFTMAX` (over the classes).
//! * A branch sends the row to `nodes_truenodeids` when `x MODE value` holds, where `x` is the
//!   row's `nodes_featureids` feature as f32; a NaN `x` goes to the true child exactly when
//!   `nodes_missing_value_tracks_true` is 1 (default 0).
//! * Output columns: one per class label; except that when there are at most two labels and
//!   every vote is for class 0 (skl2onnx's binary forests), tract writes `[1 − s₀, s₀]` (its
//!   "binary result layout", `s₀` after the transform; onnxruntime also expands a binary
//!   classifier with one weight column to two, and the BYO random forest scores as
//!   scikit-learn's `predict_proba` this way). With votes for class 1 only (`edgerec-rank`'s
//!   GBDT), tract does *not* expand: column 0 is `transform(base₀)`, column 1 is P; the
//!   ranker contract reads column 1 either way.
//!
//! # What is refused, and what is left to tract
//!
//! [`TreeError::Invalid`]: attribute sets that are not a tree ensemble by the spec and on
//! which tract 0.23.9 misbehaves (it does not check them): mismatched attribute lengths,
//! negative ids, node ids of a tree other than `0..n` (tract reads child ids as positions),
//! duplicate nodes, children outside their tree, cycles (tract loops forever), class ids at or
//! above the number of labels (tract writes out of bounds), class entries naming no leaf (tract
//! then drops the votes of every later leaf), and `BRANCH_GTE` (tract 0.23.9 decodes it as a
//! leaf: its comparator table stops at 5). The runtime refuses such models.
//!
//! [`TreeError::Unsupported`]: valid models this evaluator does not reproduce, which tract
//! keeps scoring: `*_as_tensor` attributes, post transforms other than the three above,
//! trees deeper than [`MAX_DEPTH`] or sharing branch nodes, feature ids from 2²⁴ up.
//!
//! Nothing here panics or allocates more than a small multiple of the attribute arrays the
//! protobuf decoder already holds.

use crate::onnx::pb;
use pb::attribute_proto::AttributeType;

/// Deepest path (in branches) [`TreeEnsemble::from_node`] accepts; deeper trees stay with
/// tract.
pub const MAX_DEPTH: usize = 512;

/// Feature ids must be below this (they share a `u32` with the comparison mode).
const MAX_FEATURE: u64 = 1 << 24;

const FEATURE_MASK: u32 = (1 << 24) - 1;
const OP_SHIFT: u32 = 24;
const NAN_TRUE: u32 = 1 << 27;

/// Comparison codes in [`Node::meta`] (bits 24..27); 0 marks a leaf.
const LEAF: u32 = 0;
const LEQ: u32 = 1;
const LT: u32 = 2;
const GTE: u32 = 3;
const GT: u32 = 4;
const EQ: u32 = 5;
const NEQ: u32 = 6;
/// Not a node code: the walk reads the code from each node.
const MIXED: u32 = 7;

/// Why an attribute set is not evaluated natively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeError {
    /// Not a valid tree ensemble, and tract would loop, panic, write out of bounds or
    /// silently score something else: the model must be refused.
    Invalid(String),
    /// A valid model outside what this evaluator reproduces: tract scores it.
    Unsupported(String),
}

impl std::fmt::Display for TreeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TreeError::Invalid(r) => write!(f, "invalid TreeEnsembleClassifier: {r}"),
            TreeError::Unsupported(r) => {
                write!(f, "TreeEnsembleClassifier not evaluated natively: {r}")
            }
        }
    }
}

fn invalid<T>(reason: impl Into<String>) -> Result<T, TreeError> {
    Err(TreeError::Invalid(reason.into()))
}

fn unsupported<T>(reason: impl Into<String>) -> Result<T, TreeError> {
    Err(TreeError::Unsupported(reason.into()))
}

/// The transform applied to the class scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostTransform {
    /// Raw scores.
    None,
    /// tract's f32 sigmoid, per score.
    Logistic,
    /// Softmax over the classes.
    Softmax,
}

/// One node, 16 bytes. Branch: `next = [true child, false child]` (absolute indices),
/// `value` the threshold. Leaf: `next = [first vote, end of votes)`, `value` its weight in
/// single-vote mode.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Node {
    value: f32,
    /// Bits 0..24: feature; 24..27: comparison code ([`LEAF`] for a leaf); bit 27: NaN goes
    /// to the true child.
    meta: u32,
    next: [u32; 2],
}

/// One vote of a leaf: `weight` added to class `class`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Vote {
    class: u32,
    weight: f32,
}

/// A `TreeEnsembleClassifier` ready to score rows: see the [module docs](self).
#[derive(Clone, PartialEq)]
pub struct TreeEnsemble {
    nodes: Vec<Node>,
    /// Root of each tree, in tree order.
    roots: Vec<u32>,
    votes: Vec<Vote>,
    n_classes: usize,
    /// `Some(c)` when every leaf has exactly one vote, for class `c`: leaves then carry their
    /// weight and rows sum into one accumulator.
    single_class: Option<u32>,
    base: Option<Vec<f32>>,
    post: PostTransform,
    binary_layout: bool,
    /// One more than the largest feature id of any node (tract's requirement on the width).
    n_features: usize,
    /// The comparison code shared by every branch, or [`MIXED`].
    uniform_op: u32,
    /// Longest root-to-leaf path, in branches.
    depth: usize,
}

impl std::fmt::Debug for TreeEnsemble {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TreeEnsemble")
            .field("trees", &self.roots.len())
            .field("nodes", &self.nodes.len())
            .field("votes", &self.votes.len())
            .field("n_classes", &self.n_classes)
            .field("single_class", &self.single_class)
            .field("post", &self.post)
            .field("binary_layout", &self.binary_layout)
            .field("n_features", &self.n_features)
            .field("depth", &self.depth)
            .finish()
    }
}

/// The attribute `name` (the first one, as tract reads it), checked to have type `ty`.
fn attr<'a>(
    node: &'a pb::NodeProto,
    name: &str,
    ty: AttributeType,
) -> Result<Option<&'a pb::AttributeProto>, TreeError> {
    match node.attribute.iter().find(|a| a.name == name) {
        None => Ok(None),
        Some(a) if a.r#type == ty as i32 => Ok(Some(a)),
        Some(a) => invalid(format!(
            "attribute {name} has type {}, expected {}",
            a.r#type,
            ty.as_str_name()
        )),
    }
}

fn ints<'a>(node: &'a pb::NodeProto, name: &str) -> Result<Option<&'a [i64]>, TreeError> {
    Ok(attr(node, name, AttributeType::Ints)?.map(|a| a.ints.as_slice()))
}

fn floats<'a>(node: &'a pb::NodeProto, name: &str) -> Result<Option<&'a [f32]>, TreeError> {
    Ok(attr(node, name, AttributeType::Floats)?.map(|a| a.floats.as_slice()))
}

fn strings<'a>(node: &'a pb::NodeProto, name: &str) -> Result<Option<&'a [Vec<u8>]>, TreeError> {
    Ok(attr(node, name, AttributeType::Strings)?.map(|a| a.strings.as_slice()))
}

fn required<'a, T>(v: Option<&'a [T]>, name: &str, n: Option<usize>) -> Result<&'a [T], TreeError> {
    let v = v.ok_or_else(|| TreeError::Invalid(format!("attribute {name} is missing")))?;
    sized(v, name, n)
}

fn sized<'a, T>(v: &'a [T], name: &str, n: Option<usize>) -> Result<&'a [T], TreeError> {
    match n {
        Some(n) if v.len() != n => invalid(format!(
            "attribute {name} has {} values, expected {n}",
            v.len()
        )),
        _ => Ok(v),
    }
}

/// A non-negative id that fits in `u32`.
fn id(v: i64, name: &str) -> Result<u32, TreeError> {
    u32::try_from(v)
        .ok()
        .filter(|&x| x < u32::MAX)
        .ok_or_else(|| TreeError::Invalid(format!("{name} has an out-of-range id {v}")))
}

/// Checks tract's rule for tree ids listed in attribute order: starting at 0, each one equal
/// to the previous or one more. Returns the tree count.
fn grouped(tree_ids: &[i64], name: &str) -> Result<usize, TreeError> {
    let mut prev: Option<i64> = None;
    for &t in tree_ids {
        let ok = match prev {
            None => t == 0,
            Some(p) => t == p || t == p + 1,
        };
        if !ok {
            return invalid(format!(
                "{name} must start at 0 and list each tree's entries together, in tree order \
                 (found {t} after {prev:?})"
            ));
        }
        prev = Some(t);
    }
    Ok(prev.map_or(0, |p| p as usize + 1))
}

fn mode(s: &[u8]) -> Result<u32, TreeError> {
    Ok(match s {
        b"LEAF" => LEAF,
        b"BRANCH_LEQ" => LEQ,
        b"BRANCH_LT" => LT,
        b"BRANCH_GT" => GT,
        b"BRANCH_EQ" => EQ,
        b"BRANCH_NEQ" => NEQ,
        b"BRANCH_GTE" => {
            return invalid(
                "BRANCH_GTE nodes: tract 0.23.9 decodes them as leaves (its comparator table \
                 stops before >=) and would score the model wrongly",
            );
        }
        other => {
            return invalid(format!(
                "unknown node mode {:?}",
                String::from_utf8_lossy(other)
            ));
        }
    })
}

/// The check of every tree's shape: an iterative depth-first walk from each root.
struct Walk {
    /// Per node: 0 not seen, 1 on the current path, 2 done.
    state: Vec<u8>,
    /// The current path: (node, children visited).
    stack: Vec<(u32, u8)>,
    /// Longest root-to-leaf path seen, in branches.
    depth: usize,
    /// A branch was reached from two parents (the walk does not descend twice, so `depth`
    /// may then be too small).
    shared: bool,
}

impl Walk {
    /// Walks every tree from its root (node id 0, tract's first row): refuses a cycle and
    /// returns the walk's depth and sharing record.
    fn all(nodes: &[Node], roots: &[u32]) -> Result<Walk, TreeError> {
        let mut walk = Walk {
            state: vec![0; nodes.len()],
            stack: Vec::new(),
            depth: 0,
            shared: false,
        };
        for &root in roots {
            walk.tree(nodes, root)?;
        }
        Ok(walk)
    }

    /// Walks the tree at `root`: refuses a cycle, records depth and sharing. O(nodes).
    fn tree(&mut self, nodes: &[Node], root: u32) -> Result<(), TreeError> {
        self.stack.clear();
        if self.state[root as usize] != 0 {
            return invalid(format!("node index {root} is the root of two trees"));
        }
        self.state[root as usize] = 1;
        self.stack.push((root, 0));
        while let Some(top) = self.stack.last_mut() {
            let (i, k) = *top;
            let node = nodes[i as usize];
            if node.meta >> OP_SHIFT == LEAF || k == 2 {
                self.state[i as usize] = 2;
                self.stack.pop();
                continue;
            }
            top.1 += 1;
            let child = node.next[usize::from(k)];
            // Edges from the root to `child`: the branches above it.
            let child_depth = self.stack.len();
            self.depth = self.depth.max(child_depth);
            match self.state[child as usize] {
                1 => return invalid(format!("the trees have a cycle through node index {child}")),
                // Done: no cycle below it. A leaf reached twice is harmless; a shared branch
                // leaves the depth bound unchecked on this path.
                2 => self.shared |= nodes[child as usize].meta >> OP_SHIFT != LEAF,
                _ => {
                    self.state[child as usize] = 1;
                    self.stack.push((child, 0));
                }
            }
        }
        Ok(())
    }
}

/// Notes the first `*_as_tensor` attribute present as a reason to leave the model to tract.
fn tensor_attributes(node: &pb::NodeProto) -> Option<String> {
    let mut leave_to_tract: Option<String> = None;
    for name in [
        "nodes_values_as_tensor",
        "class_weights_as_tensor",
        "base_values_as_tensor",
    ] {
        if node.attribute.iter().any(|a| a.name == name) {
            leave_to_tract.get_or_insert(format!("attribute {name} (tract reads the float lists)"));
        }
    }
    leave_to_tract
}

/// The number of class labels: exactly one of `classlabels_int64s` and
/// `classlabels_strings`, not empty.
fn class_count(node: &pb::NodeProto) -> Result<usize, TreeError> {
    let labels_int = ints(node, "classlabels_int64s")?;
    let labels_str = strings(node, "classlabels_strings")?;
    let n_classes = match (labels_int, labels_str) {
        (Some(l), None) => l.len(),
        (None, Some(l)) => l.len(),
        (None, None) => return invalid("no classlabels_int64s or classlabels_strings"),
        (Some(_), Some(_)) => {
            return invalid("both classlabels_int64s and classlabels_strings");
        }
    };
    if n_classes == 0 {
        return invalid("no class labels");
    }
    Ok(n_classes)
}

/// The `nodes_*` attribute arrays, one entry per node in attribute order.
struct NodeArrays<'a> {
    feature_ids: &'a [i64],
    node_ids: &'a [i64],
    tree_ids: &'a [i64],
    true_ids: &'a [i64],
    false_ids: &'a [i64],
    values: &'a [f32],
    modes: &'a [Vec<u8>],
    /// Empty when the attribute is absent; else 0 or 1 per node.
    missing: &'a [i64],
}

impl<'a> NodeArrays<'a> {
    /// Reads the node arrays: present (but for `nodes_missing_value_tracks_true`), of one
    /// length between 1 and `u32::MAX / 2`, missing-value flags 0 or 1.
    fn read(node: &'a pb::NodeProto) -> Result<NodeArrays<'a>, TreeError> {
        let feature_ids = required(ints(node, "nodes_featureids")?, "nodes_featureids", None)?;
        let n = feature_ids.len();
        if n == 0 {
            return invalid("no nodes");
        }
        if n >= u32::MAX as usize / 2 {
            return invalid("too many nodes");
        }
        let nn = Some(n);
        let node_ids = required(ints(node, "nodes_nodeids")?, "nodes_nodeids", nn)?;
        let tree_ids = required(ints(node, "nodes_treeids")?, "nodes_treeids", nn)?;
        let true_ids = required(ints(node, "nodes_truenodeids")?, "nodes_truenodeids", nn)?;
        let false_ids = required(ints(node, "nodes_falsenodeids")?, "nodes_falsenodeids", nn)?;
        let values = required(floats(node, "nodes_values")?, "nodes_values", nn)?;
        let modes = required(strings(node, "nodes_modes")?, "nodes_modes", nn)?;
        let missing = match ints(node, "nodes_missing_value_tracks_true")? {
            Some(m) => sized(m, "nodes_missing_value_tracks_true", nn)?,
            None => &[],
        };
        if let Some(&m) = missing.iter().find(|&&m| m != 0 && m != 1) {
            return invalid(format!(
                "nodes_missing_value_tracks_true holds {m}, not 0 or 1"
            ));
        }
        Ok(NodeArrays {
            feature_ids,
            node_ids,
            tree_ids,
            true_ids,
            false_ids,
            values,
            modes,
            missing,
        })
    }

    /// Number of nodes.
    fn len(&self) -> usize {
        self.feature_ids.len()
    }
}

/// The `class_*` attribute arrays: one entry per vote, in attribute order.
struct ClassEntries<'a> {
    ids: &'a [i64],
    nodes: &'a [i64],
    trees: &'a [i64],
    weights: &'a [f32],
}

impl<'a> ClassEntries<'a> {
    /// Reads the class entry arrays: present, of one length between 1 and `u32::MAX / 2`.
    fn read(node: &'a pb::NodeProto) -> Result<ClassEntries<'a>, TreeError> {
        let ids = required(ints(node, "class_ids")?, "class_ids", None)?;
        let n_votes = ids.len();
        if n_votes == 0 {
            return invalid("no class entries (leaf weights)");
        }
        if n_votes >= u32::MAX as usize / 2 {
            return invalid("too many class entries");
        }
        let nv = Some(n_votes);
        let nodes = required(ints(node, "class_nodeids")?, "class_nodeids", nv)?;
        let trees = required(ints(node, "class_treeids")?, "class_treeids", nv)?;
        let weights = required(floats(node, "class_weights")?, "class_weights", nv)?;
        Ok(ClassEntries {
            ids,
            nodes,
            trees,
            weights,
        })
    }
}

/// The `post_transform` attribute (default `NONE`). `PROBIT` and `SOFTMAX_ZERO` are valid
/// but noted in `leave_to_tract`; other values are refused.
fn post_transform(
    node: &pb::NodeProto,
    leave_to_tract: &mut Option<String>,
) -> Result<PostTransform, TreeError> {
    Ok(match attr(node, "post_transform", AttributeType::String)? {
        None => PostTransform::None,
        Some(a) => match a.s.as_slice() {
            b"NONE" => PostTransform::None,
            b"LOGISTIC" => PostTransform::Logistic,
            b"SOFTMAX" => PostTransform::Softmax,
            b"PROBIT" | b"SOFTMAX_ZERO" => {
                leave_to_tract
                    .get_or_insert(format!("post_transform {}", String::from_utf8_lossy(&a.s)));
                PostTransform::None
            }
            other => {
                return invalid(format!(
                    "unknown post_transform {:?}",
                    String::from_utf8_lossy(other)
                ));
            }
        },
    })
}

/// `offsets[t]..offsets[t + 1]`: tree `t`'s nodes in the flat array, for tree ids already
/// checked by [`grouped`] (`n_trees + 1` entries).
fn tree_offsets(tree_ids: &[i64], n_trees: usize) -> Vec<u32> {
    let mut offsets = Vec::with_capacity(n_trees + 1);
    offsets.push(0u32);
    for (i, w) in tree_ids.windows(2).enumerate() {
        if w[0] != w[1] {
            offsets.push(i as u32 + 1);
        }
    }
    offsets.push(tree_ids.len() as u32);
    offsets
}

/// Per flat position (tree offset + node id), the attribute index of that node: refuses node
/// ids outside `0..k` for a tree of `k` nodes and nodes listed twice.
fn node_slots(a: &NodeArrays, offsets: &[u32]) -> Result<Vec<u32>, TreeError> {
    let n = a.len();
    let mut slot = vec![u32::MAX; n];
    for i in 0..n {
        let t = a.tree_ids[i] as usize;
        let (start, end) = (offsets[t], offsets[t + 1]);
        let k = end - start;
        let nid = id(a.node_ids[i], "nodes_nodeids")?;
        if nid >= k {
            return invalid(format!(
                "tree {t} has {k} nodes but a node id {nid}: node ids must be 0..{k} \
                 (tract 0.23.9 reads child ids as positions)"
            ));
        }
        let s = (start + nid) as usize;
        if slot[s] != u32::MAX {
            return invalid(format!("tree {t} lists node {nid} twice"));
        }
        slot[s] = i as u32;
    }
    Ok(slot)
}

/// The flat node array, with what the evaluator needs to know of all its branches.
struct FlatNodes {
    /// In tree order, each tree's nodes by node id; leaves not yet linked to their votes.
    nodes: Vec<Node>,
    /// One more than the largest feature id of any node.
    n_features: usize,
    /// The comparison code shared by every branch, [`MIXED`], or `None` without branches.
    uniform_op: Option<u32>,
}

impl FlatNodes {
    /// Lays the trees out in flat order (`slot` from [`node_slots`]), checking every node.
    fn build(
        a: &NodeArrays,
        offsets: &[u32],
        slot: &[u32],
        leave_to_tract: &mut Option<String>,
    ) -> Result<FlatNodes, TreeError> {
        let mut nodes = Vec::with_capacity(a.len());
        let mut n_features = 0usize;
        let mut uniform_op = None;
        for (t, w) in offsets.windows(2).enumerate() {
            let (start, end) = (w[0], w[1]);
            for s in start..end {
                let i = slot[s as usize] as usize;
                let (node, feature) = flat_node(a, i, t, start, end, leave_to_tract)?;
                // tract checks the input width against every node's feature, leaves included.
                n_features = n_features.max(feature as usize + 1);
                let op = node.meta >> OP_SHIFT;
                if op != LEAF {
                    uniform_op = match uniform_op {
                        None => Some(op),
                        Some(u) if u == op => Some(u),
                        Some(_) => Some(MIXED),
                    };
                }
                nodes.push(node);
            }
        }
        Ok(FlatNodes {
            nodes,
            n_features,
            uniform_op,
        })
    }
}

/// The node at attribute index `i`, of tree `t` (flat positions `start..end`), and its
/// feature id: checks the mode, the feature id and (for a branch) both children.
fn flat_node(
    a: &NodeArrays,
    i: usize,
    t: usize,
    start: u32,
    end: u32,
    leave_to_tract: &mut Option<String>,
) -> Result<(Node, u64), TreeError> {
    let op = mode(&a.modes[i])?;
    let feature = u64::try_from(a.feature_ids[i])
        .map_err(|_| TreeError::Invalid(format!("negative feature id {}", a.feature_ids[i])))?;
    if feature >= MAX_FEATURE {
        leave_to_tract.get_or_insert(format!("feature id {feature} (at most {MAX_FEATURE})"));
    }
    let nan_true = a.missing.get(i).is_some_and(|&m| m == 1);
    let mut meta = op << OP_SHIFT;
    let mut next = [0u32; 2];
    if op != LEAF {
        meta |= feature as u32 & FEATURE_MASK;
        if nan_true {
            meta |= NAN_TRUE;
        }
        for (k, child) in [a.true_ids[i], a.false_ids[i]].into_iter().enumerate() {
            let c = id(child, "nodes_truenodeids/nodes_falsenodeids")?;
            if c >= end - start {
                return invalid(format!(
                    "node {} of tree {t} points to node {c}, which the tree does not have",
                    a.node_ids[i]
                ));
            }
            next[k] = start + c;
        }
    }
    let node = Node {
        value: a.values[i],
        meta,
        next,
    };
    Ok((node, feature))
}

/// Checks every class entry (a leaf of its tree, a class below `n_classes`) and returns,
/// per entry, the flat position of its leaf, and per position `s`, at `s + 1`, the number
/// of entries for it.
fn vote_targets(
    c: &ClassEntries,
    offsets: &[u32],
    nodes: &[Node],
    n_classes: usize,
) -> Result<(Vec<u32>, Vec<u32>), TreeError> {
    let n_votes = c.ids.len();
    let mut count = vec![0u32; nodes.len() + 1];
    let mut target = Vec::with_capacity(n_votes);
    for v in 0..n_votes {
        let t = c.trees[v] as usize;
        let (start, end) = (offsets[t], offsets[t + 1]);
        let nid = id(c.nodes[v], "class_nodeids")?;
        if nid >= end - start {
            return invalid(format!(
                "class entry {v} names node {nid} of tree {t}, which has {} nodes",
                end - start
            ));
        }
        let s = (start + nid) as usize;
        if nodes[s].meta >> OP_SHIFT != LEAF {
            return invalid(format!(
                "class entry {v} names node {nid} of tree {t}, which is not a leaf"
            ));
        }
        let class = id(c.ids[v], "class_ids")?;
        if class as usize >= n_classes {
            return invalid(format!(
                "class entry {v} is for class {class}, but there are {n_classes} labels"
            ));
        }
        count[s + 1] += 1;
        target.push(s as u32);
    }
    Ok((target, count))
}

/// Groups the checked votes by leaf, in attribute order within a leaf (tract sorts the
/// entries stably by (tree, node)). Turns `count` from [`vote_targets`] into its prefix
/// sums: the leaf at flat position `s` owns `votes[count[s]..count[s + 1]]`.
fn votes_by_leaf(c: &ClassEntries, target: &[u32], count: &mut [u32]) -> Vec<Vote> {
    for s in 1..count.len() {
        count[s] += count[s - 1];
    }
    let mut fill = count.to_vec();
    let mut votes = vec![
        Vote {
            class: 0,
            weight: 0.0
        };
        target.len()
    ];
    for (v, &s) in target.iter().enumerate() {
        let s = s as usize;
        votes[fill[s] as usize] = Vote {
            class: c.ids[v] as u32,
            weight: c.weights[v],
        };
        fill[s] += 1;
    }
    votes
}

/// Points every leaf at its votes (`count` as [`votes_by_leaf`] leaves it); a leaf with one
/// vote also carries its weight. Returns the class every leaf's single vote is for, if any.
fn attach_votes(nodes: &mut [Node], count: &[u32], votes: &[Vote]) -> Option<u32> {
    let mut single_class = votes.first().map(|v| v.class);
    for (s, node) in nodes.iter_mut().enumerate() {
        if node.meta >> OP_SHIFT == LEAF {
            node.next = [count[s], count[s + 1]];
            if count[s + 1] - count[s] == 1 {
                let vote = votes[count[s] as usize];
                node.value = vote.weight;
                if single_class != Some(vote.class) {
                    single_class = None;
                }
            } else {
                node.value = 0.0;
                single_class = None;
            }
        }
    }
    single_class
}

impl TreeEnsemble {
    /// Reads and checks a `TreeEnsembleClassifier` node's attributes (the operator type and
    /// domain are the caller's business). Cost: O(nodes + class entries) time and memory.
    ///
    /// Every [`TreeError::Invalid`] check runs before an [`TreeError::Unsupported`] is
    /// returned, so a model left to tract is never one tract would mis-run.
    pub fn from_node(node: &pb::NodeProto) -> Result<TreeEnsemble, TreeError> {
        // Why the model is left to tract, once every validity check has passed.
        let mut leave_to_tract = tensor_attributes(node);
        let n_classes = class_count(node)?;
        let arrays = NodeArrays::read(node)?;
        let entries = ClassEntries::read(node)?;
        let base = match floats(node, "base_values")? {
            Some(b) => Some(sized(b, "base_values", Some(n_classes))?.to_vec()),
            None => None,
        };
        let post = post_transform(node, &mut leave_to_tract)?;

        // Trees: contiguous runs of the attribute arrays (tract's rule), node ids 0..k.
        let n_trees = grouped(arrays.tree_ids, "nodes_treeids")?;
        let vote_trees = grouped(entries.trees, "class_treeids")?;
        if vote_trees != n_trees {
            return invalid(format!(
                "nodes describe {n_trees} trees, class entries {vote_trees}"
            ));
        }
        let offsets = tree_offsets(arrays.tree_ids, n_trees);
        let slot = node_slots(&arrays, &offsets)?;
        let flat = FlatNodes::build(&arrays, &offsets, &slot, &mut leave_to_tract)?;
        let mut nodes = flat.nodes;

        // Votes: per leaf, in attribute order.
        let (target, mut count) = vote_targets(&entries, &offsets, &nodes, n_classes)?;
        let votes = votes_by_leaf(&entries, &target, &mut count);
        let single_class = attach_votes(&mut nodes, &count, &votes);
        let binary_layout = n_classes < 3 && votes.iter().all(|v| v.class == 0);

        // Every tree from its root: no cycle, bounded depth.
        let roots = &offsets[..n_trees];
        let walk = Walk::all(&nodes, roots)?;
        if walk.shared {
            leave_to_tract.get_or_insert("a branch node has two parents".into());
        }
        if walk.depth > MAX_DEPTH {
            leave_to_tract.get_or_insert(format!("a tree deeper than {MAX_DEPTH}"));
        }
        if let Some(reason) = leave_to_tract {
            return unsupported(reason);
        }
        Ok(TreeEnsemble {
            nodes,
            roots: roots.to_vec(),
            votes,
            n_classes,
            single_class,
            base,
            post,
            binary_layout,
            n_features: flat.n_features,
            uniform_op: flat.uniform_op.unwrap_or(LT),
            depth: walk.depth,
        })
    }

    /// Number of trees.
    #[cfg(test)]
    pub fn n_trees(&self) -> usize {
        self.roots.len()
    }

    /// Width the input must have: one more than the largest feature id of any node.
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// Width of the probabilities output (2 in the binary layout, else one per label).
    pub fn columns(&self) -> usize {
        if self.binary_layout {
            2
        } else {
            self.n_classes
        }
    }

    /// Longest root-to-leaf path, in branches.
    #[cfg(test)]
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// The probabilities output (row-major `[rows, columns()]`) for `dense`, row-major with
    /// `d` features per row. Errors if `d` is below [`TreeEnsemble::n_features`] or `dense` is
    /// not whole rows. Cost: O(rows · trees · depth).
    pub fn probabilities(&self, dense: &[f32], d: usize) -> Result<Vec<f32>, String> {
        let raw = self.raw_scores(dense, d)?;
        let cols = self.columns();
        let mut out = Vec::with_capacity(raw.len() / self.n_classes * cols);
        let mut buf = vec![0f32; self.n_classes];
        for row in raw.chunks_exact(self.n_classes) {
            buf.copy_from_slice(row);
            self.finish_row(&mut buf);
            if self.binary_layout {
                out.extend([1.0 - buf[0], buf[0]]);
            } else {
                out.extend_from_slice(&buf);
            }
        }
        Ok(out)
    }

    /// Column `column` of [`TreeEnsemble::probabilities`], one value per row.
    pub fn column(&self, dense: &[f32], d: usize, column: usize) -> Result<Vec<f32>, String> {
        if column >= self.columns() {
            return Err(format!(
                "column {column} is outside the {} output columns",
                self.columns()
            ));
        }
        let raw = self.raw_scores(dense, d)?;
        let nc = self.n_classes;
        if self.post != PostTransform::Softmax {
            // Each column depends on one class score only.
            let (class, complement) = if self.binary_layout {
                (0, column == 0)
            } else {
                (column, false)
            };
            let base = self.base.as_ref().map(|b| b[class]);
            Ok(raw
                .chunks_exact(nc)
                .map(|row| {
                    let mut s = row[class];
                    if let Some(b) = base {
                        s += b;
                    }
                    if self.post == PostTransform::Logistic {
                        s = sigmoid(s);
                    }
                    if complement { 1.0 - s } else { s }
                })
                .collect())
        } else {
            let all = self.probabilities(dense, d)?;
            Ok(all
                .iter()
                .skip(column)
                .step_by(self.columns())
                .copied()
                .collect())
        }
    }

    /// Base values and the post transform, in place, for one row's class scores.
    fn finish_row(&self, scores: &mut [f32]) {
        if let Some(base) = &self.base {
            for (s, b) in scores.iter_mut().zip(base) {
                *s += b;
            }
        }
        match self.post {
            PostTransform::None => {}
            PostTransform::Logistic => scores.iter_mut().for_each(|s| *s = sigmoid(*s)),
            PostTransform::Softmax => {
                let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let mut sum = 0f32;
                for s in scores.iter_mut() {
                    *s = (*s - max).exp();
                    sum += *s;
                }
                let inv = sum.recip();
                scores.iter_mut().for_each(|s| *s *= inv);
            }
        }
    }

    /// The summed votes, row-major `[rows, n_classes]`, before base values and transform.
    fn raw_scores(&self, dense: &[f32], d: usize) -> Result<Vec<f32>, String> {
        if d < self.n_features || d == 0 {
            return Err(format!(
                "rows have {d} features, the trees read feature {}",
                self.n_features.saturating_sub(1)
            ));
        }
        if !dense.len().is_multiple_of(d) {
            return Err(format!("{} values are not rows of {d}", dense.len()));
        }
        Ok(match self.uniform_op {
            LEQ => self.sum::<LEQ>(dense, d),
            LT => self.sum::<LT>(dense, d),
            GT => self.sum::<GT>(dense, d),
            EQ => self.sum::<EQ>(dense, d),
            NEQ => self.sum::<NEQ>(dense, d),
            _ => self.sum::<MIXED>(dense, d),
        })
    }

    /// Sums the trees over blocks of rows, tree by tree (each tree stays in cache for the
    /// block); every row still adds its trees in order.
    fn sum<const OP: u32>(&self, dense: &[f32], d: usize) -> Vec<f32> {
        const BLOCK: usize = 64;
        let rows = dense.len() / d;
        let nc = self.n_classes;
        let mut out = vec![0f32; rows * nc];
        if let Some(class) = self.single_class {
            let class = class as usize;
            let mut acc = [0f32; BLOCK];
            for (b, block) in dense.chunks(BLOCK * d).enumerate() {
                let m = block.len() / d;
                acc[..m].fill(0.0);
                for &root in &self.roots {
                    for (a, row) in acc.iter_mut().zip(block.chunks_exact(d)) {
                        *a += self.leaf::<OP>(root, row).value;
                    }
                }
                for (r, a) in acc[..m].iter().enumerate() {
                    out[(b * BLOCK + r) * nc + class] = *a;
                }
            }
        } else {
            for (b, block) in dense.chunks(BLOCK * d).enumerate() {
                let acc = &mut out[b * BLOCK * nc..];
                for &root in &self.roots {
                    for (r, row) in block.chunks_exact(d).enumerate() {
                        let leaf = self.leaf::<OP>(root, row);
                        let acc = &mut acc[r * nc..(r + 1) * nc];
                        for v in self.votes_of(leaf) {
                            acc[v.class as usize] += v.weight;
                        }
                    }
                }
            }
        }
        out
    }

    fn votes_of(&self, leaf: &Node) -> &[Vote] {
        self.votes
            .get(leaf.next[0] as usize..leaf.next[1] as usize)
            .unwrap_or(&[])
    }

    /// The leaf `row` reaches from `root`. The walk ends: the trees were checked acyclic.
    #[inline(always)]
    fn leaf<const OP: u32>(&self, root: u32, row: &[f32]) -> &Node {
        let mut node = &self.nodes[root as usize];
        loop {
            let code = node.meta >> OP_SHIFT & 7;
            if code == LEAF {
                return node;
            }
            let x = row[(node.meta & FEATURE_MASK) as usize];
            let t = node.value;
            let op = if OP == MIXED { code } else { OP };
            let go_true = if x.is_nan() {
                node.meta & NAN_TRUE != 0
            } else {
                match op {
                    LEQ => x <= t,
                    LT => x < t,
                    GTE => x >= t,
                    GT => x > t,
                    EQ => x == t,
                    _ => x != t,
                }
            };
            node = &self.nodes[node.next[usize::from(!go_true)] as usize];
        }
    }

    /// `rows` deterministic probe rows of width `d` that exercise the splits: row 0 is all
    /// zeros; in the others each feature takes one of the thresholds the trees compare it
    /// with, exactly or one ulp either side (features no branch reads stay 0).
    pub fn probe_rows(&self, d: usize, rows: usize) -> Vec<f32> {
        let mut thresholds: Vec<Vec<f32>> = vec![Vec::new(); d];
        for node in &self.nodes {
            if node.meta >> OP_SHIFT != LEAF && node.value.is_finite() {
                let f = (node.meta & FEATURE_MASK) as usize;
                if let Some(list) = thresholds.get_mut(f)
                    && list.len() < 4096
                {
                    list.push(node.value);
                }
            }
        }
        let mut out = vec![0f32; rows * d];
        for r in 1..rows {
            for (j, list) in thresholds.iter().enumerate() {
                if list.is_empty() {
                    continue;
                }
                let t = list[(r * 31 + j * 17) % list.len()];
                out[r * d + j] = match (r + j) % 3 {
                    0 => t,
                    1 => t.next_up(),
                    _ => t.next_down(),
                };
            }
        }
        out
    }
}

/// tract 0.23.9's f32 sigmoid (`tract_linalg::generic::sigmoid::ssigmoid`): a rational
/// minimax fit of `sigmoid(x) − 0.5` on `[−14.5, 14.5]`, evaluated in the same order, so the
/// native scores match tract's generic kernel bit for bit (and its SIMD kernels, which fuse
/// the multiply-adds, to an ulp or two). NaN propagates.
#[allow(clippy::excessive_precision)]
pub fn sigmoid(x: f32) -> f32 {
    const LOW: f32 = -14.5;
    const HIGH: f32 = 14.5;
    const ALPHA_13: f32 = -4.433153405e-18;
    const ALPHA_11: f32 = 1.169974371e-14;
    const ALPHA_9: f32 = -1.875289645e-11;
    const ALPHA_7: f32 = 4.257889523e-8;
    const ALPHA_5: f32 = 0.00004811817576;
    const ALPHA_3: f32 = 0.008163842030;
    const ALPHA_1: f32 = 0.2499999971;
    const BETA_6: f32 = 3.922935744e-6;
    const BETA_4: f32 = 0.001524872358;
    const BETA_2: f32 = 0.1159886749;
    const BETA_0: f32 = 1.0;

    let x = x.clamp(LOW, HIGH);
    let x2 = x * x;
    let p = ALPHA_13;
    let p = x2 * p + ALPHA_11;
    let p = x2 * p + ALPHA_9;
    let p = x2 * p + ALPHA_7;
    let p = x2 * p + ALPHA_5;
    let p = x2 * p + ALPHA_3;
    let p = x2 * p + ALPHA_1;
    let p = p * x;
    let q = BETA_6;
    let q = x2 * q + BETA_4;
    let q = x2 * q + BETA_2;
    let q = x2 * q + BETA_0;
    p / q + 0.5
}

/// The node that computes graph value `name`, following `Identity` nodes back: the
/// `TreeEnsembleClassifier` (in [`crate::onnx::ML_DOMAIN`]) whose second output (the
/// probabilities) it is, or `None` for anything else.
pub fn classifier_behind<'a>(graph: &'a pb::GraphProto, name: &str) -> Option<&'a pb::NodeProto> {
    let mut name = name;
    for _ in 0..=graph.node.len() {
        let node = graph
            .node
            .iter()
            .find(|n| n.output.iter().any(|o| o == name))?;
        match (node.domain.as_str(), node.op_type.as_str()) {
            ("" | "ai.onnx", "Identity") if node.input.len() == 1 && node.output.len() == 1 => {
                name = &node.input[0];
            }
            (crate::onnx::ML_DOMAIN, "TreeEnsembleClassifier")
                if node.input.len() == 1 && node.output.len() == 2 && node.output[1] == name =>
            {
                return Some(node);
            }
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::build::{attr_floats, attr_ints, attr_string, attr_strings};

    /// Attributes of a classifier; `f` edits them before the node is built.
    struct Spec {
        tree: Vec<i64>,
        node: Vec<i64>,
        feature: Vec<i64>,
        mode: Vec<&'static str>,
        value: Vec<f32>,
        yes: Vec<i64>,
        no: Vec<i64>,
        missing: Vec<i64>,
        c_tree: Vec<i64>,
        c_node: Vec<i64>,
        c_id: Vec<i64>,
        c_weight: Vec<f32>,
        labels: Vec<i64>,
        base: Option<Vec<f32>>,
        post: &'static str,
    }

    /// Two trees: tree 0 splits feature 0 at 0.5 (LEQ), then feature 1 at 1.0 (LT); tree 1 is
    /// one split on feature 1 (GT 2.0). Every leaf votes for class 1.
    fn spec() -> Spec {
        Spec {
            tree: vec![0, 0, 0, 0, 0, 1, 1, 1],
            node: vec![0, 1, 2, 3, 4, 0, 1, 2],
            feature: vec![0, 1, 0, 0, 0, 1, 0, 0],
            mode: vec![
                "BRANCH_LEQ",
                "BRANCH_LT",
                "LEAF",
                "LEAF",
                "LEAF",
                "BRANCH_GT",
                "LEAF",
                "LEAF",
            ],
            value: vec![0.5, 1.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0],
            yes: vec![1, 3, 0, 0, 0, 1, 0, 0],
            no: vec![2, 4, 0, 0, 0, 2, 0, 0],
            missing: vec![1, 0, 0, 0, 0, 0, 0, 0],
            c_tree: vec![0, 0, 0, 1, 1],
            c_node: vec![2, 3, 4, 1, 2],
            c_id: vec![1, 1, 1, 1, 1],
            c_weight: vec![0.25, -0.5, 1.0, 0.125, -0.75],
            labels: vec![0, 1],
            base: Some(vec![0.0, 0.1]),
            post: "LOGISTIC",
        }
    }

    impl Spec {
        fn node(&self) -> pb::NodeProto {
            let mut attrs = vec![
                attr_ints("nodes_treeids", &self.tree),
                attr_ints("nodes_nodeids", &self.node),
                attr_ints("nodes_featureids", &self.feature),
                attr_strings("nodes_modes", &self.mode),
                attr_floats("nodes_values", &self.value),
                attr_ints("nodes_truenodeids", &self.yes),
                attr_ints("nodes_falsenodeids", &self.no),
                attr_ints("nodes_missing_value_tracks_true", &self.missing),
                attr_ints("class_treeids", &self.c_tree),
                attr_ints("class_nodeids", &self.c_node),
                attr_ints("class_ids", &self.c_id),
                attr_floats("class_weights", &self.c_weight),
                attr_ints("classlabels_int64s", &self.labels),
                attr_string("post_transform", self.post),
            ];
            if let Some(b) = &self.base {
                attrs.push(attr_floats("base_values", b));
            }
            crate::onnx::build::node(
                "TreeEnsembleClassifier",
                "t",
                &["dense"],
                &["label", "probabilities"],
                attrs,
            )
        }

        fn build(&self) -> Result<TreeEnsemble, TreeError> {
            TreeEnsemble::from_node(&self.node())
        }
    }

    fn by_hand(row: [f32; 2]) -> f32 {
        let t0 = if row[0].is_nan() || row[0] <= 0.5 {
            if row[1] < 1.0 { -0.5 } else { 1.0 }
        } else {
            0.25
        };
        let t1 = if row[1] > 2.0 { 0.125 } else { -0.75 };
        sigmoid(0.0 + t0 + t1 + 0.1)
    }

    #[test]
    fn scores_follow_the_trees() {
        let e = spec().build().unwrap();
        assert_eq!(e.n_trees(), 2);
        assert_eq!(e.n_features(), 2);
        assert_eq!(e.columns(), 2);
        assert_eq!(e.depth(), 2);
        assert_eq!(e.single_class, Some(1));
        assert!(!e.binary_layout);
        let rows = [
            [0.0, 0.0],
            [0.5, 1.0],
            [0.6, 3.0],
            [f32::NAN, 0.5],
            [0.2, f32::NAN],
            [1.0, 2.0],
        ];
        let dense: Vec<f32> = rows.iter().flatten().copied().collect();
        let col = e.column(&dense, 2, 1).unwrap();
        let all = e.probabilities(&dense, 2).unwrap();
        for (i, r) in rows.iter().enumerate() {
            assert_eq!(col[i].to_bits(), by_hand(*r).to_bits(), "row {i}");
            assert_eq!(all[2 * i + 1].to_bits(), col[i].to_bits());
            assert_eq!(all[2 * i], sigmoid(0.0));
        }
        // Wider rows are fine, narrower ones are an error.
        assert!(e.column(&[0.0; 3], 3, 1).is_ok());
        assert!(e.column(&[0.0], 1, 1).is_err());
        assert!(e.column(&[0.0; 3], 2, 1).is_err());
        assert!(e.column(&[0.0; 2], 2, 2).is_err());
    }

    #[test]
    fn general_votes_binary_layout_and_softmax() {
        // Two votes on one leaf: general path. All for class 0 with two labels: binary layout.
        let mut s = spec();
        s.c_tree.push(1);
        s.c_node.push(2);
        s.c_weight.push(0.5);
        s.c_id = vec![0; 6];
        s.post = "NONE";
        s.base = None;
        let e = s.build().unwrap();
        assert_eq!(e.single_class, None);
        assert!(e.binary_layout);
        let p = e.probabilities(&[0.0, 0.0], 2).unwrap();
        // Tree 0: -0.5; tree 1: -0.75 then +0.5.
        let s0 = 0.0f32 + -0.5 + -0.75 + 0.5;
        assert_eq!(p, vec![1.0 - s0, s0]);
        assert_eq!(e.column(&[0.0, 0.0], 2, 0).unwrap(), vec![1.0 - s0]);

        // Three classes, softmax.
        let mut s = spec();
        s.labels = vec![0, 1, 2];
        s.c_id = vec![0, 1, 2, 2, 1];
        s.base = Some(vec![0.5, 0.0, -0.5]);
        s.post = "SOFTMAX";
        let e = s.build().unwrap();
        assert_eq!(e.columns(), 3);
        let p = e.probabilities(&[0.0, 0.0], 2).unwrap();
        let z = [0.5f32, -0.5 - 0.75, -0.5];
        let m = z.iter().copied().fold(f32::MIN, f32::max);
        let ex: Vec<f32> = z.iter().map(|v| (v - m).exp()).collect();
        let sum: f32 = ex.iter().sum();
        for c in 0..3 {
            assert!((p[c] - ex[c] / sum).abs() < 1e-6, "{p:?}");
            assert_eq!(e.column(&[0.0, 0.0], 2, c).unwrap(), vec![p[c]]);
        }
    }

    #[test]
    fn node_order_in_the_attributes_does_not_matter() {
        let s = spec();
        let a = s.build().unwrap();
        // Reverse tree 0's nodes in the arrays: same trees.
        let mut r = spec();
        let perm = [4usize, 3, 2, 1, 0, 5, 6, 7];
        r.node = perm.iter().map(|&i| s.node[i]).collect();
        r.feature = perm.iter().map(|&i| s.feature[i]).collect();
        r.mode = perm.iter().map(|&i| s.mode[i]).collect();
        r.value = perm.iter().map(|&i| s.value[i]).collect();
        r.yes = perm.iter().map(|&i| s.yes[i]).collect();
        r.no = perm.iter().map(|&i| s.no[i]).collect();
        r.missing = perm.iter().map(|&i| s.missing[i]).collect();
        assert_eq!(r.build().unwrap(), a);
    }

    fn refused(s: Spec, want: &str) {
        match s.build() {
            Err(TreeError::Invalid(r)) => assert!(r.contains(want), "{r:?} lacks {want:?}"),
            other => panic!("expected Invalid({want:?}), got {other:?}"),
        }
    }

    #[test]
    fn malformed_attributes_are_refused() {
        let mut s = spec();
        s.yes[0] = 7;
        refused(s, "does not have");
        let mut s = spec();
        s.no[5] = -1;
        refused(s, "out-of-range");
        let mut s = spec();
        s.yes[1] = 0; // back to the root: a cycle
        refused(s, "cycle");
        let mut s = spec();
        s.no[1] = 1; // a node pointing at itself
        refused(s, "cycle");
        let mut s = spec();
        s.value.pop();
        refused(s, "nodes_values has 7 values");
        let mut s = spec();
        s.c_weight.push(1.0);
        refused(s, "class_weights has 6 values");
        let mut s = spec();
        s.c_id[2] = 2;
        refused(s, "2 labels");
        let mut s = spec();
        s.c_node[0] = 1;
        refused(s, "not a leaf");
        let mut s = spec();
        s.c_node[0] = 9;
        refused(s, "which has 5 nodes");
        let mut s = spec();
        s.node[4] = 7;
        refused(s, "node ids must be");
        let mut s = spec();
        s.node[4] = 3;
        refused(s, "twice");
        let mut s = spec();
        s.tree = vec![0, 0, 0, 0, 0, 2, 2, 2];
        refused(s, "tree order");
        let mut s = spec();
        s.c_tree = vec![0, 0, 0, 0, 0];
        refused(s, "class entries 1");
        let mut s = spec();
        s.mode[0] = "BRANCH_GTE";
        refused(s, "BRANCH_GTE");
        let mut s = spec();
        s.mode[0] = "BRANCH_ALMOST";
        refused(s, "unknown node mode");
        let mut s = spec();
        s.missing[0] = 2;
        refused(s, "not 0 or 1");
        let mut s = spec();
        s.base = Some(vec![0.1]);
        refused(s, "base_values has 1 values");
        let mut s = spec();
        s.labels.clear();
        refused(s, "no class labels");
        let mut s = spec();
        s.feature[0] = -3;
        refused(s, "negative feature");

        // Wrong attribute types and missing attributes.
        let mut n = spec().node();
        n.attribute.retain(|a| a.name != "nodes_truenodeids");
        assert!(matches!(
            TreeEnsemble::from_node(&n),
            Err(TreeError::Invalid(_))
        ));
        let mut n = spec().node();
        n.attribute[3] = attr_ints("nodes_modes", &[0; 8]);
        assert!(matches!(
            TreeEnsemble::from_node(&n),
            Err(TreeError::Invalid(_))
        ));
        let n = crate::onnx::build::node("TreeEnsembleClassifier", "t", &[], &[], vec![]);
        assert!(matches!(
            TreeEnsemble::from_node(&n),
            Err(TreeError::Invalid(_))
        ));
    }

    #[test]
    fn valid_but_unusual_models_are_left_to_tract() {
        let mut s = spec();
        s.post = "PROBIT";
        assert!(matches!(s.build(), Err(TreeError::Unsupported(_))));
        let mut s = spec();
        s.feature[0] = 1 << 30;
        assert!(matches!(s.build(), Err(TreeError::Unsupported(_))));
        let mut n = spec().node();
        n.attribute
            .push(attr_floats("nodes_values_as_tensor", &[0.0]));
        assert!(matches!(
            TreeEnsemble::from_node(&n),
            Err(TreeError::Unsupported(_))
        ));
        // ... but only when valid: tract reads the float lists of the same node.
        let mut bad = spec();
        bad.yes[1] = 0;
        let mut n = bad.node();
        n.attribute
            .push(attr_floats("nodes_values_as_tensor", &[0.0]));
        assert!(matches!(
            TreeEnsemble::from_node(&n),
            Err(TreeError::Invalid(_))
        ));
        // Two parents for one branch node.
        let mut s = spec();
        s.no[0] = 1;
        assert!(matches!(s.build(), Err(TreeError::Unsupported(_))));
        // Two parents for one leaf is harmless.
        let mut s = spec();
        s.no[1] = 3;
        assert!(s.build().is_ok());
    }

    #[test]
    fn deep_chains_are_bounded() {
        // One tree, a chain of `depth` branches on feature 0 (`x < i` goes to the leaf).
        let chain = |depth: usize| {
            let mut s = spec();
            let n = 2 * depth + 1;
            s.tree = vec![0; n];
            s.node = (0..n as i64).collect();
            s.feature = vec![0; n];
            s.mode = (0..n)
                .map(|i| if i < depth { "BRANCH_LT" } else { "LEAF" })
                .collect();
            s.value = (0..n).map(|i| i as f32).collect();
            s.yes = (0..n as i64)
                .map(|i| {
                    if (i as usize) < depth {
                        depth as i64 + i
                    } else {
                        0
                    }
                })
                .collect();
            s.no = (0..n as i64)
                .map(|i| {
                    if (i as usize) + 1 < depth {
                        i + 1
                    } else if (i as usize) + 1 == depth {
                        n as i64 - 1
                    } else {
                        0
                    }
                })
                .collect();
            s.missing = vec![0; n];
            s.c_tree = vec![0; depth + 1];
            s.c_node = (depth as i64..n as i64).collect();
            s.c_id = vec![1; depth + 1];
            s.c_weight = (0..=depth).map(|i| i as f32).collect();
            s
        };
        let e = chain(MAX_DEPTH).build().unwrap();
        assert_eq!(e.depth(), MAX_DEPTH);
        let mut row = vec![0f32; 2];
        row[0] = 1e9; // never below a threshold: walks the whole chain to the last leaf
        assert_eq!(
            e.column(&row, 2, 1).unwrap(),
            vec![sigmoid(MAX_DEPTH as f32 + 0.1)]
        );
        assert!(matches!(
            chain(MAX_DEPTH + 1).build(),
            Err(TreeError::Unsupported(_))
        ));
        // Too deep is only reported once no cycle is found: a cycle past the depth bound is
        // still refused (tract would loop on it).
        let mut s = chain(MAX_DEPTH + 1);
        s.no[MAX_DEPTH] = 0;
        refused(s, "cycle");
    }

    #[test]
    fn probe_rows_sit_on_the_thresholds() {
        let e = spec().build().unwrap();
        let rows = e.probe_rows(3, 16);
        assert_eq!(rows.len(), 48);
        assert!(rows[..3].iter().all(|&x| x == 0.0));
        let near = |x: f32, ts: &[f32]| {
            ts.iter()
                .any(|&t| x == t || x == t.next_up() || x == t.next_down())
        };
        for r in 1..16 {
            assert!(near(rows[r * 3], &[0.5]));
            assert!(near(rows[r * 3 + 1], &[1.0, 2.0]));
            assert_eq!(rows[r * 3 + 2], 0.0);
        }
    }

    #[test]
    fn sigmoid_is_close_to_the_logistic() {
        for i in -400..=400 {
            let x = i as f32 / 20.0;
            let exact = 1.0 / (1.0 + (-(x as f64)).exp());
            assert!((f64::from(sigmoid(x)) - exact).abs() < 1e-6, "{x}");
        }
        assert!(sigmoid(f32::NAN).is_nan());
    }
}
