//! The book's chapter-4 DCGAN: a transposed-convolution generator and a strided
//! convolution discriminator, both with batch normalisation.
//!
//! G: z (+ label embedding) → Dense(c0·h/4·w/4) → reshape → ConvT s2 → BN → LReLU
//!    → (ConvT s1 → BN → LReLU)* → ConvT s2 → tanh.
//! D: image (+ label plane) → Conv s2 → LReLU → (Conv s2 → BN → LReLU)* → Dense → logit.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{
    BatchNorm, BatchNormConfig, Embedding, EmbeddingConfig, Linear, LinearConfig, PaddingConfig2d,
};
use burn::tensor::{Device, Int, Tensor};

use super::{ModelConfig, embed, leaky_relu, tanh};
use crate::data::ImageShape;
use crate::kernels::{self, Activation};

/// Transposed-convolution generator.
#[derive(Module, Debug)]
pub struct DcganGenerator {
    /// Class embedding concatenated to z (conditional models only).
    pub label_embedding: Option<Embedding>,
    /// Dense projection of the noise to the first feature map.
    pub project: Linear,
    /// Transposed convolutions; all but the last are followed by BN and LeakyReLU.
    pub deconvs: Vec<ConvTranspose2d>,
    /// Batch norms after each deconvolution but the last.
    pub norms: Vec<BatchNorm>,
    /// Negative slope of LeakyReLU.
    pub slope: f64,
    /// First feature map `[channels, height, width]`.
    pub start: [usize; 3],
}

/// Strided-convolution discriminator.
#[derive(Module, Debug)]
pub struct DcganDiscriminator {
    /// Class embedding, reshaped into an extra input plane (conditional models only).
    pub label_embedding: Option<Embedding>,
    /// Stride-2 convolutions, each followed by LeakyReLU.
    pub convs: Vec<Conv2d>,
    /// Batch norms after each convolution but the first.
    pub norms: Vec<BatchNorm>,
    /// Last layer: one logit from the flattened features.
    pub output: Linear,
    /// Negative slope of LeakyReLU.
    pub slope: f64,
}

/// Output side of a kernel-3, stride-2, padding-1 convolution.
fn halve(side: usize) -> usize {
    (side + 2 - 3) / 2 + 1
}

impl DcganGenerator {
    /// A generator for `z_dim` noise, `classes` labels (0 = unconditional) and `image`,
    /// whose height and width must be multiples of 4.
    pub fn new(
        config: &ModelConfig,
        z_dim: usize,
        classes: usize,
        image: ImageShape,
        device: &Device,
    ) -> Self {
        let channels = &config.dcgan.generator_channels;
        let label_embedding = (classes > 0)
            .then(|| EmbeddingConfig::new(classes, config.label_embedding).init(device));
        let input = z_dim
            + label_embedding
                .as_ref()
                .map_or(0, |_| config.label_embedding);
        let start = [channels[0], image.height / 4, image.width / 4];
        let project = LinearConfig::new(input, start.iter().product()).init(device);

        let mut deconvs = Vec::new();
        let mut norms = Vec::new();
        for (i, pair) in channels.windows(2).enumerate() {
            // The first deconvolution doubles the map; the middle ones keep its size.
            let stride = if i == 0 { 2 } else { 1 };
            deconvs.push(deconv(pair[0], pair[1], stride, device));
            norms.push(BatchNormConfig::new(pair[1]).init(device));
        }
        let last = *channels.last().unwrap_or(&channels[0]);
        deconvs.push(deconv(last, image.channels, 2, device));
        Self {
            label_embedding,
            project,
            deconvs,
            norms,
            slope: config.leaky_slope,
            start,
        }
    }

    /// Fake images `[batch, C, H, W]` in [-1, 1] from noise `[batch, z_dim]`.
    pub fn forward(&self, noise: Tensor<2>, labels: Option<Tensor<1, Int>>) -> Tensor<4> {
        let [batch, _] = noise.dims();
        let x = embed(noise, self.label_embedding.as_ref(), labels); // [batch, z_dim + embedding]
        let [c, h, w] = self.start;
        let mut x =
            kernels::linear(&self.project, x, Activation::Identity).reshape([batch, c, h, w]); // [batch, c0, H/4, W/4]
        let last = self.deconvs.len() - 1;
        for (i, deconv) in self.deconvs.iter().enumerate() {
            x = kernels::conv_transpose2d(deconv, x); // [batch, c_i, ·, ·]
            if i < last {
                x = kernels::batch_norm_leaky_relu(&self.norms[i], x, self.slope);
            }
        }
        tanh(x) // [batch, C, H, W]
    }
}

/// Kernel-3 transposed convolution with TensorFlow's "same" output size (stride × input):
/// G's layer.
pub fn deconv(c_in: usize, c_out: usize, stride: usize, device: &Device) -> ConvTranspose2d {
    ConvTranspose2dConfig::new([c_in, c_out], [3, 3])
        .with_stride([stride, stride])
        .with_padding([1, 1])
        .with_padding_out([stride - 1, stride - 1])
        .init(device)
}

/// Kernel-3, stride-2 convolution with padding 1 (halves the map, see [`halve`]): D's layer.
pub fn strided_conv(c_in: usize, c_out: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([c_in, c_out], [3, 3])
        .with_stride([2, 2])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(device)
}

impl DcganDiscriminator {
    /// A discriminator for `classes` labels (0 = unconditional) and `image`.
    pub fn new(config: &ModelConfig, classes: usize, image: ImageShape, device: &Device) -> Self {
        let label_embedding = (classes > 0)
            .then(|| EmbeddingConfig::new(classes, image.height * image.width).init(device));
        let mut c_in = image.channels + usize::from(classes > 0);
        let (mut h, mut w) = (image.height, image.width);
        let mut convs = Vec::new();
        let mut norms = Vec::new();
        for (i, &c_out) in config.dcgan.discriminator_channels.iter().enumerate() {
            convs.push(strided_conv(c_in, c_out, device));
            if i > 0 {
                norms.push(BatchNormConfig::new(c_out).init(device));
            }
            c_in = c_out;
            (h, w) = (halve(h), halve(w));
        }
        Self {
            label_embedding,
            convs,
            norms,
            output: LinearConfig::new(c_in * h * w, 1).init(device),
            slope: config.leaky_slope,
        }
    }

    /// Logits `[batch]` (real > 0 > fake) for images `[batch, C, H, W]`.
    pub fn forward(&self, images: Tensor<4>, labels: Option<Tensor<1, Int>>) -> Tensor<1> {
        let [batch, _, h, w] = images.dims();
        let mut x = match (&self.label_embedding, labels) {
            (Some(embedding), Some(labels)) => {
                let plane = embedding
                    .forward(labels.unsqueeze_dim::<2>(1)) // [batch, 1, H*W]
                    .reshape([batch, 1, h, w]);
                Tensor::cat(vec![images, plane], 1) // [batch, C+1, H, W]
            }
            _ => images,
        };
        for (i, conv) in self.convs.iter().enumerate() {
            x = kernels::conv2d(conv, x); // [batch, c_i, ·, ·] (halved)
            x = match i {
                0 => leaky_relu(x, self.slope),
                _ => kernels::batch_norm_leaky_relu(&self.norms[i - 1], x, self.slope),
            };
        }
        let [_, c, h, w] = x.dims();
        let x = x.reshape([batch, c * h * w]);
        kernels::linear(&self.output, x, Activation::Identity).reshape([batch]) // [batch]
    }
}
