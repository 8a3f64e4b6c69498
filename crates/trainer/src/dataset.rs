//! Point-in-time training sets, built by replaying the lake through the `features` crate —
//! the same code the speed layer runs — so offline vectors equal online ones.

use domain::{Label, Transaction};
use features::UserState;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// One labelled example.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub transaction_id: String,
    pub user_id: String,
    pub event_time_ms: i64,
    pub values: Vec<f64>,
    pub label: bool,
}

/// Labelled rows in event-time order.
#[derive(Debug, Clone, Default)]
pub struct TrainingSet {
    pub rows: Vec<Row>,
    /// Transactions without a label (not used for training).
    pub unlabelled: usize,
}

impl TrainingSet {
    /// sha256 over ids, labels and values: same data ⇒ same fingerprint.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        for r in &self.rows {
            h.update(r.transaction_id.as_bytes());
            h.update([u8::from(r.label)]);
            for v in &r.values {
                h.update(v.to_le_bytes());
            }
        }
        hex::encode(h.finalize())
    }
}

/// Replays `transactions` (must be in event-time order, as [`lake::LakeReader::transactions`]
/// returns them) through per-user state; each vector is computed before the event is folded
/// in, exactly as online. Rows keep only transactions that have a label.
pub fn build(transactions: &[Transaction], labels: &[Label]) -> TrainingSet {
    let by_id: HashMap<&str, bool> = labels
        .iter()
        .map(|l| (l.transaction_id.as_str(), l.is_fraud))
        .collect();
    let mut states: HashMap<&str, UserState> = HashMap::new();
    let mut set = TrainingSet::default();
    for t in transactions {
        let state = states.entry(t.user_id.as_str()).or_default();
        let values = state.vector(t);
        if state.fold(t) == features::Fold::Duplicate {
            continue;
        }
        match by_id.get(t.transaction_id.as_str()) {
            Some(&label) => set.rows.push(Row {
                transaction_id: t.transaction_id.clone(),
                user_id: t.user_id.clone(),
                event_time_ms: t.event_time_ms,
                values,
                label,
            }),
            None => set.unlabelled += 1,
        }
    }
    set
}
