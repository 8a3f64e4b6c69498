//! Exactly-once writes from at-least-once Kafka consumers.
//!
//! A write is two steps: data files (one per event date), then the partition's commit marker.
//! Each step is atomic on its own (temp file, fsync, rename), and the commit marker is the
//! single source of truth: rows below `next_offset` are in the lake exactly once, and files
//! starting at or after it are leftovers of an interrupted write, deleted by
//! [`LakeWriter::open`]. Because a data file's name carries its partition and first offset,
//! recovery needs nothing but a directory listing.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use arrow::record_batch::RecordBatch;
use domain::{Label, Transaction, UserProfile};

use crate::files::{
    DataFileName, commit_path, commits_dir, date_dirs, event_date, is_temp_name, read_commit,
    read_commits, read_dir_if_exists, sync_dir, table_dir, write_commit,
};
use crate::{LakeError, Record, Table, batch, write_parquet_file};

/// A domain value stored in one of the lake's tables.
pub(crate) trait LakeRow: Sized {
    const TABLE: Table;
    fn event_time_ms(&self) -> i64;
    fn to_batch(records: &[&Record<Self>]) -> Result<RecordBatch, LakeError>;
    /// The `event_date` directory of the row: the UTC date of its event time. It must never
    /// be after that date, so that `event_date <= day(t)` prunes no row with a time `<= t`.
    fn partition_date(&self) -> Option<String> {
        event_date(self.event_time_ms())
    }
}

impl LakeRow for Transaction {
    const TABLE: Table = Table::Transactions;
    fn event_time_ms(&self) -> i64 {
        self.event_time_ms
    }
    fn to_batch(records: &[&Record<Self>]) -> Result<RecordBatch, LakeError> {
        batch::transactions_batch(records)
    }
}

impl LakeRow for Label {
    const TABLE: Table = Table::Labels;
    fn event_time_ms(&self) -> i64 {
        self.event_time_ms
    }
    fn to_batch(records: &[&Record<Self>]) -> Result<RecordBatch, LakeError> {
        batch::labels_batch(records)
    }
}

impl LakeRow for UserProfile {
    const TABLE: Table = Table::Profiles;
    fn event_time_ms(&self) -> i64 {
        self.valid_from_ms
    }
    fn to_batch(records: &[&Record<Self>]) -> Result<RecordBatch, LakeError> {
        batch::profiles_batch(records)
    }
    /// January 1st of the year of `valid_from`: a first version is valid from the day its
    /// account was opened, years back, and one directory per such day left a lake of 20 000
    /// users with 13 000 files of a few rows (reading them was most of a build's label and
    /// profile time); one per year keeps the pruning by date and a few files per partition.
    fn partition_date(&self) -> Option<String> {
        use chrono::Datelike as _;
        chrono::DateTime::from_timestamp_millis(self.valid_from_ms)
            .map(|t| format!("{:04}-01-01", t.year()))
    }
}

/// Writes consumed records to the lake, idempotently. Blocking: call it from
/// `spawn_blocking`.
///
/// Different partitions may be written concurrently (from several threads sharing the
/// writer); writes to the same partition are serialised. Only one process may write a lake.
#[derive(Debug)]
pub struct LakeWriter {
    root: PathBuf,
    /// One lock per (table, partition), so a commit marker is never read and replaced by two
    /// writes at once.
    locks: Mutex<BTreeMap<(Table, i32), PartitionLock>>,
}

type PartitionLock = Arc<Mutex<()>>;

impl LakeWriter {
    /// Opens (creating) the lake at `root` and recovers from an interrupted write: for each
    /// (table, partition), deletes the data files whose first offset is at or beyond the
    /// committed next offset (left by a crash between writing data and committing), and any
    /// temporary file. A partition without a commit marker has committed nothing, so all of
    /// its data files are deleted. Files whose names the writer does not produce are left
    /// alone.
    pub fn open(root: impl Into<PathBuf>) -> Result<LakeWriter, LakeError> {
        let writer = LakeWriter {
            root: root.into(),
            locks: Mutex::default(),
        };
        for table in Table::ALL {
            for dir in [
                table_dir(&writer.root, table),
                commits_dir(&writer.root, table),
            ] {
                fs::create_dir_all(&dir).map_err(LakeError::io(dir))?;
            }
            writer.recover(table)?;
        }
        Ok(writer)
    }

    /// The lake's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Next offset to consume per partition for the table (from the commit markers); empty
    /// when nothing was committed.
    pub fn committed(&self, table: Table) -> Result<BTreeMap<i32, i64>, LakeError> {
        read_commits(&self.root, table)
    }

    /// Writes a batch of one partition's records, in increasing offset order (gaps allowed):
    /// one Parquet file per event date, then the commit marker `next_offset = last offset + 1`.
    /// Records below the committed next offset are skipped, so replaying a batch is harmless.
    /// Returns the number of rows written; empty input is a no-op.
    pub fn write_transactions(
        &self,
        partition: i32,
        records: &[Record<Transaction>],
    ) -> Result<usize, LakeError> {
        self.write(partition, records)
    }

    /// Same as [`LakeWriter::write_transactions`], for labels (partitioned by the event date
    /// of the labelled transaction).
    pub fn write_labels(
        &self,
        partition: i32,
        records: &[Record<Label>],
    ) -> Result<usize, LakeError> {
        self.write(partition, records)
    }

    /// Same as [`LakeWriter::write_transactions`], for profile versions (partitioned by the
    /// year of `valid_from`; every version is kept).
    pub fn write_profiles(
        &self,
        partition: i32,
        records: &[Record<UserProfile>],
    ) -> Result<usize, LakeError> {
        self.write(partition, records)
    }

    fn write<T: LakeRow>(&self, partition: i32, records: &[Record<T>]) -> Result<usize, LakeError> {
        if records.is_empty() {
            return Ok(0);
        }
        validate(partition, records)?;
        let lock = self.partition_lock(T::TABLE, partition);
        let _guard = lock.lock().unwrap_or_else(PoisonError::into_inner);

        let commit = commit_path(&self.root, T::TABLE, partition);
        let next_offset = read_commit(&commit)?.unwrap_or(0);
        let fresh = &records[records.partition_point(|r| r.offset < next_offset)..];
        let Some(last) = fresh.last() else {
            return Ok(0);
        };
        self.write_data_files(partition, fresh)?;
        write_commit(&commit, last.offset + 1)?;
        Ok(fresh.len())
    }

    /// The first step of a write: the data files, without the commit marker.
    pub(crate) fn write_data_files<T: LakeRow>(
        &self,
        partition: i32,
        records: &[Record<T>],
    ) -> Result<(), LakeError> {
        // Group first, so an unrepresentable event time fails before anything is written.
        let mut by_date: BTreeMap<String, Vec<&Record<T>>> = BTreeMap::new();
        for record in records {
            let date = record
                .value
                .partition_date()
                .ok_or_else(|| LakeError::InvalidBatch {
                    partition,
                    reason: format!("event time out of range at offset {}", record.offset),
                })?;
            by_date.entry(date).or_default().push(record);
        }
        for (date, rows) in &by_date {
            let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
                continue;
            };
            let name = DataFileName {
                partition,
                first_offset: first.offset,
                last_offset: last.offset,
            };
            let path = name.path(&self.root, T::TABLE, date);
            write_parquet_file(&path, &T::to_batch(rows)?)?;
        }
        Ok(())
    }

    fn partition_lock(&self, table: Table, partition: i32) -> PartitionLock {
        let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(locks.entry((table, partition)).or_default())
    }

    fn recover(&self, table: Table) -> Result<(), LakeError> {
        let committed = self.committed(table)?;
        let commits = commits_dir(&self.root, table);
        remove_files(&commits, is_temp_name)?;
        for dir in date_dirs(&self.root, table)? {
            remove_files(&dir, |name| {
                is_temp_name(name)
                    || DataFileName::parse(name).is_some_and(|file| {
                        file.first_offset >= committed.get(&file.partition).copied().unwrap_or(0)
                    })
            })?;
        }
        Ok(())
    }
}

/// Deletes the files of `dir` whose names match, then makes the deletions durable.
fn remove_files(dir: &Path, matches: impl Fn(&str) -> bool) -> Result<(), LakeError> {
    let mut removed = false;
    for entry in read_dir_if_exists(dir)? {
        if entry.file_name().to_str().is_some_and(&matches) {
            let path = entry.path();
            fs::remove_file(&path).map_err(LakeError::io(path))?;
            removed = true;
        }
    }
    if removed {
        sync_dir(dir)?;
    }
    Ok(())
}

fn validate<T>(partition: i32, records: &[Record<T>]) -> Result<(), LakeError> {
    let invalid = |reason: String| Err(LakeError::InvalidBatch { partition, reason });
    if partition < 0 {
        return invalid("negative partition".to_owned());
    }
    let mut previous: Option<i64> = None;
    for record in records {
        if record.partition != partition {
            return invalid(format!(
                "record at offset {} is from partition {}",
                record.offset, record.partition
            ));
        }
        if !(0..i64::MAX).contains(&record.offset) {
            return invalid(format!("offset {} out of range", record.offset));
        }
        if previous.is_some_and(|p| record.offset <= p) {
            return invalid(format!(
                "offsets not increasing: {} after {}",
                record.offset,
                previous.unwrap_or_default()
            ));
        }
        previous = Some(record.offset);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::DataFileName;
    use crate::testutil::{records, transaction};

    const DAY_MS: i64 = 86_400_000;
    /// 2024-01-01T00:00:00Z
    const JAN_1: i64 = 1_704_067_200_000;

    fn data_files(root: &Path, table: Table) -> Result<Vec<(String, DataFileName)>, LakeError> {
        let mut files = Vec::new();
        for dir in date_dirs(root, table)? {
            let date = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            for entry in read_dir_if_exists(&dir)? {
                let name = entry.file_name().to_string_lossy().into_owned();
                let file = DataFileName::parse(&name).ok_or_else(|| LakeError::Corrupt {
                    path: entry.path(),
                    reason: "unexpected file".to_owned(),
                })?;
                files.push((date.clone(), file));
            }
        }
        files.sort_by_key(|(date, f)| (date.clone(), f.partition, f.first_offset));
        Ok(files)
    }

    fn file(partition: i32, first_offset: i64, last_offset: i64) -> DataFileName {
        DataFileName {
            partition,
            first_offset,
            last_offset,
        }
    }

    #[test]
    fn replay_writes_nothing_twice() -> Result<(), LakeError> {
        let dir = tempfile::tempdir().map_err(LakeError::io("tempdir"))?;
        let writer = LakeWriter::open(dir.path())?;
        assert!(writer.committed(Table::Transactions)?.is_empty());
        assert_eq!(writer.write_transactions(0, &[])?, 0);

        let batch = records(
            0,
            5,
            (0..4)
                .map(|i| transaction(&format!("t{i}"), "u1", JAN_1 + i * 1000))
                .collect(),
        );
        assert_eq!(writer.write_transactions(0, &batch)?, 4);
        assert_eq!(
            writer.committed(Table::Transactions)?,
            BTreeMap::from([(0, 9)])
        );

        // The same batch again, then an overlapping one: only offsets 9 and 10 are new.
        assert_eq!(writer.write_transactions(0, &batch)?, 0);
        let overlapping = records(
            0,
            7,
            (2..6)
                .map(|i| transaction(&format!("t{i}"), "u1", JAN_1 + i * 1000))
                .collect(),
        );
        assert_eq!(writer.write_transactions(0, &overlapping)?, 2);
        assert_eq!(
            writer.committed(Table::Transactions)?,
            BTreeMap::from([(0, 11)])
        );
        assert!(writer.committed(Table::Labels)?.is_empty());
        assert_eq!(
            data_files(dir.path(), Table::Transactions)?,
            vec![
                ("event_date=2024-01-01".to_owned(), file(0, 5, 8)),
                ("event_date=2024-01-01".to_owned(), file(0, 9, 10)),
            ]
        );

        // A reopened writer sees the same commits and keeps every committed file.
        let writer = LakeWriter::open(dir.path())?;
        assert_eq!(
            writer.committed(Table::Transactions)?,
            BTreeMap::from([(0, 11)])
        );
        assert_eq!(data_files(dir.path(), Table::Transactions)?.len(), 2);
        Ok(())
    }

    #[test]
    fn one_file_per_event_date_in_offset_order() -> Result<(), LakeError> {
        let dir = tempfile::tempdir().map_err(LakeError::io("tempdir"))?;
        let writer = LakeWriter::open(dir.path())?;
        // Offsets 0 and 2 on day one, 1 on day two (late events interleave).
        let batch = records(
            3,
            0,
            vec![
                transaction("a", "u1", JAN_1 + 10),
                transaction("b", "u1", JAN_1 + DAY_MS),
                transaction("c", "u1", JAN_1 + 20),
            ],
        );
        assert_eq!(writer.write_transactions(3, &batch)?, 3);
        assert_eq!(
            data_files(dir.path(), Table::Transactions)?,
            vec![
                ("event_date=2024-01-01".to_owned(), file(3, 0, 2)),
                ("event_date=2024-01-02".to_owned(), file(3, 1, 1)),
            ]
        );
        Ok(())
    }

    #[test]
    fn invalid_batches_are_refused_before_writing() -> Result<(), LakeError> {
        let dir = tempfile::tempdir().map_err(LakeError::io("tempdir"))?;
        let writer = LakeWriter::open(dir.path())?;
        let mut wrong_partition = records(0, 0, vec![transaction("a", "u", JAN_1)]);
        wrong_partition[0].partition = 1;
        let mut not_increasing = records(
            0,
            0,
            vec![transaction("a", "u", JAN_1), transaction("b", "u", JAN_1)],
        );
        not_increasing[1].offset = 0;
        let out_of_range = records(
            0,
            0,
            vec![
                transaction("a", "u", JAN_1),
                transaction("b", "u", i64::MAX),
            ],
        );
        for batch in [wrong_partition, not_increasing, out_of_range] {
            let result = writer.write_transactions(0, &batch);
            assert!(
                matches!(result, Err(LakeError::InvalidBatch { partition: 0, .. })),
                "{result:?}"
            );
        }
        assert!(writer.committed(Table::Transactions)?.is_empty());
        assert!(data_files(dir.path(), Table::Transactions)?.is_empty());
        Ok(())
    }

    #[test]
    fn reopening_deletes_files_written_after_the_last_commit() -> Result<(), LakeError> {
        let dir = tempfile::tempdir().map_err(LakeError::io("tempdir"))?;
        let values: Vec<_> = (0..6)
            .map(|i| transaction(&format!("t{i}"), "u1", JAN_1 + i * DAY_MS / 2))
            .collect();
        let all = records(1, 0, values);
        {
            let writer = LakeWriter::open(dir.path())?;
            assert_eq!(writer.write_transactions(1, &all[..3])?, 3);
            // Crash: data files for offsets 3..6 (two dates) written, commit marker not.
            writer.write_data_files(1, &all[3..])?;
            // And a partition that never committed anything.
            writer.write_data_files(2, &records(2, 0, vec![transaction("x", "u2", JAN_1)]))?;
            assert_eq!(data_files(dir.path(), Table::Transactions)?.len(), 5);
            // And an interrupted temp file.
            let temp = dir
                .path()
                .join("transactions/event_date=2024-01-01/.p1-x.parquet.tmp");
            fs::write(&temp, b"partial").map_err(LakeError::io(&temp))?;
        }
        let writer = LakeWriter::open(dir.path())?;
        assert_eq!(
            writer.committed(Table::Transactions)?,
            BTreeMap::from([(1, 3)])
        );
        assert_eq!(
            data_files(dir.path(), Table::Transactions)?,
            vec![
                ("event_date=2024-01-01".to_owned(), file(1, 0, 1)),
                ("event_date=2024-01-02".to_owned(), file(1, 2, 2)),
            ]
        );
        assert!(
            !dir.path()
                .join("transactions/event_date=2024-01-01/.p1-x.parquet.tmp")
                .exists()
        );

        // The consumer resumes from the commit and replays the whole batch: no duplicates.
        assert_eq!(writer.write_transactions(1, &all)?, 3);
        assert_eq!(
            writer.committed(Table::Transactions)?,
            BTreeMap::from([(1, 6)])
        );
        assert_eq!(
            data_files(dir.path(), Table::Transactions)?,
            vec![
                ("event_date=2024-01-01".to_owned(), file(1, 0, 1)),
                ("event_date=2024-01-02".to_owned(), file(1, 2, 2)),
                ("event_date=2024-01-02".to_owned(), file(1, 3, 3)),
                ("event_date=2024-01-03".to_owned(), file(1, 4, 5)),
            ]
        );
        Ok(())
    }
}
