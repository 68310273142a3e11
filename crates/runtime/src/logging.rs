//! Log setup: `tracing` to stderr, as text or JSON, filtered by `RUST_LOG`.
//! Every record is one line: in text, a field's line breaks and other
//! control characters are escaped ([`crate::printable`]; an error from a
//! server may span lines); JSON escapes them itself.

use tracing_subscriber::field::MakeExt;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber. `RUST_LOG` overrides the default `info`.
/// A second call (as in tests) is ignored.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,async_nats=warn,hyper=warn,reqwest=warn"));
    // Colours only for a terminal: a log file or a collector gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => {
            let fields = tracing_subscriber::fmt::format::debug_fn(|w, field, value| {
                let raw = format!("{value:?}");
                let text = crate::printable(&raw);
                if field.name() == "message" {
                    write!(w, "{text}")
                } else {
                    write!(w, "{}={text}", field.name())
                }
            })
            .delimited(" ");
            builder.fmt_fields(fields).try_init()
        }
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
