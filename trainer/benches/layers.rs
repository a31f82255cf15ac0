//! Where a training step's time goes: forward and forward + backward times of the
//! `mlp` and `dcgan` layers at batch 128 on the CPU backend, one layer at a time.
//!
//!   cargo bench -p trainer --bench layers
//!
//! Prints one `layer=… fwd_ms=… fwd_bwd_ms=… [gflop=…]` line per layer (medians of 9
//! timed runs after 2 warm-up runs; `gflop` is the forward pass's work, where it is a
//! matrix product: the backward pass does twice that). The layers run as the models run
//! them, through `trainer::kernels`; `GANTRY_KERNELS=burn` times burn's own ops instead. `scripts/bench-layers-vs-reference.sh` runs the same layers in
//! TensorFlow (`scripts/reference_layers.py`) and prints both side by side. The backward
//! pass computes the gradients of the layer's input and of its parameters, as a
//! training step does.

use std::time::Instant;

use burn::nn::{BatchNormConfig, LinearConfig};
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Distribution, Tensor};
use trainer::kernels::{self, Activation};
use trainer::model::{deconv, strided_conv};
use trainer::training::initialize;

// The trainer binary's allocator (see trainer/src/main.rs), so layers run as in `trainer train`.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BATCH: usize = 128;
const RUNS: usize = 9;

/// Median milliseconds of `RUNS` calls of `f`, after two untimed calls.
fn median_ms(mut f: impl FnMut()) -> f64 {
    f();
    f();
    let mut times: Vec<f64> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[RUNS / 2]
}

/// Times `layer` on `input`: forward alone (a scalar read back forces the work), and
/// forward + backward of the output's sum; `gflop` is the forward pass's work.
fn report<const D: usize, const E: usize>(
    name: &str,
    input: Tensor<D>,
    gflop: Option<f64>,
    layer: impl Fn(Tensor<D>) -> Tensor<E>,
) {
    let input = input.require_grad();
    let forward = median_ms(|| {
        let _ = layer(input.clone()).sum().into_scalar::<f32>();
    });
    let backward = median_ms(|| {
        let _ = layer(input.clone()).sum().backward();
    });
    let work = gflop.map_or(String::new(), |g| format!(" gflop={g:.3}"));
    println!("layer={name} fwd_ms={forward:.2} fwd_bwd_ms={backward:.2}{work}");
}

/// GFLOP of a dense layer's forward pass at batch `BATCH`.
fn dense_gflop(inputs: usize, outputs: usize) -> f64 {
    2.0 * (BATCH * inputs * outputs) as f64 / 1e9
}

/// GFLOP of a convolution's forward pass at batch `BATCH`: `points` output (or, for a
/// transposed convolution, input) values per sample, each a dot product of `depth`.
fn conv_gflop(points: usize, depth: usize) -> f64 {
    2.0 * (BATCH * points * depth) as f64 / 1e9
}

fn normal<const D: usize>(shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), device)
}

fn main() {
    let device = Device::flex().autodiff();

    // The matrix-product kernel alone, as a ceiling for everything below.
    let a = normal([2048, 2048], &Device::flex());
    let ms = median_ms(|| {
        let _ = a.clone().matmul(a.clone()).sum().into_scalar::<f32>();
    });
    println!(
        "layer=matmul_2048 fwd_ms={ms:.2} gflops={:.0}",
        2.0 * 2048f64.powi(3) / ms / 1e6
    );

    // `mlp`: G's hidden → image layer with its tanh, and D's image → hidden layer.
    let dense = LinearConfig::new(128, 784).init(&device);
    initialize(&dense);
    report(
        "mlp_dense_128_784_tanh",
        normal([BATCH, 128], &device),
        Some(dense_gflop(128, 784)),
        |x| kernels::linear(&dense, x, Activation::Tanh),
    );
    let dense = LinearConfig::new(784, 128).init(&device);
    initialize(&dense);
    report(
        "mlp_dense_784_128_lrelu",
        normal([BATCH, 784], &device),
        Some(dense_gflop(784, 128)),
        |x| kernels::linear(&dense, x, Activation::LeakyRelu(0.01)),
    );
    report(
        "mlp_sigmoid_128x784",
        normal([BATCH, 784], &device),
        None,
        sigmoid,
    );

    // `dcgan` G (the book's widths): projection, the model's transposed convolutions, batch norm.
    let project = LinearConfig::new(100, 7 * 7 * 256).init(&device);
    initialize(&project);
    report(
        "dcgan_dense_100_12544",
        normal([BATCH, 100], &device),
        Some(dense_gflop(100, 12544)),
        |x| kernels::linear(&project, x, Activation::Identity),
    );
    for (c_in, c_out, stride, side) in [(256, 128, 2, 7), (128, 64, 1, 14), (64, 1, 2, 14)] {
        let layer = deconv(c_in, c_out, stride, &device);
        initialize(&layer);
        report(
            &format!("dcgan_convT_{c_in}_{c_out}_s{stride}"),
            normal([BATCH, c_in, side, side], &device),
            // Each input pixel spreads c_out·9 products.
            Some(conv_gflop(c_in * side * side, c_out * 9)),
            |x| kernels::conv_transpose2d(&layer, x),
        );
    }
    for channels in [128, 64] {
        let norm = BatchNormConfig::new(channels).init(&device);
        initialize(&norm);
        report(
            &format!("dcgan_bn_lrelu_{channels}x14x14"),
            normal([BATCH, channels, 14, 14], &device),
            None,
            |x| kernels::batch_norm_leaky_relu(&norm, x, 0.01),
        );
    }

    // `dcgan` D: the model's stride-2 convolutions.
    for (c_in, c_out, side) in [(1, 32, 28), (32, 64, 14), (64, 128, 7)] {
        let conv = strided_conv(c_in, c_out, &device);
        initialize(&conv);
        report(
            &format!("dcgan_conv_{c_in}_{c_out}_s2"),
            normal([BATCH, c_in, side, side], &device),
            // Each output pixel gathers c_in·9 products.
            Some(conv_gflop(
                c_out * side.div_ceil(2) * side.div_ceil(2),
                c_in * 9,
            )),
            |x| kernels::conv2d(&conv, x),
        );
    }
}
