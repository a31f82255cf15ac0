//! Round trip of the export: the shipped ONNX generators, imported back into burn by
//! `burn-onnx`'s `ModelGen` (see `build.rs`), compute what tract computes on the same
//! file — which the trainer's export-parity test in turn ties to the trained burn model.

#![allow(clippy::all, dead_code)]

mod mnist_mlp {
    include!(concat!(env!("OUT_DIR"), "/model/mnist-mlp.rs"));
}
mod mnist_mlp_cond {
    include!(concat!(env!("OUT_DIR"), "/model/mnist-mlp-cond.rs"));
}

use std::path::Path;

use burn::tensor::{Device, Int, Tensor, TensorData};
use runtime::generator::Generator;

const COUNT: usize = 8;

fn models() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models")
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn imported_unconditional_generator_matches_tract() {
    let device = Device::flex();
    let z = runtime::noise::noise(COUNT, 100, 3);
    let imported = mnist_mlp::Model::default();
    let burn_out: Vec<f32> = imported
        .forward(Tensor::from_data(
            TensorData::new(z.clone(), [COUNT, 100]),
            &device,
        ))
        .into_data()
        .try_to_vec()
        .unwrap();
    let tract_out = Generator::load(models().join("mnist-mlp.onnx"))
        .unwrap()
        .run(&z, None)
        .unwrap();
    assert_eq!(burn_out.len(), COUNT * 784);
    let diff = max_abs_diff(&burn_out, &tract_out);
    assert!(diff <= 1e-4, "burn-onnx import and tract differ by {diff}");
}

#[test]
fn imported_conditional_generator_matches_tract() {
    let device = Device::flex();
    let z = runtime::noise::noise(COUNT, 100, 4);
    let labels: Vec<i64> = (0..COUNT as i64).collect();
    let imported = mnist_mlp_cond::Model::default();
    let burn_out: Vec<f32> = imported
        .forward(
            Tensor::from_data(TensorData::new(z.clone(), [COUNT, 100]), &device),
            Tensor::<1, Int>::from_data(TensorData::new(labels.clone(), [COUNT]), &device),
        )
        .into_data()
        .try_to_vec()
        .unwrap();
    let tract_out = Generator::load(models().join("mnist-mlp-cond.onnx"))
        .unwrap()
        .run(&z, Some(&labels))
        .unwrap();
    let diff = max_abs_diff(&burn_out, &tract_out);
    assert!(diff <= 1e-4, "burn-onnx import and tract differ by {diff}");
    // Different labels give different images: the label input is wired through.
    assert!(max_abs_diff(&burn_out[..784], &burn_out[784..2 * 784]) > 0.05);
}
