//! What a run does when a loss turns NaN or infinite: the checkpoints of the weights that
//! diverged are set aside, and the error says where the last good one is and how to go on
//! from it with lower learning rates.

use std::path::Path;

use super::TrainError;
use crate::checkpoint;
use crate::config::TrainConfig;
use crate::metrics::MetricsLine;
use crate::training::StepStats;

/// The error of a run that diverged at `step` (whose figures are `stats`), after setting
/// aside the checkpoints from the first step whose weights diverged.
pub(super) fn diverged(
    run_dir: &Path,
    config: &TrainConfig,
    step: usize,
    stats: &StepStats,
) -> TrainError {
    // D's figures of step n come from the weights saved after step n−1: when they
    // are not finite, those weights diverged; otherwise step n's own update did.
    let d_step_finite = [stats.d_loss, stats.d_real, stats.d_fake]
        .iter()
        .all(|v| v.is_finite());
    let first_bad = if d_step_finite {
        step
    } else {
        step.saturating_sub(1)
    };
    let last_good = match checkpoint::set_aside_from(run_dir, first_bad) {
        Ok(last_good) => last_good,
        Err(e) => return e.into(),
    };
    let advice = match &last_good {
        Some(dir) => format!(
            "the last good checkpoint is {}: continue from it with lower learning rates, e.g. `trainer train --resume {} --lr-g {} --lr-d {}`",
            dir.display(),
            run_dir.display(),
            short_float(config.generator_adam.learning_rate / 10.0),
            short_float(config.discriminator_adam.learning_rate / 10.0)
        ),
        None => format!(
            "no checkpoint was written before it: start a new run with lower learning rates, e.g. --lr-g {} --lr-d {}",
            short_float(config.generator_adam.learning_rate / 10.0),
            short_float(config.discriminator_adam.learning_rate / 10.0)
        ),
    };
    TrainError::Diverged {
        step,
        last_good,
        advice,
    }
}

/// `x` with three significant digits and no trailing zeros (`2e-5`, `1.5e-4`).
fn short_float(x: f64) -> String {
    let text = format!("{x:.2e}");
    match text.split_once('e') {
        Some((mantissa, exponent)) => {
            let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
            format!("{mantissa}e{exponent}")
        }
        None => text,
    }
}

/// A metrics line for a step whose statistics were not accumulated (cannot happen:
/// the step was just added).
pub(super) fn unreachable_line(step: usize) -> MetricsLine {
    MetricsLine {
        step,
        d_loss: f32::NAN,
        g_loss: f32::NAN,
        d_real: f32::NAN,
        d_fake: f32::NAN,
        acc_real: f32::NAN,
        acc_fake: f32::NAN,
        step_ms: f32::NAN,
        train_s: None,
        quality: None,
        event: None,
    }
}
