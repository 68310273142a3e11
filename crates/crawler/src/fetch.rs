//! HTTP fetching with hard limits: the SSRF guard on the first request and
//! on every redirect hop (redirects are followed here, not by reqwest),
//! at most 10 redirects with loop detection, a connect timeout, a total
//! deadline, a cap on the body as received counted while streaming and on
//! its decoding (so gzip, brotli and zstd bombs stop at the cap), and a
//! content-type check before any body byte is read.
//!
//! The final exchange is kept as it happened, for the WARC records: the
//! request line and headers sent, the status line and every header
//! received, and the body as received next to its decoding.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use crawlq_proto::v1::{HttpExchange, HttpHeader, ResponseHeaders};
use futures::StreamExt;
use reqwest::header::{
    HeaderMap, HeaderValue, ACCEPT, ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_TYPE, HOST,
    IF_MODIFIED_SINCE, IF_NONE_MATCH, LOCATION, RETRY_AFTER, USER_AGENT,
};
use url::Url;

use crate::error::CrawlError;
use crate::ssrf::{self, Guard, GuardedResolver};
use crawlq_runtime::coding::{self, CodingError};

/// Fetch limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Redirects followed.
    pub max_redirects: usize,
    /// TCP+TLS connect timeout.
    pub connect_timeout: Duration,
    /// Whole-fetch deadline, body included.
    pub deadline: Duration,
    /// Decoded body cap.
    pub max_body: u64,
}

/// A successful response.
#[derive(Debug, Clone)]
pub struct Response {
    /// URL after redirects.
    pub final_url: Url,
    /// URLs visited before it.
    pub chain: Vec<String>,
    /// HTTP status.
    pub status: u16,
    /// Headers that matter downstream.
    pub headers: ResponseHeaders,
    /// Decoded body (empty for 304).
    pub body: Bytes,
    /// The exchange as it happened; `coded_body` holds the body as
    /// received when it had a content coding.
    pub exchange: HttpExchange,
    /// Peer address.
    pub remote: Option<SocketAddr>,
    /// Time taken.
    pub elapsed: Duration,
}

/// Validators for a conditional GET.
#[derive(Debug, Clone, Default)]
pub struct Validators {
    /// ETag to send as If-None-Match.
    pub etag: String,
    /// Last-Modified to send as If-Modified-Since.
    pub last_modified: String,
}

/// The HTTP client.
#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    /// Headers every request carries, as sent (for the WARC request).
    defaults: HeaderMap,
    guard: Arc<Guard>,
    limits: Limits,
}

/// Types we archive: HTML, XHTML, feeds, XML, sitemaps (and no type at all,
/// which the extractor sniffs).
pub fn is_supported(content_type: &str) -> bool {
    let ct = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    ct.is_empty()
        || matches!(
            ct.as_str(),
            "text/html"
                | "application/xhtml+xml"
                | "application/rss+xml"
                | "application/atom+xml"
                | "application/rdf+xml"
                | "application/xml"
                | "text/xml"
                | "application/feed+json"
                | "application/x-gzip"
                | "application/gzip"
                | "text/plain"
        )
}

impl Fetcher {
    /// Builds the client.
    pub fn new(guard: Guard, limits: Limits, user_agent: &str) -> Result<Fetcher, CrawlError> {
        let guard = Arc::new(guard);
        let mut headers = HeaderMap::new();
        headers.insert(
            USER_AGENT,
            HeaderValue::from_str(user_agent).map_err(|e| CrawlError::infra("user agent", e))?,
        );
        headers.insert(
            ACCEPT,
            HeaderValue::from_static("text/html,application/xhtml+xml,application/rss+xml,application/atom+xml,application/xml;q=0.9,*/*;q=0.5"),
        );
        // Codings are undone in `coding`, not by reqwest, which would drop
        // Content-Encoding and the body as received.
        headers.insert(
            ACCEPT_ENCODING,
            HeaderValue::from_static("gzip, deflate, br, zstd"),
        );
        let client = reqwest::Client::builder()
            .default_headers(headers.clone())
            .redirect(reqwest::redirect::Policy::none())
            // No system proxy (HTTP_PROXY and friends): a proxy resolves
            // names itself, out of the guard's sight.
            .no_proxy()
            .connect_timeout(limits.connect_timeout)
            .read_timeout(limits.deadline)
            .dns_resolver(Arc::new(GuardedResolver {
                guard: guard.clone(),
            }))
            .pool_max_idle_per_host(4)
            .build()
            .map_err(|e| CrawlError::infra("http client", e))?;
        Ok(Fetcher {
            client,
            defaults: headers,
            guard,
            limits,
        })
    }

    /// Fetches `url`, following redirects, within the deadline.
    pub async fn fetch(
        &self,
        url: &Url,
        validators: Option<&Validators>,
    ) -> Result<Response, CrawlError> {
        self.fetch_obeying(url, validators, None, false).await
    }

    /// [`Fetcher::fetch`], with a redirect to another origin checked
    /// against that origin's robots.txt first. With `keep_gone`, a 404,
    /// 410 or 451 is an answer (its head and up to [`MAX_EVIDENCE`] bytes
    /// of its body, the evidence of a removal), not an error.
    pub async fn fetch_obeying(
        &self,
        url: &Url,
        validators: Option<&Validators>,
        robots: Option<&crate::robots::RobotsCache>,
        keep_gone: bool,
    ) -> Result<Response, CrawlError> {
        let deadline = self.limits.deadline;
        let body = if keep_gone {
            Body::KeepGone(self.limits.max_body)
        } else {
            Body::Document(self.limits.max_body)
        };
        let fetch = self.fetch_inner(url, validators, body, robots);
        match tokio::time::timeout(deadline, fetch).await {
            Ok(r) => r,
            Err(_) => Err(CrawlError::Deadline(deadline)),
        }
    }

    /// Fetches a small text resource (robots.txt): status and at most
    /// `max` bytes, whatever its type.
    pub async fn fetch_text(&self, url: &Url, max: u64) -> Result<(u16, Bytes), CrawlError> {
        let deadline = self.limits.deadline;
        let fetch = self.fetch_inner(url, None, Body::Prefix(max), None);
        match tokio::time::timeout(deadline, fetch).await {
            Ok(Ok(r)) => Ok((r.status, r.body)),
            Ok(Err(CrawlError::NotFound(s) | CrawlError::ClientError(s))) => Ok((s, Bytes::new())),
            Ok(Err(CrawlError::ServerError { status, .. })) => Ok((status, Bytes::new())),
            Ok(Err(CrawlError::TooLarge(_))) => Err(CrawlError::TooLarge(max)),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(CrawlError::Deadline(deadline)),
        }
    }

    async fn fetch_inner(
        &self,
        start: &Url,
        validators: Option<&Validators>,
        body: Body,
        robots: Option<&crate::robots::RobotsCache>,
    ) -> Result<Response, CrawlError> {
        let started = Instant::now();
        let mut url = start.clone();
        let mut chain: Vec<String> = Vec::new();
        loop {
            if let Err(ip) = ssrf::check_url(&self.guard, &url) {
                return Err(CrawlError::BlockedAddress(format!("{url} is {ip}")));
            }
            let mut req = self.client.get(url.clone());
            if let (Some(v), true) = (validators, chain.is_empty()) {
                if !v.etag.is_empty() {
                    req = req.header(IF_NONE_MATCH, &v.etag);
                }
                if !v.last_modified.is_empty() {
                    req = req.header(IF_MODIFIED_SINCE, &v.last_modified);
                }
            }
            let req = req
                .build()
                .map_err(|e| CrawlError::BadRedirect(format!("request for {url}: {e}")))?;
            let sent = self.request_headers(&url, req.headers());
            let resp = self
                .client
                .execute(req)
                .await
                .map_err(|e| self.send_error(e))?;
            let status = resp.status().as_u16();
            if (300..400).contains(&status) && status != 304 {
                let next = self.redirect(&url, &resp, &mut chain)?;
                if let Some(robots) = robots.filter(|_| next.origin() != url.origin()) {
                    // Another site's robots.txt governs the redirect target.
                    if !Box::pin(robots.check(&next, self)).await?.allowed {
                        metrics::counter!(crate::metrics::ROBOTS_DENIALS).increment(1);
                        return Err(CrawlError::RobotsDisallowed);
                    }
                }
                url = next;
                continue;
            }
            return self.answer(url, chain, resp, sent, body, started).await;
        }
    }

    /// The headers a request goes out with: Host (hyper adds it from the
    /// URL), the client's defaults, then the request's own.
    fn request_headers(&self, url: &Url, own: &HeaderMap) -> Vec<HttpHeader> {
        let mut host = url.host_str().unwrap_or_default().to_string();
        if let Some(port) = url.port() {
            host = format!("{host}:{port}");
        }
        let mut out = vec![HttpHeader {
            name: HOST.as_str().to_string(),
            value: host.into_bytes(),
        }];
        let defaults = self.defaults.iter().filter(|(n, _)| !own.contains_key(*n));
        out.extend(defaults.chain(own.iter()).map(header));
        out
    }

    /// Where a 3xx answer sends us next; loops, limits and non-http
    /// targets are refused, each with its own reason.
    fn redirect(
        &self,
        url: &Url,
        resp: &reqwest::Response,
        chain: &mut Vec<String>,
    ) -> Result<Url, CrawlError> {
        let status = resp.status().as_u16();
        let Some(loc) = resp.headers().get(LOCATION).and_then(|l| l.to_str().ok()) else {
            return Err(CrawlError::ClientError(status));
        };
        let mut next = url
            .join(loc)
            .map_err(|e| CrawlError::BadRedirect(format!("bad Location `{loc}`: {e}")))?;
        next.set_fragment(None);
        if !matches!(next.scheme(), "http" | "https") {
            return Err(CrawlError::BadRedirect(format!(
                "redirect to non-http URL {next}"
            )));
        }
        chain.push(url.to_string());
        if next == *url || chain.iter().any(|c| c == next.as_str()) {
            return Err(CrawlError::Redirects(format!("loop back to {next}")));
        }
        if chain.len() > self.limits.max_redirects {
            return Err(CrawlError::Redirects(format!(
                "more than {} redirects",
                self.limits.max_redirects
            )));
        }
        Ok(next)
    }

    /// The final answer: an error for a 4xx or 5xx, else the body as
    /// `body` allows.
    async fn answer(
        &self,
        final_url: Url,
        chain: Vec<String>,
        resp: reqwest::Response,
        sent: Vec<HttpHeader>,
        body: Body,
        started: Instant,
    ) -> Result<Response, CrawlError> {
        let status = resp.status().as_u16();
        let headers = pick_headers(resp.headers());
        let remote = resp.remote_addr();
        let mut exchange = exchange(&final_url, &resp, sent);
        exchange.ip_address = remote.map(|a| a.ip().to_string()).unwrap_or_default();
        let gone = matches!(status, 404 | 410 | 451);
        // Answers without a page: a 304, and (kept as evidence of a
        // removal) a gone answer with the start of its body.
        if status == 304 || (gone && matches!(body, Body::KeepGone(_))) {
            if gone {
                let kept = read_capped(resp, Body::Prefix(MAX_EVIDENCE))
                    .await
                    .map_err(|e| self.read_error(e))?;
                exchange.body = kept.to_vec();
            }
            return Ok(Response {
                final_url,
                chain,
                status,
                headers,
                body: Bytes::new(),
                exchange,
                remote,
                elapsed: started.elapsed(),
            });
        }
        match status {
            404 | 410 => return Err(CrawlError::NotFound(status)),
            429 | 500..=599 => {
                let after = retry_after(resp.headers());
                return Err(CrawlError::ServerError { status, after });
            }
            400..=499 => return Err(CrawlError::ClientError(status)),
            _ => {}
        }
        if let Body::Document(max) | Body::KeepGone(max) = body {
            if !is_supported(&headers.content_type) {
                // Dropping the response closes the connection unread.
                return Err(CrawlError::UnsupportedContentType(headers.content_type));
            }
            // A declared oversize body is refused unread (coded or not:
            // the coded size is the smaller).
            if resp.content_length().unwrap_or(0) > max {
                return Err(CrawlError::TooLarge(max));
            }
        }
        let codings = resp
            .headers()
            .get(CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .map(coding::codings)
            .unwrap_or_default();
        let received = read_capped(resp, body)
            .await
            .map_err(|e| self.read_error(e))?;
        metrics::counter!(crate::metrics::BYTES).increment(received.len() as u64);
        let decoded = if codings.is_empty() {
            received
        } else {
            let (max, strict) = body.cap();
            let decoded =
                coding::decode(&codings, &received, max, strict).map_err(|e| match e {
                    CodingError::TooLarge(max) => CrawlError::TooLarge(max),
                    CodingError::Bad(why) => CrawlError::BadEncoding(why),
                })?;
            exchange.coded = true;
            exchange.coded_body = received.to_vec();
            Bytes::from(decoded)
        };
        Ok(Response {
            final_url,
            chain,
            status,
            headers,
            body: decoded,
            exchange,
            remote,
            elapsed: started.elapsed(),
        })
    }

    fn read_error(&self, e: ReadError) -> CrawlError {
        match e {
            ReadError::TooLarge(max) => CrawlError::TooLarge(max),
            ReadError::Send(e) => self.send_error(e),
        }
    }

    /// What a failed request or body read means. A timeout names the
    /// limit that fired.
    fn send_error(&self, e: reqwest::Error) -> CrawlError {
        if let Some(b) = ssrf::find_blocked(&e) {
            return CrawlError::BlockedAddress(b.to_string());
        }
        if let Some(u) = ssrf::find_unresolved(&e) {
            return CrawlError::Unresolved(u.to_string());
        }
        let chain = error_chain(&e);
        // Deterministic failures of the server: the same next time.
        if chain.contains("message head is too large") || chain.contains("header too large") {
            return CrawlError::HeaderTooLarge(chain);
        }
        if chain.contains("end of file before message length reached") {
            return CrawlError::TruncatedBody(chain);
        }
        // A timeout while reading a compressed body is still a timeout.
        if e.is_timeout() {
            return if e.is_connect() {
                CrawlError::ConnectTimeout(self.limits.connect_timeout)
            } else {
                CrawlError::Deadline(self.limits.deadline)
            };
        }
        if e.is_decode() {
            // A body that does not decode (bad gzip, brotli, zstd) will not
            // decode next time either.
            return CrawlError::BadEncoding(e.to_string());
        }
        CrawlError::Network {
            msg: chain,
            source: e,
        }
    }
}

/// An error and its causes, in words.
fn error_chain(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

/// How much of a body is read, and what is refused.
#[derive(Debug, Clone, Copy)]
enum Body {
    /// A page to archive: only supported types, refused past this many
    /// bytes.
    Document(u64),
    /// A small resource (robots.txt): any type, the first this many bytes.
    Prefix(u64),
    /// A [`Body::Document`], or the start of the body of an answer saying
    /// the document is gone.
    KeepGone(u64),
}

/// Most bytes of a gone page's body kept as evidence.
pub const MAX_EVIDENCE: u64 = 256 * 1024;

impl Body {
    /// The cap, and whether passing it is an error.
    fn cap(self) -> (u64, bool) {
        match self {
            Body::Document(max) | Body::KeepGone(max) => (max, true),
            Body::Prefix(max) => (max, false),
        }
    }
}

enum ReadError {
    TooLarge(u64),
    Send(reqwest::Error),
}

/// Reads the body as received: a document is refused past its cap, a
/// prefix is cut at it.
async fn read_capped(resp: reqwest::Response, body: Body) -> Result<Bytes, ReadError> {
    let (max, strict) = body.cap();
    // Sized from Content-Length when there is one (growing a 50 KB page
    // from empty copies it four times), but never trusting it past 1 MiB.
    let hint = resp.content_length().unwrap_or(0).min(max).min(1 << 20);
    let mut buf = BytesMut::with_capacity(hint as usize);
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(ReadError::Send)?;
        if buf.len() as u64 + chunk.len() as u64 > max {
            if strict {
                return Err(ReadError::TooLarge(max));
            }
            let room = (max as usize).saturating_sub(buf.len());
            buf.extend_from_slice(&chunk[..room.min(chunk.len())]);
            break;
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

fn header((name, value): (&reqwest::header::HeaderName, &HeaderValue)) -> HttpHeader {
    HttpHeader {
        name: name.as_str().to_string(),
        value: value.as_bytes().to_vec(),
    }
}

/// The exchange without its body: request line and headers sent, status
/// line and headers received (hyper keeps no reason phrase; the standard
/// one stands in).
fn exchange(url: &Url, resp: &reqwest::Response, sent: Vec<HttpHeader>) -> HttpExchange {
    let mut target = url.path().to_string();
    if let Some(q) = url.query() {
        target.push('?');
        target.push_str(q);
    }
    let version = match resp.version() {
        reqwest::Version::HTTP_09 => "HTTP/0.9",
        reqwest::Version::HTTP_10 => "HTTP/1.0",
        reqwest::Version::HTTP_2 => "HTTP/2",
        reqwest::Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/1.1",
    };
    HttpExchange {
        method: "GET".into(),
        target,
        version: version.into(),
        request_headers: sent,
        status: u32::from(resp.status().as_u16()),
        reason: resp
            .status()
            .canonical_reason()
            .unwrap_or_default()
            .to_string(),
        response_headers: resp.headers().iter().map(header).collect(),
        ..Default::default()
    }
}

fn pick_headers(h: &HeaderMap) -> ResponseHeaders {
    let get = |name: &str| {
        h.get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    ResponseHeaders {
        content_type: h
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string(),
        etag: get("etag"),
        last_modified: get("last-modified"),
        date: get("date"),
        content_language: get("content-language"),
        retry_after: get("retry-after"),
    }
}

/// Retry-After as seconds or an HTTP date (RFC 9110: IMF-fixdate, and
/// the obsolete RFC 850 and asctime forms), capped at one day.
fn retry_after(h: &HeaderMap) -> Option<Duration> {
    let v = h.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let d = match v.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => {
            let when = httpdate::parse_http_date(v).ok()?;
            when.duration_since(std::time::SystemTime::now())
                .unwrap_or(Duration::ZERO)
        }
    };
    Some(d.min(Duration::from_secs(86_400)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        assert!(is_supported("text/html; charset=utf-8"));
        assert!(is_supported("application/rss+xml"));
        assert!(is_supported(""));
        assert!(!is_supported("application/pdf"));
        assert!(!is_supported("image/jpeg"));
    }

    #[test]
    fn http_dates() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        // A date in the past means "now"; one far ahead is capped at a day.
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Thu, 09 Nov 2023 11:45:01 GMT"),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Sat, 06 Nov 2094 08:49:37 GMT"),
        );
        assert_eq!(retry_after(&h), Some(Duration::from_secs(86_400)));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }
}
