//! Generates the Rust types and tonic stubs from `proto/` with `protox` (a pure-Rust protobuf
//! compiler), so building needs no system `protoc`. The encoded file descriptor set is kept
//! for gRPC server reflection.
use std::path::PathBuf;

// Paths are taken at run time and declared relative to this package: the target directory is
// shared across clones (`~/.cache/vigil/target`), and cargo reuses this script's binary and
// output between them, so an absolute path (or `env!` baked in at compile time) would keep
// reading — and watching — the proto files of whichever clone built it first.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let files = ["vigil/v1/events.proto", "vigil/v1/services.proto"];
    for file in &files {
        println!("cargo:rerun-if-changed=../../proto/{file}");
    }
    let fds = protox::compile(files, [&root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("vigil_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
