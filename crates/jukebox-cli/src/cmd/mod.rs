//! One module per subcommand: argument parsing and printing only; the work lives in libraries.

pub mod data;
pub mod deploy;
pub mod refine;
pub mod request;
pub mod save;
pub mod serve;
pub mod train;
pub mod up;
