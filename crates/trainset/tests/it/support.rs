//! Fixtures: Parquet files and manifests in temporary directories.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use serde_json::{Value, json};

/// Writes `columns` as one Parquet file at `path` (parent directories created).
pub(crate) fn write_parquet(path: &Path, columns: Vec<(&str, ArrayRef)>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let mut writer =
        ArrowWriter::try_new(File::create(path).unwrap(), batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

/// The manifest used by most tests: entity `user_id`, time `event_time_ms`, label
/// `is_fraud`, numeric `amount_minor`, categorical `channel`, data in `data/`.
pub(crate) fn manifest() -> Value {
    json!({
        "name": "vigil-v1",
        "entity_column": "user_id",
        "time_column": "event_time_ms",
        "label_column": "is_fraud",
        "label_delay_ms": 1000,
        "features": [
            {"name": "amount_minor", "type": "numeric"},
            {"name": "channel", "type": "categorical"}
        ],
        "data": "data"
    })
}

/// Writes `manifest` as `dir/trainset.json` and returns its path.
pub(crate) fn write_manifest(dir: &Path, manifest: &Value) -> PathBuf {
    let path = dir.join("trainset.json");
    std::fs::write(&path, serde_json::to_vec_pretty(manifest).unwrap()).unwrap();
    path
}

pub(crate) fn arc<A: arrow::array::Array + 'static>(array: A) -> ArrayRef {
    Arc::new(array)
}

/// A deterministic pseudo-random sequence (64-bit LCG), for property-style tests.
#[derive(Debug)]
pub(crate) struct Lcg(pub(crate) u64);

impl Lcg {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
