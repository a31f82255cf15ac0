//! The adversarial losses, written on D's logits (D(x) = sigmoid(logit)).
//!
//! Working on logits keeps the cross-entropy stable: −log sigmoid(l) is computed as
//! softplus(−l) through `log_sigmoid`, never as the log of a rounded probability.

use burn::tensor::Tensor;
use burn::tensor::activation::{log_sigmoid, relu};

use crate::config::LossKind;

impl LossKind {
    /// D's loss: classify real as real (logit > 0) and fake as fake (logit < 0).
    ///
    /// Non-saturating: ½ (BCE(1, D(x)) + BCE(0, D(G(z)))), as the book's loop.
    pub fn discriminator(self, real_logits: Tensor<1>, fake_logits: Tensor<1>) -> Tensor<1> {
        match self {
            LossKind::NonSaturating => {
                let real = log_sigmoid(real_logits).neg().mean(); // −log D(x)
                let fake = log_sigmoid(fake_logits.neg()).neg().mean(); // −log(1 − D(G(z)))
                (real + fake).mul_scalar(0.5)
            }
            LossKind::Hinge => {
                let real = relu(real_logits.neg().add_scalar(1.0)).mean();
                let fake = relu(fake_logits.add_scalar(1.0)).mean();
                real + fake
            }
        }
    }

    /// G's loss on D's logits for fresh fakes: it falls as D is fooled.
    ///
    /// Non-saturating: −log D(G(z)) rather than log(1 − D(G(z))), which gives G
    /// strong gradients exactly when D rejects its samples.
    pub fn generator(self, fake_logits: Tensor<1>) -> Tensor<1> {
        match self {
            LossKind::NonSaturating => log_sigmoid(fake_logits).neg().mean(),
            LossKind::Hinge => fake_logits.mean().neg(),
        }
    }
}
