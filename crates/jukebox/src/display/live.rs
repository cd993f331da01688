//! Outputs a running cell redraws in place ([`LiveDisplay`]), such as training progress: one
//! line per drawing on standard output, starting with [`LIVE_DISPLAY_MARKER`], which the kernel's
//! relay turns into Jupyter display updates.

pub use jukebox_protocol::env::LIVE_DISPLAY_MARKER;

/// An output that a running cell redraws in place, such as training progress.
///
/// evcxr, the Rust kernel, forwards what a cell prints line by line and cannot update an output,
/// so our kernel launcher puts a small relay between Jupyter and evcxr (`kernel/kernel_relay.py`)
/// and sets `JUKEBOX_DISPLAY_UPDATES`. Each [`LiveDisplay::show`] prints one line,
/// `JUKEBOX_DISPLAY {"display_id", "update", "data": {mime: content}}`, which the relay sends to
/// Jupyter as `display_data` (the first) or `update_display_data` (the next ones): JupyterLab
/// redraws the output, and papermill saves its last state in the notebook.
/// [`LiveDisplay::start`] is `None` where no relay listens (a terminal, a log, another kernel).
///
/// A caller that has something new often (every batch, every chunk of a download) asks
/// [`LiveDisplay::redraw_due`] first, so the output is redrawn at most every
/// [`LiveDisplay::REDRAW_INTERVAL`] whoever draws it.
#[derive(Debug)]
pub struct LiveDisplay {
    id: String,
    last_shown: Option<std::time::Instant>,
}

impl LiveDisplay {
    /// How often a live output is redrawn at most, between the changes that must show at once
    /// (an epoch's line, the end): often enough to look alive, rarely enough that the browser
    /// and the saved notebook do not churn.
    pub const REDRAW_INTERVAL: std::time::Duration = std::time::Duration::from_millis(200);

    /// A new live output, if the kernel can show one.
    pub fn start() -> Option<LiveDisplay> {
        if std::env::var_os(jukebox_protocol::env::DISPLAY_UPDATES).is_none_or(|v| v != "1") {
            return None;
        }
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let started = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        // Unique across the kernel's cell processes (one per restart) and across cells.
        let id = format!(
            "jukebox-{}-{}-{}",
            std::process::id(),
            started.as_nanos(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        Some(LiveDisplay { id, last_shown: None })
    }

    /// Whether a routine redraw is due: never shown yet, or last shown at least
    /// [`LiveDisplay::REDRAW_INTERVAL`] ago.
    pub fn redraw_due(&self) -> bool {
        self.last_shown.is_none_or(|at| at.elapsed() >= Self::REDRAW_INTERVAL)
    }

    /// Shows `text` (plain text, for logs and saved notebooks) and `html` (what JupyterLab
    /// draws), replacing what this output showed before.
    pub fn show(&mut self, text: &str, html: &str) {
        let line = serde_json::json!({
            "display_id": self.id,
            "update": self.last_shown.is_some(),
            "data": { "text/plain": text, "text/html": html },
        });
        // serde_json writes no raw newline, so the message stays one line.
        println!("{LIVE_DISPLAY_MARKER}{line}");
        self.last_shown = Some(std::time::Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_display_is_redrawn_at_most_every_interval() {
        let mut live = LiveDisplay { id: "test".into(), last_shown: None };
        assert!(live.redraw_due(), "the first drawing is always due");
        live.show("first", "<b>first</b>");
        assert!(!live.redraw_due(), "just shown");
        live.last_shown = Some(std::time::Instant::now() - LiveDisplay::REDRAW_INTERVAL);
        assert!(live.redraw_due(), "an interval later");
    }
}
