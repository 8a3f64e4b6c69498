//! Integration tests of `domain`: property-based malformed input.

mod malformed;
