//! The seed format of the news archive this project is compatible with:
//!
//! ```text
//! <!--{published_at ms}-->
//! [{title}]({canonical url})
//! ------
//!
//! {clean html on one line}
//! ```
//!
//! Storage, `crawlq get` and `crawlq extract` all use [`render`]. [`parse_header`] reads
//! the first two lines back, and `render` guarantees it always can: the
//! title is trimmed, its newlines folded and its brackets and backslashes
//! escaped; the URL is WHATWG-serialised with parentheses and spaces
//! percent-encoded so the link stays valid.

use crawlq_proto::v1::SnapshotRecord;

/// Renders `record` in the seed format, ending with a newline.
pub fn render(record: &SnapshotRecord) -> String {
    let mut out = String::with_capacity(record.content_html.len() + record.title.len() + 128);
    out.push_str("<!--");
    out.push_str(&record.published_at.to_string());
    out.push_str("-->\n[");
    out.push_str(&escape_title(&record.title));
    out.push_str("](");
    out.push_str(&link_url(&record.url));
    out.push_str(")\n------\n\n");
    out.push_str(&record.content_html.replace(['\n', '\r'], " "));
    out.push('\n');
    out
}

/// The title as it appears between the brackets.
pub fn escape_title(title: &str) -> String {
    let folded = title.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out = String::with_capacity(folded.len());
    for c in folded.chars() {
        if matches!(c, '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The URL as it appears between the parentheses.
pub fn link_url(url: &str) -> String {
    let serialised = url::Url::parse(url)
        .map(|u| u.to_string())
        .unwrap_or_else(|_| url.to_string());
    serialised
        .replace('(', "%28")
        .replace(')', "%29")
        .replace(' ', "%20")
}

/// The archive's canonical form of a URL: WHATWG-serialised, with
/// parentheses and spaces percent-encoded so it is always a valid Markdown
/// link target. Records store this form, their id hashes it, and rendering
/// leaves it unchanged, so a rendered record parses back to the same URL.
pub fn canonical_url(url: &url::Url) -> String {
    link_url(url.as_str())
}

/// Reads `(published_at, title, url)` back from a rendered record.
pub fn parse_header(md: &str) -> Option<(i64, String, String)> {
    let mut lines = md.lines();
    let ts = lines
        .next()?
        .strip_prefix("<!--")?
        .strip_suffix("-->")?
        .parse()
        .ok()?;
    let link = lines.next()?.strip_prefix('[')?;
    let mut title = String::new();
    let mut chars = link.char_indices();
    let rest = loop {
        match chars.next()? {
            (_, '\\') => title.push(chars.next()?.1),
            (i, ']') => break &link[i + 1..],
            (_, c) => title.push(c),
        }
    };
    let url = rest.strip_prefix('(')?.strip_suffix(')')?;
    (lines.next()? == "------").then(|| (ts, title, url.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(title: &str, url: &str) -> SnapshotRecord {
        SnapshotRecord {
            title: title.into(),
            url: url.into(),
            published_at: 1_699_530_301_000,
            content_html: "<p>a</p>".into(),
            ..Default::default()
        }
    }

    #[test]
    fn renders_the_seed_layout() {
        let md = render(&rec("标题", "https://www.rfi.fr/cn/亚洲/20231109-标题"));
        assert_eq!(
            md,
            "<!--1699530301000-->\n[标题](https://www.rfi.fr/cn/%E4%BA%9A%E6%B4%B2/20231109-%E6%A0%87%E9%A2%98)\n------\n\n<p>a</p>\n"
        );
    }

    #[test]
    fn unsafe_titles_and_urls_round_trip() {
        let title = "A [bracketed]\n title \\ with (parens)";
        let md = render(&rec(title, "https://x.com/a (b)?q=[1]"));
        let (ts, t, u) = parse_header(&md).unwrap();
        assert_eq!(ts, 1_699_530_301_000);
        assert_eq!(t, "A [bracketed] title \\ with (parens)");
        assert!(!u.contains(['(', ')', ' ']), "{u}");
        assert_eq!(url::Url::parse(&u).unwrap().host_str(), Some("x.com"));
    }
}
