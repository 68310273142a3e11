//! One page in, one result out: decoding, parsing, metadata, content,
//! cleaning and the snapshot record. Synchronous and CPU-bound; the service
//! runs it on the blocking pool with a time budget.

use crawlq_proto::v1::{DateSource, FeedHints, SnapshotRecord};
use scraper::Html;
use sha2::{Digest, Sha256};
use url::Url;

use crate::clean::{clean, Cleaned};
use crate::content::{self, Method};
use crate::dom::{self, name};
use crate::error::ExtractError;
use crate::fallback;
use crate::metadata::{self, Meta};
use crate::rules::Rules;

/// Deeper nesting than this is not a real page.
pub const MAX_DEPTH: u32 = 5_000;
/// At most this many links are taken from a listing page.
pub const MAX_LINKS: usize = 500;

/// Version recorded in every snapshot: the crate's version and a digest
/// of the extractor's sources and site rules (`build.rs`), so two
/// builds that extract differently never share a version.
pub const EXTRACTOR_VERSION: &str = concat!(
    "crawlq-extractor/",
    env!("CARGO_PKG_VERSION"),
    "+",
    env!("CRAWLQ_EXTRACTOR_DIGEST")
);

/// A page to extract.
#[derive(Debug, Clone, Copy)]
pub struct Page<'a> {
    /// Raw body bytes.
    pub body: &'a [u8],
    /// The Content-Type header, if any.
    pub content_type: Option<&'a str>,
    /// The Content-Language header, if any.
    pub content_language: Option<&'a str>,
    /// The URL the body came from (after redirects).
    pub url: &'a Url,
    /// Fetch time, Unix ms.
    pub fetched_at: i64,
    /// Hints from the feed item that led here.
    pub hints: Option<&'a FeedHints>,
}

/// What a page turned out to be.
#[derive(Debug, Clone)]
pub enum Extracted {
    /// An article, as a record.
    Article(Box<SnapshotRecord>),
    /// A listing or home page: the same-site links it points at (and a
    /// record, when non-articles are kept).
    Listing {
        /// Why the page was taken for a listing.
        why: String,
        /// Same-site links, absolute, deduplicated.
        links: Vec<String>,
        /// Record of the page itself, if configured.
        record: Option<Box<SnapshotRecord>>,
    },
}

/// Extraction settings.
#[derive(Debug, Clone)]
pub struct Extractor {
    /// Site rules.
    pub rules: Rules,
    /// Also produce records for listing pages.
    pub keep_listings: bool,
}

impl Default for Extractor {
    fn default() -> Self {
        Extractor {
            rules: Rules::builtin(),
            keep_listings: false,
        }
    }
}

impl Extractor {
    /// Extracts an HTML page.
    pub fn extract(&self, page: Page<'_>) -> Result<Extracted, ExtractError> {
        if page.body.iter().all(|b| b.is_ascii_whitespace()) {
            return Err(ExtractError::EmptyBody);
        }
        let depth = prescan_depth(page.body);
        if depth > MAX_DEPTH {
            return Err(ExtractError::Pathological(depth));
        }
        let (text, _, _) = crate::decode::decode(page.body, page.content_type);
        let mut doc = Html::parse_document(&text);
        // React prints its late segments as `<div hidden id="S:0">`; a
        // page without one is not walked for them.
        if text.contains("id=\"S:") {
            dom::place_streamed_segments(&mut doc);
        }
        let analysis = dom::analyse(&doc);
        if analysis.max_depth > MAX_DEPTH {
            return Err(ExtractError::Pathological(analysis.max_depth));
        }
        let meta = metadata::extract(
            &doc,
            page.url,
            crawlq_runtime::now_ms().max(page.fetched_at),
        );
        let base = meta.canonical.clone().unwrap_or_else(|| page.url.clone());
        let rule = self.rules.find(page.url).or_else(|| self.rules.find(&base));
        let selection = content::select(&doc, &analysis, rule);
        let cleaned = selection
            .as_ref()
            .map(|s| {
                clean(
                    &doc,
                    &analysis,
                    &s.roots,
                    Some(page.url),
                    if s.method == Method::Rule { rule } else { None },
                )
            })
            .unwrap_or_default();
        let main_words = word_count(&cleaned.text);
        let ld_body = meta.ld_article_body.as_deref();
        let cleaned = match fallback::recover(&doc, &analysis, page.url, ld_body, main_words) {
            Some((_, better)) => better,
            None => cleaned,
        };

        let by_rule = selection.as_ref().is_some_and(|s| s.method == Method::Rule);
        let nothing = || {
            ExtractError::NoContent(format!(
                "the main selection had {main_words} words and the fallbacks \
                 (JSON-LD articleBody, <article>, densest block) found none"
            ))
        };
        if let Some(why) = is_listing(&doc, &analysis, page.url, &meta, &cleaned, by_rule) {
            let links = same_site_links(&doc, page.url);
            if links.is_empty() && cleaned.text.is_empty() {
                return Err(nothing());
            }
            let record = (self.keep_listings && !cleaned.text.is_empty())
                .then(|| Box::new(build_record(page, meta, cleaned)));
            return Ok(Extracted::Listing { why, links, record });
        }
        if cleaned.text.is_empty() {
            return Err(nothing());
        }
        Ok(Extracted::Article(Box::new(build_record(
            page, meta, cleaned,
        ))))
    }

    /// Builds a record straight from a feed item's full HTML content
    /// (feed-content mode), the way the original archive did.
    pub fn from_feed_item(
        &self,
        item_url: &Url,
        hints: &FeedHints,
        fetched_at: i64,
    ) -> Result<SnapshotRecord, ExtractError> {
        let doc = Html::parse_fragment(&hints.content_html);
        let analysis = dom::analyse(&doc);
        if analysis.max_depth > MAX_DEPTH {
            return Err(ExtractError::Pathological(analysis.max_depth));
        }
        let root = doc.tree.root().id();
        let cleaned = clean(&doc, &analysis, &[root], Some(item_url), None);
        if cleaned.text.is_empty() {
            return Err(ExtractError::NoContent(
                "the feed item's content has no text".into(),
            ));
        }
        let meta = Meta {
            title: hints.title.trim().to_string(),
            ..Meta::default()
        };
        let page = Page {
            body: &[],
            content_type: None,
            content_language: None,
            url: item_url,
            fetched_at,
            hints: Some(hints),
        };
        Ok(build_record(page, meta, cleaned))
    }
}

/// Approximate element nesting depth, read from the bytes before parsing:
/// html5ever's tree builder is quadratic in depth, so a document of 64k
/// nested elements must be refused before it reaches the parser. Void
/// elements and those HTML closes implicitly (p, li, td...) do not count.
pub fn prescan_depth(body: &[u8]) -> u32 {
    let mut depth: i64 = 0;
    let mut max: i64 = 0;
    let mut i = 0;
    while let Some(off) = body[i..].iter().position(|&b| b == b'<') {
        i += off + 1;
        let rest = &body[i..];
        if rest.first() == Some(&b'/') {
            depth = (depth - 1).max(0);
            continue;
        }
        let name_len = rest
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric())
            .count();
        if name_len == 0 || !rest[0].is_ascii_alphabetic() {
            continue;
        }
        let name = rest[..name_len].to_ascii_lowercase();
        let implicit = matches!(
            name.as_slice(),
            b"br"
                | b"img"
                | b"meta"
                | b"link"
                | b"input"
                | b"hr"
                | b"source"
                | b"wbr"
                | b"area"
                | b"base"
                | b"col"
                | b"embed"
                | b"param"
                | b"track"
                | b"p"
                | b"li"
                | b"td"
                | b"th"
                | b"tr"
                | b"option"
                | b"dt"
                | b"dd"
        );
        let end = rest.iter().position(|&b| b == b'>').unwrap_or(rest.len());
        let self_closing = end > 0 && rest[end - 1] == b'/';
        if !implicit && !self_closing {
            depth += 1;
            max = max.max(depth);
        }
    }
    max.min(u32::MAX as i64) as u32
}

/// A paragraph this long (in words, one per CJK character) is running
/// text, never a teaser.
const LONG_BLOCK_WORDS: u32 = 50;

/// A home page with a long block of running text and less of its text in
/// links than this is one story, not a front page (those are mostly links).
const HOME_STORY_LINK_DENSITY: f32 = 0.3;

/// Home pages, section fronts and other link lists are not articles: the
/// reason, when the page is one. Length is counted in words (one per CJK
/// character), so short Chinese articles are not mistaken for listings.
fn is_listing(
    doc: &Html,
    analysis: &dom::Analysis,
    url: &Url,
    meta: &Meta,
    cleaned: &Cleaned,
    by_rule: bool,
) -> Option<String> {
    let body = doc
        .tree
        .root()
        .descendants()
        .find(|n| name(*n) == Some("body"));
    let ld = body
        .and_then(|b| analysis.stats.get(&b.id()))
        .map_or(0.0, |s| s.link_density());
    let paragraph_words: Vec<u32> = cleaned.text.split("\n\n").map(word_count).collect();
    let long_block = paragraph_words.iter().any(|w| *w >= LONG_BLOCK_WORDS);
    if url.path() == "/" || url.path().is_empty() {
        // A home page is a listing unless it says it is an article, or it
        // is one story with few links (a one-post blog, a one-page site).
        let one_story = long_block && ld < HOME_STORY_LINK_DENSITY;
        return (!meta.declares_article && !one_story)
            .then(|| "a site's home page that does not declare itself an article".into());
    }
    if meta.declares_article || (by_rule && !cleaned.text.is_empty()) {
        return None;
    }
    let words = word_count(&cleaned.text);
    // One long block of running text is an article, however many links
    // surround it: teasers on a listing are short.
    if long_block {
        return None;
    }
    let paragraphs = paragraph_words.iter().filter(|w| **w > 15).count();
    // A short article on a link-heavy page: its URL names one story.
    let story_url = names_one_story(url) && paragraph_words.iter().any(|w| *w >= 25);
    if words < 40 {
        Some(format!(
            "{words} words of main text (an article has 40 or more)"
        ))
    } else if ld > 0.6 && paragraphs < 3 && !story_url {
        Some(format!(
            "{:.0}% of the page's text is links and only {paragraphs} paragraphs have over 15 words",
            ld * 100.0
        ))
    } else {
        None
    }
}

/// Does the URL's path name one story: a slug of five or more words
/// (`/son-of-former-president-stabbed-to-death`) or a long numeric id
/// (`/news/2023/1234567.html`)?
fn names_one_story(url: &Url) -> bool {
    url.path_segments().into_iter().flatten().any(|seg| {
        let stem = seg.rsplit_once('.').map_or(seg, |(s, _)| s);
        let words = stem
            .split(['-', '_'])
            .filter(|w| w.chars().any(char::is_alphabetic))
            .count();
        let digits = stem.chars().filter(char::is_ascii_digit).count();
        words >= 5 || (digits >= 6 && digits * 2 >= stem.len())
    })
}

/// Same-host http(s) links of a page, absolute, without fragments.
fn same_site_links(doc: &Html, url: &Url) -> Vec<String> {
    static A: std::sync::OnceLock<scraper::Selector> = std::sync::OnceLock::new();
    let sel = A.get_or_init(|| scraper::Selector::parse("a[href]").expect("static selector"));
    let host = url
        .host_str()
        .unwrap_or_default()
        .trim_start_matches("www.")
        .to_string();
    let mut seen = std::collections::HashSet::new();
    doc.select(sel)
        .filter_map(|a| url.join(a.value().attr("href")?.trim()).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .filter(|u| {
            u.host_str()
                .is_some_and(|h| h.trim_start_matches("www.") == host)
        })
        .map(|mut u| {
            u.set_fragment(None);
            u
        })
        .filter(|u| u != url && u.path() != "/")
        .map(|u| u.to_string())
        .filter(|u| seen.insert(u.clone()))
        .take(MAX_LINKS)
        .collect()
}

/// Words: runs of letters/digits, with each CJK character counted as one.
pub fn word_count(text: &str) -> u32 {
    let mut n = 0u32;
    let mut in_word = false;
    for c in text.chars() {
        if is_cjk(c) {
            n += 1;
            in_word = false;
        } else if c.is_alphanumeric() {
            if !in_word {
                n += 1;
                in_word = true;
            }
        } else {
            in_word = false;
        }
    }
    n
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x3040..=0x30ff | 0x3400..=0x4dbf | 0x4e00..=0x9fff | 0xac00..=0xd7af | 0xf900..=0xfaff | 0x20000..=0x2fa1f)
}

fn build_record(page: Page<'_>, meta: Meta, cleaned: Cleaned) -> SnapshotRecord {
    let url = meta.canonical.clone().unwrap_or_else(|| page.url.clone());
    let hint_time = page.hints.map_or(0, |h| h.published_at);
    let offset = meta.published_offset;
    let (published_at, source) = match meta.published {
        // A URL only gives the day; a feed hint on that day is more precise.
        Some((ms, DateSource::Url)) if hint_time >= ms && hint_time < ms + 86_400_000 => {
            (hint_time, DateSource::Feed)
        }
        Some(found) => found,
        None if hint_time > 0 => (hint_time, DateSource::Feed),
        None => (page.fetched_at, DateSource::FetchTime),
    };
    let title = if meta.title.is_empty() {
        page.hints
            .map(|h| h.title.trim().to_string())
            .unwrap_or_default()
    } else {
        meta.title
    };
    let language = meta
        .language
        .or_else(|| {
            page.content_language
                .map(|l| l.split(',').next().unwrap_or(l).trim().to_string())
                .filter(|l| !l.is_empty())
        })
        .or_else(|| detect_language(&cleaned.text))
        .unwrap_or_default();
    let description = if meta.description.is_empty() {
        page.hints.map(|h| h.summary.clone()).unwrap_or_default()
    } else {
        meta.description
    };
    let canonical = crawlq_record::canonical_url(&url);
    SnapshotRecord {
        id: crawlq_record::record_id(&canonical),
        host: url.host_str().unwrap_or_default().to_string(),
        url: canonical,
        fetched_url: page.url.to_string(),
        title,
        published_at,
        published_at_source: source as i32,
        published_utc_offset_minutes: offset
            .filter(|_| !matches!(source, DateSource::Feed | DateSource::FetchTime)),
        modified_at: meta.modified.unwrap_or(0),
        fetched_at: page.fetched_at,
        site_name: meta.site_name,
        authors: meta.authors,
        language,
        description,
        lead_image: meta.image.or(cleaned.first_image).unwrap_or_default(),
        content_sha256: hex::encode(Sha256::digest(cleaned.html.as_bytes())),
        word_count: word_count(&cleaned.text),
        content_html: cleaned.html,
        text: cleaned.text,
        links: cleaned.links,
        extractor_version: EXTRACTOR_VERSION.to_string(),
        raw_key: String::new(),
        raw_zstd: Vec::new(),
        exchange: None,
        revisit: false,
        reextracted: false,
        record_key: String::new(),
        claimed_canonical: meta
            .claimed_canonical
            .map(|u| crawlq_record::canonical_url(&u))
            .unwrap_or_default(),
    }
}

/// ISO 639-1 where whatlang's 639-3 code has one we know.
fn detect_language(text: &str) -> Option<String> {
    let sample: String = text.chars().take(2000).collect();
    let info = whatlang::detect(&sample).filter(|i| i.is_reliable())?;
    let code = info.lang().code();
    let short = match code {
        "cmn" => "zh",
        "eng" => "en",
        "fra" => "fr",
        "deu" => "de",
        "spa" => "es",
        "rus" => "ru",
        "jpn" => "ja",
        "kor" => "ko",
        "por" => "pt",
        "ita" => "it",
        "ara" => "ar",
        "vie" => "vi",
        "ukr" => "uk",
        "tur" => "tr",
        "nld" => "nl",
        "pol" => "pl",
        "ind" => "id",
        other => other,
    };
    Some(short.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn story_urls() {
        let u = |s: &str| Url::parse(s).unwrap();
        assert!(names_one_story(&u(
            "https://x.com/Breaking-News/Son-of-former-president-stabbed-to-death-123"
        )));
        assert!(names_one_story(&u("https://x.com/news/2023/1234567.html")));
        assert!(!names_one_story(&u("https://x.com/world-news/")));
        assert!(!names_one_story(&u(
            "https://x.com/section/politics/page/2"
        )));
    }

    #[test]
    fn word_counts_mix_scripts() {
        assert_eq!(word_count("Hello, big world"), 3);
        assert_eq!(word_count("美国国务卿 Blinken"), 6);
    }

    #[test]
    fn pathological_nesting_is_refused_before_parsing() {
        let html = "<div>".repeat(65_536) + "x" + &"</div>".repeat(65_536);
        let url = Url::parse("https://x.com/a").unwrap();
        let page = Page {
            body: html.as_bytes(),
            content_type: None,
            content_language: None,
            url: &url,
            fetched_at: 0,
            hints: None,
        };
        let started = std::time::Instant::now();
        assert!(
            matches!(Extractor::default().extract(page), Err(ExtractError::Pathological(d)) if d >= 65_536)
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        assert_eq!(
            prescan_depth(
                b"<html><body><p>a<p>b<br><img src=x/><div><span>c</span></div></body></html>"
            ),
            4
        );
    }

    #[test]
    fn invalid_utf8_nul_bytes_and_empty_bodies_never_crash() {
        let url = Url::parse("https://x.com/a").unwrap();
        let ex = Extractor::default();
        let mut body = b"<html><body><article><p>".to_vec();
        body.extend_from_slice(b"Valid text \xff\xfe\x00 with broken bytes and a NUL, long enough to count as a paragraph of an article. ".repeat(5).as_slice());
        body.extend_from_slice(b"</p></article></body></html>");
        fn page<'a>(b: &'a [u8], url: &'a Url) -> Page<'a> {
            Page {
                body: b,
                content_type: Some("text/html; charset=utf-8"),
                content_language: None,
                url,
                fetched_at: 0,
                hints: None,
            }
        }
        match ex.extract(page(&body, &url)) {
            Ok(Extracted::Article(r)) => {
                // Broken bytes become replacement or legacy characters;
                // the text around them survives.
                assert!(r.text.contains("Valid text") && r.text.contains("with broken bytes"))
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            ex.extract(page(b"", &url)),
            Err(ExtractError::EmptyBody)
        ));
        assert!(matches!(
            ex.extract(page(b"\x00\x00\x00", &url)),
            Err(ExtractError::NoContent(_))
        ));
    }

    /// `html` extracted as fetched from `url`.
    fn extract_at(url: &str, html: &str) -> Result<Extracted, ExtractError> {
        let url = Url::parse(url).unwrap();
        Extractor::default().extract(Page {
            body: html.as_bytes(),
            content_type: Some("text/html; charset=utf-8"),
            content_language: None,
            url: &url,
            fetched_at: 0,
            hints: None,
        })
    }

    #[test]
    fn a_home_page_is_a_listing_unless_it_is_one_story_with_few_links() {
        let para = "A long paragraph of the one post this blog's home page shows in full, written out at length. ";
        let extract = |html: String| extract_at("https://blog.example.com/", &html);
        let one_post = format!(
            "<html><body><nav><a href=/about>About</a></nav><div><p>{}</p><p>{}</p></div></body></html>",
            para.repeat(4),
            para.repeat(2)
        );
        assert!(matches!(extract(one_post), Ok(Extracted::Article(_))));
        let links: String = (0..40)
            .map(|i| format!("<li><a href=/story-{i}>Headline of story number {i} on the front page</a></li>"))
            .collect();
        let front = format!(
            "<html><body><ul>{links}</ul><div><p>{}</p></div></body></html>",
            para.repeat(4)
        );
        assert!(matches!(extract(front), Ok(Extracted::Listing { .. })));
    }

    #[test]
    fn body_text_read_as_latin_1_is_repaired() {
        let url = "https://x.com/2025/guide";
        let para = "We\u{e2}\u{80}\u{99}ve narrowed down the tools that matter for a small business, one by one. ";
        let html = format!(
            "<html><body><article><h1>A guide</h1><p>{}</p></article></body></html>",
            para.repeat(4)
        );
        match extract_at(url, &html) {
            Ok(Extracted::Article(r)) => {
                assert!(r.text.starts_with("We\u{2019}ve narrowed"), "{}", r.text);
                assert!(r.content_html.contains("We\u{2019}ve narrowed"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn closed_accordion_panels_are_kept_and_hidden_blocks_dropped() {
        let url = "https://x.com/2025/solar-guide";
        let para = "The installation process begins once you decide on a company and a system for the roof. ";
        let html = format!(
            r#"<html><body><article><h1>A guide</h1><p>{p}</p>
            <div class="es-accordion"><a role="button" aria-controls="s1" id="h1">1. Site visit</a>
            <div id="s1" style="display:none" role="region" aria-labelledby="h1"><p>An engineer visits the property first. {p}</p></div></div>
            <div style="display:none"><p>Sign up for our newsletter to get offers. {p}</p></div>
            <div hidden class="panel-collapse"><p>The permits come next, filed by the installer. {p}</p></div>
            </article></body></html>"#,
            p = para.repeat(2)
        );
        match extract_at(url, &html) {
            Ok(Extracted::Article(r)) => {
                assert!(r.text.contains("An engineer visits"), "{}", r.text);
                assert!(r.text.contains("The permits come next"), "{}", r.text);
                assert!(!r.text.contains("newsletter"), "{}", r.text);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_disclosure_shows_its_question_and_its_panel() {
        let url = "https://x.com/2025/running-shoes";
        let para =
            "Test the shoes on the store's treadmill or outside before you buy a pair of them. ";
        let html = format!(
            r#"<html><body><article><h1>Running shoes</h1><p>First, {p}</p><p>Second, {p}</p>
            <div><h3><button aria-expanded="false"><p>What are common buying mistakes?</p></button></h3>
            <div aria-hidden="true" hidden><p>Buying on looks is the big one. {p}</p></div></div>
            <div><button aria-expanded="false" aria-controls="faq-1">How often should I replace them?</button>
            <div id="faq-1" style="height:0;overflow:hidden" aria-hidden="true"><p>Every 500 miles or so. {p}</p></div></div>
            <div class="toolbar-item"><button aria-expanded="false">Menu</button></div>
            <div aria-hidden="true"><p>A copy of the teaser for screen readers to skip. {p}</p></div>
            </article></body></html>"#,
            p = para.repeat(2)
        );
        match extract_at(url, &html) {
            Ok(Extracted::Article(r)) => {
                for kept in [
                    "What are common buying mistakes?",
                    "Buying on looks",
                    "How often should I replace them?",
                    "Every 500 miles",
                ] {
                    assert!(r.text.contains(kept), "{kept:?} missing: {}", r.text);
                }
                assert!(!r.text.contains("Menu"), "{}", r.text);
                assert!(!r.text.contains("screen readers"), "{}", r.text);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_faq_after_the_story_is_part_of_it() {
        let url = "https://x.com/blog/tech-events-2026";
        let para = "This year's conferences bring together engineers, founders and researchers from every continent, ";
        let story: String = (0..6)
            .map(|i| format!("<p>Event {i}. {}</p>", para.repeat(3)))
            .collect();
        let html = format!(
            r#"<html><body><main><section class="article-content">
            <div class="info"><div class="wrap"><div class="body">{story}</div></div>
            <div class="share-bar"><a href="/s">Share</a></div></div>
            <section class="common-section"><div class="FAQ_wrapper"><h2>FAQs</h2>
            <div class="item"><div class="title">What is the largest tech event?</div>
            <div class="body"><p>The Mobile World Congress is often listed as the largest, closely followed by CES.</p></div></div>
            <div class="item"><div class="title">How to prepare?</div>
            <div class="body"><p>Organise the itinerary first, then read the agenda and pick the sessions.</p></div></div>
            </div></section>
            <section class="more"><a href="/a">Another story with a long title here</a></section>
            </section></main></body></html>"#
        );
        match extract_at(url, &html) {
            Ok(Extracted::Article(r)) => {
                assert!(r.text.contains("Event 5."), "{}", r.text);
                assert!(r.text.contains("Mobile World Congress"), "{}", r.text);
                assert!(r.text.contains("How to prepare?"), "{}", r.text);
                assert!(!r.text.contains("Another story"), "{}", r.text);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_story_wrapped_in_one_link_is_the_article_not_the_footer() {
        let url = "https://tv.example.com/2012/01/11/a644768.html";
        let para = "寒冷的天氣裡相對溼度降低，空氣比較乾燥，皮膚可能會變乾、脫皮、失去光澤，嚴重的還會發紅發癢。";
        let story: String = (0..10).map(|_| format!("{para}<br><br>")).collect();
        let nav: String = (0..12)
            .map(|i| format!("<li><a href=/n{i}.html>新聞{i}</a></li>"))
            .collect();
        let html = format!(
            r#"<html><body><ul>{nav}</ul><div class="intr"><dl><a href="/atext644768.html">{story}</a></dl></div>
            <div class="bottom">Copyright © 2002-2011 New Tang Dynasty Television All Rights Reserved<br>紐約總部：229 W. 28th Street, Suite 700, New York</div></body></html>"#
        );
        match extract_at(url, &html) {
            Ok(Extracted::Article(r)) => {
                assert_eq!(r.text.matches("寒冷的天氣裡").count(), 10, "{}", r.text);
                assert!(!r.text.contains("Copyright"), "{}", r.text);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_article_in_numbered_sections_of_one_class_is_taken_whole() {
        let url = "https://dos.example.gov/forming-a-company";
        let para = |topic: &str| {
            format!("<p>On {topic}: an organizer files the articles with the department, and the filing sets out the name, the county and the agent for service.</p>")
        };
        let section = |i: u32, paras: String| {
            format!(
                r#"<div class="next-section"><div class="divider"></div></div><section id="toc_{i}" class="toc-para wysiwyg"><h2>Part {i}</h2><div><div class="field-body">{paras}</div></div></section>"#
            )
        };
        let many: String = ["names", "agents", "counties", "fees", "notices"]
            .iter()
            .map(|t| para(t))
            .collect();
        let html = format!(
            r#"<html><body><nav><a href=/a>A</a> <a href=/b>B</a></nav><div class="toc-chapters">{}{}{}</div></body></html>"#,
            section(1, "<p>New York recognizes many business forms, each with its own rules on liability, taxes and filings, and each suits a different kind of owner.</p>".into()),
            section(2, many),
            section(3, format!("<p>Questions and answers follow.</p>{}{}", para("dissolution"), para("mergers")))
        );
        match extract_at(url, &html) {
            Ok(Extracted::Article(r)) => {
                for part in [
                    "New York recognizes",
                    "On fees",
                    "Questions and answers",
                    "On mergers",
                ] {
                    assert!(r.text.contains(part), "{part}: {}", r.text);
                }
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_short_block_of_the_same_class_as_the_story_is_part_of_it() {
        // Site builders give every text block of a post one class.
        let url = "https://blog.example.com/zero-waste-guide";
        let block = |text: &str| {
            format!(
                r#"<div class="sqs-block html-block"><div class="sqs-block-content"><p>{text}</p></div></div>"#
            )
        };
        let long = "Start with what you already own, use it up, and replace it with something that lasts, one habit at a time. ";
        // One block holds a short text and its own list of links.
        let with_links = r#"<div class="sqs-block html-block"><div class="sqs-block-content"><p>Composting at home takes a bin, a balcony and ten minutes a week.</p><ul><li><a href="/bins">The bins we tested for small flats</a></li><li><a href="/worms">Worm farms for beginners</a></li></ul></div></div>"#;
        let html = format!(
            r#"<html><body><div class="content">{}<div class="image-block"><img src=/a.jpg alt=""></div>{}{}{with_links}</div><div class="links"><a href=/x>Shop</a></div></body></html>"#,
            block("I dove into the zero waste lifestyle in 2015 and never looked back, and here is how."),
            block(&long.repeat(8)),
            block(&long.repeat(3))
        );
        match extract_at(url, &html) {
            Ok(Extracted::Article(r)) => {
                assert!(r.text.contains("I dove into the zero waste"), "{}", r.text);
                assert!(r.text.contains("Composting at home"), "{}", r.text);
                assert!(!r.text.contains("Worm farms"), "{}", r.text);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_version_names_the_code_that_extracts() {
        let (name, build) = EXTRACTOR_VERSION.split_once('+').expect("a digest");
        assert_eq!(
            name,
            concat!("crawlq-extractor/", env!("CARGO_PKG_VERSION"))
        );
        assert_eq!(build.len(), 8, "{EXTRACTOR_VERSION}");
        assert!(
            build.chars().all(|c| c.is_ascii_hexdigit()),
            "{EXTRACTOR_VERSION}"
        );
    }

    #[test]
    fn ids_are_16_hex() {
        let id = crawlq_record::record_id("https://example.com/a");
        assert_eq!(id.len(), 16);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
