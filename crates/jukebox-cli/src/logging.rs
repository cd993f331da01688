//! Where the `jukebox` command's log goes, set up once in `main` before any command runs: the
//! libraries only emit `tracing` events (the servers' access lines, s3s's and axum's own events,
//! load failures), and this decides which are written, where and how.
//!
//! - **which**: `RUST_LOG`, in `tracing-subscriber`'s `EnvFilter` syntax (`debug`,
//!   `info,s3s=debug`, `jukebox_server::access=off`, ...); default `info`. A malformed value is
//!   an error naming it, not a silent default;
//! - **how**: `--log-format text` (one line per event: time, level, target, fields) or `json`
//!   (one JSON object per line, the event's fields at the top level, for log shippers);
//! - **where**: standard error, except for `jukebox up`, which runs three servers for as long as
//!   the workbench is open: their log goes to a file under the state folder ([`up_log_file`],
//!   appended across restarts, each line naming its service), and warnings and errors also go to
//!   standard error so a failure shows in the terminal.

use std::path::{Path, PathBuf};

use anyhow::Context;
use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::Layer as _;

/// The log line format (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines: time, level, target, message and fields.
    #[default]
    Text,
    /// One JSON object per line (timestamp, level, target, the event's fields at the top level).
    Json,
}

/// `jukebox up`'s log file: `<state dir>/logs/jukebox-up.log`.
pub fn up_log_file(state_dir: &Path) -> PathBuf {
    state_dir.join("logs").join("jukebox-up.log")
}

/// Installs the global subscriber: `RUST_LOG` (default `info`) in `format`, to `file` (created
/// with its folder, appended to) with warnings and errors also on standard error, or to standard
/// error only.
pub fn init(format: LogFormat, file: Option<&Path>) -> anyhow::Result<()> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => {
            EnvFilter::builder().parse(&directives).with_context(|| {
                format!("RUST_LOG={directives:?} is not a valid log filter (e.g. `info`, `debug,hyper=info`)")
            })?
        }
        _ => EnvFilter::new("info"),
    };
    match file {
        None => tracing_subscriber::registry().with(layer(format, std::io::stderr).with_filter(filter)).try_init(),
        Some(path) => {
            if let Some(folder) = path.parent() {
                std::fs::create_dir_all(folder).with_context(|| format!("cannot create {}", folder.display()))?;
            }
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open the log file {}", path.display()))?;
            tracing_subscriber::registry()
                .with(layer(format, std::sync::Mutex::new(log)).with_filter(filter))
                .with(layer(format, std::io::stderr).with_filter(LevelFilter::WARN))
                .try_init()
        }
    }
    .context("cannot install the logger")
}

/// One output: `text` or `json` lines to `writer`.
fn layer<S, W>(format: LogFormat, writer: W) -> Box<dyn tracing_subscriber::Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let base = tracing_subscriber::fmt::layer().with_writer(writer).with_ansi(false);
    match format {
        LogFormat::Text => base.boxed(),
        LogFormat::Json => base.json().flatten_event(true).with_current_span(true).with_span_list(false).boxed(),
    }
}
