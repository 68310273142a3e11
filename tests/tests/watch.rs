//! The watch, end to end: a registered feed polled on its schedule with no
//! resubmission, archived articles revisited on theirs, an edit stored as
//! a version and shown by `crawlq diff`, removals marked with their
//! evidence (404, 410, a redirect to the home page), a single 503 not
//! counted, and the change log (`changes/{day}.md`, `changes/feed.atom`)
//! listing it all. Real processes, a real nats-server, a local site that
//! changes during the test.

use std::path::Path;
use std::time::Duration;

use async_nats::jetstream;
use crawlq_e2e::{stored_events, Stack};
use crawlq_proto::v1::StoreOutcome;
use crawlq_testkit::watch_site::{Behaviour, WatchSite};
use crawlq_testkit::{eventually, unique_prefix, NatsServer};

const SLUGS: [&str; 6] = [
    "edited",
    "gone-404",
    "gone-410",
    "sent-home",
    "flaky",
    "steady",
];

fn doc(root: &Path, host: &str, url: &str) -> Option<serde_json::Value> {
    let id = crawlq_record::record_id(url);
    let text = std::fs::read(root.join(format!("articles/{host}/{id}.json"))).ok()?;
    serde_json::from_slice(&text).ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feeds_are_polled_and_articles_watched_for_edits_and_removals() {
    let nats = NatsServer::start().await;
    let prefix = unique_prefix();
    let archive = tempfile::tempdir().unwrap();
    let site = WatchSite::new(&SLUGS);
    let fixture = site.serve().await;
    let host = fixture.addr().ip().to_string();
    let stack = Stack::start(
        &nats,
        &prefix,
        archive.path().to_str().unwrap(),
        &[("CRAWLQ_REVISIT_SCHEDULE".into(), "2s,4s,8s".into())],
    );
    for i in 0..stack.procs.len() {
        assert!(
            stack.wait_ready(i, Duration::from_secs(30)).await,
            "{}",
            stack.log_tail()
        );
    }
    let feed = fixture.url("/rss.xml");
    let out = stack.run(&["feeds", "add", &feed, "--every", "2s"]).await;
    assert!(out.contains("polled every 2s"), "{out}");
    let url = |slug: &str| fixture.url(&format!("/news/{slug}"));
    let root = archive.path();

    // The first poll archives every item, with no submit.
    assert!(
        eventually(Duration::from_secs(60), || async {
            SLUGS.iter().all(|s| doc(root, &host, &url(s)).is_some())
        })
        .await,
        "first poll did not archive the feed\n{}",
        stack.log_tail()
    );

    // The site changes.
    site.edit("edited");
    site.set("gone-404", Behaviour::Gone(404));
    site.set("gone-410", Behaviour::Gone(410));
    site.set("sent-home", Behaviour::RedirectHome);
    site.set("flaky", Behaviour::FailTimes(1));
    site.add("late-news");

    let removed =
        |slug: &str| doc(root, &host, &url(slug)).is_some_and(|d| d["status"] == "removed");
    let versions = |slug: &str| {
        doc(root, &host, &url(slug)).map_or(0, |d| d["versions"].as_array().map_or(0, |v| v.len()))
    };
    assert!(
        eventually(Duration::from_secs(90), || async {
            removed("gone-404")
                && removed("gone-410")
                && removed("sent-home")
                && versions("edited") == 2
                && doc(root, &host, &url("late-news")).is_some()
                && doc(root, &host, &url("flaky")).is_some_and(|d| {
                    d["checks"].as_array().is_some_and(|c| {
                        c.iter().any(|c| c["outcome"] == "error")
                            && c.last().is_some_and(|c| c["outcome"] != "error")
                    })
                })
        })
        .await,
        "watch did not see the changes: edited {} versions, late {:?}, flaky {:?}\n{}",
        versions("edited"),
        doc(root, &host, &url("late-news")).is_some(),
        doc(root, &host, &url("flaky")).map(|d| d["checks"].clone()),
        stack.log_tail()
    );

    // Removals carry their evidence; the 503 is no evidence.
    let gone = doc(root, &host, &url("gone-410")).unwrap();
    assert!(gone["removed_at"].as_i64().is_some());
    let evidence = gone["removal_evidence"].as_array().unwrap();
    assert_eq!(evidence.len(), 2, "{gone:#}");
    assert!(evidence.iter().all(|c| c["status"] == 410), "{gone:#}");
    let home = doc(root, &host, &url("sent-home")).unwrap();
    assert!(
        home["removal_evidence"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("home page"),
        "{home:#}"
    );
    for slug in ["flaky", "steady", "edited"] {
        assert_eq!(
            doc(root, &host, &url(slug)).unwrap()["status"],
            "live",
            "{slug}"
        );
    }
    // Every version is kept.
    assert_eq!(versions("gone-404"), 1);

    // What readers see.
    let json = stack
        .run(&["get", &url("gone-404"), "--format", "json"])
        .await;
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["status"], "removed");
    assert!(json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["outcome"] == "removed"));
    let md = stack.run(&["get", &url("gone-404")]).await;
    assert!(md.starts_with("<!-- removed from its site at "), "{md}");
    assert!(
        md.lines().nth(1).unwrap().starts_with("<!--"),
        "the record follows: {md}"
    );
    let diff = stack.run(&["diff", &url("edited")]).await;
    assert!(diff.contains("[-") && diff.contains("{+"), "{diff}");
    assert!(diff.contains("{+denied"), "{diff}");
    let html = stack
        .run(&["diff", &url("edited"), "--format", "html"])
        .await;
    assert!(html.contains("<ins>") && html.contains("<del>"), "{html}");

    eprintln!("DIFF:\n{diff}");
    // The change log, and its Atom feed parsed back.
    let day = crawlq_storage_day();
    let log_path = root.join(format!("changes/{day}.md"));
    assert!(
        eventually(Duration::from_secs(20), || async {
            std::fs::read_to_string(&log_path)
                .is_ok_and(|t| t.matches("**removed**").count() == 3 && t.contains("**changed**"))
        })
        .await,
        "{:?}",
        std::fs::read_to_string(&log_path)
    );
    let atom = std::fs::read(root.join("changes/feed.atom")).unwrap();
    let parsed = feed_rs::parser::parse(&atom[..]).expect("changes/feed.atom is a valid feed");
    assert_eq!(parsed.feed_type, feed_rs::model::FeedType::Atom);
    assert!(
        parsed.entries.len() >= 4,
        "{} entries",
        parsed.entries.len()
    );
    assert!(parsed.entries.iter().any(|e| e
        .title
        .as_ref()
        .is_some_and(|t| t.content.starts_with("removed"))));
    eprintln!(
        "LOG:\n{}\nJSON:\n{json:#}",
        std::fs::read_to_string(&log_path).unwrap()
    );
    let index = std::fs::read_to_string(root.join(format!("index/{host}.md"))).unwrap();
    assert_eq!(index.matches("(removed)").count(), 3, "{index}");

    // The feed was polled again and again, and says so.
    let feeds = stack.run(&["feeds", "list"]).await;
    assert!(
        feeds.contains(&feed) && feeds.contains("fetched"),
        "{feeds}"
    );
    let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let events = stored_events(&js, &prefix).await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e.outcome == StoreOutcome::Removed as i32)
            .count(),
        3
    );
    let metrics = stack.scrape(2).await.unwrap();
    assert!(
        crawlq_e2e::metric_sum(&metrics, "crawlq_articles_removed_total") >= 3.0,
        "{metrics}"
    );
    let crawler = stack.scrape(0).await.unwrap();
    assert!(crawlq_e2e::metric_sum(&crawler, "crawlq_feed_polls_total") >= 2.0);

    // Removing the feed stops its polls.
    stack.run(&["feeds", "remove", &feed]).await;
    assert!(!stack.run(&["feeds", "list"]).await.contains(&feed));
}

fn crawlq_storage_day() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    crawlq_storage::changes::day_of(now)
}
