//! Politeness across crawler replicas: three crawler processes share one
//! host's Crawl-delay and fetch its robots.txt once, while one of them is
//! killed and another started.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crawlq_e2e::Stack;
use crawlq_testkit::{unique_prefix, HttpFixture, NatsServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_crawlers_keep_one_hosts_crawl_delay_and_fetch_robots_once_through_a_replacement() {
    const PAGES: usize = 30;
    let hits: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let site = {
        let hits = hits.clone();
        HttpFixture::serve(
            axum::Router::new()
                .route(
                    "/robots.txt",
                    axum::routing::get({
                        let hits = hits.clone();
                        move || async move {
                            hits.lock().unwrap().push(("robots".into(), Instant::now()));
                            "User-agent: *\nCrawl-delay: 1\n"
                        }
                    }),
                )
                .route(
                    "/news/{n}",
                    axum::routing::get(
                        move |axum::extract::Path(n): axum::extract::Path<usize>| async move {
                            hits.lock().unwrap().push((format!("page {n}"), Instant::now()));
                            (
                                [("content-type", "text/html")],
                                format!(
                                    "<!DOCTYPE html><html><head><title>Story {n}</title><meta property=\"og:type\" content=\"article\"></head><body><article><h1>Story {n}</h1><p>{}</p></article></body></html>",
                                    "The council voted on Tuesday to rebuild the harbour wall that the storms had broken. ".repeat(5)
                                ),
                            )
                        },
                    ),
                ),
        )
        .await
    };
    let nats = NatsServer::start().await;
    let prefix = unique_prefix();
    let archive = tempfile::tempdir().unwrap();
    // A short ack wait: the killed replica's message comes back sooner
    // (live ones report progress while they wait their turn).
    let env = [("CRAWLQ_ACK_WAIT".to_string(), "10s".to_string())];
    let mut stack = Stack::start(&nats, &prefix, archive.path().to_str().unwrap(), &env);
    stack.spawn("crawler");
    stack.spawn("crawler");
    stack.all_ready(Duration::from_secs(30)).await;
    let mut submit = vec![
        "submit".to_string(),
        "--wait".into(),
        "--timeout=180s".into(),
    ];
    submit.extend((0..PAGES).map(|n| site.url(&format!("/news/{n}"))));
    let waiting = tokio::process::Command::new(crawlq_e2e::binary())
        .args(&submit)
        .envs(stack.env.iter().map(|(k, v)| (k, v)))
        .output();
    let waiting = tokio::spawn(waiting);
    // Mid-run, one replica dies and another joins: the spacing holds, and
    // the dead one's message comes back after its ack wait.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let victim = stack.current("crawler");
    stack.kill9(victim);
    stack.spawn("crawler");
    let out = waiting.await.unwrap().unwrap();
    let out = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.contains(&format!("new {PAGES}")),
        "{out}\n{}",
        stack.log_tail()
    );

    let hits = hits.lock().unwrap().clone();
    let robots = hits.iter().filter(|(what, _)| what == "robots").count();
    assert_eq!(robots, 1, "robots.txt fetched {robots} times by 3 crawlers");
    let mut starts: Vec<Instant> = hits
        .iter()
        .filter(|(what, _)| what.starts_with("page"))
        .map(|(_, at)| *at)
        .collect();
    starts.sort();
    // A page the killed replica was fetching may be fetched again.
    assert!(starts.len() >= PAGES, "{}", starts.len());
    let gaps: Vec<f64> = starts
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs_f64())
        .collect();
    let smallest = gaps.iter().copied().fold(f64::INFINITY, f64::min);
    eprintln!(
        "3 crawlers (one killed, one started mid-run), Crawl-delay 1 s, {PAGES} pages, {} requests: smallest gap {smallest:.3} s, span {:.1} s",
        starts.len(),
        (starts[starts.len() - 1] - starts[0]).as_secs_f64()
    );
    assert!(smallest >= 0.95, "gaps between requests: {gaps:?}");
}
