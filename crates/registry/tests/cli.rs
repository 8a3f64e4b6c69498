//! `vigil-registry` as an operator runs it: against a registry with two versions, every
//! subcommand's output and every alias move's history line, and refusals that name the cause.

use model::linear::LogisticModel;
use model::manifest::Manifest;
use model::policy::Thresholds;
use registry::{AliasAction, HistoryEvent, Registry};
use std::path::Path;
use std::process::Command;

fn write(dir: &Path, version: &str, auc: f64) -> Result<(), registry::RegistryError> {
    let manifest = Manifest {
        model_id: "fraud".into(),
        version: version.into(),
        schema_hash: "h".into(),
        feature_names: vec!["x".into()],
        thresholds: Thresholds {
            review: 0.5,
            block: 0.9,
        },
        metrics: [("test_roc_auc".to_owned(), auc)].into(),
        ..Manifest::default()
    };
    let m = LogisticModel {
        means: vec![0.0],
        scales: vec![1.0],
        weights: vec![1.0],
        intercept: 0.0,
    };
    model::write_artifact(dir, manifest, model::ModelFile::Logistic(&m))?;
    Ok(())
}

/// Runs the CLI; (success, stdout, stderr).
fn cli(root: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vigil-registry"))
        .arg("--registry")
        .arg(root)
        .args(args)
        .env_remove("VIGIL_REGISTRY__PATH")
        .output()
        .expect("run vigil-registry");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(root: &Path, args: &[&str]) -> String {
    let (success, stdout, stderr) = cli(root, args);
    assert!(success, "{args:?} failed: {stderr}");
    stdout
}

#[test]
fn an_operator_lists_compares_promotes_rolls_back_and_demotes() {
    let root = tempfile::tempdir().unwrap();
    let reg = Registry::open(root.path()).unwrap();
    reg.register("fraud", 1, |d, v| write(d, v, 0.90)).unwrap();
    reg.register("fraud", 2, |d, v| write(d, v, 0.93)).unwrap();
    let r = root.path();

    let models: serde_json::Value = serde_json::from_str(&ok(r, &["--json", "models"])).unwrap();
    assert_eq!(models[0]["model_id"], "fraud");
    assert_eq!(models[0]["versions"], 2);
    assert_eq!(models[0]["latest"], "v2");

    let compare: serde_json::Value =
        serde_json::from_str(&ok(r, &["--json", "compare", "fraud", "v1", "v2"])).unwrap();
    assert_eq!(compare["same_feature_set"], true);
    let auc = &compare["metrics"][0];
    assert_eq!(auc["metric"], "test_roc_auc");
    assert!(
        (auc["delta"].as_f64().unwrap() - 0.03).abs() < 1e-12,
        "{auc}"
    );

    let out = ok(
        r,
        &[
            "promote",
            "production",
            "fraud",
            "v1",
            "--reason",
            "first model",
        ],
    );
    assert!(out.contains("production: (unset) → fraud v1"), "{out}");
    ok(
        r,
        &[
            "promote",
            "production",
            "fraud",
            "v2",
            "--reason",
            "AUC +0.03",
        ],
    );
    let versions: serde_json::Value =
        serde_json::from_str(&ok(r, &["--json", "versions", "fraud"])).unwrap();
    assert_eq!(versions[1]["aliases"], serde_json::json!(["production"]));
    assert_eq!(versions[1]["metrics"]["test_roc_auc"], 0.93);
    let card = ok(r, &["show", "fraud", "v2"]);
    assert!(card.contains("aliases          [\"production\"]"), "{card}");
    assert!(card.contains("test_roc_auc"), "{card}");

    let out = ok(
        r,
        &["rollback", "production", "--reason", "alert rate doubled"],
    );
    assert!(out.contains("rolled back to fraud v1"), "{out}");
    assert_eq!(
        reg.resolve("production").unwrap().unwrap().version,
        "v1",
        "the CLI moved the registry's alias"
    );
    let history = ok(r, &["history", "--alias", "production"]);
    let lines: Vec<&str> = history.lines().collect();
    assert_eq!(lines.len(), 3, "{history}");
    assert!(
        lines[2].ends_with("v2 → v1 (Rollback) alert rate doubled"),
        "{history}"
    );
    match reg.history().unwrap().last().unwrap() {
        HistoryEvent::AliasMoved { reason, action, .. } => {
            assert_eq!(reason, "alert rate doubled");
            assert_eq!(*action, AliasAction::Rollback);
        }
        e => panic!("{e:?}"),
    }

    ok(r, &["demote", "production", "--reason", "incident 42"]);
    assert_eq!(reg.resolve("production").unwrap(), None);
    assert!(ok(r, &["aliases"]).is_empty());
}

#[test]
fn refusals_name_what_is_wrong_and_move_nothing() {
    let root = tempfile::tempdir().unwrap();
    let reg = Registry::open(root.path()).unwrap();
    reg.register("fraud", 1, |d, v| write(d, v, 0.9)).unwrap();
    let r = root.path();
    let (success, _, err) = cli(
        r,
        &["promote", "production", "fraud", "v9", "--reason", "x"],
    );
    assert!(!success);
    assert!(err.contains("no model fraud version v9"), "{err}");
    let (success, _, err) = cli(r, &["promote", "production", "fraud", "v1"]);
    assert!(!success);
    assert!(err.contains("--reason"), "{err}");
    let (success, _, err) = cli(r, &["rollback", "production", "--reason", "x"]);
    assert!(!success);
    assert!(err.contains("alias \"production\" is not set"), "{err}");
    let (success, _, err) = cli(&r.join("nowhere"), &["models"]);
    assert!(!success);
    assert!(err.contains("no registry at"), "{err}");
    assert!(reg.aliases().unwrap().is_empty());
    assert_eq!(reg.history().unwrap().len(), 1, "only the registration");
}
