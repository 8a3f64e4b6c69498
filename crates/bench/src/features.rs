//! `vigil-bench features`: the feature engine's throughput, its cost for a very heavy user, and
//! the size of its states at 30-day windows (in memory, release build; no Redis, no Kafka —
//! the speed layer's end-to-end rate is measured separately, against the real stack).

use anyhow::Context as _;
use domain::{Channel, Currency, GeoPoint, Transaction};
use features::{MemoryStates, on_transaction};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Instant;

#[derive(Debug, clap::Args)]
pub(crate) struct FeaturesArgs {
    #[arg(long, default_value_t = 1_000_000)]
    transactions: usize,
    #[arg(long, default_value_t = 20_000)]
    users: usize,
    #[arg(long, default_value_t = 2_000)]
    merchants: usize,
    #[arg(long, default_value_t = 30)]
    days: i64,
    /// Transactions of the one heavy user, all within one hour.
    #[arg(long, default_value_t = 50_000)]
    heavy: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Where to write the JSON results.
    #[arg(long)]
    out: Option<std::path::PathBuf>,
}

const DAY: i64 = 86_400_000;
const T0: i64 = 1_763_942_400_000;

fn txn(rng: &mut ChaCha8Rng, k: usize, user: usize, merchants: usize, t: i64) -> Transaction {
    let eur = Currency::parse("EUR").unwrap_or_else(|| unreachable!("EUR is a valid code"));
    Transaction {
        transaction_id: format!("t{k}"),
        user_id: format!("u{user}"),
        account_id: format!("u{user}"),
        amount_minor: rng.random_range(100..200_000),
        currency: eur,
        merchant_id: format!("m{}", rng.random_range(0..merchants)),
        merchant_category: "5411".into(),
        channel: if rng.random_bool(0.05) {
            Channel::Atm
        } else {
            Channel::CardPresent
        },
        device_id: format!("d{}", user * 3 + rng.random_range(0..3)),
        country: if rng.random_bool(0.02) { "DE" } else { "FR" }.into(),
        geo: rng.random_bool(0.5).then(|| GeoPoint {
            lat: 48.0 + rng.random::<f64>(),
            lon: 2.0 + rng.random::<f64>(),
        }),
        event_time_ms: t,
    }
}

fn ns_per_event(states: &mut MemoryStates, txns: &[Transaction]) -> f64 {
    let start = Instant::now();
    let mut sink = 0.0;
    for t in txns {
        if let features::Applied::New { values, .. } = on_transaction(states, t) {
            sink += values[0];
        }
    }
    std::hint::black_box(sink);
    start.elapsed().as_nanos() as f64 / txns.len().max(1) as f64
}

fn percentile(sorted: &[usize], q: f64) -> usize {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

pub(crate) fn run(args: &FeaturesArgs) -> anyhow::Result<bool> {
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let span = args.days * DAY;
    let mut times: Vec<i64> = (0..args.transactions)
        .map(|_| T0 + rng.random_range(0..span))
        .collect();
    times.sort_unstable();
    let stream: Vec<Transaction> = times
        .iter()
        .enumerate()
        .map(|(k, &t)| {
            let user = rng.random_range(0..args.users);
            txn(&mut rng, k, user, args.merchants, t)
        })
        .collect();

    // 1. Throughput over the whole stream.
    let mut states = MemoryStates::default();
    let start = Instant::now();
    let ns_all = ns_per_event(&mut states, &stream);
    let secs = start.elapsed().as_secs_f64();

    // 2. A heavy user: `heavy` transactions inside one hour after the stream, against as many
    //    ordinary events in the same hour (same warmed states, same merchants).
    let end = T0 + span;
    let heavy: Vec<Transaction> = (0..args.heavy)
        .map(|i| {
            let t = end + (i as i64 * 3_600_000) / args.heavy.max(1) as i64;
            txn(&mut rng, 10_000_000 + i, args.users + 1, args.merchants, t)
        })
        .collect();
    let ordinary: Vec<Transaction> = (0..args.heavy)
        .map(|i| {
            let t = end + (i as i64 * 3_600_000) / args.heavy.max(1) as i64;
            let user = rng.random_range(0..args.users);
            txn(&mut rng, 20_000_000 + i, user, args.merchants, t)
        })
        .collect();
    let ns_ordinary = ns_per_event(&mut states, &ordinary);
    let ns_heavy = ns_per_event(&mut states, &heavy);
    let ratio = ns_heavy / ns_ordinary;

    // 3. State sizes at 30-day windows (JSON, as stored in Redis; merchants as counters).
    let mut user_bytes: Vec<usize> = states
        .users
        .values()
        .map(|u| serde_json::to_vec(u).map(|v| v.len()))
        .collect::<Result<_, _>>()
        .context("serialising a user state")?;
    user_bytes.sort_unstable();
    let heavy_bytes = serde_json::to_vec(&states.users[&format!("u{}", args.users + 1)])?.len();
    let mut merchant_fields: Vec<usize> = states.merchants.values().map(|m| m.len()).collect();
    merchant_fields.sort_unstable();
    let mean_user = user_bytes.iter().sum::<usize>() as f64 / user_bytes.len().max(1) as f64;
    let per_user_txns = args.transactions as f64 / args.users as f64;

    println!("## Feature engine (in memory, release)\n");
    println!(
        "`vigil-bench features --transactions {} --users {} --merchants {} --days {} --heavy {} --seed {}`\n",
        args.transactions, args.users, args.merchants, args.days, args.heavy, args.seed
    );
    println!("| measure | value |\n|---|---:|");
    println!(
        "| stream: events/s (vector + fold, {} features) | {:.0} |",
        features::FEATURES.len(),
        args.transactions as f64 / secs
    );
    println!("| stream: ns/event | {ns_all:.0} |");
    println!("| same hour: ordinary users, ns/event | {ns_ordinary:.0} |");
    println!(
        "| same hour: one user with {} events, ns/event | {ns_heavy:.0} |",
        args.heavy
    );
    println!("| heavy / ordinary | {ratio:.2} |");
    println!(
        "| user state JSON bytes: mean / p99 / max ({per_user_txns:.0} transactions per user over {} days) | {mean_user:.0} / {} / {} |",
        args.days,
        percentile(&user_bytes, 0.99),
        user_bytes.last().copied().unwrap_or(0)
    );
    println!("| heavy user's state JSON bytes | {heavy_bytes} |");
    println!(
        "| merchant counters: median / max per merchant | {} / {} |",
        percentile(&merchant_fields, 0.5),
        merchant_fields.last().copied().unwrap_or(0)
    );
    if let Some(out) = &args.out {
        let json = serde_json::json!({
            "transactions": args.transactions, "users": args.users, "merchants": args.merchants,
            "days": args.days, "heavy": args.heavy, "seed": args.seed,
            "events_per_s": args.transactions as f64 / secs, "ns_per_event": ns_all,
            "ns_ordinary": ns_ordinary, "ns_heavy": ns_heavy, "heavy_ratio": ratio,
            "user_bytes_mean": mean_user, "user_bytes_p99": percentile(&user_bytes, 0.99),
            "user_bytes_max": user_bytes.last().copied().unwrap_or(0), "heavy_user_bytes": heavy_bytes,
            "merchant_counters_max": merchant_fields.last().copied().unwrap_or(0),
        });
        std::fs::write(out, serde_json::to_vec_pretty(&json)?)
            .with_context(|| format!("writing {}", out.display()))?;
    }
    // The constant-factor claim: a heavy user costs at most 3x an ordinary one per event.
    Ok(ratio <= 3.0)
}
