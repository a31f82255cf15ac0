//! Precision and recall of a generated distribution (Kynkäänniemi et al. 2019, "Improved
//! Precision and Recall Metric for Assessing Generative Models").
//!
//! Each set of feature vectors approximates its manifold by the union of balls centred on
//! its points, each ball's radius being the distance to the point's k-th nearest neighbour
//! in the same set. Precision is the share of generated points inside the real manifold
//! (are the samples realistic?); recall is the share of real points inside the generated
//! manifold (is the variety of the real data covered?). FID folds both into one number;
//! these two tell a blurry-but-varied generator from a sharp-but-collapsed one.
//!
//! Distances come from blocked matrix products (‖a‖² + ‖b‖² − 2a·b) so 10,000 × 10,000
//! points take seconds; all of them are computed, none approximated.

use nalgebra::DMatrix;
use serde::{Deserialize, Serialize};

use super::QualityError;

/// The neighbourhood size of the paper.
pub const DEFAULT_K: usize = 3;

/// Query points per matrix product.
const BLOCK: usize = 1024;

/// Precision and recall of a generated set against a real one.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PrecisionRecall {
    /// Share of generated points inside the real manifold.
    pub precision: f64,
    /// Share of real points inside the generated manifold.
    pub recall: f64,
    /// Neighbourhood size of the manifolds.
    pub k: usize,
    /// Real points used.
    pub real_count: usize,
    /// Generated points used.
    pub fake_count: usize,
}

/// Points of one set as a `[dim, count]` column-major matrix (the row-major `[count, dim]`
/// buffer read as is), its transpose, and their squared norms.
struct Points {
    m: DMatrix<f32>,
    /// `[count, dim]`: the left operand of the distance products. nalgebra's `tr_mul` is a
    /// loop of dot products, while `*` goes through `matrixmultiply`'s blocked sgemm.
    t: DMatrix<f32>,
    norms: Vec<f32>,
}

impl Points {
    fn new(values: &[f32], dim: usize, what: &str) -> Result<Self, QualityError> {
        if dim == 0 || !values.len().is_multiple_of(dim) {
            return Err(QualityError::Input(format!(
                "{what}: {} values are not whole vectors of dimension {dim}",
                values.len()
            )));
        }
        if values.iter().any(|v| !v.is_finite()) {
            return Err(QualityError::Input(format!(
                "{what}: the features hold NaN or infinite values"
            )));
        }
        let m = DMatrix::from_column_slice(dim, values.len() / dim, values);
        let norms = m.column_iter().map(|c| c.norm_squared()).collect();
        let t = m.transpose();
        Ok(Self { m, t, norms })
    }

    fn len(&self) -> usize {
        self.m.ncols()
    }

    /// Calls `visit(query, distances)` for every point of `queries`, with the squared
    /// distances from it to every point of `self`, in order.
    fn for_each_distance_row(&self, queries: &Points, mut visit: impl FnMut(usize, &[f32])) {
        let mut row = vec![0.0f32; self.len()];
        let mut start = 0;
        while start < queries.len() {
            let end = (start + BLOCK).min(queries.len());
            let block = queries.m.columns(start, end - start);
            let dots = &self.t * block; // [self.len, block], one query per column
            for (offset, column) in dots.column_iter().enumerate() {
                let q = start + offset;
                let qn = queries.norms[q];
                for ((out, dot), rn) in row.iter_mut().zip(column.iter()).zip(&self.norms) {
                    *out = (qn + rn - 2.0 * dot).max(0.0);
                }
                visit(q, &row);
            }
            start = end;
        }
    }
}

/// Squared distance from each point to its k-th nearest neighbour in the same set
/// (the point itself excluded).
pub fn knn_radii(values: &[f32], dim: usize, k: usize) -> Result<Vec<f32>, QualityError> {
    let points = Points::new(values, dim, "k-NN radii")?;
    radii(&points, k)
}

fn radii(points: &Points, k: usize) -> Result<Vec<f32>, QualityError> {
    if k == 0 || points.len() <= k {
        return Err(QualityError::Input(format!(
            "k-nearest-neighbour radii need k ≥ 1 and more than k points, got k = {k} and {} points",
            points.len()
        )));
    }
    let mut radii = vec![0.0f32; points.len()];
    let mut nearest = Vec::with_capacity(k + 1);
    points.for_each_distance_row(points, |q, row| {
        nearest.clear();
        for (j, &d) in row.iter().enumerate() {
            if j == q || (nearest.len() == k && d >= nearest[k - 1]) {
                continue;
            }
            let at = nearest.partition_point(|&x| x <= d);
            nearest.insert(at, d);
            nearest.truncate(k);
        }
        radii[q] = nearest[k - 1];
    });
    Ok(radii)
}

/// Precision and recall of `fake` against `real` (`[count, dim]` each, row-major) with
/// k-nearest-neighbour manifolds.
///
/// Both sets should hold the same number of points: a ball's radius shrinks as its set
/// grows, so unequal sizes favour one side.
pub fn precision_recall(
    real: &[f32],
    fake: &[f32],
    dim: usize,
    k: usize,
) -> Result<PrecisionRecall, QualityError> {
    let real = Points::new(real, dim, "real features")?;
    let fake = Points::new(fake, dim, "generated features")?;
    let real_radii = radii(&real, k)?;
    let fake_radii = radii(&fake, k)?;
    let mut fake_inside = 0usize;
    let mut real_covered = vec![false; real.len()];
    real.for_each_distance_row(&fake, |f, row| {
        let mut inside = false;
        for (j, &d) in row.iter().enumerate() {
            inside |= d <= real_radii[j];
            real_covered[j] |= d <= fake_radii[f];
        }
        fake_inside += usize::from(inside);
    });
    let recalled = real_covered.iter().filter(|&&c| c).count();
    Ok(PrecisionRecall {
        precision: fake_inside as f64 / fake.len() as f64,
        recall: recalled as f64 / real.len() as f64,
        k,
        real_count: real.len(),
        fake_count: fake.len(),
    })
}
