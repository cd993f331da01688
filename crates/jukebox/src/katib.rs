//! Stage 5 past one machine: the sweep as a Kubeflow Katib `Experiment`.
//!
//! A sweep on a laptop trains its runs on the laptop's cores ([`crate::refine`]). The workshop's
//! cluster can run them side by side instead, each in a pod of its own: that is what
//! [Katib](https://www.kubeflow.org/docs/components/katib/), Kubeflow's hyperparameter tuner,
//! does. You describe the search once, as an `Experiment` resource, and Katib starts the
//! *trials* (one Kubernetes `Job` per setting), reads each trial's score from its output and
//! keeps the best. [`KatibExperiment`] writes that resource for a [`Grid`], so the cluster tries
//! exactly the settings the notebook's sweep tries:
//!
//! | Experiment field | what it holds here |
//! |---|---|
//! | `spec.parameters` | one per grid setting: `epochs`, `hidden-layers`, `learning-rate`, `batch-size`, each listing the grid's values |
//! | `spec.algorithm` | `grid`: every combination once, as the sweep does |
//! | `spec.maxTrialCount` | the number of combinations ([`Grid::len`]) |
//! | `spec.parallelTrialCount` | how many trials run at once ([`KatibExperiment::parallel_trials`], at most the grid's size) |
//! | `spec.objective` | maximise `validation-accuracy` ([`METRIC`]): the sweep's selection rule, never a test score |
//! | `spec.metricsCollectorSpec` | Katib's `StdOut` collector: it reads `validation-accuracy=0.4123` lines from the trial's output |
//! | `spec.trialTemplate` | a `batch/v1` Job running `jukebox train` in the workbench image with the trial's values |
//!
//! The trial's command is the one you would type: `jukebox train --split=grouped --seed=42
//! --patience=3 --max-train-rows=100000 --epochs=10 --hidden-layers=128,128 --learning-rate=0.001
//! --batch-size=64 --no-baselines` (the grid's early stopping and row budget, when it sets them,
//! are the same for every trial).
//! `jukebox train` prints the metric line ([`metric_line`]) after training. Katib's collector
//! runs the command through `sh -c` with its output sent to a file, and keeps the lines of the
//! form `name=value` whose name is an objective metric. Without `--model-repository` a trial
//! exports nothing: the Experiment answers *which settings*; train the winner with those
//! settings and export it as in notebook 5.
//!
//! The trials need the `jukebox` command, so they run in the workbench's own image: in an
//! OpenShift AI workbench the variable `JUPYTER_IMAGE` names it ([`workbench_image`]).
//! Apply the written file with `oc apply -f katib-experiment.yaml` (Katib must be installed on
//! the cluster) and follow the trials in the Katib UI or with `oc get trials`.

use serde_json::{json, Value};

use crate::data::workshop_features;
use crate::display::{Cell, Code, Table};
use crate::prepare::SplitStrategy;
use crate::refine::Grid;

/// The metric the trials report and the Experiment maximises.
pub const METRIC: &str = "validation-accuracy";

/// Where OpenShift AI keeps a custom workbench image imported under the name `jukebox`, as pods
/// in the cluster pull it: the trials' image when [`workbench_image`] finds none.
pub const DEFAULT_WORKBENCH_IMAGE: &str =
    "image-registry.openshift-image-registry.svc:5000/redhat-ods-applications/jukebox:latest";

/// The line Katib's `StdOut` metrics collector parses: `validation-accuracy=0.412300`. Its
/// default filter, `([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)`, takes a name and a
/// decimal number; lines naming no metric of the Experiment are ignored.
pub fn metric_line(name: &str, value: f64) -> String {
    format!("{name}={value:.6}")
}

/// The image this workbench runs in, if it says: OpenShift AI and Kubeflow notebooks set
/// `JUPYTER_IMAGE` in the workbench's environment.
pub fn workbench_image() -> Option<String> {
    std::env::var("JUPYTER_IMAGE").ok().filter(|image| !image.trim().is_empty())
}

/// Why an Experiment could not be written: a field Katib or Kubernetes would refuse.
#[derive(Debug, thiserror::Error)]
pub enum KatibError {
    #[error(
        "experiment name '{0}' is not one Katib accepts: lower case letters, digits and '-', starting with a letter, \
         ending with a letter or digit, at most 40 characters (e.g. jukebox-quick)"
    )]
    BadName(String),
    #[error("the grid has no combination to try: every grid setting needs at least one value")]
    EmptyGrid,
    #[error("parallel_trials must be at least 1 (how many trials Katib runs at once)")]
    NoParallelTrials,
    #[error("the trials' image is empty: name an image that holds the `jukebox` command (the workbench image)")]
    NoImage,
    #[error(
        "{what} '{value}' would be split or changed by the shell Katib runs the trial command in: use letters, \
         digits and . _ - / : , only"
    )]
    NotShellSafe { what: &'static str, value: String },
    #[error("writing the Experiment as YAML: {0}")]
    Yaml(#[from] serde_norway::Error),
    #[error("writing {path}: {source}")]
    Io { path: std::path::PathBuf, source: std::io::Error },
}

/// A Katib `Experiment` (kubeflow.org/v1beta1) that runs a [`Grid`] as trials of `jukebox
/// train`. Fill in what differs from [`KatibExperiment::new`]'s defaults, then write it with
/// [`KatibExperiment::yaml`] or [`KatibExperiment::write`].
#[derive(Clone, Debug, PartialEq)]
pub struct KatibExperiment {
    /// `metadata.name` (Katib: at most 40 characters, lower case, digits and '-').
    pub name: String,
    /// `metadata.namespace`; `None` leaves it to `oc apply -n` (or the current project).
    pub namespace: Option<String>,
    /// The settings to try.
    pub grid: Grid,
    /// The split every trial trains on and is scored on (the sweep's: grouped).
    pub split: SplitStrategy,
    /// Seeds every trial's split, initial weights and shuffling, as the sweep's `seed`.
    pub seed: u64,
    /// The feature columns, in model order (passed to the trials when not the workshop's 13).
    pub features: Vec<String>,
    /// At most this many trials at once (the cluster is shared by the class); capped at the
    /// grid's size.
    pub parallel_trials: usize,
    /// The image the trials run in; it must hold the `jukebox` command.
    pub image: String,
    /// The data folder inside the trial's container (`--data-dir`); `None`: the trial finds the
    /// data as `jukebox train` does (`JUKEBOX_DATA_DIR`, its cache, or a download).
    pub data_dir: Option<String>,
    /// A PersistentVolumeClaim holding the data, mounted read-only at `data_dir`.
    pub data_volume_claim: Option<String>,
}

/// One grid setting as a Katib parameter and the `jukebox train` flag it fills.
struct Parameter {
    /// Katib's parameter name.
    name: &'static str,
    /// The trial parameter's name, as written in the command: `${trialParameters.<name>}`.
    trial_name: &'static str,
    flag: &'static str,
    /// `discrete` (numbers) or `categorical` (anything else).
    parameter_type: &'static str,
    values: Vec<String>,
    description: &'static str,
}

impl KatibExperiment {
    /// The Experiment for `grid` with the sweep's defaults: grouped split, seed 42, the
    /// workshop's features, 4 trials at once, the workbench's image ([`workbench_image`], else
    /// [`DEFAULT_WORKBENCH_IMAGE`]), the data found as `jukebox train` finds it.
    pub fn new(grid: Grid) -> KatibExperiment {
        KatibExperiment {
            name: "jukebox-sweep".into(),
            namespace: None,
            grid,
            split: SplitStrategy::Grouped,
            seed: 42,
            features: workshop_features(),
            parallel_trials: 4,
            image: workbench_image().unwrap_or_else(|| DEFAULT_WORKBENCH_IMAGE.to_string()),
            data_dir: None,
            data_volume_claim: None,
        }
    }

    /// The Experiment's name for a grid given as `grid_text` (a flag or notebook parameter):
    /// `jukebox-quick` or `jukebox-class` for the named grids, else `jukebox-sweep`.
    pub fn name_for_grid(grid_text: &str) -> String {
        match grid_text.trim() {
            named @ ("quick" | "class") => format!("jukebox-{named}"),
            _ => "jukebox-sweep".to_string(),
        }
    }

    /// The grid's settings as Katib parameters, in the grid's order.
    fn parameters(&self) -> Vec<Parameter> {
        let grid = &self.grid;
        vec![
            Parameter {
                name: "epochs",
                trial_name: "epochs",
                flag: "--epochs",
                parameter_type: "discrete",
                values: grid.epochs.iter().map(usize::to_string).collect(),
                description: "passes over the training rows",
            },
            Parameter {
                name: "hidden-layers",
                trial_name: "hiddenLayers",
                flag: "--hidden-layers",
                parameter_type: "categorical",
                values: grid
                    .hidden_layers
                    .iter()
                    .map(|layers| layers.iter().map(usize::to_string).collect::<Vec<_>>().join(","))
                    .collect(),
                description: "units of each hidden layer, comma-separated",
            },
            Parameter {
                name: "learning-rate",
                trial_name: "learningRate",
                flag: "--learning-rate",
                parameter_type: "discrete",
                values: grid.learning_rate.iter().map(f32::to_string).collect(),
                description: "Adam's step size",
            },
            Parameter {
                name: "batch-size",
                trial_name: "batchSize",
                flag: "--batch-size",
                parameter_type: "discrete",
                values: grid.batch_size.iter().map(usize::to_string).collect(),
                description: "rows per weight update",
            },
        ]
    }

    /// How many trials run at once: [`KatibExperiment::parallel_trials`], at most the grid's size.
    pub fn parallel_trial_count(&self) -> usize {
        self.parallel_trials.min(self.grid.len())
    }

    /// The trial container's command, with `${trialParameters.<name>}` where Katib puts each
    /// trial's values. Katib's `StdOut` collector joins it with spaces and runs it with `sh -c`,
    /// so every word is checked to mean the same to the shell.
    pub fn trial_command(&self) -> Result<Vec<String>, KatibError> {
        let mut command: Vec<String> = vec!["jukebox".into(), "train".into()];
        if let Some(dir) = &self.data_dir {
            command.push(format!("--data-dir={}", shell_safe("data_dir", dir)?));
        }
        command.push(format!("--split={}", self.split.name()));
        command.push(format!("--seed={}", self.seed));
        if self.features != workshop_features() {
            let features = self.features.join(",");
            command.push(format!("--features={}", shell_safe("features", &features)?));
        }
        // One value for every run of the grid: fixed in the command, not searched.
        if let Some(patience) = self.grid.patience {
            command.push(format!("--patience={patience}"));
        }
        if let Some(rows) = self.grid.max_train_rows {
            command.push(format!("--max-train-rows={rows}"));
        }
        for parameter in self.parameters() {
            command.push(format!("{}=${{trialParameters.{}}}", parameter.flag, parameter.trial_name));
        }
        // The trial answers which settings win; baselines and an export would only cost time.
        command.push("--no-baselines".into());
        Ok(command)
    }

    fn check(&self) -> Result<(), KatibError> {
        let name = &self.name;
        let valid_name = name.len() <= 40
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !valid_name {
            return Err(KatibError::BadName(name.clone()));
        }
        if self.grid.is_empty() {
            return Err(KatibError::EmptyGrid);
        }
        if self.parallel_trials == 0 {
            return Err(KatibError::NoParallelTrials);
        }
        if self.image.trim().is_empty() {
            return Err(KatibError::NoImage);
        }
        Ok(())
    }

    /// The Experiment as a JSON value (what [`KatibExperiment::yaml`] writes).
    pub fn manifest(&self) -> Result<Value, KatibError> {
        self.check()?;
        let parameters = self.parameters();
        let command = self.trial_command()?;
        let trials = self.grid.len();
        let mut metadata = json!({"name": self.name, "labels": {"app.kubernetes.io/part-of": "jukebox"}});
        if let Some(namespace) = &self.namespace {
            metadata["namespace"] = json!(namespace);
        }
        let mut container = json!({
            "name": "training-container",
            "image": self.image,
            "command": command,
            // A trial is one single-threaded training: one core, and room for the full data
            // (about 1.1 M rows; a notebook kernel peaks below 1.5 GB on it).
            "resources": {
                "requests": {"cpu": "1", "memory": "2Gi"},
                "limits": {"cpu": "2", "memory": "4Gi"},
            },
        });
        let mut pod = json!({"containers": [], "restartPolicy": "Never"});
        if let (Some(dir), Some(claim)) = (&self.data_dir, &self.data_volume_claim) {
            container["volumeMounts"] = json!([{"name": "data", "mountPath": dir, "readOnly": true}]);
            pod["volumes"] = json!([{"name": "data", "persistentVolumeClaim": {"claimName": claim, "readOnly": true}}]);
        }
        pod["containers"] = json!([container]);
        Ok(json!({
            "apiVersion": "kubeflow.org/v1beta1",
            "kind": "Experiment",
            "metadata": metadata,
            "spec": {
                "objective": {"type": "maximize", "objectiveMetricName": METRIC},
                "algorithm": {"algorithmName": "grid"},
                "parallelTrialCount": self.parallel_trial_count(),
                "maxTrialCount": trials,
                // The runs are seeded and deterministic: a failing trial is a real error, and
                // failing it again on every other setting would only waste the cluster's time.
                "maxFailedTrialCount": trials.min(3),
                "parameters": parameters.iter().map(|p| json!({
                    "name": p.name,
                    "parameterType": p.parameter_type,
                    "feasibleSpace": {"list": p.values},
                })).collect::<Vec<_>>(),
                "metricsCollectorSpec": {"collector": {"kind": "StdOut"}},
                "trialTemplate": {
                    "primaryContainerName": "training-container",
                    "successCondition": "status.conditions.#(type==\"Complete\")#|#(status==\"True\")#",
                    "failureCondition": "status.conditions.#(type==\"Failed\")#|#(status==\"True\")#",
                    "trialParameters": parameters.iter().map(|p| json!({
                        "name": p.trial_name,
                        "description": p.description,
                        "reference": p.name,
                    })).collect::<Vec<_>>(),
                    "trialSpec": {
                        "apiVersion": "batch/v1",
                        "kind": "Job",
                        "spec": {"backoffLimit": 0, "template": {"spec": pod}},
                    },
                },
            },
        }))
    }

    /// The Experiment as YAML, for `oc apply -f -`.
    pub fn yaml(&self) -> Result<String, KatibError> {
        Ok(format!("---\n{}", serde_norway::to_string(&self.manifest()?)?))
    }

    /// The YAML as a code block that renders inline in Jupyter.
    pub fn yaml_block(&self) -> Result<Code, KatibError> {
        Ok(Code::new("yaml", self.yaml()?))
    }

    /// Writes the YAML to `path` (e.g. `katib-experiment.yaml`) and returns it as a code block.
    pub fn write(&self, path: impl AsRef<std::path::Path>) -> Result<Code, KatibError> {
        let path = path.as_ref();
        let yaml = self.yaml()?;
        std::fs::write(path, &yaml).map_err(|source| KatibError::Io { path: path.to_path_buf(), source })?;
        Ok(Code::new("yaml", yaml))
    }

    /// The search as a table: one row per Katib parameter with its values and the flag of
    /// `jukebox train` it fills.
    pub fn table(&self) -> Table {
        let rows = self
            .parameters()
            .into_iter()
            .map(|p| {
                vec![
                    Cell::from(p.name),
                    Cell::from(p.parameter_type),
                    Cell::from(p.values.join(" | ")),
                    Cell::from(format!("{}=${{trialParameters.{}}}", p.flag, p.trial_name)),
                ]
            })
            .collect();
        Table::new(vec!["parameter".into(), "type".into(), "values".into(), "jukebox train flag".into()], rows)
            .with_caption(format!(
                "Katib Experiment {}: {} trials (grid), {} at a time, maximising {METRIC}",
                self.name,
                self.grid.len(),
                self.parallel_trial_count()
            ))
    }
}

crate::display::shown_as_table!(KatibExperiment);

/// `value` unchanged if the shell Katib's collector starts the command with (`sh -c`, words
/// joined by spaces) reads it as one word meaning itself.
fn shell_safe<'a>(what: &'static str, value: &'a str) -> Result<&'a str, KatibError> {
    let safe = !value.is_empty() && value.chars().all(|c| c.is_ascii_alphanumeric() || "._-/:,".contains(c));
    if safe {
        Ok(value)
    } else {
        Err(KatibError::NotShellSafe { what, value: value.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quick() -> KatibExperiment {
        KatibExperiment { image: "example.org/jukebox:1".into(), ..KatibExperiment::new("quick".parse().unwrap()) }
    }

    #[test]
    fn the_grid_becomes_parameters_and_counts() {
        let experiment = quick();
        let manifest = experiment.manifest().unwrap();
        let spec = &manifest["spec"];
        assert_eq!(spec["maxTrialCount"], 8);
        assert_eq!(spec["parallelTrialCount"], 4);
        assert_eq!(spec["algorithm"]["algorithmName"], "grid");
        assert_eq!(spec["objective"]["objectiveMetricName"], METRIC);
        assert_eq!(spec["parameters"][0]["feasibleSpace"]["list"], json!(["10", "25"]));
        assert_eq!(spec["parameters"][1]["feasibleSpace"]["list"], json!(["32,64,128,256", "128,128"]));
        assert_eq!(spec["parameters"][2]["feasibleSpace"]["list"], json!(["0.001", "0.003"]));
        let command = experiment.trial_command().unwrap();
        assert_eq!(command[..4], ["jukebox", "train", "--split=grouped", "--seed=42"]);
        assert!(command.contains(&"--hidden-layers=${trialParameters.hiddenLayers}".to_string()));
        let container = &spec["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(container["image"], "example.org/jukebox:1");
        assert_eq!(container["command"], json!(command));
        // A grid smaller than the parallel count runs all at once.
        let single: Grid =
            r#"{"epochs": [1], "hidden_layers": [[8]], "learning_rate": [0.01], "batch_size": [32]}"#.parse().unwrap();
        assert_eq!(KatibExperiment { grid: single, ..quick() }.parallel_trial_count(), 1);
    }

    #[test]
    fn fields_katib_or_the_shell_would_refuse_are_named() {
        let long = KatibExperiment { name: "a".repeat(41), ..quick() };
        assert!(matches!(long.manifest(), Err(KatibError::BadName(_))));
        assert!(matches!(
            KatibExperiment { name: "Jukebox".into(), ..quick() }.manifest(),
            Err(KatibError::BadName(_))
        ));
        assert!(matches!(
            KatibExperiment { parallel_trials: 0, ..quick() }.manifest(),
            Err(KatibError::NoParallelTrials)
        ));
        let spaced = KatibExperiment { data_dir: Some("/my data".into()), ..quick() };
        let error = spaced.manifest().unwrap_err().to_string();
        assert!(error.contains("/my data"), "{error}");
        // Other features reach the command; the workshop's are the default and stay implicit.
        let fewer = KatibExperiment { features: vec!["energy".into(), "tempo".into()], ..quick() };
        assert!(fewer.trial_command().unwrap().contains(&"--features=energy,tempo".to_string()));
    }

    #[test]
    fn the_metric_line_is_name_equals_number() {
        assert_eq!(metric_line(METRIC, 0.41234567), "validation-accuracy=0.412346");
    }
}
