//! Serves the generated news site for benchmarks:
//! `crawlq-news-site HOSTS N URLS_FILE` serves 127.0.0.1..=127.0.0.HOSTS on
//! one free port, writes the URLs of articles 1..=N to URLS_FILE, prints
//! the port, then serves until killed. `crawlq-news-site page N` prints
//! article N's HTML.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() == 2 && args[0] == "page" {
        print!("{}", crawlq_testkit::news_site::page(args[1].parse()?));
        return Ok(());
    }
    let [hosts, n, file] = args.as_slice() else {
        anyhow::bail!("usage: crawlq-news-site HOSTS N URLS_FILE | page N");
    };
    let site = crawlq_testkit::news_site::NewsSite::serve(hosts.parse()?).await;
    let mut urls = site.urls(n.parse()?).join("\n");
    urls.push('\n');
    std::fs::write(file, urls)?;
    println!("{}", site.hosts()[0].port());
    std::future::pending::<()>().await;
    Ok(())
}
