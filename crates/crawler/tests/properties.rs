//! Property tests for URL normalisation and intake parsing.

use crawlq_crawler::normalize::{default_strip, normalize};
use proptest::prelude::*;

fn strip() -> Vec<String> {
    default_strip()
}

fn url_strategy() -> impl Strategy<Value = String> {
    (
        prop_oneof![
            Just("http"),
            Just("https"),
            Just("HTTP"),
            Just("ftp"),
            Just("javascript")
        ],
        "[a-zA-Z0-9-]{1,12}(\\.[a-zA-Z]{2,6}){1,2}",
        prop_oneof![
            Just(String::new()),
            Just(":80".to_string()),
            Just(":443".to_string()),
            Just(":8080".to_string())
        ],
        "(/[a-zA-Z0-9._~%\\-]{0,10}){0,4}",
        proptest::collection::vec(
            (
                "(utm_[a-z]{1,6}|fbclid|gclid|[a-z]{1,6})",
                "[a-zA-Z0-9]{0,6}",
            ),
            0..4,
        ),
        "(#[a-z0-9]{0,6})?",
    )
        .prop_map(|(scheme, host, port, path, query, frag)| {
            let q: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let q = if q.is_empty() {
                String::new()
            } else {
                format!("?{}", q.join("&"))
            };
            format!("{scheme}://{host}{port}{path}{q}{frag}")
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn normalisation_is_idempotent_and_clean(raw in url_strategy()) {
        match normalize(&raw, &strip()) {
            Ok(u) => {
                prop_assert!(matches!(u.scheme(), "http" | "https"));
                prop_assert!(u.fragment().is_none());
                prop_assert!(!u.query_pairs().any(|(k, _)| k.starts_with("utm_") || k == "fbclid" || k == "gclid"));
                prop_assert_eq!(u.host_str().map(str::to_string), u.host_str().map(|h| h.to_ascii_lowercase()));
                let default_port = if u.scheme() == "https" { 443 } else { 80 };
                prop_assert_ne!(u.port(), Some(default_port), "default ports are dropped");
                let again = normalize(u.as_str(), &strip()).unwrap();
                prop_assert_eq!(again, u);
            }
            // Only what is no URL at all (an invalid IDNA label such as
            // `xn--`) or not http(s) is refused.
            Err(_) => prop_assert!(
                !raw.to_ascii_lowercase().starts_with("http") || url::Url::parse(&raw).is_err()
            ),
        }
    }

    #[test]
    fn arbitrary_text_never_panics(raw in "\\PC{0,80}") {
        let _ = normalize(&raw, &strip());
    }
}

mod intake {
    use crawlq_crawler::intake::{parse_intake, Intake};
    use crawlq_proto::v1::CrawlRequest;
    use crawlq_proto::Message as _;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

        /// Any bytes, either content type: a result or a clear error, never a panic.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512), proto in any::<bool>()) {
            let _ = parse_intake(&bytes, proto);
        }

        /// Text gives back exactly its non-blank, non-comment lines, trimmed,
        /// whatever the line endings and padding.
        #[test]
        fn text_lines_round_trip(
            lines in proptest::collection::vec("[a-z:/.0-9?=&-]{1,40}", 1..20),
            noise in proptest::collection::vec((0usize..3, "[ \t]{0,3}"), 1..20),
            crlf in any::<bool>(),
        ) {
            let eol = if crlf { "\r\n" } else { "\n" };
            let mut text = String::new();
            for (i, l) in lines.iter().enumerate() {
                let (kind, pad) = &noise[i % noise.len()];
                match kind {
                    0 => text.push_str(&format!("{pad}{eol}")),
                    1 => text.push_str(&format!("# a comment{eol}")),
                    _ => {}
                }
                text.push_str(&format!("{pad}{l}{pad}{eol}"));
            }
            let want: Vec<String> = lines.iter().map(|l| l.trim().to_string()).collect();
            prop_assert_eq!(parse_intake(text.as_bytes(), false).unwrap(), Intake::Lines(want));
        }

        /// A protobuf request comes back field for field.
        #[test]
        fn protobuf_requests_round_trip(url in "https?://[a-z]{1,10}\\.[a-z]{2,4}/[a-z0-9/]{0,20}", depth in 0u32..5, force in any::<bool>()) {
            let r = CrawlRequest { url, max_depth: depth, force, request_id: "r1".into(), ..Default::default() };
            prop_assert_eq!(parse_intake(&r.encode_to_vec(), true).unwrap(), Intake::Request(Box::new(r)));
        }
    }
}
