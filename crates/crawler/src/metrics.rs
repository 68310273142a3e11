//! Every metric the crawler emits. No URL or host labels. Retries and dead
//! letters are counted by the runtime, as `crawlq_worker_messages_total`
//! and `crawlq_worker_dead_letters_total` with `stage="crawler"`.

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

/// Scheduled feed polls, by `outcome` (fetched, not_modified, failed).
pub const FEED_POLLS: &str = "crawlq_feed_polls_total";
/// Revisit fetches that ended in the crawler, by `outcome` (not_modified,
/// gone, error); pages go on to storage, which counts the revisit itself.
pub const REVISIT_FETCHES: &str = "crawlq_crawler_revisit_observations_total";
/// Checks (feed polls and revisits) scheduled for later.
pub const CHECKS_SCHEDULED: &str = "crawlq_checks_scheduled";
/// Checks whose time has come, not yet done.
pub const CHECKS_DUE: &str = "crawlq_checks_due";
/// Age of the oldest due check not yet done.
pub const CHECKS_OVERDUE: &str = "crawlq_checks_overdue_oldest_seconds";

/// Registers descriptions, and starts every labelled series at zero.
pub fn describe() {
    describe_counter!(
        FEED_POLLS,
        "Scheduled polls of registered feeds and sitemaps, by outcome"
    );
    describe_counter!(
        REVISIT_FETCHES,
        "Revisits that ended in the crawler without a page, by outcome"
    );
    describe_gauge!(
        CHECKS_SCHEDULED,
        "Feed polls and article revisits scheduled for later"
    );
    describe_gauge!(
        CHECKS_DUE,
        "Feed polls and article revisits due and not yet done"
    );
    describe_gauge!(
        CHECKS_OVERDUE,
        Unit::Seconds,
        "Age of the oldest due check not yet done (0 when none)"
    );
    for outcome in ["fetched", "not_modified", "failed"] {
        metrics::counter!(FEED_POLLS, "outcome" => outcome).increment(0);
    }
    for outcome in ["not_modified", "gone", "error"] {
        metrics::counter!(REVISIT_FETCHES, "outcome" => outcome).increment(0);
    }
    metrics::counter!(CLAIM_CHECKS).increment(0);
    for g in [CHECKS_SCHEDULED, CHECKS_DUE, CHECKS_OVERDUE] {
        metrics::gauge!(g).set(0.0);
    }
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
