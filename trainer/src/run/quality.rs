//! Quality measured while training: the evaluator a run sets up from its classifier, one
//! measurement of the generator, and when a measurement ends the run early.

use tracing::info;

use super::LOG_TARGET;
use super::TrainError;
use crate::config::TrainConfig;
use crate::data::{self, Dataset, Split};
use crate::metrics::QualityLine;
use crate::quality::{EvalClassifier, EvalOptions, Evaluator};
use crate::training::Gan;

/// The evaluator of `config.eval`, when the run has a classifier: real reference = the
/// test split of an IDX data set, or the training images of an image folder (which has none).
pub(super) fn quality_evaluator(
    config: &TrainConfig,
    dataset: &Dataset,
) -> Result<Option<Evaluator>, TrainError> {
    let Some(path) = &config.eval.classifier else {
        return Ok(None);
    };
    let classifier = EvalClassifier::load(path)?;
    let reference = if data::is_idx_dir(&config.dataset) {
        data::open(&config.dataset, Split::Test, config.image)?
    } else {
        info!(
            target: LOG_TARGET,
            "image folder without a test split: quality is measured against the training images"
        );
        dataset.clone()
    };
    Ok(Some(Evaluator::new(
        classifier,
        &reference,
        EvalOptions::default(),
    )?))
}

/// Quality of the run's generator now (the same noise every time, so reports differ only
/// by the weights).
pub(super) fn evaluate_quality(
    evaluator: &Evaluator,
    gan: &Gan,
    samples: usize,
    seed: u64,
) -> Result<QualityLine, TrainError> {
    let report = evaluator.evaluate_gan(gan, samples, seed.wrapping_add(0xE7A1))?;
    Ok(QualityLine {
        samples: report.samples,
        fid: report.fid,
        precision: report.precision,
        recall: report.recall,
        class_entropy: report.coverage.entropy_bits,
        largest_class_share: report.coverage.largest_share,
        conditional_accuracy: report.conditional.as_ref().map(|c| c.accuracy),
    })
}

/// Why the run should stop now, after an evaluation that scored `fid` with
/// `evaluations_without_best` evaluations since the best one.
pub(super) fn early_stop(
    config: &TrainConfig,
    fid: f64,
    evaluations_without_best: usize,
) -> Option<String> {
    if let Some(target) = config.eval.until_fid
        && fid <= target
    {
        return Some(format!(
            "stopped early: FID {fid:.2} reached --until-fid {target}"
        ));
    }
    match config.eval.patience {
        Some(patience) if evaluations_without_best >= patience => Some(format!(
            "stopped early: no better FID in the last {patience} evaluations (--patience)"
        )),
        _ => None,
    }
}
