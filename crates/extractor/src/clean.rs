//! Turning content subtrees into clean, valid, one-line HTML and plain text.
//!
//! Only semantic tags survive (p, h2–h6, lists, blockquote, figure, img,
//! figcaption, table, a, strong/em/b/i, br, pre/code); other elements are
//! unwrapped, and loose inline content is wrapped in `<p>` so the output
//! nests correctly. Only href, src, alt, title and datetime survive; URLs
//! become absolute and lazy or srcset images get their best source. Empty
//! elements are dropped. The output is built as a small tree and rendered
//! by our own serializer, so attributes are always separated by spaces.

use ego_tree::NodeId;
use scraper::{Html, Node};
use url::Url;

use crate::boilerplate::{drops_tag, is_boilerplate, is_boilerplate_data_attr, is_caption};
use crate::content::is_hidden;
use crate::dom::{class_id, push_collapsed, Analysis};
use crate::rules::SiteRule;

/// Clean content of a page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cleaned {
    /// Valid HTML on one line.
    pub html: String,
    /// Plain text, paragraphs separated by blank lines.
    pub text: String,
    /// Absolute http(s) links found in the content.
    pub links: Vec<String>,
    /// First image, if any.
    pub first_image: Option<String>,
}

/// Nesting beyond this depth of kept elements is flattened.
const MAX_DEPTH: usize = 48;

#[derive(Debug)]
enum Out {
    El {
        tag: &'static str,
        attrs: Vec<(&'static str, String)>,
        children: Vec<usize>,
    },
    Text(String),
    /// Text of a caption (an element with a caption class outside
    /// `<figcaption>`): kept in the HTML, left out of the text, as a
    /// `<figcaption>` is.
    Caption(String),
}

/// What a kept tag is, for nesting rules.
fn kept(tag: &str) -> Option<(&'static str, bool)> {
    // (canonical tag, is_block)
    Some(match tag {
        "p" => ("p", true),
        "h1" | "h2" => ("h2", true),
        "h3" => ("h3", true),
        "h4" => ("h4", true),
        "h5" => ("h5", true),
        "h6" => ("h6", true),
        "ul" => ("ul", true),
        "ol" => ("ol", true),
        "li" => ("li", true),
        "blockquote" => ("blockquote", true),
        "figure" => ("figure", true),
        "figcaption" => ("figcaption", true),
        "table" => ("table", true),
        "thead" => ("thead", true),
        "tbody" => ("tbody", true),
        "tfoot" => ("tfoot", true),
        "tr" => ("tr", true),
        "td" => ("td", true),
        "th" => ("th", true),
        "pre" => ("pre", true),
        "a" => ("a", false),
        "strong" => ("strong", false),
        "em" => ("em", false),
        "b" => ("b", false),
        "i" => ("i", false),
        "code" => ("code", false),
        "br" => ("br", false),
        "img" => ("img", false),
        _ => return None,
    })
}

/// Blocks that may hold inline content directly.
fn holds_inline(tag: &str) -> bool {
    matches!(
        tag,
        "p" | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "li"
            | "figure"
            | "figcaption"
            | "blockquote"
            | "td"
            | "th"
            | "pre"
            | "a"
            | "strong"
            | "em"
            | "b"
            | "i"
            | "code"
    )
}

/// Block tags that may not contain other blocks.
fn inline_only(tag: &str) -> bool {
    matches!(
        tag,
        "p" | "h2" | "h3" | "h4" | "h5" | "h6" | "pre" | "a" | "strong" | "em" | "b" | "i" | "code"
    )
}

struct Builder<'a> {
    nodes: Vec<Out>,
    /// Open output elements: (index, tag). `nodes[0]` is the root.
    open: Vec<(usize, &'static str)>,
    base: Option<&'a Url>,
    links: Vec<String>,
    first_image: Option<String>,
    /// How many caption elements of the source the walk is inside.
    caption_depth: u32,
}

impl<'a> Builder<'a> {
    fn new(base: Option<&'a Url>) -> Self {
        Builder {
            nodes: vec![Out::El {
                tag: "root",
                attrs: vec![],
                children: vec![],
            }],
            open: vec![(0, "root")],
            base,
            links: Vec::new(),
            first_image: None,
            caption_depth: 0,
        }
    }

    fn current(&self) -> &'static str {
        self.open.last().map_or("root", |(_, t)| t)
    }

    fn push(&mut self, node: Out) -> usize {
        let idx = self.nodes.len();
        self.nodes.push(node);
        let parent = self.open.last().map_or(0, |(i, _)| *i);
        if let Out::El { children, .. } = &mut self.nodes[parent] {
            children.push(idx);
        }
        idx
    }

    /// Makes sure inline content has a block to live in.
    fn ensure_inline_context(&mut self) {
        if !holds_inline(self.current()) {
            let idx = self.push(Out::El {
                tag: "p",
                attrs: vec![],
                children: vec![],
            });
            self.open.push((idx, "p"));
        }
    }

    /// Closes open elements that cannot contain a block (such as a `<p>`
    /// opened for loose inline content).
    fn ensure_block_context(&mut self) {
        while self.open.len() > 1 && inline_only(self.current()) {
            self.open.pop();
        }
    }

    fn text(&mut self, t: &str, pre: bool) {
        if t.trim().is_empty() && !holds_inline(self.current()) {
            return;
        }
        self.ensure_inline_context();
        let parent = self.open.last().map_or(0, |(i, _)| *i);
        let caption = self.caption_depth > 0;
        // Merge with a preceding text node of the same kind.
        if let Out::El { children, .. } = &self.nodes[parent] {
            if let Some(&last) = children.last() {
                if let (Out::Text(prev), false) | (Out::Caption(prev), true) =
                    (&mut self.nodes[last], caption)
                {
                    if pre {
                        prev.push_str(t)
                    } else {
                        push_collapsed(prev, t)
                    }
                    return;
                }
            }
        }
        let mut s = String::new();
        if pre {
            s.push_str(t);
        } else {
            // Keep the space that separates this run from a preceding
            // inline element ("<em>Star Trek</em> film").
            if t.starts_with(char::is_whitespace) {
                s.push(' ');
            }
            push_collapsed(&mut s, t);
        }
        self.push(if caption {
            Out::Caption(s)
        } else {
            Out::Text(s)
        });
    }

    fn absolute(&self, raw: &str) -> Option<String> {
        let raw = raw.trim();
        if raw.is_empty() || raw.starts_with('#') {
            return None;
        }
        let url = match self.base {
            Some(b) => b.join(raw).ok()?,
            None => Url::parse(raw).ok()?,
        };
        matches!(url.scheme(), "http" | "https" | "mailto").then(|| url.to_string())
    }

    /// Opens a kept element; returns whether it was opened.
    fn open_el(&mut self, tag: &'static str, is_block: bool, el: &scraper::node::Element) -> bool {
        let mut attrs = Vec::new();
        match tag {
            "a" => {
                if let Some(href) = el.attr("href").and_then(|h| self.absolute(h)) {
                    if href.starts_with("http") {
                        self.links.push(href.clone());
                    }
                    attrs.push(("href", href));
                }
            }
            "img" => {
                let Some(src) = best_image_source(el).and_then(|s| self.absolute(&s)) else {
                    return false;
                };
                if self.first_image.is_none() {
                    self.first_image = Some(src.clone());
                }
                attrs.push(("src", src));
                if let Some(alt) = el.attr("alt") {
                    attrs.push(("alt", alt.trim().to_string()));
                }
            }
            _ => {}
        }
        for key in ["title", "datetime"] {
            if let Some(v) = el.attr(key) {
                attrs.push((key, v.trim().to_string()));
            }
        }
        if is_block {
            self.ensure_block_context();
            // Table parts and list items only make sense inside their parents;
            // elsewhere they are unwrapped.
            let parent = self.current();
            let fits = match tag {
                "li" => matches!(parent, "ul" | "ol"),
                "tr" => matches!(parent, "table" | "thead" | "tbody" | "tfoot"),
                "td" | "th" => parent == "tr",
                "thead" | "tbody" | "tfoot" => parent == "table",
                "figcaption" => parent == "figure",
                _ => true,
            };
            if !fits {
                return false;
            }
        } else {
            self.ensure_inline_context();
            if tag == "a" && self.open.iter().any(|(_, t)| *t == "a") {
                return false; // no nested links
            }
        }
        if self.open.len() > MAX_DEPTH {
            return false;
        }
        let void = matches!(tag, "br" | "img");
        let idx = self.push(Out::El {
            tag,
            attrs,
            children: vec![],
        });
        if !void {
            self.open.push((idx, tag));
        }
        true
    }
}

/// The best image URL: the widest `srcset` candidate, then lazy-loading
/// attributes, then `src` (unless it is a placeholder `data:` URI).
fn best_image_source(el: &scraper::node::Element) -> Option<String> {
    for attr in ["srcset", "data-srcset"] {
        if let Some(set) = el.attr(attr) {
            let best = set
                .split(',')
                .filter_map(|c| {
                    let mut parts = c.split_whitespace();
                    let url = parts.next()?;
                    let w = parts.next().map_or(1.0, |d| {
                        d.trim_end_matches(['w', 'x']).parse::<f32>().unwrap_or(1.0)
                    });
                    Some((url, w))
                })
                .max_by(|a, b| a.1.total_cmp(&b.1));
            if let Some((url, _)) = best {
                return Some(url.to_string());
            }
        }
    }
    [
        "data-src",
        "data-lazy-src",
        "data-original",
        "data-url",
        "src",
    ]
    .iter()
    .filter_map(|a| el.attr(a))
    .find(|v| !v.trim().is_empty() && !v.starts_with("data:"))
    .map(str::to_string)
}

/// Builds clean HTML and text from the subtrees `roots` of `doc`.
pub fn clean(
    doc: &Html,
    analysis: &Analysis,
    roots: &[NodeId],
    base: Option<&Url>,
    rule: Option<&SiteRule>,
) -> Cleaned {
    let removed: crate::dom::NodeSet = rule
        .map(|r| {
            r.remove
                .iter()
                .flat_map(|sel| doc.select(sel).map(|e| e.id()))
                .collect()
        })
        .unwrap_or_default();
    let mut b = Builder::new(base);
    let root_chars: u32 = roots
        .iter()
        .filter_map(|r| analysis.stats.get(r))
        .map(|s| s.chars)
        .sum();
    for root in roots {
        let Some(root) = doc.tree.get(*root) else {
            continue;
        };
        // Explicit stack: (node, entering, opened-an-output-element,
        // open-stack depth before, is a caption)
        let mut stack = vec![(root, true, false, 0usize, false)];
        let mut pre_depth = 0u32;
        while let Some((node, entering, opened, depth_before, caption)) = stack.pop() {
            if !entering {
                if let Node::Element(el) = node.value() {
                    if el.name() == "pre" {
                        pre_depth = pre_depth.saturating_sub(1);
                    }
                }
                if caption {
                    b.caption_depth -= 1;
                }
                if opened {
                    b.open.truncate(depth_before);
                } else if matches!(node.value(), Node::Element(el) if crate::dom::is_block(el.name()))
                {
                    // An unwrapped block ends any implicit paragraph.
                    b.ensure_block_context();
                }
                continue;
            }
            match node.value() {
                Node::Text(t) => b.text(&crate::decode::repair_mojibake(t), pre_depth > 0),
                Node::Element(el) => {
                    let is_root = node.id() == root.id();
                    if removed.contains(&node.id())
                        || skip(node, el, is_root || pre_depth > 0, root_chars, analysis)
                    {
                        continue;
                    }
                    let depth_before = b.open.len();
                    let opened = match kept(el.name()) {
                        Some((tag, is_block)) => b.open_el(tag, is_block, el),
                        None => {
                            if crate::dom::is_block(el.name()) {
                                b.ensure_block_context();
                            }
                            false
                        }
                    };
                    if el.name() == "pre" {
                        pre_depth += 1;
                    }
                    let caption = !is_root
                        && el.attr("class").is_some_and(|c| {
                            c.contains("aption") && is_caption(&c.to_ascii_lowercase())
                        });
                    if caption {
                        b.caption_depth += 1;
                    }
                    stack.push((node, false, opened, depth_before, caption));
                    let children: Vec<_> = node.children().collect();
                    for child in children.into_iter().rev() {
                        stack.push((child, true, false, 0, false));
                    }
                }
                _ => {}
            }
        }
        b.ensure_block_context();
    }
    render(b)
}

/// Should this element (and its subtree) be dropped? With `tag_only`
/// (the root, and anything inside `<pre>`) its class, role and link
/// density are not held against it: a highlighter's
/// `<span class="hljs-comment">` is code, not a comment thread.
fn skip(
    node: ego_tree::NodeRef<'_, Node>,
    el: &scraper::node::Element,
    tag_only: bool,
    root_chars: u32,
    analysis: &Analysis,
) -> bool {
    let n = el.name();
    let stats = analysis.stats.get(&node.id()).copied().unwrap_or_default();
    if drops_tag(el, stats) || matches!(n, "h1" | "header" | "time" | "address") && !tag_only {
        return true;
    }
    if is_hidden(node, analysis) || el.attrs().any(|(k, _)| is_boilerplate_data_attr(k)) {
        return true;
    }
    if tag_only {
        return false;
    }
    // A class does not remove the story itself: an element holding four
    // fifths of the whole selection's text (`div.commentOnSelection` around a post)
    // is the article, whatever its name.
    let holds_the_story = stats.chars >= 200 && stats.chars * 5 >= root_chars * 4;
    let cid = class_id(node);
    if is_boilerplate(&cid) && !holds_the_story
        || el
            .attr("role")
            .is_some_and(|r| matches!(r, "navigation" | "complementary" | "banner"))
    {
        return true;
    }
    // Conditional cleaning: link farms and near-empty widgets. Over 60%
    // links makes a farm (a ranking's entry, whose names are links, is
    // often half links); a list that is nothing but links is one at any
    // length (a directory of 800 movers), while one link in a list of text
    // is an item like the rest.
    let s = analysis.stats.get(&node.id()).copied().unwrap_or_default();
    let ld = s.link_density();
    if matches!(n, "ul" | "ol" | "div" | "section" | "table" | "dl")
        && (ld > 0.6 && s.chars < 2000
            || ld > 0.33 && s.chars < 200 && s.paragraphs == 0
            || ld > 0.8 && matches!(n, "ul" | "ol"))
    {
        return true;
    }
    // A sign-up box: a small block around an e-mail or phone field (the
    // form is already gone; "Be the first to know! ... By signing up, you
    // agree to ..." is what is left).
    if matches!(n, "div" | "section" | "aside") && s.chars < 1500 && s.contact_fields > 0 {
        return true;
    }
    // A label left behind: an ad slot's when the ad did not load, a table
    // of contents' whose list of in-page links went as a link list.
    if s.chars > 0 && s.chars <= 40 {
        let label = label_text(&crate::dom::text_of(node));
        if matches!(n, "p" | "div" | "span" | "section" | "aside") && is_ad_label(&label)
            || is_contents_title(&label)
        {
            return true;
        }
    }
    // "Read more here" style paragraphs that are nothing but a link. A
    // heading that is a link ("1. <a>Harvard Business School</a>") stays
    // when text follows it: it heads a section, it is not a teaser.
    let heading = matches!(n, "h2" | "h3" | "h4" | "h5" | "h6");
    (matches!(n, "p" | "div") || heading && !heads_text(node, analysis))
        && ld > 0.8
        && s.chars < 150
}

/// A short block's text as its label: trimmed, lowercased, without a
/// closing colon or full stop.
fn label_text(text: &str) -> String {
    text.trim().trim_end_matches([':', '.']).to_lowercase()
}

/// "Table of Contents", "Contents [hide]", "On this page", "Sommaire", "目录".
fn is_contents_title(label: &str) -> bool {
    let t = ["[show]", "[hide]", " show", " hide", " toggle", " ⤵", " ↓"]
        .iter()
        .fold(label, |t, s| t.strip_suffix(s).unwrap_or(t))
        .trim();
    matches!(
        t,
        "table of contents"
            | "contents"
            | "on this page"
            | "inhaltsverzeichnis"
            | "sommaire"
            | "table des matières"
            | "índice"
            | "indice"
            | "目录"
            | "目次"
    )
}

/// The words an empty ad slot prints: "Advertisement", "ADVERTISING",
/// "Story continues below advertisement", "Sponsored".
fn is_ad_label(label: &str) -> bool {
    matches!(
        label,
        "advertisement"
            | "advertising"
            | "advertisment"
            | "sponsored"
            | "anzeige"
            | "publicité"
            | "publicidad"
            | "pubblicità"
            | "реклама"
            | "广告"
            | "story continues below advertisement"
            | "article continues below advertisement"
            | "continue reading below"
            | "scroll to continue"
            | "scroll to continue with content"
    )
}

/// Is the next element after `node` that holds text, before any script,
/// a text (20 characters or more, mostly not links)?
fn heads_text(node: ego_tree::NodeRef<'_, Node>, analysis: &Analysis) -> bool {
    node.next_siblings()
        .filter_map(|n| n.value().as_element().map(|e| (n.id(), e.name())))
        .take_while(|(_, name)| !matches!(*name, "script" | "style"))
        .filter_map(|(id, _)| analysis.stats.get(&id))
        .find(|s| s.chars > 0)
        .is_some_and(|s| s.chars >= 20 && s.link_density() < 0.5)
}

fn render(b: Builder<'_>) -> Cleaned {
    let Builder {
        nodes,
        links,
        first_image,
        ..
    } = b;
    let mut keep = non_empty(&nodes);
    drop_repeats(&nodes, &mut keep);
    let mut html = String::new();
    let mut text = String::new();
    // Iterative render: (index, closing)
    let mut stack: Vec<(usize, bool)> = vec![(0, false)];
    // Captions stay in the HTML but are not article text.
    let mut caption_depth = 0u32;
    while let Some((idx, closing)) = stack.pop() {
        match &nodes[idx] {
            Out::Text(t) => {
                escape_text(&mut html, t);
                if caption_depth == 0 {
                    text.push_str(t);
                }
            }
            Out::Caption(t) => escape_text(&mut html, t),
            Out::El {
                tag,
                attrs,
                children,
            } => {
                let root = idx == 0;
                if closing {
                    if *tag == "figcaption" {
                        caption_depth -= 1;
                    }
                    if !matches!(*tag, "br" | "img") && !root {
                        html.push_str("</");
                        html.push_str(tag);
                        html.push('>');
                    }
                    if matches!(
                        *tag,
                        "p" | "h2"
                            | "h3"
                            | "h4"
                            | "h5"
                            | "h6"
                            | "li"
                            | "pre"
                            | "blockquote"
                            | "figcaption"
                            | "tr"
                    ) {
                        text.push_str("\n\n");
                    } else if matches!(*tag, "td" | "th") {
                        text.push('\t');
                    }
                    continue;
                }
                if !root {
                    html.push('<');
                    html.push_str(tag);
                    for (k, v) in attrs {
                        html.push(' ');
                        html.push_str(k);
                        html.push_str("=\"");
                        escape_attr(&mut html, v);
                        html.push('"');
                    }
                    html.push('>');
                    if *tag == "br" {
                        text.push('\n');
                    }
                    if *tag == "figcaption" {
                        caption_depth += 1;
                    }
                }
                stack.push((idx, true));
                for &c in children.iter().rev() {
                    if keep[c] {
                        stack.push((c, false));
                    }
                }
            }
        }
    }
    let text = tidy_text(&text);
    let mut seen = std::collections::HashSet::new();
    let links = links
        .into_iter()
        .filter(|l| seen.insert(l.clone()))
        .collect();
    Cleaned {
        html: html.replace(['\n', '\r'], " "),
        text,
        links,
        first_image,
    }
}

/// Marks nodes worth rendering: text with non-space content, images, and
/// elements with such descendants. Reverse index order is a valid
/// post-order because children always come after their parent.
fn non_empty(nodes: &[Out]) -> Vec<bool> {
    let mut keep = vec![false; nodes.len()];
    for idx in (0..nodes.len()).rev() {
        keep[idx] = match &nodes[idx] {
            Out::Text(t) | Out::Caption(t) => !t.trim().is_empty(),
            Out::El { tag: "img", .. } => true,
            Out::El { tag: "br", .. } => true,
            Out::El { children, .. } => children
                .iter()
                .any(|c| keep[*c] && !matches!(nodes[*c], Out::El { tag: "br", .. })),
        };
    }
    keep
}

/// A paragraph of four words or more that repeats an earlier one word for
/// word (a gallery's caption under every slide, a pull quote printed
/// twice) is kept once: the first. Short ones ("Yes", "Read more") may
/// repeat legitimately in lists and tables.
fn drop_repeats(nodes: &[Out], keep: &mut [bool]) {
    let mut seen = std::collections::HashSet::new();
    let mut stack = vec![0usize];
    while let Some(idx) = stack.pop() {
        if !keep[idx] {
            continue;
        }
        let Out::El { tag, children, .. } = &nodes[idx] else {
            continue;
        };
        if matches!(
            *tag,
            "p" | "li" | "h2" | "h3" | "h4" | "h5" | "h6" | "blockquote" | "pre"
        ) {
            let mut text = String::new();
            text_of(nodes, idx, &mut text);
            let words: Vec<&str> = text.split_whitespace().collect();
            if words.len() >= 4 && !seen.insert(words.join(" ").to_lowercase()) {
                keep[idx] = false;
            }
            continue;
        }
        stack.extend(children.iter().rev());
    }
}

fn text_of(nodes: &[Out], idx: usize, out: &mut String) {
    let mut stack = vec![idx];
    while let Some(i) = stack.pop() {
        match &nodes[i] {
            Out::Text(t) | Out::Caption(t) => {
                out.push_str(t);
                out.push(' ');
            }
            Out::El { children, .. } => stack.extend(children.iter().rev()),
        }
    }
}

fn tidy_text(t: &str) -> String {
    let mut out = String::with_capacity(t.len());
    for para in t.split("\n\n") {
        let lines: Vec<&str> = para
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        if lines.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push_str("\n\n");
        }
        out.push_str(&lines.join("\n"));
    }
    out
}

/// Escapes text content for HTML.
pub fn escape_text(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\u{a0}' => out.push_str("&nbsp;"),
            c => out.push(c),
        }
    }
}

fn escape_attr(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cleans the first `div` of `html`.
    fn clean_div(html: &str) -> Cleaned {
        let doc = Html::parse_document(html);
        let analysis = crate::dom::analyse(&doc);
        let root = doc
            .select(&scraper::Selector::parse("div").unwrap())
            .next()
            .unwrap()
            .id();
        clean(&doc, &analysis, &[root], None, None)
    }

    #[test]
    fn repeated_paragraphs_are_kept_once() {
        let c = clean_div("<div><p>The minister shook hands with his counterpart in Hanoi.</p><p>Body text of the story.</p><p>The minister shook hands with his counterpart in Hanoi.</p><ul><li>Yes</li><li>Yes</li></ul></div>");
        assert_eq!(c.text.matches("shook hands").count(), 1, "{}", c.text);
        assert_eq!(c.html.matches("shook hands").count(), 1, "{}", c.html);
        assert_eq!(c.text.matches("Yes").count(), 2, "{}", c.text);
    }

    #[test]
    fn a_heading_that_is_a_link_stays_when_it_heads_text() {
        let c = clean_div(
            r#"<div><p>The schools, ranked by their graduates' outcomes over ten years.</p><h2>1. <a href="https://example.com/harvard">Harvard Business School</a></h2><div><p>Rankings come and go, but Harvard stays first.</p></div><h2><a href="/list">Click here to subscribe to the newsletter</a></h2><script>ads()</script><p>Stanford is famous for its ties to Silicon Valley.</p></div>"#,
        );
        assert!(c.text.contains("1. Harvard Business School"), "{}", c.text);
        assert!(
            c.html
                .contains(r#"<h2>1. <a href="https://example.com/harvard">"#),
            "{}",
            c.html
        );
        assert!(!c.text.contains("Click here"), "{}", c.text);
    }

    #[test]
    fn a_link_in_a_list_of_text_stays_and_a_directory_of_links_goes() {
        let directory: String = (0..120)
            .map(|i| format!(r#"<li><a href="https://example.com/m{i}">Moving and Storage Company {i}</a></li>"#))
            .collect();
        let c = clean_div(&format!(
            r#"<div><p>What to pack first, room by room, before the movers arrive.</p><ul><li>Label every box with its room and its contents.</li><li><a href="https://example.com/checklist">Our printable checklist</a></li><li>Keep a bag of essentials for the first night.</li></ul><ul>{directory}</ul></div>"#
        ));
        assert!(c.text.contains("Our printable checklist"), "{}", c.text);
        assert!(!c.text.contains("Moving and Storage Company"), "{}", c.text);
    }

    #[test]
    fn an_entry_half_in_links_stays() {
        let c = clean_div(
            r#"<div><p>The best places to learn management online, ranked by our editors.</p><div class="entry"><p><a href="https://example.com/hbs">Harvard Business School Online</a> offers <a href="https://example.com/c">short courses</a> in finance, strategy and law.</p></div></div>"#,
        );
        assert!(
            c.text.contains("offers short courses in finance"),
            "{}",
            c.text
        );
    }

    #[test]
    fn a_class_does_not_remove_the_story_itself() {
        let story = "<p>The council voted on Tuesday to close the bridge for repairs, after two years of delays.</p>".repeat(4);
        // The post body sits in a "comment on selection" wrapper: kept.
        let c = clean_div(&format!(
            r#"<div><h2>Bridge closes</h2><div class="commentOnSelection">{story}</div></div>"#
        ));
        assert!(c.text.contains("The council voted"), "{}", c.text);
        // A comment thread beside the story is still dropped.
        let c = clean_div(&format!(
            r#"<div>{story}<div class="comments"><p>First! What a great article about the bridge.</p></div></div>"#
        ));
        assert!(c.text.contains("The council voted"), "{}", c.text);
        assert!(!c.text.contains("First!"), "{}", c.text);
    }

    #[test]
    fn a_sign_up_box_inside_the_story_is_dropped() {
        let c = clean_div(
            r#"<div><p>The council voted on Tuesday to close the bridge.</p><section class="box"><div>Be the first to know!</div><form><input type="tel" name="phone"><button>Sign Me Up</button></form><p>By signing up, you agree to receive messages.</p></section><div><div>Get the morning briefing</div><input type="text" placeholder="Your email address"></div><p>Repairs start in May.</p></div>"#,
        );
        assert_eq!(
            c.text,
            "The council voted on Tuesday to close the bridge.\n\nRepairs start in May."
        );
    }

    #[test]
    fn a_table_of_contents_leaves_no_title() {
        let c = clean_div(
            r##"<div><div class="toc"><p class="toc-title">Table of Contents [hide]</p><ul><li><a href="#a">Why</a></li><li><a href="#b">How</a></li></ul></div><h2 id="a">Why</h2><p>The council voted on Tuesday to close the bridge.</p><h2>Contents of the report</h2><p>Repairs start in May.</p></div>"##,
        );
        assert_eq!(
            c.text,
            "Why\n\nThe council voted on Tuesday to close the bridge.\n\nContents of the report\n\nRepairs start in May."
        );
    }

    #[test]
    fn an_empty_ad_slot_leaves_no_label() {
        let c = clean_div(
            r#"<div><p>The council voted on Tuesday to close the bridge.</p><div class="slot"><span>ADVERTISEMENT</span></div><p>Story continues below advertisement</p><p>Advertising revenue fell.</p></div>"#,
        );
        assert_eq!(
            c.text,
            "The council voted on Tuesday to close the bridge.\n\nAdvertising revenue fell."
        );
    }

    #[test]
    fn a_caption_outside_figcaption_stays_in_the_html_only() {
        let c = clean_div(
            r#"<div><p>Police cleared the campus on Monday.</p><div class="photo"><img src="https://example.com/a.jpg" alt="Protesters"><span class="newsCaption">Protesters wore masks <span class="caption">(Image: GETTY)</span></span></div><p>Talks resume <em>today</em>.</p></div>"#,
        );
        assert!(c.html.contains("Protesters wore masks"), "{}", c.html);
        assert!(c.html.contains("(Image: GETTY)"), "{}", c.html);
        assert!(!c.text.contains("Protesters wore"), "{}", c.text);
        assert!(!c.text.contains("GETTY"), "{}", c.text);
        assert!(
            c.text.contains("Police cleared the campus on Monday."),
            "{}",
            c.text
        );
        assert!(c.text.contains("Talks resume today."), "{}", c.text);
    }

    #[test]
    fn highlighted_code_keeps_its_comments() {
        let c = clean_div(
            r#"<div><p>To get started:</p><pre><code class="hljs"><span class="hljs-comment"># initialize git</span>
git init</code></pre><div class="comments"><p>Great post, thanks for sharing it with us!</p></div></div>"#,
        );
        assert!(c.text.contains("# initialize git"), "{}", c.text);
        assert!(c.text.contains("git init"), "{}", c.text);
        assert!(!c.text.contains("Great post"), "{}", c.text);
    }
}
