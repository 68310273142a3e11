//! Counting what the pipeline did since a starting point, and showing it:
//! a progress bar on a terminal, plain lines otherwise.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use async_nats::jetstream;
use crawlq_proto::v1::{DeadLetter, StoreOutcome, StoredSnapshot};
use crawlq_proto::Message as _;
use crawlq_runtime::nats::StreamReader;
use crawlq_runtime::Topology;
use indicatif::{ProgressBar, ProgressStyle};

/// Outcomes since a point in the stored and dead-letter streams.
#[derive(Default)]
pub struct Tally {
    stored: Option<StreamReader>,
    dlq: Option<StreamReader>,
    /// Best outcome per URL (new > changed > unchanged > not modified).
    by_url: BTreeMap<String, i32>,
    /// Dead letters per URL: reason.
    dead: BTreeMap<String, String>,
    /// What the watch found per URL: edits, removals, restorations, and
    /// checks that failed or could not be made.
    watch: BTreeMap<String, BTreeSet<i32>>,
    /// URLs not fetched, and why.
    skipped: BTreeMap<String, String>,
    /// Count only messages of this `crawlq submit` run
    /// ([`crawlq_runtime::SUBMISSION_HEADER`]).
    submission: Option<String>,
    /// Request ids of submitted pages that have not ended yet.
    pending: BTreeSet<String>,
    /// Every submitted input is a page whose end `pending` tracks (no
    /// feed or sitemap, whose expansion has no known size).
    tracks_all: bool,
}

fn rank(outcome: i32) -> u8 {
    match StoreOutcome::try_from(outcome).unwrap_or(StoreOutcome::Unspecified) {
        StoreOutcome::New => 4,
        StoreOutcome::Changed => 3,
        StoreOutcome::Unchanged => 2,
        StoreOutcome::NotModified => 1,
        _ => 0,
    }
}

impl Tally {
    /// Starts counting after the streams' current last messages.
    pub async fn mark(js: &jetstream::Context, topo: &Topology) -> anyhow::Result<Tally> {
        Ok(Tally {
            stored: Some(StreamReader::from_end(js, &topo.stored_stream()).await?),
            dlq: Some(StreamReader::from_end(js, &topo.dlq_stream()).await?),
            ..Tally::default()
        })
    }

    /// Counts only the work of submission `id` from now on; the pages
    /// submitted under `pages` (request ids) end when each has an outcome.
    /// `tracks_all`: nothing else was submitted (no feed, no sitemap).
    pub fn only(mut self, id: &str, pages: BTreeSet<String>, tracks_all: bool) -> Tally {
        self.submission = Some(id.to_string());
        self.pending = pages;
        self.tracks_all = tracks_all;
        self
    }

    /// Every submitted page has ended (stored, not modified, skipped or
    /// dead-lettered) and nothing else was submitted.
    pub fn all_ended(&self) -> bool {
        self.tracks_all && self.pending.is_empty()
    }

    /// Submitted pages that have not ended.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Is a message whose submission header is `header` this run's?
    fn ours(&self, header: Option<&str>) -> bool {
        self.submission
            .as_deref()
            .is_none_or(|id| header == Some(id))
    }

    /// Reads the messages that arrived since the last update.
    pub async fn update(&mut self) -> anyhow::Result<()> {
        let stored = match &mut self.stored {
            Some(r) => r.read_new().await?,
            None => Vec::new(),
        };
        for m in stored {
            let header = m.headers.get(crawlq_runtime::SUBMISSION_HEADER);
            if !self.ours(header.map(|v| v.as_str())) {
                continue;
            }
            if let Ok(ev) = StoredSnapshot::decode(m.payload) {
                self.pending.remove(&ev.request_id);
                self.add(ev);
            }
        }
        let dead = match &mut self.dlq {
            Some(r) => r.read_new().await?,
            None => Vec::new(),
        };
        for m in dead {
            let Ok(d) = DeadLetter::decode(m.payload) else {
                continue;
            };
            let header = d.headers.get(crawlq_runtime::SUBMISSION_HEADER);
            if !self.ours(header.map(String::as_str)) {
                continue;
            }
            self.pending.remove(&d.request_id);
            let key = if d.url.is_empty() {
                format!("#{}", m.seq)
            } else {
                d.url
            };
            self.dead.insert(key, d.reason);
        }
        Ok(())
    }

    fn add(&mut self, ev: StoredSnapshot) {
        use StoreOutcome::*;
        let outcome = StoreOutcome::try_from(ev.outcome).unwrap_or(Unspecified);
        if outcome == Skipped {
            self.skipped.insert(ev.url, ev.detail);
            return;
        }
        if matches!(
            outcome,
            Changed | Removed | Restored | CheckFailed | CheckError
        ) {
            self.watch
                .entry(ev.url.clone())
                .or_default()
                .insert(ev.outcome);
        }
        if rank(ev.outcome) > 0 {
            let entry = self.by_url.entry(ev.url).or_insert(ev.outcome);
            if rank(ev.outcome) > rank(*entry) {
                *entry = ev.outcome;
            }
        }
    }

    /// URLs the watch found `o` for (an edit, a removal...).
    pub fn watched(&self, o: StoreOutcome) -> usize {
        self.watch
            .values()
            .filter(|v| v.contains(&(o as i32)))
            .count()
    }

    /// URLs whose best outcome is `o`.
    pub fn count(&self, o: StoreOutcome) -> usize {
        self.by_url.values().filter(|v| **v == o as i32).count()
    }

    /// Dead letters by reason.
    pub fn dead_by_reason(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for r in self.dead.values() {
            *out.entry(r.clone()).or_insert(0) += 1;
        }
        out
    }

    /// The final summary.
    pub fn summary(&self, took: Duration) -> String {
        let mut s = String::new();
        s.push_str("summary\n");
        s.push_str(&format!(
            "  stored:         {} (new {}, changed {}, unchanged {})\n",
            self.count(StoreOutcome::New)
                + self.count(StoreOutcome::Changed)
                + self.count(StoreOutcome::Unchanged),
            self.count(StoreOutcome::New),
            self.count(StoreOutcome::Changed),
            self.count(StoreOutcome::Unchanged)
        ));
        s.push_str(&format!(
            "  not modified:   {}\n",
            self.count(StoreOutcome::NotModified)
        ));
        if !self.watch.is_empty() {
            s.push_str(&format!(
                "  watch:          changed {}, removed {}, restored {} (failed checks {}, checks not made {})\n",
                self.watched(StoreOutcome::Changed),
                self.watched(StoreOutcome::Removed),
                self.watched(StoreOutcome::Restored),
                self.watched(StoreOutcome::CheckFailed),
                self.watched(StoreOutcome::CheckError),
            ));
        }
        if !self.skipped.is_empty() {
            let mut why: BTreeMap<&str, usize> = BTreeMap::new();
            for d in self.skipped.values() {
                *why.entry(d.as_str()).or_default() += 1;
            }
            s.push_str(&format!("  skipped:        {}\n", self.skipped.len()));
            for (d, n) in why {
                s.push_str(&format!("    {n}: {d}\n"));
            }
        }
        s.push_str(&format!("  dead-lettered:  {}\n", self.dead.len()));
        for (reason, n) in self.dead_by_reason() {
            s.push_str(&format!("    {reason}: {n}\n"));
        }
        s.push_str(&format!("  time taken:     {:.1} s\n", took.as_secs_f64()));
        s
    }

    fn line(&self, busy: u64) -> String {
        let stored = self.count(StoreOutcome::New)
            + self.count(StoreOutcome::Changed)
            + self.count(StoreOutcome::Unchanged);
        format!(
            "stored {stored} · not modified {} · dead-lettered {} · in flight {busy}",
            self.count(StoreOutcome::NotModified),
            self.dead.len()
        )
    }
}

/// Progress display.
pub struct Progress {
    bar: Option<ProgressBar>,
    last: String,
}

impl Progress {
    /// A spinner on a terminal, plain lines otherwise.
    pub fn new(tty: bool) -> Progress {
        let bar = tty.then(|| {
            let b = ProgressBar::new_spinner();
            b.set_style(
                ProgressStyle::with_template("{spinner} {elapsed} {msg}").expect("static template"),
            );
            b.enable_steady_tick(Duration::from_millis(120));
            b
        });
        Progress {
            bar,
            last: String::new(),
        }
    }

    /// Shows the current counts.
    pub fn show(&mut self, tally: &Tally, busy: u64, elapsed: Duration) {
        let line = tally.line(busy);
        match &self.bar {
            Some(b) => b.set_message(line),
            None if line != self.last => {
                eprintln!("[{:>5.1}s] {line}", elapsed.as_secs_f64());
                self.last = line;
            }
            None => {}
        }
    }

    /// Clears the spinner.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
