//! SQL over the lake with DataFusion, and conversion of the tables back to domain values.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use domain::{Label, Transaction, UserProfile};

use crate::batch::{self, Int64Column, StringColumn};
use crate::files::{EVENT_DATE, has_parquet_files, table_dir};
use crate::{LakeError, Table};

/// Reads the lake with SQL. The tables `transactions` and `labels` are registered as listing
/// tables over their hive-partitioned directories, with the partition column `event_date`
/// (a `YYYY-MM-DD` string), so `WHERE event_date >= '2024-01-01'` prunes whole directories.
///
/// The set of files is listed per query, but a table whose directory had no Parquet file
/// when the reader was opened stays an empty in-memory table: open a new reader to see it.
pub struct LakeReader {
    root: PathBuf,
    ctx: SessionContext,
}

impl fmt::Debug for LakeReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LakeReader")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

fn schema(table: Table) -> SchemaRef {
    match table {
        Table::Transactions => batch::transactions_schema(),
        Table::Labels => batch::labels_schema(),
        Table::Profiles => batch::profiles_schema(),
    }
}

/// Runs blocking or CPU-heavy work off the async workers.
async fn blocking<T: Send + 'static>(
    root: &Path,
    work: impl FnOnce() -> Result<T, LakeError> + Send + 'static,
) -> Result<T, LakeError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        // Cancelled: the runtime is shutting down.
        Err(error) => Err(LakeError::io(root)(error.into())),
    }
}

impl LakeReader {
    /// Opens the lake at `root` (which need not exist: every table then reads as empty).
    pub async fn open(root: impl Into<PathBuf>) -> Result<LakeReader, LakeError> {
        let root: PathBuf = root.into();
        let root = std::path::absolute(&root).map_err(LakeError::io(root))?;
        let scanned = root.clone();
        let present = blocking(&root, move || {
            Table::ALL
                .into_iter()
                .map(|table| Ok((table, has_parquet_files(&scanned, table)?)))
                .collect::<Result<Vec<_>, LakeError>>()
        })
        .await?;

        let ctx = SessionContext::new();
        let partition_cols = || vec![(EVENT_DATE.to_owned(), DataType::Utf8)];
        for (table, present) in present {
            let schema = schema(table);
            if present {
                let dir = table_dir(&root, table);
                let url = dir.to_str().map(|d| format!("{d}/")).ok_or_else(|| {
                    LakeError::io(&dir)(std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        "lake path is not valid UTF-8",
                    ))
                })?;
                let options = ParquetReadOptions::default()
                    .schema(&schema)
                    .table_partition_cols(partition_cols());
                ctx.register_parquet(table.name(), url, options).await?;
            } else {
                let mut fields: Vec<Field> =
                    schema.fields().iter().map(|f| f.as_ref().clone()).collect();
                fields.push(Field::new(EVENT_DATE, DataType::Utf8, false));
                let empty = MemTable::try_new(Arc::new(Schema::new(fields)), vec![vec![]])?;
                ctx.register_table(table.name(), Arc::new(empty))?;
            }
        }
        Ok(LakeReader { root, ctx })
    }

    /// Runs SQL and collects the batches.
    pub async fn sql(&self, query: &str) -> Result<Vec<RecordBatch>, LakeError> {
        Ok(self.ctx.sql(query).await?.collect().await?)
    }

    /// All transactions ordered by (event_time, kafka_partition, kafka_offset), de-duplicated by
    /// transaction_id (the first one is kept: a producer retry repeats a transaction later).
    pub async fn transactions(&self) -> Result<Vec<Transaction>, LakeError> {
        let batches = self
            .sql("SELECT * FROM transactions ORDER BY event_time, kafka_partition, kafka_offset")
            .await?;
        blocking(&self.root, move || {
            let mut seen = HashSet::new();
            let mut transactions = Vec::new();
            for batch in &batches {
                for transaction in batch::transactions_from_batch(batch)? {
                    if seen.insert(transaction.transaction_id.clone()) {
                        transactions.push(transaction);
                    }
                }
            }
            Ok(transactions)
        })
        .await
    }

    /// All labels, de-duplicated by transaction_id keeping the latest reported_at (ties go to
    /// the record consumed last), ordered by (event_time, transaction_id).
    pub async fn labels(&self) -> Result<Vec<Label>, LakeError> {
        let batches = self
            .sql("SELECT * FROM labels ORDER BY reported_at, kafka_partition, kafka_offset")
            .await?;
        blocking(&self.root, move || {
            let mut latest = HashMap::new();
            for batch in &batches {
                for label in batch::labels_from_batch(batch)? {
                    latest.insert(label.transaction_id.clone(), label);
                }
            }
            let mut labels: Vec<Label> = latest.into_values().collect();
            labels.sort_by(|a, b| {
                (a.event_time_ms, &a.transaction_id).cmp(&(b.event_time_ms, &b.transaction_id))
            });
            Ok(labels)
        })
        .await
    }

    /// The Kafka partitions holding transactions with `event_time <= until_ms`, ascending.
    pub async fn transaction_partitions(&self, until_ms: i64) -> Result<Vec<i32>, LakeError> {
        let filter = Self::event_time_filter(until_ms)?;
        let batches = self
            .sql(&format!(
                "SELECT DISTINCT kafka_partition FROM transactions WHERE {filter} ORDER BY 1"
            ))
            .await?;
        let mut partitions = Vec::new();
        for b in &batches {
            let column = b
                .column(0)
                .as_any()
                .downcast_ref::<arrow::array::Int32Array>()
                .ok_or_else(|| LakeError::column("kafka_partition", "is not Int32"))?;
            partitions.extend(column.iter().flatten());
        }
        Ok(partitions)
    }

    /// The transactions of one Kafka partition with `event_time <= until_ms`, **user by
    /// user**, each user's in arrival order (`ORDER BY user_id, kafka_offset`): what the
    /// offline builder works on, one partition per core. Each user's history arrives in one
    /// run, so its state stays in cache while it is folded. Row groups of other partitions
    /// are skipped by their statistics (a data file holds one partition).
    pub async fn partition_by_user(
        &self,
        partition: i32,
        until_ms: i64,
    ) -> Result<datafusion::physical_plan::SendableRecordBatchStream, LakeError> {
        let filter = Self::event_time_filter(until_ms)?;
        let query = format!(
            "SELECT * FROM transactions WHERE kafka_partition = {partition} AND {filter} \
             ORDER BY user_id, kafka_offset"
        );
        Ok(self.ctx.sql(&query).await?.execute_stream().await?)
    }

    /// `event_time <= until_ms`, with the date directories after its day pruned.
    fn event_time_filter(until_ms: i64) -> Result<String, LakeError> {
        let day = chrono::DateTime::from_timestamp_millis(until_ms)
            .map(|d| d.format("%Y-%m-%d").to_string())
            .ok_or_else(|| {
                LakeError::column("event_time", format!("{until_ms} ms is out of range"))
            })?;
        Ok(format!(
            "{EVENT_DATE} <= '{day}' AND CAST(event_time AS BIGINT) <= {until_ms}"
        ))
    }

    /// The verdict of every label record reported at or before `until_ms`, in no particular
    /// order (not de-duplicated; [`batch::LabelVerdict`] carries what orders them). Only the
    /// columns a build needs are read, and nothing is sorted.
    pub async fn label_verdicts_reported_by(
        &self,
        until_ms: i64,
    ) -> Result<Vec<batch::LabelVerdict>, LakeError> {
        let batches = self
            .sql(&format!(
                "SELECT transaction_id, is_fraud, reported_at, kafka_partition, kafka_offset \
                 FROM labels WHERE CAST(reported_at AS BIGINT) <= {until_ms}"
            ))
            .await?;
        blocking(&self.root, move || {
            let mut verdicts = Vec::with_capacity(batches.iter().map(RecordBatch::num_rows).sum());
            for batch in &batches {
                verdicts.extend(batch::label_verdicts_from_batch(batch)?);
            }
            Ok(verdicts)
        })
        .await
    }

    /// Every profile version valid from at or before `until_ms` (not de-duplicated), in
    /// `(kafka_partition, kafka_offset)` order — each user's arrival order.
    pub async fn profiles_valid_by(&self, until_ms: i64) -> Result<Vec<UserProfile>, LakeError> {
        let batches = self
            .sql(&format!(
                "SELECT * FROM profiles WHERE CAST(valid_from AS BIGINT) <= {until_ms} \
                 ORDER BY kafka_partition, kafka_offset"
            ))
            .await?;
        blocking(&self.root, move || {
            let mut profiles = Vec::new();
            for batch in &batches {
                profiles.extend(batch::profiles_from_batch(batch)?);
            }
            Ok(profiles)
        })
        .await
    }

    /// The next offset after the last record of each partition of `table` (empty for an
    /// empty table): where a consumer continues once everything in the lake is applied.
    pub async fn next_offsets(&self, table: Table) -> Result<BTreeMap<i32, i64>, LakeError> {
        let batches = self
            .sql(&format!(
                "SELECT kafka_partition, MAX(kafka_offset) + 1 AS next FROM {} \
                 GROUP BY kafka_partition",
                table.name()
            ))
            .await?;
        let mut next = BTreeMap::new();
        for batch in &batches {
            let p = batch::Int32Column::get(batch, "kafka_partition")?;
            let n = Int64Column::get(batch, "next")?;
            for row in 0..batch.num_rows() {
                next.insert(p.value(row)?, n.value(row)?);
            }
        }
        Ok(next)
    }

    /// Count of transaction rows per user_id (rows, not distinct transactions).
    pub async fn transaction_counts_by_user(&self) -> Result<BTreeMap<String, u64>, LakeError> {
        let batches = self
            .sql("SELECT user_id, COUNT(*) AS n FROM transactions GROUP BY user_id")
            .await?;
        let mut counts = BTreeMap::new();
        for batch in &batches {
            let users = StringColumn::get(batch, "user_id")?;
            let n = Int64Column::get(batch, "n")?;
            for row in 0..batch.num_rows() {
                let count = u64::try_from(n.value(row)?)
                    .map_err(|_| LakeError::column("n", "negative count"))?;
                counts.insert(users.value(row)?.to_owned(), count);
            }
        }
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LakeWriter;
    use crate::testutil::{label, records, transaction};
    use arrow::array::{Array, Int64Array};

    const DAY_MS: i64 = 86_400_000;
    /// 2024-01-01T00:00:00Z
    const JAN_1: i64 = 1_704_067_200_000;

    /// Runs blocking writer calls as the services do.
    async fn on_blocking_pool<T: Send + 'static>(
        work: impl FnOnce() -> Result<T, LakeError> + Send + 'static,
    ) -> Result<T, LakeError> {
        blocking(Path::new("test"), work).await
    }

    fn files_under(dir: &Path) -> Result<Vec<String>, LakeError> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(LakeError::io(dir))? {
            let entry = entry.map_err(LakeError::io(dir))?;
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }

    fn single_i64(batches: &[RecordBatch]) -> Option<i64> {
        let column = batches.first()?.column(0);
        let array = column.as_any().downcast_ref::<Int64Array>()?;
        (array.len() == 1).then(|| array.value(0))
    }

    #[tokio::test]
    async fn transactions_round_trip_across_partitions_and_dates() -> Result<(), LakeError> {
        let dir = tempfile::tempdir().map_err(LakeError::io("tempdir"))?;
        // Partition 0: u1 and u2 on Jan 1 and Jan 2; partition 1: u3 interleaved in time.
        let p0 = records(
            0,
            0,
            vec![
                transaction("a", "u1", JAN_1 + 1_000),
                transaction("b", "u2", JAN_1 + 3_000),
                transaction("c", "u1", JAN_1 + DAY_MS + 5),
            ],
        );
        let mut with_geo = transaction("d", "u3", JAN_1 + 2_000);
        with_geo.geo = Some(domain::GeoPoint {
            lat: -33.9,
            lon: 151.2,
        });
        let p1 = records(
            1,
            40,
            vec![with_geo, transaction("e", "u3", JAN_1 + DAY_MS)],
        );

        let writer = Arc::new(LakeWriter::open(dir.path())?);
        let written = {
            let (writer, p0, p1) = (Arc::clone(&writer), p0.clone(), p1.clone());
            on_blocking_pool(move || {
                Ok(writer.write_transactions(0, &p0)? + writer.write_transactions(1, &p1)?)
            })
            .await?
        };
        assert_eq!(written, 5);

        let tx_dir = dir.path().join("transactions");
        assert_eq!(
            files_under(&tx_dir)?,
            ["event_date=2024-01-01", "event_date=2024-01-02"]
        );
        assert_eq!(
            files_under(&tx_dir.join("event_date=2024-01-01"))?,
            [
                "p0-00000000000000000000-00000000000000000001.parquet",
                "p1-00000000000000000040-00000000000000000040.parquet",
            ]
        );
        assert_eq!(
            files_under(&tx_dir.join("event_date=2024-01-02"))?,
            [
                "p0-00000000000000000002-00000000000000000002.parquet",
                "p1-00000000000000000041-00000000000000000041.parquet",
            ]
        );

        let reader = LakeReader::open(dir.path()).await?;
        let mut expected: Vec<Transaction> = p0.into_iter().chain(p1).map(|r| r.value).collect();
        expected.sort_by_key(|t| t.event_time_ms);
        assert_eq!(reader.transactions().await?, expected);
        assert_eq!(
            reader.transaction_counts_by_user().await?,
            BTreeMap::from([("u1".into(), 2), ("u2".into(), 1), ("u3".into(), 2)])
        );
        // The partition column prunes by directory.
        let jan_2 = reader
            .sql("SELECT COUNT(*) FROM transactions WHERE event_date = '2024-01-02'")
            .await?;
        assert_eq!(single_i64(&jan_2), Some(2));
        // Labels were never written: the table exists and is empty.
        assert!(reader.labels().await?.is_empty());
        Ok(())
    }

    #[tokio::test]
    async fn an_empty_lake_reads_as_empty() -> Result<(), LakeError> {
        let dir = tempfile::tempdir().map_err(LakeError::io("tempdir"))?;
        let reader = LakeReader::open(dir.path().join("missing")).await?;
        assert!(reader.transactions().await?.is_empty());
        assert!(reader.labels().await?.is_empty());
        assert!(reader.transaction_counts_by_user().await?.is_empty());
        let count = reader.sql("SELECT COUNT(*) FROM labels").await?;
        assert_eq!(single_i64(&count), Some(0));
        Ok(())
    }

    #[tokio::test]
    async fn duplicate_transactions_keep_the_first() -> Result<(), LakeError> {
        let dir = tempfile::tempdir().map_err(LakeError::io("tempdir"))?;
        let writer = LakeWriter::open(dir.path())?;
        let first = transaction("a", "u1", JAN_1);
        let mut retry = first.clone();
        retry.amount_minor = 99;
        retry.event_time_ms = JAN_1 + 10;
        writer.write_transactions(0, &records(0, 0, vec![first.clone(), retry]))?;
        let reader = LakeReader::open(dir.path()).await?;
        assert_eq!(reader.transactions().await?, vec![first]);
        // Both rows are stored; only the conversion de-duplicates.
        assert_eq!(
            reader.transaction_counts_by_user().await?,
            BTreeMap::from([("u1".into(), 2)])
        );
        Ok(())
    }

    #[tokio::test]
    async fn labels_keep_the_latest_report() -> Result<(), LakeError> {
        let dir = tempfile::tempdir().map_err(LakeError::io("tempdir"))?;
        let writer = LakeWriter::open(dir.path())?;
        // A corrected label arrives on another partition, and a late but older report after it.
        writer.write_labels(
            0,
            &records(0, 0, vec![label("t1", false, 100), label("t2", true, 100)]),
        )?;
        writer.write_labels(1, &records(1, 0, vec![label("t1", true, 300)]))?;
        writer.write_labels(0, &records(0, 2, vec![label("t1", false, 200)]))?;

        let reader = LakeReader::open(dir.path()).await?;
        let labels = reader.labels().await?;
        assert_eq!(labels, vec![label("t1", true, 300), label("t2", true, 100)]);
        Ok(())
    }

    #[tokio::test]
    async fn profile_history_and_next_offsets() -> Result<(), LakeError> {
        let dir = tempfile::tempdir().map_err(LakeError::io("tempdir"))?;
        let writer = LakeWriter::open(dir.path())?;
        let v = |valid_from_ms: i64, credit_band: u8| domain::UserProfile {
            user_id: "u1".into(),
            account_opened_ms: JAN_1 - 365 * DAY_MS,
            account_type: domain::AccountType::Personal,
            home_country: "FR".into(),
            credit_band,
            income_band: 3,
            valid_from_ms,
        };
        // Two versions on two dates plus one valid only after the cut-off; every one is kept.
        writer.write_profiles(
            2,
            &records(
                2,
                7,
                vec![v(JAN_1 + DAY_MS, 4), v(JAN_1, 1), v(JAN_1 + 9 * DAY_MS, 5)],
            ),
        )?;
        writer.write_transactions(0, &records(0, 40, vec![transaction("a", "u1", JAN_1)]))?;
        let reader = LakeReader::open(dir.path()).await?;
        let known = reader.profiles_valid_by(JAN_1 + 2 * DAY_MS).await?;
        assert_eq!(
            known,
            vec![v(JAN_1 + DAY_MS, 4), v(JAN_1, 1)],
            "arrival order"
        );
        assert_eq!(
            reader.next_offsets(Table::Profiles).await?,
            BTreeMap::from([(2, 10)])
        );
        assert_eq!(
            reader.next_offsets(Table::Transactions).await?,
            BTreeMap::from([(0, 41)])
        );
        assert!(reader.next_offsets(Table::Labels).await?.is_empty());
        Ok(())
    }

    #[tokio::test]
    async fn a_crashed_write_is_neither_lost_nor_duplicated() -> Result<(), LakeError> {
        let dir = tempfile::tempdir().map_err(LakeError::io("tempdir"))?;
        let all = records(
            0,
            0,
            (0..4)
                .map(|i| transaction(&format!("t{i}"), "u1", JAN_1 + i * DAY_MS))
                .collect(),
        );
        {
            let writer = LakeWriter::open(dir.path())?;
            writer.write_transactions(0, &all[..2])?;
            writer.write_data_files(0, &all[2..])?; // crash before the commit
        }
        let writer = LakeWriter::open(dir.path())?;
        let reader = LakeReader::open(dir.path()).await?;
        assert_eq!(reader.transaction_counts_by_user().await?["u1"], 2);

        let resume_from = writer.committed(Table::Transactions)?[&0];
        assert_eq!(resume_from, 2);
        writer.write_transactions(0, &all[resume_from as usize..])?;
        writer.write_transactions(0, &all)?; // and a full replay for good measure
        let reader = LakeReader::open(dir.path()).await?;
        assert_eq!(reader.transaction_counts_by_user().await?["u1"], 4);
        let values: Vec<_> = all.into_iter().map(|r| r.value).collect();
        assert_eq!(reader.transactions().await?, values);
        Ok(())
    }
}
