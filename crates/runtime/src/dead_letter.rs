//! One builder for every dead letter, whoever writes it: the worker loop
//! for a failed message, the crawler for one bad line of a text intake
//! message.

use crawlq_proto::v1::DeadLetter;

use crate::handler::{Delivery, Described, Outgoing};
use crate::topology::{Stage, Topology};
use crate::{clip, now_ms};

/// Longest error text kept.
const MAX_ERROR: usize = 4096;
/// Longest URL kept (the payload keeps the original).
const MAX_URL: usize = 2048;
/// Longest request id kept.
const MAX_REQUEST_ID: usize = 256;
/// Room left in a message for NATS's own framing and headers.
const HEADROOM: usize = 1024;

/// Builds a [`DeadLetter`] that always fits in one NATS message.
#[derive(Debug, Clone)]
pub struct DeadLetterBuilder {
    stage: Stage,
    letter: DeadLetter,
}

impl DeadLetterBuilder {
    /// A letter of `stage` with a stable `reason` code and an error text.
    pub fn new(stage: Stage, reason: &str, error: &str) -> DeadLetterBuilder {
        DeadLetterBuilder {
            stage,
            letter: DeadLetter {
                stage: stage.as_str().to_string(),
                reason: reason.to_string(),
                error: clip(error, MAX_ERROR),
                failed_at: now_ms(),
                ..Default::default()
            },
        }
    }

    /// Carries the message as delivered: subject, headers (but its
    /// `Nats-Msg-Id`, so a replay is not dropped as a duplicate), payload
    /// and delivery count.
    pub fn delivery(mut self, d: &Delivery) -> DeadLetterBuilder {
        self.letter.original_subject = d.subject.clone();
        self.letter.delivery_count = d.delivered;
        self.letter.payload = d.payload.to_vec();
        self.letter.headers = d
            .headers
            .iter()
            .flat_map(|h| h.iter())
            .filter(|(k, _)| !k.to_string().eq_ignore_ascii_case("Nats-Msg-Id"))
            .filter_map(|(k, v)| Some((k.to_string(), v.first()?.to_string())))
            .collect();
        self
    }

    /// Replaces the payload (one line of a multi-line message, say).
    pub fn payload(mut self, payload: Vec<u8>) -> DeadLetterBuilder {
        self.letter.payload = payload;
        self
    }

    /// The URL and request id concerned, cut to bounded lengths.
    pub fn described(mut self, d: &Described) -> DeadLetterBuilder {
        self.letter.url = clip(&d.url, MAX_URL);
        self.letter.request_id = clip(&d.request_id, MAX_REQUEST_ID);
        self
    }

    /// The letter, its payload cut if needed so that it fits in
    /// `max_payload` bytes (the error then says so): a letter that could
    /// never be published would leave its message retried forever.
    pub fn build(mut self, max_payload: usize) -> DeadLetter {
        let letter = &mut self.letter;
        let overhead = crawlq_proto::Message::encoded_len(letter) - letter.payload.len();
        let room = max_payload.saturating_sub(overhead + HEADROOM);
        if letter.payload.len() > room {
            let full = letter.payload.len();
            letter.payload.truncate(room);
            letter.error = format!(
                "{} (payload cut from {full} to {room} bytes to fit the dead-letter stream)",
                letter.error
            );
        }
        self.letter
    }

    /// The letter as a message to the stage's dead-letter subject, with a
    /// message id so that writing it twice stores it once.
    pub fn outgoing(self, topology: &Topology, msg_id: String, max_payload: usize) -> Outgoing {
        let stage = self.stage;
        let letter = self.build(max_payload);
        Outgoing::protobuf(topology.dlq(stage), &letter).with_msg_id(msg_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_nats::HeaderMap;
    use bytes::Bytes;

    fn delivery(payload: Vec<u8>) -> Delivery {
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", "m1");
        headers.insert("Crawlq-Request-Id", "r1");
        Delivery {
            subject: "crawlq.urls".into(),
            headers: Some(headers),
            payload: Bytes::from(payload),
            delivered: 3,
            stream_sequence: 9,
        }
    }

    #[test]
    fn carries_the_delivery_but_its_message_id() {
        let l = DeadLetterBuilder::new(Stage::Crawler, "bad_message", "nope")
            .delivery(&delivery(b"x".to_vec()))
            .build(1 << 20);
        assert_eq!(l.original_subject, "crawlq.urls");
        assert_eq!(l.delivery_count, 3);
        assert_eq!(l.payload, b"x");
        assert_eq!(
            l.headers.get("Crawlq-Request-Id").map(String::as_str),
            Some("r1")
        );
        assert!(!l
            .headers
            .keys()
            .any(|k| k.eq_ignore_ascii_case("nats-msg-id")));
    }

    #[test]
    fn always_fits_in_one_message() {
        let big = vec![b'a'; 900_000];
        let url = "u".repeat(100_000);
        let l = DeadLetterBuilder::new(Stage::Storage, "too_large", &"e".repeat(10_000))
            .delivery(&delivery(big))
            .described(&Described {
                url,
                request_id: String::new(),
            })
            .build(64 * 1024);
        let len = crawlq_proto::Message::encoded_len(&l);
        assert!(len <= 64 * 1024, "{len}");
        assert!(l.error.contains("payload cut from 900000"), "{}", l.error);
        assert!(l.url.len() <= MAX_URL);
    }
}
