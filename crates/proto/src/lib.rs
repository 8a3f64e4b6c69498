//! The wire contracts of Vigil, generated from `proto/vigil/v1/*.proto`.
//!
//! Architecture invariant: this is the only crate that knows the wire format. Services convert
//! these types to domain types at their edge; nothing else defines wire types by hand.
//! `tonic` and `prost` are re-exported so that every crate uses the same versions.

pub use prost;
pub use prost_types;
pub use tonic;

/// `vigil.v1`: events (Kafka values) and the gRPC services.
#[allow(
    unreachable_pub,
    missing_docs,
    missing_debug_implementations,
    clippy::all,
    clippy::pedantic,
    rust_2018_idioms
)]
pub mod v1 {
    tonic::include_proto!("vigil.v1");
}

/// Encoded `FileDescriptorSet` of every Vigil proto, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/vigil_descriptor.bin"));

/// Conversions between `prost_types::Timestamp` and `chrono`-free unix milliseconds.
pub mod time {
    use prost_types::Timestamp;

    /// The range `google.protobuf.Timestamp` allows: 0001-01-01T00:00:00Z ..=
    /// 9999-12-31T23:59:59Z, in seconds.
    pub const SECONDS_RANGE: std::ops::RangeInclusive<i64> = -62_135_596_800..=253_402_300_799;

    /// Milliseconds since the unix epoch of a timestamp from a client: `None` unless its
    /// seconds are in [`SECONDS_RANGE`] and its nanos in `0..1e9` (so the arithmetic can
    /// neither overflow nor wrap, whatever a client sends).
    pub fn checked_unix_ms(ts: &Timestamp) -> Option<i64> {
        if !SECONDS_RANGE.contains(&ts.seconds) || !(0..1_000_000_000).contains(&ts.nanos) {
            return None;
        }
        Some(ts.seconds * 1000 + i64::from(ts.nanos) / 1_000_000)
    }

    /// Milliseconds since the unix epoch of a timestamp the platform wrote itself;
    /// saturating, so even a corrupt value cannot panic or wrap (validate client input with
    /// [`checked_unix_ms`]).
    pub fn to_unix_ms(ts: &Timestamp) -> i64 {
        ts.seconds
            .saturating_mul(1000)
            .saturating_add(i64::from(ts.nanos) / 1_000_000)
    }

    /// A timestamp from milliseconds since the unix epoch.
    pub fn from_unix_ms(ms: i64) -> Timestamp {
        Timestamp {
            seconds: ms.div_euclid(1000),
            nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn round_trips_including_negative_times() {
            for ms in [0, 1, 999, 1000, 1_763_900_000_123, -1, -1001] {
                assert_eq!(to_unix_ms(&from_unix_ms(ms)), ms);
            }
            assert_eq!(from_unix_ms(-1).seconds, -1);
            assert_eq!(from_unix_ms(-1).nanos, 999_000_000);
        }

        #[test]
        fn client_timestamps_out_of_range_are_refused_not_wrapped() {
            let ts = |seconds, nanos| Timestamp { seconds, nanos };
            assert_eq!(checked_unix_ms(&ts(i64::MAX, 0)), None);
            assert_eq!(checked_unix_ms(&ts(i64::MIN, 0)), None);
            assert_eq!(checked_unix_ms(&ts(253_402_300_800, 0)), None);
            assert_eq!(checked_unix_ms(&ts(0, -1)), None);
            assert_eq!(checked_unix_ms(&ts(0, 1_000_000_000)), None);
            assert_eq!(
                checked_unix_ms(&ts(253_402_300_799, 999_999_999)),
                Some(253_402_300_799_999)
            );
            assert_eq!(checked_unix_ms(&ts(1, 5_000_000)), Some(1_005));
            assert_eq!(to_unix_ms(&ts(i64::MAX, 999_999_999)), i64::MAX);
        }
    }
}
