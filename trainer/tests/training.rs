//! The alternating loop: each step moves only its own player, a short run on MNIST-10k
//! learns something, checkpoints resume bit-for-bit, and every model variant trains.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor};
use trainer::config::{LossKind, TrainConfig};
use trainer::data::{BatchCursor, Batcher, Split};
use trainer::metrics::{self, DivergenceWatch};
use trainer::model::ModelKind;
use trainer::run::{self, RunOptions};
use trainer::training::{Gan, StepStats};

fn mnist_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist-10k")
}

/// A small, fast config on MNIST-10k.
fn small_config(kind: ModelKind, conditional: bool) -> TrainConfig {
    let mut c = TrainConfig {
        dataset: mnist_dir(),
        max_examples: Some(2048),
        conditional,
        batch_size: 32,
        steps: 20,
        seed: 3,
        ..TrainConfig::default()
    };
    c.model.kind = kind;
    c.z_dim = 16;
    c.model.mlp.generator_hidden = vec![32];
    c.model.mlp.discriminator_hidden = vec![32];
    c.model.dcgan.generator_channels = vec![16, 8];
    c.model.dcgan.discriminator_channels = vec![8, 16];
    c.every.log = 5;
    c.every.sample = 10;
    c.every.checkpoint = 10;
    c
}

/// Trainable parameters of a module, flattened, in visiting order.
fn trainable<M: Module>(module: &M) -> Vec<Vec<f32>> {
    struct Collect(Vec<Vec<f32>>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let value = param.val();
            if value.is_require_grad() {
                self.0.push(value.into_data().try_to_vec::<f32>().unwrap());
            }
        }
    }
    let mut c = Collect(Vec::new());
    module.visit(&mut c);
    c.0
}

fn all_weights<M: Module>(module: &M) -> Vec<Vec<f32>> {
    struct Collect(Vec<Vec<f32>>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0
                .push(param.val().into_data().try_to_vec::<f32>().unwrap());
        }
    }
    let mut c = Collect(Vec::new());
    module.visit(&mut c);
    c.0
}

#[test]
fn each_step_moves_only_its_own_player() {
    for kind in [ModelKind::Mlp, ModelKind::Dcgan] {
        for conditional in [false, true] {
            let config = small_config(kind, conditional);
            let data = run::load_training_set(&config).unwrap();
            let mut gan = Gan::new(
                &config,
                data.class_names().len(),
                data.shape(),
                &Device::flex(),
            );
            let mut batcher = Batcher::new(
                &data,
                config.batch_size,
                config.seed,
                BatchCursor::default(),
            );
            let g0 = trainable(&gan.generator);
            let d0 = trainable(&gan.discriminator);
            assert!(!g0.is_empty() && !d0.is_empty());

            gan.discriminator_step(&batcher.next_batch(&data));
            assert_eq!(
                trainable(&gan.generator),
                g0,
                "{kind} cond={conditional}: the D step moved G"
            );
            let d1 = trainable(&gan.discriminator);
            assert_ne!(
                d1, d0,
                "{kind} cond={conditional}: the D step did not move D"
            );

            gan.generator_step(config.batch_size);
            assert_eq!(
                trainable(&gan.discriminator),
                d1,
                "{kind} cond={conditional}: the G step moved D"
            );
            assert_ne!(
                trainable(&gan.generator),
                g0,
                "{kind} cond={conditional}: the G step did not move G"
            );
        }
    }
}

#[test]
fn short_mlp_run_on_mnist_learns() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = TrainConfig {
        dataset: mnist_dir(),
        steps: 300,
        batch_size: 64,
        out_dir: Some(dir.path().join("run")),
        ..TrainConfig::default()
    };
    config.every.log = 25;
    config.every.sample = 100;
    config.every.checkpoint = 100;
    let summary = run::train(config.clone(), &RunOptions::default()).unwrap();
    assert_eq!(summary.steps, 300);
    let run_dir = summary.run_dir;
    let lines = metrics::read(&run_dir.join("metrics.jsonl")).unwrap();
    assert_eq!(lines.len(), 12);
    let (first, last) = (&lines[0], &lines[lines.len() - 1]);
    // The players moved: D learned to separate (its loss fell from ~ln 2) and the
    // fake probability D(G(z)) changed.
    assert!(first.d_loss.is_finite() && last.d_loss.is_finite());
    assert!(last.d_loss < 0.69, "D loss did not fall: {last:?}");
    assert!(
        (first.d_fake - last.d_fake).abs() > 0.01,
        "D(G(z)) did not move: {first:?} {last:?}"
    );
    assert!(
        (first.g_loss - last.g_loss).abs() > 0.01,
        "G loss did not move"
    );
    assert!(last.step_ms > 0.0);

    // Samples are not all identical: generate from the checkpoint's G.
    let mut gan = Gan::new(
        &config,
        10,
        trainer::data::ImageShape {
            channels: 1,
            height: 28,
            width: 28,
        },
        &Device::flex(),
    );
    trainer::checkpoint::load(&mut gan, &trainer::checkpoint::latest(&run_dir).unwrap()).unwrap();
    let mut noise = trainer::noise::NoiseSource::new(1);
    let images = trainer::training::generate(
        &gan.inference_generator(),
        noise.noise(16, 100),
        100,
        None,
        &Device::flex(),
    );
    assert_eq!(images.len(), 16 * 784);
    let first_image = &images[..784];
    let differing = images.chunks(784).skip(1).filter(|img| {
        img.iter()
            .zip(first_image)
            .map(|(a, b)| (a - b).abs())
            .sum::<f32>()
            > 1.0
    });
    assert_eq!(differing.count(), 15, "samples collapsed to one image");
    assert!(images.iter().all(|v| (-1.0..=1.0).contains(v)));

    for file in [
        "config.json",
        "classes.json",
        "report.png",
        "samples/latest.png",
        "samples/step-0000100.png",
    ] {
        assert!(run_dir.join(file).is_file(), "missing {file}");
    }
    let png = image::open(run_dir.join("samples/latest.png")).unwrap();
    assert!(png.width() > 8 * 28 && png.height() > 8 * 28);
    // Only the newest checkpoints are kept; `latest` points at the final one.
    assert!(
        trainer::checkpoint::latest(&run_dir)
            .unwrap()
            .ends_with("step-0000300")
    );

    // A second run into the same folder is refused rather than wiping it.
    let err = run::train(config, &RunOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("already exists"), "{err}");
}

/// G, D and EMA weights (flattened, in visiting order) of a run's latest checkpoint.
type RunWeights = (Vec<Vec<f32>>, Vec<Vec<f32>>, Option<Vec<Vec<f32>>>);

fn final_weights(run_dir: &Path, config: &TrainConfig) -> RunWeights {
    let data = run::load_training_set(config).unwrap();
    let mut gan = Gan::new(
        config,
        data.class_names().len(),
        data.shape(),
        &Device::flex(),
    );
    trainer::checkpoint::load(&mut gan, &trainer::checkpoint::latest(run_dir).unwrap()).unwrap();
    (
        all_weights(&gan.generator),
        all_weights(&gan.discriminator),
        gan.ema.as_ref().map(all_weights),
    )
}

#[test]
fn resumed_run_matches_uninterrupted_run() {
    for (kind, conditional) in [(ModelKind::Mlp, false), (ModelKind::Dcgan, true)] {
        let dir = tempfile::tempdir().unwrap();
        let mut config = small_config(kind, conditional);
        config.ema_decay = Some(0.9);
        config.loss = if conditional {
            LossKind::Hinge
        } else {
            LossKind::NonSaturating
        };

        config.out_dir = Some(dir.path().join("straight"));
        config.steps = 20;
        run::train(config.clone(), &RunOptions::default()).unwrap();

        config.out_dir = Some(dir.path().join("split"));
        config.steps = 10;
        run::train(config.clone(), &RunOptions::default()).unwrap();
        let resumed = RunOptions {
            resume: Some(dir.path().join("split")),
            changes: run::ResumeChanges {
                steps: Some(20),
                ..Default::default()
            },
            ..RunOptions::default()
        };
        let summary = run::train(config.clone(), &resumed).unwrap();
        assert_eq!(summary.steps, 20);

        let straight = final_weights(&dir.path().join("straight"), &config);
        let split = final_weights(&dir.path().join("split"), &config);
        assert!(straight.2.is_some());
        for (part, (a, b)) in [
            ("generator", (&straight.0, &split.0)),
            ("discriminator", (&straight.1, &split.1)),
            (
                "ema",
                (straight.2.as_ref().unwrap(), split.2.as_ref().unwrap()),
            ),
        ] {
            assert_eq!(a.len(), b.len());
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                let max_diff = x
                    .iter()
                    .zip(y)
                    .map(|(p, q)| (p - q).abs())
                    .fold(0.0f32, f32::max);
                assert!(
                    x == y,
                    "{kind}: {part} tensor {i} ({} values) differs after resume, max diff {max_diff}",
                    x.len()
                );
            }
        }
        // The metrics log of the resumed run has one line per interval, no duplicates.
        let steps: Vec<usize> = metrics::read(&dir.path().join("split/metrics.jsonl"))
            .unwrap()
            .iter()
            .map(|l| l.step)
            .collect();
        assert_eq!(steps, [5, 10, 15, 20]);
    }
}

#[test]
fn stop_flag_saves_a_checkpoint_and_stops() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = small_config(ModelKind::Mlp, false);
    config.out_dir = Some(dir.path().join("run"));
    config.steps = 1000;
    let options = RunOptions {
        stop: Some(Arc::new(AtomicBool::new(true))),
        ..RunOptions::default()
    };
    let summary = run::train(config, &options).unwrap();
    assert!(summary.interrupted);
    assert_eq!(summary.steps, 1);
    assert!(
        trainer::checkpoint::latest(&summary.run_dir)
            .unwrap()
            .ends_with("step-0000001")
    );
}

#[test]
fn resume_of_a_folder_without_checkpoint_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let options = RunOptions {
        resume: Some(dir.path().to_path_buf()),
        ..RunOptions::default()
    };
    let err = run::train(TrainConfig::default(), &options)
        .unwrap_err()
        .to_string();
    assert!(err.contains("config.json"), "{err}");
}

#[test]
fn divergence_is_detected() {
    let nan = StepStats {
        d_loss: f32::NAN,
        ..StepStats::default()
    };
    assert!(nan.is_diverged());
    assert!(!StepStats::default().is_diverged());
    let perfect = StepStats {
        acc_real: 1.0,
        acc_fake: 1.0,
        ..StepStats::default()
    };
    let mut watch = DivergenceWatch::new(3, 0);
    assert!(watch.observe(&perfect).is_none());
    assert!(watch.observe(&perfect).is_none());
    assert!(watch.observe(&perfect).unwrap().contains("3 steps"));
    assert!(watch.observe(&perfect).is_none(), "warns once per streak");
    watch.observe(&StepStats::default());
    assert_eq!(watch.perfect_d_streak, 0);
}

#[test]
fn example_configs_parse_and_validate() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let config = TrainConfig::from_toml_file(&path).unwrap();
            config
                .validate()
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            count += 1;
        }
    }
    assert!(count >= 2);
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.toml");
    std::fs::write(&bad, "batch_size = \"large\"\n").unwrap();
    let err = TrainConfig::from_toml_file(&bad).unwrap_err().to_string();
    assert!(
        err.contains("bad.toml") && err.contains("batch_size"),
        "{err}"
    );
    let _ = Split::Test;
}

#[test]
fn quality_is_logged_during_training_and_the_best_checkpoint_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = small_config(ModelKind::Mlp, true);
    config.out_dir = Some(dir.path().join("run"));
    config.z_dim = 100;
    config.steps = 30;
    config.eval.classifier =
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/classifier-mnist-10k.bpk"));
    config.eval.every = 10;
    config.eval.samples = 60;
    let summary = run::train(config, &RunOptions::default()).unwrap();
    let lines = metrics::read(&summary.run_dir.join("metrics.jsonl")).unwrap();
    let evaluated: Vec<_> = lines
        .iter()
        .filter_map(|l| l.quality.as_ref().map(|q| (l.step, q)))
        .collect();
    assert_eq!(
        evaluated.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        [10, 20, 30]
    );
    for (_, q) in &evaluated {
        assert_eq!(q.samples, 60);
        assert!(q.fid.is_finite() && q.fid > 0.0);
        assert!((0.0..=1.0).contains(&q.precision) && (0.0..=1.0).contains(&q.recall));
        assert!(
            q.conditional_accuracy.is_some(),
            "conditional models report per-class accuracy"
        );
    }
    // The best checkpoint holds the step with the lowest FID.
    let best_step = evaluated
        .iter()
        .min_by(|a, b| a.1.fid.total_cmp(&b.1.fid))
        .map(|(s, _)| *s)
        .unwrap();
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(summary.run_dir.join("checkpoints/best/state.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(state["step"], best_step);
}

/// The shipped evaluation classifier for MNIST-10k.
fn shipped_classifier() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/classifier-mnist-10k.bpk")
}

#[test]
fn until_fid_stops_the_run_at_the_first_good_enough_evaluation() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = small_config(ModelKind::Mlp, true);
    config.out_dir = Some(dir.path().join("run"));
    config.steps = 200;
    config.eval.classifier = Some(shipped_classifier());
    config.eval.every = 10;
    config.eval.samples = 60;
    config.eval.until_fid = Some(1e9); // any FID is good enough
    let summary = run::train(config, &RunOptions::default()).unwrap();
    assert_eq!(summary.steps, 10, "stopped at the first evaluation");
    let reason = summary.stopped_early.expect("an early stop");
    assert!(reason.contains("until-fid"), "{reason}");
    assert!(!summary.interrupted);
    // The stop is logged and the step's checkpoint is kept, so the run can go on.
    let lines = metrics::read(&summary.run_dir.join("metrics.jsonl")).unwrap();
    let last = lines.last().unwrap();
    assert_eq!(last.step, 10);
    assert!(
        last.event
            .as_deref()
            .is_some_and(|e| e.contains("until-fid"))
    );
    assert!(
        trainer::checkpoint::latest(&summary.run_dir)
            .unwrap()
            .ends_with("step-0000010")
    );
    assert!(summary.run_dir.join("report.png").is_file());
}

#[test]
fn patience_stops_after_that_many_evaluations_without_a_better_fid() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = small_config(ModelKind::Mlp, true);
    config.out_dir = Some(dir.path().join("run"));
    config.steps = 300;
    config.eval.classifier = Some(shipped_classifier());
    config.eval.every = 10;
    config.eval.samples = 60;
    config.eval.patience = Some(2);
    let summary = run::train(config, &RunOptions::default()).unwrap();
    let lines = metrics::read(&summary.run_dir.join("metrics.jsonl")).unwrap();
    let fids: Vec<f64> = lines
        .iter()
        .filter_map(|l| l.quality.as_ref().map(|q| q.fid))
        .collect();
    // How many evaluations in a row, up to each one, brought no new best.
    let mut best = f64::INFINITY;
    let mut without_best = Vec::new();
    let mut streak = 0;
    for &fid in &fids {
        if fid < best {
            best = fid;
            streak = 0;
        } else {
            streak += 1;
        }
        without_best.push(streak);
    }
    match &summary.stopped_early {
        Some(reason) => {
            assert!(reason.contains("patience"), "{reason}");
            assert_eq!(without_best.last(), Some(&2), "stopped at the second miss");
            assert!(
                without_best[..without_best.len() - 1]
                    .iter()
                    .all(|&s| s < 2)
            );
        }
        None => {
            assert_eq!(summary.steps, 300);
            assert!(
                without_best.iter().all(|&s| s < 2),
                "{fids:?} never stopped"
            );
        }
    }
}

#[test]
fn tensorboard_events_hold_the_scalars_and_sample_grids() {
    use trainer::report::tensorboard::{EventWhat, SummaryValueKind, decode_event, read_records};
    let dir = tempfile::tempdir().unwrap();
    let mut config = small_config(ModelKind::Mlp, true);
    config.out_dir = Some(dir.path().join("run"));
    config.tensorboard = true;
    config.eval.classifier = Some(shipped_classifier());
    config.eval.every = 10;
    config.eval.samples = 60;
    let summary = run::train(config, &RunOptions::default()).unwrap();
    let files: Vec<PathBuf> = std::fs::read_dir(&summary.run_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("tfevents"))
        .collect();
    assert_eq!(files.len(), 1, "one event file: {files:?}");
    let mut scalars: Vec<(String, i64)> = Vec::new();
    let mut images: Vec<(String, i64, i32, i32)> = Vec::new();
    for record in read_records(&files[0]).unwrap() {
        let event = decode_event(&record).unwrap();
        if let Some(EventWhat::Summary(summary)) = event.what {
            for value in summary.value {
                match value.value {
                    Some(SummaryValueKind::SimpleValue(_)) => scalars.push((value.tag, event.step)),
                    Some(SummaryValueKind::Image(image)) => {
                        images.push((value.tag, event.step, image.width, image.height))
                    }
                    None => {}
                }
            }
        }
    }
    let steps_of = |tag: &str| -> Vec<i64> {
        scalars
            .iter()
            .filter(|(t, _)| t == tag)
            .map(|(_, s)| *s)
            .collect()
    };
    // small_config logs every 5 steps and samples every 10, over 20 steps.
    assert_eq!(steps_of("loss/discriminator"), [5, 10, 15, 20]);
    assert_eq!(steps_of("D/fake"), [5, 10, 15, 20]);
    assert_eq!(steps_of("quality/fid"), [10, 20]);
    assert_eq!(steps_of("quality/conditional_accuracy"), [10, 20]);
    let sample_steps: Vec<i64> = images.iter().map(|(_, s, _, _)| *s).collect();
    assert_eq!(sample_steps, [10, 20, 20], "two grids and the final one");
    assert!(
        images
            .iter()
            .all(|(tag, _, w, h)| tag == "samples" && *w > 280 && *h > 280)
    );

    // The real reader, TensorBoard's own, where Python has it (CI installs it).
    let checker = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/check_tensorboard.py");
    let output = std::process::Command::new("python3")
        .arg(&checker)
        .arg(&summary.run_dir)
        .args([
            "--scalar",
            "loss/discriminator",
            "--scalar",
            "accuracy/real",
        ])
        .args(["--steps", "5,10,15,20", "--image", "samples"])
        .output()
        .expect("running python3");
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    match output.status.code() {
        Some(0) => {}
        Some(3) if std::env::var("CI").is_err() => {
            eprintln!("TensorBoard reader check not run (pip install tensorboard): {text}")
        }
        _ => panic!("TensorBoard's reader rejects the run: {text}"),
    }
}

#[test]
fn the_shipped_classifier_of_a_data_set_is_found_by_its_folder_name() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    assert_eq!(
        run::shipped_classifier(&root, Path::new("data/mnist-10k")),
        Some(root.join("models/classifier-mnist-10k.bpk"))
    );
    assert_eq!(
        run::shipped_classifier(&root, Path::new("/elsewhere/fashion-mnist")),
        Some(root.join("models/classifier-fashion-mnist.bpk"))
    );
    assert_eq!(run::shipped_classifier(&root, Path::new("my-photos")), None);
}

#[test]
fn the_default_run_is_a_conditional_dcgan_that_evaluates_itself() {
    let config = TrainConfig::default_run().unwrap();
    assert!(
        config.conditional,
        "users come for labelled data: G must take a class"
    );
    assert_eq!(config.model.kind, ModelKind::Dcgan);
    assert!(config.eval.auto && config.eval.every > 0);
    config.validate().unwrap();
    // The book's chapter-3 settings stay one file away, and are what absent fields take.
    let book = TrainConfig::from_toml_file(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/book-ch3.toml"),
    )
    .unwrap();
    let mut expected = TrainConfig::default();
    expected.eval.classifier = book.eval.classifier.clone();
    assert_eq!(book, expected);
    assert_eq!(book.model.kind, ModelKind::Mlp);
    assert!(!book.conditional);
}
