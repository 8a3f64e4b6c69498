//! Fixtures shared by the unit tests.

use domain::{Channel, Currency, Label, Transaction};

use crate::Record;

pub(crate) fn transaction(id: &str, user: &str, event_time_ms: i64) -> Transaction {
    Transaction {
        transaction_id: id.to_owned(),
        user_id: user.to_owned(),
        account_id: format!("acc-{user}"),
        amount_minor: 1_234,
        currency: Currency::parse("EUR").expect("valid currency code"),
        merchant_id: "m-1".to_owned(),
        merchant_category: "5411".to_owned(),
        channel: Channel::Online,
        device_id: String::new(),
        country: "FR".to_owned(),
        geo: None,
        event_time_ms,
    }
}

pub(crate) fn label(id: &str, is_fraud: bool, reported_at_ms: i64) -> Label {
    Label {
        transaction_id: id.to_owned(),
        user_id: "u1".to_owned(),
        is_fraud,
        reported_at_ms,
        event_time_ms: 1_700_000_000_000,
        merchant_id: String::new(),
    }
}

/// Wraps values as consecutive records of one partition starting at `first_offset`.
pub(crate) fn records<T>(partition: i32, first_offset: i64, values: Vec<T>) -> Vec<Record<T>> {
    (first_offset..)
        .zip(values)
        .map(|(offset, value)| Record {
            partition,
            offset,
            value,
        })
        .collect()
}
