use datagen::generate;
use datagen::output::{
    Format, OutputError, read_labels, read_transactions, write_dataset, write_lake,
};
use domain::convert::label_to_proto;

use crate::faulty;

#[test]
fn jsonl_parses_back_to_the_stream() {
    let config = faulty(21);
    let ds = generate(&config).expect("generates");
    let dir = tempfile::tempdir().expect("tempdir");
    write_dataset(&ds, &config, dir.path(), Format::Jsonl, None, 1).expect("writes");
    let transactions = read_transactions(&dir.path().join("transactions.jsonl")).expect("reads");
    let expected: Vec<_> = ds.wire_stream().map(|r| r.to_proto()).collect();
    assert_eq!(transactions, expected);
    let labels = read_labels(&dir.path().join("labels.jsonl")).expect("reads");
    let expected: Vec<_> = ds.labels.iter().map(label_to_proto).collect();
    assert_eq!(labels, expected);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("manifest.json")).expect("manifest"))
            .expect("json");
    assert_eq!(manifest["config"]["seed"], 21);
    assert!(!dir.path().join("transactions.parquet").exists());
}

#[test]
fn csv_parses_back_to_the_same_stream_as_jsonl() {
    let config = faulty(22);
    let ds = generate(&config).expect("generates");
    let dir = tempfile::tempdir().expect("tempdir");
    write_dataset(&ds, &config, dir.path(), Format::Csv, None, 1).expect("writes");
    let transactions = read_transactions(&dir.path().join("transactions.csv")).expect("reads");
    let expected: Vec<_> = ds.wire_stream().map(|r| r.to_proto()).collect();
    assert!(!expected.is_empty());
    assert_eq!(
        transactions, expected,
        "corrupt and duplicate records included"
    );
    let labels = read_labels(&dir.path().join("labels.csv")).expect("reads");
    let expected: Vec<_> = ds.labels.iter().map(label_to_proto).collect();
    assert_eq!(labels, expected);
    assert!(!dir.path().join("transactions.jsonl").exists());
}

#[test]
fn a_bad_csv_row_names_the_file_line_and_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.csv");
    std::fs::write(
        &path,
        "transaction_id,amount.minor_units,amount.currency\na,100,EUR\nb,1.5,EUR\n",
    )
    .expect("write");
    let err = read_transactions(&path).expect_err("bad amount");
    let text = err.to_string();
    assert!(
        text.contains("t.csv:3") && text.contains("`amount.minor_units`"),
        "{text}"
    );
}

#[test]
fn files_are_byte_identical_for_the_same_seed() {
    let config = faulty(33);
    let files = [
        "transactions.jsonl",
        "labels.jsonl",
        "transactions.parquet",
        "labels.parquet",
        "manifest.json",
    ];
    let mut outputs = Vec::new();
    for _ in 0..2 {
        let dir = tempfile::tempdir().expect("tempdir");
        let ds = generate(&config).expect("generates");
        write_dataset(&ds, &config, dir.path(), Format::All, None, 1).expect("writes");
        let bytes: Vec<Vec<u8>> = files
            .iter()
            .map(|f| std::fs::read(dir.path().join(f)).expect("file written"))
            .collect();
        outputs.push(bytes);
    }
    for (i, f) in files.iter().enumerate() {
        assert!(outputs[0][i] == outputs[1][i], "{f} differs between runs");
    }
}

#[test]
fn parquet_and_lake_hold_the_distinct_valid_transactions() {
    let config = faulty(44);
    let ds = generate(&config).expect("generates");
    let dir = tempfile::tempdir().expect("tempdir");
    let written = write_dataset(&ds, &config, dir.path(), Format::All, None, 1).expect("writes");
    let expected = (ds.stats.transactions as usize, ds.labels.len());
    assert_eq!(written.lake_rows, Some(expected));

    let file = std::fs::File::open(dir.path().join("transactions.parquet")).expect("parquet");
    let reader = parquet::file::reader::SerializedFileReader::new(file).expect("reader");
    use parquet::file::reader::FileReader;
    assert_eq!(
        reader.metadata().file_metadata().num_rows() as usize,
        expected.0
    );

    // Writing into a lake that has data would silently skip rows: refused.
    let err = write_lake(&ds, &dir.path().join("lake"), 1).expect_err("second write");
    assert!(matches!(err, OutputError::LakeNotEmpty(_)), "{err}");
    let other = tempfile::tempdir().expect("tempdir");
    let err = write_dataset(
        &ds,
        &config,
        other.path(),
        Format::All,
        Some(&dir.path().join("lake")),
        1,
    )
    .expect_err("lake not empty");
    assert!(matches!(err, OutputError::LakeNotEmpty(_)), "{err}");
    assert!(
        !other.path().join("transactions.jsonl").exists(),
        "wrote before refusing"
    );
}

#[test]
fn a_bad_line_names_the_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.jsonl");
    std::fs::write(
        &path,
        "{\"transaction_id\":\"a\"}\n\n{\"channel\":\"CHANNEL_NOPE\"}\n",
    )
    .expect("write");
    let err = read_transactions(&path).expect_err("bad channel");
    assert!(err.to_string().contains("t.jsonl:3"), "{err}");
}
