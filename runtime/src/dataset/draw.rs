//! Drawing the samples of a data set: which noise and label each candidate gets, and which
//! candidates are kept.
//!
//! Candidate `j` of a request with seed `s` has the `z` of seed `s + j` (truncated if asked,
//! see [`crate::noise::latent`]) and the label `j % classes` (balanced) or the requested class.
//! Without a filter every candidate is kept, so image `j` is candidate `j` — the data sets of
//! earlier versions, and the first `k` of `n` images equal a request for `k`. With a filter,
//! the classifier judges each candidate as it will be written (its pixels rounded to 8 bits);
//! one is kept when its requested class gets at least `min_confidence` and its class still
//! needs images, in candidate order. A class that is full
//! draws no more candidates; a class whose budget (`max_draws_per_image` candidates per
//! requested image) runs out stops the request with an error that gives its acceptance rate.
//! The kept set depends only on the model, the seed and the settings: the same command keeps
//! the same images.

use std::path::{Path, PathBuf};

use crate::engine::classifier::Classifier;
use crate::engine::tract::{Generator, Labels};
use crate::error::{Error, Result};
use crate::noise;

use super::manifest::FilterRecord;

/// The default of `--max-draws`: candidates per requested image before a class is given up
/// (an acceptance rate under 2 %).
pub const DEFAULT_MAX_DRAWS: usize = 50;

/// `--filter`: keep only samples a classifier assigns to their requested class.
#[derive(Clone, Debug, PartialEq)]
pub struct FilterRequest {
    /// The classifier ONNX file (`trainer classifier` writes one beside its weights).
    pub classifier: PathBuf,
    /// Keep a sample when its requested class has at least this probability (0 to 1).
    pub min_confidence: f32,
    /// The most candidates drawn per requested image of a class.
    pub max_draws_per_image: usize,
}

/// How the samples of a data set are drawn: noise truncation and the classifier filter.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sampling {
    /// `--truncation ψ`: every `|z_i| <= ψ` (see [`crate::noise::latent`]).
    pub truncation: Option<f32>,
    /// `--filter`.
    pub filter: Option<FilterRequest>,
}

/// One kept sample, handed to the writer in output order.
pub(crate) struct Kept<'a> {
    /// Position in the data set.
    pub index: usize,
    /// Its class (conditional models).
    pub label: Option<usize>,
    /// Its noise.
    pub z: &'a [f32],
    /// Its pixels, `[C, H, W]` in `[-1, 1]`.
    pub pixels: &'a [f32],
}

/// A loaded filter, checked against the generator.
pub(crate) struct Filter {
    classifier: Classifier,
    request: FilterRequest,
}

impl Filter {
    /// Loads the classifier and checks it fits `generator` (same classes and image shape).
    pub(crate) fn load(request: &FilterRequest, generator: &Generator) -> Result<Filter> {
        let path = &request.classifier;
        let bad = |problem: String| Error::Unsupported {
            path: path.clone(),
            reason: problem,
        };
        if !(0.0..=1.0).contains(&request.min_confidence) {
            return Err(bad(format!(
                "--min-confidence {} is not a probability from 0 to 1",
                request.min_confidence
            )));
        }
        let classifier = Classifier::load(path)?;
        let info = generator.info();
        if !info.is_conditional() {
            return Err(bad(format!(
                "the filter keeps samples of their requested class, and {} is unconditional",
                generator.path().display()
            )));
        }
        if classifier.classes().len() != info.classes.len() {
            return Err(bad(format!(
                "the classifier knows {} classes, the generator {} makes {}",
                classifier.classes().len(),
                generator.path().display(),
                info.classes.len()
            )));
        }
        if classifier.image() != info.image {
            return Err(bad(format!(
                "the classifier reads {} images, the generator {} makes {}",
                classifier.image(),
                generator.path().display(),
                info.image
            )));
        }
        Ok(Filter {
            classifier,
            request: request.clone(),
        })
    }
}

/// Per-class bookkeeping of a filtered draw.
struct Quota {
    target: Vec<usize>,
    accepted: Vec<usize>,
    drawn: Vec<usize>,
}

impl Quota {
    fn new(labels: &Labels, classes: usize, count: usize) -> Quota {
        let target = (0..classes)
            .map(|c| match labels {
                Labels::Balanced { classes } => count / classes + usize::from(c < count % classes),
                Labels::Fixed(k) if *k == c => count,
                _ => 0,
            })
            .collect();
        Quota {
            target,
            accepted: vec![0; classes],
            drawn: vec![0; classes],
        }
    }

    fn full(&self, class: usize) -> bool {
        self.accepted[class] >= self.target[class]
    }

    fn record(&self, filter: &Filter) -> FilterRecord {
        FilterRecord {
            classifier: filter.request.classifier.display().to_string(),
            min_confidence: filter.request.min_confidence,
            max_draws_per_image: filter.request.max_draws_per_image,
            drawn: self.drawn.clone(),
            accepted: self.accepted.clone(),
            acceptance_rate: self
                .accepted
                .iter()
                .zip(&self.drawn)
                .map(|(a, d)| if *d == 0 { 0.0 } else { *a as f64 / *d as f64 })
                .collect(),
        }
    }
}

/// What to draw: `count` samples labelled as `labels` says, from `seed`, with `sampling`'s
/// truncation and the loaded `filter`.
pub(crate) struct Plan<'a> {
    pub labels: &'a Labels,
    pub count: usize,
    pub seed: u64,
    pub sampling: &'a Sampling,
    pub filter: Option<&'a Filter>,
}

/// Draws the samples of `plan` from `generator` and hands each kept one to `keep`, in output
/// order; `progress` gets the number kept after each batch. Returns the filter's record when
/// there is one.
pub(crate) fn draw(
    generator: &Generator,
    plan: &Plan<'_>,
    mut keep: impl FnMut(Kept<'_>) -> Result<()>,
    mut progress: impl FnMut(usize),
) -> Result<Option<FilterRecord>> {
    let Plan {
        labels,
        count,
        seed,
        sampling,
        filter,
    } = *plan;
    let z_dim = generator.info().z_dim;
    let classes = generator.info().classes.len();
    let batch = generator.batch_size().max(1);
    let image = generator.info().image.numel();
    let mut quota = Quota::new(labels, classes, count);
    let mut kept = 0;
    let mut cursor = 0usize;
    let mut candidates = Vec::with_capacity(batch);
    let mut z = Vec::with_capacity(batch * z_dim);
    while kept < count {
        // The next candidates: all of them without a filter, else those whose class needs more.
        candidates.clear();
        let wanted = if filter.is_some() {
            batch
        } else {
            batch.min(count - kept)
        };
        while candidates.len() < wanted {
            let label = labels.label(cursor);
            if filter.is_none() || label.is_some_and(|c| !quota.full(c)) {
                candidates.push((cursor, label));
            }
            cursor = cursor.checked_add(1).ok_or(Error::Input {
                reason: "the candidate index overflowed".into(),
            })?;
        }
        z.resize(candidates.len() * z_dim, 0.0);
        for (row, (j, _)) in z.chunks_exact_mut(z_dim.max(1)).zip(&candidates) {
            noise::latent(seed.wrapping_add(*j as u64), sampling.truncation, row);
        }
        let batch_labels: Option<Vec<i64>> = candidates
            .iter()
            .map(|(_, l)| l.map(|l| l as i64))
            .collect();
        let pixels = generator.run(&z, batch_labels.as_deref())?;
        let probabilities = match filter {
            // The classifier sees the pixels as they are written (8-bit), so that it gives the
            // same probabilities when run on the data set's files.
            Some(f) => Some(
                f.classifier
                    .probabilities(&as_written(&pixels), candidates.len())?,
            ),
            None => None,
        };
        for (i, (_, label)) in candidates.iter().enumerate() {
            if let (Some(f), Some(p), Some(c)) = (filter, &probabilities, *label) {
                if quota.full(c) {
                    continue;
                }
                quota.drawn[c] += 1;
                if p[i * classes + c] < f.request.min_confidence {
                    check_budget(&quota, f, c, generator.path())?;
                    continue;
                }
                quota.accepted[c] += 1;
            }
            keep(Kept {
                index: kept,
                label: *label,
                z: &z[i * z_dim..(i + 1) * z_dim],
                pixels: &pixels[i * image..(i + 1) * image],
            })?;
            kept += 1;
        }
        progress(kept);
    }
    Ok(filter.map(|f| quota.record(f)))
}

/// Pixels rounded to the 8-bit levels the writers store (`to_u8`), back in `[-1, 1]`.
fn as_written(pixels: &[f32]) -> Vec<f32> {
    pixels
        .iter()
        .map(|v| f32::from(crate::engine::tract::to_u8(*v)) / 127.5 - 1.0)
        .collect()
}

/// Samples drawn in memory (see [`draw_samples`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Drawn {
    /// `[count, C, H, W]` pixels in `[-1, 1]`.
    pub pixels: Vec<f32>,
    /// One class per image (conditional models).
    pub labels: Option<Vec<usize>>,
    /// What the filter did, when there is one.
    pub filter: Option<FilterRecord>,
}

/// Draws `count` samples of `class` (or of every class in turn) from `generator` in memory,
/// exactly as `generate` would write them with the same seed and `sampling`: for tools that
/// use synthetic data directly, such as the trainer's augmentation experiment.
pub fn draw_samples(
    generator: &Generator,
    count: usize,
    class: Option<usize>,
    seed: u64,
    sampling: &Sampling,
) -> Result<Drawn> {
    if count == 0 {
        return Err(Error::ZeroCount);
    }
    let labels = generator.labels_for(class)?;
    let filter = match &sampling.filter {
        Some(f) => Some(Filter::load(f, generator)?),
        None => None,
    };
    let image = generator.info().image.numel();
    let mut pixels = Vec::with_capacity(count.saturating_mul(image));
    let mut kept_labels = generator.info().is_conditional().then(Vec::new);
    let plan = Plan {
        labels: &labels,
        count,
        seed,
        sampling,
        filter: filter.as_ref(),
    };
    let record = draw(
        generator,
        &plan,
        |kept| {
            pixels.extend_from_slice(kept.pixels);
            if let (Some(all), Some(l)) = (kept_labels.as_mut(), kept.label) {
                all.push(l);
            }
            Ok(())
        },
        |_| {},
    )?;
    Ok(Drawn {
        pixels,
        labels: kept_labels,
        filter: record,
    })
}

/// Stops the request when class `c` has used its candidate budget without filling.
fn check_budget(quota: &Quota, filter: &Filter, c: usize, model: &Path) -> Result<()> {
    let budget = quota.target[c].saturating_mul(filter.request.max_draws_per_image);
    if quota.drawn[c] < budget {
        return Ok(());
    }
    let name = filter
        .classifier
        .classes()
        .get(c)
        .map_or(String::new(), |n| format!(" (`{n}`)"));
    Err(Error::Unsupported {
        path: model.to_path_buf(),
        reason: format!(
            "the filter kept {} of the {} images wanted for class {c}{name} after {} candidates (acceptance {:.2} %, the budget is {} candidates per image): lower --min-confidence (now {}), or raise --max-draws; nothing was written",
            quota.accepted[c],
            quota.target[c],
            quota.drawn[c],
            100.0 * quota.accepted[c] as f64 / quota.drawn[c].max(1) as f64,
            filter.request.max_draws_per_image,
            filter.request.min_confidence
        ),
    })
}
