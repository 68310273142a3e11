//! A real S3 server, `s3s-fs`, on a dynamic loopback port with a temp root.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::{free_port, wait_for_port};

/// Access key the test server accepts.
pub const ACCESS_KEY: &str = "crawlq-test";
/// Secret key the test server accepts.
pub const SECRET_KEY: &str = "crawlq-test-secret";

/// A running `s3s-fs`. Killed on drop; its root dir is removed.
pub struct S3Server {
    child: Option<Child>,
    port: u16,
    root: TempDir,
}

impl S3Server {
    /// Starts a server and creates `bucket` in it.
    pub async fn start(bucket: &str) -> S3Server {
        let root = tempfile::Builder::new()
            .prefix("crawlq-s3-")
            .tempdir()
            .expect("create s3 root");
        std::fs::create_dir_all(root.path().join(bucket)).expect("create bucket dir");
        let mut server = S3Server {
            child: None,
            port: free_port(),
            root,
        };
        server.spawn().await;
        server
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The folder the server keeps buckets in (`{root}/{bucket}/{key}`).
    pub fn root(&self) -> &std::path::Path {
        self.root.path()
    }

    /// The environment an S3 client needs to reach this server.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// Stops the server (SIGKILL) without removing its data.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and root.
    pub async fn restart(&mut self) {
        self.stop();
        self.spawn().await;
    }

    async fn spawn(&mut self) {
        let child = Command::new(s3s_fs_binary())
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(self.root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start s3s-fs (install it with `cargo install s3s-fs --features binary`)");
        self.child = Some(child);
        wait_for_port(self.port, Duration::from_secs(15))
            .await
            .expect("s3s-fs did not start");
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn s3s_fs_binary() -> PathBuf {
    std::env::var_os("S3S_FS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("s3s-fs"))
}
