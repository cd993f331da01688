//! The registry's web page (`GET /`): every registered model with a table of its versions,
//! laid out like the Model Registry page of the OpenShift AI dashboard. Plain HTML and CSS, no
//! JavaScript; all user text is escaped.
//!
//! The version table's first columns and the escaper are the protocol's
//! ([`VERSION_COLUMNS`], [`escape`]), shared with the notebook's version table; the page adds
//! each version's artifact formats and URIs and all its metadata.

use jukebox_protocol::html::escape as escape_html;
use jukebox_protocol::registry::{format_epoch_millis, CustomProperties};
use jukebox_protocol::version_table::VERSION_COLUMNS;

use super::store::ModelTree;

const STYLE: &str = "body{font-family:sans-serif;margin:2em;color:#151515}\
h1{font-weight:400}h2{margin-top:2em;font-weight:500}\
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #d2d2d2;padding:.5em;text-align:left;vertical-align:top}\
th{background:#f0f0f0}.muted{color:#6a6e73}code{font-size:.9em}";

/// The page's columns after the shared ones (their cells are already escaped HTML).
const PAGE_COLUMNS: [&str; 3] = ["format", "uri", "metadata"];

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
        let headings: Vec<&str> =
            VERSION_COLUMNS.iter().flat_map(|column| column.headings()).chain(PAGE_COLUMNS).collect();
        html.push_str("<table>\n<thead><tr>");
        for heading in &headings {
            html.push_str(&format!("<th>{}</th>", escape_html(heading)));
        }
        html.push_str("</tr></thead>\n<tbody>\n");
        if tree.versions.is_empty() {
            html.push_str(&format!("<tr><td colspan=\"{}\">No versions yet.</td></tr>\n", headings.len()));
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
            // The anchor a client links to (`ModelRegistry::web_page_of`).
            html.push_str(&format!("<tr class=\"version\" id=\"version-{}\">", escape_html(&version.id)));
            let shared = VERSION_COLUMNS.iter().flat_map(|column| column.cells(version)).map(|text| escape_html(&text));
            let own = [formats.join("<br>"), uris.join("<br>"), custom_properties_html(&version.custom_properties)];
            for cell in shared.chain(own) {
                html.push_str(&format!("<td>{cell}</td>"));
            }
            html.push_str("</tr>\n");
        }
        html.push_str("</tbody></table>\n</section>\n");
    }
    html.push_str("</body></html>\n");
    html
}

/// Custom properties as `key = value` lines inside one cell.
fn custom_properties_html(properties: &CustomProperties) -> String {
    properties
        .iter()
        .map(|(key, value)| format!("<code>{}</code> = {}", escape_html(key), escape_html(&value.to_string())))
        .collect::<Vec<_>>()
        .join("<br>")
}
