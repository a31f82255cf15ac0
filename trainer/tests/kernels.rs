//! Gantry's CPU kernels against burn's own layers: the same outputs and the same
//! gradients (input, weight, bias) within 1e-4 relative, over shapes that include odd
//! sizes, padding 0–2, strides 1 and 2, batch 1 and rectangular images; and a short
//! training run that tracks burn's ops.

use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use trainer::kernels;

/// Largest |a − b| / (1 + |b|) over two equally shaped tensors.
fn relative_error<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
    assert_eq!(a.dims(), b.dims());
    let a = a.into_data().try_to_vec::<f32>().unwrap();
    let b = b.into_data().try_to_vec::<f32>().unwrap();
    a.iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs() / (1.0 + y.abs()))
        .fold(0.0, f32::max)
}

/// A fixed, varied output gradient: the same values for both implementations.
fn upstream(dims: [usize; 4], device: &Device) -> Tensor<4> {
    let n: usize = dims.iter().product();
    let values: Vec<f32> = (0..n).map(|i| (i * 37 % 101) as f32 / 50.0 - 1.0).collect();
    Tensor::from_data(TensorData::new(values, dims), device)
}

struct Grads {
    output: Tensor<4>,
    input: Tensor<4>,
    weight: Tensor<4>,
    bias: Tensor<1>,
}

/// Output and gradients of ⟨layer(x), upstream⟩ for a fixed random `upstream`.
fn run(
    x: &Tensor<4>,
    weight: &Param<Tensor<4>>,
    bias: &Param<Tensor<1>>,
    layer: impl Fn(Tensor<4>) -> Tensor<4>,
) -> Grads {
    let x = x.clone().require_grad();
    let output = layer(x.clone());
    let upstream = upstream(output.dims(), &output.device());
    let grads = output.clone().mul(upstream).sum().backward();
    Grads {
        output: output.detach(),
        input: x.grad(&grads).expect("input gradient"),
        weight: weight.val().grad(&grads).expect("weight gradient"),
        bias: bias.val().grad(&grads).expect("bias gradient"),
    }
}

fn compare(name: &str, fast: Grads, reference: Grads) {
    for (what, err) in [
        ("output", relative_error(fast.output, reference.output)),
        (
            "input gradient",
            relative_error(fast.input, reference.input),
        ),
        (
            "weight gradient",
            relative_error(fast.weight, reference.weight),
        ),
        (
            "bias gradient",
            relative_error(fast.bias.unsqueeze::<4>(), reference.bias.unsqueeze::<4>()),
        ),
    ] {
        assert!(err <= 1e-4, "{name}: {what} differs by {err} (relative)");
    }
}

fn device() -> Device {
    let device = Device::flex().autodiff();
    device.seed(11);
    device
}

#[test]
fn convolutions_match_burn_outputs_and_gradients() {
    let device = device();
    // (batch, c_in, c_out, height, width, kernel, stride, padding)
    let cases = [
        (4, 2, 8, 28, 28, 3, 2, 1),
        (1, 3, 5, 7, 9, 3, 2, 1),
        (3, 8, 16, 14, 14, 3, 2, 1),
        // 7×7 maps: chunks of 4 samples share a product, the last chunk holds 2.
        (6, 8, 16, 14, 14, 3, 2, 1),
        (2, 4, 6, 9, 7, 3, 1, 1),
        (2, 3, 2, 6, 5, 2, 1, 0),
        (1, 2, 3, 8, 8, 5, 1, 2),
        (5, 1, 4, 5, 5, 1, 1, 0),
    ];
    for (batch, c_in, c_out, h, w, k, s, p) in cases {
        let conv: Conv2d = Conv2dConfig::new([c_in, c_out], [k, k])
            .with_stride([s, s])
            .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
            .init(&device);
        let x = Tensor::<4>::random([batch, c_in, h, w], Distribution::Normal(0.0, 1.0), &device);
        assert!(
            kernels::conv2d_geometry(&conv, &x).is_some(),
            "the kernels must cover case {batch}x{c_in}x{h}x{w} k{k} s{s} p{p}"
        );
        let bias = conv.bias.clone().unwrap();
        let fast = run(&x, &conv.weight, &bias, |x| kernels::conv2d(&conv, x));
        let reference = run(&x, &conv.weight, &bias, |x| conv.forward(x));
        compare(
            &format!("conv2d {batch}x{c_in}x{h}x{w} → {c_out}, k{k} s{s} p{p}"),
            fast,
            reference,
        );
    }
}

#[test]
fn transposed_convolutions_match_burn_outputs_and_gradients() {
    let device = device();
    // (batch, c_in, c_out, height, width, kernel, stride, padding, output padding)
    let cases = [
        (4, 16, 8, 7, 7, 3, 2, 1, 1),
        (7, 16, 8, 7, 7, 3, 2, 1, 1),
        (1, 8, 4, 14, 14, 3, 1, 1, 0),
        (3, 4, 1, 14, 14, 3, 2, 1, 1),
        (2, 3, 5, 5, 6, 3, 2, 1, 1),
        (2, 2, 3, 4, 3, 2, 2, 0, 0),
        (1, 3, 2, 6, 6, 5, 1, 2, 0),
        (2, 5, 3, 3, 4, 3, 2, 0, 1),
    ];
    for (batch, c_in, c_out, h, w, k, s, p, op) in cases {
        let conv: ConvTranspose2d = ConvTranspose2dConfig::new([c_in, c_out], [k, k])
            .with_stride([s, s])
            .with_padding([p, p])
            .with_padding_out([op, op])
            .init(&device);
        let x = Tensor::<4>::random([batch, c_in, h, w], Distribution::Normal(0.0, 1.0), &device);
        assert!(
            kernels::conv_transpose2d_geometry(&conv, &x).is_some(),
            "the kernels must cover case {batch}x{c_in}x{h}x{w} k{k} s{s} p{p} op{op}"
        );
        let bias = conv.bias.clone().unwrap();
        let fast = run(&x, &conv.weight, &bias, |x| {
            kernels::conv_transpose2d(&conv, x)
        });
        let reference = run(&x, &conv.weight, &bias, |x| conv.forward(x));
        compare(
            &format!("conv_transpose2d {batch}x{c_in}x{h}x{w} → {c_out}, k{k} s{s} p{p} op{op}"),
            fast,
            reference,
        );
    }
}

#[test]
fn without_autodiff_the_kernels_give_burns_output() {
    let device = Device::flex();
    device.seed(3);
    let conv: ConvTranspose2d = ConvTranspose2dConfig::new([6, 3], [3, 3])
        .with_stride([2, 2])
        .with_padding([1, 1])
        .with_padding_out([1, 1])
        .init(&device);
    let x = Tensor::<4>::random([3, 6, 5, 5], Distribution::Normal(0.0, 1.0), &device);
    let err = relative_error(kernels::conv_transpose2d(&conv, x.clone()), conv.forward(x));
    assert!(err <= 1e-5, "inference output differs by {err}");
}

#[test]
fn uncovered_settings_fall_back_to_burn() {
    let device = Device::flex();
    let grouped: Conv2d = Conv2dConfig::new([4, 4], [3, 3])
        .with_groups(2)
        .init(&device);
    let x = Tensor::<4>::zeros([1, 4, 6, 6], &device);
    assert!(kernels::conv2d_geometry(&grouped, &x).is_none());
    let dilated: Conv2d = Conv2dConfig::new([4, 4], [3, 3])
        .with_dilation([2, 2])
        .init(&device);
    assert!(kernels::conv2d_geometry(&dilated, &x).is_none());
    // Falling back still computes the layer.
    assert_eq!(kernels::conv2d(&grouped, x).dims(), [1, 4, 4, 4]);
}

#[test]
fn batch_norm_leaky_relu_matches_burn_outputs_gradients_and_running_statistics() {
    let device = device();
    for (batch, channels, h, w, slope) in
        [(8, 16, 7, 7, 0.2), (1, 3, 5, 4, 0.01), (5, 4, 1, 1, 0.0)]
    {
        let fast_norm: BatchNorm = BatchNormConfig::new(channels).init(&device);
        // γ and β away from their initial 1 and 0, so their gradients are exercised.
        let gamma = Tensor::<1>::random([channels], Distribution::Uniform(0.5, 1.5), &device);
        let beta = Tensor::<1>::random([channels], Distribution::Uniform(-0.5, 0.5), &device);
        let fast_norm = BatchNorm {
            gamma: Param::from_tensor(gamma.clone()),
            beta: Param::from_tensor(beta.clone()),
            ..fast_norm
        };
        let burn_norm: BatchNorm = BatchNormConfig::new(channels).init(&device);
        let burn_norm = BatchNorm {
            gamma: Param::from_tensor(gamma),
            beta: Param::from_tensor(beta),
            ..burn_norm
        };
        let x = Tensor::<4>::random(
            [batch, channels, h, w],
            Distribution::Normal(0.5, 2.0),
            &device,
        );
        let name = format!("batch norm {batch}x{channels}x{h}x{w}, slope {slope}");
        let mut results = Vec::new();
        for (norm, fast) in [(&fast_norm, true), (&burn_norm, false)] {
            let x = x.clone().require_grad();
            let output = if fast {
                kernels::batch_norm_leaky_relu(norm, x.clone(), slope)
            } else {
                kernels::leaky_relu(norm.forward(x.clone()), slope)
            };
            let upstream = upstream(output.dims(), &device);
            let grads = output.clone().mul(upstream).sum().backward();
            results.push((
                output.detach(),
                x.grad(&grads).expect("input gradient"),
                norm.gamma.val().grad(&grads).expect("gamma gradient"),
                norm.beta.val().grad(&grads).expect("beta gradient"),
                norm.running_mean.value(),
                norm.running_var.value(),
            ));
        }
        let (reference, fast) = (results.pop().unwrap(), results.pop().unwrap());
        for (what, err) in [
            ("output", relative_error(fast.0, reference.0)),
            ("input gradient", relative_error(fast.1, reference.1)),
            (
                "gamma gradient",
                relative_error(fast.2.unsqueeze::<4>(), reference.2.unsqueeze::<4>()),
            ),
            (
                "beta gradient",
                relative_error(fast.3.unsqueeze::<4>(), reference.3.unsqueeze::<4>()),
            ),
            (
                "running mean",
                relative_error(fast.4.unsqueeze::<4>(), reference.4.unsqueeze::<4>()),
            ),
            (
                "running variance",
                relative_error(fast.5.unsqueeze::<4>(), reference.5.unsqueeze::<4>()),
            ),
        ] {
            assert!(err <= 1e-4, "{name}: {what} differs by {err} (relative)");
        }
    }
}

#[test]
fn tanh_matches_burn_output_and_gradient() {
    let device = device();
    let x = Tensor::<4>::random([3, 2, 7, 5], Distribution::Normal(0.0, 3.0), &device);
    let mut results = Vec::new();
    for fast in [true, false] {
        let x = x.clone().require_grad();
        let y = if fast {
            kernels::tanh(x.clone())
        } else {
            burn::tensor::activation::tanh(x.clone())
        };
        let grads = y.clone().mul(upstream(y.dims(), &device)).sum().backward();
        results.push((y.detach(), x.grad(&grads).expect("input gradient")));
    }
    let (reference, fast) = (results.pop().unwrap(), results.pop().unwrap());
    assert!(relative_error(fast.0, reference.0) <= 1e-5, "tanh output");
    assert!(relative_error(fast.1, reference.1) <= 1e-4, "tanh gradient");
}

/// Output and gradients (those that exist) of ⟨f(x), upstream⟩ for a dense layer.
fn run_dense(
    x: &Tensor<2>,
    layer: &burn::nn::Linear,
    f: impl Fn(Tensor<2>) -> Tensor<2>,
) -> Vec<Option<Tensor<2>>> {
    let x = x.clone().require_grad();
    let output = f(x.clone());
    let [rows, cols] = output.dims();
    let upstream = upstream([rows, cols, 1, 1], &output.device()).reshape([rows, cols]);
    let grads = output.clone().mul(upstream).sum().backward();
    let bias = layer.bias.as_ref().expect("bias").val();
    vec![
        Some(output.detach()),
        x.grad(&grads),
        layer.weight.val().grad(&grads),
        bias.grad(&grads).map(|b| b.unsqueeze::<2>()),
    ]
}

#[test]
fn dense_layers_match_burn_outputs_and_gradients() {
    use burn::nn::LinearConfig;
    use kernels::Activation;
    let device = device();
    let activations = [
        Activation::Identity,
        Activation::LeakyRelu(0.2),
        Activation::Tanh,
    ];
    // (batch, inputs, outputs): batch 1, odd sizes, one output (a logit), and sizes
    // large enough for the products to be split over the pool.
    for (batch, inputs, outputs) in [(1, 3, 5), (7, 13, 1), (33, 100, 129), (256, 784, 128)] {
        for activation in activations {
            let layer = LinearConfig::new(inputs, outputs).init(&device);
            let x = Tensor::<2>::random([batch, inputs], Distribution::Normal(0.0, 1.0), &device);
            let fast = run_dense(&x, &layer, |x| kernels::linear(&layer, x, activation));
            let reference = run_dense(&x, &layer, |x| {
                let z = layer.forward(x);
                match activation {
                    Activation::Identity => z,
                    Activation::LeakyRelu(s) => burn::tensor::activation::leaky_relu(z, s),
                    Activation::Tanh => burn::tensor::activation::tanh(z),
                }
            });
            for (what, (f, r)) in [
                "output",
                "input gradient",
                "weight gradient",
                "bias gradient",
            ]
            .iter()
            .zip(fast.into_iter().zip(reference))
            {
                let (f, r) = (f.expect(what), r.expect(what));
                let err = relative_error(f, r);
                assert!(
                    err <= 1e-4,
                    "dense {batch}x{inputs}->{outputs} {activation:?}: {what} differs by {err}"
                );
            }
        }
    }
}

#[test]
fn a_dense_layer_without_tracked_weights_passes_only_the_input_gradient() {
    use burn::module::Module;
    use burn::nn::LinearConfig;
    let device = device();
    // The G step runs D with its weights untracked: only x gets a gradient.
    let layer = LinearConfig::new(9, 4).init(&device);
    let frozen = layer.clone().no_grad();
    let x = Tensor::<2>::random([5, 9], Distribution::Normal(0.0, 1.0), &device).require_grad();
    let act = kernels::Activation::LeakyRelu(0.01);
    let grads = kernels::linear(&frozen, x.clone(), act).sum().backward();
    let reference = burn::tensor::activation::leaky_relu(frozen.forward(x.clone()), 0.01)
        .sum()
        .backward();
    assert!(frozen.weight.val().grad(&grads).is_none());
    let err = relative_error(
        x.grad(&grads).expect("input gradient"),
        x.grad(&reference).expect("input gradient"),
    );
    assert!(err <= 1e-5, "input gradient differs by {err}");
}

#[test]
fn fused_adam_updates_and_records_exactly_as_burns_adam() {
    use burn::nn::{Linear, LinearConfig};
    use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
    let device = device();
    let settings = trainer::config::AdamSettings {
        learning_rate: 2e-4,
        beta1: 0.5,
        beta2: 0.999,
        epsilon: 1e-7,
    };
    let burns = || {
        AdamConfig::new()
            .with_beta_1(settings.beta1)
            .with_beta_2(settings.beta2)
            .with_epsilon(settings.epsilon)
            .init()
    };
    let start = LinearConfig::new(300, 70).init(&device); // a weight split over the pool
    let x = Tensor::<2>::random([8, 300], Distribution::Normal(0.0, 1.0), &device);
    let train = |mut optim: ModuleOptimizer, mut layer: Linear, steps: usize| {
        for _ in 0..steps {
            let loss = layer.forward(x.clone()).powf_scalar(2.0).mean();
            let grads = GradientsParams::from_grads(loss.backward(), &layer);
            layer = optim.step(settings.learning_rate, layer, grads);
        }
        (optim, layer)
    };
    let values = |layer: &Linear| {
        let mut v = layer.weight.val().into_data().try_to_vec::<f32>().unwrap();
        v.extend(
            layer
                .bias
                .as_ref()
                .unwrap()
                .val()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap(),
        );
        v
    };
    let (fused_optim, fused) = train(
        ModuleOptimizer::from(kernels::Adam::new(&settings)),
        start.clone(),
        3,
    );
    let (burn_optim, reference) = train(burns(), start.clone(), 3);
    assert_eq!(values(&fused), values(&reference), "after 3 steps");
    // The fused optimizer's state is burn's record: burn's Adam resumes from it, and
    // the fused one from burn's, to the same weights.
    let fused_record = fused_optim.into_bytes().unwrap();
    let burn_record = burn_optim.into_bytes().unwrap();
    let resumed_by_burn = burns().from_bytes(fused_record).unwrap();
    let resumed_fused = ModuleOptimizer::from(kernels::Adam::new(&settings))
        .from_bytes(burn_record)
        .unwrap();
    let (_, a) = train(resumed_by_burn, fused.clone(), 2);
    let (_, b) = train(resumed_fused, reference.clone(), 2);
    assert_eq!(values(&a), values(&b), "after resuming across the two");
    assert_ne!(values(&a), values(&start), "the steps moved the weights");
}
