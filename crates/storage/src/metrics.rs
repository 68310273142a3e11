//! Every metric the storage emits. No URL or host labels. Retries and dead
//! letters are counted by the runtime, as `crawlq_worker_messages_total`
//! and `crawlq_worker_dead_letters_total` with `stage="storage"`.

use metrics::{describe_counter, describe_histogram, Unit};

/// Records handled, by `outcome`: new, changed, unchanged.
pub const WRITES: &str = "crawlq_storage_writes_total";
/// Time to archive one record.
pub const WRITE_SECONDS: &str = "crawlq_storage_write_duration_seconds";
/// Bytes written to the store.
pub const BYTES: &str = "crawlq_storage_bytes_written_total";
/// Store operations that failed, by `op`.
pub const STORE_ERRORS: &str = "crawlq_storage_store_errors_total";
/// Index pages rewritten.
pub const INDEX_FLUSHES: &str = "crawlq_storage_index_flushes_total";

/// WARC records written, by `type` (response, revisit, request, metadata).
pub const WARC_RECORDS: &str = "crawlq_storage_warc_records_total";
/// Bytes written to WARC segments.
pub const WARC_BYTES: &str = "crawlq_storage_warc_bytes_total";
/// WARC files sealed (published with their CDXJ index).
pub const WARC_FILES: &str = "crawlq_storage_warc_files_sealed_total";

/// Revisits of archived articles, by `outcome` (unchanged, not_modified,
/// changed, failed, removed, restored, error).
pub const REVISITS: &str = "crawlq_revisits_total";
/// Articles marked removed from their site.
pub const REMOVED: &str = "crawlq_articles_removed_total";

/// Registers descriptions.
pub fn describe() {
    describe_counter!(REVISITS, "Revisits of archived articles, by outcome");
    describe_counter!(REMOVED, "Articles marked removed from their site");
    for outcome in [
        "unchanged",
        "not_modified",
        "changed",
        "failed",
        "removed",
        "restored",
        "error",
    ] {
        metrics::counter!(REVISITS, "outcome" => outcome).increment(0);
    }
    metrics::counter!(REMOVED).increment(0);
    describe_counter!(
        WRITES,
        "Records archived, by outcome (new, changed, unchanged)"
    );
    describe_histogram!(WRITE_SECONDS, Unit::Seconds, "Time to archive one record");
    describe_counter!(BYTES, Unit::Bytes, "Bytes written to the object store");
    describe_counter!(
        STORE_ERRORS,
        "Object-store operations that failed, by operation"
    );
    describe_counter!(INDEX_FLUSHES, "index/{host}.md objects rewritten");
    describe_counter!(
        WARC_RECORDS,
        "WARC records written, by type (response, revisit, request, metadata)"
    );
    describe_counter!(WARC_BYTES, Unit::Bytes, "Bytes written to WARC segments");
    describe_counter!(WARC_FILES, "WARC files sealed with their CDXJ index");
    for kind in ["response", "revisit", "request", "metadata"] {
        metrics::counter!(WARC_RECORDS, "type" => kind).increment(0);
    }
    metrics::counter!(WARC_BYTES).increment(0);
    metrics::counter!(WARC_FILES).increment(0);
    // Series that alerts and dashboards divide or sum start at zero, so a
    // freshly started service that has stored nothing still reports 0.
    for outcome in ["new", "changed", "unchanged"] {
        metrics::counter!(WRITES, "outcome" => outcome).increment(0);
    }
    for op in ["get", "put", "list"] {
        metrics::counter!(STORE_ERRORS, "op" => op).increment(0);
    }
}
