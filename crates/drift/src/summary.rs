//! Mergeable window summaries: a column's live values as counts over bins fixed by the
//! reference, so that a window is updated per value and per time slice — merged when a
//! slice arrives, subtracted when it expires — instead of re-scanned for every report.
//!
//! Counts are all that PSI, χ² homogeneity, Jensen–Shannon and the missing-share test need,
//! so those are computed from a summary exactly as from the values binned the same way. The
//! rank tests (KS, Wasserstein) need the values themselves and stay with [`crate::Sample`].

use crate::measures::{
    TestResult, chi_square_homogeneity, jensen_shannon, psi_floored, z_proportions,
};
use std::collections::VecDeque;

/// The bins of a summary: right-closed numeric bins (−∞, e₁], (e₁, e₂], …, (eₖ, +∞) over
/// interior `edges` (the reference's quantiles, [`crate::binning::quantile_edges_sorted`]),
/// or one bin per category code listed plus one for every other code.
#[derive(Debug, Clone, PartialEq)]
pub enum Bins {
    Numeric { edges: Vec<f64> },
    Categorical { codes: Vec<f64> },
}

impl Bins {
    /// How many bins.
    pub fn len(&self) -> usize {
        match self {
            Bins::Numeric { edges } => edges.len() + 1,
            Bins::Categorical { codes } => codes.len() + 1,
        }
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// The bin of a finite value.
    fn index(&self, v: f64) -> usize {
        match self {
            Bins::Numeric { edges } => crate::binning::right_closed_bin(edges, v),
            Bins::Categorical { codes } => {
                codes.iter().position(|&c| c == v).unwrap_or(codes.len())
            }
        }
    }
}

/// A summary's bins differ from another's: they cannot be combined or compared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the summaries have different bins")]
pub struct BinsDiffer;

/// Counts of a column's values over fixed [`Bins`], plus the missing ones (NaN, ±∞).
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    bins: Bins,
    counts: Vec<u64>,
    missing: u64,
}

impl Summary {
    pub fn new(bins: Bins) -> Summary {
        Summary {
            counts: vec![0; bins.len()],
            bins,
            missing: 0,
        }
    }

    /// The summary of `values` over `bins`.
    pub fn of(bins: Bins, values: &[f64]) -> Summary {
        let mut s = Summary::new(bins);
        values.iter().for_each(|&v| s.add(v));
        s
    }

    pub fn add(&mut self, v: f64) {
        if v.is_finite() {
            let i = self.bins.index(v);
            self.counts[i] += 1;
        } else {
            self.missing += 1;
        }
    }

    /// Adds another summary's counts (the union of the two windows).
    pub fn merge(&mut self, other: &Summary) -> Result<(), BinsDiffer> {
        if self.bins != other.bins {
            return Err(BinsDiffer);
        }
        self.counts
            .iter_mut()
            .zip(&other.counts)
            .for_each(|(a, b)| *a += b);
        self.missing += other.missing;
        Ok(())
    }

    /// Removes a summary that was merged in before (an expired slice). Counts never go
    /// below zero: removing what was not added is an error, not a silent clamp.
    pub fn subtract(&mut self, other: &Summary) -> Result<(), SummaryError> {
        if self.bins != other.bins {
            return Err(SummaryError::BinsDiffer);
        }
        if self.missing < other.missing || self.counts.iter().zip(&other.counts).any(|(a, b)| a < b)
        {
            return Err(SummaryError::NotContained);
        }
        self.counts
            .iter_mut()
            .zip(&other.counts)
            .for_each(|(a, b)| *a -= b);
        self.missing -= other.missing;
        Ok(())
    }

    pub fn bins(&self) -> &Bins {
        &self.bins
    }

    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    /// Finite values counted.
    pub fn finite(&self) -> u64 {
        self.counts.iter().sum()
    }

    pub fn missing(&self) -> u64 {
        self.missing
    }

    fn shares(&self) -> Option<Vec<f64>> {
        let n = self.finite();
        (n > 0).then(|| self.counts.iter().map(|&c| c as f64 / n as f64).collect())
    }

    /// PSI of this (current) summary against `reference`, shares floored at 10⁻⁴ — the same
    /// as [`crate::StatTest::PsiReferenceDeciles`] on the values, when the bins are the
    /// reference's deciles.
    pub fn psi(&self, reference: &Summary) -> Result<Option<f64>, BinsDiffer> {
        self.same_bins(reference)?;
        Ok(match (reference.shares(), self.shares()) {
            (Some(r), Some(c)) => Some(psi_floored(&r, &c)),
            _ => None,
        })
    }

    /// χ² homogeneity of the two summaries' counts.
    pub fn chi_square_homogeneity(
        &self,
        reference: &Summary,
    ) -> Result<Option<TestResult>, BinsDiffer> {
        self.same_bins(reference)?;
        let f = |s: &Summary| s.counts.iter().map(|&c| c as f64).collect::<Vec<_>>();
        Ok(chi_square_homogeneity(&f(reference), &f(self)))
    }

    /// Jensen–Shannon distance of the two summaries' shares.
    pub fn jensen_shannon(&self, reference: &Summary) -> Result<Option<f64>, BinsDiffer> {
        self.same_bins(reference)?;
        Ok(match (reference.shares(), self.shares()) {
            (Some(r), Some(c)) => Some(jensen_shannon(&r, &c)),
            _ => None,
        })
    }

    /// The two-proportion z-test on the missing shares (a column that starts arriving empty
    /// is drift even when its present values look like the reference's).
    pub fn missing_share_test(&self, reference: &Summary) -> Option<TestResult> {
        let total = |s: &Summary| (s.finite() + s.missing) as f64;
        z_proportions(
            reference.missing as f64,
            total(reference),
            self.missing as f64,
            total(self),
        )
    }

    fn same_bins(&self, other: &Summary) -> Result<(), BinsDiffer> {
        if self.bins == other.bins {
            Ok(())
        } else {
            Err(BinsDiffer)
        }
    }
}

/// Why a summary could not be subtracted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SummaryError {
    #[error("the summaries have different bins")]
    BinsDiffer,
    #[error("the summary to remove holds counts this one does not")]
    NotContained,
}

/// A time window of one column as a running [`Summary`] over fixed-length slices: a value
/// goes into the slice of its event time; slices older than the span are subtracted from the
/// total as time passes. Each report reads the total: O(bins), whatever the window's size.
#[derive(Debug, Clone)]
pub struct TimeWindow {
    slice_ms: i64,
    span_ms: i64,
    /// (slice start, its summary), oldest first.
    slices: VecDeque<(i64, Summary)>,
    total: Summary,
}

impl TimeWindow {
    /// A window of `span_ms` in slices of `slice_ms` (both positive; the span is rounded up
    /// to whole slices).
    pub fn new(bins: Bins, slice_ms: i64, span_ms: i64) -> TimeWindow {
        let slice_ms = slice_ms.max(1);
        TimeWindow {
            slice_ms,
            span_ms: (span_ms.max(slice_ms) + slice_ms - 1) / slice_ms * slice_ms,
            slices: VecDeque::new(),
            total: Summary::new(bins),
        }
    }

    /// Counts `value` at `event_ms`. A value older than the window is not counted (returns
    /// false): it would expire at once.
    pub fn add(&mut self, event_ms: i64, value: f64) -> bool {
        let start = event_ms.div_euclid(self.slice_ms) * self.slice_ms;
        let newest = self.slices.back().map(|(s, _)| *s);
        if let Some(newest) = newest
            && start + self.span_ms <= newest
        {
            return false;
        }
        let i = match self.slices.binary_search_by_key(&start, |(s, _)| *s) {
            Ok(i) => i,
            Err(i) => {
                self.slices
                    .insert(i, (start, Summary::new(self.total.bins.clone())));
                i
            }
        };
        self.slices[i].1.add(value);
        self.total.add(value);
        self.expire();
        true
    }

    /// Drops the slices that no longer overlap the span ending with the newest slice.
    fn expire(&mut self) {
        let Some(&(newest, _)) = self.slices.back() else {
            return;
        };
        while let Some((start, _)) = self.slices.front() {
            if *start + self.span_ms > newest {
                break;
            }
            let (_, old) = self.slices.pop_front().expect("a front slice");
            self.total
                .subtract(&old)
                .expect("an expiring slice was merged into the total");
        }
    }

    /// The window's running summary.
    pub fn summary(&self) -> &Summary {
        &self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binning::{quantile_counts_sorted, quantile_edges_sorted};
    use crate::{Kind, Sample, StatTest};

    fn deciles(reference: &[f64]) -> Bins {
        let s = Sample::new(reference);
        Bins::Numeric {
            edges: quantile_edges_sorted(s.sorted(), 10),
        }
    }

    #[test]
    fn a_summary_counts_like_the_binning_and_gives_the_same_psi() {
        let r: Vec<f64> = (0..5000).map(|i| f64::from(i % 1000) / 7.0).collect();
        let c: Vec<f64> = (0..3000).map(|i| f64::from(i % 800) / 7.0 + 20.0).collect();
        let bins = deciles(&r);
        let (rs, cs) = (Summary::of(bins.clone(), &r), Summary::of(bins.clone(), &c));
        let Bins::Numeric { edges } = &bins else {
            unreachable!()
        };
        let mut sorted = c.clone();
        sorted.sort_by(f64::total_cmp);
        assert_eq!(cs.counts(), quantile_counts_sorted(&sorted, edges));
        let from_values = StatTest::PsiReferenceDeciles
            .score(Kind::Numeric, &Sample::new(&r), &Sample::new(&c))
            .unwrap();
        let from_summary = cs.psi(&rs).unwrap().unwrap();
        assert!(
            (from_values - from_summary).abs() < 1e-12,
            "{from_values} {from_summary}"
        );
    }

    #[test]
    fn merge_and_subtract_are_exact_inverses_and_check_their_bins() {
        let bins = Bins::Categorical {
            codes: vec![1.0, 2.0, 3.0],
        };
        let a = Summary::of(bins.clone(), &[1.0, 2.0, 2.0, 9.0, f64::NAN]);
        let b = Summary::of(bins.clone(), &[3.0, 3.0, 1.0]);
        let mut both = a.clone();
        both.merge(&b).unwrap();
        assert_eq!(both.counts(), &[2, 2, 2, 1]);
        assert_eq!((both.finite(), both.missing()), (7, 1));
        both.subtract(&b).unwrap();
        assert_eq!(both, a);
        assert_eq!(both.subtract(&b), Err(SummaryError::NotContained));
        let other = Summary::new(Bins::Categorical { codes: vec![1.0] });
        assert_eq!(both.merge(&other), Err(BinsDiffer));
        assert!(both.psi(&other).is_err());
    }

    #[test]
    fn a_time_window_keeps_only_its_span() {
        let bins = Bins::Numeric { edges: vec![0.0] }; // (−∞, 0], (0, ∞)
        let mut w = TimeWindow::new(bins.clone(), 1_000, 3_000);
        assert!(w.add(500, -1.0)); // slice 0
        assert!(w.add(1_500, 1.0)); // slice 1000
        assert!(w.add(2_500, 1.0)); // slice 2000
        assert_eq!(w.summary().counts(), &[1, 2]);
        // Slice 3000 arrives: slice 0 leaves the 3 s span.
        assert!(w.add(3_100, f64::NAN));
        assert_eq!(w.summary().counts(), &[0, 2]);
        assert_eq!(w.summary().missing(), 1);
        // Late but inside the span: counted in its own slice; too late: refused.
        assert!(w.add(1_999, -5.0));
        assert_eq!(w.summary().counts(), &[1, 2]);
        assert!(!w.add(999, -5.0));
        // The running total equals a summary of exactly the values in the span.
        let direct = Summary::of(bins, &[1.0, 1.0, f64::NAN, -5.0]);
        assert_eq!(w.summary(), &direct);
    }

    #[test]
    fn a_column_arriving_empty_is_drift_in_the_missing_share() {
        let bins = Bins::Numeric { edges: vec![0.0] };
        let r = Summary::of(bins.clone(), &vec![1.0; 2000]);
        let mut values = vec![1.0; 700];
        values.extend(vec![f64::NAN; 300]);
        let c = Summary::of(bins, &values);
        let t = c.missing_share_test(&r).unwrap();
        assert!(t.pvalue < 1e-10, "{t:?}");
        // The present values alone do not move.
        assert!(c.psi(&r).unwrap().unwrap().abs() < 1e-12);
    }
}
