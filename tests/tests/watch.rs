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

    // The change log, and its Atom feed parsed back.
    let day = crawlq_storage::changes::day_of(crawlq_record_now());
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
    // Index pages are rendered in batches (CRAWLQ_INDEX_FLUSH_INTERVAL),
    // after the change log may already show the removals.
    let index_path = root.join(format!("index/{host}.md"));
    let marked =
        || std::fs::read_to_string(&index_path).map_or(0, |t| t.matches("(removed)").count());
    assert!(
        eventually(Duration::from_secs(10), || async { marked() == 3 }).await,
        "{:?}",
        std::fs::read_to_string(&index_path)
    );

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

/// Schedules survive crashes: kill -9 of every service and of nats-server
/// (restarted on the same store) while checks are scheduled loses no
/// check and stores no duplicate version; with two crawler and two storage
/// replicas, a feed is polled once per interval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_survive_kill_9_and_replicas_poll_once_per_interval() {
    let mut nats = NatsServer::start().await;
    let prefix = unique_prefix();
    let archive = tempfile::tempdir().unwrap();
    let slugs: Vec<String> = (0..20).map(|i| format!("story-{i}")).collect();
    let site = WatchSite::new(&slugs.iter().map(String::as_str).collect::<Vec<_>>());
    let fixture = site.serve().await;
    let host = fixture.addr().ip().to_string();
    let schedule = vec!["2s"; 40].join(",");
    let mut stack = Stack::start(
        &nats,
        &prefix,
        archive.path().to_str().unwrap(),
        &[
            ("CRAWLQ_REVISIT_SCHEDULE".into(), schedule),
            ("CRAWLQ_ACK_WAIT".into(), "3s".into()),
        ],
    );
    stack.spawn("crawler");
    stack.spawn("storage");
    for i in 0..stack.procs.len() {
        assert!(
            stack.wait_ready(i, Duration::from_secs(30)).await,
            "{}",
            stack.log_tail()
        );
    }
    let feed = fixture.url("/rss.xml");
    stack.run(&["feeds", "add", &feed, "--every", "3s"]).await;
    let root = archive.path();
    let url = |slug: &str| fixture.url(&format!("/news/{slug}"));
    assert!(
        eventually(Duration::from_secs(60), || async {
            slugs.iter().all(|s| doc(root, &host, &url(s)).is_some())
        })
        .await,
        "{}",
        stack.log_tail()
    );

    // Steady state, two replicas of each: one poll per interval.
    let window = Duration::from_secs(15);
    let from = std::time::Instant::now();
    tokio::time::sleep(window).await;
    let polls: Vec<_> = site
        .feed_fetches()
        .into_iter()
        .filter(|t| *t >= from)
        .collect();
    let gaps: Vec<f64> = polls
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs_f64())
        .collect();
    eprintln!("steady: {} polls in {window:?}, gaps {gaps:?}", polls.len());
    assert!(
        (4..=6).contains(&polls.len()),
        "{} polls in {window:?}: {gaps:?}",
        polls.len()
    );
    assert!(
        gaps.iter().all(|g| *g >= 2.5),
        "two polls within one interval: {gaps:?}"
    );

    // Crashes while checks are scheduled.
    for service in ["crawler", "storage", "extractor"] {
        let idx = stack.current(service);
        stack.kill9(idx);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let again = stack.spawn(service);
        assert!(stack.wait_ready(again, Duration::from_secs(30)).await);
    }
    nats.kill();
    tokio::time::sleep(Duration::from_secs(2)).await;
    nats.restart().await;
    let after = crawlq_record_now();

    // Every article is checked again after the last crash, and none has
    // a second version (nothing on the site changed).
    let checked_since = |slug: &str| {
        doc(root, &host, &url(slug))
            .is_some_and(|d| d["watch"]["last_check_at"].as_i64().unwrap_or(0) > after)
    };
    assert!(
        eventually(Duration::from_secs(60), || async {
            slugs.iter().all(|s| checked_since(s))
        })
        .await,
        "checks lost: {:?}\n{}",
        slugs
            .iter()
            .filter(|s| !checked_since(s))
            .collect::<Vec<_>>(),
        stack.log_tail()
    );
    let feeds = stack.run(&["feeds", "list", "--json"]).await;
    let entry: serde_json::Value = serde_json::from_str(feeds.lines().next().unwrap()).unwrap();
    assert!(
        entry["last_poll_at"].as_i64().unwrap() > after,
        "the feed's schedule was lost: {entry}"
    );
    let mut checks = Vec::new();
    for s in &slugs {
        let d = doc(root, &host, &url(s)).unwrap();
        assert_eq!(
            d["versions"].as_array().unwrap().len(),
            1,
            "{s}: a duplicate version"
        );
        assert_eq!(d["status"], "live");
        checks.push(d["checks"].as_array().unwrap().len());
    }
    eprintln!(
        "checks per article after the crashes: {checks:?}; site hits of story-0: {}",
        site.hits("story-0")
    );
}

fn crawlq_record_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}
