//! Export parity: the same z through burn and through the exported ONNX graph in tract
//! gives the same images (max abs difference ≤ 1e-4) for every model variant, batch norm
//! folding and the EMA copy included.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use trainer::config::TrainConfig;
use trainer::model::ModelKind;
use trainer::run::{self, RunOptions};
use trainer::training::generate;

fn mnist_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist-10k")
}

fn trained_run(dir: &Path, kind: ModelKind, conditional: bool, ema: bool) -> PathBuf {
    let mut c = TrainConfig {
        dataset: mnist_dir(),
        max_examples: Some(1024),
        conditional,
        batch_size: 32,
        steps: 12,
        seed: 11,
        out_dir: Some(dir.join(format!("{kind}-{conditional}-{ema}"))),
        ema_decay: ema.then_some(0.5),
        ..TrainConfig::default()
    };
    c.model.kind = kind;
    c.z_dim = 24;
    c.model.mlp.generator_hidden = vec![48, 40];
    c.model.dcgan.generator_channels = vec![32, 16, 8];
    c.model.dcgan.discriminator_channels = vec![8, 16];
    c.every.sample = 0;
    c.every.log = 6;
    run::train(c, &RunOptions::default()).unwrap().run_dir
}

#[test]
fn exported_generators_match_burn() {
    let dir = tempfile::tempdir().unwrap();
    for (kind, conditional, ema) in [
        (ModelKind::Mlp, false, false),
        (ModelKind::Mlp, true, true),
        (ModelKind::Dcgan, false, true),
        (ModelKind::Dcgan, true, false),
    ] {
        let run_dir = trained_run(dir.path(), kind, conditional, ema);
        let onnx = run_dir.join("generator.onnx");
        let spec = trainer::export::export_run(&run_dir, &onnx).unwrap();
        assert_eq!(spec.classes.len(), if conditional { 10 } else { 0 });

        let (gan, _) = trainer::export::load_run(&run_dir).unwrap();
        let count = 9;
        let z = runtime::noise::noise(count, 24, 5);
        let labels: Option<Vec<i64>> =
            conditional.then(|| (0..count as i64).map(|i| i % 10).collect());
        let burn_images = generate(
            &gan.inference_generator(),
            z.clone(),
            24,
            labels.clone(),
            &Device::flex(),
        );

        let generator = runtime::generator::Generator::load(&onnx).unwrap();
        assert_eq!(generator.info().z_dim, 24);
        let tract_images = generator.run(&z, labels.as_deref()).unwrap();
        assert_eq!(burn_images.len(), count * 784);
        assert_eq!(tract_images.len(), burn_images.len());
        let max_diff = burn_images
            .iter()
            .zip(&tract_images)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            max_diff <= 1e-4,
            "{kind} cond={conditional} ema={ema}: max abs diff {max_diff}"
        );
        // The images are not trivially equal (e.g. all -1): parity means something.
        let spread = burn_images.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(spread > 0.01);
    }
}

#[test]
fn export_of_a_folder_that_is_not_a_run_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = trainer::export::export_run(dir.path(), &dir.path().join("g.onnx"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("config.json"), "{err}");
}
