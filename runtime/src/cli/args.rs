//! Option groups and value enums that more than one subcommand uses.
//!
//! Each group is a clap `#[derive(Args)]` struct that the subcommands `#[command(flatten)]`, so
//! an option shared by several subcommands is defined, documented and converted in one place
//! and reads the same in every `--help`.

use clap::{Args, ValueEnum};
use runtime::engine::tract::Precision;
use runtime::int8::quantize::Form;

/// `--precision` for the subcommands that load one generator and run it (`generate`, `info`).
///
/// `bench` has its own `--precision` (it selects which rows to time rather than how to run) but
/// takes the same [`PrecisionArg`] values.
#[derive(Args, Clone, Copy, Debug)]
pub struct PrecisionOpt {
    /// Arithmetic: f32, int8 (an f32 model is quantized in memory with the `runtime quantize`
    /// defaults), or auto (time both here at load and keep the faster; -v shows the choice).
    /// Default: as the file is stored.
    #[arg(long, value_enum)]
    pub precision: Option<PrecisionArg>,
}

impl PrecisionOpt {
    /// The library's precision, `None` for "as the file is stored".
    pub fn get(self) -> Option<Precision> {
        self.precision.map(Into::into)
    }
}

/// `--force` for the subcommands that write `--out`.
#[derive(Args, Clone, Copy, Debug)]
pub struct ForceOpt {
    /// Replace --out if it already exists.
    #[arg(long)]
    pub force: bool,
}

/// The values of every `--precision` option.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum PrecisionArg {
    // No doc comments on the variants: clap would show them in `--help` as value descriptions.
    F32,
    Int8,
    Auto,
}

impl From<PrecisionArg> for Precision {
    fn from(p: PrecisionArg) -> Precision {
        match p {
            PrecisionArg::F32 => Precision::F32,
            PrecisionArg::Int8 => Precision::Int8,
            PrecisionArg::Auto => Precision::Auto,
        }
    }
}

/// The values of the `--form` options (`quantize --form`, `bench --form` and `--ort-form`).
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum FormArg {
    // No doc comments on the variants (see `PrecisionArg`); `runtime quantize --help`
    // describes the forms.
    Integer,
    Qlinear,
    Qdq,
}

impl From<FormArg> for Form {
    fn from(f: FormArg) -> Form {
        match f {
            FormArg::Integer => Form::Integer,
            FormArg::Qlinear => Form::Qlinear,
            FormArg::Qdq => Form::Qdq,
        }
    }
}
