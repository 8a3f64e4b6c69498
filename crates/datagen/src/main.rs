//! `vigil-datagen`: parses the command line and dispatches to the `datagen` library.

use anyhow::Context;
use clap::Parser;
use datagen::cli::{Cli, Command, GenerateCmd, ReplayCmd};
use datagen::{output, replay};
use proto::v1;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Generate(cmd) => generate(cmd),
        Command::Replay(cmd) => {
            // Generating or reading is CPU and file work: done before the runtime starts.
            let (transactions, labels, profiles) = load(&cmd)?;
            tokio::runtime::Runtime::new()
                .context("starting the tokio runtime")?
                .block_on(replay(cmd, transactions, labels, profiles))
        }
    }
}

fn generate(cmd: GenerateCmd) -> anyhow::Result<()> {
    let config = cmd.gen_args.to_config(now_ms())?;
    let mut dataset = datagen::generate(&config)?;
    if let Some(t) = cmd.gen_args.split_at_ms(now_ms())? {
        dataset = dataset.before(t);
    }
    let written = output::write_dataset(
        &dataset,
        &config,
        &cmd.out,
        cmd.format,
        cmd.lake_dir.as_deref(),
        cmd.lake_partitions,
    )
    .with_context(|| format!("writing to {}", cmd.out.display()))?;
    eprintln!("{}", serde_json::to_string_pretty(&dataset.stats)?);
    for file in written.files {
        eprintln!("wrote {}", file.display());
    }
    Ok(())
}

type Loaded = (Vec<v1::Transaction>, Vec<v1::Label>, Vec<v1::UserProfile>);

/// What a replay sends. From files: transactions and labels (profiles are not in the JSONL
/// files); generated: the profiles too.
fn load(cmd: &ReplayCmd) -> anyhow::Result<Loaded> {
    let limit = cmd.limit.unwrap_or(usize::MAX);
    if let Some(path) = &cmd.from {
        let mut transactions = output::read_transactions(path)?;
        transactions.truncate(limit);
        let labels = match cmd.labels_path() {
            Some(p) => output::read_labels(&p)?,
            None => Vec::new(),
        };
        return Ok((transactions, labels, Vec::new()));
    }
    let dataset = datagen::generate(&cmd.gen_args.to_config(now_ms())?)?;
    // With --split-at, the live part: records dated from the boundary on (a corrupt record
    // without an event time goes with the live part).
    let from = cmd.gen_args.split_at_ms(now_ms())?.unwrap_or(i64::MIN);
    let transactions = dataset
        .wire_stream()
        .map(|r| r.to_proto())
        .filter(|t| {
            t.event_time
                .as_ref()
                .is_none_or(|ts| proto::time::to_unix_ms(ts) >= from)
        })
        .take(limit)
        .collect();
    let labels = dataset
        .labels
        .iter()
        .map(domain::convert::label_to_proto)
        .collect();
    let profiles = dataset
        .profiles
        .iter()
        .map(domain::convert::profile_to_proto)
        .collect();
    Ok((transactions, labels, profiles))
}

async fn replay(
    cmd: ReplayCmd,
    transactions: Vec<v1::Transaction>,
    labels: Vec<v1::Label>,
    profiles: Vec<v1::UserProfile>,
) -> anyhow::Result<()> {
    eprintln!(
        "connecting to {} ({} transactions to send)",
        cmd.ingest,
        transactions.len()
    );
    let mut client = replay::connect(
        &cmd.ingest,
        cmd.connect_attempts,
        cmd.connect_timeout(),
        &cmd.security,
    )
    .await?;
    let shutdown = async {
        // If the handler cannot be installed, the replay simply runs to completion.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    if !profiles.is_empty() {
        let p = replay::send_profiles(&mut client, profiles, now_ms()).await?;
        eprintln!(
            "profiles: sent {}, accepted {}, {} valid only later (not sent)",
            p.sent, p.accepted, p.not_yet_valid
        );
    }
    let split = cmd.gen_args.split_at_ms(now_ms())?;
    // With --split-at, labels of history transactions reported after the split arrive during
    // the live part too (the history lake holds only those reported before it).
    let (live_labels, history_labels): (Vec<_>, Vec<_>) = labels.into_iter().partition(|l| {
        split.is_none_or(|t| {
            l.event_time
                .as_ref()
                .is_none_or(|ts| proto::time::to_unix_ms(ts) >= t)
        })
    });
    let summary = replay::replay(
        &mut client,
        transactions,
        live_labels,
        &cmd.replay_config(),
        shutdown,
    )
    .await?;
    println!("{summary}");
    if let (Some(t), false) = (split, summary.interrupted) {
        let horizon = summary.last_event_time_ms.unwrap_or(t);
        let due: Vec<v1::Label> = history_labels
            .into_iter()
            .filter(|l| {
                l.reported_at.as_ref().is_some_and(|ts| {
                    let r = proto::time::to_unix_ms(ts);
                    r >= t && (cmd.all_labels || r <= horizon)
                })
            })
            .collect();
        let (sent, accepted) = replay::send_labels(&mut client, &due).await?;
        println!(
            "labels of history transactions reported since the split: sent {sent}, accepted {accepted}"
        );
    }
    Ok(())
}
