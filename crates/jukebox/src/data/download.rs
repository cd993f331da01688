//! Downloading the data files: atomically (a `.part` file renamed into place once complete) and
//! with progress in a terminal or in Jupyter.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use super::error::{DataError, Result};

/// Downloads `url` to `dest`, showing its progress ([`DownloadProgress`]). The bytes go to a
/// `.part` file that is renamed into place only once complete, so an interrupted download is never
/// mistaken for data.
pub fn download_atomically(url: &str, dest: &Path) -> Result<()> {
    let fail = |reason: String| DataError::Download { url: url.to_string(), reason };
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DataError::Io { path, source }
    };
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    let response = ureq::get(url).call().map_err(|e| fail(e.to_string()))?;
    let expected_len: Option<u64> =
        response.headers().get("content-length").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut progress = DownloadProgress::start(&name, expected_len);
    let part = dest.with_extension("parquet.part");
    let result = (|| -> Result<u64> {
        let mut out = File::create(&part).map_err(io(&part))?;
        let mut body = response.into_body().into_reader();
        let mut buffer = vec![0u8; 64 * 1024];
        let mut written = 0u64;
        loop {
            let n = body.read(&mut buffer).map_err(|e| fail(e.to_string()))?;
            if n == 0 {
                break;
            }
            out.write_all(&buffer[..n]).map_err(io(&part))?;
            written += n as u64;
            progress.advance(written);
        }
        if let Some(len) = expected_len {
            if written != len {
                return Err(fail(format!("connection closed after {written} of {len} bytes")));
            }
        }
        out.sync_all().map_err(io(&part))?;
        Ok(written)
    })();
    progress.finish(result.as_ref().ok().copied());
    match result {
        Ok(_) => std::fs::rename(&part, dest).map_err(io(dest)),
        Err(err) => {
            let _ = std::fs::remove_file(&part);
            Err(err)
        }
    }
}

/// How a download shows its progress: a bar in a terminal (on stderr); in Jupyter through the
/// Rust kernel, one output redrawn in place ([`crate::display::LiveDisplay`]) that ends as a
/// summary line; elsewhere (logs, other kernels) only that summary line, on stdout.
pub struct DownloadProgress {
    name: String,
    expected: Option<u64>,
    started: std::time::Instant,
    bar: Option<indicatif::ProgressBar>,
    live: Option<crate::display::LiveDisplay>,
}

impl DownloadProgress {
    pub fn start(name: &str, expected: Option<u64>) -> DownloadProgress {
        use std::io::IsTerminal;
        let (bar, live) = if std::io::stderr().is_terminal() {
            let bar = match expected {
                Some(len) => indicatif::ProgressBar::new(len),
                None => indicatif::ProgressBar::new_spinner(),
            };
            bar.set_message(name.to_string());
            (Some(bar), None)
        } else {
            (None, crate::display::LiveDisplay::start())
        };
        DownloadProgress { name: name.to_string(), expected, started: std::time::Instant::now(), bar, live }
    }

    /// `written` bytes are in.
    pub fn advance(&mut self, written: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(written);
        }
        if let Some(live) = self.live.as_mut().filter(|live| live.redraw_due()) {
            let (text, html) = Self::render(&self.name, written, self.expected, self.started.elapsed().as_secs_f64());
            live.show(&text, &html);
        }
    }

    /// Ends the progress: the summary line of a complete download (`Some(bytes)`), or of one that
    /// failed (its error follows as the function's result).
    pub fn finish(mut self, written: Option<u64>) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        let seconds = self.started.elapsed().as_secs_f64();
        let line = match written {
            Some(bytes) => format!("Downloaded {}: {} in {seconds:.1} s", self.name, megabytes(bytes)),
            None => format!("Download of {} failed after {seconds:.1} s", self.name),
        };
        match self.live.as_mut() {
            Some(live) => live.show(&line, &format!("<pre style=\"margin:0\">{}</pre>", crate::display::escape(&line))),
            None => println!("{line}"),
        }
    }

    /// The live output while `written` bytes of `expected` are in after `seconds`: text and HTML.
    pub fn render(name: &str, written: u64, expected: Option<u64>, seconds: f64) -> (String, String) {
        let rate = if seconds > 0.0 { written as f64 / seconds } else { 0.0 };
        let of = expected.map(|len| format!(" of {}", megabytes(len))).unwrap_or_default();
        let text = format!("Downloading {name}: {}{of} ({}/s)", megabytes(written), megabytes(rate as u64));
        let bar = match expected {
            Some(len) => format!("<progress max=\"{len}\" value=\"{written}\" style=\"width:240px\"></progress> "),
            None => String::new(),
        };
        let html = format!("<div>{bar}{}</div>", crate::display::escape(&text));
        (text, html)
    }
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}
