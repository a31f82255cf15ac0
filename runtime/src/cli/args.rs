//! Option groups and value enums that more than one subcommand uses.
//!
//! Each group is a clap `#[derive(Args)]` struct that the subcommands `#[command(flatten)]`, so
//! an option shared by several subcommands is defined, documented and converted in one place
//! and reads the same in every `--help`.

use clap::{Args, ValueEnum};
use runtime::engine::tract::Precision;
use runtime::int8::quantize::Form;
use runtime::onnx::adopt::{Foreign, Layout, PixelRange};
use runtime::onnx::spec::ImageShape;

use super::parse::{parse_classes, parse_image, parse_pixel_range, parse_z_dim};

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

/// What to assume about a generator from another framework (PyTorch, TensorFlow via tf2onnx):
/// the flags of `runtime adopt`, which every subcommand that reads a model also takes, so a
/// foreign file runs without adopting it first.
#[derive(Args, Clone, Debug, Default)]
#[command(next_help_heading = "Generators from other frameworks (see `runtime adopt --help`)")]
pub struct ForeignArgs {
    /// Layout of the output image: nchw (PyTorch) or nhwc (TensorFlow). Default: read from the
    /// output's shape (the side of 1 to 4 values is the channels); flat outputs are taken as
    /// nchw order.
    #[arg(long, value_enum)]
    pub layout: Option<LayoutArg>,
    /// Range of the output values: -1,1, 0,1 or 0,255. Default: read from the final Tanh
    /// (-1,1) or Sigmoid (0,1).
    #[arg(long, value_parser = parse_pixel_range, allow_hyphen_values = true)]
    pub pixel_range: Option<PixelRange>,
    /// Image shape C,H,W (e.g. 1,28,28), needed when the output is flat ([N, 784]).
    #[arg(long, value_parser = parse_image)]
    pub image: Option<ImageShape>,
    /// Class names in label order (`--classes cat,dog` or `--classes cat dog`), or their count
    /// (`--classes 10` names them 0 to 9). Default: the rows of the embedding the label
    /// indexes.
    #[arg(long, num_args = 1.., value_delimiter = ',', value_parser = parse_classes_item)]
    pub classes: Option<Vec<String>>,
    /// Length of the noise vector, when the noise input's shape does not fix it.
    #[arg(long, value_parser = parse_z_dim)]
    pub z_dim: Option<usize>,
}

fn parse_classes_item(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("a class name cannot be empty".into());
    }
    Ok(s.to_string())
}

impl ForeignArgs {
    /// The library's description of what the flags say.
    pub fn get(&self) -> anyhow::Result<Foreign> {
        Ok(Foreign {
            layout: self.layout.map(Into::into),
            pixel_range: self.pixel_range,
            image: self.image,
            classes: self
                .classes
                .as_deref()
                .map(parse_classes)
                .transpose()
                .map_err(|e| anyhow::anyhow!("--classes: {e}"))?,
            z_dim: self.z_dim,
        })
    }
}

/// The values of `--layout`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LayoutArg {
    // No doc comments on the variants (see `PrecisionArg`).
    Nchw,
    Nhwc,
}

impl From<LayoutArg> for Layout {
    fn from(l: LayoutArg) -> Layout {
        match l {
            LayoutArg::Nchw => Layout::Nchw,
            LayoutArg::Nhwc => Layout::Nhwc,
        }
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
