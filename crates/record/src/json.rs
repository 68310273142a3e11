//! The record as a JSON object, the body of `articles/{host}/{id}.json`.

use crawlq_proto::v1::{DateSource, SnapshotRecord};

use crate::labels;

/// The publication time in RFC 3339, in the page's own offset when it gave
/// one (`2023-11-09T12:42:00+08:00`), else in UTC.
pub fn published_rfc3339(r: &SnapshotRecord) -> String {
    rfc3339(r.published_at, r.published_utc_offset_minutes)
}

/// Unix ms in RFC 3339, in the given UTC offset (minutes) or in UTC.
pub fn rfc3339(ms: i64, offset_minutes: Option<i32>) -> String {
    let utc = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
    let offset = offset_minutes.and_then(|m| chrono::FixedOffset::east_opt(m * 60));
    match offset {
        Some(o) => utc
            .with_timezone(&o)
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false),
        None => utc.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
    }
}

/// The record as a JSON object with every field (the raw page bytes are
/// left out; they are archived on their own).
pub fn to_json(r: &SnapshotRecord) -> serde_json::Value {
    serde_json::json!({
        "id": r.id,
        "url": r.url,
        "fetched_url": r.fetched_url,
        "title": r.title,
        "published_at": r.published_at,
        "published_at_source": labels::of::<DateSource>(r.published_at_source),
        "published": published_rfc3339(r),
        "modified_at": r.modified_at,
        "fetched_at": r.fetched_at,
        "host": r.host,
        "site_name": r.site_name,
        "authors": r.authors,
        "language": r.language,
        "description": r.description,
        "lead_image": r.lead_image,
        "content_html": r.content_html,
        "text": r.text,
        "word_count": r.word_count,
        "content_sha256": r.content_sha256,
        "links": r.links,
        "extractor_version": r.extractor_version,
        "raw_key": r.raw_key,
        "claimed_canonical": r.claimed_canonical,
    })
}
