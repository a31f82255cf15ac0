//! Writes an ONNX generator with random weights and the trainer's default architectures
//! (`mlp`: z 100 -> 128 -> 784; `dcgan`: z 100 -> 256x7x7 -> 128x14x14 -> 64x14x14 -> 1x28x28),
//! through the same `GeneratorSpec` export path the trainer uses.
//!
//! Its images are noise: it exists to benchmark backends and to check a deployment (for
//! example under qemu) before any model is trained. Trained models live in `models/`.
//!
//! ```sh
//! cargo run --release -p runtime --example random_generator -- --arch dcgan --conditional --out /tmp/dcgan-cond.onnx
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use runtime::noise::NoiseStream;
use runtime::spec::{BatchNorm, ConvTranspose2d, Dense, GeneratorSpec, ImageShape, Layer, Matrix};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Arch {
    Mlp,
    Dcgan,
}

/// Write a random-weight Gantry generator (for benchmarks and deployment checks).
#[derive(Parser, Debug)]
struct Args {
    /// Architecture, at the trainer's default sizes.
    #[arg(long, value_enum, default_value_t = Arch::Dcgan)]
    arch: Arch,
    /// Add a 10-class label embedding (width 10), like `trainer --conditional`.
    #[arg(long)]
    conditional: bool,
    /// Weight seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output .onnx file.
    #[arg(long)]
    out: PathBuf,
}

struct Init(NoiseStream);

impl Init {
    fn normal(&mut self, n: usize, scale: f32) -> Vec<f32> {
        let mut v = vec![0.0; n];
        self.0.fill(&mut v);
        v.into_iter().map(|x| x * scale).collect()
    }

    fn dense(&mut self, rows: usize, cols: usize) -> Layer {
        Layer::Dense(Dense {
            weight: Matrix {
                rows,
                cols,
                data: self.normal(rows * cols, (2.0 / rows as f32).sqrt()),
            },
            bias: Some(self.normal(cols, 0.01)),
        })
    }

    fn deconv(&mut self, c_in: usize, c_out: usize, stride: usize) -> Layer {
        Layer::ConvTranspose2d(ConvTranspose2d {
            weight: self.normal(c_in * c_out * 9, (2.0 / (c_in * 9) as f32).sqrt()),
            c_in,
            c_out,
            kernel: [3, 3],
            bias: Some(self.normal(c_out, 0.01)),
            stride: [stride, stride],
            padding: [1, 1],
            output_padding: [stride - 1, stride - 1],
        })
    }

    fn batch_norm(&mut self, n: usize) -> Layer {
        Layer::BatchNorm(BatchNorm {
            gamma: self.normal(n, 0.1).into_iter().map(|g| 1.0 + g).collect(),
            beta: self.normal(n, 0.1),
            mean: self.normal(n, 0.1),
            var: self
                .normal(n, 0.2)
                .into_iter()
                .map(|v| 1.0 + v.abs())
                .collect(),
            epsilon: 1e-5,
        })
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut init = Init(NoiseStream::new(args.seed, 1));
    let (z_dim, emb, slope) = (100, if args.conditional { 10 } else { 0 }, 0.01);
    let input = z_dim + emb;
    let layers = match args.arch {
        Arch::Mlp => vec![
            init.dense(input, 128),
            Layer::LeakyRelu { alpha: slope },
            init.dense(128, 784),
            Layer::Tanh,
            Layer::Reshape {
                channels: 1,
                height: 28,
                width: 28,
            },
        ],
        Arch::Dcgan => vec![
            init.dense(input, 256 * 7 * 7),
            Layer::Reshape {
                channels: 256,
                height: 7,
                width: 7,
            },
            init.deconv(256, 128, 2),
            init.batch_norm(128),
            Layer::LeakyRelu { alpha: slope },
            init.deconv(128, 64, 1),
            init.batch_norm(64),
            Layer::LeakyRelu { alpha: slope },
            init.deconv(64, 1, 2),
            Layer::Tanh,
        ],
    };
    let name = format!(
        "{:?}{}",
        args.arch,
        if args.conditional { "-cond" } else { "" }
    )
    .to_lowercase();
    let spec = GeneratorSpec {
        z_dim,
        image: ImageShape {
            channels: 1,
            height: 28,
            width: 28,
        },
        classes: if args.conditional {
            (0..10).map(|d| d.to_string()).collect()
        } else {
            vec![]
        },
        label_embedding: args.conditional.then(|| Matrix {
            rows: 10,
            cols: emb,
            data: init.normal(10 * emb, 1.0),
        }),
        layers,
        metadata: BTreeMap::from([
            (
                "gantry.dataset".to_string(),
                "none (random weights)".to_string(),
            ),
            ("gantry.architecture".to_string(), name.clone()),
        ]),
    };
    spec.write_onnx(&args.out)
        .with_context(|| format!("writing {}", args.out.display()))?;
    println!(
        "wrote {} ({name}, random weights, {} parameters, {} MACs/sample)",
        args.out.display(),
        spec.parameter_count()?,
        spec.macs_per_sample()?
    );
    Ok(())
}
