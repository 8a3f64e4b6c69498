//! The validated domain model of Vigil: [`Transaction`], [`Label`] and their parts.
//!
//! Wire types (`proto::v1::*`) are converted here, at the edge, by `from_proto`/`to_proto`
//! (see [`convert`]). A value of a domain type has passed validation: every later stage
//! (features, lake, scoring) can rely on its invariants instead of re-checking them.
//!
//! Architecture invariant: no I/O here, and no dependency on tonic or any client library.

pub mod convert;
mod money;

pub use money::Currency;

use serde::{Deserialize, Serialize};

/// How the transaction reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Channel {
    CardPresent,
    Online,
    Atm,
    Transfer,
}

impl Channel {
    /// Every channel, in the order used by one-hot features.
    pub const ALL: [Channel; 4] = [
        Channel::CardPresent,
        Channel::Online,
        Channel::Atm,
        Channel::Transfer,
    ];

    /// Stable lower-case name, used in the lake and in data files.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::CardPresent => "card_present",
            Channel::Online => "online",
            Channel::Atm => "atm",
            Channel::Transfer => "transfer",
        }
    }

    /// Parses [`Channel::as_str`] names.
    pub fn parse(name: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

/// A point on Earth, in degrees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GeoPoint {
    pub lat: f64,
    pub lon: f64,
}

/// A validated transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transaction {
    pub transaction_id: String,
    pub user_id: String,
    pub account_id: String,
    /// Amount in minor units of `currency` (always positive).
    pub amount_minor: i64,
    pub currency: Currency,
    pub merchant_id: String,
    /// ISO 18245 merchant category code (four digits).
    pub merchant_category: String,
    pub channel: Channel,
    /// Empty when the channel has no device (e.g. some transfers).
    pub device_id: String,
    /// ISO 3166-1 alpha-2, upper case.
    pub country: String,
    pub geo: Option<GeoPoint>,
    /// Event time, milliseconds since the unix epoch.
    pub event_time_ms: i64,
}

impl Transaction {
    /// The amount in major units (e.g. euros), using the currency's ISO-4217 exponent.
    pub fn amount_major(&self) -> f64 {
        self.amount_minor as f64 / 10f64.powi(i32::from(self.currency.exponent()))
    }
}

/// A validated fraud label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Label {
    pub transaction_id: String,
    pub user_id: String,
    pub is_fraud: bool,
    pub reported_at_ms: i64,
    pub event_time_ms: i64,
    /// Merchant of the labelled transaction; empty when not known.
    pub merchant_id: String,
}

/// The kind of account (from the user dimension).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AccountType {
    Personal,
    Business,
    Student,
}

impl AccountType {
    pub const ALL: [AccountType; 3] = [
        AccountType::Personal,
        AccountType::Business,
        AccountType::Student,
    ];

    /// Stable lower-case name, used in the lake and in data files.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountType::Personal => "personal",
            AccountType::Business => "business",
            AccountType::Student => "student",
        }
    }

    /// Parses [`AccountType::as_str`] names.
    pub fn parse(name: &str) -> Option<AccountType> {
        AccountType::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// The feature code: 1, 2, 3 in [`AccountType::ALL`] order.
    pub fn code(self) -> u8 {
        match self {
            AccountType::Personal => 1,
            AccountType::Business => 2,
            AccountType::Student => 3,
        }
    }
}

/// A validated version of a user's profile: it holds from `valid_from_ms` until the next
/// version's `valid_from_ms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserProfile {
    pub user_id: String,
    pub account_opened_ms: i64,
    pub account_type: AccountType,
    /// ISO 3166-1 alpha-2, upper case.
    pub home_country: String,
    /// 1 (lowest) ..= 5 (highest).
    pub credit_band: u8,
    /// 1 (lowest) ..= 5 (highest).
    pub income_band: u8,
    pub valid_from_ms: i64,
}

/// Default of how far in the future (by the server clock) an event time may be: clocks of
/// card networks and client hosts disagree by seconds, not minutes.
pub const DEFAULT_MAX_FUTURE_SKEW_MS: i64 = 5 * 60_000;

/// The event-time rule shared by ingest, the speed layer and the lake writer: a time more
/// than `skew_ms` after the server's `now_ms` is refused, naming `field`. (A record accepted
/// at ingest stays acceptable later: the clock only moves forward.) Without it one event
/// dated 9999-01-01 would move a user's "latest" mark so far that every window reads 0.
pub fn check_not_future(
    field: &'static str,
    t_ms: i64,
    now_ms: i64,
    skew_ms: i64,
) -> Result<(), ValidationError> {
    let limit = now_ms.saturating_add(skew_ms);
    if t_ms > limit {
        return Err(ValidationError::new(
            field,
            format!(
                "{} is more than {} s after the server clock ({})",
                proto::time::from_unix_ms(t_ms),
                skew_ms / 1000,
                proto::time::from_unix_ms(now_ms)
            ),
        ));
    }
    Ok(())
}

/// Why an input was refused: the offending field (proto field path) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid field `{field}`: {reason}")]
pub struct ValidationError {
    pub field: &'static str,
    pub reason: String,
}

impl ValidationError {
    pub(crate) fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn future_event_times_are_refused_naming_the_field() {
        let now = 1_764_000_000_000;
        assert!(check_not_future("event_time", now + 299_000, now, 300_000).is_ok());
        let e = check_not_future("event_time", 253_370_764_800_000, now, 300_000).unwrap_err();
        assert_eq!(e.field, "event_time");
        assert!(e.reason.contains("9999-01-01T00:00:00"), "{}", e.reason);
    }
}
