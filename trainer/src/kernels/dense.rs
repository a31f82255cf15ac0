//! A fully connected layer and its activation as one kernel, forward and backward.
//!
//! burn runs `activation(x · W + b)` as a matrix product into a fresh zeroed buffer
//! (which flex allocates and then copies once more to align it), a broadcast bias add,
//! and the activation's own ops — LeakyReLU alone is four (relu, two scalings, an
//! add), each a separate pass over the batch that allocates its result — and the
//! backward pass mirrors every one of them. Here the bias is written into the output
//! before the product accumulates onto it, the activation is applied in place, and
//! the backward pass turns the output's gradient into the pre-activation gradient in
//! one pass computed from the output alone, followed by two products whose transposes
//! are strides handed to `gemm` and one column sum for the bias.

use rayon::prelude::*;

use super::cpu::{self, MatRef};

/// The activation applied to `x · W + b`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    /// None: the layer's output is `x · W + b` (logits, a projection before batch norm).
    Identity,
    /// LeakyReLU with this negative slope (in [0, 1)).
    LeakyRelu(f64),
    /// tanh.
    Tanh,
}

/// Sizes of one dense layer applied to a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DenseShape {
    /// Rows of the input.
    pub batch: usize,
    /// Input features.
    pub inputs: usize,
    /// Output features.
    pub outputs: usize,
}

/// Products of at least this many multiply-adds are split over the rayon pool (the
/// threshold flex uses for its own matmul).
const PARALLEL_MACS: usize = 192 * 192 * 192;

fn parallelism(m: usize, n: usize, k: usize) -> gemm::Parallelism {
    if m.saturating_mul(n).saturating_mul(k) >= PARALLEL_MACS {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    }
}

/// `activation(x · weight + bias)`: `x` `[batch, inputs]`, `weight` `[inputs, outputs]`,
/// `bias` `[outputs]`, all row-major; the output is `[batch, outputs]`.
pub fn dense(
    x: &[f32],
    weight: &[f32],
    bias: &[f32],
    shape: DenseShape,
    activation: Activation,
) -> Vec<f32> {
    let DenseShape {
        batch,
        inputs,
        outputs,
    } = shape;
    assert!(
        x.len() == batch * inputs && weight.len() == inputs * outputs && bias.len() == outputs,
        "dense: buffers do not match {shape:?}"
    );
    let mut out = Vec::with_capacity(batch * outputs);
    for _ in 0..batch {
        out.extend_from_slice(bias);
    }
    cpu::matmul(
        &mut out,
        MatRef::rows(x, batch, inputs),
        MatRef::rows(weight, inputs, outputs),
        true,
        parallelism(batch, outputs, inputs),
    );
    match activation {
        Activation::Identity => {}
        Activation::LeakyRelu(slope) => {
            let slope = slope as f32;
            in_chunks(&mut out, |z| cpu::leaky(z, slope));
        }
        Activation::Tanh => in_chunks(&mut out, cpu::tanh_approx),
    }
    out
}

/// Applies `f` to every value in place, in parallel chunks.
fn in_chunks(values: &mut [f32], f: impl Fn(f32) -> f32 + Sync) {
    values
        .par_chunks_mut(cpu::ELEMENTWISE_CHUNK)
        .for_each(|chunk| {
            cpu::simd(|| chunk.iter_mut().for_each(|v| *v = f(*v)));
        });
}

/// Gradients of [`dense`].
pub struct DenseGrads {
    /// Of the input `[batch, inputs]`, when asked for.
    pub input: Option<Vec<f32>>,
    /// Of the weight `[inputs, outputs]`, when asked for.
    pub weight: Option<Vec<f32>>,
    /// Of the bias `[outputs]`, when asked for.
    pub bias: Option<Vec<f32>>,
}

/// Which gradients [`dense_backward`] computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wanted {
    /// The input's.
    pub input: bool,
    /// The weight's.
    pub weight: bool,
    /// The bias'.
    pub bias: bool,
}

/// Gradients of [`dense`] from its input `x`, `weight`, its output `y` and the
/// output's gradient `grad`.
///
/// The activation's derivative is read off the output: LeakyReLU's output is positive
/// exactly where its input is (the slope is not negative), and tanh′ = 1 − y².
pub fn dense_backward(
    x: &[f32],
    weight: &[f32],
    y: &[f32],
    grad: &[f32],
    shape: DenseShape,
    activation: Activation,
    wanted: Wanted,
) -> DenseGrads {
    let DenseShape {
        batch,
        inputs,
        outputs,
    } = shape;
    assert!(
        x.len() == batch * inputs
            && weight.len() == inputs * outputs
            && y.len() == batch * outputs
            && grad.len() == batch * outputs,
        "dense_backward: buffers do not match {shape:?}"
    );
    let pre_activation: Vec<f32>;
    let dz: &[f32] = match activation {
        Activation::Identity => grad,
        Activation::LeakyRelu(slope) => {
            let slope = slope as f32;
            pre_activation = cpu::zip_map(y, grad, |y, g| if y > 0.0 { g } else { g * slope });
            &pre_activation
        }
        Activation::Tanh => {
            pre_activation = cpu::tanh_backward(y, grad);
            &pre_activation
        }
    };
    let input = wanted.input.then(|| {
        cpu::product(
            MatRef::rows(dz, batch, outputs),
            MatRef::transposed(weight, outputs, inputs),
            parallelism(batch, inputs, outputs),
        )
    });
    let weight = wanted.weight.then(|| {
        cpu::product(
            MatRef::transposed(x, inputs, batch),
            MatRef::rows(dz, batch, outputs),
            parallelism(inputs, outputs, batch),
        )
    });
    let bias = wanted.bias.then(|| column_sums(dz, batch, outputs));
    DenseGrads {
        input,
        weight,
        bias,
    }
}

/// Sums of the columns of a row-major `[rows, cols]` matrix, accumulated in `f64`
/// row by row (each row adds to every column, so the loop vectorises across columns).
fn column_sums(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut sums = vec![0.0f64; cols];
    cpu::simd(|| {
        for row in m.chunks_exact(cols.max(1)).take(rows) {
            for (s, &v) in sums.iter_mut().zip(row) {
                *s += f64::from(v);
            }
        }
    });
    sums.into_iter().map(|s| s as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(x: &[f32], w: &[f32], b: &[f32], s: DenseShape) -> Vec<f32> {
        let mut out = vec![0.0; s.batch * s.outputs];
        for r in 0..s.batch {
            for o in 0..s.outputs {
                let mut acc = f64::from(b[o]);
                for i in 0..s.inputs {
                    acc += f64::from(x[r * s.inputs + i]) * f64::from(w[i * s.outputs + o]);
                }
                out[r * s.outputs + o] = acc as f32;
            }
        }
        out
    }

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| {
                ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) % 2001) as f32 / 1000.0
                    - 1.0
            })
            .collect()
    }

    #[test]
    fn forward_is_the_product_plus_bias_then_the_activation() {
        let s = DenseShape {
            batch: 3,
            inputs: 5,
            outputs: 7,
        };
        let (x, w, b) = (values(15, 1), values(35, 2), values(7, 3));
        let z = reference(&x, &w, &b, s);
        let leaky = dense(&x, &w, &b, s, Activation::LeakyRelu(0.2));
        let tanh = dense(&x, &w, &b, s, Activation::Tanh);
        for i in 0..z.len() {
            let want = if z[i] > 0.0 { z[i] } else { 0.2 * z[i] };
            assert!((leaky[i] - want).abs() < 1e-5, "{} vs {want}", leaky[i]);
            assert!((tanh[i] - z[i].tanh()).abs() < 1e-5);
        }
    }

    #[test]
    fn column_sums_add_every_row() {
        assert_eq!(
            column_sums(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 3, 2),
            vec![9.0, 12.0]
        );
    }
}
