//! A drift report over many columns: the reference is prepared once (sorted, missing
//! counted) when a model is loaded, each current window is prepared per report, and the
//! columns are judged in parallel on scoped threads (the work per column is independent
//! and CPU-bound; a thread pool crate would add nothing for one fork-join).

use crate::policy::{ColumnDrift, ColumnError, DatasetDrift, Kind, Policy, Sample, dataset_drift};

/// A column's name and kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnSpec {
    pub name: String,
    pub kind: Kind,
}

/// Reference samples of named columns, prepared once.
#[derive(Debug, Clone)]
pub struct Reference {
    columns: Vec<(ColumnSpec, Sample)>,
}

/// Every column's verdict (or why it has none) and the dataset verdict over those judged.
#[derive(Debug, Clone)]
pub struct Report {
    pub columns: Vec<(String, Result<ColumnDrift, ColumnError>)>,
    pub dataset: DatasetDrift,
}

impl Reference {
    /// `values[i]` holds column `specs[i]`'s reference values.
    pub fn new(specs: Vec<ColumnSpec>, values: &[Vec<f64>]) -> Reference {
        assert_eq!(specs.len(), values.len(), "one value column per spec");
        Reference {
            columns: specs
                .into_iter()
                .zip(values)
                .map(|(s, v)| (s, Sample::new(v)))
                .collect(),
        }
    }

    pub fn columns(&self) -> impl Iterator<Item = &ColumnSpec> {
        self.columns.iter().map(|(s, _)| s)
    }

    /// Judges `current[i]` (the current values of column i) with `policy`; the dataset
    /// drifts when at least `share` of the judged columns do.
    pub fn report(&self, current: &[Vec<f64>], policy: Policy, share: f64) -> Report {
        assert_eq!(
            current.len(),
            self.columns.len(),
            "one current column per reference column"
        );
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let chunk = self.columns.len().div_ceil(threads).max(1);
        let judge = |(name_kind, values): (&(ColumnSpec, Sample), &Vec<f64>)| {
            let (spec, reference) = name_kind;
            let c = Sample::new(values);
            (spec.name.clone(), policy.column(spec.kind, reference, &c))
        };
        let columns: Vec<(String, Result<ColumnDrift, ColumnError>)> = std::thread::scope(|s| {
            let handles: Vec<_> = self
                .columns
                .chunks(chunk)
                .zip(current.chunks(chunk))
                .map(|(refs, cur)| {
                    s.spawn(move || refs.iter().zip(cur).map(judge).collect::<Vec<_>>())
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("a drift worker panicked"))
                .collect()
        });
        let dataset = dataset_drift(columns.iter().filter_map(|(_, r)| r.as_ref().ok()), share);
        Report { columns, dataset }
    }
}
