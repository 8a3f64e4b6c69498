//! The offline store of Vigil (the "lake"): every transaction and label ever consumed, kept as
//! Parquet files partitioned by event date, so that the trainer and the drift monitor can
//! replay history with SQL (DataFusion) long after Kafka has dropped it.
//!
//! Profiles are kept as a history: every version consumed, never overwritten, so a training
//! row can read the profile valid at its event time.
//!
//! Layout under a root directory:
//!
//! ```text
//! <root>/transactions/event_date=YYYY-MM-DD/p<partition>-<first_offset:020>-<last_offset:020>.parquet
//! <root>/labels/event_date=YYYY-MM-DD/p<partition>-<first_offset:020>-<last_offset:020>.parquet
//! <root>/profiles/event_date=YYYY-MM-DD/…            (event_date = Jan 1 of the version's valid_from year)
//! <root>/_commits/<table>/p<partition>.json        {"next_offset": N}
//! ```
//!
//! How the modules fit:
//!
//! - [`batch`] converts between domain values ([`domain::Transaction`], [`domain::Label`]) and
//!   Arrow record batches. It owns the schemas; the data generator uses it too, so every
//!   Parquet file in Vigil has the same shape.
//! - [`LakeWriter`] (synchronous, run it in `spawn_blocking`) is fed by the Kafka consumers.
//!   It writes *exactly once* even though Kafka delivers *at least once*: data files are
//!   written first (temp file, fsync, rename), then a per-partition commit marker records the
//!   next offset to consume. Replayed records below the marker are skipped, and on open, data
//!   files at or beyond the marker — left by a crash between the two steps — are deleted.
//!   Consumers resume from [`LakeWriter::committed`], not from Kafka's group offsets.
//! - [`LakeReader`] registers the tables with DataFusion (hive partitioning on `event_date`)
//!   and converts query results back to domain values.
//!
//! Architecture invariant: the writer is the only code that creates or deletes files under
//! `transactions/`, `labels/`, `profiles/` and `_commits/`; a reader never modifies the lake.

pub mod batch;
mod files;
mod reader;
mod writer;

#[cfg(test)]
mod testutil;

use std::path::PathBuf;

pub use files::write_parquet_file;
pub use reader::LakeReader;
pub use writer::LakeWriter;

/// A table of the lake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    Transactions,
    Labels,
    Profiles,
}

impl Table {
    /// Every table.
    pub const ALL: [Table; 3] = [Table::Transactions, Table::Labels, Table::Profiles];

    /// The table's name: its directory under the root and its name in SQL.
    pub fn name(&self) -> &'static str {
        match self {
            Table::Transactions => "transactions",
            Table::Labels => "labels",
            Table::Profiles => "profiles",
        }
    }
}

/// A value consumed from Kafka, with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Record<T> {
    pub partition: i32,
    pub offset: i64,
    pub value: T,
}

/// Why a lake operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error("i/o error at {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parquet error: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("arrow error: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// Boxed: `DataFusionError` is large and would bloat every `Result`.
    #[error("datafusion error: {0}")]
    DataFusion(#[source] Box<datafusion::error::DataFusionError>),
    #[error("corrupt lake file {}: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
    /// A record batch does not have the expected shape (missing column, wrong type, null or
    /// invalid value).
    #[error("column `{column}`: {reason}")]
    Column { column: String, reason: String },
    /// The records given to a writer are not one partition's records in increasing offset
    /// order, or cannot be stored (event time out of range).
    #[error("invalid batch for partition {partition}: {reason}")]
    InvalidBatch { partition: i32, reason: String },
}

impl LakeError {
    /// Whether retrying can succeed: a failing disk or a corrupt marker (which needs an
    /// operator, and must not make a writer drop records) may pass; records that cannot be
    /// encoded or stored fail again however often they are retried.
    pub fn is_transient(&self) -> bool {
        match self {
            LakeError::Io { .. } | LakeError::Corrupt { .. } | LakeError::DataFusion(_) => true,
            LakeError::Parquet(_)
            | LakeError::Arrow(_)
            | LakeError::Column { .. }
            | LakeError::InvalidBatch { .. } => false,
        }
    }
}

impl From<datafusion::error::DataFusionError> for LakeError {
    fn from(error: datafusion::error::DataFusionError) -> Self {
        LakeError::DataFusion(Box::new(error))
    }
}

impl LakeError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> LakeError {
        let path = path.into();
        move |source| LakeError::Io { path, source }
    }

    pub(crate) fn column(column: &str, reason: impl Into<String>) -> LakeError {
        LakeError::Column {
            column: column.to_owned(),
            reason: reason.into(),
        }
    }
}
