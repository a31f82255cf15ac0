//! Gantry's own CPU training kernels, plugged into burn as a backend extension.
//!
//! burn's CPU backend (flex) runs a convolution's forward pass well but has no backward
//! pass of its own: burn's generic fallbacks rebuild each gradient out of swapped-axis
//! convolutions and transposing copies, which made a `dcgan` training step several times
//! slower than TensorFlow's, and its batch norm is a chain of generic tensor ops. The
//! layers here ([`conv2d`], [`conv_transpose2d`], [`batch_norm_leaky_relu`]) compute
//! forward and backward passes with the kernels of [`cpu`] — one im2col / col2im +
//! matrix product per sample, batch norm and its activation fused into one pass —
//! registered with burn's autodiff through [`TrainingKernels`].
//!
//! They take the fast path only on the CPU backend with `f32` tensors; on any other
//! backend (wgpu) or setting they call burn's own layer, so the GPU path is unchanged.
//! `GANTRY_KERNELS=burn` in the environment (or [`set_enabled`]) switches them off,
//! which the benchmarks use to compare both in one run.

pub mod adam;
mod backend;
pub mod cpu;
pub mod dense;

use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, Ordering};

use burn::backend::{Dispatch, DispatchDevice};
use burn::module::Module;
use burn::nn::conv::{Conv2d, ConvTranspose2d};
use burn::nn::{BatchNorm, Linear, PaddingConfig2d};
use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::{DType, Tensor};

pub use adam::Adam;
pub use backend::{GradKernels, OptimizerKernels, StatisticsKernels, TrainingKernels};
pub use cpu::ConvGeometry;
pub use dense::Activation;

static ENABLED: LazyLock<AtomicBool> = LazyLock::new(|| {
    AtomicBool::new(std::env::var("GANTRY_KERNELS").map_or(true, |v| v != "burn"))
});

/// Switches Gantry's kernels on or off for the whole process (on by default, off when
/// the environment has `GANTRY_KERNELS=burn`); off, every layer runs burn's own ops.
pub fn set_enabled(enabled: bool) {
    ENABLED.store(enabled, Ordering::Relaxed);
}

/// True when the layers use Gantry's kernels where they apply.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// True when `x` lives on the CPU (flex) backend, with or without autodiff, as `f32`.
fn fast_path<const D: usize>(x: &Tensor<D>) -> bool {
    enabled() && x.dtype() == DType::F32 && on_cpu(&x.device())
}

/// True when `device` is the CPU (flex) backend, with or without autodiff.
pub fn on_cpu(device: &burn::tensor::Device) -> bool {
    matches!(
        device.clone().inner().as_dispatch(),
        DispatchDevice::Flex(_)
    )
}

/// `conv.forward(x)`, through Gantry's kernels on the CPU backend.
pub fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    match (fast_path(&x), conv2d_geometry(conv, &x), &conv.bias) {
        (true, Some(geometry), Some(bias)) => {
            Tensor::from_dispatch(<Dispatch as TrainingKernels>::conv2d_im2col(
                x.into_dispatch(),
                conv.weight.val().into_dispatch(),
                bias.val().into_dispatch(),
                geometry,
            ))
        }
        _ => conv.forward(x),
    }
}

/// `conv.forward(x)`, through Gantry's kernels on the CPU backend.
pub fn conv_transpose2d(conv: &ConvTranspose2d, x: Tensor<4>) -> Tensor<4> {
    match (
        fast_path(&x),
        conv_transpose2d_geometry(conv, &x),
        &conv.bias,
    ) {
        (true, Some(geometry), Some(bias)) => {
            Tensor::from_dispatch(<Dispatch as TrainingKernels>::conv_transpose2d_col2im(
                x.into_dispatch(),
                conv.weight.val().into_dispatch(),
                bias.val().into_dispatch(),
                geometry,
            ))
        }
        _ => conv.forward(x),
    }
}

/// `activation(layer.forward(x))`, through one kernel forward and one backward on the
/// CPU backend (see [`dense`]).
pub fn linear(layer: &Linear, x: Tensor<2>, activation: Activation) -> Tensor<2> {
    let [_, inputs] = x.dims();
    match (&layer.bias, fast_path(&x)) {
        (Some(bias), true) if layer.weight.dims()[0] == inputs => {
            Tensor::from_dispatch(<Dispatch as TrainingKernels>::dense(
                x.into_dispatch(),
                layer.weight.val().into_dispatch(),
                bias.val().into_dispatch(),
                activation,
            ))
        }
        _ => {
            let z = layer.forward(x);
            match activation {
                Activation::Identity => z,
                Activation::LeakyRelu(slope) => leaky_relu(z, slope),
                Activation::Tanh => tanh(z),
            }
        }
    }
}

/// `leaky_relu(norm.forward(x), slope)`, fused into one kernel (and one backward
/// kernel) on the CPU backend when `norm` normalises by batch statistics, as it does in
/// training; the running statistics are updated as burn's `BatchNorm` updates them.
pub fn batch_norm_leaky_relu(norm: &BatchNorm, x: Tensor<4>, slope: f64) -> Tensor<4> {
    let training = x.device().is_autodiff() && norm.training.is_enabled();
    if !(training && fast_path(&x)) {
        return leaky_relu(norm.forward(x), slope);
    }
    let [_, channels, _, _] = x.dims();
    let moments = Tensor::<1>::from_dispatch(<Dispatch as StatisticsKernels>::channel_moments(
        x.clone().inner().into_dispatch(),
    )); // [2·channels], means then variances, no gradient
    let moments = Tensor::<1>::from_inner(moments);
    let update = |state: &burn::module::RunningState<Tensor<1>>, part: Tensor<1>| {
        // burn keeps the newest running value per thread and folds them together only
        // when the thread that wrote one reads again. A training step may run on any
        // thread of the run's pool, so fold first: every update then starts from the
        // previous one, whichever thread made it (`valid` folds the shared state).
        let _ = state.valid();
        let running = state.value_sync().to_device(&x.device());
        state.update(
            running
                .mul_scalar(1.0 - norm.momentum)
                .add(part.mul_scalar(norm.momentum))
                .detach(),
        );
    };
    update(&norm.running_mean, moments.clone().narrow(0, 0, channels));
    update(
        &norm.running_var,
        moments.clone().narrow(0, channels, channels),
    );
    Tensor::from_dispatch(<Dispatch as TrainingKernels>::batch_norm_leaky_relu(
        x.into_dispatch(),
        norm.gamma.val().into_dispatch(),
        norm.beta.val().into_dispatch(),
        moments.into_dispatch(),
        norm.epsilon,
        slope,
    ))
}

/// LeakyReLU computed as (1 − slope)·relu(x) + slope·x.
///
/// The same function as burn's `leaky_relu` (up to one rounding for x > 0), but burn's
/// autodiff records `leaky_relu` as a mask, a scaled copy and a `mask_where`, whose
/// backward on flex took 6× longer than relu's dedicated backward plus two scalings.
pub fn leaky_relu<const D: usize>(x: Tensor<D>, slope: f64) -> Tensor<D> {
    relu(x.clone())
        .mul_scalar(1.0 - slope)
        .add(x.mul_scalar(slope))
}

/// tanh(x): on the CPU backend one vectorised kernel forward and one backward (from the
/// output) — burn's flex evaluates `tanh` with scalar libm `tanhf`, which took 40 % of an
/// `mlp` training step. Elsewhere 2·sigmoid(2x) − 1 (the same function within 2e-7),
/// which goes through burn's cheaper `exp`.
pub fn tanh<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if fast_path(&x) {
        return Tensor::from_dispatch(<Dispatch as TrainingKernels>::tanh(x.into_dispatch()));
    }
    sigmoid(x.mul_scalar(2.0)).mul_scalar(2.0).sub_scalar(1.0)
}

/// The geometry of `conv` applied to `x`, when the kernels cover it (one group, no
/// dilation, the same padding on both sides).
pub fn conv2d_geometry(conv: &Conv2d, x: &Tensor<4>) -> Option<ConvGeometry> {
    let [batch, channels, height, width] = x.dims();
    let [c_out, c_in, kh, kw] = conv.weight.dims();
    if conv.groups != 1 || conv.dilation != [1, 1] || c_in != channels {
        return None;
    }
    let padding = match conv.padding {
        PaddingConfig2d::Valid => [0, 0],
        PaddingConfig2d::Explicit(top, left, bottom, right) if top == bottom && left == right => {
            [top, left]
        }
        // "Same" is symmetric only for stride 1 and odd kernels.
        PaddingConfig2d::Same if conv.stride == [1, 1] && kh % 2 == 1 && kw % 2 == 1 => {
            [kh / 2, kw / 2]
        }
        _ => return None,
    };
    let [map_h, map_w] = ConvGeometry::map_side([height, width], [kh, kw], conv.stride, padding)?;
    Some(ConvGeometry {
        batch,
        image: [channels, height, width],
        map: [c_out, map_h, map_w],
        kernel: [kh, kw],
        stride: conv.stride,
        padding,
    })
}

/// The geometry of `conv` applied to `x`, when the kernels cover it (one group, no
/// dilation, output padding smaller than the stride).
pub fn conv_transpose2d_geometry(conv: &ConvTranspose2d, x: &Tensor<4>) -> Option<ConvGeometry> {
    let [batch, channels, height, width] = x.dims();
    let [c_in, c_out, kh, kw] = conv.weight.dims();
    if conv.groups != 1 || conv.dilation != [1, 1] || c_in != channels || height == 0 || width == 0
    {
        return None;
    }
    let side = |i: usize, input: usize| {
        ((input - 1) * conv.stride[i] + [kh, kw][i] + conv.padding_out[i])
            .checked_sub(2 * conv.padding[i])
    };
    let (out_h, out_w) = (side(0, height)?, side(1, width)?);
    // The transposed convolution is the adjoint of the convolution from its output back to
    // its input only when that convolution gives the input's size back.
    let map = ConvGeometry::map_side([out_h, out_w], [kh, kw], conv.stride, conv.padding)?;
    if map != [height, width] {
        return None;
    }
    Some(ConvGeometry {
        batch,
        image: [c_out, out_h, out_w],
        map: [channels, height, width],
        kernel: [kh, kw],
        stride: conv.stride,
        padding: conv.padding,
    })
}
