//! The CDXJ index beside each WARC file (the pywb / OpenWayback form): one
//! line per response or revisit record, `SURT TIMESTAMP {json}`, sorted.

use serde_json::json;

use super::format::Parsed;

/// The SURT form of `url` (as pywb and the `surt` library write it):
/// scheme and `www.` dropped, host labels reversed, path and query
/// lowercased, query parameters sorted.
pub fn surt(url: &str) -> String {
    let Ok(u) = url::Url::parse(url) else {
        return url.to_ascii_lowercase();
    };
    let host = u.host_str().unwrap_or_default().to_ascii_lowercase();
    let host = host.strip_prefix("www.").unwrap_or(&host);
    let mut labels: Vec<&str> = host.split('.').collect();
    labels.reverse();
    let mut out = labels.join(",");
    if let Some(port) = u.port() {
        out.push_str(&format!(":{port}"));
    }
    out.push(')');
    out.push_str(&u.path().to_ascii_lowercase());
    if let Some(q) = u.query() {
        let mut params: Vec<String> = q.split('&').map(str::to_ascii_lowercase).collect();
        params.sort();
        out.push('?');
        out.push_str(&params.join("&"));
    }
    out
}

/// `YYYYMMDDhhmmss` of a WARC-Date.
fn timestamp(date: &str) -> String {
    date.chars().filter(char::is_ascii_digit).take(14).collect()
}

/// The index line of a record at `offset` (`length` bytes) in `filename`;
/// `None` for records that are not captures (request, metadata, warcinfo).
pub fn line(p: &Parsed, filename: &str, offset: u64, length: u64) -> Option<String> {
    let kind = p.field("WARC-Type")?;
    if kind != "response" && kind != "revisit" {
        return None;
    }
    let url = p.field("WARC-Target-URI")?;
    let mime = if kind == "revisit" {
        "warc/revisit".to_string()
    } else {
        p.http_header("content-type")
            .and_then(|c| c.split(';').next().map(|m| m.trim().to_ascii_lowercase()))
            .unwrap_or_else(|| "unk".into())
    };
    let digest = p
        .field("WARC-Payload-Digest")
        .map(|d| d.trim_start_matches("sha1:").to_string())
        .unwrap_or_default();
    let mut fields = json!({
        "url": url,
        "mime": mime,
        "digest": digest,
        "length": length.to_string(),
        "offset": offset.to_string(),
        "filename": filename,
    });
    if let Some(status) = p.http_status() {
        fields["status"] = json!(status.to_string());
    }
    Some(format!(
        "{} {} {}",
        surt(url),
        timestamp(p.field("WARC-Date").unwrap_or_default()),
        fields
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surts_are_written_as_pywb_writes_them() {
        assert_eq!(
            surt("https://www.Example.com/News/A?z=1&a=2"),
            "com,example)/news/a?a=2&z=1"
        );
        assert_eq!(surt("http://127.0.0.1:8080/x"), "1,0,0,127:8080)/x");
        assert_eq!(surt("http://example.com"), "com,example)/");
    }
}
