//! The live model and its hot swap: a watcher polls the registry alias and, when it moves,
//! loads and verifies the new version off the async threads, then swaps it in atomically.
//! Requests clone an `Arc` of the current model; an in-flight request finishes on the model
//! it started with.

use model::LoadedModel;
use registry::{ModelRef, Registry};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::metrics::Metrics;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The model currently served.
#[derive(Debug)]
pub struct Active {
    pub reference: ModelRef,
    pub model: LoadedModel,
}

/// Read side of the live model.
#[derive(Debug, Clone)]
pub struct ModelSlot {
    rx: watch::Receiver<Option<Arc<Active>>>,
}

impl ModelSlot {
    /// A slot holding `model` forever (tests, tools).
    pub fn fixed(active: Active) -> ModelSlot {
        let (_tx, rx) = watch::channel(Some(Arc::new(active)));
        ModelSlot { rx }
    }

    /// A slot that never gets a model (tests).
    pub fn empty() -> ModelSlot {
        let (_tx, rx) = watch::channel(None);
        ModelSlot { rx }
    }

    pub fn current(&self) -> Option<Arc<Active>> {
        self.rx.borrow().clone()
    }

    /// The model to shadow `serving` with: this slot's, when one is loaded and it is another
    /// version (a shadow of the served version would only duplicate its scores).
    pub fn shadow_of(&self, serving: &Active) -> Option<Arc<Active>> {
        self.current().filter(|s| s.reference != serving.reference)
    }

    /// Waits until a model is loaded (or `stop`); false if stopped first.
    pub async fn wait_loaded(&mut self, stop: &CancellationToken) -> bool {
        tokio::select! {
            r = self.rx.wait_for(Option::is_some) => r.is_ok(),
            () = stop.cancelled() => false,
        }
    }
}

/// The longest wait between two attempts to load a version that failed.
const MAX_LOAD_RETRY: Duration = Duration::from_secs(60);

/// A version that failed to load, and when it is tried again.
struct Failed {
    target: ModelRef,
    retry_at: Instant,
    backoff: Duration,
}

/// What the watcher does when its alias is removed (demoted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenUnset {
    /// Keep the last model (the served model: an answer beats no answer).
    Keep,
    /// Drop it (a shadow: nothing is to be evaluated any more).
    Clear,
}

/// Starts the alias watcher as a tracked task; returns the read side.
///
/// A version that fails to load (a checksum mismatch, an unreadable file) leaves the current
/// model serving. It is counted and tried again after `every`, doubling up to a minute: a
/// registry volume still being synced, or a file repaired by hand, is picked up without
/// moving the alias again.
pub fn watch_alias(
    registry: Registry,
    alias: String,
    every: Duration,
    when_unset: WhenUnset,
    metrics: &Metrics,
    tasks: &tokio_util::task::TaskTracker,
    stop: CancellationToken,
) -> ModelSlot {
    let (tx, rx) = watch::channel(None::<Arc<Active>>);
    let (swaps, load_failures) = (metrics.swaps.clone(), metrics.load_failures.clone());
    tasks.spawn(async move {
        let mut failed: Option<Failed> = None;
        loop {
            let current = tx.borrow().as_ref().map(|a| a.reference.clone());
            match registry.resolve(&alias) {
                Ok(Some(target)) if Some(&target) != current.as_ref() => {
                    let retry = failed.as_ref().filter(|f| f.target == target);
                    if retry.is_none_or(|f| Instant::now() >= f.retry_at) {
                        let backoff = retry.map_or(every, |f| (f.backoff * 2).min(MAX_LOAD_RETRY));
                        let reg = registry.clone();
                        let t = target.clone();
                        match tokio::task::spawn_blocking(move || reg.load(&t)).await {
                            Ok(Ok(model)) => {
                                tracing::info!(alias, model_id = %target.model_id, version = %target.version,
                                    previous = ?current.map(|c| c.version), "model swapped in");
                                swaps.inc();
                                failed = None;
                                let _ = tx.send(Some(Arc::new(Active { reference: target, model })));
                            }
                            Ok(Err(error)) => {
                                load_failures.inc();
                                tracing::error!(%error, alias, version = %target.version,
                                    serving = ?current.map(|c| c.version), retry_in_ms = backoff.as_millis() as u64,
                                    "cannot load model; keeping the current one");
                                failed = Some(Failed { target, retry_at: Instant::now() + backoff, backoff });
                            }
                            Err(error) => tracing::error!(%error, "model load task failed"),
                        }
                    }
                }
                Ok(None) if current.is_some() && when_unset == WhenUnset::Clear => {
                    tracing::info!(alias, previous = ?current.map(|c| c.version), "alias removed; model dropped");
                    failed = None;
                    let _ = tx.send(None);
                }
                Ok(_) => failed = None,
                Err(error) => tracing::warn!(%error, alias, "cannot resolve alias"),
            }
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = stop.cancelled() => break,
            }
        }
    });
    ModelSlot { rx }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::linear::LogisticModel;
    use model::manifest::Manifest;

    fn write(dir: &std::path::Path, version: &str) -> Result<(), registry::RegistryError> {
        let manifest = Manifest {
            model_id: "fraud".into(),
            version: version.into(),
            schema_hash: "h".into(),
            feature_names: vec!["x".into()],
            thresholds: model::Thresholds {
                review: 0.5,
                block: 0.9,
            },
            ..Manifest::default()
        };
        let m = LogisticModel {
            means: vec![0.0],
            scales: vec![1.0],
            weights: vec![1.0],
            intercept: 0.0,
        };
        model::write_artifact(dir, manifest, model::ModelFile::Logistic(&m))?;
        Ok(())
    }

    async fn eventually(what: &str, mut ok: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ok() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn a_damaged_version_keeps_the_current_model_and_is_retried_until_repaired() {
        let root = tempfile::tempdir().unwrap();
        let reg = Registry::open(root.path()).unwrap();
        let v1 = reg.register("fraud", 1, write).unwrap();
        reg.set_alias("production", &v1, "test", 1).unwrap();
        let metrics = Metrics::register(&prometheus::Registry::new()).unwrap();
        let (tasks, stop) = (
            tokio_util::task::TaskTracker::new(),
            CancellationToken::new(),
        );
        let slot = watch_alias(
            reg.clone(),
            "production".into(),
            Duration::from_millis(10),
            WhenUnset::Keep,
            &metrics,
            &tasks,
            stop.clone(),
        );
        let version = || slot.current().map(|a| a.reference.version.clone());
        eventually("v1", || version().as_deref() == Some("v1")).await;

        // v2's manifest is edited after registration, then the alias moves to it.
        let v2 = reg.register("fraud", 2, write).unwrap();
        let manifest = reg.version_dir(&v2).join(model::artifact::MANIFEST_FILE);
        let original = std::fs::read(&manifest).unwrap();
        let edited = String::from_utf8(original.clone())
            .unwrap()
            .replace("0.9", "0.1");
        std::fs::write(&manifest, edited).unwrap();
        reg.set_alias("production", &v2, "test", 2).unwrap();
        eventually("two failed loads", || metrics.load_failures.get() >= 2).await;
        assert_eq!(
            version().as_deref(),
            Some("v1"),
            "the previous model keeps serving"
        );

        // Repaired in place: picked up without another alias move.
        std::fs::write(&manifest, original).unwrap();
        eventually("v2", || version().as_deref() == Some("v2")).await;
        assert_eq!(metrics.swaps.get(), 2);
        stop.cancel();
    }

    #[tokio::test]
    async fn a_removed_alias_drops_a_shadow_but_the_served_model_stays() {
        let root = tempfile::tempdir().unwrap();
        let reg = Registry::open(root.path()).unwrap();
        let v1 = reg.register("fraud", 1, write).unwrap();
        let v2 = reg.register("fraud", 2, write).unwrap();
        reg.set_alias("production", &v1, "test", 1).unwrap();
        reg.set_alias("candidate", &v2, "test", 1).unwrap();
        let metrics = Metrics::register(&prometheus::Registry::new()).unwrap();
        let (tasks, stop) = (
            tokio_util::task::TaskTracker::new(),
            CancellationToken::new(),
        );
        let watch = |alias: &str, when_unset| {
            watch_alias(
                reg.clone(),
                alias.into(),
                Duration::from_millis(10),
                when_unset,
                &metrics,
                &tasks,
                stop.clone(),
            )
        };
        let serving = watch("production", WhenUnset::Keep);
        let shadow = watch("candidate", WhenUnset::Clear);
        eventually("both loaded", || {
            serving.current().is_some() && shadow.current().is_some()
        })
        .await;
        let served = serving.current().unwrap();
        assert_eq!(shadow.shadow_of(&served).unwrap().reference, v2);
        reg.remove_alias("candidate", "rejected by the gate", 2)
            .unwrap();
        reg.remove_alias("production", "incident", 2).unwrap();
        eventually("the shadow dropped", || shadow.current().is_none()).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            serving.current().map(|a| a.reference.clone()),
            Some(v1.clone()),
            "the served model is kept"
        );
        // A shadow of the served version itself is no shadow.
        reg.set_alias("candidate", &v1, "test", 3).unwrap();
        eventually("v1 as candidate", || shadow.current().is_some()).await;
        assert!(shadow.shadow_of(&served).is_none());
        stop.cancel();
    }
}
