//! A news site that changes while it is crawled, for the watch's tests and
//! the `make run` demo: articles are edited, taken down (404, 410, 451),
//! redirected to the home page, fail once with a 503, and the feed gains
//! items.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::HttpFixture;

/// What an article URL answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behaviour {
    /// The article, at its current edition.
    Live,
    /// This status and no article.
    Gone(u16),
    /// A redirect to the home page.
    RedirectHome,
    /// 503 for the next `n` requests, then the article again.
    FailTimes(u32),
}

#[derive(Debug)]
struct Piece {
    title: String,
    edition: u32,
    behaviour: Behaviour,
}

#[derive(Debug, Default)]
struct SiteState {
    articles: BTreeMap<String, Piece>,
    feed: Vec<String>,
    /// When the feed was fetched.
    feed_fetches: Vec<std::time::Instant>,
    /// Requests per article.
    hits: BTreeMap<String, u32>,
}

/// A changing site; see the module docs.
#[derive(Debug, Clone, Default)]
pub struct WatchSite {
    state: Arc<Mutex<SiteState>>,
}

impl WatchSite {
    /// A site whose feed lists `slugs`, each article live at edition 1.
    pub fn new(slugs: &[&str]) -> WatchSite {
        let site = WatchSite::default();
        for slug in slugs {
            site.add(slug);
        }
        site
    }

    /// Adds an article and lists it first in the feed.
    pub fn add(&self, slug: &str) {
        let mut s = self.lock();
        s.articles.insert(
            slug.to_string(),
            Piece {
                title: format!("The {} story", slug.replace('-', " ")),
                edition: 1,
                behaviour: Behaviour::Live,
            },
        );
        s.feed.insert(0, slug.to_string());
    }

    /// Edits an article: its second paragraph says something else.
    pub fn edit(&self, slug: &str) {
        if let Some(p) = self.lock().articles.get_mut(slug) {
            p.edition += 1;
        }
    }

    /// Sets what an article URL answers.
    pub fn set(&self, slug: &str, behaviour: Behaviour) {
        if let Some(p) = self.lock().articles.get_mut(slug) {
            p.behaviour = behaviour;
        }
    }

    /// When the feed was fetched, in order.
    pub fn feed_fetches(&self) -> Vec<std::time::Instant> {
        self.lock().feed_fetches.clone()
    }

    /// How often an article was requested.
    pub fn hits(&self, slug: &str) -> u32 {
        self.lock().hits.get(slug).copied().unwrap_or(0)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SiteState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Serves the site on a loopback port.
    pub async fn serve(&self) -> HttpFixture {
        let site = self.clone();
        HttpFixture::serve_with(move |base| site.router(base)).await
    }

    /// The site's routes; `base` is its own URL.
    pub fn router(&self, base: String) -> Router {
        Router::new()
            .route("/", get(home))
            .route("/robots.txt", get(|| async { "User-agent: *\nAllow: /\n" }))
            .route("/rss.xml", get(rss))
            .route("/news/{slug}", get(article))
            .with_state((self.clone(), base))
    }
}

type AppState = (WatchSite, String);

/// The article's HTML at `edition`.
pub fn page(slug: &str, title: &str, edition: u32) -> String {
    let second = if edition == 1 {
        "The minister said on Monday that the inquiry would publish every document it had received, without exception, by the end of the month.".to_string()
    } else {
        format!("The minister denied on Monday that the inquiry had ever promised to publish its documents, and said that edition {edition} of this report was final.")
    };
    format!(
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title} | Watch Daily</title>
<meta property="og:type" content="article"><meta property="og:title" content="{title}">
<meta property="article:published_time" content="2026-11-30T08:00:00Z"></head>
<body><nav><a href="/">Home</a></nav><main><article><h1>{title}</h1>
<p>The inquiry into the harbour contracts opened its hearings this week in the capital, with officials from three ministries called to give evidence about the tenders awarded in {slug}.</p>
<p>{second}</p>
<p>Opposition members said they would keep pressing for the full record, and residents who live along the harbour told reporters they wanted to know how the contracts had been decided.</p>
</article></main><footer><p>© Watch Daily</p></footer></body></html>"#
    )
}

async fn home() -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        "<html><body><h1>Watch Daily</h1><p>Front page.</p></body></html>",
    )
        .into_response()
}

async fn article(
    State((site, _)): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (title, edition) = {
        let mut s = site.lock();
        *s.hits.entry(slug.clone()).or_default() += 1;
        let Some(p) = s.articles.get_mut(&slug) else {
            return (StatusCode::NOT_FOUND, "no such article").into_response();
        };
        match p.behaviour.clone() {
            Behaviour::Live => {}
            Behaviour::Gone(code) => {
                let code = StatusCode::from_u16(code).unwrap_or(StatusCode::GONE);
                return (code, "this article is not available").into_response();
            }
            Behaviour::RedirectHome => {
                return (StatusCode::FOUND, [(header::LOCATION, "/")]).into_response();
            }
            Behaviour::FailTimes(n) => {
                p.behaviour = if n <= 1 {
                    Behaviour::Live
                } else {
                    Behaviour::FailTimes(n - 1)
                };
                return (StatusCode::SERVICE_UNAVAILABLE, "try later").into_response();
            }
        }
        (p.title.clone(), p.edition)
    };
    let body = page(&slug, &title, edition);
    let etag = format!("\"{slug}-{edition}\"");
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        == Some(etag.as_str())
    {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8".to_string()),
            (header::ETAG, etag),
        ],
        body,
    )
        .into_response()
}

async fn rss(State((site, base)): State<AppState>) -> Response {
    let items: String = {
        let mut s = site.lock();
        s.feed_fetches.push(std::time::Instant::now());
        s.feed
            .iter()
            .filter_map(|slug| s.articles.get(slug).map(|p| (slug, p)))
            .map(|(slug, p)| {
                format!(
                    "<item><title>{}</title><link>{base}/news/{slug}</link><guid>{base}/news/{slug}</guid></item>",
                    p.title
                )
            })
            .collect()
    };
    (
        [(header::CONTENT_TYPE, "application/rss+xml")],
        format!("<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Watch Daily</title><link>{base}/</link>{items}</channel></rss>"),
    )
        .into_response()
}
