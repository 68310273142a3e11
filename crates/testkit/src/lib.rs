//! Test support for crawlq: real servers on dynamic loopback ports.
//!
//! - [`NatsServer`]: a real `nats-server -js` with a temp store dir, killed on drop.
//! - [`S3Server`]: a real `s3s-fs` S3 server with a temp root, killed on drop.
//! - [`HttpFixture`]: an axum router served on 127.0.0.1.
//! - [`news_site`]: thousands of generated 30–80 KB article pages over several loopback hosts.
//! - [`watch_site`]: a site that edits, removes and redirects articles while it is crawled.
//! - [`unique_prefix`]: a random subject prefix so tests can run in parallel.

mod http;
mod nats;
pub mod news_site;
mod s3;
pub mod sample_site;
pub mod watch_site;

pub use http::HttpFixture;
pub use nats::{NatsCluster, NatsServer};
pub use s3::S3Server;

use std::net::TcpListener;
use std::time::Duration;

/// The nats-server release the tests run on (`make deps` installs it).
pub const NATS_SERVER_VERSION: &str = "2.15.1";

/// A random subject prefix such as `t3f9a2c1d`, unique per test.
pub fn unique_prefix() -> String {
    format!("t{:08x}", rand::random::<u32>())
}

/// The command line every service test starts from: program name, the
/// server's URL, the subject prefix and an ephemeral metrics port.
pub fn service_args(nats: &NatsServer, prefix: &str) -> Vec<String> {
    vec![
        "x".to_string(),
        format!("--nats-url={}", nats.url()),
        format!("--subject-prefix={prefix}"),
        "--metrics-addr=127.0.0.1:0".into(),
    ]
}

/// A loopback TCP port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral loopback port")
}

/// Waits until something accepts TCP connections on `port`.
pub(crate) async fn wait_for_port(port: u16, timeout: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("nothing listened on 127.0.0.1:{port} within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Polls `check` until it returns true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    check().await
}

/// One stored stream message.
#[derive(Debug, Clone)]
pub struct Stored {
    /// Subject.
    pub subject: String,
    /// Headers, if any.
    pub headers: Option<async_nats::HeaderMap>,
    /// Body.
    pub payload: Vec<u8>,
}

/// Every message currently in `stream` (empty if the stream is missing).
pub async fn read_stream(js: &async_nats::jetstream::Context, stream: &str) -> Vec<Stored> {
    let Ok(mut reader) = crawlq_runtime::nats::StreamReader::from_start(js, stream).await else {
        return Vec::new();
    };
    reader
        .read_new()
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|m| Stored {
            subject: m.subject,
            headers: Some(m.headers),
            payload: m.payload.to_vec(),
        })
        .collect()
}
