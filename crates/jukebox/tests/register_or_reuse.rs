//! `ModelRegistry::register_or_reuse`, the notebooks' one call for "upload and register, or show
//! the version that is already there", against the embedded S3 server and registry: a second
//! version from its own folder leaves the first version's objects as they were; the same version
//! again uploads nothing; a new version from the folder another version was uploaded from goes to
//! the next free bucket folder, and pinning it to a used folder is refused before any upload.

mod common;

use std::collections::BTreeMap;

use jukebox::data::FEATURES;
use jukebox::evaluate::Metrics;
use jukebox::export;
use jukebox::prepare::{PreparedData, SplitOptions};
use jukebox::registry::{MetadataValue, ModelRegistry, ModelUpload, RegistryError};
use jukebox::storage::{Storage, StorageConfig};
use jukebox::train::{Learner, NeuralNetwork, Progress};
use jukebox_server::registry::RegistryConfig;
use jukebox_server::s3::S3Config;
use jukebox_server::server_thread::ServerThread;
use jukebox_testkit::files_below;

/// Every object of the bucket folder `prefix` and its bytes, read from the S3 server's files.
fn objects(s3_root: &std::path::Path, prefix: &str) -> BTreeMap<String, Vec<u8>> {
    files_below(&s3_root.join("models").join(prefix))
}

/// The embedded S3 server (files under `<dir>/s3`) and registry, running while the servers are
/// held, with the storage settings and the registry client that reach them.
struct Servers {
    _s3: ServerThread,
    _registry: ServerThread,
    s3_root: std::path::PathBuf,
    config: StorageConfig,
    registry: ModelRegistry,
}

fn start_servers(dir: &std::path::Path) -> Servers {
    let s3_root = dir.join("s3");
    let s3 = ServerThread::s3(S3Config::new(&s3_root, "key", "secret-key-1234").with_bucket("models")).unwrap();
    let registry_server = ServerThread::registry(RegistryConfig::new(dir.join("registry.db"))).unwrap();
    let config = StorageConfig::new(s3.url(), "key", "secret-key-1234", "us-east-1", "models");
    let registry = ModelRegistry::new(&registry_server.url());
    Servers { _s3: s3, _registry: registry_server, s3_root, config, registry }
}

#[test]
fn a_second_version_never_touches_the_first_ones_objects() {
    let dir = tempfile::tempdir().unwrap();
    let servers = start_servers(dir.path());
    let (s3_root, registry) = (&servers.s3_root, &servers.registry);
    let storage = Storage::connect(servers.config.clone()).unwrap();

    // Two models: the workshop's 13 features in folder 1, 12 in folder 2.
    let chart = common::chart();
    let repository = dir.path().join("models");
    let twelve: Vec<&str> = FEATURES.iter().copied().filter(|f| *f != "loudness").collect();
    for (folder, features) in [(1, FEATURES.to_vec()), (2, twelve)] {
        let data = PreparedData::new(&chart, &features, &SplitOptions::default()).unwrap();
        let model =
            NeuralNetwork { epochs: 1, progress: Progress::Silent, ..NeuralNetwork::default() }.fit(&data).unwrap();
        let metrics = Metrics::new(&model.test_report(&data).unwrap(), &model.training_info(&data));
        export::export(&model, &data, &metrics, &repository, folder).unwrap();
    }
    let upload = |folder: u64, version: &str| {
        ModelUpload::new(repository.join("jukebox").join(folder.to_string()), "jukebox", version)
    };

    let first = registry.register_or_reuse(&storage, &upload(1, "0.0.1")).unwrap();
    assert_eq!(first.name, "0.0.1");
    let before = objects(s3_root, "models/jukebox/1");
    assert!(before.contains_key("model.onnx"), "{:?}", before.keys().collect::<Vec<_>>());

    let second = registry.register_or_reuse(&storage, &upload(2, "0.0.2")).unwrap();
    assert_eq!(second.name, "0.0.2");
    let recorded = &second.custom_properties;
    assert_eq!(recorded["n_features"], MetadataValue::from(12));
    assert!(!format!("{:?}", recorded["features"]).contains("loudness"));

    // The same version again: the existing one, nothing uploaded.
    let again = registry.register_or_reuse(&storage, &upload(2, "0.0.2")).unwrap();
    assert_eq!(again.id, second.id);

    // A new version from folder 1 goes to the next free bucket folder, beside 0.0.1.
    let third = registry.register_or_reuse(&storage, &upload(1, "0.0.3")).unwrap();
    assert_eq!(third.name, "0.0.3");
    let artifact = registry.get_model_artifact("jukebox", "0.0.3").unwrap();
    assert_eq!(artifact.fields.storage_path.as_deref(), Some("models/jukebox/3"));
    assert!(artifact.fields.uri.unwrap().starts_with("s3://models/models/jukebox/3?endpoint="));
    assert_eq!(objects(s3_root, "models/jukebox/3"), before, "the same folder's bytes, stored apart");

    // Pinned to 0.0.1's folder: refused, naming both versions, nothing registered or uploaded.
    let error = registry.register_or_reuse(&storage, &upload(1, "0.0.4").bucket_folder(1)).unwrap_err();
    assert!(matches!(&error, RegistryError::FolderInUse { existing, .. } if existing == "version 0.0.1"), "{error}");
    let message = error.to_string();
    assert!(
        message.starts_with("models/jukebox/1/ holds version 0.0.1 of jukebox: version 0.0.4 cannot be stored there"),
        "{message}"
    );
    assert!(registry.get_model_version("jukebox", "0.0.4").unwrap_err().is_not_found());
    assert!(storage.list(".jukebox-staging/").unwrap().is_empty(), "staged uploads are removed");

    assert_eq!(objects(s3_root, "models/jukebox/1"), before, "0.0.1's objects are byte for byte as they were");
}

#[test]
fn concurrent_saves_of_different_versions_from_one_folder_number_take_different_folders() {
    let dir = tempfile::tempdir().unwrap();
    let servers = start_servers(dir.path());
    let (s3_root, config, registry) = (&servers.s3_root, &servers.config, &servers.registry);
    // Two different models, each in a folder numbered 1: both would want bucket folder 1.
    let folders: Vec<std::path::PathBuf> = ["a", "b"]
        .iter()
        .enumerate()
        .map(|(i, side)| {
            let root = dir.path().join(side);
            jukebox_testkit::make_model(&root, "1", &(7 + i).to_string());
            root.join("jukebox/1")
        })
        .collect();
    for round in 0..5 {
        let saves: Vec<_> = folders
            .iter()
            .enumerate()
            .map(|(i, folder)| {
                let (registry, config, folder) = (registry.clone(), config.clone(), folder.clone());
                std::thread::spawn(move || {
                    let storage = Storage::connect(config).unwrap();
                    let version = format!("0.{round}.{i}");
                    registry
                        .upload_and_register(&storage, &ModelUpload::new(&folder, "jukebox", &version))
                        .map(|s| s.upload.prefix)
                })
            })
            .collect();
        let prefixes: Vec<String> = saves.into_iter().map(|s| s.join().unwrap().unwrap()).collect();
        println!("round {round}: 0.{round}.0 -> {}, 0.{round}.1 -> {}", prefixes[0], prefixes[1]);
        assert_ne!(prefixes[0], prefixes[1], "round {round}: two versions share a bucket folder");
        for (i, prefix) in prefixes.iter().enumerate() {
            let version = format!("0.{round}.{i}");
            let recorded = registry.get_model_artifact("jukebox", &version).unwrap().fields.storage_path.unwrap();
            assert_eq!(format!("{recorded}/"), *prefix, "{version}: the registry points elsewhere");
            assert_eq!(
                objects(s3_root, prefix.trim_end_matches('/')),
                files_below(&folders[i]),
                "{version}: other bytes"
            );
        }
    }
}
