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
        let samples = on_all_cores(values, |v| Sample::new(v));
        Reference {
            columns: specs.into_iter().zip(samples).collect(),
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
        let pairs: Vec<_> = self.columns.iter().zip(current).collect();
        let columns = on_all_cores(&pairs, |((spec, reference), values)| {
            let c = Sample::new(values);
            (spec.name.clone(), policy.column(spec.kind, reference, &c))
        });
        let dataset = dataset_drift(columns.iter().filter_map(|(_, r)| r.as_ref().ok()), share);
        Report { columns, dataset }
    }
}

/// `f` over `items` in contiguous chunks, one scoped thread per core, results in order.
fn on_all_cores<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = items.len().div_ceil(threads).max(1);
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| s.spawn(move || part.iter().map(f).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a drift worker panicked"))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_judges_every_column_in_order_like_the_policy_alone() {
        let specs: Vec<ColumnSpec> = (0..7)
            .map(|i| ColumnSpec {
                name: format!("c{i}"),
                kind: if i % 3 == 0 {
                    Kind::Categorical
                } else {
                    Kind::Numeric
                },
            })
            .collect();
        let reference: Vec<Vec<f64>> = (0..7)
            .map(|i| (0..300).map(|j| f64::from((j * (i + 3)) % 17)).collect())
            .collect();
        let mut current: Vec<Vec<f64>> = (0..7)
            .map(|i| {
                (0..200)
                    .map(|j| f64::from((j * (i + 5)) % 17 + i % 2))
                    .collect()
            })
            .collect();
        current[6] = vec![f64::NAN; 10]; // no finite value: an error for that column only
        let r = Reference::new(specs.clone(), &reference);
        let report = r.report(&current, Policy::Vigil, 0.5);
        assert_eq!(report.columns.len(), 7);
        for (i, (name, verdict)) in report.columns.iter().enumerate() {
            assert_eq!(name, &specs[i].name);
            let alone = Policy::Vigil.column(
                specs[i].kind,
                &Sample::new(&reference[i]),
                &Sample::new(&current[i]),
            );
            assert_eq!(verdict, &alone, "{name}");
        }
        assert_eq!(report.dataset.columns, 6);
    }
}
