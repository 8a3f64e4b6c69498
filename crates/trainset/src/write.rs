//! Writing a training set of numeric features, streaming, from the Vigil feature pipeline.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::error::TrainsetError;
use crate::manifest::{FeatureSpec, FeatureType, MANIFEST_FILE, Manifest};

/// Where the writer puts the data, relative to the set's directory.
pub const DATA_FILE: &str = "data/part-00000.parquet";

/// Rows buffered before they are handed to the Parquet writer as one record batch.
const BATCH_ROWS: usize = 8192;
/// Rows per Parquet row group.
const ROW_GROUP_ROWS: usize = 65_536;

/// What to write: the manifest of a set whose features are all numeric.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumericSetSpec {
    /// The set's name.
    pub name: String,
    /// The entity column's name.
    pub entity_column: String,
    /// The time column's name (written as Int64 unix milliseconds).
    pub time_column: String,
    /// The label column's name (written as Boolean).
    pub label_column: String,
    /// The label delay, see [`Manifest::label_delay_ms`].
    pub label_delay_ms: i64,
    /// The features' names, in the order of [`RowRef::features`] (written as Float64).
    pub feature_names: Vec<String>,
    /// The row id column's name (written as Utf8 from [`RowRef::id`]), if any.
    pub id_column: Option<String>,
    /// See [`Manifest::labels_as_of_ms`].
    pub labels_as_of_ms: Option<i64>,
}

impl NumericSetSpec {
    /// The manifest the writer writes for this spec (data in `data/`).
    pub fn manifest(&self) -> Manifest {
        Manifest {
            name: self.name.clone(),
            entity_column: self.entity_column.clone(),
            time_column: self.time_column.clone(),
            label_column: self.label_column.clone(),
            label_delay_ms: self.label_delay_ms,
            features: self
                .feature_names
                .iter()
                .map(|name| FeatureSpec {
                    name: name.clone(),
                    feature_type: FeatureType::Numeric,
                })
                .collect(),
            id_column: self.id_column.clone(),
            labels_as_of_ms: self.labels_as_of_ms,
            data: PathBuf::from("data"),
        }
    }
}

/// One row to write. `NaN` features are written as nulls (missing).
#[derive(Debug, Clone, Copy)]
pub struct RowRef<'a> {
    /// The row's id (written only when the spec has an id column).
    pub id: &'a str,
    /// The entity.
    pub entity: &'a str,
    /// The event time, unix milliseconds.
    pub time_ms: i64,
    /// The label.
    pub label: bool,
    /// One value per feature of the spec, in its order.
    pub features: &'a [f64],
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteSummary {
    /// The manifest, to pass to [`crate::TrainingSet::load`].
    pub manifest_path: PathBuf,
    /// Rows written.
    pub rows: u64,
    /// Positive labels written.
    pub positives: u64,
}

/// A training set written in parts, possibly in parallel: one [`PartWriter`] per part, each
/// streaming rows into its own data file `dir/data/part-NNNNN.parquet` (Utf8 entity, Int64
/// time, Boolean label, Float64 features; Snappy; row groups of 64Ki rows), then
/// [`SetWriter::finish`] writes `dir/trainset.json`.
///
/// Memory stays bounded by one record batch of builders plus the Parquet writer's current
/// row group per part, whatever the number of rows. The manifest is written last, so a
/// directory without one holds no (complete) set. Rows need not be sorted: loading sorts them
/// by time, ties in part order then file order.
#[derive(Debug)]
pub struct SetWriter {
    dir: PathBuf,
    manifest: Manifest,
    schema: SchemaRef,
    id_column: bool,
}

/// What one finished part holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartSummary {
    /// Its data file (removed again if the part has no rows).
    pub path: PathBuf,
    pub rows: u64,
    pub positives: u64,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> TrainsetError {
    let path = path.to_path_buf();
    move |source| TrainsetError::Io { path, source }
}

impl SetWriter {
    /// Starts a set in `dir` (created if needed). Refuses an invalid spec and a directory
    /// that already holds a manifest.
    pub fn create(dir: &Path, spec: &NumericSetSpec) -> Result<SetWriter, TrainsetError> {
        let manifest = spec.manifest();
        let manifest_path = dir.join(MANIFEST_FILE);
        manifest.validate(&manifest_path)?;
        if manifest_path.exists() {
            return Err(io_error(&manifest_path)(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "a training set already exists here",
            )));
        }
        let data_dir = dir.join("data");
        std::fs::create_dir_all(&data_dir).map_err(io_error(&data_dir))?;
        let mut fields = vec![
            Field::new(&spec.entity_column, DataType::Utf8, false),
            Field::new(&spec.time_column, DataType::Int64, false),
            Field::new(&spec.label_column, DataType::Boolean, false),
        ];
        fields.extend(
            spec.feature_names
                .iter()
                .map(|name| Field::new(name, DataType::Float64, true)),
        );
        if let Some(id) = &spec.id_column {
            fields.push(Field::new(id, DataType::Utf8, false));
        }
        Ok(SetWriter {
            dir: dir.to_path_buf(),
            manifest,
            schema: Arc::new(Schema::new(fields)),
            id_column: spec.id_column.is_some(),
        })
    }

    /// Starts part `index` (its data file must not exist yet).
    pub fn part(&self, index: u32) -> Result<PartWriter, TrainsetError> {
        let data_path = self.dir.join(format!("data/part-{index:05}.parquet"));
        let file = File::create_new(&data_path).map_err(io_error(&data_path))?;
        // No dictionary encoding: the columns are mostly continuous floats, and interning
        // every value was the writer's largest cost in a build (Snappy still compresses).
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_dictionary_enabled(false)
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .build();
        let writer =
            ArrowWriter::try_new(file, self.schema.clone(), Some(props)).map_err(|source| {
                TrainsetError::Parquet {
                    path: data_path.clone(),
                    source,
                }
            })?;
        Ok(PartWriter {
            data_path,
            schema: self.schema.clone(),
            writer,
            id: self
                .id_column
                .then(|| StringBuilder::with_capacity(BATCH_ROWS, BATCH_ROWS * 16)),
            entity: StringBuilder::with_capacity(BATCH_ROWS, BATCH_ROWS * 16),
            time: Int64Builder::with_capacity(BATCH_ROWS),
            label: BooleanBuilder::with_capacity(BATCH_ROWS),
            features: (0..self.manifest.features.len())
                .map(|_| Float64Builder::with_capacity(BATCH_ROWS))
                .collect(),
            buffered: 0,
            rows: 0,
            positives: 0,
        })
    }

    /// Writes the manifest over the finished parts. Refuses a set without rows, which
    /// [`crate::TrainingSet::load`] would refuse anyway.
    pub fn finish(
        self,
        parts: impl IntoIterator<Item = PartSummary>,
    ) -> Result<WriteSummary, TrainsetError> {
        let (mut rows, mut positives) = (0, 0);
        for p in parts {
            rows += p.rows;
            positives += p.positives;
        }
        if rows == 0 {
            return Err(TrainsetError::Empty { path: self.dir });
        }
        let manifest_path = self.dir.join(MANIFEST_FILE);
        let tmp = self.dir.join(format!("{MANIFEST_FILE}.tmp"));
        let json = serde_json::to_vec_pretty(&self.manifest)
            .map_err(|e| io_error(&tmp)(std::io::Error::other(e)))?;
        std::fs::write(&tmp, json).map_err(io_error(&tmp))?;
        std::fs::rename(&tmp, &manifest_path).map_err(io_error(&manifest_path))?;
        Ok(WriteSummary {
            manifest_path,
            rows,
            positives,
        })
    }
}

/// Streams the rows of one part into its data file (see [`SetWriter`]).
pub struct PartWriter {
    data_path: PathBuf,
    schema: SchemaRef,
    writer: ArrowWriter<File>,
    id: Option<StringBuilder>,
    entity: StringBuilder,
    time: Int64Builder,
    label: BooleanBuilder,
    features: Vec<Float64Builder>,
    buffered: usize,
    rows: u64,
    positives: u64,
}

impl std::fmt::Debug for PartWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartWriter")
            .field("data_path", &self.data_path)
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

impl PartWriter {
    /// Appends a row; refuses one without exactly one value per feature.
    pub fn push(&mut self, row: RowRef<'_>) -> Result<(), TrainsetError> {
        if row.features.len() != self.features.len() {
            return Err(TrainsetError::RowWidth {
                row: self.rows,
                found: row.features.len(),
                expected: self.features.len(),
            });
        }
        if let Some(id) = &mut self.id {
            id.append_value(row.id);
        }
        self.entity.append_value(row.entity);
        self.time.append_value(row.time_ms);
        self.label.append_value(row.label);
        for (builder, &v) in self.features.iter_mut().zip(row.features) {
            builder.append_option((!v.is_nan()).then_some(v));
        }
        self.buffered += 1;
        self.rows += 1;
        self.positives += u64::from(row.label);
        if self.buffered == BATCH_ROWS {
            self.flush_batch()?;
        }
        Ok(())
    }

    fn flush_batch(&mut self) -> Result<(), TrainsetError> {
        if self.buffered == 0 {
            return Ok(());
        }
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.entity.finish()),
            Arc::new(self.time.finish()),
            Arc::new(self.label.finish()),
        ];
        columns.extend(
            self.features
                .iter_mut()
                .map(|b| Arc::new(b.finish()) as ArrayRef),
        );
        if let Some(id) = &mut self.id {
            columns.push(Arc::new(id.finish()));
        }
        self.buffered = 0;
        let batch = RecordBatch::try_new(self.schema.clone(), columns).map_err(|source| {
            TrainsetError::Arrow {
                path: self.data_path.clone(),
                source,
            }
        })?;
        self.writer
            .write(&batch)
            .map_err(|source| TrainsetError::Parquet {
                path: self.data_path.clone(),
                source,
            })
    }

    /// Flushes and closes the data file; a part without rows removes its file again.
    pub fn finish(mut self) -> Result<PartSummary, TrainsetError> {
        self.flush_batch()?;
        let data_path = self.data_path.clone();
        self.writer
            .close()
            .map_err(|source| TrainsetError::Parquet {
                path: data_path.clone(),
                source,
            })?;
        if self.rows == 0 {
            std::fs::remove_file(&data_path).map_err(io_error(&data_path))?;
        }
        Ok(PartSummary {
            path: data_path,
            rows: self.rows,
            positives: self.positives,
        })
    }
}

/// A set written in one part, `dir/data/part-00000.parquet` ([`DATA_FILE`]); see
/// [`SetWriter`] for a set written in parallel parts.
#[derive(Debug)]
pub struct TrainingSetWriter {
    set: SetWriter,
    part: PartWriter,
}

impl TrainingSetWriter {
    /// Starts a set in `dir` (created if needed). Refuses an invalid spec and a directory
    /// that already holds a manifest or a data file.
    pub fn create(dir: &Path, spec: &NumericSetSpec) -> Result<TrainingSetWriter, TrainsetError> {
        let set = SetWriter::create(dir, spec)?;
        let part = set.part(0)?;
        Ok(TrainingSetWriter { set, part })
    }

    /// Appends a row; refuses one without exactly one value per feature.
    pub fn push(&mut self, row: RowRef<'_>) -> Result<(), TrainsetError> {
        self.part.push(row)
    }

    /// Flushes the data file and writes the manifest. Refuses (and removes the data file
    /// of) a set without rows.
    pub fn finish(self) -> Result<WriteSummary, TrainsetError> {
        let part = self.part.finish()?;
        self.set.finish([part])
    }
}

/// Writes a whole set of numeric features into `dir` (see [`TrainingSetWriter`]).
pub fn write_numeric<'a>(
    dir: &Path,
    spec: &NumericSetSpec,
    rows: impl IntoIterator<Item = RowRef<'a>>,
) -> Result<WriteSummary, TrainsetError> {
    let mut writer = TrainingSetWriter::create(dir, spec)?;
    for row in rows {
        writer.push(row)?;
    }
    writer.finish()
}
