//! The feature-service: Vigil's feature store.
//!
//! Three parts run in one process, each in its own tracked task:
//! * the **speed layer** ([`speed`]) consumes `vigil.transactions.v1`, `vigil.labels.v1` and
//!   `vigil.profiles.v1`, computes each event's vector as of just before it with the
//!   `features` engine, publishes it on `vigil.features.v1`, and folds the event into its
//!   user's and merchant's state in Redis (labels into the merchant's fraud-report counters,
//!   profile versions into the user's profile history) — states, merchant increments and the
//!   consumer's next offsets are committed in one Redis transaction, and a redelivered offset
//!   below the stored one is skipped, so a crash or restart neither loses nor double-counts a
//!   transaction, a label or a profile;
//! * the **lake writer** ([`lake_writer`]) appends transactions, labels and profile versions
//!   to the date-partitioned Parquet lake, idempotently (the lake keeps its own commit
//!   markers);
//! * the **read API**: [`lookup`] is its core, with no transport in it — `vector` (read-only,
//!   "as of now", the event time bounded by the server clock) and `online_features`, failing
//!   with a `LookupError`; [`grpc`] is the `FeatureService` adapter (`GetFeatureVector`,
//!   `GetOnlineFeatures`) and holds the one mapping from `LookupError` to `tonic::Status`.
//!
//! Shutdown: stop intake → the loops finish and commit their current batch → the server stops.

mod config;
mod grpc;
mod lake_writer;
mod lookup;
pub mod materialize;
mod metrics;
mod speed;

pub use config::{Config, LakeConfig, Settings};

use online_store::OnlineStore;
use proto::v1::feature_service_server::FeatureServiceServer;
use service_runtime::Context;
use std::sync::Arc;

/// Errors that stop the service.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Bus(#[from] bus::BusError),
    #[error(transparent)]
    Store(#[from] online_store::StoreError),
    #[error(transparent)]
    Lake(#[from] lake::LakeError),
    #[error(transparent)]
    Serve(#[from] service_runtime::grpc::ServeError),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// Runs the service until shutdown.
pub async fn run(cfg: Config, ctx: Context) -> Result<(), Error> {
    use bus::topics;
    bus::admin::ensure_topics(
        &cfg.kafka,
        &[
            topics::TRANSACTIONS,
            topics::FEATURES,
            topics::LABELS,
            topics::PROFILES,
            topics::QUARANTINE,
        ],
    )
    .await?;
    let metrics = metrics::Metrics::register(&ctx.metrics)?;
    let store = OnlineStore::connect(&cfg.redis).await?;
    let lake = Arc::new(lake::LakeWriter::open(cfg.lake.path.clone())?);
    let producer = bus::Producer::new(&cfg.kafka, "vigil-feature-service")?;

    let loops = bus::LoopMetrics::register(&ctx.metrics)?;
    let speed = speed::SpeedLayer::new(&cfg, store.clone(), producer.clone(), metrics.clone())?;
    let (stop, health, l) = (
        ctx.shutdown.stop_intake.clone(),
        ctx.readiness.component("speed-layer"),
        loops.clone(),
    );
    ctx.shutdown
        .tasks
        .spawn(async move { speed.run(health, &l, stop).await });
    let writer = lake_writer::LakeWriterLoop::new(&cfg, lake, producer, metrics.clone())?;
    let (stop, health) = (
        ctx.shutdown.stop_intake.clone(),
        ctx.readiness.component("lake-writer"),
    );
    ctx.shutdown
        .tasks
        .spawn(async move { writer.run(health, &loops, stop).await });

    let mut routes = tonic::service::RoutesBuilder::default();
    routes.add_service(
        FeatureServiceServer::new(grpc::Grpc(lookup::Lookup::new(
            store.clone(),
            cfg.feature_service.max_future_skew_ms,
        )))
        .max_decoding_message_size(cfg.server.max_message_bytes),
    );
    service_runtime::grpc::serve_service(
        ctx.grpc,
        &cfg.server,
        routes,
        &["vigil.v1.FeatureService"],
        &ctx.readiness,
        true,
        ctx.shutdown.stop_intake.clone(),
    )
    .await?;
    Ok(())
}
