//! Behaviour of the engine over the whole feature set.

use crate::schema::index_of;
use crate::tiles::{DAY_MS, HOUR_MS, MINUTE_MS};
use crate::*;
use domain::{AccountType, Channel, Currency, GeoPoint, Label, Transaction, UserProfile};

const T0: i64 = 1_763_942_400_000; // 2025-11-24T00:00:00Z, a Monday

fn txn(id: &str, user: &str, merchant: &str, t: i64, minor: i64) -> Transaction {
    Transaction {
        transaction_id: id.into(),
        user_id: user.into(),
        account_id: user.into(),
        amount_minor: minor,
        currency: Currency::parse("EUR").unwrap(),
        merchant_id: merchant.into(),
        merchant_category: "5411".into(),
        channel: Channel::Online,
        device_id: "d1".into(),
        country: "FR".into(),
        geo: None,
        event_time_ms: t,
    }
}

fn fraud(id: &str, reported_at_ms: i64) -> Label {
    Label {
        transaction_id: id.into(),
        user_id: "u".into(),
        is_fraud: true,
        reported_at_ms,
        event_time_ms: 0,
        merchant_id: "m".into(),
    }
}

fn get(v: &[f64], name: &str) -> f64 {
    v[index_of(name).unwrap_or_else(|| panic!("no feature {name}"))]
}

fn values(a: Applied) -> Vec<f64> {
    match a {
        Applied::New { values, .. } => values,
        Applied::Duplicate => panic!("unexpected duplicate"),
    }
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn first_transaction_has_empty_history() {
    let v = cold_vector(&txn("a", "u", "m", T0 + 3 * HOUR_MS, 10_000));
    assert_eq!(v.len(), FEATURES.len());
    assert_eq!(get(&v, "user_txn_count_24h"), 0.0);
    assert!(get(&v, "user_amount_mean_30d").is_nan());
    assert!(get(&v, "user_amount_zscore_30d").is_nan());
    assert!(get(&v, "merchant_fraud_share_30d").is_nan());
    assert_eq!(get(&v, "is_new_device"), 1.0);
    assert_eq!(get(&v, "amount_is_round"), 1.0);
    assert_eq!(get(&v, "is_night"), 1.0);
    assert_eq!(get(&v, "weekday"), 0.0);
    assert_eq!(get(&v, "merchant_category_code"), 5411.0);
    assert!((get(&v, "amount_log") - 101f64.ln()).abs() < 1e-12);
    assert!((get(&v, "user_log_secs_since_prev") - (30.0f64 * 86_400.0).ln_1p()).abs() < 1e-12);
    for f in FEATURES
        .iter()
        .filter(|f| f.source.entity() == schema::Entity::Profile)
    {
        assert!(get(&v, f.name).is_nan(), "{} without a profile", f.name);
    }
}

fn profile(valid_from_ms: i64, account_type: AccountType, credit_band: u8) -> UserProfile {
    UserProfile {
        user_id: "u".into(),
        account_opened_ms: T0 - 400 * DAY_MS,
        account_type,
        home_country: "DE".into(),
        credit_band,
        income_band: 2,
        valid_from_ms,
    }
}

#[test]
fn profile_features_read_the_version_valid_at_the_event() {
    let mut s = MemoryStates::default();
    // The second version arrives first: arrival order does not matter, valid_from does.
    assert!(on_profile(
        &mut s,
        &profile(T0 + DAY_MS, AccountType::Business, 5)
    ));
    assert!(on_profile(
        &mut s,
        &profile(T0 - DAY_MS, AccountType::Student, 1)
    ));
    let before = values(on_transaction(&mut s, &txn("a", "u", "m", T0, 1_000)));
    assert_eq!(get(&before, "profile_account_age_days"), 400.0);
    assert_eq!(get(&before, "profile_is_student"), 1.0);
    assert_eq!(get(&before, "profile_is_business"), 0.0);
    assert_eq!(get(&before, "profile_credit_band"), 1.0);
    assert_eq!(get(&before, "profile_income_band"), 2.0);
    assert_eq!(get(&before, "is_foreign_country"), 1.0, "FR vs home DE");
    let after = values(on_transaction(
        &mut s,
        &txn("b", "u", "m", T0 + 2 * DAY_MS, 1_000),
    ));
    assert_eq!(get(&after, "profile_is_business"), 1.0);
    assert_eq!(get(&after, "profile_credit_band"), 5.0);
    assert_eq!(get(&after, "profile_account_age_days"), 402.0);
    // Before the first version: no profile.
    let early = values(on_transaction(
        &mut s,
        &txn("c", "u", "m", T0 - 2 * DAY_MS, 1_000),
    ));
    assert!(get(&early, "profile_credit_band").is_nan());
    // A repeat of a kept version changes nothing.
    assert!(!on_profile(
        &mut s,
        &profile(T0 + DAY_MS, AccountType::Business, 5)
    ));
}

#[test]
fn user_windows_count_the_past_at_their_tile_granularity() {
    let mut s = MemoryStates::default();
    // 10 days ago, 25 h ago, 23 h ago, 30 min ago; probe at T0 + 25 h + 10 days.
    let probe_t = T0 + 10 * DAY_MS + 25 * HOUR_MS;
    for (id, dt, minor) in [
        ("a", 10 * DAY_MS + 25 * HOUR_MS, 8_000),
        ("b", 25 * HOUR_MS, 1_000),
        ("c", 23 * HOUR_MS, 2_000),
        ("d", 30 * MINUTE_MS, 4_000),
    ] {
        values(on_transaction(
            &mut s,
            &txn(id, "u", "m", probe_t - dt, minor),
        ));
    }
    let v = values(on_transaction(&mut s, &txn("p", "u", "m", probe_t, 1_234)));
    assert_eq!(get(&v, "user_txn_count_1h"), 1.0);
    assert_eq!(get(&v, "user_txn_count_24h"), 2.0);
    assert_eq!(get(&v, "user_amount_sum_24h"), 60.0);
    assert_eq!(get(&v, "user_amount_mean_24h"), 30.0);
    assert_eq!(get(&v, "user_amount_max_24h"), 40.0);
    assert_eq!(get(&v, "user_txn_count_7d"), 3.0);
    assert_eq!(get(&v, "user_txn_count_30d"), 4.0);
    assert_eq!(get(&v, "user_amount_max_30d"), 80.0);
    // Mean of 80, 10, 20, 40 = 37.5; population std = sqrt(mean of squares − mean²).
    let std = ((6400.0 + 100.0 + 400.0 + 1600.0) / 4.0 - 37.5f64 * 37.5).sqrt();
    assert!((get(&v, "user_amount_zscore_30d") - (12.34 - 37.5) / std).abs() < 1e-12);
    assert!((get(&v, "user_amount_ratio_30d") - 12.34 / 37.5).abs() < 1e-12);
    assert_eq!(get(&v, "is_new_device"), 0.0);
    assert_eq!(get(&v, "is_new_merchant"), 0.0);
    assert!((get(&v, "user_log_secs_since_prev") - 1800f64.ln_1p()).abs() < 1e-12);
    assert_eq!(s.users["u"].transactions_seen(), 5);
}

#[test]
fn duplicates_change_nothing_and_give_no_vector() {
    let mut s = MemoryStates::default();
    values(on_transaction(&mut s, &txn("a", "u", "m", T0, 1_000)));
    let (u, m) = (s.users["u"].clone(), s.merchants["m"].clone());
    assert_eq!(
        on_transaction(&mut s, &txn("a", "u", "m", T0, 1_000)),
        Applied::Duplicate
    );
    assert_eq!(s.users["u"], u);
    assert_eq!(s.merchants["m"], m);
}

#[test]
fn a_label_reported_after_the_event_never_changes_its_vector() {
    // A merchant with history and fraud reported well before the probe.
    let build = || {
        let mut s = MemoryStates::default();
        for k in 0..40 {
            let t = T0 + k * 7 * HOUR_MS;
            values(on_transaction(
                &mut s,
                &txn(&format!("h{k}"), &format!("u{}", k % 3), "m", t, 5_000),
            ));
        }
        on_label(&mut s, "m", &fraud("h1", T0 + 2 * DAY_MS));
        s
    };
    let probe_t = T0 + 12 * DAY_MS + 5 * HOUR_MS + 17 * MINUTE_MS;
    let probe = txn("p", "u9", "m", probe_t, 9_900);
    let mut base = build();
    let expected = values(on_transaction(&mut base, &probe));
    assert_eq!(get(&expected, "merchant_fraud_reports_30d"), 1.0);
    // Labels reported at any time after the event — a millisecond later, the same tile,
    // days later — folded in *before* the event is processed.
    for late in [1, MINUTE_MS, 3 * HOUR_MS, DAY_MS, 20 * DAY_MS] {
        let mut s = build();
        on_label(&mut s, "m", &fraud("h2", probe_t + late));
        on_label(&mut s, "m", &fraud("h3", probe_t + late));
        let got = values(on_transaction(&mut s, &probe));
        assert_eq!(
            bits(&got),
            bits(&expected),
            "label reported {late} ms after the event leaked"
        );
    }
    // A label reported a day before the event does count.
    let mut s = build();
    on_label(&mut s, "m", &fraud("h2", probe_t - DAY_MS));
    let got = values(on_transaction(&mut s, &probe));
    assert_eq!(get(&got, "merchant_fraud_reports_30d"), 2.0);
    assert_eq!(get(&got, "merchant_fraud_reports_7d"), 1.0); // h1's report (day 2) is outside the 7-day window
    let share = get(&got, "merchant_fraud_share_30d");
    assert!((share - 2.0 / get(&got, "merchant_txn_count_30d")).abs() < 1e-15);
}

#[test]
fn merchant_features_do_not_depend_on_how_users_interleave() {
    // Three users' events at one merchant, fed in two different cross-user orders (each
    // user's own order kept): every vector is identical.
    let mut events = Vec::new();
    for k in 0..60i64 {
        let user = format!("u{}", k % 3);
        events.push(txn(
            &format!("t{k}"),
            &user,
            "m",
            T0 + k * 13 * MINUTE_MS,
            1_000 + k * 37,
        ));
    }
    let run = |order: &[usize]| {
        let mut s = MemoryStates::default();
        let mut out = std::collections::BTreeMap::new();
        for &i in order {
            out.insert(i, bits(&values(on_transaction(&mut s, &events[i]))));
        }
        out
    };
    let in_order: Vec<usize> = (0..events.len()).collect();
    // Each user's events in order, users one after another within every 6-hour block.
    let mut shuffled = in_order.clone();
    shuffled.sort_by_key(|&i| {
        let t = events[i].event_time_ms;
        (t.div_euclid(HOUR_MS), i % 3, i)
    });
    assert_ne!(in_order, shuffled);
    assert_eq!(run(&in_order), run(&shuffled));
}

#[test]
fn a_user_with_50_000_transactions_in_an_hour_keeps_bounded_state() {
    let mut s = MemoryStates::default();
    for k in 0..50_000i64 {
        let t = T0 + k * 72; // 50 000 in one hour
        on_transaction(
            &mut s,
            &txn(
                &format!("x{k}"),
                "heavy",
                &format!("m{}", k % 500),
                t,
                100 + k % 9_000,
            ),
        );
    }
    let u = &s.users["heavy"];
    assert_eq!(u.transactions_seen(), 50_000);
    assert!(
        u.tiles_held() <= 12 + 1 + 24 + 1 + 28 + 1 + 30 + 1,
        "{} tiles",
        u.tiles_held()
    );
    let bytes = serde_json::to_vec(u).unwrap().len();
    assert!(bytes < 64 * 1024, "state of {bytes} bytes");
    let v = vector(
        &txn("y", "heavy", "m1", T0 + HOUR_MS - 1, 500),
        Entities {
            user: u,
            ..Entities::none()
        },
    );
    assert_eq!(get(&v, "user_txn_count_1h"), 50_000.0);
    assert_eq!(get(&v, "user_distinct_devices_24h"), 1.0);
}

#[test]
fn out_of_order_and_very_late_events() {
    let mut s = MemoryStates::default();
    values(on_transaction(
        &mut s,
        &txn("late", "u", "m", T0 + HOUR_MS, 5_000),
    ));
    // An event earlier than everything folded does not see the later one.
    let v = values(on_transaction(
        &mut s,
        &txn("early", "u", "m", T0 - 2 * HOUR_MS, 1_000),
    ));
    assert_eq!(get(&v, "user_txn_count_24h"), 0.0);
    assert!((get(&v, "user_log_secs_since_prev") - (30.0f64 * 86_400.0).ln_1p()).abs() < 1e-12);
    // An event older than every window counts as seen but moves no window and no mark.
    let before = s.users["u"].last_event_ms();
    values(on_transaction(
        &mut s,
        &txn("ancient", "u", "m", T0 - 90 * DAY_MS, 1_000),
    ));
    assert_eq!(s.users["u"].last_event_ms(), before);
    assert_eq!(s.users["u"].too_late(), 1);
    let v = vector(
        &txn("next", "u", "m", T0 + 2 * HOUR_MS, 100),
        Entities {
            user: &s.users["u"],
            merchant: &s.merchants["m"],
            ..Entities::none()
        },
    );
    assert_eq!(get(&v, "user_txn_count_30d"), 2.0);
}

#[test]
fn distinct_sets_and_travel_speed() {
    let mut s = MemoryStates::default();
    let mut a = txn("a", "u", "m", T0, 1_000);
    a.geo = Some(GeoPoint {
        lat: 48.8566,
        lon: 2.3522,
    }); // Paris
    a.device_id = "d1".into();
    values(on_transaction(&mut s, &a));
    let mut b = txn("b", "u", "m2", T0 + HOUR_MS, 1_000);
    b.device_id = "d2".into();
    b.country = "DE".into();
    values(on_transaction(&mut s, &b));
    let mut c = txn("c", "u", "m3", T0 + 2 * HOUR_MS, 1_000);
    c.geo = Some(GeoPoint {
        lat: 40.7128,
        lon: -74.0060,
    }); // New York, ~5 837 km away
    c.device_id = "d3".into();
    let v = values(on_transaction(&mut s, &c));
    assert_eq!(get(&v, "user_distinct_devices_24h"), 2.0);
    assert_eq!(get(&v, "user_distinct_countries_24h"), 2.0);
    assert_eq!(get(&v, "is_new_device"), 1.0);
    assert_eq!(get(&v, "is_new_merchant"), 1.0);
    assert_eq!(get(&v, "user_travel_speed_kmh"), 2_000.0); // capped: 2 918 km/h
    assert!(
        get(
            &values(on_transaction(
                &mut s,
                &txn("d", "u", "m", T0 + 3 * HOUR_MS, 1)
            )),
            "user_travel_speed_kmh"
        )
        .is_nan()
    );
}

#[test]
fn atm_and_channel_features() {
    let mut s = MemoryStates::default();
    let mut a = txn("a", "u", "m", T0, 20_000);
    a.channel = Channel::Atm;
    values(on_transaction(&mut s, &a));
    let v = values(on_transaction(
        &mut s,
        &txn("b", "u", "m", T0 + 10 * MINUTE_MS, 1),
    ));
    assert_eq!(get(&v, "user_atm_count_24h"), 1.0);
    assert_eq!(get(&v, "channel_online"), 1.0);
    assert_eq!(get(&v, "channel_atm"), 0.0);
}

#[test]
fn state_round_trips_through_serde() {
    let mut s = MemoryStates::default();
    values(on_transaction(&mut s, &txn("a", "u", "m", T0, 1_000)));
    let json = serde_json::to_string(&s.users["u"]).unwrap();
    assert_eq!(
        serde_json::from_str::<UserState>(&json).unwrap(),
        s.users["u"]
    );
    let fields: Vec<(String, i64)> = s.merchants["m"].fields().collect();
    let back = MerchantState::from_fields(fields.iter().map(|(f, v)| (f.as_str(), *v))).unwrap();
    assert_eq!(back, s.merchants["m"]);
}

#[test]
fn serving_time_is_bounded_by_the_server_clock() {
    let now = T0;
    let skew = 5 * MINUTE_MS;
    assert_eq!(serving_time(now - 25 * HOUR_MS, now, skew), now - skew);
    assert_eq!(serving_time(now + 25 * HOUR_MS, now, skew), now + skew);
    assert_eq!(serving_time(now - MINUTE_MS, now, skew), now - MINUTE_MS);
    // The ±25 h shift of the issue no longer zeroes the velocity of the user's own score.
    let mut s = MemoryStates::default();
    for k in 0..5 {
        values(on_transaction(
            &mut s,
            &txn(&format!("v{k}"), "u", "m", now - (6 + k) * MINUTE_MS, 1_000),
        ));
    }
    for shift in [-25 * HOUR_MS, 25 * HOUR_MS] {
        let t = txn("q", "u", "m", now + shift, 1_000);
        let v = vector_at(
            &t,
            serving_time(t.event_time_ms, now, skew),
            Entities {
                user: &s.users["u"],
                merchant: &s.merchants["m"],
                ..Entities::none()
            },
        );
        assert_eq!(get(&v, "user_txn_count_1h"), 5.0, "shift {shift}");
    }
}

#[test]
fn amount_units_are_exact_for_every_exponent() {
    let mut t = txn("a", "u", "m", T0, 12_345);
    assert_eq!(amount_units(&t), 1_234_500);
    t.currency = Currency::parse("JPY").unwrap();
    assert_eq!(amount_units(&t), 123_450_000);
    t.currency = Currency::parse("CLF").unwrap();
    assert_eq!(amount_units(&t), 12_345);
}

#[test]
fn a_state_stored_as_json_and_read_back_gives_the_same_bits() {
    // The speed layer keeps user states as JSON in Redis, read and written back every batch;
    // the offline builder never serialises. Float sums must survive each round trip exactly
    // (serde_json's `float_roundtrip`), or online and offline vectors drift in the last bits.
    let mut memory = MemoryStates::default();
    let mut stored = MemoryStates::default();
    for k in 0..300 {
        let minor = 1_000 + (k * 7_919) % 40_000;
        let t = txn(&format!("r{k}"), "u", "m", T0 + k * 37 * MINUTE_MS, minor);
        let a = values(on_transaction(&mut memory, &t));
        let b = values(on_transaction(&mut stored, &t));
        assert_eq!(bits(&a), bits(&b), "transaction {k}");
        let json = serde_json::to_string(&stored.users["u"]).unwrap();
        stored
            .users
            .insert("u".into(), serde_json::from_str(&json).unwrap());
    }
}

#[test]
fn folding_without_vectors_leaves_the_states_on_transaction_leaves() {
    let mut stream = Vec::new();
    for k in 0..300i64 {
        let user = format!("u{}", k % 7);
        let merchant = format!("m{}", k % 5);
        // Out of order within each user, some very late, every 10th a duplicate.
        let t = T0 + (k * 7_919 % 97) * HOUR_MS - if k % 31 == 0 { 60 * DAY_MS } else { 0 };
        stream.push(txn(&format!("t{k}"), &user, &merchant, t, 1_000 + k * 13));
        if k % 10 == 0 {
            stream.push(txn(&format!("t{k}"), &user, &merchant, t, 1_000 + k * 13));
        }
    }
    let (mut full, mut folded) = (MemoryStates::default(), MemoryStates::default());
    let mut new = 0;
    for t in &stream {
        let a = on_transaction(&mut full, t);
        let b = fold_transaction(&mut folded, t);
        assert_eq!(matches!(a, Applied::New { .. }), b, "{}", t.transaction_id);
        new += usize::from(b);
    }
    assert_eq!(new, 300);
    assert_eq!(full.users, folded.users);
    assert_eq!(full.merchants, folded.merchants);
}
