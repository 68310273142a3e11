//! Every metric the extractor emits. Labels are bounded: outcome, kind and
//! date-source names. Dead letters are counted by the runtime as
//! `crawlq_worker_dead_letters_total{stage="extractor",reason}`.

use crawlq_proto::v1::DateSource;
use metrics::{describe_counter, describe_histogram, Unit};

/// Pages handled, by `outcome`: article, non_article, feed, sitemap.
pub const PAGES: &str = "crawlq_extractor_pages_total";
/// Time to extract one page.
pub const DURATION: &str = "crawlq_extractor_duration_seconds";
/// Decoded input bytes.
pub const INPUT_BYTES: &str = "crawlq_extractor_input_bytes_total";
/// Requests produced from feeds, sitemaps and listing links, by `kind`.
pub const EXPANDED: &str = "crawlq_extractor_items_expanded_total";
/// Records by where their publication date came from, by `source`.
pub const DATES: &str = "crawlq_extractor_dates_total";

/// Registers descriptions.
pub fn describe() {
    describe_counter!(PAGES, "Pages handled by the extractor, by outcome");
    describe_histogram!(DURATION, Unit::Seconds, "Time to extract one page");
    describe_counter!(
        INPUT_BYTES,
        Unit::Bytes,
        "Decoded page bytes read by the extractor"
    );
    describe_counter!(
        EXPANDED,
        "Requests produced from feeds, sitemaps and listing links, by kind"
    );
    describe_counter!(
        DATES,
        "Records by the source of their publication date (fetch_time: nothing better found)"
    );
}

/// Counts a page by outcome.
pub fn page(outcome: &'static str) {
    metrics::counter!(PAGES, "outcome" => outcome).increment(1);
}

/// Counts expanded items.
pub fn expanded(kind: &'static str, n: usize) {
    metrics::counter!(EXPANDED, "kind" => kind).increment(n as u64);
}

/// Counts a record's date source.
pub fn record_date(source: i32) {
    let label = crawlq_record::labels::of::<DateSource>(source);
    metrics::counter!(DATES, "source" => label).increment(1);
}
