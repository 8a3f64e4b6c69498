//! Drift statistics for Vigil: how far a current sample of a feature (or of the scores)
//! has moved from a reference sample. Pure: no I/O, no clock, no service types.
//!
//! - [`measures`]: the two-sample tests and distances — χ² (goodness-of-fit and
//!   homogeneity), the two-proportion z-test, Wasserstein, Jensen–Shannon, PSI — and
//!   [`ks`], the two-sample Kolmogorov–Smirnov test with exact and large-sample p-values
//!   ([`kolmogorov`] holds the distribution). Each equals scipy's function of the same name
//!   on the same data; `tests/it/scipy.rs` checks this against values scipy computed
//!   (`scripts/bench/drift_reference.py` regenerates them), and Evidently's PSI on its scenarios.
//! - [`binning`]: samples into aligned bin shares (Evidently's Sturges bins, the reference's
//!   deciles, per-value counts).
//! - [`policy`]: which test judges a column at which threshold — Evidently's default,
//!   reproduced, and Vigil's, which differs where Evidently's is known to mislead — and the
//!   dataset verdict over columns.
//! - [`report`]: a whole report of many columns against a prepared reference, on all cores.
//! - [`summary`]: mergeable window summaries (counts over bins fixed by the reference) and
//!   a time window of them, updated per value and per slice instead of re-scanned; PSI, χ²
//!   homogeneity, Jensen–Shannon and the missing-share test read them directly.

pub mod binning;
pub mod kolmogorov;
pub mod ks;
pub mod measures;
pub mod policy;
pub mod report;
pub mod summary;

pub use policy::{ColumnDrift, ColumnError, DatasetDrift, Kind, Policy, Sample, StatTest};
pub use report::{ColumnSpec, Reference, Report};
