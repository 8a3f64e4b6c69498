//! CSV record shapes: a header row, then one record per row — for a team's own exports,
//! which are more often CSV than JSON lines.
//!
//! Columns are the JSON-lines fields ([`crate::json`]), nested messages flattened with a dot:
//!
//! ```text
//! transaction_id,user_id,account_id,amount.minor_units,amount.currency,merchant_id,merchant_category,channel,device_id,country,geo.lat,geo.lon,event_time
//! tx-1,u-000123,a-000123,4250,EUR,m-00042,5411,CHANNEL_CARD_PRESENT,,FR,48.85,2.35,2026-01-05T08:00:00.000Z
//! ```
//!
//! Labels: `transaction_id,user_id,is_fraud,reported_at,event_time,merchant_id`.
//!
//! Columns may come in any order and may be left out; an empty cell is the field's default
//! (empty string, 0, absent timestamp), and a nested message is absent when all its cells are
//! empty. `channel` is the enum's name or its number; `is_fraud` is `true`/`false`/`1`/`0`.
//! An unknown or repeated column is refused at the header, a row of another width or a cell
//! that is not its column's type at that row — naming the column (the same path the JSON
//! reader names, e.g. `amount.minor_units`) and quoting at most [`ECHO_CHARS`] characters.
//! As with JSON lines, records are not validated here: ingest does that, so a file can carry
//! invalid records on purpose.

use crate::json::{
    ECHO_CHARS, EnumJson, GeoJson, LabelJson, LineError, MoneyJson, TransactionJson,
};
use proto::v1;
use std::io::Read;

/// The columns of a transactions CSV, in the order [`write_transactions`] writes them.
pub const TRANSACTION_COLUMNS: [&str; 13] = [
    "transaction_id",
    "user_id",
    "account_id",
    "amount.minor_units",
    "amount.currency",
    "merchant_id",
    "merchant_category",
    "channel",
    "device_id",
    "country",
    "geo.lat",
    "geo.lon",
    "event_time",
];

/// The columns of a labels CSV.
pub const LABEL_COLUMNS: [&str; 6] = [
    "transaction_id",
    "user_id",
    "is_fraud",
    "reported_at",
    "event_time",
    "merchant_id",
];

/// Why a CSV input is refused: the 1-based line (the header is line 1) and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {source}")]
pub struct RowError {
    pub line: u64,
    #[source]
    pub source: LineError,
}

fn echo(value: &str) -> String {
    value.chars().take(ECHO_CHARS).collect()
}

fn column_error(column: &str, message: String) -> LineError {
    LineError::Json {
        path: crate::json::clip_path(column),
        message,
    }
}

/// Which field each column of a header fills (an index into `known`).
fn header(record: &::csv::StringRecord, known: &[&str]) -> Result<Vec<usize>, LineError> {
    let mut seen = vec![false; known.len()];
    record
        .iter()
        .map(|name| {
            let name = name.trim();
            let i = known.iter().position(|k| *k == name).ok_or_else(|| {
                column_error(
                    name,
                    format!("unknown column, expected some of: {}", known.join(", ")),
                )
            })?;
            if std::mem::replace(&mut seen[i], true) {
                return Err(column_error(name, "column given twice".into()));
            }
            Ok(i)
        })
        .collect()
}

/// Reads every record of `input`, each row through `row` (the cells by column index, empty
/// for a column the file does not have).
fn read<R: Read, T>(
    input: R,
    known: &[&'static str],
    row: impl Fn(&Cells<'_>) -> Result<T, LineError>,
) -> Result<Vec<T>, RowError> {
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(input);
    let mut records = reader.records();
    let line_of = |e: &::csv::Error| e.position().map_or(0, ::csv::Position::line);
    let csv_error = |e: ::csv::Error| RowError {
        line: line_of(&e).max(1),
        source: column_error(".", crate::json::clip_message(e.to_string())),
    };
    let Some(first) = records.next() else {
        return Ok(Vec::new());
    };
    let first = first.map_err(csv_error)?;
    let columns = header(&first, known).map_err(|source| RowError { line: 1, source })?;
    let mut out = Vec::new();
    for record in records {
        let record = record.map_err(csv_error)?;
        let line = record.position().map_or(0, ::csv::Position::line);
        if record.iter().all(|c| c.trim().is_empty()) && record.len() <= 1 {
            continue; // a blank line
        }
        if record.len() != columns.len() {
            return Err(RowError {
                line,
                source: column_error(
                    ".",
                    format!(
                        "{} cells, the header has {} columns",
                        record.len(),
                        columns.len()
                    ),
                ),
            });
        }
        let mut cells = vec![""; known.len()];
        for (value, &i) in record.iter().zip(&columns) {
            cells[i] = value;
        }
        let cells = Cells {
            names: known,
            values: cells,
        };
        out.push(row(&cells).map_err(|source| RowError { line, source })?);
    }
    Ok(out)
}

/// One row's cells by field.
struct Cells<'a> {
    names: &'a [&'static str],
    values: Vec<&'a str>,
}

impl Cells<'_> {
    fn get(&self, column: &str) -> &str {
        let i = self
            .names
            .iter()
            .position(|n| *n == column)
            .expect("a known column");
        self.values[i]
    }

    fn text(&self, column: &str) -> String {
        self.get(column).to_owned()
    }

    fn opt_text(&self, column: &str) -> Option<String> {
        Some(self.get(column))
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    }

    fn parsed<T: std::str::FromStr + Default>(
        &self,
        column: &str,
        what: &str,
    ) -> Result<T, LineError> {
        let v = self.get(column).trim();
        if v.is_empty() {
            return Ok(T::default());
        }
        v.parse()
            .map_err(|_| column_error(column, format!("not {what}: {:?}", echo(v))))
    }

    fn all_empty(&self, columns: &[&str]) -> bool {
        columns.iter().all(|c| self.get(c).is_empty())
    }
}

fn transaction_row(c: &Cells<'_>) -> Result<v1::Transaction, LineError> {
    let channel = c.get("channel").trim();
    let json = TransactionJson {
        transaction_id: c.text("transaction_id"),
        user_id: c.text("user_id"),
        account_id: c.text("account_id"),
        amount: if c.all_empty(&["amount.minor_units", "amount.currency"]) {
            None
        } else {
            Some(MoneyJson {
                minor_units: c.parsed("amount.minor_units", "an integer")?,
                currency: c.text("amount.currency"),
            })
        },
        merchant_id: c.text("merchant_id"),
        merchant_category: c.text("merchant_category"),
        channel: match channel.parse::<i32>() {
            Ok(n) => EnumJson::Number(n),
            Err(_) if channel.is_empty() => EnumJson::default(),
            Err(_) => EnumJson::Name(channel.to_owned()),
        },
        device_id: c.text("device_id"),
        country: c.text("country"),
        geo: if c.all_empty(&["geo.lat", "geo.lon"]) {
            None
        } else {
            Some(GeoJson {
                lat: c.parsed("geo.lat", "a number")?,
                lon: c.parsed("geo.lon", "a number")?,
            })
        },
        event_time: c.opt_text("event_time"),
    };
    Ok(v1::Transaction::try_from(&json)?)
}

fn label_row(c: &Cells<'_>) -> Result<v1::Label, LineError> {
    let is_fraud = match c.get("is_fraud").trim() {
        "" | "false" | "0" => false,
        "true" | "1" => true,
        other => {
            return Err(column_error(
                "is_fraud",
                format!("not true, false, 1 or 0: {:?}", echo(other)),
            ));
        }
    };
    let json = LabelJson {
        transaction_id: c.text("transaction_id"),
        user_id: c.text("user_id"),
        is_fraud,
        reported_at: c.opt_text("reported_at"),
        event_time: c.opt_text("event_time"),
        merchant_id: c.text("merchant_id"),
    };
    Ok(v1::Label::try_from(&json)?)
}

/// Parses a transactions CSV into wire messages (not validated).
pub fn parse_transactions<R: Read>(input: R) -> Result<Vec<v1::Transaction>, RowError> {
    read(input, &TRANSACTION_COLUMNS, transaction_row)
}

/// Parses a labels CSV into wire messages (not validated).
pub fn parse_labels<R: Read>(input: R) -> Result<Vec<v1::Label>, RowError> {
    read(input, &LABEL_COLUMNS, label_row)
}

/// The cells of a transaction, in [`TRANSACTION_COLUMNS`] order.
pub fn transaction_cells(t: &v1::Transaction) -> Vec<String> {
    let j = TransactionJson::from(t);
    let (units, currency) = j.amount.map_or((String::new(), String::new()), |m| {
        (m.minor_units.to_string(), m.currency)
    });
    let (lat, lon) = j.geo.map_or((String::new(), String::new()), |g| {
        (g.lat.to_string(), g.lon.to_string())
    });
    vec![
        j.transaction_id,
        j.user_id,
        j.account_id,
        units,
        currency,
        j.merchant_id,
        j.merchant_category,
        match j.channel {
            EnumJson::Name(n) => n,
            EnumJson::Number(n) => n.to_string(),
        },
        j.device_id,
        j.country,
        lat,
        lon,
        j.event_time.unwrap_or_default(),
    ]
}

/// The cells of a label, in [`LABEL_COLUMNS`] order.
pub fn label_cells(l: &v1::Label) -> Vec<String> {
    let j = LabelJson::from(l);
    vec![
        j.transaction_id,
        j.user_id,
        j.is_fraud.to_string(),
        j.reported_at.unwrap_or_default(),
        j.event_time.unwrap_or_default(),
        j.merchant_id,
    ]
}

/// Writes `rows` under `columns` as CSV (quoted where a cell needs it).
pub fn write<W: std::io::Write>(
    out: W,
    columns: &[&str],
    rows: impl Iterator<Item = Vec<String>>,
) -> Result<(), ::csv::Error> {
    let mut w = ::csv::Writer::from_writer(out);
    w.write_record(columns)?;
    for row in rows {
        w.write_record(&row)?;
    }
    w.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "transaction_id,user_id,account_id,amount.minor_units,amount.currency,merchant_id,merchant_category,channel,device_id,country,geo.lat,geo.lon,event_time";

    #[test]
    fn reads_a_transaction_row_like_its_json_line() {
        let csv = format!(
            "{HEADER}\ntx-1,u-1,a-1,4250,EUR,m-1,5411,CHANNEL_CARD_PRESENT,,FR,48.85,2.35,2026-01-05T08:00:00.000Z\n"
        );
        let from_csv = parse_transactions(csv.as_bytes()).unwrap();
        let from_json = crate::json::parse_transaction(
            r#"{"transaction_id":"tx-1","user_id":"u-1","account_id":"a-1","amount":{"minor_units":4250,"currency":"EUR"},"merchant_id":"m-1","merchant_category":"5411","channel":"CHANNEL_CARD_PRESENT","device_id":"","country":"FR","geo":{"lat":48.85,"lon":2.35},"event_time":"2026-01-05T08:00:00.000Z"}"#,
        )
        .unwrap();
        assert_eq!(from_csv, vec![from_json]);
    }

    #[test]
    fn columns_in_any_order_or_left_out_and_empty_cells_are_defaults() {
        let csv = "event_time,user_id,transaction_id\n2026-01-05T08:00:00Z,u-1,tx-1\n\n";
        let t = &parse_transactions(csv.as_bytes()).unwrap()[0];
        assert_eq!(
            (t.transaction_id.as_str(), t.user_id.as_str()),
            ("tx-1", "u-1")
        );
        assert!(t.amount.is_none() && t.geo.is_none());
        assert_eq!(t.event_time.unwrap().seconds, 1_767_600_000);
    }

    #[test]
    fn refusals_name_the_line_and_the_column() {
        let cases: [(&str, u64, &str); 6] = [
            ("transaction_id,amount\nx,1\n", 1, "amount"),
            ("user_id,user_id\n", 1, "user_id"),
            (
                "transaction_id,amount.minor_units\ntx-1,12\ntx-2,12.5\n",
                3,
                "amount.minor_units",
            ),
            (
                "transaction_id,geo.lat,geo.lon\ntx-1,north,2\n",
                2,
                "geo.lat",
            ),
            (
                "transaction_id,event_time\ntx-1,yesterday\n",
                2,
                "event_time",
            ),
            ("transaction_id,user_id\ntx-1,u-1,extra\n", 2, "."),
        ];
        for (csv, line, field) in cases {
            let e = parse_transactions(csv.as_bytes()).unwrap_err();
            assert_eq!((e.line, e.source.field()), (line, field), "{csv:?}: {e}");
        }
        let e = parse_labels("transaction_id,is_fraud\ntx-1,yes\n".as_bytes()).unwrap_err();
        assert_eq!((e.line, e.source.field()), (2, "is_fraud"), "{e}");
    }

    #[test]
    fn what_is_written_reads_back() {
        let t = v1::Transaction {
            transaction_id: "tx-\"quoted\",1".into(),
            user_id: "u-1".into(),
            amount: Some(v1::Money {
                minor_units: -5,
                currency: "EUR".into(),
            }),
            channel: 42,
            event_time: Some(proto::prost_types::Timestamp {
                seconds: 1_767_600_000,
                nanos: 5_000_000,
            }),
            ..v1::Transaction::default()
        };
        let mut out = Vec::new();
        write(
            &mut out,
            &TRANSACTION_COLUMNS,
            std::iter::once(transaction_cells(&t)),
        )
        .unwrap();
        assert_eq!(parse_transactions(out.as_slice()).unwrap(), vec![t]);
        let l = v1::Label {
            transaction_id: "tx-1".into(),
            is_fraud: true,
            ..v1::Label::default()
        };
        let mut out = Vec::new();
        write(&mut out, &LABEL_COLUMNS, std::iter::once(label_cells(&l))).unwrap();
        assert_eq!(parse_labels(out.as_slice()).unwrap(), vec![l]);
    }
}
