//! The whole loop on real Redis and the real broker: history → trainer → registry; then
//! transactions and labels → ingest → Kafka → feature-service → features → inference →
//! scores → drift-monitor, with each of the four services SIGKILLed and restarted midway
//! (ingest and inference while a client is streaming into them). Every transaction is
//! scored; user *and* merchant state (transaction counters, fraud reports) survive the
//! crashes without loss or double counting; the drift window is whole after its restart.

use bus::{Consumer, KafkaConfig, topics};
use e2e::{Service, Stack, now_ms, run_to_completion};
use proto::v1;
use proto::v1::drift_service_client::DriftServiceClient;
use proto::v1::feature_service_client::FeatureServiceClient;
use proto::v1::inference_service_client::InferenceServiceClient;
use proto::v1::ingest_service_client::IngestServiceClient;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

const USERS: usize = 40;
const PER_USER: usize = 15;

fn transaction(run: &str, k: usize, t0: i64) -> v1::Transaction {
    let user = k % USERS;
    v1::Transaction {
        transaction_id: format!("{run}-t{k}"),
        user_id: format!("{run}-u{user}"),
        account_id: format!("{run}-a{user}"),
        amount: Some(v1::Money {
            minor_units: 500 + (k as i64 * 7919) % 20_000,
            currency: "EUR".into(),
        }),
        merchant_id: format!("{run}-m{}", k % 13),
        merchant_category: "5411".into(),
        channel: if k.is_multiple_of(10) {
            v1::Channel::Atm
        } else {
            v1::Channel::CardPresent
        } as i32,
        device_id: format!("d{}", user % 7),
        country: if k.is_multiple_of(17) {
            "DE".into()
        } else {
            "FR".into()
        },
        geo: None,
        event_time: Some(proto::time::from_unix_ms(t0 + k as i64 * 5_000)),
    }
}

/// Submits `transactions` ten at a time, `pause` apart, until each one is accepted or known as
/// a duplicate: what a failed call or a deferral left open is sent again. The client a crash
/// of ingest must not fool into losing or doubling a transaction. Returns the calls that
/// failed.
async fn submit_until_accounted(
    endpoint: String,
    transactions: Vec<v1::Transaction>,
    pause: Duration,
) -> usize {
    let channel = tonic::transport::Endpoint::from_shared(endpoint)
        .unwrap()
        .connect_lazy();
    let mut client = IngestServiceClient::new(channel);
    let mut failed = 0;
    // Ids reserved by the killed process stay deferred for its lease (31 s here).
    let deadline = Instant::now() + Duration::from_secs(180);
    for chunk in transactions.chunks(10) {
        let mut open = chunk.to_vec();
        while !open.is_empty() {
            assert!(
                Instant::now() < deadline,
                "{} transactions never accounted for",
                open.len()
            );
            let request = v1::SubmitBatchRequest {
                transactions: open.clone(),
            };
            match client.submit_batch(request).await {
                Ok(r) => {
                    let r = r.into_inner();
                    assert!(r.rejected.is_empty(), "{:?}", r.rejected);
                    let deferred: HashSet<String> =
                        r.deferred.into_iter().map(|d| d.transaction_id).collect();
                    open.retain(|t| deferred.contains(&t.transaction_id));
                }
                Err(_) => failed += 1,
            }
            if !open.is_empty() {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
        tokio::time::sleep(pause).await;
    }
    failed
}

/// How long a crashed consumer stays down: past tansu's 6 s group session (as Kubernetes'
/// first restart back-off, 10 s, is).
const RESTART_AFTER: Duration = Duration::from_secs(7);

/// Scores and vectors in the drift-monitor's windows (fewer than the stream's 600).
const DRIFT_WINDOW: u64 = 300;

/// The drift-monitor's first report for which `done` holds (it answers UNAVAILABLE until its
/// windows are installed).
async fn until_drift_report(
    drift: &Service,
    done: impl Fn(&v1::DriftReport) -> bool,
) -> v1::DriftReport {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(mut c) = DriftServiceClient::connect(drift.endpoint()).await
            && let Ok(r) = c.get_report(v1::GetReportRequest {}).await
            && done(r.get_ref())
        {
            return r.into_inner();
        }
        assert!(Instant::now() < deadline, "no drift report in time");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn grpcurl() -> Option<std::path::PathBuf> {
    let out = std::process::Command::new("bash")
        .args(["-c", "source scripts/lib.sh && grpcurl_bin"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .output()
        .ok()?;
    let path = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!path.is_empty()).then(|| path.into())
}

/// 30 days of history for 300 users (5 % fraud, so every time window has some) generated
/// into `history` as a lake, and a model trained on it by the trainer CLI into `registry`,
/// promoted to `production` when its gate passes; `extra` goes to `vigil-trainer train`.
/// Returns the training outcome (JSON).
pub(crate) fn history_and_model(
    history: &std::path::Path,
    registry: &std::path::Path,
    seed: u64,
    extra: &[&str],
) -> serde_json::Value {
    let seed = seed.to_string();
    run_to_completion(
        "datagen",
        &[
            "generate",
            "--seed",
            &seed,
            "--users",
            "300",
            "--days",
            "30",
            "--fraud-rate",
            "0.05",
            "--out",
            history.to_str().unwrap(),
            "--format",
            "lake",
            "--lake-dir",
            history.join("lake").to_str().unwrap(),
        ],
        &[],
    );
    let (lake, work) = (history.join("lake"), history.join("trainset"));
    let mut args = vec![
        "train",
        "--lake",
        lake.to_str().unwrap(),
        "--registry",
        registry.to_str().unwrap(),
        "--promote",
        "production",
        "--work-dir",
        work.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    serde_json::from_str(&run_to_completion("trainer", &args, &[])).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transactions_flow_to_scores_and_crashes_of_every_service_lose_and_double_count_nothing() {
    let stack = Stack::from_env();
    let dir = tempfile::Builder::new()
        .prefix("vigil-e2e-")
        .tempdir()
        .unwrap();
    let root = dir.path();
    let run = format!("r{}", now_ms());
    let (lake, registry, history) = (
        root.join("lake"),
        root.join("registry"),
        root.join("history"),
    );

    // 1. History → model in the registry (datagen and trainer as processes).
    let trained = history_and_model(&history, &registry, 3, &[]);
    let version = trained["model"]["version"].as_str().unwrap().to_owned();
    assert_eq!(trained["promoted_to"], "production", "{trained}");

    // 2. The five services, each with this run's consumer groups.
    let mut env = stack.env();
    env.push(("VIGIL_LAKE__PATH".into(), lake.display().to_string()));
    env.push((
        "VIGIL_REGISTRY__PATH".into(),
        registry.display().to_string(),
    ));
    env.push((
        "VIGIL_FEATURE_SERVICE__SPEED_GROUP".into(),
        format!("fs-{run}"),
    ));
    env.push((
        "VIGIL_FEATURE_SERVICE__LAKE_GROUP".into(),
        format!("lake-{run}"),
    ));
    env.push(("VIGIL_FEATURE_SERVICE__LAKE_LINGER_MS".into(), "200".into()));
    env.push((
        "VIGIL_INFERENCE__CONSUMER_GROUP".into(),
        format!("inf-{run}"),
    ));
    env.push(("VIGIL_DRIFT__CONSUMER_GROUP".into(), format!("drift-{run}")));
    env.push(("VIGIL_DRIFT__WINDOW".into(), DRIFT_WINDOW.to_string()));
    env.push(("VIGIL_DRIFT__MIN_COUNT".into(), "100".into()));
    // Ids reserved by a killed ingest are free again after 31 s (the shortest lease allowed).
    env.push(("VIGIL_INGEST__DEDUP_LEASE_SECS".into(), "31".into()));
    let mut features = Service::start("feature-service", env.clone(), root);
    features.wait_healthy().await;
    let mut env_inf = env.clone();
    env_inf.push(("VIGIL_FEATURES__ENDPOINT".into(), features.endpoint()));
    let mut services = vec![
        Service::start("ingest", env.clone(), root),
        Service::start("inference", env_inf, root),
        Service::start("trainer", env.clone(), root),
        Service::start("drift-monitor", env.clone(), root),
    ];
    for s in &mut services {
        s.wait_healthy().await;
    }

    // A poison record on every topic (bytes that are no protobuf message): each consumer
    // quarantines it with its stage and keeps flowing (checked in step 9).
    let kafka = KafkaConfig::new(stack.brokers.clone(), true);
    let raw = bus::Producer::new(&kafka, "e2e-poison").unwrap();
    for topic in [
        topics::TRANSACTIONS,
        topics::LABELS,
        topics::PROFILES,
        topics::FEATURES,
        topics::SCORES,
    ] {
        raw.send_bytes(topic, &format!("{run}-poison-{topic}"), &[0xff, 0xff, 0xff])
            .await
            .unwrap();
    }

    // 3. Three thirds, each with a crash: the feature-service is SIGKILLed after the first;
    //    the second goes in while ingest is SIGKILLed and restarted under a retrying client;
    //    the third while inference is SIGKILLed and restarted mid-stream.
    let t0 = now_ms() - 3_600_000;
    let all: Vec<v1::Transaction> = (0..USERS * PER_USER)
        .map(|k| transaction(&run, k, t0))
        .collect();
    let ingest_endpoint = services[0].endpoint();
    let mut client = IngestServiceClient::connect(ingest_endpoint.clone())
        .await
        .unwrap();
    let (third, two_thirds) = (all.len() / 3, 2 * all.len() / 3);
    // Fraud reports on every 7th transaction, reported 30 h ago (so in closed tiles of both
    // label windows), without a merchant: ingest resolves it from the transactions.
    let reported_at = now_ms() - 30 * 3_600_000;
    let labels: Vec<v1::Label> = all
        .iter()
        .step_by(7)
        .map(|t| v1::Label {
            transaction_id: t.transaction_id.clone(),
            user_id: t.user_id.clone(),
            is_fraud: true,
            reported_at: Some(proto::time::from_unix_ms(reported_at)),
            event_time: t.event_time,
            merchant_id: String::new(),
        })
        .collect();
    let label_client = client.clone();
    let submit_labels = |labels: Vec<v1::Label>| {
        let mut c = label_client.clone();
        async move {
            let n = labels.len();
            let r = c
                .submit_labels(v1::SubmitLabelsRequest { labels })
                .await
                .unwrap()
                .into_inner();
            assert_eq!(r.accepted as usize, n);
        }
    };
    for chunk in all[..third].chunks(100) {
        let r = client
            .submit_batch(v1::SubmitBatchRequest {
                transactions: chunk.to_vec(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!((r.accepted as usize, r.rejected.len()), (chunk.len(), 0));
    }
    let (first_labels, late_labels): (Vec<_>, Vec<_>) = labels.iter().cloned().partition(|l| {
        all[..third]
            .iter()
            .any(|t| t.transaction_id == l.transaction_id)
    });
    submit_labels(first_labels).await;
    // Killed once it is consuming: a member killed while its group is still forming leaves
    // tansu 0.6's group without an assignment (docs/reliability.md).
    features
        .until_metric("vigil_features_transactions_applied_total", 1.0)
        .await;
    features.kill();

    let submitter = tokio::spawn(submit_until_accounted(
        ingest_endpoint.clone(),
        all[third..two_thirds].to_vec(),
        Duration::from_millis(40),
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !submitter.is_finished(),
        "the client finished before the crash"
    );
    services[0].kill();
    tokio::time::sleep(Duration::from_millis(300)).await;
    services[0].restart();
    services[0].wait_healthy().await;
    let failed_calls = submitter.await.unwrap();
    assert!(
        failed_calls > 0,
        "ingest was killed after the client had finished: the crash was not mid-stream"
    );
    let mut client = IngestServiceClient::connect(ingest_endpoint.clone())
        .await
        .unwrap();
    // Re-sending already accepted transactions is reported as duplicates, not re-published.
    let again = client
        .submit_batch(v1::SubmitBatchRequest {
            transactions: all[..10].to_vec(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((again.accepted, again.duplicates), (0, 10));
    // A consumer restarted sooner is a second member of a group whose crashed leader tansu
    // still counts: it gets no partitions (docs/reliability.md).
    tokio::time::sleep(RESTART_AFTER).await;
    features.restart();
    features.wait_healthy().await;

    let submitter = tokio::spawn(submit_until_accounted(
        ingest_endpoint.clone(),
        all[two_thirds..].to_vec(),
        Duration::from_millis(100),
    ));
    // Killed while it scores the backlog the feature-service's restart released.
    services[1]
        .until_metric("vigil_inference_stream_scores_total", 1.0)
        .await;
    assert!(
        !submitter.is_finished(),
        "the client finished before the crash"
    );
    services[1].kill();
    tokio::time::sleep(RESTART_AFTER).await;
    services[1].restart();
    services[1].wait_healthy().await;
    assert_eq!(
        submitter.await.unwrap(),
        0,
        "ingest was up: no call of the last third fails"
    );
    // Fraud reports come after their transactions (a report of a transaction the platform
    // has not seen is counted nowhere).
    submit_labels(late_labels).await;

    // 4. A malformed transaction: INVALID_ARGUMENT naming the field; nothing else affected.
    let mut bad = transaction(&run, 999_999, t0);
    bad.amount.as_mut().unwrap().currency = "euro".into();
    let err = client
        .submit(v1::SubmitRequest {
            transaction: Some(bad),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(
        err.message().contains("amount.currency"),
        "{}",
        err.message()
    );

    // 5. Every transaction comes out as a score of the registered model version.
    let wanted: HashSet<String> = all.iter().map(|t| t.transaction_id.clone()).collect();
    let consumer = Consumer::new(
        &KafkaConfig::new(stack.brokers.clone(), true),
        &format!("check-{run}"),
        &[topics::SCORES],
    )
    .unwrap();
    let mut scored: HashMap<String, v1::ScoreEvent> = HashMap::new();
    let mut score_records = 0_usize;
    let deadline = Instant::now() + Duration::from_secs(180);
    while scored.len() < wanted.len() {
        if Instant::now() >= deadline {
            // Say where the missing ones stopped: before the feature vector or after it.
            let mut missing: Vec<&String> =
                wanted.iter().filter(|t| !scored.contains_key(*t)).collect();
            missing.sort();
            let vectors: HashSet<String> =
                crate::faults::read_topic(&kafka, topics::FEATURES, &format!("{run}-u"))
                    .await
                    .iter()
                    .filter_map(|d| d.decode::<v1::FeatureVector>("vector").ok())
                    .map(|v| v.transaction_id)
                    .collect();
            let with_vector = missing.iter().filter(|t| vectors.contains(**t)).count();
            panic!(
                "only {} of {} transactions scored; {with_vector} of the {} missing have a \
                 feature vector; first missing: {:?}",
                scored.len(),
                wanted.len(),
                missing.len(),
                &missing[..missing.len().min(5)]
            );
        }
        if let Ok(Ok(batch)) = tokio::time::timeout(
            Duration::from_secs(5),
            consumer.next_batch(1_000, Duration::from_millis(100)),
        )
        .await
        {
            for d in batch {
                // Only this run's users' scores (not step 2's poison record, nor other runs').
                let key = d.key.as_deref().unwrap_or_default();
                if !key.starts_with(&format!("{run}-u")) {
                    continue;
                }
                let e: v1::ScoreEvent = d.decode("score").unwrap();
                if wanted.contains(&e.transaction_id) {
                    score_records += 1;
                    scored.insert(e.transaction_id.clone(), e);
                }
            }
        }
    }
    assert!(
        scored
            .values()
            .all(|e| e.model_version == version && (0.0..=1.0).contains(&e.probability))
    );

    // 6. No loss, no double counting: online counts equal a recount from the lake. The lake
    //    stores records: one that ingest published but could not confirm before the crash is
    //    published again by the client's retry once its lease runs out, and readers keep the
    //    first. The speed layer must absorb it the same way (the online counts below).
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for t in &all {
        *expected.entry(t.user_id.clone()).or_default() += 1;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let (lake_counts, lake_rows) = loop {
        let reader = lake::LakeReader::open(&lake).await.unwrap();
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        for t in reader.transactions().await.unwrap() {
            if t.user_id.starts_with(&format!("{run}-")) {
                *counts.entry(t.user_id).or_default() += 1;
            }
        }
        let rows: u64 = reader
            .transaction_counts_by_user()
            .await
            .unwrap()
            .into_iter()
            .filter(|(u, _)| u.starts_with(&format!("{run}-")))
            .map(|(_, n)| n)
            .sum();
        if counts == expected || Instant::now() > deadline {
            break (counts, rows);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(
        lake_counts, expected,
        "the lake holds each transaction (at least once; readers keep the first)"
    );
    eprintln!(
        "faults: ingest crash cost {failed_calls} failed calls; {} records republished after it; \
         {} score records for {} transactions after the inference crash",
        lake_rows - all.len() as u64,
        score_records,
        scored.len()
    );
    let mut fs = FeatureServiceClient::connect(features.endpoint())
        .await
        .unwrap();
    for (user, n) in &lake_counts {
        let online = fs
            .get_online_features(v1::GetOnlineFeaturesRequest {
                user_id: user.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            online.transactions_seen, *n,
            "online count of {user} differs from the lake recount"
        );
    }

    // 6b. Merchant state is exact too: transaction counters over the closed hour tiles of the
    //     1-day window and every fraud report, whatever was in flight at the crash.
    let probe_t = now_ms();
    let window = features::schema::MERCHANT_WINDOWS[0];
    let (from, to) = window.range(probe_t);
    let deadline = Instant::now() + Duration::from_secs(60);
    for m in 0..13 {
        let merchant = format!("{run}-m{m}");
        let expected_txns = all
            .iter()
            .filter(|t| t.merchant_id == merchant)
            .filter(|t| {
                let tile = window.tile_of(proto::time::to_unix_ms(t.event_time.as_ref().unwrap()));
                (from..=to).contains(&tile)
            })
            .count() as f64;
        let expected_reports = labels
            .iter()
            .filter(|l| {
                all.iter()
                    .any(|t| t.transaction_id == l.transaction_id && t.merchant_id == merchant)
            })
            .count() as f64;
        let mut probe = transaction(&run, 777_000 + m, t0);
        probe.merchant_id = merchant.clone();
        probe.event_time = Some(proto::time::from_unix_ms(probe_t));
        let get = |name: &str, v: &[f64]| v[features::schema::index_of(name).unwrap()];
        loop {
            let v = fs
                .get_feature_vector(v1::GetFeatureVectorRequest {
                    transaction: Some(probe.clone()),
                })
                .await
                .unwrap()
                .into_inner()
                .values;
            let got = (
                get("merchant_txn_count_1d", &v),
                get("merchant_fraud_reports_7d", &v),
            );
            if got == (expected_txns, expected_reports) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{merchant}: (transactions 1d, fraud reports 7d) online {got:?}, recount {:?}",
                (expected_txns, expected_reports)
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    // 7. Synchronous scoring over gRPC, and the same through grpcurl with a JSON transaction.
    let mut inf = InferenceServiceClient::connect(services[1].endpoint())
        .await
        .unwrap();
    let probe = transaction(&run, 123_456, now_ms() - 1_000);
    let r = inf
        .score(v1::ScoreRequest {
            transaction: Some(probe),
            explain: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.model_version, version);
    assert!(
        !r.degraded,
        "feature-service was up: the score must not be degraded"
    );
    // The synchronous score is also on the scores topic, marked as a request's.
    let probe_id = format!("{run}-t123456");
    let deadline = Instant::now() + Duration::from_secs(20);
    let event = loop {
        let found = crate::faults::read_topic(&kafka, topics::SCORES, &format!("{run}-u"))
            .await
            .iter()
            .filter_map(|d| d.decode::<v1::ScoreEvent>("score").ok())
            .find(|e| e.transaction_id == probe_id);
        if let Some(e) = found {
            break e;
        }
        assert!(
            Instant::now() < deadline,
            "the Score of {probe_id} never reached the scores topic"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(event.source, v1::ScoreSource::Request as i32, "{event:?}");
    assert_eq!(
        (
            event.model_version.as_str(),
            event.probability,
            event.decision,
            event.degraded
        ),
        (version.as_str(), r.probability, r.decision, false)
    );
    let grpcurl = grpcurl().expect("grpcurl is installed by scripts/setup.sh");
    let addr = format!("127.0.0.1:{}", services[1].grpc_port);
    let list = std::process::Command::new(&grpcurl)
        .args(["-plaintext", &addr, "list"])
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(
        list.contains("vigil.v1.InferenceService") && list.contains("grpc.health.v1.Health"),
        "{list}"
    );
    let json = format!(
        r#"{{"transaction":{{"transactionId":"{run}-json","userId":"{run}-u1","amount":{{"minorUnits":4200,"currency":"EUR"}},"merchantId":"m1","merchantCategory":"5411","channel":"CHANNEL_ONLINE","deviceId":"d1","country":"FR","eventTime":"2026-11-23T10:00:00Z"}},"explain":true}}"#
    );
    let out = std::process::Command::new(&grpcurl)
        .args([
            "-plaintext",
            // proto3 JSON omits zeros; a calibrated probability can be exactly 0.
            "-emit-defaults",
            "-d",
            &json,
            &addr,
            "vigil.v1.InferenceService/Score",
        ])
        .output()
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "grpcurl Score: {e}: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(body["modelVersion"], version.as_str());
    assert!(body["probability"].as_f64().is_some(), "{body}");
    // `explain` asks for reasons whatever the decision: the configured three.
    let reasons = body["reasons"].as_array().expect("reasons");
    assert_eq!(reasons.len(), 3, "{body}");
    if r.decision == v1::Decision::Approve as i32 {
        assert!(
            r.reasons.is_empty(),
            "an unexplained APPROVE has no reasons"
        );
    }

    // 7b. The drift-monitor's windows are in memory. SIGKILLed and restarted, it fills them
    //     from the tails of the scores and features topics before it answers, so its first
    //     report after the restart has a full window (without the warm-up it would have only
    //     what arrived since: nothing).
    let before = until_drift_report(&services[3], |r| {
        r.live_count == DRIFT_WINDOW && r.feature_live_count == DRIFT_WINDOW
    })
    .await;
    assert_eq!(before.model_version, version);
    // Every feature of the model is tested against the artifact's reference sample (the
    // trainer wrote it): a test, its threshold and verdict, or the reason it has none.
    assert_eq!(before.policy, "vigil");
    assert!(
        before.features.len() >= 40,
        "{} features",
        before.features.len()
    );
    let tested: Vec<&v1::FeatureDrift> = before
        .features
        .iter()
        .filter(|f| !f.test.is_empty())
        .collect();
    for f in &before.features {
        assert!(
            f.test.is_empty() != f.error.is_empty(),
            "{}: a test or a reason, not both or neither: {f:?}",
            f.name
        );
    }
    assert!(
        tested.len() * 2 >= before.features.len(),
        "{} tested",
        tested.len()
    );
    for f in &tested {
        assert!(f.threshold > 0.0 && f.reference_count > 0, "{f:?}");
        let live = f.live_count as f64 / (1.0 - f.live_missing_share);
        assert!(
            (live - DRIFT_WINDOW as f64).abs() < 0.5,
            "{f:?}: the whole window"
        );
        // 300 live vectors are a small sample: hypothesis tests, not distances.
        assert!(
            ["ks", "chi_square_homogeneity"].contains(&f.test.as_str()),
            "{f:?}"
        );
    }
    let drifted = tested.iter().filter(|f| f.drifted).count();
    assert_eq!(before.tested_features as usize, tested.len());
    assert_eq!(before.drifted_features as usize, drifted);
    assert_eq!(
        before.dataset_drift,
        drifted as f64 >= before.dataset_share * tested.len() as f64
    );
    services[3].kill();
    services[3].restart();
    services[3].wait_healthy().await;
    let after = until_drift_report(&services[3], |_| true).await;
    assert_eq!(
        (
            after.model_version.as_str(),
            after.live_count,
            after.feature_live_count
        ),
        (version.as_str(), DRIFT_WINDOW, DRIFT_WINDOW),
        "the first drift report after a restart has a full window"
    );

    // 8. Graceful shutdown: SIGTERM exits cleanly.
    for s in &mut services {
        assert!(s.terminate(), "{} did not exit cleanly on SIGTERM", s.name);
    }
    assert!(
        features.terminate(),
        "feature-service did not exit cleanly on SIGTERM"
    );

    // 9. Every poison record was quarantined by each stage that consumes its topic.
    let mut found: HashSet<(String, String)> = HashSet::new();
    for d in crate::faults::read_topic(&kafka, topics::QUARANTINE, &format!("{run}-poison-")).await
    {
        let q: v1::QuarantineRecord = d.decode("quarantine").unwrap();
        assert_eq!(q.field, "payload", "{q:?}");
        assert!(q.source_offset >= 0, "{q:?}");
        found.insert((q.source_topic, q.stage));
    }
    let want: HashSet<(String, String)> = [
        (topics::TRANSACTIONS, "speed-layer"),
        (topics::LABELS, "speed-layer"),
        (topics::PROFILES, "speed-layer"),
        (topics::FEATURES, "stream-scoring"),
        (topics::FEATURES, "drift-monitor"),
        (topics::SCORES, "drift-monitor"),
    ]
    .into_iter()
    .map(|(t, s)| (t.to_owned(), s.to_owned()))
    .collect();
    assert_eq!(found, want);
}
