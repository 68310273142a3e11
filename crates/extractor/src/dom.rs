//! DOM helpers over scraper's tree: per-node text statistics, computed in
//! one iterative pass so that 64k-deep documents cannot overflow the stack.

use std::collections::HashMap;

use ego_tree::iter::Edge;
use ego_tree::{NodeId, NodeRef};
use scraper::{Html, Node};

/// A fast hasher for node ids (small integers): SipHash is needless work
/// for maps that are rebuilt for every page.
#[derive(Default, Clone, Copy)]
pub struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_usize(&mut self, n: usize) {
        self.0 = (self.0 ^ n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// Puts the segments a streaming server renderer sent late back where
/// they belong. React's streaming HTML prints a placeholder
/// (`<template id="B:0"></template>` or `id="P:0"`, then a "Loading..."
/// fallback up to the `<!--/$-->` comment) and, at the end of the body,
/// the content in `<div hidden id="S:0">`, which a script moves into place
/// (`$RC("B:0","S:0")`, `$RS("S:0","P:0")`). Without scripts the story sits
/// hidden at the page's foot. Pairs come from those calls, else from the
/// shared number.
pub fn place_streamed_segments(doc: &mut Html) {
    let mut placeholders: HashMap<String, NodeId> = HashMap::new();
    let mut segments: Vec<(String, NodeId)> = Vec::new();
    let mut calls: HashMap<String, String> = HashMap::new();
    let mut scripts = Vec::new();
    for node in doc.tree.root().descendants() {
        let Some(el) = node.value().as_element() else {
            continue;
        };
        match (el.name(), el.attr("id")) {
            ("template", Some(id)) if id.starts_with("B:") || id.starts_with("P:") => {
                placeholders.insert(id.to_string(), node.id());
            }
            ("div", Some(id)) if id.starts_with("S:") && el.attr("hidden").is_some() => {
                segments.push((id.to_string(), node.id()));
            }
            ("script", _) => scripts.push(node.id()),
            _ => {}
        }
    }
    if segments.is_empty() {
        return;
    }
    for script in scripts {
        let Some(node) = doc.tree.get(script) else {
            continue;
        };
        let code: String = node
            .children()
            .filter_map(|c| c.value().as_text().map(|t| t.to_string()))
            .collect();
        for (call, seg_first) in [("$RC(\"", false), ("$RS(\"", true)] {
            for part in code.split(call).skip(1) {
                let mut ids = part.split('"').step_by(2).take(2);
                if let (Some(a), Some(b)) = (ids.next(), ids.next()) {
                    let (seg, place) = if seg_first { (a, b) } else { (b, a) };
                    calls.insert(seg.to_string(), place.to_string());
                }
            }
        }
    }
    for (seg, seg_id) in segments {
        let number = &seg[2..];
        let place = calls
            .get(&seg)
            .and_then(|p| placeholders.get(p))
            .or_else(|| placeholders.get(&format!("B:{number}")))
            .or_else(|| placeholders.get(&format!("P:{number}")))
            .copied();
        let Some(place) = place else { continue };
        let Some(template) = doc.tree.get(place) else {
            continue;
        };
        // A boundary's fallback, shown meanwhile ("Loading..."): up to its
        // end comment, when there is one.
        let boundary = template
            .value()
            .as_element()
            .and_then(|e| e.attr("id"))
            .is_some_and(|id| id.starts_with("B:"));
        let mut fallback = Vec::new();
        if boundary {
            let mut closed = false;
            for n in template.next_siblings() {
                closed = n.value().as_comment().is_some_and(|c| c.trim() == "/$");
                if closed {
                    break;
                }
                fallback.push(n.id());
            }
            if !closed {
                fallback.clear();
            }
        }
        let moved: Vec<NodeId> = doc
            .tree
            .get(seg_id)
            .map(|s| s.children().map(|c| c.id()).collect())
            .unwrap_or_default();
        // The placeholder must still be in the page (an earlier fallback
        // may have held it), and not inside the segment itself.
        let root = doc.tree.root().id();
        let chain: Vec<NodeId> = template.ancestors().map(|a| a.id()).collect();
        if chain.contains(&seg_id) || chain.last() != Some(&root) {
            continue;
        }
        if let Some(mut template) = doc.tree.get_mut(place) {
            for child in moved {
                template.insert_id_before(child);
            }
        }
        for id in fallback.into_iter().chain([place, seg_id]) {
            if let Some(mut n) = doc.tree.get_mut(id) {
                n.detach();
            }
        }
    }
}

/// A map keyed by node id.
pub type NodeMap<V> = HashMap<NodeId, V, std::hash::BuildHasherDefault<IdHasher>>;
/// A set of node ids.
pub type NodeSet = std::collections::HashSet<NodeId, std::hash::BuildHasherDefault<IdHasher>>;

/// Text statistics of one subtree.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stats {
    /// Characters of visible text (whitespace runs count once).
    pub chars: u32,
    /// Characters of text inside links.
    pub link_chars: u32,
    /// Commas (Latin and CJK) in the text.
    pub commas: u32,
    /// Descendant `<p>` elements.
    pub paragraphs: u32,
    /// Descendant block elements.
    pub blocks: u32,
    /// Descendant fields for an e-mail address or a phone number (a
    /// sign-up box's), counted inside invisible elements too.
    pub contact_fields: u32,
}

impl Stats {
    /// Share of the text that sits inside links, 0..=1.
    pub fn link_density(&self) -> f32 {
        if self.chars == 0 {
            0.0
        } else {
            self.link_chars as f32 / self.chars as f32
        }
    }
}

/// Elements whose text is never content.
pub fn is_invisible(name: &str) -> bool {
    matches!(
        name,
        "script"
            | "style"
            | "noscript"
            | "template"
            | "head"
            | "svg"
            | "math"
            | "iframe"
            | "object"
            | "embed"
            | "canvas"
            | "select"
            | "option"
            | "textarea"
            | "button"
            | "input"
    )
}

/// Block-level elements (for text layout and scoring).
pub fn is_block(name: &str) -> bool {
    matches!(
        name,
        "p" | "div"
            | "section"
            | "article"
            | "main"
            | "header"
            | "footer"
            | "aside"
            | "nav"
            | "ul"
            | "ol"
            | "li"
            | "dl"
            | "dt"
            | "dd"
            | "table"
            | "thead"
            | "tbody"
            | "tfoot"
            | "tr"
            | "td"
            | "th"
            | "blockquote"
            | "pre"
            | "figure"
            | "figcaption"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "form"
            | "address"
            | "hr"
            | "center"
            | "details"
            | "summary"
            | "caption"
            | "body"
            | "html"
    )
}

/// Stats for every element, plus the deepest nesting seen.
pub struct Analysis {
    /// Per-element statistics.
    pub stats: NodeMap<Stats>,
    /// Deepest element nesting.
    pub max_depth: u32,
    /// The panels disclosure toggles open (see [`disclosure_panels`]).
    pub panels: NodeSet,
}

/// Computes [`Stats`] for every element in one pass.
pub fn analyse(doc: &Html) -> Analysis {
    let mut stats: NodeMap<Stats> = NodeMap::with_capacity_and_hasher(1024, Default::default());
    let mut stack: Vec<(NodeId, Stats, bool)> = Vec::with_capacity(64);
    let mut hidden = 0u32; // > 0 while inside an invisible element
    let mut in_link = 0u32;
    let mut max_depth = 0;
    let mut toggles = Vec::new();
    for edge in doc.tree.root().traverse() {
        match edge {
            Edge::Open(node) => match node.value() {
                Node::Element(el) => {
                    let name = el.name();
                    // A disclosure toggle's label is text a reader sees:
                    // an FAQ's question on its `<button>`.
                    let toggle = el.attr("aria-expanded").is_some();
                    if toggle {
                        toggles.push(node.id());
                    }
                    let invisible = is_invisible(name) && !(toggle && name == "button");
                    if invisible {
                        hidden += 1;
                    }
                    if name == "a" {
                        in_link += 1;
                    }
                    max_depth = max_depth.max(stack.len() as u32);
                    stack.push((node.id(), Stats::default(), invisible));
                }
                Node::Text(t) if hidden == 0 => {
                    let (chars, commas) = measure(t);
                    if let Some((_, s, _)) = stack.last_mut() {
                        s.chars += chars;
                        s.commas += commas;
                        if in_link > 0 {
                            s.link_chars += chars;
                        }
                    }
                }
                _ => {}
            },
            Edge::Close(node) => {
                if let Node::Element(el) = node.value() {
                    let Some((id, mut s, invisible)) = stack.pop() else {
                        continue;
                    };
                    if invisible {
                        hidden -= 1;
                        s = Stats {
                            contact_fields: s.contact_fields,
                            ..Stats::default()
                        };
                    }
                    if el.name() == "a" {
                        in_link = in_link.saturating_sub(1);
                        if in_link == 0 && is_prose(&s) {
                            // Paragraphs of prose wrapped in one link (a
                            // story's whole text linking to its own page)
                            // are not navigation.
                            s.link_chars = 0;
                        }
                    }
                    if let Some((_, parent, _)) = stack.last_mut() {
                        parent.chars += s.chars;
                        parent.link_chars += s.link_chars;
                        parent.commas += s.commas;
                        parent.paragraphs += s.paragraphs + u32::from(el.name() == "p");
                        parent.blocks += s.blocks + u32::from(is_block(el.name()));
                        parent.contact_fields += s.contact_fields + u32::from(is_contact_field(el));
                    }
                    stats.insert(id, s);
                }
            }
        }
    }
    let panels = disclosure_panels(doc, &toggles);
    Analysis {
        stats,
        max_depth,
        panels,
    }
}

/// The panels that disclosure toggles (WAI-ARIA: an element with
/// `aria-expanded`, most often a `<button>`) show when clicked: the
/// elements named by their `aria-controls`, else the element right after
/// the toggle, or right after the heading the toggle is the whole of
/// (`<h3><button>Question?</button></h3><div hidden>Answer</div>`). An
/// FAQ's answers and a folded section are the page's text, hidden until
/// a reader opens them.
fn disclosure_panels(doc: &Html, toggles: &[NodeId]) -> NodeSet {
    let mut panels = NodeSet::default();
    let mut controlled: Vec<&str> = Vec::new();
    for toggle in toggles.iter().filter_map(|id| doc.tree.get(*id)) {
        let Some(el) = toggle.value().as_element() else {
            continue;
        };
        if let Some(ids) = el.attr("aria-controls") {
            controlled.extend(ids.split_ascii_whitespace());
            continue;
        }
        let heading = toggle.parent().filter(|p| {
            p.value()
                .as_element()
                .is_some_and(|e| matches!(e.name(), "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "dt"))
                && p.children().filter(|c| c.value().is_element()).count() == 1
        });
        if let Some(panel) = next_element(toggle).or_else(|| heading.and_then(next_element)) {
            panels.insert(panel.id());
        }
    }
    if !controlled.is_empty() {
        panels.extend(
            doc.tree
                .root()
                .descendants()
                .filter(|n| {
                    n.value()
                        .as_element()
                        .and_then(|e| e.attr("id"))
                        .is_some_and(|id| controlled.contains(&id))
                })
                .map(|n| n.id()),
        );
    }
    panels
}

/// The next sibling that is an element.
fn next_element(n: NodeRef<'_, Node>) -> Option<NodeRef<'_, Node>> {
    n.next_siblings().find(|s| s.value().is_element())
}

/// Is this an `<input>` for an e-mail address or a phone number
/// (`type="email"`, `name="EMAIL"`, `placeholder="Your email"`)?
fn is_contact_field(el: &scraper::node::Element) -> bool {
    el.name() == "input"
        && (el
            .attr("type")
            .is_some_and(|t| t.eq_ignore_ascii_case("email") || t.eq_ignore_ascii_case("tel"))
            || ["name", "id", "placeholder", "autocomplete"]
                .iter()
                .any(|a| {
                    el.attr(a)
                        .is_some_and(|v| v.to_ascii_lowercase().contains("mail"))
                }))
}

/// Text too long and too punctuated for a link's label or a teaser: at
/// least 400 characters with five commas.
pub fn is_prose(s: &Stats) -> bool {
    s.chars >= 400 && s.commas >= 5
}

/// Visible characters (whitespace runs collapsed) and commas in a text node.
fn measure(t: &str) -> (u32, u32) {
    let mut chars = 0u32;
    let mut commas = 0u32;
    let mut space = true;
    for c in t.chars() {
        if c.is_whitespace() {
            if !space {
                chars += 1;
                space = true;
            }
        } else {
            chars += 1;
            space = false;
            if matches!(c, ',' | '，' | '、' | '،') {
                commas += 1;
            }
        }
    }
    (chars, commas)
}

/// Lowercased `class` and `id` of an element, joined by a space.
pub fn class_id(node: NodeRef<'_, Node>) -> String {
    match node.value() {
        Node::Element(el) => {
            let mut s = String::new();
            if let Some(c) = el.attr("class") {
                s.push_str(c);
            }
            if let Some(i) = el.attr("id") {
                s.push(' ');
                s.push_str(i);
            }
            s.make_ascii_lowercase();
            s
        }
        _ => String::new(),
    }
}

/// The element name, if `node` is an element.
pub fn name<'a>(node: NodeRef<'a, Node>) -> Option<&'a str> {
    match node.value() {
        Node::Element(el) => Some(el.name()),
        _ => None,
    }
}

/// Visible text of a subtree, whitespace collapsed, blocks separated by
/// newlines. Iterative.
pub fn text_of(node: NodeRef<'_, Node>) -> String {
    let mut out = String::new();
    let mut hidden = 0u32;
    for edge in node.traverse() {
        match edge {
            Edge::Open(n) => match n.value() {
                Node::Element(el) if is_invisible(el.name()) => hidden += 1,
                Node::Element(el) if el.name() == "br" => out.push('\n'),
                Node::Element(el)
                    if is_block(el.name()) && !out.ends_with('\n') && !out.is_empty() =>
                {
                    out.push('\n')
                }
                Node::Text(t) if hidden == 0 => push_collapsed(&mut out, t),
                _ => {}
            },
            Edge::Close(n) => match n.value() {
                Node::Element(el) if is_invisible(el.name()) => hidden -= 1,
                Node::Element(el) if is_block(el.name()) && !out.ends_with('\n') => out.push('\n'),
                _ => {}
            },
        }
    }
    out.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Appends `t` with whitespace runs collapsed to one space.
pub fn push_collapsed(out: &mut String, t: &str) {
    for c in t.chars() {
        if c.is_whitespace() {
            if !out.ends_with([' ', '\n']) && !out.is_empty() {
                out.push(' ');
            }
        } else {
            out.push(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_count_text_links_and_paragraphs() {
        let doc = Html::parse_document(
            "<div id=a><p>Hello, world.</p><p><a href=x>link text</a> more</p><script>var x=1</script></div>",
        );
        let a = analyse(&doc);
        let div = doc
            .select(&scraper::Selector::parse("#a").unwrap())
            .next()
            .unwrap();
        let s = a.stats[&div.id()];
        assert_eq!(s.paragraphs, 2);
        assert_eq!(s.commas, 1);
        assert_eq!(s.link_chars, 9);
        assert!(s.chars >= 26, "{s:?}");
    }

    #[test]
    fn streamed_segments_are_put_where_the_script_would_put_them() {
        let mut doc = Html::parse_document(concat!(
            r#"<div id="main"><h1>Title</h1><!--$?--><template id="B:0"></template><div>Loading paragraph...</div><!--/$--><p>After the boundary.</p></div>"#,
            r#"<div id="aside"><template id="P:5"></template><p>Beside the placeholder.</p></div>"#,
            r#"<div hidden id="S:5"><p>Placed by $RS.</p></div>"#,
            r#"<div hidden id="S:1"><p>The story, sent late.</p><template id="P:9"></template></div>"#,
            r#"<div hidden id="S:9"><p>Nested in the story.</p></div>"#,
            r#"<div hidden id="S:7"><p>No placeholder: stays hidden.</p></div>"#,
            r#"<script>$RC("B:0","S:1");$RS("S:5","P:5")</script>"#,
        ));
        place_streamed_segments(&mut doc);
        let text = |sel: &str| {
            let node = doc
                .select(&scraper::Selector::parse(sel).unwrap())
                .next()
                .unwrap();
            text_of(*node)
        };
        assert_eq!(
            text("#main"),
            "Title\nThe story, sent late.\nNested in the story.\nAfter the boundary."
        );
        assert_eq!(text("#aside"), "Placed by $RS.\nBeside the placeholder.");
        assert_eq!(text("[hidden]"), "No placeholder: stays hidden.");
        // A placeholder inside its own segment, or none at all: no panic.
        let mut doc = Html::parse_document(
            r#"<div hidden id="S:0"><template id="B:0"></template><p>x</p></div><div hidden id="S:2"></div>"#,
        );
        place_streamed_segments(&mut doc);
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        // html5ever itself is quadratic in depth; the extractor refuses
        // deeper input before parsing (see `extract::prescan_depth`).
        let html = "<div>".repeat(4_000) + "deep" + &"</div>".repeat(4_000);
        let doc = Html::parse_document(&html);
        let a = analyse(&doc);
        assert!(a.max_depth > 1000);
        assert_eq!(text_of(doc.tree.root()), "deep");
    }
}
