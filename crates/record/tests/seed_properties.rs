//! Property tests for the seed-format renderer: whatever the title and URL,
//! the rendered record parses back into the same title and URL.

use crawlq_proto::v1::SnapshotRecord;
use crawlq_record::seed::{parse_header, render};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn rendered_header_parses_back(
        title in "\\PC{0,60}",
        path in "[a-zA-Z0-9 ()\\[\\]_~\\-/%\u{4e00}-\u{4e2f}]{0,30}",
        ts in 0i64..4_102_444_800_000,
        html in "\\PC{0,40}",
    ) {
        // Paths starting with `//` or `\\` name another host; skip them
        // (after the leading spaces the URL parser strips).
        let lead = path.trim_start_matches(' ');
        prop_assume!(!lead.starts_with("//") && !lead.starts_with('\\'));
        let joined = url::Url::parse("https://news.example.com/").unwrap().join(&path);
        prop_assume!(joined.is_ok());
        let url = joined.unwrap();
        let canonical = crawlq_record::seed::canonical_url(&url);
        let record = SnapshotRecord { title: title.clone(), url: canonical.clone(), published_at: ts, content_html: html, ..Default::default() };
        let md = render(&record);
        let (got_ts, got_title, got_url) = parse_header(&md).expect("header parses");
        prop_assert_eq!(got_ts, ts);
        prop_assert_eq!(got_title, title.split_whitespace().collect::<Vec<_>>().join(" "));
        prop_assert_eq!(&got_url, &canonical);
        let parsed = url::Url::parse(&got_url).unwrap();
        prop_assert_eq!(parsed.host_str(), Some("news.example.com"));
        // The body is one line, and the record ends with exactly one newline.
        prop_assert_eq!(md.lines().count(), 5);
        prop_assert!(md.ends_with('\n'));
    }
}
