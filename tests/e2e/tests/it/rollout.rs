//! Shadow, gated promotion and roll-back on the real binaries (issue 10, item 4): inference
//! serves `production` and shadows `candidate`; the drift monitor joins both models' scores
//! from `vigil.scores.v1` with labels from `vigil.labels.v1` and moves the registry's aliases.
//!
//! Three models over the live feature schema, each a logistic model on one feature:
//! - v1 (production at the start) on `hour_sin` — unrelated to fraud in this stream;
//! - v3 on −`amount_log` — ranks frauds *last*;
//! - v2 on `amount_log` — ranks them first (fraud here is a large amount).
//!
//! Phase 1: v3 is the candidate → the gate rejects it and removes the candidate alias.
//! Phase 2: v2 is the candidate → the gate promotes it to staging and production.
//! Phase 3: the world changes (fraud becomes the *small* amounts: a forced regression) → v2's
//! matured AP falls and the monitor rolls both aliases back to v1.
//! Every move is checked in the registry's history, with its reason.

use e2e::{Service, Stack, now_ms};
use proto::v1;
use proto::v1::inference_service_client::InferenceServiceClient;
use registry::{AliasAction, HistoryEvent, Registry};
use std::time::{Duration, Instant};

/// Gate sizes for the test: small enough to reach in seconds.
const PER_PHASE: usize = 400;

/// `PER_PHASE` transactions of fresh users: one in ten is a large amount (500–2 000 EUR),
/// the others 1–300 EUR; event times spread over the last day (so `hour_sin` varies).
fn phase(run: &str, phase: usize) -> Vec<(v1::Transaction, bool)> {
    let now = now_ms();
    (0..PER_PHASE)
        .map(|i| {
            let large = i % 10 == 3;
            let mut t = crate::faults::transaction(
                run,
                &format!("p{phase}-{i}"),
                &format!("p{phase}-u{i}"),
                now - 60_000 - ((i as i64 * 7_919) % 86_000) * 1_000,
            );
            let euros = if large {
                500 + (i as i64 * 37) % 1_500
            } else {
                1 + (i as i64 * 53) % 300
            };
            t.amount = Some(v1::Money {
                minor_units: euros * 100,
                currency: "EUR".into(),
            });
            (t, large)
        })
        .collect()
}

async fn score_all(
    inference: &mut InferenceServiceClient<tonic::transport::Channel>,
    txns: &[(v1::Transaction, bool)],
) -> Vec<String> {
    let r = inference
        .score_batch(v1::ScoreBatchRequest {
            transactions: txns.iter().map(|(t, _)| t.clone()).collect(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    r.scores.into_iter().map(|s| s.model_version).collect()
}

async fn label_all(
    producer: &bus::Producer,
    txns: &[(v1::Transaction, bool)],
    fraud: impl Fn(&v1::Transaction, bool) -> bool,
) {
    for (t, large) in txns {
        let label = v1::Label {
            transaction_id: t.transaction_id.clone(),
            user_id: t.user_id.clone(),
            is_fraud: fraud(t, *large),
            reported_at: Some(proto::time::from_unix_ms(now_ms())),
            event_time: t.event_time,
            merchant_id: t.merchant_id.clone(),
        };
        producer
            .send(bus::topics::LABELS, &t.user_id, &label)
            .await
            .unwrap();
    }
}

/// Waits until `ok` holds on the registry (the monitor evaluates every second).
async fn until(what: &str, reg: &Registry, ok: impl Fn(&Registry) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !ok(reg) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; history: {:#?}",
            reg.history().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_shadowed_candidate_is_promoted_only_when_better_and_rolled_back_after_a_regression() {
    let stack = Stack::from_env();
    let dir = tempfile::tempdir().unwrap();
    let run = format!("ro{}", now_ms());
    let root = dir.path().join("registry");
    let reg = Registry::open(&root).unwrap();
    let v1 = crate::faults::register_logistic(&reg, "hour_sin", 1.0, -2.0);
    let v2 = crate::faults::register_logistic(&reg, "amount_log", 1.0, -5.0);
    let v3 = crate::faults::register_logistic(&reg, "amount_log", -1.0, 2.0);
    reg.set_alias("production", &v1, "first model", now_ms())
        .unwrap();
    reg.set_alias("staging", &v1, "first model", now_ms())
        .unwrap();
    reg.set_alias("candidate", &v3, "phase 1", now_ms())
        .unwrap();

    let mut env = stack.env();
    env.extend([
        ("VIGIL_REGISTRY__PATH".into(), root.display().to_string()),
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
    ]);
    let mut features = Service::start("feature-service", env.clone(), dir.path());
    features.wait_healthy().await;
    let mut env_inf = env.clone();
    env_inf.extend([
        ("VIGIL_FEATURES__ENDPOINT".into(), features.endpoint()),
        (
            "VIGIL_INFERENCE__CONSUMER_GROUP".into(),
            format!("inf-{run}"),
        ),
        ("VIGIL_INFERENCE__SHADOW_ALIAS".into(), "candidate".into()),
        ("VIGIL_INFERENCE__POLL_INTERVAL_MS".into(), "200".into()),
    ]);
    let mut inference = Service::start("inference", env_inf, dir.path());
    // The gate's sizes and checks for this stream (the logistic fixtures are not calibrated,
    // so the ECE check is opened; every other check is as configured by default).
    let config = dir.path().join("drift.toml");
    std::fs::write(
        &config,
        format!(
            "[rollout]\nenabled = true\npromote_to = [\"staging\", \"production\"]\nevaluate_every_secs = 1\n\
             [rollout.gate]\nmin_labelled = {}\nmin_frauds = 20\nmax_ece = 1.0\n",
            PER_PHASE * 3 / 4
        ),
    )
    .unwrap();
    let mut env_drift = env.clone();
    env_drift.extend([
        ("VIGIL_CONFIG".into(), config.display().to_string()),
        ("VIGIL_DRIFT__CONSUMER_GROUP".into(), format!("drift-{run}")),
        ("VIGIL_DRIFT__POLL_INTERVAL_MS".into(), "200".into()),
    ]);
    let mut monitor = Service::start("drift-monitor", env_drift, dir.path());
    inference.wait_healthy().await;
    monitor.wait_healthy().await;
    let mut client = InferenceServiceClient::connect(inference.endpoint())
        .await
        .unwrap();
    let producer = bus::Producer::new(
        &bus::KafkaConfig::new(stack.brokers.clone(), true),
        "rollout-test",
    )
    .unwrap();
    // Inference loads the shadow within its poll interval.
    inference
        .until_metric("vigil_inference_model_swaps_total", 2.0)
        .await;

    // Phase 1: a worse candidate is rejected; its alias goes, production stays.
    let p1 = phase(&run, 1);
    let served = score_all(&mut client, &p1).await;
    assert!(
        served.iter().all(|v| *v == v1.version),
        "production answers"
    );
    label_all(&producer, &p1, |_, large| large).await;
    until("v3 rejected", &reg, |r| {
        r.resolve("candidate").unwrap().is_none()
    })
    .await;
    assert_eq!(reg.resolve("production").unwrap(), Some(v1.clone()));
    let rejected = reg
        .history()
        .unwrap()
        .into_iter()
        .rev()
        .find_map(|e| match e {
            HistoryEvent::AliasRemoved {
                alias,
                previous,
                reason,
                ..
            } if alias == "candidate" => Some((previous, reason)),
            _ => None,
        });
    let (previous, reason) = rejected.unwrap();
    assert_eq!(previous, v3);
    assert!(
        reason.starts_with("shadow gate failed: AP gain not shown"),
        "{reason}"
    );
    eprintln!("rollout: v3 rejected: {reason}");

    // Phase 2: a better candidate is shadowed, gated and promoted.
    reg.set_alias("candidate", &v2, "phase 2", now_ms())
        .unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await; // inference picks up the shadow
    let p2 = phase(&run, 2);
    let served = score_all(&mut client, &p2).await;
    assert!(
        served.iter().all(|v| *v == v1.version),
        "production still answers"
    );
    label_all(&producer, &p2, |_, large| large).await;
    until("v2 promoted", &reg, |r| {
        r.resolve("production").unwrap() == Some(v2.clone())
    })
    .await;
    assert_eq!(reg.resolve("staging").unwrap(), Some(v2.clone()));
    let moves: Vec<(String, String, AliasAction)> = reg
        .history()
        .unwrap()
        .into_iter()
        .filter_map(|e| match e {
            HistoryEvent::AliasMoved {
                alias,
                model,
                reason,
                action,
                ..
            } if model == v2 && alias != "candidate" => Some((alias, reason, action)),
            _ => None,
        })
        .collect();
    assert_eq!(moves.len(), 2, "{moves:?}");
    assert_eq!(
        (moves[0].0.as_str(), moves[1].0.as_str()),
        ("staging", "production")
    );
    assert!(
        moves[1].1.starts_with("shadow gate passed on"),
        "{}",
        moves[1].1
    );
    eprintln!("rollout: v2 promoted: {}", moves[1].1);

    // Phase 3: v2 serves; then the labels turn against it (fraud is now the small amounts).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let probe = phase(&format!("{run}-probe{}", now_ms()), 0);
        if score_all(&mut client, &probe[..1]).await[0] == v2.version {
            break;
        }
        assert!(Instant::now() < deadline, "inference never served v2");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let p3 = phase(&run, 3);
    let served = score_all(&mut client, &p3).await;
    assert!(served.iter().all(|v| *v == v2.version));
    label_all(&producer, &p3, |t, _| {
        t.amount.as_ref().is_some_and(|m| m.minor_units <= 30 * 100)
    })
    .await;
    until("v2 rolled back", &reg, |r| {
        r.resolve("production").unwrap() == Some(v1.clone())
    })
    .await;
    assert_eq!(reg.resolve("staging").unwrap(), Some(v1.clone()));
    let back: Vec<(String, String)> = reg
        .history()
        .unwrap()
        .into_iter()
        .filter_map(|e| match e {
            HistoryEvent::AliasMoved {
                alias,
                reason,
                action: AliasAction::Rollback,
                ..
            } => Some((alias, reason)),
            _ => None,
        })
        .collect();
    assert_eq!(back.len(), 2, "{back:?}");
    assert_eq!(
        (back[0].0.as_str(), back[1].0.as_str()),
        ("production", "staging")
    );
    assert!(
        back[0].1.starts_with("regression after promotion: AP"),
        "{}",
        back[0].1
    );
    eprintln!("rollout: v2 rolled back: {}", back[0].1);
    assert_eq!(monitor.metric("vigil_drift_rollbacks_total"), 1.0);
    assert_eq!(
        monitor.metric("vigil_drift_gate_decisions_total{verdict=\"promote\"}"),
        1.0
    );
}
