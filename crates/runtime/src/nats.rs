//! Connecting to NATS and provisioning crawlq's streams and consumers.
//!
//! Provisioning is idempotent: a stream or consumer that already has the
//! settings crawlq wants is left untouched, one whose managed settings
//! drifted is updated, and a missing one is created.
//!
//! crawlq needs nats-server [`MIN_SERVER_VERSION`] or newer: checks are
//! scheduled with JetStream message schedules (ADR-51, 2.12). Services
//! check the server's version once connected and refuse an older one with
//! a clear error.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, kv, stream};
use async_nats::{ConnectOptions, Event};

use crate::config::NatsArgs;
use crate::error::Error;
use crate::metrics as m;
use crate::topology::{Stage, Topology};

/// How long stored events are kept, for `status` and `submit --wait`.
const STORED_MAX_AGE: Duration = Duration::from_secs(7 * 86_400);
/// How long dead letters are kept for inspection and replay.
const DLQ_MAX_AGE: Duration = Duration::from_secs(30 * 86_400);
/// Oldest nats-server crawlq runs on: message schedules arrived in 2.12.
pub const MIN_SERVER_VERSION: (u64, u64) = (2, 12);

/// Refuses a server older than [`MIN_SERVER_VERSION`]. `version` is what
/// the server announces, such as `2.15.1` or `2.12.0-RC.1`.
pub fn check_server_version(version: &str) -> Result<(), Error> {
    let mut parts = version
        .trim_start_matches('v')
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u64>().ok());
    let (major, minor) = match (parts.next().flatten(), parts.next().flatten()) {
        (Some(a), Some(b)) => (a, b),
        _ => {
            return Err(Error::Config(format!(
                "nats-server announced version `{version}`, which crawlq cannot read"
            )))
        }
    };
    if (major, minor) < MIN_SERVER_VERSION {
        return Err(Error::Config(format!(
            "nats-server {version} is too old: crawlq needs {}.{} or newer \
             (JetStream message schedules); `make deps` installs 2.15.1",
            MIN_SERVER_VERSION.0, MIN_SERVER_VERSION.1
        )));
    }
    Ok(())
}

/// Window in which a repeated `Nats-Msg-Id` is dropped by the server.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// Connects a long-running service: the first connection is retried with
/// backoff (the service reports not ready meanwhile), then every
/// disconnect and reconnect is logged. `name` identifies the process.
pub async fn connect(args: &NatsArgs, name: &str) -> Result<async_nats::Client, Error> {
    let opts = options(args, name)
        .await?
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(5));
    let client = opts
        .connect(server_list(&args.url)?)
        .await
        .map_err(|e| Error::Connect(e.to_string()))?;
    // The connection may still be being made (retry_on_initial_connect):
    // the Connected event sets the gauge.
    Ok(client)
}

/// Connects a user command: a server that refuses or does not answer
/// fails within about two seconds, with its URL named, instead of being
/// retried in the background.
pub async fn connect_command(args: &NatsArgs, name: &str) -> Result<async_nats::Client, Error> {
    let opts = options(args, name)
        .await?
        .connection_timeout(Duration::from_secs(2));
    let client = opts
        .connect(server_list(&args.url)?)
        .await
        .map_err(|e| Error::Connect(format!("cannot reach nats at {}: {e}", args.url)))?;
    check_server_version(&client.server_info().version)?;
    Ok(client)
}

/// `CRAWLQ_NATS_URL` as a list of servers: one URL, or a cluster's seed
/// list, comma-separated.
pub fn server_list(urls: &str) -> Result<Vec<async_nats::ServerAddr>, Error> {
    urls.split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|u| {
            u.parse::<async_nats::ServerAddr>()
                .map_err(|e| Error::Config(format!("CRAWLQ_NATS_URL `{u}`: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()
        .and_then(|list| {
            if list.is_empty() {
                Err(Error::Config("CRAWLQ_NATS_URL is empty".into()))
            } else {
                Ok(list)
            }
        })
}

/// Connection options common to services and commands: name, backoff,
/// events, credentials and TLS.
async fn options(args: &NatsArgs, name: &str) -> Result<ConnectOptions, Error> {
    let mut opts = ConnectOptions::new()
        .name(name)
        .reconnect_delay_callback(|attempts| {
            let exp = 100u64.saturating_mul(1u64 << attempts.min(10) as u32);
            Duration::from_millis(exp.min(8_000))
        })
        .event_callback(|event| async move {
            match event {
                Event::Connected => {
                    metrics::gauge!(m::NATS_CONNECTED).set(1.0);
                    tracing::info!("nats connected");
                }
                Event::Disconnected => {
                    metrics::gauge!(m::NATS_CONNECTED).set(0.0);
                    metrics::counter!(m::NATS_DISCONNECTS).increment(1);
                    tracing::warn!("nats disconnected; reconnecting with backoff");
                }
                other => tracing::info!(event = %other, "nats event"),
            }
        });
    if let Some(path) = &args.creds {
        opts = opts
            .credentials_file(path)
            .await
            .map_err(|e| Error::Config(format!("CRAWLQ_NATS_CREDS {}: {e}", path.display())))?;
    }
    if let (Some(user), Some(password)) = (&args.user, &args.password) {
        opts = opts.user_and_password(user.clone(), password.clone());
    }
    if let Some(token) = &args.token {
        opts = opts.token(token.clone());
    }
    if let Some(seed) = &args.nkey {
        opts = opts.nkey(seed.clone());
    }
    if let Some(ca) = &args.tls_ca {
        opts = opts.add_root_certificates(ca.clone()).require_tls(true);
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        opts = opts
            .add_client_certificate(cert.clone(), key.clone())
            .require_tls(true);
    }
    Ok(opts)
}

/// The server's largest message (`max_payload`), or NATS's 1 MiB default
/// while the server has not said.
pub fn max_payload(client: &async_nats::Client) -> usize {
    match client.server_info().max_payload {
        0 => 1024 * 1024,
        n => n,
    }
}

/// Is the client connected right now?
pub fn is_connected(client: &async_nats::Client) -> bool {
    matches!(
        client.connection_state(),
        async_nats::connection::State::Connected
    )
}

/// What [`provision`] did to one stream or consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provisioned {
    /// It was missing and was created.
    Created,
    /// Its managed settings differed and were updated.
    Updated,
    /// It already had the wanted settings.
    Unchanged,
}

/// Creates or updates every crawlq stream. Returns what happened to each.
pub async fn provision_streams(
    js: &jetstream::Context,
    topo: &Topology,
    settings: &StreamSettings,
) -> Result<Vec<(String, Provisioned)>, Error> {
    let mut out = Vec::new();
    for cfg in stream_configs(topo, settings) {
        let name = cfg.name.clone();
        out.push((name, ensure_stream(js, cfg).await?));
    }
    Ok(out)
}

/// Waits (up to `wait`) for crawlq's streams to exist. User commands
/// never create streams: a mistyped `--subject-prefix` must fail, not
/// quietly start a second set that nothing consumes.
pub async fn require_streams(
    js: &jetstream::Context,
    topo: &Topology,
    url: &str,
    wait: Duration,
) -> Result<(), Error> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let mut missing = None;
        for cfg in stream_configs(topo, &StreamSettings::default()) {
            if js.get_stream(&cfg.name).await.is_err() {
                missing = Some(cfg.name);
                break;
            }
        }
        let Some(name) = missing else {
            return Ok(());
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::Config(format!(
                "no crawlq streams with prefix `{}` on {url} ({name} is missing): start the services first, or check --subject-prefix",
                topo.prefix()
            )));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Replicas and size limit of every crawlq stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamSettings {
    /// Stream replicas (1, or 3 on a cluster).
    pub replicas: usize,
    /// Most bytes per stream.
    pub max_bytes: i64,
}

impl Default for StreamSettings {
    fn default() -> Self {
        StreamSettings {
            replicas: 1,
            max_bytes: 1 << 30,
        }
    }
}

impl StreamSettings {
    /// One replica, the default limit.
    pub fn replicas(replicas: usize) -> StreamSettings {
        StreamSettings {
            replicas,
            ..StreamSettings::default()
        }
    }
}

/// Is `e` (a failed publish) a stream refusing messages because it is
/// full? Then the message was not stored; the publisher retries later.
pub fn is_stream_full(e: &str) -> bool {
    let e = e.to_ascii_lowercase();
    e.contains("maximum bytes") || e.contains("maximum messages") || e.contains("resource limits")
}

/// The streams crawlq uses. Work streams discard nothing: when full they
/// refuse new messages (`discard: new`), and the publisher retries. The
/// stored-event stream drops its oldest events instead; the schedules
/// stream has no size limit (one definition per feed and article).
pub fn stream_configs(topo: &Topology, settings: &StreamSettings) -> Vec<stream::Config> {
    let replicas = settings.replicas;
    let work_queue = |name: String, subject: String, description: &str| stream::Config {
        name,
        subjects: vec![subject],
        retention: stream::RetentionPolicy::WorkQueue,
        storage: stream::StorageType::File,
        num_replicas: replicas,
        max_bytes: settings.max_bytes,
        discard: stream::DiscardPolicy::New,
        duplicate_window: DUPLICATE_WINDOW,
        description: Some(description.to_string()),
        ..Default::default()
    };
    vec![
        work_queue(
            topo.urls_stream(),
            topo.urls(),
            "crawlq intake: URLs and CrawlRequests",
        ),
        work_queue(
            topo.fetched_stream(),
            topo.fetched(),
            "crawlq fetched pages",
        ),
        stream::Config {
            subjects: vec![topo.snapshots(), topo.checks()],
            ..work_queue(
                topo.snapshots_stream(),
                topo.snapshots(),
                "crawlq snapshot records and check observations",
            )
        },
        // Schedule definitions wait here until their time; the server then
        // publishes their body to `due` in the same stream, where the
        // crawler's `crawler-due` consumer takes it. Work-queue retention:
        // a due check is gone once handled, a definition once it fired.
        stream::Config {
            name: topo.schedules_stream(),
            subjects: vec![topo.schedules_all(), topo.due()],
            retention: stream::RetentionPolicy::WorkQueue,
            storage: stream::StorageType::File,
            num_replicas: replicas,
            // No size limit: the server refuses `discard: new` with
            // message schedules, and dropping old definitions would lose
            // checks. It holds one definition per feed and per article.
            max_bytes: -1,
            duplicate_window: DUPLICATE_WINDOW,
            allow_message_schedules: true,
            description: Some("crawlq schedules: feed polls and article revisits".into()),
            ..Default::default()
        },
        stream::Config {
            name: topo.stored_stream(),
            subjects: vec![topo.stored()],
            retention: stream::RetentionPolicy::Limits,
            storage: stream::StorageType::File,
            num_replicas: replicas,
            max_bytes: settings.max_bytes,
            discard: stream::DiscardPolicy::Old,
            max_age: STORED_MAX_AGE,
            duplicate_window: DUPLICATE_WINDOW,
            description: Some("crawlq stored-snapshot events".into()),
            ..Default::default()
        },
        stream::Config {
            name: topo.dlq_stream(),
            subjects: vec![topo.dlq_all()],
            retention: stream::RetentionPolicy::Limits,
            storage: stream::StorageType::File,
            num_replicas: replicas,
            max_bytes: settings.max_bytes,
            // A dead letter is never dropped: a full DLQ refuses it and
            // the input is retried instead.
            discard: stream::DiscardPolicy::New,
            max_age: DLQ_MAX_AGE,
            duplicate_window: DUPLICATE_WINDOW,
            description: Some("crawlq dead letters".into()),
            ..Default::default()
        },
    ]
}

async fn ensure_stream(
    js: &jetstream::Context,
    want: stream::Config,
) -> Result<Provisioned, Error> {
    match js.get_stream(&want.name).await {
        Ok(mut s) => {
            let have = s.info().await.map_err(Error::nats)?.config.clone();
            if stream_matches(&have, &want) {
                return Ok(Provisioned::Unchanged);
            }
            tracing::info!(stream = %want.name, replicas = want.num_replicas, max_bytes = want.max_bytes, "updating stream settings");
            let name = want.name.clone();
            let mut next = have;
            next.subjects = want.subjects;
            next.num_replicas = want.num_replicas;
            next.max_bytes = want.max_bytes;
            next.discard = want.discard;
            next.max_age = want.max_age;
            next.duplicate_window = want.duplicate_window;
            next.description = want.description;
            next.allow_message_schedules = want.allow_message_schedules;
            js.update_stream(next).await.map_err(|e| {
                Error::Config(format!(
                    "stream {name} cannot take the configured settings (replicas {}, max bytes {}): {e}; \
                     change CRAWLQ_STREAM_REPLICAS / CRAWLQ_STREAM_MAX_BYTES or the server",
                    want.num_replicas, want.max_bytes
                ))
            })?;
            Ok(Provisioned::Updated)
        }
        Err(e) if is_stream_not_found(&e) => {
            tracing::info!(stream = %want.name, "creating stream");
            match js.create_stream(want.clone()).await {
                Ok(_) => Ok(Provisioned::Created),
                // Another process (a service starting, a `crawlq submit`)
                // created it between our lookup and our create: the server
                // then refuses ours ("subjects overlap" on 2.9). Look again.
                Err(create) => match js.get_stream(&want.name).await {
                    Ok(_) => Box::pin(ensure_stream(js, want)).await,
                    Err(_) => Err(Error::nats(create)),
                },
            }
        }
        Err(e) => Err(Error::nats(e)),
    }
}

fn is_stream_not_found(e: &jetstream::context::GetStreamError) -> bool {
    matches!(e.kind(), jetstream::context::GetStreamErrorKind::JetStream(j)
        if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND)
}

fn stream_matches(have: &stream::Config, want: &stream::Config) -> bool {
    have.subjects == want.subjects
        && have.num_replicas == want.num_replicas
        && have.max_bytes == want.max_bytes
        && have.discard == want.discard
        && have.max_age == want.max_age
        && have.duplicate_window == want.duplicate_window
        && have.description == want.description
        && have.allow_message_schedules == want.allow_message_schedules
}

/// Settings of a stage's durable pull consumer.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    /// Redelivery timeout.
    pub ack_wait: Duration,
    /// Most unacknowledged messages the server lets this consumer have.
    pub max_ack_pending: i64,
}

/// Creates or updates the durable pull consumer of `stage`.
pub async fn ensure_consumer(
    js: &jetstream::Context,
    topo: &Topology,
    stage: Stage,
    settings: &ConsumerSettings,
) -> Result<(consumer::PullConsumer, Provisioned), Error> {
    let (stream_name, subjects) = topo.input_of(stage);
    ensure_consumer_on(
        js,
        &stream_name,
        &topo.consumer(stage),
        &format!("crawlq {} stage", stage.as_str()),
        subjects,
        settings,
    )
    .await
}

/// Creates or updates a durable pull consumer `name` on `stream_name`,
/// filtered on `subjects`.
pub async fn ensure_consumer_on(
    js: &jetstream::Context,
    stream_name: &str,
    name: &str,
    description: &str,
    subjects: Vec<String>,
    settings: &ConsumerSettings,
) -> Result<(consumer::PullConsumer, Provisioned), Error> {
    let stream = js.get_stream(stream_name).await.map_err(Error::nats)?;
    let name = name.to_string();
    let (filter_subject, filter_subjects) = match <[String; 1]>::try_from(subjects) {
        Ok([one]) => (one, Vec::new()),
        Err(many) => (String::new(), many),
    };
    let want = consumer::pull::Config {
        durable_name: Some(name.clone()),
        description: Some(description.to_string()),
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait: settings.ack_wait,
        // The worker counts deliveries and dead-letters itself, so the
        // server never silently drops a message after max_deliver.
        max_deliver: -1,
        filter_subject,
        filter_subjects,
        max_ack_pending: settings.max_ack_pending,
        ..Default::default()
    };
    match stream.consumer_info(&name).await {
        Ok(info) => {
            let have = &info.config;
            let same = have.ack_wait == want.ack_wait
                && have.max_ack_pending == want.max_ack_pending
                && have.filter_subject == want.filter_subject
                && have.filter_subjects == want.filter_subjects
                && have.max_deliver == want.max_deliver
                && have.description == want.description;
            let outcome = if same {
                Provisioned::Unchanged
            } else {
                tracing::info!(consumer = %name, "updating consumer settings");
                // Creating a durable that exists updates it (nats-server 2.9+).
                stream.create_consumer(want).await.map_err(Error::nats)?;
                Provisioned::Updated
            };
            let consumer = stream.get_consumer(&name).await.map_err(Error::Nats)?;
            Ok((consumer, outcome))
        }
        Err(_) => {
            tracing::info!(consumer = %name, "creating consumer");
            let consumer = stream.create_consumer(want).await.map_err(Error::nats)?;
            Ok((consumer, Provisioned::Created))
        }
    }
}

/// Opens a key-value bucket, creating it with `max_age` if it is missing.
///
/// The bucket's stream is created here, with the settings the KV
/// convention prescribes, because the client's own `create_key_value`
/// first queries account info in a form nats-server 2.9 does not answer.
pub async fn ensure_kv(
    js: &jetstream::Context,
    bucket: &str,
    max_age: Duration,
    replicas: usize,
) -> Result<kv::Store, Error> {
    ensure_kv_stored(js, bucket, max_age, replicas, stream::StorageType::File).await
}

/// [`ensure_kv`] with the storage chosen: memory for state that is
/// rewritten many times a second and cheap to lose (host politeness),
/// where a file bucket would sync every write to disk.
pub async fn ensure_kv_stored(
    js: &jetstream::Context,
    bucket: &str,
    max_age: Duration,
    replicas: usize,
    storage: stream::StorageType,
) -> Result<kv::Store, Error> {
    if let Ok(store) = js.get_key_value(bucket).await {
        return Ok(store);
    }
    let cfg = stream::Config {
        name: format!("KV_{bucket}"),
        description: Some(format!("crawlq key-value bucket {bucket}")),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: 1,
        max_age,
        storage,
        num_replicas: replicas,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: stream::DiscardPolicy::New,
        duplicate_window: Duration::from_secs(120).min(max_age.max(Duration::from_secs(1))),
        ..Default::default()
    };
    if let Err(e) = js.create_stream(cfg).await {
        // Another replica may have created it at the same moment.
        tracing::debug!(bucket, error = %e, "creating kv bucket stream");
    }
    js.get_key_value(bucket).await.map_err(Error::nats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failed_read_skips_no_message_and_a_deleted_one_is_passed() {
        use stream::{RawMessageError, RawMessageErrorKind as Kind};
        let msg = |seq| StoredMessage {
            seq,
            subject: "s".into(),
            headers: async_nats::HeaderMap::new(),
            payload: bytes::Bytes::new(),
            time_ms: 0,
        };
        // Message 2 was deleted; message 4 fails once (the server went
        // away), then reads.
        let mut failed = false;
        let mut get = |seq: u64| {
            let r = match seq {
                2 => Err(RawMessageError::new(Kind::NoMessageFound)),
                4 if !failed => {
                    failed = true;
                    Err(RawMessageError::new(Kind::Other))
                }
                _ => Ok(msg(seq)),
            };
            async move { r }
        };
        let mut next = 1;
        let seqs = |v: Vec<StoredMessage>| v.iter().map(|m| m.seq).collect::<Vec<_>>();
        let first = read_range(&mut next, 5, &mut get).await.unwrap();
        assert_eq!(seqs(first), [1, 3]);
        assert_eq!(next, 4, "the failed message is read next time");
        let second = read_range(&mut next, 5, &mut get).await.unwrap();
        assert_eq!(seqs(second), [4, 5]);
        // A failure before anything was read is the caller's to see.
        let mut next = 1;
        let err = read_range(&mut next, 3, |_| async {
            Err(RawMessageError::new(Kind::Other))
        })
        .await;
        assert!(err.is_err());
        assert_eq!(next, 1);
    }

    #[test]
    fn a_seed_list_is_a_list_of_servers() {
        assert_eq!(server_list("nats://127.0.0.1:4222").unwrap().len(), 1);
        let list =
            server_list("nats://127.0.0.1:4222, nats://127.0.0.1:4223,nats://n3:4222").unwrap();
        assert_eq!(list.len(), 3);
        assert!(server_list("").is_err());
        assert!(server_list("nats://host:notaport").is_err());
    }

    #[test]
    fn server_versions_older_than_2_12_are_refused() {
        assert!(check_server_version("2.15.1").is_ok());
        assert!(check_server_version("2.12.0-RC.1").is_ok());
        assert!(check_server_version("3.0.0").is_ok());
        let old = check_server_version("2.9.10").unwrap_err().to_string();
        assert!(old.contains("too old") && old.contains("2.12"), "{old}");
        assert!(check_server_version("garbage").is_err());
    }
}

/// One message read back from a stream.
#[derive(Debug, Clone)]
pub struct StoredMessage {
    /// Its sequence in the stream.
    pub seq: u64,
    /// Subject.
    pub subject: String,
    /// Headers (empty when none).
    pub headers: async_nats::HeaderMap,
    /// Body.
    pub payload: bytes::Bytes,
    /// When the stream stored it, Unix ms.
    pub time_ms: i64,
}

/// Reads a stream's messages in order; each [`StreamReader::read_new`]
/// returns what arrived since the last. The one way crawlq's commands and
/// tests read a stream back.
pub struct StreamReader {
    stream: stream::Stream,
    next: u64,
}

impl StreamReader {
    /// From the stream's first message.
    pub async fn from_start(js: &jetstream::Context, name: &str) -> Result<StreamReader, Error> {
        let mut stream = js.get_stream(name).await.map_err(Error::nats)?;
        let first = stream
            .info()
            .await
            .map_err(Error::nats)?
            .state
            .first_sequence;
        Ok(StreamReader {
            stream,
            next: first.max(1),
        })
    }

    /// From the last `n` messages (all of them when fewer).
    pub async fn last(js: &jetstream::Context, name: &str, n: u64) -> Result<StreamReader, Error> {
        let mut reader = Self::from_start(js, name).await?;
        let last = reader.last_sequence().await?;
        reader.next = reader.next.max((last + 1).saturating_sub(n));
        Ok(reader)
    }

    /// Only messages stored from now on.
    pub async fn from_end(js: &jetstream::Context, name: &str) -> Result<StreamReader, Error> {
        let mut reader = Self::from_start(js, name).await?;
        reader.next = reader.last_sequence().await? + 1;
        Ok(reader)
    }

    async fn last_sequence(&mut self) -> Result<u64, Error> {
        Ok(self
            .stream
            .info()
            .await
            .map_err(Error::nats)?
            .state
            .last_sequence)
    }

    /// Every message stored since the last read (deleted ones skipped).
    /// A read that fails (the server going away mid-way) stops there: what
    /// was read is returned, and the next call starts at the message that
    /// failed, so none is skipped; the error is returned when nothing was.
    pub async fn read_new(&mut self) -> Result<Vec<StoredMessage>, Error> {
        let last = self.last_sequence().await?;
        let stream = &self.stream;
        read_range(&mut self.next, last, |seq| async move {
            let m = stream.get_raw_message(seq).await?;
            Ok(StoredMessage {
                seq,
                subject: m.subject.to_string(),
                headers: m.headers,
                payload: m.payload,
                time_ms: (m.time.unix_timestamp_nanos() / 1_000_000) as i64,
            })
        })
        .await
    }
}

/// Reads messages `*next..=last` with `get`, moving `*next` past each one
/// read or deleted; stops at the first other failure (see
/// [`StreamReader::read_new`]).
async fn read_range<F, Fut>(
    next: &mut u64,
    last: u64,
    mut get: F,
) -> Result<Vec<StoredMessage>, Error>
where
    F: FnMut(u64) -> Fut,
    Fut: std::future::Future<Output = Result<StoredMessage, stream::RawMessageError>>,
{
    let mut out = Vec::new();
    while *next <= last {
        match get(*next).await {
            Ok(m) => out.push(m),
            Err(e) if is_deleted(&e) => {}
            Err(e) if out.is_empty() => return Err(Error::nats(e)),
            Err(_) => return Ok(out),
        }
        *next += 1;
    }
    Ok(out)
}

/// The message is gone from the stream (deleted, or aged out), not
/// unreachable.
fn is_deleted(e: &stream::RawMessageError) -> bool {
    e.kind() == stream::RawMessageErrorKind::NoMessageFound
}
