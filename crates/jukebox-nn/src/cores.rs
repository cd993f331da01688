//! Running the two parts of each training step on two cores: this thread runs part 0, a helper
//! thread part 1, and the two meet at a [`PairBarrier`] between phases.
//!
//! A step of the workshop model takes about 150 µs and has a dozen meetings, so a meeting must
//! cost well under a microsecond: the threads spin on an atomic rather than sleep on a futex
//! (waking a sleeping thread costs tens of microseconds). Spinning is bounded: a wait longer
//! than [`SPIN`] (a progress callback drawing, validation running between epochs) naps in
//! short sleeps, so a pause in training does not hold a core.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::float_env::FlushToZeroGuard;
use crate::step::{Phase, StepArgs, StepView};

/// How long a meeting spins before it naps.
const SPIN: Duration = Duration::from_micros(200);
/// One nap of a long wait.
const NAP: Duration = Duration::from_micros(50);

/// The other thread stopped (it panicked or was told to stop) and will not come.
#[derive(Debug)]
pub(crate) struct Abandoned;

/// A reusable meeting point for exactly two threads. Aligned to two cache lines (the unit the
/// CPU's adjacent-line prefetcher fetches) so the counters share them with nothing else.
#[derive(Default)]
#[repr(align(128))]
pub(crate) struct PairBarrier {
    arrived: AtomicU32,
    generation: AtomicU32,
    abandoned: AtomicBool,
}

impl PairBarrier {
    /// Returns once the other thread has called `meet` as many times as this one; everything
    /// either wrote before meeting is visible to the other afterwards.
    pub(crate) fn meet(&self) -> Result<(), Abandoned> {
        let generation = self.generation.load(Ordering::Acquire);
        if self.arrived.fetch_add(1, Ordering::AcqRel) == 1 {
            // Second to arrive: reset for the next meeting, then release the first.
            self.arrived.store(0, Ordering::Relaxed);
            self.generation.store(generation.wrapping_add(1), Ordering::Release);
            return Ok(());
        }
        let mut spins = 0u32;
        let mut spin_until = None;
        while self.generation.load(Ordering::Acquire) == generation {
            if self.abandoned.load(Ordering::Relaxed) {
                return Err(Abandoned);
            }
            spins = spins.wrapping_add(1);
            // Reading the clock costs more than a spin, so look at it every 64th.
            if spins.is_multiple_of(64) {
                let now = Instant::now();
                if now >= *spin_until.get_or_insert(now + SPIN) {
                    std::thread::sleep(NAP);
                    continue;
                }
            }
            std::hint::spin_loop();
        }
        Ok(())
    }

    /// Frees the other thread from every present and future meeting.
    pub(crate) fn abandon(&self) {
        self.abandoned.store(true, Ordering::Relaxed);
    }
}

/// A step handed to the helper thread: the view lives on the training thread's stack for the
/// step, which the meetings bracket.
struct Job {
    view: *const StepView<'static>,
    args: StepArgs,
}

// SAFETY: the pointer is dereferenced only between the step's first and last meetings, while the
// training thread keeps the view alive and does not touch it but through its own part.
unsafe impl Send for Job {}

/// What the training thread and the helper thread share.
#[derive(Default)]
pub(crate) struct TwoCores {
    barrier: PairBarrier,
    /// The next step, or `None` to stop the helper.
    mailbox: Mutex<Option<Job>>,
}

impl TwoCores {
    /// Runs one step: part 0 here, part 1 on the helper thread (running [`TwoCores::helper`]).
    pub(crate) fn run_step(&self, view: &StepView, args: StepArgs) {
        let view = std::ptr::from_ref(view).cast::<StepView<'static>>();
        *self.mailbox.lock().unwrap_or_else(|e| e.into_inner()) = Some(Job { view, args });
        self.meet();
        // SAFETY: see the helper; this thread keeps `view` alive until the last meeting.
        let view = unsafe { &*view };
        for phase in Phase::all(view.n_layers()) {
            // SAFETY: both threads run the phases in order and meet after each.
            unsafe { view.run(phase, 0, args) };
            self.meet();
        }
    }

    fn meet(&self) {
        if self.barrier.meet().is_err() {
            panic!("the second training thread stopped unexpectedly");
        }
    }

    /// The helper thread's loop: waits for a step, runs part 1 of it, until told to stop.
    pub(crate) fn helper(&self) {
        let _flush_to_zero = FlushToZeroGuard::enable();
        // If part 1 panics, the training thread must not wait for it forever.
        let _guard = AbandonOnPanic(&self.barrier);
        loop {
            if self.barrier.meet().is_err() {
                return;
            }
            let Some(job) = self.mailbox.lock().unwrap_or_else(|e| e.into_inner()).take() else {
                return;
            };
            // SAFETY: the training thread put this view in the mailbox before the meeting just
            // passed and keeps it alive until the step's last meeting.
            let view = unsafe { &*job.view };
            for phase in Phase::all(view.n_layers()) {
                // SAFETY: as in run_step.
                unsafe { view.run(phase, 1, job.args) };
                if self.barrier.meet().is_err() {
                    return;
                }
            }
        }
    }

    /// Ends the helper: between steps it is told to stop; during a panic it is let go.
    pub(crate) fn stop_helper(&self) {
        if std::thread::panicking() {
            self.barrier.abandon();
        } else {
            *self.mailbox.lock().unwrap_or_else(|e| e.into_inner()) = None;
            let _ = self.barrier.meet();
        }
    }
}

struct AbandonOnPanic<'a>(&'a PairBarrier);

impl Drop for AbandonOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.abandon();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn a_meeting_makes_each_threads_writes_visible_to_the_other() {
        let barrier = PairBarrier::default();
        let (left, right) = (AtomicUsize::new(0), AtomicUsize::new(0));
        std::thread::scope(|s| {
            s.spawn(|| {
                for round in 1..=10_000 {
                    right.store(round, Ordering::Relaxed);
                    barrier.meet().unwrap();
                    assert_eq!(left.load(Ordering::Relaxed), round);
                    barrier.meet().unwrap();
                }
            });
            for round in 1..=10_000 {
                left.store(round, Ordering::Relaxed);
                barrier.meet().unwrap();
                assert_eq!(right.load(Ordering::Relaxed), round);
                barrier.meet().unwrap();
            }
        });
    }

    #[test]
    fn an_abandoned_meeting_returns_instead_of_waiting_forever() {
        let barrier = PairBarrier::default();
        std::thread::scope(|s| {
            let waiter = s.spawn(|| barrier.meet());
            std::thread::sleep(Duration::from_millis(5));
            barrier.abandon();
            assert!(waiter.join().unwrap().is_err());
        });
    }
}
