//! One noise stream everywhere: seed 42, label 7 is the same `z` — bit for bit — in the
//! trainer's sample grids, in `runtime generate` (desktop and Pi: the same code) and in the
//! firmware, and so the same digit, within the int8 error on the microcontroller.

use std::path::Path;

use firmware::blob::Model;
use firmware::infer::Noise;
use runtime::generator::Generator;
use trainer::config::TrainConfig;
use trainer::run::{self, RunOptions};

fn bits(values: &[f32]) -> Vec<u32> {
    values.iter().map(|v| v.to_bits()).collect()
}

#[test]
fn seed_42_is_the_same_z_in_runtime_and_firmware() {
    for z_dim in [1, 64, 100] {
        let runtime_z = runtime::noise::noise(1, z_dim, 42);
        let mut firmware_z = vec![0f32; z_dim];
        firmware::noise::latent(42, &mut firmware_z);
        assert_eq!(bits(&runtime_z), bits(&firmware_z), "z_dim {z_dim}");
    }
    // Sample i of a request is seed + i on both sides.
    let three = runtime::noise::noise(3, 10, 42);
    let mut third = [0f32; 10];
    firmware::noise::latent(44, &mut third);
    assert_eq!(bits(&three[20..]), bits(&third));
}

#[test]
fn seed_42_label_7_is_the_same_digit_on_the_desktop_and_the_microcontroller() {
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
    let desktop = Generator::load(models.join("mnist-mlp-cond.onnx")).unwrap();
    let want = desktop.generate(1, Some(7), 42).unwrap();
    let want = want.image_u8(0);

    let blob = std::fs::read(models.join("mnist-mlp-cond.gtfw")).unwrap();
    let microcontroller = Model::parse(&blob).unwrap();
    let mut got = vec![0u8; microcontroller.output_len()];
    microcontroller
        .generate(Noise::Seed(42), Some(7), &mut got)
        .unwrap();

    let diffs: Vec<u32> = want
        .iter()
        .zip(&got)
        .map(|(a, b)| u32::from(a.abs_diff(*b)))
        .collect();
    let mean = f64::from(diffs.iter().sum::<u32>()) / diffs.len() as f64;
    // The int8 bounds of runtime/tests/firmware.rs, in gray levels.
    assert!(mean < 3.2, "mean difference {mean:.2} gray levels");
    // And it is a different digit for another seed: the comparison can fail.
    let other = desktop.generate(1, Some(7), 43).unwrap().image_u8(0);
    let mean_other = other
        .iter()
        .zip(&got)
        .map(|(a, b)| f64::from(a.abs_diff(*b)))
        .sum::<f64>()
        / other.len() as f64;
    assert!(
        mean_other > 2.0 * mean,
        "seed 43 vs 42: {mean_other:.2} vs {mean:.2}"
    );
}

#[test]
fn the_trainer_sample_grid_draws_what_runtime_generate_draws() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = TrainConfig {
        dataset: Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist-10k"),
        max_examples: Some(512),
        conditional: true,
        batch_size: 32,
        steps: 30,
        seed: 9,
        out_dir: Some(dir.path().join("run")),
        ..TrainConfig::default()
    };
    config.z_dim = 16;
    config.model.mlp.generator_hidden = vec![32];
    config.model.mlp.discriminator_hidden = vec![32];
    config.every.sample = 0;
    config.eval.auto = false;
    let summary = run::train(config.clone(), &RunOptions::default()).unwrap();
    let onnx = dir.path().join("g.onnx");
    trainer::export::export_run(&summary.run_dir, &onnx).unwrap();
    let generator = Generator::load(&onnx).unwrap();

    // samples/latest.png: a row per class, 10 columns, 28×28 tiles drawn at 2×.
    let grid = image::open(summary.run_dir.join("samples/latest.png"))
        .unwrap()
        .to_luma8();
    let (cols, side) = (10u32, 56u32);
    let gap = (grid.width() - cols * side) / (cols + 1);
    let seed = run::sample_grid_seed(config.seed);
    for (row, col) in [(7u32, 0u32), (3, 4), (9, 9)] {
        let index = u64::from(row * cols + col);
        let sample = generator
            .generate(1, Some(row as usize), seed.wrapping_add(index))
            .unwrap()
            .image_u8(0);
        let (x0, y0) = (gap + col * (side + gap), gap + row * (side + gap));
        let worst = (0..28u32)
            .flat_map(|y| (0..28u32).map(move |x| (x, y)))
            .map(|(x, y)| {
                let tile = grid.get_pixel(x0 + 2 * x, y0 + 2 * y)[0];
                tile.abs_diff(sample[(y * 28 + x) as usize])
            })
            .max()
            .unwrap();
        // burn and tract compute the same f32 graph; rounding to gray levels may differ by one.
        assert!(
            worst <= 2,
            "grid tile ({row}, {col}) differs by {worst} gray levels"
        );
    }
}
