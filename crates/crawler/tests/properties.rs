//! Property tests for URL normalisation.

use crawlq_crawler::normalize::{normalize, DEFAULT_STRIP};
use proptest::prelude::*;

fn strip() -> Vec<String> {
    DEFAULT_STRIP.iter().map(|s| s.to_string()).collect()
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
            Err(_) => prop_assert!(!raw.to_ascii_lowercase().starts_with("http")),
        }
    }

    #[test]
    fn arbitrary_text_never_panics(raw in "\\PC{0,80}") {
        let _ = normalize(&raw, &strip());
    }
}
