//! crawlq wire types, generated from `proto/crawlq/v1/*.proto`.
//!
//! The `.proto` files are the contract between the crawler, the extractor,
//! the storage service and anything users write against them. Fields are
//! only ever added, never renumbered; see the header of each `.proto` file.

/// Package `crawlq.v1`.
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/crawlq.v1.rs"));
}

pub use prost::Message;

/// Content type that marks a NATS message body as a protobuf message.
pub const CONTENT_TYPE_PROTOBUF: &str = "application/protobuf";
