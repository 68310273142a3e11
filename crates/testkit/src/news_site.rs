//! A large synthetic news site for the fault suite and the pipeline
//! benchmark: any number of article pages, 30–80 KB each, spread over
//! several hosts (127.0.0.1, 127.0.0.2, ... on one port, so per-host
//! politeness applies as it would across real sites).
//!
//! Pages are generated on request from their number, so the site holds
//! nothing in memory and serves 50,000 pages as easily as 50. Each page looks
//! like a real article page: head metadata (Open Graph, JSON-LD, canonical),
//! navigation, the article, related links, share buttons, a footer and
//! inline scripts; only the article text should survive extraction.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::task::JoinHandle;

const WORDS: &[&str] = &[
    "government",
    "officials",
    "said",
    "on",
    "the",
    "city",
    "council",
    "report",
    "market",
    "prices",
    "rose",
    "after",
    "week",
    "of",
    "talks",
    "between",
    "ministers",
    "and",
    "union",
    "leaders",
    "in",
    "capital",
    "where",
    "protesters",
    "gathered",
    "outside",
    "parliament",
    "while",
    "police",
    "watched",
    "from",
    "nearby",
    "streets",
    "analysts",
    "expect",
    "growth",
    "to",
    "slow",
    "next",
    "year",
    "as",
    "exports",
    "fall",
    "energy",
    "costs",
    "remain",
    "high",
    "for",
    "households",
    "across",
    "region",
    "election",
    "campaign",
    "candidates",
    "promised",
    "new",
    "schools",
    "hospitals",
    "roads",
    "farmers",
    "warned",
    "that",
    "drought",
    "could",
    "cut",
    "harvest",
    "by",
    "third",
    "scientists",
    "published",
    "study",
    "showing",
    "river",
    "levels",
    "lowest",
    "since",
    "records",
    "began",
    "court",
    "ruled",
    "against",
    "company",
    "which",
    "plans",
    "appeal",
    "decision",
    "journalists",
    "were",
    "allowed",
    "into",
    "building",
    "first",
    "time",
    "months",
    "residents",
    "described",
    "scene",
    "calm",
    "but",
    "tense",
    "spokesperson",
    "declined",
    "comment",
    "further",
    "details",
    "would",
    "be",
    "released",
    "later",
    "this",
    "month",
    "according",
    "statement",
    "issued",
    "late",
    "Thursday",
    "evening",
];

/// The running site.
pub struct NewsSite {
    hosts: Vec<SocketAddr>,
    tasks: Vec<JoinHandle<()>>,
}

impl NewsSite {
    /// Serves the site on `hosts` loopback addresses (127.0.0.1 up to
    /// 127.0.0.`hosts`) sharing one free port.
    pub async fn serve(hosts: u8) -> NewsSite {
        NewsSite::serve_router(hosts, router()).await
    }

    /// [`NewsSite::serve`] with another router (the site's own wrapped in
    /// layers that delay or record requests, for example).
    pub async fn serve_router(hosts: u8, app: Router) -> NewsSite {
        assert!(hosts >= 1);
        'port: loop {
            let port = crate::free_port();
            let mut listeners = Vec::new();
            for h in 1..=hosts {
                let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, h)), port);
                match tokio::net::TcpListener::bind(addr).await {
                    Ok(l) => listeners.push(l),
                    Err(_) => continue 'port,
                }
            }
            let hosts = listeners.iter().map(|l| l.local_addr().unwrap()).collect();
            let tasks = listeners
                .into_iter()
                .map(|l| {
                    let app = app.clone();
                    tokio::spawn(async move {
                        let _ = axum::serve(l, app).await;
                    })
                })
                .collect();
            return NewsSite { hosts, tasks };
        }
    }

    /// The URL of article `n` (1-based).
    pub fn url(&self, n: u64) -> String {
        article_url(self.hosts[0].port(), self.hosts.len() as u8, n)
    }

    /// URLs of articles 1..=n.
    pub fn urls(&self, n: u64) -> Vec<String> {
        (1..=n).map(|i| self.url(i)).collect()
    }

    /// A page the extractor refuses on every delivery (64k nested tags),
    /// on the first host.
    pub fn poison_url(&self) -> String {
        format!("http://{}/poison/deep", self.hosts[0])
    }

    /// The addresses served.
    pub fn hosts(&self) -> &[SocketAddr] {
        &self.hosts
    }
}

impl Drop for NewsSite {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// The URL of article `n` on a site of `hosts` hosts on `port`.
pub fn article_url(port: u16, hosts: u8, n: u64) -> String {
    let host = 1 + (n % u64::from(hosts)) as u8;
    let (m, d) = date(n);
    format!("http://127.0.0.{host}:{port}/news/2024/{m:02}/{d:02}/story-{n}")
}

/// The router. Article `n` is at any host's `/news/2024/{m}/{d}/story-{n}`.
pub fn router() -> Router {
    Router::new()
        .route("/robots.txt", get(|| async { "User-agent: *\nAllow: /\n" }))
        .route("/news/2024/{m}/{d}/{slug}", get(article))
        .route("/poison/deep", get(deep))
}

async fn article(Path((_, _, slug)): Path<(String, String, String)>) -> Response {
    let Some(n) = slug
        .strip_prefix("story-")
        .and_then(|s| s.parse::<u64>().ok())
    else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let html = page(n);
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8".to_string()),
            (header::ETAG, format!("\"story-{n}-v1\"")),
        ],
        html,
    )
        .into_response()
}

async fn deep() -> Response {
    let n = 65_536;
    let mut html = String::with_capacity(n * 11 + 64);
    html.push_str("<html><body>");
    for _ in 0..n {
        html.push_str("<div>");
    }
    html.push_str("deep");
    for _ in 0..n {
        html.push_str("</div>");
    }
    html.push_str("</body></html>");
    ([(header::CONTENT_TYPE, "text/html")], html).into_response()
}

/// Small deterministic generator (xorshift64*), seeded per page.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn sentence(&mut self, out: &mut String) {
        let len = 8 + self.below(14);
        for i in 0..len {
            let w = WORDS[self.below(WORDS.len() as u64) as usize];
            if i == 0 {
                let mut c = w.chars();
                let first = c.next().unwrap().to_ascii_uppercase();
                out.push(first);
                out.push_str(c.as_str());
            } else {
                out.push(' ');
                out.push_str(w);
            }
        }
        out.push_str(". ");
    }
}

fn date(n: u64) -> (u64, u64) {
    (1 + n % 12, 1 + n % 28)
}

/// The title of article `n`.
pub fn title(n: u64) -> String {
    let mut rng = Rng::new(n);
    let mut t = String::new();
    rng.sentence(&mut t);
    format!("{} ({n})", t.trim_end().trim_end_matches('.'))
}

/// The first paragraph of article `n`'s text.
pub fn first_paragraph(n: u64) -> String {
    let mut rng = Rng::new(n ^ 0xA5A5);
    paragraph(&mut rng)
}

fn paragraph(rng: &mut Rng) -> String {
    let mut p = String::new();
    for _ in 0..3 + rng.below(4) {
        rng.sentence(&mut p);
    }
    p.trim_end().to_string()
}

/// The HTML of article `n`: 30–80 KB.
pub fn page(n: u64) -> String {
    let mut rng = Rng::new(n ^ 0xA5A5);
    let target = 30_000 + (Rng::new(n).next() % 50_000) as usize;
    let title = title(n);
    let (m, d) = date(n);
    let published = format!("2024-{m:02}-{d:02}T{:02}:{:02}:00Z", n % 24, n % 60);
    let mut paras = vec![paragraph(&mut rng)];
    for _ in 0..5 + rng.below(10) {
        paras.push(paragraph(&mut rng));
    }
    let mut h = String::with_capacity(target + 4096);
    h.push_str("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">");
    h.push_str(&format!(
        "<title>{title} | Loopback Daily</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"description\" content=\"{}\">\
         <meta property=\"og:type\" content=\"article\">\
         <meta property=\"og:title\" content=\"{title}\">\
         <meta property=\"article:published_time\" content=\"{published}\">\
         <script type=\"application/ld+json\">{{\"@context\":\"https://schema.org\",\"@type\":\"NewsArticle\",\"headline\":\"{title}\",\"datePublished\":\"{published}\",\"author\":{{\"@type\":\"Person\",\"name\":\"Staff Reporter\"}}}}</script>",
        &paras[0][..paras[0].len().min(150)]
    ));
    h.push_str("<style>body{font-family:Georgia,serif;margin:0}header nav a{padding:4px 8px;color:#333}.share a{display:inline-block;margin:0 4px}.related li{margin:4px 0}footer{background:#222;color:#eee;padding:24px}article p{line-height:1.6;max-width:40em}</style>");
    h.push_str("<script>window.dataLayer=window.dataLayer||[];function gtag(){dataLayer.push(arguments)}gtag('js',new Date());gtag('config','UA-000000-1');</script>");
    h.push_str("</head><body><header><a class=\"logo\" href=\"/\">Loopback Daily</a><nav><ul>");
    for s in [
        "World", "Politics", "Business", "Science", "Health", "Sport", "Culture", "Opinion",
        "Video", "Podcasts",
    ] {
        h.push_str(&format!(
            "<li><a href=\"/section/{}\">{s}</a></li>",
            s.to_lowercase()
        ));
    }
    h.push_str("</ul></nav><form class=\"search\"><input name=\"q\" placeholder=\"Search\"></form></header><main>");
    h.push_str(&format!(
        "<article><h1>{title}</h1><p class=\"byline\">By Staff Reporter</p><time datetime=\"{published}\">{published}</time>"
    ));
    for (i, p) in paras.iter().enumerate() {
        h.push_str(&format!("<p>{p}</p>"));
        if i == 2 {
            h.push_str(&format!("<figure><img src=\"/img/{n}.jpg\" alt=\"Scene\"><figcaption>Residents gathered on the square.</figcaption></figure>"));
        }
    }
    h.push_str("</article><div class=\"share\">Share this story: <a href=\"#\">Facebook</a><a href=\"#\">X</a><a href=\"#\">Email</a></div>");
    h.push_str("<aside class=\"related\"><h2>Related stories</h2><ul>");
    for k in 1..=8 {
        let r = n.wrapping_add(k * 7919) % 1_000_000;
        h.push_str(&format!(
            "<li><a href=\"/news/2024/01/01/story-{r}\">{}</a></li>",
            self::title(r)
        ));
    }
    h.push_str(
        "</ul></aside></main><footer><p>© 2024 Loopback Daily. All rights reserved.</p><ul>",
    );
    for s in [
        "About us",
        "Contact",
        "Privacy",
        "Terms",
        "Cookies",
        "Advertise",
        "Careers",
    ] {
        h.push_str(&format!(
            "<li><a href=\"/{}\">{s}</a></li>",
            s.to_lowercase().replace(' ', "-")
        ));
    }
    h.push_str("</ul></footer>");
    // Real pages carry large inline scripts (ads, consent, analytics):
    // pad with them to the page's target size.
    h.push_str("<script>var __APP_STATE__={\"widgets\":[");
    while h.len() < target {
        let k = rng.next();
        h.push_str(&format!(
            "{{\"id\":\"w{k:016x}\",\"kind\":\"teaser\",\"slot\":{},\"lazy\":true,\"ttl\":300}},",
            k % 97
        ));
    }
    h.push_str("{}]};</script></body></html>");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_deterministic_and_sized_like_news_pages() {
        let sizes: Vec<usize> = (1..200).map(|n| page(n).len()).collect();
        assert!(
            sizes.iter().all(|&s| (30_000..=82_000).contains(&s)),
            "{sizes:?}"
        );
        assert_eq!(page(7), page(7));
        assert_ne!(page(7), page(8));
        assert!(page(7).contains(&first_paragraph(7)));
        assert!(page(7).contains(&title(7)));
    }

    #[test]
    fn urls_spread_over_hosts() {
        let hosts: std::collections::BTreeSet<String> = (1..=100)
            .map(|n| article_url(9, 4, n).split('/').nth(2).unwrap().to_string())
            .collect();
        assert_eq!(hosts.len(), 4);
    }
}
