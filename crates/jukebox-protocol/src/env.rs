//! The environment variables the workbench reads, one constant each. The clients (`jukebox`),
//! the servers (`jukebox-server`) and the `jukebox` command import them from here.
//!
//! The `AWS_*` names are OpenShift AI's data-connection variables: a workbench with a data
//! connection attached has them set, and `jukebox up` prints them for the embedded S3 server.

/// S3 endpoint URL of the data connection.
pub const AWS_S3_ENDPOINT: &str = "AWS_S3_ENDPOINT";
/// S3 access key of the data connection.
pub const AWS_ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
/// S3 secret key of the data connection.
pub const AWS_SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";
/// S3 region of the data connection.
pub const AWS_DEFAULT_REGION: &str = "AWS_DEFAULT_REGION";
/// Bucket of the data connection.
pub const AWS_S3_BUCKET: &str = "AWS_S3_BUCKET";
/// Name of the data connection: a registered artifact's storage key.
pub const STORAGE_KEY: &str = "JUKEBOX_STORAGE_KEY";

/// Model registry URL (the embedded one, or a cluster's REST route).
pub const REGISTRY_URL: &str = "JUKEBOX_REGISTRY_URL";
/// Bearer token for the model registry.
pub const REGISTRY_TOKEN: &str = "JUKEBOX_REGISTRY_TOKEN";
/// Model registry REST API version (`v1alpha3` for older registries).
pub const REGISTRY_API_VERSION: &str = "JUKEBOX_REGISTRY_API_VERSION";

/// KServe v2 model server URL.
pub const MODEL_URL: &str = "JUKEBOX_MODEL_URL";
/// Bearer token for the model server.
pub const MODEL_TOKEN: &str = "JUKEBOX_MODEL_TOKEN";
/// Most rows of one inference request (`--max-rows`).
pub const MAX_ROWS: &str = "JUKEBOX_MAX_ROWS";
/// Most tensor elements of one inference request (`--max-elements`).
pub const MAX_ELEMENTS: &str = "JUKEBOX_MAX_ELEMENTS";
/// Requests that may wait for inference (`--max-queued`).
pub const MAX_QUEUED: &str = "JUKEBOX_MAX_QUEUED";

/// Folder with the chart data (`song_properties.parquet`, `song_rankings.parquet`).
pub const DATA_DIR: &str = "JUKEBOX_DATA_DIR";
/// Cache folder for downloaded chart data.
pub const CACHE_DIR: &str = "JUKEBOX_CACHE_DIR";
/// Base URL the chart data is downloaded from.
pub const DATA_URL: &str = "JUKEBOX_DATA_URL";
/// State folder of `jukebox up` (S3 objects, registry database, credentials).
pub const STATE_DIR: &str = "JUKEBOX_STATE_DIR";
/// Ports of `jukebox up`'s servers.
pub const S3_PORT: &str = "JUKEBOX_S3_PORT";
pub const REGISTRY_PORT: &str = "JUKEBOX_REGISTRY_PORT";
pub const MODEL_PORT: &str = "JUKEBOX_MODEL_PORT";
/// S3 credentials `jukebox up` uses instead of making some up.
pub const S3_ACCESS_KEY: &str = "JUKEBOX_S3_ACCESS_KEY";
pub const S3_SECRET_KEY: &str = "JUKEBOX_S3_SECRET_KEY";

/// Set (to `1`) in the Rust kernel when its message relay (`kernel/kernel_relay.py`) listens:
/// a cell may then print live display lines (`jukebox::display::LiveDisplay`) that the relay turns
/// into Jupyter display updates.
pub const DISPLAY_UPDATES: &str = "JUKEBOX_DISPLAY_UPDATES";

/// What starts a live display line on a cell's standard output (not a variable: the line protocol
/// [`DISPLAY_UPDATES`] turns on). `jukebox::display::LiveDisplay` writes it and
/// `kernel/kernel_relay.py` reads the same prefix (its `MARKER`).
pub const LIVE_DISPLAY_MARKER: &str = "JUKEBOX_DISPLAY ";

/// Set in the Rust kernel when its message relay listens: the path of a file that exists while
/// the kernel is busy with a request (a cell runs). An interrupt that arrives when it does not
/// exist finds no cell to stop and changes nothing (`kernel/evcxr-kernel`, and the training
/// loop's SIGINT handler in the cell process).
pub const KERNEL_BUSY_FILE: &str = "JUKEBOX_KERNEL_BUSY_FILE";
