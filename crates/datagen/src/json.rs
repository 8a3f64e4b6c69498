//! JSON-lines record shapes: one object per line, shaped like the proto messages.
//!
//! Why proto-shaped rather than the domain serde shape: the file must also carry records
//! that fail validation (empty ids, negative amounts, missing timestamps), which no domain
//! value can represent, and `replay` sends the lines to ingest unchanged. The shape follows
//! the proto3 JSON mapping where that is cheap: proto field names, enums by name
//! (`"CHANNEL_ONLINE"`; an unknown value as its number), timestamps as RFC 3339 UTC strings
//! with milliseconds, absent messages omitted. Deviations: `int64` amounts are JSON numbers,
//! not strings. A record is an object and a nested message an object or `null`, never serde's
//! array form (`"amount":[1,"a"]` is refused, not read as 1 unit of currency `a`).
//!
//! ```json
//! {"transaction_id":"tx-2a-00000000","user_id":"u-000123","account_id":"a-000123",
//!  "amount":{"minor_units":4250,"currency":"EUR"},"merchant_id":"m-00042",
//!  "merchant_category":"5411","channel":"CHANNEL_CARD_PRESENT","device_id":"",
//!  "country":"FR","geo":{"lat":48.85,"lon":2.35},"event_time":"2026-01-05T08:00:00.000Z"}
//! {"transaction_id":"tx-2a-00000000","user_id":"u-000123","is_fraud":false,
//!  "reported_at":"2026-02-09T08:00:00.000Z","event_time":"2026-01-05T08:00:00.000Z"}
//! ```

use chrono::{DateTime, SecondsFormat};
use proto::prost_types::Timestamp;
use proto::v1;
use serde::{Deserialize, Serialize};

/// A line that is valid JSON of the right shape but cannot become a proto message.
#[derive(Debug, thiserror::Error)]
pub enum JsonShapeError {
    /// `value` holds at most [`ECHO_CHARS`] characters of what the line had.
    #[error("`{field}`: not an RFC 3339 timestamp: {value:?}")]
    Timestamp { field: &'static str, value: String },
    #[error("`{field}`: timestamp out of range")]
    TimestampRange { field: &'static str },
    /// At most [`ECHO_CHARS`] characters of the name.
    #[error("`channel`: unknown enum name {0:?}")]
    Channel(String),
}

/// Why one line is not a record. Every variant names the field, as a path such as
/// `amount.minor_units` (`.` for the line itself: not JSON, or not an object), and quotes at
/// most [`ECHO_CHARS`] characters of what the line held, whatever its length.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    #[error("`{path}`: {message}")]
    Json { path: String, message: String },
    #[error(transparent)]
    Shape(#[from] JsonShapeError),
}

impl LineError {
    /// The field path the error names.
    pub fn field(&self) -> &str {
        match self {
            LineError::Json { path, .. } => path,
            LineError::Shape(
                JsonShapeError::Timestamp { field, .. } | JsonShapeError::TimestampRange { field },
            ) => field,
            LineError::Shape(JsonShapeError::Channel(_)) => "channel",
        }
    }
}

/// How much of a line's value an error quotes.
pub const ECHO_CHARS: usize = 32;
/// serde_json's messages quote whole values ("invalid type: string \"…\""); they are cut here.
const MAX_MESSAGE_CHARS: usize = 160;
/// A path names an unknown field by its name, which can be any length.
pub const MAX_PATH_CHARS: usize = 64;

fn echo(value: &str) -> String {
    value.chars().take(ECHO_CHARS).collect()
}

/// Deserializes one line, naming the field path of any error (`serde_path_to_error`: serde
/// itself reports a wrong type or an unknown field without saying where it was).
fn from_line<J: serde::de::DeserializeOwned>(line: &str) -> Result<J, LineError> {
    let error = |path: String, message: String| LineError::Json {
        path: clip(path, MAX_PATH_CHARS),
        message: clip(message, MAX_MESSAGE_CHARS),
    };
    let mut de = serde_json::Deserializer::from_str(line);
    let Record(json) = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        // A syntax error is the line's (its message has the column); the path of the
        // partial parse would name `?` for a key not read yet.
        let path = match e.inner().classify() {
            serde_json::error::Category::Data => e.path().to_string(),
            _ => ".".to_owned(),
        };
        error(path, e.inner().to_string())
    })?;
    // Content after the object is an error of the line itself.
    de.end().map_err(|e| error(".".to_owned(), e.to_string()))?;
    Ok(json)
}

/// A line's record: a JSON object, never serde's array form or `null` (see [`object`]).
struct Record<J>(J);

impl<'de, J: Deserialize<'de>> Deserialize<'de> for Record<J> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        object(deserializer)?
            .map(Record)
            .ok_or_else(|| serde::de::Error::custom("a record must be an object, not null"))
    }
}

/// A field path as errors quote it (an unknown name can be any length).
pub(crate) fn clip_path(path: &str) -> String {
    clip(path.to_owned(), MAX_PATH_CHARS)
}

/// A parser's message as errors quote it.
pub(crate) fn clip_message(message: String) -> String {
    clip(message, MAX_MESSAGE_CHARS)
}

/// `text` cut to `max` characters, marked with `…` when cut.
fn clip(text: String, max: usize) -> String {
    if text.chars().count() > max {
        text.chars().take(max).collect::<String>() + "…"
    } else {
        text
    }
}

/// Parses one `transactions.jsonl` line into the wire message (not validated: that is
/// ingest's job, so a file can carry invalid records on purpose).
pub fn parse_transaction(line: &str) -> Result<v1::Transaction, LineError> {
    let json: TransactionJson = from_line(line)?;
    Ok(v1::Transaction::try_from(&json)?)
}

/// Parses one `labels.jsonl` line into the wire message.
pub fn parse_label(line: &str) -> Result<v1::Label, LineError> {
    let json: LabelJson = from_line(line)?;
    Ok(v1::Label::try_from(&json)?)
}

/// `vigil.v1.Money`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoneyJson {
    #[serde(default)]
    pub minor_units: i64,
    #[serde(default)]
    pub currency: String,
}

/// `vigil.v1.GeoPoint`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoJson {
    #[serde(default)]
    pub lat: f64,
    #[serde(default)]
    pub lon: f64,
}

/// A proto enum value: its name, or its number when it has none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EnumJson {
    Name(String),
    Number(i32),
}

impl Default for EnumJson {
    fn default() -> Self {
        EnumJson::Number(0)
    }
}

/// `vigil.v1.Transaction`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransactionJson {
    #[serde(default)]
    pub transaction_id: String,
    #[serde(default)]
    pub user_id: String,
    #[serde(default)]
    pub account_id: String,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "object"
    )]
    pub amount: Option<MoneyJson>,
    #[serde(default)]
    pub merchant_id: String,
    #[serde(default)]
    pub merchant_category: String,
    #[serde(default)]
    pub channel: EnumJson,
    #[serde(default)]
    pub device_id: String,
    #[serde(default)]
    pub country: String,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "object"
    )]
    pub geo: Option<GeoJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_time: Option<String>,
}

/// `vigil.v1.Label`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelJson {
    #[serde(default)]
    pub transaction_id: String,
    #[serde(default)]
    pub user_id: String,
    #[serde(default)]
    pub is_fraud: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_time: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub merchant_id: String,
}

/// A nested message: a JSON object or `null`. Derived struct deserializers also take an
/// array of the fields in order, which no proto JSON writer produces and which would read
/// `[1,"a"]` as money; this refuses it, and keeps the field path of errors inside the object.
fn object<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    use serde::de::{MapAccess, Visitor, value::MapAccessDeserializer};
    use std::marker::PhantomData;

    struct Object<T>(PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for Object<T> {
        type Value = Option<T>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object or null")
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            T::deserialize(MapAccessDeserializer::new(map)).map(Some)
        }
    }
    deserializer.deserialize_any(Object(PhantomData))
}

/// RFC 3339 in UTC, with milliseconds (nanoseconds when the value has them).
pub fn format_timestamp(ts: &Timestamp) -> String {
    match DateTime::from_timestamp(ts.seconds, ts.nanos.clamp(0, 999_999_999) as u32) {
        Some(t) if ts.nanos % 1_000_000 == 0 => t.to_rfc3339_opts(SecondsFormat::Millis, true),
        Some(t) => t.to_rfc3339_opts(SecondsFormat::Nanos, true),
        // Out of chrono's range: only hand-made messages get here; keep the raw seconds.
        None => ts.seconds.to_string(),
    }
}

fn parse_timestamp(field: &'static str, value: &str) -> Result<Timestamp, JsonShapeError> {
    let t = DateTime::parse_from_rfc3339(value).map_err(|_| JsonShapeError::Timestamp {
        field,
        value: echo(value),
    })?;
    let nanos = i32::try_from(t.timestamp_subsec_nanos())
        .map_err(|_| JsonShapeError::TimestampRange { field })?;
    Ok(Timestamp {
        seconds: t.timestamp(),
        nanos,
    })
}

fn parse_opt(field: &'static str, v: &Option<String>) -> Result<Option<Timestamp>, JsonShapeError> {
    v.as_deref().map(|s| parse_timestamp(field, s)).transpose()
}

impl From<&v1::Transaction> for TransactionJson {
    fn from(t: &v1::Transaction) -> Self {
        TransactionJson {
            transaction_id: t.transaction_id.clone(),
            user_id: t.user_id.clone(),
            account_id: t.account_id.clone(),
            amount: t.amount.as_ref().map(|m| MoneyJson {
                minor_units: m.minor_units,
                currency: m.currency.clone(),
            }),
            merchant_id: t.merchant_id.clone(),
            merchant_category: t.merchant_category.clone(),
            channel: match v1::Channel::try_from(t.channel) {
                Ok(c) => EnumJson::Name(c.as_str_name().to_owned()),
                Err(_) => EnumJson::Number(t.channel),
            },
            device_id: t.device_id.clone(),
            country: t.country.clone(),
            geo: t.geo.as_ref().map(|g| GeoJson {
                lat: g.lat,
                lon: g.lon,
            }),
            event_time: t.event_time.as_ref().map(format_timestamp),
        }
    }
}

impl TryFrom<&TransactionJson> for v1::Transaction {
    type Error = JsonShapeError;

    fn try_from(t: &TransactionJson) -> Result<Self, Self::Error> {
        let channel = match &t.channel {
            EnumJson::Number(n) => *n,
            EnumJson::Name(name) => v1::Channel::from_str_name(name)
                .ok_or_else(|| JsonShapeError::Channel(echo(name)))?
                as i32,
        };
        Ok(v1::Transaction {
            transaction_id: t.transaction_id.clone(),
            user_id: t.user_id.clone(),
            account_id: t.account_id.clone(),
            amount: t.amount.as_ref().map(|m| v1::Money {
                minor_units: m.minor_units,
                currency: m.currency.clone(),
            }),
            merchant_id: t.merchant_id.clone(),
            merchant_category: t.merchant_category.clone(),
            channel,
            device_id: t.device_id.clone(),
            country: t.country.clone(),
            geo: t.geo.as_ref().map(|g| v1::GeoPoint {
                lat: g.lat,
                lon: g.lon,
            }),
            event_time: parse_opt("event_time", &t.event_time)?,
        })
    }
}

impl From<&v1::Label> for LabelJson {
    fn from(l: &v1::Label) -> Self {
        LabelJson {
            transaction_id: l.transaction_id.clone(),
            user_id: l.user_id.clone(),
            is_fraud: l.is_fraud,
            reported_at: l.reported_at.as_ref().map(format_timestamp),
            event_time: l.event_time.as_ref().map(format_timestamp),
            merchant_id: l.merchant_id.clone(),
        }
    }
}

impl TryFrom<&LabelJson> for v1::Label {
    type Error = JsonShapeError;

    fn try_from(l: &LabelJson) -> Result<Self, Self::Error> {
        Ok(v1::Label {
            transaction_id: l.transaction_id.clone(),
            user_id: l.user_id.clone(),
            is_fraud: l.is_fraud,
            reported_at: parse_opt("reported_at", &l.reported_at)?,
            event_time: parse_opt("event_time", &l.event_time)?,
            // Optional: ingest fills it from the transactions it accepted when empty.
            merchant_id: l.merchant_id.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::time::from_unix_ms;

    #[test]
    fn transaction_round_trips_including_invalid_values() {
        let t = v1::Transaction {
            transaction_id: "t".into(),
            user_id: String::new(),
            amount: Some(v1::Money {
                minor_units: -5,
                currency: "euro".into(),
            }),
            channel: 42,
            geo: Some(v1::GeoPoint {
                lat: 123.4,
                lon: 0.5,
            }),
            event_time: Some(from_unix_ms(1_767_571_200_123)),
            ..Default::default()
        };
        let json = serde_json::to_string(&TransactionJson::from(&t)).expect("serialises");
        assert!(
            json.contains(r#""event_time":"2026-01-05T00:00:00.123Z""#),
            "{json}"
        );
        assert!(json.contains(r#""channel":42"#), "{json}");
        let back: TransactionJson = serde_json::from_str(&json).expect("parses");
        assert_eq!(v1::Transaction::try_from(&back).expect("converts"), t);

        let none = v1::Transaction {
            channel: 2,
            ..Default::default()
        };
        let json = serde_json::to_string(&TransactionJson::from(&none)).expect("serialises");
        assert!(json.contains(r#""channel":"CHANNEL_ONLINE""#), "{json}");
        assert!(!json.contains("event_time"), "{json}");
        let back: TransactionJson = serde_json::from_str(&json).expect("parses");
        assert_eq!(v1::Transaction::try_from(&back).expect("converts"), none);
    }

    #[test]
    fn records_and_messages_must_be_objects_not_serde_arrays() {
        let e = parse_transaction(r#"[{"transaction_id":"t"}]"#).expect_err("array record");
        assert_eq!(e.field(), ".", "{e}");
        let e = parse_transaction(r#"{"amount":[1,"a"]}"#).expect_err("array money");
        assert_eq!(e.field(), "amount", "{e}");
        let e = parse_label("null").expect_err("null record");
        assert_eq!(e.field(), ".", "{e}");
        let ok = parse_transaction(r#"{"amount":null,"geo":{"lat":1.0}}"#).expect("objects");
        assert!(ok.amount.is_none() && ok.geo.is_some());
    }

    #[test]
    fn rejects_bad_shapes() {
        let bad_channel: TransactionJson =
            serde_json::from_str(r#"{"channel":"CHANNEL_TELEPATHY"}"#).expect("parses");
        assert!(v1::Transaction::try_from(&bad_channel).is_err());
        let bad_time: LabelJson =
            serde_json::from_str(r#"{"reported_at":"yesterday"}"#).expect("parses");
        assert!(v1::Label::try_from(&bad_time).is_err());
        assert!(serde_json::from_str::<LabelJson>(r#"{"surprise":1}"#).is_err());
    }
}
