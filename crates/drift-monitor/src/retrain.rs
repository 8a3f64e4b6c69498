//! Drift severity and retraining on a policy.
//!
//! [`severity`] grades a report from its two signals, the score PSI and the share of tested
//! features that drifted (`d` = `drift.dataset_share`):
//! - **none**: score PSI under the warning level and fewer than `d / 2` of the features
//!   drifted;
//! - **moderate**: score PSI at the warning level, or at least `d / 2` of the features;
//! - **severe**: dataset drift (at least `d` of the features), or score PSI at the alert level;
//! - **critical**: both — the inputs moved and the model's output moved with them.
//!
//! [`Tracker`] turns a run of reports into at most one retrain request per cool-down: a
//! verdict of at least `severe` for `sustained_reports` reports in a row (one noisy window
//! does not retrain), no request within `cooldown_secs` of the last one, and at least
//! `min_new_labels` labels reported since the last request (a retrain without new labels
//! learns the old world again). Pure: the clock and the label count are passed in.

use crate::window::Status;
use proto::v1::DriftSeverity;
use serde::Deserialize;
use service_runtime::security::ClientSecurity;

/// How bad a report is; `None` while the windows hold too little to judge.
pub fn severity(
    score: Status,
    tested: u32,
    drifted: u32,
    dataset_share: f64,
) -> Option<DriftSeverity> {
    let features_judged = tested > 0;
    if score == Status::InsufficientData && !features_judged {
        return None;
    }
    let share = if features_judged {
        f64::from(drifted) / f64::from(tested)
    } else {
        0.0
    };
    let inputs = share >= dataset_share;
    let output = score == Status::Alert;
    Some(if inputs && output {
        DriftSeverity::Critical
    } else if inputs || output {
        DriftSeverity::Severe
    } else if score == Status::Warn || share >= dataset_share / 2.0 {
        DriftSeverity::Moderate
    } else {
        DriftSeverity::None
    })
}

/// The `retrain` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetrainSettings {
    /// Off by default.
    pub enabled: bool,
    /// The trainer's gRPC endpoint (`TrainerService.Train`).
    pub trainer_endpoint: String,
    /// TLS and token towards the trainer.
    pub security: ClientSecurity,
    /// Reports in a row at severe or worse before a request.
    pub sustained_reports: u32,
    /// Least time between two requests.
    pub cooldown_secs: u64,
    /// Labels reported since the last request needed for the next one.
    pub min_new_labels: u64,
    /// Alias the trainer moves when its own gate passes (inference shadows it).
    pub promote_to: String,
}

impl Default for RetrainSettings {
    fn default() -> Self {
        RetrainSettings {
            enabled: false,
            trainer_endpoint: "http://trainer:50051".into(),
            security: ClientSecurity::default(),
            sustained_reports: 3,
            cooldown_secs: 24 * 3600,
            min_new_labels: 1_000,
            promote_to: registry::stages::CANDIDATE.into(),
        }
    }
}

/// What a report leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Below severe: the run of severe reports is broken.
    Nothing,
    /// Severe, but the policy holds the request back (says why).
    Hold(String),
    /// Ask the trainer for a run (the reason becomes the model's lineage).
    Request(String),
}

/// The policy's memory between reports.
#[derive(Debug, Default)]
pub struct Tracker {
    in_a_row: u32,
    last_request_ms: Option<i64>,
    labels_at_last: u64,
}

impl Tracker {
    /// Observes one report's severity at `now_ms`, with `labels_seen` labels consumed so far.
    /// `what` describes the report (it goes into the request's reason).
    pub fn observe(
        &mut self,
        s: &RetrainSettings,
        severity: Option<DriftSeverity>,
        what: &str,
        now_ms: i64,
        labels_seen: u64,
    ) -> Action {
        if severity.is_none_or(|v| (v as i32) < DriftSeverity::Severe as i32) {
            self.in_a_row = 0;
            return Action::Nothing;
        }
        self.in_a_row += 1;
        let level = severity
            .map(|v| {
                v.as_str_name()
                    .trim_start_matches("DRIFT_SEVERITY_")
                    .to_lowercase()
            })
            .unwrap_or_default();
        if self.in_a_row < s.sustained_reports {
            return Action::Hold(format!(
                "{level} for {} of {} reports in a row",
                self.in_a_row, s.sustained_reports
            ));
        }
        let cooldown_ms = i64::try_from(s.cooldown_secs.saturating_mul(1_000)).unwrap_or(i64::MAX);
        if let Some(last) = self.last_request_ms
            && now_ms.saturating_sub(last) < cooldown_ms
        {
            return Action::Hold(format!(
                "{level}, but a retrain was requested {} s ago (cool-down {} s)",
                now_ms.saturating_sub(last) / 1_000,
                s.cooldown_secs
            ));
        }
        let new_labels = labels_seen.saturating_sub(self.labels_at_last);
        if new_labels < s.min_new_labels {
            return Action::Hold(format!(
                "{level}, but only {new_labels} new labels since the last retrain (at least {})",
                s.min_new_labels
            ));
        }
        Action::Request(format!(
            "drift monitor: {level} drift for {} reports in a row ({what}); {new_labels} new labels",
            self.in_a_row
        ))
    }

    /// Records that the trainer accepted the request [`Tracker::observe`] asked for: the
    /// cool-down and the label count start from here. A request the trainer refused (or
    /// never received) is not recorded, so the next severe report asks again.
    pub fn requested(&mut self, now_ms: i64, labels_seen: u64) {
        self.in_a_row = 0;
        self.last_request_ms = Some(now_ms);
        self.labels_at_last = labels_seen;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::v1::DriftSeverity as S;

    fn report(status: Status) -> Status {
        status
    }

    #[test]
    fn severity_grades_both_signals() {
        let ok = report(Status::Ok);
        assert_eq!(severity(report(Status::InsufficientData), 0, 0, 0.5), None);
        assert_eq!(severity(ok, 10, 1, 0.5), Some(S::None));
        assert_eq!(severity(ok, 10, 3, 0.5), Some(S::Moderate));
        assert_eq!(
            severity(report(Status::Warn), 10, 0, 0.5),
            Some(S::Moderate)
        );
        assert_eq!(severity(ok, 10, 5, 0.5), Some(S::Severe));
        assert_eq!(severity(report(Status::Alert), 10, 0, 0.5), Some(S::Severe));
        assert_eq!(
            severity(report(Status::Alert), 10, 6, 0.5),
            Some(S::Critical)
        );
        // Features judged while the score window is still filling: graded on them.
        assert_eq!(
            severity(report(Status::InsufficientData), 10, 6, 0.5),
            Some(S::Severe)
        );
    }

    fn settings() -> RetrainSettings {
        RetrainSettings {
            sustained_reports: 3,
            cooldown_secs: 600,
            min_new_labels: 100,
            ..RetrainSettings::default()
        }
    }

    #[test]
    fn a_sustained_severe_drift_requests_one_retrain_per_cooldown_with_new_labels() {
        let (s, mut t) = (settings(), Tracker::default());
        let severe = Some(S::Severe);
        // Two severe reports, then a calm one: the run is broken.
        assert!(matches!(
            t.observe(&s, severe, "x", 0, 500),
            Action::Hold(_)
        ));
        assert!(matches!(
            t.observe(&s, severe, "x", 10_000, 500),
            Action::Hold(_)
        ));
        assert_eq!(
            t.observe(&s, Some(S::Moderate), "x", 20_000, 500),
            Action::Nothing
        );
        for i in 0..2 {
            assert!(matches!(
                t.observe(&s, severe, "x", 30_000 + i, 500),
                Action::Hold(_)
            ));
        }
        match t.observe(&s, Some(S::Critical), "8 of 10 features", 40_000, 500) {
            Action::Request(why) => {
                t.requested(40_000, 500);
                assert!(
                    why.contains("critical drift for 3 reports in a row (8 of 10 features)"),
                    "{why}"
                );
                assert!(why.contains("500 new labels"), "{why}");
            }
            a => panic!("{a:?}"),
        }
        // Still drifting: held by the cool-down, however long the run.
        for i in 0..10 {
            match t.observe(&s, severe, "x", 50_000 + i * 10_000, 5_000) {
                Action::Hold(why) => assert!(
                    why.contains("cool-down") || why.contains("reports in a row"),
                    "{why}"
                ),
                a => panic!("{a:?}"),
            }
        }
        // After the cool-down, a sustained drift without new labels is held too.
        let after = 40_000 + 600_000;
        match t.observe(&s, severe, "x", after, 550) {
            Action::Hold(why) => assert!(why.contains("only 50 new labels"), "{why}"),
            a => panic!("{a:?}"),
        }
        assert!(matches!(
            t.observe(&s, severe, "x", after + 1, 700),
            Action::Request(_)
        ));
        // Refused by the trainer (not recorded): the next severe report asks again.
        assert!(matches!(
            t.observe(&s, severe, "x", after + 2, 700),
            Action::Request(_)
        ));
        t.requested(after + 2, 700);
        assert!(matches!(
            t.observe(&s, severe, "x", after + 3, 900),
            Action::Hold(_)
        ));
    }

    #[test]
    fn no_verdict_is_no_drift() {
        let (s, mut t) = (settings(), Tracker::default());
        for i in 0..10 {
            assert_eq!(t.observe(&s, None, "x", i, 1_000), Action::Nothing);
        }
    }
}
