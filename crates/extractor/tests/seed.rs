//! The example record: a news page in the layout of the original archive's
//! source, built around the content of the repository's own example record
//! (`crates/record/tests/fixtures/example-record.md`), with the boilerplate
//! such a page carries. Its record must have the example's exact header
//! lines, every article paragraph in order, and none of the boilerplate.
//! The article is invented for the test; its URL is on the source's host
//! so that the source's site rule is the one exercised.

use crawlq_extractor::{render, Extracted, Extractor, Page};
use crawlq_record::parse_header;

fn seed() -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../record/tests/fixtures/example-record.md"
    );
    std::fs::read_to_string(path).expect("crates/record/tests/fixtures/example-record.md")
}

/// Paragraph texts of the seed's article part (before the share block).
fn seed_paragraphs(body: &str) -> Vec<String> {
    let article = &body[..body.find("分享").expect("seed has a share block")];
    article
        .split("<p>")
        .skip(1)
        .map(|p| {
            let inner = p.split("</p>").next().unwrap_or_default();
            let text = inner.replace("<strong>", "").replace("</strong>", "");
            text.trim().to_string()
        })
        .filter(|p| !p.is_empty())
        .collect()
}

fn rfi_page(title: &str, url: &str, paragraphs: &[String]) -> String {
    let (lead, rest) = paragraphs.split_first().unwrap();
    let body: String = rest.iter().map(|p| format!("<p>{p}</p>\n")).collect();
    format!(
        r#"<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">
<title>{title} - RFI - 法国国际广播电台</title>
<meta property="og:title" content="{title}">
<meta property="og:site_name" content="RFI">
<meta property="og:type" content="article">
<link rel="canonical" href="{url}">
<script type="application/ld+json">{{"@context":"https://schema.org","@type":"NewsArticle","headline":"{title}","datePublished":"2023-11-09T11:45:01.000Z","author":{{"@type":"Organization","name":"RFI"}}}}</script>
<script>window.dataLayer=[{{"page":"article"}}];</script><style>.t-content__body p{{margin:0}}</style>
</head><body>
<header class="m-header"><nav class="m-nav"><a href="/cn/">首页</a><a href="/cn/中国/">中国</a><a href="/cn/亚洲/">亚洲</a></nav>
<form class="m-search"><input name="q"><button>搜索</button></form></header>
<main><article class="t-content t-content--article">
<div class="t-content__section-pt">亚洲</div>
<h1 class="t-content__title">{title}</h1>
<div class="t-content__dates">发表时间： 09/11/2023 - 12:42</div>
<div class="m-em-social-sharing"><div>分享 :</div><a href="https://www.facebook.com/dialog/share?x">Facebook</a><a href="whatsapp://send?text=x">WhatsApp</a></div>
<div class="t-content__main-media"><figure class="m-figure"><img src="https://img.example.cn/media/2023/11/flood-warning-centre.jpg" alt="预警指挥中心"><figcaption>港湾市洪水预警指挥中心 2023年11月9日。</figcaption></figure></div>
<div class="t-content__chapo"><strong>{lead}</strong></div>
<div class="t-content__body u-clearfix">
{body}<div data-selfpromo-newsletter><p>订阅RFI新闻简报，每日推送！</p><button>订阅</button></div>
<div data-selfpromo-app><p>下载RFI应用程序，随时收听。</p></div>
</div>
<div class="m-feed-sharing"><div>分享 :</div><a href="https://x.com/intent/tweet?url=x">X</a><span data-root-share><share-button></share-button></span></div>
<div class="t-content__tags"><a href="/cn/tag/朝鲜/">朝鲜</a><a href="/cn/tag/俄罗斯/">俄罗斯</a></div>
<aside class="m-related-articles"><div role="heading">同一主题</div>
<div data-article-list><a href="/cn/国际/20231106-韩统一部长"><h2>韩统一部长：朝鲜推迟射星或因接受俄罗斯技术援助</h2></a></div>
<div data-article-list><a href="/cn/亚洲/20231107-韩国统一部长"><h2>韩国统一部长：敦促中方勿强制遣返脱北者</h2></a></div></aside>
</article></main>
<footer class="m-footer"><p>© 2023 RFI 法国国际广播电台 版权所有</p><a href="/cn/关于我们/">关于我们</a></footer>
<script src="https://static.rfi.fr/app.js"></script>
</body></html>"#
    )
}

#[test]
fn example_record_keeps_the_header_and_every_paragraph_and_drops_boilerplate() {
    let seed = seed();
    let (ts, title, url) = parse_header(&seed).expect("seed header parses");
    let body = seed.splitn(5, '\n').nth(4).unwrap();
    let paragraphs = seed_paragraphs(body);
    assert!(
        paragraphs.len() >= 20,
        "seed has {} paragraphs",
        paragraphs.len()
    );

    let decoded = percent_decode(&url);
    let page_html = rfi_page(&title, &decoded, &paragraphs);
    let fetched = url::Url::parse(&decoded).unwrap();
    let page = Page {
        body: page_html.as_bytes(),
        content_type: Some("text/html; charset=utf-8"),
        content_language: None,
        url: &fetched,
        fetched_at: 1_699_600_000_000,
        hints: None,
    };
    let Extracted::Article(record) = Extractor::default().extract(page).unwrap() else {
        panic!("not an article")
    };
    let md = render(&record);

    // The exact header lines of the example.
    let want: Vec<&str> = seed.lines().take(4).collect();
    let got: Vec<&str> = md.lines().take(4).collect();
    assert_eq!(got, want);
    assert_eq!(record.published_at, ts);

    // Every paragraph, in order.
    let mut at = 0;
    for p in &paragraphs {
        let found = record.content_html[at..]
            .find(p.as_str())
            .unwrap_or_else(|| panic!("missing or out of order: {p}"));
        at += found + p.len();
    }
    // The lead image survives, as in the example.
    assert!(record.content_html.contains("flood-warning-centre.jpg"));
    // None of the boilerplate.
    for junk in [
        "分享",
        "同一主题",
        "facebook",
        "whatsapp",
        "韩统一部长",
        "订阅RFI",
        "下载RFI",
        "首页",
        "版权所有",
        "搜索",
        "dataLayer",
        "data-",
        "<script",
        "<aside",
        "<nav",
        "<button",
    ] {
        assert!(
            !record.content_html.contains(junk),
            "boilerplate `{junk}` in content: {}",
            record.content_html
        );
    }
    // Valid structure: no attribute glued to a tag name, one line.
    assert!(!record.content_html.contains('\n'));
    assert!(
        !record.content_html.contains("<asidedata") && !record.content_html.contains("<divdata")
    );
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}
