//! # edgerec-data
//!
//! The canonical log schema of edgerec ([`schema`]: users, items, impressions, plays,
//! searches as Parquet part files) and a deterministic synthetic streaming world
//! ([`sim::simulate`], `edgerec simulate`) with a known ground truth ([`truth`]) for testing
//! every training-data rule at scale and scoring models against an oracle.
//!
//! | module | what it holds |
//! |---|---|
//! | [`rng`] | SplitMix64 + xoshiro256** and the distributions (normal, gamma, beta, Poisson, alias tables) |
//! | [`schema`] | the tables, row structs, chunked Parquet writer, validating reader |
//! | [`world`] | vocabularies, catalog (movies, series, episodes), users and their hidden tastes |
//! | [`behaviour`] | sessions, the logging policy, examination, plays, watch time, searches |
//! | [`truth`] | the preference model, its coefficients, `world.json`, oracle utility |
//! | [`sim`] | the chunked, parallel driver and its summary |
//! | [`movielens`] | MovieLens-100K fetched from its PyPI wheel and imported as a world |
//! | [`fs`] | the one atomic file write every native crate uses |
//!
//! ```
//! use edgerec_data::{schema, sim, truth::Truth, world::WorldConfig};
//! let dir = tempfile::tempdir()?;
//! let cfg = WorldConfig { users: 40, items: 300, days: 7, seed: 1, start: 1_761_955_200 };
//! sim::simulate(&cfg, dir.path(), &sim::SimOptions::default())?;
//! let plays: Vec<schema::Play> = schema::read_table(dir.path())?;
//! let truth = Truth::load(dir.path())?;
//! if let Some(p) = plays.first() {
//!     let ctx = truth.context(p.user_id, p.time, p.device);
//!     let _u = truth.utility(p.user_id, p.item_id, &ctx);
//! }
//! # Ok::<(), anyhow::Error>(())
//! ```

#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod behaviour;
pub mod fs;
pub mod movielens;
pub mod rng;
pub mod schema;
pub mod sim;
pub mod truth;
pub mod world;
