//! The in-memory training set.

use std::ops::Range;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::encoding::CategoryEncoding;
use crate::error::TrainsetError;
use crate::manifest::{FeatureSpec, FeatureType, Manifest};
use crate::read::{RawColumns, data_files, read_files};

/// A loaded training set, sorted by `(time, entity)` with ties kept in file order (files
/// in name order, rows in file order), so a window of time is a range of rows.
///
/// Features are a row-major `f64` matrix with `NaN` meaning missing. A categorical
/// feature's matrix column holds `NaN` until [`TrainingSet::encode_categoricals`] is
/// called: the encoding must be fit on the training window only (fitting it on all rows
/// would leak which categories appear in the future), and that window is only known once
/// the set is split. Its raw values are kept in [`TrainingSet::categorical_raw`].
#[derive(Debug, Clone)]
pub struct TrainingSet {
    manifest: Manifest,
    entities: Vec<String>,
    times_ms: Vec<i64>,
    labels: Vec<bool>,
    values: Vec<f64>,
    n_features: usize,
    /// Matrix column of each categorical feature, in feature order.
    categorical_features: Vec<usize>,
    categorical_raw: Vec<Vec<Option<String>>>,
    encodings: Option<Vec<CategoryEncoding>>,
}

impl TrainingSet {
    /// Loads the set described by the manifest at `manifest_path`.
    ///
    /// Reads only the manifest's columns, checks each column's type against its role,
    /// refuses nulls in entity, time and label columns, labels other than 0 / 1, data files
    /// with different schemas and an empty set, then sorts the rows by time.
    pub fn load(manifest_path: impl AsRef<Path>) -> Result<TrainingSet, TrainsetError> {
        let manifest_path = manifest_path.as_ref();
        let manifest = Manifest::from_path(manifest_path)?;
        let base = manifest_path.parent().unwrap_or(Path::new(""));
        let files = data_files(&base.join(&manifest.data))?;
        let columns = read_files(&manifest, &files)?;
        if columns.times_ms.is_empty() {
            return Err(TrainsetError::Empty {
                path: manifest_path.to_path_buf(),
            });
        }
        Ok(TrainingSet::from_raw(manifest, columns))
    }

    fn from_raw(manifest: Manifest, columns: RawColumns) -> TrainingSet {
        let RawColumns {
            mut entities,
            mut times_ms,
            mut labels,
            mut values,
            mut categorical_raw,
        } = columns;
        let n_features = manifest.features.len();
        let n = times_ms.len();
        let sorted =
            (1..n).all(|i| (times_ms[i - 1], &entities[i - 1]) <= (times_ms[i], &entities[i]));
        if !sorted {
            // perm[destination] = source; a stable sort keeps ties in file order.
            let mut perm: Vec<usize> = (0..n).collect();
            perm.sort_by(|&a, &b| {
                times_ms[a]
                    .cmp(&times_ms[b])
                    .then_with(|| entities[a].cmp(&entities[b]))
            });
            entities = perm
                .iter()
                .map(|&i| std::mem::take(&mut entities[i]))
                .collect();
            times_ms = perm.iter().map(|&i| times_ms[i]).collect();
            labels = perm.iter().map(|&i| labels[i]).collect();
            for raw in &mut categorical_raw {
                *raw = perm.iter().map(|&i| raw[i].take()).collect();
            }
            permute_rows(&mut values, n_features, &perm);
        }
        let categorical_features = manifest
            .features
            .iter()
            .enumerate()
            .filter(|(_, f)| f.feature_type == FeatureType::Categorical)
            .map(|(j, _)| j)
            .collect();
        TrainingSet {
            manifest,
            entities,
            times_ms,
            labels,
            values,
            n_features,
            categorical_features,
            categorical_raw,
            encodings: None,
        }
    }

    /// Fits one [`CategoryEncoding`] per categorical feature on the rows `fit_rows` (the
    /// training window), writes the codes of *all* rows into the matrix, and returns the
    /// encodings (also kept, see [`TrainingSet::encodings`]). Categories that appear only
    /// outside `fit_rows` get the encoding's unseen code. Calling it again refits.
    ///
    /// # Panics
    ///
    /// If `fit_rows` is not within `0..self.len()`, like slice indexing.
    pub fn encode_categoricals(&mut self, fit_rows: Range<usize>) -> Vec<CategoryEncoding> {
        let mut encodings = Vec::with_capacity(self.categorical_features.len());
        for (k, &j) in self.categorical_features.iter().enumerate() {
            let raw = &self.categorical_raw[k];
            let encoding = CategoryEncoding::fit(
                self.manifest.features[j].name.clone(),
                raw[fit_rows.clone()].iter().map(Option::as_deref),
            );
            for (i, value) in raw.iter().enumerate() {
                self.values[i * self.n_features + j] = encoding.code(value.as_deref());
            }
            encodings.push(encoding);
        }
        self.encodings = Some(encodings.clone());
        encodings
    }

    /// The encodings of the last [`TrainingSet::encode_categoricals`], if it was called.
    pub fn encodings(&self) -> Option<&[CategoryEncoding]> {
        self.encodings.as_deref()
    }

    /// The manifest the set was loaded from.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The set's name, from the manifest.
    pub fn name(&self) -> &str {
        &self.manifest.name
    }

    /// How long after an event its label is known; the natural gap for splits.
    pub fn label_delay_ms(&self) -> i64 {
        self.manifest.label_delay_ms
    }

    /// The number of rows (never 0 for a loaded set).
    pub fn len(&self) -> usize {
        self.times_ms.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.times_ms.is_empty()
    }

    /// The number of positive (fraud) labels.
    pub fn positives(&self) -> usize {
        self.labels.iter().filter(|&&l| l).count()
    }

    /// The features, in matrix order.
    pub fn features(&self) -> &[FeatureSpec] {
        &self.manifest.features
    }

    /// The features' names, in matrix order.
    pub fn feature_names(&self) -> Vec<&str> {
        self.manifest.feature_names()
    }

    /// The features' types, in matrix order.
    pub fn feature_types(&self) -> Vec<FeatureType> {
        self.manifest.feature_types()
    }

    /// The number of features (matrix columns).
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// The entity of each row.
    pub fn entities(&self) -> &[String] {
        &self.entities
    }

    /// The event time of each row, unix milliseconds, non-decreasing.
    pub fn times_ms(&self) -> &[i64] {
        &self.times_ms
    }

    /// The label of each row.
    pub fn labels(&self) -> &[bool] {
        &self.labels
    }

    /// The feature matrix, row-major: row `i` is `values()[i * n_features()..][..n_features()]`.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// The features of row `i`.
    ///
    /// # Panics
    ///
    /// If `i >= self.len()`.
    pub fn row(&self, i: usize) -> &[f64] {
        &self.values[i * self.n_features..(i + 1) * self.n_features]
    }

    /// The matrix column of each categorical feature, in feature order; the `k`-th entry
    /// goes with `categorical_raw()[k]`.
    pub fn categorical_features(&self) -> &[usize] {
        &self.categorical_features
    }

    /// Per categorical feature, the raw value of every row (`None` = missing). Integer
    /// columns appear as their decimal representation.
    pub fn categorical_raw(&self) -> &[Vec<Option<String>>] {
        &self.categorical_raw
    }

    /// A SHA-256 (hex) identifying the set's content, sensitive to row order: the
    /// features' names and types, then per row the entity, time, label, the numeric
    /// feature values (bit patterns; every NaN counts as the same "missing") and the
    /// raw categorical values.
    ///
    /// It does not depend on the categorical encoding, the set's name, the label delay,
    /// the entity/time/label column names or the files' layout, so the same data gives
    /// the same fingerprint whether it was written as one file or many.
    pub fn fingerprint(&self) -> String {
        let mut hash = Sha256::new();
        hash.update(b"vigil-trainset-v1\0");
        hash.update((self.n_features as u64).to_le_bytes());
        for feature in &self.manifest.features {
            update_str(&mut hash, &feature.name);
            hash.update([match feature.feature_type {
                FeatureType::Numeric => 0u8,
                FeatureType::Categorical => 1,
            }]);
        }
        hash.update((self.len() as u64).to_le_bytes());
        let mut buf = Vec::with_capacity(64 + 8 * self.n_features);
        for i in 0..self.len() {
            buf.clear();
            let entity = self.entities[i].as_bytes();
            buf.extend_from_slice(&(entity.len() as u64).to_le_bytes());
            buf.extend_from_slice(entity);
            buf.extend_from_slice(&self.times_ms[i].to_le_bytes());
            buf.push(u8::from(self.labels[i]));
            for (j, feature) in self.manifest.features.iter().enumerate() {
                if feature.feature_type == FeatureType::Numeric {
                    let v = self.values[i * self.n_features + j];
                    let v = if v.is_nan() { f64::NAN } else { v };
                    buf.extend_from_slice(&v.to_bits().to_le_bytes());
                }
            }
            for raw in &self.categorical_raw {
                match &raw[i] {
                    None => buf.push(0),
                    Some(s) => {
                        buf.push(1);
                        buf.extend_from_slice(&(s.len() as u64).to_le_bytes());
                        buf.extend_from_slice(s.as_bytes());
                    }
                }
            }
            hash.update(&buf);
        }
        hex::encode(hash.finalize())
    }
}

fn update_str(hash: &mut Sha256, s: &str) {
    hash.update((s.len() as u64).to_le_bytes());
    hash.update(s.as_bytes());
}

/// Reorders the rows of a row-major matrix in place so that row `d` becomes the former row
/// `perm[d]`, following the permutation's cycles with one row of scratch space (the matrix
/// of a large set is not copied).
fn permute_rows(values: &mut [f64], width: usize, perm: &[usize]) {
    if width == 0 {
        return;
    }
    let mut done = vec![false; perm.len()];
    let mut scratch = vec![0.0; width];
    for start in 0..perm.len() {
        if done[start] {
            continue;
        }
        done[start] = true;
        if perm[start] == start {
            continue;
        }
        scratch.copy_from_slice(&values[start * width..(start + 1) * width]);
        let mut d = start;
        loop {
            let s = perm[d];
            if s == start {
                values[d * width..(d + 1) * width].copy_from_slice(&scratch);
                break;
            }
            values.copy_within(s * width..(s + 1) * width, d * width);
            done[s] = true;
            d = s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permute_rows_moves_every_row_to_its_destination() {
        // Rows are [r, 10r]; perm has a 3-cycle, a 2-cycle and a fixed point.
        let perm = [2, 0, 1, 4, 3, 5];
        let mut values: Vec<f64> = (0..6).flat_map(|r| [r as f64, 10.0 * r as f64]).collect();
        permute_rows(&mut values, 2, &perm);
        let expected: Vec<f64> = perm
            .iter()
            .flat_map(|&r| [r as f64, 10.0 * r as f64])
            .collect();
        assert_eq!(values, expected);
    }
}
