//! Retraining on a policy, on the real binaries (issue 10, item 3): a model trained on a
//! generated history serves; a drifted stream of its features reaches the drift monitor,
//! whose verdict turns severe; after `sustained_reports` severe reports it asks the trainer
//! service for a run into `candidate` — **once**: the drift goes on, and the cool-down holds
//! every further request. The new version carries the drift verdict as its lineage.

use e2e::{Service, Stack, now_ms};
use registry::Registry;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sustained_drift_triggers_exactly_one_retrain_into_candidate() {
    let stack = Stack::from_env();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let run = format!("rt{}", now_ms());
    let (history, registry) = (root.join("history"), root.join("registry"));

    // A served model, trained on a generated history (as the pipeline test does).
    let trained = crate::pipeline::history_and_model(
        &history,
        &registry,
        5,
        &["--trigger", "e2e: first model"],
    );
    assert_eq!(trained["promoted_to"], "production", "{trained}");
    let reg = Registry::open(&registry).unwrap();
    let v1 = reg.resolve("production").unwrap().unwrap();
    let served = reg.load(&v1).unwrap();
    let manifest = served.manifest().clone();
    assert_eq!(manifest.params["trigger"], "e2e: first model");

    let mut env = stack.env();
    env.extend([
        (
            "VIGIL_LAKE__PATH".to_owned(),
            history.join("lake").display().to_string(),
        ),
        (
            "VIGIL_REGISTRY__PATH".to_owned(),
            registry.display().to_string(),
        ),
    ]);
    let mut env_trainer = env.clone();
    env_trainer.push((
        "VIGIL_TRAINER__WORK_DIR".into(),
        root.join("trainer-work").display().to_string(),
    ));
    let mut trainer = Service::start("trainer", env_trainer, root);
    trainer.wait_healthy().await;
    let config = root.join("drift.toml");
    std::fs::write(
        &config,
        format!(
            "[drift]\nconsumer_group = \"drift-{run}\"\nwindow = 400\nmin_count = 100\npublish_interval_secs = 1\n\
             [retrain]\nenabled = true\ntrainer_endpoint = \"{}\"\nsustained_reports = 2\ncooldown_secs = 3600\nmin_new_labels = 10\n",
            trainer.endpoint()
        ),
    )
    .unwrap();
    let mut env_drift = env.clone();
    env_drift.push(("VIGIL_CONFIG".into(), config.display().to_string()));
    let mut monitor = Service::start("drift-monitor", env_drift, root);
    monitor.wait_healthy().await;

    // The drifted world: the model's own reference rows with every numeric feature moved by
    // ten, as the speed layer would publish them; and some labels.
    let n = manifest.feature_names.len();
    let rows = model::read_reference_sample(&reg.version_dir(&v1), &manifest)
        .unwrap()
        .expect("the trainer writes a reference sample");
    let numeric: Vec<bool> = (0..n)
        .map(|j| {
            !matches!(
                manifest.feature_types.get(j),
                Some(model::manifest::FeatureType::Categorical)
            )
        })
        .collect();
    let producer = bus::Producer::new(
        &bus::KafkaConfig::new(stack.brokers.clone(), true),
        "retrain-test",
    )
    .unwrap();
    for i in 0..20 {
        let label = proto::v1::Label {
            transaction_id: format!("{run}-l{i}"),
            user_id: format!("{run}-u{i}"),
            is_fraud: i % 4 == 0,
            reported_at: Some(proto::time::from_unix_ms(now_ms())),
            ..Default::default()
        };
        producer
            .send(bus::topics::LABELS, &label.user_id, &label)
            .await
            .unwrap();
    }
    let mut sent = 0usize;
    let mut send_drifted = async |count: usize| {
        for _ in 0..count {
            let row = &rows[(sent % (rows.len() / n)) * n..][..n];
            let values: Vec<f64> = row
                .iter()
                .zip(&numeric)
                .map(|(v, &num)| if num { v + 10.0 } else { *v })
                .collect();
            let vector = proto::v1::FeatureVector {
                transaction_id: format!("{run}-t{sent}"),
                user_id: format!("{run}-u{}", sent % 50),
                schema_hash: manifest.schema_hash.clone(),
                values,
                ..Default::default()
            };
            producer
                .send(bus::topics::FEATURES, &vector.user_id, &vector)
                .await
                .unwrap();
            sent += 1;
        }
    };
    send_drifted(400).await;

    // One request once the verdict has been severe for two reports in a row.
    monitor
        .until_metric("vigil_drift_retrain_requests_total", 1.0)
        .await;
    assert!(
        monitor.metric("vigil_drift_severity") >= 2.0,
        "severe or critical"
    );
    // The drift goes on for several more reports: the cool-down holds every request.
    let until = Instant::now() + Duration::from_secs(6);
    while Instant::now() < until {
        send_drifted(50).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(
        monitor.metric("vigil_drift_retrain_requests_total{outcome=\"started\"}"),
        1.0,
        "exactly one retrain"
    );

    // The run trains on the lake as of now and moves `candidate`, with the verdict as lineage.
    let deadline = Instant::now() + Duration::from_secs(600);
    let candidate = loop {
        if let Some(c) = reg.resolve("candidate").unwrap() {
            break c;
        }
        assert!(
            Instant::now() < deadline,
            "no candidate; trainer log: {}",
            trainer.log_path().display()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_ne!(candidate, v1);
    assert_eq!(
        reg.resolve("production").unwrap(),
        Some(v1),
        "production untouched"
    );
    let lineage = reg.load(&candidate).unwrap().manifest().params["trigger"].clone();
    let lineage = lineage.as_str().unwrap_or_default().to_owned();
    assert!(
        lineage.starts_with("drift monitor: ") && lineage.contains("drift for 2 reports in a row"),
        "{lineage}"
    );
    assert_eq!(reg.versions(&candidate.model_id).unwrap().len(), 2);
    eprintln!(
        "retrain: {} registered as candidate: {lineage}",
        candidate.version
    );
}
