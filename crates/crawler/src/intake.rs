//! Intake messages: a protobuf `CrawlRequest`, or plain text with one URL
//! per line. Parsing is a pure function, property-tested.

use crawlq_proto::v1::CrawlRequest;
use crawlq_proto::Message as _;

use crate::error::CrawlError;

/// What an intake message asks for.
#[derive(Debug, PartialEq)]
pub enum Intake {
    /// One protobuf `CrawlRequest`.
    Request(Box<CrawlRequest>),
    /// Plain text: the non-blank, non-comment lines, trimmed.
    Lines(Vec<String>),
}

/// Parses an intake message: protobuf when its Content-Type says so, else
/// UTF-8 text with one URL per line (`#` starts a comment line).
pub fn parse_intake(payload: &[u8], is_protobuf: bool) -> Result<Intake, CrawlError> {
    if is_protobuf {
        let r = CrawlRequest::decode(payload)
            .map_err(|e| CrawlError::BadMessage(format!("not a CrawlRequest: {e}")))?;
        return Ok(Intake::Request(Box::new(r)));
    }
    let text = std::str::from_utf8(payload).map_err(|_| {
        CrawlError::BadMessage("neither protobuf (no Content-Type header) nor UTF-8 text".into())
    })?;
    let lines: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect();
    if lines.is_empty() {
        return Err(CrawlError::BadMessage("empty message".into()));
    }
    Ok(Intake::Lines(lines))
}
