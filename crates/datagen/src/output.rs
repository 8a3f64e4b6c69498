//! Writing a [`Dataset`] to disk, and reading the JSONL or CSV files back (for `replay --from`).
//!
//! Files under the output directory:
//!
//! | file | content |
//! |---|---|
//! | `transactions.jsonl` | the emitted stream: valid transactions, duplicates, late and corrupt records ([`crate::json`] shape) |
//! | `labels.jsonl` | every label, ordered by `reported_at` |
//! | `transactions.csv`, `labels.csv` | the same two streams as CSV with a header ([`crate::csv`] columns) |
//! | `transactions.parquet`, `labels.parquet`, `profiles.parquet` | distinct valid transactions / labels / profile versions, `lake::batch` schema, partition 0, offset = row index |
//! | `lake/` | the same rows written through `lake::LakeWriter` (partition 0, offset = row index), and the profile versions (`profiles` table) |
//! | `manifest.json` | the config (seed included) and the dataset statistics |

use std::fs::{self, File};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use domain::convert::label_to_proto;
use proto::v1;
use serde::Serialize;

use crate::json::{LabelJson, LineError, TransactionJson};
use crate::{Dataset, DatasetStats, GenConfig};

/// Which outputs `generate` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// `transactions.jsonl` and `labels.jsonl`.
    Jsonl,
    /// `transactions.csv` and `labels.csv` (the JSONL streams as CSV).
    Csv,
    /// `transactions.parquet` and `labels.parquet`.
    Parquet,
    /// A lake directory (`--lake-dir`, default `OUT/lake`).
    Lake,
    /// All of the above.
    All,
}

impl Format {
    fn includes(self, other: Format) -> bool {
        self == Format::All || self == other
    }
}

/// Why writing or reading a dataset failed.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("i/o error at {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}: {source}", path.display())]
    Json {
        path: PathBuf,
        line: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error("{}:{line}: {source}", path.display())]
    Line {
        path: PathBuf,
        line: usize,
        #[source]
        source: LineError,
    },
    #[error("lake error: {0}")]
    Lake(#[from] lake::LakeError),
    /// Offsets restart at 0, and the lake skips offsets it has committed: writing into a
    /// lake that has data would silently drop rows.
    #[error("--lake-partitions is {0}; it must be at least 1")]
    Partitions(i32),
    #[error("lake at {} already holds data; use an empty directory", .0.display())]
    LakeNotEmpty(PathBuf),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> OutputError + '_ {
    move |source| OutputError::Io {
        path: path.to_owned(),
        source,
    }
}

/// What `generate` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct Written {
    pub files: Vec<PathBuf>,
    /// Rows written to the lake (transactions, labels), when a lake was written.
    pub lake_rows: Option<(usize, usize)>,
}

#[derive(Serialize)]
struct Manifest<'a> {
    generator: &'static str,
    config: &'a GenConfig,
    stats: &'a DatasetStats,
    format: Format,
    json_shape: &'static str,
}

/// Writes the dataset under `out` (created if missing) in the requested formats, plus
/// `manifest.json`.
pub fn write_dataset(
    dataset: &Dataset,
    config: &GenConfig,
    out: &Path,
    format: Format,
    lake_dir: Option<&Path>,
    partitions: i32,
) -> Result<Written, OutputError> {
    if partitions < 1 {
        return Err(OutputError::Partitions(partitions));
    }
    fs::create_dir_all(out).map_err(io(out))?;
    // Checked first, so that a refused lake leaves no half-written output behind.
    let lake = if format.includes(Format::Lake) {
        let root = lake_dir.map_or_else(|| out.join("lake"), Path::to_owned);
        Some((open_empty_lake(&root)?, root))
    } else {
        None
    };
    let mut written = Written {
        files: Vec::new(),
        lake_rows: None,
    };
    if format.includes(Format::Jsonl) {
        let path = out.join("transactions.jsonl");
        write_lines(
            &path,
            dataset
                .wire_stream()
                .map(|r| TransactionJson::from(&r.to_proto())),
        )?;
        written.files.push(path);
        let path = out.join("labels.jsonl");
        write_lines(
            &path,
            dataset
                .labels
                .iter()
                .map(|l| LabelJson::from(&label_to_proto(l))),
        )?;
        written.files.push(path);
    }
    if format.includes(Format::Csv) {
        let path = out.join("transactions.csv");
        write_csv(
            &path,
            &crate::csv::TRANSACTION_COLUMNS,
            dataset
                .wire_stream()
                .map(|r| crate::csv::transaction_cells(&r.to_proto())),
        )?;
        written.files.push(path);
        let path = out.join("labels.csv");
        write_csv(
            &path,
            &crate::csv::LABEL_COLUMNS,
            dataset
                .labels
                .iter()
                .map(|l| crate::csv::label_cells(&label_to_proto(l))),
        )?;
        written.files.push(path);
    }
    if format.includes(Format::Parquet) {
        let (transactions, labels, profiles) = records(dataset, partitions);
        let path = out.join("profiles.parquet");
        lake::write_parquet_file(&path, &lake::batch::profiles_to_batch(&profiles)?)?;
        written.files.push(path);
        let path = out.join("transactions.parquet");
        lake::write_parquet_file(&path, &lake::batch::transactions_to_batch(&transactions)?)?;
        written.files.push(path);
        let path = out.join("labels.parquet");
        lake::write_parquet_file(&path, &lake::batch::labels_to_batch(&labels)?)?;
        written.files.push(path);
    }
    if let Some((writer, root)) = lake {
        written.lake_rows = Some(write_to_lake(dataset, &writer, partitions)?);
        written.files.push(root);
    }
    let path = out.join("manifest.json");
    let manifest = Manifest {
        generator: concat!("vigil-datagen ", env!("CARGO_PKG_VERSION")),
        config,
        stats: &dataset.stats,
        format,
        json_shape: "vigil.v1 proto messages, proto field names, enums by name, RFC 3339 timestamps",
    };
    let mut bytes = serde_json::to_vec_pretty(&manifest).map_err(|source| OutputError::Json {
        path: path.clone(),
        line: 0,
        source,
    })?;
    bytes.push(b'\n');
    fs::write(&path, bytes).map_err(io(&path))?;
    written.files.push(path);
    Ok(written)
}

type Records = (
    Vec<lake::Record<domain::Transaction>>,
    Vec<lake::Record<domain::Label>>,
    Vec<lake::Record<domain::UserProfile>>,
);

/// The Kafka partition a user's records go to, as librdkafka's default (`consistent_random`)
/// partitioner places a non-empty key: CRC-32 of the key modulo the partition count. A lake
/// written here is laid out as the speed layer would have consumed the same stream.
pub fn partition_of(user_id: &str, partitions: i32) -> i32 {
    // partitions >= 1, so the remainder fits an i32.
    (crc32fast::hash(user_id.as_bytes()) % partitions.unsigned_abs().max(1)) as i32
}

/// Records numbered per partition in stream order (offset = index within its partition).
fn numbered<'a, T: Clone + 'a>(
    items: impl Iterator<Item = &'a T>,
    user: impl Fn(&T) -> &str,
    partitions: i32,
) -> Vec<lake::Record<T>> {
    let mut next = vec![0i64; partitions.max(1) as usize];
    items
        .map(|value| {
            let partition = partition_of(user(value), partitions);
            let slot = &mut next[partition as usize];
            let offset = *slot;
            *slot += 1;
            lake::Record {
                partition,
                offset,
                value: value.clone(),
            }
        })
        .collect()
}

/// Distinct transactions, labels and profiles as records of `partitions` Kafka partitions,
/// keyed by user (see [`partition_of`]).
fn records(dataset: &Dataset, partitions: i32) -> Records {
    (
        numbered(dataset.unique_transactions(), |t| &t.user_id, partitions),
        numbered(dataset.labels.iter(), |l| &l.user_id, partitions),
        numbered(dataset.profiles.iter(), |p| &p.user_id, partitions),
    )
}

/// Writes the distinct transactions and the labels to a lake at `root`, which must not hold
/// data yet, as `partitions` Kafka partitions. Returns the rows written (transactions,
/// labels).
pub fn write_lake(
    dataset: &Dataset,
    root: &Path,
    partitions: i32,
) -> Result<(usize, usize), OutputError> {
    if partitions < 1 {
        return Err(OutputError::Partitions(partitions));
    }
    write_to_lake(dataset, &open_empty_lake(root)?, partitions)
}

fn open_empty_lake(root: &Path) -> Result<lake::LakeWriter, OutputError> {
    let writer = lake::LakeWriter::open(root)?;
    for table in lake::Table::ALL {
        if !writer.committed(table)?.is_empty() {
            return Err(OutputError::LakeNotEmpty(root.to_owned()));
        }
    }
    Ok(writer)
}

fn write_to_lake(
    dataset: &Dataset,
    writer: &lake::LakeWriter,
    partitions: i32,
) -> Result<(usize, usize), OutputError> {
    let (transactions, labels, profiles) = records(dataset, partitions);
    let mut rows = (0, 0);
    fn of<T: Clone>(records: &[lake::Record<T>], p: i32) -> Vec<lake::Record<T>> {
        records
            .iter()
            .filter(|r| r.partition == p)
            .cloned()
            .collect()
    }
    for p in 0..partitions {
        writer.write_profiles(p, &of(&profiles, p))?;
        rows.0 += writer.write_transactions(p, &of(&transactions, p))?;
        rows.1 += writer.write_labels(p, &of(&labels, p))?;
    }
    Ok(rows)
}

fn write_lines<T: Serialize>(
    path: &Path,
    items: impl Iterator<Item = T>,
) -> Result<(), OutputError> {
    let file = File::create(path).map_err(io(path))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    for (i, item) in items.enumerate() {
        serde_json::to_writer(&mut w, &item).map_err(|source| OutputError::Json {
            path: path.to_owned(),
            line: i + 1,
            source,
        })?;
        w.write_all(b"\n").map_err(io(path))?;
    }
    w.flush().map_err(io(path))
}

fn write_csv(
    path: &Path,
    columns: &[&str],
    rows: impl Iterator<Item = Vec<String>>,
) -> Result<(), OutputError> {
    let file = File::create(path).map_err(io(path))?;
    crate::csv::write(BufWriter::with_capacity(1 << 20, file), columns, rows).map_err(|e| {
        OutputError::Io {
            path: path.to_owned(),
            source: std::io::Error::other(e),
        }
    })
}

fn read_lines<T>(
    path: &Path,
    parse: impl Fn(&str) -> Result<T, LineError>,
) -> Result<Vec<T>, OutputError> {
    let file = File::open(path).map_err(io(path))?;
    let mut out = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io(path))?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(parse(&line).map_err(|source| OutputError::Line {
            path: path.to_owned(),
            line: i + 1,
            source,
        })?);
    }
    Ok(out)
}

/// Whether `path` names a CSV file (by its extension), else JSON lines.
pub fn is_csv(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
}

fn read_csv<T>(
    path: &Path,
    parse: impl Fn(BufReader<File>) -> Result<Vec<T>, crate::csv::RowError>,
) -> Result<Vec<T>, OutputError> {
    let file = File::open(path).map_err(io(path))?;
    parse(BufReader::new(file)).map_err(|e| OutputError::Line {
        path: path.to_owned(),
        line: usize::try_from(e.line).unwrap_or(usize::MAX),
        source: e.source,
    })
}

/// Reads a transactions file: CSV with a header when its name ends in `.csv`
/// ([`crate::csv`]), else JSON lines (blank lines are skipped).
pub fn read_transactions(path: &Path) -> Result<Vec<v1::Transaction>, OutputError> {
    if is_csv(path) {
        return read_csv(path, crate::csv::parse_transactions);
    }
    read_lines(path, crate::json::parse_transaction)
}

/// Reads a labels file: CSV when its name ends in `.csv`, else JSON lines.
pub fn read_labels(path: &Path) -> Result<Vec<v1::Label>, OutputError> {
    if is_csv(path) {
        return read_csv(path, crate::csv::parse_labels);
    }
    read_lines(path, crate::json::parse_label)
}
