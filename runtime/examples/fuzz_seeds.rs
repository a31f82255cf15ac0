//! Writes the seed corpus of the `onnx_generator` fuzz target (`runtime/fuzz`): tiny Gantry
//! generators of every layer kind and every `runtime quantize` form, written by the runtime's
//! own exporter and quantizer, plus broken variants (the issue-12 `DequantizeLinear` without
//! inputs, truncations, a file without metadata). Small files make a fast fuzzer.
//!
//! ```sh
//! cargo run --release -p runtime --example fuzz_seeds -- runtime/fuzz/corpus/onnx_generator
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use prost::Message;
use runtime::noise::NoiseStream;
use runtime::quantize::{Form, QuantizeOptions, quantize_spec};
use runtime::spec::{ConvTranspose2d, Dense, GeneratorSpec, ImageShape, Layer, Matrix};

fn normal(stream: &mut NoiseStream, n: usize, scale: f32) -> Vec<f32> {
    let mut v = vec![0.0; n];
    stream.fill(&mut v);
    v.iter_mut().for_each(|x| *x *= scale);
    v
}

fn dense(s: &mut NoiseStream, rows: usize, cols: usize) -> Layer {
    Layer::Dense(Dense {
        weight: Matrix {
            rows,
            cols,
            data: normal(s, rows * cols, 0.5),
        },
        bias: Some(normal(s, cols, 0.1)),
    })
}

/// z 3 -> Dense 4 -> LeakyReLU -> Dense 4 -> Tanh -> 1x2x2, conditional with 2 classes if asked.
fn mlp(conditional: bool) -> GeneratorSpec {
    let mut s = NoiseStream::new(1, 1);
    let emb = if conditional { 2 } else { 0 };
    GeneratorSpec {
        z_dim: 3,
        image: ImageShape {
            channels: 1,
            height: 2,
            width: 2,
        },
        classes: if conditional {
            vec!["a".into(), "b".into()]
        } else {
            vec![]
        },
        label_embedding: conditional.then(|| Matrix {
            rows: 2,
            cols: emb,
            data: normal(&mut s, 2 * emb, 1.0),
        }),
        layers: vec![
            dense(&mut s, 3 + emb, 4),
            Layer::LeakyRelu { alpha: 0.2 },
            dense(&mut s, 4, 4),
            Layer::Tanh,
            Layer::Reshape {
                channels: 1,
                height: 2,
                width: 2,
            },
        ],
        metadata: BTreeMap::from([("gantry.dataset".to_string(), "seed".to_string())]),
    }
}

/// z 2 -> Dense 8 -> Relu -> 2x2x2 -> ConvTranspose s2 -> 1x4x4 -> Tanh.
fn dcgan(conditional: bool) -> GeneratorSpec {
    let mut s = NoiseStream::new(2, 1);
    let emb = if conditional { 1 } else { 0 };
    GeneratorSpec {
        z_dim: 2,
        image: ImageShape {
            channels: 1,
            height: 4,
            width: 4,
        },
        classes: if conditional {
            vec!["x".into(), "y".into()]
        } else {
            vec![]
        },
        label_embedding: conditional.then(|| Matrix {
            rows: 2,
            cols: emb,
            data: normal(&mut s, 2 * emb, 1.0),
        }),
        layers: vec![
            dense(&mut s, 2 + emb, 8),
            Layer::Relu,
            Layer::Reshape {
                channels: 2,
                height: 2,
                width: 2,
            },
            Layer::ConvTranspose2d(ConvTranspose2d {
                weight: normal(&mut s, 2 * 2 * 2, 0.5),
                c_in: 2,
                c_out: 1,
                kernel: [2, 2],
                bias: Some(normal(&mut s, 1, 0.1)),
                stride: [2, 2],
                padding: [0, 0],
                output_padding: [0, 0],
            }),
            Layer::Tanh,
        ],
        metadata: BTreeMap::new(),
    }
}

fn main() -> anyhow::Result<()> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .context("usage: fuzz_seeds OUTPUT_FOLDER")?,
    );
    std::fs::create_dir_all(&dir)?;
    let write = |name: &str, bytes: &[u8]| -> anyhow::Result<()> {
        std::fs::write(dir.join(name), bytes).with_context(|| name.to_string())
    };
    let mut valid = Vec::new();
    for (name, spec) in [
        ("mlp", mlp(false)),
        ("mlp-cond", mlp(true)),
        ("dcgan", dcgan(false)),
        ("dcgan-cond", dcgan(true)),
    ] {
        let bytes = spec.to_onnx()?;
        write(&format!("{name}.onnx"), &bytes)?;
        valid.push((name.to_string(), bytes));
        for form in Form::ALL {
            let options = QuantizeOptions {
                samples: 4,
                form,
                ..QuantizeOptions::default()
            };
            let q = quantize_spec(&spec, Path::new(name), &options)?;
            let qname = format!("{name}-{form}");
            write(&format!("{qname}.onnx"), &q.to_bytes())?;
            valid.push((qname, q.to_bytes()));
        }
    }
    // Broken variants of the smallest file.
    let (_, base) = &valid[0];
    let mut dq = base.clone();
    dq.extend_from_slice(b"\x3a\x14\x0a\x12\x22\x10DequantizeLinear");
    write("mlp-dequantize-no-inputs.onnx", &dq)?;
    write("mlp-truncated.onnx", &base[..base.len() / 2])?;
    let mut bare = tract_onnx::pb::ModelProto::decode(&base[..])?;
    bare.metadata_props.clear();
    write("mlp-no-metadata.onnx", &bare.encode_to_vec())?;
    println!("wrote {} seeds to {}", valid.len() + 3, dir.display());
    Ok(())
}
