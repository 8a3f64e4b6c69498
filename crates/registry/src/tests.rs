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
    assert_eq!(
        reg.set_alias(stages::PRODUCTION, &v1, "first", 3).unwrap(),
        None
    );
    assert_eq!(
        reg.set_alias(stages::PRODUCTION, &v2, "better", 4).unwrap(),
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
        reg.set_alias("production", &missing, "x", 5),
        Err(RegistryError::UnknownVersion { .. })
    ));
    assert!(reg.set_alias("../x", &v1, "x", 5).is_err());
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

#[test]
fn concurrent_registrations_get_distinct_complete_versions() {
    let root = tempfile::tempdir().unwrap();
    let reg = Registry::open(root.path()).unwrap();
    let refs: Vec<ModelRef> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let reg = reg.clone();
                s.spawn(move || {
                    reg.register("fraud", i, |dir, version| {
                        // Long enough that every writer is mid-write at once.
                        std::thread::sleep(std::time::Duration::from_millis(100));
                        write_ok(dir, version)
                    })
                    .unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut versions: Vec<_> = refs.iter().map(|r| r.version.clone()).collect();
    versions.sort_by_key(|v| v[1..].parse::<u64>().unwrap());
    let expected: Vec<_> = (1..=8).map(|n| format!("v{n}")).collect();
    assert_eq!(versions, expected);
    assert_eq!(reg.versions("fraud").unwrap(), expected);
    for r in &refs {
        let loaded = reg.load(r).unwrap();
        assert_eq!(
            loaded.manifest().version,
            r.version,
            "each version holds its own artifact"
        );
        assert!(!reg.version_dir(r).join(WRITER_FILE).exists());
    }
    let leftovers: Vec<_> = std::fs::read_dir(root.path().join("models/fraud"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn concurrent_alias_moves_lose_no_alias() {
    let root = tempfile::tempdir().unwrap();
    let reg = Registry::open(root.path()).unwrap();
    let v1 = reg.register("fraud", 1, write_ok).unwrap();
    std::thread::scope(|s| {
        for i in 0..16 {
            let (reg, v1) = (reg.clone(), v1.clone());
            s.spawn(move || {
                reg.set_alias(&format!("a{i}"), &v1, "concurrent", i)
                    .unwrap()
            });
        }
    });
    assert_eq!(reg.aliases().unwrap().len(), 16);
    assert_eq!(reg.history().unwrap().len(), 17);
}

#[test]
fn a_claim_whose_writer_died_is_reclaimed_and_a_live_one_is_skipped() {
    let root = tempfile::tempdir().unwrap();
    let reg = Registry::open(root.path()).unwrap();
    // A writer that crashed: its claim directory is left, its lock is gone.
    let stale = root.path().join("models/fraud/.tmp-v1");
    std::fs::create_dir_all(&stale).unwrap();
    std::fs::write(stale.join(WRITER_FILE), b"").unwrap();
    std::fs::write(stale.join("half-written"), b"x").unwrap();
    // A writer still at work on v2.
    let live = root.path().join("models/fraud/.tmp-v2");
    std::fs::create_dir_all(&live).unwrap();
    let held = std::fs::File::create(live.join(WRITER_FILE)).unwrap();
    held.lock().unwrap();

    let v = reg.register("fraud", 1, write_ok).unwrap();
    assert_eq!(v.version, "v3", "v2 is still claimed, v1's claim is free");
    assert!(!stale.exists(), "the dead claim was removed");
    assert!(live.exists(), "a live claim is never removed");
    drop(held);
    let v = reg.register("fraud", 2, write_ok).unwrap();
    assert_eq!(v.version, "v4");
    assert!(!live.exists(), "the dead claim was cleared");
}

#[test]
fn names_are_short_file_safe_words_and_errors_quote_little_of_them() {
    for ok in [
        "production",
        "v12",
        "vigil-fraud",
        "a.b_c",
        &"x".repeat(MAX_NAME_LEN),
    ] {
        assert!(check_name(ok).is_ok(), "{ok}");
    }
    let long = "x".repeat(MAX_NAME_LEN + 1);
    for bad in ["", ".", "..", "../etc", "a/b", "prod\n", "é", long.as_str()] {
        let e = check_name(bad).expect_err(bad);
        assert!(e.to_string().len() < 100, "{e}");
    }
}

#[test]
fn a_reservation_dropped_unpublished_leaves_nothing_and_frees_its_number() {
    let root = tempfile::tempdir().unwrap();
    let reg = Registry::open(root.path()).unwrap();
    let r = reg.reserve_version("fraud").unwrap();
    assert_eq!(r.model().version, "v1");
    write_ok(r.dir(), "v1").unwrap();
    let dir = r.dir().to_path_buf();
    drop(r); // the training failed after writing part of the artifact
    assert!(!dir.exists());
    assert!(reg.versions("fraud").unwrap().is_empty());
    let r = reg.reserve_version("fraud").unwrap();
    assert_eq!(r.model().version, "v1", "the number is free again");
    // An artifact naming another version is refused, and nothing is published.
    write_ok(r.dir(), "v7").unwrap();
    let err = reg.publish(r, 1).unwrap_err();
    assert!(
        err.to_string().contains("the reservation is fraud v1"),
        "{err}"
    );
    assert!(reg.versions("fraud").unwrap().is_empty());
    assert!(reg.history().unwrap().is_empty());
    let r = reg.reserve_version("fraud").unwrap();
    write_ok(r.dir(), "v1").unwrap();
    let v1 = reg.publish(r, 2).unwrap();
    assert_eq!(reg.load(&v1).unwrap().manifest().version, "v1");
    assert_eq!(
        reg.history().unwrap(),
        vec![HistoryEvent::Registered {
            at_ms: 2,
            model: v1
        }]
    );
}

#[test]
fn roll_backs_undo_promotions_in_order_with_their_reasons() {
    let root = tempfile::tempdir().unwrap();
    let reg = Registry::open(root.path()).unwrap();
    let v: Vec<ModelRef> = (1..=3)
        .map(|i| reg.register("fraud", i, write_ok).unwrap())
        .collect();
    let p = stages::PRODUCTION;
    assert!(matches!(
        reg.rollback(p, "nothing yet", 10),
        Err(RegistryError::NoAlias(_))
    ));
    reg.set_alias(p, &v[0], "first model", 11).unwrap();
    assert!(matches!(
        reg.rollback(p, "only one target", 12),
        Err(RegistryError::NothingToRollBackTo { .. })
    ));
    reg.set_alias(p, &v[1], "gate passed", 13).unwrap();
    reg.set_alias(p, &v[2], "gate passed", 14).unwrap();
    assert_eq!(reg.rollback(p, "AP fell 0.05", 15).unwrap(), v[1]);
    assert_eq!(reg.resolve(p).unwrap(), Some(v[1].clone()));
    // A second roll-back goes further back, not forth to v3.
    assert_eq!(reg.rollback(p, "still worse", 16).unwrap(), v[0]);
    assert!(matches!(
        reg.rollback(p, "nothing left", 17),
        Err(RegistryError::NothingToRollBackTo { .. })
    ));
    // A promotion after roll-backs is undone back to where the alias was.
    reg.set_alias(p, &v[2], "fixed", 18).unwrap();
    assert_eq!(reg.rollback(p, "not fixed", 19).unwrap(), v[0]);
    // Other aliases are independent; every move has its reason and action.
    reg.set_alias(stages::STAGING, &v[2], "shadow passed", 20)
        .unwrap();
    assert_eq!(reg.aliases_of(&v[2]).unwrap(), vec!["staging".to_owned()]);
    assert_eq!(
        reg.aliases_of(&v[0]).unwrap(),
        vec!["production".to_owned()]
    );
    let moves: Vec<(String, AliasAction)> = reg
        .history()
        .unwrap()
        .into_iter()
        .filter_map(|e| match e {
            HistoryEvent::AliasMoved { reason, action, .. } => Some((reason, action)),
            _ => None,
        })
        .collect();
    assert_eq!(moves.len(), 8);
    assert_eq!(moves[3], ("AP fell 0.05".to_owned(), AliasAction::Rollback));
    assert_eq!(moves[7], ("shadow passed".to_owned(), AliasAction::Set));
}

#[test]
fn a_demotion_removes_the_alias_and_an_empty_reason_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let reg = Registry::open(root.path()).unwrap();
    let v1 = reg.register("fraud", 1, write_ok).unwrap();
    assert!(matches!(
        reg.set_alias("staging", &v1, "  ", 2),
        Err(RegistryError::Reason(_))
    ));
    assert!(matches!(
        reg.set_alias("staging", &v1, &"x".repeat(MAX_REASON_LEN + 1), 2),
        Err(RegistryError::Reason(_))
    ));
    assert_eq!(
        reg.resolve("staging").unwrap(),
        None,
        "a refused move moves nothing"
    );
    reg.set_alias("staging", &v1, "try it", 3).unwrap();
    assert_eq!(reg.remove_alias("staging", "withdrawn", 4).unwrap(), v1);
    assert_eq!(reg.resolve("staging").unwrap(), None);
    assert!(matches!(
        reg.remove_alias("staging", "again", 5),
        Err(RegistryError::NoAlias(_))
    ));
    let last = reg.history().unwrap().pop().unwrap();
    assert_eq!(
        last,
        HistoryEvent::AliasRemoved {
            at_ms: 4,
            alias: "staging".into(),
            previous: v1,
            reason: "withdrawn".into()
        }
    );
}

#[test]
fn histories_written_before_reasons_still_read() {
    let root = tempfile::tempdir().unwrap();
    let reg = Registry::open(root.path()).unwrap();
    std::fs::write(
        root.path().join("history.jsonl"),
        r#"{"event":"alias_moved","at_ms":1,"alias":"production","model":{"model_id":"fraud","version":"v1"},"previous":null}
"#,
    )
    .unwrap();
    match &reg.history().unwrap()[0] {
        HistoryEvent::AliasMoved { reason, action, .. } => {
            assert_eq!((reason.as_str(), *action), ("", AliasAction::Set))
        }
        e => panic!("{e:?}"),
    }
}
