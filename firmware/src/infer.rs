//! One generator forward pass into a caller-owned pixel buffer, with no heap.
//!
//! This exists to put the [`crate::kernels`] together in the one order the format
//! defines, with one buffer on the stack: a [`LayerInput`] (4 bytes per input, 2 KB),
//! into which the input codes are written, beside which the hidden layer writes its
//! codes, and which then holds the hidden codes for the output layer. Only a generator
//! with `z_dim + embed_dim + hidden / 4 > 512` needs a second buffer (`hidden` bytes)
//! for its hidden codes. Output channels are taken 16 at a time
//! ([`LayerInput::dot_rows`]), one kernel call per block.
//!
//! 1. input codes `x = concat(quantize(z), embedding[label])`;
//! 2. `h[c] = leaky_relu_requantize(bias1[c] + dot(x - x_zp, W1[c]), M1+[c], M1-[c], h_zp)`;
//! 3. `t[c] = requantize(bias2[c] + dot(h - h_zp, W2[c]), M2[c], t_zp)`;
//! 4. `pixel[c] = code_to_pixel(tanh_lut[t[c] + 128])`.
//!
//! The blob's biases have `-(zp + 128) Σ W[c]` folded in ([`crate::blob`]), so steps 2
//! and 3 run as `bias[c] + dot(x + 128, W[c])`: the same integers, and a dot product
//! of non-negative inputs, which the kernels need.

use thiserror::Error;

use crate::blob::Model;
use crate::dense::{LayerInput, Loaded};
use crate::kernels::{code_to_pixel, leaky_relu_requantize, quantize_f32, requantize, tanh_lookup};
use crate::noise::NormalSampler;
use crate::{MAX_HIDDEN, MAX_INPUT};

/// Output channels whose dot products are taken in one call of the kernel (their sums
/// wait in `4 * BLOCK` bytes of stack, two samples' in twice that).
const BLOCK: usize = 16;

/// Where the latent vector `z` comes from.
#[derive(Debug, Clone, Copy)]
pub enum Noise<'a> {
    /// Drawn from this seed ([`crate::noise`]) and quantized to the input scale.
    Seed(u64),
    /// A caller-supplied real `z` of length `z_dim`, quantized to the input scale.
    Float(&'a [f32]),
    /// Caller-supplied input codes of length `z_dim`, used as they are.
    Codes(&'a [i8]),
}

/// Why a sample could not be generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum GenerateError {
    /// The output buffer does not hold exactly one image.
    #[error("output buffer holds {found} pixels, the model produces {expected}")]
    OutputSize {
        /// `width * height` of the model.
        expected: usize,
        /// Length of the buffer given.
        found: usize,
    },
    /// A supplied `z` (or input-code vector) has the wrong length.
    #[error("input has {found} values, the model takes {expected}")]
    NoiseSize {
        /// The model's `z_dim`.
        expected: usize,
        /// Length of the `z` given.
        found: usize,
    },
    /// A hidden-code buffer has the wrong length.
    #[error("hidden buffer holds {found} codes, the model has {expected} hidden units")]
    HiddenSize {
        /// The model's hidden size.
        expected: usize,
        /// Length of the buffer given.
        found: usize,
    },
    /// A conditional model was called without a label.
    #[error("this generator is conditional on a label (0..{classes}): pass one")]
    LabelRequired {
        /// Number of labels.
        classes: usize,
    },
    /// An unconditional model was called with a label.
    #[error("this generator is unconditional: it takes no label")]
    LabelNotSupported,
    /// The label is not one of the model's classes.
    #[error("label {label} is out of range: the generator knows labels 0..{classes}")]
    LabelOutOfRange {
        /// The label given.
        label: usize,
        /// Number of labels.
        classes: usize,
    },
}

impl Model<'_> {
    /// Generates one sample into `pixels` (`width * height` gray levels, row-major,
    /// 0 = black), from `noise` and, for a conditional model, `label`.
    // Not inlined, so that `generate_pair`'s two calls share one frame and its 2 KB
    // layer input instead of holding two.
    #[inline(never)]
    pub fn generate(
        &self,
        noise: Noise<'_>,
        label: Option<usize>,
        pixels: &mut [u8],
    ) -> Result<(), GenerateError> {
        let mut x = LayerInput::new();
        // The codes are written straight into the layer input's storage.
        x.load_with(self.dims.input(), |codes| {
            self.fill_input_codes(noise, label, codes)
        })?;
        self.check_pixels(pixels)?;
        self.layers(&mut x, pixels);
        Ok(())
    }

    /// Generates two samples, `samples[k] = (noise, label)` into `pixels[k]`: two
    /// [`Model::generate`] calls, after both samples are checked, so that a bad second
    /// sample leaves both buffers untouched. (It once ran both samples through one
    /// multiplication on the Cortex-M0+; the single-sample kernel now pairs output
    /// channels instead and is faster than that was.)
    pub fn generate_pair(
        &self,
        samples: [(Noise<'_>, Option<usize>); 2],
        pixels: [&mut [u8]; 2],
    ) -> Result<(), GenerateError> {
        let [(noise_a, label_a), (noise_b, label_b)] = samples;
        let [pixels_a, pixels_b] = pixels;
        self.check_sample(noise_a, label_a)?;
        self.check_sample(noise_b, label_b)?;
        self.check_pixels(pixels_a)?;
        self.check_pixels(pixels_b)?;
        self.generate(noise_a, label_a, pixels_a)?;
        self.generate(noise_b, label_b, pixels_b)
    }

    /// Builds the input codes `concat(quantize(z), embedding[label])` into `out` and
    /// returns their count (`z_dim + embed_dim`).
    pub fn input_codes(
        &self,
        noise: Noise<'_>,
        label: Option<usize>,
        out: &mut [i8; MAX_INPUT],
    ) -> Result<usize, GenerateError> {
        // Dims were validated at parse time: z_dim + embed_dim <= MAX_INPUT.
        let n = self.dims.input();
        self.fill_input_codes(noise, label, out.get_mut(..n).unwrap_or(&mut []))?;
        Ok(n)
    }

    /// [`Model::input_codes`] into `out`, which holds `z_dim + embed_dim` codes.
    fn fill_input_codes(
        &self,
        noise: Noise<'_>,
        label: Option<usize>,
        out: &mut [i8],
    ) -> Result<(), GenerateError> {
        let embedding = self.check_sample(noise, label)?;
        let (z_part, rest) = out.split_at_mut(self.dims.z_dim.min(out.len()));
        let q = self.input;
        match noise {
            Noise::Seed(seed) => {
                let mut sampler = NormalSampler::new(seed);
                for code in z_part.iter_mut() {
                    *code = quantize_f32(sampler.next_normal(), q.scale, q.zero_point);
                }
            }
            Noise::Float(z) => {
                for (code, &x) in z_part.iter_mut().zip(z) {
                    *code = quantize_f32(x, q.scale, q.zero_point);
                }
            }
            Noise::Codes(codes) => {
                for (dst, &src) in z_part.iter_mut().zip(codes) {
                    *dst = src;
                }
            }
        }
        for (dst, &src) in rest.iter_mut().zip(embedding) {
            *dst = src;
        }
        Ok(())
    }

    /// Checks a sample's label and noise against the model and returns the label's
    /// embedding codes (none for an unconditional model).
    fn check_sample(&self, noise: Noise<'_>, label: Option<usize>) -> Result<&[i8], GenerateError> {
        let d = self.dims;
        let embedding = match (label, self.is_conditional()) {
            (None, false) => &[][..],
            (Some(_), false) => return Err(GenerateError::LabelNotSupported),
            (None, true) => return Err(GenerateError::LabelRequired { classes: d.classes }),
            (Some(label), true) => {
                self.embedding_row(label)
                    .ok_or(GenerateError::LabelOutOfRange {
                        label,
                        classes: d.classes,
                    })?
            }
        };
        let given = match noise {
            Noise::Seed(_) => d.z_dim,
            Noise::Float(z) => z.len(),
            Noise::Codes(codes) => codes.len(),
        };
        if given != d.z_dim {
            return Err(GenerateError::NoiseSize {
                expected: d.z_dim,
                found: given,
            });
        }
        Ok(embedding)
    }

    /// Runs the two layers on ready input codes (`z_dim + embed_dim` of them, e.g. from
    /// [`Model::input_codes`]) and writes the pixels.
    pub fn forward_codes(&self, input: &[i8], pixels: &mut [u8]) -> Result<(), GenerateError> {
        self.check_input(input)?;
        self.check_pixels(pixels)?;
        let mut x = LayerInput::new();
        x.load(input);
        self.layers(&mut x, pixels);
        Ok(())
    }

    /// Layer 1 alone: dense + fused LeakyReLU requantization of `z_dim + embed_dim`
    /// input codes into `hidden` codes (so a host reference can compare layer by layer).
    pub fn hidden_layer(&self, input: &[i8], hidden: &mut [i8]) -> Result<(), GenerateError> {
        self.check_input(input)?;
        self.check_hidden(hidden)?;
        let mut x = LayerInput::new();
        x.load(input);
        self.hidden_codes(x.loaded(), hidden);
        Ok(())
    }

    /// Layer 2 alone: dense + requantization + tanh table of `hidden` codes into gray
    /// levels.
    pub fn output_layer(&self, hidden: &[i8], pixels: &mut [u8]) -> Result<(), GenerateError> {
        self.check_hidden(hidden)?;
        self.check_pixels(pixels)?;
        let mut x = LayerInput::new();
        x.load(hidden);
        self.output_pixels(x.loaded(), pixels);
        Ok(())
    }

    /// Both layers on a loaded input, which is then overwritten by the hidden layer's;
    /// sizes were checked by the caller.
    fn layers(&self, x: &mut LayerInput, pixels: &mut [u8]) {
        let hidden = self.dims.hidden;
        let (input, spare) = x.split_spare();
        match spare.get_mut(..hidden) {
            // The hidden codes fit beside the input (`input + hidden / 4 <= CAPACITY`,
            // as for the shipped generators): no second buffer.
            Some(codes) => {
                self.hidden_codes(input, codes);
                x.load_spare(hidden);
            }
            None => self.hidden_through_buffer(x),
        }
        self.output_pixels(x.loaded(), pixels);
    }

    /// The hidden layer through a buffer of its own, for inputs too wide to leave room;
    /// apart so that only those generators pay its stack.
    #[inline(never)]
    fn hidden_through_buffer(&self, x: &mut LayerInput) {
        let mut hidden = [0i8; MAX_HIDDEN];
        let hidden = hidden.get_mut(..self.dims.hidden).unwrap_or(&mut []);
        self.hidden_codes(x.loaded(), hidden);
        x.load(hidden);
    }

    fn check_input(&self, input: &[i8]) -> Result<(), GenerateError> {
        let expected = self.dims.input();
        if input.len() == expected {
            Ok(())
        } else {
            Err(GenerateError::NoiseSize {
                expected,
                found: input.len(),
            })
        }
    }

    fn check_hidden(&self, hidden: &[i8]) -> Result<(), GenerateError> {
        let expected = self.dims.hidden;
        if hidden.len() == expected {
            Ok(())
        } else {
            Err(GenerateError::HiddenSize {
                expected,
                found: hidden.len(),
            })
        }
    }

    fn check_pixels(&self, pixels: &[u8]) -> Result<(), GenerateError> {
        let expected = self.dims.output();
        if pixels.len() == expected {
            Ok(())
        } else {
            Err(GenerateError::OutputSize {
                expected,
                found: pixels.len(),
            })
        }
    }

    /// Hidden codes from the loaded input, one per output channel of `hidden`.
    #[inline]
    fn hidden_codes(&self, x: Loaded<'_>, hidden: &mut [i8]) {
        let weights = self.hidden_weights();
        let mut acc = [0i32; BLOCK];
        for (b, codes) in hidden.chunks_mut(BLOCK).enumerate() {
            let acc = acc.get_mut(..codes.len()).unwrap_or(&mut []);
            x.dot_rows(weights, b * BLOCK, acc);
            for (i, (code, &dot)) in codes.iter_mut().zip(acc.iter()).enumerate() {
                *code = self.hidden_code(b * BLOCK + i, dot);
            }
        }
    }

    /// Pixels from the loaded hidden codes.
    #[inline]
    fn output_pixels(&self, h: Loaded<'_>, pixels: &mut [u8]) {
        let weights = self.output_weights();
        let mut acc = [0i32; BLOCK];
        for (b, pixels) in pixels.chunks_mut(BLOCK).enumerate() {
            let acc = acc.get_mut(..pixels.len()).unwrap_or(&mut []);
            h.dot_rows(weights, b * BLOCK, acc);
            for (i, (p, &dot)) in pixels.iter_mut().zip(acc.iter()).enumerate() {
                *p = self.output_pixel(b * BLOCK + i, dot);
            }
        }
    }

    /// Hidden channel `c`'s code from its dot product: bias, then the requantization
    /// with LeakyReLU folded in.
    #[inline]
    fn hidden_code(&self, c: usize, dot: i32) -> i8 {
        let (pos, neg) = self.hidden_multipliers(c);
        let acc = self.hidden_bias(c).wrapping_add(dot);
        leaky_relu_requantize(acc, pos, neg, self.hidden_q.zero_point)
    }

    /// Output channel `c`'s gray level from its dot product: bias, requantization, tanh.
    #[inline]
    fn output_pixel(&self, c: usize, dot: i32) -> u8 {
        let acc = self.output_bias(c).wrapping_add(dot);
        let t = requantize(acc, self.output_multiplier(c), self.pretanh_q.zero_point);
        code_to_pixel(tanh_lookup(self.lut, t))
    }
}
