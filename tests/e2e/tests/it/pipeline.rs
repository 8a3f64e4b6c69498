//! The whole loop on real Redis and the real broker: history → trainer → registry; then
//! transactions and labels → ingest → Kafka → feature-service (killed with SIGKILL and
//! restarted midway) → features → inference → scores → drift-monitor. User *and* merchant
//! state (transaction counters, fraud reports) must survive the crash without loss or double
//! counting.

use bus::{Consumer, KafkaConfig, topics};
use e2e::{Service, Stack, now_ms, run_to_completion};
use proto::v1;
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

fn grpcurl() -> Option<std::path::PathBuf> {
    let out = std::process::Command::new("bash")
        .args(["-c", "source scripts/lib.sh && grpcurl_bin"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .output()
        .ok()?;
    let path = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!path.is_empty()).then(|| path.into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transactions_flow_to_scores_and_a_crash_loses_and_double_counts_nothing() {
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
    run_to_completion(
        "datagen",
        &[
            "generate",
            "--seed",
            "3",
            "--users",
            "300",
            "--days",
            "30",
            // Enough fraud that every time window (train, validation, test, CV blocks) has some.
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
    let trained = run_to_completion(
        "trainer",
        &[
            "train",
            "--lake",
            history.join("lake").to_str().unwrap(),
            "--registry",
            registry.to_str().unwrap(),
            "--promote",
            "production",
            "--work-dir",
            history.join("trainset").to_str().unwrap(),
        ],
        &[],
    );
    let trained: serde_json::Value = serde_json::from_str(&trained).unwrap();
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
    let (ingest, inference) = (&services[0], &services[1]);

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

    // 3. Submit the first half, crash the feature-service, submit the rest, restart it.
    let t0 = now_ms() - 3_600_000;
    let all: Vec<v1::Transaction> = (0..USERS * PER_USER)
        .map(|k| transaction(&run, k, t0))
        .collect();
    let mut client = IngestServiceClient::connect(ingest.endpoint())
        .await
        .unwrap();
    let half = all.len() / 2;
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
    for chunk in all[..half].chunks(100) {
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
        all[..half]
            .iter()
            .any(|t| t.transaction_id == l.transaction_id)
    });
    submit_labels(first_labels).await;
    features.kill();
    submit_labels(late_labels).await;
    for chunk in all[half..].chunks(100) {
        let r = client
            .submit_batch(v1::SubmitBatchRequest {
                transactions: chunk.to_vec(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.accepted as usize, chunk.len());
    }
    // Re-sending already accepted transactions is reported as duplicates, not re-published.
    let again = client
        .submit_batch(v1::SubmitBatchRequest {
            transactions: all[..10].to_vec(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((again.accepted, again.duplicates), (0, 10));
    features.restart();
    features.wait_healthy().await;

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
    let deadline = Instant::now() + Duration::from_secs(180);
    while scored.len() < wanted.len() {
        assert!(
            Instant::now() < deadline,
            "only {} of {} transactions scored",
            scored.len(),
            wanted.len()
        );
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

    // 6. No loss, no double counting: online counts equal a recount from the lake.
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for t in &all {
        *expected.entry(t.user_id.clone()).or_default() += 1;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let lake_counts = loop {
        let reader = lake::LakeReader::open(&lake).await.unwrap();
        let counts: BTreeMap<String, u64> = reader
            .transaction_counts_by_user()
            .await
            .unwrap()
            .into_iter()
            .filter(|(u, _)| u.starts_with(&format!("{run}-")))
            .collect();
        if counts == expected || Instant::now() > deadline {
            break counts;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(
        lake_counts, expected,
        "the lake holds each transaction exactly once"
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
    let mut inf = InferenceServiceClient::connect(inference.endpoint())
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
    let grpcurl = grpcurl().expect("grpcurl is installed by scripts/setup.sh");
    let addr = format!("127.0.0.1:{}", inference.grpc_port);
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
