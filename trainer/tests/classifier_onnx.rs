//! The evaluation classifier as ONNX: the shipped classifiers' `.onnx` files, run by the
//! runtime with tract, give burn's probabilities on real test images and the same accuracy, and
//! a fresh conversion matches what is shipped (so a retrained `.bpk` cannot leave a stale
//! `.onnx` behind).

use std::path::{Path, PathBuf};

use runtime::engine::classifier::{Classifier, top_class};
use trainer::data::{self, Split};
use trainer::quality::EvalClassifier;
use trainer::quality::classifier::pixels_of;
use trainer::quality::classifier_onnx::{
    PARITY_TOLERANCE, burn_probabilities, onnx_path, write_onnx,
};

/// At least this many test images are compared (the whole MNIST-10k test split: 997).
const TEST_IMAGES: usize = 500;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

fn argmax_rows(probabilities: &[f32], classes: usize) -> Vec<usize> {
    probabilities
        .chunks(classes)
        .map(|row| top_class(row).expect("a probability row without NaN").class)
        .collect()
}

fn accuracy(predictions: &[usize], labels: &[usize]) -> f64 {
    let right = predictions
        .iter()
        .zip(labels)
        .filter(|(p, l)| p == l)
        .count();
    right as f64 / predictions.len() as f64
}

#[test]
fn shipped_mnist_classifier_runs_the_same_in_tract_as_in_burn() {
    let weights = repo("models/classifier-mnist-10k.bpk");
    let burn = EvalClassifier::load(&weights).unwrap();
    let onnx = Classifier::load(onnx_path(&weights)).unwrap();
    let classes = burn.card.class_names.len();
    assert_eq!(onnx.classes(), burn.card.class_names.as_slice());
    assert_eq!(onnx.image().numel(), burn.card.image.numel());
    assert_eq!(
        onnx.info()
            .metadata
            .get("gantry.dataset")
            .map(String::as_str),
        Some("mnist-10k")
    );

    let test = data::open(&repo("data/mnist-10k"), Split::Test, burn.card.image).unwrap();
    let count = test.len();
    assert!(
        count >= TEST_IMAGES,
        "the shipped test split has {count} images"
    );
    let pixels = pixels_of(&test);
    let want = burn_probabilities(&burn, &pixels).unwrap();
    let got = onnx.probabilities(&pixels, count).unwrap();
    let diff = runtime::engine::max_abs_diff(&want, &got);
    assert!(
        diff <= PARITY_TOLERANCE,
        "max |tract - burn| probability = {diff:e} on {count} test images"
    );

    let labels = test.labels();
    let burn_predictions = argmax_rows(&want, classes);
    let onnx_predictions = argmax_rows(&got, classes);
    // burn's own embedding path agrees with the softmax rows compared here.
    assert_eq!(burn.embed(&pixels).unwrap().predictions, burn_predictions);
    let (a_burn, a_onnx) = (
        accuracy(&burn_predictions, labels),
        accuracy(&onnx_predictions, labels),
    );
    println!(
        "{count} MNIST-10k test images: accuracy burn {:.2}% / ONNX (tract) {:.2}%, max probability difference {diff:.2e}",
        100.0 * a_burn,
        100.0 * a_onnx
    );
    assert_eq!(a_burn, a_onnx);
    // The whole split: the accuracy the card recorded when the classifier was trained.
    assert!(
        (a_onnx - burn.card.test_accuracy).abs() < 1e-12,
        "ONNX accuracy {a_onnx} vs the card's {}",
        burn.card.test_accuracy
    );
    assert_eq!(burn_predictions, onnx_predictions);
    // The classifier is the real one, not a constant: it recognises most digits.
    assert!(a_onnx > 0.9, "accuracy {a_onnx}");
}

#[test]
fn shipped_onnx_files_are_the_conversion_of_the_shipped_weights() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["classifier-mnist-10k", "classifier-fashion-mnist"] {
        let weights = repo(&format!("models/{name}.bpk"));
        let burn = EvalClassifier::load(&weights).unwrap();
        let fresh = dir.path().join(format!("{name}.onnx"));
        let export = write_onnx(&burn, &fresh).unwrap();
        assert!(export.max_probability_diff <= PARITY_TOLERANCE);
        let shipped = Classifier::load(onnx_path(&weights)).unwrap();
        let fresh = Classifier::load(&fresh).unwrap();
        assert_eq!(shipped.info(), fresh.info(), "{name}: metadata");
        let count = 37;
        let pixels: Vec<f32> = runtime::noise::noise(count, burn.card.image.numel(), 5)
            .into_iter()
            .map(f32::tanh)
            .collect();
        let a = shipped.probabilities(&pixels, count).unwrap();
        let b = fresh.probabilities(&pixels, count).unwrap();
        assert_eq!(
            a, b,
            "{name}: the shipped .onnx is stale; run `trainer classifier-onnx --classifier models/{name}.bpk`"
        );
    }
}

/// burn's "same" padding of an even kernel (the odd zero at the end) and its floor pooling of
/// odd sizes, on an untrained RGB classifier: what the ONNX graph writes must be what burn does.
#[test]
fn even_kernels_and_odd_sizes_convert_like_burn_computes_them() {
    use trainer::quality::classifier::{CARD_VERSION, ClassifierCard, TrainSettings};
    use trainer::quality::{Classifier as BurnClassifier, ClassifierConfig};

    let dir = tempfile::tempdir().unwrap();
    let image = data::ImageShape {
        channels: 3,
        height: 13,
        width: 11,
    };
    let config = ClassifierConfig {
        conv1: 5,
        conv2: 7,
        kernel: 4,
        features: 12,
    };
    let classes: Vec<String> = ["cat", "dog", "bird"].map(String::from).to_vec();
    let model = BurnClassifier::new(&config, image, classes.len(), &burn::tensor::Device::flex());
    let card = ClassifierCard {
        format_version: CARD_VERSION,
        config,
        image,
        class_names: classes,
        dataset: "untrained".into(),
        train_examples: 0,
        training: TrainSettings::default(),
        test_accuracy: 0.0,
        test_examples: 0,
    };
    let burn = EvalClassifier::new(model, card);
    let path = dir.path().join("rgb.onnx");
    let export = write_onnx(&burn, &path).unwrap();
    assert!(
        export.max_probability_diff <= PARITY_TOLERANCE,
        "{export:?}"
    );
    let onnx = Classifier::load(&path).unwrap();
    let count = 70;
    let pixels: Vec<f32> = runtime::noise::noise(count, image.numel(), 8)
        .into_iter()
        .map(f32::tanh)
        .collect();
    let want = burn_probabilities(&burn, &pixels).unwrap();
    let got = onnx.probabilities(&pixels, count).unwrap();
    let diff = runtime::engine::max_abs_diff(&want, &got);
    assert!(diff <= PARITY_TOLERANCE, "max |tract - burn| = {diff:e}");
    // Not a vacuous comparison: the untrained network's outputs still vary between images.
    let spread = got.iter().copied().fold(0.0, f32::max) - got.iter().copied().fold(1.0, f32::min);
    assert!(spread > 0.01, "nearly constant probabilities ({spread})");
}
