//! A real `nats-server` with JetStream, on a dynamic port and a temp store dir.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::{free_port, wait_for_port};

/// A running `nats-server -js`. Killed on drop; its store dir is removed.
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    store: TempDir,
    max_payload: Option<u32>,
}

impl NatsServer {
    /// Starts a server with the default settings (1 MiB max payload).
    pub async fn start() -> NatsServer {
        Self::start_with(None).await
    }

    /// Starts a server with a custom `max_payload` in bytes.
    pub async fn start_with(max_payload: Option<u32>) -> NatsServer {
        let store = tempfile::Builder::new()
            .prefix("crawlq-nats-")
            .tempdir()
            .expect("create nats store dir");
        let mut server = NatsServer {
            child: None,
            port: free_port(),
            store,
            max_payload,
        };
        server.spawn().await;
        server
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The JetStream store dir.
    pub fn store_dir(&self) -> &Path {
        self.store.path()
    }

    /// Kills the server with SIGKILL, like a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and store dir.
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }

    async fn spawn(&mut self) {
        let conf = self.write_config();
        let child = Command::new(nats_server_binary())
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server (`make deps` installs it into .tools/bin)");
        self.child = Some(child);
        wait_for_port(self.port, Duration::from_secs(15))
            .await
            .expect("nats-server did not start");
        // JetStream may need a moment after the port opens, notably on restart.
        let url = self.url();
        for _ in 0..200 {
            if let Ok(client) = async_nats::connect(&url).await {
                // "stream not found" proves the JetStream API answers.
                let js = async_nats::jetstream::new(client);
                if let Err(e) = js.get_stream("CRAWLQ_TESTKIT_PROBE").await {
                    if matches!(
                        e.kind(),
                        async_nats::jetstream::context::GetStreamErrorKind::JetStream(_)
                    ) {
                        return;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("JetStream on {url} did not become ready");
    }

    fn write_config(&self) -> PathBuf {
        let path = self.store.path().join("nats.conf");
        let mut conf = format!(
            "listen: 127.0.0.1:{}\njetstream {{\n  store_dir: {:?}\n}}\n",
            self.port,
            self.store.path().join("js")
        );
        if let Some(max) = self.max_payload {
            conf.push_str(&format!("max_payload: {max}\n"));
        }
        std::fs::write(&path, conf).expect("write nats.conf");
        path
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The nats-server the tests run: `NATS_SERVER_BIN`, else the pinned one
/// `make deps` installs into the repository's `.tools/bin`.
pub fn nats_server_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("NATS_SERVER_BIN") {
        return PathBuf::from(bin);
    }
    let pinned = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools/bin/nats-server");
    if pinned.exists() {
        return pinned;
    }
    panic!(
        "no nats-server at {}: run `make deps` (it installs nats-server {} there), \
         or set NATS_SERVER_BIN",
        pinned.display(),
        crate::NATS_SERVER_VERSION
    )
}
