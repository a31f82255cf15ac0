//! Quality metrics: FID is zero for a set against itself and grows as samples are
//! corrupted, coverage flags a one-class set, precision/recall give the known answers on toy
//! distributions, the evaluation classifier learns MNIST, round-trips through its files, and
//! the augmentation experiment runs end to end.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use burn::tensor::Device;
use indicatif::ProgressBar;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rand_pcg::Pcg64;
use trainer::config::TrainConfig;
use trainer::data::{self, Dataset, Split};
use trainer::model::ModelKind;
use trainer::quality::augment::{self, AugmentSettings};
use trainer::quality::classifier::{self, ClassifierCard, TrainSettings, pixels_of};
use trainer::quality::coverage::Coverage;
use trainer::quality::fid::{Gaussian, fid, frechet};
use trainer::quality::precision_recall::{knn_radii, precision_recall};
use trainer::quality::{ClassifierConfig, EvalClassifier, EvalOptions, Evaluator, SampleSource};
use trainer::run::{self, RunOptions};

fn mnist_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist-10k")
}

fn digits() -> Vec<String> {
    (0..10).map(|d| d.to_string()).collect()
}

/// `count × dim` normal values with mean `mean` and standard deviation `std`.
fn gaussian(count: usize, dim: usize, mean: f32, std: f32, seed: u64) -> Vec<f32> {
    let mut rng = Pcg64::seed_from_u64(seed);
    (0..count * dim)
        .map(|_| {
            let z: f32 = StandardNormal.sample(&mut rng);
            mean + std * z
        })
        .collect()
}

/// A classifier trained once for all the tests of this binary (small and quick: 2,048
/// training images, 250 steps), saved to a temporary folder and loaded back by each test.
fn trained_classifier() -> EvalClassifier {
    static FILE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = FILE.get_or_init(|| {
        let train = data::open(
            &mnist_dir(),
            Split::Train,
            trainer::data::ImageShape {
                channels: 1,
                height: 28,
                width: 28,
            },
        )
        .unwrap()
        .truncated(2048);
        let config = ClassifierConfig {
            conv1: 8,
            conv2: 16,
            features: 32,
            ..ClassifierConfig::default()
        };
        let settings = TrainSettings {
            steps: 250,
            batch_size: 32,
            learning_rate: 2e-3,
            seed: 5,
        };
        let model = classifier::train(
            &config,
            &train,
            &settings,
            &Device::flex(),
            &ProgressBar::hidden(),
        )
        .unwrap();
        let card = ClassifierCard {
            format_version: classifier::CARD_VERSION,
            config,
            image: train.shape(),
            class_names: train.class_names().to_vec(),
            dataset: "mnist-10k".into(),
            train_examples: train.len(),
            training: settings,
            test_accuracy: 0.0,
            test_examples: 0,
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("classifier.bpk");
        EvalClassifier::new(model, card).save(&path).unwrap();
        (dir, path)
    });
    EvalClassifier::load(path).unwrap()
}

/// The first `count` images of MNIST-10k's test split (which holds 997).
fn test_split(count: usize) -> Dataset {
    let shape = trainer::data::ImageShape {
        channels: 1,
        height: 28,
        width: 28,
    };
    data::open(&mnist_dir(), Split::Test, shape)
        .unwrap()
        .truncated(count)
}

#[test]
fn classifier_learns_mnist_and_round_trips_through_its_files() {
    let classifier = trained_classifier();
    // Chance is 10%; a LeNet on 2,048 images for 250 steps lands far above it.
    let accuracy = classifier.accuracy(&test_split(997)).unwrap();
    assert!(accuracy > 0.85, "test accuracy {accuracy}");

    // Reloading gives the same network: the same features for the same images.
    let images = pixels_of(&test_split(50));
    let again = trained_classifier();
    let (a, b) = (
        classifier.embed(&images).unwrap(),
        again.embed(&images).unwrap(),
    );
    assert_eq!(a.dim, 32);
    assert_eq!(a, b);

    // A missing or damaged card is an error that names the file.
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("c.bpk");
    let err = EvalClassifier::load(&weights).unwrap_err().to_string();
    assert!(err.contains("c.json"), "{err}");
    std::fs::write(dir.path().join("c.json"), "{\"format_version\": 1}").unwrap();
    let err = EvalClassifier::load(&weights).unwrap_err().to_string();
    assert!(
        err.contains("c.json") && err.contains("classifier card"),
        "{err}"
    );
    // Weights that do not fit the card's layer sizes are refused.
    let copy = dir.path().join("copy.bpk");
    classifier.save(&copy).unwrap();
    let mut card = classifier.card.clone();
    card.config.features = 16;
    std::fs::write(
        dir.path().join("copy.json"),
        serde_json::to_vec(&card).unwrap(),
    )
    .unwrap();
    let err = EvalClassifier::load(&copy).unwrap_err().to_string();
    assert!(
        err.contains("copy.bpk") && err.contains("does not fit"),
        "{err}"
    );
    // Images of another shape are refused, not misread.
    let err = classifier.embed(&[0.0; 100]).unwrap_err().to_string();
    assert!(err.contains("28x28"), "{err}");
}

#[test]
fn fid_of_a_set_with_itself_is_zero() {
    let x = gaussian(600, 12, 0.0, 1.0, 1);
    let d = fid(&x, &x, 12).unwrap();
    assert!(d.abs() < 1e-6, "FID(x, x) = {d}");

    // Two draws of one distribution are close; a shifted one is far, by the known amount:
    // the mean term of N(0, I) against N(1, I) in 12 dimensions is 12.
    let y = gaussian(600, 12, 0.0, 1.0, 2);
    let shifted = gaussian(600, 12, 1.0, 1.0, 3);
    let same = fid(&x, &y, 12).unwrap();
    let far = frechet(
        &Gaussian::fit(&x, 12).unwrap(),
        &Gaussian::fit(&shifted, 12).unwrap(),
    )
    .unwrap();
    assert!(same < 0.5, "two draws of N(0, I): {same}");
    assert!((far.mean_term - 12.0).abs() < 1.5, "{far:?}");
    assert!(far.cov_term < 0.5, "{far:?}");
    // Spread alone: N(0, 4I) against N(0, I) has covariance term 12·(2 − 1)² = 12.
    let wide = gaussian(600, 12, 0.0, 2.0, 4);
    let spread = frechet(
        &Gaussian::fit(&x, 12).unwrap(),
        &Gaussian::fit(&wide, 12).unwrap(),
    )
    .unwrap();
    assert!((spread.cov_term - 12.0).abs() < 2.0, "{spread:?}");

    // Singular covariances (dead ReLU features) do not break it.
    let mut dead = x.clone();
    for row in dead.chunks_mut(12) {
        row[3] = 0.0;
        row[7] = 0.0;
    }
    let d = fid(&dead, &dead, 12).unwrap();
    assert!(d.abs() < 1e-6, "FID with constant features = {d}");

    assert!(
        fid(&x[..12], &x, 12).is_err(),
        "one vector cannot be fitted"
    );
    let half_dim = Gaussian::fit(&x, 6).unwrap();
    assert!(
        frechet(&Gaussian::fit(&x, 12).unwrap(), &half_dim).is_err(),
        "dimensions differ"
    );
    assert!(fid(&x, &x, 7).is_err(), "ragged buffer");
}

#[test]
fn fid_grows_as_real_images_are_corrupted() {
    let evaluator = Evaluator::new(
        trained_classifier(),
        &test_split(997),
        EvalOptions::default(),
    )
    .unwrap();
    let shape = trainer::data::ImageShape {
        channels: 1,
        height: 28,
        width: 28,
    };
    let train = data::open(&mnist_dir(), Split::Train, shape).unwrap();
    // Real images the classifier has not seen (past its 2,048 training examples).
    let clean: Vec<f32> = (5000..6000).flat_map(|i| train.image(i).to_vec()).collect();
    let mut rng = Pcg64::seed_from_u64(9);
    let noisy = |sigma: f32, rng: &mut Pcg64| -> Vec<f32> {
        clean
            .iter()
            .map(|&v| {
                let z: f32 = StandardNormal.sample(rng);
                (v + sigma * z).clamp(-1.0, 1.0)
            })
            .collect()
    };
    let light = noisy(0.3, &mut rng);
    let heavy = noisy(0.8, &mut rng);
    // Half the images blanked (all background).
    let mut blanks = clean.clone();
    for image in blanks.chunks_mut(784).step_by(2) {
        image.fill(-1.0);
    }

    let score = |images: &[f32]| evaluator.evaluate(images, None).unwrap();
    let (c, l, h, b) = (score(&clean), score(&light), score(&heavy), score(&blanks));
    assert!(
        c.fid < l.fid && l.fid < h.fid,
        "clean {} < light noise {} < heavy noise {}",
        c.fid,
        l.fid,
        h.fid
    );
    assert!(b.fid > 2.0 * c.fid, "blanks {} vs clean {}", b.fid, c.fid);
    // Real images against real images: realistic and varied.
    assert!(
        c.precision > 0.6 && c.recall > 0.6,
        "clean precision {} recall {}",
        c.precision,
        c.recall
    );
    // Heavy noise loses the real variety; blank images are not realistic.
    assert!(
        h.recall < c.recall - 0.2,
        "recall clean {} heavy noise {}",
        c.recall,
        h.recall
    );
    assert!(
        b.precision < c.precision - 0.2,
        "precision clean {} half blank {}",
        c.precision,
        b.precision
    );
    assert!(!c.coverage.is_collapsed(), "{:?}", c.coverage.warning);
}

#[test]
fn coverage_flags_a_one_class_set() {
    let names = digits();
    let uniform: Vec<usize> = (0..1000).map(|i| i % 10).collect();
    let c = Coverage::new(&uniform, &names);
    assert!(!c.is_collapsed());
    assert!((c.entropy_bits - 10f64.log2()).abs() < 1e-9);
    assert!((c.largest_share - 0.1).abs() < 1e-9);

    let one = Coverage::new(&[3; 500], &names);
    assert!(one.is_collapsed());
    assert_eq!(one.entropy_bits, 0.0);
    assert_eq!(one.largest_share, 1.0);
    assert_eq!(one.largest_class, "3");
    assert_eq!(one.starved.len(), 9);
    assert!(one.warning.as_ref().unwrap().contains("mode collapse"));

    // Two classes missing out of ten is flagged even though the entropy stays high.
    let eight: Vec<usize> = (0..800).map(|i| i % 8).collect();
    let c = Coverage::new(&eight, &names);
    assert!(c.normalized_entropy > 0.9);
    assert_eq!(c.starved, ["8", "9"]);
    assert!(c.is_collapsed());

    // Through the classifier: real images of one digit are seen as a collapsed set, and
    // their requested label is recognised.
    let evaluator = Evaluator::new(
        trained_classifier(),
        &test_split(1000),
        EvalOptions::default(),
    )
    .unwrap();
    let test = test_split(997);
    let ones: Vec<usize> = (0..test.len())
        .filter(|&i| test.labels()[i] == 1)
        .take(300)
        .collect();
    let pixels: Vec<f32> = ones.iter().flat_map(|&i| test.image(i).to_vec()).collect();
    let labels = vec![1i64; ones.len()];
    let report = evaluator.evaluate(&pixels, Some(&labels)).unwrap();
    assert!(report.coverage.is_collapsed());
    assert_eq!(report.coverage.largest_class, "1");
    let conditional = report.conditional.clone().unwrap();
    assert!(conditional.accuracy > 0.9, "{conditional:?}");
    assert_eq!(conditional.per_class.len(), 1);
    assert!(
        report.recall < 0.5,
        "one digit cannot cover the real variety: {}",
        report.recall
    );
    assert!(report.table().contains("warning: possible mode collapse"));
}

#[test]
fn precision_and_recall_on_toy_distributions() {
    let dim = 4;
    let n = 1000;
    let real = gaussian(n, dim, 0.0, 1.0, 11);
    let pr = |fake: &[f32]| precision_recall(&real, fake, dim, 3).unwrap();

    // The same distribution: both high.
    let same = pr(&gaussian(n, dim, 0.0, 1.0, 12));
    assert!(same.precision > 0.85 && same.recall > 0.85, "{same:?}");

    // Far away: neither.
    let far = pr(&gaussian(n, dim, 10.0, 1.0, 13));
    assert!(far.precision < 0.01 && far.recall < 0.01, "{far:?}");

    // Generated set inside the real one (narrow): realistic but not varied.
    let narrow = pr(&gaussian(n, dim, 0.0, 0.3, 14));
    assert!(narrow.precision > 0.95 && narrow.recall < 0.5, "{narrow:?}");

    // Generated set around the real one (wide): varied but not realistic.
    let wide = pr(&gaussian(n, dim, 0.0, 3.0, 15));
    assert!(wide.precision < 0.5 && wide.recall > 0.9, "{wide:?}");

    // Real data in two far clusters, generated in one of them: precision ~1, recall ~½.
    let mut two = gaussian(n, dim, 0.0, 1.0, 16);
    for v in two.chunks_mut(dim).skip(n / 2).flatten() {
        *v += 20.0;
    }
    let one_cluster = gaussian(n, dim, 0.0, 1.0, 17);
    let half = precision_recall(&two, &one_cluster, dim, 3).unwrap();
    assert!(half.precision > 0.9, "{half:?}");
    assert!((half.recall - 0.5).abs() < 0.08, "{half:?}");

    // k-NN radii exclude the point itself: on a line 0, 1, 2, …, the 1st neighbour is at 1
    // and the 2nd at 1 (ends: 2 at the 2nd).
    let line: Vec<f32> = (0..6).map(|i| i as f32).collect();
    let r1 = knn_radii(&line, 1, 1).unwrap();
    assert!(r1.iter().all(|&r| (r - 1.0).abs() < 1e-6), "{r1:?}");
    let r2 = knn_radii(&line, 1, 2).unwrap();
    assert_eq!(
        r2[0], 4.0,
        "squared distance from 0 to its 2nd neighbour (2)"
    );
    assert_eq!(r2[2], 1.0);
    assert!(
        knn_radii(&line[..3], 1, 3).is_err(),
        "k must be below the point count"
    );
}

#[test]
fn evaluator_reports_the_real_floor_and_checks_its_input() {
    let shape = trainer::data::ImageShape {
        channels: 1,
        height: 28,
        width: 28,
    };
    let train = data::open(&mnist_dir(), Split::Train, shape).unwrap();
    let evaluator = Evaluator::new(
        trained_classifier(),
        &test_split(997),
        EvalOptions::default(),
    )
    .unwrap()
    .with_floor(&train)
    .unwrap();
    // Generated = real training images: the report sits at the floor.
    let images: Vec<f32> = (3000..3500).flat_map(|i| train.image(i).to_vec()).collect();
    let report = evaluator.evaluate(&images, None).unwrap();
    let floor = report.floor.unwrap();
    assert_eq!(floor.samples, 500);
    assert!(
        report.fid < 3.0 * floor.fid + 1.0,
        "fid {} floor {}",
        report.fid,
        floor.fid
    );
    assert_eq!(report.precision_recall.real_count, 500);
    assert_eq!(report.real_samples, 997);
    let summary = report.summary();
    assert!(
        summary.starts_with("FID ") && summary.contains("(floor "),
        "{summary}"
    );
    let json = serde_json::to_string(&report).unwrap();
    assert!(json.contains("\"fid\"") && json.contains("\"floor\""));

    assert!(
        evaluator.evaluate(&images[..784 * 3], None).is_err(),
        "k = 3 needs 4 images"
    );
    let err = evaluator
        .evaluate(&images, Some(&[1, 2]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("2 labels for 500 images"), "{err}");
    let err = evaluator
        .evaluate(&images, Some(&vec![10; 500]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("0..10"), "{err}");
    let mut nan = images.clone();
    nan[5] = f32::NAN;
    assert!(
        evaluator.evaluate(&nan, None).is_err(),
        "NaN images are refused"
    );
}

/// A GAN trained for 5 steps in `dir`; returns its run folder.
fn tiny_run(dir: &Path, conditional: bool) -> PathBuf {
    let mut config = TrainConfig {
        dataset: mnist_dir(),
        max_examples: Some(512),
        conditional,
        batch_size: 32,
        steps: 5,
        seed: 4,
        out_dir: Some(dir.join(format!("run-{conditional}"))),
        ..TrainConfig::default()
    };
    config.model.kind = ModelKind::Mlp;
    config.z_dim = 8;
    config.model.mlp.generator_hidden = vec![16];
    config.model.mlp.discriminator_hidden = vec![16];
    config.every.sample = 0;
    run::train(config, &RunOptions::default()).unwrap().run_dir
}

#[test]
fn augmentation_experiment_runs_on_a_conditional_run() {
    // A tiny conditional GAN, trained for a few steps: the numbers mean nothing here, the
    // plumbing (subsets, synthetic classes, paired arms, table) is what is checked.
    let dir = tempfile::tempdir().unwrap();
    let run_dir = tiny_run(dir.path(), true);
    let source = SampleSource::open(&run_dir).unwrap();
    assert_eq!(source.classes().len(), 10);
    let samples = source.generate(25, None, 3).unwrap();
    assert_eq!(samples.pixels.len(), 25 * 784);
    assert_eq!(
        samples.labels.as_ref().unwrap()[..12],
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    );

    let shape = trainer::data::ImageShape {
        channels: 1,
        height: 28,
        width: 28,
    };
    let train = data::open(&mnist_dir(), Split::Train, shape).unwrap();
    let settings = AugmentSettings {
        per_class: vec![2, 5],
        synthetic: 3,
        repeats: 2,
        steps: 4,
        batch_size: 16,
        classifier: ClassifierConfig {
            conv1: 4,
            conv2: 4,
            features: 8,
            ..ClassifierConfig::default()
        },
        ..AugmentSettings::default()
    };
    let report = augment::run(
        &train,
        &test_split(200),
        &source,
        &settings,
        &ProgressBar::hidden(),
    )
    .unwrap();
    assert_eq!(report.rows.len(), 2);
    assert_eq!(report.test_examples, 200);
    for row in &report.rows {
        assert_eq!(row.real_only.runs.len(), 2);
        let arm = &row.arms[0];
        assert_eq!(arm.name, "plain");
        assert!(
            row.real_only
                .runs
                .iter()
                .chain(&arm.augmented.runs)
                .all(|a| (0.0..=1.0).contains(a))
        );
        let paired = arm.augmented.mean - row.real_only.mean;
        assert!((arm.gain.mean - paired).abs() < 1e-9);
    }
    assert!(report.table().contains("gain (paired)"));

    // An unconditional generator is refused with the reason.
    let unconditional = SampleSource::open(&tiny_run(dir.path(), false)).unwrap();
    let err = augment::run(
        &train,
        &test_split(200),
        &unconditional,
        &settings,
        &ProgressBar::hidden(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("conditional"), "{err}");
    // Too few real examples of a class is a clear error.
    let greedy = AugmentSettings {
        per_class: vec![5000],
        ..settings
    };
    let err = augment::run(
        &train,
        &test_split(200),
        &source,
        &greedy,
        &ProgressBar::hidden(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("fewer than the 5000 per class"), "{err}");
}

#[test]
fn evaluator_measures_a_training_gan() {
    // What the training loop calls every N steps: fixed noise, so two calls agree.
    let dir = tempfile::tempdir().unwrap();
    let (gan, _) = trainer::export::load_run(&tiny_run(dir.path(), true)).unwrap();
    let evaluator = Evaluator::new(
        trained_classifier(),
        &test_split(997),
        EvalOptions::default(),
    )
    .unwrap();
    let report = evaluator.evaluate_gan(&gan, 200, 5).unwrap();
    assert_eq!(report.samples, 200);
    assert!(report.fid.is_finite() && report.fid > 0.0);
    let conditional = report.conditional.as_ref().unwrap();
    assert_eq!(conditional.per_class.len(), 10);
    assert!(conditional.per_class.iter().all(|c| c.samples == 20));
    assert_eq!(evaluator.evaluate_gan(&gan, 200, 5).unwrap(), report);
    assert!(report.floor.is_none(), "no training split was given");
}
