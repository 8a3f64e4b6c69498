//! Per-user profile history: the last versions of the user dimension, so a transaction reads
//! the profile as it was at its event time (a slowly changing dimension, type 2).

use domain::UserProfile;
use serde::{Deserialize, Serialize};

/// Profile versions kept per user. Profiles change rarely (an address move, a new credit
/// band); a transaction older than the oldest kept version reads no profile.
pub const MAX_PROFILE_VERSIONS: usize = 8;

/// The versions of one user's profile, ascending by `valid_from_ms`, at most
/// [`MAX_PROFILE_VERSIONS`]. Serialisable: the feature-service stores it in Redis.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProfileHistory {
    versions: Vec<UserProfile>,
}

/// The empty history (a user without a profile).
pub(crate) static NO_PROFILE: ProfileHistory = ProfileHistory {
    versions: Vec::new(),
};

impl ProfileHistory {
    /// Folds a version in. A version with the same `valid_from_ms` as a kept one replaces it
    /// (a correction: the later arrival wins). Returns whether the history changed.
    pub fn fold(&mut self, p: &UserProfile) -> bool {
        match self
            .versions
            .binary_search_by_key(&p.valid_from_ms, |v| v.valid_from_ms)
        {
            Ok(i) if self.versions[i] == *p => return false,
            Ok(i) => self.versions[i] = p.clone(),
            Err(i) => {
                if i == 0 && self.versions.len() >= MAX_PROFILE_VERSIONS {
                    // Older than every kept version of a full history: it would be evicted
                    // at once.
                    return false;
                }
                self.versions.insert(i, p.clone());
                if self.versions.len() > MAX_PROFILE_VERSIONS {
                    self.versions.remove(0);
                }
            }
        }
        true
    }

    /// The version valid at `t`: the latest with `valid_from_ms <= t`.
    pub fn at(&self, t: i64) -> Option<&UserProfile> {
        let n = self.versions.partition_point(|v| v.valid_from_ms <= t);
        n.checked_sub(1).map(|i| &self.versions[i])
    }

    pub fn is_empty(&self) -> bool {
        self.versions.is_empty()
    }

    pub fn versions(&self) -> &[UserProfile] {
        &self.versions
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::AccountType;

    fn version(valid_from_ms: i64, credit_band: u8) -> UserProfile {
        UserProfile {
            user_id: "u".into(),
            account_opened_ms: 0,
            account_type: AccountType::Personal,
            home_country: "FR".into(),
            credit_band,
            income_band: 3,
            valid_from_ms,
        }
    }

    #[test]
    fn reads_the_version_valid_at_the_time_in_any_arrival_order() {
        let mut a = ProfileHistory::default();
        let mut b = ProfileHistory::default();
        for v in [version(100, 1), version(300, 3), version(200, 2)] {
            assert!(a.fold(&v));
        }
        for v in [version(300, 3), version(200, 2), version(100, 1)] {
            assert!(b.fold(&v));
        }
        assert_eq!(a, b);
        assert_eq!(a.at(99), None);
        assert_eq!(a.at(100).map(|p| p.credit_band), Some(1));
        assert_eq!(a.at(250).map(|p| p.credit_band), Some(2));
        assert_eq!(a.at(i64::MAX).map(|p| p.credit_band), Some(3));
        // A correction of one version replaces it; a repeat changes nothing.
        assert!(a.fold(&version(200, 5)));
        assert!(!a.fold(&version(200, 5)));
        assert_eq!(a.at(250).map(|p| p.credit_band), Some(5));
    }

    #[test]
    fn keeps_the_newest_versions_only() {
        let mut h = ProfileHistory::default();
        for i in 0..20 {
            h.fold(&version(i * 10, 1));
        }
        assert_eq!(h.versions().len(), MAX_PROFILE_VERSIONS);
        assert_eq!(h.versions()[0].valid_from_ms, 120);
        assert!(!h.fold(&version(5, 1)), "older than a full history");
        assert_eq!(h.at(119), None);
    }
}
