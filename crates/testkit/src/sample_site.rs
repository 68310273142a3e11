//! The bundled sample news site that `make run` and the end-to-end tests
//! crawl: 27 articles in four layouts modelled on real news sites (one
//! GBK-encoded and one Big5-encoded Chinese page among them), an RSS 2.0
//! feed, an Atom feed and a sitemap, plus the traps a crawler must handle:
//! a robots.txt that disallows one path, a redirecting URL, a broken link
//! and a non-HTML file.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Articles the site serves under `/news/{slug}`.
pub const ARTICLES: usize = 27;

/// One article of the site.
#[derive(Debug, Clone)]
pub struct Article {
    /// URL path.
    pub slug: String,
    /// Title.
    pub title: String,
    /// Paragraphs.
    pub paragraphs: Vec<String>,
    /// Layout 0..4, or 4 = GBK, 5 = Big5.
    pub layout: usize,
    /// Publication time, Unix ms.
    pub published_at: i64,
}

const TOPICS: [&str; 9] = [
    "harbour",
    "election",
    "railway",
    "festival",
    "drought",
    "museum",
    "bridge",
    "vaccine",
    "orchestra",
];

/// Every article of the site, in publication order.
pub fn articles() -> Vec<Article> {
    let mut out = Vec::new();
    for i in 0..ARTICLES - 2 {
        let topic = TOPICS[i % TOPICS.len()];
        out.push(Article {
            slug: format!("2023/11/{:02}/{topic}-story-{i}", 1 + i % 28),
            title: format!("City {topic} report number {i}"),
            paragraphs: (0..4)
                .map(|p| format!("Paragraph {p} of the {topic} report {i}: officials said on Thursday that the plan, which has been debated for years, would move ahead after a public consultation, and residents reacted with a mix of relief and concern."))
                .collect(),
            layout: i % 4,
            published_at: 1_698_796_800_000 + i as i64 * 3_600_000,
        });
    }
    out.push(Article {
        slug: "2023/11/09/gbk-report".into(),
        title: "美韩谴责朝鲜向俄罗斯运送武器".into(),
        paragraphs: vec![
            "美国国务卿布林肯和韩国总统尹锡悦今天谴责平壤向莫斯科运送武器，以支持俄罗斯在乌克兰的侵略战争。".into(),
            "布林肯还呼吁中国阻止朝鲜采取任何破坏稳定的行动，例如禁止发射导弹。".into(),
            "美国国务院在会见后的一份公告中解释说，美韩强烈谴责朝鲜向俄罗斯提供军事装备和弹药。".into(),
        ],
        layout: 4,
        published_at: 1_699_530_301_000,
    });
    out.push(Article {
        slug: "2023/11/10/big5-report".into(),
        title: "台北舉辦國際書展吸引大批讀者".into(),
        paragraphs: vec![
            "台北國際書展今天開幕，來自世界各地的出版社參展，吸引大批讀者前往參觀。".into(),
            "主辦單位表示，今年展覽規模創下新高，並安排了數百場講座與簽書會。".into(),
            "許多讀者表示，實體書展仍然是與作者面對面交流的重要機會。".into(),
        ],
        layout: 5,
        published_at: 1_699_616_701_000,
    });
    out
}

fn page(a: &Article) -> String {
    let paras: String = a
        .paragraphs
        .iter()
        .map(|p| format!("<p>{p}</p>\n"))
        .collect();
    let date = iso(a.published_at);
    let nav = r#"<nav class="main-nav"><a href="/">Home</a> <a href="/news/">News</a> <a href="/world/">World</a></nav>"#;
    let share = r#"<div class="share-bar"><a href="https://facebook.example/share">Share</a> <a href="https://x.example/intent">Post</a></div>"#;
    let related = r#"<aside class="related-articles"><h3>Related</h3><ul><li><a href="/news/2023/11/01/harbour-story-0">Earlier harbour report</a></li></ul></aside>"#;
    let footer =
        r#"<footer class="site-footer"><p>© 2023 Sample Daily. All rights reserved.</p></footer>"#;
    match a.layout {
        0 => format!(
            r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{t} | Sample Daily</title>
<meta property="og:title" content="{t}"><meta property="og:type" content="article"><meta property="article:published_time" content="{date}">
<script>var ads = [];</script></head><body>{nav}<main><article><h1>{t}</h1><div class="byline">By Staff Reporter</div>{share}
<div class="article-body">{paras}</div>{related}</article></main>{footer}</body></html>"#,
            t = a.title
        ),
        1 => format!(
            r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{t} - The Sample Post</title>
<script type="application/ld+json">{{"@context":"https://schema.org","@type":"NewsArticle","headline":"{t}","datePublished":"{date}","author":{{"@type":"Person","name":"Jane Roe"}}}}</script>
</head><body><header class="masthead">{nav}</header><div id="content"><div class="story"><h1 class="headline">{t}</h1>
<div class="story-text">{paras}<div class="newsletter-signup"><p>Sign up for our newsletter!</p><form><input name="e"><button>Go</button></form></div></div></div>
<div class="sidebar"><h3>Most read</h3><ol><li><a href="/news/a">A</a></li><li><a href="/news/b">B</a></li></ol></div></div>{footer}</body></html>"#,
            t = a.title
        ),
        2 => format!(
            r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{t}</title><meta name="pubdate" content="{date}"></head><body>
<div class="page-wrapper">{nav}<div class="container"><div class="col-main"><h1>{t}</h1><time datetime="{date}">Nov 2023</time>
<div class="entry-content">{paras}</div><div class="tags"><a href="/tag/x">x</a></div></div>
<div class="col-side"><div class="widget promo">Subscribe today</div></div></div>{footer}</div></body></html>"#,
            t = a.title
        ),
        3 => format!(
            r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{t} — Sample Wire</title><link rel="canonical" href="/news/{slug}"></head><body>
{nav}<section class="story-layout"><h1>{t}</h1><p class="dateline">Published {date}</p>
<div itemprop="articleBody">{paras}</div><div class="comments"><h3>Comments</h3><p>First!</p></div></section>{footer}</body></html>"#,
            t = a.title,
            slug = a.slug
        ),
        4 => format!(
            r#"<html><head><meta http-equiv="Content-Type" content="text/html; charset=gb2312"><title>{t} - 样本日报</title>
<meta property="og:title" content="{t}"><meta property="article:published_time" content="{date}"></head><body>{nav}
<article><h1>{t}</h1><div class="article-body">{paras}</div>{share}</article>{footer}</body></html>"#,
            t = a.title
        ),
        _ => format!(
            r#"<html lang="zh-TW"><head><title>{t} - 樣本日報</title><meta property="og:title" content="{t}">
<meta property="article:published_time" content="{date}"></head><body>{nav}<article><h1>{t}</h1><div class="article-body">{paras}</div></article>{footer}</body></html>"#,
            t = a.title
        ),
    }
}

fn iso(ms: i64) -> String {
    // Minimal UTC formatter, enough for the fixed dates above.
    let secs = ms / 1000;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn civil(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn rfc2822(ms: i64) -> String {
    let days = (ms / 1000).div_euclid(86_400);
    let (y, m, d) = civil(days);
    let rem = (ms / 1000).rem_euclid(86_400);
    let wd = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][days.rem_euclid(7) as usize];
    let mon = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(m - 1) as usize];
    format!(
        "{wd}, {d:02} {mon} {y} {:02}:{:02}:{:02} GMT",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The site; `base` is its own origin (`http://127.0.0.1:PORT`), used in
/// feeds and sitemaps.
pub fn router(base: String) -> Router {
    let site = Site {
        base,
        changed: Arc::default(),
    };
    Router::new()
        .route("/", get(home))
        .route(
            "/robots.txt",
            get(|| async { "User-agent: *\nDisallow: /private/\n\nSitemap: /sitemap.xml\n" }),
        )
        .route("/rss.xml", get(rss))
        .route("/atom.xml", get(atom))
        .route("/sitemap.xml", get(sitemap))
        .route("/news/{*slug}", get(article))
        // The `make run` demo: one article is edited, another taken down.
        .route(
            "/_demo/change",
            post(|State(site): State<Site>| async move {
                site.changed.store(true, Ordering::SeqCst);
                format!("edited /news/{EDITED}, removed /news/{REMOVED}\n")
            }),
        )
        .route(
            "/private/{*slug}",
            get(|| async {
                html_response(
                    "<html><body><p>Members only.</p></body></html>".into(),
                    None,
                )
            }),
        )
        .route(
            "/go/{n}",
            get(|Path(n): Path<usize>| async move {
                let a = &articles()[n.min(ARTICLES - 1)];
                (
                    StatusCode::MOVED_PERMANENTLY,
                    [(header::LOCATION, format!("/news/{}", a.slug))],
                )
                    .into_response()
            }),
        )
        .route(
            "/files/report.pdf",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "application/pdf")],
                    b"%PDF-1.4 sample".to_vec(),
                )
                    .into_response()
            }),
        )
        .with_state(site)
}

/// The site's state: its base URL, and whether the demo change happened.
#[derive(Clone)]
struct Site {
    base: String,
    changed: Arc<AtomicBool>,
}

/// The article `POST /_demo/change` edits.
pub const EDITED: &str = "2023/11/02/election-story-1";
/// The article `POST /_demo/change` takes down (410 Gone).
pub const REMOVED: &str = "2023/11/03/railway-story-2";

fn etag_of(body: &[u8]) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in body {
        h = (h ^ u64::from(*b)).wrapping_mul(0x100000001b3);
    }
    format!("\"{h:016x}\"")
}

fn html_response(body: Vec<u8>, content_type: Option<&'static str>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            content_type.unwrap_or("text/html; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

/// Serves `body` with an ETag, answering 304 to a matching If-None-Match.
fn conditional(headers: &HeaderMap, body: Vec<u8>, content_type: &'static str) -> Response {
    let etag = etag_of(&body);
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        == Some(etag.as_str())
    {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::ETAG, etag.as_str()),
        ],
        body,
    )
        .into_response()
}

async fn home() -> Response {
    let links: String = articles()
        .iter()
        .map(|a| format!("<li><a href=\"/news/{}\">{}</a></li>", a.slug, a.title))
        .collect();
    html_response(
        format!("<html><body><h1>Sample Daily</h1><ul>{links}</ul></body></html>").into_bytes(),
        None,
    )
}

async fn article(
    State(site): State<Site>,
    Path(slug): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(mut a) = articles().into_iter().find(|a| a.slug == slug) else {
        return (StatusCode::NOT_FOUND, "no such article").into_response();
    };
    if site.changed.load(Ordering::SeqCst) {
        if slug == REMOVED {
            return (StatusCode::GONE, "this article has been removed").into_response();
        }
        if slug == EDITED {
            a.paragraphs[1] = "Paragraph 1, as corrected: officials now say the plan will not go ahead this year, and the consultation has been cancelled without explanation.".into();
        }
    }
    let html = page(&a);
    match a.layout {
        4 => conditional(
            &headers,
            encoding_rs::GBK.encode(&html).0.into_owned(),
            "text/html",
        ),
        5 => conditional(
            &headers,
            encoding_rs::BIG5.encode(&html).0.into_owned(),
            "text/html; charset=big5",
        ),
        _ => conditional(&headers, html.into_bytes(), "text/html; charset=utf-8"),
    }
}

async fn rss(State(site): State<Site>, headers: HeaderMap) -> Response {
    let base = &site.base;
    let items: String = articles()
        .iter()
        .take(14)
        .map(|a| format!("<item><title>{}</title><link>{base}/news/{}</link><pubDate>{}</pubDate><description>Summary</description></item>", a.title, a.slug, rfc2822(a.published_at)))
        .collect();
    let body = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Sample Daily</title><link>{base}/</link><description>News</description>{items}</channel></rss>"#
    );
    conditional(&headers, body.into_bytes(), "application/rss+xml")
}

async fn atom(State(site): State<Site>, headers: HeaderMap) -> Response {
    let base = &site.base;
    let mut entries: String = articles()
        .iter()
        .enumerate()
        .skip(14)
        .map(|(i, a)| {
            // One entry goes through a redirect.
            let href = if i == 20 { format!("{base}/go/20") } else { format!("{base}/news/{}", a.slug) };
            format!("<entry><title>{}</title><id>{href}</id><link href=\"{href}\"/><updated>{}</updated></entry>", a.title, iso(a.published_at))
        })
        .collect();
    entries.push_str(&format!("<entry><title>Broken</title><id>{base}/news/2023/11/30/missing</id><link href=\"{base}/news/2023/11/30/missing\"/><updated>2023-11-30T00:00:00Z</updated></entry>"));
    let body = format!(
        r#"<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>Sample Daily</title><id>{base}/</id><updated>2023-11-30T00:00:00Z</updated>{entries}</feed>"#
    );
    conditional(&headers, body.into_bytes(), "application/atom+xml")
}

async fn sitemap(State(site): State<Site>, headers: HeaderMap) -> Response {
    let base = &site.base;
    let mut urls: String = articles()
        .iter()
        .map(|a| format!("<url><loc>{base}/news/{}</loc></url>", a.slug))
        .collect();
    urls.push_str(&format!("<url><loc>{base}/private/members-only</loc></url><url><loc>{base}/files/report.pdf</loc></url>"));
    let body = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>"#
    );
    conditional(&headers, body.into_bytes(), "application/xml")
}

/// What a full crawl of the site must end with.
pub struct Expected {
    /// Article URLs that must be stored.
    pub stored: Vec<String>,
    /// (URL, dead-letter reason) pairs.
    pub dead: Vec<(String, &'static str)>,
}

/// The expected outcome of crawling the site at `base`.
pub fn expected(base: &str) -> Expected {
    Expected {
        stored: articles()
            .iter()
            .map(|a| format!("{base}/news/{}", a.slug))
            .collect(),
        dead: vec![
            (format!("{base}/private/members-only"), "robots_disallowed"),
            (format!("{base}/news/2023/11/30/missing"), "http_not_found"),
            (
                format!("{base}/files/report.pdf"),
                "unsupported_content_type",
            ),
        ],
    }
}

/// The seeds to submit: the two feeds and the sitemap.
pub fn seeds(base: &str) -> Vec<String> {
    vec![
        format!("{base}/rss.xml"),
        format!("{base}/atom.xml"),
        format!("{base}/sitemap.xml"),
    ]
}
