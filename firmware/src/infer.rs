//! One generator forward pass into a caller-owned pixel buffer, with no heap.
//!
//! This exists to put the [`crate::kernels`] together in the one order the format
//! defines, with the only buffers on the stack (`MAX_INPUT + MAX_HIDDEN` bytes):
//!
//! 1. input codes `x = concat(quantize(z), embedding[label])`;
//!    (each layer subtracts its input zero point once, into an `i16` buffer, before
//!    the dot products: the same integers as `dot_i8`, with a shorter inner loop);
//! 2. `h[c] = leaky_relu_requantize(bias1[c] + dot(x - x_zp, W1[c]), M1+[c], M1-[c], h_zp)`;
//! 3. `t[c] = requantize(bias2[c] + dot(h - h_zp, W2[c]), M2[c], t_zp)`;
//! 4. `pixel[c] = code_to_pixel(tanh_lut[t[c] + 128])`.

use thiserror::Error;

use crate::blob::{Model, chunk_i32};
use crate::kernels::{
    code_to_pixel, dot_offsets, leaky_relu_requantize, offset_codes, quantize_f32, requantize,
    tanh_lookup,
};
use crate::noise::NormalSampler;
use crate::{MAX_HIDDEN, MAX_INPUT};

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
    pub fn generate(
        &self,
        noise: Noise<'_>,
        label: Option<usize>,
        pixels: &mut [u8],
    ) -> Result<(), GenerateError> {
        let mut input = [0i8; MAX_INPUT];
        let n = self.input_codes(noise, label, &mut input)?;
        self.forward_codes(input.get(..n).unwrap_or(&[]), pixels)
    }

    /// Builds the input codes `concat(quantize(z), embedding[label])` into `out` and
    /// returns their count (`z_dim + embed_dim`).
    pub fn input_codes(
        &self,
        noise: Noise<'_>,
        label: Option<usize>,
        out: &mut [i8; MAX_INPUT],
    ) -> Result<usize, GenerateError> {
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
        // Dims were validated at parse time: z_dim + embed_dim <= MAX_INPUT.
        let (z_part, rest) = out.split_at_mut(d.z_dim.min(MAX_INPUT));
        let q = self.input;
        match noise {
            Noise::Seed(seed) => {
                let mut sampler = NormalSampler::new(seed);
                for code in z_part.iter_mut() {
                    *code = quantize_f32(sampler.next_normal(), q.scale, q.zero_point);
                }
            }
            Noise::Float(z) => {
                if z.len() != d.z_dim {
                    return Err(GenerateError::NoiseSize {
                        expected: d.z_dim,
                        found: z.len(),
                    });
                }
                for (code, &x) in z_part.iter_mut().zip(z) {
                    *code = quantize_f32(x, q.scale, q.zero_point);
                }
            }
            Noise::Codes(codes) => {
                if codes.len() != d.z_dim {
                    return Err(GenerateError::NoiseSize {
                        expected: d.z_dim,
                        found: codes.len(),
                    });
                }
                for (dst, &src) in z_part.iter_mut().zip(codes) {
                    *dst = src;
                }
            }
        }
        for (dst, &src) in rest.iter_mut().zip(embedding) {
            *dst = src;
        }
        Ok(d.input())
    }

    /// Runs the two layers on ready input codes (`z_dim + embed_dim` of them, e.g. from
    /// [`Model::input_codes`]) and writes the pixels.
    pub fn forward_codes(&self, input: &[i8], pixels: &mut [u8]) -> Result<(), GenerateError> {
        let d = self.dims;
        self.check_input(input)?;
        self.check_pixels(pixels)?;
        let mut x = [0i16; MAX_INPUT];
        let x = x.get_mut(..d.input()).unwrap_or(&mut []);
        offset_codes(input, self.input.zero_point, x);
        let mut h = [0i16; MAX_HIDDEN];
        let h = h.get_mut(..d.hidden).unwrap_or(&mut []);
        let hidden_zp = i16::from(self.hidden_q.zero_point);
        self.hidden_codes(x, |c, code| {
            if let Some(slot) = h.get_mut(c) {
                *slot = i16::from(code) - hidden_zp;
            }
        });
        self.output_pixels(h, pixels);
        Ok(())
    }

    /// Layer 1 alone: dense + fused LeakyReLU requantization of `z_dim + embed_dim`
    /// input codes into `hidden` codes (so a host reference can compare layer by layer).
    pub fn hidden_layer(&self, input: &[i8], hidden: &mut [i8]) -> Result<(), GenerateError> {
        let d = self.dims;
        self.check_input(input)?;
        self.check_hidden(hidden)?;
        let mut x = [0i16; MAX_INPUT];
        let x = x.get_mut(..d.input()).unwrap_or(&mut []);
        offset_codes(input, self.input.zero_point, x);
        self.hidden_codes(x, |c, code| {
            if let Some(slot) = hidden.get_mut(c) {
                *slot = code;
            }
        });
        Ok(())
    }

    /// Layer 2 alone: dense + requantization + tanh table of `hidden` codes into gray
    /// levels.
    pub fn output_layer(&self, hidden: &[i8], pixels: &mut [u8]) -> Result<(), GenerateError> {
        self.check_hidden(hidden)?;
        self.check_pixels(pixels)?;
        let mut h = [0i16; MAX_HIDDEN];
        let h = h.get_mut(..self.dims.hidden).unwrap_or(&mut []);
        offset_codes(hidden, self.hidden_q.zero_point, h);
        self.output_pixels(h, pixels);
        Ok(())
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

    /// Hidden codes from zero-point-offset inputs, handed to `sink(channel, code)`.
    #[inline]
    fn hidden_codes(&self, x: &[i16], mut sink: impl FnMut(usize, i8)) {
        let rows = self.hidden_weights().chunks_exact(x.len().max(1));
        let bias = self.hidden_bias.chunks_exact(4);
        for (c, (row, b)) in rows.zip(bias).enumerate() {
            let acc = chunk_i32(b).wrapping_add(dot_offsets(x, row));
            let (pos, neg) = self.hidden_multipliers(c);
            sink(
                c,
                leaky_relu_requantize(acc, pos, neg, self.hidden_q.zero_point),
            );
        }
    }

    /// Pixels from zero-point-offset hidden codes.
    #[inline]
    fn output_pixels(&self, h: &[i16], pixels: &mut [u8]) {
        let rows = self.output_weights().chunks_exact(h.len().max(1));
        let bias = self.out_bias.chunks_exact(4);
        for (c, ((p, row), b)) in pixels.iter_mut().zip(rows).zip(bias).enumerate() {
            let acc = chunk_i32(b).wrapping_add(dot_offsets(h, row));
            let t = requantize(acc, self.output_multiplier(c), self.pretanh_q.zero_point);
            *p = code_to_pixel(tanh_lookup(self.lut, t));
        }
    }
}
