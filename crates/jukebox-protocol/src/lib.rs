//! Wire types shared by the jukebox clients (in the `jukebox` crate) and servers (in
//! `jukebox-server`), so both ends agree on one definition of every JSON document.
//!
//! - [`registry`]: the Kubeflow Model Registry REST API (registered models, versions, artifacts,
//!   typed custom properties).
//! - [`inference`]: the KServe v2 / Open Inference Protocol (model metadata, infer requests and
//!   responses).

pub mod inference;
pub mod registry;
