//! Shapes shared by every stage: one image ([`ImageShape`]) and the activations between two
//! layers ([`FeatureShape`]), with the size limit that keeps sizes read from a model file inside
//! `usize`.
//!
//! They sit at the bottom of the crate (they use nothing else in it) because every stage, the
//! errors and the trainer (`trainer::data::ImageShape`) name them.

use std::fmt;

/// Shape of one generated image, channels first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ImageShape {
    /// Number of channels (1 for grayscale, 3 for RGB).
    pub channels: usize,
    /// Height in pixels.
    pub height: usize,
    /// Width in pixels.
    pub width: usize,
}

impl ImageShape {
    /// Number of values in one image (`channels * height * width`), saturating at
    /// `usize::MAX` (a checked spec or model has at most [`MAX_VALUES_PER_SAMPLE`]).
    pub fn numel(&self) -> usize {
        self.checked_numel().unwrap_or(usize::MAX)
    }

    /// `channels * height * width`, or `None` if it overflows.
    pub fn checked_numel(&self) -> Option<usize> {
        self.channels
            .checked_mul(self.height)?
            .checked_mul(self.width)
    }
}

/// The most values one sample may have in any activation of a generator (2^28, 1 GiB of f32),
/// the noise and the image included: far above any real generator, it keeps every size
/// computed from a model file well inside `usize` and refuses absurd shapes before anything is
/// allocated.
pub const MAX_VALUES_PER_SAMPLE: usize = 1 << 28;

impl fmt::Display for ImageShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}x{}", self.channels, self.height, self.width)
    }
}

/// The shape of the activations between two layers, batch dimension left out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeatureShape {
    /// `[N, features]`.
    Flat(usize),
    /// `[N, C, H, W]`.
    Map(ImageShape),
}

impl FeatureShape {
    /// Size of dimension 1 (features or channels), the axis BatchNorm normalises.
    pub fn dim1(&self) -> usize {
        match self {
            FeatureShape::Flat(f) => *f,
            FeatureShape::Map(s) => s.channels,
        }
    }

    /// Dimensions after the batch dimension.
    pub fn dims(&self) -> Vec<usize> {
        match self {
            FeatureShape::Flat(f) => vec![*f],
            FeatureShape::Map(s) => vec![s.channels, s.height, s.width],
        }
    }

    /// Values per sample (saturating at `usize::MAX`).
    pub fn numel(&self) -> usize {
        self.dims()
            .iter()
            .try_fold(1usize, |n, d| n.checked_mul(*d))
            .unwrap_or(usize::MAX)
    }
}

impl fmt::Display for FeatureShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FeatureShape::Flat(n) => write!(f, "[N, {n}]"),
            FeatureShape::Map(s) => write!(f, "[N, {}, {}, {}]", s.channels, s.height, s.width),
        }
    }
}
