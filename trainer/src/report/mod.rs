//! What a run shows people besides `metrics.jsonl`: a report figure they can read at a
//! glance (`report.png`) and, with `--tensorboard`, TensorBoard event files.

pub mod figure;
pub mod tensorboard;

use crate::metrics::MetricsLine;

/// The TensorBoard scalars of one metrics line: losses, D's outputs and accuracies, the
/// step time, and the quality figures when the line has them.
pub fn scalars(line: &MetricsLine) -> Vec<(&'static str, f32)> {
    let mut values = vec![
        ("loss/discriminator", line.d_loss),
        ("loss/generator", line.g_loss),
        ("D/real", line.d_real),
        ("D/fake", line.d_fake),
        ("accuracy/real", line.acc_real),
        ("accuracy/fake", line.acc_fake),
        ("time/step_ms", line.step_ms),
    ];
    if let Some(q) = &line.quality {
        values.extend([
            ("quality/fid", q.fid as f32),
            ("quality/precision", q.precision as f32),
            ("quality/recall", q.recall as f32),
            ("quality/class_entropy", q.class_entropy as f32),
        ]);
        if let Some(acc) = q.conditional_accuracy {
            values.push(("quality/conditional_accuracy", acc as f32));
        }
    }
    values
}
