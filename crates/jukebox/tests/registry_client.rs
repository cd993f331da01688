//! `jukebox::registry::ModelRegistry` against the embedded registry server, cross-checked with
//! the official Python client: ours reads what Python wrote, Python reads what ours wrote (on
//! both API versions), and every failure arrives as the right typed error.
//!
//! Interpreters: env `JUKEBOX_PYTHON` (default `<workspace>/.venv/bin/python`, packages in
//! `kernel/requirements-test.txt`) and `JUKEBOX_PYTHON_MR037` (default
//! `<workspace>/.venv-mr037/bin/python`, `kernel/requirements-mr037.txt`). The peer script is the
//! registry server's: `crates/jukebox-server/tests/peers/registry_peer.py`.

use std::path::Path;

use jukebox::display::ToHtml;
use jukebox::registry::{ApiVersion, MetadataValue, ModelRegistry, RegisterModel, RegistryError};
use jukebox_server::registry::RegistryConfig;
use jukebox_server::server_thread::ServerThread;
use jukebox_testkit::{registry_spec as spec, run_registry_peer};

/// The registry server on `database`, on its own thread; stopped when dropped.
fn start_registry(database: &Path) -> ServerThread {
    ServerThread::registry(RegistryConfig::new(database)).expect("the registry server did not start")
}

/// The registration `spec` describes, made with our client.
fn request_from(spec: &serde_json::Value) -> RegisterModel {
    let text = |key: &str| spec[key].as_str().unwrap().to_owned();
    RegisterModel::new(text("name"), text("version"), text("uri"))
        .description(text("description"))
        .author(text("author"))
        .owner(text("owner"))
        .model_format(text("model_format_name"), text("model_format_version"))
        .storage(text("storage_key"), text("storage_path"))
        .metadata_from_json(&spec["metadata"])
        .unwrap()
}

#[test]
fn our_client_reads_what_the_python_client_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_registry(&dir.path().join("registry.db"));
    let spec = spec("jukebox");
    run_registry_peer(
        &jukebox_testkit::venv_python("JUKEBOX_PYTHON", ".venv", "kernel/requirements-test.txt"),
        "register",
        &server.url(),
        &spec,
    );

    let registry = ModelRegistry::new(&server.url());
    let model = registry.get_registered_model("jukebox").unwrap();
    assert_eq!(model.name, "jukebox");
    assert_eq!(model.owner.as_deref(), Some("team-jukebox"));
    let version = registry.get_model_version("jukebox", "1").unwrap();
    assert_eq!(version.name, "1");
    assert_eq!(version.registered_model_id, model.id);
    assert_eq!(version.author.as_deref(), Some("ada"));
    assert_eq!(version.description.as_deref(), Some("dense net, 30 epochs"));
    let metadata = &version.custom_properties;
    assert_eq!(metadata.len(), 4, "{metadata:?}");
    assert_eq!(metadata["accuracy"], MetadataValue::Double { double_value: 0.342 });
    assert_eq!(metadata["epochs"], MetadataValue::Int { int_value: 30 });
    assert_eq!(metadata["converged"], MetadataValue::Bool { bool_value: true });
    assert_eq!(metadata["framework"], MetadataValue::String { string_value: "jukebox-nn".into() });
    let artifact = registry.get_model_artifact("jukebox", "1").unwrap();
    let f = &artifact.fields;
    assert_eq!(artifact.artifact_type, "model-artifact");
    assert_eq!(f.name.as_deref(), Some("jukebox"));
    assert_eq!(f.uri.as_deref(), spec["uri"].as_str());
    assert_eq!(f.model_format_name.as_deref(), Some("onnx"));
    assert_eq!(f.model_format_version.as_deref(), Some("1"));
    assert_eq!(f.storage_key.as_deref(), Some("workshop-models"));
    assert_eq!(f.storage_path.as_deref(), Some("models/jukebox/1"));

    let table = registry.list_model_versions("jukebox").unwrap();
    assert_eq!(table.rows.len(), 1);
    assert_eq!(table.rows[0].artifacts, vec![artifact]);
}

#[test]
fn the_python_clients_read_what_our_client_wrote_on_both_api_versions() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_registry(&dir.path().join("registry.db"));

    let v1 = spec("written-by-rust");
    let registered = ModelRegistry::new(&server.url()).register_model(&request_from(&v1)).unwrap();
    assert_eq!(registered.version.registered_model_id, registered.model.id);
    run_registry_peer(
        &jukebox_testkit::venv_python("JUKEBOX_PYTHON", ".venv", "kernel/requirements-test.txt"),
        "verify",
        &server.url(),
        &v1,
    );

    let v1alpha3 = spec("written-by-rust-v1alpha3");
    ModelRegistry::new(&server.url())
        .with_api_version(ApiVersion::V1Alpha3)
        .register_model(&request_from(&v1alpha3))
        .unwrap();
    let python037 =
        jukebox_testkit::venv_python("JUKEBOX_PYTHON_MR037", ".venv-mr037", "kernel/requirements-mr037.txt");
    let out = run_registry_peer(&python037, "verify", &server.url(), &v1alpha3);
    assert!(out.contains("base path /api/model_registry/v1alpha3,"), "{out}");
}

#[test]
fn failures_are_typed_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_registry(&dir.path().join("registry.db"));
    let registry = ModelRegistry::new(&server.url()).with_author("ada");
    let first = registry
        .register_model(&RegisterModel::new("jukebox", "1", "s3://models/jukebox/1").metadata("accuracy", 0.3))
        .unwrap();

    let err = registry.get_registered_model("no-such-model").unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(err.to_string().contains("\"no-such-model\""), "{err}");
    let err = registry.get_model_version("jukebox", "7").unwrap_err();
    assert!(matches!(err, RegistryError::NotFound { .. }), "{err}");

    let err = registry.register_model(&RegisterModel::new("jukebox", "1", "s3://elsewhere")).unwrap_err();
    match &err {
        RegistryError::AlreadyExists { model, existing } => {
            assert_eq!(model, "jukebox");
            assert_eq!(existing.id, first.version.id);
            assert_eq!(existing.custom_properties["accuracy"], MetadataValue::from(0.3));
        }
        other => panic!("expected AlreadyExists, got {other}"),
    }
    assert!(err.to_string().contains("already has a version \"1\""), "{err}");

    // Nothing changed: still one model, one version, pointing at the first URI.
    assert_eq!(registry.list_registered_models().unwrap().len(), 1);
    let table = registry.list_model_versions("jukebox").unwrap();
    assert_eq!(table.rows.len(), 1);
    assert_eq!(table.rows[0].artifacts[0].fields.uri.as_deref(), Some("s3://models/jukebox/1"));

    // A server refusal carries its status and message.
    let with_base_path = ModelRegistry::new(&format!("{}/api/model_registry/v1", server.url())).with_author("ada");
    let err = with_base_path.update_model_version("424242", &Default::default()).unwrap_err();
    match &err {
        RegistryError::Http { status: 404, message, .. } => assert!(message.contains("424242"), "{message}"),
        other => panic!("expected HTTP 404, got {other}"),
    }

    // Nothing listening: a port that was just free.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let err = ModelRegistry::new(&format!("http://{free}")).get_registered_model("jukebox").unwrap_err();
    assert!(matches!(err, RegistryError::Unreachable { .. }), "{err}");
    assert!(err.to_string().contains(&free.to_string()), "{err}");
}

#[test]
fn the_version_table_tracks_runs_with_metrics_as_columns() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_registry(&dir.path().join("registry.db"));
    let registry = ModelRegistry::new(&server.url());
    for (version, accuracy, epochs) in [("1", 0.082, 2), ("2", 0.342, 30)] {
        registry
            .register_model(
                &RegisterModel::new("jukebox", version, format!("s3://models/jukebox/{version}"))
                    .metadata("accuracy", accuracy)
                    .metadata("epochs", epochs),
            )
            .unwrap();
    }
    let table = registry.list_model_versions("jukebox").unwrap();
    assert_eq!(table.rows.iter().map(|r| r.version.name.as_str()).collect::<Vec<_>>(), ["1", "2"]);
    assert_eq!(table.metric("accuracy"), [Some(0.082), Some(0.342)]);
    let html = table.to_html();
    assert!(html.starts_with("<table") && html.ends_with("</table>"), "{html}");
    // Accuracy is a column (4 decimals); epochs and the URI are folded into the row's details.
    assert!(html.contains(">accuracy</th>") && html.contains(">0.3420</td>"), "{html}");
    assert!(
        html.contains(">epochs</th><td style=\"padding:2px 6px;text-align:left;vertical-align:top\">30</td>"),
        "{html}"
    );
    assert!(html.contains("s3://models/jukebox/2"), "{html}");
}
