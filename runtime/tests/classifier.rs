//! The evaluation classifier in ONNX: a spec written by the runtime and run by tract computes
//! what the spec's pure-Rust reference forward says, for odd shapes and batch tails too, and
//! files that are not a classifier are refused with an error that names them.

use std::collections::BTreeMap;
use std::path::Path;

use runtime::Error;
use runtime::engine::classifier::{Classifier, DEFAULT_BATCH, top_class};
use runtime::noise::noise;
use runtime::onnx::classifier::{ClassifierSpec, Conv, Dense, keys};
use runtime::onnx::spec::{ImageShape, Matrix, SpecError};

const TOLERANCE: f32 = 1e-5;

/// Gaussian values scaled by `scale`, from the runtime's seeded noise.
fn values(len: usize, scale: f32, seed: u64) -> Vec<f32> {
    noise(1, len, seed).into_iter().map(|v| v * scale).collect()
}

fn conv(c_in: usize, c_out: usize, k: [usize; 2], seed: u64) -> Conv {
    let fan_in = (c_in * k[0] * k[1]) as f32;
    Conv {
        weight: values(c_out * c_in * k[0] * k[1], 1.5 / fan_in.sqrt(), seed),
        c_in,
        c_out,
        kernel: k,
        bias: values(c_out, 0.1, seed + 1),
    }
}

fn dense(rows: usize, cols: usize, seed: u64) -> Dense {
    Dense {
        weight: Matrix {
            rows,
            cols,
            data: values(rows * cols, 1.5 / (rows as f32).sqrt(), seed),
        },
        bias: values(cols, 0.1, seed + 1),
    }
}

/// A classifier with random weights: `k`×`k` kernels, `c1`/`c2` maps, `features` hidden units.
fn random_spec(image: ImageShape, k: [usize; 2], classes: usize, seed: u64) -> ClassifierSpec {
    let (c1, c2, features) = (4, 6, 16);
    let flat = c2 * (image.height / 2 / 2) * (image.width / 2 / 2);
    ClassifierSpec {
        image,
        classes: (0..classes).map(|c| format!("class-{c}")).collect(),
        conv1: conv(image.channels, c1, k, seed),
        conv2: conv(c1, c2, k, seed + 10),
        hidden: dense(flat, features, seed + 20),
        output: dense(features, classes, seed + 30),
        metadata: BTreeMap::from([
            (keys::DATASET.to_string(), "random".to_string()),
            (keys::TEST_ACCURACY.to_string(), "0.5".to_string()),
        ]),
    }
}

fn mnist_like() -> ClassifierSpec {
    let image = ImageShape {
        channels: 1,
        height: 28,
        width: 28,
    };
    random_spec(image, [5, 5], 10, 1)
}

fn images(spec: &ClassifierSpec, count: usize, seed: u64) -> Vec<f32> {
    // Pixels in [-1, 1], like a generator's output.
    noise(count, spec.image.numel(), seed)
        .into_iter()
        .map(|v| (v * 0.6).clamp(-1.0, 1.0))
        .collect()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn write(spec: &ClassifierSpec, dir: &Path, name: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    spec.write_onnx(&path).unwrap();
    path
}

#[test]
fn tract_matches_the_reference_forward() {
    let dir = tempfile::tempdir().unwrap();
    let rgb_odd = random_spec(
        ImageShape {
            channels: 3,
            height: 13,
            width: 11,
        },
        [4, 4],
        3,
        2,
    );
    let tall_kernel = random_spec(
        ImageShape {
            channels: 1,
            height: 9,
            width: 16,
        },
        [3, 2],
        4,
        3,
    );
    for (name, spec) in [
        ("mnist-like", mnist_like()),
        // Odd sizes (pooling drops the last row and column), an even kernel (burn's "same"
        // padding puts the odd zero at the end), three channels.
        ("rgb-odd-even-kernel", rgb_odd),
        ("non-square-kernel", tall_kernel),
    ] {
        let path = write(&spec, dir.path(), &format!("{name}.onnx"));
        let classifier = Classifier::load(&path).unwrap();
        assert_eq!(classifier.classes(), spec.classes.as_slice(), "{name}");
        assert_eq!(classifier.image(), spec.image, "{name}");
        assert_eq!(classifier.batch_size(), DEFAULT_BATCH);
        let batched = Classifier::load(&path)
            .unwrap()
            .with_batch_size(64)
            .unwrap();
        let classes = spec.classes.len();
        // 67 = one full batch of 64 and a tail of 3; 1 is the smallest request.
        for (count, classifier) in [
            (67, &classifier),
            (67, &batched),
            (1, &classifier),
            (1, &batched),
            (64, &batched),
        ] {
            let pixels = images(&spec, count, 40 + count as u64);
            let want = spec.forward_reference(&pixels, count).unwrap();
            let got = classifier.probabilities(&pixels, count).unwrap();
            assert_eq!(got.len(), count * classes, "{name} count {count}");
            let diff = max_abs_diff(&want, &got);
            assert!(
                diff <= TOLERANCE,
                "{name} count {count}: max |tract - reference| = {diff}"
            );
            for (i, row) in got.chunks(classes).enumerate() {
                let sum: f32 = row.iter().sum();
                assert!((sum - 1.0).abs() <= 1e-5, "{name} image {i}: sum {sum}");
                assert!(row.iter().all(|p| (0.0..=1.0).contains(p)), "{name}");
            }
            if count > 1 {
                // A test that cannot fail proves nothing: the random network must not say the
                // same thing about every image.
                let predicted: std::collections::BTreeSet<usize> = got
                    .chunks(classes)
                    .map(|row| top_class(row).unwrap().class)
                    .collect();
                let spread = got.iter().copied().fold(0.0, f32::max)
                    - got.iter().copied().fold(1.0, f32::min);
                assert!(
                    predicted.len() > 1 && spread > 0.2,
                    "{name}: nearly constant output (classes {predicted:?}, spread {spread})"
                );
            }
        }
    }
}

#[test]
fn results_do_not_depend_on_the_batch_size() {
    let dir = tempfile::tempdir().unwrap();
    let spec = mnist_like();
    let path = write(&spec, dir.path(), "c.onnx");
    let count = 23;
    let pixels = images(&spec, count, 9);
    let whole = Classifier::load(&path)
        .unwrap()
        .probabilities(&pixels, count)
        .unwrap();
    let small = Classifier::load(&path).unwrap().with_batch_size(5).unwrap();
    assert_eq!(small.batch_size(), 5);
    let batched = small.probabilities(&pixels, count).unwrap();
    assert!(max_abs_diff(&whole, &batched) <= TOLERANCE);
    let predictions = small.predict(&pixels, count).unwrap();
    for (p, row) in predictions.iter().zip(batched.chunks(spec.classes.len())) {
        assert_eq!(p.confidence, row[p.class]);
        assert!(row.iter().all(|q| *q <= p.confidence));
    }
}

#[test]
fn metadata_travels_with_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let spec = mnist_like();
    let path = write(&spec, dir.path(), "c.onnx");
    let classifier = Classifier::load(&path).unwrap();
    let info = classifier.info();
    assert_eq!(info.metadata.get(keys::DATASET).unwrap(), "random");
    assert_eq!(info.metadata.get(keys::TEST_ACCURACY).unwrap(), "0.5");
    assert!(
        !info.metadata.contains_key(keys::KIND),
        "reserved keys are parsed, not free"
    );
    assert_eq!(info.classes, spec.classes);
}

#[test]
fn requests_that_do_not_fit_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let spec = mnist_like();
    let classifier = Classifier::load(write(&spec, dir.path(), "c.onnx")).unwrap();
    assert!(classifier.probabilities(&[], 0).unwrap().is_empty());
    let pixels = images(&spec, 2, 1);
    let err = classifier.probabilities(&pixels, 3).unwrap_err();
    assert!(matches!(err, Error::Input { .. }), "{err}");
    let err = classifier.probabilities(&pixels[1..], 2).unwrap_err();
    assert!(err.to_string().contains("1x28x28"), "{err}");
    assert!(classifier.with_batch_size(0).is_err());
}

#[test]
fn classifier_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Classifier>();
}

/// `Classifier::load(path)` fails, naming `path`, with a message containing `needle`.
fn load_error(path: &Path, needle: &str) -> Error {
    let err = Classifier::load(path).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains(&path.display().to_string()),
        "the error names the file: {message}"
    );
    assert!(message.contains(needle), "{needle:?} in {message}");
    err
}

#[test]
fn files_that_are_not_a_classifier_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.onnx");
    let err = load_error(&missing, "cannot read");
    assert!(matches!(err, Error::ReadModel { .. }));

    let garbage = dir.path().join("garbage.onnx");
    std::fs::write(&garbage, b"\x08\x01 this is not protobuf \xff\xff\xff").unwrap();
    let err = load_error(&garbage, "not a valid ONNX model");
    assert!(matches!(err, Error::NotOnnx { .. }));

    let empty = dir.path().join("empty.onnx");
    std::fs::write(&empty, b"").unwrap();
    load_error(&empty, "empty");

    load_error(dir.path(), "folder");

    // A Gantry generator: the shipped one.
    let generator = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/mnist-mlp-cond.onnx");
    let err = load_error(&generator, "generator, not a classifier");
    assert!(matches!(err, Error::Metadata { .. }));

    // A classifier whose graph was swapped for one with another signature.
    let spec = mnist_like();
    let mut proto = spec.to_model_proto().unwrap();
    let graph = proto.graph.as_mut().unwrap();
    graph.output[0].name = "logits".into();
    let renamed = dir.path().join("renamed-output.onnx");
    std::fs::write(&renamed, prost::Message::encode_to_vec(&proto)).unwrap();
    let err = load_error(&renamed, "not a Gantry classifier");
    assert!(matches!(err, Error::Format { .. }));

    // Metadata that disagrees with the graph.
    let mut proto = spec.to_model_proto().unwrap();
    for p in &mut proto.metadata_props {
        if p.key == keys::IMAGE_SHAPE {
            p.value = "1,32,32".into();
        }
    }
    let wrong_shape = dir.path().join("wrong-shape.onnx");
    std::fs::write(&wrong_shape, prost::Message::encode_to_vec(&proto)).unwrap();
    load_error(&wrong_shape, "the metadata says [N, 1, 32, 32]");

    let mut proto = spec.to_model_proto().unwrap();
    proto.metadata_props.retain(|p| p.key != keys::KIND);
    let no_kind = dir.path().join("no-kind.onnx");
    std::fs::write(&no_kind, prost::Message::encode_to_vec(&proto)).unwrap();
    load_error(&no_kind, "gantry.kind");
}

#[test]
fn invalid_specs_are_refused_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("never.onnx");

    let mut spec = mnist_like();
    spec.conv2.bias.pop();
    assert!(matches!(
        spec.write_onnx(&path).unwrap_err(),
        SpecError::Length { .. }
    ));

    let mut spec = mnist_like();
    spec.hidden.weight.data[3] = f32::NAN;
    assert!(matches!(
        spec.write_onnx(&path).unwrap_err(),
        SpecError::NonFinite { .. }
    ));

    let mut spec = mnist_like();
    spec.metadata
        .insert(keys::KIND.to_string(), "generator".into());
    assert!(matches!(
        spec.write_onnx(&path).unwrap_err(),
        SpecError::ReservedMetadataKey { .. }
    ));

    let mut spec = mnist_like();
    spec.classes.pop();
    let err = spec.write_onnx(&path).unwrap_err();
    assert!(
        err.to_string()
            .contains("10 logits but there are 9 classes"),
        "{err}"
    );

    let mut spec = mnist_like();
    spec.image.height = 3;
    assert!(spec.validate().is_err());

    let spec = mnist_like();
    let err = spec.forward_reference(&[0.0; 10], 1).unwrap_err();
    assert!(matches!(err, SpecError::Input { .. }), "{err}");
    assert!(!path.exists());
}
