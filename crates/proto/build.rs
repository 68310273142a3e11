//! Compiles `proto/crawlq/v1/*.proto` with protox (pure Rust), so no system
//! `protoc` is needed, then generates Rust types with prost-build.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = [
        "crawlq/v1/crawl.proto",
        "crawlq/v1/snapshot.proto",
        "crawlq/v1/watch.proto",
    ];
    for f in &files {
        println!("cargo:rerun-if-changed={}", root.join(f).display());
    }
    let descriptors = protox::compile(files, [&root])?;
    prost_build::Config::new()
        .btree_map(["."])
        .compile_fds(descriptors)?;
    Ok(())
}
