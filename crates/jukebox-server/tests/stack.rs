//! The stack `jukebox up` runs, started as a library: the three servers answer on their URLs, the
//! state folder's credentials are made up once (owner-only) and reused, the announced variables
//! are complete, a busy port is named with its server, and stopping ends `run_until` cleanly.

use std::time::Duration;

use jukebox_server::stack::{self, StackConfig, StackError, CREDENTIALS_FILE};

fn free_port_config(state: &std::path::Path) -> StackConfig {
    let mut config = StackConfig::new(state);
    (config.s3_port, config.registry_port, config.model_port) = (0, 0, 0);
    config
}

fn status_of(url: &str) -> u16 {
    let agent = ureq::Agent::new_with_config(ureq::Agent::config_builder().http_status_as_error(false).build());
    agent.get(url).call().map(|r| r.status().as_u16()).unwrap_or(0)
}

#[test]
fn the_stack_serves_announces_and_stops() {
    let state = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let running = runtime.block_on(stack::start(free_port_config(state.path()))).unwrap();
    let names: Vec<&str> = running.exports().iter().map(|(name, _)| *name).collect();
    assert_eq!(
        names,
        [
            "AWS_S3_ENDPOINT",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_DEFAULT_REGION",
            "AWS_S3_BUCKET",
            "JUKEBOX_REGISTRY_URL",
            "JUKEBOX_MODEL_URL"
        ]
    );
    assert!(running.shell_lines().contains(&format!("export JUKEBOX_MODEL_URL={}\n", running.model_url)));

    let (s3, registry, model) = (running.s3_url.clone(), running.registry_url.clone(), running.model_url.clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = runtime.spawn(running.run_until(async {
        let _ = stopped.await;
    }));
    let checks = std::thread::spawn(move || {
        (
            status_of(&format!("{model}/v2/health/ready")),
            status_of(&format!("{registry}/api/model_registry/v1/registered_models")),
            status_of(&format!("{s3}/models")),
        )
    })
    .join()
    .unwrap();
    // S3 refuses an unsigned request: an answer, not a connection error, is what counts here.
    assert_eq!(checks, (200, 200, 403), "model server, registry, S3");
    stop.send(()).unwrap();
    let result = runtime.block_on(async { tokio::time::timeout(Duration::from_secs(15), serving).await });
    result.expect("the stack did not stop within 15 s").unwrap().expect("the stack stopped with an error");

    // The made-up credentials are kept owner-only and reused by the next start.
    let path = state.path().join(CREDENTIALS_FILE);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let first = stack::state_credentials(state.path()).unwrap();
    assert!(first.0.starts_with("jukebox-") && first.1.len() == 40, "{first:?}");
    assert_eq!(stack::state_credentials(state.path()).unwrap(), first);
    std::fs::write(&path, "access_key=only\n").unwrap();
    assert!(matches!(stack::state_credentials(state.path()), Err(StackError::Credentials { .. })));
}

#[test]
fn a_busy_port_is_named_with_its_server() {
    let state = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut config = free_port_config(state.path());
    config.registry_port = taken.local_addr().unwrap().port();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let error = runtime.block_on(stack::start(config)).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(error.contains("model registry") && error.contains("is in use"), "{error}");
}
