//! # jukebox: the data-science inner loop, one module per workshop stage
//!
//! The notebooks in `notebooks/` call this crate stage by stage. Their kernel (`kernel/evcxr-kernel`)
//! links every cell against this crate's prebuilt shared library, so cells compile in a few tenths
//! of a second; in another Rust kernel, load it with `:dep jukebox = { path = "../crates/jukebox" }`.
//!
//! | stage | module | what it does |
//! |---|---|---|
//! | 1 | [`data`] | find, download and load the Spotify chart tables; merge them |
//! | 1 | [`explore`] | summary statistics, correlations, heatmaps, histograms |
//! | 2 | [`prepare`] | features and target, label encoding, stratified split, min-max scaling |
//! | 2 | [`train`] | the workshop's dense neural network and classic baselines |
//! | 2 | [`linfa`] | any linfa model beside ours: a split as a linfa dataset, a fitted model as a classifier |
//! | 2 | [`evaluate`] | accuracy, precision, recall, F1 and the confusion matrix |
//! | 2 | [`export`] | write the model as ONNX with its artifacts |
//! | 3 | [`storage`] | upload and download model folders to S3-compatible storage |
//! | 3 | [`registry`] | register and look up models in a Kubeflow-compatible model registry |
//! | 4 | [`deploy`] | the OpenShift AI deploy form and the KServe manifests it creates |
//! | 4 | [`request`] | ask a KServe v2 model server for predictions |
//! | 5 | [`refine`] | grouped split, sweeps chosen by validation score, the run log |
//!
//! [`display`] holds the table and plot types that render inline in Jupyter, and the one way
//! values render there ([`display::ToHtml`], [`display::Show`]): every stage returns values that
//! show themselves, so notebook cells stay one line long.

pub mod data;
pub mod deploy;
pub mod display;
pub mod evaluate;
pub mod explore;
pub mod export;
pub mod katib;
pub mod linfa;
mod memory;
pub mod prepare;
pub mod refine;
pub mod registry;
pub mod request;
pub mod storage;
pub mod train;

/// The workshop stages and the modules that implement them, as a table (each notebook's first
/// cell, which also shows that the helper crate is loaded).
pub fn about() -> display::Table {
    const STAGES: [(&str, &str, &str); 13] = [
        ("1 explore", "data", "find, download and load the Spotify chart tables; merge them"),
        ("1 explore", "explore", "summary statistics, correlations, heatmaps, histograms"),
        ("2 train", "prepare", "features and target, label encoding, stratified split, min-max scaling"),
        ("2 train", "train", "the workshop's dense neural network and classic baselines"),
        ("2 train", "linfa", "any linfa model beside ours, in the same comparison table"),
        ("2 train", "evaluate", "accuracy, precision, recall, F1 and the confusion matrix"),
        ("2 train", "export", "write the model as ONNX with its artifacts"),
        ("3 save", "storage", "upload and download model folders to S3-compatible storage"),
        ("3 save", "registry", "register and look up models in a Kubeflow-compatible model registry"),
        ("4 serve", "deploy", "the OpenShift AI deploy form and the KServe manifests it creates"),
        ("4 serve", "request", "ask a KServe v2 model server for predictions"),
        ("5 refine", "refine", "grouped split, sweeps chosen by validation score, the run log"),
        ("all", "display", "the tables and plots that render inline in Jupyter"),
    ];
    let rows = STAGES
        .iter()
        .map(|(stage, module, what)| vec![(*stage).into(), format!("jukebox::{module}").into(), (*what).into()])
        .collect();
    let mut table = display::Table::new(vec!["stage".into(), "module".into(), "what it does".into()], rows);
    table.caption = Some(format!(
        "jukebox {} ({} build), from {}",
        env!("CARGO_PKG_VERSION"),
        if cfg!(debug_assertions) { "debug" } else { "optimised" },
        env!("CARGO_MANIFEST_DIR")
    ));
    table
}
