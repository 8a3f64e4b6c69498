//! Per-user state: tiled windows, the last-seen sets, recent times and ids.
//!
//! Everything here is bounded whatever the user's event rate: one ring of at most
//! `tiles + 1` tiles per window, LRU lists of devices, merchants and countries, the last
//! [`RECENT_TIMES`] event times and the 64-bit hashes of the last [`RECENT_IDS`] transaction
//! ids.

use crate::schema::USER_WINDOWS;
use crate::tiles::{UserAgg, UserPoint, UserRing};
use domain::{Channel, GeoPoint, Transaction};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::hash::Hasher as _;

const MAX_DEVICES: usize = 16;
const MAX_MERCHANTS: usize = 64;
const MAX_COUNTRIES: usize = 16;
/// Transaction ids remembered for de-duplication (independent of the windows).
pub(crate) const RECENT_IDS: usize = 512;
/// Event times remembered for "seconds since the previous transaction".
pub(crate) const RECENT_TIMES: usize = 16;

/// A value last seen at a time (LRU entry). The value is kept as its 64-bit hash
/// ([`id_hash`]): the features only ask "seen before?" and "how many distinct", and
/// comparing integers held inline is what keeps these scans off the allocator and out of
/// cache misses (a `String` per entry was a pointer chase per comparison).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Seen {
    value: u64,
    /// Latest event time this value was seen at.
    at_ms: i64,
}

/// Where and when the user's latest located transaction happened.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct Located {
    pub(crate) at_ms: i64,
    pub(crate) lat: f64,
    pub(crate) lon: f64,
}

/// Everything the user features need to know about one user.
///
/// Serialisable: the feature-service stores it in Redis, one value per user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserState {
    /// One ring per [`USER_WINDOWS`] entry.
    rings: Vec<UserRing>,
    /// The latest event time folded in (the windows' "latest" mark). Only moves forward.
    latest_ms: Option<i64>,
    /// Most recently folded first out (push back, pop front).
    recent_times: VecDeque<i64>,
    devices: VecDeque<Seen>,
    merchants: VecDeque<Seen>,
    countries: VecDeque<Seen>,
    located: Option<Located>,
    /// FNV-1a 64 of the last transaction ids (see [`id_hash`]).
    recent_ids: VecDeque<u64>,
    transactions_seen: u64,
    /// Events older than the longest window at the time they were folded.
    too_late: u64,
}

impl Default for UserState {
    fn default() -> Self {
        UserState {
            rings: vec![UserRing::default(); USER_WINDOWS.len()],
            latest_ms: None,
            recent_times: VecDeque::new(),
            devices: VecDeque::new(),
            merchants: VecDeque::new(),
            countries: VecDeque::new(),
            located: None,
            recent_ids: VecDeque::new(),
            transactions_seen: 0,
            too_late: 0,
        }
    }
}

impl UserState {
    /// Number of distinct transactions folded into this state.
    pub fn transactions_seen(&self) -> u64 {
        self.transactions_seen
    }

    /// Event time of the latest transaction folded in.
    pub fn last_event_ms(&self) -> Option<i64> {
        self.latest_ms
    }

    /// Transactions folded in that were already older than every window.
    pub fn too_late(&self) -> u64 {
        self.too_late
    }

    /// True if this transaction id has already been folded in (among the last 512).
    pub fn has_seen(&self, transaction_id: &str) -> bool {
        let h = id_hash(transaction_id);
        self.recent_ids.contains(&h)
    }

    /// Aggregates of `USER_WINDOWS[w]` for an event at `t`.
    pub(crate) fn aggregate(&self, w: usize, t: i64) -> UserAgg {
        self.rings
            .get(w)
            .map(|r| r.aggregate(&USER_WINDOWS[w], t))
            .unwrap_or_default()
    }

    /// The latest folded event time at or before `t` among the recent ones.
    pub(crate) fn previous_before(&self, t: i64) -> Option<i64> {
        self.recent_times.iter().copied().filter(|&x| x <= t).max()
    }

    pub(crate) fn knows_device(&self, device: &str) -> bool {
        let h = id_hash(device);
        self.devices.iter().any(|s| s.value == h)
    }

    pub(crate) fn knows_merchant(&self, merchant: &str) -> bool {
        let h = id_hash(merchant);
        self.merchants.iter().any(|s| s.value == h)
    }

    pub(crate) fn distinct_devices(&self, from_excl: i64, to_incl: i64) -> usize {
        count_in(&self.devices, from_excl, to_incl)
    }

    pub(crate) fn distinct_countries(&self, from_excl: i64, to_incl: i64) -> usize {
        count_in(&self.countries, from_excl, to_incl)
    }

    pub(crate) fn located(&self) -> Option<Located> {
        self.located
    }

    /// Adds the transaction; `false` (and no change) if its id was already folded in.
    pub(crate) fn fold(&mut self, txn: &Transaction) -> bool {
        let h = id_hash(&txn.transaction_id);
        if self.recent_ids.contains(&h) {
            return false;
        }
        push_bounded(&mut self.recent_ids, h, RECENT_IDS);
        self.transactions_seen += 1;
        let t = txn.event_time_ms;
        let latest = self.latest_ms.map_or(t, |l| l.max(t));
        self.latest_ms = Some(latest);
        let longest = &USER_WINDOWS[USER_WINDOWS.len() - 1];
        if longest.tile_of(t) < longest.keep_from(longest.tile_of(latest)) {
            // Older than every window: it counts as seen (and for de-duplication) only.
            self.too_late += 1;
            return true;
        }
        let point = UserPoint {
            units: crate::amount_units(txn),
            major: txn.amount_major(),
            atm: txn.channel == Channel::Atm,
        };
        if self.rings.len() != USER_WINDOWS.len() {
            self.rings.resize(USER_WINDOWS.len(), UserRing::default());
        }
        for (ring, spec) in self.rings.iter_mut().zip(USER_WINDOWS.iter()) {
            ring.add(spec, t, latest, point);
        }
        push_bounded(&mut self.recent_times, t, RECENT_TIMES);
        if !txn.device_id.is_empty() {
            touch(&mut self.devices, &txn.device_id, t, MAX_DEVICES);
        }
        touch(&mut self.merchants, &txn.merchant_id, t, MAX_MERCHANTS);
        touch(&mut self.countries, &txn.country, t, MAX_COUNTRIES);
        if let Some(GeoPoint { lat, lon }) = txn.geo
            && self.located.is_none_or(|l| l.at_ms <= t)
        {
            self.located = Some(Located { at_ms: t, lat, lon });
        }
        true
    }

    /// Tiles held, for state-size measurements.
    pub fn tiles_held(&self) -> usize {
        self.rings.iter().map(UserRing::len).sum()
    }
}

/// The key of a transaction id (de-duplication) or of a device, merchant or country (the
/// last-seen sets): FNV-1a 64 — stable across processes and versions (unlike std's
/// `RandomState`), so states stored in Redis and rebuilt offline agree. Comparing 512
/// integers instead of 512 strings is what keeps de-duplication cheap; a false "seen" needs
/// a 64-bit collision among a user's last 512 ids (p ≈ 3·10⁻¹⁷ per transaction).
fn id_hash(transaction_id: &str) -> u64 {
    let mut h = fnv::FnvHasher::default();
    h.write(transaction_id.as_bytes());
    h.finish()
}

fn count_in(list: &VecDeque<Seen>, from_excl: i64, to_incl: i64) -> usize {
    list.iter()
        .filter(|s| s.at_ms > from_excl && s.at_ms <= to_incl)
        .count()
}

fn push_bounded<T>(list: &mut VecDeque<T>, value: T, cap: usize) {
    if list.len() == cap {
        list.pop_front();
    }
    list.push_back(value);
}

/// Marks `value` as seen at `t` (keeping the latest time), most recently used last.
fn touch(list: &mut VecDeque<Seen>, value: &str, t: i64, cap: usize) {
    let value = id_hash(value);
    if let Some(pos) = list.iter().position(|s| s.value == value) {
        if let Some(mut s) = list.remove(pos) {
            s.at_ms = s.at_ms.max(t);
            list.push_back(s);
        }
    } else {
        push_bounded(list, Seen { value, at_ms: t }, cap);
    }
}
