//! Export: a spec written as ONNX and run by tract computes what the spec says (pure-Rust
//! reference forward, BatchNorm unfolded), for every model shape the trainer produces.

mod common;

use runtime::generator::{BatchMode, Generator};
use runtime::info::ModelInfo;
use runtime::noise::noise;
use runtime::spec::{BatchNorm, ConvTranspose2d, Dense, Layer, SpecError};

const TOLERANCE: f32 = 1e-4;

#[test]
fn tract_matches_the_reference_forward_for_every_spec() {
    let dir = tempfile::tempdir().unwrap();
    for (name, spec) in common::all_specs() {
        let path = common::write(&spec, dir.path(), name);
        let generator = Generator::load(&path).unwrap();
        // Batch 1 and the default 64 use the plans compiled at load; 5 compiles one on demand.
        for batch in [1, 5, 64] {
            let z = noise(batch, spec.z_dim, 11);
            let labels = common::labels(&spec, batch);
            let want = spec.forward_reference(&z, labels.as_deref()).unwrap();
            let got = generator.run(&z, labels.as_deref()).unwrap();
            let diff = common::max_abs_diff(&want, &got);
            assert!(
                diff <= TOLERANCE,
                "{name} batch {batch}: max |tract - reference| = {diff}"
            );
            // A test that cannot fail proves nothing: the images must not be constant.
            let spread = got.iter().cloned().fold(f32::MIN, f32::max)
                - got.iter().cloned().fold(f32::MAX, f32::min);
            assert!(spread > 0.1, "{name}: output is nearly constant ({spread})");
        }
    }
}

#[test]
fn batch_norm_folding_preserves_the_output() {
    for (name, spec) in common::all_specs() {
        let folded = spec.fold_batch_norm().unwrap();
        let had_bn = spec
            .layers
            .iter()
            .any(|l| matches!(l, Layer::BatchNorm { .. }));
        assert!(
            !folded
                .layers
                .iter()
                .any(|l| matches!(l, Layer::BatchNorm { .. })),
            "{name}"
        );
        assert_eq!(folded.layers.len() < spec.layers.len(), had_bn, "{name}");
        let z = noise(7, spec.z_dim, 3);
        let labels = common::labels(&spec, 7);
        let a = spec.forward_reference(&z, labels.as_deref()).unwrap();
        let b = folded.forward_reference(&z, labels.as_deref()).unwrap();
        let diff = common::max_abs_diff(&a, &b);
        assert!(diff <= 1e-5, "{name}: folding changed the output by {diff}");
    }
}

#[test]
fn symbolic_and_fixed_batch_plans_agree_and_the_tail_is_handled() {
    let dir = tempfile::tempdir().unwrap();
    let spec = common::dcgan(9, true);
    let path = common::write(&spec, dir.path(), "dcgan");
    let fixed = Generator::load(&path).unwrap();
    let symbolic = Generator::load(&path)
        .unwrap()
        .with_batch_mode(BatchMode::Symbolic)
        .unwrap();
    // 150 is not a multiple of the batch size, so the last run is a shorter tail.
    assert_ne!(150 % fixed.batch_size(), 0, "batch {}", fixed.batch_size());
    let a = fixed.generate(150, None, 5).unwrap();
    let b = symbolic.generate(150, None, 5).unwrap();
    assert!(common::max_abs_diff(&a.pixels, &b.pixels) <= TOLERANCE);
    let z = noise(150, spec.z_dim, 5);
    let labels = common::labels(&spec, 150);
    let want = spec.forward_reference(&z, labels.as_deref()).unwrap();
    assert!(common::max_abs_diff(&want, &a.pixels) <= TOLERANCE);
    assert_eq!(
        a.labels.unwrap(),
        labels
            .unwrap()
            .iter()
            .map(|l| *l as usize)
            .collect::<Vec<_>>()
    );
}

#[test]
fn metadata_parameters_and_macs_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    for (name, spec) in common::all_specs() {
        let path = common::write(&spec, dir.path(), name);
        let generator = Generator::load(&path).unwrap();
        assert_eq!(generator.info(), &ModelInfo::from_spec(&spec), "{name}");
        assert_eq!(
            generator.summary().parameters,
            spec.parameter_count().unwrap(),
            "{name}"
        );
        assert_eq!(
            generator.macs_per_sample(),
            spec.macs_per_sample().unwrap(),
            "{name}"
        );
        assert!(
            generator
                .summary()
                .operators
                .keys()
                .all(|op| op != "BatchNormalization"),
            "{name}"
        );
        assert_eq!(generator.summary().opset, runtime::onnx::OPSET_VERSION);
    }
}

#[test]
fn invalid_specs_get_typed_errors() {
    let mut spec = common::mlp(1, false);
    if let Layer::Dense(Dense { weight, .. }) = &mut spec.layers[0] {
        weight.data.pop();
    }
    assert!(
        matches!(
            spec.validate(),
            Err(SpecError::Length { what: "weight", .. })
        ),
        "{:?}",
        spec.validate()
    );

    let mut spec = common::mlp(1, false);
    spec.layers.insert(
        0,
        Layer::BatchNorm(BatchNorm {
            gamma: vec![1.0; 16],
            beta: vec![0.0; 16],
            mean: vec![0.0; 16],
            var: vec![1.0; 16],
            epsilon: 1e-5,
        }),
    );
    assert!(matches!(
        spec.fold_batch_norm(),
        Err(SpecError::UnfoldableBatchNorm { layer: 0, .. })
    ));
    assert!(spec.to_onnx().is_err());

    let mut spec = common::dcgan(1, false);
    spec.layers.swap(4, 5); // BatchNorm(8) now sees the 16-channel map
    assert!(
        matches!(spec.validate(), Err(SpecError::Length { .. })),
        "{:?}",
        spec.validate()
    );

    let mut spec = common::dcgan(1, false);
    if let Layer::ConvTranspose2d(ConvTranspose2d { output_padding, .. }) = &mut spec.layers[7] {
        *output_padding = [1, 1]; // stride 1: invalid
    }
    assert!(
        matches!(spec.validate(), Err(SpecError::Parameter { .. })),
        "{:?}",
        spec.validate()
    );

    let mut spec = common::mlp(1, false);
    spec.image.height = 27;
    assert!(matches!(spec.validate(), Err(SpecError::Output { .. })));

    let mut spec = common::mlp(1, true);
    spec.classes.pop();
    assert!(matches!(
        spec.validate(),
        Err(SpecError::Conditioning { .. })
    ));

    let mut spec = common::mlp(1, false);
    spec.metadata
        .insert(runtime::info::keys::Z_DIM.into(), "3".into());
    assert!(matches!(
        spec.validate(),
        Err(SpecError::ReservedMetadataKey { .. })
    ));

    let mut spec = common::mlp(1, false);
    if let Layer::Dense(Dense { bias: Some(b), .. }) = &mut spec.layers[2] {
        b[3] = f32::NAN;
    }
    assert!(matches!(
        spec.validate(),
        Err(SpecError::NonFinite { what: "bias", .. })
    ));

    let dir = tempfile::tempdir().unwrap();
    let err = common::mlp(1, false)
        .write_onnx(dir.path().join("missing-dir/m.onnx"))
        .unwrap_err();
    assert!(
        matches!(err, SpecError::Write { .. }) && err.to_string().contains("missing-dir"),
        "{err}"
    );
}

#[test]
fn export_is_deterministic_and_leaves_no_temporary_files() {
    let dir = tempfile::tempdir().unwrap();
    let spec = common::dcgan(2, true);
    let a = spec.to_onnx().unwrap();
    assert_eq!(a, spec.to_onnx().unwrap());
    common::write(&spec, dir.path(), "m");
    common::write(&spec, dir.path(), "m"); // overwrite in place
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["m.onnx"]);
    assert_eq!(std::fs::read(dir.path().join("m.onnx")).unwrap(), a);
}

/// The official ONNX checker (Python `onnx` package), with full shape inference, when installed.
#[test]
fn the_onnx_checker_accepts_exported_models() {
    let probe = std::process::Command::new("python3")
        .args(["-c", "import onnx"])
        .output();
    if !matches!(&probe, Ok(o) if o.status.success()) {
        common::skip_or_fail_in_ci(
            "the_onnx_checker_accepts_exported_models",
            "python3 with the `onnx` package is not installed (pip install onnx)",
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (name, spec) in common::all_specs() {
        let path = common::write(&spec, dir.path(), name);
        let script = "import sys, onnx\nm = onnx.load(sys.argv[1])\nonnx.checker.check_model(m, full_check=True)\n\
                      inferred = onnx.shape_inference.infer_shapes(m, check_type=True, strict_mode=True)\nprint('ok')";
        let out = std::process::Command::new("python3")
            .args(["-c", script])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: onnx checker failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
