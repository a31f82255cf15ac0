//! The `runtime` binary's command line, one file per subcommand.
//!
//! The folder follows the binary's pipeline: [`adopt`] brings in a generator from another
//! framework, [`generate`] writes a data set, [`info`] inspects a
//! model, [`bench`] times the backends, [`quantize`] writes an int8 model and
//! [`export_firmware`] writes a blob for the `firmware` crate. Option groups that several
//! subcommands share live in [`args`] (defined and documented once, then
//! `#[command(flatten)]`ed), range-checked value parsers in [`parse`], and the helpers more than
//! one subcommand calls in [`common`]. `main.rs` only parses and dispatches.

pub mod adopt;
pub mod args;
pub mod bench;
pub mod common;
pub mod export_firmware;
pub mod generate;
pub mod info;
pub mod parse;
pub mod quantize;
