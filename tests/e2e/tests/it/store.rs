//! The online store's conditional commit, on the stack's real Redis: a batch is applied only
//! over the offsets it was computed from, so a commit that runs twice (an attempt that timed
//! out on the client but still ran on the server, then its retry) applies once.

use e2e::{Stack, now_ms};
use features::{Counter, CounterKey, MerchantDelta, UserState};
use online_store::{Commit, NextOffset, OffsetMove, OnlineStore, RedisConfig, StoreError, Ttls};
use std::collections::BTreeMap;
use std::time::Duration;

const TTLS: Ttls = Ttls {
    state: Duration::from_secs(300),
    profile: Duration::from_secs(300),
};

fn moves(topic: &str, offsets: &[(i32, Option<i64>, i64)]) -> Vec<OffsetMove> {
    offsets
        .iter()
        .map(|&(partition, from, offset)| OffsetMove {
            next: NextOffset {
                topic: topic.into(),
                partition,
                offset,
            },
            from,
        })
        .collect()
}

async fn counter(store: &OnlineStore, merchant: &str) -> i64 {
    let states = store.get_merchants(&[merchant]).await.unwrap();
    states[0].fields().map(|(_, v)| v).sum()
}

#[tokio::test]
async fn a_commit_applies_only_over_the_offsets_it_was_computed_from() {
    let stack = Stack::from_env();
    let store = OnlineStore::connect(&RedisConfig {
        url: stack.redis_url.clone(),
        timeout_ms: 2_000,
        username: None,
        password_file: None,
    })
    .await
    .unwrap();
    let run = now_ms();
    let consumer = format!("store-test-{run}");
    let merchant = format!("m-store-{run}");
    let key = CounterKey {
        counter: Counter::Transactions,
        window: 0,
        tile: 1,
    };
    let delta = MerchantDelta(vec![(key, 3)]);
    let state = UserState::default();
    let users: Vec<String> = (0..4).map(|i| format!("u-store-{run}-{i}")).collect();
    let commit = |user: usize, offsets: Vec<OffsetMove>| Commit {
        users: vec![(users[user].as_str(), &state)],
        merchant_deltas: vec![(merchant.as_str(), &delta)],
        outbox: vec![(0, vec![0, 1, 2, 0xff, b'\n'])],
        offsets,
        ..Commit::default()
    };
    let topic = "store-test-topic";
    let stored = |store: OnlineStore| {
        let consumer = consumer.clone();
        async move { store.next_offsets(&consumer, topic, 2).await.unwrap() }
    };

    // From nothing stored: applied, every write and the offsets together.
    store
        .commit(&consumer, &commit(0, moves(topic, &[(0, None, 10)])), TTLS)
        .await
        .unwrap();
    assert_eq!(stored(store.clone()).await, BTreeMap::from([(0, 10)]));
    assert_eq!(counter(&store, &merchant).await, 3);
    assert!(store.get_users(&[&users[0]]).await.unwrap()[0].is_some());
    assert_eq!(
        store.outboxes(&consumer, &[0]).await.unwrap(),
        vec![(0, vec![0, 1, 2, 0xff, b'\n'])],
        "binary outbox bytes survive the script"
    );

    // The same commit again, as a late first attempt and its retry would: refused, naming
    // the offset and what it holds, and nothing of it written.
    let again = store
        .commit(&consumer, &commit(1, moves(topic, &[(0, None, 10)])), TTLS)
        .await
        .unwrap_err();
    match &again {
        StoreError::OffsetsMoved { key, found } => {
            assert!(key.ends_with(&format!("{consumer}:{topic}:0")), "{key}");
            assert_eq!(found.as_deref(), Some("10"));
        }
        other => panic!("expected OffsetsMoved, got {other:?}"),
    }
    assert!(again.is_transient(), "a retry re-reads the offsets");
    assert_eq!(
        counter(&store, &merchant).await,
        3,
        "HINCRBY not applied twice"
    );
    assert!(store.get_users(&[&users[1]]).await.unwrap()[0].is_none());

    // Two offsets, the first as expected and the second moved: refused as a whole.
    store
        .commit(&consumer, &commit(2, moves(topic, &[(1, None, 4)])), TTLS)
        .await
        .unwrap();
    assert_eq!(counter(&store, &merchant).await, 6);
    let err = store
        .commit(
            &consumer,
            &commit(3, moves(topic, &[(0, Some(10), 20), (1, Some(2), 8)])),
            TTLS,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::OffsetsMoved { found, .. } if found.as_deref() == Some("4")),
        "{err}"
    );
    assert_eq!(
        stored(store.clone()).await,
        BTreeMap::from([(0, 10), (1, 4)])
    );
    assert_eq!(counter(&store, &merchant).await, 6);
    assert!(store.get_users(&[&users[3]]).await.unwrap()[0].is_none());

    // Computed from what is stored: applied.
    store
        .commit(
            &consumer,
            &commit(3, moves(topic, &[(0, Some(10), 20), (1, Some(4), 8)])),
            TTLS,
        )
        .await
        .unwrap();
    assert_eq!(
        stored(store.clone()).await,
        BTreeMap::from([(0, 20), (1, 8)])
    );
    assert_eq!(counter(&store, &merchant).await, 9);
    assert!(store.get_users(&[&users[3]]).await.unwrap()[0].is_some());
}
