//! Crawler errors. The variant decides: retry (with the server's
//! Retry-After when it gave one) or dead-letter with a reason.

use std::time::Duration;

use crawlq_runtime::{Classify, Disposition};

/// Why a request did not produce a fetched page.
#[derive(Debug, thiserror::Error)]
pub enum CrawlError {
    /// Not a URL, or not http(s).
    #[error("invalid url `{0}`: {1}")]
    InvalidUrl(String, String),
    /// The message is neither text nor a valid `CrawlRequest`.
    #[error("invalid intake message: {0}")]
    BadMessage(String),
    /// robots.txt forbids the URL.
    #[error("disallowed by robots.txt for our user agent")]
    RobotsDisallowed,
    /// robots.txt could not be read (5xx, network): try later.
    #[error("robots.txt unavailable: {0}")]
    RobotsUnavailable(String),
    /// The address is in a refused range (SSRF guard).
    #[error("refused address: {0}")]
    BlockedAddress(String),
    /// Too many redirects, or a loop.
    #[error("redirects: {0}")]
    Redirects(String),
    /// A redirect to something that is not an http(s) URL.
    #[error("bad redirect: {0}")]
    BadRedirect(String),
    /// The host name does not resolve.
    #[error("{0}")]
    Unresolved(String),
    /// The response head is larger than the client reads.
    #[error("response header too large: {0}")]
    HeaderTooLarge(String),
    /// The body ended before its Content-Length.
    #[error("body shorter than its Content-Length: {0}")]
    TruncatedBody(String),
    /// The body's Content-Encoding does not decode.
    #[error("body does not decode: {0}")]
    BadEncoding(String),
    /// The connection was not made within the connect timeout.
    #[error("no connection within the connect timeout of {0:?}")]
    ConnectTimeout(Duration),
    /// The decoded body exceeded the cap.
    #[error("body exceeds {0} bytes")]
    TooLarge(u64),
    /// The response is not a document type we archive.
    #[error("unsupported content type `{0}`")]
    UnsupportedContentType(String),
    /// The whole fetch exceeded its deadline.
    #[error("deadline of {0:?} exceeded")]
    Deadline(Duration),
    /// Connection, TLS or protocol failure.
    #[error("network: {msg}")]
    Network {
        /// The error and its causes, in words.
        msg: String,
        /// The client's error.
        #[source]
        source: reqwest::Error,
    },
    /// 404 or 410.
    #[error("http {0}")]
    NotFound(u16),
    /// Another 4xx.
    #[error("http {0}")]
    ClientError(u16),
    /// 5xx, 429 and friends; `after` from Retry-After when given.
    #[error("http {status}")]
    ServerError {
        /// Status code.
        status: u16,
        /// Server-requested delay.
        after: Option<Duration>,
    },
    /// The host is busy for longer than we wait in-process.
    #[error("host busy for {0:?}; deferred")]
    Deferred(Duration),
    /// The object store (claim checks) or NATS KV failed.
    #[error("{what}: {source}")]
    Infra {
        /// What was being done.
        what: String,
        /// The failure.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Another writer changed shared state meanwhile: try again.
    #[error("{0}")]
    Conflict(String),
}

impl CrawlError {
    /// An infrastructure failure while doing `what`.
    pub fn infra(
        what: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> CrawlError {
        CrawlError::Infra {
            what: what.into(),
            source: Box::new(source),
        }
    }

    /// The HTTP status behind the error, or 0 when there was no answer.
    pub fn status(&self) -> u16 {
        match self {
            CrawlError::NotFound(s) | CrawlError::ClientError(s) => *s,
            CrawlError::ServerError { status, .. } => *status,
            _ => 0,
        }
    }

    /// Does the error say the page is gone (404, 410, 451)? A check that
    /// gets one is evidence of removal; nothing else is.
    pub fn is_gone(&self) -> bool {
        matches!(self.status(), 404 | 410 | 451)
    }
}

/// Every reason code of the crawler, and whether replaying a message dead-
/// lettered for it can succeed without a change (`crawlq dlq replay` skips
/// the others unless asked).
pub const REASONS: &[(&str, bool)] = &[
    ("invalid_url", false),
    ("bad_message", false),
    ("robots_disallowed", false),
    ("robots_unavailable", true),
    ("blocked_address", false),
    ("too_many_redirects", false),
    ("bad_redirect", false),
    ("dns_failure", true),
    ("bad_encoding", false),
    ("header_too_large", false),
    ("truncated_body", false),
    ("connect_timeout", true),
    ("too_large", false),
    ("unsupported_content_type", false),
    ("deadline_exceeded", true),
    ("network_error", true),
    ("http_not_found", false),
    ("http_client_error", false),
    ("http_server_error", true),
    ("deferred", true),
    ("infrastructure", true),
    ("conflict", true),
];

impl Classify for CrawlError {
    fn disposition(&self) -> Disposition {
        use CrawlError::*;
        match self {
            RobotsUnavailable(_) => Disposition::Retry(Some(Duration::from_secs(60))),
            Deadline(_)
            | ConnectTimeout(_)
            | Network { .. }
            | Infra { .. }
            | Conflict(_)
            | Unresolved(_) => Disposition::Retry(None),
            ServerError { after, .. } => Disposition::Retry(*after),
            Deferred(d) => Disposition::Defer(*d),
            InvalidUrl(..)
            | BadMessage(_)
            | RobotsDisallowed
            | BlockedAddress(_)
            | Redirects(_)
            | BadRedirect(_)
            | BadEncoding(_)
            | HeaderTooLarge(_)
            | TruncatedBody(_)
            | TooLarge(_)
            | UnsupportedContentType(_)
            | NotFound(_)
            | ClientError(_) => Disposition::Permanent,
        }
    }

    fn reason(&self) -> &'static str {
        use CrawlError::*;
        match self {
            InvalidUrl(..) => "invalid_url",
            BadMessage(_) => "bad_message",
            RobotsDisallowed => "robots_disallowed",
            RobotsUnavailable(_) => "robots_unavailable",
            BlockedAddress(_) => "blocked_address",
            Redirects(_) => "too_many_redirects",
            BadRedirect(_) => "bad_redirect",
            Unresolved(_) => "dns_failure",
            BadEncoding(_) => "bad_encoding",
            HeaderTooLarge(_) => "header_too_large",
            TruncatedBody(_) => "truncated_body",
            ConnectTimeout(_) => "connect_timeout",
            TooLarge(_) => "too_large",
            UnsupportedContentType(_) => "unsupported_content_type",
            Deadline(_) => "deadline_exceeded",
            Network { .. } => "network_error",
            NotFound(_) => "http_not_found",
            ClientError(_) => "http_client_error",
            ServerError { .. } => "http_server_error",
            Deferred(_) => "deferred",
            Infra { .. } => "infrastructure",
            Conflict(_) => "conflict",
        }
    }

    fn pipeline_fault(&self) -> bool {
        matches!(self, CrawlError::Infra { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_is_listed() {
        let d = Duration::from_secs(1);
        let all = [
            CrawlError::InvalidUrl("u".into(), "e".into()),
            CrawlError::BadMessage("e".into()),
            CrawlError::RobotsDisallowed,
            CrawlError::RobotsUnavailable("e".into()),
            CrawlError::BlockedAddress("e".into()),
            CrawlError::Redirects("e".into()),
            CrawlError::BadRedirect("e".into()),
            CrawlError::Unresolved("e".into()),
            CrawlError::HeaderTooLarge("e".into()),
            CrawlError::TruncatedBody("e".into()),
            CrawlError::BadEncoding("e".into()),
            CrawlError::ConnectTimeout(d),
            CrawlError::TooLarge(1),
            CrawlError::UnsupportedContentType("e".into()),
            CrawlError::Deadline(d),
            CrawlError::NotFound(404),
            CrawlError::ClientError(403),
            CrawlError::ServerError {
                status: 503,
                after: None,
            },
            CrawlError::Deferred(d),
            CrawlError::infra("x", std::io::Error::other("e")),
            CrawlError::Conflict("e".into()),
        ];
        for e in &all {
            assert!(
                REASONS.iter().any(|(r, _)| *r == e.reason()),
                "{} is not in REASONS",
                e.reason()
            );
        }
        // Network errors hold a client error, which only a request makes.
        assert!(REASONS.iter().any(|(r, _)| *r == "network_error"));
    }

    #[test]
    fn only_nats_and_store_failures_are_the_pipelines_fault() {
        assert!(CrawlError::infra("kv get", std::io::Error::other("timed out")).pipeline_fault());
        let site = CrawlError::ServerError {
            status: 503,
            after: None,
        };
        assert!(!site.pipeline_fault(), "a site's outage is the message's");
        assert!(!CrawlError::Conflict("e".into()).pipeline_fault());
    }
}
