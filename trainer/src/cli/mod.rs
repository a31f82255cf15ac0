//! The `trainer` subcommands, one module each, so that `main.rs` is only the command
//! list and its dispatch: each module holds its subcommand's arguments (clap `Args`) and
//! the function that runs it.

pub mod args;
pub mod augment;
pub mod classifier;
pub mod classifier_onnx;
pub mod eval;
pub mod export;
mod quality;
pub mod train;
