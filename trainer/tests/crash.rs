//! `kill -9` at the worst moments — mid-step, with a checkpoint half written, with the
//! checkpoint in place but `latest` not yet moved, and at random times — then resume:
//! the finished run must equal an uninterrupted one bit for bit, and no temporary
//! folder may outlive it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor};
use trainer::checkpoint;
use trainer::config::TrainConfig;
use trainer::training::Gan;

fn mnist_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist-10k")
}

/// A small conditional dcgan (batch norm, EMA: every kind of checkpoint file).
fn config(dir: &Path) -> PathBuf {
    let path = dir.join("crash.toml");
    let text = format!(
        r#"dataset = {:?}
max_examples = 512
conditional = true
z_dim = 8
batch_size = 16
steps = 40
seed = 11
ema_decay = 0.99

[model]
kind = "dcgan"

[model.dcgan]
generator_channels = [16, 8]
discriminator_channels = [8, 16]

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

fn trainer(pause_at: Option<&str>) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_trainer"));
    cmd.env("RUST_LOG", "warn");
    match pause_at {
        Some(point) => cmd.env(trainer::PAUSE_AT_ENV, point),
        None => cmd.env_remove(trainer::PAUSE_AT_ENV),
    };
    cmd
}

fn start(dir: &Path, run: &Path, pause_at: Option<&str>) -> Child {
    trainer(pause_at)
        .args(["train", "--config"])
        .arg(config(dir))
        .arg("--out")
        .arg(run)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn resume(run: &Path, pause_at: Option<&str>) -> Child {
    trainer(pause_at)
        .args(["train", "--resume"])
        .arg(run)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until the child says it is paused, then kills it with SIGKILL.
fn kill_when_paused(mut child: Child) {
    let stderr = child.stderr.take().unwrap();
    let mut said = String::new();
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap();
        said.push_str(&line);
        said.push('\n');
        if line.contains("gantry: paused at") {
            child.kill().unwrap(); // SIGKILL on Unix
            child.wait().unwrap();
            return;
        }
    }
    panic!(
        "the run ended without reaching its pause point ({:?}):\n{said}",
        child.wait()
    );
}

fn finish(child: Child) {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every weight of G, D and the EMA copy in the final checkpoint, with the checkpoint's
/// non-tensor state (noise stream, batch cursor, step).
///
/// Compared as values rather than file bytes: burn's records carry parameter ids that
/// are drawn afresh in every process.
fn final_checkpoint(run: &Path) -> (Vec<Vec<u32>>, String) {
    let dir = run.join("checkpoints").join("step-0000040");
    let config = TrainConfig::from_json_file(&run.join("config.json")).unwrap();
    let mut gan = Gan::new(&config, 10, config.image, &Device::flex());
    checkpoint::load(&mut gan, &dir).unwrap_or_else(|e| panic!("{e}"));
    let mut weights = bits(&gan.generator);
    weights.extend(bits(&gan.discriminator));
    weights.extend(bits(gan.ema.as_ref().expect("the run keeps an EMA")));
    // Everything but the file checksums, which cover the parameter ids too.
    let mut state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("state.json")).unwrap()).unwrap();
    state.as_object_mut().unwrap().remove("files");
    (weights, state.to_string())
}

/// The bit patterns of every float parameter and buffer of a module.
fn bits<M: Module>(module: &M) -> Vec<Vec<u32>> {
    struct Collect(Vec<Vec<u32>>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let values = param.val().into_data().try_to_vec::<f32>().unwrap();
            self.0.push(values.iter().map(|v| v.to_bits()).collect());
        }
    }
    let mut c = Collect(Vec::new());
    module.visit(&mut c);
    c.0
}

fn assert_same_run(reference: &Path, run: &Path) {
    let (a, b) = (final_checkpoint(reference), final_checkpoint(run));
    assert_eq!(a.0.len(), b.0.len());
    for (i, (x, y)) in a.0.iter().zip(&b.0).enumerate() {
        assert!(x == y, "tensor {i} differs from the uninterrupted run's");
    }
    assert_eq!(a.1, b.1, "state.json (noise, cursor, step) differs");
    let leftovers: Vec<String> = std::fs::read_dir(run.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(
        leftovers.is_empty(),
        "temporary folders left: {leftovers:?}"
    );
    let steps: Vec<usize> = trainer::metrics::read(&run.join("metrics.jsonl"))
        .unwrap()
        .iter()
        .map(|l| l.step)
        .collect();
    assert_eq!(
        steps,
        (1..=8).map(|i| i * 5).collect::<Vec<_>>(),
        "one log line per interval"
    );
}

#[test]
fn killed_at_the_worst_moments_the_run_resumes_to_the_same_weights() {
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("uninterrupted");
    finish(start(dir.path(), &reference, None));

    let run = dir.path().join("killed");
    // Between the D step and the G step of step 25.
    kill_when_paused(start(dir.path(), &run, Some("step@25")));
    // With the step-30 checkpoint half written (one file of six in its temporary folder).
    kill_when_paused(resume(&run, Some("checkpoint-files@30")));
    assert!(
        run.join("checkpoints/.step-0000030.tmp").is_dir(),
        "the kill left the half-written checkpoint where the test expects it"
    );
    // With the step-40 checkpoint in place but `latest` still naming step 30.
    kill_when_paused(resume(&run, Some("checkpoint-latest@40")));
    // `latest` dangling: the resume falls back to the newest complete checkpoint.
    std::fs::write(run.join("checkpoints/latest"), "step-0000099").unwrap();
    finish(resume(&run, None));
    assert_same_run(&reference, &run);
}

#[test]
fn killed_at_random_moments_the_run_resumes_to_the_same_weights() {
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("uninterrupted");
    finish(start(dir.path(), &reference, None));

    let run = dir.path().join("killed");
    let mut child = start(dir.path(), &run, None);
    let mut kills = 0;
    // Kill after a varying delay, resume, repeat, until a session gets to finish.
    for attempt in 0.. {
        std::thread::sleep(Duration::from_millis(150 + 70 * attempt));
        if child.try_wait().unwrap().is_some() {
            break;
        }
        child.kill().unwrap();
        kills += 1;
        child.wait().unwrap();
        let started = run.join("checkpoints").is_dir()
            && std::fs::read_dir(run.join("checkpoints"))
                .unwrap()
                .any(|e| {
                    e.unwrap()
                        .file_name()
                        .to_string_lossy()
                        .starts_with("step-")
                });
        child = if started {
            resume(&run, None)
        } else {
            // Killed before its first checkpoint: start again.
            let _ = std::fs::remove_dir_all(&run);
            start(dir.path(), &run, None)
        };
    }
    finish(child);
    assert!(
        kills >= 2,
        "only {kills} kills: the run finished too fast to test anything"
    );
    assert_same_run(&reference, &run);
}
