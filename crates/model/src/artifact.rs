//! Artifact directories: `manifest.json` plus the model file, every file sha256-checked.

use crate::ModelError;
use crate::linear::LogisticModel;
use crate::manifest::{Manifest, ModelKind};
use crate::policy::Decision;
use sha2::{Digest, Sha256};
use std::path::Path;

/// File name of the manifest inside an artifact directory.
pub const MANIFEST_FILE: &str = "manifest.json";
const LOGISTIC_FILE: &str = "logistic.json";

/// The outcome of scoring one vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    pub probability: f64,
    pub decision: Decision,
    /// The features that pushed the score the most, largest |contribution| first.
    pub reasons: Vec<(String, f64)>,
}

enum Scorer {
    Logistic(LogisticModel),
}

/// A verified model, ready to score.
pub struct LoadedModel {
    manifest: Manifest,
    scorer: Scorer,
}

impl std::fmt::Debug for LoadedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedModel")
            .field("model_id", &self.manifest.model_id)
            .field("version", &self.manifest.version)
            .finish()
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn read(path: &Path) -> Result<Vec<u8>, ModelError> {
    std::fs::read(path).map_err(|source| ModelError::Io {
        path: path.display().to_string(),
        source,
    })
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), ModelError> {
    std::fs::write(path, bytes).map_err(|source| ModelError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Writes a logistic model and its manifest into `dir`; fills `manifest.files`/`model_file`.
pub fn write_artifact(
    dir: &Path,
    mut manifest: Manifest,
    model: &LogisticModel,
) -> Result<Manifest, ModelError> {
    model.validate().map_err(ModelError::Invalid)?;
    manifest
        .thresholds
        .validate()
        .map_err(ModelError::Invalid)?;
    std::fs::create_dir_all(dir).map_err(|source| ModelError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    let bytes = serde_json::to_vec_pretty(model).map_err(|source| ModelError::Json {
        path: LOGISTIC_FILE.into(),
        source,
    })?;
    write(&dir.join(LOGISTIC_FILE), &bytes)?;
    manifest.kind = ModelKind::LogisticRegression;
    manifest.model_file = LOGISTIC_FILE.into();
    manifest
        .files
        .insert(LOGISTIC_FILE.into(), sha256_hex(&bytes));
    let bytes = serde_json::to_vec_pretty(&manifest).map_err(|source| ModelError::Json {
        path: MANIFEST_FILE.into(),
        source,
    })?;
    write(&dir.join(MANIFEST_FILE), &bytes)?;
    Ok(manifest)
}

impl LoadedModel {
    /// Loads an artifact directory, verifying every file's sha256 and the model's consistency
    /// with its manifest.
    pub fn load(dir: &Path) -> Result<LoadedModel, ModelError> {
        let manifest_path = dir.join(MANIFEST_FILE);
        let manifest: Manifest =
            serde_json::from_slice(&read(&manifest_path)?).map_err(|source| ModelError::Json {
                path: manifest_path.display().to_string(),
                source,
            })?;
        manifest
            .thresholds
            .validate()
            .map_err(ModelError::Invalid)?;
        if !manifest.files.contains_key(&manifest.model_file) {
            return Err(ModelError::Invalid(format!(
                "model file {} has no checksum",
                manifest.model_file
            )));
        }
        let mut model_bytes = None;
        for (file, expected) in &manifest.files {
            let bytes = read(&dir.join(file))?;
            let actual = sha256_hex(&bytes);
            if &actual != expected {
                return Err(ModelError::Checksum {
                    file: file.clone(),
                    expected: expected.clone(),
                    actual,
                });
            }
            if *file == manifest.model_file {
                model_bytes = Some(bytes);
            }
        }
        let bytes = model_bytes.unwrap_or_default();
        let scorer = match manifest.kind {
            ModelKind::LogisticRegression => {
                let m: LogisticModel =
                    serde_json::from_slice(&bytes).map_err(|source| ModelError::Json {
                        path: manifest.model_file.clone(),
                        source,
                    })?;
                m.validate().map_err(ModelError::Invalid)?;
                if m.len() != manifest.feature_names.len() {
                    return Err(ModelError::Invalid(format!(
                        "model has {} weights but the manifest names {} features",
                        m.len(),
                        manifest.feature_names.len()
                    )));
                }
                Scorer::Logistic(m)
            }
        };
        Ok(LoadedModel { manifest, scorer })
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Scores one vector of the given schema; refuses vectors of any other schema.
    pub fn score(
        &self,
        schema_hash: &str,
        values: &[f64],
        max_reasons: usize,
    ) -> Result<Scored, ModelError> {
        if schema_hash != self.manifest.schema_hash {
            return Err(ModelError::SchemaMismatch {
                expected: self.manifest.schema_hash.clone(),
                actual: schema_hash.to_owned(),
            });
        }
        if values.len() != self.manifest.feature_names.len() {
            return Err(ModelError::Arity {
                expected: self.manifest.feature_names.len(),
                actual: values.len(),
            });
        }
        let Scorer::Logistic(m) = &self.scorer;
        let probability = m.predict(values);
        let mut reasons: Vec<(usize, f64)> = m.contributions(values).enumerate().collect();
        reasons.sort_unstable_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
        reasons.truncate(max_reasons);
        Ok(Scored {
            probability,
            decision: self.manifest.thresholds.decide(probability),
            reasons: reasons
                .into_iter()
                .map(|(i, c)| (self.manifest.feature_names[i].clone(), c))
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{Splits, Window};
    use crate::policy::Thresholds;
    use crate::reference::Histogram;

    fn manifest() -> Manifest {
        let w = Window {
            start_ms: 0,
            end_ms: 1,
        };
        Manifest {
            model_id: "m".into(),
            version: "1".into(),
            kind: ModelKind::LogisticRegression,
            created_at_ms: 0,
            feature_set_version: "v1".into(),
            schema_hash: "abc".into(),
            feature_names: vec!["a".into(), "b".into()],
            splits: Splits {
                train: w,
                validation: w,
                test: w,
                train_rows: 1,
                validation_rows: 1,
                test_rows: 1,
            },
            data_fingerprint: "f".into(),
            params: Default::default(),
            metrics: Default::default(),
            thresholds: Thresholds {
                review: 0.5,
                block: 0.9,
            },
            reference_scores: Histogram::uniform(10),
            code_version: "test".into(),
            files: Default::default(),
            model_file: String::new(),
        }
    }

    fn model() -> LogisticModel {
        LogisticModel {
            means: vec![0.0, 0.0],
            scales: vec![1.0, 1.0],
            weights: vec![2.0, -0.5],
            intercept: 0.0,
        }
    }

    #[test]
    fn round_trips_and_scores_with_reasons() {
        let dir = tempfile::tempdir().unwrap();
        write_artifact(dir.path(), manifest(), &model()).unwrap();
        let loaded = LoadedModel::load(dir.path()).unwrap();
        let s = loaded.score("abc", &[3.0, 1.0], 1).unwrap();
        assert_eq!(s.decision, Decision::Block);
        assert_eq!(s.reasons, vec![("a".to_string(), 6.0)]);
    }

    #[test]
    fn refuses_other_schemas_and_tampered_files() {
        let dir = tempfile::tempdir().unwrap();
        write_artifact(dir.path(), manifest(), &model()).unwrap();
        let loaded = LoadedModel::load(dir.path()).unwrap();
        assert!(matches!(
            loaded.score("other", &[0.0, 0.0], 0),
            Err(ModelError::SchemaMismatch { .. })
        ));
        assert!(matches!(
            loaded.score("abc", &[0.0], 0),
            Err(ModelError::Arity { .. })
        ));
        let path = dir.path().join(LOGISTIC_FILE);
        let tampered = std::fs::read_to_string(&path)
            .unwrap()
            .replace("2.0", "3.0");
        std::fs::write(&path, tampered).unwrap();
        let err = LoadedModel::load(dir.path()).unwrap_err();
        assert!(matches!(err, ModelError::Checksum { .. }), "{err}");
    }
}
