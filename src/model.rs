//! The loaded model: a bundle's decoded contents plus the runtimes its models need — the
//! ranker (tract, or the native tree-ensemble engine), the two-tower user tower (tract) and the
//! HNSW graphs over the item vectors.
//!
//! [`crate::bundle`] turns bytes into [`BundleContents`] and back and knows nothing of
//! runtimes; this module loads and checks every model against its contract, once, so a
//! [`Model`] that exists can serve any request. The stages ([`crate::stages`]) read it; the
//! [`crate::Recommender`] owns one.
//!
//! ```
//! use edgerec::model::Model;
//! # let bytes = edgerec::test_support::tiny_contents_for_device().encode();
//! let model = Model::from_bytes(&bytes)?;   // checksums, sections, then every runtime
//! assert!(model.tower().is_some());         // the bundle's TWRT user tower, loaded
//! assert!(model.ranker().is_none());        // this bundle ships no ranker
//! assert_eq!(model.sha256_hex().len(), 64);
//! # Ok::<(), edgerec::Error>(())
//! ```

use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::bundle::{BundleContents, ServingSettings, Space, TwoTowerModel};
use crate::error::{BundleError, Result};
use crate::hnsw::HnswIndex;
use crate::limits::{DEFAULT_MEMORY_BUDGET, MAX_CANDIDATES, MAX_K, MemoryEstimate};
use crate::ranker::Ranker;
use crate::retrieval::InnerProductGraph;
use crate::tower::{TWO_TOWER_DENSE, TWO_TOWER_DENSE_FEATURES, UserTower};

/// A verified bundle with its models loaded. Cheap to share (`Clone` copies the decoded
/// sections; the graphs are reference-counted); holds no per-user state.
#[derive(Debug, Clone)]
pub struct Model {
    contents: BundleContents,
    sha256: [u8; 32],
    ranker: Option<Ranker>,
    tower: Option<UserTower>,
    graphs: Vec<(Space, Arc<InnerProductGraph>)>,
    memory: MemoryEstimate,
}

/// How a bundle is loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadOptions {
    /// Most bytes the bundle may need ([`MemoryEstimate::total`]): the file, its decoded
    /// sections, its runtimes and one request of the largest size. A bundle estimated above it
    /// is refused (`over_budget`) before any runtime is built. Default
    /// [`DEFAULT_MEMORY_BUDGET`].
    pub memory_budget: u64,
}

impl Default for LoadOptions {
    fn default() -> LoadOptions {
        LoadOptions {
            memory_budget: DEFAULT_MEMORY_BUDGET,
        }
    }
}

impl Model {
    /// Verifies, decodes and loads a bundle under the default [`LoadOptions`]
    /// ([`Model::from_bytes_with`]). Never panics on any input; a refused bundle leaves
    /// nothing behind.
    pub fn from_bytes(bytes: &[u8]) -> Result<Model> {
        Model::from_bytes_with(bytes, &LoadOptions::default())
    }

    /// Verifies and decodes a bundle ([`BundleContents::decode`]), estimates the memory it
    /// will need ([`Model::estimate`]) and refuses it (`over_budget`) above
    /// `options.memory_budget`, then loads its runtimes ([`Model::load`]). A file larger than
    /// the budget is refused before it is decoded.
    ///
    /// ```
    /// use edgerec::model::{LoadOptions, Model};
    /// # let bytes = edgerec::test_support::tiny_contents_for_device().encode();
    /// let model = Model::from_bytes(&bytes)?;
    /// let needed = model.memory_estimate().total();
    /// let tight = LoadOptions { memory_budget: needed - 1 };
    /// assert_eq!(Model::from_bytes_with(&bytes, &tight).unwrap_err().code(), "over_budget");
    /// # Ok::<(), edgerec::Error>(())
    /// ```
    pub fn from_bytes_with(bytes: &[u8], options: &LoadOptions) -> Result<Model> {
        let budget = options.memory_budget;
        let over = |estimate: MemoryEstimate| BundleError::OverBudget {
            needed: estimate.total(),
            budget,
            detail: estimate.describe(),
        };
        let file = MemoryEstimate {
            file: bytes.len() as u64,
            ..MemoryEstimate::default()
        };
        if file.total() > budget {
            return Err(over(file).into());
        }
        let contents = BundleContents::decode(bytes)?;
        let memory = Model::estimate(&contents, bytes.len());
        if memory.total() > budget {
            return Err(over(memory).into());
        }
        Ok(Model::load_estimated(
            contents,
            Sha256::digest(bytes).into(),
            memory,
        )?)
    }

    /// What `contents`, loaded from a file of `file_len` bytes, is expected to need in memory:
    /// an upper estimate from the sections' sizes and counts, computed without building any
    /// runtime. Linear in the number of strings and titles.
    pub fn estimate(contents: &BundleContents, file_len: usize) -> MemoryEstimate {
        estimate(contents, file_len as u64)
    }

    /// The memory this model was estimated to need when it was loaded (with the file's
    /// length when it was loaded from bytes).
    pub fn memory_estimate(&self) -> MemoryEstimate {
        self.memory
    }

    /// Loads the runtimes of decoded `contents` whose file hashes to `sha256`: the ranker
    /// against its contract and the feature space, the user tower against `TWRT` and the dense
    /// layout this build computes, each HNSW graph against its item vectors.
    pub fn load(contents: BundleContents, sha256: [u8; 32]) -> Result<Model, BundleError> {
        let memory = estimate(&contents, 0);
        Model::load_estimated(contents, sha256, memory)
    }

    /// [`Model::load`] for contents whose estimate was already computed.
    fn load_estimated(
        contents: BundleContents,
        sha256: [u8; 32],
        memory: MemoryEstimate,
    ) -> Result<Model, BundleError> {
        contents.validate()?;
        let ranker = contents
            .ranker
            .as_ref()
            .map(|r| Ranker::load(&r.contract, &r.onnx))
            .transpose()?;
        let tower = contents.two_tower.as_ref().map(load_tower).transpose()?;
        let graphs = load_graphs(&contents)?;
        Ok(Model {
            contents,
            sha256,
            ranker,
            tower,
            graphs,
            memory,
        })
    }

    /// Everything [`Model::from_bytes`] will check of `contents`, with the same code, for a
    /// trainer to run before it publishes a bundle.
    /// Also checks what a device takes on trust to load faster: that a tree-ensemble ranker
    /// scored natively agrees with tract ([`Ranker::check_native_agreement`]).
    pub fn check(contents: &BundleContents) -> Result<(), BundleError> {
        let model = Model::load(contents.clone(), [0; 32])?;
        match model.ranker() {
            Some(r) => r.check_native_agreement(),
            None => Ok(()),
        }
    }

    /// The decoded sections.
    pub fn contents(&self) -> &BundleContents {
        &self.contents
    }

    /// The ranker, loaded and checked against the bundle's feature contract, if the bundle
    /// carries one.
    pub fn ranker(&self) -> Option<&Ranker> {
        self.ranker.as_ref()
    }

    /// The two-tower user tower, loaded and checked against `TWRT`, if the bundle has one.
    pub fn tower(&self) -> Option<&UserTower> {
        self.tower.as_ref()
    }

    /// The HNSW graph over `space`'s item vectors, if the bundle ships one.
    pub fn graph(&self, space: Space) -> Option<&InnerProductGraph> {
        self.graphs
            .iter()
            .find(|(s, _)| *s == space)
            .map(|(_, g)| &**g)
    }

    /// The serving settings: the bundle's `SERV`, or the defaults.
    pub fn serving(&self) -> ServingSettings {
        self.contents.serving.clone().unwrap_or_default()
    }

    /// The model version the trainer recorded (`META`).
    pub fn version(&self) -> &str {
        &self.contents.meta.model_version
    }

    /// The sha256 of the bundle file, as lowercase hex: a content address for caches.
    pub fn sha256_hex(&self) -> String {
        self.sha256.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Loads `TWRT`'s user tower into tract and checks it against the section: the same width, one
/// history row per item, the search vocabulary, and the dense layout this device computes.
fn load_tower(t: &TwoTowerModel) -> Result<UserTower, BundleError> {
    if t.dense_features() != TWO_TOWER_DENSE_FEATURES {
        return Err(BundleError::Contract {
            reason: format!(
                "the user tower reads dense features {:?}, this device computes {:?}",
                t.dense_features(),
                TWO_TOWER_DENSE_FEATURES
            ),
        });
    }
    let tower = UserTower::load(t.user_tower())?;
    let fits = tower.dim() == t.dim()
        && tower.n_items() == t.rows()
        && tower.n_dense() == TWO_TOWER_DENSE
        && tower.n_search_tokens() <= t.search_vocab().len() + 1;
    if !fits {
        return Err(BundleError::Contract {
            reason: format!(
                "the user tower (dim {}, {} items, {} dense inputs, {} search tokens) does not \
                 fit TWRT (dim {}, {} items, {} dense, {} search tokens)",
                tower.dim(),
                tower.n_items(),
                tower.n_dense(),
                tower.n_search_tokens(),
                t.dim(),
                t.rows(),
                TWO_TOWER_DENSE,
                t.search_vocab().len()
            ),
        });
    }
    Ok(tower)
}

/// The HNSW graphs loaded and checked against their item vectors.
fn load_graphs(
    contents: &BundleContents,
) -> Result<Vec<(Space, Arc<InnerProductGraph>)>, BundleError> {
    contents
        .graphs
        .iter()
        .map(|g| {
            let (dim, rows) = match g.space {
                Space::Ials => contents
                    .ials
                    .as_ref()
                    .map(|f| (f.factors().dim(), f.factors().rows())),
                Space::TwoTower => contents.two_tower.as_ref().map(|t| (t.dim(), t.rows())),
            }
            .ok_or_else(|| BundleError::MissingSection {
                tag: match g.space {
                    Space::Ials => "FACT".into(),
                    Space::TwoTower => "TWRT".into(),
                },
            })?;
            let malformed = |reason: String| BundleError::Malformed {
                what: "HNSW".into(),
                reason,
            };
            let index = HnswIndex::from_bytes(&g.graph).map_err(|e| match e {
                crate::Error::Bundle(b) => b,
                other => malformed(other.to_string()),
            })?;
            if index.len() != rows {
                return Err(malformed(format!(
                    "the {} graph has {} rows for {rows} items",
                    g.space.as_str(),
                    index.len()
                )));
            }
            let graph = InnerProductGraph::from_parts(index, g.max_norm, dim)
                .map_err(|e| malformed(e.to_string()))?;
            Ok((g.space, Arc::new(graph)))
        })
        .collect()
}

/// Bytes a string costs once decoded: its `String` (24 bytes), the allocator's rounding, and
/// in a vocabulary the hash map entry with its own copy of the key.
const PER_STRING: u64 = 160;

/// Bytes of one title's decoded `MDIA` record (`Media` and `MediaStats` on a 64-bit target,
/// rounded up; smaller on wasm32). A constant, not `size_of`, so that native and wasm builds
/// compute the same estimate and reach the same budget decision on the same bytes.
const PER_TITLE_MEDIA: u64 = 256;

/// See [`Model::estimate`]. Every part is a sum of sizes the decoders already checked, times
/// factors measured with a counting allocator (`examples/memory.rs`) and rounded up.
fn estimate(c: &BundleContents, file: u64) -> MemoryEstimate {
    let n = |x: usize| x as u64;
    let strings = |names: &[String]| -> (u64, u64) {
        (n(names.len()), names.iter().map(|s| n(s.len())).sum())
    };
    let mut count = 0u64; // strings decoded
    let mut text = 0u64; // their bytes
    let mut add = |(k, b): (u64, u64)| {
        count += k;
        text += b;
    };
    add(strings(c.catalog.genres()));
    add((
        n(c.catalog.len()),
        c.catalog.items().iter().map(|i| n(i.title.len())).sum(),
    ));
    let mut vectors = 0u64; // bytes of item vectors and other numeric arrays
    let mut items = n(c.catalog.len());
    vectors += 4 * n(c.popularity.scores.len());
    if let Some(f) = &c.ials {
        vectors += n(f.factors().bytes()) + 8 * n(f.gram().len());
    }
    if let Some(t) = &c.two_tower {
        vectors += n(t.item_vectors().bytes()) + n(t.user_tower().len());
        add(strings(t.search_vocab()));
    }
    if let Some(cm) = &c.content {
        let (offsets, entries) = cm.index().parts();
        // entries are kept twice (by item and by token) with the prior and offsets
        vectors += 4 * n(offsets.len()) + 16 * n(entries.len()) + 4 * n(cm.index().prior().len());
        add(strings(cm.index().tokens()));
    }
    if let Some(nb) = &c.neighbours {
        vectors += 4 * n(nb.rows() + 1) + 6 * n(nb.entries());
    }
    if let Some(f) = &c.features {
        let space = f.space();
        for vocab in space.vocabularies().all() {
            add(strings(vocab.names()));
        }
        add(strings(space.dense_names()));
    }
    if let Some(r) = &c.ranker {
        vectors += n(r.onnx.len());
        add(strings(&r.contract.dense));
        add(strings(&r.contract.search_vocab));
    }
    if let Some(m) = &c.media {
        items = items.max(n(m.len()));
        let genres: u64 = m.media().iter().map(|x| n(x.genres.len())).sum();
        vectors += n(m.len()) * PER_TITLE_MEDIA + 4 * genres;
    }
    let graph_bytes: u64 = c.graphs.iter().map(|g| n(g.graph.len())).sum();
    vectors += graph_bytes;
    let sections = file
        .max(vectors)
        .saturating_add(count.saturating_mul(PER_STRING))
        .saturating_add(text.saturating_mul(2))
        .saturating_add(items.saturating_mul(96))
        .saturating_add(64 << 10);

    // Runtimes: tract keeps the parsed graph and the optimised plan with their own copies of the
    // weights; the HNSW graphs decode to a few times their serialised size.
    let model_bytes = |b: usize| 4 * n(b) + (1 << 20);
    let runtimes = c.ranker.as_ref().map_or(0, |r| model_bytes(r.onnx.len()))
        + c.two_tower
            .as_ref()
            .map_or(0, |t| model_bytes(t.user_tower().len()))
        + 3 * graph_bytes;

    // One request of the largest size: every source scores every title, the blend keeps
    // MAX_CANDIDATES, each gets a feature vector and the ranker's input and activation rows.
    let width: u64 = c.ranker.as_ref().map_or(0, |r| {
        r.contract
            .inputs()
            .iter()
            .map(|(_, _, w)| n(*w))
            .sum::<u64>()
    }) + c
        .features
        .as_ref()
        .map_or(0, |f| n(f.space().dense_names().len()));
    let candidates = n(MAX_CANDIDATES);
    let request = items.saturating_mul(4 * 16)
        + candidates.saturating_mul(width.saturating_mul(4 * 8) + 1024)
        + n(MAX_K) * 256
        + (1 << 20);
    MemoryEstimate {
        file,
        sections,
        runtimes,
        request,
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_per_title_media_bound_covers_the_records() {
        let bytes = std::mem::size_of::<crate::features::Media>()
            + std::mem::size_of::<crate::features::MediaStats>();
        assert!(bytes as u64 <= PER_TITLE_MEDIA, "{bytes} bytes per title");
    }
    use super::*;
    use crate::bundle::GraphSection;
    use crate::test_support::{tiny_contents_for_device, tiny_contents_with_sources};

    #[test]
    fn hnsw_graphs_load_with_their_space_and_are_checked() {
        use crate::hnsw::HnswConfig;
        let mut c = tiny_contents_with_sources();
        let y = c.ials.as_ref().unwrap().factors().clone();
        let g = InnerProductGraph::build(&y, true, HnswConfig::default()).unwrap();
        c.graphs = vec![GraphSection {
            space: Space::Ials,
            max_norm: g.max_norm(),
            graph: g.index().to_bytes(),
        }];
        let loaded = Model::from_bytes(&c.encode()).unwrap();
        let graph = loaded.graph(Space::Ials).unwrap();
        assert_eq!(graph.len(), 4);
        assert!(loaded.graph(Space::TwoTower).is_none());
        // A graph for a space the bundle has no vectors for; a graph of the wrong size.
        let orphan = BundleContents {
            ials: None,
            ..c.clone()
        };
        assert!(orphan.validate().is_err());
        let t = c.two_tower.as_ref().unwrap().item_vectors().clone();
        let two = InnerProductGraph::build(&t, false, HnswConfig::default()).unwrap();
        let wrong = BundleContents {
            graphs: vec![GraphSection {
                space: Space::Ials,
                max_norm: 1.0,
                graph: two.index().to_bytes(),
            }],
            ..c.clone()
        };
        assert_eq!(
            Model::from_bytes(&wrong.encode()).unwrap_err().code(),
            "malformed"
        );
        assert!(Model::check(&wrong).is_err());
        // Garbage graph bytes: malformed, never a panic.
        let garbage = BundleContents {
            graphs: vec![GraphSection {
                space: Space::Ials,
                max_norm: 1.0,
                graph: vec![0xff; 40],
            }],
            ..c
        };
        assert_eq!(
            Model::from_bytes(&garbage.encode()).unwrap_err().code(),
            "malformed"
        );
    }

    #[test]
    fn the_user_tower_must_fit_its_section() {
        let c = tiny_contents_for_device();
        assert!(Model::check(&c).is_ok());
        let t = c.two_tower.as_ref().unwrap();
        let other_layout = TwoTowerModel::new(
            t.dim(),
            t.item_vectors().to_f32(),
            t.user_tower().to_vec(),
            t.search_vocab().to_vec(),
            50,
            20,
            "another layout".into(),
        )
        .unwrap();
        let bad = BundleContents {
            two_tower: Some(other_layout),
            ..c.clone()
        };
        let err = Model::from_bytes(&bad.encode()).unwrap_err();
        assert_eq!(err.code(), "contract_mismatch");
    }

    #[test]
    fn the_model_records_its_file_hash() {
        let bytes = tiny_contents_for_device().encode();
        let m = Model::from_bytes(&bytes).unwrap();
        let want: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(m.sha256_hex(), want);
        assert_eq!(m.version(), "tiny-1");
        assert_eq!(m.serving().candidates, 4);
    }
}
