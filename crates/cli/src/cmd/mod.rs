//! One module per user command.

pub mod changes;
pub mod diff;
pub mod dlq;
pub mod extract;
pub mod feeds;
pub mod get;
pub mod progress;
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
