//! The raw files handed to the Python reference: each matrix as little-endian `f64`
//! (row-major), each label vector as `u8` (0 / 1), described by one JSON header that also
//! carries the exact LightGBM parameters and the fraud-row weight. Python reads them with
//! `numpy.fromfile`; no Arrow or Parquet is needed on that side.

use anyhow::{Context, ensure};
use serde::Serialize;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

/// The header's `format` value; the Python script refuses anything else.
pub(crate) const FORMAT: &str = "vigil-bench-matrices/1";
/// The header's file name in the output directory.
pub(crate) const HEADER_FILE: &str = "lightgbm_input.json";

/// One window's files (names relative to the header's directory).
#[derive(Debug, Serialize)]
pub(crate) struct WindowFiles {
    pub(crate) rows: usize,
    pub(crate) positives: usize,
    pub(crate) x: String,
    pub(crate) y: String,
}

/// Writes `values` (row-major, `width` wide) to `dir/<name>.x.f64` and `labels` to
/// `dir/<name>.y.u8`.
pub(crate) fn write_window(
    dir: &Path,
    name: &str,
    values: &[f64],
    labels: &[bool],
    width: usize,
) -> anyhow::Result<WindowFiles> {
    ensure!(
        values.len() == labels.len() * width,
        "window {name}: {} values for {} rows of {width}",
        values.len(),
        labels.len()
    );
    let x = format!("{name}.x.f64");
    let y = format!("{name}.y.u8");
    write_f64(&dir.join(&x), values)?;
    let bytes: Vec<u8> = labels.iter().map(|&l| u8::from(l)).collect();
    std::fs::write(dir.join(&y), bytes).with_context(|| format!("writing {y}"))?;
    Ok(WindowFiles {
        rows: labels.len(),
        positives: labels.iter().filter(|l| **l).count(),
        x,
        y,
    })
}

pub(crate) fn write_f64(path: &Path, values: &[f64]) -> anyhow::Result<()> {
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    for v in values {
        out.write_all(&v.to_le_bytes())?;
    }
    out.flush()
        .with_context(|| format!("writing {}", path.display()))
}

pub(crate) fn read_f64(path: &Path) -> anyhow::Result<Vec<f64>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    ensure!(
        bytes.len().is_multiple_of(8),
        "{}: {} bytes is not a whole number of f64",
        path.display(),
        bytes.len()
    );
    Ok(bytes
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
        .collect())
}

pub(crate) fn write_text(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f64_round_trip_keeps_nan_and_bits() {
        let dir = std::env::temp_dir().join(format!("vigil-bench-export-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let values = [1.5, -0.0, f64::NAN, f64::MAX, 1e-300];
        let files = write_window(&dir, "w", &values, &[true], 5).unwrap();
        let back = read_f64(&dir.join(&files.x)).unwrap();
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&back), bits(&values));
        assert_eq!(std::fs::read(dir.join(&files.y)).unwrap(), vec![1u8]);
        assert_eq!(files.positives, 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
