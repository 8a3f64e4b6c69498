//! The fault suite (issue 9), against the real binaries, Redis and the broker. Each case sends
//! a known stream, breaks something, and checks from the topics and the online state that no
//! accepted transaction is lost or counted twice.
//!
//! Cases so far: concurrent submissions of one id; a poison record (a user whose stored state
//! cannot be read) quarantined with its stage and reason while the pipeline keeps flowing;
//! Redis paused for writes for 10 s under the speed layer; a broker crash and a Redis restart
//! under the speed layer (on a private stack). The SIGKILL of each service is in
//! `pipeline.rs`.

use bus::{Consumer, Delivery, KafkaConfig, topics};
use e2e::{Service, Stack, now_ms};
use proto::v1;
use proto::v1::ingest_service_client::IngestServiceClient;
use std::collections::HashMap;
use std::time::{Duration, Instant};

pub(crate) fn transaction(run: &str, id: &str, user: &str, at: i64) -> v1::Transaction {
    v1::Transaction {
        transaction_id: format!("{run}-{id}"),
        user_id: format!("{run}-{user}"),
        account_id: format!("{run}-a-{user}"),
        amount: Some(v1::Money {
            minor_units: 1_250,
            currency: "EUR".into(),
        }),
        merchant_id: format!("{run}-m1"),
        merchant_category: "5411".into(),
        channel: v1::Channel::CardPresent as i32,
        device_id: "d1".into(),
        country: "FR".into(),
        geo: None,
        event_time: Some(proto::time::from_unix_ms(at)),
    }
}

/// Every record of `topic` up to its end offsets now, whose key starts with `prefix`.
pub(crate) async fn read_topic(kafka: &KafkaConfig, topic: &str, prefix: &str) -> Vec<Delivery> {
    let end = bus::admin::end_offsets(kafka, topic, kafka.partitions)
        .await
        .unwrap();
    let consumer = Consumer::new(kafka, &format!("faults-read-{}", now_ms()), &[topic]).unwrap();
    let mut next: HashMap<i32, i64> = HashMap::new();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while end
        .iter()
        .any(|(p, e)| next.get(p).copied().unwrap_or(0) < *e)
    {
        assert!(
            Instant::now() < deadline,
            "{topic} not read to its end in time"
        );
        if let Ok(Ok(batch)) = tokio::time::timeout(
            Duration::from_secs(2),
            consumer.next_batch(1_000, Duration::from_millis(50)),
        )
        .await
        {
            for d in batch {
                next.insert(d.partition, d.offset + 1);
                if d.key.as_deref().is_some_and(|k| k.starts_with(prefix)) {
                    out.push(d);
                }
            }
        }
    }
    out
}

/// Polls `topic` until `done` holds for the records under `prefix`, or fails after `secs`.
async fn until_topic(
    kafka: &KafkaConfig,
    topic: &str,
    prefix: &str,
    secs: u64,
    done: impl Fn(&[Delivery]) -> bool,
) -> Vec<Delivery> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let records = read_topic(kafka, topic, prefix).await;
        if done(&records) || Instant::now() > deadline {
            return records;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn redis_cli(url: &str, args: &[&str]) -> String {
    let out = std::process::Command::new("redis-cli")
        .arg("-u")
        .arg(url)
        .args(args)
        .output()
        .expect("redis-cli (installed with redis-server by scripts/setup.sh)");
    assert!(out.status.success(), "redis-cli {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_submissions_of_one_id_accept_it_exactly_once() {
    let stack = Stack::from_env();
    let dir = tempfile::tempdir().unwrap();
    let run = format!("c{}", now_ms());
    let mut ingest = Service::start("ingest", stack.env(), dir.path());
    ingest.wait_healthy().await;
    let t = transaction(&run, "t1", "u1", now_ms() - 60_000);

    // 16 single submissions and 8 batches containing the id, all at once, on their own
    // connections.
    let mut tasks = Vec::new();
    for k in 0..24 {
        let (endpoint, t) = (ingest.endpoint(), t.clone());
        tasks.push(tokio::spawn(async move {
            let mut c = IngestServiceClient::connect(endpoint).await.unwrap();
            if k % 3 == 2 {
                let r = c
                    .submit_batch(v1::SubmitBatchRequest {
                        transactions: vec![t],
                    })
                    .await
                    .unwrap()
                    .into_inner();
                assert!(r.rejected.is_empty(), "{r:?}");
                (r.accepted, r.duplicates, r.deferred.len() as u32)
            } else {
                match c
                    .submit(v1::SubmitRequest {
                        transaction: Some(t),
                    })
                    .await
                {
                    Ok(r) if r.get_ref().duplicate => (0, 1, 0),
                    Ok(_) => (1, 0, 0),
                    Err(s) if s.code() == tonic::Code::Aborted => (0, 0, 1),
                    Err(s) => panic!("unexpected status {s:?}"),
                }
            }
        }));
    }
    let (mut accepted, mut duplicates, mut deferred) = (0, 0, 0);
    for task in tasks {
        let (a, d, f) = task.await.unwrap();
        (accepted, duplicates, deferred) = (accepted + a, duplicates + d, deferred + f);
    }
    assert_eq!(accepted, 1, "duplicates {duplicates}, deferred {deferred}");
    assert_eq!(accepted + duplicates + deferred, 24);

    // Exactly one record on the topic, and a later retry is a duplicate.
    let kafka = KafkaConfig::new(stack.brokers.clone(), true);
    let on_topic = read_topic(&kafka, topics::TRANSACTIONS, &format!("{run}-")).await;
    assert_eq!(on_topic.len(), 1, "published {} times", on_topic.len());
    let mut c = IngestServiceClient::connect(ingest.endpoint())
        .await
        .unwrap();
    let again = c
        .submit(v1::SubmitRequest {
            transaction: Some(t),
        })
        .await
        .unwrap();
    assert!(again.get_ref().duplicate);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_poison_record_is_quarantined_with_its_stage_and_the_pipeline_keeps_flowing() {
    let stack = Stack::from_env();
    let dir = tempfile::tempdir().unwrap();
    let run = format!("p{}", now_ms());
    let mut env = stack.env();
    env.extend([
        (
            "VIGIL_LAKE__PATH".into(),
            dir.path().join("lake").display().to_string(),
        ),
        (
            "VIGIL_FEATURE_SERVICE__SPEED_GROUP".into(),
            format!("fs-{run}"),
        ),
        (
            "VIGIL_FEATURE_SERVICE__LAKE_GROUP".into(),
            format!("lake-{run}"),
        ),
        ("VIGIL_KAFKA__RETRY__MAX_ATTEMPTS".into(), "2".into()),
        ("VIGIL_KAFKA__RETRY__INITIAL_BACKOFF_MS".into(), "20".into()),
    ]);
    // The poison: a user whose stored state is not a state (a bad write, a bug, a manual fix
    // gone wrong). Every transaction of that user fails in the speed layer, whatever the retry.
    let poisoned = format!("{run}-u-poison");
    redis_cli(
        &stack.redis_url,
        &["SET", &format!("vigil:v4:user:{poisoned}"), "{not a state"],
    );
    // A label and a profile that decode and validate but can never be applied: the label is
    // about a merchant whose counter hash holds a field this code never writes, the profile
    // is a version for a user whose stored profile history is not one.
    let bad_merchant = format!("{run}-m-poison");
    redis_cli(
        &stack.redis_url,
        &[
            "HSET",
            &format!("vigil:v4:merchant:{bad_merchant}"),
            "bogus",
            "1",
        ],
    );
    let bad_profile_user = format!("{run}-u-badprofile");
    redis_cli(
        &stack.redis_url,
        &[
            "SET",
            &format!("vigil:v4:profile:{bad_profile_user}"),
            "[not a history",
        ],
    );
    let mut ingest = Service::start("ingest", env.clone(), dir.path());
    let mut features = Service::start("feature-service", env, dir.path());
    ingest.wait_healthy().await;
    features.wait_healthy().await;

    let t0 = now_ms() - 3_600_000;
    let mut all = Vec::new();
    for k in 0..60 {
        let user = if k % 10 == 3 {
            "u-poison".to_owned()
        } else {
            format!("u{}", k % 6)
        };
        all.push(transaction(&run, &format!("t{k}"), &user, t0 + k * 1_000));
    }
    let mut c = IngestServiceClient::connect(ingest.endpoint())
        .await
        .unwrap();
    let r = c
        .submit_batch(v1::SubmitBatchRequest {
            transactions: all.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.accepted, 60);

    let kafka = KafkaConfig::new(stack.brokers.clone(), true);
    let prefix = format!("{run}-");
    let healthy = all.iter().filter(|t| t.user_id != poisoned).count();
    // Every other user's transaction gets its vector, exactly once.
    let vectors = until_topic(&kafka, topics::FEATURES, &prefix, 90, |r| {
        r.len() >= healthy
    })
    .await;
    let mut per_id: HashMap<String, usize> = HashMap::new();
    for d in &vectors {
        let v: v1::FeatureVector = d.decode("vector").unwrap();
        assert_ne!(v.user_id, poisoned, "a vector for the poisoned user");
        *per_id.entry(v.transaction_id).or_default() += 1;
    }
    assert_eq!(per_id.len(), healthy, "vectors of healthy users");
    assert!(per_id.values().all(|n| *n == 1), "a vector published twice");

    // Each of the poisoned user's transactions is quarantined by the speed layer, with the
    // reason and where it was on its topic.
    let poisoned_ids: Vec<String> = all
        .iter()
        .filter(|t| t.user_id == poisoned)
        .map(|t| t.transaction_id.clone())
        .collect();
    let quarantined = until_topic(&kafka, topics::QUARANTINE, &poisoned, 60, |r| {
        r.len() >= poisoned_ids.len()
    })
    .await;
    let records: Vec<v1::QuarantineRecord> = quarantined
        .iter()
        .map(|d| d.decode("quarantine").unwrap())
        .filter(|q: &v1::QuarantineRecord| q.stage == "speed-layer")
        .collect();
    assert_eq!(records.len(), poisoned_ids.len(), "{records:?}");
    for q in &records {
        assert_eq!(q.source_topic, topics::TRANSACTIONS);
        assert!(q.source_offset >= 0 && q.source_partition >= 0, "{q:?}");
        assert!(q.reason.contains("corrupt state"), "{}", q.reason);
        let t: v1::Transaction = proto::prost::Message::decode(q.payload.as_slice()).unwrap();
        assert!(poisoned_ids.contains(&t.transaction_id));
    }

    // The label and the profile, each beside a healthy one submitted after it.
    let label = |id: &str, merchant: &str| v1::Label {
        transaction_id: format!("{run}-{id}"),
        user_id: format!("{run}-u0"),
        is_fraud: true,
        reported_at: Some(proto::time::from_unix_ms(t0 + 120_000)),
        event_time: Some(proto::time::from_unix_ms(t0)),
        merchant_id: merchant.to_owned(),
    };
    let r = c
        .submit_labels(v1::SubmitLabelsRequest {
            labels: vec![
                label("t0", &bad_merchant),
                label("t6", &format!("{run}-m1")),
            ],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.accepted, 2, "{r:?}");
    let profile = |user: &str| v1::UserProfile {
        user_id: user.to_owned(),
        account_opened_at: Some(proto::time::from_unix_ms(t0 - 86_400_000 * 400)),
        account_type: v1::AccountType::Personal as i32,
        home_country: "FR".into(),
        credit_band: 3,
        income_band: 2,
        valid_from: Some(proto::time::from_unix_ms(t0)),
    };
    let healthy_profile_user = format!("{run}-u-goodprofile");
    let r = c
        .submit_profiles(v1::SubmitProfilesRequest {
            profiles: vec![profile(&bad_profile_user), profile(&healthy_profile_user)],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.accepted, 2, "{r:?}");
    let quarantined = until_topic(&kafka, topics::QUARANTINE, &prefix, 90, |r| {
        let sources: Vec<String> = r
            .iter()
            .filter_map(|d| d.decode::<v1::QuarantineRecord>("quarantine").ok())
            .map(|q| q.source_topic)
            .collect();
        [topics::LABELS, topics::PROFILES]
            .iter()
            .all(|t| sources.iter().any(|s| s == t))
    })
    .await;
    let by_topic = |topic: &str| -> Vec<v1::QuarantineRecord> {
        quarantined
            .iter()
            .map(|d| d.decode::<v1::QuarantineRecord>("quarantine").unwrap())
            .filter(|q| q.source_topic == topic)
            .collect()
    };
    let labels = by_topic(topics::LABELS);
    assert_eq!(labels.len(), 1, "{labels:?}");
    assert_eq!(labels[0].stage, "speed-layer");
    assert!(
        labels[0].reason.contains("corrupt merchant state"),
        "{}",
        labels[0].reason
    );
    let l: v1::Label = proto::prost::Message::decode(labels[0].payload.as_slice()).unwrap();
    assert_eq!(l.merchant_id, bad_merchant);
    let profiles = by_topic(topics::PROFILES);
    assert_eq!(profiles.len(), 1, "{profiles:?}");
    assert_eq!(profiles[0].stage, "speed-layer");
    assert!(
        profiles[0].reason.contains("corrupt state"),
        "{}",
        profiles[0].reason
    );
    let p: v1::UserProfile = proto::prost::Message::decode(profiles[0].payload.as_slice()).unwrap();
    assert_eq!(p.user_id, bad_profile_user);
    // The healthy label and profile submitted with them were applied: the pipeline flowed on.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let fraud_fields = redis_cli(
            &stack.redis_url,
            &["HKEYS", &format!("vigil:v4:merchant:{run}-m1")],
        )
        .lines()
        .filter(|f| f.starts_with('f'))
        .count();
        let profile_stored = redis_cli(
            &stack.redis_url,
            &[
                "EXISTS",
                &format!("vigil:v4:profile:{healthy_profile_user}"),
            ],
        );
        if fraud_fields > 0 && profile_stored.trim() == "1" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "healthy label applied: {fraud_fields} fraud fields; healthy profile stored: {profile_stored}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The service stayed ready: a poison record is not an outage.
    features.wait_healthy().await;
}

fn feature_service_env(stack: &Stack, dir: &std::path::Path, run: &str) -> Vec<(String, String)> {
    let mut env = stack.env();
    env.extend([
        (
            "VIGIL_LAKE__PATH".into(),
            dir.join("lake").display().to_string(),
        ),
        (
            "VIGIL_FEATURE_SERVICE__SPEED_GROUP".into(),
            format!("fs-{run}"),
        ),
        (
            "VIGIL_FEATURE_SERVICE__LAKE_GROUP".into(),
            format!("lake-{run}"),
        ),
    ]);
    env
}

fn merchant_transactions(redis_url: &str, merchant: &str) -> i64 {
    let fields = redis_cli(
        redis_url,
        &["HGETALL", &format!("vigil:v4:merchant:{merchant}")],
    );
    let lines: Vec<&str> = fields.lines().collect();
    lines
        .chunks(2)
        .filter(|kv| kv[0].starts_with("c0:"))
        .map(|kv| kv[1].parse::<i64>().unwrap())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_paused_for_writes_holds_readiness_back_and_loses_or_doubles_nothing() {
    let stack = Stack::from_env();
    let dir = tempfile::tempdir().unwrap();
    let run = format!("r{}", now_ms());
    // Published straight to the topic: ingest itself writes to Redis, and this case is about
    // the speed layer.
    let (mut features, kafka, producer) = speed_layer_under_test(&stack, dir.path(), &run).await;
    let t0 = now_ms() - 600_000;
    let publish = |range| publish_transactions(&producer, &run, t0, range);
    let prefix = format!("{run}-");
    publish(0..20).await;
    until_topic(&kafka, topics::FEATURES, &prefix, 60, |r| r.len() >= 20).await;

    redis_cli(&stack.redis_url, &["CLIENT", "PAUSE", "10000", "WRITE"]);
    let paused_at = Instant::now();
    publish(20..40).await;
    let mut saw_not_serving = false;
    while paused_at.elapsed() < Duration::from_secs(10) {
        if !features.check_serving().await {
            saw_not_serving = true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        saw_not_serving,
        "the feature-service stayed SERVING while Redis refused writes for 10 s"
    );

    each_vector_once_and_counted_once(&kafka, &stack.redis_url, &run, 40).await;
    // And the service is ready again by itself.
    features.wait_healthy().await;
}

/// A ready feature-service with `run`'s consumer groups on `stack`, and a producer that
/// publishes straight to its topics.
async fn speed_layer_under_test(
    stack: &Stack,
    dir: &std::path::Path,
    run: &str,
) -> (Service, KafkaConfig, bus::Producer) {
    let mut features = Service::start("feature-service", feature_service_env(stack, dir, run), dir);
    features.wait_healthy().await;
    let kafka = KafkaConfig::new(stack.brokers.clone(), true);
    let producer = bus::Producer::new(&kafka, "faults-test").unwrap();
    (features, kafka, producer)
}

/// Publishes transactions `range` of `run` straight to the transactions topic (five users,
/// one merchant, a second apart from `t0`).
async fn publish_transactions(
    producer: &bus::Producer,
    run: &str,
    t0: i64,
    range: std::ops::Range<i64>,
) {
    for k in range {
        let t = transaction(
            run,
            &format!("t{k}"),
            &format!("u{}", k % 5),
            t0 + k * 1_000,
        );
        producer
            .send(topics::TRANSACTIONS, &t.user_id, &t)
            .await
            .unwrap();
    }
}

/// Waits for `n` vectors of `run` on the features topic, then checks that none is missing or
/// published twice, and that the merchant's counters (increments: a commit applied twice
/// would show) count `n`.
async fn each_vector_once_and_counted_once(
    kafka: &KafkaConfig,
    redis_url: &str,
    run: &str,
    n: usize,
) {
    let prefix = format!("{run}-");
    let vectors = until_topic(kafka, topics::FEATURES, &prefix, 120, |r| r.len() >= n).await;
    let mut per_id: HashMap<String, usize> = HashMap::new();
    for d in &vectors {
        let v: v1::FeatureVector = d.decode("vector").unwrap();
        *per_id.entry(v.transaction_id).or_default() += 1;
    }
    assert_eq!(per_id.len(), n, "vectors lost");
    let twice: Vec<_> = per_id.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "vectors published twice: {twice:?}");
    assert_eq!(
        merchant_transactions(redis_url, &format!("{run}-m1")),
        n as i64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_broker_crash_and_a_redis_restart_under_the_speed_layer_lose_and_double_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut private = e2e::PrivateStack::start(&dir.path().join("stack"));
    let stack = private.stack.clone();
    let run = format!("b{}", now_ms());
    let (mut features, kafka, producer) = speed_layer_under_test(&stack, dir.path(), &run).await;
    let t0 = now_ms() - 600_000;
    let publish = |range| publish_transactions(&producer, &run, t0, range);

    publish(0..20).await;
    each_vector_once_and_counted_once(&kafka, &stack.redis_url, &run, 20).await;

    // The broker crashes (SIGKILL) and is back 2 s later; the producer and the speed layer's
    // consumer reconnect by themselves.
    tokio::task::block_in_place(|| private.restart_broker(Duration::from_secs(2)));
    publish(20..40).await;
    each_vector_once_and_counted_once(&kafka, &stack.redis_url, &run, 40).await;

    // Redis stops (SHUTDOWN) under the running services and is back on the same AOF. Ingest,
    // which has no consumer loop to notice, probes it: NOT_SERVING after 3 failed probes,
    // SERVING again by itself.
    let mut ingest = Service::start("ingest", stack.env(), dir.path());
    ingest.wait_healthy().await;
    tokio::task::block_in_place(|| private.stop_redis());
    let stopped = Instant::now();
    while ingest.check_serving().await {
        assert!(
            stopped.elapsed() < Duration::from_secs(30),
            "ingest stayed SERVING with Redis down"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let noticed = stopped.elapsed();
    tokio::task::block_in_place(|| private.start_redis());
    ingest.wait_healthy().await;
    eprintln!(
        "faults: ingest NOT_SERVING {noticed:?} after Redis stopped; SERVING again after it was back"
    );
    publish(40..60).await;
    each_vector_once_and_counted_once(&kafka, &stack.redis_url, &run, 60).await;
    features.wait_healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_feature_service_killed_during_a_broker_outage_loses_and_doubles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut private = e2e::PrivateStack::start(&dir.path().join("stack"));
    let stack = private.stack.clone();
    let run = format!("o{}", now_ms());
    let (mut features, kafka, producer) = speed_layer_under_test(&stack, dir.path(), &run).await;
    let t0 = now_ms() - 600_000;
    let publish = |range| publish_transactions(&producer, &run, t0, range);

    publish(0..20).await;
    each_vector_once_and_counted_once(&kafka, &stack.redis_url, &run, 20).await;
    // 20 more arrive; the broker crashes while the speed layer works on them (vectors in the
    // outbox, unpublished), and the feature-service is SIGKILLed during the outage.
    publish(20..40).await;
    tokio::time::sleep(Duration::from_millis(30)).await;
    tokio::task::block_in_place(|| private.kill_broker());
    tokio::time::sleep(Duration::from_secs(1)).await;
    features.kill();
    // The broker is back after 3 s; the service stays down past its group session, as
    // Kubernetes' restart back-off keeps it (see docs/reliability.md on tansu).
    tokio::time::sleep(Duration::from_secs(2)).await;
    tokio::task::block_in_place(|| private.start_broker());
    tokio::time::sleep(Duration::from_secs(5)).await;
    features.restart();
    features.wait_healthy().await;
    publish(40..60).await;

    // Counters exact: nothing applied twice, nothing lost. Every transaction has its vector;
    // one published twice is possible only if the broker died part-way through a publish
    // that is then retried from the outbox, and a second copy must have the same values.
    let again = counted_exactly_and_each_vector_alike(&kafka, &stack.redis_url, &run, 60).await;
    eprintln!(
        "faults: feature-service killed during a broker outage; {again} vectors published twice"
    );
}

/// After a fault whose repair may publish some vectors again: waits until the merchant
/// counters of `run` reach `n`, checks that every transaction has a vector and that copies
/// of one have the same values, and that the counters stay at `n` (nothing counted twice).
/// Returns how many vectors were published more than once.
async fn counted_exactly_and_each_vector_alike(
    kafka: &KafkaConfig,
    redis_url: &str,
    run: &str,
    n: usize,
) -> usize {
    let merchant = format!("{run}-m1");
    let deadline = Instant::now() + Duration::from_secs(120);
    while merchant_transactions(redis_url, &merchant) < n as i64 {
        assert!(
            Instant::now() < deadline,
            "merchant counters {} of {n}",
            merchant_transactions(redis_url, &merchant)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let vectors = until_topic(kafka, topics::FEATURES, &format!("{run}-"), 60, |r| {
        r.len() >= n
    })
    .await;
    let mut per_id: HashMap<String, Vec<Vec<f64>>> = HashMap::new();
    for d in &vectors {
        let v: v1::FeatureVector = d.decode("vector").unwrap();
        per_id.entry(v.transaction_id).or_default().push(v.values);
    }
    assert_eq!(per_id.len(), n, "vectors lost");
    assert_copies_equal(&per_id);
    // Late increments would show here.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        merchant_transactions(redis_url, &merchant),
        n as i64,
        "counted twice"
    );
    per_id.values().filter(|c| c.len() > 1).count()
}

/// Copies of one transaction's vector have the same values (NaN equal to NaN).
fn assert_copies_equal(per_id: &HashMap<String, Vec<Vec<f64>>>) {
    for (id, copies) in per_id {
        let differ: Vec<usize> = (0..copies[0].len())
            .filter(|&i| {
                let same = |a: f64, b: f64| a == b || (a.is_nan() && b.is_nan());
                copies.iter().any(|c| !same(c[i], copies[0][i]))
            })
            .collect();
        assert!(
            differ.is_empty(),
            "{id}: copies differ at {differ:?}: {copies:?}"
        );
    }
}

/// Copies directory `from` to `to` (replacing it), as a backup or a lagging replica would
/// hold it.
fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    let _ = std::fs::remove_dir_all(to);
    let out = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .output()
        .unwrap();
    assert!(out.status.success(), "cp: {out:?}");
}

/// Transactions 0..20 of `run` applied, Redis's files copied to `snapshot` (the state a
/// replica that stops replicating there, or last night's backup, holds), then 20..40 applied.
async fn forty_applied_with_a_snapshot_after_twenty<F: std::future::Future<Output = ()>>(
    private: &mut e2e::PrivateStack,
    snapshot: &std::path::Path,
    kafka: &KafkaConfig,
    run: &str,
    publish: impl Fn(std::ops::Range<i64>) -> F,
) {
    let redis_url = private.stack.redis_url.clone();
    publish(0..20).await;
    each_vector_once_and_counted_once(kafka, &redis_url, run, 20).await;
    tokio::task::block_in_place(|| private.stop_redis());
    copy_dir(&private.redis_dir(), snapshot);
    tokio::task::block_in_place(|| private.start_redis());
    publish(20..40).await;
    each_vector_once_and_counted_once(kafka, &redis_url, run, 40).await;
}

/// Redis crashes (SIGKILL) and comes back on `snapshot`: without the writes made since.
fn restore_redis(private: &mut e2e::PrivateStack, snapshot: &std::path::Path) {
    tokio::task::block_in_place(|| {
        private.kill_redis();
        copy_dir(snapshot, &private.redis_dir());
        private.start_redis();
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_coming_back_without_its_last_writes_is_repaired_from_the_topic() {
    let dir = tempfile::tempdir().unwrap();
    let mut private = e2e::PrivateStack::start(&dir.path().join("stack"));
    let stack = private.stack.clone();
    let run = format!("l{}", now_ms());
    let (mut features, kafka, producer) = speed_layer_under_test(&stack, dir.path(), &run).await;
    let t0 = now_ms() - 600_000;
    let publish = |range| publish_transactions(&producer, &run, t0, range);
    let merchant = format!("{run}-m1");

    let snapshot = dir.path().join("redis-snapshot");
    forty_applied_with_a_snapshot_after_twenty(&mut private, &snapshot, &kafka, &run, publish)
        .await;

    // Redis crashes and comes back without the writes of transactions 20..40 (a failover
    // to that replica): its offsets are behind what the speed layer stored and committed.
    restore_redis(&mut private, &snapshot);
    assert_eq!(merchant_transactions(&stack.redis_url, &merchant), 20);
    publish(40..60).await;

    // The speed layer notices and re-reads the lost range from the topic: the counters are
    // exact again (60, not the 40 a consumer trusting its own position would leave). The
    // re-applied transactions' vectors are a second copy, with the same values (computed
    // again from the same state and records; consumers keep the first by transaction id).
    let again = counted_exactly_and_each_vector_alike(&kafka, &stack.redis_url, &run, 60).await;
    assert!(features.metric("vigil_features_speed_rewinds_total") >= 1.0);
    eprintln!(
        "faults: Redis lost 20 transactions' writes; repaired, {again} vectors published again"
    );
    features.wait_healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_losing_writes_while_the_feature_service_is_down_is_repaired_when_it_starts() {
    let dir = tempfile::tempdir().unwrap();
    let mut private = e2e::PrivateStack::start(&dir.path().join("stack"));
    let stack = private.stack.clone();
    let run = format!("d{}", now_ms());
    let (mut features, kafka, producer) = speed_layer_under_test(&stack, dir.path(), &run).await;
    let t0 = now_ms() - 600_000;
    let publish = |range| publish_transactions(&producer, &run, t0, range);
    let merchant = format!("{run}-m1");

    let snapshot = dir.path().join("redis-snapshot");
    forty_applied_with_a_snapshot_after_twenty(&mut private, &snapshot, &kafka, &run, publish)
        .await;

    // The feature-service stops (its group commits 40 to the broker on the way out), and
    // while no instance runs, Redis comes back without the writes of transactions 20..40.
    assert!(features.terminate(), "graceful shutdown");
    restore_redis(&mut private, &snapshot);
    assert_eq!(merchant_transactions(&stack.redis_url, &merchant), 20);

    // No running instance saw the loss. The one that starts compares Redis with what its
    // group had reached and re-reads 20..40 from the topic: 60, not the 40 a consumer
    // resuming from the group's position would leave.
    features.restart();
    features.wait_healthy().await;
    publish(40..60).await;
    let again = counted_exactly_and_each_vector_alike(&kafka, &stack.redis_url, &run, 60).await;
    assert!(features.metric("vigil_features_speed_rewinds_total") >= 1.0);
    assert_eq!(
        features.metric("vigil_features_speed_rewinds_past_retention_total"),
        0.0
    );
    eprintln!(
        "faults: Redis lost 20 transactions' writes while the feature-service was down; repaired on start, {again} vectors published again"
    );
}

/// Registers a logistic model over the live feature schema in which only `feature` matters
/// (`weight` on its raw value, then `intercept`); review at 0.5, block at 0.9.
pub(crate) fn register_logistic(
    reg: &registry::Registry,
    feature: &str,
    weight: f64,
    intercept: f64,
) -> registry::ModelRef {
    let n = features::FEATURES.len();
    let index = features::FEATURES
        .iter()
        .position(|f| f.name == feature)
        .expect("a feature of the schema");
    reg.register("fraud", now_ms(), |dir, version| {
        let manifest = model::Manifest {
            model_id: "fraud".into(),
            version: version.into(),
            feature_set_version: features::FEATURE_SET_VERSION.into(),
            schema_hash: features::schema_hash().into(),
            feature_names: features::FEATURES
                .iter()
                .map(|f| f.name.to_owned())
                .collect(),
            thresholds: model::Thresholds {
                review: 0.5,
                block: 0.9,
            },
            ..model::Manifest::default()
        };
        let mut weights = vec![0.0; n];
        weights[index] = weight;
        let m = model::linear::LogisticModel {
            means: vec![0.0; n],
            scales: vec![1.0; n],
            weights,
            intercept,
        };
        model::write_artifact(dir, manifest, model::ModelFile::Logistic(&m))
            .map(|_| ())
            .map_err(registry::RegistryError::from)
    })
    .unwrap()
}

/// The four streaming services on `stack` in this run's consumer groups, over a registry
/// (under `dir`) holding one model behind `production`, each with `extra` in its
/// environment; all healthy. Returns the feature-service and [ingest, inference,
/// drift-monitor].
pub(crate) async fn start_loop(
    stack: &Stack,
    dir: &std::path::Path,
    run: &str,
    extra: Vec<(String, String)>,
) -> (Service, Vec<Service>) {
    let registry = dir.join("registry");
    registry_with_a_model(&registry);
    let mut env = stack.env();
    env.extend(extra);
    env.extend([
        (
            "VIGIL_LAKE__PATH".into(),
            dir.join("lake").display().to_string(),
        ),
        (
            "VIGIL_REGISTRY__PATH".into(),
            registry.display().to_string(),
        ),
        (
            "VIGIL_FEATURE_SERVICE__SPEED_GROUP".into(),
            format!("fs-{run}"),
        ),
        (
            "VIGIL_FEATURE_SERVICE__LAKE_GROUP".into(),
            format!("lake-{run}"),
        ),
        (
            "VIGIL_INFERENCE__CONSUMER_GROUP".into(),
            format!("inf-{run}"),
        ),
        ("VIGIL_DRIFT__CONSUMER_GROUP".into(), format!("drift-{run}")),
    ]);
    let mut features = Service::start("feature-service", env.clone(), dir);
    features.wait_healthy().await;
    let mut env_inf = env.clone();
    env_inf.push(("VIGIL_FEATURES__ENDPOINT".into(), features.endpoint()));
    let mut services = vec![
        Service::start("ingest", env.clone(), dir),
        Service::start("inference", env_inf, dir),
        Service::start("drift-monitor", env, dir),
    ];
    for s in &mut services {
        s.wait_healthy().await;
    }
    (features, services)
}

/// A registry at `root` with one model over the feature schema behind `production`: a
/// logistic model on `amount_log` alone (the case is about the feature fetch, not the model).
pub(crate) fn registry_with_a_model(root: &std::path::Path) {
    let reg = registry::Registry::open(root).unwrap();
    let version = register_logistic(&reg, "amount_log", 1.0, -5.0);
    reg.set_alias("production", &version, "e2e fixture", now_ms())
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_the_feature_service_down_score_answers_degraded_at_once_and_recovers_by_itself() {
    use proto::v1::inference_service_client::InferenceServiceClient;
    let stack = Stack::from_env();
    let dir = tempfile::tempdir().unwrap();
    let run = format!("k{}", now_ms());
    registry_with_a_model(&dir.path().join("registry"));
    let mut features = Service::start(
        "feature-service",
        feature_service_env(&stack, dir.path(), &run),
        dir.path(),
    );
    features.wait_healthy().await;
    let mut env = stack.env();
    env.extend([
        (
            "VIGIL_REGISTRY__PATH".to_owned(),
            dir.path().join("registry").display().to_string(),
        ),
        ("VIGIL_FEATURES__ENDPOINT".to_owned(), features.endpoint()),
        (
            "VIGIL_INFERENCE__CONSUMER_GROUP".to_owned(),
            format!("inf-{run}"),
        ),
    ]);
    let mut inference = Service::start("inference", env, dir.path());
    inference.wait_healthy().await;
    let mut client = InferenceServiceClient::connect(inference.endpoint())
        .await
        .unwrap();
    // A batch with an invalid item: the item is reported by index, the others are scored.
    let mut bad = transaction(&run, "b1", "u1", now_ms() - 1_000);
    bad.country = "XX".into();
    let batch = client
        .score_batch(v1::ScoreBatchRequest {
            transactions: vec![
                transaction(&run, "b0", "u1", now_ms() - 1_000),
                bad,
                transaction(&run, "b2", "u1", now_ms() - 1_000),
            ],
        })
        .await
        .unwrap()
        .into_inner();
    let scored: Vec<&str> = batch
        .scores
        .iter()
        .map(|s| s.transaction_id.as_str())
        .collect();
    assert_eq!(
        scored,
        [format!("{run}-b0"), format!("{run}-b2")],
        "{batch:?}"
    );
    assert_eq!(batch.errors.len(), 1, "{batch:?}");
    assert_eq!(batch.errors[0].index, 1);
    assert!(
        batch.errors[0].message.contains("country"),
        "{:?}",
        batch.errors[0]
    );
    let mut score = async |k: usize| {
        let started = Instant::now();
        let r = client
            .score(v1::ScoreRequest {
                transaction: Some(transaction(&run, &format!("t{k}"), "u1", now_ms() - 1_000)),
                explain: false,
            })
            .await
            .unwrap()
            .into_inner();
        (r.degraded, started.elapsed())
    };
    assert!(!score(0).await.0, "the feature-service is up");

    features.kill();
    // Until the breaker opens (5 failures), each call waits for its failure (a refused
    // connection at once, or the 150 ms client timeout); every answer is degraded.
    for k in 1..=10 {
        assert!(score(k).await.0, "call {k} with the feature-service down");
    }
    assert!(inference.metric("vigil_inference_breaker_opened_total") >= 1.0);
    let mut open: Vec<Duration> = Vec::new();
    for k in 11..211 {
        let (degraded, took) = score(k).await;
        assert!(degraded);
        open.push(took);
    }
    open.sort();
    let (p50, p99, max) = (open[100], open[198], open[199]);
    eprintln!("faults: breaker open, 200 Score calls: p50 {p50:?}, p99 {p99:?}, max {max:?}");
    // "At once" means without waiting for the feature-service: a third of the 150 ms client
    // timeout here, where a debug build shares 2 cores with other tests. The 5 ms target is
    // measured on an idle machine (docs/reliability.md).
    assert!(
        p99 < Duration::from_millis(50),
        "degraded answers with the breaker open: p99 {p99:?}, as if still waiting on the feature-service"
    );

    // Back on the same port: a half-open probe finds it and closes the breaker by itself.
    features.restart();
    features.wait_healthy().await;
    let back = Instant::now();
    let mut k = 1_000;
    while score(k).await.0 {
        assert!(
            back.elapsed() < Duration::from_secs(30),
            "Score still degraded 30 s after the feature-service came back"
        );
        k += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "faults: breaker closed {:?} after the feature-service was back",
        back.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_over_the_configured_message_size_is_refused_before_any_of_it_is_accepted() {
    let stack = Stack::from_env();
    let dir = tempfile::tempdir().unwrap();
    let run = format!("s{}", now_ms());
    let mut env = stack.env();
    env.push(("VIGIL_SERVER__MAX_MESSAGE_BYTES".into(), "4096".into()));
    let mut ingest = Service::start("ingest", env, dir.path());
    ingest.wait_healthy().await;
    let mut client = IngestServiceClient::connect(ingest.endpoint())
        .await
        .unwrap();
    let batch = |n: usize| v1::SubmitBatchRequest {
        transactions: (0..n)
            .map(|k| transaction(&run, &format!("t{k}"), "u1", now_ms() - 1_000))
            .collect(),
    };
    let err = client.submit_batch(batch(100)).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::OutOfRange, "{err:?}");
    assert!(err.message().contains("4096"), "{}", err.message());
    // Nothing of it was accepted: the same ids in batches under the limit all go through.
    let (mut accepted, mut duplicates) = (0, 0);
    for k in (0..100).step_by(10) {
        let mut b = batch(100);
        b.transactions = b.transactions[k..k + 10].to_vec();
        let r = client.submit_batch(b).await.unwrap().into_inner();
        accepted += r.accepted;
        duplicates += r.duplicates;
    }
    assert_eq!((accepted, duplicates), (100, 0));
}
