//! Metrics against scikit-learn: a fixed example with numbers recorded from scikit-learn, and a
//! live comparison on random labels with the workspace venv's scikit-learn.

use jukebox_testkit::python;
use std::process::Command;

use jukebox::evaluate::{ClassificationReport, EvaluateError, Metrics, TrainingInfo};

// Six classes: class 3 is never predicted (precision 0, not NaN), class 4 is predicted but never
// true, class 5 occurs nowhere (left out of the averages, as scikit-learn does).
const TRUTH: [u32; 14] = [0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 3, 0, 1, 2];
const PREDICTED: [u32; 14] = [0, 1, 0, 1, 2, 2, 2, 0, 4, 1, 0, 0, 1, 4];

fn close(actual: f64, expected: f64, what: &str) {
    assert!((actual - expected).abs() < 1e-12, "{what}: {actual} != scikit-learn's {expected}");
}

/// Expected numbers printed by scikit-learn 1.9.1 (`.venv/bin/python`):
/// `accuracy_score(t, p)`, `precision_recall_fscore_support(t, p, average=..., zero_division=0)`,
/// `average=None` for per class, and `confusion_matrix(t, p)`.
#[test]
fn fixed_example_matches_scikit_learn() {
    let report = ClassificationReport::new(&TRUTH, &PREDICTED, 6).unwrap();
    close(report.accuracy(), 0.5, "accuracy");
    close(report.precision_macro(), 0.35333333333333333, "precision_macro");
    close(report.recall_macro(), 0.3633333333333333, "recall_macro");
    close(report.f1_macro(), 0.3476190476190476, "f1_macro");
    close(report.precision_weighted(), 0.5166666666666666, "precision_weighted");
    close(report.recall_weighted(), 0.5, "recall_weighted");
    close(report.f1_weighted(), 0.4914965986394558, "f1_weighted");

    let per_class = report.per_class();
    assert_eq!(per_class.iter().map(|m| m.class.as_str()).collect::<Vec<_>>(), ["0", "1", "2", "3", "4"]);
    let expected_precision = [0.6, 0.5, 0.6666666666666666, 0.0, 0.0];
    let expected_recall = [0.75, 0.6666666666666666, 0.4, 0.0, 0.0];
    let expected_f1 = [0.6666666666666666, 0.5714285714285714, 0.5, 0.0, 0.0];
    let expected_support = [4, 3, 5, 2, 0];
    for (i, m) in per_class.iter().enumerate() {
        close(m.precision, expected_precision[i], &format!("precision of {}", m.class));
        close(m.recall, expected_recall[i], &format!("recall of {}", m.class));
        close(m.f1, expected_f1[i], &format!("f1 of {}", m.class));
        assert_eq!(m.support, expected_support[i]);
    }
    let sklearn_confusion = [[3, 1, 0, 0, 0], [0, 2, 1, 0, 0], [1, 0, 2, 0, 2], [1, 1, 0, 0, 0], [0, 0, 0, 0, 0]];
    for (t, row) in sklearn_confusion.iter().enumerate() {
        assert_eq!(&report.confusion_matrix()[t][..5], row, "confusion row {t} (rows are truth)");
    }
    assert!(report.confusion_matrix()[5].iter().all(|&v| v == 0));
}

#[test]
fn bad_input_is_named() {
    let err = ClassificationReport::new(&[0, 1], &[0], 2).unwrap_err();
    assert!(matches!(err, EvaluateError::LengthMismatch { truth: 2, predicted: 1 }), "{err}");
    let err = ClassificationReport::new(&[0, 1], &[0, 7], 2).unwrap_err();
    assert_eq!(err.to_string(), "predicted label 7 in row 1 is out of range: there are 2 classes");
    let err = ClassificationReport::new(&[0, 1], &[0, 1], 2).unwrap().with_class_names(&["a"]).unwrap_err();
    assert!(matches!(err, EvaluateError::ClassNames { n_names: 1, n_classes: 2 }));
}

#[test]
fn tables_heatmap_and_metrics_json() {
    let report = ClassificationReport::new(&TRUTH, &PREDICTED, 6)
        .unwrap()
        .with_class_names(&["AR", "BR", "CL", "DE", "EC", "FR"])
        .unwrap();
    let table = report.per_class_table();
    assert_eq!(table.height(), 5);
    assert_eq!(table.number(2, "recall"), Some(0.4));
    let plot = report.confusion_heatmap().unwrap();
    // plotters writes each label on its own line inside <text>.
    assert_eq!(plot.svg.matches(">\nFR\n</text>").count(), 2, "country codes label both axes");
    assert_eq!(plot.svg.matches("<rect").count(), 1 + 36, "background + 6x6 cells");

    let info = TrainingInfo {
        epochs: 2,
        batch_size: 32,
        seed: 7,
        data_rows: 14,
        training_seconds: 1.5,
        hidden_layers: "32-64-128-256".into(),
        learning_rate: 0.001,
        split: "stratified".into(),
        val_accuracy: Some(0.25),
        features: "danceability, energy".into(),
        n_features: 2,
    };
    let metrics = Metrics::new(&report, &info);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metrics.json");
    metrics.save(&path).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    for key in [
        "accuracy",
        "precision_macro",
        "recall_macro",
        "f1_macro",
        "precision_weighted",
        "recall_weighted",
        "f1_weighted",
        "epochs",
        "batch_size",
        "seed",
        "data_rows",
        "training_seconds",
        "hidden_layers",
        "learning_rate",
        "split",
        "val_accuracy",
        "per_class",
    ] {
        assert!(json.get(key).is_some(), "metrics.json lacks `{key}`");
    }
    assert_eq!(json["per_class"][3]["class"], "DE");
    assert_eq!(json["per_class"][3]["precision"], 0.0);
    assert_eq!(Metrics::load(&path).unwrap(), metrics);
    // A metrics.json written before the refinement stage (no parameters beyond epochs) still loads.
    let mut old = json.clone();
    for key in ["hidden_layers", "learning_rate", "split", "val_accuracy"] {
        old.as_object_mut().unwrap().remove(key);
    }
    std::fs::write(&path, old.to_string()).unwrap();
    assert_eq!(Metrics::load(&path).unwrap().split, "");
}

/// A small xorshift so the test needs no extra crate; the labels only need to vary.
fn random_labels(seed: u64, n: usize, classes: u32) -> Vec<u32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % classes as u64) as u32
        })
        .collect()
}

#[test]
fn random_labels_match_live_scikit_learn() {
    const SCRIPT: &str = r#"
import json, sys
from sklearn.metrics import accuracy_score, precision_recall_fscore_support
cases = json.load(sys.stdin)
out = []
for c in cases:
    t, p = c["truth"], c["predicted"]
    r = {"accuracy": accuracy_score(t, p)}
    for avg in ("macro", "weighted"):
        pr, rc, f1, _ = precision_recall_fscore_support(t, p, average=avg, zero_division=0)
        r.update({f"precision_{avg}": pr, f"recall_{avg}": rc, f"f1_{avg}": f1})
    out.append(r)
print(json.dumps(out))
"#;
    // Several sizes and class counts; few rows per class make never-predicted classes likely.
    let cases: Vec<(Vec<u32>, Vec<u32>, u32)> = [(200, 5), (50, 20), (1000, 72), (30, 72)]
        .iter()
        .enumerate()
        .map(|(i, &(n, k))| (random_labels(i as u64 + 1, n, k), random_labels(i as u64 + 100, n, k), k))
        .collect();
    let input = serde_json::json!(cases
        .iter()
        .map(|(t, p, _)| serde_json::json!({"truth": t, "predicted": p}))
        .collect::<Vec<_>>());
    let mut child = Command::new(python())
        .args(["-c", SCRIPT])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), input.to_string().as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "scikit-learn failed: {}", String::from_utf8_lossy(&output.stderr));
    let expected: Vec<serde_json::Map<String, serde_json::Value>> = serde_json::from_slice(&output.stdout).unwrap();
    for ((truth, predicted, k), expected) in cases.iter().zip(&expected) {
        let report = ClassificationReport::new(truth, predicted, *k as usize).unwrap();
        for (name, value) in report.averages() {
            let sklearn = expected[name].as_f64().unwrap();
            assert!(
                (value - sklearn).abs() < 1e-12,
                "{} rows, {k} classes, {name}: ours {value}, scikit-learn {sklearn}",
                truth.len()
            );
        }
    }
}
