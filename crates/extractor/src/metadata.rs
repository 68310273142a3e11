//! Page metadata: title, canonical URL, dates, authors, language,
//! description, lead image and site name, from meta tags, JSON-LD, and the
//! document itself.

use std::collections::HashMap;

use crawlq_proto::v1::DateSource;
use scraper::{ElementRef, Html, Selector};
use serde_json::Value;
use url::Url;

use crate::dates;

/// Metadata found in a page.
#[derive(Debug, Clone, Default)]
pub struct Meta {
    /// Article title.
    pub title: String,
    /// Canonical URL, absolute http(s).
    pub canonical: Option<Url>,
    /// The canonical URL the page claims, when it is not on the page's own
    /// site and so was not taken as its identity.
    pub claimed_canonical: Option<Url>,
    /// Publication time (Unix ms) and its source.
    pub published: Option<(i64, DateSource)>,
    /// The UTC offset the publication time was given in, minutes.
    pub published_offset: Option<i32>,
    /// Modification time (Unix ms).
    pub modified: Option<i64>,
    /// Author names.
    pub authors: Vec<String>,
    /// Language declared in the document.
    pub language: Option<String>,
    /// Description.
    pub description: String,
    /// Lead image URL.
    pub image: Option<String>,
    /// Site name.
    pub site_name: String,
    /// The longest JSON-LD `articleBody`, for the content fallbacks.
    pub ld_article_body: Option<String>,
    /// Does the page say it is an article (og:type, JSON-LD type)?
    pub declares_article: bool,
}

struct Sel {
    meta: Selector,
    ld: Selector,
    canonical: Selector,
    title: Selector,
    h1: Selector,
    subheads: Selector,
    time: Selector,
    itemprop_pub: Selector,
    itemprop_mod: Selector,
    author_link: Selector,
}

fn sel() -> &'static Sel {
    static SEL: std::sync::OnceLock<Sel> = std::sync::OnceLock::new();
    SEL.get_or_init(|| {
        let s = |q: &str| Selector::parse(q).expect("static selector");
        Sel {
            meta: s("meta"),
            ld: s(r#"script[type="application/ld+json"]"#),
            canonical: s(r#"link[rel~="canonical"]"#),
            title: s("title"),
            h1: s("h1"),
            subheads: s("h2, h3, h4"),
            time: s("article time[datetime], main time[datetime], time[datetime]"),
            itemprop_pub: s(r#"[itemprop="datePublished"]"#),
            itemprop_mod: s(r#"[itemprop="dateModified"]"#),
            author_link: s(r#"a[rel~="author"], [itemprop="author"] [itemprop="name"]"#),
        }
    })
}

/// Meta tags by lowercased `property`, `name` or `itemprop`; first wins.
fn meta_map(doc: &Html) -> HashMap<String, String> {
    let mut map = HashMap::new();
    for el in doc.select(&sel().meta) {
        let v = el.value();
        let Some(content) = v.attr("content").map(str::trim).filter(|c| !c.is_empty()) else {
            continue;
        };
        for key in ["property", "name", "itemprop", "http-equiv"] {
            if let Some(k) = v.attr(key) {
                map.entry(k.trim().to_ascii_lowercase())
                    .or_insert_with(|| content.to_string());
            }
        }
    }
    map
}

/// The JSON-LD object that best describes the page (the first whose
/// `@type` names an article, else the first with a headline), and every
/// object found.
fn json_ld(doc: &Html) -> (Option<Value>, Vec<Value>) {
    let mut objects = Vec::new();
    for script in doc.select(&sel().ld) {
        let raw: String = script.text().collect();
        let raw = raw
            .trim()
            .trim_start_matches("<![CDATA[")
            .trim_end_matches("]]>")
            .trim()
            .trim_end_matches(';');
        // Raw newlines and tabs inside strings are invalid JSON that
        // browsers and search engines accept; so do we.
        let parsed = serde_json::from_str::<Value>(raw).or_else(|_| {
            serde_json::from_str::<Value>(&raw.replace(|c: char| c.is_control(), " "))
        });
        if let Ok(v) = parsed {
            flatten(v, &mut objects, 0);
        }
    }
    let best = objects
        .iter()
        .find(|o| is_article_node(o))
        .or_else(|| objects.iter().find(|o| o.get("headline").is_some()))
        .cloned();
    (best, objects)
}

/// Does a JSON-LD node's `@type` name an article (`Article`,
/// `NewsArticle`, `BlogPosting`, `Report`...)?
fn is_article_node(o: &Value) -> bool {
    let names: Vec<&str> = match o.get("@type") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    names
        .iter()
        .any(|n| n.contains("Article") || n.contains("BlogPosting") || n.contains("Report"))
}

/// The longest JSON-LD `articleBody` on the page, searched through every
/// node.
fn ld_article_body(objects: &[Value]) -> Option<String> {
    fn find(v: &Value, depth: u32) -> Option<&str> {
        if depth > 6 {
            return None;
        }
        match v {
            Value::Object(o) => o
                .get("articleBody")
                .and_then(Value::as_str)
                .filter(|s| !s.trim().is_empty())
                .or_else(|| o.values().find_map(|c| find(c, depth + 1))),
            Value::Array(a) => a.iter().find_map(|c| find(c, depth + 1)),
            _ => None,
        }
    }
    objects
        .iter()
        .filter_map(|o| find(o, 0))
        .max_by_key(|b| b.len())
        .map(str::to_string)
}

fn flatten(v: Value, out: &mut Vec<Value>, depth: u32) {
    if depth > 4 {
        return;
    }
    match v {
        Value::Array(items) => items.into_iter().for_each(|i| flatten(i, out, depth + 1)),
        Value::Object(mut map) => {
            if let Some(graph) = map.remove("@graph") {
                flatten(graph, out, depth + 1);
            }
            out.push(Value::Object(map));
        }
        _ => {}
    }
}

fn ld_str(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
        Value::Array(a) => a.iter().find_map(ld_str),
        Value::Object(o) => o
            .get("name")
            .or_else(|| o.get("url"))
            .or_else(|| o.get("@id"))
            .and_then(ld_str),
        _ => None,
    }
}

fn ld_names(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a.iter().flat_map(ld_names).collect(),
        other => ld_str(other).into_iter().collect(),
    }
}

/// Extracts metadata. `final_url` resolves relative URLs; `now_ms` bounds
/// dates (never more than five minutes in the future).
pub fn extract(doc: &Html, final_url: &Url, now_ms: i64) -> Meta {
    let (ld, ld_all) = json_ld(doc);
    let mut page = Sources {
        doc,
        meta: meta_map(doc),
        ld,
        ld_all,
        heading: None,
        month_first: false,
        final_url,
        future_limit: now_ms + 5 * 60 * 1000,
    };
    page.heading = page.find_heading();
    page.month_first = page
        .language()
        .is_some_and(|l| l.eq_ignore_ascii_case("en-us"));
    let site_name = page.site_name();
    let published = page.published();
    Meta {
        title: page.title(&site_name),
        canonical: page.canonical(),
        claimed_canonical: page.claimed_canonical(),
        published: published.map(|(ms, _, source)| (ms, source)),
        published_offset: published.and_then(|(_, offset, _)| offset),
        modified: page.modified(),
        authors: page.authors(),
        language: page.language(),
        description: page.description(),
        image: page.image(),
        declares_article: page.declares_article(),
        ld_article_body: ld_article_body(&page.ld_all),
        site_name,
    }
}

/// Where a page's metadata can come from: its meta tags, its JSON-LD
/// object, its elements and its URL.
struct Sources<'a> {
    doc: &'a Html,
    meta: HashMap<String, String>,
    ld: Option<Value>,
    /// Every JSON-LD object (a `WebPage` node may date an article that
    /// has no `Article` node of its own).
    ld_all: Vec<Value>,
    /// The article's `h1` (see [`Sources::find_heading`]).
    heading: Option<ElementRef<'a>>,
    /// Does the page's language write `03/01/2017` month first (American
    /// English)?
    month_first: bool,
    final_url: &'a Url,
    /// Dates after this (five minutes from now) are refused.
    future_limit: i64,
}

/// The meta names that carry a publication date, in the order trusted.
const DATE_META: [&str; 19] = [
    "og:published_time",
    "pubdate",
    "publishdate",
    "publish-date",
    "publish_date",
    "date",
    "dc.date",
    "dc.date.issued",
    "dcterms.created",
    "dcterms.date",
    "sailthru.date",
    "parsely-pub-date",
    "article.published",
    "cxenseparse:recs:publishtime",
    "citation_publication_date",
    "release_date",
    "datepublished",
    "originalpublicationdate",
    "displaydate",
];

impl<'a> Sources<'a> {
    fn m(&self, k: &str) -> Option<&str> {
        self.meta.get(k).map(String::as_str)
    }

    fn ld(&self, k: &str) -> Option<&Value> {
        self.ld.as_ref().and_then(|o| o.get(k))
    }

    /// The article's heading: the `h1` that the page title names, else
    /// the first in an `article` or `main`, else the first (a logo in an
    /// `h1` is common).
    fn find_heading(&self) -> Option<ElementRef<'a>> {
        let h1s = self.headings(&sel().h1);
        let in_main = || {
            h1s.iter().find(|(e, _)| {
                e.ancestors()
                    .filter_map(ElementRef::wrap)
                    .any(|a| matches!(a.value().name(), "article" | "main"))
            })
        };
        self.named_by_title(&h1s)
            .or_else(in_main)
            .or(h1s.first())
            .map(|(e, _)| *e)
    }

    /// Where the header's printed date is looked for: the heading, else
    /// (a page without an `h1`) the `h2` to `h4` the page title names, or
    /// that has most of the title's words.
    fn date_anchor(&self) -> Option<ElementRef<'a>> {
        self.heading.or_else(|| {
            let heads = self.headings(&sel().subheads);
            let title = self
                .text_of(&sel().title)
                .unwrap_or_default()
                .to_lowercase();
            self.named_by_title(&heads)
                .or_else(|| heads.iter().find(|(_, t)| overlap(&title, t) >= 0.6))
                .map(|(e, _)| *e)
        })
    }

    /// The first 20 non-empty elements `selector` picks, with their text
    /// collapsed and lowercased.
    fn headings(&self, selector: &Selector) -> Vec<(ElementRef<'a>, String)> {
        self.doc
            .select(selector)
            .take(20)
            .map(|e| (e, collapse(&e.text().collect::<String>()).to_lowercase()))
            .filter(|(_, t)| !t.is_empty())
            .collect()
    }

    /// The first of `heads` that `og:title` or `<title>` names (one holds
    /// the other; 10 characters at least).
    fn named_by_title<'h>(
        &self,
        heads: &'h [(ElementRef<'a>, String)],
    ) -> Option<&'h (ElementRef<'a>, String)> {
        let titles: Vec<String> = [
            self.m("og:title").map(str::to_string),
            self.text_of(&sel().title),
        ]
        .into_iter()
        .flatten()
        .map(|t| collapse(&t).to_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
        heads.iter().find(|(_, t)| {
            t.chars().count() >= 10
                && titles
                    .iter()
                    .any(|title| title.contains(t.as_str()) || t.contains(title.as_str()))
        })
    }

    fn text_of(&self, selector: &scraper::Selector) -> Option<String> {
        self.doc
            .select(selector)
            .next()
            .map(|e| collapse(&e.text().collect::<String>()))
    }

    fn site_name(&self) -> String {
        self.m("og:site_name")
            .map(str::to_string)
            .or_else(|| self.ld("publisher").and_then(ld_str))
            .or_else(|| self.m("application-name").map(str::to_string))
            .unwrap_or_default()
    }

    /// The headline as the reader sees it. The article's `h1` wins when
    /// it is trustworthy: the page's other titles name it (half its words
    /// are in one of them), or it is the page's only one and headline
    /// length, or, when there is no other title, it sits in the `article`
    /// or `main` or is the only one. Otherwise
    /// og:title, the JSON-LD headline, `<title>`, twitter:title, in that
    /// order, without the site-name suffix (SEO titles often differ from
    /// the headline printed on the page).
    /// The title, repaired of the damage templates do to it (see
    /// [`tidy_text`]).
    fn title(&self, site_name: &str) -> String {
        tidy_text(&self.raw_title(site_name)).into_owned()
    }

    fn raw_title(&self, site_name: &str) -> String {
        let others: Vec<String> = [
            self.m("og:title").map(str::to_string),
            self.ld("headline").and_then(ld_str),
            self.text_of(&sel().title),
            self.m("twitter:title").map(str::to_string),
        ]
        .into_iter()
        .flatten()
        .map(|t| collapse(&t))
        .filter(|t| !t.is_empty())
        .collect();
        let h1 = self.heading.and_then(|e| {
            let text = collapse(&e.text().collect::<String>());
            // Words as the extractor counts them: one per CJK character.
            let words = crate::extract::word_count(&text);
            let chars = text.chars().count();
            let sized = (2..=60).contains(&words) || (6..=120).contains(&chars);
            let in_main = e
                .ancestors()
                .filter_map(ElementRef::wrap)
                .any(|a| matches!(a.value().name(), "article" | "main"));
            let only = self.doc.select(&sel().h1).nth(1).is_none();
            let named = others.iter().any(|t| overlap(&text, t) >= 0.5);
            let is_site = !site_name.is_empty() && text.eq_ignore_ascii_case(site_name);
            // Unnamed by the page's own titles, an h1 is often a section
            // or blog name ("The Blog"): trusted when it is the page's
            // only one and as long as a headline (six words or more; the
            // SEO title was rewritten), or when there is no other title.
            let trusted = named || only && words >= 6 || others.is_empty() && in_main;
            (sized && !is_site && trusted).then_some(text)
        });
        if let Some(h1) = h1 {
            return h1;
        }
        let h1 = self
            .heading
            .map(|e| collapse(&e.text().collect::<String>()));
        others
            .first()
            .map(|t| strip_site_suffix(t, site_name, h1.as_deref()))
            .unwrap_or_default()
    }

    fn resolve(&self, raw: &str) -> Option<Url> {
        self.final_url
            .join(raw.trim())
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
    }

    /// Canonical and og:url candidates, resolved, in the order trusted; a
    /// home-page canonical on an article is a site bug and is skipped.
    fn canonical_candidates(&self) -> impl Iterator<Item = Url> + '_ {
        self.doc
            .select(&sel().canonical)
            .filter_map(|e| e.value().attr("href"))
            .chain(self.m("og:url"))
            .filter_map(|raw| self.resolve(raw))
            .filter(|u| !(u.path() == "/" && self.final_url.path() != "/"))
    }

    /// The record's identity: the first candidate on the page's own site. A
    /// page may not file itself as another site's article.
    fn canonical(&self) -> Option<Url> {
        self.canonical_candidates()
            .find(|u| same_site(u, self.final_url))
    }

    /// The first candidate, when it is on another site.
    fn claimed_canonical(&self) -> Option<Url> {
        self.canonical_candidates()
            .next()
            .filter(|u| !same_site(u, self.final_url))
    }

    fn acceptable(&self, ms: i64) -> bool {
        ms <= self.future_limit
    }

    fn first_date(&self, cands: &[Option<String>]) -> Option<i64> {
        self.first_zoned(cands).map(|(ms, _)| ms)
    }

    fn first_zoned(&self, cands: &[Option<String>]) -> Option<(i64, Option<i32>)> {
        cands
            .iter()
            .flatten()
            .filter_map(|s| dates::parse_zoned_in(s, self.month_first))
            .find(|(ms, _)| self.acceptable(*ms))
    }

    /// The original publication time and where it came from: the day the
    /// page says it first appeared when that is the oldest, else the
    /// sources in the order trusted; a page that gives only a modification
    /// time is dated by it (it is at least that old), and says so.
    fn published(&self) -> Option<(i64, Option<i32>, DateSource)> {
        let found = self.published_by_sources();
        // "This article was originally published on 26 Sep 2019": the page
        // itself says when it first appeared, which no metadata reset can
        // move. It wins over any later date.
        let original = original_statement(self.doc)
            .and_then(|t| dates::parse_zoned_in(&t, self.month_first))
            .filter(|(ms, _)| self.acceptable(*ms));
        match (original, found) {
            (Some((ms, offset)), Some(f)) if before_everywhere(ms, offset, f.0) => {
                Some((ms, offset, DateSource::Text))
            }
            (Some((ms, offset)), None) => Some((ms, offset, DateSource::Text)),
            (_, found) => found,
        }
    }

    /// [`Self::published`] from the page's declared and printed dates.
    fn published_by_sources(&self) -> Option<(i64, Option<i32>, DateSource)> {
        let ld_any = |key: &str| -> Vec<Option<String>> {
            self.ld_all
                .iter()
                .map(|o| o.get(key).and_then(ld_str))
                .collect()
        };
        let mut json_ld = vec![
            self.ld("datePublished").and_then(ld_str),
            self.ld("dateCreated").and_then(ld_str),
        ];
        json_ld.extend(ld_any("datePublished"));
        json_ld.extend(ld_any("dateCreated"));
        // The header scan reads the page's text: only when nothing
        // better dated it.
        let header = std::cell::OnceCell::new();
        let header =
            || header.get_or_init(|| self.date_anchor().map(header_dates).unwrap_or_default());
        let labelled = std::cell::OnceCell::new();
        let labelled = || labelled.get_or_init(|| labelled_dates(self.doc));
        let sources: [(DateSource, Vec<Option<String>>); 5] = [
            (DateSource::JsonLd, json_ld),
            (
                DateSource::OpenGraph,
                ["article:published_time", "og:article:published_time"]
                    .iter()
                    .map(|k| self.m(k).map(str::to_string))
                    .collect(),
            ),
            (
                DateSource::Itemprop,
                self.doc
                    .select(&sel().itemprop_pub)
                    .take(3)
                    .map(element_date)
                    .collect(),
            ),
            (
                DateSource::TimeElement,
                self.doc
                    .select(&sel().time)
                    .take(5)
                    .filter(|e| !says_updated(&attr_context(*e)))
                    .map(|e| e.value().attr("datetime").map(str::to_string))
                    .collect(),
            ),
            (DateSource::Meta, self.date_meta()),
        ];
        let zoned = |source: DateSource, cands: &[Option<String>]| {
            self.first_zoned(cands)
                .map(|(ms, offset)| (ms, offset, source))
        };
        let declared = sources
            .iter()
            .find_map(|(source, cands)| zoned(*source, cands));
        // A page is at least as old as the date its header prints: when
        // that day is over before the declared instant's day begins in
        // every time zone (a CMS migration, a republication or a last
        // "publish" reset the metadata), the printed one is the original.
        // A day that is the declared one somewhere on Earth is a time
        // zone, where the declared time is the more precise.
        if let Some((declared_ms, ..)) = declared {
            let printed = header()
                .byline
                .then(|| zoned(DateSource::Text, &[header().published.clone()]))
                .flatten();
            if let Some(p) = printed.filter(|p| before_everywhere(p.0, p.1, declared_ms)) {
                return Some(p);
            }
        }
        declared
            .or_else(|| {
                dates::from_url(self.final_url.as_str())
                    .filter(|ms| self.acceptable(*ms))
                    .map(|ms| (ms, None, DateSource::Url))
            })
            .or_else(|| zoned(DateSource::Text, &[header().published.clone()]))
            .or_else(|| zoned(DateSource::Text, &[labelled().published.clone()]))
            .or_else(|| {
                let modified = self.modified_candidates();
                zoned(DateSource::Modified, &modified)
                    .or_else(|| zoned(DateSource::Modified, &[header().updated.clone()]))
                    .or_else(|| zoned(DateSource::Modified, &[labelled().updated.clone()]))
            })
    }

    /// Publication dates in meta tags: the known names in the order
    /// trusted, then any other name that says it is one.
    fn date_meta(&self) -> Vec<Option<String>> {
        let mut other: Vec<&String> = self
            .meta
            .keys()
            .filter(|k| {
                let publish =
                    (k.contains("publish") && !k.contains("publisher")) || k.contains("created");
                let date = k.contains("date") || k.contains("time") || k.ends_with("published");
                (publish && date || k.ends_with(":date") || k.ends_with(".date"))
                    && !says_updated(k)
            })
            .collect();
        other.sort();
        DATE_META
            .iter()
            .map(|k| self.m(k).map(str::to_string))
            .chain(other.into_iter().map(|k| self.meta.get(k).cloned()))
            .collect()
    }

    fn modified_candidates(&self) -> Vec<Option<String>> {
        vec![
            self.ld("dateModified").and_then(ld_str),
            self.m("article:modified_time").map(str::to_string),
            self.m("og:updated_time").map(str::to_string),
            self.m("last-modified").map(str::to_string),
            self.m("dcterms.modified").map(str::to_string),
            self.doc
                .select(&sel().itemprop_mod)
                .next()
                .and_then(element_date),
        ]
    }

    fn modified(&self) -> Option<i64> {
        self.first_date(&self.modified_candidates())
    }

    fn authors(&self) -> Vec<String> {
        let mut authors: Vec<String> = self.ld("author").map(ld_names).unwrap_or_default();
        if authors.is_empty() {
            let named = [
                "author",
                "article:author",
                "parsely-author",
                "dc.creator",
                "byl",
            ]
            .iter()
            .find_map(|k| self.m(k).filter(|a| !a.starts_with("http")));
            if let Some(a) = named {
                authors.push(
                    a.trim_start_matches("By ")
                        .trim_start_matches("by ")
                        .to_string(),
                );
            }
        }
        if authors.is_empty() {
            authors = self
                .doc
                .select(&sel().author_link)
                .map(|e| collapse(&e.text().collect::<String>()))
                .filter(|a| !a.is_empty())
                .take(3)
                .collect();
        }
        authors.retain(|a| !a.starts_with("http") && a.chars().count() < 100);
        authors.dedup();
        authors.truncate(5);
        authors
    }

    fn language(&self) -> Option<String> {
        let root = self.doc.root_element().value();
        root.attr("lang")
            .or_else(|| root.attr("xml:lang"))
            .or_else(|| self.m("content-language"))
            .or_else(|| self.m("og:locale"))
            .map(|l| l.trim().replace('_', "-"))
            .filter(|l| !l.is_empty())
    }

    fn description(&self) -> String {
        self.m("og:description")
            .or_else(|| self.m("description"))
            .or_else(|| self.m("twitter:description"))
            .map(str::to_string)
            .or_else(|| self.ld("description").and_then(ld_str))
            .map(|d| collapse(&d))
            .unwrap_or_default()
    }

    fn image(&self) -> Option<String> {
        self.m("og:image")
            .or_else(|| self.m("og:image:url"))
            .or_else(|| self.m("twitter:image"))
            .or_else(|| self.m("twitter:image:src"))
            .map(str::to_string)
            .or_else(|| self.ld("image").and_then(ld_str))
            .and_then(|i| self.resolve(&i))
            .map(|u| u.to_string())
    }

    /// og:type article, a JSON-LD `Article`, `NewsArticle`,
    /// `BlogPosting` (or other article type) node, or an
    /// `article:published_time`.
    fn declares_article(&self) -> bool {
        self.m("og:type").is_some_and(|t| t.contains("article"))
            || self.m("article:published_time").is_some()
            || self.ld_all.iter().any(is_article_node)
    }
}

/// Is the calendar day of `printed` (in its own offset, else as written)
/// over before `declared`'s day begins in the westernmost time zone
/// (UTC-12)? Then no reading of the two in one zone makes them the same
/// day.
fn before_everywhere(printed_ms: i64, printed_offset: Option<i32>, declared_ms: i64) -> bool {
    const DAY: i64 = 86_400_000;
    let local = printed_ms + i64::from(printed_offset.unwrap_or(0)) * 60_000;
    local.div_euclid(DAY) < (declared_ms - DAY / 2).div_euclid(DAY)
}

/// Are two URLs on the same site: the same registrable domain (by the
/// public suffix list: `www.bbc.co.uk` and `news.bbc.co.uk` are, `a.github.io`
/// and `b.github.io` are not), or the same host where there is none (an IP
/// address, `localhost`)?
pub fn same_site(a: &Url, b: &Url) -> bool {
    let (Some(ha), Some(hb)) = (a.host_str(), b.host_str()) else {
        return false;
    };
    let (ha, hb) = (ha.to_ascii_lowercase(), hb.to_ascii_lowercase());
    if ha == hb {
        return true;
    }
    let site = |h: &str| {
        matches!(
            Url::parse(&format!("http://{h}/")).ok()?.host()?,
            url::Host::Domain(_)
        )
        .then(|| psl::domain_str(h).map(str::to_string))
        .flatten()
    };
    match (site(&ha), site(&hb)) {
        (Some(sa), Some(sb)) => sa == sb,
        _ => false,
    }
}

/// A date an element carries: its `content` or `datetime`, else its text.
fn element_date(e: ElementRef<'_>) -> Option<String> {
    let v = e.value();
    v.attr("content")
        .or_else(|| v.attr("datetime"))
        .map(str::to_string)
        .or_else(|| Some(e.text().collect::<String>()))
}

/// Share of `a`'s words (lowercased) that appear in `b`.
fn overlap(a: &str, b: &str) -> f32 {
    let words = |s: &str| -> Vec<String> {
        s.split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect()
    };
    let (a, b) = (words(a), words(b));
    if a.is_empty() {
        return 0.0;
    }
    a.iter().filter(|w| b.contains(w)).count() as f32 / a.len() as f32
}

/// Words that say a date is an update, not the publication.
const UPDATED_WORDS: &[&str] = &[
    "updat",
    "modif",
    "revis",
    "review",
    "edited",
    "更新",
    "mis à jour",
    "mise à jour",
    "aktualisiert",
    "actualiz",
    "atualiz",
    "aggiornat",
    "bijgewerkt",
    "修改",
];

/// Does a label say "updated" rather than "published"?
fn says_updated(label: &str) -> bool {
    label_says(label, UPDATED_WORDS)
}

/// Does `label`, lowercased, hold one of `words`?
fn label_says(label: &str, words: &[&str]) -> bool {
    let l = label.to_lowercase();
    words.iter().any(|w| l.contains(w))
}

/// The class, itemprop and id of an element and its parent: where a
/// template says what a date is.
fn attr_context(e: ElementRef<'_>) -> String {
    let mut out = String::new();
    let parent = e.parent().and_then(ElementRef::wrap);
    for el in std::iter::once(e).chain(parent) {
        for a in ["class", "itemprop", "id"] {
            if let Some(v) = el.value().attr(a) {
                out.push_str(v);
                out.push(' ');
            }
        }
    }
    out
}

/// Dates printed in the article header: short text near the `h1`, such as
/// "Published on July 18, 2025", "2023年11月9日 12:42" or "Updated Dec 12,
/// 2025". The first in the byline's place under the heading wins, then the
/// nearest before the heading, then one further down the opening.
#[derive(Debug, Default)]
struct HeaderDates {
    published: Option<String>,
    /// Where the published date was found: its text's index and length.
    published_at: Option<(usize, usize)>,
    updated: Option<String>,
    /// The published date is a short text of its own right under the
    /// heading (a byline), not a phrase in the story or a table.
    byline: bool,
}

fn header_dates(h1: ElementRef<'_>) -> HeaderDates {
    let doc = h1.tree();
    let in_h1 = |id: ego_tree::NodeId| {
        doc.get(id)
            .is_some_and(|n| n.ancestors().any(|a| a.id() == h1.id()))
    };
    // The texts up to 60 after the heading's first: no further is read.
    let mut texts = Vec::new();
    let mut at = None;
    for text in page_texts(doc) {
        if at.is_none() && in_h1(text.0) {
            at = Some(texts.len());
        }
        texts.push(text);
        if at.is_some_and(|a| texts.len() >= a + 60) {
            break;
        }
    }
    let Some(at) = at else {
        return HeaderDates::default();
    };
    // The byline's place under the heading first, then the line just
    // above it (a kicker's date), then the rest of the story's opening.
    let end = texts.len().min(at + 60);
    let near = end.min(at + 26);
    let order = (at..near).chain((0..at).rev().take(15)).chain(near..end);
    let mut out = scan_dates(doc, &texts, order, false);
    out.byline = out
        .published_at
        .is_some_and(|(i, len)| i > at && i <= at + 25 && len <= 40);
    out
}

/// Dates the page labels anywhere ("Published on April 13, 2023",
/// "Posted: 15 August 2025", "Last updated: November 13, 2025"), for a
/// page that prints its date far from its heading (under the article, in
/// a sidebar) or has no heading: only labelled ones count there.
fn labelled_dates(doc: &Html) -> HeaderDates {
    let texts: Vec<_> = page_texts(&doc.tree).collect();
    scan_dates(&doc.tree, &texts, 0..texts.len(), true)
}

/// Phrases by which a page says when it first appeared.
const ORIGINALLY_WORDS: &[&str] = &[
    "originally published",
    "first published",
    "originally posted",
    "first posted",
    "originally appeared",
    "first appeared",
    "publié initialement",
    "initialement publié",
    "ursprünglich veröffentlicht",
    "erstmals veröffentlicht",
    "publicado originalmente",
    "originalmente publicado",
];

/// The date a page gives in a sentence saying when it first appeared
/// ("This article was originally published on 26 Sep 2019 at 4:12pm but
/// has been regularly updated", "Originally published <span>November 9,
/// 2022</span>"), as the words that parse as one.
fn original_statement(doc: &Html) -> Option<String> {
    let mut texts = page_texts(&doc.tree);
    // Most pages hold none of the phrases: a look for their second
    // word's stem spares lowercasing every text of the page.
    const STEMS: &[&str] = &[
        "ublish",
        "osted",
        "ppeared",
        "ublié",
        "öffentlicht",
        "ublicado",
    ];
    std::iter::from_fn(|| texts.next().map(|(_, text)| (text, texts.clone()))).find_map(
        |(text, rest)| {
            if !STEMS.iter().any(|s| text.contains(s)) {
                return None;
            }
            let lower = text.to_lowercase();
            let (from, at) = ORIGINALLY_WORDS
                .iter()
                .find_map(|w| lower.find(w).map(|at| (at, at + w.len())))?;
            // Said of the page itself: opening its text, or after "this
            // article was"; not a citation's "…, first published 04.Apr.2019"
            // about a preprint.
            let before = lower[..from].trim_end();
            let sentence = before.rsplit(['.', '!', '?']).next().unwrap_or_default();
            if !(before.is_empty() || sentence.contains("this ") && before.ends_with("was")) {
                return None;
            }
            // The words after the phrase, with the next texts when a template
            // put the date in an element of its own.
            let mut tail = lower.get(at..)?.to_string();
            for (_, next) in rest.take(2) {
                if tail.chars().count() > 60 {
                    break;
                }
                tail.push(' ');
                tail.push_str(next);
            }
            let words: Vec<&str> = tail.split_whitespace().take(10).collect();
            // The date opens the words, after "on" or "in" at most; a date
            // further on ("…in March 2022. Last updated on December 20") is
            // another.
            (0..words.len().min(2)).find_map(|start| {
                (2..=6).rev().find_map(|n| {
                    let cand = words.get(start..start + n)?.join(" ");
                    let cand = cand.trim_end_matches(['.', ',', ';', ':', ')']);
                    (!says_updated(cand) && dates::parse(cand).is_some()).then(|| cand.to_string())
                })
            })
        },
    )
}

/// The page's non-empty text nodes outside scripts and styles, in order.
fn page_texts(
    doc: &ego_tree::Tree<scraper::Node>,
) -> impl Iterator<Item = (ego_tree::NodeId, &str)> + Clone {
    doc.root()
        .descendants()
        .filter_map(|n| {
            let t = n.value().as_text()?;
            let parent = n
                .parent()
                .and_then(|p| p.value().as_element().map(|e| e.name()));
            // Table cells hold data ("1/1/2013 +13.1%"), not the page's date.
            (!matches!(
                parent,
                Some("script" | "style" | "noscript" | "template" | "td" | "th")
            ))
            .then_some((n.id(), &**t))
        })
        .filter(|(_, t)| !t.trim().is_empty())
}

/// The first published and updated dates among `texts[order]`, each
/// labelled by its own text, the short texts before it and the template's
/// name for its element; with `labelled_only`, a date without a publish
/// or update label is passed.
fn scan_dates(
    doc: &ego_tree::Tree<scraper::Node>,
    texts: &[(ego_tree::NodeId, &str)],
    order: impl Iterator<Item = usize>,
    labelled_only: bool,
) -> HeaderDates {
    let mut out = HeaderDates::default();
    for i in order {
        let mut text = collapse(texts[i].1);
        if text.chars().count() > 90 {
            // A dateline opening the story: "CITY, Dec 20, 2025 (AGENCY) - ".
            match text.split_once(" - ").or_else(|| text.split_once(" – ")) {
                Some((line, _)) if line.chars().count() <= 60 && !labelled_only => {
                    text = line.to_string()
                }
                _ => continue,
            }
        }
        if text.chars().count() < 6 || names_days_range(&text) {
            continue;
        }
        let Some(found) = text_date(&text) else {
            continue;
        };
        // A printed date inside `<time datetime>` is read from the
        // machine's value: "03/01/2017" is no longer ambiguous.
        let found = time_value(doc, texts[i].0).unwrap_or(found);
        let label = date_label(texts, i, &text);
        let slot = if says_updated(&label) || template_says_updated(doc, texts[i].0) {
            &mut out.updated
        } else if !labelled_only || says_published(&label) {
            &mut out.published
        } else {
            continue;
        };
        if slot.is_none() {
            *slot = Some(found);
        }
        if out.published.is_some() {
            out.published_at = Some((i, text.chars().count()));
            break;
        }
    }
    out
}

/// Does a text give a range of days ("January 6-9, 2026", "16–19 March")?
/// That is an event's dates, not the page's. The numbers of one date
/// (`2025-12-18`, `18-12-2025`) are not a range.
fn names_days_range(text: &str) -> bool {
    let chars: Vec<char> = text.chars().collect();
    let digits_at = |i: usize, forward: bool| -> usize {
        let mut n = 0;
        loop {
            let j = if forward {
                i + n
            } else {
                i.wrapping_sub(n + 1)
            };
            match chars.get(j) {
                Some(c) if c.is_ascii_digit() => n += 1,
                _ => return n,
            }
        }
    };
    chars.iter().enumerate().any(|(i, c)| {
        if !matches!(c, '-' | '–') {
            return false;
        }
        let left = digits_at(i, false);
        let right = digits_at(i + 1, true);
        let outer_left = i.checked_sub(left + 1).and_then(|j| chars.get(j));
        let outer_right = chars.get(i + 1 + right);
        (1..=2).contains(&left)
            && (1..=2).contains(&right)
            && !outer_left.is_some_and(|c| matches!(c, '-' | '/' | '.') || c.is_ascii_digit())
            && !outer_right.is_some_and(|c| matches!(c, '-' | '/' | '.'))
    })
}

/// A date's label: its own text after the short texts before it, back to
/// 60 characters or the previous date ("Last Updated" "on" "Feb 27, 2026",
/// "Updated" ":" "December 04, 2025": templates split a label in pieces).
fn date_label(texts: &[(ego_tree::NodeId, &str)], i: usize, text: &str) -> String {
    let mut before: Vec<&str> = Vec::new();
    let mut len = 0;
    for j in (i.saturating_sub(3)..i).rev() {
        let prev = texts[j].1.trim();
        len += prev.chars().count();
        if len > 60 || text_date(prev).is_some() {
            break;
        }
        before.push(prev);
    }
    before.reverse();
    before.push(text);
    before.join(" ")
}

/// The `datetime` of the `<time>` element (or its child) a text is in,
/// when it parses.
fn time_value(doc: &ego_tree::Tree<scraper::Node>, text: ego_tree::NodeId) -> Option<String> {
    doc.get(text)?
        .ancestors()
        .take(2)
        .filter_map(ElementRef::wrap)
        .find(|e| e.value().name() == "time")?
        .value()
        .attr("datetime")
        .filter(|v| dates::parse(v).is_some())
        .map(str::to_string)
}

/// Does the template name the date's element (or its parent) an update
/// (`itemprop="dateModified"`, `class="updated-date"`)? WordPress marks
/// the one date it prints `published updated`, which is the publication.
fn template_says_updated(doc: &ego_tree::Tree<scraper::Node>, text: ego_tree::NodeId) -> bool {
    let Some(parent) = doc
        .get(text)
        .and_then(|n| n.parent())
        .and_then(ElementRef::wrap)
    else {
        return false;
    };
    let names = attr_context(parent).to_lowercase();
    (names.contains("modif") || names.contains("updat")) && !says_published(&names)
}

/// Words that say a date is the publication.
const PUBLISHED_WORDS: &[&str] = &[
    "publish",
    "posted",
    "written",
    "publié",
    "veröffentlicht",
    "publicado",
    "pubblicato",
    "gepubliceerd",
    "发布",
    "发表",
    "日期",
];

/// Does a label say "published" (or posted, written)?
fn says_published(label: &str) -> bool {
    label_says(label, PUBLISHED_WORDS)
}

/// The part of a short text that parses as a date, if any.
fn text_date(text: &str) -> Option<String> {
    let pieces = text.split(['|', '•', '·', '—', '–']);
    for piece in pieces {
        let piece = piece.trim();
        let from_digit = piece
            .find(|c: char| c.is_ascii_digit())
            .map(|i| &piece[i..]);
        for cand in std::iter::once(piece).chain(from_digit) {
            if dates::parse(cand).is_some() {
                return Some(cand.to_string());
            }
        }
    }
    None
}

/// Repairs two kinds of template damage in a short text:
/// - entities escaped twice, left literal once parsed (`&#x26;`, `&amp;`);
/// - UTF-8 read as Latin-1 or Windows-1252 (`Investorâ\u{80}\u{99}s`),
///   told by the C1 control characters it leaves, which no text holds.
pub fn tidy_text(s: &str) -> std::borrow::Cow<'_, str> {
    let mut out = std::borrow::Cow::Borrowed(s);
    if out.contains('&') {
        out = std::borrow::Cow::Owned(decode_entities(&out));
    }
    if let std::borrow::Cow::Owned(fixed) = crate::decode::repair_mojibake(&out) {
        out = std::borrow::Cow::Owned(fixed);
    }
    out
}

/// Decodes the character references left in a text: numeric ones and the
/// few named ones templates double-escape.
fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let end = rest.as_bytes()[..rest.len().min(12)]
            .iter()
            .position(|&b| b == b';');
        let decoded = end.and_then(|end| {
            let name = &rest[1..end];
            let c = match name {
                "amp" => Some('&'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "nbsp" => Some(' '),
                _ => {
                    let code = name
                        .strip_prefix("#x")
                        .or_else(|| name.strip_prefix("#X"))
                        .map(|h| u32::from_str_radix(h, 16))
                        .or_else(|| name.strip_prefix('#').map(str::parse::<u32>));
                    code.and_then(Result::ok).and_then(char::from_u32)
                }
            }?;
            Some((c, end + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Removes a trailing (or leading) site name: "Title | Site", "Title - Site",
/// "Site: Title". Keeps the title whole if no separator is found or the
/// remainder would be trivially short.
pub fn strip_site_suffix(title: &str, site_name: &str, h1: Option<&str>) -> String {
    if let Some(h1) = h1 {
        if !h1.is_empty() && title.starts_with(h1) && title.len() > h1.len() {
            let rest = title[h1.len()..].trim_start();
            if rest.starts_with(['|', '-', '–', '—', '_', ':', '·']) {
                return h1.to_string();
            }
        }
    }
    for sep in [" | ", " - ", " – ", " — ", " _ ", " :: ", " · ", "｜", "_"] {
        if let Some((head, tail)) = title.rsplit_once(sep) {
            let tail_t = tail.trim();
            let is_site = !site_name.is_empty()
                && (tail_t.eq_ignore_ascii_case(site_name)
                    || site_name.contains(tail_t)
                    || tail_t.contains(site_name));
            let looks_like_site =
                tail_t.chars().count() <= 25 && head.chars().count() > tail_t.chars().count();
            if (is_site || (sep != "_" && looks_like_site)) && head.trim().chars().count() >= 5 {
                return head.trim().to_string();
            }
        }
    }
    title.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn meta(html: &str) -> Meta {
        extract(
            &Html::parse_document(html),
            &Url::parse("https://news.example.com/a/b.html").unwrap(),
            NOW,
        )
    }

    #[test]
    fn title_sources_in_order() {
        // The visible headline, when the page's other titles name it.
        let m = meta(
            r#"<title>Doc | Example</title><meta property="og:title" content="Ten trends for 2026, ranked"><h1>Ten trends to watch</h1>"#,
        );
        assert_eq!(m.title, "Ten trends to watch");
        // A lone headline-length h1 wins over a rewritten SEO title.
        let m = meta(
            r#"<meta property="og:title" content="Best Drip Coffee Makers"><h1>We tested twelve coffee machines for a month</h1>"#,
        );
        assert_eq!(m.title, "We tested twelve coffee machines for a month");
        // An h1 nothing names (a blog's name) loses to og:title.
        let m = meta(
            r#"<title>Doc title | Example</title><meta property="og:title" content="OG title"><h1>The Blog</h1>"#,
        );
        assert_eq!(m.title, "OG title");
        let m = meta(
            r#"<title>Doc title | Example</title><script type="application/ld+json">{"@type":"NewsArticle","headline":"LD title"}</script><h1>H1</h1>"#,
        );
        assert_eq!(m.title, "LD title");
        let m = meta("<article><h1>H1 title</h1></article>");
        assert_eq!(m.title, "H1 title");
        let m = meta("<title>A long document title - Example News</title>");
        assert_eq!(m.title, "A long document title");
        // A logo h1 comes first; the headline h1 is the one the title names.
        let m = meta(
            r#"<title>Storm hits the coast - Example</title><h1>Example</h1><h1>Storm hits the coast</h1>"#,
        );
        assert_eq!(m.title, "Storm hits the coast");
    }

    #[test]
    fn a_canonical_on_another_site_is_not_the_identity() {
        let page = Url::parse("https://evil.example.org/news/1").unwrap();
        let html = r#"<html><head><link rel="canonical" href="https://www.bbc.com/zhongwen/simp/world-67345678"></head><body></body></html>"#;
        let m = extract(&Html::parse_document(html), &page, 0);
        assert!(m.canonical.is_none(), "{:?}", m.canonical);
        assert_eq!(
            m.claimed_canonical.unwrap().as_str(),
            "https://www.bbc.com/zhongwen/simp/world-67345678"
        );
        let page = Url::parse("https://news.bbc.co.uk/a").unwrap();
        let html = r#"<html><head><link rel="canonical" href="https://www.bbc.co.uk/news/a"></head></html>"#;
        let m = extract(&Html::parse_document(html), &page, 0);
        assert_eq!(
            m.canonical.unwrap().as_str(),
            "https://www.bbc.co.uk/news/a"
        );
        assert!(m.claimed_canonical.is_none());
    }

    #[test]
    fn sites_are_registrable_domains() {
        let u = |s: &str| Url::parse(s).unwrap();
        assert!(same_site(
            &u("https://www.rfi.fr/cn/x"),
            &u("https://rfi.fr/y")
        ));
        assert!(same_site(
            &u("https://a.news.bbc.co.uk/"),
            &u("https://www.bbc.co.uk/")
        ));
        assert!(!same_site(
            &u("https://a.github.io/"),
            &u("https://b.github.io/")
        ));
        assert!(!same_site(
            &u("https://bbc.co.uk.evil.com/"),
            &u("https://bbc.co.uk/")
        ));
        assert!(same_site(
            &u("http://127.0.0.1:8080/a"),
            &u("http://127.0.0.1:9090/b")
        ));
        assert!(!same_site(&u("http://127.0.0.1/"), &u("http://127.0.0.2/")));
    }

    #[test]
    fn canonical_sources_in_order() {
        let m = meta(
            r#"<link rel="canonical" href="/c/1"><meta property="og:url" content="https://news.example.com/og">"#,
        );
        assert_eq!(
            m.canonical.unwrap().as_str(),
            "https://news.example.com/c/1"
        );
        let m = meta(r#"<meta property="og:url" content="https://news.example.com/og">"#);
        assert_eq!(m.canonical.unwrap().as_str(), "https://news.example.com/og");
        let m = meta(r#"<link rel="canonical" href="javascript:x()">"#);
        assert!(m.canonical.is_none());
        let m = meta(r#"<link rel="canonical" href="https://news.example.com/">"#);
        assert!(
            m.canonical.is_none(),
            "a home-page canonical on an article is a site bug"
        );
    }

    #[test]
    fn date_sources_in_order() {
        let ld = r#"<script type="application/ld+json">{"@context":"https://schema.org","@graph":[{"@type":"WebSite"},{"@type":"NewsArticle","datePublished":"2023-11-09T11:42:00Z","dateModified":"2023-11-10T00:00:00Z","author":[{"@type":"Person","name":"Li Wei"}]}]}</script>"#;
        let m = meta(&format!(
            r#"{ld}<meta property="article:published_time" content="2020-01-01T00:00:00Z">"#
        ));
        assert_eq!(m.published, Some((1_699_530_120_000, DateSource::JsonLd)));
        assert_eq!(m.modified, Some(1_699_574_400_000));
        assert_eq!(m.authors, vec!["Li Wei"]);
        let m = meta(
            r#"<meta property="article:published_time" content="2023-11-09T11:42:00Z"><time datetime="2020-01-01">x</time>"#,
        );
        assert_eq!(m.published.unwrap().1, DateSource::OpenGraph);
        let m = meta(
            r#"<span itemprop="datePublished" content="2023-11-09T11:42:00Z"></span><time datetime="2020-01-01">x</time>"#,
        );
        assert_eq!(m.published.unwrap().1, DateSource::Itemprop);
        let m = meta(
            r#"<time datetime="2023-11-09T11:42:00Z">x</time><meta name="date" content="2020-01-01">"#,
        );
        assert_eq!(m.published.unwrap().1, DateSource::TimeElement);
        let m = meta(r#"<meta name="pubdate" content="2023年11月9日 11:42">"#);
        assert_eq!(m.published, Some((1_699_530_120_000, DateSource::Meta)));
        let m = extract(
            &Html::parse_document("<p>x</p>"),
            &Url::parse("https://x.com/2023/11/09/y").unwrap(),
            NOW,
        );
        assert_eq!(m.published.unwrap().1, DateSource::Url);
    }

    #[test]
    fn header_dates_and_modified_fallback() {
        // A date printed under the heading, with an "Updated" one beside it.
        let m = meta(
            r#"<h1>Logo</h1><article><h1>A long enough headline</h1><div><span>Updated</span> <span>Dec 12, 2025</span></div><p>Published on July 18, 2025</p></article>"#,
        );
        assert_eq!(m.published.unwrap().1, DateSource::Text);
        assert_eq!(m.published.unwrap().0, 1_752_796_800_000);
        let m = meta(r#"<h1>Headline here</h1><p>发布时间：2023年11月9日 11:42</p>"#);
        assert_eq!(m.published, Some((1_699_530_120_000, DateSource::Text)));
        // Only an update date: the article is at least that old, and says so.
        let m = meta(
            r#"<h1>Headline here</h1><div class="byline">Updated March 13, 2024</div><p>Body text.</p>"#,
        );
        assert_eq!(m.published, Some((1_710_288_000_000, DateSource::Modified)));
        let m = meta(r#"<meta property="article:modified_time" content="2023-11-09T11:42:00Z">"#);
        assert_eq!(m.published, Some((1_699_530_120_000, DateSource::Modified)));
        // A WebPage node dates the page when no Article node does.
        let m = meta(
            r#"<script type="application/ld+json">{"@graph":[{"@type":"WebPage","datePublished":"2023-11-09T19:42:00+08:00"}]}</script>"#,
        );
        assert_eq!(m.published, Some((1_699_530_120_000, DateSource::JsonLd)));
        assert_eq!(m.published_offset, Some(480));
    }

    #[test]
    fn printed_dates_beyond_the_heading() {
        const DAY: i64 = 86_400_000;
        // A byline printed days before the declared date is the original
        // (the metadata was reset); a day apart is a time zone, and the
        // declared time stays.
        let ld = |d: &str| {
            format!(
                r#"<script type="application/ld+json">{{"@type":"Article","datePublished":"{d}"}}</script>"#
            )
        };
        let page = |d: &str, printed: &str| {
            meta(&format!(
                "{}<h1>A long enough headline</h1><p>Jane Roe</p><p>{printed}</p><p>Body text of the story.</p>",
                ld(d)
            ))
        };
        let m = page("2025-06-24T00:00:00Z", "August 25, 2024");
        assert_eq!(m.published, Some((1_724_544_000_000, DateSource::Text)));
        let m = page("2025-08-26T02:00:00Z", "August 25, 2025");
        assert_eq!(m.published.unwrap().1, DateSource::JsonLd);
        // A date in a table under the heading is data, not a byline.
        let m = meta(&format!(
            "{}<h1>A long enough headline</h1><table><tr><td>1/1/2013</td><td>+13%</td></tr></table>",
            ld("2025-02-12T00:00:00Z")
        ));
        assert_eq!(m.published.unwrap().1, DateSource::JsonLd);
        // No h1: the h2 that has most of the title's words anchors the scan.
        let m = meta(
            "<title>Introducing the Cayenne Data Accelerator | Spice</title><h2>Introducing Cayenne: a data accelerator built for scale</h2><small>December 17, 2025</small>",
        );
        assert_eq!(m.published, Some((1_765_929_600_000, DateSource::Text)));
        // A dateline opening the story.
        let m = meta(
            "<h4>Homestead gardening makes rural communities self-reliant</h4><title>Homestead gardening makes rural communities self-reliant | District</title><p>RAJSHAHI, Dec 20, 2025 (BSS) - Homestead gardening has been contributing significantly to rural communities for years.</p>",
        );
        assert_eq!(
            m.published.map(|p| p.0 / DAY),
            Some(1_766_188_800_000 / DAY)
        );
        // Far from any heading, only a labelled date counts.
        let filler = "<p>Paragraph of the story that goes on.</p>".repeat(80);
        let m = meta(&format!(
            "<h1>A long enough headline</h1>{filler}<p>Written by Moses Kim and Kate Shokurova</p><p>April 8, 2024</p>"
        ));
        assert_eq!(m.published, Some((1_712_534_400_000, DateSource::Text)));
        let m = meta(&format!(
            "<h1>A long enough headline</h1>{filler}<p>April 8, 2024</p>"
        ));
        assert_eq!(m.published, None);
        // American English writes the month first; elsewhere the day.
        let m = meta(r#"<html lang="en-US"><h1>A long enough headline</h1><p>8/1/2025</p>"#);
        assert_eq!(m.published, Some((1_754_006_400_000, DateSource::Text)));
        let m = meta(r#"<html lang="fr"><h1>A long enough headline</h1><p>8/1/2025</p>"#);
        assert_eq!(m.published, Some((1_736_294_400_000, DateSource::Text)));
    }

    #[test]
    fn a_byline_a_day_before_the_declared_date_everywhere_is_the_original() {
        let page = |declared: &str, byline: &str| {
            meta(&format!(
                r#"<script type="application/ld+json">{{"@type":"Article","datePublished":"{declared}"}}</script>
                <h1>A long enough headline</h1><div>{byline}</div><p>Body text of the story.</p>"#
            ))
        };
        // Dec 18 is over before Dec 19, 22:02 UTC's day begins anywhere:
        // the site's last "publish" moved the metadata.
        let m = page("2025-12-19T22:02:58.705Z", "Dec 18, 2025");
        assert_eq!(m.published, Some((1_766_016_000_000, DateSource::Text)));
        // Dec 19 is still Dec 19 at 02:41 UTC on Dec 20 in the Americas:
        // a time zone, where the declared instant is the more precise.
        let m = page("2025-12-20T02:41:00Z", "Dec 19, 2025");
        assert_eq!(m.published, Some((1_766_198_460_000, DateSource::JsonLd)));
    }

    #[test]
    fn an_events_dates_do_not_date_the_page() {
        // The date above the headline, not the first event's "January
        // 6-9, 2026" under it.
        let m = meta(
            r#"<div class="header-article"><div class="date-article">OCTOBER 13, 2025</div>
            <h1>Biggest tech events 2026</h1></div><p>As we move into 2026, here they are.</p>
            <h2>1. CES</h2><p><strong>Date</strong>: January 6-9, 2026</p>"#,
        );
        assert_eq!(m.published, Some((1_760_313_600_000, DateSource::Text)));
        assert!(names_days_range("16–19 March 2026"));
        for one_date in ["2025-12-18", "18-12-2025", "18.12.2025", "Dec 18, 2025"] {
            assert!(!names_days_range(one_date), "{one_date}");
        }
    }

    #[test]
    fn a_page_that_says_when_it_first_appeared_is_dated_by_that() {
        let page = |note: &str| {
            meta(&format!(
                r#"<h1>A long enough headline</h1><p>Updated 30 Sep 2022, 11:07am</p>
                <p>Body text of the story.</p><p>{note}</p>"#
            ))
        };
        let m = page(
            "This article was originally published on 26 Sep 2019 at 4:12pm but has been \
             regularly updated to keep the information current.",
        );
        assert_eq!(
            m.published.map(|p| p.0 / 86_400_000),
            Some(1_569_514_320_000 / 86_400_000)
        );
        // Only the page's own first appearance counts: a citation's
        // preprint date, or a month with no day, does not; the page is
        // then dated by its update, the only date it gives.
        for note in [
            "Cite as: doi 10.2196/14273, preprint first published 04.Apr.2019 .",
            "This guide was originally published in March 2018.",
        ] {
            let (ms, source) = page(note).published.unwrap();
            assert_eq!(
                (ms / 86_400_000, source),
                (19_265, DateSource::Modified),
                "{note}"
            );
        }
    }

    #[test]
    fn how_a_template_prints_a_date_says_what_it_is() {
        let declared = r#"<script type="application/ld+json">{"@type":"Article","datePublished":"2024-05-09T00:00:00Z"}</script>"#;
        let page = |header: &str| {
            meta(&format!(
                "{declared}<h1>A long enough headline</h1><p>Jane Roe</p>{header}<p>Body text of the story.</p>"
            ))
        };
        // A label split in pieces ("Last Updated" "on" "Feb 27, 2023")
        // or an element the template names the modification is an
        // update: it does not move the declared publication.
        for header in [
            r#"<span class="post-date"><span>Last Updated</span> <span>on</span> <span>Feb 27, 2023</span></span>"#,
            r#"<p itemprop="dateModified">Updated<!-- -->: <!-- -->February 27, 2023</p>"#,
            r#"<p class="updated-date">February 27, 2023</p>"#,
        ] {
            assert_eq!(
                page(header).published.unwrap().1,
                DateSource::JsonLd,
                "{header}"
            );
        }
        // WordPress marks its one printed date `published updated`.
        let m = page(r#"<time class="entry-date published updated">February 27, 2023</time>"#);
        assert_eq!(m.published, Some((1_677_456_000_000, DateSource::Text)));
        // A printed date inside `<time datetime>` is read from the
        // machine's value, not guessed from "03/01/2017" day first.
        let m = page(r#"<div><time datetime="2017-03-01T12:00:00Z">03/01/2017</time></div>"#);
        assert_eq!(m.published, Some((1_488_369_600_000, DateSource::Text)));
    }

    #[test]
    fn titles_are_repaired_of_double_escapes_and_mojibake() {
        assert_eq!(
            tidy_text("Python, SQL &#x26; AI &amp; more"),
            "Python, SQL & AI & more"
        );
        assert_eq!(tidy_text("Fish &chips; & peas"), "Fish &chips; & peas");
        assert_eq!(
            tidy_text("A DIY Investor\u{e2}\u{80}\u{99}s Guide"),
            "A DIY Investor\u{2019}s Guide"
        );
        // Read as Windows-1252 (no C1 control left): a no-break space
        // and a curly apostrophe.
        assert_eq!(
            crate::decode::repair_mojibake("for cats.\u{c2}\u{a0} It\u{e2}\u{20ac}\u{2122}s"),
            "for cats.\u{a0} It\u{2019}s"
        );
        // Text that only looks like Latin-1 stays as it is.
        assert_eq!(tidy_text("Café \u{85} déjà"), "Café \u{85} déjà");
        assert_eq!(
            crate::decode::repair_mojibake("Ãngel Â«hola»"),
            "Ãngel Â«hola»"
        );
        let m = meta(r#"<meta property="og:title" content="Tools &amp;#x26; tips"><h1>x</h1>"#);
        assert_eq!(m.title, "Tools & tips");
    }

    #[test]
    fn future_dates_are_refused() {
        let m = meta(
            r#"<meta property="article:published_time" content="2099-01-01T00:00:00Z"><time datetime="2023-11-09T11:42:00Z">x</time>"#,
        );
        assert_eq!(m.published.unwrap().1, DateSource::TimeElement);
    }

    #[test]
    fn other_fields() {
        let m = meta(
            r#"<html lang="zh-CN"><meta property="og:site_name" content="Example"><meta name="description" content=" A  desc "><meta property="og:image" content="/i.jpg"><meta name="author" content="By Jane Roe"><meta property="og:type" content="article">"#,
        );
        assert_eq!(m.language.as_deref(), Some("zh-CN"));
        assert_eq!(m.site_name, "Example");
        assert_eq!(m.description, "A desc");
        assert_eq!(m.image.as_deref(), Some("https://news.example.com/i.jpg"));
        assert_eq!(m.authors, vec!["Jane Roe"]);
        assert!(m.declares_article);
    }
}
