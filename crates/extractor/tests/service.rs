//! The extractor stage against a real nats-server.

use std::time::Duration;

use async_nats::jetstream;
use clap::Parser;
use crawlq_extractor::{run, Config};
use crawlq_proto::v1::{
    BodyEncoding, CrawlRequest, DeadLetter, FetchedPage, ResponseHeaders, SnapshotRecord, UrlKind,
};
use crawlq_proto::Message as _;
use crawlq_testkit::{eventually, read_stream, service_args, unique_prefix, NatsServer};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    config: Config,
}

const ARTICLE: &str = r#"<html lang="en"><head><title>Storm hits coast | Daily</title>
<meta property="og:type" content="article"><meta property="article:published_time" content="2023-11-09T11:42:00Z"></head>
<body><nav><a href="/">Home</a></nav><article><h1>Storm hits coast</h1>
<p>A powerful storm hit the coast on Thursday, knocking out power to thousands of homes and closing roads across the region.</p>
<p>Officials said repair crews would work through the night, and urged residents to stay indoors until the winds eased.</p>
<p>Forecasters expect the storm to weaken by Saturday, though heavy rain could still cause flooding in low-lying areas.</p>
</article><footer>Copyright Daily</footer></body></html>"#;

const RSS: &str = r#"<?xml version="1.0"?><rss version="2.0"><channel><title>Daily</title>
<item><title>One</title><link>https://news.example.com/2023/11/09/one</link><pubDate>Thu, 09 Nov 2023 11:45:01 GMT</pubDate></item>
<item><title>Two</title><link>https://news.example.com/2023/11/09/two</link></item></channel></rss>"#;

fn fetched(url: &str, ct: &str, body: &[u8], kind: UrlKind) -> FetchedPage {
    FetchedPage {
        request: Some(CrawlRequest {
            url: url.into(),
            request_id: format!("r-{url}"),
            kind: kind as i32,
            ..Default::default()
        }),
        final_url: url.into(),
        status: 200,
        headers: Some(ResponseHeaders {
            content_type: ct.into(),
            ..Default::default()
        }),
        fetched_at: 1_699_600_000_000,
        body: body.to_vec(),
        body_len: body.len() as u64,
        ..Default::default()
    }
}

/// The extractor service on a fresh nats-server, with its streams ready.
struct Running {
    /// Kept alive for the test.
    _nats: NatsServer,
    prefix: String,
    js: jetstream::Context,
    stop: CancellationToken,
    service: tokio::task::JoinHandle<anyhow::Result<()>>,
    store: tempfile::TempDir,
}

impl Running {
    async fn start(extra: &[&str]) -> Running {
        let nats = NatsServer::start().await;
        let prefix = unique_prefix();
        let store = tempfile::tempdir().unwrap();
        let mut args = service_args(&nats, &prefix);
        args.push(format!("--store-url={}", store.path().display()));
        args.extend(extra.iter().map(|a| a.to_string()));
        let cli = Cli::try_parse_from(args).unwrap();
        let stop = CancellationToken::new();
        let service = tokio::spawn(run(cli.config, stop.clone()));
        let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
        let up = prefix.to_uppercase();
        assert!(
            eventually(Duration::from_secs(10), || async {
                js.get_stream(format!("{up}_FETCHED")).await.is_ok()
            })
            .await
        );
        Running {
            _nats: nats,
            prefix,
            js,
            stop,
            service,
            store,
        }
    }

    async fn stop(self) {
        self.stop.cancel();
        self.service.await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn pages_feeds_and_poison_each_end_where_they_should() {
    let running = Running::start(&["--max-deliveries=2", "--retry-base-delay=200ms"]).await;
    let (js, prefix) = (running.js.clone(), running.prefix.clone());
    let up = prefix.to_uppercase();
    let subject = format!("{prefix}.fetched");
    let publish = |msg: Vec<u8>| {
        let js = js.clone();
        let subject = subject.clone();
        async move {
            js.publish(subject, msg.into())
                .await
                .unwrap()
                .await
                .unwrap()
        }
    };

    publish(
        fetched(
            "https://news.example.com/2023/11/09/storm",
            "text/html; charset=utf-8",
            ARTICLE.as_bytes(),
            UrlKind::Auto,
        )
        .encode_to_vec(),
    )
    .await;
    publish(
        fetched(
            "https://news.example.com/rss.xml",
            "application/rss+xml",
            RSS.as_bytes(),
            UrlKind::Feed,
        )
        .encode_to_vec(),
    )
    .await;
    // A body that travelled zstd-compressed.
    let mut zpage = fetched(
        "https://news.example.com/2023/11/09/zstd",
        "text/html",
        &zstd::bulk::compress(ARTICLE.replace("Storm", "Gale").as_bytes(), 3).unwrap(),
        UrlKind::Auto,
    );
    zpage.body_encoding = BodyEncoding::Zstd as i32;
    zpage.body_len = ARTICLE.len() as u64;
    publish(zpage.encode_to_vec()).await;
    // A body held by claim check.
    let key = "claims/test/page.zst";
    let claimed = zstd::bulk::compress(ARTICLE.replace("Storm", "Flood").as_bytes(), 3).unwrap();
    std::fs::create_dir_all(running.store.path().join("claims/test")).unwrap();
    std::fs::write(running.store.path().join(key), &claimed).unwrap();
    let mut cpage = fetched(
        "https://news.example.com/2023/11/09/claim",
        "text/html",
        b"",
        UrlKind::Auto,
    );
    cpage.body_key = key.into();
    cpage.body_len = ARTICLE.len() as u64;
    publish(cpage.encode_to_vec()).await;
    // Poison.
    publish(b"\xff\x00 not protobuf".to_vec()).await;
    publish(
        fetched(
            "https://news.example.com/empty",
            "text/html",
            b"   ",
            UrlKind::Auto,
        )
        .encode_to_vec(),
    )
    .await;
    let deep = "<div>".repeat(65_536);
    publish(
        fetched(
            "https://news.example.com/deep",
            "text/html",
            deep.as_bytes(),
            UrlKind::Auto,
        )
        .encode_to_vec(),
    )
    .await;

    let snaps = format!("{up}_SNAPSHOTS");
    assert!(
        eventually(Duration::from_secs(20), || async {
            read_stream(&js, &snaps).await.len() == 3
        })
        .await,
        "three records"
    );
    let records: Vec<SnapshotRecord> = read_stream(&js, &snaps)
        .await
        .iter()
        .map(|m| SnapshotRecord::decode(m.payload.as_slice()).unwrap())
        .collect();
    let storm = records
        .iter()
        .find(|r| r.title == "Storm hits coast")
        .expect("storm record");
    assert_eq!(storm.published_at, 1_699_530_120_000);
    assert_eq!(storm.url, "https://news.example.com/2023/11/09/storm");
    assert!(storm.text.contains("powerful storm") && !storm.text.contains("Copyright"));
    assert_eq!(
        zstd::bulk::decompress(&storm.raw_zstd, 1 << 20).unwrap(),
        ARTICLE.as_bytes(),
        "raw page carried for the archive"
    );
    assert!(records.iter().any(|r| r.title == "Gale hits coast"));
    let flood = records
        .iter()
        .find(|r| r.title == "Flood hits coast")
        .expect("claim-checked record");
    assert_eq!(flood.raw_key, key);

    let urls = format!("{up}_URLS");
    let reqs: Vec<CrawlRequest> = read_stream(&js, &urls)
        .await
        .iter()
        .map(|m| CrawlRequest::decode(m.payload.as_slice()).unwrap())
        .collect();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    assert_eq!(reqs[0].url, "https://news.example.com/2023/11/09/one");
    let hints = reqs[0].hints.clone().unwrap();
    assert_eq!(
        (hints.title.as_str(), hints.published_at),
        ("One", 1_699_530_301_000)
    );
    assert_eq!(reqs[0].depth, 1);

    let dlq = format!("{up}_DLQ");
    assert!(
        eventually(Duration::from_secs(20), || async {
            read_stream(&js, &dlq).await.len() == 3
        })
        .await,
        "three dead letters"
    );
    let mut reasons: Vec<String> = read_stream(&js, &dlq)
        .await
        .iter()
        .map(|m| DeadLetter::decode(m.payload.as_slice()).unwrap().reason)
        .collect();
    reasons.sort();
    assert_eq!(reasons, ["bad_message", "empty_body", "pathological_html"]);

    running.stop().await;
}

#[tokio::test]
async fn big_sitemaps_expanding_at_once_do_not_block_each_other() {
    // Three 6,000-URL sitemaps handled concurrently publish 18,000
    // requests: more acknowledgements than the NATS client lets one
    // connection hold pending (5,000) if each handler awaited its own only
    // at the end.
    let running = Running::start(&["--concurrency=3"]).await;
    let (js, prefix) = (running.js.clone(), running.prefix.clone());
    let up = prefix.to_uppercase();
    for s in 0..3 {
        let mut xml = String::from(
            r#"<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">"#,
        );
        for i in 0..6000 {
            xml.push_str(&format!(
                "<url><loc>https://news.example.com/s{s}/story-{i}</loc></url>"
            ));
        }
        xml.push_str("</urlset>");
        let page = fetched(
            &format!("https://news.example.com/sitemap-{s}.xml"),
            "application/xml",
            xml.as_bytes(),
            UrlKind::Sitemap,
        );
        js.publish(format!("{prefix}.fetched"), page.encode_to_vec().into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let urls = format!("{up}_URLS");
    let count = || async {
        match js.get_stream(&urls).await {
            Ok(mut s) => s.info().await.map(|i| i.state.messages).unwrap_or(0),
            Err(_) => 0,
        }
    };
    assert!(
        eventually(Duration::from_secs(90), || async {
            count().await == 18_000
        })
        .await,
        "requests published: {}",
        count().await
    );
    running.stop().await;
}

/// Messages on internal subjects are not trusted: a zstd body that
/// declares 64 MiB is inflated to the body cap at most, and a claim-check
/// key must name a claim check, not any object of the archive.
#[tokio::test]
async fn internal_messages_cannot_inflate_past_the_cap_or_name_other_objects() {
    let running = Running::start(&["--max-body=1048576", "--max-deliveries=1"]).await;
    let (js, prefix) = (running.js.clone(), running.prefix.clone());
    let subject = format!("{prefix}.fetched");
    // 32 MiB of spaces compress to a few KB.
    let bomb = zstd::bulk::compress(&vec![b' '; 32 << 20], 3).unwrap();
    assert!(bomb.len() < 64 * 1024, "{}", bomb.len());
    let mut page = fetched(
        "https://news.example.com/bomb",
        "text/html",
        &[],
        UrlKind::Auto,
    );
    page.body = bomb;
    page.body_encoding = BodyEncoding::Zstd as i32;
    page.body_len = 64 << 20;
    js.publish(subject.clone(), page.encode_to_vec().into())
        .await
        .unwrap()
        .await
        .unwrap();
    // A key pointing at an archived object.
    let mut forged = fetched(
        "https://news.example.com/forged",
        "text/html",
        &[],
        UrlKind::Auto,
    );
    forged.body_key = "articles/news.example.com/0123456789abcdef.json".into();
    forged.body_encoding = BodyEncoding::Zstd as i32;
    js.publish(subject, forged.encode_to_vec().into())
        .await
        .unwrap()
        .await
        .unwrap();

    let dlq = format!("{}_DLQ", prefix.to_uppercase());
    assert!(
        eventually(Duration::from_secs(20), || async {
            read_stream(&js, &dlq).await.len() == 2
        })
        .await
    );
    let letters: Vec<DeadLetter> = read_stream(&js, &dlq)
        .await
        .iter()
        .map(|m| DeadLetter::decode(m.payload.as_slice()).unwrap())
        .collect();
    let by_url = |u: &str| letters.iter().find(|l| l.url.ends_with(u)).unwrap();
    assert_eq!(
        by_url("/bomb").reason,
        "bad_message",
        "{}",
        by_url("/bomb").error
    );
    assert!(
        by_url("/forged").error.contains("not a claim-check key"),
        "{}",
        by_url("/forged").error
    );
    running.stop().await;
}

/// A chain of sitemap indexes ends: every index level counts toward a
/// limit, and `force` is not passed down to the sitemaps an index lists.
#[tokio::test]
async fn sitemap_index_chains_end_and_do_not_inherit_force() {
    let running = Running::start(&["--max-deliveries=1"]).await;
    let (js, prefix) = (running.js.clone(), running.prefix.clone());
    let subject = format!("{prefix}.fetched");
    let index = r#"<?xml version="1.0"?><sitemapindex><sitemap><loc>https://news.example.com/next.xml</loc></sitemap></sitemapindex>"#;
    let mut top = fetched(
        "https://news.example.com/index.xml",
        "application/xml",
        index.as_bytes(),
        UrlKind::Sitemap,
    );
    top.request.as_mut().unwrap().force = true;
    js.publish(subject.clone(), top.encode_to_vec().into())
        .await
        .unwrap()
        .await
        .unwrap();
    let mut deep = fetched(
        "https://news.example.com/deep.xml",
        "application/xml",
        index.as_bytes(),
        UrlKind::Sitemap,
    );
    deep.request.as_mut().unwrap().sitemap_nesting = crawlq_extractor::handler::MAX_SITEMAP_NESTING;
    js.publish(subject, deep.encode_to_vec().into())
        .await
        .unwrap()
        .await
        .unwrap();

    let up = prefix.to_uppercase();
    assert!(
        eventually(Duration::from_secs(20), || async {
            !read_stream(&js, &format!("{up}_URLS")).await.is_empty()
                && !read_stream(&js, &format!("{up}_DLQ")).await.is_empty()
        })
        .await
    );
    let child = CrawlRequest::decode(
        read_stream(&js, &format!("{up}_URLS")).await[0]
            .payload
            .as_slice(),
    )
    .unwrap();
    assert_eq!(child.url, "https://news.example.com/next.xml");
    assert_eq!(child.sitemap_nesting, 1);
    assert!(
        !child.force,
        "force is not inherited by an index's sitemaps"
    );
    let letter = DeadLetter::decode(
        read_stream(&js, &format!("{up}_DLQ")).await[0]
            .payload
            .as_slice(),
    )
    .unwrap();
    assert_eq!(letter.reason, "sitemap_too_deep", "{}", letter.error);
    running.stop().await;
}
