//! ONNX Runtime is the reference: tract and ort agree on every exported model shape.
//! Needs `--features ort` and ORT_DYLIB_PATH pointing at libonnxruntime.so (see the README);
//! without the library the test prints why it skipped, or fails when `CI` is set.
#![cfg(feature = "ort")]

mod common;

use runtime::generator::Generator;
use runtime::noise::noise;
use runtime::onnx::adopt::Foreign;
use runtime::ort_backend::{ORT_DYLIB_ENV, OrtGenerator, library_path, resolve_library};

const TOLERANCE: f32 = 1e-4;

#[test]
fn tract_and_ort_agree() {
    if let Err(e) = library_path() {
        common::skip_or_fail_in_ci("tract_and_ort_agree", &e.to_string());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (name, spec) in common::all_specs() {
        let path = common::write(&spec, dir.path(), name);
        let tract = Generator::load(&path).unwrap();
        let ort = OrtGenerator::load(&path, 1).unwrap();
        for batch in [1, 64, 3] {
            let z = noise(batch, spec.z_dim, 21);
            let labels = common::labels(&spec, batch);
            let a = tract.run(&z, labels.as_deref()).unwrap();
            let b = ort.run(&z, labels.as_deref()).unwrap();
            let diff = common::max_abs_diff(&a, &b);
            assert!(
                diff <= TOLERANCE,
                "{name} batch {batch}: max |tract - ort| = {diff}"
            );
            let reference = spec.forward_reference(&z, labels.as_deref()).unwrap();
            assert!(
                common::max_abs_diff(&reference, &b) <= TOLERANCE,
                "{name}: ort vs reference"
            );
        }
    }
}

#[test]
fn a_missing_library_is_a_clear_error() {
    let err = resolve_library(Some(std::ffi::OsStr::new("/nonexistent/libonnxruntime.so")))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("/nonexistent/libonnxruntime.so") && err.contains("pip install"),
        "{err}"
    );
    let err = resolve_library(None).unwrap_err().to_string();
    assert!(
        err.contains(ORT_DYLIB_ENV) && err.contains("not set"),
        "{err}"
    );
}

/// Generators from PyTorch and TensorFlow, adopted in memory, run the same in ONNX Runtime:
/// the adapter nodes are standard ONNX.
#[test]
fn adopted_foreign_generators_agree_in_ort() {
    if let Err(e) = library_path() {
        common::skip_or_fail_in_ci("adopted_foreign_generators_agree_in_ort", &e.to_string());
        return;
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/foreign");
    let grey = runtime::onnx::spec::ImageShape {
        channels: 1,
        height: 28,
        width: 28,
    };
    for (name, foreign) in [
        ("torch-mlp", Foreign::default()),
        ("torch-mlp-dynamo", Foreign::default()),
        (
            "torch-mlp-cond-flat",
            Foreign {
                image: Some(grey),
                ..Foreign::default()
            },
        ),
        ("torch-dcgan", Foreign::default()),
        ("tf-mlp", Foreign::default()),
        ("tf-dcgan-rgb", Foreign::default()),
    ] {
        let path = dir.join(format!("{name}.onnx"));
        let options = runtime::engine::tract::LoadOptions {
            foreign: foreign.clone(),
            ..Default::default()
        };
        let tract = Generator::load_with(&path, &options).unwrap();
        let ort = OrtGenerator::load_foreign(&path, 1, &foreign).unwrap();
        let info = tract.info();
        let z = noise(5, info.z_dim, 4);
        let labels: Option<Vec<i64>> = info
            .is_conditional()
            .then(|| (0..5).map(|i| i % info.classes.len() as i64).collect());
        let a = tract.run(&z, labels.as_deref()).unwrap();
        let b = ort.run(&z, labels.as_deref()).unwrap();
        let diff = common::max_abs_diff(&a, &b);
        assert!(diff <= TOLERANCE, "{name}: max |tract - ort| = {diff}");
    }
}
