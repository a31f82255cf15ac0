//! The book's chapter-3 GAN: fully connected generator and discriminator.
//!
//! G: z (+ label embedding) → Dense → LeakyReLU → … → Dense → tanh → image.
//! D: image (+ label embedding) → Dense → LeakyReLU → … → Dense → logit.

use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::tensor::{Device, Int, Tensor};

use super::{ModelConfig, embed};
use crate::data::ImageShape;
use crate::kernels::{self, Activation};

/// Fully connected generator.
#[derive(Module, Debug)]
pub struct MlpGenerator {
    /// Class embedding concatenated to z (conditional models only).
    pub label_embedding: Option<Embedding>,
    /// Hidden layers, each followed by LeakyReLU.
    pub hidden: Vec<Linear>,
    /// Last layer, followed by tanh.
    pub output: Linear,
    /// Negative slope of LeakyReLU.
    pub slope: f64,
    /// Output image shape `[channels, height, width]`.
    pub image: [usize; 3],
}

/// Fully connected discriminator.
#[derive(Module, Debug)]
pub struct MlpDiscriminator {
    /// Class embedding concatenated to the flattened image (conditional models only).
    pub label_embedding: Option<Embedding>,
    /// Hidden layers, each followed by LeakyReLU.
    pub hidden: Vec<Linear>,
    /// Last layer: one logit.
    pub output: Linear,
    /// Negative slope of LeakyReLU.
    pub slope: f64,
}

impl MlpGenerator {
    /// A generator for `z_dim` noise, `classes` labels (0 = unconditional) and `image`.
    pub fn new(
        config: &ModelConfig,
        z_dim: usize,
        classes: usize,
        image: ImageShape,
        device: &Device,
    ) -> Self {
        let label_embedding = (classes > 0)
            .then(|| EmbeddingConfig::new(classes, config.label_embedding).init(device));
        let mut width = z_dim
            + label_embedding
                .as_ref()
                .map_or(0, |_| config.label_embedding);
        let mut hidden = Vec::new();
        for &units in &config.mlp.generator_hidden {
            hidden.push(LinearConfig::new(width, units).init(device));
            width = units;
        }
        Self {
            label_embedding,
            hidden,
            output: LinearConfig::new(width, image.numel()).init(device),
            slope: config.leaky_slope,
            image: [image.channels, image.height, image.width],
        }
    }

    /// Fake images `[batch, C, H, W]` in [-1, 1] from noise `[batch, z_dim]`.
    pub fn forward(&self, noise: Tensor<2>, labels: Option<Tensor<1, Int>>) -> Tensor<4> {
        let [batch, _] = noise.dims();
        let mut x = embed(noise, self.label_embedding.as_ref(), labels); // [batch, z_dim + embedding]
        let hidden = Activation::LeakyRelu(self.slope);
        for layer in &self.hidden {
            x = kernels::linear(layer, x, hidden); // [batch, units]
        }
        let x = kernels::linear(&self.output, x, Activation::Tanh); // [batch, C*H*W]
        let [c, h, w] = self.image;
        x.reshape([batch, c, h, w])
    }
}

impl MlpDiscriminator {
    /// A discriminator for `classes` labels (0 = unconditional) and `image`.
    pub fn new(config: &ModelConfig, classes: usize, image: ImageShape, device: &Device) -> Self {
        let label_embedding = (classes > 0)
            .then(|| EmbeddingConfig::new(classes, config.label_embedding).init(device));
        let mut width = image.numel()
            + label_embedding
                .as_ref()
                .map_or(0, |_| config.label_embedding);
        let mut hidden = Vec::new();
        for &units in &config.mlp.discriminator_hidden {
            hidden.push(LinearConfig::new(width, units).init(device));
            width = units;
        }
        Self {
            label_embedding,
            hidden,
            output: LinearConfig::new(width, 1).init(device),
            slope: config.leaky_slope,
        }
    }

    /// Logits `[batch]` (real > 0 > fake) for images `[batch, C, H, W]`.
    pub fn forward(&self, images: Tensor<4>, labels: Option<Tensor<1, Int>>) -> Tensor<1> {
        let [batch, c, h, w] = images.dims();
        let x = images.reshape([batch, c * h * w]); // [batch, C*H*W]
        let mut x = embed(x, self.label_embedding.as_ref(), labels); // [batch, C*H*W + embedding]
        let hidden = Activation::LeakyRelu(self.slope);
        for layer in &self.hidden {
            x = kernels::linear(layer, x, hidden); // [batch, units]
        }
        kernels::linear(&self.output, x, Activation::Identity).reshape([batch]) // [batch]
    }
}
