//! Integration tests of `trainset`: Parquet fixtures are written with arrow in temporary
//! directories, then loaded, split and re-written through the public API.

mod load;
mod split;
mod support;
mod write;
