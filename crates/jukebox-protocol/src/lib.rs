//! Contracts shared by the jukebox clients (in the `jukebox` crate), the servers (in
//! `jukebox-server`) and the `jukebox` command, so all agree on one definition of every JSON
//! document and file name.
//!
//! - [`env`]: the names of the environment variables everything reads.
//! - [`html`]: the one HTML escaper of the notebook tables and the registry's web page.
//! - [`model_folder`]: the model folder (`<name>/<version>/model.onnx` and its artifacts), its
//!   scaler and label encoder files with their one scaling rule, and `s3://` locations.
//! - [`registry`]: the Kubeflow Model Registry REST API (registered models, versions, artifacts,
//!   typed custom properties).
//! - [`inference`]: the KServe v2 / Open Inference Protocol (model metadata, infer requests and
//!   responses).
//! - [`text`]: how counts are written for people to read (`1,234,567`), one rule for the
//!   network's summary, the notebooks' captions and the model server's refusals.
//! - [`version_table`]: the columns a model's versions are shown with, in a notebook and on the
//!   registry's web page.

pub mod env;
pub mod html;
pub mod inference;
pub mod model_folder;
pub mod registry;
pub mod text;
pub mod version_table;
