//! The sample grids of a run: the same noise (and labels) every time, so that the grids
//! of a run differ only by the generator's weights.

use std::path::Path;

use image::RgbImage;

use super::sample_grid_seed;
use crate::checkpoint::CheckpointError;
use crate::config::TrainConfig;
use crate::render;
use crate::training::{Gan, generate};

/// The fixed noise (and labels) of the sample grids: a row per class for conditional
/// models, an 8×8 grid otherwise.
pub(super) struct SampleSheet {
    noise: Vec<f32>,
    labels: Option<Vec<i64>>,
    rows: usize,
    cols: usize,
}

impl SampleSheet {
    /// The grid of a run with `config` and `classes` classes (0: unconditional).
    pub(super) fn new(config: &TrainConfig, classes: usize) -> Self {
        let (rows, cols) = if classes > 0 { (classes, 10) } else { (8, 8) };
        // Gantry's one noise stream (`runtime::noise`): sample i of the grid has the z that
        // `runtime generate --seed SEED` gives its sample i, on any machine.
        let noise = runtime::noise::noise(rows * cols, config.z_dim, sample_grid_seed(config.seed));
        let labels = (classes > 0).then(|| (0..rows * cols).map(|i| (i / cols) as i64).collect());
        Self {
            noise,
            labels,
            rows,
            cols,
        }
    }

    /// Draws the grid with `gan`'s generator (EMA weights when it has them) into `path`.
    pub(super) fn save(&self, gan: &Gan, path: &Path) -> Result<RgbImage, CheckpointError> {
        let device = gan.device().clone().without_autodiff();
        let images = generate(
            &gan.inference_generator(),
            self.noise.clone(),
            gan.config().z_dim,
            self.labels.clone(),
            &device,
        );
        let picture = render::grid(&images, gan.config().image, self.rows, self.cols, 2);
        render::save_png(&picture, path)?;
        Ok(picture)
    }
}
