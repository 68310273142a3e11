//! `crawlq submit`: publish URLs, feeds and sitemaps to the intake
//! subject, and optionally wait until the pipeline has handled them.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use async_nats::jetstream;
use clap::Args;
use crawlq_crawler::normalize::{default_strip, normalize};
use crawlq_proto::v1::{CrawlRequest, Origin, UrlKind};
use crawlq_runtime::config::{parse_duration, NatsArgs};
use crawlq_runtime::{Outgoing, Topology};

use crate::cmd::progress::{Progress, Tally};

/// `crawlq submit`.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    #[command(flatten)]
    nats: NatsArgs,
    /// Page URLs (the content type decides if one is a feed or sitemap).
    urls: Vec<String>,
    /// An RSS, Atom or JSON feed URL.
    #[arg(long = "feed")]
    feeds: Vec<String>,
    /// A sitemap or sitemap index URL.
    #[arg(long = "sitemap")]
    sitemaps: Vec<String>,
    /// A file with one URL per line (`-` reads standard input).
    #[arg(short = 'f', long = "file")]
    files: Vec<PathBuf>,
    /// A file with one feed URL per line (`#` starts a comment), such as
    /// the list the Kubernetes CronJob polls every hour.
    #[arg(long = "feeds-file")]
    feed_files: Vec<PathBuf>,
    /// Fetch even if fetched within the duplicate window.
    #[arg(long)]
    force: bool,
    /// Link depth to follow from these URLs (feeds and listings: 1).
    #[arg(long = "max-depth", default_value_t = 1)]
    max_depth: u32,
    /// Wait until everything submitted is stored or dead-lettered.
    #[arg(long)]
    wait: bool,
    /// Give up waiting after this long.
    #[arg(long = "timeout", default_value = "30m", value_parser = parse_duration)]
    timeout: Duration,
}

/// Runs `submit`.
pub async fn submit(args: SubmitArgs) -> anyhow::Result<()> {
    let mut wanted: Vec<(String, UrlKind)> = Vec::new();
    for u in &args.urls {
        if u == "-" {
            read_lines(std::io::stdin().lock(), UrlKind::Auto, &mut wanted)?;
        } else {
            wanted.push((u.clone(), UrlKind::Auto));
        }
    }
    wanted.extend(args.feeds.iter().map(|u| (u.clone(), UrlKind::Feed)));
    wanted.extend(args.sitemaps.iter().map(|u| (u.clone(), UrlKind::Sitemap)));
    let files = args.files.iter().map(|f| (f, UrlKind::Auto));
    for (f, kind) in files.chain(args.feed_files.iter().map(|f| (f, UrlKind::Feed))) {
        if f.as_os_str() == "-" {
            read_lines(std::io::stdin().lock(), kind, &mut wanted)?;
        } else {
            let file =
                std::fs::File::open(f).with_context(|| format!("reading {}", f.display()))?;
            read_lines(std::io::BufReader::new(file), kind, &mut wanted)?;
        }
    }
    if wanted.is_empty() {
        anyhow::bail!(
            "nothing to submit: give URLs, --feed, --sitemap, -f FILE or --feeds-file FILE"
        );
    }

    let client = crawlq_runtime::nats::connect_command(&args.nats, "crawlq-submit").await?;
    let js = jetstream::new(client);
    let topo = Topology::new(args.nats.subject_prefix.clone());
    // The services create the streams; a just-started stack gets a moment.
    crawlq_runtime::nats::require_streams(&js, &topo, &args.nats.url, Duration::from_secs(10))
        .await?;
    // This run's id: every message its URLs lead to carries it, so
    // `--wait` counts this run's work and no one else's.
    let submission = format!("{:016x}", rand_id("submission", crawlq_runtime::now_ms()));
    let start = Tally::mark(&js, &topo).await?;
    let mut pages = std::collections::BTreeSet::new();
    let mut only_pages = true;

    let mut rejected = 0usize;
    let now = crawlq_runtime::now_ms();
    let mut outgoing = Vec::new();
    let mut urls = Vec::new();
    let mut ids = Vec::new();
    for (raw, kind) in wanted {
        match check(&raw) {
            Ok(url) => {
                let req = CrawlRequest {
                    request_id: format!("{:x}", rand_id(&url, now)),
                    url,
                    submitted_at: now,
                    max_depth: args.max_depth,
                    kind: kind as i32,
                    origin: Origin::User as i32,
                    force: args.force,
                    ..Default::default()
                };
                // Resubmitting the same URL within the stream's duplicate window is dropped.
                let msg_id = if args.force {
                    format!("submit:{}", req.request_id)
                } else {
                    format!("submit:{}", req.url)
                };
                urls.push(req.url.clone());
                if matches!(kind, UrlKind::Auto | UrlKind::Page) {
                    pages.insert(req.request_id.clone());
                } else {
                    only_pages = false;
                }
                ids.push(req.request_id.clone());
                outgoing.push(
                    Outgoing::protobuf(topo.urls(), &req)
                        .with_msg_id(msg_id)
                        .with_request_id(&req.request_id)
                        .with_submission(&submission),
                );
            }
            Err(why) => {
                eprintln!("rejected {raw}: {why}");
                rejected += 1;
            }
        }
    }
    let duplicates = crawlq_runtime::worker::publish_each(&js, outgoing)
        .await
        .map_err(|e| {
            if crawlq_runtime::nats::is_stream_full(&e) {
                anyhow::anyhow!(
                    "the intake stream {} is full (CRAWLQ_STREAM_MAX_BYTES): the crawlers are behind. \
                     Nothing queued was dropped; submit the rest again later, or raise the limit ({e})",
                    topo.urls_stream()
                )
            } else {
                anyhow::anyhow!("intake publish not acknowledged: {e}")
            }
        })?;
    // The stream drops a URL submitted again within its duplicate window:
    // say so instead of reporting it accepted.
    let mut skipped = 0usize;
    for ((url, id), dup) in urls.iter().zip(&ids).zip(&duplicates) {
        if *dup {
            pages.remove(id);
            eprintln!(
                "skipped {url}: submitted within the last {:?} already; --force submits it again",
                crawlq_runtime::nats::DUPLICATE_WINDOW
            );
            skipped += 1;
        }
    }
    let accepted = duplicates.len() - skipped;
    println!("accepted {accepted}, skipped {skipped}, rejected {rejected}");
    if args.wait && accepted > 0 {
        let started = Instant::now();
        let tally = start.only(&submission, pages, only_pages);
        let waited = wait_idle(&js, &topo, tally, args.timeout).await?;
        print!("{}", waited.tally.summary(started.elapsed()));
        if waited.timed_out {
            anyhow::bail!(
                "timed out after {:?}: {} of the submitted pages have not ended yet",
                args.timeout,
                waited.tally.pending()
            );
        }
    }
    // Any refused input fails the command, after everything valid went in.
    if rejected > 0 {
        anyhow::bail!("{rejected} of the inputs rejected");
    }
    Ok(())
}

fn read_lines(
    r: impl BufRead,
    kind: UrlKind,
    out: &mut Vec<(String, UrlKind)>,
) -> anyhow::Result<()> {
    for line in r.lines() {
        let line = line?;
        let t = line.trim();
        if !t.is_empty() && !t.starts_with('#') {
            out.push((t.to_string(), kind));
        }
    }
    Ok(())
}

/// Normalises a URL exactly as the crawler will (tracking parameters
/// stripped, credentials and overlong URLs refused), so that what is
/// rejected is rejected here, where the user sees it.
fn check(raw: &str) -> Result<String, String> {
    let strip = default_strip();
    normalize(raw, &strip)
        .map(|u| u.to_string())
        .map_err(|e| e.to_string())
}

fn rand_id(url: &str, now: i64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write(url.as_bytes());
    h.write_i64(now);
    h.finish()
}

/// How waiting ended.
pub struct Waited {
    /// What the pipeline did.
    pub tally: Tally,
    /// `--timeout` ran out first.
    pub timed_out: bool,
}

/// Polls until every stage's consumer is idle for a few polls in a row.
/// A lost connection (nats-server restarting) is waited out, not fatal:
/// the client reconnects and counting goes on where it stopped.
pub async fn wait_idle(
    js: &jetstream::Context,
    topo: &Topology,
    mut tally: Tally,
    timeout: Duration,
) -> anyhow::Result<Waited> {
    let started = Instant::now();
    let mut progress = Progress::new(std::io::stderr().is_terminal());
    let mut idle_polls = 0;
    let mut disconnected = false;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let busy = match tally.update().await {
            Ok(()) => crate::cmd::status::in_flight(js, topo).await,
            Err(e) => Err(e),
        };
        match busy {
            Ok(busy) => {
                if disconnected {
                    eprintln!("NATS is back; still waiting");
                    disconnected = false;
                }
                progress.show(&tally, busy, started.elapsed());
                idle_polls = if busy == 0 { idle_polls + 1 } else { 0 };
            }
            Err(e) => {
                if !disconnected {
                    eprintln!("lost NATS ({e:#}); waiting for it to come back");
                    disconnected = true;
                }
                idle_polls = 0;
            }
        }
        // Every submitted page has an outcome, or (with feeds and
        // sitemaps, whose expansion has no known size) nothing has been in
        // flight anywhere for 2 s.
        if tally.all_ended() || idle_polls >= 4 {
            progress.finish();
            return Ok(Waited {
                tally,
                timed_out: false,
            });
        }
        if started.elapsed() > timeout {
            progress.finish();
            eprintln!("gave up waiting after {timeout:?}");
            return Ok(Waited {
                tally,
                timed_out: true,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_as_the_crawler_checks_them() {
        assert_eq!(
            check("https://Example.com/a?utm_source=x&id=1#top").unwrap(),
            "https://example.com/a?id=1"
        );
        assert!(check("https://user:pw@example.com/").is_err());
        let long = format!("https://example.com/{}", "a".repeat(9000));
        assert!(check(&long).unwrap_err().contains("limit"));
        assert!(check("ftp://example.com/").is_err());
    }

    #[test]
    fn feeds_files_skip_blanks_and_comments_and_keep_their_kind() {
        let text = "# hourly feeds\nhttps://www.rfi.fr/cn/rss\n\n  https://www.bbc.com/zhongwen/simp/index.xml  \n";
        let mut out = Vec::new();
        read_lines(text.as_bytes(), UrlKind::Feed, &mut out).unwrap();
        assert_eq!(
            out,
            vec![
                ("https://www.rfi.fr/cn/rss".to_string(), UrlKind::Feed),
                (
                    "https://www.bbc.com/zhongwen/simp/index.xml".to_string(),
                    UrlKind::Feed
                ),
            ]
        );
    }
}
