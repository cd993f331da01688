//! Dynamic batching: concurrent small requests for one model version run as one ONNX Runtime
//! call, as Triton's and OpenVINO Model Server's dynamic batchers do.
//!
//! Why: for the workshop model one call costs about the same for 1 row as for 30 (13 us and
//! 21 us: the fixed cost is the call, not the arithmetic), so under load most of the work is
//! per call. In a model whose inputs and outputs all have a dynamic first (batch) dimension,
//! the rows of separate requests can be stacked along it, run once, and the outputs cut back
//! into each request's rows. That assumes each output row depends on its own input row only,
//! as in every model the workshop exports; a model that mixes rows (statistics over the batch)
//! must be served with batching off, as Triton and OVMS make batching a per-model choice.
//!
//! How, without a batcher thread: each model version has a queue. A request (already decoded
//! and checked against the model, so a bad one never joins a batch and gets its own 4xx) adds
//! its job; if no call is in progress for that model, the request *leads*: if requests of
//! this model met in the last 2 ms it yields once, so that the requests its worker has already
//! read reach the queue too; it takes every queued job that fits ([`Batching::max_rows`]), runs
//! them as one call and answers each through its own channel. Jobs that queued during the call
//! are handed to a leader task that repeats this while jobs are queued. At concurrency 1 the
//! leader's batch is its own request: no task, no thread hand-off, no yield (which costs ~30 us
//! there). A positive [`Batching::max_wait`] makes a leader wait that long
//! (measured in microseconds, yielding to the runtime so the requests it waits for can be
//! parsed) for more rows before running.
//!
//! Why a request does not simply run alone when the queue is empty: a tokio worker runs one
//! request from its first byte to its answer without pausing, so under load the queue is
//! almost always empty at that moment, and the server stayed at one call per request
//! (~11k req/s at c=64 where merging gives ~25k).
//!
//! Batches are bounded in rows and every job is a small request (larger ones take the blocking
//! pool, see the parent module), so a leader holds an async worker for a call of a few tens of
//! microseconds at a time and yields between calls. If the stacked call fails, each job is run
//! alone so that an error answers only the request that caused it.

use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jukebox_runtime::{OutputTensor, RuntimeError};
use tokio::sync::oneshot;

use super::config::Batching;

/// What the batcher needs of a model version: its queue, and a call on inputs in the model's
/// order. The model server's `LoadedModel` is the one implementation; a trait, so that this
/// module does not depend on the repository that holds the models (and a queue per version).
pub trait Batched: Send + Sync + 'static {
    /// This model version's queue of jobs waiting for a merged call.
    fn queue(&self) -> &BatchQueue;
    /// Runs the model once on `columns`, the model's inputs in graph order.
    fn run_columns(&self, columns: &[Column]) -> RunResult;
}

/// One input of a job, in the model's input order.
pub struct Column {
    pub shape: Vec<i64>,
    pub data: Vec<f32>,
}

/// Outputs of one run, or why it failed.
pub type RunResult = Result<Vec<OutputTensor>, RuntimeError>;

struct Job {
    columns: Vec<Column>,
    rows: usize,
    reply: oneshot::Sender<RunResult>,
}

/// A model version's queue of jobs waiting for a merged call.
#[derive(Default)]
pub struct BatchQueue {
    state: Mutex<QueueState>,
    /// Requests answered from a merged call (with at least one other), for tests and diagnostics.
    merged: std::sync::atomic::AtomicU64,
    /// When a request last found another one running ([`since_start`] nanoseconds).
    last_contended: std::sync::atomic::AtomicU64,
}

/// How long one sign of concurrency (a request finding a call of its model running) keeps a
/// leader waiting for more requests before it runs: far longer than the gap between requests
/// under load, far shorter than a human's pause between two requests.
const CONTENTION_MEMORY: Duration = Duration::from_millis(2);

/// Nanoseconds since the first call, a cheap clock to keep in an atomic.
fn since_start() -> u64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

#[derive(Default)]
struct QueueState {
    jobs: VecDeque<Job>,
    /// Rows of the queued jobs together.
    rows: usize,
    /// A leader task is running (or about to): new jobs only queue.
    leading: bool,
}

impl BatchQueue {
    /// Requests answered so far from a call merged with other requests.
    pub fn merged_requests(&self) -> u64 {
        self.merged.load(Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        // A panic while the lock was held cannot leave the queue half-updated (push and pop only).
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Runs `columns` (the model's inputs in graph order, already checked) merged with whatever
/// other requests for the same model are queued, and returns this request's outputs.
pub async fn run<M: Batched>(loaded: &Arc<M>, columns: Vec<Column>, settings: Batching) -> RunResult {
    let rows = columns.first().and_then(|c| c.shape.first()).map_or(0, |&r| r.max(0) as usize);
    let (reply, answer) = oneshot::channel();
    let queue = loaded.queue();
    let now = since_start();
    let lead_now = {
        let mut state = queue.lock();
        state.jobs.push_back(Job { columns, rows, reply });
        state.rows += rows;
        !std::mem::replace(&mut state.leading, true)
    };
    let contended = now.saturating_sub(queue.last_contended.load(Relaxed)) < CONTENTION_MEMORY.as_nanos() as u64;
    if !lead_now {
        queue.last_contended.store(now, Relaxed);
    }
    if lead_now {
        // Nobody runs this model's queue: this request leads one batch in its own task (no
        // spawn, so no other worker is woken at concurrency 1), its job first in it. Whatever
        // queues meanwhile goes to a leader task started when it hands over. It waits for more
        // only when requests met recently: the yield costs ~30 us when nothing else runs (tokio
        // wakes the other worker, which may take the task over), and under load a worker runs
        // each request from its first byte to here without pausing, so without the wait the
        // queue looks empty to almost every request and calls stay one per request.
        let mut leadership = Leadership { loaded: loaded.clone(), settings, finished: false };
        if contended || !settings.max_wait.is_zero() {
            wait_for_more(loaded.as_ref(), settings).await;
        }
        let batch = take_batch(&mut loaded.queue().lock(), settings.max_rows);
        run_batch(loaded.as_ref(), batch);
        let mut state = loaded.queue().lock();
        if state.jobs.is_empty() {
            state.leading = false;
            leadership.finished = true;
        }
        // Otherwise dropping `leadership` (after the lock) starts a leader task for the rest.
        drop(state);
        drop(leadership);
    }
    answer.await.unwrap_or_else(|_| Err(RuntimeError::Run { message: "the batch this request was in failed".into() }))
}

/// Lets the requests this worker has already read reach the queue before a batch is taken: one
/// yield (tokio runs a woken or spawned task before the others of its worker, and a request
/// runs from its first byte to here without pausing), or with [`Batching::max_wait`] yields
/// until the wait is over or the batch is full. Timers tick in milliseconds; a yield comes back
/// within microseconds.
async fn wait_for_more<M: Batched>(loaded: &M, settings: Batching) {
    tokio::task::yield_now().await;
    if !settings.max_wait.is_zero() {
        let deadline = Instant::now() + settings.max_wait;
        while loaded.queue().lock().rows < settings.max_rows && Instant::now() < deadline {
            tokio::task::yield_now().await;
        }
    }
}

/// Releases leadership however the leader ends: if it panicked with jobs still queued, a new
/// leader takes them, so a queue is never left with nobody to run it.
struct Leadership<M: Batched> {
    loaded: Arc<M>,
    settings: Batching,
    /// Set when the leader found the queue empty and gave up leadership itself.
    finished: bool,
}

impl<M: Batched> Drop for Leadership<M> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let mut state = self.loaded.queue().lock();
        if state.jobs.is_empty() {
            state.leading = false;
        } else if tokio::runtime::Handle::try_current().is_ok() {
            tokio::spawn(lead(self.loaded.clone(), self.settings));
        } else {
            // Runtime gone (shutdown): dropping the jobs answers their requests with an error.
            state.jobs.clear();
            state.rows = 0;
            state.leading = false;
        }
    }
}

/// A leader task: batches while jobs are queued, yielding between calls so that this worker's
/// other requests run (and queue for the next batch).
async fn lead<M: Batched>(loaded: Arc<M>, settings: Batching) {
    let mut leadership = Leadership { loaded: loaded.clone(), settings, finished: false };
    loop {
        wait_for_more(loaded.as_ref(), settings).await;
        let batch = {
            let mut state = loaded.queue().lock();
            let batch = take_batch(&mut state, settings.max_rows);
            if batch.is_empty() {
                // Decided under the lock: a job queued after this sees `leading == false` and
                // leads itself.
                state.leading = false;
                leadership.finished = true;
                return;
            }
            batch
        };
        run_batch(loaded.as_ref(), batch);
    }
}

/// The front jobs that fit in `max_rows` together (at least one) and stack: every input of the
/// same trailing dimensions as the first job's.
fn take_batch(state: &mut QueueState, max_rows: usize) -> Vec<Job> {
    let mut batch: Vec<Job> = Vec::new();
    let mut rows = 0;
    while let Some(next) = state.jobs.front() {
        let fits = batch.is_empty()
            || (rows + next.rows <= max_rows
                && next.columns.len() == batch[0].columns.len()
                && next.columns.iter().zip(&batch[0].columns).all(|(a, b)| a.shape.get(1..) == b.shape.get(1..)));
        if !fits {
            break;
        }
        let job = state.jobs.pop_front().expect("front exists");
        state.rows -= job.rows;
        rows += job.rows;
        batch.push(job);
    }
    batch
}

/// Runs the jobs as one call and answers each; on failure, each alone.
fn run_batch<M: Batched>(loaded: &M, batch: Vec<Job>) {
    if batch.len() == 1 {
        let job = batch.into_iter().next().expect("one job");
        let result = loaded.run_columns(&job.columns);
        let _ = job.reply.send(result); // the client may have hung up
        return;
    }
    match run_merged(loaded, &batch) {
        Some(mut split) => {
            loaded.queue().merged.fetch_add(batch.len() as u64, Relaxed);
            for (job, outputs) in batch.into_iter().zip(split.drain(..)) {
                let _ = job.reply.send(Ok(outputs));
            }
        }
        None => {
            for job in batch {
                let result = loaded.run_columns(&job.columns);
                let _ = job.reply.send(result);
            }
        }
    }
}

/// Stacks the jobs' inputs along the first dimension, runs once and cuts every output back
/// into each job's rows; `None` when the call fails or an output is not one row per input row.
fn run_merged<M: Batched>(loaded: &M, batch: &[Job]) -> Option<Vec<Vec<OutputTensor>>> {
    let total: usize = batch.iter().map(|j| j.rows).sum();
    // take_batch stacks only jobs with as many columns as the first (the model's inputs).
    let stacked: Vec<Column> = (0..batch[0].columns.len())
        .map(|k| {
            let mut shape = batch[0].columns[k].shape.clone();
            shape[0] = total as i64;
            let mut data = Vec::with_capacity(batch.iter().map(|j| j.columns[k].data.len()).sum());
            for job in batch {
                data.extend_from_slice(&job.columns[k].data);
            }
            Column { shape, data }
        })
        .collect();
    let outputs = loaded.run_columns(&stacked).ok()?;
    if total == 0 || outputs.iter().any(|o| o.shape.first() != Some(&(total as i64)) || o.data.len() % total != 0) {
        return None;
    }
    let mut split: Vec<Vec<OutputTensor>> = batch.iter().map(|_| Vec::with_capacity(outputs.len())).collect();
    for output in &outputs {
        let per_row = output.data.len() / total;
        let mut start = 0;
        for (job, answers) in batch.iter().zip(&mut split) {
            let end = start + job.rows * per_row;
            let mut shape = output.shape.clone();
            shape[0] = job.rows as i64;
            answers.push(OutputTensor { name: output.name.clone(), shape, data: output.data[start..end].to_vec() });
            start = end;
        }
    }
    Some(split)
}
