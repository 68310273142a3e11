//! What a stage implements, and the messages it sees and emits.
//!
//! A stage is a [`Handler`]: it gets a [`Delivery`], returns the
//! [`Outgoing`] messages to publish, or an error whose
//! [`Classify`](crate::Classify) impl says whether to retry or
//! dead-letter. The worker loop ([`crate::worker`]) does the rest.

use std::future::Future;

use async_nats::HeaderMap;
use bytes::Bytes;
use crawlq_proto::CONTENT_TYPE_PROTOBUF;

use crate::error::Classify;

/// Header carrying the crawl request id along the pipeline, so a stored
/// event can be matched to the submission that caused it.
pub const REQUEST_ID_HEADER: &str = "Crawlq-Request-Id";

/// Header naming the `crawlq submit` run a message descends from: set on
/// the submitted requests and carried by the worker onto every result of a
/// message that has it (fetched pages, records, stored events, the URLs a
/// feed or listing expands to, dead letters), so `submit --wait` counts
/// its own work only. Scheduled messages do not carry it.
pub const SUBMISSION_HEADER: &str = "Crawlq-Submission";

/// One message as a handler sees it.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Subject it was published to.
    pub subject: String,
    /// Its headers, if any.
    pub headers: Option<HeaderMap>,
    /// Its body.
    pub payload: Bytes,
    /// 1 on the first delivery.
    pub delivered: u32,
    /// Position in the stream; unique per message.
    pub stream_sequence: u64,
}

impl Delivery {
    /// A header value, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.as_ref()?.get(name).map(|v| v.as_str())
    }

    /// Is the body marked as protobuf?
    pub fn is_protobuf(&self) -> bool {
        self.header("Content-Type")
            .is_some_and(|v| v.eq_ignore_ascii_case(CONTENT_TYPE_PROTOBUF))
    }
}

/// A message a handler wants published before its input is acked.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Destination subject.
    pub subject: String,
    /// Headers (may be empty).
    pub headers: HeaderMap,
    /// Body.
    pub payload: Bytes,
}

impl Outgoing {
    /// A protobuf message, with its Content-Type header.
    pub fn protobuf(subject: impl Into<String>, msg: &impl crawlq_proto::Message) -> Outgoing {
        let mut headers = HeaderMap::new();
        headers.insert("Content-Type", CONTENT_TYPE_PROTOBUF);
        Outgoing {
            subject: subject.into(),
            headers,
            payload: Bytes::from(msg.encode_to_vec()),
        }
    }

    /// A check observation for storage, stored once however often it is
    /// published (a redelivered revisit reports the same check).
    pub fn check(topology: &crate::Topology, obs: &crawlq_proto::v1::CheckObservation) -> Outgoing {
        Outgoing::protobuf(topology.checks(), obs)
            .with_msg_id(format!("check:{}:{}", obs.record_id, obs.request_id))
            .with_request_id(&obs.request_id)
    }

    /// Sets the request-id header (see [`REQUEST_ID_HEADER`]).
    pub fn with_request_id(mut self, id: &str) -> Outgoing {
        if !id.is_empty() {
            self.headers.insert(REQUEST_ID_HEADER, id);
        }
        self
    }

    /// Sets the submission header (see [`SUBMISSION_HEADER`]).
    pub fn with_submission(mut self, id: &str) -> Outgoing {
        if !id.is_empty() {
            self.headers.insert(SUBMISSION_HEADER, id);
        }
        self
    }

    /// Sets `Nats-Msg-Id`, so a republish after a crash is dropped by the
    /// server as a duplicate within the stream's duplicate window.
    pub fn with_msg_id(mut self, id: impl AsRef<str>) -> Outgoing {
        self.headers.insert("Nats-Msg-Id", id.as_ref());
        self
    }
}

/// What a dead letter should say about the message, when the handler can tell.
#[derive(Debug, Clone, Default)]
pub struct Described {
    /// URL concerned.
    pub url: String,
    /// Request id concerned.
    pub request_id: String,
}

/// A stage's message handler.
pub trait Handler: Send + Sync + 'static {
    /// The stage's error type; its variants decide retry versus dead-letter.
    type Error: Classify + std::fmt::Display + Send + 'static;

    /// Handles one message and returns what to publish.
    fn handle(
        &self,
        delivery: &Delivery,
    ) -> impl Future<Output = Result<Vec<Outgoing>, Self::Error>> + Send;

    /// Extra deliveries a message may use up by being deferred before it is
    /// treated as poison. Handlers that never defer keep the default.
    fn defer_allowance(&self) -> u32 {
        0
    }

    /// URL and request id of a message, for its dead letter.
    fn describe(&self, _delivery: &Delivery) -> Described {
        Described::default()
    }
}
