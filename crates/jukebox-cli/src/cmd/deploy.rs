//! `jukebox deploy`: the OpenShift AI "Deploy model" form as a command. Prints the KServe
//! `ServingRuntime` (OpenVINO Model Server) and `InferenceService` the dashboard would create,
//! as multi-document YAML for `oc apply -f -`; with token authentication also the service
//! account, role, role binding and token secret the dashboard adds.
//!
//! | form field | flag | where it lands |
//! |---|---|---|
//! | Model deployment name | `--name` | metadata.name, `openshift.io/display-name`, runtime name |
//! | Serving runtime | `--runtime ovms` | ServingRuntime (OpenVINO Model Server image, args) |
//! | Model framework | `--format onnx --format-version 1` | predictor.model.modelFormat |
//! | Number of replicas | `--replicas` | predictor.minReplicas / maxReplicas |
//! | Model server size | `--size small/medium/large` | predictor.model.resources requests/limits |
//! | Make available through an external route | `--external-route` | `networking.kserve.io/visibility: exposed` (or the Knative label) |
//! | Require token authentication | `--token-auth` | `security.opendatahub.io/enable-auth: "true"` + service account |
//! | Data connection / path | `--data-connection --path` | predictor.model.storage key / path |

use anyhow::bail;
use serde_json::{json, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Size {
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Runtime {
    /// OpenVINO Model Server (the runtime the workshop deploys ONNX models with).
    Ovms,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DeploymentMode {
    /// Knative (the OpenShift AI default for single-model serving).
    Serverless,
    /// Plain Kubernetes Deployment.
    RawDeployment,
}

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Model deployment name (a Kubernetes name: lower case, digits, '-').
    #[arg(long, default_value = "jukebox")]
    pub name: String,
    /// Namespace (data science project); omitted from the YAML when not given.
    #[arg(long)]
    pub namespace: Option<String>,
    #[arg(long, value_enum, default_value = "ovms")]
    pub runtime: Runtime,
    /// Model framework name.
    #[arg(long, default_value = "onnx")]
    pub format: String,
    /// Model framework version.
    #[arg(long, default_value = "1")]
    pub format_version: String,
    #[arg(long, default_value_t = 1)]
    pub replicas: u32,
    #[arg(long, value_enum, default_value = "small")]
    pub size: Size,
    /// Make the model available through an external route.
    #[arg(long)]
    pub external_route: bool,
    /// Require token authentication.
    #[arg(long)]
    pub token_auth: bool,
    /// Service account whose token authorises requests (with --token-auth).
    #[arg(long, default_value = "default-name")]
    pub service_account: String,
    /// Existing data connection holding the model (OpenShift AI names its secret
    /// `aws-connection-<name>`).
    #[arg(long, default_value = "models")]
    pub data_connection: String,
    /// Path of the model folder inside the data connection's bucket.
    #[arg(long, default_value = "models/jukebox")]
    pub path: String,
    #[arg(long, value_enum, default_value = "serverless")]
    pub deployment_mode: DeploymentMode,
    /// OpenVINO Model Server image.
    #[arg(long, default_value = "quay.io/modh/openvino_model_server:stable")]
    pub image: String,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    print!("{}", render(&args)?);
    Ok(())
}

/// The manifests as one multi-document YAML string.
pub fn render(args: &Args) -> anyhow::Result<String> {
    let mut out = String::new();
    for document in manifests(args)? {
        out.push_str("---\n");
        out.push_str(&serde_norway::to_string(&document)?);
    }
    Ok(out)
}

/// ServingRuntime, InferenceService and (with token auth) ServiceAccount, Role, RoleBinding
/// and the token Secret.
pub fn manifests(args: &Args) -> anyhow::Result<Vec<Value>> {
    let valid_name = !args.name.is_empty()
        && args.name.len() <= 63
        && args.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !args.name.starts_with('-')
        && !args.name.ends_with('-');
    if !valid_name {
        bail!("--name '{}' is not a Kubernetes name (lower case letters, digits and '-', at most 63)", args.name);
    }
    if args.replicas == 0 {
        bail!("--replicas must be at least 1");
    }
    let name = args.name.as_str();
    let (cpu_request, memory_request, cpu_limit, memory_limit) = args.size.resources();
    let key = if args.data_connection.starts_with("aws-connection-") {
        args.data_connection.clone()
    } else {
        format!("aws-connection-{}", args.data_connection)
    };
    let service_account = format!("{}-sa", args.service_account);
    let metadata = |extra_annotations: Value, labels: Value| {
        let mut m = json!({"name": name, "annotations": extra_annotations, "labels": labels});
        if let Some(ns) = &args.namespace {
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
                "image": args.image,
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

    let mode = match args.deployment_mode {
        DeploymentMode::Serverless => "Serverless",
        DeploymentMode::RawDeployment => "RawDeployment",
    };
    let mut annotations = json!({
        "openshift.io/display-name": name,
        "serving.kserve.io/deploymentMode": mode,
        "security.opendatahub.io/enable-auth": if args.token_auth { "true" } else { "false" },
    });
    if args.deployment_mode == DeploymentMode::Serverless {
        annotations["serving.knative.openshift.io/enablePassthrough"] = json!("true");
        annotations["sidecar.istio.io/inject"] = json!("true");
        annotations["sidecar.istio.io/rewriteAppHTTPProbers"] = json!("true");
    }
    let mut labels = json!({"opendatahub.io/dashboard": "true"});
    match (args.external_route, args.deployment_mode) {
        (true, DeploymentMode::RawDeployment) => labels["networking.kserve.io/visibility"] = json!("exposed"),
        (true, DeploymentMode::Serverless) => labels["networking.kserve.io/visibility"] = json!("exposed"),
        (false, DeploymentMode::Serverless) => labels["networking.knative.dev/visibility"] = json!("cluster-local"),
        (false, DeploymentMode::RawDeployment) => {}
    }
    let mut predictor = json!({
        "minReplicas": args.replicas,
        "maxReplicas": args.replicas,
        "model": {
            "modelFormat": {"name": args.format, "version": args.format_version},
            "runtime": name,
            "name": "",
            "resources": {
                "requests": {"cpu": cpu_request, "memory": memory_request},
                "limits": {"cpu": cpu_limit, "memory": memory_limit},
            },
            "storage": {"key": key, "path": args.path},
        },
    });
    if args.token_auth {
        predictor["serviceAccountName"] = json!(service_account);
    }
    let inference_service = json!({
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": metadata(annotations, labels),
        "spec": {"predictor": predictor},
    });

    let mut documents = vec![runtime, inference_service];
    if args.token_auth {
        let namespaced = |mut m: Value| {
            if let Some(ns) = &args.namespace {
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
                "name": format!("{}-{name}", args.service_account),
                "annotations": {"kubernetes.io/service-account.name": service_account,
                                "openshift.io/display-name": args.service_account},
                "labels": {"opendatahub.io/dashboard": "true"},
            })),
        }));
    }
    Ok(documents)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn args(flags: &[&str]) -> Args {
        Cli::parse_from(std::iter::once("deploy").chain(flags.iter().copied())).args
    }

    #[test]
    fn every_form_field_reaches_the_yaml() {
        let a = args(&[
            "--name", "jukebox", "--namespace", "user1-mlops", "--replicas", "2", "--size", "medium",
            "--external-route", "--token-auth", "--data-connection", "models", "--path", "models/jukebox",
        ]);
        let yaml = render(&a).unwrap();
        let docs: Vec<serde_norway::Value> =
            yaml.split("---\n").filter(|d| !d.trim().is_empty()).map(|d| serde_norway::from_str(d).unwrap()).collect();
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
    fn defaults_are_private_and_open() {
        let docs = manifests(&args(&["--deployment-mode", "raw-deployment"])).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1]["metadata"]["annotations"]["security.opendatahub.io/enable-auth"], "false");
        assert!(docs[1]["metadata"]["labels"].get("networking.kserve.io/visibility").is_none());
        assert_eq!(docs[1]["spec"]["predictor"]["model"]["resources"]["requests"]["memory"], "4Gi");
    }

    #[test]
    fn bad_names_are_refused() {
        assert!(manifests(&args(&["--name", "Juke_Box"])).unwrap_err().to_string().contains("Juke_Box"));
        assert!(manifests(&args(&["--replicas", "0"])).is_err());
    }
}
