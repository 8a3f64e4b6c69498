//! Reading the Parquet data of a training set into columns, checking every column against
//! its declared role.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::compute::cast;
use arrow::datatypes::{
    DataType, Float64Type, Int64Type, Schema, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::error::{ColumnRole, TrainsetError};
use crate::manifest::{FeatureType, Manifest};

const BATCH_ROWS: usize = 8192;

/// The columns of a set, in file order (not yet sorted).
#[derive(Debug, Default)]
pub(crate) struct RawColumns {
    pub(crate) entities: Vec<String>,
    pub(crate) times_ms: Vec<i64>,
    pub(crate) labels: Vec<bool>,
    /// Row-major, one value per feature; NaN for missing and for categorical features.
    pub(crate) values: Vec<f64>,
    /// Per categorical feature (in feature order), the raw value of each row.
    pub(crate) categorical_raw: Vec<Vec<Option<String>>>,
}

impl RawColumns {
    /// Makes room for `rows` more rows, so that reading a large file does not grow (and
    /// transiently double) the matrix batch by batch.
    fn reserve(&mut self, rows: i64, manifest: &Manifest) {
        let rows = usize::try_from(rows).unwrap_or(0);
        self.entities.reserve(rows);
        self.times_ms.reserve(rows);
        self.labels.reserve(rows);
        self.values
            .reserve(rows.saturating_mul(manifest.features.len()));
        for raw in &mut self.categorical_raw {
            raw.reserve(rows);
        }
    }
}

/// Lists the data files: `data` itself if it is a file, else its `*.parquet` files not
/// starting with `.` or `_` (Spark and Hive write `_SUCCESS`, `.crc`…), in name order.
pub(crate) fn data_files(data: &Path) -> Result<Vec<PathBuf>, TrainsetError> {
    let io = |source| TrainsetError::Io {
        path: data.to_path_buf(),
        source,
    };
    if std::fs::metadata(data).map_err(io)?.is_file() {
        return Ok(vec![data.to_path_buf()]);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(data).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name.starts_with('_') || !name.ends_with(".parquet") {
            continue;
        }
        if entry.file_type().map_err(io)?.is_file() {
            files.push(entry.path());
        }
    }
    if files.is_empty() {
        return Err(TrainsetError::NoDataFiles {
            dir: data.to_path_buf(),
        });
    }
    files.sort();
    Ok(files)
}

/// Reads every file into one set of columns.
pub(crate) fn read_files(
    manifest: &Manifest,
    files: &[PathBuf],
) -> Result<RawColumns, TrainsetError> {
    let n_categorical = manifest
        .features
        .iter()
        .filter(|f| f.feature_type == FeatureType::Categorical)
        .count();
    let mut columns = RawColumns {
        categorical_raw: vec![Vec::new(); n_categorical],
        ..RawColumns::default()
    };
    let mut first: Option<(&Path, Schema)> = None;
    for file in files {
        let reader = File::open(file).map_err(|source| TrainsetError::Io {
            path: file.clone(),
            source,
        })?;
        let parquet_err = |source| TrainsetError::Parquet {
            path: file.clone(),
            source,
        };
        let builder = ParquetRecordBatchReaderBuilder::try_new(reader).map_err(parquet_err)?;
        let schema = builder.schema().as_ref().clone();
        match &first {
            None => first = Some((file, schema.clone())),
            Some((first_file, first_schema)) => {
                if let Some(difference) = schema_difference(first_schema, &schema) {
                    return Err(TrainsetError::SchemaMismatch {
                        file: file.clone(),
                        first: first_file.to_path_buf(),
                        difference,
                    });
                }
            }
        }
        let mut indices = Vec::new();
        for (column, role) in columns_of(manifest) {
            indices.push(check_column(&schema, file, column, role)?);
        }
        columns.reserve(builder.metadata().file_metadata().num_rows(), manifest);
        let mask = ProjectionMask::roots(builder.parquet_schema(), indices);
        let batches = builder
            .with_projection(mask)
            .with_batch_size(BATCH_ROWS)
            .build()
            .map_err(parquet_err)?;
        let mut file_row = 0;
        for batch in batches {
            let batch = batch.map_err(|source| TrainsetError::Arrow {
                path: file.clone(),
                source,
            })?;
            let chunk = Chunk {
                manifest,
                file,
                first_row: file_row,
                batch: &batch,
            };
            chunk.append_to(&mut columns)?;
            file_row += batch.num_rows();
        }
    }
    Ok(columns)
}

/// The columns of the manifest with their roles: entity, time, label, then the features.
fn columns_of(manifest: &Manifest) -> impl Iterator<Item = (&str, ColumnRole)> {
    [
        (manifest.entity_column.as_str(), ColumnRole::Entity),
        (manifest.time_column.as_str(), ColumnRole::Time),
        (manifest.label_column.as_str(), ColumnRole::Label),
    ]
    .into_iter()
    .chain(
        manifest
            .features
            .iter()
            .map(|f| (f.name.as_str(), ColumnRole::Feature(f.feature_type))),
    )
}

/// The first difference between two files' schemas, comparing column names and types
/// (not column order, nullability or metadata, which writers vary freely).
fn schema_difference(first: &Schema, other: &Schema) -> Option<String> {
    let types = |s: &Schema| -> HashMap<String, DataType> {
        s.fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().clone()))
            .collect()
    };
    let (first_types, other_types) = (types(first), types(other));
    for field in first.fields() {
        match other_types.get(field.name()) {
            None => return Some(format!("column \"{}\" is missing", field.name())),
            Some(t) if t != field.data_type() => {
                return Some(format!(
                    "column \"{}\" is {t} here but {} there",
                    field.name(),
                    field.data_type()
                ));
            }
            Some(_) => {}
        }
    }
    other
        .fields()
        .iter()
        .find(|f| !first_types.contains_key(f.name()))
        .map(|f| format!("extra column \"{}\"", f.name()))
}

fn is_integer(t: &DataType) -> bool {
    use DataType::*;
    matches!(
        t,
        Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64
    )
}

fn is_float(t: &DataType) -> bool {
    matches!(t, DataType::Float16 | DataType::Float32 | DataType::Float64)
}

fn is_string(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

fn is_string_dictionary(t: &DataType) -> bool {
    matches!(t, DataType::Dictionary(_, value) if is_string(value))
}

/// Whether a column of type `t` can play `role`, and the accepted types in words.
fn accepts(role: ColumnRole, t: &DataType) -> (bool, &'static str) {
    match role {
        ColumnRole::Entity => (
            is_string(t)
                || is_string_dictionary(t)
                || matches!(t, DataType::Int32 | DataType::Int64 | DataType::UInt64),
            "Utf8, LargeUtf8, Utf8View, Dictionary of Utf8, Int32, Int64, UInt64",
        ),
        ColumnRole::Time => (
            matches!(t, DataType::Int64 | DataType::Timestamp(_, _)),
            "Int64 unix milliseconds or Timestamp of any unit",
        ),
        ColumnRole::Label => (
            matches!(t, DataType::Boolean) || is_integer(t) || is_float(t),
            "Boolean, or integer or float values 0 and 1",
        ),
        ColumnRole::Feature(FeatureType::Numeric) => (
            is_integer(t) || is_float(t),
            "integer or floating-point types",
        ),
        ColumnRole::Feature(FeatureType::Categorical) => (
            is_string(t) || is_string_dictionary(t) || is_integer(t),
            "Utf8, LargeUtf8, Utf8View, Dictionary of Utf8, integer types",
        ),
    }
}

/// Finds `column` in a file's schema and checks its type; returns its root index.
fn check_column(
    schema: &Schema,
    file: &Path,
    column: &str,
    role: ColumnRole,
) -> Result<usize, TrainsetError> {
    let Ok(index) = schema.index_of(column) else {
        return Err(TrainsetError::MissingColumn {
            column: column.into(),
            role,
            file: file.to_path_buf(),
            available: schema.fields().iter().map(|f| f.name().clone()).collect(),
        });
    };
    let found = schema.field(index).data_type();
    let (ok, accepted) = accepts(role, found);
    if !ok {
        return Err(TrainsetError::WrongType {
            column: column.into(),
            role,
            file: file.to_path_buf(),
            found: found.clone(),
            accepted,
        });
    }
    Ok(index)
}

/// One record batch of one file, being appended to the set's columns.
struct Chunk<'a> {
    manifest: &'a Manifest,
    file: &'a Path,
    /// Row (within the file) of the batch's first row, for error messages.
    first_row: usize,
    batch: &'a arrow::record_batch::RecordBatch,
}

impl Chunk<'_> {
    fn append_to(&self, out: &mut RawColumns) -> Result<(), TrainsetError> {
        let m = self.manifest;
        let rows = self.batch.num_rows();
        let base = out.times_ms.len();

        let entity = self.as_utf8(&m.entity_column)?;
        let entity = entity.as_string::<i32>();
        out.entities.reserve(rows);
        for (i, value) in entity.iter().enumerate() {
            let value = value.ok_or_else(|| self.null(&m.entity_column, ColumnRole::Entity, i))?;
            out.entities.push(value.to_owned());
        }

        self.append_times(&mut out.times_ms)?;
        self.append_labels(&mut out.labels)?;

        let n_features = m.features.len();
        out.values.resize((base + rows) * n_features, f64::NAN);
        let mut categorical = 0;
        for (j, feature) in m.features.iter().enumerate() {
            match feature.feature_type {
                FeatureType::Numeric => {
                    let column = self.cast(&feature.name, &DataType::Float64)?;
                    let column = column.as_primitive::<Float64Type>();
                    for (i, value) in column.iter().enumerate() {
                        if let Some(v) = value {
                            out.values[(base + i) * n_features + j] = v;
                        }
                    }
                }
                FeatureType::Categorical => {
                    let column = self.as_utf8(&feature.name)?;
                    let raw = &mut out.categorical_raw[categorical];
                    raw.extend(
                        column
                            .as_string::<i32>()
                            .iter()
                            .map(|v| v.map(str::to_owned)),
                    );
                    categorical += 1;
                }
            }
        }
        Ok(())
    }

    fn column(&self, name: &str) -> &ArrayRef {
        // The projection kept every manifest column and `check_column` found each.
        self.batch
            .column_by_name(name)
            .unwrap_or_else(|| panic!("column {name} was projected"))
    }

    fn cast(&self, name: &str, to: &DataType) -> Result<ArrayRef, TrainsetError> {
        cast(self.column(name), to).map_err(|source| TrainsetError::Arrow {
            path: self.file.to_path_buf(),
            source,
        })
    }

    fn as_utf8(&self, name: &str) -> Result<ArrayRef, TrainsetError> {
        self.cast(name, &DataType::Utf8)
    }

    fn null(&self, column: &str, role: ColumnRole, i: usize) -> TrainsetError {
        TrainsetError::Null {
            column: column.into(),
            role,
            file: self.file.to_path_buf(),
            row: self.first_row + i,
        }
    }

    fn bad_value(
        &self,
        column: &str,
        role: ColumnRole,
        i: usize,
        value: String,
        problem: &'static str,
    ) -> TrainsetError {
        TrainsetError::BadValue {
            column: column.into(),
            role,
            file: self.file.to_path_buf(),
            row: self.first_row + i,
            value,
            problem,
        }
    }

    /// Appends the times in unix milliseconds; finer timestamp units are floored.
    fn append_times(&self, out: &mut Vec<i64>) -> Result<(), TrainsetError> {
        let name = self.manifest.time_column.as_str();
        let column = self.column(name);
        let (values, divisor, multiplier) = match column.data_type() {
            DataType::Timestamp(TimeUnit::Second, _) => (
                column
                    .as_primitive::<TimestampSecondType>()
                    .iter()
                    .collect::<Vec<_>>(),
                1,
                1000,
            ),
            DataType::Timestamp(TimeUnit::Millisecond, _) => (
                column
                    .as_primitive::<TimestampMillisecondType>()
                    .iter()
                    .collect(),
                1,
                1,
            ),
            DataType::Timestamp(TimeUnit::Microsecond, _) => (
                column
                    .as_primitive::<TimestampMicrosecondType>()
                    .iter()
                    .collect(),
                1000,
                1,
            ),
            DataType::Timestamp(TimeUnit::Nanosecond, _) => (
                column
                    .as_primitive::<TimestampNanosecondType>()
                    .iter()
                    .collect(),
                1_000_000,
                1,
            ),
            _ => (column.as_primitive::<Int64Type>().iter().collect(), 1, 1),
        };
        out.reserve(values.len());
        for (i, value) in values.into_iter().enumerate() {
            let v = value.ok_or_else(|| self.null(name, ColumnRole::Time, i))?;
            let ms = v
                .div_euclid(divisor)
                .checked_mul(multiplier)
                .ok_or_else(|| {
                    self.bad_value(
                        name,
                        ColumnRole::Time,
                        i,
                        v.to_string(),
                        "overflows i64 milliseconds",
                    )
                })?;
            out.push(ms);
        }
        Ok(())
    }

    fn append_labels(&self, out: &mut Vec<bool>) -> Result<(), TrainsetError> {
        let name = self.manifest.label_column.as_str();
        let column = self.column(name);
        out.reserve(column.len());
        if let DataType::Boolean = column.data_type() {
            for (i, value) in column.as_boolean().iter().enumerate() {
                out.push(value.ok_or_else(|| self.null(name, ColumnRole::Label, i))?);
            }
            return Ok(());
        }
        // Every integer and float converts to f64 without turning into null, and an
        // integer is 0 or 1 exactly when its f64 is.
        let column = self.cast(name, &DataType::Float64)?;
        for (i, value) in column.as_primitive::<Float64Type>().iter().enumerate() {
            let v = value.ok_or_else(|| self.null(name, ColumnRole::Label, i))?;
            if v == 0.0 {
                out.push(false);
            } else if v == 1.0 {
                out.push(true);
            } else {
                return Err(self.bad_value(
                    name,
                    ColumnRole::Label,
                    i,
                    v.to_string(),
                    "is not 0 or 1",
                ));
            }
        }
        Ok(())
    }
}
