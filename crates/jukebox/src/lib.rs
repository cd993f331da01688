//! # jukebox: the data-science inner loop, one module per workshop stage
//!
//! The notebooks in `notebooks/` load this crate with `:dep` and call it stage by stage:
//!
//! | stage | module | what it does |
//! |---|---|---|
//! | 1 | [`data`] | find, download and load the Spotify chart tables; merge them |
//! | 1 | [`explore`] | summary statistics, correlations, heatmaps, histograms |
//! | 2 | [`prepare`] | features and target, label encoding, stratified split, min-max scaling |
//! | 2 | [`train`] | the workshop's dense neural network and classic baselines |
//! | 2 | [`evaluate`] | accuracy, precision, recall, F1 and the confusion matrix |
//! | 2 | [`export`] | write the model as ONNX with its artifacts |
//! | 3 | [`storage`] | upload and download model folders to S3-compatible storage |
//! | 3 | [`registry`] | register and look up models in a Kubeflow-compatible model registry |
//! | 4 | [`request`] | ask a KServe v2 model server for predictions |
//!
//! [`display`] holds the table and plot types that render inline in Jupyter (evcxr's
//! `evcxr_display` convention): every stage returns them so notebook cells stay one line long.

pub mod data;
pub mod display;
pub mod evaluate;
pub mod explore;
pub mod export;
pub mod prepare;
pub mod registry;
pub mod request;
pub mod storage;
pub mod train;
