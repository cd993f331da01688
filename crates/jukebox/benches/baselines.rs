//! The classic baselines beside scikit-learn, measured in the same run on the same split.
//!
//! Run: `cargo bench --workspace --bench baselines` (after `source kernel/env.sh`; set
//! `JUKEBOX_TEST_DATA` if the shared data is not at `../shared/data`, `JUKEBOX_PYTHON` for a venv
//! with scikit-learn other than `.venv`). On the full-size data:
//! `BENCH_DATA_DIR=$(kernel/make-full-size) cargo bench --workspace --bench baselines`.
//!
//! It prepares the data (`BENCH_DATA_DIR`, else the shared sample) with the default split
//! (stratified 64/16/20, seed 42) and fits our [`LogisticRegression`] and [`DecisionTree`] as
//! notebook 2 does: on every training row when they hold at most [`DEFAULT_MAX_TRAIN_ROWS`]
//! distinct rows, else on a stratified subsample of that many ([`budgeted_rows`]; the choice and
//! our merging of identical rows are part of our fit time). It writes exactly those training
//! rows and the test rows to a temporary folder as raw little-endian arrays, runs
//! `baselines_sklearn.py` beside this file, which fits scikit-learn's on those arrays, and prints
//! one table: median fit seconds over `BENCH_REPEATS` fits (default 3), test accuracy, and the
//! peak resident memory the fit added (Linux `VmHWM`, reset before each fit through
//! `/proc/self/clear_refs`). `BENCH_ALL_ROWS=1` fits every training row instead (on the full data
//! scikit-learn's logistic regression then takes minutes).
//!
//! Settings are matched: logistic regression `alpha = 1` (scikit-learn `C = 1/alpha = 1`),
//! L-BFGS from zero weights, at most 100 iterations, gradient tolerance 1e-4 (`tol`); decision
//! tree with Gini impurity, unlimited depth (`DecisionTreeClassifier(random_state=0)`: the seed
//! only orders the features tried, which matters for ties).
//!
//! The linfa 0.8.1 versions the crate used before are fitted once each as well, on the same rows
//! (f64 as before, and f32), as the record of why the baselines are written by hand;
//! `BENCH_LINFA=0` skips them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use jukebox::data::Dataset;
use jukebox::prepare::{PreparedData, SplitOptions};
use jukebox::train::baselines::{budgeted_rows, DEFAULT_MAX_TRAIN_ROWS};
use jukebox::train::{Classifier, DecisionTree, Learner, LogisticRegression};
use jukebox_testkit::{sample_data_dir, status_mib};

#[path = "common/split_files.rs"]
mod split_files;

/// One line of the table.
struct Row {
    model: &'static str,
    implementation: String,
    seconds: Vec<f64>,
    accuracy: f64,
    extra_mib: f64,
    note: String,
}

/// Resets the peak resident memory to the current one (Linux: writing 5 to clear_refs).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Runs `fit` under the memory watch: (wall seconds, peak MiB above the start, result).
fn watched<T>(fit: impl FnOnce() -> T) -> (f64, f64, T) {
    reset_peak();
    let before = status_mib("VmRSS");
    let started = Instant::now();
    let result = fit();
    let seconds = started.elapsed().as_secs_f64();
    (seconds, status_mib("VmHWM") - before, result)
}

fn accuracy(predicted: &[u32], truth: &[u32]) -> f64 {
    predicted.iter().zip(truth).filter(|(p, t)| p == t).count() as f64 / truth.len() as f64
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn ours<L: Learner>(
    model: &'static str,
    learner: &L,
    data: &PreparedData,
    repeats: usize,
    note: impl Fn(&L::Fitted) -> String,
) -> Row {
    let mut seconds = Vec::new();
    let mut extra_mib: f64 = 0.0;
    let mut last = None;
    for _ in 0..repeats {
        let (s, mib, fitted) = watched(|| learner.fit(data).expect("fitting"));
        seconds.push(s);
        extra_mib = extra_mib.max(mib);
        last = Some(fitted);
    }
    let fitted = last.expect("at least one repeat");
    let accuracy = accuracy(&fitted.predict(&data.x_test, data.n_test()), &data.y_test);
    Row { model, implementation: "jukebox".into(), seconds, accuracy, extra_mib, note: note(&fitted) }
}

/// The linfa 0.8.1 baselines as the crate fitted them before (records converted from f32), in
/// float type `$F` (a macro: linfa-logistic's float trait is private, so no generic bound names it).
macro_rules! linfa_rows {
    ($F:ty, $data:expr, $precision:expr) => {{
        use linfa::traits::{Fit as _, Predict as _};
        type F = $F;
        let (data, precision): (&PreparedData, &str) = ($data, $precision);
        let records = |x: &[f32], rows: usize| {
            ndarray16::Array2::from_shape_vec((rows, data.n_features()), x.iter().map(|&v| v as F).collect())
                .expect("full rows")
        };
        let targets = ndarray16::Array1::from_iter(data.y_train.iter().map(|&y| y as usize));
        let test = records(&data.x_test, data.n_test());
        let score = |predicted: ndarray16::Array1<usize>| {
            accuracy(&predicted.iter().map(|&c| c as u32).collect::<Vec<_>>(), &data.y_test)
        };
        // One timed fit of a linfa learner as a row of the table.
        let row = |model, library: &str, (seconds, extra_mib): (f64, f64), accuracy, note| Row {
            model,
            implementation: format!("{library} {precision}"),
            seconds: vec![seconds],
            accuracy,
            extra_mib,
            note,
        };
        let mut rows = Vec::new();
        let (s, mib, model) = watched(|| {
            let dataset = linfa::Dataset::new(records(&data.x_train, data.n_train()), targets.clone());
            linfa_logistic::MultiLogisticRegression::<F>::default()
                .alpha(1.0)
                .max_iterations(100)
                .fit(&dataset)
                .expect("linfa-logistic")
        });
        let note = "alpha 1, 100 iterations, gradient tolerance 1e-4".to_string();
        rows.push(row("logistic regression", "linfa-logistic", (s, mib), score(model.predict(&test)), note));
        let (s, mib, tree) = watched(|| {
            let dataset = linfa::Dataset::new(records(&data.x_train, data.n_train()), targets.clone());
            linfa_trees::DecisionTree::<F, usize>::params().max_depth(None).fit(&dataset).expect("linfa-trees")
        });
        let note = format!("depth {}", tree.max_depth());
        rows.push(row("decision tree", "linfa-trees", (s, mib), score(tree.predict(&test)), note));
        rows
    }};
}

/// scikit-learn's rows, from `baselines_sklearn.py` run on the written split.
fn sklearn_rows(dir: &Path) -> Result<Vec<Row>, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/baselines_sklearn.py");
    let python = jukebox_testkit::python_path();
    let out = Command::new(&python).arg(&script).arg(dir).output().map_err(|e| format!("{}: {e}", python.display()))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let mut rows: Vec<Row> = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| format!("{line}: {e}"))?;
        let model = match v["model"].as_str() {
            Some("logistic regression") => "logistic regression",
            Some("decision tree") => "decision tree",
            _ => return Err(format!("unexpected line {line}")),
        };
        let number = |key: &str| v[key].as_f64().unwrap_or(f64::NAN);
        let note = match model {
            "logistic regression" => format!("{} iterations", number("n_iter")),
            _ => format!("depth {}", number("n_iter")),
        };
        match rows.iter_mut().find(|r| r.model == model) {
            Some(row) => {
                row.seconds.push(number("seconds"));
                row.extra_mib = row.extra_mib.max(number("extra_mib"));
            }
            None => rows.push(Row {
                model,
                implementation: format!("scikit-learn {}", v["version"].as_str().unwrap_or("?")),
                seconds: vec![number("seconds")],
                accuracy: number("accuracy"),
                extra_mib: number("extra_mib"),
                note,
            }),
        }
    }
    Ok(rows)
}

fn main() {
    let repeats: usize = std::env::var("BENCH_REPEATS").ok().and_then(|v| v.parse().ok()).unwrap_or(3).max(1);
    let dir = std::env::var_os("BENCH_DATA_DIR").map(PathBuf::from).unwrap_or_else(sample_data_dir);
    let budget = match std::env::var("BENCH_ALL_ROWS").as_deref() {
        Ok("1") => None,
        _ => Some(DEFAULT_MAX_TRAIN_ROWS),
    };
    let chart = Dataset::from_dir(&dir).expect("loading").merge().expect("merging");
    let data = PreparedData::new(&chart, &jukebox::data::FEATURES, &SplitOptions::default()).expect("preparing");
    // The rows every implementation fits: ours draws them itself (as in the notebook), the others
    // get this copy of them.
    let (rows, _) = budgeted_rows(&data, budget);
    let mut fit_data = data.clone();
    fit_data.x_train = rows.x_train.to_vec();
    fit_data.y_train = rows.y_train.to_vec();
    println!(
        "{}: {} of {} train rows fitted ({}), {} test rows, {} features, {} classes; {repeats} fits each, median shown",
        dir.display(),
        fit_data.n_train(),
        data.n_train(),
        if rows.is_subsample() { "a stratified subsample" } else { "all" },
        data.n_test(),
        data.n_features(),
        data.n_classes()
    );

    let logistic = LogisticRegression { max_train_rows: budget, ..LogisticRegression::default() };
    let tree = DecisionTree { max_train_rows: budget, ..DecisionTree::default() };
    let mut rows = vec![
        ours("logistic regression", &logistic, &data, repeats, |m| {
            let converged = if m.converged() { "" } else { " (not converged)" };
            format!("{} iterations{converged}, {} distinct rows", m.iterations(), m.distinct_rows())
        }),
        ours("decision tree", &tree, &data, repeats, |m| format!("depth {}, {} leaves", m.depth(), m.leaves())),
    ];

    let folder = tempfile::tempdir().expect("temp folder");
    let settings = serde_json::json!({
        "alpha": logistic.alpha,
        "max_iterations": logistic.max_iterations,
        "tolerance": logistic.tolerance,
        "repeats": repeats,
    });
    split_files::write_split(folder.path(), &fit_data, settings);
    match sklearn_rows(folder.path()) {
        Ok(sklearn) => rows.extend(sklearn),
        Err(e) => println!(
            "scikit-learn not measured (needs {} with scikit-learn): {e}",
            jukebox_testkit::python_path().display()
        ),
    }
    if std::env::var("BENCH_LINFA").as_deref() != Ok("0") {
        rows.extend(linfa_rows!(f64, &fit_data, "f64"));
        rows.extend(linfa_rows!(f32, &fit_data, "f32"));
    }

    rows.sort_by_key(|r| r.model != "logistic regression");
    println!("{:<20} {:<22} {:>9} {:>9} {:>10}  notes", "model", "implementation", "fit s", "accuracy", "peak +MiB");
    for r in &rows {
        println!(
            "{:<20} {:<22} {:>9.3} {:>9.4} {:>10.1}  {}{}",
            r.model,
            r.implementation,
            median(&r.seconds),
            r.accuracy,
            r.extra_mib,
            r.note,
            if r.seconds.len() > 1 { format!(" (fits: {:.3?})", r.seconds) } else { String::new() }
        );
    }
    for model in ["logistic regression", "decision tree"] {
        let find = |prefix: &str| rows.iter().find(|r| r.model == model && r.implementation.starts_with(prefix));
        if let (Some(ours), Some(theirs)) = (find("jukebox"), find("scikit-learn")) {
            let (a, b) = (median(&ours.seconds), median(&theirs.seconds));
            let gap = (ours.accuracy - theirs.accuracy) * 100.0;
            println!(
                "{model}: {:.1}x scikit-learn's speed, accuracy {gap:+.2} points: {}",
                b / a,
                if a <= b && gap.abs() <= 1.0 { "goal met" } else { "goal NOT met" }
            );
        }
    }
}
