//! One module per subcommand: argument parsing and printing only; the work lives in libraries.

pub mod data;
