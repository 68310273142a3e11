//! Names of crawlq's subjects, streams and consumers, derived from one prefix.
//!
//! With the default prefix `crawlq`:
//!
//! | stage        | subject             | stream             | consumer    |
//! |--------------|---------------------|--------------------|-------------|
//! | intake       | `crawlq.urls`       | `CRAWLQ_URLS`      | `crawler`   |
//! | fetched      | `crawlq.fetched`    | `CRAWLQ_FETCHED`   | `extractor` |
//! | snapshots    | `crawlq.snapshots`  | `CRAWLQ_SNAPSHOTS` | `storage`   |
//! | checks       | `crawlq.checks`     | `CRAWLQ_SNAPSHOTS` | `storage`   |
//! | stored       | `crawlq.stored`     | `CRAWLQ_STORED`    | (readers)   |
//! | dead letters | `crawlq.dlq.{stage}`| `CRAWLQ_DLQ`       | (readers)   |
//! | schedules    | `crawlq.schedule.{feed,article}.{id}` | `CRAWLQ_SCHEDULES` | (the server) |
//! | due checks   | `crawlq.due`        | `CRAWLQ_SCHEDULES` | `crawler-due` |

/// The pipeline stages that consume a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Consumes intake, produces fetched pages.
    Crawler,
    /// Consumes fetched pages, produces snapshots and new requests.
    Extractor,
    /// Consumes snapshots, produces stored events.
    Storage,
}

impl Stage {
    /// Lowercase name, used in subjects, consumer names and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Crawler => "crawler",
            Stage::Extractor => "extractor",
            Stage::Storage => "storage",
        }
    }

    /// Every stage, in pipeline order.
    pub const ALL: [Stage; 3] = [Stage::Crawler, Stage::Extractor, Stage::Storage];
}

/// Subject, stream and consumer names under one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    prefix: String,
}

impl Topology {
    /// `prefix` must already be a valid subject prefix (see config).
    pub fn new(prefix: impl Into<String>) -> Topology {
        Topology {
            prefix: prefix.into(),
        }
    }

    /// The subject prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Intake subject users publish URLs to.
    pub fn urls(&self) -> String {
        format!("{}.urls", self.prefix)
    }

    /// Subject of fetched pages.
    pub fn fetched(&self) -> String {
        format!("{}.fetched", self.prefix)
    }

    /// Subject of snapshot records.
    pub fn snapshots(&self) -> String {
        format!("{}.snapshots", self.prefix)
    }

    /// Subject of check observations (revisits that produced no record).
    pub fn checks(&self) -> String {
        format!("{}.checks", self.prefix)
    }

    /// Subject holding the schedule of one registered feed's next poll.
    pub fn feed_schedule(&self, feed_id: &str) -> String {
        format!("{}.schedule.feed.{feed_id}", self.prefix)
    }

    /// Subject holding the schedule of one article's next revisit.
    pub fn article_schedule(&self, record_id: &str) -> String {
        format!("{}.schedule.article.{record_id}", self.prefix)
    }

    /// Wildcard over every schedule subject.
    pub fn schedules_all(&self) -> String {
        format!("{}.schedule.>", self.prefix)
    }

    /// Subject the server publishes due checks to, when their time comes.
    pub fn due(&self) -> String {
        format!("{}.due", self.prefix)
    }

    /// Subject of stored-snapshot events.
    pub fn stored(&self) -> String {
        format!("{}.stored", self.prefix)
    }

    /// Dead-letter subject of one stage.
    pub fn dlq(&self, stage: Stage) -> String {
        format!("{}.dlq.{}", self.prefix, stage.as_str())
    }

    /// Wildcard over every dead-letter subject.
    pub fn dlq_all(&self) -> String {
        format!("{}.dlq.>", self.prefix)
    }

    /// Stream name: the prefix upper-cased, dots as underscores, plus `suffix`.
    fn stream(&self, suffix: &str) -> String {
        format!("{}_{suffix}", self.prefix.replace('.', "_").to_uppercase())
    }

    /// Intake stream (work-queue retention).
    pub fn urls_stream(&self) -> String {
        self.stream("URLS")
    }

    /// Fetched-pages stream.
    pub fn fetched_stream(&self) -> String {
        self.stream("FETCHED")
    }

    /// Snapshot-records stream.
    pub fn snapshots_stream(&self) -> String {
        self.stream("SNAPSHOTS")
    }

    /// Stored-events stream.
    pub fn stored_stream(&self) -> String {
        self.stream("STORED")
    }

    /// Dead-letter stream.
    pub fn dlq_stream(&self) -> String {
        self.stream("DLQ")
    }

    /// Schedules stream: schedule definitions and the due checks the
    /// server produces from them (JetStream message schedules, ADR-51).
    pub fn schedules_stream(&self) -> String {
        self.stream("SCHEDULES")
    }

    /// The stream a stage consumes and the subjects it filters on.
    pub fn input_of(&self, stage: Stage) -> (String, Vec<String>) {
        match stage {
            Stage::Crawler => (self.urls_stream(), vec![self.urls()]),
            Stage::Extractor => (self.fetched_stream(), vec![self.fetched()]),
            Stage::Storage => (
                self.snapshots_stream(),
                vec![self.snapshots(), self.checks()],
            ),
        }
    }

    /// Durable consumer name of a stage.
    pub fn consumer(&self, stage: Stage) -> String {
        stage.as_str().to_string()
    }

    /// Durable consumer of due checks (feed polls and revisits).
    pub fn due_consumer(&self) -> String {
        "crawler-due".to_string()
    }

    /// Key-value bucket name for a purpose such as `robots`.
    pub fn bucket(&self, purpose: &str) -> String {
        format!("{}_{purpose}", self.prefix.replace('.', "_"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_prefix() {
        let t = Topology::new("crawlq");
        assert_eq!(t.urls(), "crawlq.urls");
        assert_eq!(t.urls_stream(), "CRAWLQ_URLS");
        assert_eq!(t.dlq(Stage::Extractor), "crawlq.dlq.extractor");
        let t = Topology::new("prod.news");
        assert_eq!(t.snapshots_stream(), "PROD_NEWS_SNAPSHOTS");
        assert_eq!(t.bucket("robots"), "prod_news_robots");
        assert_eq!(
            t.input_of(Stage::Storage),
            (
                "PROD_NEWS_SNAPSHOTS".into(),
                vec!["prod.news.snapshots".into(), "prod.news.checks".into()]
            )
        );
        assert_eq!(t.feed_schedule("ab"), "prod.news.schedule.feed.ab");
        assert_eq!(t.schedules_stream(), "PROD_NEWS_SCHEDULES");
    }
}
