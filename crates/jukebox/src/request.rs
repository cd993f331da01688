//! Stage 4: ask a KServe v2 model server which country a song would chart in.
//!
//! This is what the workshop's request notebook does, step by step:
//!
//! 1. load the scaler and label encoder saved next to the model
//!    ([`ModelArtifacts::load`], from `<model>/<version>/artifacts/`, or
//!    [`ModelArtifacts::download`] for a registered version);
//! 2. take a song's 13 audio features, by name from the song_properties table
//!    ([`song_by_name`]) or as raw values ([`Song::from_features`]);
//! 3. scale them with the saved min/max and build the v2 request: 13 FP32 inputs named after
//!    the features, each of shape `[1, 1]` ([`InferenceClient::build_request`]);
//! 4. post it (optionally with a bearer token) and map the returned probabilities to country
//!    codes ([`Prediction`]: top country, top-k, an HTML table, an SVG bar chart).
//!
//! ## A prediction always names its version
//!
//! A model server answers `/v2/models/jukebox/infer` with whatever version it considers the
//! default, usually the newest. Scaling a song with version 1's scaler and letting version 2
//! answer gives a wrong prediction that looks right. So artifacts remember which served version
//! they belong to ([`ModelArtifacts::version`], [`ServedVersion`]: the model name and version
//! folder of `<model>/<version>/`, from the folder they were loaded from or the registry's
//! storage path they were downloaded from), and every request made with them asks for exactly
//! that version (`/v2/models/jukebox/versions/1/infer`). A client set to another version refuses
//! them ([`RequestError::VersionMismatch`]); artifacts that cannot say their version are refused
//! unless the client names one ([`RequestError::UnknownVersion`]).
//!
//! ```no_run
//! use jukebox::request::{model_url_from_env, InferenceClient, ModelArtifacts, Song};
//! let artifacts = ModelArtifacts::load("models/jukebox/1")?; // version folder 1 of `jukebox`
//! let client = InferenceClient::for_artifacts(&model_url_from_env(), &artifacts)?;
//! assert!(client.infer_url().ends_with("/v2/models/jukebox/versions/1/infer"));
//! let song = Song::from_features("demo", &[0.0, 200000.0, 0.6, 0.7, 5.0, -6.0, 1.0, 0.05, 0.1, 0.0, 0.1, 0.5, 120.0]);
//! let prediction = client.predict(&artifacts, &song)?;
//! println!("{} ({:.1}%)", prediction.top().0, prediction.top().1 * 100.0);
//! # Ok::<(), jukebox::request::RequestError>(())
//! ```
//!
//! The HTTP client is blocking (`ureq`) so notebook cells stay plain function calls.
//!
//! The module is in parts, one job each: [`error`], [`artifacts`] (the saved scaler and classes
//! and their version), [`song`] (what to ask about), [`client`] (the request and the HTTP call)
//! and [`prediction`] (the answer).

pub mod artifacts;
pub mod client;
pub mod error;
pub mod prediction;
pub mod song;

pub use artifacts::{ModelArtifacts, ServedVersion};
pub use client::{InferenceClient, RequestBody};
pub use error::RequestError;
pub use prediction::{Prediction, Predictions};
pub use song::{song_by_name, songs_by_name, Song};

/// `scaler.json` and `label_encoder.json`, as the model folder contract defines them: the
/// request path scales with the same rule as training.
pub use jukebox_protocol::model_folder::{LabelEncoder, Scaler};

/// Where the model server is: `JUKEBOX_MODEL_URL` when set (what `jukebox up` and `jukebox serve`
/// print, and what a cluster's data connection sets), else [`DEFAULT_MODEL_URL`].
pub fn model_url_from_env() -> String {
    std::env::var(jukebox_protocol::env::MODEL_URL)
        .ok()
        .filter(|url| !url.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_MODEL_URL.into())
}

/// `jukebox serve`'s default address.
pub const DEFAULT_MODEL_URL: &str = "http://127.0.0.1:8000";

/// A notebook's `endpoint` parameter: the model server at `endpoint`, or, when it is `""`, the
/// one the environment names ([`model_url_from_env`]).
pub fn model_url_or_env(endpoint: &str) -> String {
    let endpoint = endpoint.trim();
    if endpoint.is_empty() {
        model_url_from_env()
    } else {
        endpoint.to_string()
    }
}
