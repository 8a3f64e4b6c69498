//! Streams transactions to ingest's `SubmitBatch` at a target rate, then the labels that
//! would have been reported by then through `SubmitLabels`.
//!
//! Pacing: batches go out on a `tokio::time::interval` whose period is `batch / rate`. The
//! batch is shrunk at low rates so that there are about 20 sends per second (smooth traffic
//! rather than one big batch every few seconds). Missed ticks are caught up (burst), so the
//! average rate holds when ingest is briefly slow. Batches are sent one at a time, in order,
//! so late and duplicate records reach ingest exactly where the dataset put them.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

use proto::tonic::service::interceptor::InterceptedService;
use proto::tonic::{self, Code};
use proto::v1;
use proto::v1::ingest_service_client::IngestServiceClient;
use serde::Serialize;
use service_runtime::security::{ClientSecurity, SecureChannel};

/// Sends per second aimed at when the batch size allows it.
const TARGET_SENDS_PER_SEC: f64 = 20.0;
/// Attempts for one batch when ingest answers `UNAVAILABLE` (ingest dedupes by id, so a
/// retried batch cannot double-publish).
const RPC_ATTEMPTS: u32 = 5;
/// Labels per `SubmitLabels` call.
const LABEL_BATCH: usize = 1_000;

/// Why a replay failed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("invalid replay config: {0}")]
    InvalidConfig(String),
    #[error("ingest connection settings: {0}")]
    Security(#[from] service_runtime::ConfigError),
    #[error("could not connect to ingest at {url} after {attempts} attempts: {source}")]
    Connect {
        url: String,
        attempts: u32,
        #[source]
        source: tonic::transport::Error,
    },
    /// Boxed: `Status` is large.
    #[error("{call} failed: {source}")]
    Rpc {
        call: &'static str,
        #[source]
        source: Box<tonic::Status>,
    },
}

/// How to replay.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayConfig {
    /// Transactions per second.
    pub rate: f64,
    /// Largest `SubmitBatch` request.
    pub batch: usize,
    /// Send every label of a sent transaction, not only those reported by the last replayed
    /// event time.
    pub all_labels: bool,
}

/// What a replay did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReplaySummary {
    pub sent: u64,
    pub accepted: u64,
    pub duplicates: u64,
    pub rejected: u64,
    /// Rejections by the proto field ingest named.
    pub rejected_by_field: BTreeMap<String, u64>,
    pub batches: u64,
    pub labels_sent: u64,
    pub labels_accepted: u64,
    /// Latest event time among the transactions sent.
    pub last_event_time_ms: Option<i64>,
    /// Time spent sending transactions.
    pub elapsed: Duration,
    /// True when the shutdown signal stopped the replay early.
    pub interrupted: bool,
}

impl ReplaySummary {
    /// Transactions per second actually achieved.
    pub fn achieved_rate(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.sent as f64 / secs
        } else {
            0.0
        }
    }
}

impl fmt::Display for ReplaySummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "sent {} transactions in {} batches over {:.1}s ({:.1} tx/s){}",
            self.sent,
            self.batches,
            self.elapsed.as_secs_f64(),
            self.achieved_rate(),
            if self.interrupted {
                ", interrupted"
            } else {
                ""
            }
        )?;
        writeln!(
            f,
            "accepted {}, duplicates {}, rejected {}",
            self.accepted, self.duplicates, self.rejected
        )?;
        for (field, n) in &self.rejected_by_field {
            writeln!(f, "  rejected on {field}: {n}")?;
        }
        write!(
            f,
            "labels: sent {}, accepted {}",
            self.labels_sent, self.labels_accepted
        )
    }
}

/// Connects to ingest, retrying (with doubling back-off, capped at 2 s) up to `attempts`
/// times: a replay started together with the services waits for them instead of failing.
/// TLS and the bearer token come from `security` (`--ca-file`, `--token-file` …).
pub async fn connect(
    url: &str,
    attempts: u32,
    timeout: Duration,
    security: &ClientSecurity,
) -> Result<IngestServiceClient<SecureChannel>, ReplayError> {
    let endpoint = security.endpoint("replay", url)?.connect_timeout(timeout);
    let bearer = security.bearer("replay")?;
    let attempts = attempts.max(1);
    let mut backoff = Duration::from_millis(100);
    let mut attempt = 1;
    loop {
        match endpoint.connect().await {
            Ok(channel) => {
                return Ok(IngestServiceClient::new(InterceptedService::new(
                    channel, bearer,
                )));
            }
            Err(source) if attempt >= attempts => {
                return Err(ReplayError::Connect {
                    url: url.to_owned(),
                    attempts,
                    source,
                });
            }
            Err(_) => {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                attempt += 1;
            }
        }
    }
}

fn rpc_error(call: &'static str) -> impl FnOnce(tonic::Status) -> ReplayError {
    move |status| ReplayError::Rpc {
        call,
        source: Box::new(status),
    }
}

async fn submit_batch(
    client: &mut IngestServiceClient<SecureChannel>,
    transactions: Vec<v1::Transaction>,
) -> Result<v1::SubmitBatchResponse, ReplayError> {
    let mut backoff = Duration::from_millis(100);
    let mut attempt = 1;
    loop {
        let request = v1::SubmitBatchRequest {
            transactions: transactions.clone(),
        };
        match client.submit_batch(request).await {
            Ok(response) => return Ok(response.into_inner()),
            Err(status) if status.code() == Code::Unavailable && attempt < RPC_ATTEMPTS => {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
                attempt += 1;
            }
            Err(status) => return Err(rpc_error("SubmitBatch")(status)),
        }
    }
}

/// Sends `transactions` at `config.rate`, then the labels of the sent transactions: those
/// reported at or before the latest replayed event time, or all of them with
/// `config.all_labels`. When `shutdown` completes, sending stops and the summary so far is
/// returned (no labels are sent then).
pub async fn replay(
    client: &mut IngestServiceClient<SecureChannel>,
    transactions: Vec<v1::Transaction>,
    labels: Vec<v1::Label>,
    config: &ReplayConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<ReplaySummary, ReplayError> {
    if !(config.rate.is_finite() && config.rate > 0.0) {
        return Err(ReplayError::InvalidConfig(format!(
            "rate must be positive, got {}",
            config.rate
        )));
    }
    if config.batch == 0 {
        return Err(ReplayError::InvalidConfig(
            "batch must be at least 1".into(),
        ));
    }
    let batch = ((config.rate / TARGET_SENDS_PER_SEC).ceil() as usize).clamp(1, config.batch);
    let period = Duration::from_secs_f64(batch as f64 / config.rate);
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    tokio::pin!(shutdown);

    let mut summary = ReplaySummary::default();
    let mut sent_ids = HashSet::with_capacity(transactions.len());
    let started = Instant::now();
    let mut pending = transactions.into_iter().peekable();
    while pending.peek().is_some() {
        tokio::select! {
            biased;
            () = &mut shutdown => {
                summary.interrupted = true;
                break;
            }
            _ = ticks.tick() => {}
        }
        let chunk: Vec<v1::Transaction> = pending.by_ref().take(batch).collect();
        for t in &chunk {
            sent_ids.insert(t.transaction_id.clone());
            if let Some(ts) = &t.event_time {
                let ms = proto::time::to_unix_ms(ts);
                summary.last_event_time_ms =
                    Some(summary.last_event_time_ms.map_or(ms, |m| m.max(ms)));
            }
        }
        summary.sent += chunk.len() as u64;
        summary.batches += 1;
        let response = submit_batch(client, chunk).await?;
        summary.accepted += u64::from(response.accepted);
        summary.duplicates += u64::from(response.duplicates);
        summary.rejected += response.rejected.len() as u64;
        for r in response.rejected {
            let field = if r.field.is_empty() {
                "(unnamed)".to_owned()
            } else {
                r.field
            };
            *summary.rejected_by_field.entry(field).or_default() += 1;
        }
    }
    summary.elapsed = started.elapsed();
    if summary.interrupted {
        return Ok(summary);
    }

    let horizon = summary.last_event_time_ms.unwrap_or(i64::MIN);
    let due: Vec<v1::Label> = labels
        .into_iter()
        .filter(|l| sent_ids.contains(&l.transaction_id))
        .filter(|l| {
            config.all_labels
                || l.reported_at
                    .as_ref()
                    .is_some_and(|ts| proto::time::to_unix_ms(ts) <= horizon)
        })
        .collect();
    let (sent, accepted) = send_labels(client, &due).await?;
    summary.labels_sent += sent;
    summary.labels_accepted += accepted;
    Ok(summary)
}

/// Sends labels through `SubmitLabels` in chunks; returns (sent, accepted).
pub async fn send_labels(
    client: &mut IngestServiceClient<SecureChannel>,
    labels: &[v1::Label],
) -> Result<(u64, u64), ReplayError> {
    let (mut sent, mut accepted) = (0, 0);
    for chunk in labels.chunks(LABEL_BATCH) {
        let response = client
            .submit_labels(v1::SubmitLabelsRequest {
                labels: chunk.to_vec(),
            })
            .await
            .map_err(rpc_error("SubmitLabels"))?;
        sent += chunk.len() as u64;
        accepted += u64::from(response.into_inner().accepted);
    }
    Ok((sent, accepted))
}

/// Profile versions per `SubmitProfiles` call.
const PROFILE_BATCH: usize = 1_000;

/// What [`send_profiles`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ProfileSummary {
    pub sent: u64,
    pub accepted: u64,
    /// Versions valid only after `now_ms`: not sent (ingest would refuse them).
    pub not_yet_valid: u64,
}

/// Sends the profile versions already valid at `now_ms` through `SubmitProfiles`. Called
/// before the transactions; the speed layer reads the three topics in no guaranteed order,
/// so the first transactions of a replay may still be processed before their profile.
pub async fn send_profiles(
    client: &mut IngestServiceClient<SecureChannel>,
    profiles: Vec<v1::UserProfile>,
    now_ms: i64,
) -> Result<ProfileSummary, ReplayError> {
    let mut summary = ProfileSummary::default();
    let (due, later): (Vec<_>, Vec<_>) = profiles.into_iter().partition(|p| {
        p.valid_from
            .as_ref()
            .is_some_and(|ts| proto::time::to_unix_ms(ts) <= now_ms)
    });
    summary.not_yet_valid = later.len() as u64;
    for chunk in due.chunks(PROFILE_BATCH) {
        let response = client
            .submit_profiles(v1::SubmitProfilesRequest {
                profiles: chunk.to_vec(),
            })
            .await
            .map_err(rpc_error("SubmitProfiles"))?;
        summary.sent += chunk.len() as u64;
        summary.accepted += u64::from(response.into_inner().accepted);
    }
    Ok(summary)
}
