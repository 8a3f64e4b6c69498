//! Generic training sets: any user's labelled events, in Parquet, described by a small JSON
//! manifest, and the time-respecting splits the trainer evaluates on.
//!
//! A training set is a directory (or a single file) of Parquet data plus a manifest,
//! `trainset.json`, saying which column is the entity, the event time and the label, which
//! columns are features and of what type ([`Manifest`]). Nothing else about the data is
//! assumed, so a set exported from a warehouse works as well as one written by Vigil's own
//! feature pipeline with [`TrainingSetWriter`].
//!
//! - [`manifest`]: the manifest and its validation.
//! - [`TrainingSet::load`] reads the data with the Arrow Parquet reader, projecting only the
//!   manifest's columns, checks every column against its role (errors name the column, the
//!   file, the row and the problem), and keeps the rows sorted by time.
//! - [`CategoryEncoding`]: categorical features are encoded only once the set is split,
//!   fit on the training window ([`TrainingSet::encode_categoricals`]), because fitting on
//!   all rows would leak the future; the encoding travels with the model to inference.
//! - [`split`]: train / validation / test windows and forward-chaining folds, separated by
//!   a gap equal to the label delay, never random.
//!
//! Architecture invariant: this crate knows nothing of Vigil's feature definitions; the
//! trainer's features are just numeric columns to it.
//!
//! ```no_run
//! use trainset::{SplitSpec, TrainingSet, time_split};
//!
//! let mut set = TrainingSet::load("sets/vigil-v1/trainset.json")?;
//! let spec = SplitSpec { train_fraction: 0.7, validation_fraction: 0.15, gap_ms: set.label_delay_ms() };
//! let splits = time_split(set.times_ms(), &spec)?;
//! let encodings = set.encode_categoricals(splits.train());
//! # let _ = encodings;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod encoding;
mod error;
pub mod manifest;
mod read;
mod set;
pub mod split;
mod write;

pub use encoding::CategoryEncoding;
pub use error::{ColumnRole, TrainsetError};
pub use manifest::{FeatureSpec, FeatureType, MANIFEST_FILE, Manifest};
pub use set::TrainingSet;
pub use split::{
    Fold, FoldPart, SplitError, SplitSpec, SplitWindows, Splits, Window, WindowSummary,
    time_series_cv, time_split,
};
pub use write::{
    DATA_FILE, NumericSetSpec, PartSummary, PartWriter, RowRef, SetWriter, TrainingSetWriter,
    WriteSummary, write_numeric,
};
