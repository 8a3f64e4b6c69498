//! Loading: accepted types, sorting, categorical encoding, fingerprints and every refusal.

use std::path::Path;

use arrow::array::{
    BooleanArray, DictionaryArray, Float32Array, Float64Array, Int32Array, Int64Array,
    LargeStringArray, StringArray, TimestampMicrosecondArray, TimestampNanosecondArray,
    TimestampSecondArray, UInt64Array,
};
use arrow::datatypes::Int32Type;
use serde_json::json;
use trainset::{ColumnRole, FeatureType, TrainingSet, TrainsetError};

use crate::support::{arc, manifest, write_manifest, write_parquet};

type Row<'a> = (&'a str, i64, i64, Option<f64>, Option<&'a str>);

/// Writes rows as `file` with Utf8 entity, Int64 time, Int64 label, Float64 amount and Utf8
/// channel.
fn write_rows(file: &Path, rows: &[Row<'_>]) {
    write_parquet(
        file,
        vec![
            (
                "user_id",
                arc(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
            ),
            (
                "event_time_ms",
                arc(Int64Array::from_iter_values(rows.iter().map(|r| r.1))),
            ),
            (
                "is_fraud",
                arc(Int64Array::from_iter_values(rows.iter().map(|r| r.2))),
            ),
            (
                "amount_minor",
                arc(rows.iter().map(|r| r.3).collect::<Float64Array>()),
            ),
            (
                "channel",
                arc(rows.iter().map(|r| r.4).collect::<StringArray>()),
            ),
        ],
    );
}

fn load_err(dir: &Path) -> TrainsetError {
    TrainingSet::load(dir.join("trainset.json")).expect_err("the set should be refused")
}

const ROWS: &[Row<'static>] = &[
    ("u1", 10, 0, Some(1.0), Some("web")),
    ("u2", 20, 1, Some(2.0), Some("pos")),
    ("u1", 30, 0, None, None),
];

#[test]
fn loads_mixed_types_from_a_directory_sorted_by_time_entity_and_file_order() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let channel = |v: Vec<Option<&str>>| arc(v.into_iter().collect::<DictionaryArray<Int32Type>>());
    write_parquet(
        &d.join("data/part-0.parquet"),
        vec![
            ("user_id", arc(StringArray::from(vec!["b", "a", "c", "a"]))),
            (
                "event_time_ms",
                arc(TimestampMicrosecondArray::from(vec![
                    2_000_000, 1_000_500, 2_000_999, 3_000_000,
                ])
                .with_timezone("UTC")),
            ),
            ("is_fraud", arc(Int32Array::from(vec![0, 1, 0, 1]))),
            (
                "amount_minor",
                arc(Int32Array::from(vec![Some(10), None, Some(30), Some(40)])),
            ),
            (
                "channel",
                channel(vec![Some("web"), Some("pos"), None, Some("web")]),
            ),
            ("unused", arc(StringArray::from(vec!["x"; 4]))),
        ],
    );
    write_parquet(
        &d.join("data/part-1.parquet"),
        vec![
            ("user_id", arc(StringArray::from(vec!["a", "b", "b"]))),
            (
                "event_time_ms",
                arc(
                    TimestampMicrosecondArray::from(vec![2_000_000, 500_000, 2_000_000])
                        .with_timezone("UTC"),
                ),
            ),
            ("is_fraud", arc(Int32Array::from(vec![1, 0, 1]))),
            ("amount_minor", arc(Int32Array::from(vec![50, 60, 70]))),
            (
                "channel",
                channel(vec![Some("app"), Some("web"), Some("pos")]),
            ),
            ("unused", arc(StringArray::from(vec!["x"; 3]))),
        ],
    );
    // Files the reader must skip.
    std::fs::write(d.join("data/_SUCCESS"), b"").unwrap();
    std::fs::write(d.join("data/.part-0.parquet.crc"), b"junk").unwrap();
    std::fs::write(d.join("data/_tmp.parquet"), b"junk").unwrap();
    let mut set = TrainingSet::load(write_manifest(d, &manifest())).unwrap();

    assert_eq!(set.len(), 7);
    assert_eq!(set.positives(), 4);
    assert_eq!(set.name(), "vigil-v1");
    assert_eq!(set.label_delay_ms(), 1000);
    assert_eq!(set.feature_names(), ["amount_minor", "channel"]);
    assert_eq!(
        set.feature_types(),
        [FeatureType::Numeric, FeatureType::Categorical]
    );
    assert_eq!(set.n_features(), 2);
    assert_eq!(set.entities(), ["b", "a", "a", "b", "b", "c", "a"]);
    assert_eq!(set.times_ms(), [500, 1000, 2000, 2000, 2000, 2000, 3000]);
    assert_eq!(set.labels(), [false, true, true, false, true, false, true]);
    let amounts: Vec<f64> = (0..set.len()).map(|i| set.row(i)[0]).collect();
    // (b, 2000) twice: part-0's row (10) before part-1's (70).
    assert_eq!(amounts[..1], [60.0]);
    assert!(amounts[1].is_nan(), "null numeric is NaN");
    assert_eq!(amounts[2..], [50.0, 10.0, 70.0, 30.0, 40.0]);
    let raw: Vec<Option<&str>> = set.categorical_raw()[0]
        .iter()
        .map(Option::as_deref)
        .collect();
    assert_eq!(
        raw,
        [
            Some("web"),
            Some("pos"),
            Some("app"),
            Some("web"),
            Some("pos"),
            None,
            Some("web")
        ]
    );
    assert_eq!(set.categorical_features(), [1]);
    assert!(set.encodings().is_none());
    assert!(
        (0..set.len()).all(|i| set.row(i)[1].is_nan()),
        "not encoded yet"
    );

    // Fit on the first two rows only: web and pos once each → pos 0, web 1; app unseen → 2.
    let fingerprint = set.fingerprint();
    let encodings = set.encode_categoricals(0..2);
    assert_eq!(encodings.len(), 1);
    assert_eq!(encodings[0].feature(), "channel");
    assert_eq!(encodings[0].categories(), ["pos", "web"]);
    let codes: Vec<f64> = (0..set.len()).map(|i| set.row(i)[1]).collect();
    assert_eq!(codes[..5], [1.0, 0.0, 2.0, 1.0, 0.0]);
    assert!(codes[5].is_nan());
    assert_eq!(codes[6], 1.0);
    assert_eq!(set.encodings().unwrap(), encodings.as_slice());
    assert_eq!(
        set.fingerprint(),
        fingerprint,
        "encoding does not change the fingerprint"
    );

    // Refitting on more rows: web 2, pos 2, app 1 → pos 0, web 1 (tie by value), app 2.
    let refit = set.encode_categoricals(0..5);
    assert_eq!(refit[0].categories(), ["pos", "web", "app"]);
    let codes: Vec<f64> = (0..5).map(|i| set.row(i)[1]).collect();
    assert_eq!(codes, [1.0, 0.0, 2.0, 1.0, 0.0]);
    assert_eq!(set.values().len(), 14);
}

#[test]
fn timestamps_of_every_unit_become_floored_milliseconds() {
    let m = json!({
        "name": "t", "entity_column": "e", "time_column": "t", "label_column": "l",
        "label_delay_ms": 0, "features": [{"name": "x", "type": "numeric"}], "data": "d.parquet"
    });
    let cases: Vec<(arrow::array::ArrayRef, Vec<i64>)> = vec![
        (
            arc(TimestampSecondArray::from(vec![-2, 5])),
            vec![-2000, 5000],
        ),
        (
            arc(TimestampNanosecondArray::from(vec![-1, 1_999_999]).with_timezone("+02:00")),
            vec![-1, 1],
        ),
        (
            arc(Int64Array::from(vec![-7, 1_700_000_000_000])),
            vec![-7, 1_700_000_000_000],
        ),
    ];
    for (times, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        write_parquet(
            &dir.path().join("d.parquet"),
            vec![
                ("e", arc(StringArray::from(vec!["a", "a"]))),
                ("t", times),
                ("l", arc(BooleanArray::from(vec![false, true]))),
                ("x", arc(Float64Array::from(vec![1.0, 2.0]))),
            ],
        );
        let set = TrainingSet::load(write_manifest(dir.path(), &m)).unwrap();
        assert_eq!(set.times_ms(), expected);
    }
}

#[test]
fn integer_entities_and_categories_are_kept_as_decimal_strings() {
    let dir = tempfile::tempdir().unwrap();
    let m = json!({
        "name": "t", "entity_column": "card", "time_column": "t", "label_column": "l",
        "label_delay_ms": 0,
        "features": [{"name": "mcc", "type": "categorical"}, {"name": "x", "type": "numeric"}],
        "data": "d.parquet"
    });
    write_parquet(
        &dir.path().join("d.parquet"),
        vec![
            ("card", arc(UInt64Array::from(vec![u64::MAX, 7]))),
            ("t", arc(Int64Array::from(vec![1, 2]))),
            ("l", arc(Float32Array::from(vec![1.0, 0.0]))),
            ("mcc", arc(Int64Array::from(vec![Some(5411), None]))),
            ("x", arc(Float32Array::from(vec![f32::NAN, 0.5]))),
        ],
    );
    let set = TrainingSet::load(write_manifest(dir.path(), &m)).unwrap();
    assert_eq!(set.entities(), ["18446744073709551615", "7"]);
    assert_eq!(set.labels(), [true, false]);
    assert_eq!(set.categorical_raw()[0], [Some("5411".to_string()), None]);
    assert!(set.row(0)[1].is_nan());
    assert_eq!(set.row(1)[1], 0.5);
}

#[test]
fn large_utf8_entities_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let m = json!({
        "name": "t", "entity_column": "e", "time_column": "event_time_ms",
        "label_column": "is_fraud", "label_delay_ms": 0,
        "features": [{"name": "amount_minor", "type": "numeric"}], "data": "e.parquet"
    });
    write_parquet(
        &dir.path().join("e.parquet"),
        vec![
            ("e", arc(LargeStringArray::from(vec!["x", "y"]))),
            ("event_time_ms", arc(Int64Array::from(vec![2, 1]))),
            ("is_fraud", arc(BooleanArray::from(vec![true, false]))),
            ("amount_minor", arc(Int64Array::from(vec![3, 4]))),
        ],
    );
    let set = TrainingSet::load(write_manifest(dir.path(), &m)).unwrap();
    assert_eq!(set.entities(), ["y", "x"]);
    assert_eq!(set.values(), [4.0, 3.0]);
}

#[test]
fn fingerprint_depends_on_content_and_order_not_on_file_layout() {
    let fingerprint = |layout: &[&[Row<'_>]]| {
        let dir = tempfile::tempdir().unwrap();
        for (i, rows) in layout.iter().enumerate() {
            write_rows(&dir.path().join(format!("data/part-{i}.parquet")), rows);
        }
        TrainingSet::load(write_manifest(dir.path(), &manifest()))
            .unwrap()
            .fingerprint()
    };
    let base = fingerprint(&[ROWS]);
    assert_eq!(base.len(), 64);
    assert_eq!(base, fingerprint(&[&ROWS[..1], &ROWS[1..]]));
    // NaN in the data and null are both "missing".
    let mut nan = ROWS.to_vec();
    nan[2].3 = Some(f64::NAN);
    assert_eq!(base, fingerprint(&[&nan]));

    let mut changed = ROWS.to_vec();
    changed[0].3 = Some(1.5);
    assert_ne!(base, fingerprint(&[&changed]), "numeric value");
    let mut changed = ROWS.to_vec();
    changed[1].4 = Some("app");
    assert_ne!(base, fingerprint(&[&changed]), "category");
    let mut changed = ROWS.to_vec();
    changed[2].4 = Some("");
    assert_ne!(
        base,
        fingerprint(&[&changed]),
        "empty category is not missing"
    );
    let mut changed = ROWS.to_vec();
    changed[0].0 = "u3";
    assert_ne!(base, fingerprint(&[&changed]), "entity");
    let mut changed = ROWS.to_vec();
    changed[0].2 = 1;
    assert_ne!(base, fingerprint(&[&changed]), "label");
    let mut changed = ROWS.to_vec();
    changed[0].1 = 11;
    assert_ne!(base, fingerprint(&[&changed]), "time");
    // Same rows, ties in the other file order: the sorted order differs.
    let tie_a: &[Row<'_>] = &[("u", 1, 0, Some(1.0), None), ("u", 1, 0, Some(2.0), None)];
    let tie_b: &[Row<'_>] = &[("u", 1, 0, Some(2.0), None), ("u", 1, 0, Some(1.0), None)];
    assert_ne!(fingerprint(&[tie_a]), fingerprint(&[tie_b]), "order");
}

// ---- refusals ----

#[test]
fn refuses_a_numeric_feature_stored_as_strings() {
    let dir = tempfile::tempdir().unwrap();
    write_parquet(
        &dir.path().join("data/part-0.parquet"),
        vec![
            ("user_id", arc(StringArray::from(vec!["a"]))),
            ("event_time_ms", arc(Int64Array::from(vec![1]))),
            ("is_fraud", arc(Int64Array::from(vec![0]))),
            ("amount_minor", arc(StringArray::from(vec!["12.50"]))),
            ("channel", arc(StringArray::from(vec!["web"]))),
        ],
    );
    write_manifest(dir.path(), &manifest());
    let err = load_err(dir.path());
    let message = err.to_string();
    assert!(
        message.starts_with(
            r#"column "amount_minor": declared numeric feature but the Parquet type is Utf8 in "#
        ),
        "{message}"
    );
    assert!(message.contains("part-0.parquet"), "{message}");
    assert!(matches!(
        err,
        TrainsetError::WrongType {
            role: ColumnRole::Feature(FeatureType::Numeric),
            ..
        }
    ));
}

#[test]
fn refuses_wrong_types_for_time_label_categorical_and_entity() {
    let cases: Vec<(&str, arrow::array::ArrayRef, &str)> = vec![
        (
            "event_time_ms",
            arc(StringArray::from(vec!["2024-01-01"])),
            "declared time but the Parquet type is Utf8",
        ),
        (
            "event_time_ms",
            arc(Int32Array::from(vec![1])),
            "declared time but the Parquet type is Int32",
        ),
        (
            "is_fraud",
            arc(StringArray::from(vec!["yes"])),
            "declared label but the Parquet type is Utf8",
        ),
        (
            "channel",
            arc(Float64Array::from(vec![1.0])),
            "declared categorical feature but the Parquet type is Float64",
        ),
        (
            "user_id",
            arc(Float64Array::from(vec![1.0])),
            "declared entity but the Parquet type is Float64",
        ),
    ];
    for (column, array, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let mut columns = vec![
            ("user_id", arc(StringArray::from(vec!["a"]))),
            ("event_time_ms", arc(Int64Array::from(vec![1]))),
            ("is_fraud", arc(Int64Array::from(vec![0]))),
            ("amount_minor", arc(Float64Array::from(vec![1.0]))),
            ("channel", arc(StringArray::from(vec!["web"]))),
        ];
        columns
            .iter_mut()
            .find(|(name, _)| *name == column)
            .unwrap()
            .1 = array;
        write_parquet(&dir.path().join("data/p.parquet"), columns);
        write_manifest(dir.path(), &manifest());
        let message = load_err(dir.path()).to_string();
        assert!(
            message.contains(&format!(r#"column "{column}": {expected}"#)),
            "{message}"
        );
    }
}

#[test]
fn refuses_a_label_that_is_not_0_or_1_naming_the_row() {
    let dir = tempfile::tempdir().unwrap();
    let mut rows = vec![("u", 1, 0, Some(1.0), None); 20];
    rows[17].2 = 2;
    write_rows(&dir.path().join("data/part-0.parquet"), &rows);
    write_manifest(dir.path(), &manifest());
    let message = load_err(dir.path()).to_string();
    assert!(
        message.starts_with(r#"column "is_fraud" (label): value 2 at row 17 of "#),
        "{message}"
    );
    assert!(
        message.ends_with("part-0.parquet is not 0 or 1"),
        "{message}"
    );
}

#[test]
fn refuses_a_fractional_float_label_and_counts_rows_across_batches() {
    let dir = tempfile::tempdir().unwrap();
    // Beyond the reader's first batch, so the row number must include earlier batches.
    let mut labels = vec![0.0; 10_000];
    labels[9_000] = 0.5;
    let n = labels.len();
    write_parquet(
        &dir.path().join("data/p.parquet"),
        vec![
            ("user_id", arc(StringArray::from(vec!["a"; n]))),
            (
                "event_time_ms",
                arc(Int64Array::from_iter_values(0..n as i64)),
            ),
            ("is_fraud", arc(Float64Array::from(labels))),
            ("amount_minor", arc(Float64Array::from(vec![1.0; n]))),
            ("channel", arc(StringArray::from(vec!["web"; n]))),
        ],
    );
    write_manifest(dir.path(), &manifest());
    let err = load_err(dir.path());
    assert!(
        matches!(&err, TrainsetError::BadValue { row: 9_000, value, .. } if value == "0.5"),
        "{err}"
    );
}

#[test]
fn refuses_nulls_in_entity_time_and_label() {
    for (column, role) in [
        ("user_id", "entity"),
        ("event_time_ms", "time"),
        ("is_fraud", "label"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut columns = vec![
            (
                "user_id",
                arc(StringArray::from(vec![Some("a"), Some("b"), Some("c")])),
            ),
            (
                "event_time_ms",
                arc(Int64Array::from(vec![Some(1), Some(2), Some(3)])),
            ),
            (
                "is_fraud",
                arc(BooleanArray::from(vec![
                    Some(false),
                    Some(true),
                    Some(false),
                ])),
            ),
            ("amount_minor", arc(Float64Array::from(vec![1.0, 2.0, 3.0]))),
            ("channel", arc(StringArray::from(vec!["web"; 3]))),
        ];
        let with_null: arrow::array::ArrayRef = match column {
            "user_id" => arc(StringArray::from(vec![Some("a"), None, Some("c")])),
            "event_time_ms" => arc(Int64Array::from(vec![Some(1), None, Some(3)])),
            _ => arc(BooleanArray::from(vec![Some(false), None, Some(false)])),
        };
        columns
            .iter_mut()
            .find(|(name, _)| *name == column)
            .unwrap()
            .1 = with_null;
        write_parquet(&dir.path().join("data/p.parquet"), columns);
        write_manifest(dir.path(), &manifest());
        let message = load_err(dir.path()).to_string();
        assert!(
            message.starts_with(&format!(r#"column "{column}" ({role}): null at row 1 of "#)),
            "{message}"
        );
    }
}

#[test]
fn refuses_a_missing_column_listing_the_columns_present() {
    let dir = tempfile::tempdir().unwrap();
    write_rows(&dir.path().join("data/part-0.parquet"), ROWS);
    let mut m = manifest();
    m["entity_column"] = json!("customer_id");
    write_manifest(dir.path(), &m);
    let message = load_err(dir.path()).to_string();
    assert!(
        message.starts_with(r#"column "customer_id" (entity) not found in "#),
        "{message}"
    );
    assert!(
        message.ends_with(
            "part-0.parquet; columns are [user_id, event_time_ms, is_fraud, amount_minor, channel]"
        ),
        "{message}"
    );
}

#[test]
fn refuses_inconsistent_manifests() {
    let cases: Vec<(serde_json::Value, &str)> = vec![
        (
            json!([{"name": "amount_minor", "type": "numeric"}, {"name": "amount_minor", "type": "categorical"}]),
            r#"feature "amount_minor" is declared twice"#,
        ),
        (
            json!([{"name": "is_fraud", "type": "numeric"}]),
            r#"feature "is_fraud" is also the label column"#,
        ),
        (
            json!([{"name": "user_id", "type": "categorical"}]),
            r#"feature "user_id" is also the entity column"#,
        ),
        (
            json!([{"name": "event_time_ms", "type": "numeric"}]),
            r#"feature "event_time_ms" is also the time column"#,
        ),
        (json!([]), "no features"),
    ];
    for (features, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        write_rows(&dir.path().join("data/p.parquet"), ROWS);
        let mut m = manifest();
        m["features"] = features;
        write_manifest(dir.path(), &m);
        let err = load_err(dir.path());
        assert!(
            matches!(err, TrainsetError::InvalidManifest { .. }),
            "{err}"
        );
        assert!(err.to_string().ends_with(expected), "{err}");
    }
    let dir = tempfile::tempdir().unwrap();
    let mut m = manifest();
    m["time_column"] = json!("user_id");
    write_manifest(dir.path(), &m);
    let message = load_err(dir.path()).to_string();
    assert!(
        message.ends_with(r#"column "user_id" is both the entity and the time column"#),
        "{message}"
    );

    let mut m = manifest();
    m["label_delay_ms"] = json!(-1);
    write_manifest(dir.path(), &m);
    assert!(
        load_err(dir.path())
            .to_string()
            .contains("label_delay_ms is -1")
    );
}

#[test]
fn refuses_unknown_manifest_fields_and_feature_types() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = manifest();
    m["weight_column"] = json!("w");
    write_manifest(dir.path(), &m);
    let err = load_err(dir.path());
    assert!(matches!(err, TrainsetError::ManifestSyntax { .. }), "{err}");
    assert!(err.to_string().contains("weight_column"), "{err}");

    let mut m = manifest();
    m["features"] = json!([{"name": "x", "type": "text"}]);
    write_manifest(dir.path(), &m);
    assert!(matches!(
        load_err(dir.path()),
        TrainsetError::ManifestSyntax { .. }
    ));
}

#[test]
fn refuses_an_empty_set() {
    let dir = tempfile::tempdir().unwrap();
    write_rows(&dir.path().join("data/p.parquet"), &[]);
    write_manifest(dir.path(), &manifest());
    let err = load_err(dir.path());
    assert!(matches!(err, TrainsetError::Empty { .. }), "{err}");
    assert!(err.to_string().ends_with("has no rows"), "{err}");
}

#[test]
fn refuses_a_data_directory_without_parquet_files_and_a_missing_data_path() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("data/part-0.csv"), "a,b").unwrap();
    write_manifest(dir.path(), &manifest());
    assert!(matches!(
        load_err(dir.path()),
        TrainsetError::NoDataFiles { .. }
    ));

    let mut m = manifest();
    m["data"] = json!("nowhere.parquet");
    write_manifest(dir.path(), &m);
    let err = load_err(dir.path());
    assert!(
        matches!(&err, TrainsetError::Io { path, .. } if path.ends_with("nowhere.parquet")),
        "{err}"
    );
}

#[test]
fn refuses_a_file_that_is_not_parquet() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("data/p.parquet"), "user_id,event_time_ms\n").unwrap();
    write_manifest(dir.path(), &manifest());
    let err = load_err(dir.path());
    assert!(matches!(err, TrainsetError::Parquet { .. }), "{err}");
}

#[test]
fn refuses_files_with_different_schemas() {
    let dir = tempfile::tempdir().unwrap();
    write_rows(&dir.path().join("data/part-0.parquet"), ROWS);
    write_parquet(
        &dir.path().join("data/part-1.parquet"),
        vec![
            ("user_id", arc(StringArray::from(vec!["a"]))),
            ("event_time_ms", arc(Int64Array::from(vec![1]))),
            ("is_fraud", arc(Int64Array::from(vec![0]))),
            ("amount_minor", arc(Int64Array::from(vec![5]))),
            ("channel", arc(StringArray::from(vec!["web"]))),
        ],
    );
    write_manifest(dir.path(), &manifest());
    let err = load_err(dir.path());
    let message = err.to_string();
    assert!(
        matches!(err, TrainsetError::SchemaMismatch { .. }),
        "{message}"
    );
    assert!(
        message.contains("part-1.parquet: schema differs from "),
        "{message}"
    );
    assert!(
        message.ends_with(r#"column "amount_minor" is Int64 here but Float64 there"#),
        "{message}"
    );

    // An extra column in the second file (even one the manifest does not use).
    let dir = tempfile::tempdir().unwrap();
    write_rows(&dir.path().join("data/part-0.parquet"), ROWS);
    write_parquet(
        &dir.path().join("data/part-1.parquet"),
        vec![
            ("user_id", arc(StringArray::from(vec!["a"]))),
            ("event_time_ms", arc(Int64Array::from(vec![1]))),
            ("is_fraud", arc(Int64Array::from(vec![0]))),
            ("amount_minor", arc(Float64Array::from(vec![5.0]))),
            ("channel", arc(StringArray::from(vec!["web"]))),
            ("note", arc(StringArray::from(vec!["?"]))),
        ],
    );
    write_manifest(dir.path(), &manifest());
    let message = load_err(dir.path()).to_string();
    assert!(message.ends_with(r#"extra column "note""#), "{message}");
}
