//! The ingest service: the front door of Vigil.
//!
//! `IngestService` validates transactions into domain values (errors name the field),
//! de-duplicates them by transaction id (within the request, then against Redis), publishes the
//! new ones to `vigil.transactions.v1` keyed by user id with an idempotent producer, and answers
//! only after Kafka acknowledged them. Rejected records also go to `vigil.quarantine.v1` with
//! the reason, so that nothing a client sent disappears silently. Labels go to
//! `vigil.labels.v1`.
//!
//! * [`intake`] — the core, with no transport in it: `submit`, `accept` (a batch),
//!   `submit_labels`, `submit_profiles` over the contract's messages, failing with an
//!   `IngestError` (missing or invalid field, batch too large, id in flight, Kafka, Redis).
//! * [`grpc`] — the `IngestService` adapter: unwraps requests, calls the core per request (per
//!   chunk of `SubmitStream`), and holds the one mapping from `IngestError` to `tonic::Status`.
//!   Another transport (a file-drop reader) calls the same core.
//!
//! Duplicate markers are written *after* the publish is acknowledged: a crash in between can
//! let a retried transaction through twice, and the feature-service's state is idempotent on
//! the transaction id, so the duplicate changes nothing downstream.

mod config;
mod grpc;
mod intake;
mod metrics;

pub use config::Config;

use bus::{Producer, topics};
use online_store::OnlineStore;
use proto::v1::ingest_service_server::IngestServiceServer;
use service_runtime::Context;

/// Errors that stop the service.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Bus(#[from] bus::BusError),
    #[error(transparent)]
    Store(#[from] online_store::StoreError),
    #[error(transparent)]
    Serve(#[from] service_runtime::grpc::ServeError),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// Runs the service until shutdown.
pub async fn run(cfg: Config, ctx: Context) -> Result<(), Error> {
    bus::admin::ensure_topics(
        &cfg.kafka,
        &[topics::TRANSACTIONS, topics::LABELS, topics::QUARANTINE],
    )
    .await?;
    let producer = Producer::new(&cfg.kafka, "vigil-ingest")?;
    let store = OnlineStore::connect(&cfg.redis).await?;
    let metrics = metrics::Metrics::register(&ctx.metrics)?;
    // Ingest has no consumer loop to notice an outage: probe what every request needs.
    let every = std::time::Duration::from_secs(1);
    let stop = ctx.shutdown.stop_intake.clone();
    let probe_store = store.clone();
    ctx.shutdown.tasks.spawn(service_runtime::admin::probe(
        ctx.readiness.component("redis"),
        every,
        3,
        move || {
            let store = probe_store.clone();
            async move { store.ping().await }
        },
        stop.clone(),
    ));
    let probe_producer = producer.clone();
    ctx.shutdown.tasks.spawn(service_runtime::admin::probe(
        ctx.readiness.component("kafka"),
        every,
        3,
        move || {
            let producer = probe_producer.clone();
            async move { producer.ping(topics::TRANSACTIONS, every).await }
        },
        stop,
    ));
    let intake = intake::Intake::new(producer, store.clone(), cfg.ingest.clone(), metrics);
    let mut routes = tonic::service::RoutesBuilder::default();
    routes.add_service(
        IngestServiceServer::new(grpc::Grpc(intake))
            .max_decoding_message_size(cfg.server.max_message_bytes),
    );
    service_runtime::grpc::serve_service(
        ctx.grpc,
        &cfg.server,
        routes,
        &["vigil.v1.IngestService"],
        &ctx.readiness,
        true,
        ctx.shutdown.stop_intake.clone(),
    )
    .await?;
    // In-flight requests have finished (each awaited its Kafka acks): nothing left to flush.
    store.quit().await?;
    Ok(())
}
