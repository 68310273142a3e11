//! Finding the main content: site rules first, then a readability-style
//! scorer with link-density and class/id weighting, sibling merging, and a
//! recovery pass that widens a selection that missed most of the page's
//! paragraphs.

use ego_tree::{NodeId, NodeRef};
use scraper::{Html, Node};

use crate::boilerplate::{class_weight, drops_tag, is_boilerplate_data_attr, is_faq, is_unlikely};
use crate::dom::{class_id, name, Analysis, NodeMap, NodeSet, Stats};
use crate::rules::SiteRule;

/// How the content was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// A site rule's selector.
    Rule,
    /// The readability-style scorer.
    Scored,
    /// The scorer's pick, widened by the recovery pass.
    Recovered,
}

/// The chosen content: one or more sibling subtrees, in document order.
#[derive(Debug, Clone)]
pub struct Selection {
    /// Roots of the content subtrees.
    pub roots: Vec<NodeId>,
    /// How they were found.
    pub method: Method,
}

/// Picks the main content of `doc`, or `None` if it has no text worth keeping.
pub fn select(doc: &Html, analysis: &Analysis, rule: Option<&SiteRule>) -> Option<Selection> {
    if let Some(rule) = rule {
        let removed: NodeSet = rule
            .remove
            .iter()
            .flat_map(|sel| doc.select(sel).map(|e| e.id()))
            .collect();
        let roots: Vec<NodeId> = rule
            .content
            .iter()
            .flat_map(|sel| doc.select(sel).map(|e| e.id()))
            .filter(|id| {
                doc.tree
                    .get(*id)
                    .is_some_and(|n| !n.ancestors().chain([n]).any(|a| removed.contains(&a.id())))
            })
            .collect();
        let roots = in_document_order(doc, outermost(doc, roots));
        if roots
            .iter()
            .any(|id| analysis.stats.get(id).is_some_and(|s| s.chars > 0))
        {
            return Some(Selection {
                roots,
                method: Method::Rule,
            });
        }
    }
    let excluded = excluded_subtrees(doc, analysis);
    let scores = score(doc, analysis, &excluded);
    let (top, top_score) = scores
        .iter()
        .map(|(id, s)| (*id, *s * (1.0 - stats(analysis, *id).link_density())))
        .max_by(|a, b| a.1.total_cmp(&b.1))?;
    let top = climb(doc, analysis, &scores, top, top_score);
    let mut roots = merge_siblings(doc, analysis, &scores, top);
    if roots.len() == 1 {
        if let Some(section) = repeated_section(doc, analysis, top) {
            roots = merge_siblings(doc, analysis, &scores, section);
        }
    }
    let mut method = Method::Scored;
    if let Some(wider) = recover(doc, analysis, &excluded, &roots) {
        roots = wider;
        method = Method::Recovered;
    }
    roots.extend(faq_after(doc, analysis, &roots));
    Some(Selection { roots, method })
}

fn stats(analysis: &Analysis, id: NodeId) -> Stats {
    analysis.stats.get(&id).copied().unwrap_or_default()
}

/// Nodes inside subtrees skipped by scoring: dropped tags, hidden
/// elements and blocks whose class/id says "not the article". Computed in
/// one pass, so membership is a set lookup rather than an ancestor walk.
fn excluded_subtrees(doc: &Html, analysis: &Analysis) -> NodeSet {
    use ego_tree::iter::Edge;
    let mut out = NodeSet::default();
    let mut depth = 0u32; // > 0 while inside an excluded subtree
    for edge in doc.tree.root().traverse() {
        match edge {
            Edge::Open(node) => {
                if depth > 0 {
                    depth += 1;
                    out.insert(node.id());
                } else if starts_exclusion(node, analysis) {
                    depth = 1;
                    out.insert(node.id());
                }
            }
            Edge::Close(_) => depth = depth.saturating_sub(1),
        }
    }
    out
}

fn starts_exclusion(node: NodeRef<'_, Node>, analysis: &Analysis) -> bool {
    let Node::Element(el) = node.value() else {
        return false;
    };
    let n = el.name();
    if matches!(n, "html" | "body" | "article" | "main") {
        return false;
    }
    if drops_tag(el, stats(analysis, node.id())) || is_hidden(node, analysis) {
        return true;
    }
    // A page wrapper whose class happens to say "ad" or "header" still
    // holds the article: only small or link-heavy blocks are unlikely.
    let s = stats(analysis, node.id());
    let small = s.paragraphs < 4 || s.link_density() > 0.5;
    (small && is_unlikely(&class_id(node)))
        || el.attrs().any(|(k, _)| is_boilerplate_data_attr(k))
        || el
            .attr("role")
            .is_some_and(|r| matches!(r, "navigation" | "complementary" | "banner" | "contentinfo"))
}

/// Hidden by attribute or inline style. React's streamed server render
/// parks each finished segment in `<div hidden id="S:n">` and moves it into
/// place on load: that content is the visible page. The closed panel of an
/// accordion or a tab set (`role="region"` or `"tabpanel"`, labelled by its
/// heading, or a class that says so), and any panel a disclosure toggle
/// opens ([`Analysis::panels`]), is part of the text a reader opens.
pub fn is_hidden(node: NodeRef<'_, Node>, analysis: &Analysis) -> bool {
    let Node::Element(el) = node.value() else {
        return false;
    };
    let react_segment = el.attr("id").is_some_and(|id| {
        id.strip_prefix("S:")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    });
    let hidden = el.attr("hidden").is_some() && !react_segment
        || el.attr("style").is_some_and(|s| {
            let s = s.to_ascii_lowercase().replace(' ', "");
            s.contains("display:none") || s.contains("visibility:hidden")
        });
    let toggled = analysis.panels.contains(&node.id());
    (el.attr("aria-hidden") == Some("true") || hidden && !is_closed_panel(el)) && !toggled
}

/// An accordion's or a tab set's panel, shown when its heading is clicked.
fn is_closed_panel(el: &scraper::node::Element) -> bool {
    matches!(el.attr("role"), Some("region" | "tabpanel")) && el.attr("aria-labelledby").is_some()
        || el.attr("class").is_some_and(|c| {
            let c = c.to_ascii_lowercase();
            ["accordion", "collapse", "tab-pane", "tabpanel"]
                .iter()
                .any(|w| c.contains(w))
        })
}

fn inside_excluded(node: NodeRef<'_, Node>, excluded: &NodeSet) -> bool {
    excluded.contains(&node.id())
}

/// Readability scoring: each paragraph-like element with enough text adds
/// `1 + commas + min(chars/100, 3)` to its parent, half to its grandparent
/// and a third per level above, up to five levels.
fn score(doc: &Html, analysis: &Analysis, excluded: &NodeSet) -> NodeMap<f32> {
    let mut scores: NodeMap<f32> = NodeMap::default();
    for node in doc.tree.root().descendants() {
        if let Node::Text(t) = node.value() {
            score_loose_text(node, t, analysis, excluded, &mut scores);
            continue;
        }
        let Some(n) = name(node) else { continue };
        let s = stats(analysis, node.id());
        let paragraph_like = match n {
            "p" | "pre" | "td" | "blockquote" => true,
            "div" | "section" | "span" | "font" | "li" => s.blocks == 0 && s.chars >= 25,
            _ => false,
        };
        if !paragraph_like || s.chars < 25 || inside_excluded(node, excluded) {
            continue;
        }
        let own = 1.0 + s.commas as f32 + (s.chars as f32 / 100.0).floor().min(3.0);
        propagate(node, own * (1.0 - s.link_density()), &mut scores);
    }
    scores
}

/// Adds a paragraph's score to its ancestors: all to the parent, half to
/// the grandparent, a third per level above that, up to five levels.
fn propagate(node: NodeRef<'_, Node>, own: f32, scores: &mut NodeMap<f32>) {
    for (level, anc) in node.ancestors().take(5).enumerate() {
        let Some(an) = name(anc) else { break };
        if matches!(an, "html") {
            break;
        }
        let entry = scores
            .entry(anc.id())
            .or_insert_with(|| initial_score(an, &class_id(anc)));
        let div = match level {
            0 => 1.0,
            1 => 2.0,
            l => l as f32 * 3.0,
        };
        *entry += own / div;
    }
}

/// Text sitting directly in a block (paragraphs separated by `<br>`, as
/// blogs write them) counts as a paragraph of that block, and so does
/// text in a link that holds whole paragraphs of prose.
fn score_loose_text(
    node: NodeRef<'_, Node>,
    t: &str,
    analysis: &Analysis,
    excluded: &NodeSet,
    scores: &mut NodeMap<f32>,
) {
    let Some(parent) = node.parent() else { return };
    let holds_text = match name(parent) {
        Some("div" | "section" | "article" | "main" | "td" | "blockquote") => true,
        Some("a") => crate::dom::is_prose(&stats(analysis, parent.id())),
        _ => false,
    };
    if !holds_text {
        return;
    }
    let chars = t.trim().chars().count();
    if chars < 25 || inside_excluded(parent, excluded) {
        return;
    }
    let commas = t.chars().filter(|c| matches!(c, ',' | '，' | '、')).count();
    let own = 1.0 + commas as f32 + (chars as f32 / 100.0).floor().min(3.0);
    // The text node itself is not an element, so start from its parent.
    propagate(node, own, scores);
}

fn initial_score(tag: &str, class_id: &str) -> f32 {
    let base = match tag {
        "div" | "article" | "main" | "section" => 5.0,
        "pre" | "td" | "blockquote" => 3.0,
        "address" | "ol" | "ul" | "dl" | "dd" | "dt" | "li" | "form" => -3.0,
        "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "th" => -5.0,
        _ => 0.0,
    };
    base + class_weight(class_id)
}

fn final_score(analysis: &Analysis, scores: &NodeMap<f32>, id: NodeId) -> Option<f32> {
    scores
        .get(&id)
        .map(|s| s * (1.0 - stats(analysis, id).link_density()))
}

/// Moves up from the top candidate while ancestors score comparably, so an
/// article split across several blocks is taken whole.
fn climb(
    doc: &Html,
    analysis: &Analysis,
    scores: &NodeMap<f32>,
    top: NodeId,
    top_score: f32,
) -> NodeId {
    let shared = common_ancestor_of_near_top(doc, analysis, scores, top, top_score);
    let best = climb_while_scores_hold(doc, analysis, scores, shared.unwrap_or(top), top_score);
    widen_lone_child(doc, best)
}

/// Is `n` the page's body, its root, or not an element?
fn is_top_level(n: NodeRef<'_, Node>) -> bool {
    matches!(name(n), Some("body") | Some("html") | None)
}

/// The nearest ancestor of `top` holding two or more other candidates
/// scoring within 75% of it: several near-top blocks under one ancestor
/// are parts of one article.
fn common_ancestor_of_near_top(
    doc: &Html,
    analysis: &Analysis,
    scores: &NodeMap<f32>,
    top: NodeId,
    top_score: f32,
) -> Option<NodeId> {
    let node = doc.tree.get(top)?;
    let near: Vec<NodeId> = scores
        .keys()
        .filter(|id| {
            **id != top
                && final_score(analysis, scores, **id).is_some_and(|s| s >= top_score * 0.75)
        })
        .copied()
        .collect();
    if near.len() < 2 {
        return None;
    }
    node.ancestors()
        .take_while(|anc| !is_top_level(*anc))
        .find(|anc| {
            near.iter()
                .filter(|id| {
                    doc.tree
                        .get(**id)
                        .is_some_and(|n| n.ancestors().any(|a| a.id() == anc.id()))
                })
                .count()
                >= 2
        })
        .map(|anc| anc.id())
}

/// Climbs from `start` to the first ancestor that scores higher than the
/// one below it, as long as scores stay above a third of the top score.
fn climb_while_scores_hold(
    doc: &Html,
    analysis: &Analysis,
    scores: &NodeMap<f32>,
    start: NodeId,
    top_score: f32,
) -> NodeId {
    let threshold = top_score / 3.0;
    let mut last = final_score(analysis, scores, start).unwrap_or(top_score);
    let Some(node) = doc.tree.get(start) else {
        return start;
    };
    for anc in node.ancestors().take_while(|a| !is_top_level(*a)) {
        let Some(s) = final_score(analysis, scores, anc.id()) else {
            continue;
        };
        if s < threshold {
            break;
        }
        if s > last {
            return anc.id();
        }
        last = s;
    }
    start
}

/// A lone child carries nothing its parent does not: widen to the
/// outermost ancestor of which it is the only element child.
fn widen_lone_child(doc: &Html, best: NodeId) -> NodeId {
    let mut node = doc.tree.get(best).expect("best is in the tree");
    while let Some(parent) = node.parent() {
        if is_top_level(parent) {
            break;
        }
        let elements = parent
            .children()
            .filter(|c| matches!(c.value(), Node::Element(_)))
            .count();
        if elements != 1 {
            break;
        }
        node = parent;
    }
    node.id()
}

/// The parent of `top` when it is one of a run of sections sharing a
/// class (`<section class="toc-para">` holding a heading and the text),
/// another of which holds prose: the article goes on in the parent's
/// siblings, not in `top`'s.
fn repeated_section(doc: &Html, analysis: &Analysis, top: NodeId) -> Option<NodeId> {
    let parent = doc.tree.get(top)?.parent()?;
    if is_top_level(parent) {
        return None;
    }
    let own = class_attr(parent)?;
    let grandparent = parent.parent()?;
    grandparent
        .children()
        .any(|sib| {
            let s = stats(analysis, sib.id());
            sib.id() != parent.id()
                && class_attr(sib) == Some(own)
                && s.chars >= 200
                && s.link_density() < 0.25
        })
        .then_some(parent.id())
}

/// The element's `class` attribute, when it has a non-blank one.
fn class_attr<'a>(n: NodeRef<'a, Node>) -> Option<&'a str> {
    match n.value() {
        Node::Element(el) => el.attr("class").map(str::trim).filter(|c| !c.is_empty()),
        _ => None,
    }
}

/// The top candidate plus siblings that look like more of the same.
fn merge_siblings(
    doc: &Html,
    analysis: &Analysis,
    scores: &NodeMap<f32>,
    top: NodeId,
) -> Vec<NodeId> {
    let Some(node) = doc.tree.get(top) else {
        return vec![top];
    };
    let Some(parent) = node.parent() else {
        return vec![top];
    };
    let top_score = final_score(analysis, scores, top).unwrap_or(0.0);
    let threshold = (top_score * 0.2).max(10.0);
    // The class alone: sections of one article share it, while their
    // ids number them (`toc_19421`, `toc_19426`).
    let top_class = class_attr(node);
    let mut roots = Vec::new();
    for sib in parent.children() {
        if sib.id() == top {
            roots.push(top);
            continue;
        }
        let Some(el) = sib.value().as_element() else {
            continue;
        };
        let n = el.name();
        let cid = class_id(sib);
        let s = stats(analysis, sib.id());
        if is_unlikely(&cid) || drops_tag(el, s) {
            continue;
        }
        // A sibling of the same class is more of the same block: kept
        // for any prose it holds, as a loose paragraph is, even beside
        // its own list of links (which the cleaner then drops as one).
        let same_class = top_class.is_some() && class_attr(sib) == top_class;
        let keep = final_score(analysis, scores, sib.id()).is_some_and(|sc| sc >= threshold)
            || (n == "p" && s.chars > 80 && s.link_density() < 0.25)
            || (same_class && s.chars > 80 && s.link_density() < 0.5);
        if keep {
            roots.push(sib.id());
        }
    }
    roots
}

/// The block of questions and answers that follows the selection, a
/// sibling of its last root or of one of that root's three nearest
/// ancestors: the FAQ a guide closes with is part of it, though its short
/// answers score too little to be merged as a sibling.
fn faq_after(doc: &Html, analysis: &Analysis, roots: &[NodeId]) -> Option<NodeId> {
    let last = doc.tree.get(*roots.last()?)?;
    std::iter::once(last)
        .chain(last.ancestors().take(3))
        .take_while(|n| !is_top_level(*n) && name(*n).is_some())
        .flat_map(|n| n.next_siblings())
        .find(|sib| {
            let Some(el) = sib.value().as_element() else {
                return false;
            };
            let s = stats(analysis, sib.id());
            says_faq(*sib)
                && s.chars > 200
                && s.link_density() < 0.5
                && !drops_tag(el, s)
                && !is_hidden(*sib, analysis)
        })
        .map(|n| n.id())
}

/// Does an element, or the element it only wraps, say it is an FAQ?
fn says_faq(node: NodeRef<'_, Node>) -> bool {
    let mut node = Some(node);
    for _ in 0..3 {
        let Some(n) = node else { return false };
        if is_faq(&class_id(n)) {
            return true;
        }
        let mut children = n.children().filter(|c| c.value().is_element());
        node = children.next().filter(|_| children.next().is_none());
    }
    false
}

/// If the selection holds under half of the page's paragraph text, widen it
/// to the nearest ancestor holding most of that text, as long as that does
/// not pull in a page's worth of links.
fn recover(
    doc: &Html,
    analysis: &Analysis,
    excluded: &NodeSet,
    roots: &[NodeId],
) -> Option<Vec<NodeId>> {
    let selected: u32 = roots
        .iter()
        .map(|id| paragraph_chars(doc, analysis, excluded, *id))
        .sum();
    let body = doc
        .tree
        .root()
        .descendants()
        .find(|n| name(*n) == Some("body"))?;
    let total = paragraph_chars(doc, analysis, excluded, body.id());
    if total == 0 || selected as f32 >= total as f32 * 0.5 {
        return None;
    }
    let first = doc.tree.get(*roots.first()?)?;
    for anc in first.ancestors() {
        if matches!(name(anc), Some("html") | None) {
            break;
        }
        let s = stats(analysis, anc.id());
        let inside = paragraph_chars(doc, analysis, excluded, anc.id());
        if inside as f32 >= total as f32 * 0.7 {
            return (s.link_density() < 0.4).then(|| vec![anc.id()]);
        }
    }
    None
}

/// Text in `<p>` elements under `id`, outside excluded subtrees, with low
/// link density.
fn paragraph_chars(doc: &Html, analysis: &Analysis, excluded: &NodeSet, id: NodeId) -> u32 {
    let Some(root) = doc.tree.get(id) else {
        return 0;
    };
    root.descendants()
        .filter(|n| name(*n) == Some("p"))
        .map(|n| (n, stats(analysis, n.id())))
        .filter(|(n, s)| s.link_density() < 0.5 && !inside_excluded(*n, excluded))
        .map(|(_, s)| s.chars)
        .sum()
}

/// Keeps only nodes none of whose ancestors is also in the list.
fn outermost(doc: &Html, ids: Vec<NodeId>) -> Vec<NodeId> {
    let set: NodeSet = ids.iter().copied().collect();
    let mut seen = NodeSet::default();
    ids.into_iter()
        .filter(|id| {
            doc.tree
                .get(*id)
                .is_some_and(|n| !n.ancestors().any(|a| set.contains(&a.id())))
                && seen.insert(*id)
        })
        .collect()
}

/// Sorts nodes by their position in the document.
fn in_document_order(doc: &Html, ids: Vec<NodeId>) -> Vec<NodeId> {
    let wanted: NodeSet = ids.into_iter().collect();
    doc.tree
        .root()
        .descendants()
        .map(|n| n.id())
        .filter(|id| wanted.contains(id))
        .collect()
}
