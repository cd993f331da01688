//! How a training run shows its progress, and how an interrupt ends it (see [`Progress`]).

use std::io::IsTerminal;
use std::time::Instant;

use jukebox_nn::{EpochProgress, History};

use super::error::TrainError;

/// Holding one, SIGINT asks to stop instead of ending the process (see `interrupt`): what a loop
/// over several fits (a sweep) holds across them, so an interrupt between two fits stops the loop
/// with the finished fits kept.
pub(crate) use interrupt::Watch;

/// How training progress is shown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Progress {
    /// A bar when stderr is a terminal; in the Rust kernel, a live output; otherwise lines.
    #[default]
    Auto,
    /// An indicatif progress bar per epoch (on stderr).
    Bar,
    /// Epoch lines on stdout, like Keras's `verbose=2` (at most about ten: every
    /// `ceil(epochs / 10)`-th epoch and the last), then a summary line.
    Lines,
    /// One output redrawn in place while the network trains (a bar for the current epoch under
    /// the epoch lines so far), left with the epoch lines and the summary line: Jupyter through
    /// the Rust kernel's relay ([`crate::display::LiveDisplay`]). Lines where no relay listens.
    Live,
    Silent,
}

/// Shows [`EpochProgress`] as a bar, a live output or lines, and stops training on an interrupt.
///
/// Lines (logs, and notebooks where no relay listens): at most about ten epoch lines (every epoch
/// up to 10 epochs, else every `ceil(epochs / 10)`-th and the last) and one summary line, so that
/// the saved notebook stays short. Live (Jupyter through the Rust kernel's relay): one output that
/// shows those lines and, under them, a bar for the epoch being trained, redrawn a few times a
/// second; when training ends the bar gives way to the summary line, so the saved notebook keeps
/// the same text as with lines.
///
/// Interrupts: while training, SIGINT (Ctrl-C; the Jupyter stop button, the kernelspec's
/// `interrupt_mode` being `signal`) sets a flag that ends the run at the next progress call
/// (every 50 batches, a few hundredths of a second) with [`TrainError::Interrupted`]; the
/// process, and the kernel's variables, live on.
pub(super) struct ProgressReporter {
    mode: Progress,
    bar: Option<indicatif::ProgressBar>,
    live: Option<crate::display::LiveDisplay>,
    /// The epoch lines shown so far (Live).
    lines: Vec<String>,
    started: Instant,
    last: Option<EpochProgress>,
    interrupt: interrupt::Watch,
}

impl ProgressReporter {
    pub(super) fn new(mode: Progress) -> Self {
        let mut live = None;
        let mode = match mode {
            Progress::Auto if std::io::stderr().is_terminal() => Progress::Bar,
            Progress::Auto | Progress::Live => match crate::display::LiveDisplay::start() {
                Some(display) => {
                    live = Some(display);
                    Progress::Live
                }
                None => Progress::Lines,
            },
            other => other,
        };
        ProgressReporter {
            mode,
            bar: None,
            live,
            lines: Vec::new(),
            started: Instant::now(),
            last: None,
            interrupt: interrupt::Watch::start(),
        }
    }

    fn epoch_line(p: &EpochProgress) -> String {
        let mut line = format!(
            "Epoch {}/{}: {} batches, loss {:.4}, accuracy {:.4}",
            p.epoch, p.epochs, p.batches, p.loss, p.accuracy
        );
        if let (Some(loss), Some(accuracy)) = (p.val_loss, p.val_accuracy) {
            line.push_str(&format!(", val_loss {loss:.4}, val_accuracy {accuracy:.4}"));
        }
        line.push_str(&format!(", {:.0} samples/s", p.samples_per_second));
        line
    }

    /// Whether a run of `epochs` prints the line of `epoch` (Lines and Live).
    fn shows_epoch(epoch: usize, epochs: usize) -> bool {
        let every = epochs.div_ceil(10).max(1);
        epoch == epochs || epoch.is_multiple_of(every) || epoch == 1
    }

    /// The bar of the epoch being trained, as text and as HTML.
    fn bar_of(p: &EpochProgress) -> (String, String) {
        const WIDTH: usize = 30;
        let done = (p.batch * WIDTH).checked_div(p.batches).unwrap_or(0).min(WIDTH);
        let numbers = format!(
            "batch {}/{}, loss {:.4}, accuracy {:.4}, {:.0} samples/s",
            p.batch, p.batches, p.loss, p.accuracy, p.samples_per_second
        );
        let text =
            format!("Epoch {}/{} [{}{}] {numbers}", p.epoch, p.epochs, "=".repeat(done), " ".repeat(WIDTH - done));
        let html = format!(
            "<div style=\"display:flex;align-items:center;gap:8px\"><span>Epoch {}/{}</span>\
             <progress max=\"{}\" value=\"{}\" style=\"width:240px\"></progress><span>{}</span></div>",
            p.epoch,
            p.epochs,
            p.batches,
            p.batch,
            crate::display::escape(&numbers)
        );
        (text, html)
    }

    /// Redraws the live output: the epoch lines so far, then `current` (a bar or a closing line).
    fn draw(&mut self, current: Option<(String, String)>) {
        let Some(live) = self.live.as_mut() else { return };
        let mut text = self.lines.join("\n");
        let mut html =
            format!("<pre style=\"margin:0;font-size:12px;line-height:1.3\">{}</pre>", crate::display::escape(&text));
        if let Some((current_text, current_html)) = current {
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(&current_text);
            html.push_str(&current_html);
        }
        live.show(&text, &html);
    }

    pub(super) fn update(&mut self, p: &EpochProgress) -> std::ops::ControlFlow<()> {
        match self.mode {
            Progress::Lines if p.epoch_done && Self::shows_epoch(p.epoch, p.epochs) => {
                println!("{}", Self::epoch_line(p));
            }
            Progress::Live => {
                let shown = p.epoch_done && Self::shows_epoch(p.epoch, p.epochs);
                if shown {
                    self.lines.push(Self::epoch_line(p));
                }
                let due = self.live.as_ref().is_some_and(|live| live.redraw_due());
                if shown || due {
                    let bar = (!p.epoch_done).then(|| Self::bar_of(p));
                    self.draw(bar);
                }
            }
            Progress::Bar => {
                let bar = self.bar.get_or_insert_with(|| {
                    let bar = indicatif::ProgressBar::new(p.batches as u64);
                    let style = indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}")
                        .expect("valid template")
                        .progress_chars("=> ");
                    bar.set_style(style);
                    bar.set_prefix(format!("Epoch {}/{}", p.epoch, p.epochs));
                    bar
                });
                bar.set_position(p.batch as u64);
                bar.set_message(format!(
                    "loss {:.4} accuracy {:.4} ({:.0} samples/s)",
                    p.loss, p.accuracy, p.samples_per_second
                ));
                if p.epoch_done {
                    bar.finish_and_clear();
                    eprintln!("{}", Self::epoch_line(p));
                    self.bar = None;
                }
            }
            _ => {}
        }
        self.last = Some(p.clone());
        if self.interrupt.requested() {
            if let Some(bar) = self.bar.take() {
                bar.abandon();
            }
            return std::ops::ControlFlow::Break(());
        }
        std::ops::ControlFlow::Continue(())
    }

    /// The error of an interrupted run, if it was, after closing the progress with where it
    /// stopped. That line goes to stdout, in order with the epoch lines: the error itself reaches
    /// a notebook through stderr, which the kernel forwards on its own schedule (it can arrive
    /// just after the cell has ended).
    pub(super) fn interrupted(&mut self) -> Option<TrainError> {
        if !self.interrupt.requested() {
            return None;
        }
        let p = self.last.as_ref()?;
        let (epoch, epochs, batch, batches) = (p.epoch, p.epochs, p.batch, p.batches);
        let line = format!(
            "Stopped at epoch {epoch}/{epochs}, batch {batch}/{batches} after {:.1} s: interrupted",
            self.started.elapsed().as_secs_f64()
        );
        self.close(line);
        Some(TrainError::Interrupted { epoch, epochs, batch, batches })
    }

    /// The summary line that ends a run.
    pub(super) fn finish(&mut self, history: &History) {
        let epochs = history.loss.len();
        let mut line = format!(
            "Trained {epochs} epoch{} in {:.1} s",
            if epochs == 1 { "" } else { "s" },
            self.started.elapsed().as_secs_f64()
        );
        if let (Some(loss), Some(accuracy)) = (history.loss.last(), history.accuracy.last()) {
            line.push_str(&format!(": loss {loss:.4}, accuracy {accuracy:.4}"));
        }
        if let (Some(loss), Some(accuracy)) = (history.val_loss.last(), history.val_accuracy.last()) {
            line.push_str(&format!(", val_loss {loss:.4}, val_accuracy {accuracy:.4}"));
        }
        line.push_str(&format!(" ({:.0} samples/s)", history.samples_per_second));
        if let Some(best) = history.best_epoch {
            let stopped = if history.stopped_early { "stopped early; " } else { "" };
            line.push_str(&format!("; {stopped}kept epoch {best}, the lowest val_loss"));
        }
        self.close(line);
    }

    /// Ends the output with `line`: printed (Lines), or in place of the bar (Live).
    fn close(&mut self, line: String) {
        match self.mode {
            Progress::Lines => println!("{line}"),
            Progress::Live => {
                self.lines.push(line);
                self.draw(None);
            }
            _ => {}
        }
    }
}

/// SIGINT while a network trains: a flag the training loop reads, instead of the end of the
/// process. Outside training, SIGINT does what it did before: it ends a program. In the Rust
/// kernel's cell process it ends the process when a cell runs (what evcxr's own interrupt does:
/// the process is restarted and the variables are lost) and changes nothing when the kernel is
/// idle (a stop pressed just after the cell ended), as Jupyter expects; the kernel's relay keeps
/// a file while a cell runs (`jukebox_protocol::env::KERNEL_BUSY_FILE`).
mod interrupt {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    static REQUESTED: AtomicBool = AtomicBool::new(false);
    static RUNNING: AtomicUsize = AtomicUsize::new(0);
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    static WATCHING: AtomicBool = AtomicBool::new(false);
    /// The kernel's busy file as a C string, read by the handler (so made before it is
    /// installed: a signal handler may not allocate).
    #[cfg(unix)]
    static BUSY_FILE: std::sync::OnceLock<std::ffi::CString> = std::sync::OnceLock::new();

    #[cfg(unix)]
    mod sys {
        use std::os::raw::{c_char, c_int};
        pub const SIGINT: c_int = 2;
        pub const SIG_DFL: usize = 0;
        pub const SIG_IGN: usize = 1;
        pub const SIG_ERR: usize = usize::MAX;
        pub const F_OK: c_int = 0;
        extern "C" {
            // The C library's `signal` (BSD semantics in glibc and macOS: the handler stays
            // installed and interrupted reads restart).
            pub fn signal(signum: c_int, handler: usize) -> usize;
            pub fn raise(signum: c_int) -> c_int;
            pub fn access(path: *const c_char, mode: c_int) -> c_int;
        }
    }

    #[cfg(unix)]
    extern "C" fn on_sigint(_: std::os::raw::c_int) {
        if RUNNING.load(Ordering::SeqCst) > 0 {
            REQUESTED.store(true, Ordering::SeqCst);
            return;
        }
        // Not training. In the kernel with no cell running, nothing to stop (`access` is
        // async-signal-safe).
        if let Some(busy) = BUSY_FILE.get() {
            if unsafe { sys::access(busy.as_ptr(), sys::F_OK) } != 0 {
                return;
            }
        }
        // Else the default action (both calls are async-signal-safe).
        unsafe {
            sys::signal(sys::SIGINT, sys::SIG_DFL);
            sys::raise(sys::SIGINT);
        }
    }

    /// Installs the handler once per process: when SIGINT has its default action, or is ignored
    /// in evcxr's cell process (the kernel ignores SIGINT and leaves the decision to the cell
    /// process, see kernel/evcxr-kernel). A program that set its own handler, or ignores SIGINT
    /// on purpose, keeps it.
    fn install() {
        #[cfg(unix)]
        INSTALLED.call_once(|| unsafe {
            let in_evcxr = std::env::var_os("EVCXR_IS_RUNTIME").is_some();
            if in_evcxr {
                let busy = std::env::var_os(jukebox_protocol::env::KERNEL_BUSY_FILE)
                    .and_then(|path| std::ffi::CString::new(std::os::unix::ffi::OsStringExt::into_vec(path)).ok());
                if let Some(busy) = busy {
                    let _ = BUSY_FILE.set(busy);
                }
            }
            let previous = sys::signal(sys::SIGINT, on_sigint as extern "C" fn(std::os::raw::c_int) as usize);
            let ours = previous == sys::SIG_DFL || (previous == sys::SIG_IGN && in_evcxr);
            if previous == sys::SIG_ERR {
                return;
            }
            if ours {
                WATCHING.store(true, Ordering::SeqCst);
            } else {
                sys::signal(sys::SIGINT, previous);
            }
        });
    }

    /// While alive, SIGINT stops training instead of ending the process.
    pub struct Watch(());

    impl Watch {
        pub fn start() -> Watch {
            install();
            // A watch inside another (one fit of a sweep) keeps a request the outer one has not
            // acted on yet.
            if RUNNING.load(Ordering::SeqCst) == 0 {
                REQUESTED.store(false, Ordering::SeqCst);
            }
            RUNNING.fetch_add(1, Ordering::SeqCst);
            Watch(())
        }
        pub fn requested(&self) -> bool {
            WATCHING.load(Ordering::SeqCst) && REQUESTED.load(Ordering::SeqCst)
        }
    }

    impl Drop for Watch {
        fn drop(&mut self) {
            RUNNING.fetch_sub(1, Ordering::SeqCst);
        }
    }
}
