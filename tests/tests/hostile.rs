//! Hostile inputs against the three services as real processes, with each
//! process's peak memory (VmHWM) held under its Kubernetes memory limit:
//! a 48 MB gzip sitemap bomb, a feed of 60,000 items, zstd bodies that
//! declare 64 MiB on the internal subject, and a page that claims another
//! site's canonical URL.

use std::io::Write;
use std::time::Duration;

use async_nats::jetstream;
use axum::routing::get;
use axum::Router;
use crawlq_e2e::{dead_letters, peak_rss_mib, Stack};
use crawlq_proto::v1::{BodyEncoding, CrawlRequest, FetchedPage, ResponseHeaders};
use crawlq_proto::Message as _;
use crawlq_testkit::{eventually, unique_prefix, HttpFixture, NatsServer};

/// Memory limits of deploy/k8s/base, MiB.
const LIMITS: [(&str, f64); 3] = [("crawler", 768.0), ("extractor", 512.0), ("storage", 256.0)];

fn sitemap_bomb() -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(b"<?xml version=\"1.0\"?><urlset>").unwrap();
    let mut i = 0u64;
    let mut written = 0usize;
    while written < 48 << 20 {
        let line = format!("<url><loc>https://bomb.example/p/{i}</loc></url>");
        written += line.len();
        gz.write_all(line.as_bytes()).unwrap();
        i += 1;
    }
    gz.write_all(b"</urlset>").unwrap();
    gz.finish().unwrap()
}

fn huge_feed(base: &str) -> String {
    let mut rss =
        String::from("<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Huge</title>");
    for i in 0..60_000 {
        rss.push_str(&format!(
            "<item><title>{i}</title><link>{base}/blocked/{i}</link></item>"
        ));
    }
    rss.push_str("</channel></rss>");
    rss
}

const FORGER: &str = r#"<!DOCTYPE html><html><head><title>Forged</title><meta property="og:type" content="article">
<link rel="canonical" href="https://www.bbc.com/zhongwen/simp/world-67345678"></head><body><article><h1>Forged</h1>
<p>This page on one host claims to be another site's article, to have its text filed under that site's URL in the archive.</p>
<p>The archive files it under the host that served it, and keeps the claim as evidence, never as the record's identity.</p>
</article></body></html>"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_inputs_end_in_clear_reasons_under_the_memory_limits() {
    let bomb = sitemap_bomb();
    eprintln!("sitemap bomb: {} bytes of gzip", bomb.len());
    let site = HttpFixture::serve_with(move |base| {
        let feed = huge_feed(&base);
        Router::new()
            .route(
                "/robots.txt",
                get(|| async { "User-agent: *\nDisallow: /blocked/\n" }),
            )
            .route(
                "/sitemap.xml.gz",
                get(move || {
                    let bomb = bomb.clone();
                    async move { ([("content-type", "application/x-gzip")], bomb) }
                }),
            )
            .route(
                "/feed.xml",
                get(move || {
                    let feed = feed.clone();
                    async move { ([("content-type", "application/rss+xml")], feed) }
                }),
            )
            .route(
                "/forge",
                get(|| async { ([("content-type", "text/html")], FORGER) }),
            )
    })
    .await;
    let nats = NatsServer::start().await;
    let prefix = unique_prefix();
    let archive = tempfile::tempdir().unwrap();
    let stack = Stack::start(&nats, &prefix, archive.path().to_str().unwrap(), &[]);
    for i in 0..stack.procs.len() {
        assert!(stack.wait_ready(i, Duration::from_secs(30)).await);
    }
    stack
        .run(&[
            "submit",
            "--sitemap",
            &site.url("/sitemap.xml.gz"),
            "--feed",
            &site.url("/feed.xml"),
            &site.url("/forge"),
        ])
        .await;
    // zstd bodies that declare 64 MiB, straight onto the internal subject.
    let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let zeros = zstd::bulk::compress(&vec![0u8; 32 << 20], 3).unwrap();
    for i in 0..4 {
        let page = FetchedPage {
            request: Some(CrawlRequest {
                url: format!("https://inflate.example/{i}"),
                request_id: format!("inflate-{i}"),
                ..Default::default()
            }),
            final_url: format!("https://inflate.example/{i}"),
            status: 200,
            headers: Some(ResponseHeaders {
                content_type: "text/html".into(),
                ..Default::default()
            }),
            body: zeros.clone(),
            body_encoding: BodyEncoding::Zstd as i32,
            body_len: 64 << 20,
            fetched_at: 1,
            ..Default::default()
        };
        js.publish(format!("{prefix}.fetched"), page.encode_to_vec().into())
            .await
            .unwrap()
            .await
            .unwrap();
    }

    // 1000 feed items (the cap) refused by robots.txt, the bomb, 4 inflations.
    assert!(
        eventually(Duration::from_secs(120), || async {
            dead_letters(&js, &prefix).await.len() >= 1005
        })
        .await,
        "{} dead letters\n{}",
        dead_letters(&js, &prefix).await.len(),
        stack.log_tail()
    );
    let letters = dead_letters(&js, &prefix).await;
    let count = |reason: &str| letters.iter().filter(|d| d.reason == reason).count();
    assert_eq!(
        count("robots_disallowed"),
        1000,
        "feed capped at 1000 items"
    );
    let bomb = letters
        .iter()
        .find(|d| d.url.ends_with("sitemap.xml.gz"))
        .expect("bomb dead-lettered");
    assert_eq!(bomb.reason, "too_large", "{}", bomb.error);
    assert_eq!(
        letters
            .iter()
            .filter(|d| d.url.contains("inflate.example"))
            .count(),
        4
    );

    // The forger is filed under its own host, with the claim kept.
    let host = site.addr().ip().to_string();
    let id = crawlq_record::record_id(&site.url("/forge"));
    let doc_path = archive.path().join(format!("articles/{host}/{id}.json"));
    assert!(eventually(Duration::from_secs(20), || async { doc_path.exists() }).await);
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&doc_path).unwrap()).unwrap();
    assert_eq!(
        doc["claimed_canonical"],
        "https://www.bbc.com/zhongwen/simp/world-67345678"
    );
    assert!(
        !archive.path().join("articles/www.bbc.com").exists(),
        "nothing filed under the claimed site"
    );

    for p in &stack.procs {
        let peak = peak_rss_mib(p.pid());
        let limit = LIMITS.iter().find(|(s, _)| *s == p.service).unwrap().1;
        eprintln!("peak RSS {}: {peak:.0} MiB (limit {limit} MiB)", p.service);
        assert!(
            peak > 0.0 && peak < limit,
            "{} peaked at {peak:.0} MiB",
            p.service
        );
    }
}
