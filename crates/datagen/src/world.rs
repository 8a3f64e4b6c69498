//! The static world: countries, merchant categories, merchants and users.
//!
//! Everything here is drawn once from the world RNG stream, before any transaction, so two
//! datasets with the same seed and world sizes share the same users and merchants even when
//! their traffic or fault settings differ.

use rand::Rng;
use rand::distr::Distribution;
use rand::distr::weighted::WeightedIndex;
use rand::seq::IndexedRandom;
use rand_distr::{LogNormal, StandardNormal};

use crate::GenerateError;

/// A country the generator knows: where users live, merchants sit and fraudsters operate.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Country {
    pub(crate) code: &'static str,
    pub(crate) lat: f64,
    pub(crate) lon: f64,
    /// Offset of local time from UTC, in minutes (rhythms are defined in local time).
    pub(crate) utc_offset_min: i64,
    /// Share of users living there.
    pub(crate) home_weight: f64,
    /// Relative likelihood that an account-takeover or a cloned card is used from there.
    pub(crate) fraud_weight: f64,
}

pub(crate) const COUNTRIES: &[Country] = &[
    country("FR", 46.6, 2.4, 60, 0.22, 0.2),
    country("DE", 51.2, 10.4, 60, 0.20, 0.2),
    country("ES", 40.4, -3.7, 60, 0.11, 0.3),
    country("IT", 42.8, 12.5, 60, 0.10, 0.3),
    country("GB", 54.0, -2.0, 0, 0.10, 0.6),
    country("NL", 52.1, 5.3, 60, 0.07, 0.3),
    country("PL", 52.0, 19.1, 60, 0.07, 0.5),
    country("US", 39.8, -98.6, -360, 0.06, 1.2),
    country("BR", -14.2, -51.9, -180, 0.03, 1.0),
    country("RO", 45.9, 24.9, 120, 0.02, 1.2),
    country("NG", 9.1, 8.7, 60, 0.01, 1.5),
    country("IN", 22.0, 79.0, 330, 0.01, 1.0),
];

const fn country(
    code: &'static str,
    lat: f64,
    lon: f64,
    utc_offset_min: i64,
    home_weight: f64,
    fraud_weight: f64,
) -> Country {
    Country {
        code,
        lat,
        lon,
        utc_offset_min,
        home_weight,
        fraud_weight,
    }
}

/// ISO 18245 merchant categories the generator uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Category {
    Grocery,
    Fuel,
    Restaurant,
    Electronics,
    Marketplace,
    Travel,
    Atm,
    Transfer,
    Jewellery,
    DigitalGoods,
}

impl Category {
    pub(crate) const ALL: [Category; 10] = [
        Category::Grocery,
        Category::Fuel,
        Category::Restaurant,
        Category::Electronics,
        Category::Marketplace,
        Category::Travel,
        Category::Atm,
        Category::Transfer,
        Category::Jewellery,
        Category::DigitalGoods,
    ];

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// The four-digit ISO 18245 code.
    pub(crate) fn mcc(self) -> &'static str {
        match self {
            Category::Grocery => "5411",
            Category::Fuel => "5541",
            Category::Restaurant => "5812",
            Category::Electronics => "5732",
            Category::Marketplace => "5399",
            Category::Travel => "4511",
            Category::Atm => "6011",
            Category::Transfer => "4829",
            Category::Jewellery => "5944",
            Category::DigitalGoods => "5816",
        }
    }

    /// Median amount in EUR and log-normal sigma of a legitimate purchase.
    pub(crate) fn amount_profile(self) -> (f64, f64) {
        match self {
            Category::Grocery => (35.0, 0.7),
            Category::Fuel => (55.0, 0.35),
            Category::Restaurant => (28.0, 0.6),
            Category::Electronics => (180.0, 0.9),
            Category::Marketplace => (40.0, 0.9),
            Category::Travel => (250.0, 0.7),
            Category::Atm => (80.0, 0.6),
            Category::Transfer => (150.0, 1.0),
            Category::Jewellery => (300.0, 0.9),
            Category::DigitalGoods => (9.0, 0.8),
        }
    }

    /// Share of legitimate transactions in this category.
    fn traffic_weight(self) -> f64 {
        match self {
            Category::Grocery => 0.25,
            Category::Fuel => 0.09,
            Category::Restaurant => 0.18,
            Category::Electronics => 0.03,
            Category::Marketplace => 0.14,
            Category::Travel => 0.015,
            Category::Atm => 0.08,
            Category::Transfer => 0.07,
            Category::Jewellery => 0.01,
            Category::DigitalGoods => 0.125,
        }
    }

    /// Share of merchants in this category.
    fn merchant_weight(self) -> f64 {
        match self {
            Category::Grocery => 0.2,
            Category::Fuel => 0.1,
            Category::Restaurant => 0.25,
            Category::Electronics => 0.06,
            Category::Marketplace => 0.04,
            Category::Travel => 0.03,
            Category::Atm => 0.12,
            Category::Transfer => 0.03,
            Category::Jewellery => 0.04,
            Category::DigitalGoods => 0.05,
        }
    }

    /// Merchants of this category sell only online: the transaction happens where the buyer is.
    pub(crate) fn online_only(self) -> bool {
        matches!(
            self,
            Category::Marketplace | Category::DigitalGoods | Category::Transfer
        )
    }
}

/// A merchant: a category and a location.
#[derive(Debug, Clone)]
pub(crate) struct Merchant {
    pub(crate) id: String,
    pub(crate) category: Category,
    pub(crate) country: usize,
    pub(crate) lat: f64,
    pub(crate) lon: f64,
}

/// A trip abroad: card-present spending happens in `country` between `from_ms` and `to_ms`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Trip {
    pub(crate) country: usize,
    pub(crate) from_ms: i64,
    pub(crate) to_ms: i64,
}

/// A user (cardholder) and the habits legitimate traffic follows.
#[derive(Debug, Clone)]
pub(crate) struct User {
    pub(crate) id: String,
    pub(crate) account_id: String,
    pub(crate) home: usize,
    pub(crate) lat: f64,
    pub(crate) lon: f64,
    pub(crate) devices: Vec<String>,
    /// Usual merchants, by category index.
    pub(crate) usual: Vec<Vec<u32>>,
    /// Multiplier of every category's median amount.
    pub(crate) spend_scale: f64,
    /// Mean legitimate transactions per day.
    pub(crate) daily_rate: f64,
    pub(crate) trip: Option<Trip>,
}

/// Users, merchants and the lookup tables the traffic generator needs.
#[derive(Debug)]
pub(crate) struct World {
    pub(crate) users: Vec<User>,
    pub(crate) merchants: Vec<Merchant>,
    /// Merchant indices by `[country][category]`.
    by_country_category: Vec<Vec<Vec<u32>>>,
    /// Merchant indices by category, any country.
    by_category: Vec<Vec<u32>>,
    /// User indices by home country.
    pub(crate) users_by_country: Vec<Vec<u32>>,
    pub(crate) category_mix: WeightedIndex<f64>,
    pub(crate) fraud_country: WeightedIndex<f64>,
}

/// Sizes and time span the world is drawn for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WorldSpec {
    pub(crate) users: u32,
    pub(crate) merchants: u32,
    pub(crate) start_ms: i64,
    pub(crate) end_ms: i64,
}

const DAY_MS: i64 = 86_400_000;
/// Share of users with one trip abroad in the span.
const TRAVELLER_SHARE: f64 = 0.25;

pub(crate) fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

fn jitter<R: Rng>(rng: &mut R, c: &Country, spread_deg: f64) -> (f64, f64) {
    let dlat: f64 = rng.sample(StandardNormal);
    let dlon: f64 = rng.sample(StandardNormal);
    let lat = (c.lat + spread_deg * dlat).clamp(-89.0, 89.0);
    let lon = (c.lon + spread_deg * dlon).clamp(-179.0, 179.0);
    (round4(lat), round4(lon))
}

fn weights(f: impl Fn(&Country) -> f64) -> Result<WeightedIndex<f64>, GenerateError> {
    WeightedIndex::new(COUNTRIES.iter().map(f))
        .map_err(|e| GenerateError::Internal(format!("country weights: {e}")))
}

impl World {
    pub(crate) fn generate<R: Rng>(spec: WorldSpec, rng: &mut R) -> Result<World, GenerateError> {
        let home = weights(|c| c.home_weight)?;
        let fraud_country = weights(|c| c.fraud_weight)?;
        let merchant_mix = WeightedIndex::new(Category::ALL.iter().map(|c| c.merchant_weight()))
            .map_err(|e| GenerateError::Internal(format!("merchant weights: {e}")))?;
        let category_mix = WeightedIndex::new(Category::ALL.iter().map(|c| c.traffic_weight()))
            .map_err(|e| GenerateError::Internal(format!("category weights: {e}")))?;

        let mut merchants = Vec::with_capacity(spec.merchants as usize);
        let mut by_country_category = vec![vec![Vec::new(); Category::ALL.len()]; COUNTRIES.len()];
        let mut by_category = vec![Vec::new(); Category::ALL.len()];
        for i in 0..spec.merchants {
            // The first merchants cycle through the categories so that every one exists.
            let category = match Category::ALL.get(i as usize) {
                Some(c) => *c,
                None => Category::ALL[merchant_mix.sample(rng)],
            };
            let country = home.sample(rng);
            let (lat, lon) = jitter(rng, &COUNTRIES[country], 1.5);
            by_country_category[country][category.index()].push(i);
            by_category[category.index()].push(i);
            merchants.push(Merchant {
                id: format!("m-{i:05}"),
                category,
                country,
                lat,
                lon,
            });
        }

        let scale = LogNormal::new(0.0, 0.45)
            .map_err(|e| GenerateError::Internal(format!("spend scale: {e}")))?;
        let rate = LogNormal::new(1.5f64.ln(), 0.6)
            .map_err(|e| GenerateError::Internal(format!("daily rate: {e}")))?;
        let span_ms = spec.end_ms - spec.start_ms;
        let mut users = Vec::with_capacity(spec.users as usize);
        let mut users_by_country = vec![Vec::new(); COUNTRIES.len()];
        for i in 0..spec.users {
            let home_idx = home.sample(rng);
            let (lat, lon) = jitter(rng, &COUNTRIES[home_idx], 1.5);
            let devices = (0..rng.random_range(1..=3))
                .map(|k| format!("d-{i:06}-{k}"))
                .collect();
            let mut usual = Vec::with_capacity(Category::ALL.len());
            for category in Category::ALL {
                let local = &by_country_category[home_idx][category.index()];
                let pool = if local.is_empty() || category.online_only() {
                    &by_category[category.index()]
                } else {
                    local
                };
                let n = rng.random_range(1..=3usize).min(pool.len());
                usual.push(pool.choose_multiple(rng, n).copied().collect());
            }
            let trip = if rng.random_bool(TRAVELLER_SHARE) && span_ms > DAY_MS {
                let mut country = home.sample(rng);
                if country == home_idx {
                    country =
                        (country + 1 + rng.random_range(0..COUNTRIES.len() - 1)) % COUNTRIES.len();
                }
                let len = rng.random_range(2 * DAY_MS..=10 * DAY_MS).min(span_ms / 2);
                let from_ms = spec.start_ms + rng.random_range(0..=(span_ms - len));
                Some(Trip {
                    country,
                    from_ms,
                    to_ms: from_ms + len,
                })
            } else {
                None
            };
            users_by_country[home_idx].push(i);
            users.push(User {
                id: format!("u-{i:06}"),
                account_id: format!("a-{i:06}"),
                home: home_idx,
                lat,
                lon,
                devices,
                usual,
                spend_scale: scale.sample(rng),
                daily_rate: rate.sample(rng),
                trip,
            });
        }
        Ok(World {
            users,
            merchants,
            by_country_category,
            by_category,
            users_by_country,
            category_mix,
            fraud_country,
        })
    }

    /// A merchant of `category`, in `country` when there is one there.
    pub(crate) fn merchant_in<R: Rng>(
        &self,
        rng: &mut R,
        country: usize,
        category: Category,
    ) -> u32 {
        let local = &self.by_country_category[country][category.index()];
        let pool = if local.is_empty() {
            &self.by_category[category.index()]
        } else {
            local
        };
        // Every category has at least one merchant (the world needs >= 10 merchants).
        pool.choose(rng).copied().unwrap_or(0)
    }

    /// Any merchant of `category`.
    pub(crate) fn any_merchant<R: Rng>(&self, rng: &mut R, category: Category) -> u32 {
        self.by_category[category.index()]
            .choose(rng)
            .copied()
            .unwrap_or(0)
    }

    /// A country other than `not`, weighted by where fraud comes from.
    pub(crate) fn foreign_fraud_country<R: Rng>(&self, rng: &mut R, not: usize) -> usize {
        loop {
            let c = self.fraud_country.sample(rng);
            if c != not {
                return c;
            }
        }
    }

    /// A point near the centre of `country`.
    pub(crate) fn point_in<R: Rng>(rng: &mut R, country: usize) -> (f64, f64) {
        jitter(rng, &COUNTRIES[country], 1.5)
    }
}

/// Relative transaction intensity by local hour of day (fewer at night).
pub(crate) const HOURLY: [f64; 24] = [
    0.15, 0.08, 0.05, 0.04, 0.04, 0.08, 0.25, 0.55, 0.8, 0.9, 1.0, 1.1, 1.3, 1.2, 1.0, 1.0, 1.1,
    1.3, 1.4, 1.3, 1.1, 0.9, 0.6, 0.35,
];

/// Relative intensity by local weekday, Monday first (Friday/Saturday busy, Sunday quiet).
pub(crate) const WEEKDAY: [f64; 7] = [0.95, 0.95, 1.0, 1.0, 1.15, 1.2, 0.75];
