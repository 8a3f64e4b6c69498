//! Timing helpers: per-call latency samples and their order statistics.

use serde::Serialize;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Order statistics of per-call latencies, in microseconds.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Latency {
    pub(crate) calls: usize,
    pub(crate) mean_us: f64,
    pub(crate) p50_us: f64,
    pub(crate) p90_us: f64,
    pub(crate) p99_us: f64,
    pub(crate) p999_us: f64,
    pub(crate) max_us: f64,
}

/// Nearest-rank percentile of sorted samples (`q` in [0, 1]).
fn percentile(sorted: &[u64], q: f64) -> u64 {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl Latency {
    fn from_nanos(mut samples: Vec<u64>) -> Latency {
        samples.sort_unstable();
        let us = |ns: u64| ns as f64 / 1000.0;
        let sum: u64 = samples.iter().sum();
        Latency {
            calls: samples.len(),
            mean_us: us(sum) / samples.len() as f64,
            p50_us: us(percentile(&samples, 0.50)),
            p90_us: us(percentile(&samples, 0.90)),
            p99_us: us(percentile(&samples, 0.99)),
            p999_us: us(percentile(&samples, 0.999)),
            max_us: us(*samples.last().unwrap_or(&0)),
        }
    }
}

/// Calls `score` once per row, cycling through `rows` (row-major, `width` wide): `warmup`
/// untimed calls, then `calls` calls each timed with its own pair of `Instant`s. Returns the
/// latencies and each timed call's output (compared afterwards, outside the timed region).
pub(crate) fn per_call<F>(
    rows: &[f64],
    width: usize,
    warmup: usize,
    calls: usize,
    mut score: F,
) -> anyhow::Result<(Latency, Vec<f64>)>
where
    F: FnMut(&[f64]) -> anyhow::Result<f64>,
{
    let n_rows = rows.len() / width;
    anyhow::ensure!(n_rows > 0 && calls > 0, "nothing to time");
    let row = |i: usize| &rows[(i % n_rows) * width..][..width];
    for i in 0..warmup {
        black_box(score(black_box(row(i)))?);
    }
    let mut samples = Vec::with_capacity(calls);
    let mut outputs = Vec::with_capacity(calls);
    for i in 0..calls {
        let input = row(i);
        let started = Instant::now();
        let out = black_box(score(black_box(input)));
        let elapsed = started.elapsed();
        samples.push(elapsed.as_nanos() as u64);
        outputs.push(out?);
    }
    Ok((Latency::from_nanos(samples), outputs))
}

/// The cost of the timing itself: an empty call timed like [`per_call`] times a real one.
pub(crate) fn timer_overhead(calls: usize) -> Latency {
    let samples = (0..calls)
        .map(|i| {
            let started = Instant::now();
            black_box(i);
            started.elapsed().as_nanos() as u64
        })
        .collect();
    Latency::from_nanos(samples)
}

/// Runs `f` once untimed, then `repeats` times timed; returns the outputs of the last run
/// and every timed duration.
pub(crate) fn repeated<T>(
    repeats: usize,
    mut f: impl FnMut() -> anyhow::Result<T>,
) -> anyhow::Result<(T, Vec<Duration>)> {
    let mut last = f()?;
    let mut times = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        let started = Instant::now();
        last = black_box(f()?);
        times.push(started.elapsed());
    }
    Ok((last, times))
}

/// The median of durations (the lower middle one for an even count).
pub(crate) fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort_unstable();
    sorted[(sorted.len() - 1) / 2]
}

/// Largest |a − b| over two equally long slices (∞ when lengths differ, NaN counts as ∞).
pub(crate) fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    if a.len() != b.len() {
        return f64::INFINITY;
    }
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            let d = (x - y).abs();
            if d.is_nan() { f64::INFINITY } else { d }
        })
        .fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<u64> = (1..=100).map(|v| v * 1000).collect();
        let l = Latency::from_nanos(samples);
        assert_eq!(l.p50_us, 50.0);
        assert_eq!(l.p99_us, 99.0);
        assert_eq!(l.max_us, 100.0);
        assert_eq!(l.calls, 100);
    }

    #[test]
    fn diff_flags_nan_and_length() {
        assert_eq!(max_abs_diff(&[1.0, 2.0], &[1.0, 2.5]), 0.5);
        assert!(max_abs_diff(&[1.0], &[f64::NAN]).is_infinite());
        assert!(max_abs_diff(&[1.0], &[]).is_infinite());
    }
}
