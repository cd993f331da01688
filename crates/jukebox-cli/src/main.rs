//! `jukebox`: the command-line face of the workshop. Every subcommand is a thin shell over the
//! `jukebox` (stages) and `jukebox-server` (embedded servers) libraries.

mod cmd;
mod limits;
mod logging;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "jukebox", version, about = "The data-science inner loop on Spotify chart data, in Rust")]
struct Cli {
    /// Log line format: text, or json (one object per line) for log collectors. What is logged:
    /// RUST_LOG (default info), e.g. RUST_LOG=debug or RUST_LOG=info,jukebox_server::access=off.
    #[arg(long, global = true, value_enum, default_value_t = logging::LogFormat::Text, value_name = "FORMAT")]
    log_format: logging::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Load the chart data and print a summary of it.
    Data(cmd::data::Args),
    /// Prepare, train (network and baselines), export as ONNX and evaluate the export.
    Train(cmd::train::Args),
    /// Sweep a grid of network settings on a grouped split, choose by validation score, export and register the choice.
    Refine(cmd::refine::Args),
    /// Start the local S3 server, model registry and model server; print their environment.
    ///
    /// Their log goes to <STATE_DIR>/logs/jukebox-up.log (appended to across restarts; one line
    /// per event, each request's access line naming its service, method, path, status, bytes and
    /// duration); warnings and errors also go to standard error. RUST_LOG sets what is logged
    /// (default info; debug adds the libraries' own events), --log-format json writes JSON lines.
    /// Prometheus metrics: GET /metrics on the model server and the registry,
    /// GET /minio/v2/metrics/cluster on S3.
    Up(cmd::up::Args),
    /// Upload a model folder to S3 and register it in the model registry.
    Save(cmd::save::Args),
    /// Serve models over KServe v2 (local folder, s3:// prefix or registry entry).
    Serve(cmd::serve::Args),
    /// Ask a model server which country a song would chart in.
    Request(cmd::request::Args),
    /// Print the OpenShift AI InferenceService and OpenVINO ServingRuntime YAML for a model.
    Deploy(cmd::deploy::Args),
}

fn main() -> std::process::ExitCode {
    // `{:#}` prints the error and its causes on one line; returning the error from main would
    // print it with `{:?}`, which adds a backtrace whenever RUST_BACKTRACE is set.
    let cli = Cli::parse();
    // `jukebox up` serves for as long as the workbench is open: its log goes to a file under the
    // state folder. Every other command logs to standard error.
    let log_file = match &cli.command {
        Command::Up(args) => Some(logging::up_log_file(&args.state_dir)),
        _ => None,
    };
    // Held until main returns: dropping it writes the log lines still buffered.
    let _log = match logging::init(cli.log_format, log_file.as_deref()) {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("jukebox: error: {error:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match run(cli.command) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("jukebox: error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Data(args) => cmd::data::run(args),
        Command::Train(args) => cmd::train::run(args),
        Command::Refine(args) => cmd::refine::run(args),
        Command::Up(args) => cmd::up::run(args),
        Command::Save(args) => cmd::save::run(args),
        Command::Serve(args) => cmd::serve::run(args),
        Command::Request(args) => cmd::request::run(args),
        Command::Deploy(args) => cmd::deploy::run(args),
    }
}
