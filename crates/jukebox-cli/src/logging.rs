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
//!
//! Lines are buffered ([`Buffered`]) and written every 100 ms, at once for warnings and errors,
//! and when the command ends ([`LogGuard`]): one write system call per access line, under a
//! lock the model server's workers share, cost a quarter of its throughput at 64 concurrent
//! clients (23,780 against 31,434 requests/s in one measurement).

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
/// error only. Keep the guard until the command ends: dropping it writes what is buffered.
pub fn init(format: LogFormat, file: Option<&Path>) -> anyhow::Result<LogGuard> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => {
            EnvFilter::builder().parse(&directives).with_context(|| {
                format!("RUST_LOG={directives:?} is not a valid log filter (e.g. `info`, `debug,hyper=info`)")
            })?
        }
        _ => EnvFilter::new("info"),
    };
    match file {
        None => {
            let out = Buffered::new(Box::new(std::io::stderr()));
            tracing_subscriber::registry()
                .with(layer(format, out.clone()).with_filter(filter))
                .try_init()
                .context(INSTALL)?;
            Ok(LogGuard(out))
        }
        Some(path) => {
            if let Some(folder) = path.parent() {
                std::fs::create_dir_all(folder).with_context(|| format!("cannot create {}", folder.display()))?;
            }
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open the log file {}", path.display()))?;
            let out = Buffered::new(Box::new(log));
            tracing_subscriber::registry()
                .with(layer(format, out.clone()).with_filter(filter))
                .with(layer(format, std::io::stderr).with_filter(LevelFilter::WARN))
                .try_init()
                .context(INSTALL)?;
            Ok(LogGuard(out))
        }
    }
}

const INSTALL: &str = "cannot install the logger";

/// Writes what is still buffered when dropped (at the end of `main`).
pub struct LogGuard(Buffered);

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.0.flush();
    }
}

/// A shared buffer in front of the log's file or standard error: a thread writes it out every
/// 100 ms, and a warning or an error at once.
#[derive(Clone)]
struct Buffered(Arc<Mutex<BufWriter<Box<dyn Write + Send>>>>);

impl Buffered {
    fn new(out: Box<dyn Write + Send>) -> Self {
        let buffered = Self(Arc::new(Mutex::new(BufWriter::with_capacity(64 * 1024, out))));
        let flusher = buffered.clone();
        // Ends with the process; nothing to join.
        let _ = std::thread::Builder::new().name("log-flush".into()).spawn(move || loop {
            std::thread::sleep(Duration::from_millis(100));
            flusher.flush();
        });
        buffered
    }

    fn flush(&self) {
        // A write failure (disk full, closed pipe) must not take a server down: the line is lost.
        let _ = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).flush();
    }
}

/// One event's writer: its line goes into the buffer, written out at once for WARN and ERROR.
struct BufferedLine {
    buffer: Buffered,
    urgent: bool,
}

impl Write for BufferedLine {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).write(bytes)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.buffer.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).flush()
    }
}

impl Drop for BufferedLine {
    fn drop(&mut self) {
        if self.urgent {
            self.buffer.flush();
        }
    }
}

impl<'a> MakeWriter<'a> for Buffered {
    type Writer = BufferedLine;

    fn make_writer(&'a self) -> BufferedLine {
        BufferedLine { buffer: self.clone(), urgent: false }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> BufferedLine {
        BufferedLine { buffer: self.clone(), urgent: *meta.level() <= tracing::Level::WARN }
    }
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
