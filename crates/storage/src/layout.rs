//! Object keys of the archive. Other tools read this layout; it is
//! documented in the README and must not change.
//!
//! - `articles/{host}/{id}.md`: latest version, seed format;
//! - `articles/{host}/{id}.json`: the record as JSON plus its versions;
//! - `versions/{host}/{id}/{fetched_at ms}-{sha16}.md`: every distinct version;
//! - `raw/{host}/{id}/{fetched_at ms}.html.zst`: the raw fetched page;
//! - `index/{host}.md`: the newest 300 articles of a host;
//! - `changes/{YYYY-MM-DD}.md`, `changes/feed.atom`: edits, removals and
//!   restorations found by the watch.

/// A host name made safe as one path segment, at most 253 bytes.
pub fn host_segment(host: &str) -> String {
    let h: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    let h = h.trim_matches('.').to_string();
    if h.is_empty() {
        return "_".into();
    }
    // Bounded, so no host makes a key the file system refuses: a host
    // longer than DNS allows, or with an over-long label, keeps a prefix
    // and a hash of the whole.
    if h.len() > MAX_HOST || h.split('.').any(|label| label.len() > 63) {
        let prefix: String = h.chars().take(48).collect();
        return format!(
            "{prefix}-{}",
            &crawlq_record::sha256_hex(h.as_bytes())[..16]
        );
    }
    h
}

/// Longest host segment kept as it is (DNS names stop at 253).
const MAX_HOST: usize = 253;

/// `articles/{host}/{id}.md`
pub fn latest_md(host: &str, id: &str) -> String {
    format!("articles/{}/{id}.md", host_segment(host))
}

/// `articles/{host}/{id}.json`
pub fn latest_json(host: &str, id: &str) -> String {
    format!("articles/{}/{id}.json", host_segment(host))
}

/// `versions/{host}/{id}/`: the folder of an article's versions.
pub fn versions_dir(host: &str, id: &str) -> String {
    format!("versions/{}/{id}/", host_segment(host))
}

/// The end of every version key holding content `sha`: `-{sha16}.md`.
pub fn version_suffix(sha: &str) -> String {
    format!("-{}.md", &sha[..sha.len().min(16)])
}

/// `versions/{host}/{id}/{fetched_at}-{sha16}.md`
pub fn version(host: &str, id: &str, fetched_at: i64, sha: &str) -> String {
    format!(
        "versions/{}/{id}/{fetched_at}-{}.md",
        host_segment(host),
        &sha[..sha.len().min(16)]
    )
}

/// `raw/{host}/{id}/{fetched_at}.html.zst`
pub fn raw(host: &str, id: &str, fetched_at: i64) -> String {
    format!("raw/{}/{id}/{fetched_at}.html.zst", host_segment(host))
}

/// `index/{host}.md`
pub fn index(host: &str) -> String {
    format!("index/{}.md", host_segment(host))
}

/// `changes/{YYYY-MM-DD}.md`: the day's edits, removals and restorations.
pub fn changes_day(day: &str) -> String {
    format!("changes/{day}.md")
}

/// `changes/feed.atom`: the latest changes as an Atom feed.
pub fn changes_feed() -> String {
    "changes/feed.atom".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_hosts_are_bounded_by_a_hash() {
        let label = "a".repeat(300);
        let h = host_segment(&format!("{label}.example.com"));
        assert!(h.len() <= 70, "{h}");
        assert_ne!(
            h,
            host_segment(&format!("{label}b.example.com")),
            "distinct hosts stay distinct"
        );
        assert_eq!(host_segment("www.rfi.fr"), "www.rfi.fr");
    }

    #[test]
    fn keys() {
        assert_eq!(
            latest_md("www.rfi.fr", "0123456789abcdef"),
            "articles/www.rfi.fr/0123456789abcdef.md"
        );
        assert_eq!(
            version("www.rfi.fr", "ab", 17, "deadbeefdeadbeefdeadbeef"),
            "versions/www.rfi.fr/ab/17-deadbeefdeadbeef.md"
        );
        assert_eq!(raw("x.com", "ab", 17), "raw/x.com/ab/17.html.zst");
        assert_eq!(index("WWW.X.COM"), "index/www.x.com.md");
        assert_eq!(host_segment("../etc/passwd"), "_etc_passwd");
    }
}
