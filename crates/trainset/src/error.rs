//! The error of loading or writing a training set.

use std::fmt;
use std::path::PathBuf;

use arrow::datatypes::DataType;

use crate::manifest::FeatureType;

/// The role a column plays in a training set; errors name it next to the column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnRole {
    /// The entity (user, card, account…) a row belongs to.
    Entity,
    /// The event time.
    Time,
    /// The fraud label.
    Label,
    /// A feature of the given type.
    Feature(FeatureType),
}

impl fmt::Display for ColumnRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ColumnRole::Entity => "entity",
            ColumnRole::Time => "time",
            ColumnRole::Label => "label",
            ColumnRole::Feature(FeatureType::Numeric) => "numeric feature",
            ColumnRole::Feature(FeatureType::Categorical) => "categorical feature",
        })
    }
}

/// Why a training set could not be loaded or written.
///
/// Every variant about data names the file and, where it applies, the column, its role
/// and the row (0-based, counted within that file), so that whoever brought the set can
/// find the problem without reading this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainsetError {
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The manifest is not valid JSON for a [`crate::Manifest`] (including unknown fields).
    #[error("manifest {path}: {source}")]
    ManifestSyntax {
        /// The manifest file.
        path: PathBuf,
        /// The underlying error, with line and column.
        #[source]
        source: serde_json::Error,
    },
    /// The manifest parses but is inconsistent (duplicate columns, no features…).
    #[error("manifest {path}: {problem}")]
    InvalidManifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// The manifest's `data` is a directory without any `*.parquet` file.
    #[error("no .parquet files in {dir}")]
    NoDataFiles {
        /// The directory.
        dir: PathBuf,
    },
    /// The Parquet reader or writer failed (not a Parquet file, corrupt pages…).
    #[error("{path}: {source}")]
    Parquet {
        /// The Parquet file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// An Arrow conversion failed.
    #[error("{path}: {source}")]
    Arrow {
        /// The Parquet file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: arrow::error::ArrowError,
    },
    /// A column named by the manifest is not in a data file.
    #[error("column \"{column}\" ({role}) not found in {file}; columns are [{}]", available.join(", "))]
    MissingColumn {
        /// The column name.
        column: String,
        /// Its role.
        role: ColumnRole,
        /// The data file.
        file: PathBuf,
        /// The columns the file has.
        available: Vec<String>,
    },
    /// A column's type does not fit its role, e.g. a numeric feature stored as strings.
    #[error(
        "column \"{column}\": declared {role} but the Parquet type is {found} in {file} (accepted: {accepted})"
    )]
    WrongType {
        /// The column name.
        column: String,
        /// Its role.
        role: ColumnRole,
        /// The data file.
        file: PathBuf,
        /// The Arrow type the Parquet column reads as.
        found: DataType,
        /// The accepted types, in words.
        accepted: &'static str,
    },
    /// A null where none is allowed (entity, time, label).
    #[error("column \"{column}\" ({role}): null at row {row} of {file}")]
    Null {
        /// The column name.
        column: String,
        /// Its role.
        role: ColumnRole,
        /// The data file.
        file: PathBuf,
        /// The row within the file, 0-based.
        row: usize,
    },
    /// A value that does not fit its role, e.g. a label that is neither 0 nor 1.
    #[error("column \"{column}\" ({role}): value {value} at row {row} of {file} {problem}")]
    BadValue {
        /// The column name.
        column: String,
        /// Its role.
        role: ColumnRole,
        /// The data file.
        file: PathBuf,
        /// The row within the file, 0-based.
        row: usize,
        /// The offending value, formatted.
        value: String,
        /// What is wrong with it, e.g. "is not 0 or 1".
        problem: &'static str,
    },
    /// Two data files of one set have different schemas.
    #[error("{file}: schema differs from {first}: {difference}")]
    SchemaMismatch {
        /// The file that differs.
        file: PathBuf,
        /// The first file of the set, whose schema is the reference.
        first: PathBuf,
        /// The first difference found.
        difference: String,
    },
    /// The set has no rows.
    #[error("training set {path} has no rows")]
    Empty {
        /// The manifest (when loading) or the directory (when writing).
        path: PathBuf,
    },
    /// A row given to the writer does not have one value per feature.
    #[error("row {row}: {found} feature values, expected {expected}")]
    RowWidth {
        /// The row, 0-based, in the order pushed.
        row: u64,
        /// The number of values given.
        found: usize,
        /// The number of features declared.
        expected: usize,
    },
}
