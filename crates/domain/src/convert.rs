//! `from_proto` / `to_proto`: the only place wire messages become domain values.
//! Validation errors name the proto field path, so a client sees exactly what is wrong.

use crate::{
    AccountType, Channel, Currency, GeoPoint, Label, Transaction, UserProfile, ValidationError,
};
use proto::time::{checked_unix_ms, from_unix_ms};
use proto::v1;

const MAX_ID_LEN: usize = 128;
/// The largest amount accepted, in major units: a trillion, beyond any card or account
/// transaction, and small enough that amounts in 10⁻⁴ units (`features::amount_units`) and
/// their window sums stay far from `i64` overflow.
const MAX_AMOUNT_MAJOR: i64 = 1_000_000_000_000;
/// 2000-01-01T00:00:00Z: anything earlier is a client bug, not a late event.
const EARLIEST_EVENT_MS: i64 = 946_684_800_000;
/// 1900-01-01T00:00:00Z: the floor for account opening dates.
const EARLIEST_ACCOUNT_MS: i64 = -2_208_988_800_000;

/// An identifier a client sends (`field` names it in the error): 1 to 128 bytes, no control
/// characters. The rule every id of the wire messages follows, for other requests too.
pub fn check_id(field: &'static str, value: &str) -> Result<String, ValidationError> {
    id(field, value)
}

fn id(field: &'static str, value: &str) -> Result<String, ValidationError> {
    if value.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if value.len() > MAX_ID_LEN {
        return Err(ValidationError::new(
            field,
            format!("longer than {MAX_ID_LEN} bytes"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(ValidationError::new(field, "contains control characters"));
    }
    Ok(value.to_owned())
}

fn time(
    field: &'static str,
    ts: Option<&proto::prost_types::Timestamp>,
) -> Result<i64, ValidationError> {
    let ts = ts.ok_or_else(|| ValidationError::new(field, "is required"))?;
    if !(0..1_000_000_000).contains(&ts.nanos) {
        return Err(ValidationError::new(field, "nanos out of range"));
    }
    let ms = checked_unix_ms(ts)
        .ok_or_else(|| ValidationError::new(field, "seconds out of range (years 0001 to 9999)"))?;
    if ms < EARLIEST_EVENT_MS {
        return Err(ValidationError::new(field, "is before 2000-01-01"));
    }
    Ok(ms)
}

/// An ISO 3166-1 alpha-2 code the standard assigns (the `iso_country` crate's list, not any
/// two capital letters).
fn country_code(field: &'static str, value: &str) -> Result<String, ValidationError> {
    if value.len() != 2
        || !value.bytes().all(|b| b.is_ascii_uppercase())
        || value.parse::<iso_currency::Country>().is_err()
    {
        return Err(ValidationError::new(
            field,
            format!(
                "must be an ISO 3166-1 alpha-2 code like FR, got {:?}",
                truncated(value)
            ),
        ));
    }
    Ok(value.to_owned())
}

/// At most 16 characters of a client's value, for error messages.
fn truncated(value: &str) -> String {
    value.chars().take(16).collect()
}

/// Validates a wire transaction into a domain [`Transaction`].
pub fn transaction_from_proto(t: &v1::Transaction) -> Result<Transaction, ValidationError> {
    let transaction_id = id("transaction_id", &t.transaction_id)?;
    let user_id = id("user_id", &t.user_id)?;
    let account_id = if t.account_id.is_empty() {
        user_id.clone()
    } else {
        id("account_id", &t.account_id)?
    };
    let amount = t
        .amount
        .as_ref()
        .ok_or_else(|| ValidationError::new("amount", "is required"))?;
    if amount.minor_units <= 0 {
        return Err(ValidationError::new(
            "amount.minor_units",
            format!("must be positive, got {}", amount.minor_units),
        ));
    }
    let currency = Currency::parse(&amount.currency).ok_or_else(|| {
        ValidationError::new(
            "amount.currency",
            format!(
                "must be an ISO-4217 code like EUR, got {:?}",
                truncated(&amount.currency)
            ),
        )
    })?;
    let max_minor = MAX_AMOUNT_MAJOR.saturating_mul(10i64.pow(u32::from(currency.exponent())));
    if amount.minor_units > max_minor {
        return Err(ValidationError::new(
            "amount.minor_units",
            format!(
                "must be at most {MAX_AMOUNT_MAJOR} {} ({max_minor} minor units), got {}",
                currency.as_str(),
                amount.minor_units
            ),
        ));
    }
    let merchant_id = id("merchant_id", &t.merchant_id)?;
    let mcc = &t.merchant_category;
    if mcc.len() != 4 || !mcc.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ValidationError::new(
            "merchant_category",
            format!(
                "must be a four-digit ISO 18245 code, got {:?}",
                truncated(mcc)
            ),
        ));
    }
    let channel = match v1::Channel::try_from(t.channel) {
        Ok(v1::Channel::CardPresent) => Channel::CardPresent,
        Ok(v1::Channel::Online) => Channel::Online,
        Ok(v1::Channel::Atm) => Channel::Atm,
        Ok(v1::Channel::Transfer) => Channel::Transfer,
        Ok(v1::Channel::Unspecified) => {
            return Err(ValidationError::new("channel", "must be specified"));
        }
        Err(_) => {
            return Err(ValidationError::new(
                "channel",
                format!("unknown value {}", t.channel),
            ));
        }
    };
    let device_id = if t.device_id.is_empty() {
        String::new()
    } else {
        id("device_id", &t.device_id)?
    };
    let country = country_code("country", &t.country)?;
    let geo = match &t.geo {
        None => None,
        Some(g) => {
            if !(-90.0..=90.0).contains(&g.lat) {
                return Err(ValidationError::new("geo.lat", "must be within [-90, 90]"));
            }
            if !(-180.0..=180.0).contains(&g.lon) {
                return Err(ValidationError::new(
                    "geo.lon",
                    "must be within [-180, 180]",
                ));
            }
            Some(GeoPoint {
                lat: g.lat,
                lon: g.lon,
            })
        }
    };
    let event_time_ms = time("event_time", t.event_time.as_ref())?;
    Ok(Transaction {
        transaction_id,
        user_id,
        account_id,
        amount_minor: amount.minor_units,
        currency,
        merchant_id,
        merchant_category: mcc.clone(),
        channel,
        device_id,
        country,
        geo,
        event_time_ms,
    })
}

/// The wire form of a domain transaction.
pub fn transaction_to_proto(t: &Transaction) -> v1::Transaction {
    v1::Transaction {
        transaction_id: t.transaction_id.clone(),
        user_id: t.user_id.clone(),
        account_id: t.account_id.clone(),
        amount: Some(v1::Money {
            minor_units: t.amount_minor,
            currency: t.currency.as_str().to_owned(),
        }),
        merchant_id: t.merchant_id.clone(),
        merchant_category: t.merchant_category.clone(),
        channel: match t.channel {
            Channel::CardPresent => v1::Channel::CardPresent,
            Channel::Online => v1::Channel::Online,
            Channel::Atm => v1::Channel::Atm,
            Channel::Transfer => v1::Channel::Transfer,
        } as i32,
        device_id: t.device_id.clone(),
        country: t.country.clone(),
        geo: t.geo.map(|g| v1::GeoPoint {
            lat: g.lat,
            lon: g.lon,
        }),
        event_time: Some(from_unix_ms(t.event_time_ms)),
    }
}

/// Validates a wire label.
pub fn label_from_proto(l: &v1::Label) -> Result<Label, ValidationError> {
    Ok(Label {
        transaction_id: id("transaction_id", &l.transaction_id)?,
        user_id: id("user_id", &l.user_id)?,
        is_fraud: l.is_fraud,
        reported_at_ms: time("reported_at", l.reported_at.as_ref())?,
        event_time_ms: time("event_time", l.event_time.as_ref())?,
        merchant_id: if l.merchant_id.is_empty() {
            String::new()
        } else {
            id("merchant_id", &l.merchant_id)?
        },
    })
}

/// The wire form of a domain label.
pub fn label_to_proto(l: &Label) -> v1::Label {
    v1::Label {
        transaction_id: l.transaction_id.clone(),
        user_id: l.user_id.clone(),
        is_fraud: l.is_fraud,
        reported_at: Some(from_unix_ms(l.reported_at_ms)),
        event_time: Some(from_unix_ms(l.event_time_ms)),
        merchant_id: l.merchant_id.clone(),
    }
}

fn band(field: &'static str, value: i32) -> Result<u8, ValidationError> {
    match u8::try_from(value) {
        Ok(b @ 1..=5) => Ok(b),
        _ => Err(ValidationError::new(
            field,
            format!("must be within 1..=5, got {value}"),
        )),
    }
}

/// Validates a wire profile version into a domain [`UserProfile`].
pub fn profile_from_proto(p: &v1::UserProfile) -> Result<UserProfile, ValidationError> {
    let account_type = match v1::AccountType::try_from(p.account_type) {
        Ok(v1::AccountType::Personal) => AccountType::Personal,
        Ok(v1::AccountType::Business) => AccountType::Business,
        Ok(v1::AccountType::Student) => AccountType::Student,
        Ok(v1::AccountType::Unspecified) => {
            return Err(ValidationError::new("account_type", "must be specified"));
        }
        Err(_) => {
            return Err(ValidationError::new(
                "account_type",
                format!("unknown value {}", p.account_type),
            ));
        }
    };
    // Accounts older than the event-time floor (2000) exist: only a sane range is required.
    let opened = p
        .account_opened_at
        .as_ref()
        .ok_or_else(|| ValidationError::new("account_opened_at", "is required"))?;
    let account_opened_ms = checked_unix_ms(opened).unwrap_or(i64::MIN);
    if account_opened_ms < EARLIEST_ACCOUNT_MS {
        return Err(ValidationError::new(
            "account_opened_at",
            "must be a valid time after 1900-01-01",
        ));
    }
    let valid_from_ms = time("valid_from", p.valid_from.as_ref())?;
    Ok(UserProfile {
        user_id: id("user_id", &p.user_id)?,
        account_opened_ms,
        account_type,
        home_country: country_code("home_country", &p.home_country)?,
        credit_band: band("credit_band", p.credit_band)?,
        income_band: band("income_band", p.income_band)?,
        valid_from_ms,
    })
}

/// The wire form of a domain profile version.
pub fn profile_to_proto(p: &UserProfile) -> v1::UserProfile {
    let account_type = match p.account_type {
        AccountType::Personal => v1::AccountType::Personal,
        AccountType::Business => v1::AccountType::Business,
        AccountType::Student => v1::AccountType::Student,
    };
    v1::UserProfile {
        user_id: p.user_id.clone(),
        account_opened_at: Some(from_unix_ms(p.account_opened_ms)),
        account_type: account_type as i32,
        home_country: p.home_country.clone(),
        credit_band: i32::from(p.credit_band),
        income_band: i32::from(p.income_band),
        valid_from: Some(from_unix_ms(p.valid_from_ms)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> v1::Transaction {
        v1::Transaction {
            transaction_id: "t-1".into(),
            user_id: "u-1".into(),
            account_id: "a-1".into(),
            amount: Some(v1::Money {
                minor_units: 1234,
                currency: "EUR".into(),
            }),
            merchant_id: "m-1".into(),
            merchant_category: "5411".into(),
            channel: v1::Channel::Online as i32,
            device_id: "d-1".into(),
            country: "FR".into(),
            geo: Some(v1::GeoPoint {
                lat: 48.85,
                lon: 2.35,
            }),
            event_time: Some(from_unix_ms(1_763_900_000_123)),
        }
    }

    #[test]
    fn round_trips_a_valid_transaction() {
        let wire = valid();
        let domain = transaction_from_proto(&wire).expect("valid");
        assert_eq!(domain.amount_major(), 12.34);
        assert_eq!(transaction_to_proto(&domain), wire);
    }

    #[test]
    fn amounts_are_bounded_by_a_trillion_major_units_per_currency_exponent() {
        let with = |currency: &str, minor_units: i64| {
            let mut t = valid();
            let a = t.amount.as_mut().unwrap();
            a.currency = currency.into();
            a.minor_units = minor_units;
            transaction_from_proto(&t)
        };
        assert!(with("EUR", 100_000_000_000_000).is_ok());
        assert_eq!(
            with("EUR", 100_000_000_000_001).unwrap_err().field,
            "amount.minor_units"
        );
        assert!(with("JPY", 1_000_000_000_000).is_ok());
        assert!(with("JPY", 1_000_000_000_001).is_err());
        // A very long currency is echoed truncated, not whole.
        let err = with(&"X".repeat(10_000), 100).unwrap_err();
        assert!(err.to_string().len() < 200, "{err}");
    }

    type Mutation = Box<dyn Fn(&mut v1::Transaction)>;

    #[test]
    fn names_the_offending_field() {
        let cases: Vec<(&str, Mutation)> = vec![
            ("transaction_id", Box::new(|t| t.transaction_id.clear())),
            ("user_id", Box::new(|t| t.user_id.clear())),
            ("amount", Box::new(|t| t.amount = None)),
            (
                "amount.minor_units",
                Box::new(|t| t.amount.as_mut().unwrap().minor_units = -5),
            ),
            (
                "amount.currency",
                Box::new(|t| t.amount.as_mut().unwrap().currency = "euro".into()),
            ),
            ("merchant_id", Box::new(|t| t.merchant_id.clear())),
            (
                "merchant_category",
                Box::new(|t| t.merchant_category = "54a1".into()),
            ),
            ("channel", Box::new(|t| t.channel = 0)),
            ("channel", Box::new(|t| t.channel = 42)),
            ("country", Box::new(|t| t.country = "France".into())),
            // Two capital letters ISO 3166 does not assign.
            ("country", Box::new(|t| t.country = "ZZ".into())),
            (
                "amount.currency",
                Box::new(|t| t.amount.as_mut().unwrap().currency = "ABC".into()),
            ),
            (
                "amount.minor_units",
                Box::new(|t| t.amount.as_mut().unwrap().minor_units = i64::MAX),
            ),
            (
                "geo.lat",
                Box::new(|t| {
                    t.geo = Some(v1::GeoPoint {
                        lat: 91.0,
                        lon: 0.0,
                    })
                }),
            ),
            ("event_time", Box::new(|t| t.event_time = None)),
            (
                "event_time",
                Box::new(|t| t.event_time = Some(from_unix_ms(0))),
            ),
            // Seconds whose milliseconds overflow an i64: refused, never wrapped or panicking.
            (
                "event_time",
                Box::new(|t| {
                    t.event_time = Some(proto::prost_types::Timestamp {
                        seconds: i64::MAX,
                        nanos: 0,
                    })
                }),
            ),
        ];
        for (field, mutate) in cases {
            let mut t = valid();
            mutate(&mut t);
            let err = transaction_from_proto(&t).expect_err(field);
            assert_eq!(err.field, field, "{err}");
            assert!(err.to_string().contains(field));
        }
    }

    #[test]
    fn label_round_trips() {
        let wire = v1::Label {
            transaction_id: "t".into(),
            user_id: "u".into(),
            is_fraud: true,
            reported_at: Some(from_unix_ms(1_763_900_000_000)),
            event_time: Some(from_unix_ms(1_763_800_000_000)),
            merchant_id: "m1".into(),
        };
        assert_eq!(label_to_proto(&label_from_proto(&wire).unwrap()), wire);
    }

    fn valid_profile() -> v1::UserProfile {
        v1::UserProfile {
            user_id: "u".into(),
            account_opened_at: Some(from_unix_ms(-86_400_000)),
            account_type: v1::AccountType::Business as i32,
            home_country: "DE".into(),
            credit_band: 3,
            income_band: 5,
            valid_from: Some(from_unix_ms(1_763_800_000_000)),
        }
    }

    #[test]
    fn profile_round_trips_and_names_bad_fields() {
        let wire = valid_profile();
        let p = profile_from_proto(&wire).unwrap();
        assert_eq!(p.account_type.code(), 2);
        assert_eq!(profile_to_proto(&p), wire);
        #[allow(clippy::type_complexity)]
        let cases: Vec<(&str, Box<dyn Fn(&mut v1::UserProfile)>)> = vec![
            ("user_id", Box::new(|p| p.user_id.clear())),
            ("account_type", Box::new(|p| p.account_type = 0)),
            ("account_type", Box::new(|p| p.account_type = 9)),
            (
                "home_country",
                Box::new(|p| p.home_country = "Germany".into()),
            ),
            ("credit_band", Box::new(|p| p.credit_band = 0)),
            ("income_band", Box::new(|p| p.income_band = 6)),
            ("valid_from", Box::new(|p| p.valid_from = None)),
            (
                "account_opened_at",
                Box::new(|p| p.account_opened_at = Some(from_unix_ms(-3_000_000_000_000))),
            ),
        ];
        for (field, mutate) in cases {
            let mut p = valid_profile();
            mutate(&mut p);
            let err = profile_from_proto(&p).expect_err(field);
            assert_eq!(err.field, field, "{err}");
        }
    }
}
