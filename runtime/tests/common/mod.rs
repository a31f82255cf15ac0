//! Small random generator specs shaped like the trainer's models, for the runtime's tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use runtime::noise::NoiseStream;
use runtime::spec::{BatchNorm, ConvTranspose2d, Dense, GeneratorSpec, ImageShape, Layer, Matrix};

/// Deterministic pseudo-random weights.
pub struct Weights(NoiseStream);

impl Weights {
    pub fn new(seed: u64) -> Weights {
        Weights(NoiseStream::new(seed ^ 0x5eed, 1))
    }

    pub fn normal(&mut self, n: usize, scale: f32) -> Vec<f32> {
        let mut v = vec![0.0; n];
        self.0.fill(&mut v);
        v.iter_mut().for_each(|x| *x *= scale);
        v
    }

    pub fn dense(&mut self, rows: usize, cols: usize, bias: bool) -> Layer {
        Layer::Dense(Dense {
            weight: Matrix {
                rows,
                cols,
                data: self.normal(rows * cols, 1.0 / (rows as f32).sqrt()),
            },
            bias: bias.then(|| self.normal(cols, 0.1)),
        })
    }

    pub fn batch_norm(&mut self, n: usize) -> Layer {
        Layer::BatchNorm(BatchNorm {
            gamma: self.normal(n, 0.1).into_iter().map(|g| 1.0 + g).collect(),
            beta: self.normal(n, 0.1),
            mean: self.normal(n, 0.2),
            var: self
                .normal(n, 0.5)
                .into_iter()
                .map(|v| 0.5 + v.abs())
                .collect(),
            epsilon: 1e-5,
        })
    }

    #[allow(clippy::too_many_arguments)]
    pub fn deconv(
        &mut self,
        c_in: usize,
        c_out: usize,
        k: usize,
        s: usize,
        p: usize,
        op: usize,
        bias: bool,
    ) -> Layer {
        let fan_in = c_in * k * k / (s * s);
        Layer::ConvTranspose2d(ConvTranspose2d {
            weight: self.normal(c_in * c_out * k * k, 1.0 / (fan_in.max(1) as f32).sqrt()),
            c_in,
            c_out,
            kernel: [k, k],
            bias: bias.then(|| self.normal(c_out, 0.1)),
            stride: [s, s],
            padding: [p, p],
            output_padding: [op, op],
        })
    }
}

fn metadata() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("gantry.dataset".to_string(), "random-test".to_string()),
        ("gantry.steps".to_string(), "0".to_string()),
    ])
}

pub fn digits() -> Vec<String> {
    (0..10).map(|d| d.to_string()).collect()
}

/// Dense -> LeakyReLU -> Dense -> Tanh -> Reshape, 1x28x28; conditional with a 10-class
/// embedding when asked.
pub fn mlp(seed: u64, conditional: bool) -> GeneratorSpec {
    let mut w = Weights::new(seed);
    let z_dim = 16;
    let emb = if conditional { 8 } else { 0 };
    GeneratorSpec {
        z_dim,
        image: ImageShape {
            channels: 1,
            height: 28,
            width: 28,
        },
        classes: if conditional { digits() } else { vec![] },
        label_embedding: conditional.then(|| Matrix {
            rows: 10,
            cols: emb,
            data: w.normal(10 * emb, 1.0),
        }),
        layers: vec![
            w.dense(z_dim + emb, 64, true),
            Layer::LeakyRelu { alpha: 0.2 },
            w.dense(64, 28 * 28, true),
            Layer::Tanh,
            Layer::Reshape {
                channels: 1,
                height: 28,
                width: 28,
            },
        ],
        metadata: metadata(),
    }
}

/// Dense+BN -> 16x7x7 -> ConvT s2 (14x14)+BN -> ConvT s1 (14x14)+BN -> ConvT s2 op1 (28x28) -> Tanh.
pub fn dcgan(seed: u64, conditional: bool) -> GeneratorSpec {
    let mut w = Weights::new(seed);
    let z_dim = 16;
    let emb = if conditional { 8 } else { 0 };
    GeneratorSpec {
        z_dim,
        image: ImageShape {
            channels: 1,
            height: 28,
            width: 28,
        },
        classes: if conditional { digits() } else { vec![] },
        label_embedding: conditional.then(|| Matrix {
            rows: 10,
            cols: emb,
            data: w.normal(10 * emb, 1.0),
        }),
        layers: vec![
            w.dense(z_dim + emb, 16 * 7 * 7, false),
            w.batch_norm(16 * 7 * 7),
            Layer::Relu,
            Layer::Reshape {
                channels: 16,
                height: 7,
                width: 7,
            },
            w.deconv(16, 8, 4, 2, 1, 0, false),
            w.batch_norm(8),
            Layer::Relu,
            w.deconv(8, 8, 3, 1, 1, 0, true),
            w.batch_norm(8),
            Layer::LeakyRelu { alpha: 0.2 },
            w.deconv(8, 1, 3, 2, 1, 1, true),
            Layer::Tanh,
        ],
        metadata: metadata(),
    }
}

/// A 3-channel 8x8 generator, to exercise RGB outputs.
pub fn rgb(seed: u64) -> GeneratorSpec {
    let mut w = Weights::new(seed);
    GeneratorSpec {
        z_dim: 8,
        image: ImageShape {
            channels: 3,
            height: 8,
            width: 8,
        },
        classes: vec!["red".into(), "green/blue".into(), "T-shirt top".into()],
        label_embedding: Some(Matrix {
            rows: 3,
            cols: 4,
            data: w.normal(12, 1.0),
        }),
        layers: vec![
            w.dense(12, 4 * 4 * 4, true),
            Layer::Relu,
            Layer::Reshape {
                channels: 4,
                height: 4,
                width: 4,
            },
            w.deconv(4, 3, 4, 2, 1, 0, true),
            Layer::Tanh,
        ],
        metadata: BTreeMap::new(),
    }
}

/// Every spec the tests cover, by name.
pub fn all_specs() -> Vec<(&'static str, GeneratorSpec)> {
    vec![
        ("mlp", mlp(1, false)),
        ("mlp-cond", mlp(2, true)),
        ("dcgan", dcgan(3, false)),
        ("dcgan-cond", dcgan(4, true)),
        ("rgb-cond", rgb(5)),
    ]
}

/// Writes `spec` as `name.onnx` in `dir`.
pub fn write(spec: &GeneratorSpec, dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(format!("{name}.onnx"));
    spec.write_onnx(&path).expect("export");
    path
}

/// Balanced labels for a batch.
pub fn labels(spec: &GeneratorSpec, batch: usize) -> Option<Vec<i64>> {
    spec.is_conditional().then(|| {
        (0..batch)
            .map(|i| (i % spec.classes.len()) as i64)
            .collect()
    })
}

/// A generator shipped in the repository's `models/` folder.
pub fn shipped(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../models")
        .join(name)
}

/// How far a quantized generator's pixels (in [-1, 1]) are from f32's.
#[derive(Clone, Copy, Debug)]
pub struct PixelError {
    /// Mean |a - b|.
    pub mean: f32,
    /// 99th percentile of |a - b|.
    pub p99: f32,
    /// Largest |a - b|.
    pub max: f32,
}

impl PixelError {
    /// Summarises |a - b| element by element.
    pub fn between(a: &[f32], b: &[f32]) -> PixelError {
        assert_eq!(a.len(), b.len(), "output lengths differ");
        let mut d: Vec<f32> = a.iter().zip(b).map(|(x, y)| (x - y).abs()).collect();
        d.sort_by(f32::total_cmp);
        PixelError {
            mean: d.iter().sum::<f32>() / d.len() as f32,
            p99: d[(d.len() * 99 / 100).min(d.len() - 1)],
            max: *d.last().unwrap(),
        }
    }

    /// True when every figure is within `bound`'s.
    pub fn within(&self, bound: &PixelError) -> bool {
        self.mean <= bound.mean && self.p99 <= bound.p99 && self.max <= bound.max
    }
}

/// Documented error of the int8 forms against f32 on the shipped MNIST `mlp` generators
/// (one gray level is 2/255 = 0.0078). Measured on 500 fresh samples, tract and ONNX Runtime:
/// mean 0.007-0.018, 99th percentile 0.10-0.31, max 0.34-1.32 (a few pixels near the steep
/// middle of tanh, where a small error before the tanh moves the pixel most).
pub const INT8_ERROR: PixelError = PixelError {
    mean: 0.025,
    p99: 0.4,
    max: 1.5,
};

/// Documented error of weight-only files (int8 weights, f32 compute). Measured as above:
/// mean 0.0025-0.0093, 99th percentile 0.04-0.16, max 0.19-0.76.
pub const WEIGHT_ONLY_ERROR: PixelError = PixelError {
    mean: 0.015,
    p99: 0.25,
    max: 1.0,
};

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "output lengths differ");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Runs the built `runtime` binary with `args` (no `RUST_LOG` from the caller).
pub fn runtime(args: &[&str]) -> std::process::Output {
    // A cache of its own, so that no run reuses another's (or the user's) measured choices.
    let cache = tempfile::tempdir().unwrap();
    runtime_with_cache(args, cache.path())
}

/// [`runtime`] with its remembered choices (`--precision auto`, `--threads auto`) in `cache`.
#[allow(dead_code)]
pub fn runtime_with_cache(args: &[&str], cache: &std::path::Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_runtime"))
        .args(args)
        .env_remove("RUST_LOG")
        .env("GANTRY_CACHE_DIR", cache)
        .output()
        .unwrap()
}

/// Standard output and standard error of a finished command, as text.
pub fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A path as a command-line argument.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Whether the tests run in CI: the `CI` variable is set to anything but empty, `0` or `false`
/// (GitHub Actions, GitLab and most others set `CI=true`).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

/// For a test whose optional tool (a Python package, the ONNX Runtime library) is missing:
/// locally it prints `SKIPPED test: why` and the caller returns; in CI ([`in_ci`]) it fails the
/// test, so a missing tool can never pass a CI run green.
pub fn skip_or_fail_in_ci(test: &str, why: &str) {
    if in_ci() {
        panic!("{test}: {why}. CI is set, so this fails instead of skipping: install the tool");
    }
    eprintln!("SKIPPED {test}: {why}");
}
