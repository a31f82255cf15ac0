//! The trainer CLI on bad input and after failures, as a user runs it: argument and
//! config errors instead of panics, each fact said once, a diverged run that can be
//! resumed with lower learning rates, and image folders with the clutter real folders have.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn trainer() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_trainer"));
    cmd.env("RUST_LOG", "info").env_remove("GANTRY_PAUSE_AT");
    cmd
}

fn mnist_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist-10k")
}

/// A tiny mlp run config on MNIST-10k, without quality evaluation.
fn tiny_config(dir: &Path, extra: &str) -> PathBuf {
    let path = dir.join("tiny.toml");
    let text = format!(
        r#"dataset = {:?}
max_examples = 512
z_dim = 8
batch_size = 32
steps = 40
seed = 5
{extra}

[model]
kind = "mlp"

[model.mlp]
generator_hidden = [16]
discriminator_hidden = [16]

[every]
log = 5
sample = 0
checkpoint = 10

[eval]
auto = false
"#,
        mnist_dir().display().to_string()
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// `trainer train --config CONFIG [EXTRA] --out OUT`.
fn train(config: &Path, out: &Path, extra: &[&str]) -> Output {
    trainer()
        .args(["train", "--config"])
        .arg(config)
        .args(extra)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

/// `trainer train --resume RUN [EXTRA]`.
fn resume(run: &Path, extra: &[&str]) -> Output {
    trainer()
        .args(["train", "--resume"])
        .arg(run)
        .args(extra)
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_clean_failure(out: &Output, code: i32, needle: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "exit code; stderr:\n{err}");
    assert!(!err.contains("panicked"), "a panic:\n{err}");
    assert!(err.contains(needle), "expected {needle:?} in:\n{err}");
}

#[test]
fn zero_examples_is_an_argument_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = trainer()
        .args(["train", "--max-examples", "0", "--steps", "1", "--out"])
        .arg(dir.path().join("r0"))
        .output()
        .unwrap();
    assert_clean_failure(&out, 2, "--max-examples");
    // The same through a config file: a config error naming the field.
    let config = tiny_config(dir.path(), "");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("max_examples = 512", "max_examples = 0");
    std::fs::write(&config, text).unwrap();
    let out = train(&config, &dir.path().join("r1"), &[]);
    assert_clean_failure(&out, 1, "max_examples must be at least 1");
}

#[test]
fn numbers_out_of_range_are_refused_before_training() {
    let dir = tempfile::tempdir().unwrap();
    for (args, needle) in [
        (vec!["--lr-g", "inf"], "--lr-g"),
        (vec!["--lr-d=-1"], "--lr-d"),
        (vec!["--beta1", "1.5"], "--beta1"),
        (vec!["--ema", "NaN"], "--ema"),
        (vec!["--batch-size", "0"], "--batch-size"),
        (vec!["--until-fid", "0"], "--until-fid"),
    ] {
        let out = trainer()
            .arg("train")
            .args(&args)
            .arg("--out")
            .arg(dir.path().join("r"))
            .output()
            .unwrap();
        assert_clean_failure(&out, 2, needle);
    }
    let out = trainer()
        .args(["classifier", "--lr", "0", "--out"])
        .arg(dir.path().join("c.bpk"))
        .output()
        .unwrap();
    assert_clean_failure(&out, 2, "--lr");
    // A config's Adam epsilon of 0 divides by zero in every update.
    let config = tiny_config(dir.path(), "[generator_adam]\nepsilon = 0.0\n");
    let out = train(&config, &dir.path().join("r2"), &[]);
    assert_clean_failure(&out, 1, "generator_adam.epsilon");
}

#[test]
fn a_missing_file_is_named_once_with_its_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-run");
    std::fs::create_dir_all(missing.join("checkpoints")).unwrap();
    let config = tiny_config(dir.path(), "");
    std::fs::copy(&config, missing.join("config.toml")).unwrap();
    for args in [
        vec![
            "train".to_string(),
            "--resume".into(),
            dir.path().join("nothing-here").display().to_string(),
        ],
        vec![
            "train".to_string(),
            "--config".into(),
            dir.path().join("absent.toml").display().to_string(),
        ],
        vec![
            "export".to_string(),
            dir.path().join("nothing-here").display().to_string(),
        ],
    ] {
        let out = trainer().args(&args).output().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        let error_line = err
            .lines()
            .find(|l| l.starts_with("error:"))
            .unwrap_or_default();
        assert_eq!(
            error_line.matches("No such file or directory").count(),
            1,
            "{args:?}: the cause once in {error_line:?}"
        );
        let name = Path::new(args.last().unwrap())
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(
            error_line.matches(name.as_str()).count() <= 2 && error_line.contains(name.as_str()),
            "{args:?}: the path named, not repeated, in {error_line:?}"
        );
    }
}

#[test]
fn a_fifo_or_device_given_as_a_config_is_refused_not_read_forever() {
    let out = trainer()
        .args(["train", "--config", "/dev/zero"])
        .output()
        .unwrap();
    assert_clean_failure(&out, 1, "not a regular file");
}

#[test]
fn a_diverged_run_resumes_with_lower_learning_rates_as_advised() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), "");
    let run = dir.path().join("div");
    let out = train(
        &config,
        &run,
        &[
            "--lr-g",
            "1e30",
            "--lr-d",
            "1e30",
            "--steps",
            "50",
            "--checkpoint-every",
            "1",
        ],
    );
    assert_clean_failure(&out, 3, "training diverged");
    let err = stderr(&out);
    assert!(
        err.contains("--resume"),
        "the advice names the command: {err}"
    );
    // Every line of the log is readable, the diverged one included.
    let lines = trainer::metrics::read(&run.join("metrics.jsonl")).unwrap();
    assert!(
        lines
            .iter()
            .any(|l| !l.g_loss.is_finite() || !l.d_loss.is_finite())
    );

    let out = resume(&run, &["--lr-g", "2e-4", "--lr-d", "2e-4", "--steps", "30"]);
    assert!(out.status.success(), "resume as advised: {}", stderr(&out));
    let saved: trainer::config::TrainConfig =
        trainer::config::TrainConfig::from_json_file(&run.join("config.json")).unwrap();
    assert_eq!(saved.generator_adam.learning_rate, 2e-4);
    assert_eq!(saved.discriminator_adam.learning_rate, 2e-4);
    let last = saved
        .segments
        .last()
        .expect("the change is recorded as a segment");
    assert_eq!(last.generator_learning_rate, 2e-4);
    assert!(saved.segments.len() >= 2, "{:?}", saved.segments);
    assert_eq!(saved.segments[0].generator_learning_rate, 1e30);
    let lines = trainer::metrics::read(&run.join("metrics.jsonl")).unwrap();
    assert_eq!(lines.last().unwrap().step, 30);
    assert!(
        lines
            .iter()
            .filter(|l| l.step > last.from_step)
            .all(|l| l.g_loss.is_finite())
    );
    // And the resumed run can itself be resumed (its log has no value the reader rejects).
    let out = resume(&run, &["--steps", "35"]);
    assert!(out.status.success(), "second resume: {}", stderr(&out));
}

#[test]
fn resume_refuses_flags_it_cannot_honour_and_keeps_the_run_target() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), "");
    let run = dir.path().join("run");
    let out = train(&config, &run, &["--steps", "20"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = resume(&run, &["--batch-size", "64"]);
    assert_clean_failure(&out, 1, "--batch-size cannot change when resuming");
    // Without --steps a resume keeps the run's own target: nothing left to train.
    let out = resume(&run, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = trainer::metrics::read(&run.join("metrics.jsonl")).unwrap();
    assert_eq!(lines.last().unwrap().step, 20, "trained past its target");
}

#[test]
fn resume_rewrites_nothing_when_no_checkpoint_loads() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), "");
    let run = dir.path().join("run");
    let out = train(&config, &run, &["--steps", "10"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let before = std::fs::read(run.join("config.json")).unwrap();
    for entry in std::fs::read_dir(run.join("checkpoints")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            std::fs::write(path.join("generator.bpk"), b"not a record").unwrap();
        }
    }
    let out = resume(&run, &["--steps", "20", "--lr-g", "1e-4"]);
    assert_clean_failure(&out, 1, "generator.bpk");
    assert_eq!(std::fs::read(run.join("config.json")).unwrap(), before);
}

/// A grey PNG of one flat colour.
fn write_png(path: &Path, value: u8) {
    image::GrayImage::from_pixel(28, 28, image::Luma([value]))
        .save(path)
        .unwrap();
}

#[test]
fn image_folders_skip_hidden_folders_and_name_skipped_files() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("digits");
    for (class, value) in [("digit-3", 40u8), ("digit-7", 200u8)] {
        std::fs::create_dir_all(data.join(class)).unwrap();
        for i in 0..4 {
            write_png(&data.join(class).join(format!("{i}.png")), value + i);
        }
    }
    // What Jupyter, macOS and people leave in data folders.
    std::fs::create_dir_all(data.join(".ipynb_checkpoints")).unwrap();
    std::fs::create_dir_all(data.join("__MACOSX/digit-3")).unwrap();
    std::fs::write(data.join("digit-3/.DS_Store"), b"\0\0\0\x01Bud1").unwrap();
    std::fs::write(data.join("digit-3/notes.txt"), b"drawn by hand").unwrap();

    let ds = trainer::data::load_folder(
        &data,
        trainer::data::ImageShape {
            channels: 1,
            height: 28,
            width: 28,
        },
    )
    .unwrap();
    assert_eq!(ds.class_names(), ["digit-3", "digit-7"]);
    assert_eq!(ds.len(), 8);

    let config = tiny_config(dir.path(), "");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace(
            &format!("{:?}", mnist_dir().display().to_string()),
            &format!("{:?}", data.display().to_string()),
        )
        .replace("batch_size = 32", "batch_size = 4");
    std::fs::write(&config, text).unwrap();
    let out = trainer()
        .args(["train", "--steps", "2", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(dir.path().join("run"))
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("skipped 1 entry that is not a PNG or JPEG image: digit-3/notes.txt"),
        "one line naming the skipped file: {err}"
    );
}
