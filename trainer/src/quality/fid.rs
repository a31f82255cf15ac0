//! Fréchet distance between Gaussian fits of two feature sets (FID, Heusel et al. 2017):
//!
//! d² = ‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁ Σ₂)^½
//!
//! The matrix square root of the product is computed as (Σ₁^½ Σ₂ Σ₁^½)^½, whose trace is the
//! same and whose argument is symmetric positive semi-definite, so both roots come from a
//! symmetric eigen-decomposition with real, non-negative eigenvalues: stable where the
//! general (non-symmetric) square root of Σ₁Σ₂ needs complex arithmetic and fails on the
//! singular covariances that ReLU features give. The decomposition is `nalgebra`'s: a
//! maintained, tested implementation rather than a hand-written Jacobi loop.

use nalgebra::{DMatrix, DVector, SymmetricEigen};
use serde::{Deserialize, Serialize};

use super::QualityError;

/// Mean and covariance of a set of feature vectors.
#[derive(Clone, Debug, PartialEq)]
pub struct Gaussian {
    /// Mean `[dim]`.
    pub mean: DVector<f64>,
    /// Unbiased covariance `[dim, dim]` (divided by count − 1).
    pub cov: DMatrix<f64>,
    /// Vectors the fit was computed from.
    pub count: usize,
}

impl Gaussian {
    /// Fits `features` (`[count, dim]`, row-major); needs at least 2 vectors.
    pub fn fit(features: &[f32], dim: usize) -> Result<Self, QualityError> {
        if dim == 0 || !features.len().is_multiple_of(dim) {
            return Err(QualityError::Input(format!(
                "{} feature values are not whole vectors of dimension {dim}",
                features.len()
            )));
        }
        let count = features.len() / dim;
        if count < 2 {
            return Err(QualityError::Input(format!(
                "a Gaussian fit needs at least 2 feature vectors, got {count}"
            )));
        }
        if features.iter().any(|v| !v.is_finite()) {
            return Err(QualityError::Input(
                "the features hold NaN or infinite values (are the images finite?)".into(),
            ));
        }
        let x = DMatrix::from_row_iterator(count, dim, features.iter().map(|&v| f64::from(v)));
        let mean = x.row_mean().transpose(); // [dim]
        let mut centred = x;
        for mut row in centred.row_iter_mut() {
            row -= mean.transpose();
        }
        // `transpose() *` rather than `tr_mul`: the product then goes through a blocked gemm.
        let cov = centred.transpose() * &centred / (count as f64 - 1.0); // [dim, dim]
        Ok(Self { mean, cov, count })
    }

    /// Feature dimension.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }
}

/// Square root of a symmetric positive semi-definite matrix; eigenvalues that rounding
/// pushed below zero are taken as zero.
fn psd_sqrt(m: &DMatrix<f64>) -> DMatrix<f64> {
    let sym = (m + m.transpose()) * 0.5;
    let eigen = SymmetricEigen::new(sym);
    let roots = eigen.eigenvalues.map(|l| l.max(0.0).sqrt());
    let v = &eigen.eigenvectors;
    v * DMatrix::from_diagonal(&roots) * v.transpose()
}

/// The parts of a Fréchet distance.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Frechet {
    /// The distance d² (what is reported as FID).
    pub distance: f64,
    /// ‖μ₁ − μ₂‖²: how far the means moved.
    pub mean_term: f64,
    /// tr Σ₁ + tr Σ₂ − 2 tr (Σ₁Σ₂)^½: how the spreads differ.
    pub cov_term: f64,
}

/// Fréchet distance between two Gaussian fits of the same dimension.
pub fn frechet(a: &Gaussian, b: &Gaussian) -> Result<Frechet, QualityError> {
    if a.dim() != b.dim() {
        return Err(QualityError::Input(format!(
            "cannot compare {}-dimensional features with {}-dimensional ones",
            a.dim(),
            b.dim()
        )));
    }
    let mean_term = (&a.mean - &b.mean).norm_squared();
    let root_a = psd_sqrt(&a.cov);
    let inner = &root_a * &b.cov * &root_a;
    let sym = (&inner + inner.transpose()) * 0.5;
    let cross: f64 = SymmetricEigen::new(sym)
        .eigenvalues
        .iter()
        .map(|l| l.max(0.0).sqrt())
        .sum();
    // Rounding can leave a tiny negative for identical sets; the distance is never negative.
    let cov_term = (a.cov.trace() + b.cov.trace() - 2.0 * cross).max(0.0);
    Ok(Frechet {
        distance: mean_term + cov_term,
        mean_term,
        cov_term,
    })
}

/// FID of two feature sets (`[count, dim]` each, row-major).
pub fn fid(a: &[f32], b: &[f32], dim: usize) -> Result<f64, QualityError> {
    Ok(frechet(&Gaussian::fit(a, dim)?, &Gaussian::fit(b, dim)?)?.distance)
}
