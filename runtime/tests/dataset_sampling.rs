//! `generate --truncation` and `--filter`: truncation bounds every noise value; the filter keeps
//! exactly the candidates an independent replay of the documented rule keeps, meets every
//! class's count, stops cleanly when a count is unreachable, and records what it did.

mod common;

use std::path::Path;

use runtime::dataset::{
    DatasetRequest, FilterRequest, OutputFormat, Sampling, read_idx, write_dataset,
};
use runtime::engine::classifier::Classifier;
use runtime::engine::tract::{Generator, image_u8};
use runtime::onnx::classifier::{ClassifierSpec, Conv, Dense};
use runtime::onnx::spec::{ImageShape, Matrix};

const CLASSES: usize = 10;

/// A small classifier for 1x28x28 images. With `weights` false every weight is zero, so the
/// probabilities are softmax(`bias`) whatever the image.
fn classifier(dir: &Path, name: &str, weights: bool, bias: Vec<f32>) -> std::path::PathBuf {
    let mut w = common::Weights::new(11);
    let mut values = |n: usize, scale: f32| {
        if weights {
            w.normal(n, scale)
        } else {
            vec![0.0; n]
        }
    };
    let conv = |c_in: usize, c_out: usize, values: &mut dyn FnMut(usize, f32) -> Vec<f32>| Conv {
        weight: values(c_out * c_in * 9, 0.4),
        c_in,
        c_out,
        kernel: [3, 3],
        bias: values(c_out, 0.1),
    };
    let conv1 = conv(1, 4, &mut values);
    let conv2 = conv(4, 4, &mut values);
    let flat = 4 * 7 * 7;
    let spec = ClassifierSpec {
        image: ImageShape {
            channels: 1,
            height: 28,
            width: 28,
        },
        classes: (0..CLASSES).map(|c| c.to_string()).collect(),
        conv1,
        conv2,
        hidden: Dense {
            weight: Matrix {
                rows: flat,
                cols: 16,
                data: values(flat * 16, 0.2),
            },
            bias: values(16, 0.1),
        },
        output: Dense {
            weight: Matrix {
                rows: 16,
                cols: CLASSES,
                data: values(16 * CLASSES, 0.02),
            },
            bias,
        },
        metadata: Default::default(),
    };
    let path = dir.join(format!("{name}.onnx"));
    spec.write_onnx(&path).unwrap();
    path
}

fn request(out: &Path, count: usize, class: Option<usize>, sampling: Sampling) -> DatasetRequest {
    DatasetRequest {
        count,
        class,
        seed: 9,
        format: OutputFormat::Idx { gzip: false },
        out: out.to_path_buf(),
        force: false,
        sampling,
    }
}

fn filter(classifier: &Path, min_confidence: f32) -> Option<FilterRequest> {
    Some(FilterRequest {
        classifier: classifier.to_path_buf(),
        min_confidence,
        max_draws_per_image: 50,
    })
}

#[test]
fn truncation_bounds_every_value_and_changes_only_what_exceeds_it() {
    let mut z = vec![0.0; 4096];
    for seed in 0..20 {
        runtime::noise::latent(seed, Some(0.5), &mut z);
        assert!(z.iter().all(|v| v.abs() <= 0.5), "seed {seed}");
        let mut plain = vec![0.0; 8];
        let mut wide = vec![0.0; 8];
        runtime::noise::latent(seed, None, &mut plain);
        runtime::noise::latent(seed, Some(100.0), &mut wide);
        assert_eq!(plain, wide, "a bound nothing exceeds changes nothing");
    }
    let dir = tempfile::tempdir().unwrap();
    let g = Generator::load(common::write(&common::mlp(1, true), dir.path(), "g")).unwrap();
    let plain = write_dataset(
        &g,
        "g",
        &request(&dir.path().join("a"), 30, None, Sampling::default()),
        |_| {},
    )
    .unwrap();
    let truncated = Sampling {
        truncation: Some(0.5),
        filter: None,
    };
    let t = write_dataset(
        &g,
        "g",
        &request(&dir.path().join("b"), 30, None, truncated),
        |_| {},
    )
    .unwrap();
    assert_eq!(t.noise.truncation, Some(0.5));
    assert_eq!(plain.noise.truncation, None);
    assert_ne!(t.noise.fingerprint, plain.noise.fingerprint);
    let json = std::fs::read_to_string(dir.path().join("b/manifest.json")).unwrap();
    assert!(json.contains("\"truncation\": 0.5"), "{json}");
}

/// Replays the documented rule independently: candidate j has the z of seed + j and label
/// j % 10; it is kept when its class still needs images and the classifier gives that class
/// at least p. The data set must hold exactly those images, in that order.
#[test]
fn the_filter_keeps_what_the_rule_keeps_and_meets_every_count() {
    let dir = tempfile::tempdir().unwrap();
    let g = Generator::load(common::write(&common::mlp(3, true), dir.path(), "g")).unwrap();
    let c_path = classifier(dir.path(), "c", true, vec![0.0; CLASSES]);
    let c = Classifier::load(&c_path).unwrap();
    let (count, p) = (40, 0.09);
    let out = dir.path().join("kept");
    let m = write_dataset(
        &g,
        "g",
        &request(
            &out,
            count,
            None,
            Sampling {
                truncation: None,
                filter: filter(&c_path, p),
            },
        ),
        |_| {},
    )
    .unwrap();
    assert_eq!(m.counts, vec![4; CLASSES]);

    let mut wanted_images = Vec::new();
    let mut wanted_labels = Vec::new();
    let mut kept = [0usize; CLASSES];
    let mut drawn = [0usize; CLASSES];
    let mut j = 0u64;
    while wanted_labels.len() < count {
        let label = (j % CLASSES as u64) as usize;
        if kept[label] < 4 {
            let mut z = vec![0.0; 16];
            runtime::noise::latent(9 + j, None, &mut z);
            let pixels = g.run(&z, Some(&[label as i64])).unwrap();
            // Judged as written: 8-bit levels back in [-1, 1].
            let written: Vec<f32> = image_u8(&pixels, g.info().image)
                .iter()
                .map(|b| f32::from(*b) / 127.5 - 1.0)
                .collect();
            let probs = c.probabilities(&written, 1).unwrap();
            drawn[label] += 1;
            if probs[label] >= p {
                kept[label] += 1;
                wanted_images.extend(image_u8(&pixels, g.info().image));
                wanted_labels.push(label as u8);
            }
        }
        j += 1;
    }
    let images = read_idx(&out.join("images-idx3-ubyte")).unwrap();
    let labels = read_idx(&out.join("labels-idx1-ubyte")).unwrap();
    assert_eq!(labels.data, wanted_labels);
    // Batched and single runs of tract agree to float rounding: allow one grey level.
    let off = images
        .data
        .iter()
        .zip(&wanted_images)
        .filter(|(a, b)| a.abs_diff(**b) > 1)
        .count();
    assert_eq!(off, 0, "images differ from the replay");
    let f = m.filter.expect("the manifest records the filter");
    assert_eq!(f.accepted, vec![4; CLASSES]);
    assert_eq!(f.drawn, drawn.to_vec());
    assert!(
        f.drawn.iter().sum::<usize>() > count,
        "the filter rejected something"
    );
    assert!(f.acceptance_rate.iter().all(|r| (0.0..=1.0).contains(r)));

    // Deterministic: the same request keeps the same images.
    let again = dir.path().join("again");
    let m2 = write_dataset(
        &g,
        "g",
        &request(
            &again,
            count,
            None,
            Sampling {
                truncation: None,
                filter: filter(&c_path, p),
            },
        ),
        |_| {},
    )
    .unwrap();
    assert_eq!(m2.noise.fingerprint, m.noise.fingerprint);
    assert_eq!(read_idx(&again.join("images-idx3-ubyte")).unwrap(), images);
}

#[test]
fn an_unreachable_count_stops_cleanly_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let g = Generator::load(common::write(&common::mlp(3, true), dir.path(), "g")).unwrap();
    // Constant probabilities: class 0 gets 0.5, every other class 0.5/9 < 0.1.
    let mut bias = vec![0.0; CLASSES];
    bias[0] = (0.5f32 / (0.5 / 9.0)).ln();
    let c_path = classifier(dir.path(), "constant", false, bias);
    let out = dir.path().join("out");
    // Class 0 alone is reachable.
    let only_zero = write_dataset(
        &g,
        "g",
        &request(
            &out,
            12,
            Some(0),
            Sampling {
                truncation: None,
                filter: filter(&c_path, 0.4),
            },
        ),
        |_| {},
    )
    .unwrap();
    assert_eq!(only_zero.counts[0], 12);
    assert_eq!(only_zero.filter.unwrap().drawn[0], 12);
    // Class 3 never reaches 0.4.
    let out3 = dir.path().join("out3");
    let err = write_dataset(
        &g,
        "g",
        &request(
            &out3,
            5,
            Some(3),
            Sampling {
                truncation: None,
                filter: filter(&c_path, 0.4),
            },
        ),
        |_| {},
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("class 3")
            && err.contains("250 candidates")
            && err.contains("--min-confidence"),
        "{err}"
    );
    assert!(!out3.exists(), "nothing is written");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        leftovers
            .iter()
            .all(|n| !n.to_string_lossy().contains("out3")),
        "{leftovers:?}"
    );
}

#[test]
fn a_filter_that_does_not_fit_the_generator_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let c_path = classifier(dir.path(), "c", true, vec![0.0; CLASSES]);
    let unconditional =
        Generator::load(common::write(&common::mlp(1, false), dir.path(), "u")).unwrap();
    let err = write_dataset(
        &unconditional,
        "u",
        &request(
            &dir.path().join("o"),
            5,
            None,
            Sampling {
                truncation: None,
                filter: filter(&c_path, 0.5),
            },
        ),
        |_| {},
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("unconditional"), "{err}");
    let generator_as_classifier = common::write(&common::mlp(1, true), dir.path(), "g2");
    let g = Generator::load(&generator_as_classifier).unwrap();
    let err = write_dataset(
        &g,
        "g",
        &request(
            &dir.path().join("o2"),
            5,
            None,
            Sampling {
                truncation: None,
                filter: filter(&generator_as_classifier, 0.5),
            },
        ),
        |_| {},
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("g2"), "{err}");
    // And a classifier is not a generator.
    let err = Generator::load(&c_path).unwrap_err().to_string();
    assert!(
        err.contains("classifier") && err.contains("--filter"),
        "{err}"
    );
}

#[test]
fn generate_cli_filters_and_records_it() {
    let dir = tempfile::tempdir().unwrap();
    let g = common::write(&common::mlp(3, true), dir.path(), "g");
    let c = classifier(dir.path(), "c", true, vec![0.0; CLASSES]);
    let out = dir.path().join("data");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_runtime"))
        .args([
            "generate",
            "--model",
            &s(&g),
            "--count",
            "20",
            "--out",
            &s(&out),
            "--filter",
            &s(&c),
            "--min-confidence",
            "0.09",
            "--truncation",
            "1.5",
            "--format",
            "idx",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m = runtime::dataset::Manifest::read(&out.join("manifest.json")).unwrap();
    assert_eq!(m.counts, vec![2; CLASSES]);
    assert_eq!(m.noise.truncation, Some(1.5));
    assert_eq!(m.filter.unwrap().min_confidence, 0.09);
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_runtime"))
        .args([
            "generate",
            "--model",
            &s(&g),
            "--count",
            "2",
            "--out",
            &s(&dir.path().join("x")),
            "--min-confidence",
            "0.5",
        ])
        .output()
        .unwrap();
    assert_eq!(
        bad.status.code(),
        Some(2),
        "--min-confidence needs --filter"
    );
}
