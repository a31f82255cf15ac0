//! The generator G(z) → x* and the discriminator D(x) → logit, in the two
//! architectures Gantry ships, unconditional or class-conditional.

mod dcgan;
mod mlp;

use burn::module::Module;
use burn::nn::Embedding;
use burn::tensor::{Device, Int, Tensor};
use serde::{Deserialize, Serialize};

pub use dcgan::{DcganDiscriminator, DcganGenerator, deconv, strided_conv};
pub use mlp::{MlpDiscriminator, MlpGenerator};

// The activations as the kernels compute them; see their docs for why these forms.
pub use crate::kernels::{leaky_relu, tanh};

use crate::data::ImageShape;

/// Which architecture to build.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// Fully connected G and D (the book's chapter 3).
    Mlp,
    /// Transposed-convolution G, convolution D, batch norm (the book's chapter 4).
    Dcgan,
}

impl std::fmt::Display for ModelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ModelKind::Mlp => "mlp",
            ModelKind::Dcgan => "dcgan",
        })
    }
}

/// Architecture settings; width and depth trade quality for edge cost.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// Which architecture to build.
    pub kind: ModelKind,
    /// Negative slope of every LeakyReLU.
    pub leaky_slope: f64,
    /// Width of the class embedding in conditional models.
    pub label_embedding: usize,
    /// Settings of the `mlp` architecture.
    pub mlp: MlpConfig,
    /// Settings of the `dcgan` architecture.
    pub dcgan: DcganConfig,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            kind: ModelKind::Mlp,
            leaky_slope: 0.01,
            label_embedding: 10,
            mlp: MlpConfig::default(),
            dcgan: DcganConfig::default(),
        }
    }
}

/// Layer widths of the `mlp` architecture; one entry per hidden layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MlpConfig {
    /// Hidden layer widths of G (the book: `[128]`).
    pub generator_hidden: Vec<usize>,
    /// Hidden layer widths of D (the book: `[128]`).
    pub discriminator_hidden: Vec<usize>,
}

impl Default for MlpConfig {
    fn default() -> Self {
        Self {
            generator_hidden: vec![128],
            discriminator_hidden: vec![128],
        }
    }
}

/// Channel counts of the `dcgan` architecture.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DcganConfig {
    /// G's feature maps: the projection's channels, then one entry per deconvolution
    /// before the output one (the book: `[256, 128, 64]`).
    pub generator_channels: Vec<usize>,
    /// D's stride-2 convolutions (the book: `[32, 64, 128]`).
    pub discriminator_channels: Vec<usize>,
}

impl Default for DcganConfig {
    fn default() -> Self {
        Self {
            generator_channels: vec![256, 128, 64],
            discriminator_channels: vec![32, 64, 128],
        }
    }
}

impl ModelConfig {
    /// Checks that the architecture can be built for `image`.
    pub fn validate(&self, image: ImageShape) -> Result<(), String> {
        if !(0.0..1.0).contains(&self.leaky_slope) {
            return Err(format!("leaky_slope {} is not in [0, 1)", self.leaky_slope));
        }
        if self.label_embedding == 0 || self.label_embedding > MAX_WIDTH {
            return Err(format!(
                "label_embedding {} is not between 1 and {MAX_WIDTH}",
                self.label_embedding
            ));
        }
        let mut widths = self
            .mlp
            .generator_hidden
            .iter()
            .chain(&self.mlp.discriminator_hidden)
            .chain(&self.dcgan.generator_channels)
            .chain(&self.dcgan.discriminator_channels);
        if let Some(w) = widths.find(|&&w| w > MAX_WIDTH) {
            return Err(format!(
                "layer width {w} is above the supported {MAX_WIDTH}"
            ));
        }
        let lists = [
            &self.mlp.generator_hidden,
            &self.mlp.discriminator_hidden,
            &self.dcgan.generator_channels,
            &self.dcgan.discriminator_channels,
        ];
        if lists.iter().any(|l| l.len() > MAX_LAYERS) {
            return Err(format!(
                "more than {MAX_LAYERS} layers per network are not supported"
            ));
        }
        match self.kind {
            ModelKind::Mlp => {
                if self.mlp.generator_hidden.contains(&0)
                    || self.mlp.discriminator_hidden.contains(&0)
                {
                    return Err("mlp layer widths must be at least 1".into());
                }
            }
            ModelKind::Dcgan => {
                if !image.height.is_multiple_of(4) || !image.width.is_multiple_of(4) {
                    return Err(format!(
                        "dcgan needs an image height and width divisible by 4, got {}x{}",
                        image.height, image.width
                    ));
                }
                if self.dcgan.generator_channels.is_empty()
                    || self.dcgan.discriminator_channels.is_empty()
                {
                    return Err(
                        "dcgan needs at least one generator and one discriminator channel count"
                            .into(),
                    );
                }
                if self.dcgan.generator_channels.contains(&0)
                    || self.dcgan.discriminator_channels.contains(&0)
                {
                    return Err("dcgan channel counts must be at least 1".into());
                }
            }
        }
        Ok(())
    }
}

/// The widest layer (units or channels) a config may ask for.
pub const MAX_WIDTH: usize = 65_536;
/// The most hidden layers per network a config may ask for.
pub const MAX_LAYERS: usize = 64;

/// The generator, in whichever architecture the run uses.
#[derive(Module, Debug)]
pub enum Generator {
    /// Fully connected.
    Mlp(MlpGenerator),
    /// Transposed convolutions.
    Dcgan(DcganGenerator),
}

/// The discriminator, in whichever architecture the run uses.
#[derive(Module, Debug)]
pub enum Discriminator {
    /// Fully connected.
    Mlp(MlpDiscriminator),
    /// Strided convolutions.
    Dcgan(DcganDiscriminator),
}

impl Generator {
    /// Builds G for `z_dim` noise, `classes` labels (0 = unconditional) and `image`.
    pub fn new(
        config: &ModelConfig,
        z_dim: usize,
        classes: usize,
        image: ImageShape,
        device: &Device,
    ) -> Self {
        match config.kind {
            ModelKind::Mlp => Self::Mlp(MlpGenerator::new(config, z_dim, classes, image, device)),
            ModelKind::Dcgan => {
                Self::Dcgan(DcganGenerator::new(config, z_dim, classes, image, device))
            }
        }
    }

    /// Fake images `[batch, C, H, W]` in [-1, 1] from noise `[batch, z_dim]`.
    pub fn forward(&self, noise: Tensor<2>, labels: Option<Tensor<1, Int>>) -> Tensor<4> {
        match self {
            Self::Mlp(g) => g.forward(noise, labels),
            Self::Dcgan(g) => g.forward(noise, labels),
        }
    }
}

impl Discriminator {
    /// Builds D for `classes` labels (0 = unconditional) and `image`.
    pub fn new(config: &ModelConfig, classes: usize, image: ImageShape, device: &Device) -> Self {
        match config.kind {
            ModelKind::Mlp => Self::Mlp(MlpDiscriminator::new(config, classes, image, device)),
            ModelKind::Dcgan => {
                Self::Dcgan(DcganDiscriminator::new(config, classes, image, device))
            }
        }
    }

    /// True when D normalises by batch statistics, so real and fake batches must be
    /// classified in separate passes.
    pub fn has_batch_norm(&self) -> bool {
        match self {
            Self::Mlp(_) => false,
            Self::Dcgan(d) => !d.norms.is_empty(),
        }
    }

    /// Logits `[batch]`: D(x) = sigmoid(logit) is the probability that x is real.
    pub fn forward(&self, images: Tensor<4>, labels: Option<Tensor<1, Int>>) -> Tensor<1> {
        match self {
            Self::Mlp(d) => d.forward(images, labels),
            Self::Dcgan(d) => d.forward(images, labels),
        }
    }
}

/// `[batch, n]` → `[batch, n + embedding]`: appends the labels' embedding when the
/// model is conditional, returns `x` unchanged otherwise.
fn embed(x: Tensor<2>, embedding: Option<&Embedding>, labels: Option<Tensor<1, Int>>) -> Tensor<2> {
    match (embedding, labels) {
        (Some(embedding), Some(labels)) => {
            let [batch, _] = x.dims();
            let e = embedding.forward(labels.unsqueeze_dim::<2>(1)); // [batch, 1, embedding]
            let [_, _, width] = e.dims();
            Tensor::cat(vec![x, e.reshape([batch, width])], 1)
        }
        _ => x,
    }
}
