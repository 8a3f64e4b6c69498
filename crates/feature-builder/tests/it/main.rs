//! The offline builder over a real lake on disk (Parquet + DataFusion).

use domain::{Channel, Currency, Label, Transaction};
use feature_builder::{AsOf, BuildError, PartSink, Row, RowSink};
use lake::{LakeReader, LakeWriter, Record};

const DAY: i64 = 86_400_000;
const T0: i64 = 1_763_942_400_000; // 2025-11-24T00:00:00Z

#[derive(Debug, Default)]
struct Collect(Vec<(String, i64, Vec<u64>, bool)>);

impl RowSink for Collect {
    type Part = Collect;
    fn part(&mut self, _partition: i32) -> Result<Collect, BuildError> {
        Ok(Collect::default())
    }
    fn absorb(&mut self, part: Collect) -> Result<(), BuildError> {
        self.0.extend(part.0);
        Ok(())
    }
}

impl PartSink for Collect {
    fn push(&mut self, row: Row<'_>) -> Result<(), BuildError> {
        self.0.push((
            row.transaction.transaction_id.clone(),
            row.transaction.event_time_ms,
            row.values.iter().map(|v| v.to_bits()).collect(),
            row.is_fraud,
        ));
        Ok(())
    }
}

fn txn(k: i64, user: &str, merchant: &str, t: i64) -> Transaction {
    Transaction {
        transaction_id: format!("t{k}"),
        user_id: user.into(),
        account_id: user.into(),
        amount_minor: 1_000 + (k * 7_919) % 50_000,
        currency: Currency::parse("EUR").unwrap(),
        merchant_id: merchant.into(),
        merchant_category: "5411".into(),
        channel: Channel::CardPresent,
        device_id: format!("d{}", k % 3),
        country: "FR".into(),
        geo: None,
        event_time_ms: t,
    }
}

fn label(k: i64, is_fraud: bool, reported_at_ms: i64) -> Label {
    Label {
        transaction_id: format!("t{k}"),
        user_id: "x".into(),
        is_fraud,
        reported_at_ms,
        event_time_ms: 0,
        merchant_id: String::new(),
    }
}

/// 400 transactions over 20 days (users u0..u4 on partitions by user, merchants m0..m2), with
/// an out-of-order event and a duplicate; fraud labels on every 9th, reported 2 days later.
fn write_lake(dir: &std::path::Path, extra_labels: &[Label]) {
    let w = LakeWriter::open(dir).unwrap();
    let mut by_partition: Vec<Vec<Transaction>> = vec![Vec::new(), Vec::new()];
    for k in 0..400 {
        let user = format!("u{}", k % 5);
        let t = T0 + k * (20 * DAY / 400);
        by_partition[(k % 5 % 2) as usize].push(txn(k, &user, &format!("m{}", k % 3), t));
    }
    // Out of order: an event of u0 arriving after later ones; a producer-retry duplicate.
    by_partition[0].push(txn(1_000, "u0", "m1", T0 + 3 * DAY));
    let dup = by_partition[0][5].clone();
    by_partition[0].push(dup);
    for (p, txns) in by_partition.into_iter().enumerate() {
        let records: Vec<Record<Transaction>> = txns
            .into_iter()
            .enumerate()
            .map(|(i, value)| Record {
                partition: p as i32,
                offset: i as i64,
                value,
            })
            .collect();
        w.write_transactions(p as i32, &records).unwrap();
    }
    let mut labels: Vec<Label> = (0..400)
        .filter(|k| k % 9 == 0)
        .map(|k| label(k, true, T0 + k * (20 * DAY / 400) + 2 * DAY))
        .collect();
    labels.extend(extra_labels.iter().cloned());
    let records: Vec<Record<Label>> = labels
        .into_iter()
        .enumerate()
        .map(|(i, value)| Record {
            partition: 0,
            offset: i as i64,
            value,
        })
        .collect();
    w.write_labels(0, &records).unwrap();
}

async fn build(dir: &std::path::Path, as_of: AsOf) -> (Collect, feature_builder::Summary) {
    let reader = LakeReader::open(dir).await.unwrap();
    feature_builder::build(&reader, as_of, Collect::default())
        .await
        .unwrap()
}

fn idx(name: &str) -> usize {
    features::FEATURES
        .iter()
        .position(|f| f.name == name)
        .unwrap()
}

#[tokio::test]
async fn a_label_reported_after_an_event_never_changes_its_vector() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let reported = T0 + 9 * DAY + 3_600_000;
    write_lake(a.path(), &[]);
    // The same lake with one more fraud report (on a non-fraud transaction of m0).
    write_lake(b.path(), &[label(3, true, reported)]);
    let as_of = AsOf {
        cutoff_ms: T0 + 40 * DAY,
        assume_legit_after_ms: 0,
    };
    let ra = build(a.path(), as_of).await;
    let rb = build(b.path(), as_of).await;
    assert_eq!(ra.0.0.len(), rb.0.0.len());
    let mut changed_after = 0;
    for (x, y) in ra.0.0.iter().zip(&rb.0.0) {
        assert_eq!(x.0, y.0);
        if x.1 <= reported {
            assert_eq!(
                x.2, y.2,
                "{}: a label reported after it changed its vector",
                x.0
            );
        } else if x.2 != y.2 {
            changed_after += 1;
        }
    }
    // The extra report does reach later events of m0 (so the comparison above can fail).
    assert!(changed_after > 0);
    let m = idx("merchant_fraud_reports_30d");
    assert!(rb.0.0.iter().any(|r| f64::from_bits(r.2[m]) > 0.0));
    // The duplicate is recognised; t3's label is the extra report's.
    assert_eq!(ra.1.duplicates, 1);
    assert!(rb.0.0.iter().any(|r| r.0 == "t3" && r.3));
}

#[tokio::test]
async fn labels_after_the_cutoff_are_never_read() {
    let dir = tempfile::tempdir().unwrap();
    write_lake(dir.path(), &[]);
    // Cut off on day 10: labels reported later (every 9th transaction from day ~8) unseen.
    let cutoff = T0 + 10 * DAY;
    let as_of = AsOf {
        cutoff_ms: cutoff,
        assume_legit_after_ms: 3 * DAY,
    };
    let (rows, s) = build(dir.path(), as_of).await;
    assert!(
        rows.0.iter().all(|r| r.1 <= cutoff),
        "no transaction after the cut-off"
    );
    let frauds: Vec<&String> = rows.0.iter().filter(|r| r.3).map(|r| &r.0).collect();
    for id in &frauds {
        let k: i64 = id[1..].parse().unwrap();
        assert!(
            T0 + k * (20 * DAY / 400) + 2 * DAY <= cutoff,
            "{id}: label from after the cut-off"
        );
    }
    assert!(!frauds.is_empty());
    // Unlabelled transactions younger than 3 days are left out, older ones are legit.
    assert!(s.immature > 0 && s.assumed_legit > 0);
    let labelled: std::collections::HashSet<String> = (0..400)
        .filter(|k| k % 9 == 0 && T0 + k * (20 * DAY / 400) + 2 * DAY <= cutoff)
        .map(|k| format!("t{k}"))
        .collect();
    assert!(
        rows.0
            .iter()
            .all(|r| labelled.contains(&r.0) || r.1 <= cutoff - 3 * DAY)
    );
}

#[tokio::test]
async fn the_state_pass_is_the_engine_replayed_in_arrival_order() {
    let dir = tempfile::tempdir().unwrap();
    write_lake(dir.path(), &[]);
    let reader = LakeReader::open(dir.path()).await.unwrap();
    let as_of = AsOf {
        cutoff_ms: T0 + 40 * DAY,
        assume_legit_after_ms: 0,
    };
    let (states, summary) = feature_builder::states_as_of(&reader, as_of).await.unwrap();
    assert_eq!(summary.transactions, 402);
    assert_eq!(summary.duplicates, 1);
    let seen: u64 = states.users.values().map(|u| u.transactions_seen()).sum();
    assert_eq!(seen, 401);
    assert_eq!(states.merchants.len(), 3);
    assert_eq!(
        summary.fraud_reports,
        (0..400).filter(|k| k % 9 == 0).count() as u64
    );
}
