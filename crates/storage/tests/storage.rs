//! The storage stage against a real nats-server, on a local folder and on a
//! real S3 server (s3s-fs).

use std::time::Duration;

use async_nats::jetstream;
use clap::Parser;
use crawlq_proto::v1::{SnapshotRecord, StoreOutcome, StoredSnapshot};
use crawlq_proto::Message as _;
use crawlq_storage::read;
use crawlq_storage::{run, Config};
use crawlq_testkit::{eventually, read_stream, service_args, unique_prefix, NatsServer, S3Server};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    config: Config,
}

fn config(nats: &NatsServer, prefix: &str, store_url: &str) -> Config {
    let mut args = service_args(nats, prefix);
    args.extend([
        format!("--store-url={store_url}"),
        "--retry-base-delay=500ms".into(),
        "--retry-max-delay=4s".into(),
        "--max-deliveries=20".into(),
        "--index-flush-interval=200ms".into(),
    ]);
    Cli::try_parse_from(args).unwrap().config
}

fn record(url: &str, title: &str, html: &str, fetched_at: i64) -> SnapshotRecord {
    let u = url::Url::parse(url).unwrap();
    SnapshotRecord {
        id: crawlq_record::record_id(u.as_str()),
        url: u.to_string(),
        fetched_url: u.to_string(),
        host: u.host_str().unwrap().to_string(),
        title: title.into(),
        published_at: 1_699_530_301_000,
        fetched_at,
        content_html: html.into(),
        text: html.replace("<p>", "").replace("</p>", "\n"),
        content_sha256: hex::encode(Sha256::digest(html.as_bytes())),
        raw_zstd: zstd::bulk::compress(format!("<html>{html}</html>").as_bytes(), 3).unwrap(),
        ..Default::default()
    }
}

struct Running {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    fn start(config: Config) -> Running {
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(config, stop.clone()));
        Running { stop, task }
    }
    async fn stop(self) {
        self.stop.cancel();
        self.task.await.unwrap().unwrap();
    }
}

async fn publish(js: &jetstream::Context, prefix: &str, r: &SnapshotRecord) {
    js.publish(format!("{prefix}.snapshots"), r.encode_to_vec().into())
        .await
        .unwrap()
        .await
        .unwrap();
}

async fn events(js: &jetstream::Context, prefix: &str) -> Vec<StoredSnapshot> {
    read_stream(js, &format!("{}_STORED", prefix.to_uppercase()))
        .await
        .iter()
        .map(|m| StoredSnapshot::decode(m.payload.as_slice()).unwrap())
        .collect()
}

async fn wait_streams(js: &jetstream::Context, prefix: &str) {
    let name = format!("{}_SNAPSHOTS", prefix.to_uppercase());
    assert!(
        eventually(Duration::from_secs(20), || async {
            js.get_stream(&name).await.is_ok()
        })
        .await
    );
}

/// Layout, idempotency and versioning, on any store.
async fn layout_and_versions(store_url: &str) {
    let nats = NatsServer::start().await;
    let prefix = unique_prefix();
    let svc = Running::start(config(&nats, &prefix, store_url));
    let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    wait_streams(&js, &prefix).await;

    let v1 = record(
        "https://news.example.com/2023/11/09/storm",
        "Storm",
        "<p>First text.</p>",
        1_000,
    );
    for _ in 0..5 {
        publish(&js, &prefix, &v1).await;
    }
    // All five are consumed, and the duplicates report what the first
    // did (`new`, version 1): their events collapse into one.
    let snaps = format!("{}_SNAPSHOTS", prefix.to_uppercase());
    assert!(
        eventually(Duration::from_secs(20), || async {
            read_stream(&js, &snaps).await.is_empty() && events(&js, &prefix).await.len() == 1
        })
        .await
    );
    let ev = events(&js, &prefix).await;
    assert_eq!(
        (ev[0].outcome, ev[0].version),
        (StoreOutcome::New as i32, 1)
    );
    // A later re-fetch with the same content is `unchanged`.
    let mut again = v1.clone();
    again.fetched_at = 1_500;
    publish(&js, &prefix, &again).await;
    assert!(
        eventually(Duration::from_secs(20), || async {
            events(&js, &prefix).await.len() == 2
        })
        .await
    );
    assert_eq!(
        events(&js, &prefix).await[1].outcome,
        StoreOutcome::Unchanged as i32
    );

    let mut v2 = record(
        "https://news.example.com/2023/11/09/storm",
        "Storm (updated)",
        "<p>Edited text.</p>",
        2_000,
    );
    v2.published_at = v1.published_at;
    publish(&js, &prefix, &v2).await;
    assert!(
        eventually(Duration::from_secs(20), || async {
            events(&js, &prefix).await.len() == 3
        })
        .await
    );
    let last = events(&js, &prefix).await.pop().unwrap();
    assert_eq!(
        (last.outcome, last.version),
        (StoreOutcome::Changed as i32, 2)
    );

    let store = crawlq_runtime::store::open(store_url).unwrap();
    let host = "news.example.com";
    let id = &v1.id;
    let keys = read::keys(&store, "").await.unwrap();
    let want = [
        format!("articles/{host}/{id}.json"),
        format!("articles/{host}/{id}.md"),
        format!("raw/{host}/{id}/1000.html.zst"),
        format!("raw/{host}/{id}/2000.html.zst"),
        format!("versions/{host}/{id}/1000-{}.md", &v1.content_sha256[..16]),
        format!("versions/{host}/{id}/2000-{}.md", &v2.content_sha256[..16]),
    ];
    for k in &want {
        assert!(keys.contains(k), "missing {k} in {keys:?}");
    }
    assert_eq!(
        keys.iter().filter(|k| k.starts_with("versions/")).count(),
        2,
        "5 deliveries + 1 edit = 2 versions"
    );

    let at = read::locate(&store, &v1.url).await.unwrap();
    assert_eq!(at.versions().len(), 2);
    assert_eq!(at.json["title"], "Storm (updated)");
    assert!(read::markdown(&store, &at, None)
        .await
        .unwrap()
        .contains("Edited text"));
    assert!(read::markdown(&store, &at, Some(1))
        .await
        .unwrap()
        .contains("First text"));
    let by_id = read::locate(&store, id).await.unwrap();
    assert_eq!(by_id.id, *id);

    // The index page lists the article once.
    assert!(
        eventually(Duration::from_secs(10), || async {
            read::markdown_key(&store, &format!("index/{host}.md"))
                .await
                .is_some_and(|md| md.lines().count() == 1)
        })
        .await
    );
    svc.stop().await;
}

#[tokio::test]
async fn local_folder_layout_idempotency_and_versions() {
    let dir = tempfile::tempdir().unwrap();
    layout_and_versions(dir.path().to_str().unwrap()).await;
}

/// Every test that reads the `AWS_*` environment runs here, in turn:
/// the environment is process-wide and tests run in parallel.
#[tokio::test]
async fn s3_suite() {
    let mut s3 = S3Server::start("archive").await;
    for (k, v) in s3.env() {
        std::env::set_var(k, v);
    }
    layout_and_versions("s3://archive/crawlq").await;
    s3_outage_is_retried_without_loss_or_duplicates(&mut s3).await;
    wrong_credentials_keep_the_service_not_ready().await;
}

/// Runs last in the suite: it changes the process-wide secret key.
async fn wrong_credentials_keep_the_service_not_ready() {
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "wrong-secret");
    let nats = NatsServer::start().await;
    let port = crawlq_testkit::free_port();
    let mut cfg = config(&nats, &unique_prefix(), "s3://archive/denied");
    cfg.common.metrics_addr = format!("127.0.0.1:{port}").parse().unwrap();
    let svc = Running::start(cfg);
    let readyz = || async move {
        let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
            return String::new();
        };
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let _ = s
            .write_all(b"GET /readyz HTTP/1.0\r\nHost: x\r\n\r\n")
            .await;
        let mut body = String::new();
        let _ = s.read_to_string(&mut body).await;
        body
    };
    assert!(
        eventually(Duration::from_secs(20), || async {
            readyz().await.contains("store: ") && !readyz().await.contains("store: ok")
        })
        .await
    );
    let body = readyz().await;
    assert!(body.starts_with("HTTP/1.0 503"), "{body}");
    assert!(
        body.to_lowercase().contains("signature")
            || body.contains("403")
            || body.to_lowercase().contains("access"),
        "{body}"
    );
    assert!(
        !svc.task.is_finished(),
        "no crash loop: the service keeps running and keeps probing"
    );
    svc.stop().await;
}

#[tokio::test]
async fn example_record_is_rendered_byte_for_byte() {
    let seed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../record/tests/fixtures/example-record.md"
    ))
    .unwrap();
    let (ts, title, url) = crawlq_record::parse_header(&seed).unwrap();
    let html = seed.splitn(5, '\n').nth(4).unwrap().trim_end_matches('\n');
    let mut r = record(&url, &title, html, 5_000);
    r.published_at = ts;
    let dir = tempfile::tempdir().unwrap();
    let store = crawlq_runtime::store::open(dir.path().to_str().unwrap()).unwrap();
    let archive = crawlq_storage::Archive::new(
        store.clone(),
        true,
        crawlq_storage::watch::Schedule::parse("off").unwrap(),
    );
    archive.write(&r, None).await.unwrap();
    let at = read::locate(&store, &url).await.unwrap();
    assert_eq!(read::markdown(&store, &at, None).await.unwrap(), seed);
}

#[tokio::test]
async fn two_replicas_share_one_index_without_losing_entries() {
    let nats = NatsServer::start().await;
    let prefix = unique_prefix();
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().to_str().unwrap().to_string();
    let a = Running::start(config(&nats, &prefix, &url));
    let b = Running::start(config(&nats, &prefix, &url));
    let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    wait_streams(&js, &prefix).await;
    for i in 0..120 {
        let mut r = record(
            &format!("https://news.example.com/a/{i}"),
            &format!("Article {i}"),
            &format!("<p>Text {i}.</p>"),
            1_000 + i,
        );
        r.published_at = 1_699_530_301_000 + i * 60_000;
        publish(&js, &prefix, &r).await;
    }
    assert!(
        eventually(Duration::from_secs(30), || async {
            events(&js, &prefix).await.len() == 120
        })
        .await
    );
    let store = crawlq_runtime::store::open(&url).unwrap();
    let index_ok = eventually(Duration::from_secs(10), || async {
        read::markdown_key(&store, "index/news.example.com.md")
            .await
            .is_some_and(|md| md.lines().count() == 120)
    })
    .await;
    assert!(
        index_ok,
        "index has {:?} lines",
        read::markdown_key(&store, "index/news.example.com.md")
            .await
            .map(|m| m.lines().count())
    );
    let md = read::markdown_key(&store, "index/news.example.com.md")
        .await
        .unwrap();
    assert!(
        md.lines().next().unwrap().contains("[Article 119]"),
        "newest first"
    );
    a.stop().await;
    b.stop().await;
}

async fn s3_outage_is_retried_without_loss_or_duplicates(s3: &mut S3Server) {
    let nats = NatsServer::start().await;
    let prefix = unique_prefix();
    let svc = Running::start(config(&nats, &prefix, "s3://archive/outage"));
    let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    wait_streams(&js, &prefix).await;
    for i in 0..10 {
        publish(
            &js,
            &prefix,
            &record(
                &format!("https://news.example.com/o/{i}"),
                "t",
                &format!("<p>before {i}</p>"),
                1,
            ),
        )
        .await;
    }
    assert!(
        eventually(Duration::from_secs(20), || async {
            events(&js, &prefix).await.len() == 10
        })
        .await
    );
    s3.stop();
    for i in 10..30 {
        publish(
            &js,
            &prefix,
            &record(
                &format!("https://news.example.com/o/{i}"),
                "t",
                &format!("<p>during {i}</p>"),
                1,
            ),
        )
        .await;
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    s3.restart().await;
    assert!(
        eventually(Duration::from_secs(60), || async {
            events(&js, &prefix).await.len() == 30
        })
        .await,
        "stored {} of 30",
        events(&js, &prefix).await.len()
    );
    let ev = events(&js, &prefix).await;
    assert!(ev.iter().all(|e| e.outcome == StoreOutcome::New as i32));
    let store = crawlq_runtime::store::open("s3://archive/outage").unwrap();
    let versions = read::keys(&store, "versions").await.unwrap();
    assert_eq!(versions.len(), 30, "one version per record, no duplicates");
    assert!(read_stream(&js, &format!("{}_DLQ", prefix.to_uppercase()))
        .await
        .is_empty());
    svc.stop().await;
}

#[tokio::test]
async fn wrong_s3_credentials_give_a_clear_error_and_not_ready() {
    let s3 = S3Server::start("archive").await;
    let store = {
        // Build the store with bad keys without touching the process env
        // other tests use.
        use object_store::aws::AmazonS3Builder;
        let inner = AmazonS3Builder::new()
            .with_endpoint(s3.endpoint())
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_bucket_name("archive")
            .with_access_key_id("wrong")
            .with_secret_access_key("wrong")
            .build()
            .unwrap();
        crawlq_runtime::store::Store::from_client(
            std::sync::Arc::new(inner),
            crawlq_runtime::store::StoreKind::S3,
            "s3://archive",
        )
    };
    let err = crawlq_storage::service::probe(&store).await.unwrap_err();
    assert!(
        err.to_lowercase().contains("access")
            || err.contains("403")
            || err.to_lowercase().contains("signature"),
        "{err}"
    );
}

/// A delivery that wrote its version and died before its stored event
/// (or whose event the server lost) is redelivered: the redelivery reports
/// what the first did, `new` or `changed` with the version it replaced,
/// and writes nothing.
#[tokio::test]
async fn a_redelivery_reports_what_its_first_delivery_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let store = crawlq_runtime::store::open(dir.path().to_str().unwrap()).unwrap();
    let archive = crawlq_storage::Archive::new(
        store,
        false,
        crawlq_storage::watch::Schedule::parse("off").unwrap(),
    );
    let url = "https://news.example/2024/01/02/story";
    let v1 = record(url, "Story", "<p>First words.</p>", 1_000);
    let v2 = record(url, "Story", "<p>Edited words.</p>", 2_000);
    let first = archive.write(&v1, None).await.unwrap();
    let again = archive.write(&v1, None).await.unwrap();
    assert_eq!(
        (again.outcome, again.version, again.keys.len()),
        (StoreOutcome::New, 1, 0),
        "{first:?}"
    );
    let edit = archive.write(&v2, None).await.unwrap();
    assert_eq!((edit.outcome, edit.version), (StoreOutcome::Changed, 2));
    let again = archive.write(&v2, None).await.unwrap();
    assert_eq!(
        (again.outcome, again.version, again.keys.len()),
        (StoreOutcome::Changed, 2, 0)
    );
    assert_eq!(
        again.previous.map(|p| p.version),
        Some(1),
        "the change log can still get its entry"
    );
    // A later fetch of the same content is unchanged, as before.
    let mut later = v2.clone();
    later.fetched_at = 3_000;
    let w = archive.write(&later, None).await.unwrap();
    assert_eq!(w.outcome, StoreOutcome::Unchanged);
}

#[tokio::test]
async fn a_version_left_by_a_crashed_attempt_is_adopted_not_duplicated() {
    // A storage process wrote the version of fetch 1 and died before
    // committing the JSON; the crawler's redelivery fetched the same
    // content again (fetch 2, another fetch time).
    let dir = tempfile::tempdir().unwrap();
    let store = crawlq_runtime::store::open(dir.path().to_str().unwrap()).unwrap();
    let url = "https://news.example/2024/01/02/story";
    let first = record(url, "Story", "<p>Same words both times.</p>", 1_000);
    let orphan = crawlq_storage::layout::version(
        &first.host,
        &first.id,
        first.fetched_at,
        &first.content_sha256,
    );
    let md = crawlq_record::render(&first);
    std::fs::create_dir_all(dir.path().join(&orphan).parent().unwrap()).unwrap();
    std::fs::write(dir.path().join(&orphan), md).unwrap();

    let archive = crawlq_storage::Archive::new(
        store.clone(),
        false,
        crawlq_storage::watch::Schedule::parse("off").unwrap(),
    );
    let second = record(url, "Story", "<p>Same words both times.</p>", 2_000);
    let w = archive.write(&second, None).await.unwrap();
    assert_eq!(w.outcome, StoreOutcome::New);
    assert_eq!(w.keys.first(), Some(&orphan), "the orphan is adopted");
    let versions = std::fs::read_dir(dir.path().join(&orphan).parent().unwrap())
        .unwrap()
        .count();
    assert_eq!(versions, 1, "one version object for one content");
    // The record points at it, and it reads back.
    let at = read::locate(&store, url).await.unwrap();
    assert!(read::markdown(&store, &at, Some(1))
        .await
        .unwrap()
        .contains("Same words both times."));
}

async fn dead_letters(js: &jetstream::Context, prefix: &str) -> Vec<crawlq_proto::v1::DeadLetter> {
    read_stream(js, &format!("{}_DLQ", prefix.to_uppercase()))
        .await
        .iter()
        .map(|m| crawlq_proto::v1::DeadLetter::decode(m.payload.as_slice()).unwrap())
        .collect()
}

/// A damaged version list or index list is never silently replaced: the
/// record is dead-lettered with a reason and the history stays as it was.
#[tokio::test]
async fn damaged_history_is_refused_and_dead_lettered_not_overwritten() {
    let nats = NatsServer::start().await;
    let prefix = unique_prefix();
    let dir = tempfile::tempdir().unwrap();
    let svc = Running::start(config(&nats, &prefix, dir.path().to_str().unwrap()));
    let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    wait_streams(&js, &prefix).await;

    let v1 = record("https://news.example.com/a", "A", "<p>One.</p>", 1_000);
    publish(&js, &prefix, &v1).await;
    assert!(
        eventually(Duration::from_secs(20), || async {
            events(&js, &prefix).await.len() == 1
        })
        .await
    );

    // 1. The article's version list is damaged by hand.
    let json_path = dir
        .path()
        .join(format!("articles/news.example.com/{}.json", v1.id));
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json_path).unwrap()).unwrap();
    doc["versions"] = serde_json::json!("garbage");
    std::fs::write(&json_path, serde_json::to_vec(&doc).unwrap()).unwrap();
    let versions_dir = dir
        .path()
        .join(format!("versions/news.example.com/{}", v1.id));
    let before = std::fs::read_dir(&versions_dir).unwrap().count();

    let v2 = record("https://news.example.com/a", "A", "<p>Two.</p>", 2_000);
    publish(&js, &prefix, &v2).await;
    assert!(
        eventually(Duration::from_secs(20), || async {
            !dead_letters(&js, &prefix).await.is_empty()
        })
        .await
    );
    let letters = dead_letters(&js, &prefix).await;
    assert_eq!(
        letters[0].reason, "damaged_archive",
        "{:?}",
        letters[0].error
    );
    assert!(
        letters[0].error.contains("refusing to overwrite"),
        "{}",
        letters[0].error
    );
    assert_eq!(
        std::fs::read_dir(&versions_dir).unwrap().count(),
        before,
        "no version written"
    );
    let kept: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json_path).unwrap()).unwrap();
    assert_eq!(
        kept["versions"], "garbage",
        "the damaged document is left for repair"
    );

    // 2. The host's index list in KV is damaged by hand.
    let kv = js.get_key_value(format!("{prefix}_index")).await.unwrap();
    kv.put("other.example.com", "{not a list".into())
        .await
        .unwrap();
    let other = record("https://other.example.com/b", "B", "<p>B.</p>", 3_000);
    publish(&js, &prefix, &other).await;
    assert!(
        eventually(Duration::from_secs(20), || async {
            dead_letters(&js, &prefix).await.len() == 2
        })
        .await
    );
    let letters = dead_letters(&js, &prefix).await;
    assert_eq!(letters[1].reason, "damaged_index", "{}", letters[1].error);
    let list = kv.get("other.example.com").await.unwrap().unwrap();
    assert_eq!(
        &list[..],
        b"{not a list",
        "the damaged list is not replaced"
    );
    svc.stop().await;
}

/// Two storage processes on one local folder (two `Archive`s here, each
/// with its own in-process locks, as two processes would have) writing
/// versions of one article at once: no version is lost, because the
/// article's JSON is changed under a `flock` of the folder.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_writers_on_one_folder_lose_no_version_of_an_article() {
    let dir = tempfile::tempdir().unwrap();
    let open = || {
        crawlq_storage::Archive::new(
            crawlq_runtime::store::open(dir.path().to_str().unwrap()).unwrap(),
            false,
            crawlq_storage::watch::Schedule::parse("off").unwrap(),
        )
    };
    let (a, b) = (open(), open());
    let url = "https://news.example/a/race";
    let mut tasks = Vec::new();
    for (n, archive) in [a, b].into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            for i in 0..15i64 {
                let at = 1_000 + i * 10 + n as i64;
                let text = format!("<p>Version {n}-{i} of the story, with its own words.</p>");
                archive
                    .write(&record(url, "Race", &text, at), None)
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let store = crawlq_runtime::store::open(dir.path().to_str().unwrap()).unwrap();
    let at = read::locate(&store, url).await.unwrap();
    assert_eq!(at.versions().len(), 30, "versions lost to a race");
}
