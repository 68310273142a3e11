//! The whole pipeline, the way a user runs it: three `crawlq` processes,
//! a real nats-server, the sample news site, `crawlq submit --wait`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use crawlq_e2e::{files_under as archive_keys, Stack};
use crawlq_testkit::{eventually, sample_site, unique_prefix, HttpFixture, NatsServer, S3Server};

async fn dead_letters(nats: &NatsServer, prefix: &str) -> Vec<crawlq_proto::v1::DeadLetter> {
    let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    crawlq_e2e::dead_letters(&js, prefix).await
}

fn submit_args(base: &str) -> Vec<String> {
    let seeds = sample_site::seeds(base);
    vec![
        "submit".into(),
        "--force".into(),
        "--wait".into(),
        "--timeout=120s".into(),
        "--feed".into(),
        seeds[0].clone(),
        "--feed".into(),
        seeds[1].clone(),
        "--sitemap".into(),
        seeds[2].clone(),
    ]
}

fn check_archive(root: &Path, base: &str) {
    let keys = archive_keys(root);
    let host = url::Url::parse(base)
        .unwrap()
        .host_str()
        .unwrap()
        .to_string();
    for url in sample_site::expected(base).stored {
        let id = crawlq_record::record_id(&url);
        let key = format!("articles/{host}/{id}.md");
        let md = std::fs::read_to_string(root.join(&key))
            .unwrap_or_else(|_| panic!("{url} not archived ({key}); have {keys:?}"));
        let (ts, title, link) = crawlq_record::parse_header(&md).expect("seed-format header");
        assert!(ts > 0 && !title.is_empty(), "{key}");
        assert_eq!(link, url::Url::parse(&url).unwrap().to_string());
        let body = md.splitn(5, '\n').nth(4).unwrap();
        assert!(
            body.starts_with('<') && body.trim_end().lines().count() == 1,
            "{key}: one line of HTML"
        );
        assert!(
            !body.contains("Share") && !body.contains("All rights reserved"),
            "{key}: boilerplate kept"
        );
    }
    let gbk = std::fs::read_to_string(root.join(format!(
        "articles/{host}/{}.md",
        crawlq_record::record_id(&format!("{base}/news/2023/11/09/gbk-report"))
    )))
    .unwrap();
    assert!(
        gbk.contains("美韩谴责朝鲜向俄罗斯运送武器") && gbk.contains("布林肯还呼吁中国"),
        "GBK page decoded"
    );
    let big5 = std::fs::read_to_string(root.join(format!(
        "articles/{host}/{}.md",
        crawlq_record::record_id(&format!("{base}/news/2023/11/10/big5-report"))
    )))
    .unwrap();
    assert!(big5.contains("台北國際書展今天開幕"), "Big5 page decoded");
    assert!(keys.contains(&format!("index/{host}.md")));
}

async fn check_dead(nats: &NatsServer, prefix: &str, base: &str) {
    let want: BTreeSet<(String, String)> = sample_site::expected(base)
        .dead
        .into_iter()
        .map(|(u, r)| (u, r.to_string()))
        .collect();
    let have: BTreeSet<(String, String)> = dead_letters(nats, prefix)
        .await
        .into_iter()
        .map(|d| (d.url, d.reason))
        .collect();
    assert_eq!(
        have, want,
        "the dead-letter stream holds exactly the three traps"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_site_end_to_end_on_a_local_folder_then_a_second_run() {
    let site = HttpFixture::serve_with(sample_site::router).await;
    let base = site.url("");
    let nats = NatsServer::start().await;
    let prefix = unique_prefix();
    let archive = tempfile::tempdir().unwrap();
    let stack = Stack::start(&nats, &prefix, archive.path().to_str().unwrap(), &[]);
    let args = submit_args(&base);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();

    let out = stack.run(&args).await;
    assert!(out.contains("accepted 3, skipped 0, rejected 0"), "{out}");
    assert!(
        out.contains(&format!("new {}", sample_site::ARTICLES)),
        "{out}"
    );
    check_archive(archive.path(), &base);
    check_dead(&nats, &prefix, &base).await;
    let versions_before: Vec<String> = archive_keys(archive.path())
        .into_iter()
        .filter(|k| k.starts_with("versions/"))
        .collect();
    assert_eq!(versions_before.len(), sample_site::ARTICLES);

    // A second run stores no new versions.
    let out = stack.run(&args).await;
    assert!(out.contains("(new 0, changed 0"), "{out}");
    let versions_after: Vec<String> = archive_keys(archive.path())
        .into_iter()
        .filter(|k| k.starts_with("versions/"))
        .collect();
    assert_eq!(versions_before, versions_after);

    // A URL fetched within the duplicate window is skipped, and says so;
    // the same submission again within two minutes is dropped, and says so.
    let article = format!("{base}/news/{}", sample_site::articles()[0].slug);
    let out = stack
        .run(&["submit", "--wait", "--timeout=60s", &article])
        .await;
    assert!(out.contains("accepted 1, skipped 0"), "{out}");
    assert!(
        out.contains("skipped:        1") && out.contains("--force"),
        "{out}"
    );
    let out = stack.run(&["submit", &article]).await;
    assert!(out.contains("accepted 0, skipped 1"), "{out}");

    let status = stack.run(&["status", "--json"]).await;
    assert!(status.contains("robots_disallowed"), "{status}");
    let json: serde_json::Value = serde_json::from_str(&status).unwrap();
    // Two runs, three dead letters each; the totals agree with the breakdown.
    assert_eq!(json["dead_letters_per_stage"]["crawler"], 6, "{status}");
    let table = stack.run(&["status"]).await;
    let header = table.lines().next().unwrap();
    assert!(
        header.starts_with("STAGE") && table.contains("due checks"),
        "{table}"
    );
    // Columns line up: every row's numbers end where the header's do.
    let width = header.len();
    for row in table.lines().skip(1).take(4) {
        assert_eq!(row.len(), width, "{table}");
    }

    check_monitoring_queries_against_scrapes(&stack).await;
}

/// Series from a Prometheus text exposition: (name, labels).
fn parse_exposition(text: &str) -> Vec<(String, BTreeMap<String, String>)> {
    let mut out = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        let mut labels = BTreeMap::new();
        if line[name_end..].starts_with('{') {
            let body = &line[name_end + 1..line.rfind('}').unwrap()];
            for pair in body.split(',') {
                if let Some((k, v)) = pair.split_once('=') {
                    labels.insert(k.to_string(), v.trim_matches('"').to_string());
                }
            }
        }
        out.push((line[..name_end].to_string(), labels));
    }
    out
}

/// A label matcher: (label, operator, value).
type Matcher = (String, String, String);

/// Metric names, with the label matchers written right after them, in a
/// rules or dashboard file: `name{a="b", c=~"d"}` gives (name, [(a, =, b), ...]).
fn metric_references(text: &str) -> Vec<(String, Vec<Matcher>)> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let rest = &text[i..];
        let starts_word = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        if starts_word && (rest.starts_with("crawlq_") || rest.starts_with("kube_")) {
            let len = rest
                .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
                .unwrap_or(rest.len());
            let name = rest[..len].to_string();
            if name.ends_with('_') {
                // A prefix in prose (`crawlq_*`), not a metric.
                i += len;
                continue;
            }
            let mut matchers = Vec::new();
            if rest[len..].starts_with('{') {
                let body = &rest[len + 1..len + rest[len..].find('}').unwrap()];
                for m in body.split(',') {
                    let m = m.trim();
                    for op in ["=~", "!~", "!=", "="] {
                        if let Some((k, v)) = m.split_once(op) {
                            let v = v
                                .trim()
                                .trim_matches('"')
                                .trim_matches('\\')
                                .trim_matches('"');
                            matchers.push((k.trim().to_string(), op.to_string(), v.to_string()));
                            break;
                        }
                    }
                }
            }
            out.push((name, matchers));
            i += len;
        } else {
            i += rest.chars().next().unwrap().len_utf8();
        }
    }
    out
}

/// Every metric the alert rules and the Grafana dashboard query is one the
/// running services export, with the labels (and exact label values) the
/// queries select on. Metrics from other exporters are named here.
async fn check_monitoring_queries_against_scrapes(stack: &Stack) {
    const EXTERNAL: &[(&str, &str)] = &[("kube_pod_status_ready", "kube-state-metrics")];
    // Labels Prometheus attaches at scrape time, not the service.
    const TARGET_LABELS: &[&str] = &["namespace", "pod", "job", "instance"];
    let mut series = Vec::new();
    for idx in 0..stack.procs.len() {
        let text = stack.scrape(idx).await.expect("scrape /metrics");
        series.extend(parse_exposition(&text));
    }
    let monitoring = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/monitoring");
    let mut checked = BTreeSet::new();
    for file in ["alerts.yaml", "grafana-dashboard.json"] {
        let text = std::fs::read_to_string(monitoring.join(file)).unwrap();
        for (name, matchers) in metric_references(&text) {
            checked.insert(name.clone());
            if EXTERNAL.iter().any(|(n, _)| *n == name) {
                continue;
            }
            let exported: Vec<&BTreeMap<String, String>> = series
                .iter()
                .filter(|(n, _)| *n == name)
                .map(|(_, l)| l)
                .collect();
            assert!(
                !exported.is_empty(),
                "{file} queries {name}, which no service exports"
            );
            for (label, op, value) in matchers {
                if TARGET_LABELS.contains(&label.as_str()) {
                    continue;
                }
                assert!(
                    exported.iter().any(|l| match op.as_str() {
                        "=" => l.get(&label) == Some(&value),
                        _ => l.contains_key(&label),
                    }),
                    "{file}: {name}{{{label}{op}\"{value}\"}} matches no exported series"
                );
            }
        }
    }
    assert!(
        checked.len() >= 15,
        "the rules and dashboard reference {} metrics: {checked:?}",
        checked.len()
    );
    // Every metric the README documents is exported (at zero until its
    // first event), and each scrape passes promtool's checks.
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let documented: BTreeSet<String> = readme
        .lines()
        .filter_map(|l| l.strip_prefix("| `crawlq_"))
        .filter_map(|l| l.split('`').next())
        .flat_map(|n| match (n.find('{'), n.find('}')) {
            // `crawlq_{crawler,extractor,storage}_retries_total`
            (Some(a), Some(b)) => n[a + 1..b]
                .split(',')
                .map(|alt| format!("crawlq_{}{alt}{}", &n[..a], &n[b + 1..]))
                .collect::<Vec<_>>(),
            _ => vec![format!("crawlq_{n}")],
        })
        .collect();
    assert!(documented.len() >= 30, "{documented:?}");
    let names: BTreeSet<&str> = series.iter().map(|(n, _)| n.as_str()).collect();
    let missing: Vec<&String> = documented
        .iter()
        .filter(|d| {
            !names.iter().any(|n| {
                n == d
                    || n.strip_prefix(d.as_str())
                        .is_some_and(|rest| ["_bucket", "_sum", "_count"].contains(&rest))
            })
        })
        .collect();
    assert!(
        missing.is_empty(),
        "documented but not exported: {missing:?}"
    );
    for idx in 0..stack.procs.len() {
        let text = stack.scrape(idx).await.expect("scrape /metrics");
        let mut promtool = std::process::Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("promtool (make deps installs it)");
        use std::io::Write as _;
        promtool
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = promtool.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "promtool check metrics on {}: {}{}",
            stack.procs[idx].service,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    eprintln!(
        "monitoring cross-check: {} metric names, {} series scraped",
        checked.len(),
        series.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_site_end_to_end_on_s3() {
    let s3 = S3Server::start("archive").await;
    let site = HttpFixture::serve_with(sample_site::router).await;
    let base = site.url("");
    let nats = NatsServer::start().await;
    let prefix = unique_prefix();
    let stack = Stack::start(&nats, &prefix, "s3://archive/e2e", &s3.env());
    let args = submit_args(&base);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = stack.run(&args).await;
    assert!(
        out.contains(&format!("new {}", sample_site::ARTICLES)),
        "{out}"
    );
    check_dead(&nats, &prefix, &base).await;
    // Read a record back through the store.
    let first = &sample_site::expected(&base).stored[0];
    let md = stack.run(&["get", first]).await;
    assert!(
        md.starts_with("<!--") && md.contains("officials said on Thursday"),
        "{md}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dlq_replay_of_a_fixed_failure_stores_the_page() {
    let fixed = Arc::new(AtomicBool::new(false));
    let flag = fixed.clone();
    let site = HttpFixture::serve(axum::Router::new().route(
        "/news/2023/11/09/late-story",
        axum::routing::get(move || {
            let flag = flag.clone();
            async move {
                if flag.load(Ordering::SeqCst) {
                    let p = "The late story finally arrived on Thursday, after the server had been fixed by its operators, and readers could see it.";
                    let html = format!("<html><head><title>Late story</title><meta property=\"og:type\" content=\"article\"></head><body><article><h1>Late story</h1><p>{p}</p><p>{p}</p></article></body></html>");
                    ([("content-type", "text/html")], html).into_response()
                } else {
                    (axum::http::StatusCode::NOT_FOUND, "not yet").into_response()
                }
            }
        }),
    ))
    .await;
    use axum::response::IntoResponse;
    let nats = NatsServer::start().await;
    let prefix = unique_prefix();
    let archive = tempfile::tempdir().unwrap();
    let stack = Stack::start(&nats, &prefix, archive.path().to_str().unwrap(), &[]);
    let url = site.url("/news/2023/11/09/late-story");
    stack
        .run(&["submit", "--wait", "--timeout=60s", &url])
        .await;
    assert!(
        eventually(Duration::from_secs(20), || async {
            dead_letters(&nats, &prefix).await.len() == 1
        })
        .await
    );
    assert!(stack.run(&["dlq", "list"]).await.contains("http_not_found"));

    fixed.store(true, Ordering::SeqCst);
    // A 404 cannot succeed as it is: skipped unless named or --all.
    assert!(stack.run(&["dlq", "replay"]).await.contains("replayed 0"));
    let dry = stack.run(&["dlq", "replay", "--all", "--dry-run"]).await;
    assert!(
        dry.contains("would replay 1") && dry.contains("http_not_found"),
        "{dry}"
    );
    assert_eq!(
        dead_letters(&nats, &prefix).await.len(),
        1,
        "a dry run replays nothing"
    );
    assert!(stack
        .run(&[
            "dlq",
            "replay",
            "--reason",
            "http_not_found",
            "--limit",
            "1"
        ])
        .await
        .contains("replayed 1"));
    let key = format!("articles/127.0.0.1/{}.md", crawlq_record::record_id(&url));
    assert!(
        eventually(Duration::from_secs(30), || async {
            archive.path().join(&key).exists()
        })
        .await,
        "{}",
        stack.log_tail()
    );
    assert!(
        dead_letters(&nats, &prefix).await.is_empty(),
        "replayed letters are removed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_publishes_more_urls_than_the_clients_ack_window() {
    // async-nats blocks a publish once 5,000 acknowledgements are pending;
    // a submit that awaited them only at the end hung at URL 5,001.
    let nats = NatsServer::start().await;
    let prefix = unique_prefix();
    let mut stack = Stack::empty();
    stack.env = vec![
        ("CRAWLQ_NATS_URL".into(), nats.url()),
        ("CRAWLQ_SUBJECT_PREFIX".into(), prefix.clone()),
    ];
    // The services create the streams; here, with no service, the test does.
    let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let topo = crawlq_runtime::Topology::new(prefix.clone());
    crawlq_runtime::nats::provision_streams(
        &js,
        &topo,
        &crawlq_runtime::nats::StreamSettings::replicas(1),
    )
    .await
    .unwrap();
    let file = tempfile::NamedTempFile::new().unwrap();
    let urls: Vec<String> = (0..12_000)
        .map(|i| format!("https://news.example/story-{i}"))
        .collect();
    std::fs::write(file.path(), urls.join("\n")).unwrap();
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        stack.run(&["submit", "-f", file.path().to_str().unwrap()]),
    )
    .await
    .expect("submit finished");
    assert!(out.contains("accepted 12000"), "{out}");
    let stream = format!("{}_URLS", prefix.to_uppercase());
    assert_eq!(crawlq_e2e::stream_len(&js, &stream).await, 12_000);
}

/// `submit --wait` outlives a nats-server restart: it waits for the
/// connection to come back and then for the pipeline, and ends with its
/// summary; a wait that runs out of time exits non-zero.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_wait_outlives_a_nats_restart_and_fails_on_timeout() {
    let site = HttpFixture::serve_with(sample_site::router).await;
    let base = site.url("");
    let mut nats = NatsServer::start().await;
    let prefix = unique_prefix();
    let archive = tempfile::tempdir().unwrap();
    let stack = Stack::start(
        &nats,
        &prefix,
        archive.path().to_str().unwrap(),
        &[("CRAWLQ_HOST_DELAY".into(), "300ms".into())],
    );
    for i in 0..stack.procs.len() {
        assert!(stack.wait_ready(i, Duration::from_secs(30)).await);
    }
    let args = submit_args(&base);
    let submit = tokio::process::Command::new(crawlq_e2e::binary())
        .args(&args)
        .envs(stack.env.iter().map(|(k, v)| (k, v)))
        .output();
    let waiting = tokio::spawn(submit);
    tokio::time::sleep(Duration::from_secs(3)).await;
    nats.kill();
    tokio::time::sleep(Duration::from_secs(2)).await;
    nats.restart().await;
    let out = waiting.await.unwrap().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "{stdout}\n{stderr}\n{}",
        stack.log_tail()
    );
    // Requests made during the outage either wait for the reconnection or
    // fail and are retried ("lost NATS … waiting"); either way it goes on.
    assert!(stdout.contains("summary"), "{stdout}");
    assert!(
        stdout.contains(&format!("new {}", sample_site::ARTICLES)),
        "{stdout}\n{stderr}"
    );

    // Work that cannot finish in time: exit non-zero, after the summary.
    let mut slow = submit_args(&base);
    slow.retain(|a| !a.starts_with("--timeout"));
    slow.push("--timeout=1s".into());
    let out = tokio::process::Command::new(crawlq_e2e::binary())
        .args(&slow)
        .envs(stack.env.iter().map(|(k, v)| (k, v)))
        .output()
        .await
        .unwrap();
    assert!(!out.status.success(), "a timed-out wait must fail");
    assert!(String::from_utf8_lossy(&out.stderr).contains("timed out"));
}

/// `submit --wait` counts its own submission, not the pipeline: while
/// another user's 40 slow pages are in flight, a one-URL submit reports
/// one result and returns once that one has ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_wait_counts_its_own_work_only() {
    let body = |n: usize| {
        format!(
            "<!DOCTYPE html><html><head><title>Story {n}</title><meta property=\"og:type\" content=\"article\"></head><body><article><h1>Story {n}</h1><p>{}</p></article></body></html>",
            "The council voted on Tuesday to rebuild the harbour wall that the winter storms had broken, and work starts in the spring. ".repeat(4)
        )
    };
    let site = HttpFixture::serve(axum::Router::new().route(
        "/news/{n}",
        axum::routing::get(
            move |axum::extract::Path(n): axum::extract::Path<usize>| async move {
                if n >= 100 {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
                ([("content-type", "text/html")], body(n))
            },
        ),
    ))
    .await;
    let nats = NatsServer::start().await;
    let prefix = unique_prefix();
    let archive = tempfile::tempdir().unwrap();
    let stack = Stack::start(&nats, &prefix, archive.path().to_str().unwrap(), &[]);
    stack.all_ready(Duration::from_secs(30)).await;
    // Someone else's slow batch, on 127.0.0.1.
    let mut other = vec!["submit".to_string()];
    other.extend((100..140).map(|n| site.url(&format!("/news/{n}"))));
    stack
        .run(&other.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    // Ours, one page on another host name of the same server.
    let ours = format!("http://localhost:{}/news/1", site.addr().port());
    let started = std::time::Instant::now();
    let out = stack
        .run(&["submit", "--wait", "--timeout=60s", &ours])
        .await;
    let took = started.elapsed();
    assert!(out.contains("stored:         1 (new 1,"), "{out}");
    assert!(out.contains("dead-lettered:  0"), "{out}");
    let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let stored = crawlq_e2e::stored_events(&js, &prefix).await.len();
    assert!(
        stored < 41,
        "the other batch was still running when ours ended ({stored} stored)"
    );
    eprintln!("own submit ended after {took:?} with {stored} of 41 stored events in the stream");
}

/// An article whose record is larger than one NATS message (here about
/// 1.3 MB of clean HTML and text) is archived whole, by claim check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_article_too_large_for_one_message_is_archived_whole() {
    let paragraphs: String = (0..3000)
        .map(|i| format!("<p>Paragraph {i} of the long inquiry report: the committee heard evidence from witness number {i}, who described the contracts, the meetings and the payments in detail, and whose testimony ran to many pages.</p>"))
        .collect();
    let page = format!(
        "<!DOCTYPE html><html><head><title>The long report</title><meta property=\"og:type\" content=\"article\"></head><body><article><h1>The long report</h1>{paragraphs}</article></body></html>"
    );
    let site = HttpFixture::serve(axum::Router::new().route(
        "/news/long",
        axum::routing::get(move || {
            let page = page.clone();
            async move { ([("content-type", "text/html; charset=utf-8")], page) }
        }),
    ))
    .await;
    let nats = NatsServer::start().await;
    let prefix = unique_prefix();
    let archive = tempfile::tempdir().unwrap();
    let stack = Stack::start(&nats, &prefix, archive.path().to_str().unwrap(), &[]);
    let url = site.url("/news/long");
    let out = stack
        .run(&["submit", "--wait", "--timeout=60s", &url])
        .await;
    assert!(out.contains("new 1"), "{out}\n{}", stack.log_tail());
    let md = stack.run(&["get", &url]).await;
    assert!(md.len() > 300_000, "{} bytes", md.len());
    assert!(
        md.contains("witness number 2999"),
        "the last paragraph is archived"
    );
    let claimed = archive_keys(archive.path())
        .into_iter()
        .any(|k| k.starts_with("claims/") && k.contains("/rec-"));
    assert!(claimed, "the record travelled by claim check");
}

/// User commands fail fast and say why: a server that refuses the
/// connection is named within about two seconds, and a prefix with no
/// streams is refused instead of quietly creating a second set.
#[tokio::test]
async fn commands_fail_fast_on_a_wrong_url_or_prefix() {
    let started = std::time::Instant::now();
    let out = tokio::process::Command::new(crawlq_e2e::binary())
        .args(["status", "--nats-url", "nats://127.0.0.1:1"])
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("nats://127.0.0.1:1"), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );

    let nats = NatsServer::start().await;
    let out = tokio::process::Command::new(crawlq_e2e::binary())
        .args([
            "submit",
            "https://example.com/a",
            "--subject-prefix",
            "typo",
        ])
        .env("CRAWLQ_NATS_URL", nats.url())
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("no crawlq streams with prefix `typo`"),
        "{stderr}"
    );
    let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    assert!(
        js.get_stream("TYPO_URLS").await.is_err(),
        "submit created no stream"
    );
}

/// `deploy/local/stack.sh` with `nats-server` replaced by a script that
/// reports `version`; returns the exit status and stderr.
fn local_stack_with_nats(data: &Path, version: &str) -> (bool, String) {
    let fake = data.join("fake-nats-server");
    std::fs::write(
        &fake,
        format!("#!/bin/sh\necho \"nats-server: v{version}\"\n"),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let bin = crawlq_e2e::binary();
    let out = std::process::Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/local/stack.sh"))
        .arg("up")
        .env("CRAWLQ_DATA", data)
        .env("CRAWLQ_BIN", &bin)
        .env("CRAWLQ_SITE_BIN", bin.with_file_name("crawlq-sample-site"))
        .env("NATS_SERVER_BIN", &fake)
        .env(
            "CRAWLQ_LOCAL_NATS_PORT",
            crawlq_testkit::free_port().to_string(),
        )
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_local_stack_refuses_a_nats_server_older_than_the_one_that_wrote_its_data() {
    let data = tempfile::tempdir().unwrap();
    let recorded = data.path().join("nats/server-version");
    std::fs::create_dir_all(recorded.parent().unwrap()).unwrap();
    std::fs::write(&recorded, "2.15.1\n").unwrap();
    let (ok, err) = local_stack_with_nats(data.path(), "2.10.4");
    assert!(!ok);
    assert!(
        err.contains("written by nats-server 2.15.1") && err.contains("2.10.4, older: refusing"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&recorded).unwrap(), "2.15.1\n");
    // A newer server is let through (it fails here only because the fake
    // never listens) and becomes the recorded one.
    let (ok, err) = local_stack_with_nats(data.path(), "2.16.0");
    assert!(!ok);
    assert!(err.contains("nats-server did not start"), "{err}");
    assert_eq!(std::fs::read_to_string(&recorded).unwrap(), "2.16.0\n");
}
