//! The drift monitor: compares the live distribution of scores with the reference profile in
//! the served model's manifest (population stability index over the manifest's bins).
//!
//! It consumes `vigil.scores.v1` and `vigil.features.v1`, keeps sliding windows of the last N
//! distinct scores of the model version currently behind the alias and of the last N vectors
//! of its schema ([`window`]), serves the report (score PSI, and every profiled feature's PSI
//! against the manifest's reference profiles) by `DriftService.GetReport`, exports the score
//! PSI as the `drift_score_psi` gauge, and publishes the report on `vigil.drift.v1` at a
//! fixed interval.
//!
//! With `[rollout] enabled`, it also consumes `vigil.labels.v1` and runs the shadow gate,
//! the promotion and the roll-back after a regression ([`rollout`], [`gate`]).

pub mod gate;
pub mod retrain;
pub mod rollout;
pub mod window;

use bus::{Consumer, Producer, topics};
use model::reference::Histogram;
use proto::v1::drift_service_server::{DriftService, DriftServiceServer};
use proto::v1::{
    DriftReport, DriftStatus, FeatureDrift, FeatureVector, GetReportRequest, Label, ScoreEvent,
};
use registry::Registry;
use rollout::{Ledger, RolloutSettings, SharedLedger};
use serde::Deserialize;
use service_runtime::clock::now_ms;
use service_runtime::telemetry::TelemetryConfig;
use service_runtime::{ConfigError, Context, ServerConfig, ServiceConfig};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use window::{FeatureWindow, ScoreWindow, Thresholds};

/// The drift monitor's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub kafka: bus::KafkaConfig,
    pub registry: RegistrySection,
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    #[serde(default)]
    pub drift: Settings,
    #[serde(default)]
    pub rollout: RolloutSettings,
    #[serde(default)]
    pub retrain: retrain::RetrainSettings,
}

/// The `registry` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrySection {
    pub path: PathBuf,
}

/// The `drift` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub model_alias: String,
    pub consumer_group: String,
    /// Live scores in the window.
    pub window: usize,
    pub min_count: usize,
    pub psi_warn: f64,
    pub psi_alert: f64,
    pub publish_interval_secs: u64,
    pub poll_interval_ms: u64,
    /// Which test judges each feature against the artifact's reference sample:
    /// `"vigil"` (the default) or `"evidently"` (Evidently's default choice, reproduced).
    pub policy: drift::Policy,
    /// Dataset drift when at least this share of the tested features drifted.
    pub dataset_share: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            model_alias: registry::stages::PRODUCTION.into(),
            consumer_group: "vigil-drift-monitor".into(),
            window: 5_000,
            min_count: 200,
            psi_warn: 0.1,
            psi_alert: 0.25,
            publish_interval_secs: 10,
            poll_interval_ms: 1_000,
            policy: drift::Policy::Vigil,
            dataset_share: drift::policy::DEFAULT_DATASET_SHARE,
        }
    }
}

impl ServiceConfig for Config {
    const SECTIONS: &'static [&'static str] = &[
        "server",
        "kafka",
        "registry",
        "telemetry",
        "drift",
        "rollout",
        "retrain",
    ];
    fn server(&self) -> &ServerConfig {
        &self.server
    }
    fn telemetry(&self) -> &TelemetryConfig {
        &self.telemetry
    }
    fn validate(&self) -> Result<(), ConfigError> {
        self.kafka.security.validate()?;
        let d = &self.drift;
        if !(0.0 < d.psi_warn && d.psi_warn <= d.psi_alert) {
            return Err(ConfigError::invalid(
                "drift.psi_warn",
                "must be positive and at most drift.psi_alert",
            ));
        }
        if !(d.dataset_share > 0.0 && d.dataset_share <= 1.0) {
            return Err(ConfigError::invalid(
                "drift.dataset_share",
                "must be in (0, 1]",
            ));
        }
        if d.window == 0 {
            return Err(ConfigError::invalid("drift.window", "must be at least 1"));
        }
        let t = &self.retrain;
        if t.enabled {
            if !(t.trainer_endpoint.starts_with("http://")
                || t.trainer_endpoint.starts_with("https://"))
            {
                return Err(ConfigError::invalid(
                    "retrain.trainer_endpoint",
                    "must be an http:// or https:// URL",
                ));
            }
            if t.sustained_reports == 0 {
                return Err(ConfigError::invalid(
                    "retrain.sustained_reports",
                    "must be at least 1",
                ));
            }
            if registry::check_name(&t.promote_to).is_err() {
                return Err(ConfigError::invalid(
                    "retrain.promote_to",
                    "must be an alias name (letters, digits, '-', '_', '.')",
                ));
            }
        }
        let r = &self.rollout;
        if r.enabled {
            r.gate
                .validate()
                .map_err(|(field, why)| ConfigError::invalid(field, why))?;
            if r.promote_to.is_empty() || r.promote_to.contains(&r.candidate_alias) {
                return Err(ConfigError::invalid(
                    "rollout.promote_to",
                    "must name at least one alias, and not rollout.candidate_alias",
                ));
            }
        }
        Ok(())
    }
}

/// Errors that stop the service.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Bus(#[from] bus::BusError),
    #[error(transparent)]
    Serve(#[from] service_runtime::grpc::ServeError),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error(transparent)]
    Config(service_runtime::ConfigError),
}

/// The windows of the model version behind the alias.
struct Windows {
    scores: ScoreWindow,
    features: FeatureWindow,
}

type Shared = Arc<Mutex<Option<Windows>>>;

struct Api {
    window: Shared,
    thresholds: Thresholds,
    tests: TestSettings,
}

/// How features are tested (from [`Settings`]).
#[derive(Debug, Clone, Copy)]
struct TestSettings {
    policy: drift::Policy,
    dataset_share: f64,
    min_count: usize,
}

/// The wire form of a policy's name.
fn policy_name(p: drift::Policy) -> &'static str {
    match p {
        drift::Policy::Vigil => "vigil",
        drift::Policy::Evidently => "evidently",
    }
}

/// The wire form of a test's name (its serde name: `ks`, `wasserstein_robust`, …).
fn test_name(t: drift::StatTest) -> String {
    serde_json::to_value(t)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{t:?}"))
}

/// Every feature of the model: its PSI over the profile and, with a reference sample, its
/// test; without one, only the profiled features with a PSI (as before samples were kept).
fn features_to_proto(
    psi: &[window::FeatureDrift],
    tests: Option<&window::FeatureTests>,
) -> Vec<FeatureDrift> {
    let psi_of = |name: &str| psi.iter().find(|f| f.name == name).and_then(|f| f.psi);
    let Some(tests) = tests else {
        return psi
            .iter()
            .filter_map(|f| {
                Some(FeatureDrift {
                    name: f.name.clone(),
                    psi: f.psi?,
                    ..FeatureDrift::default()
                })
            })
            .collect();
    };
    tests
        .features
        .iter()
        .map(|(name, verdict)| {
            let mut f = FeatureDrift {
                name: name.clone(),
                psi: psi_of(name).unwrap_or(0.0),
                ..FeatureDrift::default()
            };
            match verdict {
                Ok(d) => {
                    f.test = test_name(d.test);
                    f.score = d.score;
                    f.threshold = d.threshold;
                    f.drifted = d.drifted;
                    f.reference_count = d.reference_size as u64;
                    f.live_count = d.current_size as u64;
                    f.reference_missing_share = d.reference_missing_share;
                    f.live_missing_share = d.current_missing_share;
                }
                Err(why) => f.error = why.clone(),
            }
            f
        })
        .collect()
}

fn to_proto(
    report: &window::Report,
    features: &[window::FeatureDrift],
    tests: Option<&window::FeatureTests>,
    n: usize,
) -> DriftReport {
    let hist = |h: &Histogram| h.proportions();
    DriftReport {
        model_version: report.model_version.clone(),
        score_psi: report.psi.unwrap_or(0.0),
        live_count: report.live.total(),
        reference_count: report.reference.total(),
        status: match report.status {
            window::Status::Ok => DriftStatus::Ok,
            window::Status::Warn => DriftStatus::Warn,
            window::Status::Alert => DriftStatus::Alert,
            window::Status::InsufficientData => DriftStatus::InsufficientData,
        } as i32,
        generated_at: Some(proto::time::from_unix_ms(now_ms())),
        live_histogram: hist(&report.live),
        reference_histogram: hist(&report.reference),
        features: features_to_proto(features, tests),
        feature_live_count: n as u64,
        policy: tests
            .map(|t| policy_name(t.policy).to_owned())
            .unwrap_or_default(),
        tested_features: tests.map_or(0, |t| t.dataset.columns as u32),
        drifted_features: tests.map_or(0, |t| t.dataset.drifted_columns as u32),
        dataset_drift: tests.is_some_and(|t| t.dataset.drifted),
        dataset_share: tests.map_or(0.0, |t| t.dataset_share),
        severity: retrain::severity(
            report.status,
            tests.map_or(0, |t| t.dataset.columns as u32),
            tests.map_or(0, |t| t.dataset.drifted_columns as u32),
            tests.map_or(1.0, |t| t.dataset_share),
        )
        .unwrap_or(proto::v1::DriftSeverity::Unspecified) as i32,
    }
}

/// The score report, and the wire report with the feature drift. The tests run on the
/// blocking pool (a report of 50 features over a 5 000-vector window sorts 250 000 values).
async fn current_report(
    window: &Shared,
    t: &Thresholds,
    s: TestSettings,
) -> Option<(window::Report, DriftReport)> {
    let window = window.clone();
    let t = *t;
    tokio::task::spawn_blocking(move || {
        // The lock is held only to copy the window out: the consumers wait on it, the tests
        // (sorting every column) run after it is released.
        let (report, psi, snapshot, n) = {
            let guard = window.lock().ok()?;
            let w = guard.as_ref()?;
            (
                w.scores.report(&t),
                w.features.report(),
                w.features.snapshot(s.min_count),
                w.features.len(),
            )
        };
        let tests = snapshot.map(|snap| snap.tests(s.policy, s.dataset_share));
        let wire = to_proto(&report, &psi, tests.as_ref(), n);
        Some((report, wire))
    })
    .await
    .unwrap_or_else(|error| {
        tracing::error!(%error, "the drift report task failed");
        None
    })
}

#[tonic::async_trait]
impl DriftService for Api {
    async fn get_report(
        &self,
        _: Request<GetReportRequest>,
    ) -> Result<Response<DriftReport>, Status> {
        current_report(&self.window, &self.thresholds, self.tests)
            .await
            .map(|(_, wire)| Response::new(wire))
            .ok_or_else(|| {
                Status::unavailable("no model behind the alias yet: nothing to compare with")
            })
    }
}

/// Keeps the window's reference in step with the alias: a new model version starts a new
/// window, filled at once from the tails of the scores and features topics ([`warm_up`]).
async fn follow_alias(
    registry: Registry,
    kafka: bus::KafkaConfig,
    settings: Settings,
    window: Shared,
    stop: CancellationToken,
) {
    loop {
        let current = window
            .lock()
            .ok()
            .and_then(|w| w.as_ref().map(|w| w.scores.model_version().to_owned()));
        match registry.resolve(&settings.model_alias) {
            Ok(Some(target)) if Some(&target.version) != current.as_ref() => {
                let reg = registry.clone();
                let t = target.clone();
                let load = move || {
                    let model = reg.load(&t)?;
                    let sample =
                        model::read_reference_sample(&reg.version_dir(&t), model.manifest());
                    Ok::<_, registry::RegistryError>((model, sample))
                };
                match tokio::task::spawn_blocking(load).await {
                    Ok(Ok((model, sample))) => {
                        let m = model.manifest();
                        let mut features = FeatureWindow::new(
                            m.schema_hash.clone(),
                            &m.feature_names,
                            &m.reference_features,
                            settings.window,
                        );
                        match sample {
                            Ok(Some(rows)) => {
                                let kinds: Vec<drift::Kind> = (0..m.feature_names.len())
                                    .map(|j| match m.feature_types.get(j) {
                                        Some(model::manifest::FeatureType::Categorical) => {
                                            drift::Kind::Categorical
                                        }
                                        _ => drift::Kind::Numeric,
                                    })
                                    .collect();
                                if let Err(error) =
                                    features.set_sample(&m.feature_names, &kinds, &rows)
                                {
                                    tracing::error!(%error, version = %target.version, "the reference sample does not fit the manifest: features get PSI only, no tests");
                                }
                            }
                            Ok(None) => {
                                tracing::warn!(version = %target.version, "the artifact has no reference sample: features get PSI only, no tests")
                            }
                            Err(error) => {
                                tracing::error!(%error, version = %target.version, "the reference sample cannot be read: features get PSI only, no tests")
                            }
                        }
                        let reference = m.reference_scores.clone();
                        tracing::info!(version = %target.version, "drift reference loaded");
                        let mut fresh = Windows {
                            scores: ScoreWindow::new(target.version, reference, settings.window),
                            features,
                        };
                        warm_up(&kafka, &mut fresh, settings.window).await;
                        if let Ok(mut w) = window.lock() {
                            *w = Some(fresh);
                        }
                    }
                    Ok(Err(error)) => tracing::error!(%error, "cannot load the reference model"),
                    Err(error) => tracing::error!(%error, "model load task failed"),
                }
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "cannot resolve alias"),
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(settings.poll_interval_ms)) => {}
            () = stop.cancelled() => break,
        }
    }
}

struct ConsumeLoop {
    consumer: Consumer,
    producer: Producer,
    policy: bus::RetryPolicy,
    health: service_runtime::admin::Component,
    metrics: bus::StageMetrics,
}

async fn consume(
    l: ConsumeLoop,
    window: Shared,
    ledger: Option<SharedLedger>,
    labels: prometheus::IntCounter,
    stop: CancellationToken,
) {
    // The window is in memory: committed offsets only say where to resume after a restart.
    let producer = &l.producer;
    let (window, ledger, labels) = (&window, &ledger, &labels);
    bus::BatchLoop {
        stage: STAGE,
        consumer: &l.consumer,
        max: 1_000,
        linger: Duration::from_millis(50),
        policy: l.policy,
        quarantine: &l.producer,
        health: l.health,
        metrics: l.metrics,
    }
    .run(&stop, move |batch| {
        Box::pin(async move {
            // Re-applying a batch after a failed quarantine is harmless: the windows keep
            // distinct transaction ids.
            for (d, reason) in apply_scores(window, ledger.as_ref(), labels, &batch) {
                producer
                    .quarantine_delivery(d, STAGE, "payload", &reason, now_ms())
                    .await?;
            }
            Ok::<(), bus::BusError>(())
        })
    })
    .await;
}

const STAGE: &str = "drift-monitor";

/// Fills a new window, before it is installed, from the last `n` records of each partition
/// of the scores and features topics. The windows are in memory, so without this a restart
/// (or a model switch whose first scores arrived before the switch was seen) would report
/// "insufficient data" until `n` new scores came in. Filling before installing keeps the
/// window in topic order; records the consumer loop takes while the tail is read go to the
/// previous window, and a record seen by both counts once (the windows keep distinct
/// transaction ids). A tail that cannot be read leaves the window to fill from the live
/// stream, and says so.
async fn warm_up(kafka: &bus::KafkaConfig, windows: &mut Windows, n: usize) {
    let n = i64::try_from(n).unwrap_or(i64::MAX);
    for topic in [topics::SCORES, topics::FEATURES] {
        match bus::read_tail(kafka, topic, n, Duration::from_secs(60)).await {
            Ok(tail) => {
                // Undecodable records are the consumer loop's to quarantine.
                let skipped = apply(Some(windows), None, None, &tail).len();
                tracing::info!(
                    topic,
                    records = tail.len(),
                    skipped,
                    "drift window warmed up from the topic's tail"
                );
            }
            Err(error) => {
                tracing::error!(%error, topic, "cannot read the topic's tail; the window fills from the live stream");
            }
        }
    }
}

/// Adds the batch to the windows (when a model is behind the alias); returns the records
/// that do not decode, with the reason, whether or not there is a window.
fn apply_scores<'b>(
    window: &Shared,
    ledger: Option<&SharedLedger>,
    labels: &prometheus::IntCounter,
    batch: &'b [bus::Delivery],
) -> Vec<(&'b bus::Delivery, String)> {
    let mut guard = window
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut ledger = ledger.map(|l| l.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
    apply(guard.as_mut(), ledger.as_deref_mut(), Some(labels), batch)
}

/// [`apply_scores`] on windows already borrowed.
fn apply<'b>(
    mut w: Option<&mut Windows>,
    mut ledger: Option<&mut Ledger>,
    labels: Option<&prometheus::IntCounter>,
    batch: &'b [bus::Delivery],
) -> Vec<(&'b bus::Delivery, String)> {
    let mut bad = Vec::new();
    for d in batch {
        let _span = d.span("drift-monitor").entered();
        if d.topic == topics::LABELS {
            match d.decode::<Label>("label") {
                Ok(label) => {
                    if let Some(l) = ledger.as_mut() {
                        l.label(&label);
                    }
                    if let Some(c) = labels {
                        c.inc();
                    }
                }
                Err(error) => bad.push((d, error.to_string())),
            }
            continue;
        }
        if d.topic == topics::FEATURES {
            match d.decode::<FeatureVector>("feature vector") {
                Ok(v) => {
                    if let Some(w) = w.as_mut() {
                        w.features.add(&v.schema_hash, &v.transaction_id, v.values);
                    }
                }
                Err(error) => bad.push((d, error.to_string())),
            }
            continue;
        }
        let decoded = d.decode::<ScoreEvent>("score event");
        if let (Ok(e), Some(l)) = (&decoded, ledger.as_mut()) {
            l.score(e);
        }
        match decoded {
            // A degraded score used no history: it describes the fallback, not the model's
            // live input, so it stays out of the window.
            Ok(e) if !e.shadow && !e.degraded => {
                if let Some(w) = w.as_mut() {
                    w.scores
                        .add(&e.model_version, &e.transaction_id, e.probability);
                }
            }
            Ok(_) => {}
            Err(error) => bad.push((d, error.to_string())),
        }
    }
    bad
}

#[allow(clippy::too_many_arguments)] // one task's wiring, called once
async fn publish(
    producer: Producer,
    window: Shared,
    t: Thresholds,
    tests: TestSettings,
    every: Duration,
    gauge: prometheus::Gauge,
    count: prometheus::IntGauge,
    mut retrain: Option<Retrainer>,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = stop.cancelled() => break,
        }
        let Some((report, msg)) = current_report(&window, &t, tests).await else {
            continue;
        };
        gauge.set(report.psi.unwrap_or(0.0));
        count.set(report.live.total() as i64);
        if let Err(error) = producer.send(topics::DRIFT, &msg.model_version, &msg).await {
            tracing::warn!(%error, "cannot publish drift report");
        }
        if let Some(r) = retrain.as_mut() {
            r.observe(&msg).await;
        }
        if report.status == window::Status::Alert {
            tracing::warn!(psi = ?report.psi, version = %report.model_version, "score drift alert");
        }
        if msg.dataset_drift {
            let drifted: Vec<&str> = msg
                .features
                .iter()
                .filter(|f| f.drifted)
                .map(|f| f.name.as_str())
                .collect();
            tracing::warn!(version = %msg.model_version, ?drifted, share = msg.dataset_share, "feature dataset drift");
        }
    }
}

/// The retrain policy and its way to the trainer.
struct Retrainer {
    settings: retrain::RetrainSettings,
    tracker: retrain::Tracker,
    client: proto::v1::trainer_service_client::TrainerServiceClient<
        service_runtime::security::SecureChannel,
    >,
    labels: prometheus::IntCounter,
    severity: prometheus::IntGauge,
    requests: prometheus::IntCounterVec,
}

impl Retrainer {
    /// Grades one report and asks the trainer for a run when the policy says so.
    async fn observe(&mut self, msg: &DriftReport) {
        let severity = proto::v1::DriftSeverity::try_from(msg.severity)
            .ok()
            .filter(|s| *s != proto::v1::DriftSeverity::Unspecified);
        self.severity.set(severity.map_or(-1, |s| s as i64 - 1));
        let what = format!(
            "{} of {} features drifted, score PSI {:.3}, model {}",
            msg.drifted_features, msg.tested_features, msg.score_psi, msg.model_version
        );
        let (now, labels) = (now_ms(), self.labels.get());
        match self
            .tracker
            .observe(&self.settings, severity, &what, now, labels)
        {
            retrain::Action::Nothing => {}
            retrain::Action::Hold(why) => tracing::info!(%why, "retrain held back"),
            retrain::Action::Request(reason) => {
                let request = proto::v1::TrainRequest {
                    promote_to: self.settings.promote_to.clone(),
                    seed: 0,
                    trigger: reason.clone(),
                };
                match self.client.train(request).await {
                    Ok(r) => {
                        self.tracker.requested(now, labels);
                        self.requests.with_label_values(&["started"]).inc();
                        tracing::warn!(run_id = %r.into_inner().run_id, %reason, "retrain requested");
                    }
                    Err(status) => {
                        self.requests.with_label_values(&["failed"]).inc();
                        tracing::error!(%status, %reason, "the trainer refused the retrain request; asking again at the next severe report");
                    }
                }
            }
        }
    }
}

/// Runs the service until shutdown.
pub async fn run(cfg: Config, ctx: Context) -> Result<(), Error> {
    bus::admin::ensure_topics(
        &cfg.kafka,
        &[
            topics::SCORES,
            topics::FEATURES,
            topics::DRIFT,
            topics::LABELS,
        ],
    )
    .await?;
    let d = cfg.drift.clone();
    let thresholds = Thresholds {
        warn: d.psi_warn,
        alert: d.psi_alert,
        min_count: d.min_count,
    };
    let tests = TestSettings {
        policy: d.policy,
        dataset_share: d.dataset_share,
        min_count: d.min_count,
    };
    let window: Shared = Arc::default();
    let gauge = prometheus::Gauge::new(
        "drift_score_psi",
        "PSI of live scores against the model's reference",
    )?;
    let count = prometheus::IntGauge::new("drift_live_scores", "Scores in the live window")?;
    ctx.metrics.register(Box::new(gauge.clone()))?;
    ctx.metrics.register(Box::new(count.clone()))?;
    let stop = ctx.shutdown.stop_intake.clone();
    let registry = Registry::open_existing(cfg.registry.path.clone());
    // The ledger exists only for the gate: without it nothing is kept per transaction.
    let ledger: Option<SharedLedger> = cfg
        .rollout
        .enabled
        .then(|| Arc::new(Mutex::new(Ledger::new(cfg.rollout.capacity))));
    if let Some(ledger) = &ledger {
        ctx.shutdown.tasks.spawn(
            rollout::Controller {
                registry: registry.clone(),
                production_alias: d.model_alias.clone(),
                settings: cfg.rollout.clone(),
                ledger: ledger.clone(),
                metrics: rollout::RolloutMetrics::register(&ctx.metrics)?,
            }
            .run(stop.clone()),
        );
    }
    ctx.shutdown.tasks.spawn(follow_alias(
        registry,
        cfg.kafka.clone(),
        d.clone(),
        window.clone(),
        stop.clone(),
    ));
    // Labels only matter to the gate and the retrain policy: without them they are not read.
    let consumed: &[&str] = if cfg.rollout.enabled || cfg.retrain.enabled {
        &[topics::SCORES, topics::FEATURES, topics::LABELS]
    } else {
        &[topics::SCORES, topics::FEATURES]
    };
    let consumer = Consumer::new(&cfg.kafka, &d.consumer_group, consumed)?;
    let labels = prometheus::IntCounter::new(
        "drift_labels_total",
        "Labels consumed (by the gate and the retrain policy)",
    )?;
    ctx.metrics.register(Box::new(labels.clone()))?;
    let retrainer = if cfg.retrain.enabled {
        let r = &cfg.retrain;
        let channel = r
            .security
            .channel_lazy("retrain.security", &r.trainer_endpoint, |e| {
                e.timeout(Duration::from_secs(10))
                    .connect_timeout(Duration::from_secs(2))
                    .tcp_nodelay(true)
            })
            .map_err(Error::Config)?;
        let severity = prometheus::IntGauge::new(
            "drift_severity",
            "The last report's severity: -1 too little data, 0 none, 1 moderate, 2 severe, 3 critical",
        )?;
        let requests = prometheus::IntCounterVec::new(
            prometheus::Opts::new(
                "drift_retrain_requests_total",
                "Retrain requests sent to the trainer, by outcome (started, failed)",
            ),
            &["outcome"],
        )?;
        ctx.metrics.register(Box::new(severity.clone()))?;
        ctx.metrics.register(Box::new(requests.clone()))?;
        Some(Retrainer {
            settings: r.clone(),
            tracker: retrain::Tracker::default(),
            client: proto::v1::trainer_service_client::TrainerServiceClient::new(channel),
            labels: labels.clone(),
            severity,
            requests,
        })
    } else {
        None
    };
    let producer = Producer::new(&cfg.kafka, "vigil-drift-monitor")?;
    let consume_loop = ConsumeLoop {
        consumer,
        producer: producer.clone(),
        policy: cfg.kafka.retry,
        health: ctx.readiness.component("drift-monitor"),
        metrics: bus::LoopMetrics::register(&ctx.metrics)?.stage("drift-monitor"),
    };
    ctx.shutdown.tasks.spawn(consume(
        consume_loop,
        window.clone(),
        ledger,
        labels.clone(),
        stop.clone(),
    ));
    ctx.shutdown.tasks.spawn(publish(
        producer,
        window.clone(),
        thresholds,
        tests,
        Duration::from_secs(d.publish_interval_secs.max(1)),
        gauge,
        count,
        retrainer,
        stop.clone(),
    ));
    let mut routes = tonic::service::RoutesBuilder::default();
    routes.add_service(
        DriftServiceServer::new(Api {
            window,
            thresholds,
            tests,
        })
        .max_decoding_message_size(cfg.server.max_message_bytes),
    );
    service_runtime::grpc::serve_service(
        ctx.grpc,
        &cfg.server,
        routes,
        &["vigil.v1.DriftService"],
        &ctx.readiness,
        true,
        ctx.shutdown.stop_intake.clone(),
    )
    .await?;
    Ok(())
}
