//! The refinement stage on the shared sample: the grouped split keeps songs whole and every
//! country present, a sweep chooses by validation score only and is reproducible, the run log
//! round-trips, a chosen run's metrics carry its settings, and the whole stage in one call
//! (`Refinement::run`, what `jukebox refine` runs) records, exports and checks the chosen run.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashSet};

use jukebox::prepare::{PrepareError, PreparedData, SplitOptions, SplitStrategy, SONG};
use jukebox::refine::{Grid, RefineError, Refinement, RunLog, RunRecord, SongOverlap};
use polars::prelude::*;

fn grouped(seed: u64) -> PreparedData {
    PreparedData::new(
        &common::chart(),
        &jukebox::data::FEATURES,
        &SplitOptions { strategy: SplitStrategy::Grouped, ..SplitOptions::with_seed(seed) },
    )
    .unwrap()
}

/// (song, country) of every row of a split.
fn songs_and_countries(frame: &DataFrame) -> Vec<(String, String)> {
    let text = |name: &str| {
        frame.column(name).unwrap().str().unwrap().iter().map(|v| v.unwrap().to_string()).collect::<Vec<_>>()
    };
    text(SONG).into_iter().zip(text("country")).collect()
}

#[test]
fn the_grouped_split_never_shares_a_song_and_keeps_every_country_with_enough_songs() {
    let data = grouped(42);
    assert_eq!(data.n_rows(), 19_699, "every row lands in exactly one split");
    let splits = [&data.splits.train, &data.splits.validation, &data.splits.test].map(songs_and_countries);
    let songs: Vec<HashSet<&String>> = splits.iter().map(|rows| rows.iter().map(|(song, _)| song).collect()).collect();
    for (a, b) in [(0, 1), (0, 2), (1, 2)] {
        let shared = songs[a].intersection(&songs[b]).count();
        assert_eq!(shared, 0, "splits {a} and {b} share {shared} songs");
    }

    // Countries with at least 10 distinct songs (all 72 in the sample) have rows in every split.
    let mut songs_per_country: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for rows in &splits {
        for (song, country) in rows {
            songs_per_country.entry(country).or_default().insert(song);
        }
    }
    let enough: Vec<&str> = songs_per_country.iter().filter(|(_, s)| s.len() >= 10).map(|(c, _)| *c).collect();
    assert_eq!(enough.len(), 72);
    for (name, rows) in ["train", "validation", "test"].iter().zip(&splits) {
        let present: HashSet<&str> = rows.iter().map(|(_, c)| c.as_str()).collect();
        let missing: Vec<&&str> = enough.iter().filter(|c| !present.contains(**c)).collect();
        assert!(missing.is_empty(), "the {name} split has no rows of {missing:?}");
    }
    // Songs, not rows, are split 64/16/20, so row shares only come close.
    let share = |n: usize| n as f64 / 19_699.0;
    assert!((share(data.n_test()) - 0.20).abs() < 0.04, "test share {}", share(data.n_test()));
    assert!((share(data.n_val()) - 0.16).abs() < 0.04, "validation share {}", share(data.n_val()));

    let overlap = SongOverlap::of(&data).unwrap();
    assert_eq!(overlap.songs_seen_in_training, [0, 0]);
    assert_eq!(overlap.rows_seen_in_training, [0, 0]);
    // The stratified split, by contrast, tests mostly on songs the model trained on.
    let random = PreparedData::new(&common::chart(), &jukebox::data::FEATURES, &SplitOptions::with_seed(42)).unwrap();
    let overlap = SongOverlap::of(&random).unwrap();
    assert!(overlap.rows_seen_in_training[1] as f64 > 0.5 * overlap.rows[1] as f64, "{overlap:?}");

    // The same seed gives the same split; another seed another one.
    assert_eq!(grouped(42).y_test, data.y_test);
    assert_ne!(grouped(7).y_test, data.y_test);
}

#[test]
fn grouping_needs_song_ids() {
    let frame = common::chart().frame.drop(SONG).unwrap();
    let features: Vec<&str> = jukebox::data::FEATURES.to_vec();
    let options = SplitOptions { strategy: SplitStrategy::Grouped, ..Default::default() };
    let error = PreparedData::from_frame(&frame, &features, &options).err().expect("no spotify_id, no grouped split");
    assert!(matches!(error, PrepareError::NoSongIds), "{error}");
    assert_eq!("grouped".parse::<SplitStrategy>().unwrap(), SplitStrategy::Grouped);
    assert_eq!(SplitStrategy::Grouped.to_string(), "grouped");
}

#[test]
fn grids_are_data_and_bad_ones_are_named() {
    let quick: Grid = "quick".parse().unwrap();
    assert_eq!(quick.len(), 8);
    assert_eq!(quick.learners(1).len(), 8);
    assert_eq!("class".parse::<Grid>().unwrap().len(), 54);
    let custom: Grid =
        r#"{"epochs":[3],"hidden_layers":[[8],[16,16]],"learning_rate":[0.01],"batch_size":[32,64]}"#.parse().unwrap();
    assert_eq!(custom.len(), 4);
    assert_eq!(custom.learners(5)[3].hidden_layers, vec![16, 16]);

    for (text, named) in [
        (r#"{"epochs":[3],"hidden_layers":[[8]],"learning_rate":[0.01],"batch_size":[32],"dropout":[0.5]}"#, "dropout"),
        (r#"{"epochs":[],"hidden_layers":[[8]],"learning_rate":[0.01],"batch_size":[32]}"#, "epochs"),
        (r#"{"epochs":[3],"hidden_layers":[[8, 0]],"learning_rate":[0.01],"batch_size":[32]}"#, "hidden_layers"),
        (r#"{"epochs":[3],"hidden_layers":[[8]],"learning_rate":[-1],"batch_size":[32]}"#, "learning rate"),
        ("big", "expected value"),
    ] {
        let error = text.parse::<Grid>().err().unwrap_or_else(|| panic!("{text} was accepted"));
        assert!(matches!(error, RefineError::Grid(_)));
        assert!(error.to_string().contains(named), "`{error}` does not name `{named}`");
    }
}

const SMALL_GRID: &str =
    r#"{"epochs":[2, 4],"hidden_layers":[[16],[32, 32]],"learning_rate":[0.003],"batch_size":[64]}"#;

/// The records without what depends on the clock.
fn scores(records: &[RunRecord]) -> Vec<RunRecord> {
    records
        .iter()
        .map(|r| RunRecord { sweep: String::new(), recorded_at: 0, training_seconds: 0.0, ..r.clone() })
        .collect()
}

#[test]
fn a_sweep_chooses_by_validation_score_and_reruns_give_the_same_table() {
    let data = grouped(42);
    let grid: Grid = SMALL_GRID.parse().unwrap();
    let sweep = grid.sweep(&data, 42).unwrap();
    assert_eq!(sweep.runs.len(), 4);
    assert_eq!(sweep.split, "grouped");

    // The chosen run has the highest validation accuracy of all runs (ties: lowest loss).
    let best = sweep.best();
    for run in &sweep.runs {
        let val = run.validation.accuracy();
        assert!(
            val <= best.validation.accuracy(),
            "run {} has a better validation score than the chosen run",
            run.number
        );
        if val == best.validation.accuracy() {
            assert!(run.validation_loss() >= best.validation_loss());
        }
        // Every run's validation score is its network's accuracy on the validation rows.
        let predicted = run.model.network.predict(&data.x_val, data.n_val());
        let right = predicted.iter().zip(&data.y_val).filter(|(p, y)| p == y).count();
        assert!((val - right as f64 / data.n_val() as f64).abs() < 1e-12);
    }
    // The choice ignores test scores: making the chosen run's test score the worst changes nothing.
    let mut tampered = sweep.clone();
    let worst_test =
        tampered.runs.iter().min_by(|a, b| a.test.accuracy().total_cmp(&b.test.accuracy())).unwrap().test.clone();
    let chosen = best.number;
    tampered.runs[chosen - 1].test = worst_test;
    assert_eq!(tampered.best().number, chosen);

    let records = sweep.records();
    assert_eq!(records.iter().filter(|r| r.chosen).count(), 1);
    assert_eq!(records.iter().find(|r| r.chosen).unwrap().run, chosen);
    let table = sweep.table();
    assert_eq!(table.height(), 4);
    assert!(sweep.validation_plot().unwrap().svg.contains("(chosen)"));

    // Same grid, data and seed: the same scores and the same choice.
    let again = grid.sweep(&grouped(42), 42).unwrap();
    assert_eq!(scores(&again.records()), scores(&records));

    // The chosen run's metrics carry its settings and the score it was chosen by.
    let metrics = best.metrics(&data);
    assert_eq!(metrics.split, "grouped");
    assert_eq!(metrics.hidden_layers, best.learner().hidden_layers_name());
    assert_eq!(metrics.val_accuracy, Some(best.validation.accuracy()));
    assert_eq!(metrics.accuracy, best.test.accuracy());
    assert_eq!(metrics.learning_rate, 0.003, "recorded as written, not as the f32 widened");
}

#[test]
fn runs_side_by_side_give_the_same_table_as_one_after_another() {
    let data = grouped(42);
    // Early stopping and a row budget, so that both are shared by the runs as well.
    let grid: Grid = r#"{"epochs":[2, 8],"hidden_layers":[[16],[32, 32]],"learning_rate":[0.01],"batch_size":[64],
        "patience":1,"max_train_rows":4000}"#
        .parse()
        .unwrap();
    let one = grid.sweep_on(&data, 42, 1).unwrap();
    let three = grid.sweep_on(&data, 42, 3).unwrap();
    assert_eq!((one.workers, three.workers), (1, 3));
    assert_eq!(scores(&three.records()), scores(&one.records()));
    assert_eq!(three.best().number, one.best().number);
    for (a, b) in one.runs.iter().zip(&three.runs) {
        assert_eq!(a.number, b.number);
        assert_eq!(a.model.network, b.model.network, "run {}: other weights", a.number);
        assert_eq!(a.model.history.val_loss, b.model.history.val_loss);
    }
    // The tables differ only in the seconds.
    let rows = |sweep: &jukebox::refine::Sweep| {
        let table = sweep.table();
        let seconds = table.columns.iter().position(|c| c == "seconds").unwrap();
        table
            .rows
            .into_iter()
            .map(|mut row| {
                row.remove(seconds);
                row
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(rows(&one), rows(&three));

    // Every run trained on the budget's 4,000 rows and kept its best epoch.
    for run in &one.runs {
        assert_eq!(run.model.train_rows, 4000, "the row budget is the stratified subsample's size");
        assert!(run.epochs_run() <= run.learner().epochs);
        let kept = run.epoch_kept();
        let watched = &run.model.history.val_loss;
        assert_eq!(watched[kept - 1], watched.iter().copied().fold(f32::INFINITY, f32::min));
    }
    let caption = one.table().caption.unwrap();
    assert!(caption.contains(&format!("4000 of the {} training rows", data.n_train())), "{caption}");
}

#[test]
fn the_run_log_appends_and_names_a_bad_line() {
    let dir = tempfile::tempdir().unwrap();
    let log = RunLog::beside(dir.path());
    assert!(log.load().unwrap().is_empty(), "no file is an empty log");
    let record = |run: usize, chosen: bool| RunRecord {
        sweep: "1-grouped-seed42".into(),
        recorded_at: 1,
        run,
        split: "grouped".into(),
        seed: 42,
        epochs: 10,
        batch_size: 64,
        learning_rate: 0.001,
        hidden_layers: "32-64-128-256".into(),
        parameters: 61_000,
        val_accuracy: 0.1,
        val_loss: 3.9,
        val_f1_macro: 0.05,
        test_accuracy: 0.09,
        test_f1_macro: 0.04,
        training_seconds: 1.5,
        chosen,
        interrupted: false,
        epochs_run: Some(10),
        epoch_kept: Some(7),
        train_rows: Some(12_000),
    };
    log.append(&[record(1, false), record(2, true)]).unwrap();
    log.append(&[record(1, true)]).unwrap();
    assert_eq!(log.load().unwrap(), vec![record(1, false), record(2, true), record(1, true)]);
    assert_eq!(log.table().unwrap().height(), 3);
    // Lines written before sweeps could be interrupted read as whole sweeps.
    let mut older = serde_json::to_value(record(1, true)).unwrap();
    older.as_object_mut().unwrap().remove("interrupted");
    assert_eq!(serde_json::from_value::<RunRecord>(older).unwrap(), record(1, true));

    std::fs::write(&log.path, format!("{}\nnot json\n", serde_json::to_string(&record(1, true)).unwrap())).unwrap();
    let error = log.load().unwrap_err().to_string();
    assert!(error.contains("runs.jsonl, line 2"), "{error}");
}

#[test]
fn the_refinement_records_every_run_and_exports_the_chosen_one() {
    let models = tempfile::tempdir().unwrap();
    let refinement = Refinement {
        data_dir: Some(common::sample_dir()),
        grid: SMALL_GRID.parse().unwrap(),
        split: SplitStrategy::Grouped,
        seed: 42,
        compare_epochs: None,
        model_repository: Some(models.path().to_path_buf()),
        version_folder: 2,
    };
    let mut shown: Vec<String> = Vec::new();
    let refined = refinement.run(&mut |text| shown.push(text)).unwrap();
    let best = refined.sweep.best();
    assert!(refined.sweep.is_complete());
    assert!(shown.iter().any(|text| text.starts_with(&format!("chosen: run {} (", best.number))), "{shown:#?}");

    // Every run is in the log, the chosen one marked; the chosen run is exported as version 2
    // (ONNX Runtime agreeing with the network, or run() would have failed).
    let records = RunLog::beside(models.path()).load().unwrap();
    assert_eq!(records.len(), refined.sweep.runs.len());
    let chosen: Vec<usize> = records.iter().filter(|r| r.chosen).map(|r| r.run).collect();
    assert_eq!(chosen, [best.number]);
    let exported = refined.exported.as_ref().expect("a model repository gets the chosen run");
    assert!(exported.version_dir.ends_with("2") && exported.model_path.is_file(), "{exported:?}");
    assert!(refined.description().starts_with(&format!("sweep run {} ({})", best.number, best.settings())));

    // Without a model repository nothing is written.
    let dry = Refinement { model_repository: None, ..refinement };
    assert!(dry.run(&mut |_| {}).unwrap().exported.is_none());
}
