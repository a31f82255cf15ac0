//! An exponential moving average of G's weights: a smoother generator than the one
//! the last step left, used for samples and export when the run enables it.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::Tensor;

use crate::model::Generator;

/// Collects every float tensor of a module, flattened and off the autodiff graph,
/// in visiting order (the same order a mapper over a module of the same structure sees).
struct Collector(Vec<Tensor<1>>);

impl ModuleVisitor for Collector {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = param.val().without_autodiff();
        let len = value.dims().iter().product::<usize>();
        self.0.push(value.reshape([len]));
    }
}

/// Moves each visited tensor towards its counterpart: `ema ← decay·ema + (1 − decay)·g`.
struct Blend {
    sources: std::vec::IntoIter<Tensor<1>>,
    decay: f64,
}

impl ModuleMapper for Blend {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(source) = self.sources.next() else {
            return param;
        };
        let decay = self.decay;
        param.map(|ema| {
            let shape = ema.dims();
            ema.mul_scalar(decay)
                .add(source.reshape(shape).mul_scalar(1.0 - decay))
        })
    }
}

/// The decay used after `updates` updates: `min(decay, (1 + updates) / (10 + updates))`.
///
/// With a fixed 0.999 the average still holds 60 % of the random initial weights after
/// 500 steps, so early samples and exports show noise; this warm-up (TensorFlow's
/// `ExponentialMovingAverage` with `num_updates`) lets the average follow G closely at
/// first and settle to `decay` later.
pub fn warmed_up_decay(decay: f64, updates: usize) -> f64 {
    let updates = updates as f64;
    decay.min((1.0 + updates) / (10.0 + updates))
}

/// Blends `generator`'s current weights (and batch-norm statistics) into `ema`.
pub fn update(ema: Generator, generator: &Generator, decay: f64) -> Generator {
    let mut collector = Collector(Vec::new());
    // `valid` folds batch norm's pending running-statistics update into its value first;
    // a plain visit would read the statistics one step stale.
    generator.valid().visit(&mut collector);
    ema.map(&mut Blend {
        sources: collector.0.into_iter(),
        decay,
    })
}

#[cfg(test)]
mod tests {
    use super::warmed_up_decay;

    #[test]
    fn decay_warms_up_then_settles() {
        assert!((warmed_up_decay(0.999, 1) - 2.0 / 11.0).abs() < 1e-12);
        assert!(warmed_up_decay(0.999, 100) < warmed_up_decay(0.999, 1000));
        assert_eq!(warmed_up_decay(0.999, 1_000_000), 0.999);
        assert_eq!(warmed_up_decay(0.5, 100), 0.5);
    }
}
