//! Stage 4, deploy: the OpenShift AI "Deploy model" form as data. [`DeployForm`] holds the form's
//! fields with the workshop's values; [`DeployForm::manifests`] turns them into the KServe
//! `ServingRuntime` (OpenVINO Model Server) and `InferenceService` the dashboard creates (plus,
//! with token authentication, the service account, role, role binding and token secret it adds),
//! and [`DeployForm::yaml`] writes them as multi-document YAML for `oc apply -f -`.
//! Notebook 4 shows both; `jukebox deploy` prints the YAML.
//!
//! | form field | field | where it lands |
//! |---|---|---|
//! | Model deployment name | `name` | metadata.name, `openshift.io/display-name`, runtime name |
//! | Serving runtime | `runtime` | ServingRuntime (OpenVINO Model Server image, args) |
//! | Model framework | `format`, `format_version` | predictor.model.modelFormat |
//! | Number of replicas | `replicas` | predictor.minReplicas / maxReplicas |
//! | Model server size | `size` | predictor.model.resources requests/limits |
//! | Make available through an external route | `external_route` | `networking.kserve.io/visibility: exposed` (or the Knative label) |
//! | Require token authentication | `token_auth` | `security.opendatahub.io/enable-auth: "true"` + service account |
//! | Data connection / path | `data_connection`, `path` | predictor.model.storage key / path |

use jukebox_protocol::model_folder::{BUCKET_MODELS_DIR, DEFAULT_STORAGE_KEY, MODEL_NAME};
use serde_json::{json, Value};

use crate::display::{Cell, Code, Table};

/// Why manifests could not be made: a form field that Kubernetes or the dashboard would refuse.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("model deployment name '{0}' is not a Kubernetes name (lower case letters, digits and '-', at most 63)")]
    BadName(String),
    #[error("the number of replicas must be at least 1")]
    NoReplicas,
    #[error("writing the manifests as YAML: {0}")]
    Yaml(#[from] serde_norway::Error),
}

/// The dashboard's model server sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Size {
    #[default]
    Small,
    Medium,
    Large,
}

impl Size {
    /// (requests cpu, requests memory, limits cpu, limits memory): the OpenShift AI
    /// dashboard's default model server sizes.
    pub fn resources(self) -> (&'static str, &'static str, &'static str, &'static str) {
        match self {
            Size::Small => ("1", "4Gi", "2", "8Gi"),
            Size::Medium => ("4", "8Gi", "8", "10Gi"),
            Size::Large => ("6", "16Gi", "10", "20Gi"),
        }
    }
}

/// The serving runtimes the form offers for ONNX models.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Runtime {
    /// OpenVINO Model Server (the runtime the workshop deploys ONNX models with).
    #[default]
    Ovms,
}

/// How KServe runs the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DeploymentMode {
    /// Knative (the OpenShift AI default for single-model serving).
    #[default]
    Serverless,
    /// Plain Kubernetes Deployment.
    RawDeployment,
}

/// The fields of the dashboard's "Deploy model" form.
#[derive(Clone, Debug, PartialEq)]
pub struct DeployForm {
    /// Model deployment name (a Kubernetes name: lower case, digits, '-').
    pub name: String,
    /// Namespace (data science project); omitted from the YAML when `None`.
    pub namespace: Option<String>,
    pub runtime: Runtime,
    /// Model framework name and version (`onnx`, `1`).
    pub format: String,
    pub format_version: String,
    pub replicas: u32,
    pub size: Size,
    /// Make the model available through an external route.
    pub external_route: bool,
    /// Require token authentication.
    pub token_auth: bool,
    /// Service account whose token authorises requests (with `token_auth`).
    pub service_account: String,
    /// Existing data connection holding the model (OpenShift AI names its secret
    /// `aws-connection-<name>`).
    pub data_connection: String,
    /// Path of the model folder inside the data connection's bucket.
    pub path: String,
    pub deployment_mode: DeploymentMode,
    /// OpenVINO Model Server image.
    pub image: String,
}

impl Default for DeployForm {
    /// The workshop's form: `jukebox`, OpenVINO Model Server, `onnx - 1`, 1 replica, Small,
    /// external route on, token authentication off, data connection `models`, path
    /// `models/jukebox`.
    fn default() -> Self {
        DeployForm {
            name: MODEL_NAME.into(),
            namespace: None,
            runtime: Runtime::Ovms,
            format: "onnx".into(),
            format_version: "1".into(),
            replicas: 1,
            size: Size::Small,
            external_route: true,
            token_auth: false,
            service_account: "default-name".into(),
            data_connection: DEFAULT_STORAGE_KEY.into(),
            path: format!("{BUCKET_MODELS_DIR}/{MODEL_NAME}"),
            deployment_mode: DeploymentMode::Serverless,
            image: "quay.io/modh/openvino_model_server:stable".into(),
        }
    }
}

impl DeployForm {
    /// The form as the dashboard shows it: one row per field, with its value and what it does.
    pub fn table(&self) -> Table {
        let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
        let rows: Vec<(&str, String, &str)> = vec![
            ("Model deployment name", self.name.clone(), "names the InferenceService, its runtime and the URL path"),
            (
                "Serving runtime",
                "OpenVINO Model Server".into(),
                "the server that loads model.onnx and speaks KServe v2",
            ),
            (
                "Model framework",
                format!("{} - {}", self.format, self.format_version),
                "tells the runtime how to read the model folder",
            ),
            ("Number of replicas", self.replicas.to_string(), "how many copies answer requests"),
            ("Model server size", format!("{:?}", self.size), "CPU and memory each replica gets"),
            (
                "Make available through an external route",
                yes_no(self.external_route),
                "a URL outside the cluster (notebook 4 from a laptop)",
            ),
            (
                "Require token authentication",
                yes_no(self.token_auth),
                "requests must carry a service account's bearer token",
            ),
            (
                "Data connection",
                self.data_connection.clone(),
                "the bucket's credentials (the AWS_* variables of notebook 3)",
            ),
            ("Path", self.path.clone(), "the model folder in the bucket; the server serves its version folders"),
        ];
        Table::new(
            vec!["form field".into(), "value".into(), "what it does".into()],
            rows.into_iter().map(|(f, v, w)| vec![Cell::from(f), Cell::from(v), Cell::from(w)]).collect(),
        )
        .with_caption("The OpenShift AI \"Deploy model\" form")
    }

    /// ServingRuntime, InferenceService and (with token auth) ServiceAccount, Role, RoleBinding
    /// and the token Secret.
    pub fn manifests(&self) -> Result<Vec<Value>, DeployError> {
        let valid_name = !self.name.is_empty()
            && self.name.len() <= 63
            && self.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !self.name.starts_with('-')
            && !self.name.ends_with('-');
        if !valid_name {
            return Err(DeployError::BadName(self.name.clone()));
        }
        if self.replicas == 0 {
            return Err(DeployError::NoReplicas);
        }
        let name = self.name.as_str();
        let (cpu_request, memory_request, cpu_limit, memory_limit) = self.size.resources();
        let key = if self.data_connection.starts_with("aws-connection-") {
            self.data_connection.clone()
        } else {
            format!("aws-connection-{}", self.data_connection)
        };
        let service_account = format!("{}-sa", self.service_account);
        let metadata = |extra_annotations: Value, labels: Value| {
            let mut m = json!({"name": name, "annotations": extra_annotations, "labels": labels});
            if let Some(ns) = &self.namespace {
                m["namespace"] = json!(ns);
            }
            m
        };

        let runtime = json!({
            "apiVersion": "serving.kserve.io/v1alpha1",
            "kind": "ServingRuntime",
            "metadata": metadata(
                json!({
                    "openshift.io/display-name": name,
                    "opendatahub.io/template-name": "kserve-ovms",
                    "opendatahub.io/template-display-name": "OpenVINO Model Server",
                    "opendatahub.io/apiProtocol": "REST",
                    "opendatahub.io/accelerator-name": "",
                }),
                json!({"opendatahub.io/dashboard": "true"}),
            ),
            "spec": {
                "annotations": {"prometheus.io/port": "8888", "prometheus.io/path": "/metrics"},
                "multiModel": false,
                "protocolVersions": ["v2", "grpc-v2"],
                "supportedModelFormats": [
                    {"name": "openvino_ir", "version": "opset13", "autoSelect": true},
                    {"name": "onnx", "version": "1"},
                    {"name": "tensorflow", "version": "1", "autoSelect": true},
                    {"name": "tensorflow", "version": "2", "autoSelect": true},
                    {"name": "paddle", "version": "2", "autoSelect": true},
                    {"name": "pytorch", "version": "2", "autoSelect": true},
                ],
                "containers": [{
                    "name": "kserve-container",
                    "image": self.image,
                    "args": [
                        "--model_name={{.Name}}",
                        "--port=8001",
                        "--rest_port=8888",
                        "--model_path=/mnt/models",
                        "--file_system_poll_wait_seconds=0",
                        "--grpc_bind_address=0.0.0.0",
                        "--rest_bind_address=0.0.0.0",
                        "--target_device=AUTO",
                        "--metrics_enable",
                    ],
                    "ports": [{"containerPort": 8888, "protocol": "TCP"}],
                }],
            },
        });

        let mode = match self.deployment_mode {
            DeploymentMode::Serverless => "Serverless",
            DeploymentMode::RawDeployment => "RawDeployment",
        };
        let mut annotations = json!({
            "openshift.io/display-name": name,
            "serving.kserve.io/deploymentMode": mode,
            "security.opendatahub.io/enable-auth": if self.token_auth { "true" } else { "false" },
        });
        if self.deployment_mode == DeploymentMode::Serverless {
            annotations["serving.knative.openshift.io/enablePassthrough"] = json!("true");
            annotations["sidecar.istio.io/inject"] = json!("true");
            annotations["sidecar.istio.io/rewriteAppHTTPProbers"] = json!("true");
        }
        let mut labels = json!({"opendatahub.io/dashboard": "true"});
        match (self.external_route, self.deployment_mode) {
            (true, DeploymentMode::RawDeployment) => labels["networking.kserve.io/visibility"] = json!("exposed"),
            (true, DeploymentMode::Serverless) => labels["networking.kserve.io/visibility"] = json!("exposed"),
            (false, DeploymentMode::Serverless) => labels["networking.knative.dev/visibility"] = json!("cluster-local"),
            (false, DeploymentMode::RawDeployment) => {}
        }
        let mut predictor = json!({
            "minReplicas": self.replicas,
            "maxReplicas": self.replicas,
            "model": {
                "modelFormat": {"name": self.format, "version": self.format_version},
                "runtime": name,
                "name": "",
                "resources": {
                    "requests": {"cpu": cpu_request, "memory": memory_request},
                    "limits": {"cpu": cpu_limit, "memory": memory_limit},
                },
                "storage": {"key": key, "path": self.path},
            },
        });
        if self.token_auth {
            predictor["serviceAccountName"] = json!(service_account);
        }
        let inference_service = json!({
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": metadata(annotations, labels),
            "spec": {"predictor": predictor},
        });

        let mut documents = vec![runtime, inference_service];
        if self.token_auth {
            let namespaced = |mut m: Value| {
                if let Some(ns) = &self.namespace {
                    m["namespace"] = json!(ns);
                }
                m
            };
            let role = format!("{name}-view-role");
            documents.push(json!({
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": namespaced(json!({"name": service_account, "labels": {"opendatahub.io/dashboard": "true"}})),
            }));
            documents.push(json!({
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": namespaced(json!({"name": role, "labels": {"opendatahub.io/dashboard": "true"}})),
                "rules": [{"apiGroups": ["serving.kserve.io"], "resources": ["inferenceservices"],
                           "resourceNames": [name], "verbs": ["get"]}],
            }));
            documents.push(json!({
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": namespaced(json!({"name": format!("{name}-view"), "labels": {"opendatahub.io/dashboard": "true"}})),
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
                "subjects": [{"kind": "ServiceAccount", "name": service_account}],
            }));
            documents.push(json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "kubernetes.io/service-account-token",
                "metadata": namespaced(json!({
                    "name": format!("{}-{name}", self.service_account),
                    "annotations": {"kubernetes.io/service-account.name": service_account,
                                    "openshift.io/display-name": self.service_account},
                    "labels": {"opendatahub.io/dashboard": "true"},
                })),
            }));
        }
        Ok(documents)
    }

    /// The manifests as one multi-document YAML string.
    pub fn yaml(&self) -> Result<String, DeployError> {
        let mut out = String::new();
        for document in self.manifests()? {
            out.push_str("---\n");
            out.push_str(&serde_norway::to_string(&document)?);
        }
        Ok(out)
    }

    /// The YAML as a code block that renders inline in Jupyter.
    pub fn yaml_block(&self) -> Result<Code, DeployError> {
        Ok(Code::new("yaml", self.yaml()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn documents(form: &DeployForm) -> Vec<serde_norway::Value> {
        form.yaml()
            .unwrap()
            .split("---\n")
            .filter(|d| !d.trim().is_empty())
            .map(|d| serde_norway::from_str(d).unwrap())
            .collect()
    }

    #[test]
    fn every_form_field_reaches_the_yaml() {
        let form = DeployForm {
            namespace: Some("user1-mlops".into()),
            replicas: 2,
            size: Size::Medium,
            token_auth: true,
            ..DeployForm::default()
        };
        let docs = documents(&form);
        assert_eq!(docs.len(), 6);
        let isvc = &docs[1];
        assert_eq!(isvc["kind"], "InferenceService");
        assert_eq!(isvc["metadata"]["namespace"], "user1-mlops");
        let p = &isvc["spec"]["predictor"];
        assert_eq!(p["minReplicas"], 2);
        assert_eq!(p["maxReplicas"], 2);
        assert_eq!(p["model"]["modelFormat"]["name"], "onnx");
        assert_eq!(p["model"]["modelFormat"]["version"], "1");
        assert_eq!(p["model"]["runtime"], "jukebox");
        assert_eq!(p["model"]["resources"]["requests"]["cpu"], "4");
        assert_eq!(p["model"]["resources"]["limits"]["memory"], "10Gi");
        assert_eq!(p["model"]["storage"]["key"], "aws-connection-models");
        assert_eq!(p["model"]["storage"]["path"], "models/jukebox");
        assert_eq!(p["serviceAccountName"], "default-name-sa");
        assert_eq!(isvc["metadata"]["annotations"]["security.opendatahub.io/enable-auth"], "true");
        assert_eq!(isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"], "Serverless");
        assert_eq!(isvc["metadata"]["labels"]["networking.kserve.io/visibility"], "exposed");
        assert_eq!(isvc["metadata"]["labels"]["opendatahub.io/dashboard"], "true");
        assert_eq!(docs[0]["kind"], "ServingRuntime");
        assert_eq!(docs[0]["metadata"]["annotations"]["opendatahub.io/template-display-name"], "OpenVINO Model Server");
        assert_eq!(docs[2]["kind"], "ServiceAccount");
    }

    #[test]
    fn the_default_is_the_workshop_form_external_route_on_token_off() {
        let docs = documents(&DeployForm::default());
        assert_eq!(docs.len(), 2);
        let isvc = &docs[1];
        assert_eq!(isvc["metadata"]["name"], "jukebox");
        assert_eq!(isvc["metadata"]["annotations"]["security.opendatahub.io/enable-auth"], "false");
        assert_eq!(isvc["metadata"]["labels"]["networking.kserve.io/visibility"], "exposed");
        assert_eq!(isvc["spec"]["predictor"]["minReplicas"], 1);
        assert_eq!(isvc["spec"]["predictor"]["model"]["resources"]["requests"]["memory"], "4Gi");
        let private = DeployForm {
            external_route: false,
            deployment_mode: DeploymentMode::RawDeployment,
            ..DeployForm::default()
        };
        assert!(documents(&private)[1]["metadata"]["labels"].get("networking.kserve.io/visibility").is_none());
        assert_eq!(DeployForm::default().table().rows.len(), 9);
    }

    #[test]
    fn bad_names_and_no_replicas_are_refused() {
        let bad = DeployForm { name: "Juke_Box".into(), ..DeployForm::default() };
        assert!(bad.manifests().unwrap_err().to_string().contains("Juke_Box"));
        assert!(matches!(
            DeployForm { replicas: 0, ..DeployForm::default() }.manifests(),
            Err(DeployError::NoReplicas)
        ));
    }
}
