//! `crawlq diff URL|ID [--from N] [--to M] [--format text|html]`: what
//! changed between two versions of an article, word by word (character by
//! character for Chinese and Japanese, which do not space their words).

use clap::{Args, ValueEnum};
use crawlq_runtime::config::StoreArgs;
use crawlq_storage::read;
use similar::{ChangeTag, TextDiff};

/// `crawlq diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Older version (default: the one before `--to`).
    #[arg(long)]
    from: Option<u32>,
    /// Newer version (default: the latest).
    #[arg(long)]
    to: Option<u32>,
    /// `text` marks deletions `[-like this-]` and insertions `{+like this+}`;
    /// `html` is a page with `<del>` and `<ins>`.
    #[arg(long, value_enum, default_value = "text")]
    format: DiffFormat,
    /// Article URL or 16-hex-digit record id.
    target: String,
}

/// Output of `diff`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DiffFormat {
    /// Plain text with `[-…-]` and `{+…+}` marks.
    Text,
    /// An HTML page with `<del>` and `<ins>`.
    Html,
}

/// One run of the diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// In both.
    Same(String),
    /// Only in the older version.
    Deleted(String),
    /// Only in the newer version.
    Inserted(String),
}

/// Runs `diff`.
pub async fn diff(args: DiffArgs) -> anyhow::Result<()> {
    let store = args.store.open_existing()?;
    let target = crate::cmd::get::normalised(&args.target);
    let at = read::locate(&store, &target).await?;
    let versions = at.versions();
    let latest = versions.iter().map(|v| v.version).max().unwrap_or(0);
    let to = args.to.unwrap_or(latest);
    let from = args.from.unwrap_or(to.saturating_sub(1));
    if from == 0 || from == to {
        anyhow::bail!(
            "`{}` has {} version(s); a diff needs two different ones (--from N --to M)",
            args.target,
            versions.len()
        );
    }
    let old = read::markdown(&store, &at, Some(from)).await?;
    let new = read::markdown(&store, &at, Some(to)).await?;
    let (old_text, new_text) = (readable(&old), readable(&new));
    let pieces = word_diff(&old_text, &new_text);
    let when = |n: u32| {
        versions
            .iter()
            .find(|v| v.version == n)
            .map_or(String::new(), |v| {
                crawlq_runtime::schedule::rfc3339(v.fetched_at)
            })
    };
    match args.format {
        DiffFormat::Text => {
            println!("--- version {from} (fetched {})", when(from));
            println!("+++ version {to} (fetched {})", when(to));
            println!("{}", render_text(&pieces));
        }
        DiffFormat::Html => print!(
            "{}",
            render_html(
                &pieces,
                &format!(
                    "{} — version {from} → {to}",
                    at.json["title"].as_str().unwrap_or(&at.id)
                )
            )
        ),
    }
    Ok(())
}

/// The title and text of a seed-format version, one paragraph a line.
pub fn readable(md: &str) -> String {
    let title = crawlq_record::parse_header(md)
        .map(|(_, t, _)| t)
        .unwrap_or_default();
    let html = md.split_once("\n------\n\n").map_or("", |(_, body)| body);
    // Block boundaries become line breaks before the markup is dropped.
    let mut spaced = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(i) = rest.find('<') {
        spaced.push_str(&rest[..i]);
        let tag = &rest[i..];
        let name: String = tag[1..]
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        if name.eq_ignore_ascii_case("br")
            || crawlq_extractor::dom::is_block(&name.to_ascii_lowercase())
        {
            spaced.push('\n');
        }
        spaced.push_str(&tag[..tag.find('>').map_or(tag.len(), |e| e + 1)]);
        rest = &tag[tag.find('>').map_or(tag.len(), |e| e + 1)..];
    }
    spaced.push_str(rest);
    let text = scraper::Html::parse_fragment(&spaced)
        .root_element()
        .text()
        .collect::<String>();
    let lines: Vec<String> = text
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect();
    format!("{title}\n\n{}", lines.join("\n"))
}

/// Is the text mostly Chinese or Japanese (no spaces between words)?
fn unspaced(text: &str) -> bool {
    let (mut cjk, mut letters) = (0usize, 0usize);
    for c in text.chars().filter(|c| c.is_alphanumeric()) {
        letters += 1;
        if matches!(c as u32, 0x3040..=0x30ff | 0x3400..=0x4dbf | 0x4e00..=0x9fff | 0xf900..=0xfaff)
        {
            cjk += 1;
        }
    }
    letters > 0 && cjk * 3 >= letters
}

/// Word-level diff (character-level for unspaced scripts), merged into runs.
pub fn word_diff(old: &str, new: &str) -> Vec<Piece> {
    let diff = if unspaced(old) || unspaced(new) {
        TextDiff::configure().diff_chars(old, new)
    } else {
        TextDiff::configure().diff_words(old, new)
    };
    let mut out: Vec<Piece> = Vec::new();
    let mut group: (String, String) = (String::new(), String::new());
    let flush = |out: &mut Vec<Piece>, group: &mut (String, String)| {
        let (del, ins) = std::mem::take(group);
        // White space the two sides share ends the group, not the marks.
        let shared = del.len() - del.trim_end().len();
        let shared = shared.min(ins.len() - ins.trim_end().len());
        let tail = del[del.len() - shared..].to_string();
        if !del.trim().is_empty() {
            out.push(Piece::Deleted(del[..del.len() - shared].to_string()));
        }
        if !ins.trim().is_empty() {
            out.push(Piece::Inserted(ins[..ins.len() - shared].to_string()));
        }
        if !tail.is_empty() {
            out.push(Piece::Same(tail));
        }
    };
    for change in diff.iter_all_changes() {
        let s = change.value();
        match change.tag() {
            ChangeTag::Delete => group.0.push_str(s),
            ChangeTag::Insert => group.1.push_str(s),
            // White space between two changes belongs to both sides, so a
            // rewritten sentence reads as one deletion and one insertion.
            ChangeTag::Equal
                if s.trim().is_empty() && !(group.0.is_empty() && group.1.is_empty()) =>
            {
                group.0.push_str(s);
                group.1.push_str(s);
            }
            ChangeTag::Equal => {
                flush(&mut out, &mut group);
                match out.last_mut() {
                    Some(Piece::Same(t)) => t.push_str(s),
                    _ => out.push(Piece::Same(s.to_string())),
                }
            }
        }
    }
    flush(&mut out, &mut group);
    merge_runs(out)
}

/// Adjacent pieces of one kind as one.
fn merge_runs(pieces: Vec<Piece>) -> Vec<Piece> {
    let mut out: Vec<Piece> = Vec::new();
    for p in pieces {
        match (out.last_mut(), p) {
            (Some(Piece::Same(t)), Piece::Same(s))
            | (Some(Piece::Deleted(t)), Piece::Deleted(s))
            | (Some(Piece::Inserted(t)), Piece::Inserted(s)) => t.push_str(&s),
            (_, p) => out.push(p),
        }
    }
    out
}

/// `[-deleted-]` and `{+inserted+}`, white space kept outside the marks.
pub fn render_text(pieces: &[Piece]) -> String {
    let mark = |open: &str, s: &str, close: &str| {
        let core = s.trim_end();
        format!("{open}{core}{close}{}", &s[core.len()..])
    };
    let mut out = String::new();
    for (i, p) in pieces.iter().enumerate() {
        match p {
            Piece::Same(s) => out.push_str(s),
            Piece::Deleted(s) => {
                out.push_str(&mark("[-", s, "-]"));
                // A replacement reads as two words, not one.
                if matches!(pieces.get(i + 1), Some(Piece::Inserted(_)))
                    && !out.ends_with(char::is_whitespace)
                    && !unspaced(s)
                {
                    out.push(' ');
                }
            }
            Piece::Inserted(s) => out.push_str(&mark("{+", s, "+}")),
        }
    }
    out
}

/// A standalone page marking deletions and insertions.
pub fn render_html(pieces: &[Piece], title: &str) -> String {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let mut body = String::new();
    for p in pieces {
        match p {
            Piece::Same(s) => body.push_str(&esc(s)),
            Piece::Deleted(s) => body.push_str(&format!("<del>{}</del>", esc(s))),
            Piece::Inserted(s) => body.push_str(&format!("<ins>{}</ins>", esc(s))),
        }
    }
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title>\n<style>del{{background:#fdd}}ins{{background:#dfd}}body{{white-space:pre-wrap;font-family:serif;max-width:50em;margin:auto}}</style></head>\n<body>{body}</body></html>\n",
        esc(title)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_diffed_in_runs() {
        let p = word_diff(
            "The minister resigned on Monday.",
            "The minister denied resigning on Monday.",
        );
        let text = render_text(&p);
        assert_eq!(
            text,
            "The minister [-resigned-] {+denied resigning+} on Monday."
        );
        let html = render_html(&p, "t");
        assert!(
            html.contains("<del>resigned</del>") && html.contains("<ins>denied resigning</ins>"),
            "{html}"
        );
    }

    #[test]
    fn chinese_is_diffed_by_character() {
        let p = word_diff(
            "美国国务卿布林肯今天谴责平壤",
            "美国国务卿布林肯昨天谴责平壤",
        );
        assert_eq!(render_text(&p), "美国国务卿布林肯[-今-]{+昨+}天谴责平壤");
    }

    #[test]
    fn versions_read_as_title_and_paragraphs() {
        let md = "<!--1-->\n[A title](https://a.com/x)\n------\n\n<p>One <b>bold</b> word.</p><p>Two &amp; three.</p>\n";
        assert_eq!(readable(md), "A title\n\nOne bold word.\nTwo & three.");
    }
}
