//! Graceful shutdown: one [`CancellationToken`] per stage, a [`TaskTracker`] for every spawned
//! task, and a deadline. The order (stop intake → drain → stop servers → flush telemetry) is the
//! caller's; this module makes each step observable and bounded.

use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Shutdown coordination shared by a service's tasks.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    /// Cancelled when the service must stop taking new work.
    pub stop_intake: CancellationToken,
    /// Every long-running task of the service.
    pub tasks: TaskTracker,
}

impl Shutdown {
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels intake on SIGTERM or Ctrl-C.
    pub fn cancel_on_signal(&self) {
        let token = self.stop_intake.clone();
        self.tasks.spawn(async move {
            tokio::select! {
                () = wait_for_signal() => token.cancel(),
                () = token.cancelled() => {}
            }
        });
    }

    /// Waits (at most `deadline`) for every tracked task to finish after intake stopped.
    /// Returns false when the deadline passed with tasks still running.
    pub async fn drain(&self, deadline: Duration) -> bool {
        self.tasks.close();
        tokio::time::timeout(deadline, self.tasks.wait())
            .await
            .is_ok()
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM received"),
                    _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot install SIGTERM handler; only Ctrl-C stops the service");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
