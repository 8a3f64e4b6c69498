//! The live model and its hot swap: a watcher polls the registry alias and, when it moves,
//! loads and verifies the new version off the async threads, then swaps it in atomically.
//! Requests clone an `Arc` of the current model; an in-flight request finishes on the model
//! it started with.

use model::LoadedModel;
use registry::{ModelRef, Registry};
use std::sync::Arc;
use std::time::Duration;
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

    pub fn current(&self) -> Option<Arc<Active>> {
        self.rx.borrow().clone()
    }

    /// Waits until a model is loaded (or `stop`); false if stopped first.
    pub async fn wait_loaded(&mut self, stop: &CancellationToken) -> bool {
        tokio::select! {
            r = self.rx.wait_for(Option::is_some) => r.is_ok(),
            () = stop.cancelled() => false,
        }
    }
}

/// Starts the alias watcher as a tracked task; returns the read side.
pub fn watch_alias(
    registry: Registry,
    alias: String,
    every: Duration,
    swaps: prometheus::IntCounter,
    tasks: &tokio_util::task::TaskTracker,
    stop: CancellationToken,
) -> ModelSlot {
    let (tx, rx) = watch::channel(None::<Arc<Active>>);
    tasks.spawn(async move {
        let mut failed: Option<ModelRef> = None;
        loop {
            let current = tx.borrow().as_ref().map(|a| a.reference.clone());
            match registry.resolve(&alias) {
                Ok(Some(target)) if Some(&target) != current.as_ref() && Some(&target) != failed.as_ref() => {
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
                            tracing::error!(%error, alias, version = %target.version, "cannot load model; keeping the current one");
                            failed = Some(target);
                        }
                        Err(error) => tracing::error!(%error, "model load task failed"),
                    }
                }
                Ok(_) => {}
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
