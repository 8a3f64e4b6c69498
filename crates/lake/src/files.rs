//! The on-disk layout of the lake and durable file writes (temp file, fsync, rename).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};

use crate::{LakeError, Table};

/// Name of the hive partition column (only in paths, never inside the files).
pub(crate) const EVENT_DATE: &str = "event_date";
const COMMITS_DIR: &str = "_commits";
const TEMP_SUFFIX: &str = ".tmp";
const PARQUET_SUFFIX: &str = ".parquet";

/// `<root>/<table>`
pub(crate) fn table_dir(root: &Path, table: Table) -> PathBuf {
    root.join(table.name())
}

/// `<root>/_commits/<table>`
pub(crate) fn commits_dir(root: &Path, table: Table) -> PathBuf {
    root.join(COMMITS_DIR).join(table.name())
}

/// `<root>/_commits/<table>/p<partition>.json`
pub(crate) fn commit_path(root: &Path, table: Table, partition: i32) -> PathBuf {
    commits_dir(root, table).join(format!("p{partition}.json"))
}

/// The UTC date (`YYYY-MM-DD`) of an event time in milliseconds since the epoch.
pub(crate) fn event_date(event_time_ms: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(event_time_ms)
        .map(|t| t.date_naive().format("%Y-%m-%d").to_string())
}

/// The offsets a data file holds, as encoded in its name
/// `p<partition>-<first_offset:020>-<last_offset:020>.parquet`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DataFileName {
    pub(crate) partition: i32,
    pub(crate) first_offset: i64,
    pub(crate) last_offset: i64,
}

impl DataFileName {
    pub(crate) fn file_name(&self) -> String {
        format!(
            "p{}-{:020}-{:020}{PARQUET_SUFFIX}",
            self.partition, self.first_offset, self.last_offset
        )
    }

    /// `<root>/<table>/event_date=<date>/<file name>`
    pub(crate) fn path(&self, root: &Path, table: Table, date: &str) -> PathBuf {
        table_dir(root, table)
            .join(format!("{EVENT_DATE}={date}"))
            .join(self.file_name())
    }

    /// Parses a name made by [`DataFileName::file_name`]; `None` for any other file.
    pub(crate) fn parse(name: &str) -> Option<DataFileName> {
        let stem = name.strip_suffix(PARQUET_SUFFIX)?.strip_prefix('p')?;
        let mut parts = stem.split('-');
        let partition = parts.next()?.parse().ok()?;
        let first_offset = parts.next()?.parse().ok()?;
        let last_offset = parts.next()?.parse().ok()?;
        if parts.next().is_some() {
            return None;
        }
        Some(DataFileName {
            partition,
            first_offset,
            last_offset,
        })
    }
}

/// Whether a file name is one of our temporary names (a write interrupted before its rename).
pub(crate) fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(TEMP_SUFFIX)
}

/// The temporary sibling a file is written to before being renamed into place. It does not
/// end in `.parquet`, so readers never list it.
fn temp_path(path: &Path) -> Result<PathBuf, LakeError> {
    let name = path.file_name().ok_or_else(|| LakeError::Io {
        path: path.to_owned(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "path has no file name"),
    })?;
    Ok(path.with_file_name(format!(".{}{TEMP_SUFFIX}", name.to_string_lossy())))
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Makes a rename or deletion in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), LakeError> {
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(LakeError::io(dir))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Writes `path` atomically and durably: `write` fills a temporary sibling, which is fsync'd
/// and renamed over `path`; then the directory is fsync'd. On error the temporary file is
/// removed (best effort) and `path` is untouched.
fn write_atomically(
    path: &Path,
    write: impl FnOnce(&File) -> Result<(), LakeError>,
) -> Result<(), LakeError> {
    let dir = parent_dir(path);
    fs::create_dir_all(dir).map_err(LakeError::io(dir))?;
    let temp = temp_path(path)?;
    let result = (|| {
        let file = File::create(&temp).map_err(LakeError::io(&temp))?;
        write(&file)?;
        file.sync_all().map_err(LakeError::io(&temp))?;
        drop(file);
        fs::rename(&temp, path).map_err(LakeError::io(path))
    })();
    if result.is_err() {
        // The temp file may not exist; nothing more to do if removal fails.
        let _ = fs::remove_file(&temp);
    }
    result?;
    sync_dir(dir)
}

/// Writes a batch to a single zstd-compressed Parquet file at `path` (creating its directory),
/// through a temporary file renamed into place, so a reader never sees a partial file.
pub fn write_parquet_file(path: &Path, batch: &RecordBatch) -> Result<(), LakeError> {
    write_atomically(path, |file| {
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .build();
        let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(props))?;
        writer.write(batch)?;
        writer.close()?;
        Ok(())
    })
}

#[derive(Debug, Serialize, Deserialize)]
struct CommitMarker {
    next_offset: i64,
}

/// Reads one commit marker; `None` when the partition has never been committed.
pub(crate) fn read_commit(path: &Path) -> Result<Option<i64>, LakeError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(LakeError::io(path)(e)),
    };
    let marker: CommitMarker = serde_json::from_slice(&bytes).map_err(|e| LakeError::Corrupt {
        path: path.to_owned(),
        reason: format!("invalid commit marker: {e}"),
    })?;
    if marker.next_offset < 0 {
        return Err(LakeError::Corrupt {
            path: path.to_owned(),
            reason: format!("negative next_offset {}", marker.next_offset),
        });
    }
    Ok(Some(marker.next_offset))
}

/// Atomically replaces a commit marker.
pub(crate) fn write_commit(path: &Path, next_offset: i64) -> Result<(), LakeError> {
    let json =
        serde_json::to_vec(&CommitMarker { next_offset }).map_err(|e| LakeError::Corrupt {
            path: path.to_owned(),
            reason: format!("cannot encode commit marker: {e}"),
        })?;
    write_atomically(path, |mut file| {
        file.write_all(&json).map_err(LakeError::io(path))
    })
}

/// Every commit marker of a table: partition → next offset.
pub(crate) fn read_commits(root: &Path, table: Table) -> Result<BTreeMap<i32, i64>, LakeError> {
    let dir = commits_dir(root, table);
    let mut commits = BTreeMap::new();
    for entry in read_dir_if_exists(&dir)? {
        let Some(partition) = entry.file_name().to_str().and_then(|n| {
            n.strip_prefix('p')?
                .strip_suffix(".json")?
                .parse::<i32>()
                .ok()
        }) else {
            continue;
        };
        if let Some(next) = read_commit(&entry.path())? {
            commits.insert(partition, next);
        }
    }
    Ok(commits)
}

/// The entries of a directory; empty when it does not exist.
pub(crate) fn read_dir_if_exists(dir: &Path) -> Result<Vec<fs::DirEntry>, LakeError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(LakeError::io(dir)(e)),
    };
    entries
        .collect::<Result<Vec<_>, _>>()
        .map_err(LakeError::io(dir))
}

/// The `event_date=…` directories of a table.
pub(crate) fn date_dirs(root: &Path, table: Table) -> Result<Vec<PathBuf>, LakeError> {
    let prefix = format!("{EVENT_DATE}=");
    Ok(read_dir_if_exists(&table_dir(root, table))?
        .into_iter()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect())
}

/// Whether the table has at least one (complete) Parquet file.
pub(crate) fn has_parquet_files(root: &Path, table: Table) -> Result<bool, LakeError> {
    for dir in date_dirs(root, table)? {
        for entry in read_dir_if_exists(&dir)? {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(PARQUET_SUFFIX) && !name.starts_with('.') {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_file_names_round_trip_and_sort_by_offset() {
        let name = DataFileName {
            partition: 3,
            first_offset: 42,
            last_offset: 1_000,
        };
        assert_eq!(
            name.file_name(),
            "p3-00000000000000000042-00000000000000001000.parquet"
        );
        assert_eq!(DataFileName::parse(&name.file_name()), Some(name));
        for other in [
            "p3-1.parquet",
            "p3-1-2-3.parquet",
            "x3-1-2.parquet",
            "p3-1-2.json",
            ".p3-1-2.parquet.tmp",
        ] {
            assert_eq!(DataFileName::parse(other), None, "{other}");
        }
    }

    #[test]
    fn event_date_is_the_utc_date() {
        // 2024-03-01T23:59:59.999Z and one millisecond later.
        assert_eq!(event_date(1_709_337_599_999).as_deref(), Some("2024-03-01"));
        assert_eq!(event_date(1_709_337_600_000).as_deref(), Some("2024-03-02"));
        assert_eq!(event_date(-1).as_deref(), Some("1969-12-31"));
        assert_eq!(event_date(i64::MAX), None);
    }

    #[test]
    fn commit_markers_round_trip_and_reject_garbage() -> Result<(), LakeError> {
        let dir = tempfile::tempdir().map_err(LakeError::io("tempdir"))?;
        let path = commit_path(dir.path(), Table::Labels, 7);
        assert_eq!(read_commit(&path)?, None);
        write_commit(&path, 12)?;
        write_commit(&path, 13)?;
        assert_eq!(read_commit(&path)?, Some(13));
        assert_eq!(
            read_commits(dir.path(), Table::Labels)?,
            BTreeMap::from([(7, 13)])
        );
        assert!(read_commits(dir.path(), Table::Transactions)?.is_empty());
        // No temporary file is left behind.
        let names: Vec<_> = read_dir_if_exists(&commits_dir(dir.path(), Table::Labels))?
            .iter()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, ["p7.json"]);

        fs::write(&path, b"{\"next\": 1}").map_err(LakeError::io(&path))?;
        assert!(matches!(read_commit(&path), Err(LakeError::Corrupt { .. })));
        Ok(())
    }
}
