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

    /// Milliseconds since the unix epoch of a timestamp.
    pub fn to_unix_ms(ts: &Timestamp) -> i64 {
        ts.seconds * 1000 + i64::from(ts.nanos) / 1_000_000
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
    }
}
