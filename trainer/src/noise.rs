//! The noise vector z ~ N(0, 1) and the labels of fake examples, drawn from one
//! seeded generator whose state is saved in checkpoints, so a resumed run draws
//! exactly the noise an uninterrupted one would.

use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use rand_pcg::Pcg64;
use serde::{Deserialize, Serialize};

/// Seeded source of noise and fake labels (PCG-64, normals by rand_distr's ziggurat).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NoiseSource {
    rng: Pcg64,
}

impl NoiseSource {
    /// A source seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: Pcg64::seed_from_u64(seed),
        }
    }

    /// `count × z_dim` standard normal values, row-major.
    pub fn noise(&mut self, count: usize, z_dim: usize) -> Vec<f32> {
        (0..count * z_dim)
            .map(|_| StandardNormal.sample(&mut self.rng))
            .collect()
    }

    /// `count` labels drawn uniformly from `0..classes`.
    pub fn labels(&mut self, count: usize, classes: usize) -> Vec<i64> {
        (0..count)
            .map(|_| self.rng.random_range(0..classes) as i64)
            .collect()
    }
}
