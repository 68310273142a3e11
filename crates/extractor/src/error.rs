//! Extractor errors. Each variant says whether a retry can help.

use crawlq_runtime::{Classify, Disposition};

/// Why a page produced no record.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// The message is not a valid `FetchedPage`.
    #[error("invalid FetchedPage message: {0}")]
    BadMessage(String),
    /// The page body is empty.
    #[error("empty body")]
    EmptyBody,
    /// The body is not a document type the extractor reads.
    #[error("unsupported content type `{0}`")]
    UnsupportedContentType(String),
    /// The document nests deeper than any real page.
    #[error("pathological html: nesting depth {0}")]
    Pathological(u32),
    /// Parsing and extraction took longer than the budget.
    #[error("extraction exceeded its time budget of {0:?}")]
    Timeout(std::time::Duration),
    /// No article text and no links to follow; says what was tried.
    #[error("no article content found: {0}")]
    NoContent(String),
    /// A feed or sitemap could not be parsed.
    #[error("unreadable feed or sitemap: {0}")]
    BadFeed(String),
    /// The body held by claim check could not be read.
    #[error("claim-check body `{key}` unavailable: {source}")]
    ClaimCheck {
        /// Object key.
        key: String,
        /// Store error.
        #[source]
        source: object_store::Error,
    },
    /// A sitemap index nested deeper than any real site's.
    #[error("sitemap index nested {0} deep; the limit is {limit}", limit = crate::handler::MAX_SITEMAP_NESTING)]
    TooDeep(u32),
    /// The extractor panicked on this page: a bug, reported as such.
    #[error("extractor bug: panicked on this page: {0}")]
    Panicked(String),
    /// The record is larger than NATS accepts.
    #[error("record of {0} bytes exceeds the NATS payload limit")]
    TooLarge(usize),
    /// A rules file is invalid.
    #[error("invalid site rules: {0}")]
    Rules(String),
}

/// Every reason code of the extractor, and whether replaying can succeed
/// without a change (see `crawlq dlq replay`).
pub const REASONS: &[(&str, bool)] = &[
    ("bad_message", false),
    ("empty_body", false),
    ("unsupported_content_type", false),
    ("pathological_html", false),
    ("extract_timeout", true),
    ("no_content", false),
    ("bad_feed", false),
    ("claim_check_unavailable", true),
    ("extractor_panic", false),
    ("sitemap_too_deep", false),
    ("too_large", false),
    ("bad_rules", false),
];

impl Classify for ExtractError {
    fn disposition(&self) -> Disposition {
        match self {
            ExtractError::ClaimCheck { .. } => Disposition::Retry(None),
            _ => Disposition::Permanent,
        }
    }

    /// The store holding the claim-checked body failed; a body that is
    /// gone is not an outage.
    fn pipeline_fault(&self) -> bool {
        matches!(self, ExtractError::ClaimCheck { source, .. }
            if !matches!(source, object_store::Error::NotFound { .. }))
    }

    fn reason(&self) -> &'static str {
        match self {
            ExtractError::BadMessage(_) => "bad_message",
            ExtractError::EmptyBody => "empty_body",
            ExtractError::UnsupportedContentType(_) => "unsupported_content_type",
            ExtractError::Pathological(_) => "pathological_html",
            ExtractError::Timeout(_) => "extract_timeout",
            ExtractError::NoContent(_) => "no_content",
            ExtractError::BadFeed(_) => "bad_feed",
            ExtractError::ClaimCheck { .. } => "claim_check_unavailable",
            ExtractError::Panicked(_) => "extractor_panic",
            ExtractError::TooDeep(_) => "sitemap_too_deep",
            ExtractError::TooLarge(_) => "too_large",
            ExtractError::Rules(_) => "bad_rules",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_is_listed() {
        let all = [
            ExtractError::BadMessage("e".into()),
            ExtractError::EmptyBody,
            ExtractError::UnsupportedContentType("e".into()),
            ExtractError::Pathological(1),
            ExtractError::Timeout(std::time::Duration::from_secs(1)),
            ExtractError::NoContent("e".into()),
            ExtractError::BadFeed("e".into()),
            ExtractError::ClaimCheck {
                key: "k".into(),
                source: object_store::Error::NotFound {
                    path: "k".into(),
                    source: "gone".into(),
                },
            },
            ExtractError::TooDeep(5),
            ExtractError::Panicked("e".into()),
            ExtractError::TooLarge(1),
            ExtractError::Rules("e".into()),
        ];
        for e in &all {
            assert!(
                REASONS.iter().any(|(r, _)| *r == e.reason()),
                "{} is not in REASONS",
                e.reason()
            );
        }
    }

    #[test]
    fn a_failing_claim_store_is_the_pipelines_fault_a_missing_body_is_not() {
        let claim = |source| ExtractError::ClaimCheck {
            key: "k".into(),
            source,
        };
        let down = claim(object_store::Error::Generic {
            store: "S3",
            source: "connection refused".into(),
        });
        let gone = claim(object_store::Error::NotFound {
            path: "k".into(),
            source: "gone".into(),
        });
        assert!(down.pipeline_fault());
        assert!(!gone.pipeline_fault());
        assert!(!ExtractError::NoContent("e".into()).pipeline_fault());
    }
}
