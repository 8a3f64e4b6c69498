//! The manifest (`trainset.json`): what the columns of the Parquet data mean.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::TrainsetError;

/// The conventional file name of a manifest; [`crate::TrainingSetWriter`] writes this one,
/// [`crate::TrainingSet::load`] accepts any name.
pub const MANIFEST_FILE: &str = "trainset.json";

/// The type of a feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureType {
    /// A number; any integer or floating-point column. Nulls and NaN mean "missing".
    Numeric,
    /// A category; a string, dictionary-of-string or integer column. Nulls mean "missing".
    /// Encoded to numeric codes by [`crate::CategoryEncoding`].
    Categorical,
}

impl FeatureType {
    /// The name used in the manifest: `numeric` or `categorical`.
    pub fn as_str(self) -> &'static str {
        match self {
            FeatureType::Numeric => "numeric",
            FeatureType::Categorical => "categorical",
        }
    }
}

/// One feature column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureSpec {
    /// The Parquet column name.
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub feature_type: FeatureType,
}

/// The manifest of a training set.
///
/// ```json
/// { "name": "vigil-v1", "entity_column": "user_id", "time_column": "event_time_ms",
///   "label_column": "is_fraud", "label_delay_ms": 604800000,
///   "features": [ {"name": "amount_minor", "type": "numeric"},
///                 {"name": "channel", "type": "categorical"} ],
///   "data": "data" }
/// ```
///
/// Unknown fields are refused, so a misspelt key is an error rather than a silent default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// A name for the set, carried into model manifests.
    pub name: String,
    /// The column identifying the entity (user, card…) a row belongs to.
    pub entity_column: String,
    /// The event-time column: Int64 unix milliseconds or an Arrow timestamp of any unit.
    pub time_column: String,
    /// The label column: Boolean, or integers / floats that are exactly 0 or 1.
    pub label_column: String,
    /// How long after an event its label is known, in milliseconds. Splits use it as the
    /// gap between windows (see [`crate::split`]). Must not be negative.
    pub label_delay_ms: i64,
    /// The features, in the order of the feature matrix.
    pub features: Vec<FeatureSpec>,
    /// A column identifying each row (e.g. `transaction_id`), so predictions can be joined
    /// back; carried along, never a feature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_column: Option<String>,
    /// The time (unix ms) the labels were cut off at: no label reported later is in the set.
    /// `None` for a set built without a cut-off — the trainer flags such a set as possibly
    /// leaking labels from after its training window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels_as_of_ms: Option<i64>,
    /// The data: a `.parquet` file, or a directory whose `*.parquet` files (not starting
    /// with `.` or `_`) are read in name order. Relative to the manifest's directory (an
    /// absolute path is used as is).
    pub data: PathBuf,
}

impl Manifest {
    /// Reads and validates a manifest file.
    pub fn from_path(path: &Path) -> Result<Manifest, TrainsetError> {
        let bytes = std::fs::read(path).map_err(|source| TrainsetError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|source| TrainsetError::ManifestSyntax {
                path: path.to_path_buf(),
                source,
            })?;
        manifest.validate(path)?;
        Ok(manifest)
    }

    /// Checks the manifest's internal consistency; `path` only labels the error.
    ///
    /// Refused: an empty name or column name, entity/time/label columns that coincide, no
    /// features, a feature declared twice, a feature that is also the entity, time or
    /// label column, a negative label delay and an empty `data` path.
    pub fn validate(&self, path: &Path) -> Result<(), TrainsetError> {
        self.problem().map_or(Ok(()), |problem| {
            Err(TrainsetError::InvalidManifest {
                path: path.to_path_buf(),
                problem,
            })
        })
    }

    fn problem(&self) -> Option<String> {
        if self.name.trim().is_empty() {
            return Some("name is empty".into());
        }
        let roles = [
            ("entity", &self.entity_column),
            ("time", &self.time_column),
            ("label", &self.label_column),
        ];
        for (i, (role, column)) in roles.iter().enumerate() {
            if column.is_empty() {
                return Some(format!("{role}_column is empty"));
            }
            if let Some((other, _)) = roles[..i].iter().find(|(_, c)| c == column) {
                return Some(format!(
                    "column \"{column}\" is both the {other} and the {role} column"
                ));
            }
        }
        if let Some(id) = &self.id_column {
            if id.is_empty() {
                return Some("id_column is empty".into());
            }
            if let Some((role, _)) = roles.iter().find(|(_, c)| *c == id) {
                return Some(format!(
                    "column \"{id}\" is both the id and the {role} column"
                ));
            }
            if self.features.iter().any(|f| &f.name == id) {
                return Some(format!(
                    "column \"{id}\" is both the id column and a feature"
                ));
            }
        }
        if self.label_delay_ms < 0 {
            return Some(format!(
                "label_delay_ms is {}, must not be negative",
                self.label_delay_ms
            ));
        }
        if self.features.is_empty() {
            return Some("no features".into());
        }
        let mut seen = HashSet::new();
        for feature in &self.features {
            if feature.name.is_empty() {
                return Some("a feature has an empty name".into());
            }
            if let Some((role, _)) = roles.iter().find(|(_, c)| **c == feature.name) {
                return Some(format!(
                    "feature \"{}\" is also the {role} column",
                    feature.name
                ));
            }
            if !seen.insert(feature.name.as_str()) {
                return Some(format!("feature \"{}\" is declared twice", feature.name));
            }
        }
        if self.data.as_os_str().is_empty() {
            return Some("data is empty".into());
        }
        None
    }

    /// The features' names, in matrix order.
    pub fn feature_names(&self) -> Vec<&str> {
        self.features.iter().map(|f| f.name.as_str()).collect()
    }

    /// The features' types, in matrix order.
    pub fn feature_types(&self) -> Vec<FeatureType> {
        self.features.iter().map(|f| f.feature_type).collect()
    }
}
