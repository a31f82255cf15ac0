//! Training speed: steps/s of the alternating loop (one D step + one G step) at batch
//! 128 on MNIST-10k, for the `mlp` and `dcgan` models on the CPU backend.
//!
//!   cargo bench -p trainer --bench train_step -- [mlp|dcgan] [STEPS]
//!
//! Prints one `steps_per_s=` line per model (20 warm-up steps are not timed, as in the
//! TensorFlow reference), so `scripts/bench-vs-reference.sh` can run it side by side
//! with `../shared/reference/keras_ch3_gan.py`.

use std::path::Path;
use std::time::Instant;

use burn::tensor::Device;
use trainer::config::TrainConfig;
use trainer::data::{BatchCursor, Batcher};
use trainer::model::ModelKind;
use trainer::run;
use trainer::training::Gan;

const WARMUP: usize = 20;

// The trainer binary's allocator (see trainer/src/main.rs), so the bench measures what
// `trainer train` runs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // `cargo bench` passes `--bench`; keep only our own arguments.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let models: Vec<ModelKind> = match args.first().map(String::as_str) {
        Some("mlp") => vec![ModelKind::Mlp],
        Some("dcgan") => vec![ModelKind::Dcgan],
        _ => vec![ModelKind::Mlp, ModelKind::Dcgan],
    };
    let steps_arg: Option<usize> = args.get(1).and_then(|s| s.parse().ok());
    for kind in models {
        let steps = steps_arg.unwrap_or(match kind {
            ModelKind::Mlp => 3000,
            ModelKind::Dcgan => 200,
        });
        let mut config = TrainConfig {
            dataset: Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist-10k"),
            batch_size: 128,
            ..TrainConfig::default()
        };
        config.model.kind = kind;
        let data = run::load_training_set(&config).expect("bundled MNIST-10k");
        let mut gan = Gan::new(
            &config,
            data.class_names().len(),
            data.shape(),
            &Device::flex(),
        );
        let mut batcher = Batcher::new(
            &data,
            config.batch_size,
            config.seed,
            BatchCursor::default(),
        );
        let mut start = Instant::now();
        let mut last = None;
        for step in 0..WARMUP + steps {
            if step == WARMUP {
                start = Instant::now();
            }
            let batch = batcher.next_batch(&data);
            last = Some(gan.train_step(&batch));
        }
        let seconds = start.elapsed().as_secs_f64();
        let last = last.expect("at least one step");
        println!(
            "model={kind} batch=128 steps={steps} seconds={seconds:.2} steps_per_s={:.1} d_loss={:.3} g_loss={:.3}",
            steps as f64 / seconds,
            last.d_loss,
            last.g_loss
        );
    }
}
