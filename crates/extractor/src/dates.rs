//! Date parsing for publication and modification times.
//!
//! Accepts ISO 8601 / RFC 3339 (with or without a zone, date only),
//! RFC 2822, common English forms ("November 9, 2023 12:42 PM"), numeric
//! forms ("2023/11/09 12:42", "09.11.2023"), Chinese forms
//! ("2023年11月9日 12:42") and dates in URL paths ("/2023/11/09/",
//! "20231109"). Times without a zone are read as UTC.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};

/// Parses `s` into Unix milliseconds.
pub fn parse(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.is_empty() || s.len() > 100 {
        return None;
    }
    parse_rfc3339_like(s)
        .or_else(|| {
            DateTime::parse_from_rfc2822(s)
                .ok()
                .map(|d| d.timestamp_millis())
        })
        .or_else(|| parse_cjk(s))
        .or_else(|| parse_numeric(s))
        .or_else(|| parse_english(s))
        .filter(|ms| plausible(*ms))
}

/// Between 1990 and 2100: anything else is noise.
fn plausible(ms: i64) -> bool {
    (631_152_000_000..4_102_444_800_000).contains(&ms)
}

fn parse_rfc3339_like(s: &str) -> Option<i64> {
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(d.timestamp_millis());
    }
    // Offsets without a colon, a space instead of T, fractional seconds.
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f%z",
        "%Y-%m-%dT%H:%M%z",
        "%Y-%m-%dT%H:%M:%S%.f %z",
    ] {
        if let Ok(d) = DateTime::parse_from_str(s, fmt) {
            return Some(d.timestamp_millis());
        }
    }
    let naive = s
        .trim_end_matches('Z')
        .trim_end_matches(" UTC")
        .trim_end_matches(" GMT");
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(d) = NaiveDateTime::parse_from_str(naive, fmt) {
            return Some(Utc.from_utc_datetime(&d).timestamp_millis());
        }
    }
    let date_part = naive.get(..10).unwrap_or(naive);
    if date_part.len() == 10 && (naive.len() == 10 || naive[10..].starts_with(['T', ' '])) {
        if let Ok(d) = NaiveDate::parse_from_str(date_part, "%Y-%m-%d") {
            return Some(midnight(d));
        }
    }
    None
}

fn midnight(d: NaiveDate) -> i64 {
    Utc.from_utc_datetime(&d.and_time(NaiveTime::MIN))
        .timestamp_millis()
}

/// Numbers in `s`, in order, as (value, digit count).
fn numbers(s: &str) -> Vec<(u32, usize)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in s.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_digit() {
            cur.push(c);
        } else if !cur.is_empty() {
            if cur.len() <= 4 {
                out.push((cur.parse().unwrap_or(0), cur.len()));
            }
            cur.clear();
        }
    }
    out
}

fn build(y: u32, mo: u32, d: u32, h: u32, mi: u32, sec: u32) -> Option<i64> {
    let date = NaiveDate::from_ymd_opt(y as i32, mo, d)?;
    let time = NaiveTime::from_hms_opt(h, mi, sec)?;
    Some(
        Utc.from_utc_datetime(&date.and_time(time))
            .timestamp_millis(),
    )
}

/// `2023年11月9日 12:42`, `2023年11月9日`, `2023年11月09日 12時42分`.
fn parse_cjk(s: &str) -> Option<i64> {
    if !s.contains('年') || !s.contains('月') {
        return None;
    }
    let n = numbers(s);
    let (y, mo, d) = (n.first()?, n.get(1)?, n.get(2)?);
    if y.1 != 4 {
        return None;
    }
    let h = n.get(3).map_or(0, |v| v.0);
    let mi = n.get(4).map_or(0, |v| v.0);
    let sec = n.get(5).map_or(0, |v| v.0);
    let pm = s.contains("下午") || s.contains("晚上");
    build(
        y.0,
        mo.0,
        d.0,
        if pm && h < 12 { h + 12 } else { h },
        mi,
        sec,
    )
}

/// `2023/11/09 12:42`, `2023.11.09`, `09/11/2023 - 12:42` (day first, as
/// European and Chinese sites print it), `09.11.2023`.
fn parse_numeric(s: &str) -> Option<i64> {
    if s.chars()
        .any(|c| c.is_alphabetic() && !matches!(c, 'T' | 'Z'))
    {
        return None;
    }
    let n = numbers(s);
    if n.len() < 3 {
        return None;
    }
    let (a, b, c) = (n[0], n[1], n[2]);
    let (y, mo, d) = if a.1 == 4 {
        (a.0, b.0, c.0)
    } else if c.1 == 4 {
        if a.0 > 12 || b.0 <= 12 {
            (c.0, b.0, a.0)
        } else {
            (c.0, a.0, b.0)
        }
    } else {
        return None;
    };
    let h = n.get(3).map_or(0, |v| v.0);
    let mi = n.get(4).map_or(0, |v| v.0);
    let sec = n.get(5).map_or(0, |v| v.0);
    let pm = s.to_ascii_lowercase().contains("pm");
    build(y, mo, d, if pm && h < 12 { h + 12 } else { h }, mi, sec)
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

/// `November 9, 2023 12:42 PM`, `9 Nov 2023`, `Thu, Nov 9 2023`.
fn parse_english(s: &str) -> Option<i64> {
    let lower = s.to_ascii_lowercase();
    let month = lower
        .split(|c: char| !c.is_ascii_alphabetic())
        .find_map(|w| {
            (w.len() >= 3)
                .then(|| MONTHS.iter().position(|m| w.starts_with(m)))
                .flatten()
        })? as u32
        + 1;
    let n = numbers(&lower);
    let year = n.iter().find(|v| v.1 == 4)?.0;
    let day = n.iter().find(|v| v.1 <= 2 && (1..=31).contains(&v.0))?.0;
    // Time: the first "h:mm" after the year or day.
    let time = lower.split_whitespace().find_map(|w| {
        let (h, rest) = w.split_once(':')?;
        let h: u32 = h.parse().ok()?;
        let mi: u32 = rest.get(..2)?.parse().ok()?;
        Some((h, mi))
    });
    let (mut h, mi) = time.unwrap_or((0, 0));
    if lower.contains("pm") && h < 12 && time.is_some() {
        h += 12;
    }
    build(year, month, day, h, mi, 0)
}

/// A date in a URL path: `/2023/11/09/`, `/2023-11-09/`, `/20231109-slug`.
pub fn from_url(url: &str) -> Option<i64> {
    let path = url
        .split_once("://")
        .map_or(url, |(_, r)| r.split_once('/').map_or("", |(_, p)| p));
    let segs: Vec<&str> = path.split(['/', '?', '#']).collect();
    for w in segs.windows(3) {
        if let (Ok(y), Ok(m), Ok(d)) = (
            w[0].parse::<u32>(),
            w[1].parse::<u32>(),
            w[2].get(..2).unwrap_or("").parse::<u32>(),
        ) {
            if w[0].len() == 4 {
                if let Some(ms) = build(y, m, d, 0, 0, 0).filter(|ms| plausible(*ms)) {
                    return Some(ms);
                }
            }
        }
    }
    for seg in segs {
        let digits: String = seg
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '-')
            .collect();
        let compact: String = digits.chars().filter(|c| c.is_ascii_digit()).collect();
        if compact.len() >= 8
            && (digits.len() == 8 || digits.len() == 10 || digits.starts_with(&compact[..8]))
        {
            let (y, m, d) = (&compact[..4], &compact[4..6], &compact[6..8]);
            if let (Ok(y), Ok(m), Ok(d)) = (y.parse(), m.parse(), d.parse()) {
                if let Some(ms) = build(y, m, d, 0, 0, 0).filter(|ms| plausible(*ms)) {
                    return Some(ms);
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_699_530_120_000; // 2023-11-09T11:42:00Z

    #[test]
    fn iso_8601_forms() {
        assert_eq!(parse("2023-11-09T11:42:00Z"), Some(T));
        assert_eq!(parse("2023-11-09T12:42:00+01:00"), Some(T));
        assert_eq!(parse("2023-11-09T12:42:00+0100"), Some(T));
        assert_eq!(parse("2023-11-09T11:42:00.000Z"), Some(T));
        assert_eq!(parse("2023-11-09 11:42:00"), Some(T));
        assert_eq!(parse("2023-11-09T11:42"), Some(T));
        assert_eq!(parse("2023-11-09"), Some(1_699_488_000_000));
    }

    #[test]
    fn rfc_2822() {
        assert_eq!(parse("Thu, 09 Nov 2023 12:42:00 +0100"), Some(T));
        assert_eq!(parse("Thu, 09 Nov 2023 11:42:00 GMT"), Some(T));
    }

    #[test]
    fn chinese_forms() {
        assert_eq!(parse("2023年11月9日 11:42"), Some(T));
        assert_eq!(parse("2023年11月09日11时42分"), Some(T));
        assert_eq!(parse("2023年11月9日"), Some(1_699_488_000_000));
        assert_eq!(parse("2023年11月9日 下午11:42").map(|v| v > T), Some(true));
    }

    #[test]
    fn numeric_and_english_forms() {
        assert_eq!(parse("09/11/2023 - 11:42"), Some(T));
        assert_eq!(parse("2023/11/09 11:42"), Some(T));
        assert_eq!(parse("November 9, 2023 11:42 AM"), Some(T));
        assert_eq!(parse("Nov 9, 2023 11:42 am"), Some(T));
        assert_eq!(parse("9 November 2023"), Some(1_699_488_000_000));
    }

    #[test]
    fn rejects_noise() {
        assert_eq!(parse(""), None);
        assert_eq!(parse("yesterday"), None);
        assert_eq!(parse("1234"), None);
        assert_eq!(parse("3000-01-01"), None);
    }

    #[test]
    fn dates_in_urls() {
        assert_eq!(
            from_url("https://x.com/2023/11/09/slug"),
            Some(1_699_488_000_000)
        );
        assert_eq!(
            from_url("https://www.rfi.fr/cn/%E4%BA%9A/20231109-slug"),
            Some(1_699_488_000_000)
        );
        assert_eq!(
            from_url("https://x.com/news/2023-11-09/slug"),
            Some(1_699_488_000_000)
        );
        assert_eq!(from_url("https://x.com/about"), None);
        assert_eq!(from_url("https://x.com/article/12345678901"), None);
    }
}
