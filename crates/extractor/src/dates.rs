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
    parse_zoned(s).map(|(ms, _)| ms)
}

/// Parses `s` into Unix milliseconds and the UTC offset it gave, in
/// minutes (`None` when it gave none and was read as UTC).
pub fn parse_zoned(s: &str) -> Option<(i64, Option<i32>)> {
    parse_zoned_in(s, false)
}

/// [`parse_zoned`] for a page whose locale writes the month first
/// (`month_first`: American English), which decides `03/01/2017`; where
/// either number is above 12 the form decides by itself.
pub fn parse_zoned_in(s: &str, month_first: bool) -> Option<(i64, Option<i32>)> {
    let s = s.trim();
    if s.is_empty() || s.len() > 100 {
        return None;
    }
    zoned(s)
        .or_else(|| parse_rfc3339_like(s).map(|ms| (ms, None)))
        .or_else(|| parse_cjk(s).map(|ms| (ms, None)))
        .or_else(|| parse_numeric(s, month_first).map(|ms| (ms, None)))
        .or_else(|| parse_english(s).map(|ms| (ms, None)))
        .filter(|(ms, _)| plausible(*ms))
}

/// RFC 3339 and RFC 2822 forms with an explicit offset.
fn zoned(s: &str) -> Option<(i64, Option<i32>)> {
    let with = |d: DateTime<chrono::FixedOffset>| {
        let offset = d.offset().local_minus_utc() / 60;
        // "Z" and "GMT" say UTC, which is what we assume anyway.
        (d.timestamp_millis(), (offset != 0).then_some(offset))
    };
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(with(d));
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f%z",
        "%Y-%m-%dT%H:%M%z",
        "%Y-%m-%dT%H:%M:%S%.f %z",
    ] {
        if let Ok(d) = DateTime::parse_from_str(s, fmt) {
            return Some(with(d));
        }
    }
    DateTime::parse_from_rfc2822(s).ok().map(with)
}

/// Between 1990 and 2100: anything else is noise.
fn plausible(ms: i64) -> bool {
    (631_152_000_000..4_102_444_800_000).contains(&ms)
}

/// ISO 8601 without an offset (read as UTC), or a date alone.
fn parse_rfc3339_like(s: &str) -> Option<i64> {
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
fn parse_numeric(s: &str, month_first: bool) -> Option<i64> {
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
        let day_first = a.0 > 12 || (b.0 <= 12 && !month_first);
        if day_first {
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

/// Month names and abbreviations in the languages news is most often
/// written in, lowercased: English, French, German, Spanish, Portuguese,
/// Italian and Dutch.
const MONTHS: [(&str, u32); 95] = [
    ("january", 1),
    ("jan", 1),
    ("janvier", 1),
    ("januar", 1),
    ("enero", 1),
    ("janeiro", 1),
    ("gennaio", 1),
    ("januari", 1),
    ("janv", 1),
    ("february", 2),
    ("feb", 2),
    ("février", 2),
    ("fevrier", 2),
    ("februar", 2),
    ("febrero", 2),
    ("fevereiro", 2),
    ("febbraio", 2),
    ("februari", 2),
    ("févr", 2),
    ("march", 3),
    ("mar", 3),
    ("mars", 3),
    ("märz", 3),
    ("marzo", 3),
    ("março", 3),
    ("maart", 3),
    ("april", 4),
    ("apr", 4),
    ("avril", 4),
    ("abril", 4),
    ("aprile", 4),
    ("avr", 4),
    ("may", 5),
    ("mai", 5),
    ("mayo", 5),
    ("maio", 5),
    ("maggio", 5),
    ("mei", 5),
    ("june", 6),
    ("jun", 6),
    ("juin", 6),
    ("juni", 6),
    ("junio", 6),
    ("junho", 6),
    ("giugno", 6),
    ("july", 7),
    ("jul", 7),
    ("juillet", 7),
    ("juli", 7),
    ("julio", 7),
    ("julho", 7),
    ("luglio", 7),
    ("juil", 7),
    ("august", 8),
    ("aug", 8),
    ("août", 8),
    ("aout", 8),
    ("agosto", 8),
    ("augustus", 8),
    ("september", 9),
    ("sep", 9),
    ("sept", 9),
    ("septembre", 9),
    ("septiembre", 9),
    ("setembro", 9),
    ("settembre", 9),
    ("october", 10),
    ("oct", 10),
    ("octobre", 10),
    ("oktober", 10),
    ("octubre", 10),
    ("outubro", 10),
    ("ottobre", 10),
    ("okt", 10),
    ("november", 11),
    ("nov", 11),
    ("novembre", 11),
    ("noviembre", 11),
    ("novembro", 11),
    ("december", 12),
    ("dec", 12),
    ("décembre", 12),
    ("decembre", 12),
    ("dezember", 12),
    ("diciembre", 12),
    ("dezembro", 12),
    ("dicembre", 12),
    ("dez", 12),
    ("déc", 12),
    ("dic", 12),
    ("ene", 1),
    ("abr", 4),
    ("ago", 8),
    ("set", 9),
    ("out", 10),
];

/// The month a word names, if it is a month name or abbreviation.
fn month_of(word: &str) -> Option<u32> {
    MONTHS
        .iter()
        .find(|(name, _)| *name == word)
        .map(|(_, m)| *m)
}

/// `November 9, 2023 12:42 PM`, `9 Nov 2023`, `Thu, Nov 9 2023`,
/// `9 novembre 2023`, `9. November 2023`, `9 de noviembre de 2023`.
fn parse_english(s: &str) -> Option<i64> {
    let lower = s.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphabetic())
        .filter(|w| !w.is_empty())
        .collect();
    // Ambiguous short words ("set", "out", "ago", "mar") only count when
    // they are the only words besides weekdays and connectives.
    let month = words.iter().find_map(|w| {
        let m = month_of(w)?;
        let short_ambiguous = matches!(
            *w,
            "set" | "out" | "ago" | "ene" | "dic" | "abr" | "mar" | "may" | "dez"
        );
        (!short_ambiguous || words.len() <= 3).then_some(m)
    })?;
    // The day is never a time's hour or minute ("10:19am 19 December").
    let dateish: String = lower
        .split_whitespace()
        .filter(|w| !w.contains(':'))
        .collect::<Vec<_>>()
        .join(" ");
    let n = numbers(&dateish);
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
    fn offsets_are_kept() {
        assert_eq!(
            parse_zoned("2023-11-09T02:00:00+08:00"),
            Some((1_699_466_400_000, Some(480)))
        );
        assert_eq!(
            parse_zoned("2023-11-09T02:00:00-0500").unwrap().1,
            Some(-300)
        );
        assert_eq!(parse_zoned("2023-11-09T11:42:00Z"), Some((T, None)));
        assert_eq!(
            parse_zoned("Thu, 09 Nov 2023 12:42:00 +0100"),
            Some((T, Some(60)))
        );
        assert_eq!(parse_zoned("2023-11-09 11:42"), Some((T, None)));
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
        assert_eq!(parse("9 novembre 2023"), Some(1_699_488_000_000));
        assert_eq!(parse("9. November 2023"), Some(1_699_488_000_000));
        assert_eq!(parse("9 de noviembre de 2023"), Some(1_699_488_000_000));
        assert_eq!(parse("Nov. 9, 2023"), Some(1_699_488_000_000));
        // The hour is not the day.
        assert_eq!(
            parse("Published 10:19am 19 December 2025"),
            parse("19 December 2025 10:19")
        );
        assert_eq!(parse("19 December 2025"), Some(1_766_102_400_000));
        // A word that merely starts like a month is not one.
        assert_eq!(parse("Marketing 10 trends 2025"), None);
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
