//! What `articles/{host}/{id}.json` records about an article beyond its
//! latest record: its versions, whether it is live or removed, the checks
//! that found out, and when it is next checked.
//!
//! Storage writes these fields and `crawlq get` reads them; documents
//! written before a field existed read it as its default.

use serde::{Deserialize, Serialize};

/// The most recent checks kept in an article's document.
pub const MAX_CHECKS: usize = 50;

/// One archived version of an article.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct VersionEntry {
    /// 1 for the first version.
    pub version: u32,
    /// When this content was fetched, Unix ms.
    pub fetched_at: i64,
    /// SHA-256 of the content HTML.
    pub content_sha256: String,
    /// Object key of the version.
    pub key: String,
    /// SHA-256 of the title and text with white space folded: two versions
    /// with the same key differ in markup or white space only.
    #[serde(default)]
    pub change_key: String,
    /// The extractor that made this version (`crawlq-extractor/0.1.0`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub extractor_version: String,
    /// Why the version exists when it is not a fetch of new content:
    /// `reextract` for a new reading of an archived page.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cause: String,
    /// Where the fetch's HTTP response (the raw page as received) is in
    /// the WARC archive; unset for versions whose raw page is a `raw/`
    /// object (or was not kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warc: Option<WarcRef>,
}

/// One record in a WARC file: the file's object key (`warc/…warc.gz`),
/// and the offset and length of the record's gzip member in it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct WarcRef {
    /// Object key of the WARC file.
    pub file: String,
    /// Byte offset of the record in the file.
    pub offset: u64,
    /// Compressed length of the record.
    pub length: u64,
}

/// Is the article still published?
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// It answers with its content.
    #[default]
    Live,
    /// Two consecutive checks, at least one revisit delay apart, found it
    /// gone (404, 410, 451, or redirected away).
    Removed,
}

/// One observation of an article: a fetch, a revisit, a 304, a failure.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Check {
    /// When, Unix ms.
    pub at: i64,
    /// HTTP status of the final response; 0 when there was none.
    pub status: u32,
    /// `unchanged`, `not_modified`, `changed`, `failed`, `removed`,
    /// `restored` or `error` (the check could not be made: never evidence).
    pub outcome: String,
    /// Final URL after redirects, when it matters.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub final_url: String,
    /// Why, for people.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// When the article is checked next, and why then.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Watch {
    /// Checks since the content last changed: the index into the revisit
    /// schedule of the next delay.
    pub checks_since_change: u32,
    /// When a change (or the first version) was last seen, Unix ms.
    pub last_change_at: i64,
    /// When it was last checked, Unix ms.
    pub last_check_at: i64,
    /// When it is checked next; `None` once the schedule is exhausted.
    pub next_check_at: Option<i64>,
    /// Consecutive checks that found it gone, since it last answered.
    #[serde(default)]
    pub failures: Vec<Check>,
}

/// The watch fields of an article's document, as one value.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Tracking {
    /// Live or removed.
    #[serde(default)]
    pub status: Status,
    /// When it was marked removed.
    #[serde(default)]
    pub removed_at: Option<i64>,
    /// When it last came back after a removal.
    #[serde(default)]
    pub restored_at: Option<i64>,
    /// The failed checks that made it removed.
    #[serde(default)]
    pub removal_evidence: Vec<Check>,
    /// The most recent checks, oldest first, at most [`MAX_CHECKS`].
    #[serde(default)]
    pub checks: Vec<Check>,
    /// Scheduling state.
    #[serde(default)]
    pub watch: Watch,
}

impl Tracking {
    /// The keys these fields take in the document.
    pub const KEYS: [&'static str; 6] = [
        "status",
        "removed_at",
        "restored_at",
        "removal_evidence",
        "checks",
        "watch",
    ];

    /// Reads the fields from a document (defaults where absent).
    pub fn of(doc: &serde_json::Value) -> Result<Tracking, serde_json::Error> {
        let mut fields = serde_json::Map::new();
        for key in Self::KEYS {
            if let Some(v) = doc.get(key) {
                fields.insert(key.to_string(), v.clone());
            }
        }
        serde_json::from_value(serde_json::Value::Object(fields))
    }

    /// Writes the fields into a document.
    pub fn write_into(&self, doc: &mut serde_json::Value) {
        if let (Some(obj), serde_json::Value::Object(fields)) = (
            doc.as_object_mut(),
            serde_json::to_value(self).expect("tracking serialises"),
        ) {
            obj.extend(fields);
        }
    }
}

/// The change key of a title and text: SHA-256 of both with white space
/// folded, so a re-indented page is not an edit.
pub fn change_key(title: &str, text: &str) -> String {
    let fold = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    crate::sha256_hex(format!("{}\n{}", fold(title), fold(text)).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn white_space_is_not_a_change() {
        assert_eq!(
            change_key("A  title", "one\n two"),
            change_key("A title ", "one two")
        );
        assert_ne!(
            change_key("A title", "one two"),
            change_key("A title", "one three")
        );
    }

    #[test]
    fn tracking_round_trips_and_defaults() {
        let mut doc = serde_json::json!({"id": "x", "versions": []});
        let t = Tracking::of(&doc).unwrap();
        assert_eq!(t.status, Status::Live);
        let t = Tracking {
            status: Status::Removed,
            removed_at: Some(5),
            ..Tracking::default()
        };
        t.write_into(&mut doc);
        assert_eq!(doc["status"], "removed");
        assert_eq!(doc["id"], "x");
        assert_eq!(Tracking::of(&doc).unwrap(), t);
    }
}
