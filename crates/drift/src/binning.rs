//! Turning samples into aligned bin shares, for the distances that compare histograms
//! (Jensen–Shannon, PSI).

/// numpy's `histogram_bin_edges(values, bins="sturges")` over the pooled **sorted** samples:
/// ⌈range / width⌉ equal-width bins with width = range / (log₂ n + 1), from the pooled
/// minimum to the pooled maximum (the edges Evidently bins numeric columns on).
pub fn sturges_edges(a: &[f64], b: &[f64]) -> Vec<f64> {
    let lo = a
        .first()
        .copied()
        .unwrap_or(f64::NAN)
        .min(b.first().copied().unwrap_or(f64::NAN));
    let hi = a
        .last()
        .copied()
        .unwrap_or(f64::NAN)
        .max(b.last().copied().unwrap_or(f64::NAN));
    let n = (a.len() + b.len()) as f64;
    let range = hi - lo;
    let width = range / (n.log2() + 1.0);
    let bins = if width > 0.0 {
        (range / width).ceil() as usize
    } else {
        1
    };
    let (first, last) = if range == 0.0 {
        (lo - 0.5, hi + 0.5)
    } else {
        (lo, hi)
    };
    linspace(first, last, bins + 1)
}

/// numpy's `linspace(start, stop, num)`: start + i·step, with the last point exactly `stop`.
fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    let step = (stop - start) / (num - 1) as f64;
    let mut v: Vec<f64> = (0..num).map(|i| i as f64 * step + start).collect();
    if let Some(l) = v.last_mut() {
        *l = stop;
    }
    v
}

/// Counts of **sorted** `values` in the bins [e₀, e₁), [e₁, e₂), …, [eₖ₋₁, eₖ] (numpy's
/// `histogram` rule: half-open, the last bin closed; values outside are not counted).
pub fn histogram_sorted(values: &[f64], edges: &[f64]) -> Vec<u64> {
    let bins = edges.len().saturating_sub(1);
    let mut counts = vec![0u64; bins];
    if bins == 0 {
        return counts;
    }
    let (first, last) = (edges[0], edges[bins]);
    for &v in values {
        if v < first || v > last {
            continue;
        }
        // The bin i with eᵢ ≤ v < eᵢ₊₁; v = eₖ goes into the last bin.
        let i = edges
            .partition_point(|&e| e <= v)
            .saturating_sub(1)
            .min(bins - 1);
        counts[i] += 1;
    }
    counts
}

/// One distinct value of two pooled **sorted** samples, with how many values of each lie
/// below it and at or below it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Step {
    pub value: f64,
    pub a_below: usize,
    pub a_upto: usize,
    pub b_below: usize,
    pub b_upto: usize,
}

/// The distinct values of two **sorted** samples, ascending: the one merge walk behind the
/// KS statistic, the Wasserstein integral and the per-value counts (O(n₁ + n₂)).
pub(crate) fn pooled_steps<'s>(a: &'s [f64], b: &'s [f64]) -> impl Iterator<Item = Step> + 's {
    let (mut i, mut j) = (0usize, 0usize);
    std::iter::from_fn(move || {
        let value = match (a.get(i), b.get(j)) {
            (Some(&x), Some(&y)) => x.min(y),
            (Some(&x), None) => x,
            (None, Some(&y)) => y,
            (None, None) => return None,
        };
        let (a_below, b_below) = (i, j);
        while i < a.len() && a[i] <= value {
            i += 1;
        }
        while j < b.len() && b[j] <= value {
            j += 1;
        }
        Some(Step {
            value,
            a_below,
            a_upto: i,
            b_below,
            b_upto: j,
        })
    })
}

/// Counts of each distinct value of two **sorted** samples, aligned over the union of their
/// values (in ascending order).
pub fn value_counts_sorted(a: &[f64], b: &[f64]) -> (Vec<u64>, Vec<u64>) {
    pooled_steps(a, b)
        .map(|s| ((s.a_upto - s.a_below) as u64, (s.b_upto - s.b_below) as u64))
        .unzip()
}

/// The number of distinct values in the union of two **sorted** samples, counted up to
/// `limit` (a policy only asks whether there are more than 2 or 5: stopping there keeps
/// the question short on continuous columns).
pub fn distinct_union_sorted(a: &[f64], b: &[f64], limit: usize) -> usize {
    pooled_steps(a, b).take(limit).count()
}

/// Distinct values in one **sorted** sample.
pub fn distinct_sorted(a: &[f64]) -> usize {
    if a.is_empty() {
        return 0;
    }
    1 + a.windows(2).filter(|w| w[0] != w[1]).count()
}

/// Counts as shares of `total`.
pub fn shares(counts: &[u64], total: usize) -> Vec<f64> {
    counts.iter().map(|&c| c as f64 / total as f64).collect()
}

/// Evidently's smoothing of empty bins: each 0 becomes 10⁻⁴, or a millionth of the smallest
/// non-zero share when that is itself at most 10⁻⁴.
pub fn fill_empty_evidently(shares: &mut [f64]) {
    let smallest = shares
        .iter()
        .copied()
        .filter(|&s| s != 0.0)
        .fold(f64::INFINITY, f64::min);
    let fill = if smallest <= 1e-4 {
        smallest / 1e6
    } else {
        1e-4
    };
    shares
        .iter_mut()
        .filter(|s| **s == 0.0)
        .for_each(|s| *s = fill);
}

/// The p-quantile of a **sorted** non-empty sample by the inverted-CDF rule (the smallest
/// value with at least p of the sample at or below it).
pub fn quantile_sorted(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Interior edges at the reference's i/bins quantiles (the inverted-CDF rule: the smallest
/// value with at least i/bins of the sample at or below it), repeated quantiles merged; the
/// bins are (−∞, e₁], (e₁, e₂], …, (eₖ, +∞) ([`right_closed_bin`]). Vigil's binning for PSI,
/// and the manifest's feature profiles (`model::profile`) are built with it.
pub fn quantile_edges_sorted(reference: &[f64], bins: usize) -> Vec<f64> {
    let n = reference.len();
    let bins = bins.max(1);
    let mut edges: Vec<f64> = Vec::with_capacity(bins);
    if n == 0 {
        return edges;
    }
    for i in 1..bins {
        let rank = (i * n).div_ceil(bins).max(1);
        let v = reference[rank - 1];
        if edges.last().is_none_or(|&last| last < v) {
            edges.push(v);
        }
    }
    edges
}

/// The bin of `value` among (−∞, e₁], (e₁, e₂], …, (eₖ, +∞).
pub fn right_closed_bin(edges: &[f64], value: f64) -> usize {
    edges.partition_point(|&e| e < value)
}

/// Counts of `values` in the right-closed bins of [`quantile_edges_sorted`].
pub fn quantile_counts_sorted(values: &[f64], edges: &[f64]) -> Vec<u64> {
    let mut counts = vec![0u64; edges.len() + 1];
    for &v in values {
        counts[right_closed_bin(edges, v)] += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_follows_numpys_edges_rule() {
        let edges = [0.0, 1.0, 2.0];
        assert_eq!(
            histogram_sorted(&[-1.0, 0.0, 0.5, 1.0, 2.0, 3.0], &edges),
            vec![2, 2]
        );
    }

    #[test]
    fn sturges_of_100_values_has_8_bins() {
        // log₂ 100 + 1 = 7.64 → 8 bins, 9 edges.
        let a: Vec<f64> = (0..50).map(f64::from).collect();
        let b: Vec<f64> = (50..100).map(f64::from).collect();
        let e = sturges_edges(&a, &b);
        assert_eq!(e.len(), 9);
        assert_eq!((e[0], e[8]), (0.0, 99.0));
    }

    #[test]
    fn empty_bins_are_filled_like_evidently() {
        let mut s = vec![0.5, 0.0, 0.5];
        fill_empty_evidently(&mut s);
        assert_eq!(s, vec![0.5, 1e-4, 0.5]);
        let mut s = vec![0.99995, 0.0, 0.00005];
        fill_empty_evidently(&mut s);
        assert_eq!(s[1], 0.00005 / 1e6);
    }

    #[test]
    fn quantile_edges_are_deciles_and_merge_ties() {
        let r: Vec<f64> = (1..=100).map(f64::from).collect();
        let e = quantile_edges_sorted(&r, 10);
        assert_eq!(
            e,
            vec![10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0]
        );
        assert_eq!(quantile_counts_sorted(&r, &e), vec![10; 10]);
        // A constant sample: one edge at its value, its values all in the first bin.
        let tied = vec![1.0; 50];
        assert_eq!(quantile_edges_sorted(&tied, 10), vec![1.0]);
        assert_eq!(quantile_counts_sorted(&tied, &[1.0]), vec![50, 0]);
    }
}
