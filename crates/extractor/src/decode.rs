//! Bytes to text: finding a page's character encoding.
//!
//! The order follows the WHATWG encoding-sniffing algorithm: a byte-order
//! mark is definitive; then the charset of the HTTP Content-Type header;
//! then a `<meta charset>` or `<meta http-equiv="Content-Type">` in the
//! first 4 KiB; then statistical detection (chardetng), which is what saves
//! GBK and Big5 pages that declare nothing.
//!
//! Text that was decoded wrongly once before it reached us is read back
//! here too: a legacy page saved as UTF-8 through a Latin reading
//! ([`decode`]), and UTF-8 read as Latin-1 or Windows-1252 in a title or
//! a text node ([`repair_mojibake`]).

use encoding_rs::{Encoding, UTF_8};

/// Where the encoding came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CharsetSource {
    /// A byte-order mark.
    Bom,
    /// The HTTP Content-Type header.
    Header,
    /// A meta tag in the document.
    Meta,
    /// Statistical detection.
    Detected,
}

/// Decodes `body`, returning the text, the encoding used and where it came
/// from. Malformed sequences become U+FFFD; decoding never fails.
pub fn decode(
    body: &[u8],
    content_type: Option<&str>,
) -> (String, &'static Encoding, CharsetSource) {
    let (encoding, source, rejected) = choose(body, content_type);
    let (text, _, _) = encoding.decode(body);
    // A multi-byte legacy declaration the body disproved may still be
    // right under one more layer of encoding.
    let multi_byte = |(e, _): &Declared| *e != UTF_8 && !e.is_single_byte();
    if let Some((declared, from)) = rejected
        .filter(multi_byte)
        .filter(|_| encoding == UTF_8 && source == CharsetSource::Detected)
    {
        if let Some(fixed) = undo_double_encoding(&text, declared) {
            return (fixed, declared, from);
        }
    }
    (text.into_owned(), encoding, source)
}

/// A page in a multi-byte legacy encoding (GBK, Big5, Shift_JIS) that
/// something once read as windows-1252 and saved as UTF-8: its text is
/// valid UTF-8 made only of ASCII and windows-1252 characters
/// ("ÒâžéÇ³ÓÎÂÖ"), and those characters' bytes are the page in the
/// encoding it declares. Returns the repaired text when the bytes decode
/// cleanly in `declared`; a page with any character windows-1252 cannot
/// hold (real CJK text, a curly quote aside) is left as it is.
fn undo_double_encoding(text: &str, declared: &'static Encoding) -> Option<String> {
    // Each legacy character became two or three Latin ones in a row;
    // the accents of a Latin page stand alone between ASCII letters.
    let chars: Vec<char> = text.chars().collect();
    let (mut high, mut paired) = (0usize, 0usize);
    for (i, c) in chars.iter().enumerate() {
        if !c.is_ascii() {
            high += 1;
            let neighbour =
                |j: Option<usize>| j.and_then(|j| chars.get(j)).is_some_and(|n| !n.is_ascii());
            if neighbour(i.checked_sub(1)) || neighbour(Some(i + 1)) {
                paired += 1;
            }
        }
    }
    if high < 40 || paired * 10 < high * 9 {
        return None;
    }
    // The Latin encoding it was read as: windows-1252 or ISO-8859-15
    // (which puts Ž, € and Œ where windows-1252 has ´, ¤ and ¼). The one
    // whose bytes decode with the fewest errors, then with the fewest C1
    // bytes (0x80-0x9F), which GB2312, Big5 and EUC text never use.
    let (errors, _, fixed) = [encoding_rs::WINDOWS_1252, encoding_rs::ISO_8859_15]
        .into_iter()
        .filter_map(|latin| {
            let (bytes, _, unmappable) = latin.encode(text);
            if unmappable {
                return None;
            }
            let (fixed, _) = declared.decode_without_bom_handling(&bytes);
            let errors = fixed.chars().filter(|c| *c == '\u{fffd}').count();
            let c1 = bytes.iter().filter(|b| (0x80..=0x9f).contains(*b)).count();
            Some((errors, c1, fixed.into_owned()))
        })
        .min_by_key(|(errors, c1, _)| (*errors, *c1))?;
    // A clean decode: at most one broken character in a thousand.
    if errors * 1000 > fixed.chars().count() {
        return None;
    }
    let wide = fixed.chars().filter(|c| *c > '\u{2e7f}').count();
    (wide >= 20).then_some(fixed)
}

/// Picks the encoding without decoding. A declared UTF-8 that the body
/// is not (a GBK page served as `charset=utf-8`) is a lie and is ignored:
/// trusting it would archive the text as replacement characters. So is a
/// declared legacy encoding on a body that is plainly UTF-8 (a re-encoded
/// page that kept its old `<meta charset=gb2312>`): GBK, Big5 or
/// windows-1252 text almost never forms twenty valid UTF-8 characters
/// with no invalid sequence, and decoding UTF-8 as them is mojibake.
pub fn sniff(body: &[u8], content_type: Option<&str>) -> (&'static Encoding, CharsetSource) {
    let (encoding, source, _) = choose(body, content_type);
    (encoding, source)
}

/// A declared encoding and where it was declared.
type Declared = (&'static Encoding, CharsetSource);

/// [`sniff`], plus the first declaration the body disproved, if any.
fn choose(
    body: &[u8],
    content_type: Option<&str>,
) -> (&'static Encoding, CharsetSource, Option<Declared>) {
    if let Some((enc, _)) = Encoding::for_bom(body) {
        return (enc, CharsetSource::Bom, None);
    }
    let utf8 = is_utf8(body);
    let plainly_utf8 = utf8 && is_strict_utf8(body);
    let believable = |enc: &'static Encoding| {
        if enc == UTF_8 {
            utf8
        } else {
            !plainly_utf8
        }
    };
    let mut rejected = None;
    if let Some(enc) = content_type.and_then(charset_param).and_then(label) {
        if believable(enc) {
            return (enc, CharsetSource::Header, None);
        }
        rejected = Some((enc, CharsetSource::Header));
    }
    if let Some(enc) = meta_charset(&body[..body.len().min(4096)]) {
        if believable(enc) {
            return (enc, CharsetSource::Meta, None);
        }
        rejected = rejected.or(Some((enc, CharsetSource::Meta)));
    }
    // Undeclared but valid UTF-8 is UTF-8: checking is far cheaper than
    // statistical detection, which is kept for legacy encodings.
    if utf8 {
        return (UTF_8, CharsetSource::Detected, rejected);
    }
    let mut detector = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
    detector.feed(&body[..body.len().min(64 * 1024)], body.len() <= 64 * 1024);
    (
        detector.guess(None, chardetng::Utf8Detection::Allow),
        CharsetSource::Detected,
        rejected,
    )
}

/// Is `body` UTF-8? A sequence cut off at the very end (by a body cap)
/// still counts, and so does a UTF-8 page with a few broken bytes: more
/// than ten good multi-byte characters for each bad sequence. A legacy
/// encoding (GBK, Big5, Shift_JIS) makes almost no valid UTF-8 sequences.
fn is_utf8(body: &[u8]) -> bool {
    let (mut good, mut bad) = (0usize, 0usize);
    for chunk in body.utf8_chunks() {
        good += chunk.valid().chars().filter(|c| !c.is_ascii()).count();
        if !chunk.invalid().is_empty() {
            bad += 1;
        }
    }
    let cut_at_end = std::str::from_utf8(body)
        .err()
        .is_some_and(|e| e.error_len().is_none());
    bad == 0 || (bad == 1 && cut_at_end) || good > 10 * bad
}

/// Valid UTF-8 throughout (a cut at the very end aside), with at least
/// twenty multi-byte characters.
fn is_strict_utf8(body: &[u8]) -> bool {
    let valid = match std::str::from_utf8(body) {
        Ok(s) => s,
        Err(e) if e.error_len().is_none() => {
            std::str::from_utf8(&body[..e.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => return false,
    };
    valid.chars().filter(|c| !c.is_ascii()).nth(19).is_some()
}

/// Maps a label to an encoding. A declared UTF-16 in an ASCII-compatible
/// document is impossible (we are reading it as ASCII), so it means UTF-8.
fn label(l: &str) -> Option<&'static Encoding> {
    let enc = Encoding::for_label(l.trim().trim_matches(|c| c == '"' || c == '\'').as_bytes())?;
    if enc == encoding_rs::UTF_16LE || enc == encoding_rs::UTF_16BE {
        return Some(UTF_8);
    }
    Some(enc)
}

/// The `charset=` parameter of a Content-Type value.
pub fn charset_param(content_type: &str) -> Option<&str> {
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case("charset").then_some(v.trim())
    })
}

/// Finds `<meta charset=X>` or `<meta http-equiv=content-type content="...charset=X">`
/// in the head of the document, reading it as ASCII.
fn meta_charset(head: &[u8]) -> Option<&'static Encoding> {
    let lower: Vec<u8> = head.iter().map(|b| b.to_ascii_lowercase()).collect();
    let mut at = 0;
    while let Some(pos) = find(&lower[at..], b"<meta") {
        let start = at + pos;
        let end = lower[start..]
            .iter()
            .position(|&b| b == b'>')
            .map_or(lower.len(), |e| start + e);
        let tag = &lower[start..end];
        if let Some(c) = find(tag, b"charset") {
            let rest = &tag[c + 7..];
            let rest = rest
                .iter()
                .skip_while(|b| b.is_ascii_whitespace())
                .copied()
                .collect::<Vec<_>>();
            if rest.first() == Some(&b'=') {
                let value: Vec<u8> = rest[1..]
                    .iter()
                    .skip_while(|b| b.is_ascii_whitespace() || **b == b'"' || **b == b'\'')
                    .take_while(|b| {
                        !(b.is_ascii_whitespace()
                            || matches!(**b, b'"' | b'\'' | b';' | b'/' | b'>'))
                    })
                    .copied()
                    .collect();
                if let Some(enc) = std::str::from_utf8(&value).ok().and_then(label) {
                    return Some(enc);
                }
            }
        }
        at = end.max(start + 5);
    }
    None
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// UTF-8 read as Latin-1 or Windows-1252, read back (titles in
/// [`crate::metadata::tidy_text`], body text in `clean`);
/// any other text as it is.
pub fn repair_mojibake(s: &str) -> std::borrow::Cow<'_, str> {
    if looks_misread(s) {
        if let Some(fixed) = reread_as_utf8(s) {
            return std::borrow::Cow::Owned(fixed);
        }
    }
    std::borrow::Cow::Borrowed(s)
}

/// Windows-1252 puts printable characters where Latin-1 has C1
/// controls; they map back to these bytes.
const CP1252: [(char, u8); 27] = [
    ('€', 0x80),
    ('‚', 0x82),
    ('ƒ', 0x83),
    ('„', 0x84),
    ('…', 0x85),
    ('†', 0x86),
    ('‡', 0x87),
    ('ˆ', 0x88),
    ('‰', 0x89),
    ('Š', 0x8a),
    ('‹', 0x8b),
    ('Œ', 0x8c),
    ('Ž', 0x8e),
    ('‘', 0x91),
    ('’', 0x92),
    ('“', 0x93),
    ('”', 0x94),
    ('•', 0x95),
    ('–', 0x96),
    ('—', 0x97),
    ('˜', 0x98),
    ('™', 0x99),
    ('š', 0x9a),
    ('›', 0x9b),
    ('œ', 0x9c),
    ('ž', 0x9e),
    ('Ÿ', 0x9f),
];

/// The byte a character of UTF-8 misread as Latin-1 or Windows-1252 was.
fn misread_byte(c: char) -> Option<u8> {
    if ('\u{80}'..='\u{ff}').contains(&c) {
        return Some(c as u32 as u8);
    }
    CP1252.iter().find(|(k, _)| *k == c).map(|(_, b)| *b)
}

/// Does the text hold UTF-8 misread as Latin-1 or Windows-1252: a C1
/// control, or a lead byte's letter (Â, Ã, â) followed by a continuation
/// byte's (a no-break space, ©, €, ™)?
fn looks_misread(s: &str) -> bool {
    let mut lead = false;
    for c in s.chars() {
        if ('\u{80}'..='\u{9f}').contains(&c)
            || lead && misread_byte(c).is_some_and(|b| (0x80..=0xbf).contains(&b))
        {
            return true;
        }
        lead = ('\u{c2}'..='\u{f4}').contains(&c);
    }
    false
}

/// Each run of characters from U+0080 to U+00FF read back as the UTF-8
/// bytes they were; `None` when a run is not valid UTF-8 (the text was
/// not mojibake).
fn reread_as_utf8(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut run: Vec<u8> = Vec::new();
    let flush = |run: &mut Vec<u8>, out: &mut String| -> Option<()> {
        if !run.is_empty() {
            out.push_str(std::str::from_utf8(run).ok()?);
            run.clear();
        }
        Some(())
    };
    for c in s.chars() {
        match misread_byte(c) {
            Some(b) => run.push(b),
            None => {
                flush(&mut run, &mut out)?;
                out.push(c);
            }
        }
    }
    flush(&mut run, &mut out)?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZH: &str = "美国国务卿布林肯和韩国总统尹锡悦今天谴责平壤向莫斯科运送武器以支持俄罗斯在乌克兰的侵略战争。";

    fn page(charset_meta: &str, body: &str) -> String {
        format!(
            "<html><head>{charset_meta}<title>t</title></head><body><p>{body}</p></body></html>"
        )
    }

    #[test]
    fn a_charset_lie_is_caught_by_the_body() {
        let html = page("", ZH);
        let (bytes, _, _) = encoding_rs::GBK.encode(&html);
        let (text, enc, src) = decode(&bytes, Some("text/html; charset=utf-8"));
        assert_eq!((enc, src), (encoding_rs::GBK, CharsetSource::Detected));
        assert!(text.contains(ZH) && !text.contains('\u{fffd}'), "{text}");
        // The same lie in a meta tag.
        let html = page(r#"<meta charset="utf-8">"#, ZH);
        let (bytes, _, _) = encoding_rs::GBK.encode(&html);
        let (text, _, _) = decode(&bytes, Some("text/html"));
        assert!(text.contains(ZH), "{text}");
        // A true UTF-8 declaration, and a body cut mid-character, stay UTF-8.
        let html = page("", ZH);
        let cut = &html.as_bytes()[..html.len() - 30];
        let (_, enc, src) = decode(&cut[..cut.len() - 1], Some("text/html; charset=utf-8"));
        assert_eq!((enc, src), (UTF_8, CharsetSource::Header));
        // A UTF-8 page with one broken byte is still UTF-8.
        let mut broken = page("", ZH).into_bytes();
        broken.insert(60, 0xff);
        let (text, enc, _) = decode(&broken, Some("text/html; charset=utf-8"));
        assert_eq!(enc, UTF_8);
        assert!(text.contains("美国国务卿"), "{text}");
    }

    #[test]
    fn a_legacy_declaration_on_a_plainly_utf8_body_is_a_lie() {
        // A page re-encoded to UTF-8 that kept its old meta tag.
        let html = page(
            r#"<meta http-equiv="Content-Type" content="text/html; charset=gb2312">"#,
            ZH,
        );
        let (text, enc, _) = decode(html.as_bytes(), Some("text/html"));
        assert_eq!(enc, UTF_8);
        assert!(text.contains(ZH), "{text}");
        let (_, enc, _) = decode(html.as_bytes(), Some("text/html; charset=gbk"));
        assert_eq!(enc, UTF_8);
        // A few stray non-ASCII characters prove nothing: the declaration stands.
        let latin = page(r#"<meta charset="windows-1252">"#, "caf\u{e9}");
        let (_, enc, _) = decode(latin.as_bytes(), Some("text/html"));
        assert_eq!(enc, encoding_rs::WINDOWS_1252);
    }

    #[test]
    fn a_gbk_page_once_read_as_windows_1252_and_saved_as_utf8_is_repaired() {
        let html = page(
            r#"<meta http-equiv="Content-Type" content="text/html; charset=GBK">"#,
            ZH,
        );
        let (gbk, _, _) = encoding_rs::GBK.encode(&html);
        for latin in [encoding_rs::WINDOWS_1252, encoding_rs::ISO_8859_15] {
            let (mojibake, _, _) = latin.decode(&gbk);
            assert!(!mojibake.contains(ZH));
            let (text, enc, src) = decode(mojibake.as_bytes(), Some("text/html"));
            assert_eq!((enc, src), (encoding_rs::GBK, CharsetSource::Meta));
            assert!(text.contains(ZH), "read as {}: {text}", latin.name());
        }
        // Latin text declared GBK stays as it is.
        let fr = "Le président a déclaré à la presse: « c'est très grave ». Élysée, été, château, crème brûlée. ".repeat(4);
        let html = page(r#"<meta charset="gbk">"#, &fr);
        let (text, enc, _) = decode(html.as_bytes(), Some("text/html"));
        assert_eq!(enc, UTF_8);
        assert!(text.contains(&fr), "{text}");
    }

    #[test]
    fn gbk_declared_only_in_meta() {
        let html = page(
            r#"<meta http-equiv="Content-Type" content="text/html; charset=gb2312">"#,
            ZH,
        );
        let (bytes, _, _) = encoding_rs::GBK.encode(&html);
        let (text, enc, src) = decode(&bytes, Some("text/html"));
        assert_eq!(src, CharsetSource::Meta);
        assert_eq!(enc, encoding_rs::GBK);
        assert!(text.contains(ZH));
    }

    #[test]
    fn big5_from_http_header() {
        let zh_tw = "美國國務卿布林肯和韓國總統尹錫悅今天譴責平壤向莫斯科運送武器。";
        let html = page("", zh_tw);
        let (bytes, _, _) = encoding_rs::BIG5.encode(&html);
        let (text, enc, src) = decode(&bytes, Some("text/html; charset=Big5"));
        assert_eq!((enc, src), (encoding_rs::BIG5, CharsetSource::Header));
        assert!(text.contains(zh_tw));
    }

    #[test]
    fn shift_jis_and_windows_1252_by_meta() {
        let ja = "日本語のニュース記事です。東京で会議が開かれました。";
        let html = page(r#"<meta charset="shift_jis">"#, ja);
        let (bytes, _, _) = encoding_rs::SHIFT_JIS.encode(&html);
        assert!(decode(&bytes, None).0.contains(ja));
        let fr = "Le président a déclaré à la presse: « c'est très grave ».";
        let html = page(r#"<meta charset=windows-1252>"#, fr);
        let (bytes, _, _) = encoding_rs::WINDOWS_1252.encode(&html);
        assert!(decode(&bytes, None).0.contains(fr));
    }

    #[test]
    fn bom_is_definitive() {
        let mut bytes = vec![0xEF, 0xBB, 0xBF];
        bytes.extend_from_slice(page("", ZH).as_bytes());
        let (text, enc, src) = decode(&bytes, Some("text/html; charset=iso-8859-1"));
        assert_eq!((enc, src), (UTF_8, CharsetSource::Bom));
        assert!(text.contains(ZH));
    }

    #[test]
    fn header_beats_contradicting_meta() {
        let html = page(r#"<meta charset="iso-8859-1">"#, ZH);
        let (text, enc, src) = decode(html.as_bytes(), Some("text/html; charset=utf-8"));
        assert_eq!((enc, src), (UTF_8, CharsetSource::Header));
        assert!(text.contains(ZH));
    }

    #[test]
    fn undeclared_gbk_is_detected() {
        let long = ZH.repeat(10);
        let html = page("", &long);
        let (bytes, _, _) = encoding_rs::GBK.encode(&html);
        let (text, _, src) = decode(&bytes, None);
        assert_eq!(src, CharsetSource::Detected);
        assert!(text.contains(ZH));
    }

    #[test]
    fn invalid_utf8_and_nul_do_not_fail() {
        let bytes = b"<html><body><p>ok \xff\xfe\x00 bytes</p></body></html>";
        let (text, _, _) = decode(bytes, Some("text/html; charset=utf-8"));
        assert!(text.contains("ok"));
    }
}
