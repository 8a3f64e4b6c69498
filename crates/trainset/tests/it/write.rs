//! Writing: the streaming writer's files round-trip through the loader.

use std::fs::File;

use parquet::basic::Compression;
use parquet::file::reader::{FileReader, SerializedFileReader};
use trainset::{
    DATA_FILE, Manifest, NumericSetSpec, RowRef, SetWriter, TrainingSet, TrainingSetWriter,
    TrainsetError, write_numeric,
};

fn spec(features: &[&str]) -> NumericSetSpec {
    NumericSetSpec {
        id_column: None,
        labels_as_of_ms: None,
        name: "vigil-v1".into(),
        entity_column: "user_id".into(),
        time_column: "event_time_ms".into(),
        label_column: "is_fraud".into(),
        label_delay_ms: 604_800_000,
        feature_names: features.iter().map(|f| f.to_string()).collect(),
    }
}

#[test]
fn written_sets_load_back_identically_with_snappy_row_groups() {
    let dir = tempfile::tempdir().unwrap();
    let n: usize = 70_000;
    // Rows in reverse time order; every 7th amount missing.
    let entities: Vec<String> = (0..n).map(|i| format!("user-{}", i % 97)).collect();
    let features: Vec<[f64; 3]> = (0..n)
        .map(|i| {
            let amount = if i.is_multiple_of(7) {
                f64::NAN
            } else {
                i as f64 * 0.5
            };
            [amount, (i % 24) as f64, -(i as f64)]
        })
        .collect();
    let rows = (0..n).map(|i| RowRef {
        id: "",
        entity: &entities[i],
        time_ms: (n - i) as i64 * 1000,
        label: i.is_multiple_of(50),
        features: &features[i],
    });
    let summary = write_numeric(dir.path(), &spec(&["amount", "hour", "neg"]), rows).unwrap();
    assert_eq!(summary.rows, n as u64);
    assert_eq!(summary.positives, (n as u64).div_ceil(50));
    assert_eq!(summary.manifest_path, dir.path().join("trainset.json"));

    let manifest: Manifest =
        serde_json::from_slice(&std::fs::read(&summary.manifest_path).unwrap()).unwrap();
    assert_eq!(manifest, spec(&["amount", "hour", "neg"]).manifest());
    assert_eq!(manifest.data, std::path::Path::new("data"));

    let reader =
        SerializedFileReader::new(File::open(dir.path().join(DATA_FILE)).unwrap()).unwrap();
    let meta = reader.metadata();
    assert_eq!(meta.num_row_groups(), 2, "64Ki-row row groups");
    assert_eq!(meta.row_group(0).num_rows(), 65_536);
    assert_eq!(
        meta.row_group(0).column(0).compression(),
        Compression::SNAPPY
    );

    let set = TrainingSet::load(&summary.manifest_path).unwrap();
    assert_eq!(set.len(), n);
    assert_eq!(set.positives(), summary.positives as usize);
    assert_eq!(set.feature_names(), ["amount", "hour", "neg"]);
    assert_eq!(set.label_delay_ms(), 604_800_000);
    // Sorted row k is written row n - 1 - k.
    for k in [0, 1, 6, 7, 8191, 8192, 65_535, 65_536, n - 1] {
        let i = n - 1 - k;
        assert_eq!(set.times_ms()[k], (n - i) as i64 * 1000);
        assert_eq!(set.entities()[k], entities[i]);
        assert_eq!(set.labels()[k], i.is_multiple_of(50));
        let row = set.row(k);
        if i.is_multiple_of(7) {
            assert!(row[0].is_nan(), "row {k}");
        } else {
            assert_eq!(row[0], features[i][0]);
        }
        assert_eq!(row[1..], features[i][1..]);
    }
}

#[test]
fn writer_refuses_rows_of_the_wrong_width_an_existing_set_and_no_rows() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = TrainingSetWriter::create(dir.path(), &spec(&["a", "b"])).unwrap();
    let ok = RowRef {
        id: "",
        entity: "u",
        time_ms: 1,
        label: false,
        features: &[1.0, 2.0],
    };
    writer.push(ok).unwrap();
    let err = writer
        .push(RowRef {
            id: "",
            features: &[1.0],
            ..ok
        })
        .unwrap_err();
    assert_eq!(err.to_string(), "row 1: 1 feature values, expected 2");
    writer.finish().unwrap();

    // The directory now holds a set.
    let err = TrainingSetWriter::create(dir.path(), &spec(&["a", "b"])).unwrap_err();
    assert!(matches!(err, TrainsetError::Io { .. }), "{err}");

    let empty = tempfile::tempdir().unwrap();
    let err = write_numeric(empty.path(), &spec(&["a"]), []).unwrap_err();
    assert!(matches!(err, TrainsetError::Empty { .. }), "{err}");
    assert!(!empty.path().join("trainset.json").exists());
    assert!(!empty.path().join(DATA_FILE).exists());
}

#[test]
fn writer_refuses_an_invalid_spec() {
    let dir = tempfile::tempdir().unwrap();
    let err = TrainingSetWriter::create(dir.path(), &spec(&["a", "a"])).unwrap_err();
    assert!(
        err.to_string()
            .ends_with(r#"feature "a" is declared twice"#),
        "{err}"
    );
    let err = TrainingSetWriter::create(dir.path(), &spec(&["is_fraud"])).unwrap_err();
    assert!(
        matches!(err, TrainsetError::InvalidManifest { .. }),
        "{err}"
    );
}

#[test]
fn parts_written_on_threads_load_as_one_set_sorted_by_time() {
    let dir = tempfile::tempdir().unwrap();
    let set = SetWriter::create(dir.path(), &spec(&["x"])).unwrap();
    // Part p holds entity e{p}'s rows at times p, p + 3, p + 6, …; part 2 holds nothing.
    let parts: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3u32)
            .map(|p| {
                let mut part = set.part(p).unwrap();
                s.spawn(move || {
                    let entity = format!("e{p}");
                    for k in 0..if p == 2 { 0 } else { 1_000 } {
                        let t = i64::from(p) + 3 * k;
                        part.push(RowRef {
                            id: "",
                            entity: &entity,
                            time_ms: t,
                            label: k % 10 == 0,
                            features: &[t as f64],
                        })
                        .unwrap();
                    }
                    part.finish().unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        parts.iter().map(|p| p.rows).collect::<Vec<_>>(),
        [1_000, 1_000, 0]
    );
    assert!(!parts[2].path.exists(), "an empty part leaves no file");
    let summary = set.finish(parts).unwrap();
    assert_eq!((summary.rows, summary.positives), (2_000, 200));
    let loaded = TrainingSet::load(&summary.manifest_path).unwrap();
    assert_eq!(loaded.len(), 2_000);
    assert!(loaded.times_ms().windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(loaded.row(1), [1.0]);
    assert_eq!(loaded.entities()[1], "e1");
    // A second part with a taken index is refused.
    let other = tempfile::tempdir().unwrap();
    let again = SetWriter::create(other.path(), &spec(&["x"])).unwrap();
    again.part(0).unwrap();
    assert!(matches!(
        again.part(0).unwrap_err(),
        TrainsetError::Io { .. }
    ));
}
