//! Site rules for the archive's sources, on fixture pages built from the
//! structure of each site's public article pages.

use crawlq_extractor::{Extracted, Extractor, Page};

const PARAGRAPHS: [&str; 3] = ["第一段：", "第二段：", "第三段："];
const BOILERPLATE: [&str; 8] = [
    "首页",
    "相关报道标题",
    "版权所有",
    "分享",
    "广告",
    "订阅",
    "热读",
    "Facebook",
];

fn check(fixture: &str, url: &str) {
    let path = format!(
        "{}/tests/fixtures/sites/{fixture}",
        env!("CARGO_MANIFEST_DIR")
    );
    let html = std::fs::read(&path).unwrap();
    let url = url::Url::parse(url).unwrap();
    let ex = Extractor::default();
    assert!(
        ex.rules.find(&url).is_some(),
        "{fixture}: no rule for {url}"
    );
    let page = Page {
        body: &html,
        content_type: Some("text/html; charset=utf-8"),
        content_language: None,
        url: &url,
        fetched_at: 1_699_600_000_000,
        hints: None,
    };
    let record = match ex.extract(page).unwrap() {
        Extracted::Article(r) => r,
        other => panic!("{fixture}: not an article: {other:?}"),
    };
    let mut at = 0;
    for p in PARAGRAPHS {
        let found = record.text[at..].find(p).unwrap_or_else(|| {
            panic!(
                "{fixture}: `{p}` missing or out of order in {}",
                record.text
            )
        });
        at += found;
    }
    for junk in BOILERPLATE {
        assert!(
            !record.content_html.contains(junk),
            "{fixture}: boilerplate `{junk}` kept: {}",
            record.content_html
        );
    }
    assert_eq!(record.title, "香港选举", "{fixture}");
}

#[test]
fn rfi() {
    check("rfi.html", "https://www.rfi.fr/cn/中国/20231109-香港选举");
}

#[test]
fn bbc() {
    check(
        "bbc.html",
        "https://www.bbc.com/zhongwen/simp/chinese-news-67345678",
    );
}

#[test]
fn dw() {
    check("dw.html", "https://www.dw.com/zh/香港选举/a-67345678");
}

#[test]
fn voa() {
    check(
        "voa.html",
        "https://www.voachinese.com/a/hong-kong-election-20231109/7345678.html",
    );
}

#[test]
fn nyt() {
    check(
        "nyt.html",
        "https://cn.nytimes.com/china/20231109/hong-kong-election/",
    );
}

#[test]
fn rfa() {
    check(
        "rfa.html",
        "https://www.rfa.org/mandarin/yataibaodao/gangtai/hk-election-11092023.html",
    );
}

#[test]
fn china_digital_times() {
    check(
        "cdt.html",
        "https://chinadigitaltimes.net/chinese/701234.html",
    );
}
