//! Property-based malformed input for the wire → domain edge (issue 9's "10⁶ generated
//! malformed inputs"). Two families:
//!
//! * **field values**: messages whose every field is drawn from a mix of valid and
//!   malformed values (empty, oversized, control characters, NaN, extreme numbers and
//!   timestamps, unknown enum values). An oracle written here from the rules as documented
//!   — not from the implementation — says which fields are invalid. The property: the
//!   message is accepted exactly when the oracle finds nothing, and a refusal names one of
//!   the fields the oracle found invalid, with a bounded message.
//! * **bytes**: encodings of valid messages, truncated, bit-flipped, spliced with random
//!   bytes (what a poison record on a topic or a broken client sends). Decoding and
//!   validation never panic; a refusal names a known field; an accepted value survives a
//!   round trip unchanged.
//!
//! The number of cases of each property is `PROPTEST_CASES` (proptest's own variable;
//! 10 000 by default here). `scripts/fuzz.sh` runs them with 10⁶ inputs in all.

use domain::ValidationError;
use domain::convert::{
    label_from_proto, label_to_proto, profile_from_proto, profile_to_proto, transaction_from_proto,
    transaction_to_proto,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};
use proto::prost::Message;
use proto::prost_types::Timestamp;
use proto::v1;

/// An error message must stay short whatever the client sent (no unbounded echo: at most 16
/// characters of a value are quoted, each escaped to at most 10 bytes).
const MAX_REASON_BYTES: usize = 256;
const EARLIEST_EVENT_S: i64 = 946_684_800; // 2000-01-01
const EARLIEST_ACCOUNT_S: i64 = -2_208_988_800; // 1900-01-01
const LAST_SECOND: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z

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

// ---- generators -----------------------------------------------------------------------

/// Strings a client may send: valid ids, empty, oversized, control characters, non-ASCII.
fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z]{1,3}-[0-9]{1,6}",
        1 => Just(String::new()),
        1 => "[a-z]{120,140}",
        1 => "[a-z]{1,4}[\\x00-\\x1f\\x7f][a-z]{0,4}",
        1 => "\\PC{1,12}",
        1 => ".{0,300}",
    ]
}

fn currency() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec!["EUR", "USD", "JPY", "BHD", "GBP", "XAU", "CLF"])
            .prop_map(str::to_owned),
        1 => "[A-Z]{3}",
        1 => "[a-z]{3}",
        1 => ".{0,200}",
    ]
}

fn country() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec!["FR", "US", "JP", "DE", "BR"]).prop_map(str::to_owned),
        1 => "[A-Z]{2}",
        1 => "[a-z]{2}",
        1 => ".{0,200}",
    ]
}

fn mcc() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[0-9]{4}",
        1 => "[0-9]{0,8}",
        1 => ".{0,300}",
    ]
}

fn amount_units() -> impl Strategy<Value = i64> {
    prop_oneof![
        4 => 1i64..10_000_000,
        1 => Just(0i64),
        1 => Just(i64::MIN),
        1 => Just(i64::MAX),
        1 => any::<i64>(),
        1 => 999_999_999_990i64..1_000_000_000_000_010,
    ]
}

fn coordinate() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => -90.0f64..90.0,
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => any::<f64>(),
        1 => -200.0f64..200.0,
    ]
}

fn timestamp() -> impl Strategy<Value = Option<Timestamp>> {
    let seconds = prop_oneof![
        4 => 1_700_000_000i64..1_800_000_000,
        1 => any::<i64>(),
        1 => Just(i64::MAX),
        1 => Just(i64::MIN),
        1 => (LAST_SECOND - 2)..(LAST_SECOND + 2),
        1 => (EARLIEST_EVENT_S - 2)..(EARLIEST_EVENT_S + 2),
        1 => (EARLIEST_ACCOUNT_S - 2)..(EARLIEST_ACCOUNT_S + 2),
    ];
    let nanos = prop_oneof![
        4 => 0i32..1_000_000_000,
        1 => any::<i32>(),
        1 => Just(1_000_000_000i32),
        1 => Just(-1i32),
    ];
    prop::option::weighted(
        0.9,
        (seconds, nanos).prop_map(|(seconds, nanos)| Timestamp { seconds, nanos }),
    )
}

prop_compose! {
    fn any_transaction()(
        transaction_id in any_text(), user_id in any_text(),
        account_id in prop_oneof![Just(String::new()), any_text()],
        amount in prop::option::weighted(0.95, (amount_units(), currency())),
        merchant_id in any_text(), merchant_category in mcc(),
        channel in prop_oneof![4 => 1i32..=4, 1 => Just(0i32), 1 => any::<i32>()],
        device_id in prop_oneof![Just(String::new()), any_text()],
        country in country(),
        geo in prop::option::of((coordinate(), coordinate().prop_map(|x| x * 2.0))),
        event_time in timestamp(),
    ) -> v1::Transaction {
        v1::Transaction {
            transaction_id, user_id, account_id,
            amount: amount.map(|(minor_units, currency)| v1::Money { minor_units, currency }),
            merchant_id, merchant_category, channel, device_id, country,
            geo: geo.map(|(lat, lon)| v1::GeoPoint { lat, lon }),
            event_time,
        }
    }
}

prop_compose! {
    fn any_label()(
        transaction_id in any_text(), user_id in any_text(), is_fraud in any::<bool>(),
        reported_at in timestamp(), event_time in timestamp(),
        merchant_id in prop_oneof![Just(String::new()), any_text()],
    ) -> v1::Label {
        v1::Label { transaction_id, user_id, is_fraud, reported_at, event_time, merchant_id }
    }
}

prop_compose! {
    fn any_profile()(
        user_id in any_text(), account_opened_at in timestamp(),
        account_type in prop_oneof![4 => 1i32..=3, 1 => Just(0i32), 1 => any::<i32>()],
        home_country in country(),
        credit_band in prop_oneof![4 => 1i32..=5, 1 => any::<i32>()],
        income_band in prop_oneof![4 => 1i32..=5, 1 => any::<i32>()],
        valid_from in timestamp(),
    ) -> v1::UserProfile {
        v1::UserProfile {
            user_id, account_opened_at, account_type, home_country,
            credit_band, income_band, valid_from,
        }
    }
}

// ---- the oracle: the documented rules, field by field ---------------------------------

fn id_ok(v: &str) -> bool {
    !v.is_empty() && v.len() <= 128 && !v.chars().any(char::is_control)
}

fn optional_id_ok(v: &str) -> bool {
    v.is_empty() || id_ok(v)
}

fn country_ok(v: &str) -> bool {
    v.len() == 2
        && v.bytes().all(|b| b.is_ascii_uppercase())
        && v.parse::<iso_currency::Country>().is_ok()
}

/// Seconds in years 0001–9999 and nanos in 0..1e9, at or after `floor_s`.
fn time_ok(ts: &Option<Timestamp>, floor_s: i64) -> bool {
    ts.as_ref().is_some_and(|t| {
        (floor_s..=LAST_SECOND).contains(&t.seconds) && (0..1_000_000_000).contains(&t.nanos)
    })
}

fn transaction_invalid_fields(t: &v1::Transaction) -> Vec<&'static str> {
    let mut bad = Vec::new();
    let mut check = |ok: bool, field: &'static str| {
        if !ok {
            bad.push(field);
        }
    };
    check(id_ok(&t.transaction_id), "transaction_id");
    check(id_ok(&t.user_id), "user_id");
    check(optional_id_ok(&t.account_id), "account_id");
    match &t.amount {
        None => check(false, "amount"),
        Some(m) => {
            let iso = (m.currency.len() == 3 && m.currency.bytes().all(|b| b.is_ascii_uppercase()))
                .then(|| iso_currency::Currency::from_code(&m.currency))
                .flatten();
            check(iso.is_some(), "amount.currency");
            let exponent = iso.and_then(|c| c.exponent()).unwrap_or(0);
            let max = 1_000_000_000_000i64 * 10i64.pow(u32::from(exponent));
            // Positivity is checked whatever the currency; the cap needs a known currency.
            check(
                m.minor_units > 0 && (iso.is_none() || m.minor_units <= max),
                "amount.minor_units",
            );
        }
    }
    check(id_ok(&t.merchant_id), "merchant_id");
    check(
        t.merchant_category.len() == 4 && t.merchant_category.bytes().all(|b| b.is_ascii_digit()),
        "merchant_category",
    );
    check((1..=4).contains(&t.channel), "channel");
    check(optional_id_ok(&t.device_id), "device_id");
    check(country_ok(&t.country), "country");
    if let Some(g) = &t.geo {
        check((-90.0..=90.0).contains(&g.lat), "geo.lat");
        check((-180.0..=180.0).contains(&g.lon), "geo.lon");
    }
    check(time_ok(&t.event_time, EARLIEST_EVENT_S), "event_time");
    bad
}

fn label_invalid_fields(l: &v1::Label) -> Vec<&'static str> {
    let mut bad = Vec::new();
    for (ok, field) in [
        (id_ok(&l.transaction_id), "transaction_id"),
        (id_ok(&l.user_id), "user_id"),
        (time_ok(&l.reported_at, EARLIEST_EVENT_S), "reported_at"),
        (time_ok(&l.event_time, EARLIEST_EVENT_S), "event_time"),
        (optional_id_ok(&l.merchant_id), "merchant_id"),
    ] {
        if !ok {
            bad.push(field);
        }
    }
    bad
}

fn profile_invalid_fields(p: &v1::UserProfile) -> Vec<&'static str> {
    let mut bad = Vec::new();
    for (ok, field) in [
        (id_ok(&p.user_id), "user_id"),
        (
            time_ok(&p.account_opened_at, EARLIEST_ACCOUNT_S),
            "account_opened_at",
        ),
        ((1..=3).contains(&p.account_type), "account_type"),
        (country_ok(&p.home_country), "home_country"),
        ((1..=5).contains(&p.credit_band), "credit_band"),
        ((1..=5).contains(&p.income_band), "income_band"),
        (time_ok(&p.valid_from, EARLIEST_EVENT_S), "valid_from"),
    ] {
        if !ok {
            bad.push(field);
        }
    }
    bad
}

/// Accepted exactly when the oracle finds nothing; a refusal names a field the oracle
/// found invalid, with a bounded reason.
fn agrees<T>(
    result: Result<T, ValidationError>,
    invalid: &[&'static str],
) -> Result<(), TestCaseError> {
    match result {
        Ok(_) => prop_assert!(invalid.is_empty(), "accepted, but {invalid:?} are invalid"),
        Err(e) => {
            prop_assert!(
                invalid.contains(&e.field),
                "refused naming `{}` ({}), but the invalid fields are {invalid:?}",
                e.field,
                e.reason
            );
            prop_assert!(
                e.reason.len() <= MAX_REASON_BYTES,
                "`{}`: a {}-byte reason echoes the input",
                e.field,
                e.reason.len()
            );
            prop_assert!(e.to_string().contains(e.field));
        }
    }
    Ok(())
}

// ---- byte-level mutation ----------------------------------------------------------------

#[derive(Debug, Clone)]
enum Mutation {
    Truncate(prop::sample::Index),
    FlipBit(prop::sample::Index, u8),
    Overwrite(prop::sample::Index, u8),
    Insert(prop::sample::Index, Vec<u8>),
    Random(Vec<u8>),
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    let one = prop_oneof![
        any::<prop::sample::Index>().prop_map(Mutation::Truncate),
        (any::<prop::sample::Index>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Overwrite(i, b)),
        (
            any::<prop::sample::Index>(),
            prop::collection::vec(any::<u8>(), 1..16)
        )
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        prop::collection::vec(any::<u8>(), 0..64).prop_map(Mutation::Random),
    ];
    prop::collection::vec(one, 1..4)
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        match m {
            Mutation::Random(b) => bytes = b.clone(),
            _ if bytes.is_empty() => {}
            Mutation::Truncate(i) => bytes.truncate(i.index(bytes.len())),
            Mutation::FlipBit(i, bit) => {
                let i = i.index(bytes.len());
                bytes[i] ^= 1 << bit;
            }
            Mutation::Overwrite(i, b) => {
                let i = i.index(bytes.len());
                bytes[i] = *b;
            }
            Mutation::Insert(i, b) => {
                let i = i.index(bytes.len());
                bytes.splice(i..i, b.iter().copied());
            }
        }
    }
    bytes
}

const TRANSACTION_FIELDS: &[&str] = &[
    "transaction_id",
    "user_id",
    "account_id",
    "amount",
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

proptest! {
    #![proptest_config(config())]

    #[test]
    fn transaction_fields(t in any_transaction()) {
        agrees(transaction_from_proto(&t), &transaction_invalid_fields(&t))?;
    }

    #[test]
    fn label_fields(l in any_label()) {
        agrees(label_from_proto(&l), &label_invalid_fields(&l))?;
    }

    #[test]
    fn profile_fields(p in any_profile()) {
        agrees(profile_from_proto(&p), &profile_invalid_fields(&p))?;
    }

    #[test]
    fn transaction_bytes(t in any_transaction(), m in mutations()) {
        let bytes = mutate(t.encode_to_vec(), &m);
        // A decoding error is the `payload` quarantine of the consumers: it must not panic.
        if let Ok(wire) = v1::Transaction::decode(bytes.as_slice()) {
            match transaction_from_proto(&wire) {
                Ok(valid) => prop_assert_eq!(
                    transaction_from_proto(&transaction_to_proto(&valid)).ok(),
                    Some(valid)
                ),
                Err(e) => {
                    prop_assert!(TRANSACTION_FIELDS.contains(&e.field), "unknown field {}", e.field);
                    prop_assert!(e.reason.len() <= MAX_REASON_BYTES);
                }
            }
        }
    }

    #[test]
    fn label_and_profile_bytes(l in any_label(), p in any_profile(), m in mutations()) {
        if let Ok(wire) = v1::Label::decode(mutate(l.encode_to_vec(), &m).as_slice()) {
            match label_from_proto(&wire) {
                Ok(valid) => prop_assert_eq!(label_from_proto(&label_to_proto(&valid)).ok(), Some(valid)),
                Err(e) => prop_assert!(e.reason.len() <= MAX_REASON_BYTES),
            }
        }
        if let Ok(wire) = v1::UserProfile::decode(mutate(p.encode_to_vec(), &m).as_slice()) {
            match profile_from_proto(&wire) {
                Ok(valid) => prop_assert_eq!(profile_from_proto(&profile_to_proto(&valid)).ok(), Some(valid)),
                Err(e) => prop_assert!(e.reason.len() <= MAX_REASON_BYTES),
            }
        }
    }
}
