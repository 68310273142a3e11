//! WARC/1.1 records (ISO 28500:2017), one gzip member each, and the
//! reading of one back.
//!
//! Digests are `sha1:` in base32, the form Heritrix, wget, warcprox and
//! pywb write and read. Record ids are UUIDs derived from what the record
//! is (its type, URI, fetch time and payload), so a redelivered message
//! makes byte-identical records.

use std::io::{Read, Write};

use chrono::{DateTime, SecondsFormat, Utc};
use crawlq_proto::v1::{HttpExchange, HttpHeader};
use sha1::{Digest, Sha1};

/// The revisit profile for a re-fetch whose payload is the same.
pub const PROFILE_IDENTICAL: &str =
    "http://netpreserve.org/warc/1.1/revisit/identical-payload-digest";
/// The revisit profile for a 304 Not Modified.
pub const PROFILE_NOT_MODIFIED: &str =
    "http://netpreserve.org/warc/1.1/revisit/server-not-modified";

/// `sha1:BASE32` of `data`.
pub fn sha1_digest(data: &[u8]) -> String {
    format!("sha1:{}", data_encoding::BASE32.encode(&Sha1::digest(data)))
}

/// `<urn:uuid:…>` from a SHA-256 of `seed` (version 8: a custom UUID).
pub fn record_id(seed: &str) -> String {
    let h = crawlq_record::sha256_hex(seed.as_bytes());
    format!(
        "<urn:uuid:{}-{}-8{}-{:x}{}-{}>",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        (u8::from_str_radix(&h[16..17], 16).unwrap_or(0) & 0x3) | 0x8,
        &h[17..20],
        &h[20..32]
    )
}

/// WARC-Date: UTC, to the second (what every reader parses).
pub fn warc_date(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// One record before it is written: its named fields and its block.
#[derive(Debug, Clone)]
pub struct Record {
    /// `WARC-Type`.
    pub kind: &'static str,
    /// `WARC-Record-ID`.
    pub id: String,
    /// Named fields after type, id and date, in order.
    pub fields: Vec<(&'static str, String)>,
    /// `WARC-Date`, Unix ms.
    pub date: i64,
    /// `Content-Type` of the block.
    pub content_type: String,
    /// The block.
    pub block: Vec<u8>,
}

impl Record {
    /// A record whose block is an HTTP response (or its head).
    pub fn http(
        kind: &'static str,
        id: String,
        fields: Vec<(&'static str, String)>,
        date: i64,
        block: Vec<u8>,
    ) -> Record {
        Record {
            kind,
            id,
            fields,
            date,
            content_type: "application/http;msgtype=response".into(),
            block,
        }
    }

    /// The record as one gzip member.
    pub fn to_gzip(&self) -> Vec<u8> {
        let mut head = String::with_capacity(512);
        head.push_str("WARC/1.1\r\n");
        head.push_str(&format!("WARC-Type: {}\r\n", self.kind));
        head.push_str(&format!("WARC-Record-ID: {}\r\n", self.id));
        head.push_str(&format!("WARC-Date: {}\r\n", warc_date(self.date)));
        for (name, value) in &self.fields {
            head.push_str(&format!("{name}: {}\r\n", one_line(value)));
        }
        head.push_str(&format!(
            "WARC-Block-Digest: {}\r\n",
            sha1_digest(&self.block)
        ));
        head.push_str(&format!("Content-Type: {}\r\n", self.content_type));
        head.push_str(&format!("Content-Length: {}\r\n\r\n", self.block.len()));
        let mut gz = flate2::write::GzEncoder::new(
            Vec::with_capacity(self.block.len() / 3 + 256),
            flate2::Compression::new(6),
        );
        // Writing to a Vec cannot fail.
        gz.write_all(head.as_bytes()).expect("vec write");
        gz.write_all(&self.block).expect("vec write");
        gz.write_all(b"\r\n\r\n").expect("vec write");
        gz.finish().expect("vec write")
    }
}

/// A header value on one line: CR and LF become spaces.
fn one_line(v: &str) -> String {
    if v.contains(['\r', '\n']) {
        v.replace(['\r', '\n'], " ")
    } else {
        v.to_string()
    }
}

/// The HTTP request message of `x`.
pub fn http_request(x: &HttpExchange) -> Vec<u8> {
    let mut out = format!("{} {} HTTP/1.1\r\n", x.method, x.target).into_bytes();
    push_headers(&mut out, &x.request_headers, false);
    out
}

/// The HTTP response head (status line, headers, blank line) of `x`.
///
/// The status line says HTTP/1.1 for an HTTP/2 answer (WARC's
/// `application/http` is HTTP/1 message syntax; `WARC-Protocol` says what
/// was spoken). hyper has undone any chunking, so the payload is the
/// message body and `Transfer-Encoding` is kept renamed, as evidence.
pub fn http_response_head(x: &HttpExchange) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {} {}\r\n", x.status, x.reason).into_bytes();
    push_headers(&mut out, &x.response_headers, true);
    out
}

fn push_headers(out: &mut Vec<u8>, headers: &[HttpHeader], response: bool) {
    for h in headers {
        let name = if response && h.name.eq_ignore_ascii_case("transfer-encoding") {
            "X-Crawlq-Removed-Transfer-Encoding"
        } else {
            h.name.as_str()
        };
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        let value: Vec<u8> = h
            .value
            .iter()
            .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b })
            .collect();
        out.extend_from_slice(&value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// `WARC-Protocol` of an exchange, when it was not plain HTTP/1.1.
pub fn protocol(x: &HttpExchange) -> Option<String> {
    match x.version.as_str() {
        "HTTP/2" => Some("h2".into()),
        "HTTP/1.0" => Some("http/1.0".into()),
        _ => None,
    }
}

/// One record read back: its named fields and its block.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// Every named field, names as written.
    pub fields: Vec<(String, String)>,
    /// The block.
    pub block: Vec<u8>,
}

impl Parsed {
    /// The value of a named field (case-insensitive).
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The HTTP payload: the block after the HTTP head.
    pub fn http_payload(&self) -> Option<&[u8]> {
        let at = self.block.windows(4).position(|w| w == b"\r\n\r\n")?;
        Some(&self.block[at + 4..])
    }

    /// The HTTP status of a response or revisit.
    pub fn http_status(&self) -> Option<u16> {
        let line = self.block.split(|&b| b == b'\n').next()?;
        std::str::from_utf8(line)
            .ok()?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    }

    /// A header of the HTTP head (case-insensitive name).
    pub fn http_header(&self, name: &str) -> Option<String> {
        let end = self.block.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&self.block[..end]);
        head.split("\r\n").skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

/// Why a record did not read.
#[derive(Debug, thiserror::Error)]
#[error("WARC record: {0}")]
pub struct ParseError(pub String);

/// Reads the first gzip member of `bytes` as one record, up to `max`
/// bytes of block; returns it and the compressed length consumed.
pub fn parse_member(bytes: &[u8], max: u64) -> Result<(Parsed, usize), ParseError> {
    let mut gz = flate2::bufread::GzDecoder::new(bytes);
    let mut data = Vec::new();
    (&mut gz)
        .take(max)
        .read_to_end(&mut data)
        .map_err(|e| ParseError(format!("gzip: {e}")))?;
    let consumed = bytes.len() - gz.into_inner().len();
    let end = data
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| ParseError("no end of header".into()))?;
    let head =
        std::str::from_utf8(&data[..end]).map_err(|_| ParseError("header not UTF-8".into()))?;
    let mut lines = head.split("\r\n");
    if !lines.next().is_some_and(|l| l.starts_with("WARC/1.")) {
        return Err(ParseError("not a WARC/1.x record".into()));
    }
    let fields: Vec<(String, String)> = lines
        .filter_map(|l| {
            let (n, v) = l.split_once(':')?;
            Some((n.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    let len: usize = fields
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .ok_or_else(|| ParseError("no Content-Length".into()))?;
    let start = end + 4;
    let block = data
        .get(start..start + len)
        .ok_or_else(|| ParseError("block shorter than Content-Length".into()))?
        .to_vec();
    Ok((Parsed { fields, block }, consumed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange() -> HttpExchange {
        let h = |n: &str, v: &str| HttpHeader {
            name: n.into(),
            value: v.as_bytes().to_vec(),
        };
        HttpExchange {
            method: "GET".into(),
            target: "/a?b=1".into(),
            version: "HTTP/1.1".into(),
            request_headers: vec![h("host", "example.com"), h("user-agent", "crawlq")],
            status: 200,
            reason: "OK".into(),
            response_headers: vec![
                h("content-type", "text/html"),
                h("transfer-encoding", "chunked"),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn digests_are_sha1_base32() {
        // The digest of the empty string every WARC tool agrees on.
        assert_eq!(sha1_digest(b""), "sha1:3I42H3S6NNFQ2MSVX7XZKYAYSCX5QBYJ");
    }

    #[test]
    fn ids_are_uuids_fixed_by_their_seed() {
        let a = record_id("response:http://x/:1");
        assert_eq!(a, record_id("response:http://x/:1"));
        assert_ne!(a, record_id("request:http://x/:1"));
        let inner = a.trim_start_matches("<urn:uuid:").trim_end_matches('>');
        let parts: Vec<&str> = inner.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('8'));
        assert!(matches!(parts[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'));
    }

    #[test]
    fn a_record_reads_back_with_its_block_and_digest() {
        let x = exchange();
        let mut block = http_response_head(&x);
        block.extend_from_slice(b"<html>hi</html>");
        let r = Record {
            kind: "response",
            id: record_id("r"),
            fields: vec![("WARC-Target-URI", "http://example.com/a?b=1".into())],
            date: 1_764_000_000_123,
            content_type: "application/http;msgtype=response".into(),
            block: block.clone(),
        };
        let mut two = r.to_gzip();
        let first = two.len();
        two.extend(r.to_gzip());
        let (p, used) = parse_member(&two, 1 << 20).unwrap();
        assert_eq!(used, first);
        assert_eq!(p.field("warc-type"), Some("response"));
        assert_eq!(p.field("WARC-Date"), Some("2025-11-24T16:00:00Z"));
        assert_eq!(p.field("WARC-Block-Digest").unwrap(), sha1_digest(&block));
        assert_eq!(p.http_payload().unwrap(), b"<html>hi</html>");
        assert_eq!(p.http_status(), Some(200));
        assert_eq!(p.http_header("content-type").as_deref(), Some("text/html"));
        // Chunking is undone before the body is kept: the header says so.
        assert_eq!(p.http_header("transfer-encoding"), None);
        assert_eq!(
            p.http_header("x-crawlq-removed-transfer-encoding")
                .as_deref(),
            Some("chunked")
        );
        let req = String::from_utf8(http_request(&x)).unwrap();
        assert!(req.starts_with("GET /a?b=1 HTTP/1.1\r\nhost: example.com\r\n"));
        assert!(req.ends_with("\r\n\r\n"));
    }
}
