//! int8 quantization (`runtime quantize`, `--precision`): the quantized generators stay within
//! a documented error of f32, load in tract as int8, carry their scheme in the metadata, and
//! bad calibration input gets a clear error.

mod common;

use std::path::{Path, PathBuf};

use prost::Message;
use runtime::Error;
use runtime::generator::{Generator, LoadOptions, Precision};
use runtime::noise::noise;
use runtime::onnx::spec::Layer;
use runtime::quantize::{CalibrationMethod, ConvForm, Form, QuantizeOptions, quantize_file};
use tract_onnx::pb::ModelProto;

use common::{INT8_ERROR, PixelError, WEIGHT_ONLY_ERROR, shipped};

fn shipped_models() -> [PathBuf; 2] {
    [shipped("mnist-mlp.onnx"), shipped("mnist-mlp-cond.onnx")]
}

/// Fresh noise (not the calibration seed) and balanced labels.
fn inputs(g: &Generator, n: usize) -> (Vec<f32>, Option<Vec<i64>>) {
    let info = g.info();
    let z = noise(n, info.z_dim, 987_654);
    let labels = info
        .is_conditional()
        .then(|| (0..n).map(|i| (i % info.classes.len()) as i64).collect());
    (z, labels)
}

fn options(form: Form) -> QuantizeOptions {
    QuantizeOptions {
        form,
        ..QuantizeOptions::default()
    }
}

#[test]
fn quantized_shipped_models_stay_within_the_documented_error() {
    let dir = tempfile::tempdir().unwrap();
    for model in shipped_models() {
        let f32 = Generator::load(&model).unwrap();
        assert_eq!(f32.precision(), Precision::F32);
        let (z, labels) = inputs(&f32, 500);
        let want = f32.run(&z, labels.as_deref()).unwrap();
        for form in Form::ALL {
            let out = dir.path().join(format!("{form}.onnx"));
            quantize_file(&model, &options(form))
                .unwrap()
                .write(&out)
                .unwrap();
            let g = Generator::load(&out).unwrap();
            let expected = if form == Form::WeightOnly {
                Precision::F32
            } else {
                Precision::Int8
            };
            assert_eq!(g.precision(), expected, "{form}");
            assert_eq!(g.quantization().unwrap().form, form);
            let got = g.run(&z, labels.as_deref()).unwrap();
            let error = PixelError::between(&want, &got);
            let bound = if form == Form::WeightOnly {
                WEIGHT_ONLY_ERROR
            } else {
                INT8_ERROR
            };
            eprintln!(
                "{} {form}: |int8 - f32| max {:.4}, p99 {:.4}, mean {:.5}",
                model.display(),
                error.max,
                error.p99,
                error.mean
            );
            assert!(
                error.within(&bound),
                "{} {form}: {error:?} (bound {bound:?})",
                model.display()
            );
            // Quantization did happen: the output moved, and the file shrank about 4x.
            assert!(error.mean > 1e-4, "{form}: output identical to f32");
            let (a, b) = (
                std::fs::metadata(&model).unwrap().len(),
                std::fs::metadata(&out).unwrap().len(),
            );
            assert!(b * 3 < a, "{form}: {b} bytes vs {a} bytes f32");
        }
    }
}

#[test]
fn the_file_records_its_scheme_and_runs_integer_operators() {
    let dir = tempfile::tempdir().unwrap();
    let model = shipped("mnist-mlp-cond.onnx");
    let out = dir.path().join("int8.onnx");
    let opts = QuantizeOptions {
        samples: 300,
        seed: 5,
        method: CalibrationMethod::Percentile { percentile: 99.9 },
        form: Form::Integer,
    };
    quantize_file(&model, &opts).unwrap().write(&out).unwrap();
    let g = Generator::load(&out).unwrap();
    let q = g.quantization().unwrap();
    let c = q.calibration.as_ref().unwrap();
    assert_eq!((c.samples, c.seed), (300, 5));
    assert_eq!(c.method, CalibrationMethod::Percentile { percentile: 99.9 });
    assert_eq!(q.layers.len(), 2);
    assert!(
        q.layers
            .iter()
            .all(|l| l.compute == "int8" && l.input.is_some())
    );
    let ops = &g.summary().operators;
    assert_eq!(ops.get("MatMulInteger"), Some(&2), "{ops:?}");
    assert!(!ops.contains_key("Gemm"), "{ops:?}");
    // Everything else of the f32 model's metadata is kept.
    let f32 = Generator::load(&model).unwrap();
    for (k, v) in &f32.info().metadata {
        assert_eq!(g.info().metadata.get(k), Some(v), "{k}");
    }
    assert_eq!(g.info().classes, f32.info().classes);
    // Learned values are counted in int8 as in f32 (scales and zero points are not).
    assert_eq!(g.summary().parameters, f32.summary().parameters);
    // The same options give the same bytes.
    assert_eq!(
        quantize_file(&model, &opts).unwrap().to_bytes(),
        std::fs::read(&out).unwrap()
    );
}

#[test]
fn every_model_shape_quantizes_and_runs() {
    // mlp, conditional mlp, dcgan (Dense + BatchNorm folded + ConvTranspose), RGB.
    let dir = tempfile::tempdir().unwrap();
    for (name, spec) in common::all_specs() {
        let path = common::write(&spec, dir.path(), name);
        let f32 = Generator::load(&path).unwrap();
        let (z, labels) = inputs(&f32, 16);
        let want = f32.run(&z, labels.as_deref()).unwrap();
        for form in Form::ALL {
            let out = dir.path().join(format!("{name}-{form}.onnx"));
            let q = quantize_file(&path, &options(form)).unwrap();
            q.write(&out).unwrap();
            let got = Generator::load(&out)
                .unwrap()
                .run(&z, labels.as_deref())
                .unwrap();
            let error = PixelError::between(&want, &got);
            assert!(
                error.mean <= 0.05 && error.max <= 0.8,
                "{name} {form}: {error:?}"
            );
            // The integer form computes the 3x3 transposed convolutions in int8 (as
            // ConvInteger); the 4x4 one and every one in the other forms stay f32.
            for record in q.info.layers.iter().filter(|l| l.kind == "ConvTranspose2d") {
                // Records index the layers after batch norm is folded, as quantized.
                let folded = spec.fold_batch_norm().unwrap();
                let Layer::ConvTranspose2d(conv) = &folded.layers[record.layer] else {
                    panic!("{name}: layer {} is not a ConvTranspose2d", record.layer);
                };
                let int8 = form == Form::Integer && ConvForm::of(conv).is_some();
                let want = if int8 { "int8" } else { "f32 (int8 weights)" };
                assert_eq!(record.compute, want, "{name} {form} layer {}", record.layer);
                assert_eq!(record.input.is_some(), int8);
            }
            let int8_convs = q.convs.len();
            assert_eq!(
                int8_convs > 0,
                form == Form::Integer && name.starts_with("dcgan"),
                "{name} {form}: {int8_convs} int8 convolutions"
            );
        }
    }
}

#[test]
fn precision_int8_quantizes_in_memory_like_runtime_quantize() {
    let dir = tempfile::tempdir().unwrap();
    let model = shipped("mnist-mlp-cond.onnx");
    let out = dir.path().join("int8.onnx");
    quantize_file(&model, &QuantizeOptions::default())
        .unwrap()
        .write(&out)
        .unwrap();
    let from_file = Generator::load(&out).unwrap();
    let in_memory = Generator::load_with_precision(&model, Precision::Int8).unwrap();
    assert_eq!(in_memory.precision(), Precision::Int8);
    let (z, labels) = inputs(&from_file, 64);
    assert_eq!(
        in_memory.run(&z, labels.as_deref()).unwrap(),
        from_file.run(&z, labels.as_deref()).unwrap()
    );
    // generate() works the same way at int8.
    let s = in_memory.generate(20, Some(3), 1).unwrap();
    assert_eq!(s.len(), 20);
    // An int8 file holds no f32 weights.
    let err = Generator::load_with_precision(&out, Precision::F32).unwrap_err();
    assert!(matches!(err, Error::Precision { .. }), "{err}");
    assert!(
        err.to_string().contains(&out.display().to_string())
            && err.to_string().contains("f32 model"),
        "{err}"
    );
    // Asking an int8 file for int8 just loads it.
    let g = Generator::load_with_precision(&out, Precision::Int8).unwrap();
    assert_eq!(g.precision(), Precision::Int8);
}

#[test]
fn auto_precision_picks_one_and_says_which() {
    let model = shipped("mnist-mlp.onnx");
    let g = Generator::load_with(
        &model,
        &LoadOptions {
            precision: Some(Precision::Auto),
            ..LoadOptions::default()
        },
    )
    .unwrap();
    let choice = *g.auto_choice().expect("auto records its measurement");
    assert!(matches!(choice.chosen, Precision::F32 | Precision::Int8));
    assert_eq!(g.precision(), choice.chosen);
    assert!(choice.f32_us_per_sample > 0.0 && choice.int8_us_per_sample > 0.0);
    assert_eq!(choice.batch, g.batch_size());
    let faster = if choice.int8_us_per_sample < choice.f32_us_per_sample {
        Precision::Int8
    } else {
        Precision::F32
    };
    assert_eq!(choice.chosen, faster);
    // The chosen generator runs.
    assert_eq!(g.generate(3, None, 0).unwrap().len(), 3);
}

/// Writes a copy of the exported mlp spec with its first weight edited by `edit`.
fn edited_model(dir: &Path, name: &str, edit: impl Fn(&mut [f32])) -> PathBuf {
    let spec = common::mlp(1, false);
    let mut proto = ModelProto::decode(&spec.to_onnx().unwrap()[..]).unwrap();
    let init = proto
        .graph
        .as_mut()
        .unwrap()
        .initializer
        .iter_mut()
        .find(|t| t.name == "layer0.weight")
        .unwrap();
    let mut values: Vec<f32> = init
        .raw_data
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    edit(&mut values);
    init.raw_data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let path = dir.join(name);
    std::fs::write(&path, proto.encode_to_vec()).unwrap();
    path
}

/// The error of quantizing `path` (which must fail).
fn quant_err(path: &Path, options: &QuantizeOptions) -> Error {
    match quantize_file(path, options) {
        Ok(_) => panic!("quantizing {} should fail", path.display()),
        Err(e) => e,
    }
}

#[test]
fn bad_calibration_input_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::write(&common::mlp(1, false), dir.path(), "mlp");
    let named = |e: &Error, path: &Path, needle: &str| {
        let m = e.to_string();
        assert!(
            m.contains(&path.display().to_string()) && m.contains(needle),
            "expected {needle:?} and the file in: {m}"
        );
    };

    let zero = QuantizeOptions {
        samples: 0,
        ..QuantizeOptions::default()
    };
    let e = quant_err(&model, &zero);
    assert!(matches!(e, Error::Calibration { .. }));
    named(&e, &model, "0 samples");

    let pct = QuantizeOptions {
        method: CalibrationMethod::Percentile { percentile: 40.0 },
        ..QuantizeOptions::default()
    };
    named(&quant_err(&model, &pct), &model, "percentile 40");

    let nan = edited_model(dir.path(), "nan.onnx", |w| w[7] = f32::NAN);
    let e = quant_err(&nan, &QuantizeOptions::default());
    assert!(matches!(e, Error::Model { .. }), "{e}");
    named(&e, &nan, "NaN");

    // Finite weights whose activations overflow f32.
    let huge = edited_model(dir.path(), "huge.onnx", |w| {
        w.iter_mut().for_each(|v| *v *= 1e38)
    });
    let e = quant_err(&huge, &QuantizeOptions::default());
    assert!(matches!(e, Error::Calibration { .. }), "{e}");
    named(&e, &huge, "infinite");

    // Quantizing an int8 file again.
    let int8 = dir.path().join("int8.onnx");
    quantize_file(&model, &QuantizeOptions::default())
        .unwrap()
        .write(&int8)
        .unwrap();
    let e = quant_err(&int8, &QuantizeOptions::default());
    named(&e, &int8, "already quantized");
    // A weight-only file can be quantized (its weights are read back to f32).
    let wo = dir.path().join("wo.onnx");
    quantize_file(&model, &options(Form::WeightOnly))
        .unwrap()
        .write(&wo)
        .unwrap();
    quantize_file(&wo, &QuantizeOptions::default()).unwrap();

    // A graph that is not a chain of generator layers.
    let spec = common::mlp(1, false);
    let mut proto = ModelProto::decode(&spec.to_onnx().unwrap()[..]).unwrap();
    let graph = proto.graph.as_mut().unwrap();
    let tanh = graph.node.iter_mut().find(|n| n.op_type == "Tanh").unwrap();
    tanh.op_type = "Sigmoid".into();
    let foreign = dir.path().join("sigmoid.onnx");
    std::fs::write(&foreign, proto.encode_to_vec()).unwrap();
    let e = quant_err(&foreign, &QuantizeOptions::default());
    assert!(matches!(e, Error::Unsupported { .. }), "{e}");
    named(&e, &foreign, "Sigmoid");
}

/// The official ONNX checker (Python `onnx` package, full check and strict shape inference)
/// accepts every form, when installed.
#[test]
fn the_onnx_checker_accepts_quantized_models() {
    let probe = std::process::Command::new("python3")
        .args(["-c", "import onnx"])
        .output();
    if !matches!(&probe, Ok(o) if o.status.success()) {
        common::skip_or_fail_in_ci(
            "the_onnx_checker_accepts_quantized_models",
            "python3 with the `onnx` package is not installed (pip install onnx)",
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let dcgan = common::write(&common::dcgan(4, true), dir.path(), "dcgan");
    for model in [shipped("mnist-mlp-cond.onnx"), dcgan] {
        for form in Form::ALL {
            let out = dir.path().join(format!("checked-{form}.onnx"));
            quantize_file(&model, &options(form))
                .unwrap()
                .write(&out)
                .unwrap();
            let script = "import sys, onnx\nm = onnx.load(sys.argv[1])\nonnx.checker.check_model(m, full_check=True)\n\
                          onnx.shape_inference.infer_shapes(m, check_type=True, strict_mode=True)\nprint('ok')";
            let o = std::process::Command::new("python3")
                .args(["-c", script])
                .arg(&out)
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "{} {form}: onnx checker failed:\n{}",
                model.display(),
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
}

#[test]
fn the_shipped_int8_model_is_the_quantization_of_the_shipped_model() {
    // Regenerate with `runtime quantize --model models/mnist-mlp-cond.onnx
    // --out models/mnist-mlp-cond-int8.onnx --force` (default options) after retraining.
    // Compared by output, not bytes: calibration runs the f32 model, whose last bits may
    // differ between CPUs. A stale file is another model: its outputs differ by far more.
    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join("fresh.onnx");
    quantize_file(&shipped("mnist-mlp-cond.onnx"), &QuantizeOptions::default())
        .unwrap()
        .write(&fresh)
        .unwrap();
    let fresh = Generator::load(&fresh).unwrap();
    let committed = Generator::load(shipped("mnist-mlp-cond-int8.onnx")).unwrap();
    assert_eq!(committed.precision(), Precision::Int8);
    let (z, labels) = inputs(&fresh, 100);
    let error = PixelError::between(
        &fresh.run(&z, labels.as_deref()).unwrap(),
        &committed.run(&z, labels.as_deref()).unwrap(),
    );
    assert!(
        error.mean <= 1e-3,
        "models/mnist-mlp-cond-int8.onnx is stale ({error:?}): regenerate it from models/mnist-mlp-cond.onnx"
    );
}
