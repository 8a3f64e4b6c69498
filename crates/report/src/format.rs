//! Number formatting and metric conventions for the Markdown tables.

/// Whether a larger value of a metric is an improvement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricDirection {
    /// e.g. `roc_auc`, `average_precision`, `recall_at_1pct_fpr`.
    HigherIsBetter,
    /// e.g. `brier`, `log_loss`, `ece`, `fpr_at_90pct_recall`.
    LowerIsBetter,
    /// Neither (counts, rates, thresholds): Δ is shown without a verdict.
    Neutral,
}

impl MetricDirection {
    /// Arrow shown next to the metric name: the direction that is better.
    pub(crate) fn arrow(self) -> &'static str {
        match self {
            MetricDirection::HigherIsBetter => " ↑",
            MetricDirection::LowerIsBetter => " ↓",
            MetricDirection::Neutral => "",
        }
    }
}

const LOWER_IS_BETTER: &[&str] = &[
    "brier", "loss", "logloss", "ece", "mce", "error", "fpr", "fnr", "cost", "mae", "mse", "rmse",
];
const HIGHER_IS_BETTER: &[&str] = &[
    "auc",
    "roc",
    "ap",
    "average",
    "precision",
    "recall",
    "tpr",
    "f1",
    "accuracy",
    "gini",
    "ks",
    "lift",
    "mcc",
    "savings",
];

/// Direction of a metric, derived from its name.
///
/// Only the part before `_at_` counts (`recall_at_1pct_fpr` is a recall, `fpr_at_90pct_recall`
/// a false-positive rate); it is split on `_` and matched against known words. Unknown
/// names are [`MetricDirection::Neutral`].
pub fn metric_direction(name: &str) -> MetricDirection {
    let name = name.to_ascii_lowercase();
    let head = name.split("_at_").next().unwrap_or_default();
    let tokens: Vec<&str> = head.split(['_', '-', ' ', '@']).collect();
    if tokens.iter().any(|t| LOWER_IS_BETTER.contains(t)) {
        MetricDirection::LowerIsBetter
    } else if tokens.iter().any(|t| HIGHER_IS_BETTER.contains(t)) {
        MetricDirection::HigherIsBetter
    } else {
        MetricDirection::Neutral
    }
}

/// Order of metric rows: well-known ranking metrics first, then other "higher is better",
/// then the losses, then neutral ones; alphabetical within a group.
pub(crate) fn metric_order_key(name: &str) -> (u32, String) {
    const PREFERRED: &[&str] = &[
        "roc_auc",
        "average_precision",
        "pr_auc",
        "brier",
        "log_loss",
        "ece",
    ];
    let lower = name.to_ascii_lowercase();
    let rank = match PREFERRED.iter().position(|p| *p == lower) {
        Some(i) if i < 3 => i as u32,
        Some(i) => 200 + i as u32,
        None if lower.starts_with("recall_at") => 10,
        None if lower.starts_with("precision_at") => 11,
        None => match metric_direction(&lower) {
            MetricDirection::HigherIsBetter => 100,
            MetricDirection::LowerIsBetter => 300,
            MetricDirection::Neutral => 400,
        },
    };
    (rank, lower)
}

/// Formats `x` with `sig` significant digits (at least 1): fixed notation for magnitudes in
/// `[1e-4, 1e6)`, scientific otherwise. `0.912345 → "0.9123"`, `1234.5 → "1235"` (4 digits).
pub fn format_sig(x: f64, sig: usize) -> String {
    if !x.is_finite() {
        return if x.is_nan() {
            "NaN".into()
        } else if x > 0.0 {
            "∞".into()
        } else {
            "-∞".into()
        };
    }
    if x == 0.0 {
        return "0".into();
    }
    let sig = sig.max(1) as i32;
    let mag = x.abs().log10().floor() as i32;
    if !(-4..6).contains(&mag) {
        return format!("{:.*e}", (sig - 1) as usize, x);
    }
    let mut decimals = (sig - 1 - mag).max(0) as usize;
    let mut s = format!("{x:.decimals$}");
    // Rounding may carry into a new digit (0.99996 → "1.0000"): drop one decimal then.
    let rounded: f64 = s.parse().unwrap_or(x);
    if decimals > 0 && rounded.abs() >= 10f64.powi(mag + 1) {
        decimals -= 1;
        s = format!("{x:.decimals$}");
    }
    s
}

/// Formats a difference with an explicit sign and 4 significant digits, followed by the
/// verdict for the metric's direction: `"+0.01234 (better)"`, `"-0.002100 (better)"` for a
/// loss, `"0 (same)"`.
pub fn format_delta(delta: f64, direction: MetricDirection) -> String {
    let number = format_sig(delta, 4);
    if delta.is_nan() {
        return number;
    }
    let signed = if delta > 0.0 {
        format!("+{number}")
    } else {
        number
    };
    let verdict = match (direction, delta.partial_cmp(&0.0)) {
        (_, Some(std::cmp::Ordering::Equal)) => " (same)",
        (MetricDirection::Neutral, _) => "",
        (MetricDirection::HigherIsBetter, Some(std::cmp::Ordering::Greater))
        | (MetricDirection::LowerIsBetter, Some(std::cmp::Ordering::Less)) => " (better)",
        _ => " (worse)",
    };
    format!("{signed}{verdict}")
}

/// Escapes text for a Markdown table cell.
pub(crate) fn cell(text: &str) -> String {
    text.replace('|', "\\|")
        .replace("\r\n", "<br>")
        .replace('\n', "<br>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn significant_digits() {
        assert_eq!(format_sig(0.912345, 4), "0.9123");
        assert_eq!(format_sig(0.0123456, 4), "0.01235");
        assert_eq!(format_sig(1234.56, 4), "1235");
        assert_eq!(format_sig(12.0, 4), "12.00");
        assert_eq!(format_sig(-0.5, 4), "-0.5000");
        assert_eq!(format_sig(0.99996, 4), "1.000");
        assert_eq!(format_sig(0.0, 4), "0");
        assert_eq!(format_sig(1.5e-7, 4), "1.500e-7");
        assert_eq!(format_sig(2.5e9, 4), "2.500e9");
        assert_eq!(format_sig(f64::NAN, 4), "NaN");
    }

    #[test]
    fn directions() {
        use MetricDirection::*;
        for (name, want) in [
            ("roc_auc", HigherIsBetter),
            ("average_precision", HigherIsBetter),
            ("recall_at_1pct_fpr", HigherIsBetter),
            ("precision_at_k", HigherIsBetter),
            ("brier", LowerIsBetter),
            ("log_loss", LowerIsBetter),
            ("ece", LowerIsBetter),
            ("fpr_at_90pct_recall", LowerIsBetter),
            ("alert_rate", Neutral),
        ] {
            assert_eq!(metric_direction(name), want, "{name}");
        }
    }

    #[test]
    fn deltas_carry_sign_and_verdict() {
        use MetricDirection::*;
        assert_eq!(format_delta(0.012345, HigherIsBetter), "+0.01235 (better)");
        assert_eq!(format_delta(-0.0021, LowerIsBetter), "-0.002100 (better)");
        assert_eq!(format_delta(0.0021, LowerIsBetter), "+0.002100 (worse)");
        assert_eq!(format_delta(-0.1, HigherIsBetter), "-0.1000 (worse)");
        assert_eq!(format_delta(0.0, HigherIsBetter), "0 (same)");
        assert_eq!(format_delta(3.0, Neutral), "+3.000");
    }

    #[test]
    fn metric_rows_are_ordered_by_meaning() {
        let mut names = vec![
            "ece",
            "zeta",
            "brier",
            "recall_at_1pct_fpr",
            "roc_auc",
            "log_loss",
            "average_precision",
        ];
        names.sort_by_key(|n| metric_order_key(n));
        assert_eq!(
            names,
            [
                "roc_auc",
                "average_precision",
                "recall_at_1pct_fpr",
                "brier",
                "log_loss",
                "ece",
                "zeta"
            ]
        );
    }
}
