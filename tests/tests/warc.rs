//! The WARC archive, checked by the tools that read WARC: `warcio check`
//! and `warcio index` (PyPI warcio) on every sealed file, re-crawls that
//! add only revisit records, pywb replaying an archived article, and a
//! storage killed with -9 mid-write.
//!
//! The tools live in `.tools/py` (`make deps` installs them).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use crawlq_e2e::{stored_events, Stack};
use crawlq_proto::v1::StoreOutcome;
use crawlq_testkit::{eventually, free_port, unique_prefix, HttpFixture, NatsServer};
use serde_json::Value;

fn tool(name: &str) -> PathBuf {
    let bin = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../.tools/py/bin")
        .join(name);
    assert!(
        bin.exists(),
        "{} is missing: run `make deps` (it installs warcio and pywb into .tools/py)",
        bin.display()
    );
    bin
}

fn article(n: usize, title: &str) -> String {
    let para = format!("Paragraph of story {n}: the council met on Tuesday and voted to rebuild the old harbour wall, which the winter storms had broken in three places, and the works begin in spring.");
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{title}</title><meta property=\"og:type\" content=\"article\"></head><body><article><h1>{title}</h1><p>{para}</p><p>{para} Again.</p><p>{para} Once more.</p></article></body></html>"
    )
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Sealed WARC files under the archive, sorted.
fn sealed(store: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![store.join("warc")];
    while let Some(d) = dirs.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() && p.file_name().is_some_and(|n| n != "open") {
                dirs.push(p);
            } else if p.to_string_lossy().ends_with(".warc.gz") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Segments of files still open.
fn open_segments(store: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(store.join("warc/open")) else {
        return 0;
    };
    rd.flatten()
        .map(|d| std::fs::read_dir(d.path()).map_or(0, |r| r.count()))
        .sum()
}

fn warcio_check(file: &Path) {
    let out = Command::new(tool("warcio"))
        .args(["check", "-v"])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "warcio check {} failed:\n{}{}",
        file.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `warcio index` of a file: one JSON object per record.
fn warcio_index(file: &Path) -> Vec<Value> {
    let out = Command::new(tool("warcio"))
        .args([
            "index",
            "-f",
            "warc-type,warc-target-uri,http:status,warc-payload-digest,warc-refers-to,warc-concurrent-to,warc-record-id,content-type",
        ])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Waits (up to `secs`) until no file is open and more than `after`
/// files are sealed; then every sealed file must pass `warcio check`.
async fn sealed_and_checked(store: &Path, after: usize, secs: u64, stack: &Stack) -> Vec<PathBuf> {
    assert!(
        eventually(Duration::from_secs(secs), || async {
            sealed(store).len() > after && open_segments(store) == 0
        })
        .await,
        "files not sealed ({} sealed, {} open segments)\n{}",
        sealed(store).len(),
        open_segments(store),
        stack.log_tail()
    );
    let files = sealed(store);
    for f in &files {
        warcio_check(f);
    }
    files
}

fn all_records(files: &[PathBuf]) -> Vec<Value> {
    files.iter().flat_map(|f| warcio_index(f)).collect()
}

/// The payload digest every WARC tool writes, computed by Python's
/// hashlib, not by crawlq.
fn sha1_b32(data: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("body");
    std::fs::write(&f, data).unwrap();
    let out = Command::new("python3")
        .args([
            "-c",
            "import base64,hashlib,sys; print('sha1:'+base64.b32encode(hashlib.sha1(open(sys.argv[1],'rb').read()).digest()).decode())",
        ])
        .arg(&f)
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn of_type<'a>(records: &'a [Value], kind: &str) -> Vec<&'a Value> {
    records.iter().filter(|r| r["warc-type"] == kind).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warc_files_pass_warcio_revisits_are_revisits_and_pywb_replays_them() {
    let plain = article(1, "Harbour wall to be rebuilt");
    let coded_page = article(2, "Ferry timetable changes");
    let coded = gzip(coded_page.as_bytes());
    let accented = article(3, "Café owners welcome the new square");
    let site = {
        let (plain, coded, accented) = (plain.clone(), coded.clone(), accented.clone());
        HttpFixture::serve(
            axum::Router::new()
                .route(
                    "/news/harbour-wall",
                    axum::routing::get(move || async move {
                        ([("content-type", "text/html; charset=utf-8")], plain)
                    }),
                )
                .route(
                    "/news/ferry-timetable",
                    axum::routing::get(move || async move {
                        (
                            [
                                ("content-type", "text/html; charset=utf-8"),
                                ("content-encoding", "gzip"),
                            ],
                            coded,
                        )
                    }),
                )
                .route(
                    "/news/caf%C3%A9-square",
                    axum::routing::get(move || async move {
                        ([("content-type", "text/html; charset=utf-8")], accented)
                    }),
                ),
        )
        .await
    };
    let urls = [
        site.url("/news/harbour-wall"),
        site.url("/news/ferry-timetable"),
        site.url("/news/caf%C3%A9-square"),
    ];
    let nats = NatsServer::start().await;
    let prefix = unique_prefix();
    let archive = tempfile::tempdir().unwrap();
    let store = archive.path().to_path_buf();
    let env = [
        ("CRAWLQ_WARC_MAX_AGE".to_string(), "2s".to_string()),
        ("CRAWLQ_WARC_WRITER".to_string(), "e2e".to_string()),
    ];
    let stack = Stack::start(&nats, &prefix, store.to_str().unwrap(), &env);
    let mut submit = vec!["submit", "--wait", "--timeout=60s"];
    submit.extend(urls.iter().map(String::as_str));
    let out = stack.run(&submit).await;
    assert!(out.contains("new 3"), "{out}\n{}", stack.log_tail());

    // Every file is sealed within its age (and no segment is left).
    let first_files = sealed_and_checked(&store, 0, 30, &stack).await;
    for f in &first_files {
        let cdxj = PathBuf::from(format!("{}.cdxj", f.display()));
        assert!(cdxj.exists(), "no CDXJ beside {}", f.display());
    }
    let records = all_records(&first_files);
    assert_eq!(of_type(&records, "warcinfo").len(), first_files.len());
    let responses = of_type(&records, "response");
    assert_eq!(responses.len(), 3, "{records:#?}");
    let bodies: [&[u8]; 3] = [plain.as_bytes(), &coded, accented.as_bytes()];
    for (url, body) in urls.iter().zip(bodies) {
        let r = responses
            .iter()
            .find(|r| r["warc-target-uri"] == url.as_str())
            .unwrap_or_else(|| panic!("no response for {url}: {responses:#?}"));
        assert_eq!(r["http:status"], "200");
        // The body as received: the gzip bytes for the coded page.
        assert_eq!(r["warc-payload-digest"], sha1_b32(body).as_str(), "{url}");
        // Its request and metadata records point at it.
        let id = &r["warc-record-id"];
        let concurrent: Vec<&Value> = records
            .iter()
            .filter(|x| &x["warc-concurrent-to"] == id)
            .collect();
        let kinds: Vec<&str> = concurrent
            .iter()
            .map(|x| x["warc-type"].as_str().unwrap())
            .collect();
        assert!(
            kinds.contains(&"request") && kinds.contains(&"metadata"),
            "{kinds:?}"
        );
    }
    // The CDXJ lists every capture.
    let cdx: String = first_files
        .iter()
        .map(|f| std::fs::read_to_string(format!("{}.cdxj", f.display())).unwrap())
        .collect();
    assert_eq!(cdx.lines().count(), 3, "{cdx}");
    assert!(cdx.contains("1,0,0,127:"), "{cdx}");

    // `get --raw` reads the page back from the WARC, decoded.
    let raw = stack.run(&["get", "--raw", &urls[1]]).await;
    assert_eq!(raw, coded_page);
    let raw = stack.run(&["get", "--raw", &urls[0]]).await;
    assert_eq!(raw, plain);

    // A re-crawl of the unchanged pages adds only revisit records.
    let mut again = vec!["submit", "--wait", "--force", "--timeout=60s"];
    again.extend(urls.iter().map(String::as_str));
    let out = stack.run(&again).await;
    assert!(out.contains("unchanged 3"), "{out}\n{}", stack.log_tail());
    let new_files: Vec<PathBuf> = sealed_and_checked(&store, first_files.len(), 30, &stack)
        .await
        .into_iter()
        .filter(|f| !first_files.contains(f))
        .collect();
    let later = all_records(&new_files);
    assert!(of_type(&later, "response").is_empty(), "{later:#?}");
    let revisits = of_type(&later, "revisit");
    assert_eq!(revisits.len(), 3, "{later:#?}");
    for r in &revisits {
        let original = responses
            .iter()
            .find(|x| x["warc-target-uri"] == r["warc-target-uri"])
            .unwrap();
        assert_eq!(r["warc-refers-to"], original["warc-record-id"]);
        assert_eq!(r["warc-payload-digest"], original["warc-payload-digest"]);
    }
    // The raw page still reads (from the original response).
    assert_eq!(stack.run(&["get", "--raw", &urls[0]]).await, plain);

    // pywb indexes the files and replays an article with its text.
    let pywb = tempfile::tempdir().unwrap();
    let wb = |args: &[&str]| {
        let out = Command::new(tool("wb-manager"))
            .args(args)
            .current_dir(pywb.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "wb-manager {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    wb(&["init", "news"]);
    let mut add = vec!["add".to_string(), "news".to_string()];
    add.extend(sealed(&store).iter().map(|f| f.display().to_string()));
    wb(&add.iter().map(String::as_str).collect::<Vec<_>>());
    let port = free_port();
    let mut server = Command::new(tool("wayback"))
        .args(["-b", "127.0.0.1", "-p", &port.to_string()])
        .current_dir(pywb.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let replay = format!("http://127.0.0.1:{port}/news/2099id_/{}", urls[0]);
    let mut text = None;
    for _ in 0..60 {
        if let Ok(r) = client.get(&replay).send().await {
            if r.status().is_success() {
                text = r.text().await.ok();
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let _ = server.kill();
    let _ = server.wait();
    let text = text.unwrap_or_else(|| panic!("pywb did not replay {replay}"));
    assert!(
        text.contains("Harbour wall to be rebuilt")
            && text.contains("rebuild the old harbour wall"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_killed_mid_write_leaves_valid_files_holding_every_acknowledged_record() {
    const PAGES: usize = 60;
    let site = HttpFixture::serve(axum::Router::new().route(
        "/news/{n}",
        axum::routing::get(
            |axum::extract::Path(n): axum::extract::Path<usize>| async move {
                (
                    [("content-type", "text/html; charset=utf-8")],
                    article(n, &format!("Story number {n} of the day")),
                )
            },
        ),
    ))
    .await;
    let nats = NatsServer::start().await;
    let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let prefix = unique_prefix();
    let archive = tempfile::tempdir().unwrap();
    let store = archive.path().to_path_buf();
    let env = [
        ("CRAWLQ_WARC_MAX_AGE".to_string(), "1h".to_string()),
        ("CRAWLQ_WARC_WRITER".to_string(), "crash".to_string()),
    ];
    let mut stack = Stack::start(&nats, &prefix, store.to_str().unwrap(), &env);
    let urls: Vec<String> = (0..PAGES)
        .map(|n| site.url(&format!("/news/{n}")))
        .collect();
    let mut submit = vec!["submit"];
    submit.extend(urls.iter().map(String::as_str));
    stack.run(&submit).await;
    let stored = |js: jetstream::Context| {
        let prefix = prefix.clone();
        async move {
            // A page fetched again after a crash is `unchanged`: count
            // records.
            let ids: std::collections::BTreeSet<String> = stored_events(&js, &prefix)
                .await
                .into_iter()
                .filter(|e| {
                    e.outcome == StoreOutcome::New as i32
                        || e.outcome == StoreOutcome::Unchanged as i32
                })
                .map(|e| e.record_id)
                .collect();
            ids.len()
        }
    };
    // Kill storage while its file is open and records are arriving.
    assert!(
        eventually(Duration::from_secs(60), || async {
            stored(js.clone()).await >= 5
        })
        .await,
        "{}",
        stack.log_tail()
    );
    let storage = stack.current("storage");
    stack.kill9(storage);
    assert!(
        open_segments(&store) > 0,
        "the file was not open when storage died"
    );
    // Nothing published is damaged, whatever was in flight.
    for f in sealed(&store) {
        warcio_check(&f);
    }
    let again = stack.spawn("storage");
    assert!(stack.wait_ready(again, Duration::from_secs(20)).await);
    assert!(
        eventually(Duration::from_secs(120), || async {
            stored(js.clone()).await >= PAGES
        })
        .await,
        "{}",
        stack.log_tail()
    );
    // The dead writer's file is sealed by the new one once its lease
    // lapses; the new writer's own file when it stops.
    stack.signal(again, "TERM");
    assert!(stack.wait_exit(again, Duration::from_secs(60)).await);
    let restarted = stack.spawn("storage");
    assert!(stack.wait_ready(restarted, Duration::from_secs(20)).await);
    let files = sealed_and_checked(&store, 0, 90, &stack).await;
    let records = all_records(&files);
    let responses = of_type(&records, "response");
    // Every acknowledged record (every stored event) is in a sealed file.
    for url in &urls {
        assert!(
            responses
                .iter()
                .any(|r| r["warc-target-uri"] == url.as_str()),
            "no response for {url} in {} files",
            files.len()
        );
    }
    eprintln!(
        "crash: {} files, {} responses for {PAGES} pages ({} duplicates from redelivery)",
        files.len(),
        responses.len(),
        responses.len() - PAGES
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revisits_archive_a_304_as_a_revisit_and_a_removal_as_its_404() {
    let page = article(7, "Night trains return");
    let gone = Arc::new(AtomicBool::new(false));
    let removed = gone.clone();
    let site = HttpFixture::serve(axum::Router::new().route(
        "/news/night-trains",
        axum::routing::get(move |headers: axum::http::HeaderMap| {
            let (page, gone) = (page.clone(), gone.clone());
            async move {
                if gone.load(Ordering::SeqCst) {
                    return (
                        axum::http::StatusCode::NOT_FOUND,
                        [("etag", "\"gone\"")],
                        "<html><body><h1>Page not found</h1></body></html>".to_string(),
                    );
                }
                let etag = "\"v1\"";
                if headers.get("if-none-match").is_some_and(|v| v == etag) {
                    return (
                        axum::http::StatusCode::NOT_MODIFIED,
                        [("etag", etag)],
                        String::new(),
                    );
                }
                (axum::http::StatusCode::OK, [("etag", etag)], page)
            }
        }),
    ))
    .await;
    let url = site.url("/news/night-trains");
    let nats = NatsServer::start().await;
    let prefix = unique_prefix();
    let archive = tempfile::tempdir().unwrap();
    let store = archive.path().to_path_buf();
    let env = [
        ("CRAWLQ_WARC_MAX_AGE".to_string(), "2s".to_string()),
        (
            "CRAWLQ_REVISIT_SCHEDULE".to_string(),
            "2s,2s,2s,2s,2s,2s,1h".to_string(),
        ),
    ];
    let stack = Stack::start(&nats, &prefix, store.to_str().unwrap(), &env);
    let out = stack
        .run(&["submit", "--wait", "--timeout=60s", &url])
        .await;
    assert!(out.contains("new 1"), "{out}\n{}", stack.log_tail());
    let not_modified = || {
        all_records(&sealed(&store))
            .into_iter()
            .filter(|r| r["warc-type"] == "revisit")
            .count()
    };
    assert!(
        eventually(Duration::from_secs(40), || async { not_modified() >= 2 }).await,
        "{}",
        stack.log_tail()
    );
    let files = sealed(&store);
    for f in &files {
        warcio_check(f);
    }
    // The profile and the 304 itself, read with warcio's own parser.
    let out = Command::new(tool("python"))
        .args([
            "-c",
            "import sys\nfrom warcio.archiveiterator import ArchiveIterator\nfor f in sys.argv[1:]:\n  for r in ArchiveIterator(open(f,'rb')):\n    if r.rec_type=='revisit':\n      print(r.rec_headers.get_header('WARC-Profile'), r.http_headers.get_statuscode(), r.rec_headers.get_header('WARC-Refers-To') is not None)",
        ])
        .args(&files)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.lines()
            .any(|l| l == "http://netpreserve.org/warc/1.1/revisit/server-not-modified 304 True"),
        "{text}"
    );

    // The article is removed: the next revisit's 404 is archived as it
    // came, the evidence beside the article's captures.
    removed.store(true, Ordering::SeqCst);
    let evidence = || {
        all_records(&sealed(&store))
            .into_iter()
            .filter(|r| r["warc-type"] == "response" && r["http:status"] == "404")
            .count()
    };
    assert!(
        eventually(Duration::from_secs(40), || async { evidence() >= 1 }).await,
        "{}",
        stack.log_tail()
    );
    for f in sealed(&store) {
        warcio_check(&f);
    }
}
