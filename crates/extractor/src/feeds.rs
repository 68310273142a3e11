//! Feeds (RSS 0.9x/1.0/2.0, Atom, JSON Feed, via feed-rs) and sitemaps
//! (sitemap, sitemap index, news sitemap, gzip-compressed or not).

use std::io::Read;

use quick_xml::events::Event;

use crate::error::ExtractError;

/// One URL a feed or sitemap points at.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Entry {
    /// Absolute URL.
    pub url: String,
    /// Title, if given.
    pub title: String,
    /// Publication time, Unix ms, 0 if unknown.
    pub published_at: i64,
    /// Summary text, if given.
    pub summary: String,
    /// Full HTML content, if the feed carries it.
    pub content_html: String,
}

/// A parsed discovery document.
#[derive(Debug, Clone, PartialEq)]
pub enum Discovery {
    /// Items of a feed.
    Feed(Vec<Entry>),
    /// Pages listed by a sitemap.
    Sitemap(Vec<Entry>),
    /// Sitemaps listed by a sitemap index.
    SitemapIndex(Vec<Entry>),
}

/// Most entries taken from one sitemap (the sitemap protocol's limit).
pub const MAX_SITEMAP_ENTRIES: usize = 50_000;

/// Bounds on what one feed or sitemap may expand into.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest body, decompressed (the crawler's body cap).
    pub max_bytes: u64,
    /// Most entries taken from one feed.
    pub max_feed_entries: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_bytes: 10 * 1024 * 1024,
            max_feed_entries: 1000,
        }
    }
}

/// What kind of document a body looks like, from its type and first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// RSS, Atom, RDF or JSON Feed.
    Feed,
    /// Sitemap or sitemap index.
    Sitemap,
    /// Anything else (HTML).
    Other,
}

/// Sniffs the document kind.
pub fn sniff(body: &[u8], content_type: &str) -> Kind {
    if body.starts_with(&[0x1f, 0x8b]) {
        return Kind::Sitemap;
    }
    let head = String::from_utf8_lossy(&body[..body.len().min(2048)]).to_ascii_lowercase();
    if head.contains("<urlset") || head.contains("<sitemapindex") {
        return Kind::Sitemap;
    }
    let ct = content_type.to_ascii_lowercase();
    if head.contains("<rss")
        || head.contains("<feed")
        || head.contains("<rdf:rdf")
        || head.contains("jsonfeed.org/version")
    {
        return Kind::Feed;
    }
    if ct.contains("rss") || ct.contains("atom") || ct.contains("feed+json") {
        return Kind::Feed;
    }
    Kind::Other
}

/// Parses a feed or sitemap within `limits`; `base` resolves relative
/// links. A gzip body that inflates past the body cap is refused; entries
/// past a list's cap are left out.
pub fn parse(
    body: &[u8],
    kind: Kind,
    base: &url::Url,
    limits: Limits,
) -> Result<Discovery, ExtractError> {
    match kind {
        Kind::Feed => parse_feed(body, base, limits.max_feed_entries),
        Kind::Sitemap => {
            if body.starts_with(&[0x1f, 0x8b]) {
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(body)
                    .take(limits.max_bytes + 1)
                    .read_to_end(&mut out)
                    .map_err(|e| ExtractError::BadFeed(format!("gzip: {e}")))?;
                if out.len() as u64 > limits.max_bytes {
                    return Err(ExtractError::TooLarge(out.len()));
                }
                parse_sitemap(&out, base)
            } else {
                parse_sitemap(body, base)
            }
        }
        Kind::Other => Err(ExtractError::BadFeed("not a feed or sitemap".into())),
    }
}

fn parse_feed(body: &[u8], base: &url::Url, max_entries: usize) -> Result<Discovery, ExtractError> {
    let feed = feed_rs::parser::Builder::new()
        .base_uri(Some(base.as_str()))
        .build()
        .parse(body)
        .map_err(|e| ExtractError::BadFeed(e.to_string()))?;
    let entries = feed
        .entries
        .into_iter()
        .filter_map(|e| {
            let link = e
                .links
                .iter()
                .find(|l| l.rel.as_deref().is_none_or(|r| r == "alternate"))
                .or_else(|| e.links.first())
                .map(|l| l.href.clone())
                .or_else(|| e.id.starts_with("http").then(|| e.id.clone()))?;
            let url = base.join(&link).ok()?;
            Some(Entry {
                url: url.to_string(),
                title: e.title.map(|t| t.content).unwrap_or_default(),
                published_at: e
                    .published
                    .or(e.updated)
                    .map_or(0, |d| d.timestamp_millis()),
                summary: e.summary.map(|s| s.content).unwrap_or_default(),
                content_html: e.content.and_then(|c| c.body).unwrap_or_default(),
            })
        })
        .take(max_entries)
        .collect();
    Ok(Discovery::Feed(entries))
}

fn parse_sitemap(body: &[u8], base: &url::Url) -> Result<Discovery, ExtractError> {
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut buf = Vec::new();
    let mut entries = Vec::new();
    let mut is_index = false;
    let mut current: Option<Entry> = None;
    let mut field = String::new();
    // Text of the current element; quick-xml splits it at entity references.
    let mut acc = String::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) => {
                let name = e.local_name().as_ref().to_ascii_lowercase();
                match name.as_str() {
                    "sitemapindex" => is_index = true,
                    "url" | "sitemap" => current = Some(Entry::default()),
                    _ => {}
                }
                field = name;
                acc.clear();
            }
            Ok(Event::Text(t)) => {
                let raw: &str = &t;
                acc.push_str(
                    &quick_xml::escape::unescape(raw)
                        .map(|c| c.into_owned())
                        .unwrap_or_else(|_| raw.to_string()),
                );
            }
            Ok(Event::CData(t)) => acc.push_str(&t),
            Ok(Event::GeneralRef(r)) => {
                if let Ok(Some(c)) = r.resolve_char_ref() {
                    acc.push(c);
                } else if let Some(c) = quick_xml::escape::resolve_predefined_entity(&r) {
                    acc.push_str(c);
                }
            }
            Ok(Event::End(e)) => {
                let name = e.local_name().as_ref().to_ascii_lowercase();
                if name == field {
                    apply(&mut current, &field, acc.trim(), base);
                }
                if matches!(name.as_str(), "url" | "sitemap") {
                    if let Some(entry) = current.take().filter(|e| !e.url.is_empty()) {
                        entries.push(entry);
                    }
                    if entries.len() >= MAX_SITEMAP_ENTRIES {
                        tracing::warn!(base = %base, "sitemap lists more than {MAX_SITEMAP_ENTRIES} entries; the rest are left out");
                        break;
                    }
                }
                field.clear();
                acc.clear();
            }
            Ok(Event::Eof) => break,
            Err(e) => return Err(ExtractError::BadFeed(format!("sitemap xml: {e}"))),
            _ => {}
        }
        buf.clear();
    }
    Ok(if is_index {
        Discovery::SitemapIndex(entries)
    } else {
        Discovery::Sitemap(entries)
    })
}

fn apply(current: &mut Option<Entry>, field: &str, text: &str, base: &url::Url) {
    let Some(entry) = current.as_mut() else {
        return;
    };
    match field {
        "loc" => {
            if let Ok(u) = base.join(text) {
                if matches!(u.scheme(), "http" | "https") {
                    entry.url = u.to_string();
                }
            }
        }
        "publication_date" => {
            entry.published_at = crate::dates::parse(text).unwrap_or(entry.published_at)
        }
        "lastmod" if entry.published_at == 0 => {
            entry.published_at = crate::dates::parse(text).unwrap_or(0)
        }
        "title" => entry.title = text.to_string(),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> url::Url {
        url::Url::parse("https://news.example.com/feed.xml").unwrap()
    }

    #[test]
    fn rss_items_carry_hints() {
        let rss = r#"<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
            <item><title>美韩谴责朝鲜</title><link>https://news.example.com/a/1</link>
            <pubDate>Thu, 09 Nov 2023 11:45:01 GMT</pubDate><description>sum</description>
            <content:encoded xmlns:content="http://purl.org/rss/1.0/modules/content/"><![CDATA[<p>full</p>]]></content:encoded></item>
            <item><title>two</title><link>/a/2</link></item></channel></rss>"#;
        assert_eq!(sniff(rss.as_bytes(), "application/xml"), Kind::Feed);
        let Discovery::Feed(items) =
            parse(rss.as_bytes(), Kind::Feed, &base(), Limits::default()).unwrap()
        else {
            panic!()
        };
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].title, "美韩谴责朝鲜");
        assert_eq!(items[0].published_at, 1_699_530_301_000);
        assert_eq!(items[0].summary, "sum");
        assert!(items[0].content_html.contains("<p>full</p>"));
        assert_eq!(items[1].url, "https://news.example.com/a/2");
    }

    #[test]
    fn atom_and_json_feed() {
        let atom = r#"<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><id>x</id><updated>2023-11-09T11:45:01Z</updated>
            <entry><title>A</title><id>urn:1</id><link href="https://news.example.com/a/3"/><updated>2023-11-09T11:45:01Z</updated></entry></feed>"#;
        let Discovery::Feed(items) = parse(
            atom.as_bytes(),
            sniff(atom.as_bytes(), ""),
            &base(),
            Limits::default(),
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(items[0].url, "https://news.example.com/a/3");
        let json = r#"{"version":"https://jsonfeed.org/version/1.1","title":"t","items":[{"id":"1","url":"https://news.example.com/a/4","title":"J"}]}"#;
        assert_eq!(sniff(json.as_bytes(), "application/feed+json"), Kind::Feed);
        let Discovery::Feed(items) =
            parse(json.as_bytes(), Kind::Feed, &base(), Limits::default()).unwrap()
        else {
            panic!()
        };
        assert_eq!(items[0].url, "https://news.example.com/a/4");
    }

    #[test]
    fn sitemaps_news_sitemaps_and_indexes() {
        let sm = r#"<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">
            <url><loc>https://news.example.com/a/1</loc><news:news><news:publication_date>2023-11-09T11:45:01Z</news:publication_date><news:title>N &amp; M</news:title></news:news></url>
            <url><loc>https://news.example.com/a/2</loc><lastmod>2023-11-09</lastmod></url></urlset>"#;
        let Discovery::Sitemap(e) = parse(
            sm.as_bytes(),
            sniff(sm.as_bytes(), "text/xml"),
            &base(),
            Limits::default(),
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(e.len(), 2);
        assert_eq!(
            (e[0].title.as_str(), e[0].published_at),
            ("N & M", 1_699_530_301_000)
        );
        let idx = r#"<sitemapindex><sitemap><loc>https://news.example.com/s1.xml</loc></sitemap></sitemapindex>"#;
        let Discovery::SitemapIndex(e) =
            parse(idx.as_bytes(), Kind::Sitemap, &base(), Limits::default()).unwrap()
        else {
            panic!()
        };
        assert_eq!(e[0].url, "https://news.example.com/s1.xml");
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(sm.as_bytes()).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(sniff(&gz, "application/octet-stream"), Kind::Sitemap);
        assert!(
            matches!(parse(&gz, Kind::Sitemap, &base(), Limits::default()).unwrap(), Discovery::Sitemap(e) if e.len() == 2)
        );
    }

    #[test]
    fn lists_are_capped_and_gzip_is_inflated_to_the_body_cap_only() {
        use std::io::Write;
        let mut sm = String::from("<urlset>");
        for i in 0..(MAX_SITEMAP_ENTRIES + 10) {
            sm.push_str(&format!(
                "<url><loc>https://news.example.com/a/{i}</loc></url>"
            ));
        }
        sm.push_str("</urlset>");
        let limits = Limits {
            max_bytes: 64 << 20,
            max_feed_entries: 5,
        };
        let Discovery::Sitemap(e) = parse(sm.as_bytes(), Kind::Sitemap, &base(), limits).unwrap()
        else {
            panic!()
        };
        assert_eq!(e.len(), MAX_SITEMAP_ENTRIES);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(sm.as_bytes()).unwrap();
        let gz = gz.finish().unwrap();
        let small = Limits {
            max_bytes: 1 << 20,
            max_feed_entries: 5,
        };
        assert!(matches!(
            parse(&gz, Kind::Sitemap, &base(), small),
            Err(ExtractError::TooLarge(_))
        ));
        let mut rss = String::from("<rss version=\"2.0\"><channel><title>t</title>");
        for i in 0..20 {
            rss.push_str(&format!(
                "<item><link>https://news.example.com/n/{i}</link></item>"
            ));
        }
        rss.push_str("</channel></rss>");
        let Discovery::Feed(items) = parse(rss.as_bytes(), Kind::Feed, &base(), small).unwrap()
        else {
            panic!()
        };
        assert_eq!(items.len(), 5);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(
            parse(
                b"<rss><channel><item>",
                Kind::Feed,
                &base(),
                Limits::default()
            )
            .is_err()
                || matches!(parse(b"<rss><channel><item>", Kind::Feed, &base(), Limits::default()), Ok(Discovery::Feed(v)) if v.is_empty())
        );
        assert!(parse(
            b"<urlset><url><loc>x</loc></urlset>",
            Kind::Sitemap,
            &base(),
            Limits::default()
        )
        .is_err());
    }
}
