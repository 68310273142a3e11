//! Serves the bundled sample news site: `crawlq-sample-site [ADDR]`
//! (default 127.0.0.1:18080). Prints its base URL, then serves until killed.

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18080".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let base = format!("http://{}", listener.local_addr()?);
    println!("{base}");
    axum::serve(listener, crawlq_testkit::sample_site::router(base)).await
}
