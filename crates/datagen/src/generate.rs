//! Traffic: legitimate spending, fraud episodes, labels and delivery faults.
//!
//! Legitimate traffic is a set of per-user inhomogeneous Poisson processes with intensity
//! `rate_u * rhythm(t)`. Conditioned on the total count `N`, such a process is exactly `N`
//! independent draws of (user ∝ `rate_u`, time ∝ `rhythm`), which is how it is sampled: no
//! per-user simulation loop, so a million transactions take well under a second.
//!
//! Each phase draws from its own ChaCha stream of the seed (world, legit traffic, fraud,
//! labels, faults), so e.g. turning on duplicates leaves the underlying traffic unchanged.

use std::collections::{BTreeMap, HashMap, HashSet};

use domain::convert::transaction_to_proto;
use domain::{AccountType, Channel, Currency, GeoPoint, Label, Transaction, UserProfile};
use proto::v1;
use rand::distr::Distribution;
use rand::distr::weighted::WeightedIndex;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Exp, LogNormal, Poisson};
use serde::Serialize;

use crate::GenConfig;
use crate::GenerateError;
use crate::world::{COUNTRIES, Category, HOURLY, WEEKDAY, World, WorldSpec};

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;
/// Legitimate labels: no chargeback within this window confirms the transaction.
pub const LEGIT_CONFIRMATION_MS: i64 = 35 * DAY_MS;
/// Fraud report delay: log-normal with this median...
pub const FRAUD_DELAY_MEDIAN_MS: i64 = 3 * DAY_MS;
/// ...clamped to `[FRAUD_DELAY_MIN_MS, FRAUD_DELAY_MAX_MS]`.
pub const FRAUD_DELAY_MIN_MS: i64 = HOUR_MS;
pub const FRAUD_DELAY_MAX_MS: i64 = 30 * DAY_MS;
const FRAUD_DELAY_SIGMA: f64 = 0.9;
const MAX_AMOUNT_EUR: f64 = 25_000.0;
/// A dataset is held in memory (about 0.5 KB per transaction).
const MAX_TRANSACTIONS: u64 = 50_000_000;

/// RNG streams of one seed, one per phase.
mod stream {
    pub(super) const WORLD: u64 = 1;
    pub(super) const LEGIT: u64 = 2;
    pub(super) const FRAUD: u64 = 3;
    pub(super) const LABELS: u64 = 4;
    pub(super) const FAULTS: u64 = 5;
    pub(super) const PROFILES: u64 = 6;
}

/// The fraud scenarios the generator plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FraudPattern {
    /// A fraudster logs in from a new device abroad and makes a short burst of unusually
    /// large online purchases and transfers.
    AccountTakeover,
    /// A stolen card number is tested with tiny online digital-goods purchases a minute or so
    /// apart, sometimes followed by one large purchase.
    CardTesting,
    /// A skimmed merchant: its customers' cards are cloned during a window and used days later
    /// elsewhere (ATM withdrawals and purchases abroad, online shopping).
    CompromisedMerchant,
}

impl FraudPattern {
    pub const ALL: [FraudPattern; 3] = [
        FraudPattern::AccountTakeover,
        FraudPattern::CardTesting,
        FraudPattern::CompromisedMerchant,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FraudPattern::AccountTakeover => "account_takeover",
            FraudPattern::CardTesting => "card_testing",
            FraudPattern::CompromisedMerchant => "compromised_merchant",
        }
    }

    /// Relative frequency of episodes.
    fn weight(self) -> f64 {
        match self {
            FraudPattern::AccountTakeover => 0.4,
            FraudPattern::CardTesting => 0.35,
            FraudPattern::CompromisedMerchant => 0.25,
        }
    }
}

/// A record that fails validation on purpose, and where it sits in the emitted stream.
#[derive(Debug, Clone, PartialEq)]
pub struct CorruptTransaction {
    /// Emitted just before `Dataset::transactions[emit_before]` (or at the end when equal to
    /// its length).
    pub emit_before: usize,
    /// The proto field path validation must name.
    pub expected_field: &'static str,
    pub message: v1::Transaction,
}

/// Counts of what was generated.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DatasetStats {
    /// Distinct valid transactions.
    pub transactions: u64,
    pub legit: u64,
    pub fraud: u64,
    /// Fraudulent transactions by pattern.
    pub fraud_by_pattern: BTreeMap<FraudPattern, u64>,
    /// Fraud episodes (bursts, victims) by pattern.
    pub episodes_by_pattern: BTreeMap<FraudPattern, u64>,
    /// Compromised-merchant visits: legitimate transactions where a card got skimmed.
    pub skimmed_visits: u64,
    pub duplicates: u64,
    pub late: u64,
    pub corrupt: u64,
    pub fraud_labels: u64,
    pub legit_labels: u64,
    pub profiles: u64,
    pub start_ms: i64,
    pub end_ms: i64,
}

/// A generated dataset.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Valid transactions in emission order: mostly by event time, with late events displaced
    /// and duplicates (same id, identical content) re-emitted shortly after the original.
    pub transactions: Vec<Transaction>,
    /// One label per fraudulent transaction and per sampled legitimate one, ordered by
    /// `reported_at_ms`.
    pub labels: Vec<Label>,
    /// Records failing validation, ordered by `emit_before`. They exist only as wire messages.
    pub corrupt: Vec<CorruptTransaction>,
    /// Ground truth: the pattern of every fraudulent transaction id.
    pub fraud_patterns: HashMap<String, FraudPattern>,
    /// Profile versions: one per user (valid from the account's opening), plus a credit-band
    /// change inside the window for about one user in ten; ordered by `valid_from_ms`.
    pub profiles: Vec<UserProfile>,
    pub stats: DatasetStats,
}

/// One record of the emitted stream.
#[derive(Debug, Clone, Copy)]
pub enum WireRecord<'a> {
    Valid(&'a Transaction),
    Corrupt(&'a CorruptTransaction),
}

impl WireRecord<'_> {
    pub fn to_proto(self) -> v1::Transaction {
        match self {
            WireRecord::Valid(t) => transaction_to_proto(t),
            WireRecord::Corrupt(c) => c.message.clone(),
        }
    }
}

impl Dataset {
    /// What had happened before `t`: transactions dated before it, labels reported before
    /// it, profile versions valid from before it (the history of a history/live split).
    /// `stats` still describe the whole generated period.
    pub fn before(mut self, t: i64) -> Dataset {
        self.transactions.retain(|x| x.event_time_ms < t);
        self.labels.retain(|l| l.reported_at_ms < t);
        self.profiles.retain(|p| p.valid_from_ms < t);
        self.corrupt.clear();
        self
    }

    /// Every record as a client would send it: valid ones (with duplicates) and corrupt ones
    /// interleaved.
    pub fn wire_stream(&self) -> impl Iterator<Item = WireRecord<'_>> + '_ {
        let mut corrupt = self.corrupt.iter().peekable();
        let mut valid = self.transactions.iter();
        std::iter::from_fn(move || {
            if let Some(c) =
                corrupt.next_if(|c| c.emit_before <= self.transactions.len() - valid.len())
            {
                return Some(WireRecord::Corrupt(c));
            }
            valid
                .next()
                .map(WireRecord::Valid)
                .or_else(|| corrupt.next().map(WireRecord::Corrupt))
        })
    }

    /// Distinct valid transactions (first emission of each id), in emission order: what
    /// ingest would accept and publish.
    pub fn unique_transactions(&self) -> impl Iterator<Item = &Transaction> + '_ {
        let mut seen = HashSet::with_capacity(self.stats.transactions as usize);
        self.transactions
            .iter()
            .filter(move |t| seen.insert(t.transaction_id.as_str()))
    }
}

/// A transaction before it has an id, with its ground truth.
#[derive(Debug, Clone)]
struct Draft {
    time_ms: i64,
    user: u32,
    merchant: u32,
    amount_minor: i64,
    channel: Channel,
    device: String,
    country: usize,
    geo: Option<(f64, f64)>,
    fraud: Option<FraudPattern>,
    /// For fraud: when the victim reports it (already clamped).
    reported_at_ms: i64,
}

/// Samples event times with the daily and weekly rhythm of a country's local time.
#[derive(Debug)]
struct Rhythm {
    start_ms: i64,
    /// Cumulative weight of each hour of the span, per country.
    cumulative: Vec<Vec<f64>>,
}

impl Rhythm {
    fn new(start_ms: i64, end_ms: i64) -> Rhythm {
        let hours = ((end_ms - start_ms) / HOUR_MS).max(1);
        let cumulative = COUNTRIES
            .iter()
            .map(|c| {
                let mut total = 0.0;
                (0..hours)
                    .map(|h| {
                        let local = start_ms + h * HOUR_MS + c.utc_offset_min * MINUTE_MS;
                        let hour = local.div_euclid(HOUR_MS).rem_euclid(24) as usize;
                        // 1970-01-01 was a Thursday: Monday = 0.
                        let weekday = (local.div_euclid(DAY_MS) + 3).rem_euclid(7) as usize;
                        total += HOURLY[hour] * WEEKDAY[weekday];
                        total
                    })
                    .collect()
            })
            .collect();
        Rhythm {
            start_ms,
            cumulative,
        }
    }

    fn sample<R: Rng>(&self, rng: &mut R, country: usize) -> i64 {
        let cum = &self.cumulative[country];
        let total = cum.last().copied().unwrap_or(0.0);
        let x = rng.random::<f64>() * total;
        let hour = cum.partition_point(|&c| c <= x).min(cum.len() - 1);
        self.start_ms + hour as i64 * HOUR_MS + rng.random_range(0..HOUR_MS)
    }
}

fn to_minor(eur: f64) -> i64 {
    ((eur.clamp(0.01, MAX_AMOUNT_EUR) * 100.0).round() as i64).max(1)
}

fn lognormal(median: f64, sigma: f64) -> Result<LogNormal<f64>, GenerateError> {
    LogNormal::new(median.ln(), sigma)
        .map_err(|e| GenerateError::Internal(format!("log-normal({median}, {sigma}): {e}")))
}

/// Per-category amount distributions (EUR, before the user's spend scale).
struct Amounts {
    by_category: Vec<LogNormal<f64>>,
}

impl Amounts {
    fn new() -> Result<Amounts, GenerateError> {
        let by_category = Category::ALL
            .iter()
            .map(|c| {
                let (median, sigma) = c.amount_profile();
                lognormal(median, sigma)
            })
            .collect::<Result<_, _>>()?;
        Ok(Amounts { by_category })
    }

    /// A legitimate amount for `category`, scaled by `scale`, in minor units.
    fn sample<R: Rng>(&self, rng: &mut R, category: Category, scale: f64) -> i64 {
        let eur = self.by_category[category.index()].sample(rng) * scale;
        if category == Category::Atm {
            // Cash comes in multiples of 10.
            return to_minor(((eur / 10.0).round() * 10.0).max(10.0));
        }
        to_minor(eur.max(0.5))
    }
}

struct Ctx<'a> {
    world: &'a World,
    amounts: Amounts,
    start_ms: i64,
    end_ms: i64,
}

impl Ctx<'_> {
    fn legit<R: Rng>(&self, rng: &mut R, user_idx: u32, time_ms: i64, category: Category) -> Draft {
        let world = self.world;
        let user = &world.users[user_idx as usize];
        let trip = user
            .trip
            .filter(|t| (t.from_ms..t.to_ms).contains(&time_ms));
        let here = trip.map_or(user.home, |t| t.country);
        let merchant = if category.online_only() {
            match user.usual[category.index()].choose(rng) {
                Some(&m) if rng.random_bool(0.8) => m,
                _ => world.any_merchant(rng, category),
            }
        } else if trip.is_some() {
            world.merchant_in(rng, here, category)
        } else {
            match user.usual[category.index()].choose(rng) {
                Some(&m) if rng.random_bool(0.75) => m,
                _ => world.merchant_in(rng, here, category),
            }
        };
        let channel = match category {
            Category::Atm => Channel::Atm,
            Category::Transfer => Channel::Transfer,
            Category::Marketplace | Category::DigitalGoods => Channel::Online,
            Category::Travel if rng.random_bool(0.7) => Channel::Online,
            Category::Electronics if rng.random_bool(0.4) => Channel::Online,
            Category::Restaurant if rng.random_bool(0.08) => Channel::Online,
            _ => Channel::CardPresent,
        };
        let (country, geo, device) = match channel {
            Channel::CardPresent | Channel::Atm => {
                let m = &world.merchants[merchant as usize];
                (m.country, Some((m.lat, m.lon)), String::new())
            }
            Channel::Online | Channel::Transfer => {
                let geo = if !rng.random_bool(0.85) {
                    None
                } else if trip.is_some() {
                    Some(World::point_in(rng, here))
                } else {
                    Some((user.lat, user.lon))
                };
                let device = if channel == Channel::Transfer && rng.random_bool(0.2) {
                    String::new()
                } else if rng.random_bool(0.003) {
                    // A new phone or a borrowed laptop: legit traffic has new devices too.
                    format!("d-{}-n{}", &user.id[2..], rng.random_range(0..1_000u32))
                } else {
                    user.devices.choose(rng).cloned().unwrap_or_default()
                };
                (here, geo, device)
            }
        };
        Draft {
            time_ms,
            user: user_idx,
            merchant,
            amount_minor: self.amounts.sample(rng, category, user.spend_scale),
            channel,
            device,
            country,
            geo,
            fraud: None,
            reported_at_ms: 0,
        }
    }

    /// When a victim reports an episode that started at `first_ms`.
    fn report_time<R: Rng>(&self, rng: &mut R, first_ms: i64, delay: &LogNormal<f64>) -> i64 {
        first_ms + delay.sample(rng) as i64
    }
}

impl Draft {
    /// Marks a draft fraudulent, reported at `reported_ms` (clamped to the allowed delays).
    fn into_fraud(mut self, pattern: FraudPattern, reported_ms: i64) -> Draft {
        self.fraud = Some(pattern);
        self.reported_at_ms = reported_ms.clamp(
            self.time_ms + FRAUD_DELAY_MIN_MS,
            self.time_ms + FRAUD_DELAY_MAX_MS,
        );
        self
    }
}

/// Appends fraud drafts until `budget` fraudulent transactions exist.
struct FraudPlayer<'a, R> {
    ctx: &'a Ctx<'a>,
    rng: R,
    delay: LogNormal<f64>,
    gap: Exp<f64>,
    budget: u64,
    out: Vec<Draft>,
    stats: DatasetStats,
}

impl<R: Rng> FraudPlayer<'_, R> {
    fn push(&mut self, d: Draft) -> bool {
        if self.budget == 0 || d.time_ms >= self.ctx.end_ms {
            return false;
        }
        if let Some(p) = d.fraud {
            self.budget -= 1;
            *self.stats.fraud_by_pattern.entry(p).or_default() += 1;
        } else {
            self.stats.skimmed_visits += 1;
        }
        self.out.push(d);
        true
    }

    fn episode_start(&mut self, tail_ms: i64) -> i64 {
        let latest = (self.ctx.end_ms - tail_ms).max(self.ctx.start_ms + 1);
        self.rng.random_range(self.ctx.start_ms..latest)
    }

    fn account_takeover(&mut self, episode: u64) {
        let world = self.ctx.world;
        let victim = self.rng.random_range(0..world.users.len() as u32);
        let user = &world.users[victim as usize];
        let attacker = world.foreign_fraud_country(&mut self.rng, user.home);
        let geo = World::point_in(&mut self.rng, attacker);
        let device = format!("d-ato-{episode:06}");
        let mut t = self.episode_start(3 * HOUR_MS);
        let reported = self.ctx.report_time(&mut self.rng, t, &self.delay);
        let mix = [
            (Category::Electronics, 0.35),
            (Category::Marketplace, 0.25),
            (Category::Transfer, 0.25),
            (Category::Jewellery, 0.15),
        ];
        let Ok(boost) = lognormal(4.0, 0.5) else {
            return;
        };
        for k in 0..self.rng.random_range(2..=6) {
            if k > 0 {
                t += self.gap.sample(&mut self.rng) as i64;
            }
            let Ok(&(category, _)) = mix.choose_weighted(&mut self.rng, |c| c.1) else {
                return;
            };
            let merchant = world.any_merchant(&mut self.rng, category);
            let (median, _) = category.amount_profile();
            let eur = median * user.spend_scale * boost.sample(&mut self.rng);
            let channel = if category == Category::Transfer {
                Channel::Transfer
            } else {
                Channel::Online
            };
            let d = Draft {
                time_ms: t,
                user: victim,
                merchant,
                amount_minor: to_minor(eur),
                channel,
                device: device.clone(),
                country: attacker,
                geo: Some(geo),
                fraud: None,
                reported_at_ms: 0,
            }
            .into_fraud(
                FraudPattern::AccountTakeover,
                reported + self.rng.random_range(0..2 * HOUR_MS),
            );
            if !self.push(d) {
                return;
            }
        }
    }

    fn card_testing(&mut self, episode: u64) {
        let world = self.ctx.world;
        let victim = self.rng.random_range(0..world.users.len() as u32);
        let user = &world.users[victim as usize];
        let tester = if self.rng.random_bool(0.6) {
            world.foreign_fraud_country(&mut self.rng, user.home)
        } else {
            user.home
        };
        let geo = World::point_in(&mut self.rng, tester);
        let device = format!("d-ct-{episode:06}");
        let mut t = self.episode_start(2 * HOUR_MS);
        let reported = self.ctx.report_time(&mut self.rng, t, &self.delay);
        let mut merchant = world.any_merchant(&mut self.rng, Category::DigitalGoods);
        for k in 0..self.rng.random_range(3..=12) {
            if k > 0 {
                t += self.rng.random_range(10_000..120_000);
            }
            if self.rng.random_bool(0.15) {
                merchant = world.any_merchant(&mut self.rng, Category::DigitalGoods);
            }
            let d = Draft {
                time_ms: t,
                user: victim,
                merchant,
                amount_minor: self.rng.random_range(50..=200),
                channel: Channel::Online,
                device: device.clone(),
                country: tester,
                geo: Some(geo),
                fraud: None,
                reported_at_ms: 0,
            }
            .into_fraud(FraudPattern::CardTesting, reported);
            if !self.push(d) {
                return;
            }
        }
        if self.rng.random_bool(0.5) {
            let category = if self.rng.random_bool(0.5) {
                Category::Electronics
            } else {
                Category::Marketplace
            };
            t += self.rng.random_range(5 * MINUTE_MS..60 * MINUTE_MS);
            let merchant = world.any_merchant(&mut self.rng, category);
            let d = Draft {
                time_ms: t,
                user: victim,
                merchant,
                amount_minor: self.rng.random_range(30_000..=200_000),
                channel: Channel::Online,
                device,
                country: tester,
                geo: Some(geo),
                fraud: None,
                reported_at_ms: 0,
            }
            .into_fraud(FraudPattern::CardTesting, reported);
            self.push(d);
        }
    }

    fn compromised_merchant(&mut self, episode: u64) {
        let world = self.ctx.world;
        let span = self.ctx.end_ms - self.ctx.start_ms;
        let category = *[Category::Grocery, Category::Fuel, Category::Restaurant]
            .choose(&mut self.rng)
            .unwrap_or(&Category::Grocery);
        let merchant_idx = world.any_merchant(&mut self.rng, category);
        let merchant = &world.merchants[merchant_idx as usize];
        let window_from = self.ctx.start_ms + self.rng.random_range(0..=span * 6 / 10);
        let window_to =
            (window_from + self.rng.random_range(2 * DAY_MS..=7 * DAY_MS)).min(self.ctx.end_ms);
        let local = &world.users_by_country[merchant.country];
        let all: Vec<u32>;
        let pool = if local.is_empty() {
            all = (0..world.users.len() as u32).collect();
            &all
        } else {
            local
        };
        let n = self.rng.random_range(3..=8usize).min(pool.len());
        let victims: Vec<u32> = pool.choose_multiple(&mut self.rng, n).copied().collect();
        for (v, victim) in victims.into_iter().enumerate() {
            if self.budget == 0 {
                return;
            }
            let user = &world.users[victim as usize];
            let visit_ms = self
                .rng
                .random_range(window_from..window_to.max(window_from + 1));
            let visit = Draft {
                time_ms: visit_ms,
                user: victim,
                merchant: merchant_idx,
                amount_minor: self
                    .ctx
                    .amounts
                    .sample(&mut self.rng, category, user.spend_scale),
                channel: Channel::CardPresent,
                device: String::new(),
                country: merchant.country,
                geo: Some((merchant.lat, merchant.lon)),
                fraud: None,
                reported_at_ms: 0,
            };
            if !self.push(visit) {
                continue;
            }
            let abroad = world.foreign_fraud_country(&mut self.rng, user.home);
            let mut t = visit_ms + self.rng.random_range(12 * HOUR_MS..10 * DAY_MS);
            let reported = self.ctx.report_time(&mut self.rng, t, &self.delay);
            for _ in 0..self.rng.random_range(1..=3) {
                let roll = self.rng.random::<f64>();
                let (channel, category, device, country, geo) = if roll < 0.5 {
                    (Channel::Atm, Category::Atm, String::new(), abroad, None)
                } else if roll < 0.8 {
                    let c = if self.rng.random_bool(0.6) {
                        Category::Electronics
                    } else {
                        Category::Jewellery
                    };
                    (Channel::CardPresent, c, String::new(), abroad, None)
                } else {
                    let geo = World::point_in(&mut self.rng, abroad);
                    let device = format!("d-cm-{episode:06}-{v}");
                    (
                        Channel::Online,
                        Category::Marketplace,
                        device,
                        abroad,
                        Some(geo),
                    )
                };
                let target = if channel == Channel::Online {
                    world.any_merchant(&mut self.rng, category)
                } else {
                    world.merchant_in(&mut self.rng, country, category)
                };
                let m = &world.merchants[target as usize];
                let (country, geo) = if channel == Channel::Online {
                    (country, geo)
                } else {
                    (m.country, Some((m.lat, m.lon)))
                };
                let amount = if category == Category::Atm {
                    self.rng.random_range(20..=50i64) * 1_000
                } else {
                    let (median, _) = category.amount_profile();
                    to_minor(median * self.rng.random_range(1.5..4.0))
                };
                let d = Draft {
                    time_ms: t,
                    user: victim,
                    merchant: target,
                    amount_minor: amount,
                    channel,
                    device,
                    country,
                    geo,
                    fraud: None,
                    reported_at_ms: 0,
                }
                .into_fraud(FraudPattern::CompromisedMerchant, reported);
                if !self.push(d) {
                    break;
                }
                t += self.gap.sample(&mut self.rng) as i64 * 8;
            }
        }
    }
}

fn rng_for(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// Generates a dataset. Deterministic: the same config gives the same dataset.
pub fn generate(config: &GenConfig) -> Result<Dataset, GenerateError> {
    config.validate()?;
    let start_ms = config.start_ms;
    let end_ms = config.end_ms();
    let world = World::generate(
        WorldSpec {
            users: config.users,
            merchants: config.merchants,
            start_ms,
            end_ms,
        },
        &mut rng_for(config.seed, stream::WORLD),
    )?;
    let ctx = Ctx {
        world: &world,
        amounts: Amounts::new()?,
        start_ms,
        end_ms,
    };

    let mut legit_rng = rng_for(config.seed, stream::LEGIT);
    let total = match config.transactions {
        Some(n) => n,
        None => {
            let mean: f64 =
                world.users.iter().map(|u| u.daily_rate).sum::<f64>() * f64::from(config.days);
            let poisson = Poisson::new(mean)
                .map_err(|e| GenerateError::Internal(format!("poisson({mean}): {e}")))?;
            (poisson.sample(&mut legit_rng) as u64).max(1)
        }
    };
    if total > MAX_TRANSACTIONS {
        return Err(GenerateError::InvalidConfig(format!(
            "{total} transactions do not fit in memory (at most {MAX_TRANSACTIONS}); \
             use fewer users or days, or generate several seeds"
        )));
    }
    let fraud_target = (total as f64 * config.fraud_rate).round() as u64;

    // Fraud first: its skimmed visits are legitimate transactions taken from the legit budget.
    let mut player = FraudPlayer {
        ctx: &ctx,
        rng: rng_for(config.seed, stream::FRAUD),
        delay: lognormal(FRAUD_DELAY_MEDIAN_MS as f64, FRAUD_DELAY_SIGMA)?,
        gap: Exp::new(1.0 / (12 * MINUTE_MS) as f64)
            .map_err(|e| GenerateError::Internal(format!("exp: {e}")))?,
        budget: fraud_target,
        out: Vec::new(),
        stats: DatasetStats::default(),
    };
    let pattern_mix = WeightedIndex::new(FraudPattern::ALL.iter().map(|p| p.weight()))
        .map_err(|e| GenerateError::Internal(format!("pattern weights: {e}")))?;
    let mut episode = 0u64;
    while player.budget > 0 {
        // The first three episodes play each pattern once, so that every one is present.
        let pattern = match FraudPattern::ALL.get(episode as usize) {
            Some(p) => *p,
            None => FraudPattern::ALL[pattern_mix.sample(&mut player.rng)],
        };
        *player.stats.episodes_by_pattern.entry(pattern).or_default() += 1;
        match pattern {
            FraudPattern::AccountTakeover => player.account_takeover(episode),
            FraudPattern::CardTesting => player.card_testing(episode),
            FraudPattern::CompromisedMerchant => player.compromised_merchant(episode),
        }
        episode += 1;
    }
    let mut drafts = player.out;
    let mut stats = player.stats;

    let legit_count = total.saturating_sub(drafts.len() as u64);
    let rhythm = Rhythm::new(start_ms, end_ms);
    let user_mix = WeightedIndex::new(world.users.iter().map(|u| u.daily_rate))
        .map_err(|e| GenerateError::Internal(format!("user weights: {e}")))?;
    drafts.reserve(legit_count as usize);
    for _ in 0..legit_count {
        let user = user_mix.sample(&mut legit_rng) as u32;
        let time = rhythm.sample(&mut legit_rng, world.users[user as usize].home);
        let category = Category::ALL[world.category_mix.sample(&mut legit_rng)];
        drafts.push(ctx.legit(&mut legit_rng, user, time, category));
    }
    // Stable: equal times keep generation order.
    // Sort a permutation, not the (large) drafts. Stable: equal times keep generation order.
    let mut order: Vec<u32> = (0..drafts.len() as u32).collect();
    order.sort_by_key(|&i| drafts[i as usize].time_ms);

    let (transactions, labels, fraud_patterns) =
        materialise(config, &world, drafts, &order, &mut stats)?;
    let (transactions, corrupt) = emit(config, transactions, &mut stats);
    let profiles = profiles(config, &world);
    stats.profiles = profiles.len() as u64;
    stats.start_ms = start_ms;
    stats.end_ms = end_ms;
    Ok(Dataset {
        transactions,
        labels,
        corrupt,
        fraud_patterns,
        profiles,
        stats,
    })
}

/// 2015-01-01T00:00:00Z: accounts open from here over the next ten years, whatever the
/// window, so two windows of one seed (history, then live) agree on every user's profile.
const ACCOUNTS_FROM_MS: i64 = 1_420_070_400_000;
const ACCOUNT_SPAN_DAYS: i64 = 3_650;

/// The user dimension: each user's profile valid from the account's opening, and for about
/// one user in ten a credit-band change at a time inside the window.
fn profiles(config: &GenConfig, world: &World) -> Vec<UserProfile> {
    let mut rng = rng_for(config.seed, stream::PROFILES);
    let (start_ms, end_ms) = (config.start_ms, config.end_ms());
    let mut out = Vec::with_capacity(world.users.len() + world.users.len() / 8);
    for user in &world.users {
        let opened = ACCOUNTS_FROM_MS + rng.random_range(0..ACCOUNT_SPAN_DAYS) * DAY_MS;
        let account_type = match rng.random::<f64>() {
            x if x < 0.82 => AccountType::Personal,
            x if x < 0.94 => AccountType::Business,
            _ => AccountType::Student,
        };
        let band = |rng: &mut ChaCha8Rng| rng.random_range(1..=5u8);
        let first = UserProfile {
            user_id: user.id.clone(),
            account_opened_ms: opened,
            account_type,
            home_country: COUNTRIES[user.home].code.to_owned(),
            credit_band: band(&mut rng),
            income_band: band(&mut rng),
            valid_from_ms: opened,
        };
        // Drawn for every user so the stream does not depend on the window.
        let (changes, at, new_band) = (
            rng.random::<f64>() < 0.1,
            rng.random_range(start_ms..end_ms.max(start_ms + 1)),
            band(&mut rng),
        );
        if changes {
            out.push(UserProfile {
                credit_band: new_band,
                valid_from_ms: at,
                ..first.clone()
            });
        }
        out.push(first);
    }
    out.sort_by_key(|p| p.valid_from_ms);
    out
}

type Materialised = (Vec<Transaction>, Vec<Label>, HashMap<String, FraudPattern>);

/// Gives drafts their ids and turns them into domain transactions and labels.
fn materialise(
    config: &GenConfig,
    world: &World,
    mut drafts: Vec<Draft>,
    order: &[u32],
    stats: &mut DatasetStats,
) -> Result<Materialised, GenerateError> {
    let eur = Currency::parse("EUR")
        .ok_or_else(|| GenerateError::Internal("EUR is not a currency".into()))?;
    let mut rng = rng_for(config.seed, stream::LABELS);
    let mut transactions = Vec::with_capacity(drafts.len());
    let mut labels = Vec::with_capacity(drafts.len());
    let mut patterns = HashMap::new();
    for (i, &at) in order.iter().enumerate() {
        let d = &mut drafts[at as usize];
        let user = &world.users[d.user as usize];
        let merchant = &world.merchants[d.merchant as usize];
        let t = Transaction {
            transaction_id: format!("tx-{:x}-{i:08}", config.seed),
            user_id: user.id.clone(),
            account_id: user.account_id.clone(),
            amount_minor: d.amount_minor,
            currency: eur,
            merchant_id: merchant.id.clone(),
            merchant_category: merchant.category.mcc().to_owned(),
            channel: d.channel,
            device_id: std::mem::take(&mut d.device),
            country: COUNTRIES[d.country].code.to_owned(),
            geo: d.geo.map(|(lat, lon)| GeoPoint { lat, lon }),
            event_time_ms: d.time_ms,
        };
        let reported = match d.fraud {
            Some(p) => {
                patterns.insert(t.transaction_id.clone(), p);
                stats.fraud += 1;
                stats.fraud_labels += 1;
                Some(d.reported_at_ms)
            }
            None => {
                stats.legit += 1;
                // Draw even at rate 1 so the stream does not depend on the rate's value.
                let sampled = rng.random::<f64>() < config.legit_label_rate;
                sampled.then(|| {
                    stats.legit_labels += 1;
                    d.time_ms + LEGIT_CONFIRMATION_MS
                })
            }
        };
        if let Some(reported_at_ms) = reported {
            labels.push(Label {
                transaction_id: t.transaction_id.clone(),
                user_id: t.user_id.clone(),
                is_fraud: d.fraud.is_some(),
                reported_at_ms,
                event_time_ms: t.event_time_ms,
                merchant_id: t.merchant_id.clone(),
            });
        }
        transactions.push(t);
    }
    stats.transactions = transactions.len() as u64;
    labels.sort_by_key(|l| l.reported_at_ms);
    Ok((transactions, labels, patterns))
}

/// Ways a corrupt record breaks validation, with the field validation names.
const CORRUPTIONS: [&str; 13] = [
    "transaction_id",
    "user_id",
    "amount",
    "amount.minor_units",
    "amount.currency",
    "merchant_id",
    "merchant_category",
    "channel",
    "country",
    "geo.lat",
    "geo.lon",
    "event_time",
    "amount.minor_units",
];

fn corrupt<R: Rng>(rng: &mut R, t: &Transaction, id: String) -> CorruptTransaction {
    let mut m = transaction_to_proto(t);
    m.transaction_id = id;
    let field = CORRUPTIONS[rng.random_range(0..CORRUPTIONS.len())];
    match field {
        "transaction_id" => m.transaction_id.clear(),
        "user_id" => m.user_id.clear(),
        "amount" => m.amount = None,
        "amount.minor_units" => {
            if let Some(a) = m.amount.as_mut() {
                a.minor_units = -a.minor_units;
            }
        }
        "amount.currency" => {
            if let Some(a) = m.amount.as_mut() {
                a.currency = ["euro", "EU", "€", ""][rng.random_range(0..4)].into();
            }
        }
        "merchant_id" => m.merchant_id.clear(),
        "merchant_category" => {
            m.merchant_category = ["54a1", "541", ""][rng.random_range(0..3)].into()
        }
        "channel" => m.channel = [0, 42][rng.random_range(0..2)],
        "country" => m.country = ["France", "fr", "", "F1"][rng.random_range(0..4)].into(),
        "geo.lat" => {
            m.geo = Some(v1::GeoPoint {
                lat: 123.4,
                lon: 2.35,
            })
        }
        "geo.lon" => {
            m.geo = Some(v1::GeoPoint {
                lat: 48.85,
                lon: -200.0,
            })
        }
        _ => {
            m.event_time = if rng.random_bool(0.5) {
                None
            } else {
                Some(proto::time::from_unix_ms(0))
            }
        }
    }
    CorruptTransaction {
        emit_before: 0,
        expected_field: field,
        message: m,
    }
}

/// Orders transactions for emission and adds the faults: late events, duplicates, corrupt
/// records.
fn emit(
    config: &GenConfig,
    unique: Vec<Transaction>,
    stats: &mut DatasetStats,
) -> (Vec<Transaction>, Vec<CorruptTransaction>) {
    enum Slot {
        Valid(usize),
        Corrupt(usize),
    }
    let mut rng = rng_for(config.seed, stream::FAULTS);
    let mut slots: Vec<(i64, Slot)> = Vec::with_capacity(unique.len());
    // Emissions left per transaction: the last one moves the value, earlier ones clone it.
    let mut left = vec![1u8; unique.len()];
    let mut corrupt_records = Vec::new();
    for (i, t) in unique.iter().enumerate() {
        let mut emit_ms = t.event_time_ms;
        if rng.random::<f64>() < config.late_rate {
            emit_ms += rng.random_range(HOUR_MS..=12 * HOUR_MS);
            stats.late += 1;
        }
        slots.push((emit_ms, Slot::Valid(i)));
        if rng.random::<f64>() < config.duplicate_rate {
            slots.push((
                emit_ms + rng.random_range(1_000..=30 * MINUTE_MS),
                Slot::Valid(i),
            ));
            stats.duplicates += 1;
            left[i] += 1;
        }
        if rng.random::<f64>() < config.corrupt_rate {
            let id = format!("tx-{:x}-c{:08}", config.seed, corrupt_records.len());
            slots.push((emit_ms, Slot::Corrupt(corrupt_records.len())));
            corrupt_records.push(corrupt(&mut rng, t, id));
        }
    }
    stats.corrupt = corrupt_records.len() as u64;
    slots.sort_by_key(|s| s.0);
    let mut unique: Vec<Option<Transaction>> = unique.into_iter().map(Some).collect();
    let mut transactions = Vec::with_capacity(slots.len() - corrupt_records.len());
    let mut ordered_corrupt = Vec::with_capacity(corrupt_records.len());
    let mut corrupt_records: Vec<Option<CorruptTransaction>> =
        corrupt_records.into_iter().map(Some).collect();
    for (_, slot) in slots {
        match slot {
            Slot::Valid(i) => {
                left[i] -= 1;
                let t = if left[i] == 0 {
                    unique[i].take()
                } else {
                    unique[i].clone()
                };
                transactions.extend(t);
            }
            Slot::Corrupt(k) => {
                if let Some(mut c) = corrupt_records[k].take() {
                    c.emit_before = transactions.len();
                    ordered_corrupt.push(c);
                }
            }
        }
    }
    (transactions, ordered_corrupt)
}
