//! `jukebox::request` against the real model server (started in-process on 127.0.0.1:0 with a
//! bearer token) on a workshop-shaped model, with songs from the shared sample data: the
//! answer matches ONNX Runtime run in-process on the same scaled features, and every failure
//! (unknown song, wrong or missing token, unknown model, unreachable server) is a clear error.

mod common;

use std::path::Path;
use std::process::Command;

use jukebox::data::Dataset;
use jukebox::display::ToHtml;
use jukebox::registry::{ModelRegistry, ModelUpload};
use jukebox::request::{song_by_name, InferenceClient, ModelArtifacts, RequestError, ServedVersion, Song};
use jukebox::storage::{Storage, StorageConfig};
use jukebox_runtime::{InputTensor, OnnxModel};
use jukebox_server::server_thread::ServerThread;

const TOKEN: &str = "workshop-token";

/// Writes models/jukebox/1 with the runtime crate's maker; returns the repository folder.
fn model_repository() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let maker = Path::new(env!("CARGO_MANIFEST_DIR")).join("../jukebox-runtime/tests/peers/make_model.py");
    let out = Command::new(common::python()).arg(maker).arg(dir.path()).output().unwrap();
    assert!(
        out.status.success(),
        "make_model.py failed (pip install onnx numpy): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

/// Starts the model server on its own thread (stopped when dropped), once it is ready.
fn start_server(repository: &Path) -> ServerThread {
    let mut config = jukebox_server::model_server::ModelServerConfig::new(repository);
    config.token = Some(TOKEN.to_string());
    let server = ServerThread::model_server(config).unwrap();
    // Ready once the health route answers.
    let url = server.url();
    let agent = ureq::Agent::new_with_defaults();
    for _ in 0..200 {
        if agent.get(format!("{url}/v2/health/ready")).call().is_ok() {
            return server;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("model server at {url} never became ready");
}

/// The probabilities ONNX Runtime gives in-process for these songs.
fn in_process(model: &OnnxModel, artifacts: &ModelArtifacts, songs: &[Song]) -> Vec<Vec<f32>> {
    let scaled: Vec<Vec<f32>> = songs.iter().map(|s| artifacts.scaler.transform(&s.features)).collect();
    let columns: Vec<Vec<f32>> = (0..13).map(|f| scaled.iter().map(|row| row[f]).collect()).collect();
    let inputs: Vec<InputTensor> =
        artifacts.scaler.features.iter().zip(&columns).map(|(n, c)| InputTensor::column(n, c)).collect();
    let out = model.run(&inputs).unwrap();
    out[0].data.chunks(artifacts.labels.classes.len()).map(<[f32]>::to_vec).collect()
}

#[test]
fn songs_from_the_sample_data_are_predicted_like_onnxruntime_does() {
    let repository = model_repository();
    let version = repository.path().join("jukebox/1");
    let artifacts = ModelArtifacts::load(&version).unwrap();
    assert_eq!(artifacts.scaler.features.len(), 13);
    assert_eq!(artifacts.labels.classes.len(), 72);
    let server = start_server(repository.path());
    let url = server.url();
    let client = InferenceClient::new(&url, "jukebox").with_token(TOKEN);
    let data = common::sample_dir();
    let dataset =
        Dataset::from_files(&data.join("song_properties.parquet"), &data.join("song_rankings_sample.parquet")).unwrap();
    let features = &artifacts.scaler.features;

    let song = song_by_name(&dataset.properties, "Not Like Us", features).unwrap();
    assert_eq!(song.artists.as_deref(), Some("Kendrick Lamar"));

    // Artifacts from `jukebox/1` ask for version 1, never the server's default.
    let body = client.request_body(&artifacts, std::slice::from_ref(&song)).unwrap();
    assert!(body.url.ends_with("/v2/models/jukebox/versions/1/infer"), "{}", body.url);

    // The request is the workshop's: 13 FP32 inputs named after the features, each [1, 1].
    let request = client.build_request(&artifacts, std::slice::from_ref(&song)).unwrap();
    let body = serde_json::to_value(&request).unwrap();
    let inputs = body["inputs"].as_array().unwrap();
    assert_eq!(inputs.len(), 13);
    for (input, name) in inputs.iter().zip(features) {
        assert_eq!(input["name"], name.as_str());
        assert_eq!(input["shape"], serde_json::json!([1, 1]));
        assert_eq!(input["datatype"], "FP32");
        let v = input["data"][0].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&v), "{name} scaled to {v}");
    }
    assert_eq!(body.as_object().unwrap().len(), 1, "only `inputs`, as the workshop sends: {body}");

    let model = OnnxModel::load(version.join("model.onnx")).unwrap();
    let prediction = client.predict(&artifacts, &song).unwrap();
    assert_eq!(prediction.model.as_ref().map(ToString::to_string).as_deref(), Some("jukebox version 1"));
    assert!(prediction.table(5).caption.unwrap().ends_with("answered by jukebox version 1"));
    let expected = &in_process(&model, &artifacts, std::slice::from_ref(&song))[0];
    let max_diff = prediction.probabilities.iter().zip(expected).map(|(p, e)| (p.1 - e).abs()).fold(0f32, f32::max);
    assert!(max_diff < 1e-6, "server and in-process ONNX Runtime differ by {max_diff}");
    let argmax = expected.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
    assert_eq!(prediction.top().0, artifacts.labels.classes[argmax]);
    let top3 = prediction.top_k(3);
    assert_eq!(top3[0].0, prediction.top().0);
    assert!(top3[0].1 >= top3[1].1 && top3[1].1 >= top3[2].1);
    let total: f32 = prediction.probabilities.iter().map(|p| p.1).sum();
    assert!((total - 1.0).abs() < 1e-4);
    assert!(prediction.to_html().contains(prediction.top().0));
    assert_eq!(prediction.table(5).height(), 5);
    let chart = prediction.chart().unwrap();
    assert!(chart.svg.contains("<svg") && chart.svg.contains(prediction.top().0), "bar chart names the countries");

    // A batch in one request gives the same answers as one request per song.
    let songs: Vec<Song> = ["Not Like Us", "Espresso"]
        .iter()
        .map(|n| song_by_name(&dataset.properties, n, features).unwrap())
        .chain([Song::from_features("raw", &[1.0, 180000.0, 0.7, 0.6, 2.0, -5.0, 1.0, 0.1, 0.2, 0.0, 0.1, 0.4, 128.0])])
        .collect();
    let batch = client.predict_batch(&artifacts, &songs).unwrap();
    let expected = in_process(&model, &artifacts, &songs);
    for ((p, e), song) in batch.0.iter().zip(&expected).zip(&songs) {
        assert_eq!(p.song, song.name);
        let single = client.predict(&artifacts, song).unwrap();
        for ((a, b), c) in p.probabilities.iter().zip(&single.probabilities).zip(e) {
            assert!((a.1 - b.1).abs() < 1e-6 && (a.1 - c).abs() < 1e-6);
        }
    }
    assert_eq!(batch.table().height(), 3);

    // Failures name what is wrong.
    match song_by_name(&dataset.properties, "Espress", features) {
        Err(RequestError::UnknownSong { name, suggestions }) => {
            assert_eq!(name, "Espress");
            assert!(suggestions.contains(&"Espresso".to_string()), "{suggestions:?}");
        }
        other => panic!("expected UnknownSong, got {other:?}"),
    }
    let no_token = InferenceClient::new(&url, "jukebox");
    match no_token.predict(&artifacts, &song) {
        Err(RequestError::Http { status: 401, message, .. }) => assert!(message.contains("token"), "{message}"),
        other => panic!("expected 401, got {other:?}"),
    }
    match InferenceClient::new(&url, "jukebox").with_token("wrong").predict(&artifacts, &song) {
        Err(RequestError::Http { status: 401, .. }) => {}
        other => panic!("expected 401, got {other:?}"),
    }
    match InferenceClient::new(&url, "jukebox-v9").with_token(TOKEN).predict(&artifacts, &song) {
        Err(e @ RequestError::Http { status: 404, .. }) => assert!(e.to_string().contains("jukebox-v9"), "{e}"),
        other => panic!("expected 404, got {other:?}"),
    }
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    match InferenceClient::new(&format!("http://{closed}"), "jukebox").predict(&artifacts, &song) {
        Err(e @ RequestError::Unreachable { .. }) => assert!(e.to_string().contains(&closed.to_string()), "{e}"),
        other => panic!("expected Unreachable, got {other:?}"),
    }
    let short = Song::from_features("short", &[1.0, 2.0]);
    assert!(matches!(
        client.predict(&artifacts, &short),
        Err(RequestError::FeatureCount { actual: 2, expected: 13, .. })
    ));
}

#[test]
fn missing_artifacts_are_named() {
    let err = ModelArtifacts::load("/nonexistent/jukebox/1").unwrap_err();
    assert!(err.to_string().contains("/nonexistent/jukebox/1/scaler.json"), "{err}");
}

/// `with_version_of` addresses the version folder of the artifact's storage path; an artifact
/// without a storage path, or whose path ends in no version folder, is a typed error.
#[test]
fn the_served_version_is_the_folder_of_the_artifacts_storage_path() {
    let artifact = |path: Option<&str>| -> jukebox::registry::ModelArtifact {
        serde_json::from_value(serde_json::json!({"id": "3", "name": "jukebox", "storagePath": path})).unwrap()
    };
    let client = || InferenceClient::new("http://127.0.0.1:1", "jukebox");
    let versioned = client().with_version_of(&artifact(Some("models/jukebox/2/"))).unwrap();
    assert!(versioned.infer_url().ends_with("/v2/models/jukebox/versions/2/infer"), "{}", versioned.infer_url());
    let not_stored = client().with_version_of(&artifact(None)).err();
    assert!(matches!(&not_stored, Some(RequestError::NotStored { name }) if name == "jukebox"), "{not_stored:?}");
    let empty = client().with_version_of(&artifact(Some(""))).err();
    assert!(matches!(&empty, Some(RequestError::NotStored { .. })), "{empty:?}");
    let no_folder = client().with_version_of(&artifact(Some("models/jukebox/latest"))).err();
    assert!(
        matches!(&no_folder, Some(RequestError::NoVersionFolder { name, path }) if name == "jukebox" && path == "models/jukebox/latest"),
        "{no_folder:?}"
    );
}

/// A song given by its raw feature values (no data files needed).
fn raw_song() -> Song {
    Song::from_features("raw", &[1.0, 180000.0, 0.7, 0.6, 2.0, -5.0, 1.0, 0.1, 0.2, 0.0, 0.1, 0.4, 128.0])
}

/// Artifacts know the version folder they came from; a request made with them names it, and a
/// client set to another version, or artifacts that cannot say theirs, are refused.
#[test]
fn artifacts_know_their_version_and_a_client_set_to_another_refuses_them() {
    let root = tempfile::tempdir().unwrap();
    jukebox_testkit::make_model(root.path(), "1", "7");
    let version_dir = root.path().join("jukebox/1");
    let url = "http://127.0.0.1:1";
    for dir in [version_dir.clone(), version_dir.join("artifacts")] {
        let artifacts = ModelArtifacts::load(&dir).unwrap();
        assert_eq!(artifacts.version, Some(ServedVersion { model: "jukebox".into(), folder: 1 }), "{dir:?}");
        let client = InferenceClient::for_artifacts(url, &artifacts).unwrap();
        assert_eq!(client.infer_url(), format!("{url}/v2/models/jukebox/versions/1/infer"));
        assert_eq!(artifacts.client(url).unwrap().infer_url(), client.infer_url());
    }
    let artifacts = ModelArtifacts::load(&version_dir).unwrap();

    // A client set to version 2 will not scale with version 1's artifacts: nothing is sent.
    let other = InferenceClient::new(url, "jukebox").with_version("2");
    for result in [other.predict(&artifacts, &raw_song()).err(), other.request_body(&artifacts, &[raw_song()]).err()] {
        match result {
            Some(e @ RequestError::VersionMismatch { artifacts: 1, .. }) => {
                let text = e.to_string();
                assert!(text.contains("version 1 of model \"jukebox\"") && text.contains("version 2"), "{text}");
            }
            other => panic!("expected VersionMismatch, got {other:?}"),
        }
    }
    // A client that names no version asks for the artifacts' own.
    let unnamed = InferenceClient::new(url, "jukebox");
    assert!(unnamed.infer_url_for(&artifacts).unwrap().ends_with("/versions/1/infer"));

    // Artifacts copied to a folder that names no version cannot say which version they are.
    let loose = root.path().join("copied-artifacts");
    std::fs::create_dir_all(&loose).unwrap();
    for file in ["scaler.json", "label_encoder.json"] {
        std::fs::copy(version_dir.join("artifacts").join(file), loose.join(file)).unwrap();
    }
    let unknown = ModelArtifacts::load(&loose).unwrap();
    assert_eq!(unknown.version, None);
    match InferenceClient::for_artifacts(url, &unknown).err() {
        Some(e @ RequestError::UnknownVersion { .. }) => {
            assert!(e.to_string().contains("copied-artifacts") && e.to_string().contains("with_version"), "{e}")
        }
        other => panic!("expected UnknownVersion, got {other:?}"),
    }
    assert!(matches!(unnamed.predict(&unknown, &raw_song()), Err(RequestError::UnknownVersion { .. })));
    // Unless the caller names the version.
    let named = InferenceClient::new(url, "jukebox").with_version("1");
    assert!(named.request_body(&unknown, &[raw_song()]).unwrap().url.ends_with("/versions/1/infer"));

    assert_eq!(ServedVersion::of_path("models/jukebox/2/"), Some(ServedVersion { model: "jukebox".into(), folder: 2 }));
    assert_eq!(ServedVersion::of_path("models/jukebox/latest"), None);
    assert_eq!(ServedVersion::of_path("2"), None, "a version folder needs its model folder");
}

/// The workshop's path with two registered versions, as notebooks 3 to 5 run it: both versions
/// uploaded to S3 and registered, the model server serving the bucket's folder. Each version's
/// downloaded artifacts ask for their own version by URL, and each answer is that version's
/// model's (ONNX Runtime on the same folder, in-process), while the server's default answers with
/// version 2.
#[test]
fn two_registered_versions_each_answer_with_their_own_model() {
    const ACCESS: &str = "jukebox";
    const SECRET: &str = "jukebox-secret";
    let state = tempfile::tempdir().unwrap();
    let trained = tempfile::tempdir().unwrap();
    jukebox_testkit::make_model(trained.path(), "1", "7");
    jukebox_testkit::make_model(trained.path(), "2", "8");

    let s3 = ServerThread::s3(
        jukebox_server::s3::S3Config::new(state.path().join("s3"), ACCESS, SECRET).with_bucket("models"),
    )
    .unwrap();
    let registry_server =
        ServerThread::registry(jukebox_server::registry::RegistryConfig::new(state.path().join("registry.db")))
            .unwrap();
    let storage = Storage::connect(StorageConfig::new(s3.url(), ACCESS, SECRET, "us-east-1", "models")).unwrap();
    let registry = ModelRegistry::new(&registry_server.url());
    for (folder, name) in [("1", "0.0.1"), ("2", "0.0.2")] {
        registry
            .upload_and_register(
                &storage,
                &ModelUpload::new(trained.path().join("jukebox").join(folder), "jukebox", name),
            )
            .unwrap();
    }
    // What `jukebox up` serves: the bucket's `models/` folder.
    let mut config = jukebox_server::model_server::ModelServerConfig::new(state.path().join("s3/models/models"));
    config.token = None;
    let server = ServerThread::model_server(config).unwrap();
    let url = server.url();

    let song = raw_song();
    let mut answers = Vec::new();
    for (folder, name) in [(1, "0.0.1"), (2, "0.0.2")] {
        let artifact = registry.get_model_artifact("jukebox", name).unwrap();
        // Version 1 into a folder of ours, version 2 into the default folder.
        let artifacts = if folder == 1 {
            ModelArtifacts::download(&storage, &artifact, state.path().join(format!("downloaded/jukebox-{name}")))
                .unwrap()
        } else {
            let default = ModelArtifacts::download_dir(&storage, &artifact).unwrap();
            assert!(default.ends_with(format!("models/jukebox/{folder}")), "{}", default.display());
            let fetched = ModelArtifacts::fetch(&storage, &artifact).unwrap();
            assert!(fetched.dir.starts_with(&default), "{}", fetched.dir.display());
            fetched
        };
        assert_eq!(artifacts.version, Some(ServedVersion { model: "jukebox".into(), folder }), "{name}");
        let client = InferenceClient::for_artifacts(&url, &artifacts).unwrap();
        assert_eq!(client.infer_url(), format!("{url}/v2/models/jukebox/versions/{folder}/infer"));
        client.wait_until_ready(std::time::Duration::from_secs(30)).unwrap();
        let prediction = client.predict(&artifacts, &song).unwrap();
        let model = OnnxModel::load(trained.path().join(format!("jukebox/{folder}/model.onnx"))).unwrap();
        let expected = &in_process(&model, &artifacts, std::slice::from_ref(&song))[0];
        let diff = prediction.probabilities.iter().zip(expected).map(|(p, e)| (p.1 - e).abs()).fold(0f32, f32::max);
        assert!(diff < 1e-6, "{name}: the server's answer differs from version {folder}'s model by {diff}");
        answers.push(prediction);
    }
    let differ = answers[0].probabilities.iter().zip(&answers[1].probabilities).any(|(a, b)| (a.1 - b.1).abs() > 1e-4);
    assert!(differ, "the two versions' models give different answers, so a mix-up would show");

    // Why the version must be named: the unversioned URL is answered by the newest version.
    let artifacts_1 = ModelArtifacts::load(trained.path().join("jukebox/1")).unwrap();
    let request =
        InferenceClient::new(&url, "jukebox").build_request(&artifacts_1, std::slice::from_ref(&song)).unwrap();
    let default = InferenceClient::new(&url, "jukebox").infer(&request).unwrap();
    assert_eq!(default.model_version.as_deref(), Some("2"));
}
