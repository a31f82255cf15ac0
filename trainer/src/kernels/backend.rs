//! The kernels as a burn backend extension: a forward operation per layer, implemented
//! on flex's raw buffers, and its autodiff twin whose backward pass calls the kernels
//! of [`super::cpu`] instead of burn's generic fallbacks.
//!
//! `#[backend_extension(Flex, Autodiff)]` routes a call made on a `Tensor` to the flex
//! implementation, or to the `Autodiff<Flex>` one when the tensor tracks gradients.
//! Other backends (wgpu) never reach it: the layer functions of [`super`] call burn's
//! own layers there.

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Flex, backend_extension};
use burn::tensor::TensorData;

use super::adam::{self, AdamStep};
use super::cpu::{self, ChannelShape, ConvGeometry};
use super::dense::{self, Activation, DenseShape, Wanted};

/// Training layers whose forward and backward passes use Gantry's kernels.
#[backend_extension(Flex, Autodiff)]
pub trait TrainingKernels: Backend {
    /// Convolution of `image` `[batch, c_in, h, w]` by `weight` `[c_out, c_in, kh, kw]`
    /// plus `bias` `[c_out]`: the map `[batch, c_out, h', w']`.
    fn conv2d_im2col(
        image: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        geometry: ConvGeometry,
    ) -> FloatTensor<Self>;

    /// Transposed convolution of `map` `[batch, c_in, h, w]` by `weight`
    /// `[c_in, c_out, kh, kw]` plus `bias` `[c_out]`: the image `[batch, c_out, H, W]`.
    fn conv_transpose2d_col2im(
        map: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        geometry: ConvGeometry,
    ) -> FloatTensor<Self>;

    /// leaky_relu(batch_norm(x)) for `x` `[batch, channels, h, w]`, normalised with
    /// `moments` `[2·channels]` (means then biased variances, from
    /// [`StatisticsKernels::channel_moments`] of the same `x`) and scaled by `gamma`,
    /// shifted by `beta` `[channels]`. Its gradient flows through the statistics too.
    fn batch_norm_leaky_relu(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        moments: FloatTensor<Self>,
        epsilon: f64,
        slope: f64,
    ) -> FloatTensor<Self>;

    /// tanh of every value (any shape).
    fn tanh(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// `activation(x · weight + bias)` for `x` `[batch, inputs]`, `weight`
    /// `[inputs, outputs]` and `bias` `[outputs]`: `[batch, outputs]`.
    fn dense(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        activation: Activation,
    ) -> FloatTensor<Self>;
}

/// Statistics that need no gradient.
#[backend_extension(Flex)]
pub trait StatisticsKernels: Backend {
    /// Per-channel mean and biased variance of `x` `[batch, channels, h, w]`, as
    /// `[2·channels]`.
    fn channel_moments(x: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// Optimizer updates (no gradient flows through them).
#[backend_extension(Flex)]
pub trait OptimizerKernels: Backend {
    /// One Adam step of `param` with gradient `grad` and moments `moment_1`,
    /// `moment_2` (ignored on the first step): the new parameter and moments.
    fn adam_update(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        step: AdamStep,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

/// The products a backward pass needs, on a backend's own (non-autodiff) tensors.
pub trait GradKernels: Backend {
    /// weight · im2col(image), no bias.
    fn im2col_matmul(
        image: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        geometry: ConvGeometry,
    ) -> FloatTensor<Self>;
    /// col2im(weightᵀ · map), no bias.
    fn matmul_col2im(
        map: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        geometry: ConvGeometry,
    ) -> FloatTensor<Self>;
    /// Σ over samples of map · im2col(image)ᵀ, shaped like the weight.
    fn weight_grad(
        map: FloatTensor<Self>,
        image: FloatTensor<Self>,
        geometry: ConvGeometry,
    ) -> FloatTensor<Self>;
    /// Sums over batch and pixels, per channel of `x` `[batch, channels, h, w]`.
    fn channel_sums(x: FloatTensor<Self>) -> FloatTensor<Self>;
    /// Gradients of `x`, `gamma` and `beta` for [`TrainingKernels::batch_norm_leaky_relu`]
    /// given its output's gradient `grad`.
    #[allow(clippy::too_many_arguments)] // the forward op's inputs plus the gradient
    fn batch_norm_leaky_relu_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        moments: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        epsilon: f64,
        slope: f64,
    ) -> [FloatTensor<Self>; 3];
    /// Gradient of [`TrainingKernels::tanh`] from its output `y`: `grad · (1 − y²)`.
    fn tanh_backward(y: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self>;
    /// The `wanted` gradients (input, weight, bias) of [`TrainingKernels::dense`] from
    /// its input `x`, `weight`, output `y` and the output's gradient `grad`.
    fn dense_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        y: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        activation: Activation,
        wanted: Wanted,
    ) -> [Option<FloatTensor<Self>>; 3];
}

/// `[batch, channels, pixels]` of a flex tensor `[batch, channels, …]`.
fn channel_shape(x: &FlexTensor) -> ChannelShape {
    let shape = x.layout().shape();
    let (batch, channels) = (shape[0], shape[1]);
    ChannelShape {
        batch,
        channels,
        pixels: shape.num_elements() / (batch * channels).max(1),
    }
}

fn vector(values: Vec<f32>) -> FlexTensor {
    let n = values.len();
    FlexTensor::from_data(TensorData::new(values, [n]))
}

/// A flex tensor's values as one contiguous `f32` buffer (copied only when strided).
fn values(tensor: &FlexTensor) -> FlexTensor {
    tensor.to_contiguous()
}

fn slice(tensor: &FlexTensor) -> &[f32] {
    tensor
        .as_slice::<f32>()
        .expect("the kernels are only called on contiguous f32 tensors (see kernels::fast_path)")
}

fn tensor(values: Vec<f32>, shape: [usize; 4]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

fn image_shape(g: &ConvGeometry) -> [usize; 4] {
    [g.batch, g.image[0], g.image[1], g.image[2]]
}

fn map_shape(g: &ConvGeometry) -> [usize; 4] {
    [g.batch, g.map[0], g.map[1], g.map[2]]
}

fn weight_shape(g: &ConvGeometry) -> [usize; 4] {
    [g.map[0], g.image[0], g.kernel[0], g.kernel[1]]
}

impl TrainingKernels for Flex {
    fn conv2d_im2col(
        image: FlexTensor,
        weight: FlexTensor,
        bias: FlexTensor,
        geometry: ConvGeometry,
    ) -> FlexTensor {
        let (image, weight, bias) = (values(&image), values(&weight), values(&bias));
        let map = cpu::im2col_matmul(slice(&image), slice(&weight), Some(slice(&bias)), &geometry);
        tensor(map, map_shape(&geometry))
    }

    fn conv_transpose2d_col2im(
        map: FlexTensor,
        weight: FlexTensor,
        bias: FlexTensor,
        geometry: ConvGeometry,
    ) -> FlexTensor {
        let (map, weight, bias) = (values(&map), values(&weight), values(&bias));
        let image = cpu::matmul_col2im(slice(&map), slice(&weight), Some(slice(&bias)), &geometry);
        tensor(image, image_shape(&geometry))
    }

    fn batch_norm_leaky_relu(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        moments: FlexTensor,
        epsilon: f64,
        slope: f64,
    ) -> FlexTensor {
        let shape = x.layout().shape().clone();
        let (x, gamma, beta, moments) =
            (values(&x), values(&gamma), values(&beta), values(&moments));
        let out = cpu::batch_norm_leaky_relu(
            slice(&x),
            slice(&gamma),
            slice(&beta),
            slice(&moments),
            epsilon,
            slope as f32,
            channel_shape(&x),
        );
        FlexTensor::from_data(TensorData::new(out, shape))
    }

    fn tanh(x: FlexTensor) -> FlexTensor {
        let shape = x.layout().shape().clone();
        let x = values(&x);
        FlexTensor::from_data(TensorData::new(cpu::tanh(slice(&x)), shape))
    }

    fn dense(
        x: FlexTensor,
        weight: FlexTensor,
        bias: FlexTensor,
        activation: Activation,
    ) -> FlexTensor {
        let shape = dense_shape(&x, &weight);
        let (x, weight, bias) = (values(&x), values(&weight), values(&bias));
        let y = dense::dense(slice(&x), slice(&weight), slice(&bias), shape, activation);
        FlexTensor::from_data(TensorData::new(y, [shape.batch, shape.outputs]))
    }
}

/// The sizes of a dense layer from its input `[batch, inputs]` and weight
/// `[inputs, outputs]`.
fn dense_shape(x: &FlexTensor, weight: &FlexTensor) -> DenseShape {
    let (x, weight) = (x.layout().shape(), weight.layout().shape());
    DenseShape {
        batch: x[0],
        inputs: x[1],
        outputs: weight[1],
    }
}

impl StatisticsKernels for Flex {
    fn channel_moments(x: FlexTensor) -> FlexTensor {
        let x = values(&x);
        vector(cpu::channel_moments(slice(&x), channel_shape(&x)))
    }
}

impl OptimizerKernels for Flex {
    fn adam_update(
        param: FlexTensor,
        grad: FlexTensor,
        moment_1: FlexTensor,
        moment_2: FlexTensor,
        step: AdamStep,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let shape = param.layout().shape().clone();
        let (param, grad, moment_1, moment_2) = (
            values(&param),
            values(&grad),
            values(&moment_1),
            values(&moment_2),
        );
        let out = adam::adam_update(
            slice(&param),
            slice(&grad),
            slice(&moment_1),
            slice(&moment_2),
            &step,
        );
        let tensor = |v| FlexTensor::from_data(TensorData::new(v, shape.clone()));
        (
            tensor(out.param),
            tensor(out.moment_1),
            tensor(out.moment_2),
        )
    }
}

impl GradKernels for Flex {
    fn im2col_matmul(image: FlexTensor, weight: FlexTensor, geometry: ConvGeometry) -> FlexTensor {
        let (image, weight) = (values(&image), values(&weight));
        let map = cpu::im2col_matmul(slice(&image), slice(&weight), None, &geometry);
        tensor(map, map_shape(&geometry))
    }

    fn matmul_col2im(map: FlexTensor, weight: FlexTensor, geometry: ConvGeometry) -> FlexTensor {
        let (map, weight) = (values(&map), values(&weight));
        let image = cpu::matmul_col2im(slice(&map), slice(&weight), None, &geometry);
        tensor(image, image_shape(&geometry))
    }

    fn weight_grad(map: FlexTensor, image: FlexTensor, geometry: ConvGeometry) -> FlexTensor {
        let (map, image) = (values(&map), values(&image));
        let grad = cpu::weight_grad(slice(&map), slice(&image), &geometry);
        tensor(grad, weight_shape(&geometry))
    }

    fn channel_sums(x: FlexTensor) -> FlexTensor {
        let x = values(&x);
        let ChannelShape {
            batch,
            channels,
            pixels,
        } = channel_shape(&x);
        vector(cpu::channel_sums(slice(&x), batch, channels, pixels))
    }

    fn batch_norm_leaky_relu_backward(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        moments: FlexTensor,
        grad: FlexTensor,
        epsilon: f64,
        slope: f64,
    ) -> [FlexTensor; 3] {
        let shape = x.layout().shape().clone();
        let (x, gamma, beta, moments, grad) = (
            values(&x),
            values(&gamma),
            values(&beta),
            values(&moments),
            values(&grad),
        );
        let grads = cpu::batch_norm_leaky_relu_backward(
            slice(&x),
            slice(&gamma),
            slice(&beta),
            slice(&moments),
            slice(&grad),
            epsilon,
            slope as f32,
            channel_shape(&x),
        );
        [
            FlexTensor::from_data(TensorData::new(grads.input, shape)),
            vector(grads.gamma),
            vector(grads.beta),
        ]
    }

    fn tanh_backward(y: FlexTensor, grad: FlexTensor) -> FlexTensor {
        let shape = y.layout().shape().clone();
        let (y, grad) = (values(&y), values(&grad));
        let dx = cpu::tanh_backward(slice(&y), slice(&grad));
        FlexTensor::from_data(TensorData::new(dx, shape))
    }

    fn dense_backward(
        x: FlexTensor,
        weight: FlexTensor,
        y: FlexTensor,
        grad: FlexTensor,
        activation: Activation,
        wanted: Wanted,
    ) -> [Option<FlexTensor>; 3] {
        let shape = dense_shape(&x, &weight);
        let (x, weight, y, grad) = (values(&x), values(&weight), values(&y), values(&grad));
        let grads = dense::dense_backward(
            slice(&x),
            slice(&weight),
            slice(&y),
            slice(&grad),
            shape,
            activation,
            wanted,
        );
        [
            grads
                .input
                .map(|g| FlexTensor::from_data(TensorData::new(g, [shape.batch, shape.inputs]))),
            grads
                .weight
                .map(|g| FlexTensor::from_data(TensorData::new(g, [shape.inputs, shape.outputs]))),
            grads.bias.map(vector),
        ]
    }
}

/// Records which gradients a convolution-shaped layer needs and how to compute them.
#[derive(Debug)]
struct ConvBackward {
    transposed: bool,
}

impl<B: GradKernels> Backward<B, 3> for ConvBackward {
    /// The layer input and the weight, checkpointed, and the geometry.
    type State = (NodeId, NodeId, ConvGeometry);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_input, node_weight, node_bias] = ops.parents;
        let grad = grads.consume::<B>(&ops.node); // the layer output's gradient
        let (input_state, weight_state, geometry) = ops.state;
        let input = checkpointer.retrieve_node_output::<FloatTensor<B>>(input_state);
        let weight = checkpointer.retrieve_node_output::<FloatTensor<B>>(weight_state);
        // A convolution maps image → map, a transposed convolution map → image; the
        // same three products serve both with the roles of input and output swapped.
        if let Some(node) = node_input {
            let input_grad = if self.transposed {
                B::im2col_matmul(grad.clone(), weight.clone(), geometry)
            } else {
                B::matmul_col2im(grad.clone(), weight.clone(), geometry)
            };
            grads.register::<B>(node.id, input_grad);
        }
        if let Some(node) = node_weight {
            let weight_grad = if self.transposed {
                B::weight_grad(input, grad.clone(), geometry)
            } else {
                B::weight_grad(grad.clone(), input, geometry)
            };
            grads.register::<B>(node.id, weight_grad);
        }
        if let Some(node) = node_bias {
            grads.register::<B>(node.id, B::channel_sums(grad));
        }
    }
}

/// A layer's forward pass on the inner backend: (input, weight, bias, geometry) → output.
type ConvForward<B> =
    fn(FloatTensor<B>, FloatTensor<B>, FloatTensor<B>, ConvGeometry) -> FloatTensor<B>;

/// Runs `forward` on the inner backend and records [`ConvBackward`] when a gradient is
/// needed.
fn record<B: TrainingKernels + GradKernels, C: CheckpointStrategy>(
    input: FloatTensor<Autodiff<B, C>>,
    weight: FloatTensor<Autodiff<B, C>>,
    bias: FloatTensor<Autodiff<B, C>>,
    geometry: ConvGeometry,
    transposed: bool,
    forward: ConvForward<B>,
) -> FloatTensor<Autodiff<B, C>> {
    let nodes = [input.node(), weight.node(), bias.node()];
    let backward = ConvBackward { transposed };
    match backward.prepare::<C>(nodes).compute_bound().stateful() {
        OpsKind::Tracked(mut prep) => {
            let input_state = prep.checkpoint(&input);
            let weight_state = prep.checkpoint(&weight);
            let output = forward(
                input.into_primitive(),
                weight.into_primitive(),
                bias.into_primitive(),
                geometry,
            );
            prep.finish((input_state, weight_state, geometry), output)
        }
        OpsKind::UnTracked(prep) => prep.finish(forward(
            input.into_primitive(),
            weight.into_primitive(),
            bias.into_primitive(),
            geometry,
        )),
    }
}

/// Keeps [`TrainingKernels::tanh`]'s output, from which its gradient follows.
#[derive(Debug)]
struct TanhBackward;

impl<B: GradKernels> Backward<B, 1> for TanhBackward {
    /// tanh's output.
    type State = FloatTensor<B>;

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let grad = grads.consume::<B>(&ops.node);
        let [parent] = ops.parents;
        if let Some(node) = parent {
            grads.register::<B>(node.id, B::tanh_backward(ops.state, grad));
        }
    }
}

/// Records [`TrainingKernels::batch_norm_leaky_relu`]'s inputs for its backward pass.
#[derive(Debug)]
struct BatchNormBackward;

impl<B: GradKernels> Backward<B, 3> for BatchNormBackward {
    /// x, γ and β checkpointed; the moments, ε and the slope as the forward pass used them.
    type State = (NodeId, NodeId, NodeId, FloatTensor<B>, f64, f64);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let grad = grads.consume::<B>(&ops.node); // the activation's output gradient
        let (x_state, gamma_state, beta_state, moments, epsilon, slope) = ops.state;
        let x = checkpointer.retrieve_node_output::<FloatTensor<B>>(x_state);
        let gamma = checkpointer.retrieve_node_output::<FloatTensor<B>>(gamma_state);
        let beta = checkpointer.retrieve_node_output::<FloatTensor<B>>(beta_state);
        let computed =
            B::batch_norm_leaky_relu_backward(x, gamma, beta, moments, grad, epsilon, slope);
        for (parent, grad) in ops.parents.into_iter().zip(computed) {
            if let Some(node) = parent {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

/// Records [`TrainingKernels::dense`]'s input, weight and output for its backward pass.
#[derive(Debug)]
struct DenseBackward;

impl<B: GradKernels> Backward<B, 3> for DenseBackward {
    /// x and the weight checkpointed; the output (kept only when the activation's
    /// derivative is read off it) and the activation.
    type State = (NodeId, NodeId, Option<FloatTensor<B>>, Activation);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let grad = grads.consume::<B>(&ops.node); // the activation's output gradient
        let (x_state, weight_state, y, activation) = ops.state;
        let x = checkpointer.retrieve_node_output::<FloatTensor<B>>(x_state);
        let weight = checkpointer.retrieve_node_output::<FloatTensor<B>>(weight_state);
        let [input, weight_node, bias] = &ops.parents;
        let wanted = Wanted {
            input: input.is_some(),
            weight: weight_node.is_some(),
            bias: bias.is_some(),
        };
        // Without an activation the output's gradient is the pre-activation one, and
        // the output itself is not needed: the gradient stands in for it.
        let y = y.unwrap_or_else(|| grad.clone());
        let computed = B::dense_backward(x, weight, y, grad, activation, wanted);
        for (parent, grad) in ops.parents.into_iter().zip(computed) {
            if let (Some(node), Some(grad)) = (parent, grad) {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

impl<B: TrainingKernels + GradKernels, C: CheckpointStrategy> TrainingKernels for Autodiff<B, C> {
    fn conv2d_im2col(
        image: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        geometry: ConvGeometry,
    ) -> FloatTensor<Self> {
        record::<B, C>(image, weight, bias, geometry, false, B::conv2d_im2col)
    }

    fn conv_transpose2d_col2im(
        map: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        geometry: ConvGeometry,
    ) -> FloatTensor<Self> {
        record::<B, C>(
            map,
            weight,
            bias,
            geometry,
            true,
            B::conv_transpose2d_col2im,
        )
    }

    fn batch_norm_leaky_relu(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        moments: FloatTensor<Self>,
        epsilon: f64,
        slope: f64,
    ) -> FloatTensor<Self> {
        let nodes = [x.node(), gamma.node(), beta.node()];
        let moments = moments.into_primitive();
        match BatchNormBackward
            .prepare::<C>(nodes)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let gamma_state = prep.checkpoint(&gamma);
                let beta_state = prep.checkpoint(&beta);
                let output = B::batch_norm_leaky_relu(
                    x.into_primitive(),
                    gamma.into_primitive(),
                    beta.into_primitive(),
                    moments.clone(),
                    epsilon,
                    slope,
                );
                prep.finish(
                    (x_state, gamma_state, beta_state, moments, epsilon, slope),
                    output,
                )
            }
            OpsKind::UnTracked(prep) => prep.finish(B::batch_norm_leaky_relu(
                x.into_primitive(),
                gamma.into_primitive(),
                beta.into_primitive(),
                moments,
                epsilon,
                slope,
            )),
        }
    }

    fn tanh(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let nodes = [x.node()];
        match TanhBackward.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let output = B::tanh(x.into_primitive());
                prep.finish(output.clone(), output)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::tanh(x.into_primitive())),
        }
    }

    fn dense(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        activation: Activation,
    ) -> FloatTensor<Self> {
        let nodes = [x.node(), weight.node(), bias.node()];
        match DenseBackward.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let weight_state = prep.checkpoint(&weight);
                let output = B::dense(
                    x.into_primitive(),
                    weight.into_primitive(),
                    bias.into_primitive(),
                    activation,
                );
                let kept = (activation != Activation::Identity).then(|| output.clone());
                prep.finish((x_state, weight_state, kept, activation), output)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::dense(
                x.into_primitive(),
                weight.into_primitive(),
                bias.into_primitive(),
                activation,
            )),
        }
    }
}
