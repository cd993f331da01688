//! A real SIGINT (what Ctrl-C and Jupyter's stop button send) during a sweep keeps the finished
//! runs (issue 21). Alone in its own test binary: the signal goes to the whole test process, and
//! would stop another test's training.

mod common;

use std::time::{Duration, Instant};

use jukebox::prepare::{PreparedData, SplitOptions, SplitStrategy};
use jukebox::refine::Grid;

/// Whether this process catches SIGINT (bit 1 of `SigCgt` in /proc/self/status): the sweep's
/// handler is installed, so a SIGINT no longer ends the process.
fn catches_sigint() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let mask = status.lines().find_map(|l| l.strip_prefix("SigCgt:")).map(str::trim).unwrap_or("0");
    u64::from_str_radix(mask, 16).unwrap_or(0) & (1 << 1) != 0
}

/// Gives SIGINT its default action in this process. A test runner started as a background job
/// (nohup, `cmd &` in a script, some CI runners) inherits SIGINT *ignored*, and the sweep rightly
/// leaves an ignored SIGINT alone outside the kernel: without this the signal would never reach
/// the sweep and run 2 would train for hours.
fn default_sigint() {
    extern "C" {
        fn signal(signum: std::os::raw::c_int, handler: usize) -> usize;
    }
    const SIGINT: std::os::raw::c_int = 2;
    const SIG_DFL: usize = 0;
    // SAFETY: setting the default action, before any thread of this test exists.
    unsafe { signal(SIGINT, SIG_DFL) };
}

#[test]
fn a_sigint_during_a_sweep_keeps_the_runs_that_finished() {
    default_sigint();
    let options = SplitOptions { strategy: SplitStrategy::Grouped, ..SplitOptions::with_seed(42) };
    let data = PreparedData::new(&common::chart(), &jukebox::data::FEATURES, &options).unwrap();
    // Run 1 takes a fraction of a second; run 2 (100,000 epochs) would take hours on any machine,
    // so the signal, sent 3 s after the sweep started, reaches it in run 2.
    let grid: Grid =
        r#"{"epochs": [1, 100000], "hidden_layers": [[16]], "learning_rate": [0.001], "batch_size": [256]}"#
            .parse()
            .unwrap();
    let pid = std::process::id().to_string();
    let sender = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !catches_sigint() {
            if Instant::now() >= deadline {
                // A panic here would end only this thread while run 2 trains on for hours.
                eprintln!("the sweep never installed its SIGINT handler");
                std::process::exit(1);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_secs(3));
        let status = std::process::Command::new("kill").args(["-INT", &pid]).status().unwrap();
        assert!(status.success(), "kill -INT {pid} failed");
    });
    let started = Instant::now();
    let sweep = grid.sweep(&data, 42).unwrap();
    sender.join().unwrap();
    assert!(started.elapsed() < Duration::from_secs(60), "the sweep did not stop at the interrupt");
    assert_eq!((sweep.runs.len(), sweep.planned), (1, 2));
    assert!(!sweep.is_complete());
    assert_eq!(sweep.best().number, 1);
    let caption = sweep.table().caption.unwrap();
    assert!(caption.contains("stopped after 1 of 2 runs (interrupted)"), "{caption}");
}
