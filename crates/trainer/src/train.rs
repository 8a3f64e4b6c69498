//! One training job: a generic training set → `learn::pipeline` → an artifact with its
//! report in the registry, and the promotion gate.

use learn::pipeline::TrainConfig;
use model::ModelFile;
use registry::{ModelRef, Registry};
use std::collections::BTreeMap;
use std::path::Path;
use trainset::TrainingSet;

/// Why a job failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Trainset(#[from] trainset::TrainsetError),
    #[error(transparent)]
    Learn(#[from] learn::LearnError),
    #[error(transparent)]
    Report(#[from] report::ReportError),
    #[error(transparent)]
    Registry(#[from] registry::RegistryError),
    #[error(transparent)]
    Model(#[from] model::ModelError),
    #[error("{0}")]
    Task(String),
}

/// Promotion gate: the alias moves only when the calibrated test ROC-AUC reaches this and
/// is not more than [`MAX_AUC_REGRESSION`] below the model currently holding the alias.
pub const MIN_TEST_AUC: f64 = 0.6;
pub const MAX_AUC_REGRESSION: f64 = 0.01;

/// The result of a training job.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    pub model: ModelRef,
    pub metrics: BTreeMap<String, f64>,
    /// The alias moved to the new version, if the gate passed.
    pub promoted_to: Option<String>,
    /// Why the gate did not pass, if it did not.
    pub gate: Option<String>,
    pub warnings: Vec<String>,
    pub rows: u64,
    pub report: String,
}

/// The feature schema a set's vectors follow: Vigil's own (`features` crate) when the set
/// has exactly its features in order, else a hash of the set's names and types.
fn schema_of(set: &TrainingSet) -> (String, String) {
    let names = set.feature_names();
    let ours: Vec<&str> = features::FEATURES.iter().map(|f| f.name).collect();
    if names == ours {
        return (
            features::schema_hash().into(),
            features::FEATURE_SET_VERSION.into(),
        );
    }
    let mut h = sha2::Sha256::default();
    for (n, t) in names.iter().zip(set.feature_types()) {
        sha2::Digest::update(&mut h, format!("{n}:{};", t.as_str()).as_bytes());
    }
    (
        hex::encode(sha2::Digest::finalize(h)),
        set.name().to_owned(),
    )
}

/// The leakage rule on label cut-offs. A set whose labels are cut off after the training
/// time holds labels nobody could have known: refused. A set without a cut-off may hold labels
/// reported after its own rows' windows: the model is registered, flagged, and never promoted
/// (the returned warning is the gate's reason).
fn label_cutoff_check(
    labels_as_of_ms: Option<i64>,
    now_ms: i64,
) -> Result<Option<String>, TrainError> {
    match labels_as_of_ms {
        Some(cutoff) if cutoff > now_ms => Err(TrainError::Task(format!(
            "the training set's labels are cut off at {cutoff} ms, after the training time {now_ms} ms: \
             it holds labels reported after the model is trained (label leakage); rebuild it as of the training time"
        ))),
        Some(_) => Ok(None),
        None => Ok(Some(
            "the training set has no label cut-off (trainset.json `labels_as_of_ms`): labels reported \
             after its windows may have leaked into training; not promoted"
                .into(),
        )),
    }
}

/// Trains on the set at `manifest_path`, registers the artifact (model, manifest, report;
/// `trigger` recorded as `params.trigger`) and moves `promote_to` when the gate passes. Blocking: run it off the async runtime.
pub fn train_set(
    manifest_path: &Path,
    registry: &Registry,
    config: &TrainConfig,
    promote_to: Option<&str>,
    trigger: Option<&str>,
    now_ms: i64,
) -> Result<Outcome, TrainError> {
    let started = std::time::Instant::now();
    let mut set = TrainingSet::load(manifest_path)?;
    tracing::info!(
        rows = set.len(),
        fraud = set.positives(),
        set = set.name(),
        elapsed_s = started.elapsed().as_secs_f64(),
        "[1/4] training set loaded"
    );
    let (schema_hash, feature_set_version) = schema_of(&set);
    let label_cutoff = label_cutoff_check(set.manifest().labels_as_of_ms, now_ms)?;
    let previous = match promote_to {
        Some(alias) => match registry.resolve(alias)? {
            Some(r) => Some(registry.load(&r)?.manifest().clone()),
            None => None,
        },
        None => None,
    };
    let reservation = registry.reserve_version(&config.model_id)?;
    let (dir, version) = (reservation.dir(), reservation.model().version.as_str());
    tracing::info!(
        version,
        "[2/4] training (CV, LightGBM, logistic baseline, calibration)"
    );
    let mut t = learn::pipeline::train(
        &mut set,
        config,
        &schema_hash,
        &feature_set_version,
        version,
        now_ms,
    )?;
    if let Some(w) = &label_cutoff {
        t.manifest.warnings.push(w.clone());
    }
    // Lineage: why this version exists (a drift report's verdict, a schedule).
    if let Some(trigger) = trigger {
        t.manifest
            .params
            .insert("trigger".into(), serde_json::Value::String(trigger.into()));
    }
    tracing::info!(
        trees = t.gbdt.iterations,
        seconds = t.gbdt.train_time.as_secs_f64(),
        elapsed_s = started.elapsed().as_secs_f64(),
        "[3/4] trained; writing artifact and report"
    );
    let mut manifest = t.manifest.clone();
    model::write_reference_sample(dir, &mut manifest, &t.reference_sample)?;
    model::write_artifact(dir, manifest, ModelFile::LightGbm(&t.gbdt.text))?;
    let input = crate::reporting::input(&t, previous.as_ref(), &set, config);
    let files = report::write_report(
        &dir.join("report"),
        &input,
        &report::ReportOptions::default(),
    )?;
    // The reservation's directory is renamed on publishing: keep the path relative to it.
    let report_path = files
        .report_md
        .strip_prefix(dir)
        .unwrap_or(&files.report_md)
        .to_path_buf();
    let model = registry.publish(reservation, now_ms)?;
    let metrics = t.manifest.metrics.clone();
    let auc = metrics.get("test_roc_auc").copied().unwrap_or(0.0);
    let gate = if let Some(w) = label_cutoff {
        Some(w)
    } else if auc < MIN_TEST_AUC {
        Some(format!("test ROC-AUC {auc:.4} < {MIN_TEST_AUC}"))
    } else {
        previous.as_ref().and_then(|p| p.metrics.get("test_roc_auc")).and_then(|prev| {
            (auc < prev - MAX_AUC_REGRESSION).then(|| format!("test ROC-AUC {auc:.4} is more than {MAX_AUC_REGRESSION} below the current model's {prev:.4}"))
        })
    };
    let promoted_to = match (promote_to, &gate) {
        (Some(alias), None) => {
            let reason = format!(
                "trainer: gate passed (test ROC-AUC {auc:.4}, at least {MIN_TEST_AUC} and within {MAX_AUC_REGRESSION} of the previous model)"
            );
            registry.set_alias(alias, &model, &reason, now_ms)?;
            Some(alias.to_owned())
        }
        (Some(alias), Some(why)) => {
            tracing::warn!(alias, why, "promotion gate failed: alias not moved");
            None
        }
        (None, _) => None,
    };
    let report_path = registry
        .version_dir(&model)
        .join(report_path)
        .display()
        .to_string();
    tracing::info!(version = %model.version, ?promoted_to, elapsed_s = started.elapsed().as_secs_f64(), report = %report_path, "[4/4] registered");
    Ok(Outcome {
        model,
        metrics,
        promoted_to,
        gate,
        warnings: t.manifest.warnings.clone(),
        rows: set.len() as u64,
        report: report_path,
    })
}

#[cfg(test)]
mod leak_tests {
    use super::*;

    #[test]
    fn a_future_label_cutoff_is_refused_and_a_missing_one_flagged() {
        let err = label_cutoff_check(Some(2_000), 1_000).unwrap_err();
        assert!(err.to_string().contains("label leakage"), "{err}");
        assert_eq!(label_cutoff_check(Some(1_000), 1_000).unwrap(), None);
        let flag = label_cutoff_check(None, 1_000).unwrap().unwrap();
        assert!(flag.contains("no label cut-off"), "{flag}");
    }
}
