//! One module per subcommand: argument parsing and printing only; the work lives in libraries.

pub mod data;
pub mod train;
pub mod refine;
pub mod save;
pub mod up;
pub mod deploy;
pub mod request;
pub mod serve;
