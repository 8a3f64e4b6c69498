//! Artifact directories: `manifest.json` plus the model file, every file sha256-checked.
//!
//! The manifest lists the other files' digests; its own digest is in `manifest.json.sha256`
//! (`sha256sum` format, so `sha256sum -c` checks it too). An edited or truncated manifest is
//! thus refused like an edited model file. This guards against corruption and hand edits,
//! not against someone who rewrites both files: that would need a signature.

use crate::ModelError;
use crate::linear::LogisticModel;
use crate::manifest::{Manifest, ModelKind};
use crate::policy::Decision;
use crate::trees::TreeEnsemble;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;

/// File name of the manifest inside an artifact directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// File name of the manifest's own digest.
pub const MANIFEST_DIGEST_FILE: &str = "manifest.json.sha256";
const LOGISTIC_FILE: &str = "logistic.json";
const TREES_FILE: &str = "model.lgb.txt";

/// The outcome of scoring one vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// Calibrated probability of fraud (what the thresholds apply to).
    pub probability: f64,
    /// The model's own, uncalibrated output (log-odds for both model kinds).
    pub raw_score: f64,
    pub decision: Decision,
    /// The features that pushed the score the most, largest |contribution| first, in log-odds
    /// (TreeSHAP values for trees, coefficient × standardised value for logistic regression).
    pub reasons: Vec<(String, f64)>,
}

/// Which scores carry reasons. Exact TreeSHAP costs about 300 raw scores (docs/benchmarks.md),
/// so by default only the decisions someone acts on — a review or a block — are explained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReasonPolicy {
    /// Reasons per explained score (0: none).
    pub max: usize,
    /// Explain decisions at or above this one (`Approve`: every score).
    pub from: Decision,
}

impl ReasonPolicy {
    /// No reasons at all.
    pub const NONE: ReasonPolicy = ReasonPolicy {
        max: 0,
        from: Decision::Block,
    };

    /// Up to `max` reasons on every score.
    pub fn always(max: usize) -> ReasonPolicy {
        ReasonPolicy {
            max,
            from: Decision::Approve,
        }
    }

    /// How many reasons a score with this decision gets.
    pub fn reasons_for(&self, decision: Decision) -> usize {
        if decision >= self.from { self.max } else { 0 }
    }
}

enum Scorer {
    Logistic(LogisticModel),
    Trees(Box<TreeEnsemble>),
}

/// The model file to write with a manifest.
#[derive(Debug, Clone, Copy)]
pub enum ModelFile<'a> {
    Logistic(&'a LogisticModel),
    /// LightGBM's text model; parsed here so a file the scorer cannot read is never written.
    LightGbm(&'a str),
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

/// Writes the model file and its manifest into `dir`; fills `kind`, `files` and `model_file`.
pub fn write_artifact(
    dir: &Path,
    mut manifest: Manifest,
    model: ModelFile<'_>,
) -> Result<Manifest, ModelError> {
    manifest
        .thresholds
        .validate()
        .map_err(ModelError::Invalid)?;
    let (kind, file, bytes) = match model {
        ModelFile::Logistic(m) => {
            m.validate().map_err(ModelError::Invalid)?;
            let bytes = serde_json::to_vec_pretty(m).map_err(|source| ModelError::Json {
                path: LOGISTIC_FILE.into(),
                source,
            })?;
            (ModelKind::LogisticRegression, LOGISTIC_FILE, bytes)
        }
        ModelFile::LightGbm(text) => {
            let ensemble = TreeEnsemble::from_lightgbm(text)?;
            check_names(&manifest, ensemble.feature_names())?;
            (
                ModelKind::GradientBoostedTrees,
                TREES_FILE,
                text.as_bytes().to_vec(),
            )
        }
    };
    std::fs::create_dir_all(dir).map_err(|source| ModelError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    write(&dir.join(file), &bytes)?;
    manifest.kind = kind;
    manifest.model_file = file.into();
    manifest.files.insert(file.into(), sha256_hex(&bytes));
    let bytes = serde_json::to_vec_pretty(&manifest).map_err(|source| ModelError::Json {
        path: MANIFEST_FILE.into(),
        source,
    })?;
    write(&dir.join(MANIFEST_FILE), &bytes)?;
    let digest = format!("{}  {MANIFEST_FILE}\n", sha256_hex(&bytes));
    write(&dir.join(MANIFEST_DIGEST_FILE), digest.as_bytes())?;
    Ok(manifest)
}

/// The artifact's reference sample for the drift monitor: raw rows of the validation window,
/// row-major, one little-endian f64 per feature in the manifest's order (NaN = missing). A
/// sample, not a profile, because the two-sample tests (KS, Wasserstein, χ²) need values.
pub const REFERENCE_SAMPLE_FILE: &str = "reference_sample.f64";

/// Writes `values` (row-major, `manifest.feature_names.len()` values per row) as the
/// artifact's reference sample and records its checksum in `manifest.files`; call it before
/// [`write_artifact`], which writes the manifest.
pub fn write_reference_sample(
    dir: &Path,
    manifest: &mut Manifest,
    values: &[f64],
) -> Result<(), ModelError> {
    let width = manifest.feature_names.len();
    if width == 0 || !values.len().is_multiple_of(width) {
        return Err(ModelError::Invalid(format!(
            "a reference sample of {} values is not whole rows of {width} features",
            values.len()
        )));
    }
    std::fs::create_dir_all(dir).map_err(|source| ModelError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    write(&dir.join(REFERENCE_SAMPLE_FILE), &bytes)?;
    manifest
        .files
        .insert(REFERENCE_SAMPLE_FILE.into(), sha256_hex(&bytes));
    Ok(())
}

/// The reference sample of the artifact in `dir` whose (verified) manifest is `manifest`,
/// checked against the manifest's checksum: row-major values, or `None` when the artifact
/// has none (written before samples were kept).
pub fn read_reference_sample(
    dir: &Path,
    manifest: &Manifest,
) -> Result<Option<Vec<f64>>, ModelError> {
    let Some(expected) = manifest.files.get(REFERENCE_SAMPLE_FILE) else {
        return Ok(None);
    };
    let bytes = read(&dir.join(REFERENCE_SAMPLE_FILE))?;
    let actual = sha256_hex(&bytes);
    if &actual != expected {
        return Err(ModelError::Checksum {
            file: REFERENCE_SAMPLE_FILE.into(),
            expected: expected.clone(),
            actual,
        });
    }
    let width = manifest.feature_names.len();
    if width == 0 || !bytes.len().is_multiple_of(8 * width) {
        return Err(ModelError::Invalid(format!(
            "{REFERENCE_SAMPLE_FILE}: {} bytes are not whole rows of {width} f64 features",
            bytes.len()
        )));
    }
    Ok(Some(
        bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect(),
    ))
}

/// Checks the manifest's bytes against `manifest.json.sha256`.
fn verify_manifest(dir: &Path, bytes: &[u8]) -> Result<(), ModelError> {
    let path = dir.join(MANIFEST_DIGEST_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ModelError::Invalid(format!(
                "{MANIFEST_DIGEST_FILE} is missing from {}: the manifest cannot be verified",
                dir.display()
            )));
        }
        Err(source) => {
            return Err(ModelError::Io {
                path: path.display().to_string(),
                source,
            });
        }
    };
    let expected = text.split_whitespace().next().unwrap_or_default();
    let actual = sha256_hex(bytes);
    if expected != actual {
        return Err(ModelError::Checksum {
            file: MANIFEST_FILE.into(),
            // A digest is 64 hex digits; never echo more of a damaged file.
            expected: expected.chars().take(64).collect(),
            actual,
        });
    }
    Ok(())
}

/// The model file must name the manifest's features, in the same order.
fn check_names(manifest: &Manifest, model_names: &[String]) -> Result<(), ModelError> {
    if model_names != manifest.feature_names.as_slice() {
        return Err(ModelError::Invalid(format!(
            "the model file's features {model_names:?} differ from the manifest's {:?}",
            manifest.feature_names
        )));
    }
    Ok(())
}

impl LoadedModel {
    /// Loads an artifact directory, verifying every file's sha256 and the model's consistency
    /// with its manifest.
    pub fn load(dir: &Path) -> Result<LoadedModel, ModelError> {
        let manifest_path = dir.join(MANIFEST_FILE);
        let manifest_bytes = read(&manifest_path)?;
        verify_manifest(dir, &manifest_bytes)?;
        let manifest: Manifest =
            serde_json::from_slice(&manifest_bytes).map_err(|source| ModelError::Json {
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
            ModelKind::GradientBoostedTrees => {
                let text = String::from_utf8(bytes).map_err(|_| {
                    ModelError::Invalid(format!("{} is not UTF-8 text", manifest.model_file))
                })?;
                let ensemble = TreeEnsemble::from_lightgbm(&text)?;
                check_names(&manifest, ensemble.feature_names())?;
                Scorer::Trees(Box::new(ensemble))
            }
        };
        Ok(LoadedModel { manifest, scorer })
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Scores one vector of the given schema; refuses vectors of any other schema. Reasons
    /// are computed after the decision, only when `reasons` asks for them for it.
    pub fn score(
        &self,
        schema_hash: &str,
        values: &[f64],
        reasons: ReasonPolicy,
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
        let raw_score = match &self.scorer {
            Scorer::Logistic(m) => m.logit(values),
            Scorer::Trees(t) => t.raw_score(values)?,
        };
        let uncalibrated = crate::linear::sigmoid(raw_score);
        let probability = self.manifest.calibration.apply(uncalibrated);
        let decision = self.manifest.thresholds.decide(probability);
        let max_reasons = reasons.reasons_for(decision);
        let contributions = if max_reasons == 0 {
            Vec::new()
        } else {
            match &self.scorer {
                Scorer::Logistic(m) => m.contributions(values).collect(),
                Scorer::Trees(t) => {
                    let mut phi = t.contributions(values)?;
                    phi.pop(); // the expected value, not a feature
                    phi
                }
            }
        };
        let mut top: Vec<(usize, f64)> = contributions.into_iter().enumerate().collect();
        top.sort_unstable_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
        top.truncate(max_reasons);
        Ok(Scored {
            probability,
            raw_score,
            decision,
            reasons: top
                .into_iter()
                .map(|(i, c)| (self.manifest.feature_names[i].clone(), c))
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calibration::Calibrator;
    use crate::policy::Thresholds;

    fn manifest() -> Manifest {
        Manifest {
            model_id: "m".into(),
            version: "1".into(),
            schema_hash: "abc".into(),
            feature_names: vec!["a".into(), "b".into()],
            thresholds: Thresholds {
                review: 0.5,
                block: 0.9,
            },
            ..Manifest::default()
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
        write_artifact(dir.path(), manifest(), ModelFile::Logistic(&model())).unwrap();
        let loaded = LoadedModel::load(dir.path()).unwrap();
        let s = loaded
            .score("abc", &[3.0, 1.0], ReasonPolicy::always(1))
            .unwrap();
        assert_eq!(s.decision, Decision::Block);
        assert_eq!(s.reasons, vec![("a".to_string(), 6.0)]);
    }

    #[test]
    fn the_reference_sample_round_trips_and_a_tampered_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = manifest();
        let rows = [1.0, f64::NAN, -2.5, 4.0, 0.0, 1e300];
        write_reference_sample(dir.path(), &mut m, &rows).unwrap();
        write_artifact(dir.path(), m, ModelFile::Logistic(&model())).unwrap();
        let loaded = LoadedModel::load(dir.path()).unwrap();
        let back = read_reference_sample(dir.path(), loaded.manifest())
            .unwrap()
            .unwrap();
        assert_eq!(back.len(), 6);
        assert!(back[1].is_nan() && back[5] == 1e300 && back[2] == -2.5);
        // Half a row is refused before anything is written.
        let mut m = manifest();
        assert!(write_reference_sample(dir.path(), &mut m, &[1.0, 2.0, 3.0]).is_err());
        // One flipped byte: the checksum names the file (and the whole artifact is refused).
        let path = dir.path().join(REFERENCE_SAMPLE_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[0] ^= 1;
        std::fs::write(&path, bytes).unwrap();
        let written: Manifest =
            serde_json::from_slice(&std::fs::read(dir.path().join(MANIFEST_FILE)).unwrap())
                .unwrap();
        assert!(matches!(
            read_reference_sample(dir.path(), &written),
            Err(ModelError::Checksum { ref file, .. }) if file == REFERENCE_SAMPLE_FILE
        ));
        assert!(LoadedModel::load(dir.path()).is_err());
        // An artifact without a sample has none.
        let dir = tempfile::tempdir().unwrap();
        write_artifact(dir.path(), manifest(), ModelFile::Logistic(&model())).unwrap();
        let loaded = LoadedModel::load(dir.path()).unwrap();
        assert!(
            read_reference_sample(dir.path(), loaded.manifest())
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn refuses_other_schemas_and_tampered_files() {
        let dir = tempfile::tempdir().unwrap();
        write_artifact(dir.path(), manifest(), ModelFile::Logistic(&model())).unwrap();
        let loaded = LoadedModel::load(dir.path()).unwrap();
        assert!(matches!(
            loaded.score("other", &[0.0, 0.0], ReasonPolicy::NONE),
            Err(ModelError::SchemaMismatch { .. })
        ));
        assert!(matches!(
            loaded.score("abc", &[0.0], ReasonPolicy::NONE),
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

    #[test]
    fn an_edited_truncated_or_unverifiable_manifest_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        write_artifact(dir.path(), manifest(), ModelFile::Logistic(&model())).unwrap();
        let path = dir.path().join(MANIFEST_FILE);
        let original = std::fs::read(&path).unwrap();
        // `sha256sum -c` format: the digest, two spaces, the file name.
        let digest = std::fs::read_to_string(dir.path().join(MANIFEST_DIGEST_FILE)).unwrap();
        assert_eq!(
            digest,
            format!("{}  manifest.json\n", sha256_hex(&original))
        );

        // A hand edit that keeps the JSON valid (a lower block threshold).
        let edited = String::from_utf8(original.clone())
            .unwrap()
            .replace("0.9", "0.1");
        assert_ne!(edited.as_bytes(), original.as_slice());
        std::fs::write(&path, &edited).unwrap();
        let err = LoadedModel::load(dir.path()).unwrap_err();
        assert!(
            matches!(&err, ModelError::Checksum { file, .. } if file == MANIFEST_FILE),
            "{err}"
        );
        assert!(err.to_string().contains("manifest.json"), "{err}");

        std::fs::write(&path, &original[..original.len() / 2]).unwrap();
        let err = LoadedModel::load(dir.path()).unwrap_err();
        assert!(
            matches!(&err, ModelError::Checksum { file, .. } if file == MANIFEST_FILE),
            "{err}"
        );

        std::fs::write(&path, &original).unwrap();
        LoadedModel::load(dir.path()).expect("the original manifest loads again");
        std::fs::remove_file(dir.path().join(MANIFEST_DIGEST_FILE)).unwrap();
        let err = LoadedModel::load(dir.path()).unwrap_err();
        assert!(
            err.to_string().contains("manifest.json.sha256 is missing"),
            "{err}"
        );
    }

    #[test]
    fn trees_round_trip_with_calibration_and_shap_reasons() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = manifest();
        // Calibration maps the model's probability p to p/2: thresholds apply after it.
        m.calibration = Calibrator::Isotonic {
            x: vec![0.0, 1.0],
            y: vec![0.0, 0.5],
        };
        m.thresholds = Thresholds {
            review: 0.25,
            block: 0.3,
        };
        let written =
            write_artifact(dir.path(), m, ModelFile::LightGbm(crate::trees::TEST_MODEL)).unwrap();
        assert_eq!(written.kind, ModelKind::GradientBoostedTrees);
        let loaded = LoadedModel::load(dir.path()).unwrap();
        // Row (1, 0.7): raw 0.3 + 0.05 = 0.35 → p = sigmoid(0.35) ≈ 0.5866 → calibrated ≈ 0.2933.
        let s = loaded
            .score("abc", &[1.0, 0.7], ReasonPolicy::always(2))
            .unwrap();
        assert!((s.raw_score - 0.35).abs() < 1e-12);
        let p = 1.0 / (1.0 + (-0.35f64).exp());
        assert!((s.probability - p / 2.0).abs() < 1e-12, "{}", s.probability);
        assert_eq!(s.decision, Decision::Review);
        assert_eq!(s.reasons.len(), 2);
        assert_eq!(s.reasons[0].0, "a", "{:?}", s.reasons);
        // Reasons follow the decision: a REVIEW is explained from REVIEW up, not from BLOCK.
        let from = |from| ReasonPolicy { max: 2, from };
        let review = loaded
            .score("abc", &[1.0, 0.7], from(Decision::Review))
            .unwrap();
        assert_eq!(review.reasons, s.reasons);
        let block_only = loaded
            .score("abc", &[1.0, 0.7], from(Decision::Block))
            .unwrap();
        assert_eq!(
            (block_only.decision, block_only.reasons.len()),
            (Decision::Review, 0)
        );
        assert_eq!(block_only.probability, s.probability);
        // A model whose features differ from the manifest's is refused at write time.
        let mut other = manifest();
        other.feature_names = vec!["a".into(), "c".into()];
        let err = write_artifact(
            &dir.path().join("x"),
            other,
            ModelFile::LightGbm(crate::trees::TEST_MODEL),
        )
        .unwrap_err();
        assert!(err.to_string().contains("differ"), "{err}");
    }
}
