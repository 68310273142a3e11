//! Class/id and tag patterns that mark boilerplate or content.
//!
//! Matching is on lowercased `class` + `id` strings. The lists follow what
//! readability-style extractors learned over years of news pages, plus the
//! share bars, promos and "related" blocks of the Chinese-language news
//! sites this archive is made for.

/// Tags removed with their whole subtree before anything else.
pub const DROP_TAGS: &[&str] = &[
    "script", "style", "noscript", "template", "iframe", "form", "button", "input", "select",
    "textarea", "nav", "aside", "footer", "svg", "canvas", "object", "embed", "dialog", "menu",
    "link", "meta",
];

/// Is this element, with these text statistics, dropped with its subtree
/// for its tag? A `<form>` is, unless it wraps the page (ASP.NET and other
/// frameworks put the whole body in one form); a `<button>` is, unless it
/// is a disclosure toggle (`aria-expanded`) labelled with a phrase: an
/// FAQ's question, a folded section's title.
pub fn drops_tag(el: &scraper::node::Element, stats: crate::dom::Stats) -> bool {
    let tag = el.name();
    DROP_TAGS.contains(&tag)
        && !(tag == "form" && stats.paragraphs >= 3)
        && !(tag == "button" && el.attr("aria-expanded").is_some() && stats.chars >= 20)
}

/// Class/id fragments of blocks that are almost never the article.
const UNLIKELY: &[&str] = &[
    "-ad-",
    "ad-slot",
    "adslot",
    "ad-container",
    "advert",
    "banner",
    "breadcrumb",
    "combx",
    "comment",
    "community",
    "cookie",
    "disqus",
    "gdpr",
    "footer",
    "header",
    "legends",
    "menu",
    "related",
    "remark",
    "replies",
    "rss",
    "shoutbox",
    "sidebar",
    "skyscraper",
    "social",
    "sponsor",
    "supplemental",
    "pagination",
    "pager",
    "popup",
    "share",
    "sharing",
    "newsletter",
    "subscribe",
    "promo",
    "outbrain",
    "taboola",
    "recirc",
    "most-popular",
    "mostpopular",
    "trending",
    "signup",
    "sign-up",
    "toolbar",
    "tags",
    "byline-share",
    "read-more",
    "readmore",
    "more-stories",
    "recommend",
    "selfpromo",
    "app-download",
    "paywall",
    "modal",
    "masthead",
    "navbar",
    "skip-link",
    "jump-link",
    "print-only",
    "visually-hidden",
    "sr-only",
    "author-bio",
    "hidden",
];

/// Class/id fragments that rescue an element from [`UNLIKELY`].
const MAYBE: &[&str] = &[
    "and",
    "article",
    "body",
    "column",
    "content",
    "main",
    "shadow",
    "story",
    "entry",
    "post-text",
];

/// Class/id fragments that raise a candidate's score.
const POSITIVE: &[&str] = &[
    "article",
    "body",
    "content",
    "entry",
    "hentry",
    "h-entry",
    "main",
    "page",
    "pagination",
    "post",
    "text",
    "blog",
    "story",
    "prose",
    "rich-text",
    "richtext",
];

/// Class/id fragments that lower a candidate's score.
const NEGATIVE: &[&str] = &[
    "-ad-",
    "hidden",
    "banner",
    "combx",
    "comment",
    "com-",
    "contact",
    "foot",
    "footer",
    "footnote",
    "gdpr",
    "masthead",
    "media",
    "meta",
    "outbrain",
    "promo",
    "related",
    "scroll",
    "share",
    "shoutbox",
    "sidebar",
    "skyscraper",
    "sponsor",
    "shopping",
    "tags",
    "tool",
    "widget",
    "newsletter",
    "social",
    "recommend",
    "caption",
    "byline",
    "author",
    "subscribe",
    "nav",
    "breadcrumb",
    "popular",
    "trending",
    "teaser",
];

/// Does the class/id string mark an element as unlikely content?
pub fn is_unlikely(class_id: &str) -> bool {
    !class_id.is_empty()
        && UNLIKELY.iter().any(|p| contains_token_part(class_id, p))
        && !MAYBE.iter().any(|p| class_id.contains(p))
}

/// Hard boilerplate: share bars, promos, related lists, ads and the like,
/// removed even inside the chosen article container.
pub fn is_boilerplate(class_id: &str) -> bool {
    const HARD: &[&str] = &[
        "share",
        "sharing",
        "social",
        "newsletter",
        "subscribe",
        "promo",
        "related",
        "recommend",
        "outbrain",
        "taboola",
        "advert",
        "-ad-",
        "ad-slot",
        "adslot",
        "ad-container",
        "ad-wrapper",
        "ad-unit",
        "advertisement",
        "selfpromo",
        "app-download",
        "most-popular",
        "mostpopular",
        "more-stories",
        "post-list",
        "read-more",
        "readmore",
        "recirc",
        "trending",
        "comment",
        "breadcrumb",
        "pagination",
        "tags",
        "print-only",
        "visually-hidden",
        "sr-only",
        "signup",
        "sign-up",
        "cookie",
        "gdpr",
        "paywall",
        "author-bio",
        "toolbar",
        "skip-link",
        "byline",
        "dateline",
        "timestamp",
        "credit",
        "slideshow",
        "gallery",
        "cta",
        "carousel",
        "lightbox",
        "modal",
        "popup",
        "popover",
        "rollover",
        "author",
        "published-date",
        "post-meta",
        "entry-meta",
        "article-meta",
        "video-player",
        "jw-player",
        "sharedaddy",
        "likes-widget",
    ];
    !class_id.is_empty() && HARD.iter().any(|p| contains_token_part(class_id, p))
}

/// Does the class/id string mark a block of questions and answers (`faq`,
/// `faqs`, `FAQ_wrapper`, `accordion-faq`)? An FAQ after the story
/// answers its readers' questions: it is part of the article.
pub fn is_faq(class_id: &str) -> bool {
    contains_token_part(class_id, "faq")
}

/// Does the class string mark a caption or credit line of a picture
/// (`newsCaption`, `body-img-caption`)? Its text stays in the archived
/// HTML but not in the article text, like a `<figcaption>`'s.
pub fn is_caption(class: &str) -> bool {
    contains_token_part(class, "caption")
}

/// `data-*` attribute names that mark boilerplate (RFI's
/// `data-selfpromo-newsletter`, `data-article-list`, `data-root-share`...).
pub fn is_boilerplate_data_attr(attr: &str) -> bool {
    let Some(rest) = attr.strip_prefix("data-") else {
        return false;
    };
    // Whole words of the name: `data-ad-slot` is an ad, while
    // `data-lazyload-images` merely contains the letters "ad-". "ad" names
    // an ad only first: `data-sc-ad-label-height` sets how a content block
    // lays out the ads around its text.
    let words: Vec<&str> = rest.split(['-', '_']).collect();
    matches!(words.first(), Some(&("ad" | "ads")))
        || words.iter().any(|w| {
            matches!(*w, "selfpromo" | "newsletter" | "related")
                || w.starts_with("advert")
                || w.starts_with("share")
        })
        || words.windows(2).any(|p| p == ["article", "list"])
}

/// +25 per positive hint, −25 per negative one (class and id counted apart).
pub fn class_weight(class_id: &str) -> f32 {
    let mut w = 0.0;
    if NEGATIVE.iter().any(|p| contains_token_part(class_id, p)) {
        w -= 25.0;
    }
    if POSITIVE.iter().any(|p| class_id.contains(p)) {
        w += 25.0;
    }
    w
}

/// `pattern` occurs in `s` as the start of a word: "ad" must not match
/// "header", "pager" must not match "pagerow", "tags" must not match
/// "hashtags". Short patterns must also end a word (a trailing `s` is
/// allowed); patterns that begin or end with `-`, and long ones, match
/// anywhere.
fn contains_token_part(s: &str, pattern: &str) -> bool {
    if pattern.starts_with('-') || pattern.ends_with('-') || pattern.len() > 6 {
        return s.contains(pattern);
    }
    s.match_indices(pattern).any(|(i, _)| {
        let before = s[..i].chars().next_back();
        let mut after = s[i + pattern.len()..].chars();
        let end_ok = match after.next() {
            None => true,
            Some('s') => !after.next().is_some_and(|c| c.is_ascii_alphabetic()),
            Some(c) => !c.is_ascii_alphabetic(),
        };
        !before.is_some_and(|c| c.is_ascii_alphabetic()) && end_ok && !overflow_utility(&s[..i])
    })
}

/// Does the text before a match end in `overflow-` (`overflow-hidden`,
/// `overflow-x-hidden`, `vds-overflow_hidden`)? That is a layout utility
/// clipping its box, not a hidden element.
fn overflow_utility(before: &str) -> bool {
    let b = before.trim_end_matches(['-', '_', ':']);
    let b = b
        .strip_suffix("-x")
        .or_else(|| b.strip_suffix("-y"))
        .or_else(|| b.strip_suffix("_x"))
        .or_else(|| b.strip_suffix("_y"))
        .unwrap_or(b);
    b.ends_with("overflow")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(is_unlikely("site-footer"));
        assert!(
            !is_unlikely("article-footer-content"),
            "rescued by `article`/`content`"
        );
        assert!(is_unlikely("hidden-xs sidebar"));
        assert!(!is_unlikely("vds-box vds-overflow_hidden"));
        assert!(!is_unlikely("md:overflow-x-hidden"));
        assert!(is_boilerplate("share-bar"));
        assert!(is_boilerplate("m-related-articles"));
        assert!(!is_boilerplate("article-body"));
        assert!(
            !is_boilerplate("hashtagsdisplay"),
            "`tags` inside a word does not count"
        );
        assert!(
            !is_unlikely("pagebuilder-pagerow"),
            "`pager` must end a word"
        );
        assert!(is_unlikely("menus"));
        assert!(class_weight("article-body") > 0.0);
        assert!(class_weight("sidebar") < 0.0);
        assert!(is_boilerplate_data_attr("data-selfpromo-newsletter"));
        assert!(is_boilerplate_data_attr("data-article-list"));
        assert!(!is_boilerplate_data_attr("data-src"));
        assert!(!is_boilerplate_data_attr("data-lazyload-images-options"));
        assert!(is_boilerplate_data_attr("data-ad-slot"));
        assert!(is_boilerplate_data_attr("data-root-share"));
        // Ad layout settings of the content block are not an ad.
        assert!(!is_boilerplate_data_attr("data-sc-ad-label-height"));
        assert!(is_boilerplate_data_attr("data-ads-container"));
        // Photo galleries' controls and calls to action ("A Word to Our
        // Loyal Readers") inside the article container.
        assert!(is_boilerplate("article-gallery-14848382"));
        assert!(is_boilerplate("smg-zone-widget-custom-cta-letter"));
        assert!(
            !is_boilerplate("factual-summary"),
            "`cta` must start a word"
        );
        // A link's rollover card of related stories, inside a sentence.
        assert!(is_boilerplate("rollover-people-block"));
        // WordPress Jetpack's share and "Like this:" blocks.
        assert!(is_boilerplate(
            "sharedaddy sd-block sd-like jetpack-likes-widget-wrapper"
        ));
        assert!(is_boilerplate(
            "likes-widget-placeholder post-likes-widget-placeholder"
        ));
        // Teasers of other posts under the story.
        assert!(is_boilerplate("post-list col-24 offset-sm-1"));
        assert!(is_caption("newscaption"));
        assert!(is_caption("body-img-caption"));
        assert!(!is_caption("article-body"));
    }
}
