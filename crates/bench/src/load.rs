//! `vigil-bench load`: a gRPC load client for `Score` that records the status of every
//! answer, so overload can be measured: how much was shed (`RESOURCE_EXHAUSTED`) and the
//! latency of what was admitted, separately. h2load (used for the fixed-rate latency
//! figures) sees only HTTP 200, as grpc-status travels in the trailers, and its log mixes the
//! fast refusals into the admitted latencies. ghz, the usual gRPC load tool, is not packaged
//! for Debian or PyPI, hence this client (tonic, the same stack as the services).
//!
//! Open loop (`--rate`): requests are started on a fixed schedule whatever the answers, the
//! way independent clients arrive; the timer wakes every millisecond and starts all that are
//! due. The lag between a request's scheduled and actual start is reported, so a client that
//! cannot keep up is visible rather than silently lowering the offered rate. Closed loop
//! (`--in-flight`): that many requests are kept outstanding, giving the capacity.

use anyhow::Context as _;
use proto::prost_types::Timestamp;
use proto::v1::inference_service_client::InferenceServiceClient;
use proto::v1::{GeoPoint, Money, ScoreRequest, Transaction};
use serde::Serialize;
use service_runtime::security::{ClientSecurity, SecureChannel};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::service::interceptor::InterceptedService;

#[derive(Debug, clap::Args)]
pub(crate) struct LoadArgs {
    /// The inference service, e.g. http://127.0.0.1:51053.
    #[arg(long)]
    endpoint: String,
    /// Requests per second, open loop. Without it, closed loop with `--in-flight`.
    #[arg(long)]
    rate: Option<u32>,
    /// Outstanding requests in closed loop.
    #[arg(long, default_value_t = 32)]
    in_flight: usize,
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// HTTP/2 connections, used in turn.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// The user whose transactions are scored (its features are fetched on each call).
    #[arg(long, default_value = "u-000042")]
    user: String,
    /// Client-side deadline per request.
    #[arg(long, default_value_t = 2_000)]
    timeout_ms: u64,
    /// Where to write the JSON results.
    #[arg(long)]
    out: Option<std::path::PathBuf>,
    /// TLS (an `https://` endpoint) and the bearer token, for a secured inference service.
    #[command(flatten, next_help_heading = "Security")]
    security: ClientSecurity,
}

/// Latency quantiles in milliseconds.
#[derive(Debug, Serialize)]
struct Quantiles {
    n: usize,
    p50: f64,
    p99: f64,
    p999: f64,
    max: f64,
}

impl Quantiles {
    fn of(mut micros: Vec<u64>) -> Option<Quantiles> {
        if micros.is_empty() {
            return None;
        }
        micros.sort_unstable();
        let q = |p: f64| {
            micros[((micros.len() as f64 * p) as usize).min(micros.len() - 1)] as f64 / 1e3
        };
        Some(Quantiles {
            n: micros.len(),
            p50: q(0.5),
            p99: q(0.99),
            p999: q(0.999),
            max: micros[micros.len() - 1] as f64 / 1e3,
        })
    }
}

#[derive(Debug, Serialize)]
struct LoadReport {
    mode: String,
    seconds: f64,
    sent: usize,
    /// Requests started per second (open loop: what was offered).
    offered_per_s: f64,
    /// `OK` answers per second.
    ok_per_s: f64,
    /// Answers by gRPC code name.
    codes: BTreeMap<String, usize>,
    /// Latency of `OK` answers.
    ok: Option<Quantiles>,
    /// Latency of `RESOURCE_EXHAUSTED` answers.
    shed: Option<Quantiles>,
    /// Open loop: how late requests started against their schedule.
    start_lag: Option<Quantiles>,
}

#[derive(Default)]
struct Outcomes {
    codes: BTreeMap<String, usize>,
    ok: Vec<u64>,
    shed: Vec<u64>,
}

fn request(user: &str, n: u64) -> ScoreRequest {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    ScoreRequest {
        transaction: Some(Transaction {
            transaction_id: format!("load-{n}"),
            user_id: user.to_owned(),
            account_id: user.replace("u-", "a-"),
            amount: Some(Money {
                minor_units: 12_345,
                currency: "EUR".into(),
            }),
            merchant_id: "m-000007".into(),
            merchant_category: "5411".into(),
            channel: proto::v1::Channel::CardPresent as i32,
            device_id: format!("{}-0", user.replace("u-", "d-")),
            country: "FR".into(),
            geo: Some(GeoPoint {
                lat: 48.85,
                lon: 2.35,
            }),
            event_time: Some(Timestamp {
                seconds: now.as_secs() as i64,
                nanos: 0,
            }),
        }),
        explain: false,
    }
}

async fn one(
    mut client: InferenceServiceClient<SecureChannel>,
    req: ScoreRequest,
    outcomes: Arc<Mutex<Outcomes>>,
) {
    let started = Instant::now();
    let code = match client.score(req).await {
        Ok(_) => tonic::Code::Ok,
        Err(status) => status.code(),
    };
    let micros = started.elapsed().as_micros() as u64;
    let mut o = outcomes
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    *o.codes.entry(format!("{code:?}")).or_default() += 1;
    match code {
        tonic::Code::Ok => o.ok.push(micros),
        tonic::Code::ResourceExhausted => o.shed.push(micros),
        _ => {}
    }
}

pub(crate) fn run(args: &LoadArgs) -> anyhow::Result<bool> {
    // One worker thread: the client shares the machine with the services it measures.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let report = runtime.block_on(drive(args))?;
    let json = serde_json::to_string_pretty(&report)?;
    println!("{json}");
    if let Some(path) = &args.out {
        crate::export::write_text(path, &json)?;
    }
    Ok(report.sent > 0)
}

async fn drive(args: &LoadArgs) -> anyhow::Result<LoadReport> {
    anyhow::ensure!(args.connections > 0, "--connections must be at least 1");
    let mut clients = Vec::with_capacity(args.connections);
    let bearer = args.security.bearer("load")?;
    for _ in 0..args.connections {
        let channel = args
            .security
            .endpoint("load", &args.endpoint)?
            .tcp_nodelay(true)
            .timeout(Duration::from_millis(args.timeout_ms))
            .connect()
            .await
            .with_context(|| format!("connecting to {}", args.endpoint))?;
        clients.push(InferenceServiceClient::new(InterceptedService::new(
            channel,
            bearer.clone(),
        )));
    }
    let outcomes = Arc::new(Mutex::new(Outcomes::default()));
    let duration = Duration::from_secs_f64(args.seconds);
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let mut sent = 0u64;
    let mut lags = Vec::new();
    let mode = match args.rate {
        Some(rate) => {
            anyhow::ensure!(rate > 0, "--rate must be at least 1");
            let total = (f64::from(rate) * args.seconds) as u64;
            let period = Duration::from_secs_f64(1.0 / f64::from(rate));
            let mut tick = tokio::time::interval(Duration::from_millis(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            while sent < total {
                tick.tick().await;
                let now = start.elapsed();
                while sent < total && period * (sent as u32) <= now {
                    lags.push((now - period * (sent as u32)).as_micros() as u64);
                    let client = clients[sent as usize % clients.len()].clone();
                    tasks.spawn(one(client, request(&args.user, sent), outcomes.clone()));
                    sent += 1;
                }
                // Reap finished requests so the set stays the size of what is outstanding.
                while tasks.try_join_next().is_some() {}
            }
            format!("open loop, {rate} req/s")
        }
        None => {
            let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
            for worker in 0..args.in_flight {
                let client = clients[worker % clients.len()].clone();
                let (outcomes, next, user) = (outcomes.clone(), next.clone(), args.user.clone());
                tasks.spawn(async move {
                    while start.elapsed() < duration {
                        let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        one(client.clone(), request(&user, n), outcomes.clone()).await;
                    }
                });
            }
            format!("closed loop, {} in flight", args.in_flight)
        }
    };
    while tasks.join_next().await.is_some() {}
    let elapsed = start.elapsed().as_secs_f64();
    let o = std::mem::take(
        &mut *outcomes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    let answered: usize = o.codes.values().sum();
    let sent = if args.rate.is_some() {
        sent as usize
    } else {
        answered
    };
    Ok(LoadReport {
        mode,
        seconds: elapsed,
        sent,
        offered_per_s: sent as f64 / args.seconds.min(elapsed),
        ok_per_s: o.ok.len() as f64 / elapsed,
        codes: o.codes,
        ok: Quantiles::of(o.ok),
        shed: Quantiles::of(o.shed),
        start_lag: Quantiles::of(lags),
    })
}
