//! Native trainers for edgerec's candidate sources.
//!
//! - [`ials`]: implicit ALS (Hu, Koren & Volinsky 2008) on all cores; users are folded in with
//!   the core's [`edgerec::ials::fold_in`], so a device given the same item factors and Gram
//!   matrix computes the same user vectors.
//! - [`stream`]: the same model in memory bounded by the catalog: users stream past in
//!   partitions and are folded in, items solve by conjugate gradient over passes.
#![warn(missing_docs)]

pub mod ials;
pub mod stream;
