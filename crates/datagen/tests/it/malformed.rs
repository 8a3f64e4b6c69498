//! Property-based malformed JSON lines (issue 9's "10⁶ generated malformed inputs", the
//! JSON-lines part; the proto part is in `domain`'s tests). Lines come from valid records
//! of the generator, then are damaged two ways:
//!
//! * **a field's value replaced** by a JSON value of another type (or a huge or odd one), a
//!   field removed, or an unknown field added: the error must name that field's path;
//! * **the text mutated** (truncated, bytes overwritten or inserted): parsing never panics,
//!   an error names a path the record has (or `.` for the line), and it is bounded.
//!
//! A line that parses is then validated as ingest does, which must not panic either.
//! `PROPTEST_CASES` sets the number of cases of each property (10 000 by default).

use datagen::json::{LineError, MAX_PATH_CHARS, TransactionJson, parse_label, parse_transaction};
use datagen::{GenConfig, generate};
use domain::convert::{
    label_from_proto, label_to_proto, transaction_from_proto, transaction_to_proto,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};
use serde_json::{Map, Value, json};
use std::sync::OnceLock;

const MAX_ERROR_CHARS: usize = 400;

fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        ..Config::default()
    }
}

/// Valid transaction and label lines of a small generated dataset, as JSON objects.
/// JSON objects of valid records: transactions, then labels.
type Corpus = (Vec<Map<String, Value>>, Vec<Map<String, Value>>);

fn corpus() -> &'static Corpus {
    static CORPUS: OnceLock<Corpus> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let data = generate(&GenConfig {
            users: 50,
            merchants: 20,
            transactions: Some(300),
            days: 3,
            ..GenConfig::default()
        })
        .expect("generates");
        let object = |v: Value| match v {
            Value::Object(m) => m,
            other => panic!("not an object: {other}"),
        };
        let transactions = data
            .transactions
            .iter()
            .map(|t| {
                object(
                    serde_json::to_value(TransactionJson::from(&transaction_to_proto(t)))
                        .expect("json"),
                )
            })
            .collect();
        let labels = data
            .labels
            .iter()
            .map(|l| {
                object(
                    serde_json::to_value(datagen::json::LabelJson::from(&label_to_proto(l)))
                        .expect("json"),
                )
            })
            .collect();
        (transactions, labels)
    })
}

/// JSON values of every type, including ones no field accepts.
fn any_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_map(|x| serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)),
        Just(json!(u64::MAX)),
        Just(json!(1e300)),
        ".{0,40}".prop_map(Value::String),
        "[a-z]{2000}".prop_map(Value::String),
        Just(json!([])),
        Just(json!([1, "a"])),
        Just(json!({})),
        Just(json!({"minor_units": "x"})),
    ]
}

/// Whether `value` has the type `field` needs (so replacing it need not be an error).
fn fits(field: &str, value: &Value) -> bool {
    match field {
        "amount" | "geo" => value.is_null() || value.as_object().is_some_and(Map::is_empty),
        "channel" => value.is_i64() && value.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
        "is_fraud" => value.is_boolean(),
        "event_time" | "reported_at" => value.is_null(),
        _ => value.is_string(),
    }
}

#[derive(Debug, Clone)]
enum Damage {
    Replace(prop::sample::Index, Value),
    Remove(prop::sample::Index),
    Unknown(String),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        4 => (any::<prop::sample::Index>(), any_value()).prop_map(|(i, v)| Damage::Replace(i, v)),
        1 => any::<prop::sample::Index>().prop_map(Damage::Remove),
        1 => "[a-z_]{1,300}".prop_map(Damage::Unknown),
    ]
}

/// Applies the damage; returns the line and the field path the error must name (`None` when
/// the damaged line may still be a valid shape, e.g. a removed field with a default).
fn damaged(record: &Map<String, Value>, damage: &Damage) -> (String, Option<String>) {
    let mut record = record.clone();
    let keys: Vec<String> = record.keys().cloned().collect();
    let expected = match damage {
        Damage::Replace(i, value) => {
            let key = keys[i.index(keys.len())].clone();
            let must_fail = !fits(&key, value) && record.get(&key) != Some(value);
            record.insert(key.clone(), value.clone());
            must_fail.then_some(key)
        }
        Damage::Remove(i) => {
            record.remove(&keys[i.index(keys.len())]);
            None
        }
        Damage::Unknown(name) => {
            if record.contains_key(name) {
                None
            } else {
                record.insert(name.clone(), json!(1));
                Some(name.clone())
            }
        }
    };
    (Value::Object(record).to_string(), expected)
}

fn bounded(e: &LineError) -> Result<(), TestCaseError> {
    let text = e.to_string();
    prop_assert!(
        text.chars().count() <= MAX_ERROR_CHARS,
        "{} chars: {text}",
        text.chars().count()
    );
    Ok(())
}

/// The error names `expected` (or a path inside it, e.g. `amount.minor_units`; a long
/// unknown name is cut to `MAX_PATH_CHARS`).
fn names(e: &LineError, expected: &str) -> Result<(), TestCaseError> {
    let field = e.field();
    let clipped = field
        .strip_suffix('…')
        .filter(|f| f.chars().count() == MAX_PATH_CHARS);
    prop_assert!(
        field == expected
            || field.starts_with(&format!("{expected}."))
            || field.starts_with(&format!("{expected}["))
            || clipped.is_some_and(|f| expected.starts_with(f)),
        "expected an error naming `{expected}`, got `{field}`: {e}"
    );
    bounded(e)
}

#[derive(Debug, Clone)]
enum Edit {
    Truncate(prop::sample::Index),
    Overwrite(prop::sample::Index, char),
    Insert(prop::sample::Index, String),
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let one = prop_oneof![
        any::<prop::sample::Index>().prop_map(Edit::Truncate),
        (
            any::<prop::sample::Index>(),
            prop_oneof![
                Just('"'),
                Just('{'),
                Just('}'),
                Just(','),
                Just(':'),
                Just('\\'),
                any::<char>()
            ]
        )
            .prop_map(|(i, c)| Edit::Overwrite(i, c)),
        (any::<prop::sample::Index>(), ".{1,8}").prop_map(|(i, s)| Edit::Insert(i, s)),
    ];
    prop::collection::vec(one, 1..4)
}

fn edit(line: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = line.chars().collect();
    for e in edits {
        if chars.is_empty() {
            break;
        }
        match e {
            Edit::Truncate(i) => chars.truncate(i.index(chars.len())),
            Edit::Overwrite(i, c) => {
                let i = i.index(chars.len());
                chars[i] = *c;
            }
            Edit::Insert(i, s) => {
                let i = i.index(chars.len());
                chars.splice(i..i, s.chars());
            }
        }
    }
    chars.into_iter().collect()
}

/// Paths a transaction or label error may name.
fn known_path(path: &str) -> bool {
    let root = path.split(['.', '[']).next().unwrap_or_default();
    path == "."
        || [
            "transaction_id",
            "user_id",
            "account_id",
            "amount",
            "merchant_id",
            "merchant_category",
            "channel",
            "device_id",
            "country",
            "geo",
            "event_time",
            "is_fraud",
            "reported_at",
        ]
        .contains(&root)
}

/// One damaged record of `records`: a line whose damage must be refused is refused naming
/// the damaged field; any other is parsed or refused with a bounded error, and what parses
/// goes through `validate` (which must not panic).
fn damaged_field_is_named<W>(
    records: &[Map<String, Value>],
    i: prop::sample::Index,
    d: &Damage,
    parse: impl Fn(&str) -> Result<W, LineError>,
    validate: impl Fn(&W),
) -> Result<(), TestCaseError> {
    let (line, expected) = damaged(&records[i.index(records.len())], d);
    match (parse(&line), expected) {
        (Err(e), Some(field)) => names(&e, &field)?,
        (Ok(_), Some(field)) => prop_assert!(false, "accepted a bad `{field}`: {line}"),
        (Err(e), None) => bounded(&e)?,
        (Ok(wire), None) => validate(&wire),
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn a_damaged_transaction_field_is_named(i in any::<prop::sample::Index>(), d in damage()) {
        damaged_field_is_named(&corpus().0, i, &d, parse_transaction, |w| {
            // Only "never panics" is checked here: validation has its own properties (domain).
            let _ = transaction_from_proto(w);
        })?;
    }

    #[test]
    fn a_damaged_label_field_is_named(i in any::<prop::sample::Index>(), d in damage()) {
        damaged_field_is_named(&corpus().1, i, &d, parse_label, |w| {
            let _ = label_from_proto(w);
        })?;
    }

    #[test]
    fn mutated_lines_never_panic_and_errors_name_a_path(
        i in any::<prop::sample::Index>(), label in any::<bool>(), e in edits(),
    ) {
        let (transactions, labels) = corpus();
        let records = if label { labels } else { transactions };
        let line = edit(&Value::Object(records[i.index(records.len())].clone()).to_string(), &e);
        let result = if label {
            parse_label(&line).map(|l| { let _ = label_from_proto(&l); })
        } else {
            parse_transaction(&line).map(|t| { let _ = transaction_from_proto(&t); })
        };
        if let Err(err) = result {
            // A damaged key is named as the unknown field it now is.
            let unknown_key = err.to_string().contains("unknown field");
            prop_assert!(known_path(err.field()) || unknown_key, "unknown path `{}`: {err}", err.field());
            bounded(&err)?;
        }
    }
}

// CSV rows (issue 9's malformed inputs, the CSV part). The same generated records are written
// as CSV by `datagen::csv`, then damaged: a cell replaced by any text (the oracle knows
// which columns have a type and what each accepts), an unknown or repeated column in the
// header, a cell added or removed; or the file's text mutated. A refusal must name the
// damaged column (`.` for the row's shape) and the line, and be bounded.

use datagen::csv::{
    LABEL_COLUMNS, TRANSACTION_COLUMNS, label_cells, parse_labels, parse_transactions,
    transaction_cells,
};

/// Header and rows of valid records, written as `datagen::csv` writes them.
type CsvCorpus = (Vec<Vec<String>>, Vec<Vec<String>>);

fn csv_corpus() -> &'static CsvCorpus {
    static CORPUS: OnceLock<CsvCorpus> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let (transactions, labels) = corpus();
        let t = transactions
            .iter()
            .map(|m| {
                let line = Value::Object(m.clone()).to_string();
                transaction_cells(&parse_transaction(&line).expect("valid"))
            })
            .collect();
        let l = labels
            .iter()
            .map(|m| {
                let line = Value::Object(m.clone()).to_string();
                label_cells(&parse_label(&line).expect("valid"))
            })
            .collect();
        (t, l)
    })
}

/// Whether the CSV reader must refuse `value` in `column` (the documented cell rules).
fn refused_cell(column: &str, value: &str) -> bool {
    let trimmed = value.trim();
    match column {
        "amount.minor_units" => !trimmed.is_empty() && trimmed.parse::<i64>().is_err(),
        "geo.lat" | "geo.lon" => !trimmed.is_empty() && trimmed.parse::<f64>().is_err(),
        "event_time" | "reported_at" => {
            !value.is_empty() && chrono::DateTime::parse_from_rfc3339(value).is_err()
        }
        "channel" => {
            !trimmed.is_empty()
                && trimmed.parse::<i32>().is_err()
                && proto::v1::Channel::from_str_name(trimmed).is_none()
        }
        "is_fraud" => !matches!(trimmed, "" | "true" | "false" | "1" | "0"),
        _ => false,
    }
}

fn cell_text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,40}",
        "[0-9.eE+-]{1,24}",
        Just("9223372036854775808".to_owned()),
        Just("12.5".to_owned()),
        Just(" 7 ".to_owned()),
        Just("CHANNEL_ONLINE".to_owned()),
        Just("2026-01-05T08:00:00Z".to_owned()),
        Just("true".to_owned()),
        Just("\"\n,".to_owned()),
        "[a-z]{2000}",
    ]
}

#[derive(Debug, Clone)]
enum CsvDamage {
    Cell(prop::sample::Index, String),
    UnknownColumn(String),
    RepeatedColumn(prop::sample::Index),
    ExtraCell,
    MissingCell,
}

fn csv_damage() -> impl Strategy<Value = CsvDamage> {
    prop_oneof![
        6 => (any::<prop::sample::Index>(), cell_text()).prop_map(|(i, v)| CsvDamage::Cell(i, v)),
        1 => "[a-z_.]{1,300}".prop_map(CsvDamage::UnknownColumn),
        1 => any::<prop::sample::Index>().prop_map(CsvDamage::RepeatedColumn),
        1 => Just(CsvDamage::ExtraCell),
        1 => Just(CsvDamage::MissingCell),
    ]
}

fn csv_text(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = Vec::new();
    datagen::csv::write(&mut out, header, rows.iter().cloned()).expect("writes");
    String::from_utf8(out).expect("utf-8")
}

/// A file of a header and two valid rows with the damage in the second row (line 3) or the
/// header; returns it with the line and the column a refusal must name (`None`: may pass).
fn csv_damaged(
    columns: &[&'static str],
    rows: &[Vec<String>],
    i: prop::sample::Index,
    damage: &CsvDamage,
) -> (String, Option<(u64, String)>) {
    let mut header: Vec<String> = columns.iter().map(|c| (*c).to_owned()).collect();
    let first = rows[i.index(rows.len())].clone();
    let mut second = rows[(i.index(rows.len()) + 1) % rows.len()].clone();
    let expected = match damage {
        CsvDamage::Cell(c, value) => {
            let c = c.index(columns.len());
            let must = refused_cell(columns[c], value);
            second[c] = value.clone();
            must.then(|| (3, columns[c].to_owned()))
        }
        CsvDamage::UnknownColumn(name) => {
            if columns.contains(&name.trim()) {
                return (csv_text(columns, &[first, second]), None);
            }
            header.push(name.clone());
            let mut rows = vec![first, second];
            for r in &mut rows {
                r.push(String::new());
            }
            let h: Vec<&str> = header.iter().map(String::as_str).collect();
            return (csv_text(&h, &rows), Some((1, name.trim().to_owned())));
        }
        CsvDamage::RepeatedColumn(c) => {
            let c = c.index(columns.len());
            header.push(columns[c].to_owned());
            let h: Vec<&str> = header.iter().map(String::as_str).collect();
            let mut rows = vec![first, second];
            for r in &mut rows {
                r.push(r[c].clone());
            }
            return (csv_text(&h, &rows), Some((1, columns[c].to_owned())));
        }
        CsvDamage::ExtraCell => {
            second.push("x".into());
            Some((3, ".".to_owned()))
        }
        CsvDamage::MissingCell => {
            second.pop();
            Some((3, ".".to_owned()))
        }
    };
    let h: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut out = Vec::new();
    let mut w = ::csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(&mut out);
    w.write_record(&h).expect("writes");
    w.write_record(&first).expect("writes");
    w.write_record(&second).expect("writes");
    drop(w);
    (String::from_utf8(out).expect("utf-8"), expected)
}

fn row_error_bounded(e: &datagen::csv::RowError) -> Result<(), TestCaseError> {
    let text = e.to_string();
    prop_assert!(
        text.chars().count() <= MAX_ERROR_CHARS,
        "{} chars: {text}",
        text.chars().count()
    );
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn a_damaged_csv_cell_or_column_is_named(
        i in any::<prop::sample::Index>(), label in any::<bool>(), d in csv_damage(),
    ) {
        let (transactions, labels) = csv_corpus();
        let (text, expected) = if label {
            csv_damaged(&LABEL_COLUMNS, labels, i, &d)
        } else {
            csv_damaged(&TRANSACTION_COLUMNS, transactions, i, &d)
        };
        let result = if label {
            parse_labels(text.as_bytes()).map(|ls| ls.iter().for_each(|l| { let _ = label_from_proto(l); }))
        } else {
            parse_transactions(text.as_bytes()).map(|ts| ts.iter().for_each(|t| { let _ = transaction_from_proto(t); }))
        };
        match (result, expected) {
            (Err(e), Some((line, column))) => {
                prop_assert_eq!(e.line, line, "{}", e);
                names(&e.source, &column)?;
                row_error_bounded(&e)?;
            }
            (Ok(()), Some((_, column))) => prop_assert!(false, "accepted a bad `{}`: {:?}", column, text),
            (Err(e), None) => prop_assert!(false, "refused a valid file: {e}: {text:?}"),
            (Ok(()), None) => {}
        }
    }

    #[test]
    fn mutated_csv_never_panics_and_errors_name_a_column(
        i in any::<prop::sample::Index>(), label in any::<bool>(), e in edits(),
    ) {
        let (transactions, labels) = csv_corpus();
        let (columns, rows): (&[&str], _) = if label {
            (&LABEL_COLUMNS, labels)
        } else {
            (&TRANSACTION_COLUMNS, transactions)
        };
        let row = rows[i.index(rows.len())].clone();
        let text = edit(&csv_text(columns, &[row]), &e);
        let result = if label {
            parse_labels(text.as_bytes()).map(|_| ())
        } else {
            parse_transactions(text.as_bytes()).map(|_| ())
        };
        if let Err(err) = result {
            let field = err.source.field();
            let unknown = err.to_string().contains("unknown column") || err.to_string().contains("given twice");
            prop_assert!(
                field == "." || columns.contains(&field) || unknown,
                "unknown column `{}`: {}", field, err
            );
            prop_assert!(err.line >= 1, "{}", err);
            row_error_bounded(&err)?;
        }
    }
}
