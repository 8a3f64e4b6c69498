//! Tiled windows: partial aggregates per fixed time tile instead of raw event lists.
//!
//! A [`WindowSpec`] of `tiles` tiles of `tile_ms` covers, for an event at time `t` whose tile
//! index is `i = floor(t / tile_ms)`:
//! * **open** windows (user state): tiles `(i − tiles, i]` — the event's own tile (what was
//!   folded into it so far) and the `tiles − 1` before it, i.e. between `(tiles − 1)·tile_ms`
//!   and `tiles·tile_ms` of history;
//! * **closed** windows (merchant state): tiles `[i − tiles, i)` — complete tiles strictly
//!   before the event's own. They never contain anything at or after `t`, so a label reported
//!   after the event can never reach it, and they do not depend on the order in which events
//!   of the current tile arrive.
//!
//! State per window is bounded by `tiles + 1` tiles whatever the event rate: a user with
//! 50 000 transactions in an hour costs the same bytes and the same time per event as one with
//! five. This is the tiled-window technique of the streaming feature stores (Chronon, Tecton).

use serde::{Deserialize, Serialize};

pub(crate) const MINUTE_MS: i64 = 60_000;
pub(crate) const HOUR_MS: i64 = 60 * MINUTE_MS;
pub(crate) const DAY_MS: i64 = 24 * HOUR_MS;

/// A tiled time window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSpec {
    /// Short name used in feature names (`1h`, `24h`, `7d`, `30d`).
    pub name: &'static str,
    /// Width of one tile.
    pub tile_ms: i64,
    /// Number of tiles the window sums.
    pub tiles: i64,
    /// Closed windows read only complete tiles before the event's own (see the module docs).
    pub closed: bool,
}

impl WindowSpec {
    /// Index of the tile holding time `t`.
    pub fn tile_of(&self, t: i64) -> i64 {
        t.div_euclid(self.tile_ms)
    }

    /// The tile indices `[from, to]` the window reads for an event at `t`.
    pub fn range(&self, t: i64) -> (i64, i64) {
        let i = self.tile_of(t);
        if self.closed {
            (i - self.tiles, i - 1)
        } else {
            (i - self.tiles + 1, i)
        }
    }

    /// The oldest tile worth keeping once the newest tile seen is `newest`: what a window
    /// ending in `newest`'s tile reads (closed windows read one tile further back).
    pub fn keep_from(&self, newest: i64) -> i64 {
        newest - self.tiles
    }

    /// Human-readable coverage, for the feature table.
    pub fn describe(&self) -> String {
        let tile = human_ms(self.tile_ms);
        if self.closed {
            format!(
                "{} complete {tile} tiles before the event's tile",
                self.tiles
            )
        } else {
            format!(
                "the event's {tile} tile and the {} before it",
                self.tiles - 1
            )
        }
    }
}

fn human_ms(ms: i64) -> String {
    if ms % DAY_MS == 0 {
        format!("{}-day", ms / DAY_MS)
    } else if ms % HOUR_MS == 0 {
        format!("{}-hour", ms / HOUR_MS)
    } else {
        format!("{}-minute", ms / MINUTE_MS)
    }
}

/// One user tile: count, sum and max of amounts (integer units, see [`crate::amount_units`]),
/// sum of squared major amounts, ATM withdrawals. Serialised as a tuple to keep states small.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct UserTile {
    pub(crate) idx: i64,
    pub(crate) count: u32,
    pub(crate) sum: i64,
    pub(crate) max: i64,
    pub(crate) sumsq: f64,
    pub(crate) atm: u32,
}

/// Aggregates of one user window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct UserAgg {
    pub(crate) count: u64,
    pub(crate) sum: i64,
    pub(crate) max: i64,
    pub(crate) sumsq: f64,
    pub(crate) atm: u64,
}

/// The tiles of one user window, ordered by index, bounded to `tiles + 1` entries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct UserRing(Vec<UserTile>);

/// What one event adds to a user tile.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UserPoint {
    pub(crate) units: i64,
    pub(crate) major: f64,
    pub(crate) atm: bool,
}

impl UserRing {
    /// Adds an event at `t`; `newest_t` is the latest event time of the state (after this
    /// event). An event too old for this window is not added here (it may fit a longer one).
    pub(crate) fn add(&mut self, spec: &WindowSpec, t: i64, newest_t: i64, p: UserPoint) {
        let keep_from = spec.keep_from(spec.tile_of(newest_t));
        let idx = spec.tile_of(t);
        if idx >= keep_from {
            let at = self.0.partition_point(|x| x.idx < idx);
            match self.0.get_mut(at) {
                Some(tile) if tile.idx == idx => {
                    tile.count = tile.count.saturating_add(1);
                    tile.sum = tile.sum.saturating_add(p.units);
                    tile.max = tile.max.max(p.units);
                    tile.sumsq += p.major * p.major;
                    tile.atm = tile.atm.saturating_add(u32::from(p.atm));
                }
                _ => self.0.insert(
                    at,
                    UserTile {
                        idx,
                        count: 1,
                        sum: p.units,
                        max: p.units,
                        sumsq: p.major * p.major,
                        atm: u32::from(p.atm),
                    },
                ),
            }
        }
        let stale = self.0.partition_point(|x| x.idx < keep_from);
        self.0.drain(..stale);
    }

    pub(crate) fn aggregate(&self, spec: &WindowSpec, t: i64) -> UserAgg {
        let (from, to) = spec.range(t);
        let lo = self.0.partition_point(|x| x.idx < from);
        let hi = self.0.partition_point(|x| x.idx <= to);
        let mut agg = UserAgg::default();
        for tile in &self.0[lo..hi] {
            agg.count += u64::from(tile.count);
            agg.sum = agg.sum.saturating_add(tile.sum);
            agg.max = agg.max.max(tile.max);
            agg.sumsq += tile.sumsq;
            agg.atm += u64::from(tile.atm);
        }
        agg
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: WindowSpec = WindowSpec {
        name: "1h",
        tile_ms: 5 * MINUTE_MS,
        tiles: 12,
        closed: false,
    };
    const C: WindowSpec = WindowSpec { closed: true, ..W };

    fn point(units: i64) -> UserPoint {
        UserPoint {
            units,
            major: units as f64,
            atm: false,
        }
    }

    #[test]
    fn open_window_includes_the_current_tile_closed_does_not() {
        assert_eq!(W.range(12 * 5 * MINUTE_MS + 1), (1, 12));
        assert_eq!(C.range(12 * 5 * MINUTE_MS + 1), (0, 11));
        // Negative times floor, they do not truncate towards zero.
        assert_eq!(W.tile_of(-1), -1);
    }

    #[test]
    fn ring_stays_bounded_and_drops_events_too_old_for_it() {
        let mut r = UserRing::default();
        for k in 0..10_000 {
            let t = k * MINUTE_MS;
            r.add(&W, t, t, point(1));
        }
        assert!(r.len() <= 13, "{} tiles", r.len());
        let now = 9_999 * MINUTE_MS;
        assert_eq!(r.aggregate(&W, now).count, 60); // 11 full tiles + the 5 minutes of the current one
        // An event a day older than the newest does not enter the 1 h ring.
        r.add(&W, now - DAY_MS, now, point(100));
        assert_eq!(r.aggregate(&W, now - DAY_MS).count, 0);
        assert_eq!(r.aggregate(&W, now).max, 1);
    }

    #[test]
    fn describe_names_tiles() {
        assert_eq!(
            W.describe(),
            "the event's 5-minute tile and the 11 before it"
        );
        assert_eq!(
            C.describe(),
            "12 complete 5-minute tiles before the event's tile"
        );
    }
}
