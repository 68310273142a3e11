//! Host politeness shared by replicas through a real nats-server: two
//! `SharedHosts` on one bucket stand for two crawler replicas.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, kv, stream::StorageType};
use crawlq_crawler::politeness::SharedHosts;
use crawlq_testkit::{unique_prefix, NatsServer};

async fn bucket(nats: &NatsServer) -> kv::Store {
    let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    crawlq_runtime::nats::ensure_kv_stored(
        &js,
        &format!("{}_hosts", unique_prefix()),
        Duration::from_secs(3600),
        1,
        StorageType::Memory,
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_the_hosts_places_in_flight_and_its_spacing() {
    let nats = NatsServer::start().await;
    let kv = bucket(&nats).await;
    let replicas = [
        Arc::new(SharedHosts::new(kv.clone())),
        Arc::new(SharedHosts::new(kv.clone())),
    ];
    // 2 places on the host, no delay: 12 requests of 100 ms from two
    // replicas never run more than 2 at once.
    let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..12 {
        let (shared, running, most) = (replicas[i % 2].clone(), running.clone(), most.clone());
        tasks.push(tokio::spawn(async move {
            let (lease, wait) = shared
                .reserve("busy.example", Duration::ZERO, 2, Duration::from_secs(30))
                .await
                .unwrap()
                .unwrap();
            tokio::time::sleep(wait).await;
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(100)).await;
            running.fetch_sub(1, Ordering::SeqCst);
            lease.release().await;
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let took = t0.elapsed();
    assert_eq!(most.load(Ordering::SeqCst), 2, "requests in flight at once");
    assert!(took >= Duration::from_millis(600), "{took:?}");

    // A 250 ms delay: starts from either replica are 250 ms apart.
    let mut starts = Vec::new();
    for i in 0..4 {
        let (lease, wait) = replicas[i % 2]
            .reserve(
                "slow.example",
                Duration::from_millis(250),
                4,
                Duration::from_secs(30),
            )
            .await
            .unwrap()
            .unwrap();
        tokio::time::sleep(wait).await;
        starts.push(Instant::now());
        drop(lease);
    }
    for w in starts.windows(2) {
        assert!(
            w[1] - w[0] >= Duration::from_millis(240),
            "{:?}",
            w[1] - w[0]
        );
    }

    // A host whose next start is further away than the caller waits is
    // refused with the wait, and nothing is taken.
    let held = replicas[0]
        .reserve(
            "held.example",
            Duration::from_secs(60),
            1,
            Duration::from_secs(1),
        )
        .await
        .unwrap()
        .unwrap();
    let refused = replicas[1]
        .reserve(
            "held.example",
            Duration::from_secs(60),
            1,
            Duration::from_secs(1),
        )
        .await
        .unwrap();
    assert!(refused.is_err());
    held.0.release().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_replicas_place_lapses_and_a_live_ones_is_renewed() {
    let nats = NatsServer::start().await;
    let kv = bucket(&nats).await;
    let lease = Duration::from_millis(900);
    // A replica that dies holding the host's only place: its runtime goes
    // away with the renewal, and the lease is never given back.
    {
        let kv = kv.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async {
                let shared = SharedHosts::with_lease(kv, lease);
                let (held, _) = shared
                    .reserve("dead.example", Duration::ZERO, 1, Duration::from_secs(5))
                    .await
                    .unwrap()
                    .unwrap();
                std::mem::forget(held);
            });
        })
        .join()
        .unwrap();
    }
    let live = SharedHosts::with_lease(kv.clone(), lease);
    let t0 = Instant::now();
    let (next, _) = live
        .reserve("dead.example", Duration::ZERO, 1, Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(500) && waited < Duration::from_secs(3),
        "the dead replica's place came free after {waited:?}"
    );
    // Held by a live replica for three lease lengths: renewed, so the
    // other replica still finds the host full.
    tokio::time::sleep(lease * 3).await;
    let other = SharedHosts::with_lease(kv, lease);
    let refused = other
        .reserve(
            "dead.example",
            Duration::ZERO,
            1,
            Duration::from_millis(300),
        )
        .await
        .unwrap();
    assert!(refused.is_err(), "a renewed place was taken");
    next.release().await;
    let (_again, _) = other
        .reserve("dead.example", Duration::ZERO, 1, Duration::from_secs(1))
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_bucket_is_created_again_after_a_server_restart() {
    let mut nats = NatsServer::start().await;
    let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let name = format!("{}_hosts", unique_prefix());
    let shared = SharedHosts::open(js.clone(), &name, 1).await.unwrap();
    let (lease, _) = shared
        .reserve("a.example", Duration::ZERO, 1, Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    lease.release().await;
    // A memory stream does not survive its server's restart.
    nats.restart().await;
    let t0 = Instant::now();
    let reserved = loop {
        match shared
            .reserve("a.example", Duration::ZERO, 1, Duration::from_secs(5))
            .await
        {
            Ok(r) => break r,
            Err(e) if t0.elapsed() < Duration::from_secs(30) => {
                eprintln!("while the client reconnects: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("the bucket was not created again: {e}"),
        }
    };
    assert!(reserved.is_ok());
    assert!(js.get_key_value(&name).await.is_ok());
}
