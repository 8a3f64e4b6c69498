//! `vigil-registry`: the model registry from a shell — list models and versions, show a
//! version's card, compare two versions, and promote, roll back or demote an alias with a
//! reason. Every move goes through [`registry::Registry`] (one writer at a time, atomic alias
//! file, history line with the reason), so it is the same operation the trainer and the
//! promotion gate perform.

use clap::{Parser, Subcommand};
use registry::{HistoryEvent, ModelRef, Registry};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "vigil-registry",
    about = "Vigil's model registry: versions, cards, aliases"
)]
struct Cli {
    /// The registry's root directory.
    #[arg(long, env = "VIGIL_REGISTRY__PATH", default_value = "data/registry")]
    registry: PathBuf,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Every model id, its versions and the aliases pointing into it.
    Models,
    /// The versions of a model: created, headline test metrics, aliases.
    Versions { model_id: String },
    /// A version's card: what it was trained on, how it scored, where it serves.
    Show { model_id: String, version: String },
    /// Two versions' metrics side by side (b − a), and whether their feature sets agree.
    Compare {
        model_id: String,
        a: String,
        b: String,
    },
    /// Every alias and its target.
    Aliases,
    /// Point an alias at a version.
    Promote {
        alias: String,
        model_id: String,
        version: String,
        #[arg(long)]
        reason: String,
    },
    /// Move an alias back to its previous target.
    Rollback {
        alias: String,
        #[arg(long)]
        reason: String,
    },
    /// Remove an alias.
    Demote {
        alias: String,
        #[arg(long)]
        reason: String,
    },
    /// The registry's history, oldest first (optionally one alias's moves only).
    History {
        #[arg(long)]
        alias: Option<String>,
    },
}

/// The metrics a version list shows, in order.
const HEADLINE: [&str; 4] = [
    "test_roc_auc",
    "test_average_precision",
    "test_block_recall",
    "test_block_fpr",
];

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vigil-registry: {e}");
            ExitCode::FAILURE
        }
    }
}

fn model_ref(model_id: String, version: String) -> ModelRef {
    ModelRef { model_id, version }
}

fn print_json(value: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("a JSON value serialises")
    );
}

fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    if !cli.registry.join("models").is_dir() {
        return Err(format!("no registry at {}", cli.registry.display()).into());
    }
    let reg = Registry::open_existing(&cli.registry);
    match cli.command {
        Command::Models => {
            let aliases = reg.aliases()?;
            let mut rows = Vec::new();
            for id in reg.models()? {
                let versions = reg.versions(&id)?;
                let pointing: Vec<String> = aliases
                    .iter()
                    .filter(|(_, m)| m.model_id == id)
                    .map(|(a, m)| format!("{a}={}", m.version))
                    .collect();
                rows.push(serde_json::json!({
                    "model_id": id, "versions": versions.len(),
                    "latest": versions.last(), "aliases": pointing,
                }));
            }
            if cli.json {
                print_json(&rows.into());
            } else {
                println!("{:<24} {:>8} {:>8}  aliases", "model", "versions", "latest");
                for r in rows {
                    println!(
                        "{:<24} {:>8} {:>8}  {}",
                        r["model_id"].as_str().unwrap_or(""),
                        r["versions"],
                        r["latest"].as_str().unwrap_or("-"),
                        r["aliases"]
                            .as_array()
                            .map(|a| a
                                .iter()
                                .filter_map(|v| v.as_str())
                                .collect::<Vec<_>>()
                                .join(" "))
                            .unwrap_or_default()
                    );
                }
            }
        }
        Command::Versions { model_id } => {
            let mut rows = Vec::new();
            for version in reg.versions(&model_id)? {
                let m = model_ref(model_id.clone(), version);
                let loaded = reg.load(&m)?;
                let manifest = loaded.manifest();
                rows.push(serde_json::json!({
                    "version": m.version,
                    "created_at_ms": manifest.created_at_ms,
                    "metrics": HEADLINE.iter().map(|k| (k.to_string(), serde_json::json!(manifest.metrics.get(*k)))).collect::<serde_json::Map<_, _>>(),
                    "aliases": reg.aliases_of(&m)?,
                    "warnings": manifest.warnings.len(),
                }));
            }
            if cli.json {
                print_json(&rows.into());
            } else {
                print!("{:<8} {:<24}", "version", "created (UTC)");
                for k in HEADLINE {
                    print!(" {:>22}", k);
                }
                println!("  aliases");
                for r in rows {
                    print!(
                        "{:<8} {:<24}",
                        r["version"].as_str().unwrap_or(""),
                        utc(r["created_at_ms"].as_i64().unwrap_or(0))
                    );
                    for k in HEADLINE {
                        match r["metrics"][k].as_f64() {
                            Some(v) => print!(" {v:>22.4}"),
                            None => print!(" {:>22}", "-"),
                        }
                    }
                    println!("  {}", r["aliases"]);
                }
            }
        }
        Command::Show { model_id, version } => {
            let m = model_ref(model_id, version);
            let loaded = reg.load(&m)?;
            let manifest = loaded.manifest();
            let card = serde_json::json!({
                "model_id": manifest.model_id,
                "version": manifest.version,
                "kind": manifest.kind,
                "created_at_ms": manifest.created_at_ms,
                "aliases": reg.aliases_of(&m)?,
                "feature_set_version": manifest.feature_set_version,
                "schema_hash": manifest.schema_hash,
                "features": manifest.feature_names.len(),
                "data_fingerprint": manifest.data_fingerprint,
                "code_version": manifest.code_version,
                "splits": manifest.splits,
                "policy": manifest.policy,
                "thresholds": manifest.thresholds,
                "metrics": manifest.metrics,
                "warnings": manifest.warnings,
                "directory": reg.version_dir(&m),
            });
            if cli.json {
                print_json(&card);
            } else {
                println!(
                    "{} {} ({:?})",
                    manifest.model_id, manifest.version, manifest.kind
                );
                println!("  created          {}", utc(manifest.created_at_ms));
                println!("  aliases          {:?}", reg.aliases_of(&m)?);
                println!(
                    "  feature set      {} (schema {}, {} features)",
                    manifest.feature_set_version,
                    manifest.schema_hash,
                    manifest.feature_names.len()
                );
                println!("  data             {}", manifest.data_fingerprint);
                println!("  code             {}", manifest.code_version);
                println!("  policy           {}", manifest.policy);
                println!(
                    "  thresholds       review {:.4}, block {:.4}",
                    manifest.thresholds.review, manifest.thresholds.block
                );
                println!("  metrics");
                for (k, v) in &manifest.metrics {
                    println!("    {k:<36} {v:.6}");
                }
                for w in &manifest.warnings {
                    println!("  warning          {w}");
                }
                println!("  directory        {}", reg.version_dir(&m).display());
            }
        }
        Command::Compare { model_id, a, b } => {
            let (ma, mb) = (
                model_ref(model_id.clone(), a),
                model_ref(model_id.clone(), b),
            );
            let (la, lb) = (reg.load(&ma)?, reg.load(&mb)?);
            let (fa, fb) = (la.manifest(), lb.manifest());
            let same_features = fa.schema_hash == fb.schema_hash;
            let names: std::collections::BTreeSet<&String> =
                fa.metrics.keys().chain(fb.metrics.keys()).collect();
            let rows: Vec<serde_json::Value> = names
                .into_iter()
                .map(|k| {
                    let (x, y) = (fa.metrics.get(k).copied(), fb.metrics.get(k).copied());
                    serde_json::json!({"metric": k, "a": x, "b": y,
                        "delta": x.zip(y).map(|(x, y)| y - x)})
                })
                .collect();
            if cli.json {
                print_json(&serde_json::json!({
                    "a": ma, "b": mb, "same_feature_set": same_features, "metrics": rows,
                }));
            } else {
                println!(
                    "{model_id}: {} against {} — feature sets {}",
                    mb.version,
                    ma.version,
                    if same_features {
                        "agree".to_owned()
                    } else {
                        format!("differ ({} vs {})", fa.schema_hash, fb.schema_hash)
                    }
                );
                println!(
                    "{:<36} {:>12} {:>12} {:>12}",
                    "metric", ma.version, mb.version, "b - a"
                );
                let cell = |v: &serde_json::Value| {
                    v.as_f64()
                        .map_or_else(|| "-".to_owned(), |v| format!("{v:.6}"))
                };
                for r in rows {
                    println!(
                        "{:<36} {:>12} {:>12} {:>12}",
                        r["metric"].as_str().unwrap_or(""),
                        cell(&r["a"]),
                        cell(&r["b"]),
                        cell(&r["delta"])
                    );
                }
            }
        }
        Command::Aliases => {
            let aliases = reg.aliases()?;
            if cli.json {
                print_json(&serde_json::to_value(&aliases)?);
            } else {
                for (alias, m) in aliases {
                    println!("{alias:<16} {} {}", m.model_id, m.version);
                }
            }
        }
        Command::Promote {
            alias,
            model_id,
            version,
            reason,
        } => {
            let m = model_ref(model_id, version);
            let previous = reg.set_alias(&alias, &m, &reason, now_ms())?;
            println!(
                "{alias}: {} → {} {}",
                previous.map_or_else(|| "(unset)".to_owned(), |p| p.version),
                m.model_id,
                m.version
            );
        }
        Command::Rollback { alias, reason } => {
            let target = reg.rollback(&alias, &reason, now_ms())?;
            println!(
                "{alias}: rolled back to {} {}",
                target.model_id, target.version
            );
        }
        Command::Demote { alias, reason } => {
            let previous = reg.remove_alias(&alias, &reason, now_ms())?;
            println!(
                "{alias}: removed (was {} {})",
                previous.model_id, previous.version
            );
        }
        Command::History { alias } => {
            let events: Vec<HistoryEvent> = reg
                .history()?
                .into_iter()
                .filter(|e| match (&alias, e) {
                    (None, _) => true,
                    (Some(a), HistoryEvent::AliasMoved { alias, .. })
                    | (Some(a), HistoryEvent::AliasRemoved { alias, .. }) => a == alias,
                    (Some(_), HistoryEvent::Registered { .. }) => false,
                })
                .collect();
            if cli.json {
                print_json(&serde_json::to_value(&events)?);
            } else {
                for e in events {
                    let when = utc(e.at_ms());
                    match e {
                        HistoryEvent::Registered { model, .. } => {
                            println!("{when}  registered {} {}", model.model_id, model.version)
                        }
                        HistoryEvent::AliasMoved {
                            alias,
                            model,
                            previous,
                            reason,
                            action,
                            ..
                        } => println!(
                            "{when}  {alias}: {} → {} ({action:?}) {reason}",
                            previous.map_or_else(|| "(unset)".to_owned(), |p| p.version),
                            model.version
                        ),
                        HistoryEvent::AliasRemoved {
                            alias,
                            previous,
                            reason,
                            ..
                        } => println!("{when}  {alias}: {} → (removed) {reason}", previous.version),
                    }
                }
            }
        }
    }
    Ok(())
}

/// `ms` since the epoch as `YYYY-MM-DD HH:MM:SS` UTC.
fn utc(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || ms.to_string(),
        |t| t.format("%Y-%m-%d %H:%M:%S").to_string(),
    )
}
