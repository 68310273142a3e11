//! The crawler against local HTTP fixtures and a real nats-server.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use clap::Parser;
use crawlq_crawler::{run, Config};
use crawlq_proto::v1::{
    CrawlRequest, DeadLetter, FetchedPage, Origin, StoreOutcome, StoredSnapshot, UrlKind,
};
use crawlq_proto::Message as _;
use crawlq_testkit::{
    eventually, read_stream, service_args, unique_prefix, HttpFixture, NatsServer,
};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    config: Config,
}

const PAGE: &str = "<html><head><title>t</title></head><body><p>Hello, page.</p></body></html>";

struct Crawler {
    js: jetstream::Context,
    prefix: String,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    _store: tempfile::TempDir,
}

impl Crawler {
    async fn start(nats: &NatsServer, extra: &[&str]) -> Crawler {
        let prefix = unique_prefix();
        let store = tempfile::tempdir().unwrap();
        let mut args = service_args(nats, &prefix);
        args.push(format!("--store-url={}", store.path().display()));
        let flag = |a: &str| a.split('=').next().unwrap_or(a).to_string();
        let overridden = |d: &str| extra.iter().any(|a| flag(a) == flag(d));
        for d in [
            "--max-deliveries=3",
            "--retry-base-delay=300ms",
            "--fetch-deadline=3s",
            "--host-delay=0s",
            "--allow-private-networks=true",
        ] {
            let guard_flag = flag(d) == "--allow-private-networks"
                && extra.iter().any(|a| a.starts_with("--allow-cidrs"));
            if !overridden(d) && !guard_flag {
                args.push(d.to_string());
            }
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let config = Cli::try_parse_from(args).unwrap().config;
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(config, stop.clone()));
        let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
        let name = format!("{}_URLS", prefix.to_uppercase());
        assert!(
            eventually(Duration::from_secs(20), || async {
                js.get_stream(&name).await.is_ok()
            })
            .await
        );
        Crawler {
            js,
            prefix,
            stop,
            task,
            _store: store,
        }
    }

    async fn submit(&self, url: &str) {
        self.js
            .publish(format!("{}.urls", self.prefix), url.to_string().into())
            .await
            .unwrap()
            .await
            .unwrap();
    }

    async fn submit_request(&self, req: &CrawlRequest) {
        let mut h = async_nats::HeaderMap::new();
        h.insert("Content-Type", "application/protobuf");
        self.js
            .publish_with_headers(
                format!("{}.urls", self.prefix),
                h,
                req.encode_to_vec().into(),
            )
            .await
            .unwrap()
            .await
            .unwrap();
    }

    async fn fetched(&self) -> Vec<FetchedPage> {
        read_stream(&self.js, &format!("{}_FETCHED", self.prefix.to_uppercase()))
            .await
            .iter()
            .map(|m| FetchedPage::decode(m.payload.as_slice()).unwrap())
            .collect()
    }

    async fn dead(&self) -> Vec<DeadLetter> {
        read_stream(&self.js, &format!("{}_DLQ", self.prefix.to_uppercase()))
            .await
            .iter()
            .map(|m| DeadLetter::decode(m.payload.as_slice()).unwrap())
            .collect()
    }

    async fn stored(&self) -> Vec<StoredSnapshot> {
        read_stream(&self.js, &format!("{}_STORED", self.prefix.to_uppercase()))
            .await
            .iter()
            .map(|m| StoredSnapshot::decode(m.payload.as_slice()).unwrap())
            .collect()
    }

    async fn wait_dead(&self, n: usize) -> Vec<DeadLetter> {
        assert!(
            eventually(Duration::from_secs(30), || async {
                self.dead().await.len() >= n
            })
            .await,
            "dead letters: {:?}",
            self.dead().await
        );
        self.dead().await
    }

    async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

fn html(body: String) -> Response {
    ([("content-type", "text/html; charset=utf-8")], body).into_response()
}

#[tokio::test]
async fn robots_disallow_and_crawl_delay() {
    let robots_hits = Arc::new(AtomicUsize::new(0));
    let counted = robots_hits.clone();
    let site = HttpFixture::serve(
        Router::new()
            .route(
                "/robots.txt",
                get(move || {
                    counted.fetch_add(1, Ordering::SeqCst);
                    async { "User-agent: *\nDisallow: /private\nCrawl-delay: 1\n" }
                }),
            )
            .route("/private/x", get(|| async { html(PAGE.into()) }))
            .route("/pub/{n}", get(|| async { html(PAGE.into()) })),
    )
    .await;
    let nats = NatsServer::start().await;
    let c = Crawler::start(&nats, &[]).await;
    c.submit(&site.url("/private/x")).await;
    for n in 0..3 {
        c.submit(&site.url(&format!("/pub/{n}"))).await;
    }
    let dead = c.wait_dead(1).await;
    assert_eq!(dead[0].reason, "robots_disallowed");
    assert!(
        eventually(Duration::from_secs(20), || async {
            c.fetched().await.len() == 3
        })
        .await
    );
    let mut times: Vec<i64> = c.fetched().await.iter().map(|p| p.fetched_at).collect();
    times.sort();
    for w in times.windows(2) {
        assert!(
            w[1] - w[0] >= 950,
            "Crawl-delay 1 s not honoured: {times:?}"
        );
    }
    // Four requests to a cold host, one robots.txt fetch.
    assert_eq!(
        robots_hits.load(Ordering::SeqCst),
        1,
        "robots.txt fetched once"
    );
    c.stop().await;
}

#[tokio::test]
async fn a_redirect_to_another_site_obeys_that_sites_robots() {
    let private_hits = Arc::new(AtomicUsize::new(0));
    let counted = private_hits.clone();
    let target = HttpFixture::serve(
        Router::new()
            .route(
                "/robots.txt",
                get(|| async { "User-agent: *\nDisallow: /private\n" }),
            )
            .route(
                "/private/x",
                get(move || {
                    counted.fetch_add(1, Ordering::SeqCst);
                    async { html(PAGE.into()) }
                }),
            )
            .route("/open", get(|| async { html(PAGE.into()) })),
    )
    .await;
    // The same server under another name: another origin, another robots.txt.
    let other = |path: &str| format!("http://localhost:{}{path}", target.addr().port());
    let (to_private, to_open) = (other("/private/x"), other("/open"));
    let source = HttpFixture::serve(
        Router::new()
            .route("/robots.txt", get(|| async { "User-agent: *\nAllow: /\n" }))
            .route(
                "/go-private",
                get(move || async move { axum::response::Redirect::temporary(&to_private) }),
            )
            .route(
                "/go-open",
                get(move || async move { axum::response::Redirect::temporary(&to_open) }),
            ),
    )
    .await;
    let nats = NatsServer::start().await;
    let c = Crawler::start(&nats, &[]).await;
    c.submit(&source.url("/go-private")).await;
    c.submit(&source.url("/go-open")).await;
    let dead = c.wait_dead(1).await;
    assert_eq!(dead[0].reason, "robots_disallowed", "{dead:?}");
    assert!(
        eventually(Duration::from_secs(20), || async {
            c.fetched().await.len() == 1
        })
        .await
    );
    assert_eq!(
        private_hits.load(Ordering::SeqCst),
        0,
        "the disallowed target was fetched"
    );
    c.stop().await;
}

#[tokio::test]
async fn retry_after_on_429_is_honoured() {
    let hits = Arc::new(AtomicUsize::new(0));
    let site = HttpFixture::serve(
        Router::new()
            .route(
                "/busy",
                get(|State(hits): State<Arc<AtomicUsize>>| async move {
                    if hits.fetch_add(1, Ordering::SeqCst) == 0 {
                        (
                            StatusCode::TOO_MANY_REQUESTS,
                            [("retry-after", "2")],
                            "slow down",
                        )
                            .into_response()
                    } else {
                        html(PAGE.into())
                    }
                }),
            )
            .with_state(hits.clone()),
    )
    .await;
    let nats = NatsServer::start().await;
    let c = Crawler::start(&nats, &["--respect-robots=false"]).await;
    let t0 = Instant::now();
    c.submit(&site.url("/busy")).await;
    assert!(
        eventually(Duration::from_secs(20), || async {
            c.fetched().await.len() == 1
        })
        .await
    );
    assert!(
        t0.elapsed() >= Duration::from_millis(1900),
        "retried after {:?}, asked for 2 s",
        t0.elapsed()
    );
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    c.stop().await;
}

#[tokio::test]
async fn redirects_chains_loops_and_limits() {
    let site = HttpFixture::serve(
        Router::new()
            .route(
                "/r/{n}",
                get(
                    |axum::extract::Path(n): axum::extract::Path<u32>| async move {
                        if n == 0 {
                            html(PAGE.into())
                        } else {
                            (StatusCode::FOUND, [("location", format!("/r/{}", n - 1))])
                                .into_response()
                        }
                    },
                ),
            )
            .route(
                "/loop-a",
                get(|| async {
                    (StatusCode::MOVED_PERMANENTLY, [("location", "/loop-b")]).into_response()
                }),
            )
            .route(
                "/loop-b",
                get(|| async {
                    (StatusCode::MOVED_PERMANENTLY, [("location", "/loop-a")]).into_response()
                }),
            )
            .route(
                "/to-file",
                get(|| async {
                    (StatusCode::FOUND, [("location", "file:///etc/passwd")]).into_response()
                }),
            ),
    )
    .await;
    let nats = NatsServer::start().await;
    let c = Crawler::start(&nats, &["--respect-robots=false"]).await;
    c.submit(&site.url("/r/3")).await;
    c.submit(&site.url("/r/11")).await;
    c.submit(&site.url("/loop-a")).await;
    c.submit(&site.url("/to-file")).await;
    assert!(
        eventually(Duration::from_secs(20), || async {
            c.fetched().await.len() == 1
        })
        .await
    );
    let page = &c.fetched().await[0];
    assert_eq!(page.final_url, site.url("/r/0"));
    assert_eq!(
        page.redirect_chain,
        vec![site.url("/r/3"), site.url("/r/2"), site.url("/r/1")]
    );
    let dead = c.wait_dead(3).await;
    let (to_file, dead): (Vec<_>, Vec<_>) =
        dead.into_iter().partition(|d| d.url.ends_with("/to-file"));
    assert_eq!(to_file[0].reason, "bad_redirect", "{}", to_file[0].error);
    assert!(
        dead.iter().all(|d| d.reason == "too_many_redirects"),
        "{dead:?}"
    );
    assert!(
        dead.iter().any(|d| d.error.contains("loop"))
            && dead.iter().any(|d| d.error.contains("more than 10"))
    );
    c.stop().await;
}

#[tokio::test]
async fn refetch_sends_validators_and_304_ends_as_not_modified() {
    let site = HttpFixture::serve(Router::new().route(
        "/page",
        get(|headers: HeaderMap| async move {
            if headers.get("if-none-match").is_some_and(|v| v == "\"v1\"") {
                StatusCode::NOT_MODIFIED.into_response()
            } else {
                ([("content-type", "text/html"), ("etag", "\"v1\"")], PAGE).into_response()
            }
        }),
    ))
    .await;
    let nats = NatsServer::start().await;
    let c = Crawler::start(&nats, &["--respect-robots=false"]).await;
    c.submit(&site.url("/page")).await;
    assert!(
        eventually(Duration::from_secs(20), || async {
            c.fetched().await.len() == 1
        })
        .await
    );
    // Within the duplicate window a plain resubmission is skipped; a forced one is fetched conditionally.
    c.submit(&site.url("/page")).await;
    c.submit_request(&CrawlRequest {
        url: site.url("/page"),
        request_id: "forced-1".into(),
        force: true,
        ..Default::default()
    })
    .await;
    // The skipped one says so (with how to force it); the forced one is a 304.
    assert!(
        eventually(Duration::from_secs(20), || async {
            c.stored().await.len() == 2
        })
        .await
    );
    let events = c.stored().await;
    let outcome = |o: StoreOutcome| events.iter().filter(|e| e.outcome == o as i32).count();
    assert_eq!(outcome(StoreOutcome::NotModified), 1, "{events:?}");
    assert_eq!(outcome(StoreOutcome::Skipped), 1, "{events:?}");
    let skipped = events
        .iter()
        .find(|e| e.outcome == StoreOutcome::Skipped as i32)
        .unwrap();
    assert!(skipped.detail.contains("--force"), "{}", skipped.detail);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(c.fetched().await.len(), 1, "no second FetchedPage");

    // A feed a user (or the hourly CronJob) submits is polled every time,
    // duplicate window or not; the validators keep the poll cheap.
    for id in ["poll-1", "poll-2"] {
        c.submit_request(&CrawlRequest {
            url: site.url("/page"),
            request_id: id.into(),
            kind: UrlKind::Feed as i32,
            origin: Origin::User as i32,
            ..Default::default()
        })
        .await;
    }
    assert!(
        eventually(Duration::from_secs(20), || async {
            c.stored().await.len() == 4
        })
        .await,
        "both polls were fetched conditionally"
    );
    c.stop().await;
}

#[tokio::test]
async fn bomb_stall_types_and_big_pages() {
    // 1 GiB of zeros, gzip-compressed (about 1 MiB on the wire).
    let bomb = {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..1024 {
            gz.write_all(&zeros).unwrap();
        }
        Arc::new(gz.finish().unwrap())
    };
    // The same trick with the other encodings reqwest decodes: 1 GiB of
    // zeros as zstd, 64 MiB as brotli (both far past the 10 MiB cap).
    let zstd_bomb = Arc::new({
        let mut enc = zstd::stream::Encoder::new(Vec::new(), 3).unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..1024 {
            std::io::Write::write_all(&mut enc, &zeros).unwrap();
        }
        enc.finish().unwrap()
    });
    let brotli_bomb = Arc::new({
        let mut out = Vec::new();
        {
            let mut enc = brotli::CompressorWriter::new(&mut out, 4096, 1, 22);
            let zeros = vec![0u8; 1 << 20];
            for _ in 0..64 {
                std::io::Write::write_all(&mut enc, &zeros).unwrap();
            }
        }
        out
    });
    // 5 MiB of text that does not compress below the NATS payload limit.
    let big: Arc<String> = Arc::new({
        let mut s = String::from("<html><body><p>");
        let mut x: u64 = 0x9E3779B97F4A7C15;
        while s.len() < 5 * 1024 * 1024 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            s.push_str(&format!("{x:016x} "));
        }
        s.push_str("</p></body></html>");
        s
    });
    let site = HttpFixture::serve(
        Router::new()
            .route(
                "/bomb",
                get({
                    let bomb = bomb.clone();
                    move || async move {
                        (
                            [("content-type", "text/html"), ("content-encoding", "gzip")],
                            bomb.as_ref().clone(),
                        )
                            .into_response()
                    }
                }),
            )
            .route(
                "/bomb-zstd",
                get({
                    let bomb = zstd_bomb.clone();
                    move || async move {
                        (
                            [("content-type", "text/html"), ("content-encoding", "zstd")],
                            bomb.as_ref().clone(),
                        )
                            .into_response()
                    }
                }),
            )
            .route(
                "/bomb-br",
                get({
                    let bomb = brotli_bomb.clone();
                    move || async move {
                        (
                            [("content-type", "text/html"), ("content-encoding", "br")],
                            bomb.as_ref().clone(),
                        )
                            .into_response()
                    }
                }),
            )
            .route(
                "/stall",
                get(|| async {
                    let stream = futures::stream::unfold(0u32, |n| async move {
                        if n > 0 {
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                        }
                        Some((
                            Ok::<_, std::io::Error>(bytes::Bytes::from_static(
                                b"<html><body><p>partial",
                            )),
                            n + 1,
                        ))
                    });
                    (
                        [("content-type", "text/html")],
                        axum::body::Body::from_stream(stream),
                    )
                        .into_response()
                }),
            )
            .route(
                "/file.pdf",
                get(|| async {
                    ([("content-type", "application/pdf")], vec![b'%'; 4 << 20]).into_response()
                }),
            )
            .route(
                "/big",
                get({
                    let big = big.clone();
                    move || async move { html(big.as_ref().clone()) }
                }),
            ),
    )
    .await;
    let nats = NatsServer::start().await;
    let c = Crawler::start(&nats, &["--respect-robots=false", "--max-deliveries=1"]).await;
    let rss_before = peak_rss_kib();
    for path in [
        "/bomb",
        "/bomb-zstd",
        "/bomb-br",
        "/stall",
        "/file.pdf",
        "/big",
    ] {
        c.submit(&site.url(path)).await;
    }
    let dead = c.wait_dead(5).await;
    let reason = |p: &str| {
        dead.iter()
            .find(|d| d.url.ends_with(p))
            .map(|d| d.reason.clone())
            .unwrap_or_default()
    };
    assert_eq!(reason("/bomb"), "too_large");
    assert_eq!(reason("/bomb-zstd"), "too_large");
    assert_eq!(reason("/bomb-br"), "too_large");
    assert_eq!(reason("/stall"), "deadline_exceeded");
    assert_eq!(reason("/file.pdf"), "unsupported_content_type");
    assert!(
        eventually(Duration::from_secs(30), || async {
            c.fetched().await.len() == 1
        })
        .await
    );
    let page = &c.fetched().await[0];
    assert!(
        !page.body_key.is_empty() && page.body.is_empty(),
        "5 MiB page travels by claim check"
    );
    assert_eq!(page.body_len as usize, big.len());
    let growth_mib = (peak_rss_kib().saturating_sub(rss_before)) / 1024;
    eprintln!("peak RSS growth while crawling the gzip, zstd and brotli bombs, the stall, the PDF and the 5 MiB page: {growth_mib} MiB");
    assert!(
        growth_mib < 200,
        "peak RSS grew by {growth_mib} MiB while reading a 1 GiB bomb"
    );
    c.stop().await;
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn ssrf_forms_are_refused_with_the_guard_on() {
    let site =
        HttpFixture::serve(Router::new().route("/page", get(|| async { html(PAGE.into()) }))).await;
    let port = site.addr().port();
    // An allowlisted host whose page redirects to a refused address.
    let hop = HttpFixture::serve(
        Router::new()
            .route(
                "/to-refused",
                get(move || async move {
                    (
                        StatusCode::FOUND,
                        [("location", format!("http://127.0.0.2:{port}/page"))],
                    )
                        .into_response()
                }),
            )
            .route("/page", get(|| async { html(PAGE.into()) })),
    )
    .await;
    let nats = NatsServer::start().await;
    let guarded = Crawler::start(
        &nats,
        &["--respect-robots=false", "--allow-private-networks=false"],
    )
    .await;
    let forms = [
        format!("http://127.0.0.1:{port}/page"),
        format!("http://2130706433:{port}/page"),
        format!("http://0x7f.1:{port}/page"),
        format!("http://[::ffff:127.0.0.1]:{port}/page"),
        format!("http://[::1]:{port}/page"),
        format!("http://localhost:{port}/page"),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "http://10.0.0.1/".to_string(),
        "http://100.64.0.1/".to_string(),
    ];
    for f in &forms {
        guarded.submit(f).await;
    }
    let dead = guarded.wait_dead(forms.len()).await;
    assert!(
        dead.iter().all(|d| d.reason == "blocked_address"),
        "{dead:?}"
    );
    assert!(guarded.fetched().await.is_empty());
    guarded.stop().await;

    // An allowlisted host that redirects to a refused address.
    let listed = Crawler::start(
        &nats,
        &["--respect-robots=false", "--allow-cidrs=127.0.0.1/32"],
    )
    .await;
    listed.submit(&hop.url("/page")).await;
    listed.submit(&hop.url("/to-refused")).await;
    assert!(
        eventually(Duration::from_secs(20), || async {
            listed.fetched().await.len() == 1
        })
        .await
    );
    let dead = listed.wait_dead(1).await;
    assert_eq!(dead[0].reason, "blocked_address");
    assert!(dead[0].url.ends_with("/to-refused"));
    listed.stop().await;

    // With the guard off, the loopback forms are fetched.
    let open = Crawler::start(
        &nats,
        &["--respect-robots=false", "--allow-private-networks=true"],
    )
    .await;
    for f in &forms[..4] {
        open.submit(f).await;
    }
    assert!(
        eventually(Duration::from_secs(20), || async {
            open.fetched().await.len() == 4
        })
        .await,
        "{:?}",
        open.dead().await
    );
    open.stop().await;
}

#[tokio::test]
async fn a_slow_host_does_not_delay_a_fast_one() {
    let site = HttpFixture::serve(
        Router::new()
            .route(
                "/slow/{n}",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    html(PAGE.into())
                }),
            )
            .route("/fast/{n}", get(|| async { html(PAGE.into()) })),
    )
    .await;
    let port = site.addr().port();
    let nats = NatsServer::start().await;
    let c = Crawler::start(
        &nats,
        &[
            "--respect-robots=false",
            "--host-delay=100ms",
            "--fetch-deadline=10s",
        ],
    )
    .await;
    // Same server, two hosts: 127.0.0.1 is slow, localhost is fast.
    for n in 0..5 {
        c.submit(&format!("http://127.0.0.1:{port}/slow/{n}")).await;
    }
    for n in 0..5 {
        c.submit(&format!("http://localhost:{port}/fast/{n}")).await;
    }
    let t0 = Instant::now();
    assert!(
        eventually(Duration::from_secs(30), || async {
            c.fetched()
                .await
                .iter()
                .filter(|p| p.final_url.contains("/fast/"))
                .count()
                == 5
        })
        .await
    );
    let fast_done = t0.elapsed();
    let slow_done = c
        .fetched()
        .await
        .iter()
        .filter(|p| p.final_url.contains("/slow/"))
        .count();
    // The slow host serves one page per 2 s, one at a time: its third page
    // cannot finish before 6 s. The fast host must not wait behind it.
    assert!(
        fast_done < Duration::from_secs(5),
        "fast host took {fast_done:?}"
    );
    assert!(slow_done <= 2, "slow host is serialised: {slow_done} done");
    c.stop().await;
}

#[tokio::test]
async fn invalid_urls_and_garbage_are_dead_lettered() {
    let nats = NatsServer::start().await;
    let c = Crawler::start(&nats, &["--respect-robots=false"]).await;
    c.submit("ftp://example.com/file").await;
    c.submit("not a url at all").await;
    // A protobuf content type with a body that is not a CrawlRequest.
    let mut h = async_nats::HeaderMap::new();
    h.insert("Content-Type", "application/protobuf");
    c.js.publish_with_headers(
        format!("{}.urls", c.prefix),
        h,
        vec![0xff, 0xff, 0xff].into(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    let dead = c.wait_dead(3).await;
    let mut reasons: Vec<&str> = dead.iter().map(|d| d.reason.as_str()).collect();
    reasons.sort();
    assert_eq!(reasons, ["bad_message", "invalid_url", "invalid_url"]);
    c.stop().await;
}

#[tokio::test]
async fn hostile_servers_end_in_clear_reasons_with_bounded_memory() {
    // robots.txt of 10 MiB: only the first 500 KiB are read.
    let mut robots = String::from("User-agent: *\nDisallow: /private\n");
    while robots.len() < 10 * 1024 * 1024 {
        robots.push_str("# padding padding padding padding padding padding padding padding\n");
    }
    let robots = Arc::new(robots);
    let site = HttpFixture::serve(
        Router::new()
            .route(
                "/robots.txt",
                get({
                    let robots = robots.clone();
                    move || async move { robots.as_ref().clone() }
                }),
            )
            .route("/private/x", get(|| async { html(PAGE.into()) }))
            .route("/ok", get(|| async { html(PAGE.into()) }))
            // 1 GiB announced in Content-Length: refused unread.
            .route(
                "/declared-huge",
                get(|| async {
                    let stream = futures::stream::repeat_with(|| {
                        Ok::<_, std::io::Error>(bytes::Bytes::from_static(&[b'a'; 65536]))
                    })
                    .take(16384);
                    (
                        [
                            ("content-type", "text/html"),
                            ("content-length", "1073741824"),
                        ],
                        axum::body::Body::from_stream(stream),
                    )
                        .into_response()
                }),
            )
            // 1 GiB streamed without a length: cut at the cap.
            .route(
                "/chunked-huge",
                get(|| async {
                    let stream = futures::stream::repeat_with(|| {
                        Ok::<_, std::io::Error>(bytes::Bytes::from_static(&[b'a'; 65536]))
                    })
                    .take(16384);
                    (
                        [("content-type", "text/html")],
                        axum::body::Body::from_stream(stream),
                    )
                        .into_response()
                }),
            ),
    )
    .await;
    // Slowloris: accepts, then drips one byte per second and never ends the headers.
    let slow = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let slow_port = slow.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = slow.accept().await {
            tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                for b in b"HTTP/1.1 200 OK\r\nX-Slow: ".iter().cycle() {
                    if sock.write_all(&[*b]).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            });
        }
    });
    // A liar: a header larger than any client reads, or a body shorter
    // than its Content-Length. Both are the server's fault, every time.
    let liar = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let liar_port = liar.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = liar.accept().await {
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = vec![0u8; 4096];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                let answer = if req.starts_with("GET /robots.txt") {
                    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_string()
                } else if req.starts_with("GET /big-header") {
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nX-Big: {}\r\n\r\n",
                        "a".repeat(512 * 1024)
                    )
                } else {
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 100000\r\n\r\n<html><body>short".to_string()
                };
                let _ = sock.write_all(answer.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    let nats = NatsServer::start().await;
    let c = Crawler::start(&nats, &["--max-deliveries=1"]).await;
    let rss_before = peak_rss_kib();
    c.submit(&site.url("/private/x")).await;
    c.submit(&site.url("/ok")).await;
    c.submit(&site.url("/declared-huge")).await;
    c.submit(&site.url("/chunked-huge")).await;
    c.submit(&format!("http://127.0.0.1:{slow_port}/page"))
        .await;
    // A name that does not resolve says so, not "robots.txt unavailable".
    c.submit("http://no-such-host.invalid/page").await;
    c.submit(&format!("http://127.0.0.1:{liar_port}/big-header"))
        .await;
    c.submit(&format!("http://127.0.0.1:{liar_port}/short"))
        .await;
    let dead = c.wait_dead(7).await;
    let reason = |p: &str| {
        dead.iter()
            .find(|d| d.url.ends_with(p))
            .map(|d| d.reason.clone())
            .unwrap_or_default()
    };
    assert_eq!(reason("/private/x"), "robots_disallowed");
    assert_eq!(reason("/declared-huge"), "too_large");
    assert_eq!(reason("/chunked-huge"), "too_large");
    assert_eq!(reason("no-such-host.invalid/page"), "dns_failure");
    let letter = |p: &str| {
        dead.iter()
            .find(|d| d.url.ends_with(p))
            .map(|d| (d.reason.clone(), d.error.clone()))
            .unwrap_or_default()
    };
    assert_eq!(
        letter("/big-header").0,
        "header_too_large",
        "{:?}",
        letter("/big-header")
    );
    assert_eq!(
        letter("/short").0,
        "truncated_body",
        "{:?}",
        letter("/short")
    );
    // The first request to the slowloris host is its robots.txt, which
    // never arrives: "try later", with the deadline as the cause.
    let slowloris = dead
        .iter()
        .find(|d| d.url.ends_with(&format!(":{slow_port}/page")))
        .expect("slowloris dead-lettered");
    assert_eq!(slowloris.reason, "robots_unavailable");
    assert!(slowloris.error.contains("deadline"), "{}", slowloris.error);
    assert!(
        eventually(Duration::from_secs(20), || async {
            c.fetched().await.len() == 1
        })
        .await
    );
    let growth_mib = peak_rss_kib().saturating_sub(rss_before) / 1024;
    eprintln!("peak RSS growth with hostile servers: {growth_mib} MiB");
    assert!(growth_mib < 200, "peak RSS grew by {growth_mib} MiB");
    c.stop().await;
}
