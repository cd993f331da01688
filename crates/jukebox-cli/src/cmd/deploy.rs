//! `jukebox deploy`: the OpenShift AI "Deploy model" form as flags. Prints the KServe
//! `ServingRuntime` and `InferenceService` (and, with `--token-auth`, the service account
//! objects) as multi-document YAML for `oc apply -f -`; the manifests are built by
//! [`jukebox::deploy::DeployForm`], which notebook 4 shows too.

use jukebox::deploy::{DeployForm, DeploymentMode, Runtime, Size};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SizeArg {
    /// Requests 1 CPU and 4Gi, limits 2 CPUs and 8Gi (the form's default).
    Small,
    /// Requests 4 CPUs and 8Gi, limits 8 CPUs and 10Gi.
    Medium,
    /// Requests 6 CPUs and 16Gi, limits 10 CPUs and 20Gi.
    Large,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RuntimeArg {
    /// OpenVINO Model Server (the runtime the workshop deploys ONNX models with).
    Ovms,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DeploymentModeArg {
    /// Knative (the OpenShift AI default for single-model serving).
    Serverless,
    /// Plain Kubernetes Deployment.
    RawDeployment,
}

/// Defaults are the workshop's form (see `DeployForm::default`).
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Model deployment name (a Kubernetes name: lower case, digits, '-').
    #[arg(long, default_value_t = DeployForm::default().name)]
    pub name: String,
    /// Namespace (data science project); omitted from the YAML when not given.
    #[arg(long)]
    pub namespace: Option<String>,
    /// Serving runtime of the ServingRuntime object (the form's "Serving runtime").
    #[arg(long, value_enum, default_value = "ovms")]
    pub runtime: RuntimeArg,
    /// Model framework name.
    #[arg(long, default_value_t = DeployForm::default().format)]
    pub format: String,
    /// Model framework version.
    #[arg(long, default_value_t = DeployForm::default().format_version)]
    pub format_version: String,
    /// Number of model server replicas (the predictor's minReplicas and maxReplicas; at least 1).
    #[arg(long, default_value_t = DeployForm::default().replicas)]
    pub replicas: u32,
    /// Model server size: the CPU and memory each replica requests and is limited to.
    #[arg(long, value_enum, default_value = "small")]
    pub size: SizeArg,
    /// Make the model available through an external route (the workshop's default).
    #[arg(long, overrides_with = "no_external_route")]
    pub external_route: bool,
    /// Keep the model inside the cluster.
    #[arg(long)]
    pub no_external_route: bool,
    /// Require token authentication.
    #[arg(long)]
    pub token_auth: bool,
    /// Service account whose token authorises requests (with --token-auth).
    #[arg(long, default_value_t = DeployForm::default().service_account)]
    pub service_account: String,
    /// Existing data connection holding the model (OpenShift AI names its secret
    /// `aws-connection-<name>`).
    #[arg(long, default_value_t = DeployForm::default().data_connection)]
    pub data_connection: String,
    /// Path of the model folder inside the data connection's bucket.
    #[arg(long, default_value_t = DeployForm::default().path)]
    pub path: String,
    /// How KServe runs the model server: serverless (Knative) or raw-deployment (a plain
    /// Kubernetes Deployment); the InferenceService's deploymentMode annotation.
    #[arg(long, value_enum, default_value = "serverless")]
    pub deployment_mode: DeploymentModeArg,
    /// OpenVINO Model Server image.
    #[arg(long, default_value_t = DeployForm::default().image)]
    pub image: String,
}

impl Args {
    pub fn form(&self) -> DeployForm {
        DeployForm {
            name: self.name.clone(),
            namespace: self.namespace.clone(),
            runtime: match self.runtime {
                RuntimeArg::Ovms => Runtime::Ovms,
            },
            format: self.format.clone(),
            format_version: self.format_version.clone(),
            replicas: self.replicas,
            size: match self.size {
                SizeArg::Small => Size::Small,
                SizeArg::Medium => Size::Medium,
                SizeArg::Large => Size::Large,
            },
            external_route: !self.no_external_route,
            token_auth: self.token_auth,
            service_account: self.service_account.clone(),
            data_connection: self.data_connection.clone(),
            path: self.path.clone(),
            deployment_mode: match self.deployment_mode {
                DeploymentModeArg::Serverless => DeploymentMode::Serverless,
                DeploymentModeArg::RawDeployment => DeploymentMode::RawDeployment,
            },
            image: self.image.clone(),
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    print!("{}", args.form().yaml()?);
    Ok(())
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

    fn form(flags: &[&str]) -> DeployForm {
        Cli::parse_from(std::iter::once("deploy").chain(flags.iter().copied())).args.form()
    }

    #[test]
    fn flags_default_to_the_workshop_form() {
        assert_eq!(form(&[]), DeployForm::default());
        assert!(form(&["--external-route"]).external_route);
        assert!(!form(&["--no-external-route"]).external_route);
        let f = form(&[
            "--name",
            "songs",
            "--replicas",
            "3",
            "--size",
            "medium",
            "--token-auth",
            "--deployment-mode",
            "raw-deployment",
        ]);
        assert_eq!((f.name.as_str(), f.replicas, f.size, f.token_auth), ("songs", 3, Size::Medium, true));
        assert_eq!(f.deployment_mode, DeploymentMode::RawDeployment);
    }
}
