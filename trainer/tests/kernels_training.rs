//! Short `dcgan` and `mlp` training runs through Gantry's kernels track the same runs
//! through burn's own ops. Its own test binary: switching the kernels is process-wide.

use std::path::Path;

use burn::tensor::Device;
use trainer::config::TrainConfig;
use trainer::data::{BatchCursor, Batcher};
use trainer::kernels;
use trainer::model::ModelKind;
use trainer::run;
use trainer::training::{Gan, StepStats};

/// Step statistics of a 200-step conditional run (batch 32, narrow layers).
fn losses(kind: ModelKind, fast: bool) -> Vec<StepStats> {
    kernels::set_enabled(fast);
    let mut config = TrainConfig {
        dataset: Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist-10k"),
        max_examples: Some(2048),
        conditional: true,
        batch_size: 32,
        seed: 5,
        z_dim: 16,
        ..TrainConfig::default()
    };
    config.model.kind = kind;
    config.model.dcgan.generator_channels = vec![32, 16, 8];
    config.model.dcgan.discriminator_channels = vec![8, 16, 32];
    let data = run::load_training_set(&config).unwrap();
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
    (0..200)
        .map(|_| gan.train_step(&batcher.next_batch(&data)))
        .collect()
}

/// Float rounding differs between the two (other summation orders), and a GAN amplifies
/// differences over time: the runs agree step by step at first, and in their averages later.
#[test]
fn a_200_step_run_tracks_burns_ops() {
    for kind in [ModelKind::Dcgan, ModelKind::Mlp] {
        let reference = losses(kind, false);
        let fast = losses(kind, true);
        kernels::set_enabled(true);
        tracks(kind, &fast, &reference);
    }
}

fn tracks(kind: ModelKind, fast: &[StepStats], reference: &[StepStats]) {
    for (i, (f, r)) in fast.iter().zip(reference).enumerate() {
        assert!(
            !f.is_diverged(),
            "{kind} step {i}: the kernels' run diverged: {f:?}"
        );
        let diff = (f.d_loss - r.d_loss).abs().max((f.g_loss - r.g_loss).abs());
        let bound = match i {
            0..20 => 1e-3,
            20..50 => 2e-2,
            _ => continue,
        };
        assert!(
            diff <= bound,
            "{kind} step {i}: losses {f:?} vs burn's {r:?}"
        );
    }
    let tail_mean = |s: &[StepStats], d: bool| {
        let tail = &s[150..];
        tail.iter()
            .map(|s| if d { s.d_loss } else { s.g_loss })
            .sum::<f32>()
            / tail.len() as f32
    };
    for (what, d) in [("d_loss", true), ("g_loss", false)] {
        let (a, b) = (tail_mean(fast, d), tail_mean(reference, d));
        assert!(
            (a - b).abs() <= 0.05 * b.abs(),
            "{kind} {what} over the last 50 steps: {a} with the kernels, {b} with burn's ops"
        );
    }
}
