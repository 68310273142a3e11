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

/// zstd level of page bodies (`BODY_ENCODING_ZSTD`), claim checks and
/// archived raw pages, wherever they are compressed: level 1 compresses
/// generated news pages about twice as fast as 3, for a few percent more
/// bytes (docs/performance.md).
pub const BODY_ZSTD_LEVEL: i32 = 1;
