//! When the main selection finds nothing or too little: other places a
//! page keeps its article, tried in turn, as trafilatura does with its
//! fallbacks. A page that declares itself an article is never lost because
//! the scorer missed its text.
//!
//! In order: the JSON-LD `articleBody`, the `<article>` or
//! `[itemprop=articleBody]` element, then the densest block of paragraphs.
//! The first that holds a plausible article wins; else the longest.

use ego_tree::NodeId;
use scraper::{Html, Node, Selector};
use url::Url;

use crate::boilerplate::{drops_tag, is_boilerplate};
use crate::clean::{clean, Cleaned};
use crate::content::is_hidden;
use crate::dom::{class_id, name, Analysis, NodeMap};
use crate::extract::word_count;

/// Fewer words than this is "too little" for an article.
pub const MIN_WORDS: u32 = 40;

/// Below this many words, a main selection is checked against the
/// fallbacks even though it passed [`MIN_WORDS`].
const SHORT_WORDS: u32 = 120;

/// Which fallback produced the content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// JSON-LD `articleBody`.
    JsonLd,
    /// The `<article>` or `[itemprop=articleBody]` element.
    ArticleElement,
    /// The block holding the most paragraph text.
    Densest,
}

/// The best fallback content, when the main selection gave `main_words`
/// words and that is too little. `ld_body` is the page's JSON-LD
/// `articleBody` ([`crate::metadata::Meta::ld_article_body`]).
pub fn recover(
    doc: &Html,
    analysis: &Analysis,
    base: &Url,
    ld_body: Option<&str>,
    main_words: u32,
) -> Option<(Fallback, Cleaned)> {
    if main_words >= SHORT_WORDS {
        return None;
    }
    let candidates = [
        (Fallback::JsonLd, json_ld_body(ld_body)),
        (
            Fallback::ArticleElement,
            article_element(doc, analysis, base),
        ),
        (Fallback::Densest, densest(doc, analysis, base)),
    ];
    let mut best: Option<(Fallback, Cleaned, u32)> = None;
    for (kind, cleaned) in candidates {
        let Some(cleaned) = cleaned else { continue };
        let words = word_count(&cleaned.text);
        // Above the minimum, the main selection stands unless a fallback
        // holds far more: a short disclaimer taken for the story.
        if main_words >= MIN_WORDS {
            if words >= main_words * 3 && words >= MIN_WORDS * 2 {
                return Some((kind, cleaned));
            }
            continue;
        }
        if words >= MIN_WORDS {
            return Some((kind, cleaned));
        }
        if words > main_words && best.as_ref().is_none_or(|b| words > b.2) {
            best = Some((kind, cleaned, words));
        }
    }
    best.map(|(kind, cleaned, _)| (kind, cleaned))
}

fn selector(q: &'static str, cell: &'static std::sync::OnceLock<Selector>) -> &'static Selector {
    cell.get_or_init(|| Selector::parse(q).expect("static selector"))
}

/// The JSON-LD `articleBody` as paragraphs (its line breaks, where it has
/// them, are the paragraph breaks).
fn json_ld_body(body: Option<&str>) -> Option<Cleaned> {
    let body = body?;
    // The body may itself be HTML-escaped markup: read it as a fragment.
    let text = if body.contains('<') && body.contains('>') {
        Html::parse_fragment(body)
            .root_element()
            .text()
            .collect::<String>()
    } else {
        body.to_string()
    };
    let paragraphs: Vec<String> = text
        .split('\n')
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|p| !p.is_empty())
        .collect();
    if paragraphs.is_empty() {
        return None;
    }
    let html = paragraphs
        .iter()
        .map(|p| format!("<p>{}</p>", escape(p)))
        .collect::<String>();
    Some(Cleaned {
        html,
        text: paragraphs.join("\n\n"),
        links: Vec::new(),
        first_image: None,
    })
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The `[itemprop=articleBody]` element, else the `<article>` with the
/// most text.
fn article_element(doc: &Html, analysis: &Analysis, base: &Url) -> Option<Cleaned> {
    static SEL: std::sync::OnceLock<Selector> = std::sync::OnceLock::new();
    let sel = selector(
        r#"[itemprop="articleBody"], [itemprop="articlebody"], article"#,
        &SEL,
    );
    let chars = |id: NodeId| analysis.stats.get(&id).map_or(0, |s| s.chars);
    let by_prop = doc
        .select(sel)
        .filter(|e| e.value().name() != "article")
        .max_by_key(|e| chars(e.id()));
    let root = by_prop.or_else(|| {
        doc.select(sel)
            .filter(|e| !is_hidden(**e, analysis))
            .max_by_key(|e| chars(e.id()))
    })?;
    let cleaned = clean(doc, analysis, &[root.id()], Some(base), None);
    (!cleaned.text.is_empty()).then_some(cleaned)
}

/// The element whose own paragraphs (child `<p>` and loose text, outside
/// links) hold the most text.
fn densest(doc: &Html, analysis: &Analysis, base: &Url) -> Option<Cleaned> {
    let mut own: NodeMap<u32> = NodeMap::default();
    for node in doc.tree.root().descendants() {
        let chars = match node.value() {
            Node::Text(t) => {
                let in_block = node
                    .parent()
                    .and_then(name)
                    .is_some_and(|p| matches!(p, "div" | "section" | "article" | "main" | "td"));
                if !in_block {
                    continue;
                }
                t.trim().chars().count() as u32
            }
            Node::Element(el) if matches!(el.name(), "p" | "blockquote" | "pre") => {
                let s = analysis.stats.get(&node.id()).copied().unwrap_or_default();
                s.chars.saturating_sub(s.link_chars)
            }
            _ => continue,
        };
        if chars < 25 {
            continue;
        }
        let Some(parent) = node.parent() else {
            continue;
        };
        if matches!(name(parent), Some("html" | "head") | None) {
            continue;
        }
        // Hidden, dropped, or boilerplate (comments, related stories):
        // a reader's long comment is never the article.
        let hidden = parent.ancestors().chain([parent]).any(|a| {
            a.value().as_element().is_some_and(|e| {
                is_hidden(a, analysis)
                    || drops_tag(e, analysis.stats.get(&a.id()).copied().unwrap_or_default())
                    || is_boilerplate(&class_id(a))
            })
        });
        if !hidden {
            *own.entry(parent.id()).or_insert(0) += chars;
        }
    }
    let (root, _) = own.into_iter().max_by_key(|(_, c)| *c)?;
    let cleaned = clean(doc, analysis, &[root], Some(base), None);
    (!cleaned.text.is_empty()).then_some(cleaned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(html: &str) -> Option<(Fallback, Cleaned)> {
        let doc = Html::parse_document(html);
        let analysis = crate::dom::analyse(&doc);
        let url = Url::parse("https://x.com/a").unwrap();
        let meta = crate::metadata::extract(&doc, &url, 1_800_000_000_000);
        recover(&doc, &analysis, &url, meta.ld_article_body.as_deref(), 0)
    }

    const PARA: &str = "Running text of the article, long enough to be a paragraph of its own and then some more words. ";

    #[test]
    fn json_ld_body_comes_first() {
        let html = format!(
            r#"<script type="application/ld+json">{{"@type":"NewsArticle","articleBody":"{}\n{}"}}</script><article><p>{}</p></article>"#,
            PARA.repeat(3),
            PARA,
            PARA
        );
        let (kind, c) = run(&html).unwrap();
        assert_eq!(kind, Fallback::JsonLd);
        assert_eq!(c.text.split("\n\n").count(), 2);
        assert!(c.html.starts_with("<p>Running text"));
    }

    #[test]
    fn article_element_then_densest_block() {
        let html = format!(
            "<article><p>{}</p></article><div><p>short</p></div>",
            PARA.repeat(3)
        );
        assert_eq!(run(&html).unwrap().0, Fallback::ArticleElement);
        let html = format!(
            "<div class=a><p>One. {p}</p><p>Two. {p}</p></div><div class=b><p>Three. {p}</p></div>",
            p = PARA
        );
        let (kind, c) = run(&html).unwrap();
        assert_eq!(kind, Fallback::Densest);
        assert_eq!(c.text.split("\n\n").count(), 2);
    }

    #[test]
    fn a_short_selection_gives_way_to_a_far_longer_block_but_never_to_comments() {
        let doc_of = |html: &str| Html::parse_document(html);
        let url = Url::parse("https://x.com/a").unwrap();
        // The main selection found 45 words (a disclaimer, say); a block
        // of 150 words replaces it.
        let html = format!("<div class=story><p>{}</p></div>", PARA.repeat(9));
        let doc = doc_of(&html);
        let analysis = crate::dom::analyse(&doc);
        let (kind, c) = recover(&doc, &analysis, &url, None, 45).unwrap();
        assert_eq!(kind, Fallback::Densest);
        assert!(word_count(&c.text) >= 135);
        // Not a block only twice as long.
        let html = format!("<div class=story><p>{}</p></div>", PARA.repeat(5));
        let doc = doc_of(&html);
        let analysis = crate::dom::analyse(&doc);
        assert!(recover(&doc, &analysis, &url, None, 45).is_none());
        // Never readers' comments, however long.
        let html = format!(
            r#"<ol class="comment-list"><li class="comment"><div class="comment-body"><p>{}</p></div></li></ol>"#,
            PARA.repeat(9)
        );
        let doc = doc_of(&html);
        let analysis = crate::dom::analyse(&doc);
        assert!(recover(&doc, &analysis, &url, None, 45).is_none());
    }

    #[test]
    fn enough_main_text_needs_no_fallback() {
        let doc = Html::parse_document("<article><p>x</p></article>");
        let analysis = crate::dom::analyse(&doc);
        assert!(recover(
            &doc,
            &analysis,
            &Url::parse("https://x.com/a").unwrap(),
            None,
            SHORT_WORDS
        )
        .is_none());
    }
}
