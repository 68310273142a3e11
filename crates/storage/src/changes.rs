//! The change log: every edit, removal and restoration the watch finds,
//! where readers can follow it.
//!
//! - `changes/{YYYY-MM-DD}.md`: one line per change of that day (UTC),
//!   with the article's title and links to the article and its versions;
//! - `changes/feed.atom`: the latest [`FEED_SIZE`] changes as an Atom 1.0
//!   feed, so censorship can be followed in any feed reader.
//!
//! Both are rendered from lists in the `changes` bucket (one key per day,
//! and `latest`), kept by [`crate::lists`] like the index pages.

use std::time::Duration;

use async_nats::jetstream::kv;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::error::StorageError;
use crate::layout;
use crate::lists::{Item, Lists, Render};

/// Changes kept in `changes/feed.atom`.
pub const FEED_SIZE: usize = 200;
/// Changes listed per day page.
pub const DAY_SIZE: usize = 2000;
/// Key of the list behind the feed.
const LATEST: &str = "latest";

/// One change of an article.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChangeEntry {
    /// When it was observed, Unix ms.
    pub at: i64,
    /// `changed`, `removed` or `restored`.
    pub kind: String,
    /// Record id.
    pub id: String,
    /// Host segment.
    pub host: String,
    /// Title.
    pub title: String,
    /// Canonical URL.
    pub url: String,
    /// The version current after the change.
    pub version: u32,
    /// Its object key.
    pub version_key: String,
    /// The version before an edit, when there is one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub previous_key: String,
    /// A short account of the evidence (removals).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

impl Item for ChangeEntry {
    fn same(&self, other: &Self) -> bool {
        self.id == other.id && self.kind == other.kind && self.at == other.at
    }
    fn order(&self, other: &Self) -> std::cmp::Ordering {
        other.at.cmp(&self.at).then_with(|| self.id.cmp(&other.id))
    }
}

/// The day key (`2026-12-01`) of a time, UTC.
pub fn day_of(at_ms: i64) -> String {
    utc(at_ms).format("%Y-%m-%d").to_string()
}

fn utc(at_ms: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_millis(at_ms).unwrap_or_default()
}

struct ChangePages;

impl Render<ChangeEntry> for ChangePages {
    fn limit(&self, key: &str) -> usize {
        if key == LATEST {
            FEED_SIZE
        } else {
            DAY_SIZE
        }
    }
    fn render(&self, key: &str, list: &[ChangeEntry]) -> Vec<(String, String)> {
        if key == LATEST {
            vec![(layout::changes_feed(), render_feed(list))]
        } else {
            vec![(layout::changes_day(key), render_day(key, list))]
        }
    }
}

/// `changes/{day}.md`: the day's changes, in the order they happened.
pub fn render_day(day: &str, list: &[ChangeEntry]) -> String {
    let mut out = format!("# Changes on {day} (UTC)\n\n");
    for e in list.iter().rev() {
        let article = format!("../articles/{}/{}.md", layout::host_segment(&e.host), e.id);
        let mut line = format!(
            "- {} **{}** [{}]({article})",
            utc(e.at).format("%H:%M:%S"),
            e.kind,
            crawlq_record::seed::escape_title(&e.title)
        );
        if e.kind == "changed" {
            line.push_str(&format!(": [version {}](../{})", e.version, e.version_key));
            if !e.previous_key.is_empty() {
                line.push_str(&format!(
                    ", was [version {}](../{})",
                    e.version.saturating_sub(1),
                    e.previous_key
                ));
            }
        } else {
            line.push_str(&format!(
                ": last version [{}](../{})",
                e.version, e.version_key
            ));
        }
        if !e.detail.is_empty() {
            line.push_str(&format!(" ({})", e.detail.replace(['\n', '\r'], " ")));
        }
        line.push_str(&format!(" <{}>\n", crawlq_record::seed::link_url(&e.url)));
        out.push_str(&line);
    }
    out
}

/// `changes/feed.atom`: an Atom 1.0 feed of the latest changes.
pub fn render_feed(list: &[ChangeEntry]) -> String {
    let updated = list.first().map_or(0, |e| e.at);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\n");
    out.push_str("  <id>urn:crawlq:changes</id>\n  <title>crawlq: edits, removals and restorations</title>\n");
    out.push_str(&format!("  <updated>{}</updated>\n", rfc3339(updated)));
    out.push_str("  <author><name>crawlq</name></author>\n  <generator>crawlq</generator>\n");
    for e in list {
        let summary = match e.kind.as_str() {
            "changed" => format!("Edited: version {} of {} was archived.", e.version, e.url),
            "removed" => format!("Removed from its site: {}. Evidence: {}.", e.url, e.detail),
            _ => format!("Published again: {}.", e.url),
        };
        out.push_str("  <entry>\n");
        out.push_str(&format!(
            "    <id>urn:crawlq:change:{}:{}:{}</id>\n",
            e.id, e.kind, e.at
        ));
        out.push_str(&format!(
            "    <title>{} {}</title>\n",
            e.kind,
            escape(&e.title)
        ));
        out.push_str(&format!("    <updated>{}</updated>\n", rfc3339(e.at)));
        out.push_str(&format!(
            "    <link href=\"{}\"/>\n",
            escape(&crawlq_record::seed::link_url(&e.url))
        ));
        out.push_str(&format!("    <category term=\"{}\"/>\n", e.kind));
        out.push_str(&format!("    <summary>{}</summary>\n", escape(&summary)));
        out.push_str("  </entry>\n");
    }
    out.push_str("</feed>\n");
    out
}

fn rfc3339(ms: i64) -> String {
    utc(ms).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// XML text and attribute escaping, control characters dropped.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() && !matches!(c, '\n' | '\t') => {}
            c => out.push(c),
        }
    }
    out
}

/// Handle to the change-log writer.
#[derive(Clone)]
pub struct Changes {
    lists: Lists<ChangeEntry>,
}

impl Changes {
    /// Starts the writer.
    pub fn start(
        kv: kv::Store,
        store: crawlq_runtime::store::Store,
        flush_every: Duration,
        stop: CancellationToken,
    ) -> Changes {
        Changes {
            lists: Lists::start(kv, store, ChangePages, flush_every, stop),
        }
    }

    /// Records a change in its day's list and in the feed; returns once
    /// both hold it.
    pub async fn record(&self, entry: ChangeEntry) -> Result<(), StorageError> {
        let day = self.lists.add(day_of(entry.at), entry.clone());
        let latest = self.lists.add(LATEST.to_string(), entry);
        let (a, b) = futures::future::join(day, latest).await;
        a.and(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: &str, at: i64) -> ChangeEntry {
        ChangeEntry {
            at,
            kind: kind.into(),
            id: "0123456789abcdef".into(),
            host: "news.example.com".into(),
            title: "Storm <warning> & flood".into(),
            url: "https://news.example.com/a".into(),
            version: 2,
            version_key: "versions/news.example.com/0123456789abcdef/2-ab.md".into(),
            previous_key: "versions/news.example.com/0123456789abcdef/1-cd.md".into(),
            detail: String::new(),
        }
    }

    #[test]
    fn day_pages_list_changes_in_order_with_links() {
        let list = vec![
            entry("removed", 1_764_590_000_000),
            entry("changed", 1_764_580_000_000),
        ];
        let md = render_day("2025-12-01", &list);
        let lines: Vec<&str> = md.lines().filter(|l| l.starts_with("- ")).collect();
        assert_eq!(lines.len(), 2);
        assert!(
            lines[0].contains("**changed**") && lines[1].contains("**removed**"),
            "{md}"
        );
        assert!(lines[0].contains("](../articles/news.example.com/0123456789abcdef.md)"));
        assert!(
            lines[0].contains("[version 2](../versions/news.example.com/0123456789abcdef/2-ab.md)")
        );
        assert!(lines[0].contains("was [version 1]"));
        assert_eq!(day_of(1_764_590_000_000), "2025-12-01");
    }

    #[test]
    fn the_feed_is_escaped_atom() {
        let xml = render_feed(&[entry("changed", 1_764_580_000_000)]);
        assert!(
            xml.contains("<title>changed Storm &lt;warning&gt; &amp; flood</title>"),
            "{xml}"
        );
        assert!(
            xml.contains("<updated>2025-12-01T09:06:40Z</updated>"),
            "{xml}"
        );
        assert_eq!(xml.matches("<entry>").count(), 1);
    }
}
