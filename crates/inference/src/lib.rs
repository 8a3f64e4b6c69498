//! The inference service: scores transactions with the model behind a registry alias.
//!
//! * [`scoring`] — the core of `Score`/`ScoreBatch`, with no transport in it: validate, ask a
//!   [`source::FeatureSource`] for the vector (degraded request-time fallback when it fails),
//!   score, decide; a batch's items concurrently. It fails with a `ScoringError`, which also
//!   says whether a batch item's failure is its own (reported by index) or fails the call.
//! * [`grpc`] — the `InferenceService` adapter: unwraps requests, calls the core and holds the
//!   one mapping from `ScoringError` to a gRPC code (a failed call's `Status` and the `code`
//!   of a batch item's `ScoreError` alike). Another transport (a KServe V2 endpoint) calls the
//!   same core.
//! * [`stream`] — scores every vector on `vigil.features.v1` and publishes `vigil.scores.v1`.
//! * [`slot`] — the live model and its hot swap when the alias moves.
//!
//! Architecture invariant: the model refuses vectors of another feature schema
//! (`model::LoadedModel::score`), on both paths.

mod config;
pub mod grpc;
pub mod metrics;
pub mod publish;
pub mod scoring;
pub mod slot;
pub mod source;
mod stream;

pub use config::Config;

use proto::v1::inference_service_server::InferenceServiceServer;
use service_runtime::Context;
use std::sync::Arc;
use std::time::Duration;

/// Errors that stop the service.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Bus(#[from] bus::BusError),
    #[error(transparent)]
    Source(#[from] source::SourceError),
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
        &[topics::FEATURES, topics::SCORES, topics::QUARANTINE],
    )
    .await?;
    let metrics = metrics::Metrics::register(&ctx.metrics)?;
    let s = &cfg.inference;
    let registry = registry::Registry::open_existing(cfg.registry.path.clone());
    let slot = slot::watch_alias(
        registry.clone(),
        s.model_alias.clone(),
        Duration::from_millis(s.poll_interval_ms),
        slot::WhenUnset::Keep,
        &metrics,
        &ctx.shutdown.tasks,
        ctx.shutdown.stop_intake.clone(),
    );
    let shadow = s.shadow_alias.as_ref().map(|alias| {
        slot::watch_alias(
            registry.clone(),
            alias.clone(),
            Duration::from_millis(s.poll_interval_ms),
            slot::WhenUnset::Clear,
            &metrics,
            &ctx.shutdown.tasks,
            ctx.shutdown.stop_intake.clone(),
        )
    });
    let stream = stream::StreamScorer {
        consumer: bus::Consumer::new(&cfg.kafka, &s.consumer_group, &[topics::FEATURES])?,
        producer: bus::Producer::new(&cfg.kafka, "vigil-inference")?,
        slot: slot.clone(),
        shadow: shadow.clone(),
        metrics: metrics.clone(),
        batch_max: s.batch_max,
        linger: Duration::from_millis(s.linger_ms),
        reasons: s.reasons,
        retry: cfg.kafka.retry,
    };
    ctx.shutdown.tasks.spawn(stream.run(
        ctx.readiness.component("stream-scoring"),
        bus::LoopMetrics::register(&ctx.metrics)?,
        ctx.shutdown.stop_intake.clone(),
    ));

    let f = &cfg.features;
    let source = source::BreakerSource::new(
        source::GrpcFeatureSource::new(
            &f.endpoint,
            Duration::from_millis(f.timeout_ms),
            &f.security,
        )?,
        f.breaker_failures,
        Duration::from_millis(f.breaker_open_ms),
        Duration::from_millis(f.breaker_max_open_ms),
        metrics::breaker_metrics(&ctx.metrics)?,
    );
    let mut scorer =
        scoring::Scorer::new(Arc::new(source), slot.clone(), metrics.clone(), s.reasons);
    if let Some(shadow) = shadow {
        scorer = scorer.with_shadow(shadow);
    }
    if s.publish_request_scores {
        scorer = scorer.with_sink(Arc::new(publish::TopicSink::start(
            bus::Producer::new(&cfg.kafka, "vigil-inference-requests")?,
            s.publish_queue,
            metrics,
            &ctx.shutdown.tasks,
            ctx.shutdown.stop_intake.clone(),
        )));
    }
    let mut routes = tonic::service::RoutesBuilder::default();
    routes.add_service(
        InferenceServiceServer::new(grpc::Grpc(scorer))
            .max_decoding_message_size(cfg.server.max_message_bytes),
    );
    // Ready once a model is loaded.
    let (readiness, stop, mut ready_slot) = (
        ctx.readiness.clone(),
        ctx.shutdown.stop_intake.clone(),
        slot,
    );
    ctx.shutdown.tasks.spawn(async move {
        if ready_slot.wait_loaded(&stop).await {
            readiness.set(true);
            tracing::info!("inference ready");
        }
    });
    service_runtime::grpc::serve_service(
        ctx.grpc,
        &cfg.server,
        routes,
        &["vigil.v1.InferenceService"],
        &ctx.readiness,
        false,
        ctx.shutdown.stop_intake.clone(),
    )
    .await?;
    Ok(())
}
