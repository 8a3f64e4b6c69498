use super::*;
use model::linear::LogisticModel;
use model::manifest::Manifest;
use model::policy::Thresholds;

fn write(dir: &Path, version: &str) -> Result<(), ModelError> {
    let manifest = Manifest {
        model_id: "fraud".into(),
        version: version.into(),
        schema_hash: "h".into(),
        feature_names: vec!["x".into()],
        thresholds: Thresholds {
            review: 0.5,
            block: 0.9,
        },
        ..Manifest::default()
    };
    let m = LogisticModel {
        means: vec![0.0],
        scales: vec![1.0],
        weights: vec![1.0],
        intercept: 0.0,
    };
    model::write_artifact(dir, manifest, model::ModelFile::Logistic(&m)).map(|_| ())
}

#[test]
fn registers_versions_moves_aliases_and_keeps_history() {
    let root = tempfile::tempdir().unwrap();
    let reg = Registry::open(root.path()).unwrap();
    let v1 = reg.register("fraud", 1, write_ok).unwrap();
    let v2 = reg.register("fraud", 2, write_ok).unwrap();
    assert_eq!((v1.version.as_str(), v2.version.as_str()), ("v1", "v2"));
    assert_eq!(reg.resolve(stages::PRODUCTION).unwrap(), None);
    assert_eq!(reg.set_alias(stages::PRODUCTION, &v1, 3).unwrap(), None);
    assert_eq!(
        reg.set_alias(stages::PRODUCTION, &v2, 4).unwrap(),
        Some(v1.clone())
    );
    assert_eq!(reg.resolve(stages::PRODUCTION).unwrap(), Some(v2.clone()));
    assert_eq!(reg.load(&v2).unwrap().manifest().version, "v2");
    assert_eq!(reg.history().unwrap().len(), 4);
    let missing = ModelRef {
        model_id: "fraud".into(),
        version: "v9".into(),
    };
    assert!(matches!(
        reg.set_alias("production", &missing, 5),
        Err(RegistryError::UnknownVersion { .. })
    ));
    assert!(reg.set_alias("../x", &v1, 5).is_err());
}

#[test]
fn a_failed_write_publishes_nothing() {
    let root = tempfile::tempdir().unwrap();
    let reg = Registry::open(root.path()).unwrap();
    let err = reg.register("fraud", 1, |_, _| {
        Err(RegistryError::from(ModelError::Invalid("boom".into())))
    });
    assert!(err.is_err());
    assert!(reg.versions("fraud").unwrap().is_empty());
    let empty = reg.register("fraud", 1, |_, _| Ok::<(), RegistryError>(()));
    assert!(empty.is_err(), "an unloadable artifact must be refused");
    assert!(reg.versions("fraud").unwrap().is_empty());
}

fn write_ok(dir: &Path, version: &str) -> Result<(), RegistryError> {
    write(dir, version).map_err(RegistryError::from)
}
