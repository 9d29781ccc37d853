//! Native trainers for edgerec's candidate sources.
//!
//! - [`ials`]: implicit ALS (Hu, Koren & Volinsky 2008) on all cores; users are folded in with
//!   the core's [`edgerec::ials::fold_in`], so a device given the same item factors and Gram
//!   matrix computes the same user vectors.
#![warn(missing_docs)]

pub mod ials;
