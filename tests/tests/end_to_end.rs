//! The whole path on the bundled MNIST-10k: train a small conditional `mlp` GAN, export
//! its generator to ONNX, generate a labelled PNG data set with the runtime (tract),
//! quantize the same weights into a firmware blob, and render int8 samples onto a
//! display through `embedded-graphics`.

use std::path::Path;

use embedded_graphics_core::pixelcolor::{Gray8, GrayColor};
use embedded_graphics_core::prelude::*;
use runtime::dataset::{DatasetRequest, OutputFormat, write_dataset};
use runtime::generator::Generator;
use runtime::spec::{Dense, Layer};
use trainer::config::TrainConfig;
use trainer::run::{self, RunOptions};

/// A 64×64 grey frame buffer standing in for a display.
struct Frame([u8; 64 * 64]);

impl OriginDimensions for Frame {
    fn size(&self) -> Size {
        Size::new(64, 64)
    }
}

impl DrawTarget for Frame {
    type Color = Gray8;
    type Error = core::convert::Infallible;

    fn draw_iter<I: IntoIterator<Item = Pixel<Gray8>>>(
        &mut self,
        pixels: I,
    ) -> Result<(), Self::Error> {
        for Pixel(p, c) in pixels {
            if (0..64).contains(&p.x) && (0..64).contains(&p.y) {
                self.0[p.y as usize * 64 + p.x as usize] = c.luma();
            }
        }
        Ok(())
    }
}

#[test]
fn train_export_generate_quantize_render() {
    let dir = tempfile::tempdir().unwrap();

    // 1. Train.
    let mut config = TrainConfig {
        dataset: Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist-10k"),
        max_examples: Some(2048),
        conditional: true,
        batch_size: 64,
        steps: 150,
        out_dir: Some(dir.path().join("run")),
        ..TrainConfig::default()
    };
    config.z_dim = 32;
    config.model.mlp.generator_hidden = vec![64];
    config.model.mlp.discriminator_hidden = vec![64];
    config.every.sample = 0;
    let summary = run::train(config, &RunOptions::default()).unwrap();
    assert_eq!(summary.steps, 150);

    // 2. Export.
    let onnx = dir.path().join("gen.onnx");
    let spec = trainer::export::export_run(&summary.run_dir, &onnx).unwrap();
    assert_eq!(spec.classes.len(), 10);

    // 3. Generate a labelled data set on the "edge".
    let generator = Generator::load(&onnx).unwrap();
    assert_eq!(generator.info().z_dim, 32);
    let out = dir.path().join("synthetic");
    let request = DatasetRequest {
        count: 30,
        class: None,
        seed: 9,
        format: OutputFormat::Png,
        out: out.clone(),
        force: false,
        sampling: Default::default(),
    };
    let manifest = write_dataset(&generator, "gen.onnx", &request, |_| {}).unwrap();
    assert_eq!(manifest.counts.iter().sum::<usize>(), 30);
    assert_eq!(manifest.counts, vec![3; 10], "balanced over the 10 classes");
    let seven = out.join(&manifest.folders[7]);
    let files: Vec<_> = std::fs::read_dir(&seven).unwrap().collect();
    assert_eq!(files.len(), 3);
    let png = image::open(files[0].as_ref().unwrap().path())
        .unwrap()
        .to_luma8();
    assert_eq!(png.dimensions(), (28, 28));

    // 4. Quantize the same weights for the firmware.
    let (w1, b1, w2, b2) = match spec.layers.as_slice() {
        [
            Layer::Dense(Dense {
                weight: w1,
                bias: b1,
            }),
            Layer::LeakyRelu { .. },
            Layer::Dense(Dense {
                weight: w2,
                bias: b2,
            }),
            Layer::Tanh,
            Layer::Reshape { .. },
        ] => (w1, b1, w2, b2),
        other => panic!(
            "unexpected mlp layers: {:?}",
            other.iter().map(Layer::kind).collect::<Vec<_>>()
        ),
    };
    let table = spec.label_embedding.as_ref().unwrap();
    let float = firmware::quantize::FloatMlp {
        z_dim: 32,
        hidden: w1.cols,
        width: 28,
        height: 28,
        w1: w1.data.clone(),
        b1: b1.clone().unwrap(),
        w2: w2.data.clone(),
        b2: b2.clone().unwrap(),
        leaky_alpha: 0.01,
        embedding: Some(firmware::quantize::Embedding {
            classes: table.rows,
            dim: table.cols,
            table: table.data.clone(),
        }),
    };
    let calibration = firmware::quantize::Calibration::seeded(&float, 500, 1);
    let blob = firmware::quantize::export(&float, &calibration).unwrap();
    let model = firmware::Model::parse(&blob).unwrap();

    // The firmware's int8 pixels follow the float generator's (tract) output closely.
    let z = runtime::noise::noise(1, 32, 4);
    let reference = generator.run(&z, Some(&[7])).unwrap();
    let mut pixels = [0u8; 784];
    model
        .generate(firmware::Noise::Float(&z), Some(7), &mut pixels)
        .unwrap();
    let mean_error = pixels
        .iter()
        .zip(&reference)
        .map(|(&p, &r)| (f32::from(p) - (r.clamp(-1.0, 1.0) + 1.0) * 127.5).abs())
        .sum::<f32>()
        / 784.0;
    assert!(
        mean_error < 4.0,
        "int8 firmware output is {mean_error} grey levels off on average"
    );

    // 5. Render onto a display, scaled ×2.
    let mut frame = Frame([0; 64 * 64]);
    let image = firmware::GrayImage::new(&pixels, 28, 28).unwrap();
    firmware::render::draw_image(&mut frame, &image, Point::new(4, 4), 2).unwrap();
    for y in 0..28 {
        for x in 0..28 {
            let expected = pixels[y * 28 + x];
            assert_eq!(frame.0[(4 + 2 * y) * 64 + 4 + 2 * x], expected);
            assert_eq!(frame.0[(5 + 2 * y) * 64 + 5 + 2 * x], expected);
        }
    }
    assert!(
        frame.0[..64 * 4].iter().all(|&v| v == 0),
        "drawn outside its place"
    );
}
