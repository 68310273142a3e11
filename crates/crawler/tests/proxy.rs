//! The SSRF guard is not bypassed through a system proxy: with HTTP_PROXY
//! and friends pointing at a dead port, fetches still go straight to the
//! site (where the guard resolves and checks the address). Its own test
//! binary, since it sets process-wide environment variables.

use std::time::Duration;

use axum::routing::get;
use axum::Router;
use crawlq_crawler::fetch::{Fetcher, Limits};
use crawlq_crawler::ssrf::Guard;
use crawlq_testkit::HttpFixture;

#[tokio::test]
async fn system_proxies_are_ignored() {
    for var in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ] {
        std::env::set_var(var, "http://127.0.0.1:9");
    }
    std::env::remove_var("NO_PROXY");
    std::env::remove_var("no_proxy");
    let site = HttpFixture::serve(Router::new().route(
        "/a",
        get(|| async {
            (
                [("content-type", "text/html")],
                "<html><body><p>hello</p></body></html>",
            )
        }),
    ))
    .await;
    let guard = Guard {
        allow_private: true,
        allow: Vec::new(),
    };
    let limits = Limits {
        max_redirects: 3,
        connect_timeout: Duration::from_secs(2),
        deadline: Duration::from_secs(5),
        max_body: 1 << 20,
    };
    let fetcher = Fetcher::new(guard, limits.clone(), "crawlq-test").unwrap();
    let url = url::Url::parse(&site.url("/a")).unwrap();
    let resp = fetcher
        .fetch(&url, None)
        .await
        .expect("fetched directly, not through the proxy");
    assert_eq!(resp.status, 200);
    // And with the guard on, loopback is still refused: the proxy did not
    // resolve the name for us.
    let fetcher = Fetcher::new(Guard::default(), limits, "crawlq-test").unwrap();
    let err = fetcher.fetch(&url, None).await.unwrap_err();
    assert_eq!(
        crawlq_runtime::Classify::reason(&err),
        "blocked_address",
        "{err}"
    );
}
