//! Every metric the crawler emits. No URL or host labels. Retries and dead
//! letters are counted by the runtime as `crawlq_crawler_retries_total` and
//! `crawlq_worker_dead_letters_total{stage="crawler",reason}`.

use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};

/// Requests finished, by `outcome` (fetched, not_modified, duplicate,
/// failed) and `status_class` (2xx..5xx, none).
pub const REQUESTS: &str = "crawlq_crawler_requests_total";
/// Time from first byte sent to body read.
pub const FETCH_SECONDS: &str = "crawlq_crawler_fetch_duration_seconds";
/// Decoded bytes downloaded.
pub const BYTES: &str = "crawlq_crawler_bytes_downloaded_total";
/// URLs refused by robots.txt.
pub const ROBOTS_DENIALS: &str = "crawlq_crawler_robots_denials_total";
/// Time spent waiting for a host's politeness slot.
pub const POLITENESS_WAIT: &str = "crawlq_crawler_politeness_wait_seconds";
/// Fetches in progress.
pub const IN_FLIGHT: &str = "crawlq_crawler_requests_in_flight";
/// Bodies sent by claim check.
pub const CLAIM_CHECKS: &str = "crawlq_crawler_claim_checks_total";

/// Registers descriptions.
pub fn describe() {
    describe_counter!(
        REQUESTS,
        "Crawl requests finished, by outcome and HTTP status class"
    );
    describe_histogram!(
        FETCH_SECONDS,
        Unit::Seconds,
        "Time to fetch one URL, redirects and body included"
    );
    describe_counter!(BYTES, Unit::Bytes, "Decoded bytes downloaded");
    describe_counter!(ROBOTS_DENIALS, "URLs refused by robots.txt");
    describe_histogram!(
        POLITENESS_WAIT,
        Unit::Seconds,
        "Time spent waiting for a host's politeness slot"
    );
    describe_gauge!(IN_FLIGHT, "HTTP fetches in progress");
    describe_counter!(
        CLAIM_CHECKS,
        "Bodies too large for NATS, sent through the object store"
    );
}

/// Counts a finished request.
pub fn request(outcome: &'static str, status: u16) {
    let class = match status {
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "none",
    };
    metrics::counter!(REQUESTS, "outcome" => outcome, "status_class" => class).increment(1);
}
