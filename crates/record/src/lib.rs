//! The snapshot record format, below every service that writes or reads it.
//!
//! - [`seed`]: the Markdown layout of the original archive (render, parse);
//! - [`json`]: the record as the JSON document storage keeps per article;
//! - [`article`]: the rest of that document: versions, status, checks;
//! - [`record_id`]: the id of a record, from its canonical URL;
//! - [`labels`]: the snake_case labels of the protobuf enums, written once
//!   for JSON, metrics and the CLI.
//!
//! The extractor produces records, storage archives them and the CLI reads
//! them back; none of them depends on another for the format.

pub mod article;
pub mod json;
pub mod labels;
pub mod seed;

pub use seed::{canonical_url, parse_header, render};

use sha2::{Digest, Sha256};

/// First 16 hex digits of SHA-256 of the canonical URL.
pub fn record_id(canonical_url: &str) -> String {
    hex::encode(&Sha256::digest(canonical_url.as_bytes())[..8])
}

/// SHA-256 of `bytes`, as 64 lowercase hex digits.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_16_hex_digits_of_the_url_hash() {
        let id = record_id("https://example.com/a");
        assert_eq!(id.len(), 16);
        assert_eq!(id, &sha256_hex(b"https://example.com/a")[..16]);
    }
}
