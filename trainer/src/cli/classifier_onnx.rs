//! `trainer classifier-onnx`: converts a trained evaluation classifier (`.bpk` + `.json` card)
//! to the ONNX file the runtime runs with tract (`runtime generate --filter`). `trainer
//! classifier` writes that file itself; this command is for classifiers trained before it did
//! (a thin wrapper over `trainer::quality::classifier_onnx`).

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use trainer::quality::EvalClassifier;
use trainer::quality::classifier_onnx::{onnx_path, write_onnx};

#[derive(Args, Debug)]
pub struct ClassifierOnnxArgs {
    /// The classifier's weights (burnpack), with its card beside them (same name, `.json`).
    #[arg(long, value_name = "FILE.bpk")]
    classifier: PathBuf,
    /// The ONNX file to write [default: the weights' name with `.onnx`].
    #[arg(long, value_name = "FILE.onnx")]
    out: Option<PathBuf>,
}

/// Runs `trainer classifier-onnx`.
pub fn run(args: ClassifierOnnxArgs) -> anyhow::Result<()> {
    let classifier =
        EvalClassifier::load(&args.classifier).context("loading the evaluation classifier")?;
    let out = args.out.unwrap_or_else(|| onnx_path(&args.classifier));
    let export = write_onnx(&classifier, &out).context("writing the classifier as ONNX")?;
    let card = &classifier.card;
    println!(
        "wrote {} ({} classes, {}x{}x{} images, test accuracy {:.2}% on {}); tract's probabilities match burn's within {:.1e} on {} images\nuse it: runtime generate --model G.onnx --filter {}",
        export.path.display(),
        card.class_names.len(),
        card.image.channels,
        card.image.height,
        card.image.width,
        100.0 * card.test_accuracy,
        card.dataset,
        export.max_probability_diff,
        export.checked_images,
        export.path.display()
    );
    Ok(())
}
