//! What the crawler does for the archive's watch: polls registered feeds
//! on their schedule, and re-checks archived articles when storage asks.
//!
//! Both arrive as due checks: messages the NATS server publishes to
//! `{prefix}.due` when their schedule fires (see
//! [`crawlq_runtime::schedule`]). A feed poll always schedules the next
//! one, whatever the fetch gave, so a registered feed is polled forever;
//! a revisit always reports what it saw to storage (a record through the
//! extractor, or a [`CheckObservation`]), which schedules the next check.
//! No state lives in memory: feeds are in the `feeds` bucket, schedules in
//! the schedules stream, article history in the archive.

use std::time::Duration;

use async_nats::jetstream::kv;
use bytes::Bytes;
use crawlq_proto::v1::{CheckObservation, CheckOutcome, CrawlRequest, Origin, UrlKind};
use crawlq_runtime::http::Readiness;
use crawlq_runtime::{schedule, Outgoing, Runtime, Topology};
use serde::{Deserialize, Serialize};

use crate::error::CrawlError;
use crate::handler::{CrawlHandler, Crawled};
use crate::metrics as m;

/// Purpose of the bucket holding registered feeds (`{prefix}_feeds`).
pub const FEEDS_BUCKET: &str = "feeds";
/// Gate check of the due consumer: the intake has no backlog.
pub const CHECK_INTAKE: &str = "intake_idle";

/// A registered feed or sitemap, polled every `every_ms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedEntry {
    /// Normalised URL.
    pub url: String,
    /// `feed` or `sitemap`.
    pub kind: String,
    /// Poll interval, ms.
    pub every_ms: u64,
    /// When it was registered, Unix ms.
    pub added_at: i64,
    /// When it was last polled.
    #[serde(default)]
    pub last_poll_at: Option<i64>,
    /// What the last poll gave: `fetched`, `not_modified` or `failed: …`.
    #[serde(default)]
    pub last_outcome: String,
    /// When the next poll is scheduled.
    #[serde(default)]
    pub next_poll_at: Option<i64>,
    /// Registered from the feeds file (`CRAWLQ_FEEDS_FILE`): the file owns
    /// it, and a feed taken out of the file is removed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub from_file: bool,
}

impl FeedEntry {
    /// A feed registered at `now`, its first poll due at once.
    pub fn new(url: String, kind: &str, every_ms: u64, now: i64, from_file: bool) -> Self {
        Self {
            url,
            kind: kind.into(),
            every_ms,
            added_at: now,
            last_poll_at: None,
            last_outcome: String::new(),
            next_poll_at: Some(now),
            from_file,
        }
    }

    /// The URL kind a poll requests.
    pub fn url_kind(&self) -> UrlKind {
        if self.kind == "sitemap" {
            UrlKind::Sitemap
        } else {
            UrlKind::Feed
        }
    }
}

/// One line of a feeds file: `URL [INTERVAL] [sitemap]`, `#` comments.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedLine {
    /// The URL as written.
    pub url: String,
    /// Poll interval.
    pub every: Duration,
    /// It is a sitemap.
    pub sitemap: bool,
}

/// Parses a feeds file; the error names the line.
pub fn parse_feeds_file(text: &str, default_every: Duration) -> Result<Vec<FeedLine>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        let url = words.next().unwrap_or_default().to_string();
        let mut feed = FeedLine {
            url,
            every: default_every,
            sitemap: false,
        };
        for w in words {
            if w.eq_ignore_ascii_case("sitemap") {
                feed.sitemap = true;
            } else {
                feed.every = crawlq_runtime::config::parse_duration(w)
                    .map_err(|e| format!("line {}: {e}", n + 1))?;
                if feed.every < Duration::from_secs(1) {
                    return Err(format!("line {}: the interval must be at least 1s", n + 1));
                }
            }
        }
        out.push(feed);
    }
    Ok(out)
}

/// What [`sync_feeds`] did.
#[derive(Debug, Default, PartialEq)]
pub struct Synced {
    /// Feeds registered.
    pub added: Vec<String>,
    /// Feeds whose interval or kind changed.
    pub updated: Vec<String>,
    /// Feeds taken out of the file and so removed.
    pub removed: Vec<String>,
}

/// Makes the registry hold exactly the feeds of a feeds file (feeds added
/// by hand, with `crawlq feeds add`, are left alone). Safe to run from
/// every crawler replica at once: registrations are compare-and-set, so
/// each new feed gets one first poll.
pub async fn sync_feeds(
    js: &async_nats::jetstream::Context,
    topology: &Topology,
    bucket: &kv::Store,
    lines: &[FeedLine],
    strip: &[String],
) -> Result<Synced, String> {
    use futures::StreamExt;
    let now = crawlq_runtime::now_ms();
    let mut done = Synced::default();
    let mut wanted = std::collections::BTreeSet::new();
    let mut schedules = Vec::new();
    for line in lines {
        let url = crate::normalize::normalize(&line.url, strip)
            .map_err(|e| format!("feeds file: {e}"))?
            .to_string();
        let id = feed_id(&url);
        wanted.insert(id.clone());
        let kind = if line.sitemap { "sitemap" } else { "feed" };
        let every_ms = line.every.as_millis() as u64;
        let current = bucket.entry(&id).await.map_err(|e| e.to_string())?;
        let old = current
            .as_ref()
            .filter(|e| e.operation == kv::Operation::Put)
            .and_then(|e| serde_json::from_slice::<FeedEntry>(&e.value).ok());
        match old {
            Some(old) if old.every_ms == every_ms && old.kind == kind && old.from_file => {}
            Some(old) => {
                let entry = FeedEntry {
                    every_ms,
                    kind: kind.into(),
                    from_file: true,
                    ..old
                };
                let value = Bytes::from(serde_json::to_vec(&entry).expect("feed entry serialises"));
                let revision = current.map_or(0, |e| e.revision);
                if bucket.update(&id, value, revision).await.is_ok() {
                    done.updated.push(url);
                }
            }
            None => {
                let entry = FeedEntry::new(url.clone(), kind, every_ms, now, true);
                let value = Bytes::from(serde_json::to_vec(&entry).expect("feed entry serialises"));
                let created = match current {
                    Some(deleted) => bucket.update(&id, value, deleted.revision).await.is_ok(),
                    None => bucket.create(&id, value).await.is_ok(),
                };
                // Another replica registered it first: its first poll is scheduled.
                if created {
                    schedules.push(schedule_poll(topology, &entry, now));
                    done.added.push(url);
                }
            }
        }
    }
    let mut keys = bucket.keys().await.map_err(|e| e.to_string())?;
    let mut stale = Vec::new();
    while let Some(key) = keys.next().await {
        let key = key.map_err(|e| e.to_string())?;
        if wanted.contains(&key) {
            continue;
        }
        if let Ok(Some(value)) = bucket.get(&key).await {
            if let Ok(entry) = serde_json::from_slice::<FeedEntry>(&value) {
                if entry.from_file {
                    stale.push((key, entry.url));
                }
            }
        }
    }
    for (key, url) in stale {
        remove_feed(js, topology, bucket, &key).await?;
        done.removed.push(url);
    }
    crawlq_runtime::worker::publish_all(js, schedules).await?;
    Ok(done)
}

/// Unregisters a feed and drops its pending schedule (a poll already due
/// finds it gone).
pub async fn remove_feed(
    js: &async_nats::jetstream::Context,
    topology: &Topology,
    bucket: &kv::Store,
    id: &str,
) -> Result<(), String> {
    bucket.purge(id).await.map_err(|e| e.to_string())?;
    let stream = js
        .get_stream(topology.schedules_stream())
        .await
        .map_err(|e| e.to_string())?;
    stream
        .purge()
        .filter(topology.feed_schedule(id))
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Key of a feed in the bucket: 16 hex digits of its URL's SHA-256.
pub fn feed_id(url: &str) -> String {
    crawlq_record::record_id(url)
}

/// The schedule of `entry`'s poll at `at_ms`, replacing any earlier one.
pub fn schedule_poll(topology: &Topology, entry: &FeedEntry, at_ms: i64) -> Outgoing {
    let id = feed_id(&entry.url);
    let req = CrawlRequest {
        url: entry.url.clone(),
        request_id: crawlq_record::record_id(&format!("poll:{id}:{at_ms}")),
        submitted_at: at_ms,
        max_depth: 1,
        kind: entry.url_kind() as i32,
        origin: Origin::FeedPoll as i32,
        ..Default::default()
    };
    let msg = Outgoing::protobuf(topology.due(), &req);
    schedule::at(msg, topology.feed_schedule(&id), topology.due(), at_ms)
}

impl CrawlHandler {
    /// A scheduled poll of a registered feed: fetch it (conditionally; the
    /// extractor expands new items), record the outcome in the registry
    /// and schedule the next poll. A feed removed meanwhile is dropped.
    pub(crate) async fn poll_feed(
        &self,
        mut req: CrawlRequest,
    ) -> Result<Vec<Outgoing>, CrawlError> {
        let id = feed_id(&req.url);
        let Some((mut entry, revision)) = self.feed_entry(&id).await? else {
            tracing::info!(url = %req.url, "feed no longer registered; poll dropped");
            return Ok(Vec::new());
        };
        let result = self.crawl(&mut req).await;
        let (outcome, mut out) = match result {
            Err(e @ (CrawlError::Deferred(_) | CrawlError::Infra { .. })) => return Err(e),
            Ok(Crawled::NotModified(u, x)) => (
                "not_modified".to_string(),
                self.publish(&req, Crawled::NotModified(u, x)),
            ),
            Ok(crawled) => ("fetched".to_string(), self.publish(&req, crawled)),
            Err(e) => {
                tracing::warn!(url = %req.url, error = %e, "feed poll failed; polling again at the next interval");
                (format!("failed: {e}"), Vec::new())
            }
        };
        let label = outcome.split(':').next().unwrap_or("failed").to_string();
        metrics::counter!(m::FEED_POLLS, "outcome" => label).increment(1);
        let now = crawlq_runtime::now_ms();
        let next = now + entry.every_ms as i64;
        entry.last_poll_at = Some(now);
        entry.last_outcome = outcome;
        entry.next_poll_at = Some(next);
        let value = Bytes::from(serde_json::to_vec(&entry).expect("feed entry serialises"));
        // Compare-and-set: a `feeds remove` meanwhile wins, and the feed is
        // not brought back by this poll.
        if self.feeds.update(&id, value, revision).await.is_err() {
            match self.feed_entry(&id).await? {
                None => return Ok(out),
                Some(_) => {
                    return Err(CrawlError::Conflict(format!(
                        "feed {id} changed during its poll; polling again"
                    )))
                }
            }
        }
        out.push(schedule_poll(&self.topology, &entry, next));
        Ok(out)
    }

    async fn feed_entry(&self, id: &str) -> Result<Option<(FeedEntry, u64)>, CrawlError> {
        let entry = self
            .feeds
            .entry(id)
            .await
            .map_err(|e| CrawlError::infra("feeds bucket", e))?;
        Ok(entry
            .filter(|e| e.operation == kv::Operation::Put)
            .and_then(|e| Some((serde_json::from_slice(&e.value).ok()?, e.revision))))
    }

    /// A scheduled re-check of an archived article. A page is handed on to
    /// the extractor as any fetch; everything else becomes an observation
    /// for storage. Only 404, 410, 451 and a redirect to the home page are
    /// evidence of removal: timeouts, 5xx and connection errors never are.
    pub(crate) async fn revisit(&self, mut req: CrawlRequest) -> Result<Vec<Outgoing>, CrawlError> {
        let target = req.revisit.clone().unwrap_or_default();
        if target.record_id.is_empty() || target.host.is_empty() {
            return Err(CrawlError::BadMessage("revisit without its article".into()));
        }
        let requested = req.url.clone();
        let request_id = req.request_id.clone();
        let seen = |outcome: CheckOutcome, status: u16, final_url: String, detail: String| {
            metrics::counter!(m::REVISIT_FETCHES, "outcome" => crawlq_record::labels::Label::label(outcome)).increment(1);
            CheckObservation {
                record_id: target.record_id.clone(),
                host: target.host.clone(),
                url: requested.clone(),
                checked_at: crawlq_runtime::now_ms(),
                status: u32::from(status),
                final_url,
                outcome: outcome as i32,
                detail,
                request_id: request_id.clone(),
                exchange: None,
            }
        };
        let one = |obs: CheckObservation| vec![Outgoing::check(&self.topology, &obs)];
        match self.crawl(&mut req).await {
            Ok(Crawled::Page(page)) => {
                if redirected_home(&req.url, &page.final_url) {
                    let status = page.status as u16;
                    return Ok(one(seen(
                        CheckOutcome::Gone,
                        status,
                        page.final_url.clone(),
                        "redirected to the home page".into(),
                    )));
                }
                Ok(self.publish(&req, Crawled::Page(page)))
            }
            Ok(Crawled::NotModified(u, x)) => {
                let mut obs = seen(CheckOutcome::NotModified, 304, u.to_string(), String::new());
                obs.exchange = Some(*x);
                Ok(one(obs))
            }
            Ok(Crawled::Gone(status, u, x)) => {
                let mut obs = seen(
                    CheckOutcome::Gone,
                    status,
                    u.to_string(),
                    format!("http {status}"),
                );
                obs.exchange = Some(*x);
                Ok(one(obs))
            }
            Ok(Crawled::Skipped) => Ok(one(seen(
                CheckOutcome::Error,
                0,
                String::new(),
                "skipped".into(),
            ))),
            Err(e @ (CrawlError::Deferred(_) | CrawlError::Infra { .. })) => Err(e),
            Err(e) if e.is_gone() => Ok(one(seen(
                CheckOutcome::Gone,
                e.status(),
                requested.clone(),
                e.to_string(),
            ))),
            Err(e) => Ok(one(seen(
                CheckOutcome::Error,
                e.status(),
                String::new(),
                format!("{}: {e}", crawlq_runtime::Classify::reason(&e)),
            ))),
        }
    }
}

/// Did a request for an article end on the site's home page?
pub fn redirected_home(requested: &str, final_url: &str) -> bool {
    let (Ok(a), Ok(b)) = (url::Url::parse(requested), url::Url::parse(final_url)) else {
        return false;
    };
    a != b && a.path() != "/" && b.path() == "/" && b.query().is_none()
}

/// Samples the schedules: closes the due gate while the intake has a
/// backlog (fresh URLs go first), and exports how many checks are
/// scheduled and how late the oldest due one is.
pub fn watch_schedules(rt: &Runtime, gate: Readiness) {
    let js = rt.js.clone();
    let topology = rt.topology.clone();
    crawlq_runtime::service::every(Duration::from_secs(1), rt.stop.clone(), move || {
        let (js, topology, gate) = (js.clone(), topology.clone(), gate.clone());
        async move {
            match intake_backlog(&js, &topology).await {
                Ok(0) => gate.set_ok(CHECK_INTAKE),
                Ok(n) => gate.set_failed(CHECK_INTAKE, format!("{n} fresh URLs waiting")),
                // Unknown: let due checks flow rather than starve.
                Err(e) => {
                    tracing::debug!(error = %e, "intake backlog unknown");
                    gate.set_ok(CHECK_INTAKE);
                }
            }
            if let Err(e) = sample_schedules(&js, &topology).await {
                tracing::debug!(error = %e, "schedule sample failed");
            }
        }
    });
}

async fn intake_backlog(js: &async_nats::jetstream::Context, t: &Topology) -> Result<u64, String> {
    let stream = js
        .get_stream(t.urls_stream())
        .await
        .map_err(|e| e.to_string())?;
    let mut consumer: async_nats::jetstream::consumer::PullConsumer = stream
        .get_consumer(&t.consumer(crawlq_runtime::Stage::Crawler))
        .await
        .map_err(|e| e.to_string())?;
    let info = consumer.info().await.map_err(|e| e.to_string())?;
    Ok(info.num_pending)
}

async fn sample_schedules(js: &async_nats::jetstream::Context, t: &Topology) -> Result<(), String> {
    let mut stream = js
        .get_stream(t.schedules_stream())
        .await
        .map_err(|e| e.to_string())?;
    let messages = stream
        .info()
        .await
        .map_err(|e| e.to_string())?
        .state
        .messages;
    let mut due_consumer: async_nats::jetstream::consumer::PullConsumer = stream
        .get_consumer(&t.due_consumer())
        .await
        .map_err(|e| e.to_string())?;
    let due = due_consumer.info().await.map_err(|e| e.to_string())?;
    let waiting = due.num_pending + due.num_ack_pending as u64;
    metrics::gauge!(m::CHECKS_SCHEDULED).set(messages.saturating_sub(waiting) as f64);
    metrics::gauge!(m::CHECKS_DUE).set(waiting as f64);
    // In a work-queue stream, the first message left on `due` is the
    // oldest due check not yet done; its age is how far behind checks are.
    let overdue = match stream.get_first_raw_message_by_subject(t.due(), 0).await {
        Ok(msg) => {
            let at = msg.time.unix_timestamp_nanos() / 1_000_000;
            ((crawlq_runtime::now_ms() as i128 - at).max(0) as f64) / 1000.0
        }
        Err(_) => 0.0,
    };
    metrics::gauge!(m::CHECKS_OVERDUE).set(overdue);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feeds_files_give_intervals_and_kinds() {
        let text = "# our feeds\nhttps://a.com/rss\nhttps://a.com/sitemap.xml 6h sitemap  # big\n\nhttps://b.com/atom 30m\n";
        let lines = parse_feeds_file(text, Duration::from_secs(3600)).unwrap();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].every, Duration::from_secs(3600));
        assert!(lines[1].sitemap && lines[1].every == Duration::from_secs(6 * 3600));
        assert_eq!(lines[2].every, Duration::from_secs(1800));
        let err =
            parse_feeds_file("https://a.com/rss often\n", Duration::from_secs(1)).unwrap_err();
        assert!(err.starts_with("line 1:"), "{err}");
    }

    #[test]
    fn home_page_redirects_are_recognised() {
        assert!(redirected_home("https://a.com/news/1", "https://a.com/"));
        assert!(!redirected_home(
            "https://a.com/news/1",
            "https://a.com/news/2"
        ));
        assert!(!redirected_home("https://a.com/", "https://a.com/"));
        assert!(!redirected_home(
            "https://a.com/news/1",
            "https://a.com/?from=1"
        ));
    }

    #[test]
    fn polls_are_scheduled_on_one_subject_per_feed() {
        let t = Topology::new("p");
        let entry = FeedEntry {
            url: "https://a.com/rss".into(),
            kind: "feed".into(),
            every_ms: 1000,
            added_at: 0,
            last_poll_at: None,
            last_outcome: String::new(),
            next_poll_at: None,
            from_file: false,
        };
        let a = schedule_poll(&t, &entry, 1_000);
        let b = schedule_poll(&t, &entry, 2_000);
        assert_eq!(a.subject, b.subject);
        assert_eq!(
            a.subject,
            format!("p.schedule.feed.{}", feed_id("https://a.com/rss"))
        );
        let req = <CrawlRequest as crawlq_proto::Message>::decode(a.payload.clone()).unwrap();
        assert_eq!(req.origin(), Origin::FeedPoll);
        assert_eq!(req.kind(), UrlKind::Feed);
        assert_ne!(
            req.request_id,
            <CrawlRequest as crawlq_proto::Message>::decode(b.payload)
                .unwrap()
                .request_id
        );
    }
}
