//! Per-host index pages, `index/{host}.md`: the newest 300 articles, newest
//! first, one line each: `M-D [title](../articles/{host}/{id}.md)`.
//!
//! The list itself is one key per host in a NATS key-value bucket, kept
//! by [`crate::lists`]. An entry marked removed shows `(removed)`.

use std::time::Duration;

use async_nats::jetstream::kv;
use chrono::{Datelike, FixedOffset, TimeZone};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::error::StorageError;
use crate::layout;
use crate::lists::{Item, Lists, Render};

/// Entries kept per host.
pub const INDEX_SIZE: usize = 300;

/// One line of an index.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IndexEntry {
    /// Record id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Publication time, Unix ms.
    pub published_at: i64,
    /// The article was removed from its site.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub removed: bool,
}

impl Item for IndexEntry {
    fn same(&self, other: &Self) -> bool {
        self.id == other.id
    }
    fn order(&self, other: &Self) -> std::cmp::Ordering {
        other
            .published_at
            .cmp(&self.published_at)
            .then_with(|| self.id.cmp(&other.id))
    }
}

/// Renders `index/{host}.md`, in the store's time zone.
struct IndexPages {
    tz: FixedOffset,
}

impl Render<IndexEntry> for IndexPages {
    fn limit(&self, _key: &str) -> usize {
        INDEX_SIZE
    }
    fn render(&self, host: &str, list: &[IndexEntry]) -> Vec<(String, String)> {
        vec![(layout::index(host), render_index(host, list, self.tz))]
    }
}

/// Handle to the index writer.
#[derive(Clone)]
pub struct Index {
    lists: Lists<IndexEntry>,
}

impl Index {
    /// Starts the index writer. `tz` is the offset index dates are shown in.
    pub fn start(
        kv: kv::Store,
        store: crawlq_runtime::store::Store,
        tz: FixedOffset,
        flush_every: Duration,
        stop: CancellationToken,
    ) -> Index {
        Index {
            lists: Lists::start(kv, store, IndexPages { tz }, flush_every, stop),
        }
    }

    /// Adds an entry for `host`; returns once it is in the shared list.
    pub async fn add(&self, host: &str, entry: IndexEntry) -> Result<(), StorageError> {
        self.lists.add(layout::host_segment(host), entry).await
    }
}

/// One line per entry, newest first.
pub fn render_index(host: &str, list: &[IndexEntry], tz: FixedOffset) -> String {
    let mut out = String::new();
    for e in list {
        let date = tz.timestamp_millis_opt(e.published_at).single();
        let (mo, d) = date.map_or((1, 1), |t| (t.month(), t.day()));
        out.push_str(&format!(
            "{mo}-{d} [{}](../articles/{}/{}.md){}\n",
            crawlq_record::seed::escape_title(&e.title),
            layout::host_segment(host),
            e.id,
            if e.removed { " (removed)" } else { "" }
        ));
    }
    out
}

/// Parses `UTC`, `Z` or an offset such as `+08:00`.
pub fn parse_tz(s: &str) -> Result<FixedOffset, String> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("utc") || s == "Z" {
        return Ok(FixedOffset::east_opt(0).expect("zero offset"));
    }
    let sign = match s.as_bytes().first() {
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return Err(format!("`{s}` is not UTC or an offset like +08:00")),
    };
    let (h, m) = s[1..].split_once(':').unwrap_or((&s[1..], "0"));
    let (h, m): (i32, i32) = (
        h.parse().map_err(|_| format!("`{s}`: bad hours"))?,
        m.parse().map_err(|_| format!("`{s}`: bad minutes"))?,
    );
    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
        .ok_or_else(|| format!("`{s}`: offset out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_damaged_list_is_refused_not_replaced() {
        let good = serde_json::to_vec(&vec![IndexEntry {
            id: "a".into(),
            title: "t".into(),
            published_at: 1,
            removed: false,
        }])
        .unwrap();
        assert_eq!(
            crate::lists::parse_list::<IndexEntry>("h", &good)
                .unwrap()
                .len(),
            1
        );
        let err =
            crate::lists::parse_list::<IndexEntry>("h", b"{\"not\": \"a list\"}").unwrap_err();
        assert!(
            matches!(err, crate::lists::ListError::Damaged { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("refusing to replace"), "{err}");
    }

    #[test]
    fn renders_lines_like_the_original_archive() {
        let list = vec![
            IndexEntry {
                id: "b".into(),
                title: "Second [x]".into(),
                published_at: 1_699_530_301_000,
                removed: false,
            },
            IndexEntry {
                id: "a".into(),
                title: "First".into(),
                published_at: 1_699_488_000_000,
                removed: true,
            },
        ];
        let utc = parse_tz("UTC").unwrap();
        assert_eq!(render_index("www.rfi.fr", &list, utc), "11-9 [Second \\[x\\]](../articles/www.rfi.fr/b.md)\n11-9 [First](../articles/www.rfi.fr/a.md) (removed)\n");
        let paris_minus = parse_tz("-12:00").unwrap();
        assert!(render_index("h", &list[1..], paris_minus).starts_with("11-8 "));
        assert!(parse_tz("+08:00").is_ok() && parse_tz("Asia/Shanghai").is_err());
    }
}
