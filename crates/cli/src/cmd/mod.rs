//! One module per user command.

pub mod changes;
pub mod diff;
pub mod dlq;
pub mod extract;
pub mod feeds;
pub mod get;
pub mod progress;
pub mod reextract;
pub mod status;
pub mod submit;

use std::io::Write;

/// Prints a line to standard output; a closed pipe (`crawlq … | head`)
/// ends the program quietly instead of panicking.
pub fn out(line: &str) {
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "{line}").is_err() {
        std::process::exit(0);
    }
}

/// Prints an aligned table: each column as wide as its widest cell,
/// numbers right-aligned from column `first_number` on.
pub fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]], first_number: usize) {
    let mut widths = header.map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let parts: Vec<String> = cells
            .iter()
            .zip(widths)
            .enumerate()
            .map(|(i, (c, w))| {
                if i >= first_number {
                    format!("{c:>w$}")
                } else {
                    format!("{c:<w$}")
                }
            })
            .collect();
        out(parts.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}
