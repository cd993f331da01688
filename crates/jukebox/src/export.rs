//! Stage 2d: write the trained network as ONNX, with everything needed to use it, and check
//! that the exported file predicts what the trained network predicts.
//!
//! The layout is the model repository OpenVINO Model Server (and KServe's OVMS runtime) reads:
//!
//! ```text
//! <model_dir>/jukebox/1/model.onnx              the network: one [N,1] input per feature, output `output`
//! <model_dir>/jukebox/1/artifacts/scaler.json   min and max per feature (scale inputs with them)
//! <model_dir>/jukebox/1/artifacts/label_encoder.json   class index -> country code
//! <model_dir>/jukebox/1/artifacts/X_train.parquet, X_test.parquet, y_test.json
//! <model_dir>/jukebox/1/artifacts/metrics.json  test scores and how the model was trained
//! ```
//!
//! The model's `metadata_props` also carry the feature order (`features`), the class list
//! (`classes`) and the scaler (`scaler`) as JSON, so the `.onnx` file alone is enough to use it.
//! The bytes depend only on the weights and these names, so the same seed gives the same file.
//!
//! [`ExportedModel::evaluate`] runs the file through ONNX Runtime (`jukebox-runtime`) on the
//! test split, as the workshop does, and [`OnnxEvaluation::parity`] compares it with the
//! in-memory network.
//!
//! [`check_version_folder`] is the check a folder passes before it is published (`jukebox save`,
//! `registry::ModelRegistry::upload_and_register`): the model loads in ONNX Runtime, takes one
//! `[N, 1]` FP32 input per feature of `scaler.json` and answers one probability per class of
//! `label_encoder.json` for a song. A corrupt, truncated or empty `model.onnx`, a missing
//! artifact or artifacts of another model are refused there, before any byte is uploaded.

use std::path::{Path, PathBuf};

use jukebox_nn::onnx::{to_onnx_bytes, OnnxSpec};
use jukebox_protocol::model_folder::{
    LabelEncoder, ModelFolderError, Scaler, VersionFolder, LABEL_ENCODER_FILE, SCALER_FILE,
};
use jukebox_runtime::{GraphRewrites, InputTensor, OnnxModel, RuntimeError};

use crate::display::{Cell, Table};
use crate::evaluate::{ClassificationReport, EvaluateError, Metrics};
use crate::prepare::{PrepareError, PreparedData};
use crate::train::TrainedModel;

/// Model name in the repository layout (and in the model registry and server): the workshop's,
/// owned by the model folder contract.
pub use jukebox_protocol::model_folder::MODEL_NAME;
/// The graph output's name and the network's file name: the model folder contract's.
pub use jukebox_protocol::model_folder::{MODEL_FILE, OUTPUT_NAME};

/// Why exporting or evaluating the exported model failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("ONNX export: {0}")]
    Onnx(#[from] jukebox_nn::NnError),
    /// The model was fitted on other data than the `data` given: its scaler and classes would be
    /// saved beside a network that never saw them (train and export with the same prepared data).
    #[error("not exported: {0}")]
    FittedOnOtherData(#[from] crate::train::TrainError),
    #[error(transparent)]
    Prepare(#[from] PrepareError),
    #[error(transparent)]
    Evaluate(#[from] EvaluateError),
    #[error("running the exported model: {0}")]
    Runtime(#[from] RuntimeError),
    #[error("the exported model returned {actual} values for {rows} rows x {classes} classes")]
    OutputShape { actual: usize, rows: usize, classes: usize },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

pub type Result<T, E = ExportError> = std::result::Result<T, E>;

/// Where a model was written.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportedModel {
    /// `<model_dir>/<name>/<version>`.
    pub version_dir: PathBuf,
    /// `<version_dir>/model.onnx`.
    pub model_path: PathBuf,
    /// `<version_dir>/artifacts`.
    pub artifacts_dir: PathBuf,
    pub name: String,
    pub version: u64,
    pub classes: Vec<String>,
    pub features: Vec<String>,
}

/// The ONNX graph names and metadata for a model trained on `data`.
pub fn onnx_spec(data: &PreparedData) -> OnnxSpec {
    let mut spec = OnnxSpec::new(MODEL_NAME, data.features.iter().cloned());
    spec.output_name = OUTPUT_NAME.into();
    spec.metadata = vec![
        ("features".into(), serde_json::to_string(&data.features).expect("strings serialise")),
        ("classes".into(), serde_json::to_string(data.encoder.classes()).expect("strings serialise")),
        ("scaler".into(), serde_json::to_string(&data.scaler).expect("numbers serialise")),
    ];
    spec
}

/// Writes `model` (as [`MODEL_NAME`], version `version`) into the repository `model_dir`, with
/// the prepared data's artifacts and `metrics`. An existing version folder is overwritten.
pub fn export(
    model: &TrainedModel,
    data: &PreparedData,
    metrics: &Metrics,
    model_dir: impl AsRef<Path>,
    version: u64,
) -> Result<ExportedModel> {
    // Before anything is written: a network with another split's scaler is a silent wrong answer.
    crate::train::check_fitted_on(model, &data.fingerprint())?;
    let version_dir = model_dir.as_ref().join(MODEL_NAME).join(version.to_string());
    std::fs::create_dir_all(&version_dir).map_err(|source| ExportError::Io { path: version_dir.clone(), source })?;
    let bytes = to_onnx_bytes(&model.network, &onnx_spec(data))?;
    let model_path = version_dir.join(MODEL_FILE);
    std::fs::write(&model_path, bytes).map_err(|source| ExportError::Io { path: model_path.clone(), source })?;
    let artifacts_dir = data.save(&version_dir)?;
    metrics.save(artifacts_dir.join(jukebox_protocol::model_folder::METRICS_FILE))?;
    Ok(ExportedModel {
        version_dir,
        model_path,
        artifacts_dir,
        name: MODEL_NAME.into(),
        version,
        classes: data.encoder.classes().to_vec(),
        features: data.features.clone(),
    })
}

/// Rows per ONNX Runtime call in [`onnx_predict_proba`]. The runtime holds every layer's
/// activations for the rows of one call: over the 220k test rows of the full data in one call,
/// the widest hidden layer alone took 220k x 256 floats (225 MB) and the call about 400 MB more
/// than the probabilities; in blocks it takes a few MB. Each row's probabilities do not depend on
/// the other rows of its call.
pub const ONNX_BLOCK_ROWS: usize = 16_384;

/// Runs the ONNX file at `model_path` on row-major scaled features (`features.len()` per row)
/// through ONNX Runtime, feeding each feature as its own `[N, 1]` input, [`ONNX_BLOCK_ROWS`] rows
/// per call. Returns row-major probabilities.
pub fn onnx_predict_proba(model_path: &Path, features: &[String], x: &[f32]) -> Result<Vec<f32>> {
    onnx_predict_proba_in_blocks(model_path, features, x, ONNX_BLOCK_ROWS)
}

/// [`onnx_predict_proba`] with `block_rows` rows per ONNX Runtime call.
pub fn onnx_predict_proba_in_blocks(
    model_path: &Path,
    features: &[String],
    x: &[f32],
    block_rows: usize,
) -> Result<Vec<f32>> {
    let model = OnnxModel::load_with_sessions(model_path, 1)?;
    let width = features.len().max(1);
    let mut probabilities = Vec::new();
    for block in x.chunks(block_rows.max(1).saturating_mul(width)) {
        let columns: Vec<Vec<f32>> =
            (0..width).map(|j| block.iter().skip(j).step_by(width).copied().collect()).collect();
        let inputs: Vec<InputTensor> =
            features.iter().zip(&columns).map(|(name, column)| InputTensor::column(name, column)).collect();
        let output =
            model.run(&inputs)?.into_iter().find(|o| o.name == OUTPUT_NAME).ok_or_else(|| RuntimeError::Run {
                message: format!("the model has no output named '{OUTPUT_NAME}'"),
            })?;
        probabilities.extend_from_slice(&output.data);
    }
    Ok(probabilities)
}

impl ExportedModel {
    /// Runs the exported file through ONNX Runtime on the test split and scores it.
    pub fn evaluate(&self, data: &PreparedData) -> Result<OnnxEvaluation> {
        let probabilities = onnx_predict_proba(&self.model_path, &self.features, &data.x_test)?;
        let classes = self.classes.len();
        if probabilities.len() != data.n_test() * classes {
            return Err(ExportError::OutputShape { actual: probabilities.len(), rows: data.n_test(), classes });
        }
        let predicted = argmax_rows(&probabilities, classes);
        let report = ClassificationReport::new(&data.y_test, &predicted, classes)?.with_class_names(&self.classes)?;
        Ok(OnnxEvaluation { probabilities, predicted, n_classes: classes, report })
    }
}

fn argmax_rows(probabilities: &[f32], classes: usize) -> Vec<u32> {
    probabilities
        .chunks_exact(classes)
        .map(|row| row.iter().enumerate().fold(0, |best, (i, &p)| if p > row[best] { i } else { best }) as u32)
        .collect()
}

/// The exported model's predictions on the test split (through ONNX Runtime) and their scores.
#[derive(Clone, Debug)]
pub struct OnnxEvaluation {
    /// Row-major `n_test x n_classes`.
    pub probabilities: Vec<f32>,
    pub predicted: Vec<u32>,
    pub n_classes: usize,
    pub report: ClassificationReport,
}

/// How closely the exported model reproduces the in-memory network.
#[derive(Clone, Debug, PartialEq)]
pub struct Parity {
    pub rows: usize,
    /// Largest absolute difference between any two probabilities.
    pub max_abs_diff: f32,
    /// Rows whose predicted class differs.
    pub class_mismatches: usize,
}

impl Parity {
    /// True when probabilities agree within `tolerance` and every predicted class matches.
    pub fn holds(&self, tolerance: f32) -> bool {
        self.max_abs_diff <= tolerance && self.class_mismatches == 0
    }

    pub fn table(&self) -> Table {
        Table::new(
            vec!["check".into(), "value".into()],
            vec![
                vec![Cell::from("rows compared"), (self.rows as f64).into()],
                vec![Cell::from("max |onnxruntime - network|"), (self.max_abs_diff as f64).into()],
                vec![Cell::from("rows with a different class"), (self.class_mismatches as f64).into()],
            ],
        )
        .with_caption("exported model vs trained network (test split)")
    }
}

impl OnnxEvaluation {
    /// Compares with the in-memory network on the same (test) rows.
    pub fn parity(&self, model: &TrainedModel, data: &PreparedData) -> Parity {
        let expected = model.predict_proba(&data.x_test, data.n_test());
        let max_abs_diff = expected.iter().zip(&self.probabilities).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        let expected_classes = argmax_rows(&expected, self.n_classes);
        let class_mismatches = expected_classes.iter().zip(&self.predicted).filter(|(a, b)| a != b).count();
        Parity { rows: data.n_test(), max_abs_diff, class_mismatches }
    }
}

/// Why a version folder is not fit to publish ([`check_version_folder`]). Messages name the file
/// and what disagrees.
#[derive(Debug, thiserror::Error)]
pub enum FolderCheckError {
    /// An artifact is missing or malformed, or the folder is not a version folder.
    #[error(transparent)]
    Folder(#[from] ModelFolderError),
    /// The model file does not load (random, truncated or empty bytes, an unknown operator, ...).
    #[error("{path} does not load in ONNX Runtime, so no model server could serve it: {source}")]
    Load { path: PathBuf, source: RuntimeError },
    /// The model and its artifacts do not belong together.
    #[error("{path} does not match {artifact}: {reason}; export the model and its artifacts together")]
    Mismatch { path: PathBuf, artifact: &'static str, reason: String },
}

/// What [`check_version_folder`] read: the artifacts, checked against the model.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckedFolder {
    pub scaler: Scaler,
    pub label_encoder: LabelEncoder,
}

/// Checks that `folder` is a whole, consistent model version: `model.onnx` loads in ONNX Runtime
/// (without load-time constant folding, as the model server loads it); it has one `[N, 1]` FP32
/// input per feature of `artifacts/scaler.json` and no other; it has the output `output`; and one
/// song of mid-range values gives one value per class of `artifacts/label_encoder.json`.
pub fn check_version_folder(folder: &VersionFolder) -> Result<CheckedFolder, FolderCheckError> {
    let path = folder.model_file();
    let scaler = folder.read_scaler()?;
    let label_encoder = folder.read_label_encoder()?;
    let model = OnnxModel::load_with_rewrites(&path, 1, GraphRewrites::AllButConstantFolding)
        .map_err(|source| FolderCheckError::Load { path: path.clone(), source })?;
    let mismatch =
        |artifact: &'static str, reason: String| FolderCheckError::Mismatch { path: path.clone(), artifact, reason };
    let names: Vec<&str> = model.inputs().iter().map(|i| i.name.as_str()).collect();
    let missing: Vec<&str> = scaler.features.iter().map(String::as_str).filter(|f| !names.contains(f)).collect();
    let extra: Vec<&str> = names.iter().copied().filter(|n| !scaler.features.iter().any(|f| f == n)).collect();
    if !missing.is_empty() || !extra.is_empty() {
        return Err(mismatch(
            SCALER_FILE,
            format!(
                "the model takes {} inputs and the scaler names {} features (model inputs the scaler lacks: [{}]; \
                 scaler features the model lacks: [{}])",
                names.len(),
                scaler.features.len(),
                extra.join(", "),
                missing.join(", ")
            ),
        ));
    }
    for input in model.inputs() {
        let column = input.shape.len() == 2 && matches!(input.shape[1], 1 | -1);
        if input.datatype != "FP32" || !column {
            return Err(mismatch(
                SCALER_FILE,
                format!(
                    "input {:?} is {} {:?}; each feature is one [N, 1] FP32 input",
                    input.name, input.datatype, input.shape
                ),
            ));
        }
    }
    if !model.outputs().iter().any(|o| o.name == OUTPUT_NAME) {
        let outputs: Vec<&str> = model.outputs().iter().map(|o| o.name.as_str()).collect();
        return Err(mismatch(
            LABEL_ENCODER_FILE,
            format!("it has no output {OUTPUT_NAME:?} (outputs: [{}])", outputs.join(", ")),
        ));
    }
    // One song in the middle of every feature's training range.
    let song = vec![0.5f32; scaler.features.len()];
    let inputs: Vec<InputTensor> = scaler
        .features
        .iter()
        .zip(&song)
        .map(|(name, value)| InputTensor::column(name, std::slice::from_ref(value)))
        .collect();
    let outputs = model.run(&inputs).map_err(|source| FolderCheckError::Load { path: path.clone(), source })?;
    let output = outputs.iter().find(|o| o.name == OUTPUT_NAME).expect("the output was found above");
    if output.data.len() != label_encoder.classes.len() {
        return Err(mismatch(
            LABEL_ENCODER_FILE,
            format!(
                "for one song the model answers {} values (shape {:?}), the label encoder names {} classes",
                output.data.len(),
                output.shape,
                label_encoder.classes.len()
            ),
        ));
    }
    Ok(CheckedFolder { scaler, label_encoder })
}
