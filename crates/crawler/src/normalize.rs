//! URL normalisation with the WHATWG rules of the `url` crate: hosts are
//! lower-cased and IDNA-encoded, default ports and fragments dropped, IPv4
//! numbers in any spelling (`2130706433`, `0x7f.1`) turned into dotted
//! form; tracking parameters are stripped.

use url::Url;

use crate::error::CrawlError;

/// Query parameters removed by default: prefixes ending in `*`, or names.
pub const DEFAULT_STRIP: &[&str] = &[
    "utm_*", "fbclid", "gclid", "dclid", "msclkid", "mc_eid", "yclid",
];

/// [`DEFAULT_STRIP`] as the owned list [`normalize`] takes.
pub fn default_strip() -> Vec<String> {
    DEFAULT_STRIP.iter().map(|s| s.to_string()).collect()
}

/// Longer URLs are refused: no real article URL comes close, and servers
/// commonly reject anything over 8 KiB.
pub const MAX_URL_BYTES: usize = 8192;

/// Parses and normalises `raw`; only http and https are accepted.
pub fn normalize(raw: &str, strip: &[String]) -> Result<Url, CrawlError> {
    let raw = raw.trim();
    if raw.len() > MAX_URL_BYTES {
        return Err(CrawlError::InvalidUrl(
            crawlq_runtime::clip(raw, 200),
            format!("{} bytes long; the limit is {MAX_URL_BYTES}", raw.len()),
        ));
    }
    let mut url =
        Url::parse(raw).map_err(|e| CrawlError::InvalidUrl(raw.to_string(), e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(CrawlError::InvalidUrl(
            raw.to_string(),
            format!("scheme `{}` is not http or https", url.scheme()),
        ));
    }
    if url.host().is_none() {
        return Err(CrawlError::InvalidUrl(raw.to_string(), "no host".into()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(CrawlError::InvalidUrl(
            raw.to_string(),
            "credentials in URLs are refused".into(),
        ));
    }
    url.set_fragment(None);
    if url.query().is_some() {
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| !strip.iter().any(|p| matches_param(p, k)))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if kept.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(kept);
        }
    }
    Ok(url)
}

fn matches_param(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => name == pattern,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip() -> Vec<String> {
        default_strip()
    }

    #[test]
    fn whatwg_normalisation() {
        let n = |s: &str| normalize(s, &strip()).map(|u| u.to_string());
        assert_eq!(
            n("HTTP://News.Example.COM:80/a#frag").unwrap(),
            "http://news.example.com/a"
        );
        assert_eq!(
            n("https://例子.中国/新闻?id=1").unwrap(),
            "https://xn--fsqu00a.xn--fiqs8s/%E6%96%B0%E9%97%BB?id=1"
        );
        assert_eq!(n("https://x.com:443/").unwrap(), "https://x.com/");
        assert_eq!(
            n("https://x.com/a?utm_source=t&id=7&fbclid=z&gclid=q").unwrap(),
            "https://x.com/a?id=7"
        );
        assert_eq!(
            n("https://x.com/a?utm_medium=x").unwrap(),
            "https://x.com/a"
        );
        assert_eq!(n("http://2130706433/").unwrap(), "http://127.0.0.1/");
        assert_eq!(n("http://0x7f.1/").unwrap(), "http://127.0.0.1/");
    }

    #[test]
    fn rejects_non_http_and_garbage() {
        for bad in [
            "ftp://x.com/",
            "javascript:alert(1)",
            "file:///etc/passwd",
            "not a url",
            "",
            "http://user:pw@x.com/",
        ] {
            assert!(
                matches!(normalize(bad, &strip()), Err(CrawlError::InvalidUrl(..))),
                "{bad}"
            );
        }
    }
}

#[cfg(test)]
mod limits {
    use super::*;

    #[test]
    fn overlong_urls_are_refused_with_a_short_error() {
        let raw = format!("http://example.com/{}", "a".repeat(900_000));
        let err = normalize(&raw, &[]).unwrap_err().to_string();
        assert!(
            err.contains("900019 bytes long"),
            "{}",
            &err[..200.min(err.len())]
        );
        assert!(
            err.len() < 1000,
            "the error does not carry the URL: {}",
            err.len()
        );
    }
}
