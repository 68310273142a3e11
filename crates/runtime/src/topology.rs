//! Names of crawlq's subjects, streams and consumers, derived from one prefix.
//!
//! With the default prefix `crawlq`:
//!
//! | stage        | subject             | stream             | consumer    |
//! |--------------|---------------------|--------------------|-------------|
//! | intake       | `crawlq.urls`       | `CRAWLQ_URLS`      | `crawler`   |
//! | fetched      | `crawlq.fetched`    | `CRAWLQ_FETCHED`   | `extractor` |
//! | snapshots    | `crawlq.snapshots`  | `CRAWLQ_SNAPSHOTS` | `storage`   |
//! | stored       | `crawlq.stored`     | `CRAWLQ_STORED`    | (readers)   |
//! | dead letters | `crawlq.dlq.{stage}`| `CRAWLQ_DLQ`       | (readers)   |

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

    /// The stream a stage consumes and the subject it filters on.
    pub fn input_of(&self, stage: Stage) -> (String, String) {
        match stage {
            Stage::Crawler => (self.urls_stream(), self.urls()),
            Stage::Extractor => (self.fetched_stream(), self.fetched()),
            Stage::Storage => (self.snapshots_stream(), self.snapshots()),
        }
    }

    /// Durable consumer name of a stage.
    pub fn consumer(&self, stage: Stage) -> String {
        stage.as_str().to_string()
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
            ("PROD_NEWS_SNAPSHOTS".into(), "prod.news.snapshots".into())
        );
    }
}
