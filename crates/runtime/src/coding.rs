//! Content codings (RFC 9110 §8.4). The crawler undoes them here rather
//! than in reqwest, so it keeps the body as it was received (for the WARC
//! response record) next to its decoding (for the extractor); readers of
//! the WARC archive undo them again.
//!
//! Decoding stops at the body cap whatever the coded size: a 1 MiB gzip
//! member that inflates to 1 GiB costs the cap, never the gigabyte.

use std::io::Read;

/// Why a coded body was not decoded.
#[derive(Debug, PartialEq, Eq)]
pub enum CodingError {
    /// The decoding passed the cap (a strict read) — a decompression bomb
    /// or a page too large to archive.
    TooLarge(u64),
    /// An unknown coding, or bytes that do not decode.
    Bad(String),
}

/// The codings of a `Content-Encoding` value, in the order they were
/// applied; `identity` is dropped.
pub fn codings(header: &str) -> Vec<String> {
    header
        .split(',')
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty() && c != "identity")
        .collect()
}

/// Undoes `codings` (last applied first). A strict decode fails past
/// `max` bytes; a prefix decode stops there.
pub fn decode(
    codings: &[String],
    body: &[u8],
    max: u64,
    strict: bool,
) -> Result<Vec<u8>, CodingError> {
    let mut data = body.to_vec();
    for coding in codings.iter().rev() {
        data = decode_one(coding, &data, max, strict)?;
    }
    Ok(data)
}

fn decode_one(coding: &str, body: &[u8], max: u64, strict: bool) -> Result<Vec<u8>, CodingError> {
    let reader: Box<dyn Read + '_> = match coding {
        "gzip" | "x-gzip" => Box::new(flate2::read::MultiGzDecoder::new(body)),
        // "deflate" is zlib (RFC 1950); some servers send raw deflate.
        "deflate" if looks_like_zlib(body) => Box::new(flate2::read::ZlibDecoder::new(body)),
        "deflate" => Box::new(flate2::read::DeflateDecoder::new(body)),
        "br" => Box::new(brotli_decompressor::Decompressor::new(body, 8192)),
        "zstd" => Box::new(
            zstd::stream::read::Decoder::new(body)
                .map_err(|e| CodingError::Bad(format!("zstd: {e}")))?,
        ),
        other => {
            return Err(CodingError::Bad(format!(
                "unknown content coding `{other}`"
            )))
        }
    };
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(max as usize));
    // One byte past the cap tells a body of exactly `max` from a longer one.
    reader
        .take(max + 1)
        .read_to_end(&mut out)
        .map_err(|e| CodingError::Bad(format!("{coding}: {e}")))?;
    if out.len() as u64 > max {
        if strict {
            return Err(CodingError::TooLarge(max));
        }
        out.truncate(max as usize);
    }
    Ok(out)
}

fn looks_like_zlib(b: &[u8]) -> bool {
    b.len() >= 2 && b[0] & 0x0f == 8 && (u16::from(b[0]) << 8 | u16::from(b[1])) % 31 == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn codings_are_read_in_order_without_identity() {
        assert_eq!(codings("gzip"), vec!["gzip"]);
        assert_eq!(codings(" identity "), Vec::<String>::new());
        assert_eq!(codings("deflate, GZIP"), vec!["deflate", "gzip"]);
    }

    #[test]
    fn every_coding_decodes() {
        let page = b"<html><body><p>hello</p></body></html>".repeat(50);
        let z = zstd::bulk::compress(&page, 3).unwrap();
        let mut zl = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        zl.write_all(&page).unwrap();
        let zl = zl.finish().unwrap();
        let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        raw.write_all(&page).unwrap();
        let raw = raw.finish().unwrap();
        for (coding, body) in [
            ("gzip", gzip(&page)),
            ("zstd", z),
            ("deflate", zl),
            ("deflate", raw),
        ] {
            assert_eq!(
                decode(&[coding.to_string()], &body, 1 << 20, true).unwrap(),
                page,
                "{coding}"
            );
        }
        // Two codings: gzip applied first, then gzip again.
        let twice = gzip(&gzip(&page));
        let both = codings("gzip, gzip");
        assert_eq!(decode(&both, &twice, 1 << 20, true).unwrap(), page);
    }

    #[test]
    fn bombs_stop_at_the_cap() {
        let bomb = gzip(&vec![0u8; 4 << 20]);
        let g = vec!["gzip".to_string()];
        assert_eq!(
            decode(&g, &bomb, 1 << 20, true),
            Err(CodingError::TooLarge(1 << 20))
        );
        assert_eq!(decode(&g, &bomb, 1000, false).unwrap().len(), 1000);
        assert!(matches!(
            decode(&g, b"not gzip", 1000, true),
            Err(CodingError::Bad(_))
        ));
        assert!(matches!(
            decode(&["compress".to_string()], b"x", 1000, true),
            Err(CodingError::Bad(_))
        ));
    }
}
