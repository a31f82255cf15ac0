//! The alternating loop of the system: a discriminator step on real and fake
//! examples, then a generator step through the discriminator.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::config::{AdamSettings, TrainConfig};
use crate::data::{ImageShape, RealBatch};
use crate::ema;
use crate::kernels;
use crate::model::{Discriminator, Generator};
use crate::noise::NoiseSource;

/// What one step measured. Probabilities are means of D(·) = sigmoid(logit).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StepStats {
    /// D's loss in its step.
    pub d_loss: f32,
    /// G's loss in its step.
    pub g_loss: f32,
    /// Mean D(x) on the real batch.
    pub d_real: f32,
    /// Mean D(G(z)) on the fake batch of the D step.
    pub d_fake: f32,
    /// Share of real examples D called real.
    pub acc_real: f32,
    /// Share of fake examples D called fake.
    pub acc_fake: f32,
}

impl StepStats {
    /// True when a loss or probability is NaN or infinite.
    pub fn is_diverged(&self) -> bool {
        [self.d_loss, self.g_loss, self.d_real, self.d_fake]
            .iter()
            .any(|v| !v.is_finite())
    }
}

/// Runs `build` (which draws initial weights on `device`) right after seeding the device,
/// with no other seeded draw in between: burn's seeded generator is shared by every thread
/// of the process, so two runs initialised at once (two threads, or the parallel tests)
/// would otherwise interleave their draws and start from other weights than their seeds say.
pub fn seeded<T>(device: &Device, seed: u64, build: impl FnOnce() -> T) -> T {
    static DRAWS: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _only_us = DRAWS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    device.seed(seed);
    build()
}

/// The two players, their optimizers and the noise they train on.
pub struct Gan {
    /// G(z) → x*, on the autodiff device.
    pub generator: Generator,
    /// D(x) → logit, on the autodiff device.
    pub discriminator: Discriminator,
    /// G's Adam state.
    pub generator_optim: ModuleOptimizer,
    /// D's Adam state.
    pub discriminator_optim: ModuleOptimizer,
    /// Moving average of G's weights (inference device), when enabled.
    pub ema: Option<Generator>,
    /// Noise and fake labels.
    pub noise: NoiseSource,
    /// Steps completed.
    pub step: usize,
    config: TrainConfig,
    classes: usize,
    image: ImageShape,
    device: Device,
    /// The threads a step runs on (see [`Gan::in_pool`]).
    pool: Option<rayon::ThreadPool>,
}

/// Adam with burn's update rule and state (checkpoints are burn's Adam records),
/// fused into one pass per parameter tensor on the CPU backend.
fn adam(settings: &AdamSettings) -> ModuleOptimizer {
    ModuleOptimizer::from(kernels::Adam::new(settings))
}

impl Gan {
    /// Fresh players for `config`, on `device` (autodiff is switched on here).
    ///
    /// `classes` is the data set's class count; it is used only by conditional models.
    pub fn new(config: &TrainConfig, classes: usize, image: ImageShape, device: &Device) -> Self {
        let device = device.clone().autodiff();
        let label_classes = if config.conditional { classes } else { 0 };
        let (generator, discriminator) = seeded(&device, config.seed, || {
            let generator =
                Generator::new(&config.model, config.z_dim, label_classes, image, &device);
            let discriminator = Discriminator::new(&config.model, label_classes, image, &device);
            initialize(&generator);
            initialize(&discriminator);
            (generator, discriminator)
        });
        let ema = config.ema_decay.map(|_| generator.valid());
        Self {
            generator,
            discriminator,
            generator_optim: adam(&config.generator_adam),
            discriminator_optim: adam(&config.discriminator_adam),
            ema,
            noise: NoiseSource::new(config.seed),
            step: 0,
            config: config.clone(),
            classes: label_classes,
            image,
            device: device.clone(),
            // The CPU backend only: on a GPU the pool would only add a thread hop.
            pool: kernels::on_cpu(&device)
                .then(|| {
                    rayon::ThreadPoolBuilder::new()
                        .num_threads(rayon::current_num_threads())
                        .thread_name(|i| format!("gantry-step-{i}"))
                        .build()
                        .ok()
                })
                .flatten(),
        }
    }

    /// Runs `work` on one of this run's own rayon threads.
    ///
    /// The kernels and `gemm` split each product over the current rayon pool. Called
    /// from a thread outside the pool, every such split hands its jobs to the pool and
    /// sleeps on a condition variable until they finish: a futex wake-up and sleep per
    /// matrix product, which cost 12 % of an `mlp` step. Run from inside the pool, the
    /// caller works on its own share and the other threads steal theirs. The pool is
    /// the run's own, not rayon's global one, so two runs in one process (the tests)
    /// never execute each other's steps inside their own.
    ///
    /// Only with Gantry's kernels: burn's own `BatchNorm` keeps its running statistics
    /// per thread, so a step through it must stay on one thread to stay reproducible.
    fn in_pool<R: Send>(&mut self, work: impl FnOnce(&mut Self) -> R + Send) -> R {
        match self.pool.take() {
            Some(pool) if kernels::enabled() => {
                let result = pool.install(|| work(self));
                self.pool = Some(pool);
                result
            }
            pool => {
                self.pool = pool;
                work(self)
            }
        }
    }

    /// Classes G and D are conditioned on (0 for an unconditional model).
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// The run's config.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// The autodiff device the players train on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    fn noise_tensor(&mut self, batch: usize) -> Tensor<2> {
        let z = self.noise.noise(batch, self.config.z_dim);
        Tensor::from_data(TensorData::new(z, [batch, self.config.z_dim]), &self.device)
    }

    fn labels_tensor(&self, labels: Vec<i64>) -> Option<Tensor<1, Int>> {
        (self.classes > 0).then(|| {
            let n = labels.len();
            Tensor::from_data(TensorData::new(labels, [n]), &self.device)
        })
    }

    fn fake_labels(&mut self, batch: usize) -> Option<Tensor<1, Int>> {
        if self.classes == 0 {
            return None;
        }
        let labels = self.noise.labels(batch, self.classes);
        self.labels_tensor(labels)
    }

    /// One D step: classify a real batch and a fake batch from fresh z, back-propagate
    /// the classification error into D only.
    ///
    /// Returns `[d_loss, mean D(x), mean D(G(z)), real accuracy, fake accuracy]`.
    pub fn discriminator_step(&mut self, real: &RealBatch) -> [f32; 5] {
        self.in_pool(|gan| gan.discriminator_step_here(real))
    }

    fn discriminator_step_here(&mut self, real: &RealBatch) -> [f32; 5] {
        let batch = real.labels.len();
        let ImageShape {
            channels,
            height,
            width,
        } = self.image;
        let real_images = Tensor::<2>::from_data(
            TensorData::new(real.pixels.clone(), [batch, channels * height * width]),
            &self.device,
        )
        .reshape([batch, channels, height, width]); // [batch, C, H, W]
        let real_labels = self.labels_tensor(real.labels.clone());

        // Fakes from fresh z. G's weights are untracked here, so no graph is built
        // through G and its parameters get no gradient: the step cannot move G.
        let noise = self.noise_tensor(batch);
        let fake_labels = self.fake_labels(batch);
        let fake = self
            .generator
            .clone()
            .no_grad()
            .forward(noise, fake_labels.clone())
            .detach(); // [batch, C, H, W]

        let (real_logits, fake_logits) = if self.discriminator.has_batch_norm() {
            // Separate batches, as the book's loop: batch statistics never mix real and fake.
            let real_logits = self.discriminator.forward(real_images, real_labels); // [batch]
            let fake_logits = self.discriminator.forward(fake, fake_labels); // [batch]
            (real_logits, fake_logits)
        } else {
            // Without batch norm one pass over both halves computes the same logits with
            // half the kernel launches.
            let images = Tensor::cat(vec![real_images, fake], 0); // [2·batch, C, H, W]
            let labels = match (real_labels, fake_labels) {
                (Some(r), Some(f)) => Some(Tensor::cat(vec![r, f], 0)),
                _ => None,
            };
            let logits = self.discriminator.forward(images, labels); // [2·batch]
            (
                logits.clone().slice(0..batch),
                logits.slice(batch..2 * batch),
            )
        };
        let loss = self
            .config
            .loss
            .discriminator(real_logits.clone(), fake_logits.clone());

        // One transfer of the loss and the 2·batch logits; the statistics are computed on
        // the host, which costs less than a handful of tiny tensor ops every step.
        let host = read_values(vec![
            loss.clone().reshape([1]),
            real_logits.clone(),
            fake_logits.clone(),
        ]);
        let (d_loss, real, fake) = (host[0], &host[1..=batch], &host[batch + 1..]);
        let probability = |l: &f32| 1.0 / (1.0 + (-l).exp());
        let mean = |values: &[f32], f: &dyn Fn(&f32) -> f32| {
            values.iter().map(f).sum::<f32>() / values.len() as f32
        };
        let stats = [
            d_loss,
            mean(real, &probability),
            mean(fake, &probability),
            mean(real, &|l| f32::from(u8::from(*l > 0.0))),
            mean(fake, &|l| f32::from(u8::from(*l < 0.0))),
        ];

        let grads = GradientsParams::from_grads(loss.backward(), &self.discriminator);
        self.discriminator = self.discriminator_optim.step(
            self.config.discriminator_adam.learning_rate,
            self.discriminator.clone(),
            grads,
        );
        stats
    }

    /// One G step: fakes from fresh z, classified by D, G's loss back-propagated into
    /// G only. Returns G's loss.
    pub fn generator_step(&mut self, batch: usize) -> f32 {
        self.in_pool(|gan| gan.generator_step_here(batch))
    }

    fn generator_step_here(&mut self, batch: usize) -> f32 {
        let noise = self.noise_tensor(batch);
        let labels = self.fake_labels(batch);
        let fake = self.generator.forward(noise, labels.clone()); // [batch, C, H, W]
        // D's weights are untracked: gradients flow through D into G, but D gets none.
        let fake_logits = self.discriminator.clone().no_grad().forward(fake, labels); // [batch]
        let loss = self.config.loss.generator(fake_logits);
        let g_loss = read_values(vec![loss.clone()])[0];

        let grads = GradientsParams::from_grads(loss.backward(), &self.generator);
        self.generator = self.generator_optim.step(
            self.config.generator_adam.learning_rate,
            self.generator.clone(),
            grads,
        );
        if let (Some(ema), Some(decay)) = (self.ema.take(), self.config.ema_decay) {
            self.ema = Some(ema::update(
                ema,
                &self.generator,
                ema::warmed_up_decay(decay, self.step + 1),
            ));
        }
        g_loss
    }

    /// Replaces the settings read at every step (the learning rates), for a resumed run
    /// whose rates changed. The architecture and Adam's betas stay as built.
    pub fn set_learning_rates(&mut self, config: &TrainConfig) {
        self.config.generator_adam.learning_rate = config.generator_adam.learning_rate;
        self.config.discriminator_adam.learning_rate = config.discriminator_adam.learning_rate;
    }

    /// One training step: a D step on `real`, then a G step.
    pub fn train_step(&mut self, real: &RealBatch) -> StepStats {
        let (d, g_loss) = self.in_pool(|gan| {
            let d = gan.discriminator_step_here(real);
            crate::pause_point("step", gan.step + 1);
            (d, gan.generator_step_here(real.labels.len()))
        });
        let [d_loss, d_real, d_fake, acc_real, acc_fake] = d;
        self.step += 1;
        StepStats {
            d_loss,
            g_loss,
            d_real,
            d_fake,
            acc_real,
            acc_fake,
        }
    }

    /// The generator used for samples and export: the EMA copy when enabled, else G,
    /// in inference mode (batch norm uses its running statistics).
    pub fn inference_generator(&self) -> Generator {
        match &self.ema {
            Some(ema) => ema.clone(),
            None => self.generator.valid(),
        }
    }
}

/// Forces burn's lazily initialised parameters into existence.
///
/// A lazy parameter shares its pending state with its clones, so switching gradients
/// off on a clone (as the D and G steps do for the other player) would switch them off
/// on the original too. Initialised parameters are copied on write instead. Initialising
/// in layer order also makes the weights depend only on the device seed, not on when
/// they are first read.
pub fn initialize<M: Module>(module: &M) {
    struct Touch;
    impl ModuleVisitor for Touch {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let _ = param.val();
        }
    }
    module.visit(&mut Touch);
}

/// Reads 1-d tensors back to the host in one transfer, concatenated.
fn read_values(values: Vec<Tensor<1>>) -> Vec<f32> {
    let expected: usize = values.iter().map(|v| v.dims()[0]).sum();
    let joined = Tensor::cat(
        values
            .into_iter()
            .map(|v| v.detach().without_autodiff())
            .collect(),
        0,
    );
    // A read-back failure leaves NaNs, which the loop reports as divergence.
    joined
        .into_data()
        .try_to_vec::<f32>()
        .unwrap_or_else(|_| vec![f32::NAN; expected])
}

/// Runs `generator` on `noise` (`[count, z_dim]`, row-major) and optional labels;
/// returns planar pixels `[count, C, H, W]` in [-1, 1].
pub fn generate(
    generator: &Generator,
    noise: Vec<f32>,
    z_dim: usize,
    labels: Option<Vec<i64>>,
    device: &Device,
) -> Vec<f32> {
    let count = noise.len() / z_dim;
    let z = Tensor::<2>::from_data(TensorData::new(noise, [count, z_dim]), device);
    let labels = labels.map(|l| Tensor::<1, Int>::from_data(TensorData::new(l, [count]), device));
    generator
        .forward(z, labels)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap_or_default()
}
