//! Issue 10 on the model registry, against a real server on 127.0.0.1: a web page cannot write
//! (content type, Host/Origin), the optional write token, artifacts bound to the version in the
//! path, field length limits, and no 500 from SQLite constraints.

mod common;

use common::{raw, request, Running};
use jukebox_server::registry::RegistryConfig;

const API: &str = "/api/model_registry/v1";

fn start(token: Option<&str>) -> (tempfile::TempDir, Running) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = RegistryConfig::new(dir.path().join("registry.db"));
    config.token = token.map(str::to_string);
    let server = Running::registry(config);
    (dir, server)
}

fn post_json(server: &Running, path: &str, body: &serde_json::Value, extra: &[&str]) -> (u16, String) {
    let mut headers = vec!["Content-Type: application/json"];
    headers.extend_from_slice(extra);
    raw(server.addr, &request("POST", &format!("{API}{path}"), &headers, body.to_string().as_bytes()))
}

fn id_of(answer: &str) -> String {
    let json: serde_json::Value = serde_json::from_str(answer.trim()).unwrap_or_else(|e| panic!("{e}: {answer}"));
    json["id"].as_str().unwrap().to_string()
}

fn model_count(server: &Running) -> usize {
    let (status, body) = raw(server.addr, &common::get_request(&format!("{API}/registered_models")));
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<serde_json::Value>(body.trim()).unwrap()["items"].as_array().unwrap().len()
}

#[test]
fn a_web_page_cannot_write_cross_origin_or_as_text_plain() {
    let (_dir, server) = start(None);
    let body = br#"{"name":"from-a-web-page"}"#;
    // What a page on another site can send without a CORS preflight.
    let (status, answer) = raw(
        server.addr,
        &request(
            "POST",
            &format!("{API}/registered_models"),
            &["Content-Type: text/plain", "Origin: http://evil.example"],
            body,
        ),
    );
    assert_eq!(status, 403, "{answer}");
    assert!(answer.contains("evil.example"), "{answer}");
    // Same origin rules aside, text/plain is not JSON: 415.
    let (status, answer) =
        raw(server.addr, &request("POST", &format!("{API}/registered_models"), &["Content-Type: text/plain"], body));
    assert_eq!(status, 415, "{answer}");
    // DNS rebinding: a foreign Host is refused even for reads.
    let (status, answer) =
        raw(server.addr, &request("GET", &format!("{API}/registered_models"), &["Host: evil.example:8080"], b""));
    assert_eq!(status, 403, "{answer}");
    assert_eq!(model_count(&server), 0, "a refused write created a record");
    // A loopback page (JupyterLab on localhost) and plain clients still work.
    let (status, answer) = raw(
        server.addr,
        &request(
            "POST",
            &format!("{API}/registered_models"),
            &["Content-Type: application/json; charset=utf-8", "Origin: http://localhost:8888", "Host: localhost:1"],
            body,
        ),
    );
    assert_eq!(status, 201, "{answer}");
    assert_eq!(model_count(&server), 1);
}

#[test]
fn with_a_token_writes_need_it_and_reads_do_not() {
    let (_dir, server) = start(Some("registry-secret"));
    let body = serde_json::json!({"name": "jukebox"});
    let (status, answer) = post_json(&server, "/registered_models", &body, &[]);
    assert_eq!(status, 401, "{answer}");
    let (status, answer) = post_json(&server, "/registered_models", &body, &["Authorization: Bearer wrong"]);
    assert_eq!(status, 401, "{answer}");
    assert_eq!(model_count(&server), 0);
    let (status, answer) = post_json(&server, "/registered_models", &body, &["Authorization: Bearer registry-secret"]);
    assert_eq!(status, 201, "{answer}");
    assert_eq!(model_count(&server), 1);
}

#[test]
fn an_artifact_cannot_be_rewritten_through_another_versions_path() {
    let (_dir, server) = start(None);
    let (_, model) = post_json(&server, "/registered_models", &serde_json::json!({"name": "jukebox"}), &[]);
    let model = id_of(&model);
    let version = |name: &str| {
        let (status, answer) =
            post_json(&server, "/model_versions", &serde_json::json!({"name": name, "registeredModelId": model}), &[]);
        assert_eq!(status, 201, "{answer}");
        id_of(&answer)
    };
    let (v1, v2) = (version("1"), version("2"));
    let good_uri = "s3://models/models/jukebox/1?endpoint=http://127.0.0.1:9000";
    // POSTs `fields` (plus the artifact type) to version `version`'s artifacts; answers the body
    // after checking the status.
    let post_artifact = |version: &str, mut fields: serde_json::Value, expected: u16| {
        fields["artifactType"] = "model-artifact".into();
        let (status, answer) = post_json(&server, &format!("/model_versions/{version}/artifacts"), &fields, &[]);
        assert_eq!(status, expected, "{answer}");
        answer
    };
    let artifact = id_of(&post_artifact(&v1, serde_json::json!({"name": "jukebox", "uri": good_uri}), 201));
    post_artifact(&v2, serde_json::json!({"id": artifact, "uri": "s3://evil/x?endpoint=http://attacker"}), 404);
    let (status, stored) = raw(server.addr, &common::get_request(&format!("{API}/model_artifacts/{artifact}")));
    assert_eq!(status, 200);
    assert!(stored.contains(good_uri) && !stored.contains("attacker"), "{stored}");
    // Under its own version the same update works.
    post_artifact(&v1, serde_json::json!({"id": artifact, "description": "checked"}), 200);
}

#[test]
fn oversized_fields_and_bodies_are_refused_and_auto_names_never_collide() {
    let (_dir, server) = start(None);
    let long_name = "n".repeat(1_000_000); // 1 MB: under the body limit, over the name limit
    let (status, answer) = post_json(&server, "/registered_models", &serde_json::json!({"name": long_name}), &[]);
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("`name`") && answer.contains("256"), "{answer}");
    let (status, answer) =
        post_json(&server, "/registered_models", &serde_json::json!({"name": "n".repeat(3 * 1024 * 1024)}), &[]);
    assert_eq!(status, 413, "{answer}");
    let (status, answer) = post_json(
        &server,
        "/registered_models",
        &serde_json::json!({"name": "ok", "description": "d".repeat(70 * 1024)}),
        &[],
    );
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("`description`"), "{answer}");
    assert_eq!(model_count(&server), 0);

    // An unnamed artifact whose automatic name ("artifact-<id>") is already taken.
    let (_, model) = post_json(&server, "/registered_models", &serde_json::json!({"name": "jukebox"}), &[]);
    let (_, version) = post_json(
        &server,
        "/model_versions",
        &serde_json::json!({"name": "1", "registeredModelId": id_of(&model)}),
        &[],
    );
    let path = format!("/model_versions/{}/artifacts", id_of(&version));
    let (status, answer) =
        post_json(&server, &path, &serde_json::json!({"name": "artifact-2", "artifactType": "model-artifact"}), &[]);
    assert_eq!(status, 201, "{answer}");
    let (status, answer) = post_json(&server, &path, &serde_json::json!({"artifactType": "model-artifact"}), &[]);
    assert_eq!(status, 201, "{answer}");
    assert!(answer.contains("\"artifact-2-2\""), "{answer}");
}
