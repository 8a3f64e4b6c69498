use std::collections::{HashMap, HashSet};

use datagen::{
    Dataset, FRAUD_DELAY_MAX_MS, FRAUD_DELAY_MIN_MS, FraudPattern, GenConfig,
    LEGIT_CONFIRMATION_MS, generate,
};
use domain::Channel;
use domain::convert::{transaction_from_proto, transaction_to_proto};

use crate::faulty;

const HOUR_MS: i64 = 3_600_000;

fn fraud_of(ds: &Dataset, pattern: FraudPattern) -> Vec<&domain::Transaction> {
    ds.unique_transactions()
        .filter(|t| ds.fraud_patterns.get(&t.transaction_id) == Some(&pattern))
        .collect()
}

#[test]
fn same_seed_same_dataset_other_seed_other_dataset() {
    let a = generate(&faulty(7)).expect("generates");
    let b = generate(&faulty(7)).expect("generates");
    assert_eq!(a.transactions, b.transactions);
    assert_eq!(a.labels, b.labels);
    assert_eq!(a.corrupt, b.corrupt);
    assert_eq!(a.stats, b.stats);
    let c = generate(&faulty(8)).expect("generates");
    assert_ne!(a.transactions, c.transactions);
}

#[test]
fn faults_do_not_change_the_underlying_traffic() {
    let clean = GenConfig {
        duplicate_rate: 0.0,
        late_rate: 0.0,
        corrupt_rate: 0.0,
        ..faulty(3)
    };
    let mut a: Vec<_> = generate(&clean)
        .expect("generates")
        .unique_transactions()
        .cloned()
        .collect();
    let mut b: Vec<_> = generate(&faulty(3))
        .expect("generates")
        .unique_transactions()
        .cloned()
        .collect();
    a.sort_by(|x, y| x.transaction_id.cmp(&y.transaction_id));
    b.sort_by(|x, y| x.transaction_id.cmp(&y.transaction_id));
    assert_eq!(a, b);
}

#[test]
fn fraud_rate_matches_the_config() {
    for (transactions, rate) in [(Some(20_000), 0.01), (Some(10_000), 0.05), (None, 0.02)] {
        let config = GenConfig {
            transactions,
            fraud_rate: rate,
            ..GenConfig::default()
        };
        let ds = generate(&config).expect("generates");
        let s = &ds.stats;
        if let Some(n) = transactions {
            assert_eq!(s.transactions, n);
        } else {
            // 1000 users * ~1.8/day * 30 days.
            assert!((40_000..70_000).contains(&s.transactions), "{s:?}");
        }
        assert_eq!(s.legit + s.fraud, s.transactions);
        let achieved = s.fraud as f64 / s.transactions as f64;
        assert!(
            (achieved - rate).abs() < rate * 0.05,
            "{achieved} vs {rate}"
        );
        assert_eq!(ds.fraud_patterns.len() as u64, s.fraud);
    }
}

#[test]
fn every_fraud_pattern_is_present_and_looks_like_itself() {
    let ds = generate(&GenConfig {
        transactions: Some(30_000),
        ..GenConfig::default()
    })
    .expect("generates");
    for p in FraudPattern::ALL {
        assert!(
            ds.stats.fraud_by_pattern.get(&p).copied().unwrap_or(0) > 0,
            "{p:?} missing"
        );
    }
    // Devices a user uses legitimately.
    let mut legit_devices: HashMap<&str, HashSet<&str>> = HashMap::new();
    let mut home: HashMap<&str, HashMap<&str, usize>> = HashMap::new();
    for t in ds.unique_transactions() {
        if !ds.fraud_patterns.contains_key(&t.transaction_id) {
            legit_devices
                .entry(&t.user_id)
                .or_default()
                .insert(&t.device_id);
            *home
                .entry(&t.user_id)
                .or_default()
                .entry(&t.country)
                .or_default() += 1;
        }
    }
    let home_country = |user: &str| {
        home.get(user)
            .and_then(|c| c.iter().max_by_key(|(_, n)| **n).map(|(c, _)| *c))
    };

    let ato = fraud_of(&ds, FraudPattern::AccountTakeover);
    for t in &ato {
        assert!(matches!(t.channel, Channel::Online | Channel::Transfer));
        assert!(
            !legit_devices
                .get(t.user_id.as_str())
                .is_some_and(|d| d.contains(t.device_id.as_str()))
        );
        assert_ne!(home_country(&t.user_id), Some(t.country.as_str()), "{t:?}");
    }
    let ato_median = median(ato.iter().map(|t| t.amount_major()));
    let legit_median = median(
        ds.unique_transactions()
            .filter(|t| !ds.fraud_patterns.contains_key(&t.transaction_id))
            .map(|t| t.amount_major()),
    );
    assert!(
        ato_median > 3.0 * legit_median,
        "{ato_median} vs {legit_median}"
    );

    let testing = fraud_of(&ds, FraudPattern::CardTesting);
    let tiny = testing
        .iter()
        .filter(|t| t.merchant_category == "5816" && (50..=200).contains(&t.amount_minor))
        .count();
    assert!(testing.iter().all(|t| t.channel == Channel::Online));
    assert!(
        tiny * 10 >= testing.len() * 8,
        "{tiny} of {}",
        testing.len()
    );

    // Compromised merchant: every victim visited one merchant shortly before the fraud, and
    // that merchant is shared by several victims.
    let cm = fraud_of(&ds, FraudPattern::CompromisedMerchant);
    let victims: HashSet<&str> = cm.iter().map(|t| t.user_id.as_str()).collect();
    let mut visitors: HashMap<&str, HashSet<&str>> = HashMap::new();
    for t in ds.unique_transactions() {
        if victims.contains(t.user_id.as_str())
            && t.channel == Channel::CardPresent
            && !ds.fraud_patterns.contains_key(&t.transaction_id)
        {
            visitors
                .entry(&t.merchant_id)
                .or_default()
                .insert(&t.user_id);
        }
    }
    let max_shared = visitors.values().map(HashSet::len).max().unwrap_or(0);
    assert!(
        max_shared >= 3,
        "no merchant shared by compromised-merchant victims"
    );
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

#[test]
fn labels_have_realistic_delays_and_cover_every_transaction() {
    let ds = generate(&faulty(11)).expect("generates");
    let unique: HashMap<&str, &domain::Transaction> = ds
        .unique_transactions()
        .map(|t| (t.transaction_id.as_str(), t))
        .collect();
    assert_eq!(
        ds.labels.len(),
        unique.len(),
        "legit-label-rate defaults to 1"
    );
    let mut ids = HashSet::new();
    for l in &ds.labels {
        assert!(
            ids.insert(l.transaction_id.as_str()),
            "two labels for {}",
            l.transaction_id
        );
        let t = unique[l.transaction_id.as_str()];
        assert_eq!(l.event_time_ms, t.event_time_ms);
        assert_eq!(l.user_id, t.user_id);
        assert_eq!(
            l.is_fraud,
            ds.fraud_patterns.contains_key(&l.transaction_id)
        );
        let delay = l.reported_at_ms - l.event_time_ms;
        if l.is_fraud {
            assert!(
                (FRAUD_DELAY_MIN_MS..=FRAUD_DELAY_MAX_MS).contains(&delay),
                "{delay}"
            );
        } else {
            assert_eq!(delay, LEGIT_CONFIRMATION_MS);
        }
    }
    assert!(ds.labels.is_sorted_by_key(|l| l.reported_at_ms));

    let sampled = generate(&GenConfig {
        legit_label_rate: 0.1,
        ..faulty(11)
    })
    .expect("generates");
    let s = &sampled.stats;
    assert_eq!(s.fraud_labels, s.fraud);
    let share = s.legit_labels as f64 / s.legit as f64;
    assert!((0.08..0.12).contains(&share), "{share}");
}

#[test]
fn duplicates_share_ids_and_late_events_are_out_of_order() {
    let ds = generate(&faulty(5)).expect("generates");
    let mut first: HashMap<&str, &domain::Transaction> = HashMap::new();
    let mut duplicates = 0;
    for t in &ds.transactions {
        match first.get(t.transaction_id.as_str()) {
            Some(original) => {
                assert_eq!(*original, t, "a duplicate differs from its original");
                duplicates += 1;
            }
            None => {
                first.insert(&t.transaction_id, t);
            }
        }
    }
    assert_eq!(duplicates, ds.stats.duplicates);
    assert!(duplicates > 50, "{duplicates}");

    let mut latest = i64::MIN;
    let mut late = 0;
    for t in ds.unique_transactions() {
        if t.event_time_ms < latest.saturating_sub(HOUR_MS / 2) {
            late += 1;
        }
        latest = latest.max(t.event_time_ms);
    }
    assert!(ds.stats.late > 100, "{:?}", ds.stats);
    assert!(
        late > ds.stats.late / 2,
        "{late} out of order, {} late",
        ds.stats.late
    );
}

#[test]
fn valid_transactions_validate_and_corrupt_ones_do_not() {
    let ds = generate(&faulty(9)).expect("generates");
    for t in &ds.transactions {
        let wire = transaction_to_proto(t);
        assert_eq!(transaction_from_proto(&wire).as_ref(), Ok(t));
    }
    assert!(ds.corrupt.len() > 50);
    let mut fields = HashSet::new();
    for c in &ds.corrupt {
        let err = transaction_from_proto(&c.message).expect_err("corrupt record validated");
        assert_eq!(err.field, c.expected_field, "{err}");
        fields.insert(c.expected_field);
    }
    assert!(fields.len() >= 10, "{fields:?}");
    // The stream holds everything, corrupt records in place.
    assert_eq!(
        ds.wire_stream().count(),
        ds.transactions.len() + ds.corrupt.len()
    );
    assert!(ds.corrupt.is_sorted_by_key(|c| c.emit_before));
}

#[test]
fn legit_traffic_sleeps_at_night() {
    // FR and DE users dominate; their local night is 23:00-06:00 UTC+1.
    let ds = generate(&GenConfig {
        transactions: Some(50_000),
        fraud_rate: 0.0,
        ..GenConfig::default()
    })
    .expect("generates");
    let hour = |t: &domain::Transaction| (t.event_time_ms / HOUR_MS).rem_euclid(24);
    let night = ds
        .transactions
        .iter()
        .filter(|t| (1..4).contains(&hour(t)))
        .count();
    let noon = ds
        .transactions
        .iter()
        .filter(|t| (10..13).contains(&hour(t)))
        .count();
    assert!(night * 5 < noon, "night {night}, noon {noon}");
}

#[test]
fn a_split_keeps_exactly_what_happened_before_it() {
    let config = faulty(11);
    let whole = generate(&config).expect("generates");
    let t = config.start_ms + (config.end_ms() - config.start_ms) / 2;
    let history = whole.clone().before(t);
    assert!(history.transactions.iter().all(|x| x.event_time_ms < t));
    assert!(history.labels.iter().all(|l| l.reported_at_ms < t));
    assert!(history.profiles.iter().all(|p| p.valid_from_ms < t));
    let live = whole
        .transactions
        .iter()
        .filter(|x| x.event_time_ms >= t)
        .count();
    assert!(live > 0 && !history.transactions.is_empty());
    assert_eq!(history.transactions.len() + live, whole.transactions.len());
    // Every user has a profile valid before any split inside the window.
    let users: HashSet<&str> = whole
        .transactions
        .iter()
        .map(|x| x.user_id.as_str())
        .collect();
    let profiled: HashSet<&str> = history
        .profiles
        .iter()
        .map(|p| p.user_id.as_str())
        .collect();
    assert!(users.is_subset(&profiled));
}
