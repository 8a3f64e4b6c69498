//! Categorical encoding: category string → numeric code, fit on training rows only.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// The encoding of one categorical feature: each known category gets a code `0, 1, 2, …`
/// in order of descending frequency in the rows it was fit on, ties broken by the value's
/// byte order (so fitting is deterministic).
///
/// - a missing value (null) → `NaN`, the matrix's "missing";
/// - a category not seen when fitting → the reserved *unseen* code, equal to the number of
///   known categories ([`CategoryEncoding::unseen_code`]). It is one number for all unseen
///   categories, placed after every known code, so a tree can still split it off.
///
/// Integer categorical columns are encoded through their decimal representation (`"42"`),
/// which is what inference must pass to [`CategoryEncoding::code`].
///
/// It serializes as `{"feature": …, "categories": [most frequent, …]}`, which goes into
/// the model manifest so inference encodes exactly as training did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "EncodingRepr", into = "EncodingRepr")]
pub struct CategoryEncoding {
    feature: String,
    categories: Vec<String>,
    index: HashMap<String, usize>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EncodingRepr {
    feature: String,
    categories: Vec<String>,
}

impl TryFrom<EncodingRepr> for CategoryEncoding {
    type Error = String;

    fn try_from(repr: EncodingRepr) -> Result<Self, String> {
        CategoryEncoding::new(repr.feature, repr.categories)
    }
}

impl From<CategoryEncoding> for EncodingRepr {
    fn from(encoding: CategoryEncoding) -> Self {
        EncodingRepr {
            feature: encoding.feature,
            categories: encoding.categories,
        }
    }
}

impl CategoryEncoding {
    /// An encoding with the given categories, in code order; refuses duplicates.
    pub fn new(feature: String, categories: Vec<String>) -> Result<CategoryEncoding, String> {
        let mut index = HashMap::with_capacity(categories.len());
        for (code, category) in categories.iter().enumerate() {
            if index.insert(category.clone(), code).is_some() {
                return Err(format!(
                    "feature \"{feature}\": category \"{category}\" is listed twice"
                ));
            }
        }
        Ok(CategoryEncoding {
            feature,
            categories,
            index,
        })
    }

    /// Fits an encoding on `values` (missing values are ignored).
    pub fn fit<'a>(
        feature: impl Into<String>,
        values: impl IntoIterator<Item = Option<&'a str>>,
    ) -> CategoryEncoding {
        let mut counts: HashMap<&str, u64> = HashMap::new();
        for value in values.into_iter().flatten() {
            *counts.entry(value).or_default() += 1;
        }
        let mut by_frequency: Vec<(&str, u64)> = counts.into_iter().collect();
        by_frequency.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        let categories: Vec<String> = by_frequency.into_iter().map(|(v, _)| v.into()).collect();
        let index = categories
            .iter()
            .enumerate()
            .map(|(code, c)| (c.clone(), code))
            .collect();
        CategoryEncoding {
            feature: feature.into(),
            categories,
            index,
        }
    }

    /// The code of a value: its category's code, [`Self::unseen_code`] for a category not
    /// seen when fitting, `NaN` for a missing value.
    pub fn code(&self, value: Option<&str>) -> f64 {
        match value {
            None => f64::NAN,
            Some(v) => self.index.get(v).copied().unwrap_or(self.categories.len()) as f64,
        }
    }

    /// The code given to every category not seen when fitting: the number of known ones.
    pub fn unseen_code(&self) -> f64 {
        self.categories.len() as f64
    }

    /// The feature this encoding belongs to.
    pub fn feature(&self) -> &str {
        &self.feature
    }

    /// The known categories; the code of `categories()[i]` is `i`.
    pub fn categories(&self) -> &[String] {
        &self.categories
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_descending_frequency_then_value() {
        let values = ["b", "a", "c", "a", "c", "d"];
        let e = CategoryEncoding::fit("f", values.iter().map(|v| Some(*v)).chain([None]));
        // a and c twice (a < c), then b and d once (b < d).
        assert_eq!(e.categories(), ["a", "c", "b", "d"]);
        assert_eq!(e.code(Some("a")), 0.0);
        assert_eq!(e.code(Some("c")), 1.0);
        assert_eq!(e.code(Some("d")), 3.0);
        assert_eq!(e.code(Some("zzz")), 4.0);
        assert_eq!(e.unseen_code(), 4.0);
        assert!(e.code(None).is_nan());
    }

    #[test]
    fn serde_round_trip_keeps_codes_and_refuses_duplicates() {
        let e = CategoryEncoding::fit("channel", [Some("web"), Some("pos"), Some("web")]);
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(json, r#"{"feature":"channel","categories":["web","pos"]}"#);
        let back: CategoryEncoding = serde_json::from_str(&json).unwrap();
        assert_eq!(back, e);
        assert_eq!(back.code(Some("pos")), 1.0);
        assert_eq!(back.code(Some("app")), 2.0);
        let dup = r#"{"feature":"channel","categories":["web","web"]}"#;
        let err = serde_json::from_str::<CategoryEncoding>(dup).unwrap_err();
        assert!(err.to_string().contains("listed twice"), "{err}");
    }
}
