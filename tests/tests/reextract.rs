//! `crawlq reextract`: archived raw pages read again by a better
//! extractor. The "old" extractor is the same binary with a site rule that
//! keeps only an article's lede; the "new" one runs without it.

use std::time::Duration;

use crawlq_e2e::Stack;
use crawlq_testkit::{eventually, unique_prefix, HttpFixture, NatsServer};

const LEDE: &str = "The harbour bridge reopened on Monday after two years of repairs, the city said, and the mayor thanked the engineers, the crews who worked through two winters, and the ferry operators who carried the commuters across the water while the road was closed to all traffic.";
const BODY: &str = "Engineers replaced every cable and the deck, and traffic returned within the hour, while residents lined the road to watch the first buses cross.";

fn page() -> String {
    format!(
        "<!DOCTYPE html><html><head><title>Bridge reopens</title><meta property=\"og:type\" content=\"article\"></head><body><article><h1>Bridge reopens</h1><p class=\"lede\">{LEDE}</p><p>{BODY}</p><p>{BODY}</p></article></body></html>"
    )
}

fn versions(json: &serde_json::Value) -> Vec<serde_json::Value> {
    json["versions"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reextract_keeps_a_better_reading_as_a_new_version_and_no_edit() {
    let site = HttpFixture::serve(axum::Router::new().route(
        "/news/bridge-reopens",
        axum::routing::get(|| async { ([("content-type", "text/html; charset=utf-8")], page()) }),
    ))
    .await;
    let nats = NatsServer::start().await;
    let prefix = unique_prefix();
    let archive = tempfile::tempdir().unwrap();
    let rules = archive.path().join("old-rules.toml");
    std::fs::write(
        &rules,
        "[[site]]\nname = \"old\"\nhosts = [\"127.0.0.1\"]\ncontent = [\"p.lede\"]\n",
    )
    .unwrap();
    let store = archive.path().join("store");
    std::fs::create_dir_all(&store).unwrap();
    let mut stack = Stack::start(
        &nats,
        &prefix,
        store.to_str().unwrap(),
        &[(
            "CRAWLQ_RULES_FILE".into(),
            rules.to_str().unwrap().to_string(),
        )],
    );
    let url = site.url("/news/bridge-reopens");
    let out = stack
        .run(&["submit", "--wait", "--timeout=60s", &url])
        .await;
    assert!(out.contains("new 1"), "{out}\n{}", stack.log_tail());
    let first = stack.run(&["get", &url]).await;
    assert!(first.contains(LEDE) && !first.contains(BODY), "{first}");

    // A dry run lists the article and sends nothing.
    let dry = stack.run(&["reextract", "--dry-run"]).await;
    assert!(
        dry.contains("would reextract") && dry.contains("would send 1"),
        "{dry}"
    );

    // The extractor improves: restart it without the old rule.
    let old = stack.current("extractor");
    stack.kill9(old);
    stack.env.retain(|(k, _)| k != "CRAWLQ_RULES_FILE");
    let new = stack.spawn("extractor");
    assert!(stack.wait_ready(new, Duration::from_secs(20)).await);

    let sent = stack.run(&["reextract", "--host", "127.0.0.1"]).await;
    assert!(sent.contains("sent 1"), "{sent}");
    let json_of = || async {
        let text = stack.run(&["get", &url, "--format", "json"]).await;
        serde_json::from_str::<serde_json::Value>(&text).unwrap()
    };
    assert!(
        eventually(Duration::from_secs(30), || async {
            versions(&json_of().await).len() == 2
        })
        .await,
        "{}",
        stack.log_tail()
    );
    let json = json_of().await;
    let v = versions(&json);
    assert_eq!(v[1]["cause"], "reextract", "{v:?}");
    assert!(v[1]["extractor_version"]
        .as_str()
        .unwrap()
        .starts_with("crawlq-extractor/"));
    // The same fetch, read again: the fetch time is the original one.
    assert_eq!(v[0]["fetched_at"], v[1]["fetched_at"]);
    let latest = stack.run(&["get", &url]).await;
    assert!(latest.contains(LEDE) && latest.contains(BODY), "{latest}");
    // Not an edit of the article: nothing in the change log.
    assert!(
        !store.join("changes").exists()
            || std::fs::read_dir(store.join("changes")).unwrap().count() == 0,
        "a re-extraction is no edit"
    );

    // Read again by the same extractor: unchanged, no third version.
    let again = stack.run(&["reextract"]).await;
    assert!(again.contains("sent 1"), "{again}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(versions(&json_of().await).len(), 2);
    // Every message was settled: nothing dead-lettered.
    let status = stack.run(&["dlq", "list"]).await;
    assert!(!status.contains("reextract"), "{status}");
}
