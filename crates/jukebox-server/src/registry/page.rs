//! The registry's web page (`GET /`): every registered model with a table of its versions,
//! laid out like the Model Registry page of the OpenShift AI dashboard. Plain HTML and CSS, no
//! JavaScript; all user text is escaped.

use jukebox_protocol::registry::{format_epoch_millis, CustomProperties};

use super::store::ModelTree;

const STYLE: &str = "body{font-family:sans-serif;margin:2em;color:#151515}\
h1{font-weight:400}h2{margin-top:2em;font-weight:500}\
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #d2d2d2;padding:.5em;text-align:left;vertical-align:top}\
th{background:#f0f0f0}.muted{color:#6a6e73}code{font-size:.9em}";

/// Renders the page for `trees` (models in name order, versions in id order).
pub fn render(trees: &[ModelTree]) -> String {
    let mut html = String::new();
    html.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Model registry</title>");
    html.push_str(&format!("<style>{STYLE}</style></head><body>\n<h1>Model registry</h1>\n"));
    let version_count: usize = trees.iter().map(|t| t.versions.len()).sum();
    html.push_str(&format!(
        "<p class=\"muted\">{} registered model(s), {version_count} version(s).</p>\n",
        trees.len()
    ));
    if trees.is_empty() {
        html.push_str("<p>No models are registered yet.</p>\n");
    }
    for tree in trees {
        let model = &tree.model;
        html.push_str(&format!(
            "<section class=\"model\" id=\"model-{}\">\n<h2>{}</h2>\n",
            escape_html(&model.id),
            escape_html(&model.name)
        ));
        let mut facts = Vec::new();
        if let Some(description) = &model.description {
            facts.push(escape_html(description));
        }
        if let Some(owner) = &model.owner {
            facts.push(format!("Owner: {}", escape_html(owner)));
        }
        facts.push(format!(
            "Registered {}",
            escape_html(&format_epoch_millis(model.create_time_since_epoch.as_deref()))
        ));
        if !model.custom_properties.is_empty() {
            facts.push(custom_properties_html(&model.custom_properties));
        }
        html.push_str(&format!("<p class=\"muted\">{}</p>\n", facts.join(" &middot; ")));
        html.push_str(
            "<table>\n<thead><tr><th>Version</th><th>Author</th><th>Created</th><th>Format</th>\
             <th>URI</th><th>Metadata</th><th>State</th></tr></thead>\n<tbody>\n",
        );
        if tree.versions.is_empty() {
            html.push_str("<tr><td colspan=\"7\">No versions yet.</td></tr>\n");
        }
        for (version, artifacts) in &tree.versions {
            let formats: Vec<String> = artifacts
                .iter()
                .map(|a| {
                    let f = &a.fields;
                    let name = f.model_format_name.as_deref().unwrap_or("");
                    match f.model_format_version.as_deref() {
                        Some(v) if !v.is_empty() => format!("{} {}", escape_html(name), escape_html(v)),
                        _ => escape_html(name),
                    }
                })
                .collect();
            let uris: Vec<String> = artifacts
                .iter()
                .filter_map(|a| a.fields.uri.as_deref())
                .map(|uri| format!("<code class=\"uri\">{}</code>", escape_html(uri)))
                .collect();
            let state = version
                .state
                .and_then(|s| serde_json::to_value(s).ok())
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            html.push_str(&format!(
                "<tr class=\"version\" id=\"version-{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                // The anchor a client links to (`ModelRegistry::web_page_of`).
                escape_html(&version.id),
                escape_html(&version.name),
                escape_html(version.author.as_deref().unwrap_or("")),
                escape_html(&format_epoch_millis(version.create_time_since_epoch.as_deref())),
                formats.join("<br>"),
                uris.join("<br>"),
                custom_properties_html(&version.custom_properties),
                escape_html(&state),
            ));
        }
        html.push_str("</tbody></table>\n</section>\n");
    }
    html.push_str("</body></html>\n");
    html
}

/// Escapes user text for the page (the `html-escape` crate, as the notebooks' tables do).
fn escape_html(text: &str) -> String {
    html_escape::encode_quoted_attribute(text).into_owned()
}

/// Custom properties as `key = value` lines inside one cell.
fn custom_properties_html(properties: &CustomProperties) -> String {
    properties
        .iter()
        .map(|(key, value)| format!("<code>{}</code> = {}", escape_html(key), escape_html(&value.to_string())))
        .collect::<Vec<_>>()
        .join("<br>")
}
