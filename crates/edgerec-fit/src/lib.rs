//! # edgerec-fit
//!
//! The training library: everything the server does between a world's logs and the bundle a
//! device loads, callable from Rust. The `edgerec` CLI parses arguments, reports progress and
//! writes files; the work is here.
//!
//! | module | what it does |
//! |---|---|
//! | [`data`] | a world loaded for fitting: dense users and items, positives in time order |
//! | [`stream`] | a world's positives streamed user by user, for training in memory bounded by the catalog |
//! | [`device`] | a world's user as the device knows them: their local state |
//! | [`split`] | the offline protocols: temporal, leave-last-out, time-series folds |
//! | [`sources`] | every candidate source fitted on a split's past (popularity, iALS, content, two-tower), their rows and blend |
//! | [`system`] | the shipped system fitted on a whole world, as bundle contents |
//! | [`tune`] | the serving fitted on validation inside the past: popularity half-life, blend quotas, the ranker's gate, MMR λ |
//! | [`learned`] | a ranker learned from the device's own candidates and features (with the candidate family) |
//! | [`package`] | what `bundle build` adds for devices: media table, int8, HNSW, serving settings |
//! | [`cycle`] | the periodic retraining loop: days of logs refitted, packaged, published, synced; bytes per sync |
//! | [`ranker_files`] | a ranker and its feature contract read from files |
//! | [`ranking`] | the second stage: rankers trained on a split's past, the blend reordered |
//! | [`rankers`] | deployable rankers: from the pipeline's examples, or from the blend's candidates |
//! | [`evaluate`] | the offline evaluation of every system on every protocol, with the peers |
//! | [`report`] | metrics with standard errors, paired comparisons, markdown and plots |
//!
//! In the spirit of `implicit` and TFRS: fit → model, recommend, similar items,
//! evaluate → report.
//!
//! ```no_run
//! use std::path::Path;
//! use edgerec::{RowRequest, context::{Context, Device}, state::UserState};
//! use edgerec_fit::{data::WorldData, evaluate, system::{System, SystemConfig}};
//!
//! let world = WorldData::load(Path::new("data/world"), 0.8)?;     // plays above 80% are positives
//! let system = System::fit(&world, &SystemConfig::default())?;    // every source, all positives
//! let rec = system.recommender()?;                                 // the device pipeline
//! let mut state = UserState::new();
//! state.record_play(50, 893_286_000, 1.0)?;
//! let row = rec.recommend_row(&state, &RowRequest::new(Context::new(Device::Tv, 893_286_638, 0)?))?;
//! let neighbours = system.similar_items(50, 10);                   // "because you watched"
//! let evaluation = evaluate::evaluate(&world, &evaluate::EvalConfig::default())?;
//! println!("{}", evaluation.artifacts.markdown);                   // every system, with errors
//! # let _ = (row, neighbours);
//! # Ok::<(), anyhow::Error>(())
//! ```

#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod cycle;
pub mod data;
pub mod device;
pub mod evaluate;
pub mod learned;
pub mod package;
pub mod ranker_files;
pub mod rankers;
pub mod ranking;
pub mod report;
pub mod sources;
pub mod split;
pub mod stream;
pub mod system;
pub mod tune;

use std::path::{Path, PathBuf};

use anyhow::Result;

/// What a fit or an evaluation produced: its markdown report and the files that go with it,
/// by path relative to an output directory. [`Artifacts::write`] writes them.
#[derive(Debug, Clone, Default)]
pub struct Artifacts {
    /// The report, as markdown (also written as `report.md`).
    pub markdown: String,
    /// `(relative path, bytes)` of every other file.
    pub files: Vec<(PathBuf, Vec<u8>)>,
}

impl Artifacts {
    /// Adds a file.
    pub fn add(&mut self, path: impl Into<PathBuf>, bytes: impl Into<Vec<u8>>) {
        self.files.push((path.into(), bytes.into()));
    }

    /// Writes every file and `report.md` under `dir`, each atomically
    /// ([`edgerec_data::fs::write_atomic`]).
    pub fn write(&self, dir: &Path) -> Result<()> {
        for (path, bytes) in &self.files {
            edgerec_data::fs::write_atomic(&dir.join(path), bytes)?;
        }
        edgerec_data::fs::write_atomic(&dir.join("report.md"), self.markdown.as_bytes())
    }
}
