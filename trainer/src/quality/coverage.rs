//! Class coverage: which classes the evaluation classifier sees in the generated samples.
//!
//! A generator that collapses onto a few modes can still draw sharp images; the histogram
//! of predicted classes shows it at once. The entropy of that histogram summarises it
//! (log₂ K bits when every class is equally common, 0 when one class takes everything),
//! and the largest share names the class the generator favours.

use serde::{Deserialize, Serialize};

/// A class is starved when its share is below this fraction of the uniform share 1/K.
pub const STARVED_FRACTION: f64 = 0.25;
/// Coverage is flagged when the entropy falls below this fraction of log₂ K.
pub const MIN_NORMALIZED_ENTROPY: f64 = 0.9;

/// Predicted-class histogram of a sample set and its summary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Coverage {
    /// Class names, in label order.
    pub classes: Vec<String>,
    /// Samples predicted as each class.
    pub counts: Vec<usize>,
    /// Samples counted.
    pub total: usize,
    /// Entropy of the histogram, bits.
    pub entropy_bits: f64,
    /// Entropy divided by log₂ K: 1 for a uniform histogram, 0 for a single class.
    pub normalized_entropy: f64,
    /// Share of the most common class.
    pub largest_share: f64,
    /// The most common class.
    pub largest_class: String,
    /// Classes whose share is below [`STARVED_FRACTION`] / K.
    pub starved: Vec<String>,
    /// Set when the histogram looks like mode collapse.
    pub warning: Option<String>,
}

impl Coverage {
    /// Coverage of `predictions` (class indices below `classes.len()`; others are ignored).
    pub fn new(predictions: &[usize], classes: &[String]) -> Self {
        let k = classes.len().max(1);
        let mut counts = vec![0usize; classes.len()];
        for &p in predictions {
            if let Some(c) = counts.get_mut(p) {
                *c += 1;
            }
        }
        let total: usize = counts.iter().sum();
        let shares: Vec<f64> = counts
            .iter()
            .map(|&c| c as f64 / total.max(1) as f64)
            .collect();
        let entropy_bits: f64 = shares
            .iter()
            .filter(|&&p| p > 0.0)
            .map(|&p| -p * p.log2())
            .sum();
        let max_entropy = (k as f64).log2();
        let normalized_entropy = if max_entropy > 0.0 {
            entropy_bits / max_entropy
        } else {
            1.0
        };
        let (largest, largest_share) =
            shares
                .iter()
                .copied()
                .enumerate()
                .fold(
                    (0, 0.0),
                    |best, (i, s)| if s > best.1 { (i, s) } else { best },
                );
        let name = |i: usize| classes.get(i).cloned().unwrap_or_default();
        let starved: Vec<String> = shares
            .iter()
            .enumerate()
            .filter(|(_, s)| **s < STARVED_FRACTION / k as f64)
            .map(|(i, _)| name(i))
            .collect();
        let warning = (total > 0
            && (!starved.is_empty() || normalized_entropy < MIN_NORMALIZED_ENTROPY))
            .then(|| {
                let mut text = format!(
                    "possible mode collapse: class entropy {entropy_bits:.2} of {max_entropy:.2} bits, \"{}\" takes {:.1}% of the samples",
                    name(largest),
                    100.0 * largest_share
                );
                if !starved.is_empty() {
                    text.push_str(&format!(
                        "; {} of {k} classes get under {:.1}%: {}",
                        starved.len(),
                        100.0 * STARVED_FRACTION / k as f64,
                        starved.join(", ")
                    ));
                }
                text
            });
        Self {
            classes: classes.to_vec(),
            counts,
            total,
            entropy_bits,
            normalized_entropy,
            largest_share,
            largest_class: name(largest),
            starved,
            warning,
        }
    }

    /// Share of class `i`.
    pub fn share(&self, i: usize) -> f64 {
        self.counts
            .get(i)
            .map_or(0.0, |&c| c as f64 / self.total.max(1) as f64)
    }

    /// True when the histogram looks like mode collapse.
    pub fn is_collapsed(&self) -> bool {
        self.warning.is_some()
    }
}
