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

/// A 3-node JetStream cluster (`sync_interval: always`), each node on its
/// own dynamic ports and store dir. Killed on drop.
pub struct NatsCluster {
    nodes: Vec<Node>,
    dir: TempDir,
}

struct Node {
    child: Option<Child>,
    port: u16,
    cluster_port: u16,
}

impl NatsCluster {
    /// Starts three nodes and waits for a JetStream meta leader.
    pub async fn start() -> NatsCluster {
        let dir = tempfile::Builder::new()
            .prefix("crawlq-nats-cluster-")
            .tempdir()
            .expect("create cluster dir");
        let nodes = (0..3)
            .map(|_| Node {
                child: None,
                port: free_port(),
                cluster_port: free_port(),
            })
            .collect();
        let mut cluster = NatsCluster { nodes, dir };
        for i in 0..3 {
            cluster.spawn(i);
        }
        for i in 0..3 {
            wait_for_port(cluster.nodes[i].port, Duration::from_secs(15))
                .await
                .expect("cluster node did not start");
        }
        cluster.wait_jetstream().await;
        cluster
    }

    /// The seed list of every node, comma-separated.
    pub fn url(&self) -> String {
        self.urls().join(",")
    }

    /// Each node's URL.
    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("nats://127.0.0.1:{}", n.port))
            .collect()
    }

    /// The node named `name` (`n1`, `n2`, `n3`: its index plus one).
    pub fn index_of(name: &str) -> Option<usize> {
        name.strip_prefix('n')?
            .parse::<usize>()
            .ok()?
            .checked_sub(1)
    }

    /// The process id of node `i`, while it runs.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.nodes[i].child.as_ref().map(Child::id)
    }

    /// Kills node `i` with SIGKILL.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops node `i` gracefully (SIGTERM, lame-duck), waiting for it.
    pub fn stop(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let _ = child.wait();
        }
    }

    /// Sends `sig` (`STOP`, `CONT`) to node `i`.
    pub fn signal(&self, i: usize, sig: &str) {
        if let Some(pid) = self.pid(i) {
            let _ = Command::new("kill")
                .arg(format!("-{sig}"))
                .arg(pid.to_string())
                .status();
        }
    }

    /// Starts node `i` again on its ports and store dir, and waits for the
    /// cluster to answer JetStream requests.
    pub async fn restart(&mut self, i: usize) {
        self.kill(i);
        self.spawn(i);
        wait_for_port(self.nodes[i].port, Duration::from_secs(15))
            .await
            .expect("cluster node did not restart");
        self.wait_jetstream().await;
    }

    fn spawn(&mut self, i: usize) {
        let routes: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("nats://127.0.0.1:{}", n.cluster_port))
            .collect();
        let store = self.dir.path().join(format!("n{}", i + 1));
        let conf = format!(
            "server_name: n{}\nlisten: 127.0.0.1:{}\njetstream {{\n  store_dir: {:?}\n  sync_interval: always\n}}\ncluster {{\n  name: crawlq-test\n  listen: 127.0.0.1:{}\n  routes: [{}]\n}}\n",
            i + 1,
            self.nodes[i].port,
            store,
            self.nodes[i].cluster_port,
            routes.join(", ")
        );
        let path = self.dir.path().join(format!("n{}.conf", i + 1));
        std::fs::write(&path, conf).expect("write node config");
        let child = Command::new(nats_server_binary())
            .arg("-c")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server (`make deps` installs it into .tools/bin)");
        self.nodes[i].child = Some(child);
    }

    /// Waits until some running node answers a JetStream request with
    /// "stream not found": the meta group has a leader.
    async fn wait_jetstream(&self) {
        for _ in 0..600 {
            for (i, url) in self.urls().iter().enumerate() {
                if self.nodes[i].child.is_none() {
                    continue;
                }
                let Ok(client) = async_nats::connect(url).await else {
                    continue;
                };
                let js = async_nats::jetstream::new(client);
                if let Err(e) = js.get_stream("CRAWLQ_TESTKIT_PROBE").await {
                    if let async_nats::jetstream::context::GetStreamErrorKind::JetStream(j) =
                        e.kind()
                    {
                        if j.error_code() == async_nats::jetstream::ErrorCode::STREAM_NOT_FOUND {
                            return;
                        }
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the JetStream cluster elected no meta leader");
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.signal(i, "CONT");
            self.kill(i);
        }
    }
}
