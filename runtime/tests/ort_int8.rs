//! The quantized files load in ONNX Runtime too, in every form, and stay within the documented
//! error of f32 there. Needs `--features ort` and ORT_DYLIB_PATH (see the README); without the
//! library the test prints why it skipped.
#![cfg(feature = "ort")]

use std::path::{Path, PathBuf};

use runtime::backend::Backend;
use runtime::generator::Generator;
use runtime::noise::noise;
use runtime::ort_backend::{OrtGenerator, library_path};
use runtime::quantize::{Form, QuantizeOptions, quantize_file};

/// Same bounds as `tests/quantize.rs` (pixels in [-1, 1]).
const INT8_MEAN: f32 = 0.02;
const INT8_MAX: f32 = 0.6;
const WEIGHT_ONLY_MEAN: f32 = 0.01;
const WEIGHT_ONLY_MAX: f32 = 0.35;

fn shipped(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../models")
        .join(name)
}

fn errors(a: &[f32], b: &[f32]) -> (f32, f32) {
    let max = runtime::backend::max_abs_diff(a, b);
    let mean = a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f32>() / a.len() as f32;
    (max, mean)
}

#[test]
fn quantized_models_load_and_run_in_ort() {
    if let Err(e) = library_path() {
        eprintln!("SKIPPED quantized_models_load_and_run_in_ort: {e}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for name in ["mnist-mlp.onnx", "mnist-mlp-cond.onnx"] {
        let model = shipped(name);
        let f32 = Generator::load(&model).unwrap();
        let info = f32.info().clone();
        let n = 300;
        let z = noise(n, info.z_dim, 4242);
        let labels: Option<Vec<i64>> = info
            .is_conditional()
            .then(|| (0..n).map(|i| (i % info.classes.len()) as i64).collect());
        let want = f32.run(&z, labels.as_deref()).unwrap();
        for form in Form::ALL {
            let path = dir.path().join(format!("{form}.onnx"));
            let options = QuantizeOptions {
                form,
                ..QuantizeOptions::default()
            };
            quantize_file(&model, &options)
                .unwrap()
                .write(&path)
                .unwrap();
            let ort = OrtGenerator::load(&path, 1).unwrap();
            let expected_name = if form == Form::WeightOnly {
                "ort"
            } else {
                "ort-int8"
            };
            assert_eq!(ort.name(), expected_name);
            let got = ort.run(&z, labels.as_deref()).unwrap();
            let (max, mean) = errors(&want, &got);
            let tract = Generator::load(&path)
                .unwrap()
                .run(&z, labels.as_deref())
                .unwrap();
            let (engine_max, engine_mean) = errors(&tract, &got);
            eprintln!(
                "{name} {form}: ort vs f32 max {max:.4} mean {mean:.5}; ort vs tract (same file) max {engine_max:.4} mean {engine_mean:.6}"
            );
            let (max_bound, mean_bound) = if form == Form::WeightOnly {
                (WEIGHT_ONLY_MAX, WEIGHT_ONLY_MEAN)
            } else {
                (INT8_MAX, INT8_MEAN)
            };
            assert!(
                max <= max_bound && mean <= mean_bound,
                "{name} {form}: max {max}, mean {mean}"
            );
            // Both engines run the same int8 graph: they differ only where a value lands
            // near a rounding boundary (ORT and tract round some steps differently). Not so
            // for weight-only files: ONNX Runtime rewrites DequantizeLinear + Gemm into its
            // 8-bit `MatMulNBits` kernel (seen in its optimized-model dump, ORT 1.32), which does
            // not compute in f32.
            if form != Form::WeightOnly {
                assert!(engine_mean <= 0.001, "{name} {form}: {engine_mean}");
            }
        }
    }
}
