//! The image's root filesystem, as `make image` assembles it with no base
//! image (deploy/image/rootfs.sh), runs on its own: under chroot, as the
//! nonroot user 65532, `crawlq --version` answers and a storage service
//! becomes ready on a local archive. Needs root for chroot; says so and
//! skips otherwise.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crawlq_testkit::{eventually, free_port, unique_prefix, NatsServer};

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

#[tokio::test]
async fn the_image_rootfs_runs_the_binary_and_a_service() {
    if !is_root() {
        eprintln!("SKIPPED: chroot needs root");
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let rootfs = root.path().join("rootfs");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/image/rootfs.sh");
    let built = Command::new(&script)
        .arg(crawlq_e2e::binary())
        .arg(&rootfs)
        .status()
        .unwrap();
    assert!(built.success(), "rootfs.sh failed");

    let version = Command::new("chroot")
        .args(["--userspec=65532:65532"])
        .arg(&rootfs)
        .args(["/crawlq", "--version"])
        .output()
        .unwrap();
    assert!(
        version.status.success(),
        "{}",
        String::from_utf8_lossy(&version.stderr)
    );
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("crawlq "));

    let nats = NatsServer::start().await;
    let port = free_port();
    let mut service = Command::new("chroot")
        .args(["--userspec=65532:65532"])
        .arg(&rootfs)
        .args(["/crawlq", "storage"])
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("CRAWLQ_NATS_URL", nats.url())
        .env("CRAWLQ_SUBJECT_PREFIX", unique_prefix())
        .env("CRAWLQ_STORE_URL", "/data/archive")
        .env("CRAWLQ_METRICS_ADDR", format!("127.0.0.1:{port}"))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ready = eventually(Duration::from_secs(30), || async {
        reqwest::get(format!("http://127.0.0.1:{port}/readyz"))
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await;
    let _ = service.kill();
    let _ = service.wait();
    assert!(ready, "the storage service in the image never became ready");
    assert!(
        rootfs.join("data/archive").is_dir(),
        "it wrote its archive as 65532"
    );
}
