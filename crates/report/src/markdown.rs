//! `report.md` and `model_card.md`.
//!
//! Both are generated from the same [`ReportInput`]; the model card is also embedded at the
//! end of the report (headings one level down) so one file tells the whole story.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::PlotKind;
use crate::format::{cell, format_delta, format_sig, metric_direction, metric_order_key};
use crate::input::{ModelRole, ReportInput};

/// Heading written above the warnings; tests and readers can search for it.
pub(crate) const WARNINGS_HEADING: &str = "## ⚠️ Warnings";

pub(crate) fn report(input: &ReportInput, drawn: &[PlotKind]) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# {}\n", one_line(&input.title));
    let _ = writeln!(md, "| | |\n|---|---|");
    let _ = writeln!(md, "| Model | `{}` |", cell(&input.model_id));
    let _ = writeln!(md, "| Version | `{}` |", cell(&input.version));
    let _ = writeln!(md, "| Created | {} |", cell(&input.created_at));
    let _ = writeln!(
        md,
        "| Data window | {} → {} |",
        cell(&input.data.window_start),
        cell(&input.data.window_end)
    );
    let _ = writeln!(md, "| Warnings | {} |\n", input.warnings.len());

    if !input.warnings.is_empty() {
        let _ = writeln!(md, "{WARNINGS_HEADING}\n");
        let _ = writeln!(md, "> [!WARNING]");
        let _ = writeln!(
            md,
            "> **{} warning(s) — read before promoting this model.**\n>",
            input.warnings.len()
        );
        for w in &input.warnings {
            let _ = writeln!(md, "> - {}", one_line(w));
        }
        md.push('\n');
    }

    md.push_str("## Metrics\n\n");
    metrics_table(&mut md, input, true);

    md.push_str("## Decision thresholds\n\n");
    thresholds_table(&mut md, input);

    md.push_str("## Data\n\n");
    data_tables(&mut md, input);

    md.push_str("## Plots\n\n");
    for kind in PlotKind::ALL {
        let _ = writeln!(md, "### {}\n", kind.title());
        if drawn.contains(&kind) {
            let _ = writeln!(md, "![{}]({})\n", kind.title(), kind.file_name());
            if let Some(note) = plot_note(kind, input) {
                let _ = writeln!(md, "{note}\n");
            }
        } else {
            md.push_str("_Not available: no data was supplied for this plot._\n\n");
        }
    }

    md.push_str("## Training parameters\n\n");
    if input.params.is_empty() {
        md.push_str("_None recorded._\n\n");
    } else {
        md.push_str("| parameter | value |\n|---|---|\n");
        for (k, v) in &input.params {
            let _ = writeln!(md, "| `{}` | `{}` |", cell(k), cell(v));
        }
        md.push('\n');
    }

    md.push_str("## Model card\n\n");
    md.push_str("_Also written to [model_card.md](model_card.md)._\n\n");
    model_card_body(&mut md, input, 3);
    md
}

pub(crate) fn model_card_file(input: &ReportInput) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Model card: `{}` version `{}`\n",
        one_line(&input.model_id),
        one_line(&input.version)
    );
    model_card_body(&mut md, input, 2);
    md
}

/// Sections of the model card with headings at `level` (`##` = 2).
fn model_card_body(md: &mut String, input: &ReportInput, level: usize) {
    let h = "#".repeat(level);
    let card = &input.card;
    let _ = writeln!(md, "{h} Model details\n");
    let _ = writeln!(md, "- **Model id:** `{}`", one_line(&input.model_id));
    let _ = writeln!(md, "- **Version:** `{}`", one_line(&input.version));
    let _ = writeln!(md, "- **Trained:** {}", one_line(&input.created_at));
    if !card.model_type.is_empty() {
        let _ = writeln!(md, "- **Model type:** {}", one_line(&card.model_type));
    }
    if !card.owner.is_empty() {
        let _ = writeln!(md, "- **Owner:** {}", one_line(&card.owner));
    }
    md.push('\n');

    let _ = writeln!(md, "{h} Intended use\n");
    let _ = writeln!(md, "{}\n", or_missing(&card.intended_use));
    if !card.out_of_scope_uses.is_empty() {
        let _ = writeln!(md, "**Out of scope:**\n");
        bullets(md, &card.out_of_scope_uses);
    }

    let _ = writeln!(md, "{h} Training data\n");
    let data = &input.data;
    let _ = writeln!(md, "- **Source:** {}", or_missing(&data.source));
    let _ = writeln!(
        md,
        "- **Window:** {} → {}",
        one_line(&data.window_start),
        one_line(&data.window_end)
    );
    for s in &data.splits {
        let _ = writeln!(
            md,
            "- **{}:** {} → {}, {} rows, {} fraud ({})",
            one_line(&s.name),
            one_line(&s.start),
            one_line(&s.end),
            s.rows,
            s.fraud,
            fraud_rate(s.fraud_rate())
        );
    }
    let _ = writeln!(md, "- **Label delay:** {}\n", or_missing(&data.label_delay));

    let _ = writeln!(md, "{h} Evaluation\n");
    metrics_table(md, input, false);
    if !input.thresholds.is_empty() {
        let _ = writeln!(md, "{h} Decision thresholds\n");
        thresholds_table(md, input);
    }

    let _ = writeln!(md, "{h} Limitations\n");
    if card.limitations.is_empty() {
        md.push_str("_None documented._\n\n");
    } else {
        bullets(md, &card.limitations);
    }

    let _ = writeln!(md, "{h} Ethical considerations and fairness\n");
    let _ = writeln!(md, "{}\n", or_missing(&card.ethical_considerations));

    if !input.warnings.is_empty() {
        let _ = writeln!(md, "{h} Open warnings from training\n");
        bullets(md, &input.warnings);
    }
}

/// Models as columns, metrics as rows, 4 significant digits; with `with_delta`, a Δ column
/// against the previous production model when there is one.
fn metrics_table(md: &mut String, input: &ReportInput, with_delta: bool) {
    if input.models.is_empty() {
        md.push_str("_No metrics recorded._\n\n");
        return;
    }
    let reference = input.delta_reference().filter(|_| with_delta);
    let names: BTreeSet<&str> = input
        .models
        .iter()
        .flat_map(|m| m.metrics.keys().map(String::as_str))
        .collect();
    let mut names: Vec<&str> = names.into_iter().collect();
    names.sort_by_cached_key(|n| metric_order_key(n));

    md.push_str("| metric |");
    for m in &input.models {
        let _ = write!(md, " {} |", cell(&m.name));
    }
    if let Some(r) = reference {
        let _ = write!(md, " Δ vs {} |", cell(&input.models[r].name));
    }
    md.push_str("\n|---|");
    for _ in &input.models {
        md.push_str("---:|");
    }
    if reference.is_some() {
        md.push_str("---:|");
    }
    md.push('\n');

    for name in &names {
        let direction = metric_direction(name);
        let _ = write!(md, "| `{}`{} |", cell(name), direction.arrow());
        for m in &input.models {
            match m.metrics.get(*name) {
                Some(v) => {
                    let _ = write!(md, " {} |", format_sig(*v, 4));
                }
                None => md.push_str(" — |"),
            }
        }
        if let Some(r) = reference {
            let candidate = input.models[0].metrics.get(*name);
            let production = input.models[r].metrics.get(*name);
            match (candidate, production) {
                (Some(c), Some(p)) => {
                    let _ = write!(md, " {} |", format_delta(c - p, direction));
                }
                _ => md.push_str(" — |"),
            }
        }
        md.push('\n');
    }
    md.push('\n');
    let mut legend = String::from("↑ higher is better, ↓ lower is better.");
    if let Some(r) = reference {
        let _ = write!(
            legend,
            " Δ = {} − {}; the verdict in brackets accounts for the metric's direction.",
            one_line(&input.models[0].name),
            one_line(&input.models[r].name)
        );
    } else if with_delta && !input.models.iter().any(|m| m.role == ModelRole::Production) {
        legend.push_str(" No production model to compare with.");
    }
    let _ = writeln!(md, "_{legend}_\n");
}

fn thresholds_table(md: &mut String, input: &ReportInput) {
    if input.thresholds.is_empty() {
        md.push_str("_No thresholds defined._\n\n");
        return;
    }
    md.push_str("| decision | score ≥ | policy |\n|---|---:|---|\n");
    for t in &input.thresholds {
        let _ = writeln!(
            md,
            "| {} | {} | {} |",
            cell(&t.decision),
            format_sig(t.threshold, 4),
            cell(&t.policy)
        );
    }
    md.push('\n');
}

fn data_tables(md: &mut String, input: &ReportInput) {
    let data = &input.data;
    md.push_str("| | |\n|---|---|\n");
    let _ = writeln!(md, "| Source | {} |", cell(&data.source));
    let _ = writeln!(
        md,
        "| Window | {} → {} |",
        cell(&data.window_start),
        cell(&data.window_end)
    );
    let _ = writeln!(md, "| Label delay | {} |\n", cell(&data.label_delay));
    if data.splits.is_empty() {
        return;
    }
    md.push_str("| split | from | to | rows | fraud | fraud rate |\n");
    md.push_str("|---|---|---|---:|---:|---:|\n");
    for s in &data.splits {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            cell(&s.name),
            cell(&s.start),
            cell(&s.end),
            s.rows,
            s.fraud,
            fraud_rate(s.fraud_rate())
        );
    }
    md.push('\n');
}

fn plot_note(kind: PlotKind, input: &ReportInput) -> Option<String> {
    match kind {
        PlotKind::PrecisionRecall => input.pr_baseline().map(|p| {
            format!(
                "_Dashed line: no-skill precision = fraud rate {}._",
                fraud_rate(Some(p))
            )
        }),
        PlotKind::Calibration => {
            Some("_Marker area grows with the number of rows in the bin._".into())
        }
        PlotKind::ScoreDistribution => Some(
            "_Each class is normalised to its own total (fraction of the class per bin), \
             log scale; empty bins are not drawn._"
                .into(),
        ),
        PlotKind::FeatureImportance if !input.importance_kind.is_empty() => Some(format!(
            "_Importance: {}._",
            one_line(&input.importance_kind)
        )),
        _ => None,
    }
}

fn fraud_rate(rate: Option<f64>) -> String {
    rate.map_or_else(|| "—".into(), |r| format!("{} %", format_sig(r * 100.0, 4)))
}

fn bullets(md: &mut String, items: &[String]) {
    for item in items {
        let _ = writeln!(md, "- {}", one_line(item));
    }
    md.push('\n');
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn or_missing(text: &str) -> String {
    if text.trim().is_empty() {
        "_Not documented._".into()
    } else {
        one_line(text)
    }
}
